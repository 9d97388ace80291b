//! The UAPI seam: the dma-buf family of system calls as one Rust trait, answered either by the
//! simulator (`kernel::sim`, in the `kernel` crate) or, in the `linux` crate, by a real kernel.
//!
//! C headers: `include/uapi/linux/dma-buf.h`, `include/uapi/linux/dma-heap.h`,
//! `include/uapi/linux/udmabuf.h`, `include/uapi/linux/sync_file.h`, plus the plain file calls
//! user space mixes with them (`memfd_create(2)`, `fcntl(2)` seals, `mmap(2)`, `lseek(2)`,
//! `poll(2)`, `dup(2)`, `close(2)`, `/proc/<pid>/fdinfo/<fd>`).
//!
//! # The concept
//!
//! A program that shares buffers on Linux speaks to the kernel through file descriptors and a
//! handful of ioctls: it opens `/dev/dma_heap/system`, asks it for a buffer, maps it, brackets
//! its CPU access with `DMA_BUF_IOCTL_SYNC`, turns the buffer's implicit fences into a sync file,
//! and passes the fd to another process. [`Uapi`] is exactly that vocabulary, one method per call,
//! so that the same test — the [`conformance`] suite — can be asked of the simulator and of a
//! real kernel and must get the same answers, errno for errno.
//!
//! Beside it: the rest of an fd's syscall surface ([`syscalls`]: what `fstat`, `fcntl`, raw
//! ioctls answer), DRM PRIME on a GEM device ([`prime::Prime`]: vgem on Linux, the simulated GPU
//! in the simulator) and a V4L2 device's buffer queue ([`v4l2::V4l2`]: vivid on Linux, a
//! vivid-like device over vb2 in the simulator), each with its suite in [`conformance`].
//!
//! # Rules of the seam
//!
//! 1. **Calls, not objects.** Every method is one system call (or one ioctl) on a file
//!    descriptor of the calling process; a [`Fd`] is the plain `int`, meaningful only in the
//!    process (the [`Uapi`] value) that got it. Nothing is owned: an fd stays open until
//!    [`Uapi::close`], like in C.
//! 2. **Raw arguments.** Flags are passed as the C values (`u32`/`u64`), never as typed enums,
//!    so a test can pass the bits the kernel must refuse. Lengths and offsets are `u64` as in the
//!    ioctl structs; a value the C type cannot hold is refused as the kernel would.
//! 3. **Linux errnos.** Every method returns `Result<_, Errno>` with the errno the real call
//!    fails with (`EBADF` for an fd that is not open, `ENOTTY` for an ioctl on the wrong kind of
//!    file, `EINVAL` for bad arguments, ...). A failed call changes nothing.
//! 4. **Mappings are values.** [`Uapi::mmap`] returns a [`Mapping`] that keeps its own reference
//!    to the buffer (as a VMA holds the file): the fd may be closed while it lives, and dropping it
//!    is `munmap`. Accesses the hardware would fault on (past the mapping, writing a read-only
//!    mapping) are refused with an error instead of a signal; they never touch memory.
//! 5. **Capabilities are probed, never assumed.** Optional kernel features (a heap, `/dev/udmabuf`,
//!    `sw_sync` in debugfs, hugetlb memfds, a second process) have a probe or answer `ENOSYS` /
//!    `EOPNOTSUPP`, so a conformance case for an absent feature is *skipped with a printed reason*,
//!    never silently passed.
//!
//! # Example
//!
//! The simulator's answer is `kernel::sim::SimProcess` (the `kernel` crate), the real kernel's is
//! `linux::RealProcess`; both module docs show a program written against this trait.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod conformance;
pub mod exercise;
pub mod prime;
pub mod syscalls;
pub mod v4l2;

pub use syscalls::Stat;

pub use uapi::ioctl::*;
pub use uapi::sync_file::{SyncFenceInfo, SyncFileInfo, SyncMergeData};
pub use uapi::{AsErrno, Errno};

/// A file descriptor: the C `int`, meaningful only in the process that holds it.
pub type Fd = i32;

/// `POLLNVAL` (0x020): `poll(2)` reports it, as an event and not an error, for an fd that is not
/// open.
pub const POLLNVAL: u16 = 0x020;

