//! Standard output for a reader that may go away.
//!
//! `dmabuf run | head -1` closes the pipe before the report is written. Rust ignores `SIGPIPE`,
//! so `print!` would panic on `EPIPE`; every report, table and line the CLI writes to standard
//! output goes through [`out!`]/[`outln!`] instead. A write that fails — the reader went away
//! (`EPIPE`), standard output on a full disk (`> /dev/full`, `ENOSPC`) — is said once on stderr,
//! errno by name (`EPIPE (Broken pipe)`), and the process exits 1 at once: the output the user
//! asked for did not arrive whole, so the exit code must not claim the verdict (0) it could
//! not show, nor a panic's 101. The report files already written to the output directory stay.
//!
//! No locks beyond `Stdout`'s own; the process exits at the first failed write.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write failed (the process is exiting): later writes are dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to standard output and flushes, with the rules of the module doc.
pub fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut lock = io::stdout().lock();
    if let Err(e) = lock.write_fmt(args).and_then(|()| lock.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        let errno = e.raw_os_error().and_then(uapi::Errno::from_raw);
        match errno {
            Some(errno) => eprintln!("dmabuf: writing standard output: {errno}"),
            None => eprintln!("dmabuf: writing standard output: {e}"),
        }
        std::process::exit(1);
    }
}

/// `print!` to standard output, surviving a closed pipe (see the module doc).
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdout::write(format_args!($($arg)*)) };
}

/// `println!` to standard output, surviving a closed pipe (see the module doc).
macro_rules! outln {
    ($($arg:tt)*) => { $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*))) };
}
