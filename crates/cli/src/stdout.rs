//! Standard output for a reader that may go away.
//!
//! `dmabuf run | head` closes the pipe before the report is written. Rust ignores `SIGPIPE`, so
//! `print!` would panic on `EPIPE`; every report, table and line the CLI writes to standard
//! output goes through [`out!`]/[`outln!`] instead. A broken pipe ends the output quietly — the
//! reader asked for no more, and the exit code still carries the command's verdict, as with
//! `grep | head`. Any other write error (standard output on a full disk, `> /dev/full`) is said
//! once on stderr, errno by name (`ENOSPC (No space left on device)`), and the process exits 1: the report files already written
//! to the output directory stay.
//!
//! No locks beyond `Stdout`'s own; once a write failed, later writes are skipped.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the reader has gone away: later writes are dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to standard output and flushes, with the rules of the module doc.
pub fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut lock = io::stdout().lock();
    if let Err(e) = lock.write_fmt(args).and_then(|()| lock.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            let errno = e.raw_os_error().and_then(uapi::Errno::from_raw);
            match errno {
                Some(errno) => eprintln!("dmabuf: writing standard output: {errno}"),
                None => eprintln!("dmabuf: writing standard output: {e}"),
            }
            std::process::exit(1);
        }
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