/// A CPU mapping of a file (`mmap(2)`), unmapped when dropped (`munmap(2)`).
///
/// # Rules
/// 1. Offsets are relative to the start of the mapping; an access reaching past
///    [`len`](Mapping::len) is refused with `EFAULT` and touches nothing (the hardware would raise
///    SIGSEGV/SIGBUS).
/// 2. [`write`](Mapping::write) on a mapping made without `PROT_WRITE` is refused with `EACCES`
///    (SIGSEGV on hardware); so is [`read`](Mapping::read) on a `PROT_NONE` mapping (a writable
///    mapping is readable, as on x86 and arm64).
/// 3. The mapping holds a reference to the file: it stays valid after the fd is closed.
/// 4. Accesses are CPU accesses: on a dma-buf they are coherent only inside a
///    `DMA_BUF_IOCTL_SYNC` START/END bracket.
pub trait Mapping {
    /// The length asked of `mmap`, in bytes.
    fn len(&self) -> u64;

    /// Whether [`len`](Mapping::len) is zero (never, for a mapping `mmap` accepted).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads `buf.len()` bytes at `offset` into `buf` (a `memcpy` from the mapping).
    ///
    /// Errors: `EFAULT` past the end, `EACCES` on a `PROT_NONE` mapping (rules 1-2).
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;

    /// Stores `data` at `offset` (a `memcpy` into the mapping).
    ///
    /// Errors: `EFAULT` past the end, `EACCES` without `PROT_WRITE` (rules 1-2).
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno>;
}

/// The dma-buf system calls of one process, as a trait (see the [module doc](self) for the rules).
///
/// Every method documents the C call it stands for and the errnos the conformance suite checks.
/// Methods take `&mut self`: an implementation may keep per-process bookkeeping (owned fds,
/// opened device files) without interior mutability.
pub trait Uapi {
    /// The mapping [`mmap`](Uapi::mmap) returns.
    type Map: Mapping;

    // --- dma-heap --------------------------------------------------------------------------

    /// `open("/dev/dma_heap/<name>", O_RDONLY | O_CLOEXEC)`.
    ///
    /// Errors: `ENOENT` if there is no heap of that name (a name containing `/`, or `.`/`..`, is
    /// no heap name and also gives `ENOENT`).
    fn open_heap(&mut self, name: &str) -> Result<Fd, Errno>;

    /// The names of the heaps under `/dev/dma_heap`, sorted.
    ///
    /// Errors: `ENOENT` if the system has no dma-heap directory at all.
    fn heap_names(&mut self) -> Result<Vec<String>, Errno>;

    /// `DMA_HEAP_IOCTL_ALLOC` on `heap_fd` with `{ len, fd: 0, fd_flags, heap_flags }`; returns
    /// the new dma-buf fd (behaviours 88-89, 93).
    ///
    /// Errors: `EBADF` (fd not open), `ENOTTY` (not a heap), `EINVAL` (`fd_flags` outside
    /// `O_CLOEXEC | O_ACCMODE`, `heap_flags != 0`, `len` 0 or wrapping to 0 when page-aligned),
    /// `ENOMEM`.
    fn heap_alloc(
        &mut self,
        heap_fd: Fd,
        len: u64,
        fd_flags: u32,
        heap_flags: u64,
    ) -> Result<Fd, Errno>;

    // --- memfd ------------------------------------------------------------------------------

    /// `memfd_create(name, flags)` (`MFD_CLOEXEC`, `MFD_ALLOW_SEALING`, `MFD_HUGETLB`).
    ///
    /// Errors: `EINVAL` for unknown flags or a name longer than 249 bytes; an implementation
    /// without hugetlb support answers `MFD_HUGETLB` with an error of its choice.
    fn memfd_create(&mut self, name: &str, flags: u32) -> Result<Fd, Errno>;

    /// `ftruncate(fd, len)`.
    ///
    /// Errors: `EBADF`, `EINVAL` (not a regular file, `len` above `i64::MAX`), `EPERM` (a seal
    /// forbids the change: `F_SEAL_SHRINK`, `F_SEAL_GROW`).
    fn ftruncate(&mut self, fd: Fd, len: u64) -> Result<(), Errno>;

    /// `pwrite(fd, bytes, offset)`; returns the number of bytes written.
    ///
    /// Errors: `EBADF`, `EINVAL` (a file without write, e.g. a dma-buf), `EPERM` (sealed
    /// `F_SEAL_WRITE`, or growing past `F_SEAL_GROW`).
    fn pwrite(&mut self, fd: Fd, offset: u64, bytes: &[u8]) -> Result<usize, Errno>;

