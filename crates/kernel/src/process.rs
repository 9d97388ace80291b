//! Processes: an fd table and an address space of mappings.
//!
//! C side: `fs/file.c` (`alloc_fd`, `close_fd`, `dup`, `do_dup2`, `do_close_on_exec`),
//! `net/core/scm.c` (`scm_detach_fds`: fds passed with `SCM_RIGHTS`), `kernel/exit.c`
//! (`exit_files`, `exit_mm`), `mm/mmap.c` (`do_mmap`'s file-mode checks).
//!
//! A [`Process`] reaches a buffer only through an fd it holds; fd numbers mean nothing in another
//! process. Passing a buffer to another process is [`Process::send_fd`]: the receiver gets its
//! own fd pointing at the same open file, i.e. its own reference.
//!
//! # Rules of the fd table
//! 1. A new fd is the **lowest free number** (`alloc_fd`); at or above the limit
//!    ([`Process::set_max_fds`], `RLIMIT_NOFILE`, default 1024) it is `EMFILE`.
//! 2. Every process starts with fds 0, 1 and 2 open on a terminal ([`FileObject::Tty`]), so the
//!    selftests' "fd 0 is not a memfd / not a heap" cases mean what they mean on Linux.
//! 3. `close`, `dup`, any call on a number that is not open is `EBADF`; a closed fd can be
//!    reused at once.
//! 4. `O_CLOEXEC` belongs to the fd, not the file: `dup` clears it, [`Process::exec`] closes
//!    every fd that has it.
//! 5. [`Process::exit`] closes every fd and unmaps every mapping; the process then answers
//!    `ESRCH` to everything. Dropping the last `Arc<Process>` without `exit` does the same.
//! 6. Nothing runs under the table lock but the table: files are dropped (and so buffers
//!    possibly released) after it is unlocked.
//!
//! # Mappings
//! [`Process::mmap`] checks the fd's mode as `do_mmap` does (`EACCES` for a file not open for
//! reading, or a shared writable mapping of a file not open for writing), then asks the object.
//! The process owns the mapping (a dma-buf [`CpuMapping`], which holds a buffer reference, or a
//! memfd mapping); the caller gets a [`UserMapping`] handle, an address in this process, which
//! faults (`EFAULT`) once unmapped or once the process has exited.
//!
//! # Example: two processes share a buffer
//! ```
//! use kernel::Kernel;
//! use uapi::ioctl::{O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE};
//!
//! let kernel = Kernel::boot(soc::SocDesc::default_soc())?;
//! let (producer, consumer) = (kernel.spawn(), kernel.spawn());
//! let heap = producer.open_heap("system")?;
//! let fd = producer.heap_alloc(heap, 4096, O_RDWR | O_CLOEXEC, 0)?;
//! producer.mmap(fd, 0, 4096, PROT_READ | PROT_WRITE, true)?.write(0, b"frame 1")?;
//! let theirs = producer.send_fd(fd, &consumer)?; // SCM_RIGHTS: the consumer's own fd
//! producer.exit();                       // the consumer's fd keeps the buffer alive
//! let mut got = [0u8; 7];
//! consumer.mmap(theirs, 0, 4096, PROT_READ, true)?.read(0, &mut got)?;
//! assert_eq!(&got, b"frame 1");
//! # Ok::<(), dmabuf::DmaBufError>(())
//! ```

mod holdings;

use crate::file::{Fd, File, FileObject};
use crate::kernel::{errno, Kernel};
use crate::memfd::MemfdMapping;
use dmabuf::error::DmaBufError;
use dmabuf::mmap::CpuMapping;
use parking_lot::Mutex;
use soc::PAGE_SIZE;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use uapi::ioctl::{O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE};
use uapi::Errno;

/// The default `RLIMIT_NOFILE`.
pub const DEFAULT_MAX_FDS: u32 = 1024;
const MMAP_BASE: u64 = 0x7f00_0000_0000;
/// The largest mapping a process may ask for: the x86-64 user address space (`TASK_SIZE`,
/// 47 bits); longer lengths are ENOMEM, as in the kernel.
const MMAP_SPAN_MAX: u64 = 1 << 47;

