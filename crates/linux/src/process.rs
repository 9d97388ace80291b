//! Processes: the fd table a [`RealLinux`](crate::RealLinux) speaks for, and the threads that
//! stand in for extra processes.
//!
//! C side: `kernel/fork.c` (`unshare_fd`, `CLONE_FILES`), `fs/file.c` (the fd table),
//! `net/unix/af_unix.c` (`SCM_RIGHTS`); man pages `unshare(2)`, `unix(7)`, `proc(5)`
//! (`/proc/thread-self`).
//!
//! # The concept
//!
//! The conformance suite needs a second process for two things: fd numbers that mean nothing
//! elsewhere, and an fd passed over a unix socket. What makes a process a process for those
//! cases is its **fd table**, so [`RealLinux::spawn_process`](crate::RealLinux) does not fork
//! (a forked child would need an RPC for every call and every mapping access); it starts a
//! thread that calls `unshare(CLONE_FILES)`. The kernel then gives that thread a table of its
//! own, exactly the object a new process gets: numbers are allocated, looked up and closed
//! there, `/proc/thread-self/fdinfo` shows it, and `SCM_RIGHTS` installs received files into
//! it. The thread closes everything it inherited but stdin, stdout and stderr, so it starts
//! like a freshly exec'ed program.
//!
//! What it shares with its parent is the address space: a mapping made in one "process" is
//! mapped in the other too. The suite never looks at addresses, so nothing it checks can tell;
//! a user who needs separate address spaces needs real processes.
//!
//! # Rules
//!
//! 1. Every call of a [`RealLinux`](crate::RealLinux) runs on the thread that owns its table:
//!    the caller's own thread for the first process (`Exec::Here`), the worker for a spawned
//!    one (`Exec::Thread`). Arguments travel to the worker by value, results come back over a
//!    channel; a dead worker answers `EIO`.
//! 2. `Files` lives on that thread and owns, as [`OwnedFd`]s, every fd the seam created there.
//!    Dropping it (the worker ending, or the [`RealLinux`](crate::RealLinux) being dropped)
//!    closes them in that table.
//! 3. A number the seam did not create is still passed to the kernel as it is (the seam's rule
//!    1: plain `int`s), so the kernel answers `EBADF` for a closed one; only `close` refuses to
//!    close what the seam does not own (`EBADF`), so that it can never close another owner's fd.
//!
//! # Why `unsafe` is allowed here
//!
//! `unshare(CLONE_FILES)` is `unsafe` in rustix (fds owned by Rust objects on other threads do
//! not exist in the new table), and closing the inherited copies takes ownership of raw numbers.
#![allow(unsafe_code)]

use crate::sys::{borrow_number, errno};
use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use uapi::Errno;

/// The udmabuf misc device.
pub(crate) const UDMABUF_DEV: &str = "/dev/udmabuf";

/// The fds one process (one fd table) got through the seam.
#[derive(Debug)]
pub(crate) struct Files {
    /// Every fd the seam created in this table, by number.
    owned: HashMap<i32, OwnedFd>,
    /// `/dev/udmabuf`, opened once when the process starts (so that creating a udmabuf never
    /// takes an fd number of its own), or why it could not be opened.
    udmabuf: Result<OwnedFd, Errno>,
    /// The receiving socket of a `send_fd` in progress.
    pub(crate) inbox: Option<OwnedFd>,
    /// vgem's device (a DRM file of this table's own, so its GEM handles are nobody else's),
    /// opened at the first fence call; for `Uapi::fence_attach`.
    vgem: Option<Result<OwnedFd, Errno>>,
}

impl Files {
    /// The table of the calling thread, with `/dev/udmabuf` opened if it exists.
    pub(crate) fn new() -> Files {
        let udmabuf = rustix::fs::open(UDMABUF_DEV, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(errno);
        Files {
            owned: HashMap::new(),
            udmabuf,
            inbox: None,
            vgem: None,
        }
    }

    /// Records a new fd and returns its number.
    pub(crate) fn insert(&mut self, fd: OwnedFd) -> i32 {
        use std::os::fd::AsRawFd;
        let raw = fd.as_raw_fd();
        self.owned.insert(raw, fd);
        raw
    }

    /// Runs `f` with the fd numbered `raw`: the owned one, or the bare number (rule 3).
    pub(crate) fn with<R>(
        &self,
        raw: i32,
        f: impl FnOnce(BorrowedFd<'_>) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        match self.owned.get(&raw) {
            Some(fd) => f(fd.as_fd()),
            None => borrow_number(raw, f),
        }
    }

    /// `close(raw)` of an fd the seam owns; `EBADF` for any other number (rule 3).
    pub(crate) fn close(&mut self, raw: i32) -> Result<(), Errno> {
        self.owned.remove(&raw).map(drop).ok_or(Errno::EBADF)
    }

    /// The fd numbers open in this table now (`/proc/thread-self/fd`), for [`adopt_new`].
    ///
    /// [`adopt_new`]: Files::adopt_new
    ///
    /// The listing's own directory fd is in the listing; it is closed by the time this returns,
    /// so every number is checked again and the closed ones left out (else a call that then
    /// installs an fd at that number would look as if it had installed nothing).
    pub(crate) fn open_numbers() -> Result<std::collections::HashSet<i32>, Errno> {
        let listed = listed_numbers()?;
        Ok(listed
            .into_iter()
            .filter(|&n| borrow_number(n, |fd| rustix::io::fcntl_getfd(fd).map_err(errno)).is_ok())
            .collect())
    }

    /// Takes ownership of every fd open now that was not open in `before` and is not owned yet:
    /// the fds a raw call installed (a heap allocation through `Uapi::ioctl`). The listing's own
    /// directory fd is closed again by the time the second listing returns, so it is not found.
    ///
    /// Rule 1 makes this exact: only this table's thread opens fds in it while a call runs.
    pub(crate) fn adopt_new(
        &mut self,
        before: &std::collections::HashSet<i32>,
    ) -> Result<(), Errno> {
        let now = Files::open_numbers()?;
        for raw in now {
            if before.contains(&raw) || self.owned.contains_key(&raw) {
                continue;
            }
            if borrow_number(raw, |fd| rustix::io::fcntl_getfd(fd).map_err(errno)).is_err() {
                continue;
            }
            // SAFETY: `raw` is open in this table (just checked), was not before the call that
            // just returned, and no Rust owner has it (`owned` does not; rule 1: no other code
            // opens fds in this table meanwhile): the kernel installed it for that call.
            self.owned.insert(raw, unsafe { OwnedFd::from_raw_fd(raw) });
        }
        Ok(())
    }

    /// The vgem device of this table (opened on first use), or why there is none.
    pub(crate) fn vgem(&mut self) -> Result<BorrowedFd<'_>, Errno> {
        self.vgem
            .get_or_insert_with(crate::drm::open_vgem)
            .as_ref()
            .map(|fd| fd.as_fd())
            .map_err(|&e| e)
    }