    /// `pread(fd, len, offset)`; returns what was read (shorter at the end of the file).
    ///
    /// Errors: `EBADF`, `EINVAL` (a file without read, e.g. a dma-buf).
    fn pread(&mut self, fd: Fd, offset: u64, len: usize) -> Result<Vec<u8>, Errno>;

    /// `fcntl(fd, F_ADD_SEALS, seals)`.
    ///
    /// Errors: `EBADF`, `EINVAL` (not a memfd, or unknown seal bits), `EPERM` (`F_SEAL_SEAL` is
    /// set, e.g. a memfd created without `MFD_ALLOW_SEALING`).
    fn add_seals(&mut self, fd: Fd, seals: u32) -> Result<(), Errno>;

    // --- udmabuf ----------------------------------------------------------------------------

    /// Whether `/dev/udmabuf` can be opened (probe for rule 5).
    fn has_udmabuf(&mut self) -> bool;

    /// `UDMABUF_CREATE` on `/dev/udmabuf` with `{ memfd, flags, offset, size }`; returns the new
    /// dma-buf fd (behaviours 95-97, 99-101).
    ///
    /// Errors: `EINVAL` (unaligned offset or size, size 0 or above the size limit, seals lacking
    /// `F_SEAL_SHRINK` or holding `F_SEAL_WRITE`/`F_SEAL_FUTURE_WRITE`, range past the end of the
    /// memfd), `EBADFD` (`memfd` not open, or not a shmem/hugetlbfs file), `ENODEV`/`ENOENT`
    /// without udmabuf.
    fn udmabuf_create(
        &mut self,
        memfd: Fd,
        offset: u64,
        size: u64,
        flags: u32,
    ) -> Result<Fd, Errno>;

    /// `UDMABUF_CREATE_LIST` with `{ flags, count, list[] }`, items `(memfd, offset, size)`
    /// concatenated in order (behaviour 98).
    ///
    /// Errors: those of [`udmabuf_create`](Uapi::udmabuf_create), and `EINVAL` for more than
    /// 1024 items.
    fn udmabuf_create_list(&mut self, flags: u32, items: &[(Fd, u64, u64)]) -> Result<Fd, Errno>;

    // --- dma-buf ioctls ---------------------------------------------------------------------

    /// `DMA_BUF_IOCTL_SYNC` with `{ flags }` (behaviours 79-80, 77-78).
    ///
    /// Errors: `EBADF`, `ENOTTY` (not a dma-buf), `EINVAL` (bits outside `RW | END`, or neither
    /// READ nor WRITE; an exporter refusing, e.g. udmabuf END before any START), `EINTR`.
    fn dma_buf_sync(&mut self, fd: Fd, flags: u64) -> Result<(), Errno>;

    /// `DMA_BUF_SET_NAME_B` with a pointer to `name` followed by a NUL (behaviour 84). A NUL
    /// inside `name` ends the string there, as in C.
    ///
    /// Errors: `EBADF`, `ENOTTY`, `EINVAL` (32 bytes or more before the NUL).
    fn dma_buf_set_name(&mut self, fd: Fd, name: &[u8]) -> Result<(), Errno>;

    /// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` with `{ flags }`; returns the new sync-file fd
    /// (`O_CLOEXEC`; behaviour 85).
    ///
    /// Errors: `EBADF`, `ENOTTY`, `EINVAL` (`flags` 0 or outside `DMA_BUF_SYNC_RW`).
    fn export_sync_file(&mut self, fd: Fd, flags: u32) -> Result<Fd, Errno>;

    /// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` with `{ flags, fd: sync_fd }` (behaviour 86).
    ///
    /// Errors: `EBADF`, `ENOTTY` (`fd` not a dma-buf), `EINVAL` (bad flags; `sync_fd` not a
    /// sync file, closed fds included).
    fn import_sync_file(&mut self, fd: Fd, flags: u32, sync_fd: Fd) -> Result<(), Errno>;

    // --- sync_file --------------------------------------------------------------------------

    /// `SYNC_IOC_MERGE` on `fd` with the whole argument struct; returns the new fd and also
    /// writes it into `data.fence` (behaviour 52).
    ///
    /// Errors: `EBADF`, `ENOTTY` (`fd` not a sync file), `EINVAL` (`flags`/`pad` not 0),
    /// `ENOENT` (`data.fd2` not a sync file).
    fn sync_merge_ioctl(&mut self, fd: Fd, data: &mut SyncMergeData) -> Result<Fd, Errno>;