/// A simulated process (see the module documentation).
pub struct Process {
    pid: u32,
    kernel: Arc<Kernel>,
    /// The fd table and the address space.
    state: Mutex<ProcState>,
}

struct FdEntry {
    file: Arc<File>,
    cloexec: bool,
}

struct ProcState {
    alive: bool,
    max_fds: u32,
    fds: BTreeMap<Fd, FdEntry>,
    vmas: BTreeMap<u64, Arc<Vma>>,
    next_addr: u64,
}

/// What a mapping maps.
enum VmaBacking {
    DmaBuf(CpuMapping),
    Memfd(MemfdMapping),
}

struct Vma {
    len: u64,
    writable: bool,
    backing: VmaBacking,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("alive", &st.alive)
            .field("fds", &st.fds.len())
            .field("mappings", &st.vmas.len())
            .finish()
    }
}

fn dead(pid: u32) -> DmaBufError {
    errno(Errno::ESRCH, format!("process {pid} has exited"))
}

fn ebadf(fd: Fd) -> DmaBufError {
    errno(Errno::EBADF, format!("fd {fd} is not open"))
}

impl ProcState {
    fn lowest_free(&self) -> Option<Fd> {
        let mut want: Fd = 0;
        for &fd in self.fds.keys() {
            if fd != want {
                break;
            }
            want += 1;
        }
        (want >= 0 && (want as u64) < u64::from(self.max_fds)).then_some(want)
    }
}