    /// `/dev/udmabuf`, or the errno its `open` failed with.
    pub(crate) fn udmabuf(&self) -> Result<BorrowedFd<'_>, Errno> {
        self.udmabuf.as_ref().map(|fd| fd.as_fd()).map_err(|&e| e)
    }
}

/// A job for a worker: one call against its table.
type Job = Box<dyn FnOnce(&mut Files) + Send>;

/// Where the calls of a [`RealLinux`](crate::RealLinux) run (rule 1).
#[derive(Debug)]
pub(crate) enum Exec {
    /// The calling thread, in the process's own fd table.
    Here(Files),
    /// A thread with an fd table of its own.
    Thread(Worker),
}

impl Exec {
    /// Runs `f` against the table (rule 1).
    pub(crate) fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Files) -> Result<T, Errno> + Send + 'static,
    ) -> Result<T, Errno> {
        match self {
            Exec::Here(files) => f(files),
            Exec::Thread(w) => w.run(f),
        }
    }
}

/// A thread standing in for a process: its own fd table, jobs from a channel.
#[derive(Debug)]
pub(crate) struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread, unshares its fd table, closes what it inherited (but 0, 1 and 2) and
    /// opens `/dev/udmabuf`; returns once that is done.
    ///
    /// Errors: what `unshare(2)` or listing `/proc/thread-self/fd` failed with.
    pub(crate) fn spawn() -> Result<Worker, Errno> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::sync_channel::<Result<(), Errno>>(1);
        let thread = std::thread::Builder::new()
            .name("dmabuf-process".into())
            .spawn(move || {
                let mut files = match fresh_table() {
                    Ok(files) => {
                        let _ = ready_tx.send(Ok(()));
                        files
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = inbox.recv() {
                    job(&mut files);
                }
            })
            .map_err(|_| Errno::EAGAIN)?;
        let ready = ready.recv().unwrap_or(Err(Errno::EIO));
        let worker = Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        };
        ready.map(|()| worker)
    }

    fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Files) -> Result<T, Errno> + Send + 'static,
    ) -> Result<T, Errno> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |files| {
            let _ = tx.send(f(files));
        });
        let jobs = self.jobs.as_ref().ok_or(Errno::EIO)?;
        jobs.send(job).map_err(|_| Errno::EIO)?;
        rx.recv().unwrap_or(Err(Errno::EIO))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the channel ends the loop; the thread then drops its `Files`, closing its fds
        // in its own table (rule 2).
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The fd numbers `/proc/thread-self/fd` lists for the calling thread's table, the listing's own
/// directory fd included (closed by the time this returns).
fn listed_numbers() -> Result<Vec<i32>, Errno> {
    Ok(std::fs::read_dir("/proc/thread-self/fd")
        .map_err(|e| {
            e.raw_os_error()
                .and_then(Errno::from_raw)
                .unwrap_or(Errno::EIO)
        })?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

/// On a new worker thread: `unshare(CLONE_FILES)`, then close every inherited fd but 0-2.
fn fresh_table() -> Result<Files, Errno> {
    // SAFETY: from here on this thread has a private copy of the fd table. The only code that
    // runs on this thread afterwards is the worker loop, which uses fds it creates itself; the
    // Rust owners of the inherited numbers live on other threads and use the original table.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FILES) }
        .map_err(errno)?;
    let inherited = listed_numbers()?.into_iter().filter(|&n| n > 2);
    for raw in inherited {
        // The directory's own fd is in the list and already closed: EBADF, ignored.
        let _ = borrow_number(raw, |fd| rustix::io::fcntl_getfd(fd).map_err(errno)).map(|_| {
            // SAFETY: `raw` is open in this thread's private table (just checked) and is a copy
            // no Rust object on this thread owns (see the SAFETY note of the unshare); taking
            // ownership here only to close it closes the copy, never the parent's original.
            drop(unsafe { OwnedFd::from_raw_fd(raw) })
        });
    }
    Ok(Files::new())
}