    /// `SYNC_IOC_MERGE` with a well-formed argument: a new sync file holding the fences of both.
    fn sync_merge(&mut self, name: &str, fd1: Fd, fd2: Fd) -> Result<Fd, Errno> {
        let mut data = SyncMergeData::new(name, fd2);
        self.sync_merge_ioctl(fd1, &mut data)
    }

    /// `SYNC_IOC_FILE_INFO` on `fd` with `info` as the argument: reads `flags`, `pad`,
    /// `num_fences` (the caller's array length), writes back the rest (behaviours 53-54).
    ///
    /// Errors: `EBADF`, `ENOTTY`, `EINVAL` (`flags`/`pad` not 0, `num_fences` non-zero but below
    /// the file's fence count).
    fn sync_file_info_ioctl(&mut self, fd: Fd, info: &mut SyncFileInfo) -> Result<(), Errno>;

    /// `SYNC_IOC_FILE_INFO` done the usual way: once to count, once to fill.
    fn sync_file_info(&mut self, fd: Fd) -> Result<SyncFileInfo, Errno> {
        let mut count = SyncFileInfo::default();
        self.sync_file_info_ioctl(fd, &mut count)?;
        let mut full = SyncFileInfo {
            num_fences: count.num_fences,
            ..SyncFileInfo::default()
        };
        self.sync_file_info_ioctl(fd, &mut full)?;
        Ok(full)
    }

    /// Opens a new `sw_sync` timeline (`open("<debugfs>/sync/sw_sync")`, behaviour 57);
    /// closing the fd signals its pending points with `ENOENT` (58).
    ///
    /// Capability (rule 5): the default answers `ENOSYS`; the suite then skips the cases that
    /// need fences it controls.
    fn sw_sync_open(&mut self) -> Result<Fd, Errno> {
        Err(Errno::ENOSYS)
    }

    /// `SW_SYNC_IOC_CREATE_FENCE` on a timeline: a sync-file fd that signals when the timeline
    /// reaches `value`.
    fn sw_sync_create_fence(&mut self, timeline: Fd, value: u32) -> Result<Fd, Errno> {
        let _ = (timeline, value);
        Err(Errno::ENOSYS)
    }

    /// `SW_SYNC_IOC_INC` on a timeline: advances it by `n`.
    fn sw_sync_inc(&mut self, timeline: Fd, n: u32) -> Result<(), Errno> {
        let _ = (timeline, n);
        Err(Errno::ENOSYS)
    }

    /// A fence the caller signals, put into a dma-buf's reservation object: vgem's
    /// `DRM_IOCTL_VGEM_FENCE_ATTACH` on the buffer imported into vgem (`VGEM_FENCE_WRITE` when
    /// `write`: write usage, else read usage). Returns the fence's id for
    /// [`fence_signal`](Uapi::fence_signal). It is how a kernel without `CONFIG_SW_SYNC` gives
    /// user space an unsignalled fence (`drivers/gpu/drm/vgem/vgem_fence.c`); vgem signals it
    /// by itself after 10 seconds, and when the process closes its vgem file.
    ///
    /// Errors: `EBUSY` if an unsignalled fence is in the way (any fence for a write fence, a
    /// write fence for a read fence); `EBADF`/`EINVAL` for an fd that is not a dma-buf.
    /// Capability (rule 5): the default answers `ENOSYS` (no vgem).
    fn fence_attach(&mut self, buf: Fd, write: bool) -> Result<u32, Errno> {
        let _ = (buf, write);
        Err(Errno::ENOSYS)
    }

    /// `DRM_IOCTL_VGEM_FENCE_SIGNAL`: signals a fence [`fence_attach`](Uapi::fence_attach)
    /// returned.
    ///
    /// Errors: `ENOENT` for an id that is not pending (never attached, or signalled through
    /// this call already).
    fn fence_signal(&mut self, fence: u32) -> Result<(), Errno> {
        let _ = fence;
        Err(Errno::ENOSYS)
    }

    // --- plain file calls -------------------------------------------------------------------