impl Process {
    pub(crate) fn new(kernel: Arc<Kernel>, pid: u32) -> Process {
        let tty = Arc::new(File::new(FileObject::Tty, O_RDWR));
        let fds = (0..3)
            .map(|fd| {
                let e = FdEntry {
                    file: tty.clone(),
                    cloexec: false,
                };
                (fd, e)
            })
            .collect();
        Process {
            pid,
            kernel,
            state: Mutex::new(ProcState {
                alive: true,
                max_fds: DEFAULT_MAX_FDS,
                fds,
                vmas: BTreeMap::new(),
                next_addr: MMAP_BASE,
            }),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The kernel the process runs on.
    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.kernel
    }

    /// Whether the process has not exited.
    pub fn is_alive(&self) -> bool {
        self.state.lock().alive
    }

    /// `RLIMIT_NOFILE`: fds must be below it.
    pub fn max_fds(&self) -> u32 {
        self.state.lock().max_fds
    }

    /// `setrlimit(RLIMIT_NOFILE)`: later allocations at or above `n` fail with `EMFILE`; fds
    /// already open stay open.
    pub fn set_max_fds(&self, n: u32) {
        self.state.lock().max_fds = n.min(i32::MAX as u32);
    }

    /// `fd_install` of a new file for `obj`, opened with `flags` (`O_ACCMODE`, `O_NONBLOCK`;
    /// `O_CLOEXEC` marks the fd). Returns the lowest free fd.
    ///
    /// Errors: `EMFILE` (the object is dropped: nothing leaks), `ESRCH` after exit.
    pub fn install(&self, obj: FileObject, flags: u32) -> Result<Fd, DmaBufError> {
        self.install_file(Arc::new(File::new(obj, flags)), flags & O_CLOEXEC != 0)
    }

    /// Installs an open file (shared with whoever else holds it) at the lowest free fd.
    pub fn install_file(&self, file: Arc<File>, cloexec: bool) -> Result<Fd, DmaBufError> {
        let mut st = self.state.lock();
        if !st.alive {
            drop(st);
            return Err(dead(self.pid));
        }
        let Some(fd) = st.lowest_free() else {
            let max = st.max_fds;
            drop(st);
            return Err(errno(
                Errno::EMFILE,
                format!("no fd below the limit of {max}"),
            ));
        };
        st.fds.insert(fd, FdEntry { file, cloexec });
        Ok(fd)
    }

    /// The open file behind `fd` (`fget`). Errors: `EBADF`, `ESRCH`.
    pub fn file(&self, fd: Fd) -> Result<Arc<File>, DmaBufError> {
        let st = self.state.lock();
        if !st.alive {
            return Err(dead(self.pid));
        }
        st.fds
            .get(&fd)
            .map(|e| e.file.clone())
            .ok_or_else(|| ebadf(fd))
    }

    /// `dma_buf_get(fd)`: a new reference to the dma-buf behind `fd`.
    ///
    /// Errors: `EBADF` if `fd` is not open, `EINVAL` if it is not a dma-buf (behaviour 63).
    pub fn get_dma_buf(&self, fd: Fd) -> Result<dmabuf::buf::DmaBuf, DmaBufError> {
        let file = self.file(fd)?;
        file.as_dma_buf().cloned().ok_or_else(|| {
            errno(
                Errno::EINVAL,
                format!("fd {fd} is a {}, not a dma-buf", file.object().kind()),
            )
        })
    }

    /// `close(fd)`. Errors: `EBADF` if not open. The file is dropped after the table is
    /// unlocked; if this was its last fd and nothing else holds it, the object is released.
    pub fn close(&self, fd: Fd) -> Result<(), DmaBufError> {
        let entry = {
            let mut st = self.state.lock();
            if !st.alive {
                return Err(dead(self.pid));
            }
            st.fds.remove(&fd).ok_or_else(|| ebadf(fd))?
        };
        drop(entry);
        Ok(())
    }

    /// `dup(fd)`: the lowest free fd, sharing the file, without `O_CLOEXEC`.
    /// Errors: `EBADF`, `EMFILE`.
    pub fn dup(&self, fd: Fd) -> Result<Fd, DmaBufError> {
        let file = self.file(fd)?;
        self.install_file(file, false)
    }

    /// `dup2(old, new)`: `new` shares `old`'s file (closing what `new` had), without
    /// `O_CLOEXEC`; `old == new` only checks `old`. Errors: `EBADF` for a bad `old`, or a
    /// negative `new` or one at or above the limit.
    pub fn dup2(&self, old: Fd, new: Fd) -> Result<Fd, DmaBufError> {
        let replaced = {
            let mut st = self.state.lock();
            if !st.alive {
                return Err(dead(self.pid));
            }
            let file = st
                .fds
                .get(&old)
                .map(|e| e.file.clone())
                .ok_or_else(|| ebadf(old))?;
            if new < 0 || new as u64 >= u64::from(st.max_fds) {
                return Err(errno(
                    Errno::EBADF,
                    format!("fd {new} is outside the table"),
                ));
            }
            if old == new {
                return Ok(new);
            }
            st.fds.insert(
                new,
                FdEntry {
                    file,
                    cloexec: false,
                },
            )
        };
        drop(replaced);
        Ok(new)
    }

    /// `fcntl(F_GETFD) & FD_CLOEXEC`. Errors: `EBADF`.
    pub fn cloexec(&self, fd: Fd) -> Result<bool, DmaBufError> {
        let st = self.state.lock();
        st.fds.get(&fd).map(|e| e.cloexec).ok_or_else(|| ebadf(fd))
    }

    /// `fcntl(F_SETFD, FD_CLOEXEC or 0)`. Errors: `EBADF`.
    pub fn set_cloexec(&self, fd: Fd, on: bool) -> Result<(), DmaBufError> {
        let mut st = self.state.lock();
        let e = st.fds.get_mut(&fd).ok_or_else(|| ebadf(fd))?;
        e.cloexec = on;
        Ok(())
    }

    /// The open fds, ascending.
    pub fn fds(&self) -> Vec<Fd> {
        self.state.lock().fds.keys().copied().collect()
    }

    /// `SCM_RIGHTS`: sends `fd` to `to`, which gets its own fd (its lowest free one, with
    /// `O_CLOEXEC` if `flags` has it, as `MSG_CMSG_CLOEXEC`) on the same open file, i.e. its own
    /// reference. The sender's fd stays open.
    ///
    /// Errors: `EBADF` (not open here), `EINVAL` (flags other than `O_CLOEXEC`), `EMFILE` in the
    /// receiver (nothing is installed and the extra reference is dropped), `ESRCH` if either
    /// process has exited.
    pub fn send_fd_flags(&self, fd: Fd, to: &Process, flags: u32) -> Result<Fd, DmaBufError> {
        if flags & !O_CLOEXEC != 0 {
            return Err(errno(
                Errno::EINVAL,
                format!("send_fd: unknown flags {flags:#x}"),
            ));
        }
        let file = self.file(fd)?;
        to.install_file(file, flags & O_CLOEXEC != 0)
    }

    /// [`send_fd_flags`](Self::send_fd_flags) without `O_CLOEXEC`.
    pub fn send_fd(&self, fd: Fd, to: &Process) -> Result<Fd, DmaBufError> {
        self.send_fd_flags(fd, to, 0)
    }

    /// `execve`: closes every `O_CLOEXEC` fd and unmaps every mapping (a new address space);
    /// the other fds stay open.
    pub fn exec(&self) -> Result<(), DmaBufError> {
        let (closed, vmas) = {
            let mut st = self.state.lock();
            if !st.alive {
                return Err(dead(self.pid));
            }
            let all = std::mem::take(&mut st.fds);
            let (closed, kept): (BTreeMap<_, _>, BTreeMap<_, _>) =
                all.into_iter().partition(|(_, e)| e.cloexec);
            st.fds = kept;
            (closed, std::mem::take(&mut st.vmas))
        };
        drop(vmas);
        drop(closed);
        Ok(())
    }

    /// `exit`: unmaps everything and closes every fd; later calls answer `ESRCH`. Calling it
    /// twice is harmless.
    pub fn exit(&self) {
        let (fds, vmas) = {
            let mut st = self.state.lock();
            st.alive = false;
            (std::mem::take(&mut st.fds), std::mem::take(&mut st.vmas))
        };
        drop(vmas);
        drop(fds);
        self.kernel.reap(self.pid);
    }

    /// `mmap(NULL, len, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd, offset)` of a dma-buf or
    /// a memfd.
    ///
    /// Errors: `EBADF`; `EACCES` when the fd is not open for reading, or for a shared writable
    /// mapping of an fd not open for writing; `EINVAL` for a zero length, an unaligned offset,
    /// unknown `prot` bits, or a range past the buffer (behaviour 81); `ENODEV` for a file that
    /// cannot be mapped; `EOPNOTSUPP` for a private writable memfd mapping (copy-on-write is
    /// not modelled); otherwise what the exporter answers.
    pub fn mmap(
        self: &Arc<Self>,
        fd: Fd,
        offset: u64,
        len: u64,
        prot: u32,
        shared: bool,
    ) -> Result<UserMapping, DmaBufError> {
        let file = self.file(fd)?;
        if prot & !(PROT_READ | PROT_WRITE) != 0 {
            return Err(errno(
                Errno::EINVAL,
                format!("mmap: unknown prot bits {prot:#x}"),
            ));
        }
        if len == 0 || !offset.is_multiple_of(PAGE_SIZE) {
            return Err(errno(
                Errno::EINVAL,
                format!("mmap: bad length {len:#x} or offset {offset:#x}"),
            ));
        }
        // The kernel refuses a length that does not fit the address space (page-rounded,
        // plus our guard page) with ENOMEM before it looks at the file.
        let span = len
            .checked_next_multiple_of(PAGE_SIZE)
            .and_then(|l| l.checked_add(PAGE_SIZE))
            .filter(|&l| l <= MMAP_SPAN_MAX)
            .ok_or_else(|| {
                errno(
                    Errno::ENOMEM,
                    format!("mmap: length {len:#x} does not fit the address space"),
                )
            })?;
        if !file.readable() {
            return Err(errno(
                Errno::EACCES,
                format!("mmap: fd {fd} is not open for reading"),
            ));
        }
        let writable = prot & PROT_WRITE != 0;
        if shared && writable && !file.writable() {
            return Err(errno(
                Errno::EACCES,
                format!("mmap: shared writable mapping of fd {fd}, not open for writing"),
            ));
        }
        let backing = match file.object() {
            FileObject::DmaBuf(buf) => VmaBacking::DmaBuf(crate::heap::mmap_dma_buf(
                buf,
                offset / PAGE_SIZE,
                len,
                writable,
                shared,
            )?),
            FileObject::Memfd(m) => {
                if writable && !shared {
                    return Err(errno(
                        Errno::EOPNOTSUPP,
                        "mmap: private writable memfd mappings are not modelled",
                    ));
                }
                VmaBacking::Memfd(m.mmap(offset, len, writable && shared)?)
            }
            other => {
                return Err(errno(
                    Errno::ENODEV,
                    format!("mmap: a {} cannot be mapped", other.kind()),
                ));
            }
        };
        let vma = Arc::new(Vma {
            len,
            writable,
            backing,
        });
        let mut st = self.state.lock();
        if !st.alive {
            drop(st);
            return Err(dead(self.pid));
        }
        let addr = st.next_addr;
        // One guard page between mappings, as the kernel's gap keeps them apart.
        let Some(next) = addr.checked_add(span) else {
            drop(st);
            return Err(errno(
                Errno::ENOMEM,
                "mmap: the process address space is exhausted".to_string(),
            ));
        };
        st.next_addr = next;
        st.vmas.insert(addr, vma);
        Ok(UserMapping {
            process: Arc::downgrade(self),
            addr,
            len,
        })
    }

    /// `munmap` of a whole mapping. Errors: `EINVAL` if it is not mapped here (any more).
    pub fn munmap(&self, mapping: &UserMapping) -> Result<(), DmaBufError> {
        let vma = self.state.lock().vmas.remove(&mapping.addr);
        match vma {
            Some(v) => {
                drop(v);
                Ok(())
            }
            None => Err(errno(
                Errno::EINVAL,
                format!("munmap: nothing mapped at {:#x}", mapping.addr),
            )),
        }
    }

    /// Number of live mappings.
    pub fn mapping_count(&self) -> usize {
        self.state.lock().vmas.len()
    }

    fn vma(&self, addr: u64) -> Result<Arc<Vma>, DmaBufError> {
        self.state.lock().vmas.get(&addr).cloned().ok_or_else(|| {
            errno(
                Errno::EFAULT,
                format!(
                    "SIGSEGV: nothing mapped at {addr:#x} in process {}",
                    self.pid
                ),
            )
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        let (fds, vmas) = (std::mem::take(&mut st.fds), std::mem::take(&mut st.vmas));
        drop(vmas);
        drop(fds);
        self.kernel.reap(self.pid);
    }
}

/// A mapping in a process's address space, as user code holds a pointer: reads and writes fault
/// (`EFAULT`) once it has been unmapped or the process has exited.
#[derive(Clone, Debug)]
pub struct UserMapping {
    process: Weak<Process>,
    addr: u64,
    len: u64,
}

impl UserMapping {
    /// The address of the mapping in its process.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty (never: `mmap` refuses a zero length).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn vma(&self) -> Result<Arc<Vma>, DmaBufError> {
        let p = self
            .process
            .upgrade()
            .ok_or_else(|| errno(Errno::EFAULT, "SIGSEGV: the process is gone"))?;
        p.vma(self.addr)
    }

    /// Loads `buf.len()` bytes at `offset` into the mapping.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DmaBufError> {
        let vma = self.vma()?;
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > vma.len)
        {
            return Err(errno(
                Errno::EFAULT,
                format!("SIGSEGV: {offset:#x}+{:#x} outside the mapping", buf.len()),
            ));
        }
        match &vma.backing {
            VmaBacking::DmaBuf(m) => m.read(offset, buf),
            VmaBacking::Memfd(m) => m.read(offset, buf),
        }
    }

    /// Stores `data` at `offset` into the mapping. Errors: `EFAULT` for a mapping without
    /// `PROT_WRITE` or an access outside it, or what the mapping reports (`SIGBUS`).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), DmaBufError> {
        let vma = self.vma()?;
        if !vma.writable {
            return Err(errno(
                Errno::EFAULT,
                "SIGSEGV: write to a mapping without PROT_WRITE",
            ));
        }
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|e| e > vma.len)
        {
            return Err(errno(
                Errno::EFAULT,
                format!("SIGSEGV: {offset:#x}+{:#x} outside the mapping", data.len()),
            ));
        }
        match &vma.backing {
            VmaBacking::DmaBuf(m) => m.write(offset, data),
            VmaBacking::Memfd(m) => m.write(offset, data),
        }
    }
}
