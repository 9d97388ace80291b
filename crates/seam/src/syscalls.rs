//! The plain system calls on any fd, as the seam states them: what `fstat` reports, and the
//! request numbers the VFS answers itself before a file's driver sees them.
//!
//! C side: `fs/ioctl.c` (`do_vfs_ioctl`: `FIOCLEX`, `FIONCLEX`, `FIONBIO`, `FIOASYNC`,
//! `FIGETBSZ`, `FIONREAD`), `fs/stat.c`, `fs/fcntl.c`, `fs/proc/fd.c`, `fs/anon_inodes.c`,
//! `drivers/dma-buf/dma-buf.c` (`dma_buf_getfile`, `dmabuf_dname`).
//!
//! # What Linux 6.12 answers (found in qemu with `crates/linux/examples/probe/`)
//!
//! | fd | `read` | `write` | `pread`/`pwrite` | `lseek(0, CUR)` | `F_GETFL` | `fstat` mode | path |
//! |---|---|---|---|---|---|---|---|
//! | dma-buf | `EINVAL` | `EINVAL` (`EBADF` if read-only) | `ESPIPE` | `EINVAL` | access mode only | `0600`, no type bits | `/dmabuf:<name>` |
//! | sync file | `EINVAL` | `EBADF` | `ESPIPE` | `ESPIPE` | `O_RDONLY` | `0600`, no type bits | `anon_inode:sync_file` |
//! | heap node | `EINVAL` | `EBADF` | `ESPIPE` | `ESPIPE` | `O_LARGEFILE` | `S_IFCHR \| 0600` | `/dev/dma_heap/<name>` |
//! | memfd | data | data | data | position | `O_LARGEFILE \| O_RDWR` | `S_IFREG \| 0777` | `/memfd:<name> (deleted)` |
//!
//! A dma-buf's `st_size` is the buffer size and `st_blocks` its 512-byte blocks; its inode
//! number comes from a counter that starts at 1 at boot and is shared by every exporter. All
//! sync files share the one anonymous inode. `FIOCLEX`/`FIONCLEX`/`FIONBIO` work on every fd,
//! `FIOASYNC` is `ENOTTY` for files without `fasync`, `FIGETBSZ` writes the block size (4096)
//! for every fd; the rest goes to the driver, whose unknown requests are `ENOTTY` — except a
//! heap's, which looks only at the command number.
//!
//! # Pointers inside an argument
//!
//! [`Uapi::ioctl`](super::Uapi::ioctl) passes the caller's bytes; a pointer stored in them is
//! an address in the caller's memory on the real kernel and means nothing to the simulator,
//! which answers `EFAULT` for any non-null one it would follow. The suites only store null
//! pointers there.

/// `S_IFMT`: the file-type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170000;
/// `S_IFREG`: a regular file (a memfd).
pub const S_IFREG: u32 = 0o100000;
/// `S_IFCHR`: a character device (a heap node, `/dev/udmabuf`).
pub const S_IFCHR: u32 = 0o020000;
/// `O_LARGEFILE` as x86-64 spells it: `open(2)` sets it on 64-bit; `fcntl(F_GETFL)` shows it.
pub const O_LARGEFILE: u32 = 0o100000;
/// `FD_CLOEXEC`, as `fcntl(F_GETFD)` reports it.
pub const FD_CLOEXEC: u32 = 1;

/// `FIOCLEX`: set close-on-exec on the fd.
pub const FIOCLEX: u32 = 0x5451;
/// `FIONCLEX`: clear close-on-exec.
pub const FIONCLEX: u32 = 0x5450;
/// `FIONBIO`: `*(int *)arg` non-zero sets `O_NONBLOCK` on the file, zero clears it.
pub const FIONBIO: u32 = 0x5421;
/// `FIOASYNC`: `*(int *)arg` switches `O_ASYNC` (needs the file's `fasync`).
pub const FIOASYNC: u32 = 0x5452;
/// `FIGETBSZ`: writes the file system's block size as an `int`.
pub const FIGETBSZ: u32 = 2;
/// `FIONREAD`: bytes left before the end of a regular file, as an `int`; other files pass it to
/// their driver.
pub const FIONREAD: u32 = 0x541b;

/// What [`Uapi::fstat`](super::Uapi::fstat) reports: the `struct stat` fields the suites
/// compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    /// `st_mode`: type bits ([`S_IFMT`]) and permissions.
    pub mode: u32,
    /// `st_size`: bytes (a dma-buf's size; 0 for device nodes and sync files).
    pub size: u64,
    /// `st_blksize`.
    pub blksize: u64,
    /// `st_blocks`: 512-byte blocks.
    pub blocks: u64,
    /// `st_nlink` (0 for a memfd: it has no name).
    pub nlink: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl Stat {
    /// The file-type bits of [`mode`](Stat::mode).
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }

    /// The permission bits of [`mode`](Stat::mode).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// `FS_IOC_GETFLAGS`: the inode's attribute flags as an `int` (file systems with
/// `fileattr_get`, shmem among them).
pub const FS_IOC_GETFLAGS: u32 = 0x8008_6601;