    /// `mmap(NULL, len, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd, offset)` (behaviours 81,
    /// 94, 101).
    ///
    /// Errors: `EBADF`; `EINVAL` (`len` 0, `offset` not page-aligned, the page range past the
    /// buffer's last whole page, an exporter refusing private mappings or having no mmap);
    /// `EACCES` (`PROT_READ` on an fd not open for reading; `PROT_WRITE` with `MAP_SHARED` on an
    /// fd not open for writing); `ENOMEM` (`len` overflowing when page-aligned, or larger than
    /// any address space); `ENODEV` (a file that cannot be mapped, e.g. a sync file). The
    /// argument checks come before the file-mode checks, which come before the file's own.
    fn mmap(
        &mut self,
        fd: Fd,
        offset: u64,
        len: u64,
        prot: u32,
        shared: bool,
    ) -> Result<Self::Map, Errno>;

    /// `lseek(fd, offset, whence)`; returns the new position (behaviour 82).
    ///
    /// Errors: `EBADF`; `EINVAL` (on a dma-buf: anything but `(0, SEEK_END)` and
    /// `(0, SEEK_SET)`); `ESPIPE` (a file that cannot seek).
    fn lseek(&mut self, fd: Fd, offset: i64, whence: u32) -> Result<u64, Errno>;

    /// `poll(2)` on one fd: returns `revents` (0 when nothing is ready within `timeout_ms`;
    /// [`POLLNVAL`] for an fd that is not open, as Linux reports it; behaviours 55, 83).
    ///
    /// `timeout_ms` 0 only checks, negative waits forever.
    fn poll(&mut self, fd: Fd, events: u16, timeout_ms: i32) -> Result<u16, Errno>;

    /// `dup(fd)`: the lowest free fd, sharing the same open file.
    ///
    /// Errors: `EBADF`, `EMFILE`.
    fn dup(&mut self, fd: Fd) -> Result<Fd, Errno>;

    /// `close(fd)`.
    ///
    /// Errors: `EBADF`.
    fn close(&mut self, fd: Fd) -> Result<(), Errno>;

    /// The text of `/proc/self/fdinfo/<fd>`. For a dma-buf it holds `size:`, `count:`,
    /// `exp_name:` and, once set, `name:` lines, each `key:\tvalue` (behaviour 87); other lines
    /// (`pos:`, `flags:`, ...) may come first.
    ///
    /// Errors: `EBADF` (`ENOENT` from procfs is reported as `EBADF`).
    fn fdinfo(&mut self, fd: Fd) -> Result<String, Errno>;

    // --- the rest of the syscall surface of an fd ---------------------------------------------

    /// `ioctl(fd, request, arg)` with any request number: `arg` is the memory the argument
    /// pointer points at (for `DMA_BUF_SET_NAME` the string itself), or `None` for a null
    /// pointer. The memory handed over is at least `_IOC_SIZE(request)` bytes (`arg`, then
    /// zeros); what the call wrote back is copied into `arg`. Returns the ioctl's value.
    ///
    /// A new fd the call installs (a heap allocation through this path) belongs to the caller,
    /// to [`close`](Uapi::close) like any other. Pointers *inside* the bytes are passed as they
    /// are (see [`syscalls`] for what that means on each side).
    ///
    /// Errors: whatever the VFS (`FIOCLEX`, `FIONCLEX`, `FIONBIO`, `FIOASYNC`, `FIGETBSZ`,
    /// `FIONREAD` on regular files) or the file's driver answers, as on Linux 6.12: `ENOTTY` for
    /// a request the file does not know (dma-bufs, sync files, memfds, `/dev/udmabuf`),
    /// `EINVAL` for any command number but 0 on a heap (behaviour 90), `EFAULT` for a null
    /// argument a known request reads.
    fn ioctl(&mut self, fd: Fd, request: u32, arg: Option<&mut [u8]>) -> Result<i32, Errno>;

    /// `read(fd, buf, len)` at the file position; returns what was read.
    ///
    /// Errors: `EBADF`; `EINVAL` for files that have no read (dma-bufs, heaps, sync files,
    /// `/dev/udmabuf`).
    fn read(&mut self, fd: Fd, len: usize) -> Result<Vec<u8>, Errno>;

    /// `write(fd, bytes, len)` at the file position; returns how much was written.
    ///
    /// Errors: `EBADF` (also for a file not open for writing: a heap, a sync file);
    /// `EINVAL` for files that have no write (dma-bufs, `/dev/udmabuf`).
    fn write(&mut self, fd: Fd, bytes: &[u8]) -> Result<usize, Errno>;

    /// `fstat(fd)`: the fields the suites compare.
    ///
    /// Errors: `EBADF`.
    fn fstat(&mut self, fd: Fd) -> Result<Stat, Errno>;

    /// `readlink("/proc/self/fd/<fd>")`: the file's path as procfs names it (`/dmabuf:<name>`,
    /// `anon_inode:sync_file`, `/dev/dma_heap/system`, `/memfd:<name> (deleted)`).
    ///
    /// Errors: `EBADF` (procfs's `ENOENT` for an fd that is not open).
    fn fd_path(&mut self, fd: Fd) -> Result<String, Errno>;

    /// `fcntl(fd, F_GETFL)`: the file status flags (access mode, `O_NONBLOCK`, `O_LARGEFILE` for
    /// files `open(2)` opened on 64-bit).
    ///
    /// Errors: `EBADF`.
    fn fcntl_getfl(&mut self, fd: Fd) -> Result<u32, Errno>;

    /// `fcntl(fd, F_GETFD)`: the fd flags (`FD_CLOEXEC` = 1).
    ///
    /// Errors: `EBADF`.
    fn fcntl_getfd(&mut self, fd: Fd) -> Result<u32, Errno>;

    /// The text of debugfs `dma_buf/bufinfo` (`dma_buf_debug_show`), every live buffer of the
    /// machine, newest first.
    ///
    /// Errors: `ENOENT` without debugfs.
    fn bufinfo(&mut self) -> Result<String, Errno>;

    // --- capabilities -----------------------------------------------------------------------

    /// Whether a heap of that name exists (probe for rule 5): opens and closes it.
    fn has_heap(&mut self, name: &str) -> bool {
        match self.open_heap(name) {
            Ok(fd) => {
                let _ = self.close(fd);
                true
            }
            Err(_) => false,
        }
    }

    /// A new process on the same kernel with an empty fd table (for cases about isolation and
    /// fd passing). The default answers `EOPNOTSUPP`.
    fn spawn_process(&mut self) -> Result<Self, Errno>
    where
        Self: Sized,
    {
        Err(Errno::EOPNOTSUPP)
    }

    /// Runs a child process that opens heap `heap` and allocates `len` bytes from it
    /// (`O_RDWR | O_CLOEXEC`), the child volunteering as the OOM killer's victim
    /// (`oom_score_adj` 1000); returns how the child ended. On Linux 6.12 a system-heap
    /// allocation far beyond RAM is not `ENOMEM`: the allocation loop runs the machine out of
    /// pages and the OOM killer kills the allocating process ([`ChildExit::Killed`] with
    /// `SIGKILL`), whose fds close and whose pages go back. The default answers `ENOSYS`.
    fn child_heap_alloc(&mut self, heap: &str, len: u64) -> Result<ChildExit, Errno> {
        let _ = (heap, len);
        Err(Errno::ENOSYS)
    }

    /// Sends `fd` to `to` over a unix socket (`SCM_RIGHTS`): `to` gets a new fd of its own for
    /// the same open file; the sender keeps its fd. The default answers `EOPNOTSUPP`.
    ///
    /// Errors: `EBADF` if `fd` is not open here.
    fn send_fd(&mut self, fd: Fd, to: &mut Self) -> Result<Fd, Errno>
    where
        Self: Sized,
    {
        let _ = (fd, to);
        Err(Errno::EOPNOTSUPP)
    }
}

/// How a child process ended ([`Uapi::child_heap_alloc`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// It exited with this status (0: the allocation succeeded; else the errno it failed with).
    Exited(i32),
    /// A signal killed it (9: `SIGKILL`, the OOM killer's).
    Killed(i32),
}

/// `SIGKILL`.
pub const SIGKILL: i32 = 9;

/// Whether `name` can name a heap under `/dev/dma_heap/`: one path component, not `.` or `..`.
/// Both seams answer any other name with `ENOENT` before looking, as the path lookup of
/// `open("/dev/dma_heap/<name>")` would (or worse, would escape the directory).
pub fn is_heap_name(name: &str) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.contains('/'))
}

/// Parses `key:\tvalue` fdinfo text (as [`Uapi::fdinfo`] returns it) into the value of `key`.
///
/// ```
/// let text = "pos:\t0\nsize:\t4096\nexp_name:\tsystem\n";
/// assert_eq!(seam::fdinfo_field(text, "size"), Some("4096"));
/// assert_eq!(seam::fdinfo_field(text, "name"), None);
/// ```
pub fn fdinfo_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}
