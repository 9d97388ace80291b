//! The `syscalls` suite: every plain system call a program can make on the six kinds of fd the
//! dma-buf family hands out — a heap node, a heap dma-buf (read-write and read-only), a
//! udmabuf, a sync file, a memfd —
//! checked against what Linux 6.12 answers (the table in [`crate::syscalls`]): `read`,
//! `write`, `pread`/`pwrite`, `lseek`, `fstat`, the `/proc/self/fd` link, `fcntl`, the VFS
//! ioctls, unknown and malformed requests, null arguments, `poll` and fdinfo's lines.
//!
//! Each case is one check on one kind of fd; the kinds and what each answers are the [`KINDS`]
//! table, so a case's expectation is a row of that table, not a constant in its body.

use super::*;
use crate::syscalls::*;
use crate::{
    DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, DMA_BUF_IOCTL_SYNC,
    DMA_BUF_SET_NAME_A, DMA_BUF_SET_NAME_B, DMA_HEAP_IOCTL_ALLOC, F_SEAL_SHRINK, MFD_ALLOW_SEALING,
    MFD_CLOEXEC, O_NONBLOCK, O_RDWR, SEEK_CUR, SYNC_IOC_FILE_INFO, SYNC_IOC_MERGE,
    SYNC_IOC_SET_DEADLINE, UDMABUF_FLAGS_CLOEXEC,
};
use uapi::ioctl::{ioc, iow, iowr, IOC_NONE, IOC_READ};

mod ioctls;
mod single;
use ioctls::*;
pub use single::*;

/// How a kind of fd is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Make {
    /// `open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC)`.
    Heap,
    /// A 3-page `O_RDWR | O_CLOEXEC` buffer from the system heap.
    HeapBuffer,
    /// A 3-page `O_RDONLY | O_CLOEXEC` buffer from the system heap (the file is read-only).
    ReadOnlyBuffer,
    /// A 2-page udmabuf (`UDMABUF_FLAGS_CLOEXEC`) over a sealed memfd.
    Udmabuf,
    /// A sync file exported from an idle heap buffer (`O_CLOEXEC`, the signaled stub).
    SyncFile,
    /// `memfd_create("syscalls", MFD_CLOEXEC | MFD_ALLOW_SEALING)` grown to 2 pages.
    Memfd,
}

/// What one kind of fd answers (Linux 6.12).
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// How to make it.
    pub make: Make,
    /// `read(fd, 16)`: `Ok` means it reads data.
    pub read: Result<(), Errno>,
    /// `write(fd, 16 bytes)`.
    pub write: Result<(), Errno>,
    /// `pread`/`pwrite` at 0.
    pub positional: Result<(), Errno>,
    /// `lseek(fd, 0, SEEK_CUR)`.
    pub lseek_cur: Result<(), Errno>,
    /// `st_mode`.
    pub mode: u32,
    /// `st_nlink`.
    pub nlink: u64,
    /// `fcntl(F_GETFL)` right after it was made.
    pub getfl: u32,
    /// The `/proc/self/fd` link.
    pub path: &'static str,
    /// `poll` with every event asked.
    pub poll_all: u16,
    /// What a request its driver does not know gives.
    pub unknown: Errno,
    /// Whether fdinfo continues with the dma-buf lines.
    pub dma_buf: bool,
}

/// The six kinds (module doc), as 6.12 answers for them.
pub const KINDS: [Kind; 6] = [
    Kind {
        make: Make::Heap,
        read: Err(Errno::EINVAL),
        write: Err(Errno::EBADF),
        positional: Err(Errno::ESPIPE),
        lseek_cur: Err(Errno::ESPIPE),
        mode: S_IFCHR | 0o600,
        nlink: 1,
        getfl: O_LARGEFILE,
        path: "/dev/dma_heap/system",
        poll_all: 0x145,
        unknown: Errno::EINVAL,
        dma_buf: false,
    },
    Kind {
        make: Make::HeapBuffer,
        read: Err(Errno::EINVAL),
        write: Err(Errno::EINVAL),
        positional: Err(Errno::ESPIPE),
        lseek_cur: Err(Errno::EINVAL),
        mode: 0o600,
        nlink: 1,
        getfl: O_RDWR,
        path: "/dmabuf:",
        poll_all: 0x5,
        unknown: Errno::ENOTTY,
        dma_buf: true,
    },
    Kind {
        make: Make::ReadOnlyBuffer,
        read: Err(Errno::EINVAL),
        write: Err(Errno::EBADF),
        positional: Err(Errno::ESPIPE),
        lseek_cur: Err(Errno::EINVAL),
        mode: 0o600,
        nlink: 1,
        getfl: 0,
        path: "/dmabuf:",
        poll_all: 0x5,
        unknown: Errno::ENOTTY,
        dma_buf: true,
    },
    Kind {
        make: Make::Udmabuf,
        read: Err(Errno::EINVAL),
        write: Err(Errno::EINVAL),
        positional: Err(Errno::ESPIPE),
        lseek_cur: Err(Errno::EINVAL),
        mode: 0o600,
        nlink: 1,
        getfl: O_RDWR,
        path: "/dmabuf:",
        poll_all: 0x5,
        unknown: Errno::ENOTTY,
        dma_buf: true,
    },
    Kind {
        make: Make::SyncFile,
        read: Err(Errno::EINVAL),
        write: Err(Errno::EBADF),
        positional: Err(Errno::ESPIPE),
        lseek_cur: Err(Errno::ESPIPE),
        mode: 0o600,
        nlink: 1,
        getfl: 0,
        path: "anon_inode:sync_file",
        poll_all: 0x1,
        unknown: Errno::ENOTTY,
        dma_buf: false,
    },
    Kind {
        make: Make::Memfd,
        read: Ok(()),
        write: Ok(()),
        positional: Ok(()),
        lseek_cur: Ok(()),
        mode: S_IFREG | 0o777,
        nlink: 0,
        getfl: O_LARGEFILE | O_RDWR,
        path: "/memfd:syscalls (deleted)",
        poll_all: 0x145,
        unknown: Errno::ENOTTY,
        dma_buf: false,
    },
];

fn kind(make: Make) -> &'static Kind {
    KINDS
        .iter()
        .find(|k| k.make == make)
        .expect("every Make has a row")
}

/// Makes an fd of the kind (skips without a system heap or udmabuf).
fn make<U: Uapi>(u: &mut U, fds: &mut Vec<Fd>, make: Make) -> Step<Fd> {
    match make {
        Make::Heap => system_heap(u, fds),
        Make::HeapBuffer => system_buffer(u, fds, 3 * PAGE),
        Make::ReadOnlyBuffer => {
            let heap = system_heap(u, fds)?;
            open(
                fds,
                "heap_alloc(O_RDONLY)",
                u.heap_alloc(heap, 3 * PAGE, crate::O_CLOEXEC, 0),
            )
        }
        Make::Udmabuf => {
            if !u.has_udmabuf() {
                return skip("no /dev/udmabuf");
            }
            let m = open(
                fds,
                "memfd_create",
                u.memfd_create("udmabuf", MFD_ALLOW_SEALING),
            )?;
            ok("ftruncate", u.ftruncate(m, 2 * PAGE))?;
            ok("add_seals", u.add_seals(m, F_SEAL_SHRINK))?;
            open(
                fds,
                "udmabuf_create",
                u.udmabuf_create(m, 0, 2 * PAGE, UDMABUF_FLAGS_CLOEXEC),
            )
        }
        Make::SyncFile => {
            let buf = system_buffer(u, fds, PAGE)?;
            open(fds, "export_sync_file", u.export_sync_file(buf, 1))
        }
        Make::Memfd => {
            let m = open(
                fds,
                "memfd_create",
                u.memfd_create("syscalls", MFD_CLOEXEC | MFD_ALLOW_SEALING),
            )?;
            ok("ftruncate", u.ftruncate(m, 2 * PAGE))?;
            Ok(m)
        }
    }
}

/// The size `fstat` must report for the kind.
fn expected_size(make: Make) -> u64 {
    match make {
        Make::HeapBuffer | Make::ReadOnlyBuffer => 3 * PAGE,
        Make::Udmabuf | Make::Memfd => 2 * PAGE,
        Make::Heap | Make::SyncFile => 0,
    }
}

fn same(what: &str, want: Result<(), Errno>, got: Result<(), Errno>) -> Step<()> {
    ensure(want == got, || {
        format!("{what}: expected {want:?}, got {got:?}")
    })
}

// --- the checks, each on one kind ------------------------------------------------------------

fn check_read<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        if k.read.is_ok() {
            ok("pwrite", u.pwrite(fd, 0, b"read me"))?;
            let got = ok("read(7)", u.read(fd, 7))?;
            ensure(got == b"read me", || format!("read gave {got:?}"))?;
            let next = ok("read(7) again", u.read(fd, 7))?;
            return ensure(next == [0u8; 7], || {
                format!("the second read did not continue at the position: {next:?}")
            });
        }
        same("read(16)", k.read, u.read(fd, 16).map(drop))?;
        same("read(0)", k.read, u.read(fd, 0).map(drop))
    })
}

fn check_write<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        if k.write.is_ok() {
            let n = ok("write", u.write(fd, b"abc"))?;
            ensure(n == 3, || format!("write wrote {n}"))?;
            ok("write", u.write(fd, b"def"))?;
            let got = ok("pread", u.pread(fd, 0, 6))?;
            return ensure(got == b"abcdef", || {
                format!("the writes did not advance the position: {got:?}")
            });
        }
        same("write(16)", k.write, u.write(fd, &[7; 16]).map(drop))?;
        same("write(0)", k.write, u.write(fd, &[]).map(drop))
    })
}

fn check_positional<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        same("pread(16, 0)", k.positional, u.pread(fd, 0, 16).map(drop))?;
        same(
            "pwrite(16, 0)",
            k.positional,
            u.pwrite(fd, 0, &[1; 16]).map(drop),
        )
    })
}

fn check_lseek_cur<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        if k.lseek_cur.is_ok() {
            ok("write", u.write(fd, b"12345"))?;
            let pos = ok("lseek(0, SEEK_CUR)", u.lseek(fd, 0, SEEK_CUR))?;
            return ensure(pos == 5, || format!("position {pos} after writing 5 bytes"));
        }
        same(
            "lseek(0, SEEK_CUR)",
            k.lseek_cur,
            u.lseek(fd, 0, SEEK_CUR).map(drop),
        )
    })
}

fn check_fstat<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        let st = ok("fstat", u.fstat(fd))?;
        let size = expected_size(k.make);
        let blocks_ok = match k.make {
            // A memfd's blocks are the pages it has touched: none yet.
            Make::Memfd => st.blocks == 0,
            _ => st.blocks == size / 512,
        };
        ensure(
            st.mode == k.mode
                && st.nlink == k.nlink
                && st.blksize == PAGE
                && blocks_ok
                && (st.size == size),
            || {
                format!(
                    "fstat {st:?}: expected mode {:o}, nlink {}, size {size}, blksize 4096",
                    k.mode, k.nlink
                )
            },
        )
    })
}

fn check_path<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        let path = ok("readlink /proc/self/fd/N", u.fd_path(fd))?;
        ensure(path == k.path, || {
            format!("link {path:?}, expected {:?}", k.path)
        })?;
        if k.dma_buf {
            ok("set_name", u.dma_buf_set_name(fd, b"cam0"))?;
            let named = ok("readlink after set_name", u.fd_path(fd))?;
            ensure(named == "/dmabuf:cam0", || format!("named link {named:?}"))?;
        }
        let closed = closed_fd(u)?;
        errno("readlink of a closed fd", Errno::EBADF, u.fd_path(closed))
    })
}

fn check_fcntl<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        let fl = ok("F_GETFL", u.fcntl_getfl(fd))?;
        ensure(fl == k.getfl, || {
            format!("F_GETFL {fl:#o}, expected {:#o}", k.getfl)
        })?;
        let fdflags = ok("F_GETFD", u.fcntl_getfd(fd))?;
        ensure(fdflags == FD_CLOEXEC, || {
            format!("F_GETFD {fdflags}, expected FD_CLOEXEC")
        })?;
        let dup = open(fds, "dup", u.dup(fd))?;
        let d = ok("F_GETFD of the dup", u.fcntl_getfd(dup))?;
        ensure(d == 0, || format!("dup(2) kept FD_CLOEXEC: {d}"))?;
        let closed = closed_fd(u)?;
        errno(
            "F_GETFL of a closed fd",
            Errno::EBADF,
            u.fcntl_getfl(closed),
        )
    })
}

fn check_poll_all<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        let got = ok("poll(all events)", u.poll(fd, 0xffff, 0))?;
        ensure(got == k.poll_all, || {
            format!("poll revents {got:#x}, expected {:#x}", k.poll_all)
        })
    })
}

fn check_fdinfo_lines<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        let text = ok("fdinfo", u.fdinfo(fd))?;
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, _)| k)
            .collect();
        let mut want = vec!["pos", "flags", "mnt_id", "ino"];
        if k.dma_buf {
            want.extend(["size", "count", "exp_name"]);
        }
        ensure(keys == want, || {
            format!("fdinfo keys {keys:?}, expected {want:?}")
        })?;
        let flags = crate::fdinfo_field(&text, "flags").unwrap_or("");
        let want_flags = format!("0{:o}", k.getfl | crate::O_CLOEXEC);
        ensure(flags == want_flags, || {
            format!("fdinfo flags {flags}, expected {want_flags}")
        })?;
        let ino = crate::fdinfo_field(&text, "ino").unwrap_or("");
        let st = ok("fstat", u.fstat(fd))?;
        ensure(ino == st.ino.to_string(), || {
            format!("fdinfo ino {ino}, fstat ino {}", st.ino)
        })?;
        ensure(text.lines().all(|l| l.contains(":\t")), || {
            format!("a line is not `key:\\tvalue`: {text:?}")
        })
    })
}

macro_rules! kind_cases {
    ($($name:ident => $make:ident, $check:ident;)*) => {
        $(
            #[doc = concat!("`", stringify!($check), "` on a ", stringify!($make), " fd (see [`KINDS`]).")]
            pub fn $name<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
                $check(u, kind(Make::$make))
            }
        )*

        /// Every case of the suite, in a stable order.
        pub fn cases<U: Uapi>() -> Vec<Case<U>> {
            let mut v = vec![$(Case { name: stringify!($name), covers: "syscalls", run: $name::<U> },)*];
            v.extend(single::extra_cases::<U>());
            v
        }
    };
}

kind_cases! {
    heap_read_einval => Heap, check_read;
    heap_write_ebadf => Heap, check_write;
    heap_pread_pwrite_espipe => Heap, check_positional;
    heap_lseek_espipe => Heap, check_lseek_cur;
    heap_fstat_is_a_char_device => Heap, check_fstat;
    heap_proc_fd_link => Heap, check_path;
    heap_fcntl_flags => Heap, check_fcntl;
    heap_vfs_ioctls => Heap, check_vfs_ioctls;
    heap_unknown_requests => Heap, check_unknown_requests;
    heap_null_args => Heap, check_null_args;
    heap_malformed_requests_decode_nr_only => Heap, check_malformed_requests;
    heap_poll_default_mask => Heap, check_poll_all;
    heap_fdinfo_lines => Heap, check_fdinfo_lines;
    dma_buf_read_einval => HeapBuffer, check_read;
    dma_buf_write_einval => HeapBuffer, check_write;
    dma_buf_pread_pwrite_espipe => HeapBuffer, check_positional;
    dma_buf_lseek_cur_einval => HeapBuffer, check_lseek_cur;
    dma_buf_fstat_size_and_blocks => HeapBuffer, check_fstat;
    dma_buf_proc_fd_link_names_the_buffer => HeapBuffer, check_path;
    dma_buf_fcntl_flags => HeapBuffer, check_fcntl;
    dma_buf_vfs_ioctls => HeapBuffer, check_vfs_ioctls;
    dma_buf_unknown_requests_enotty => HeapBuffer, check_unknown_requests;
    dma_buf_null_args_efault => HeapBuffer, check_null_args;
    dma_buf_malformed_requests_enotty => HeapBuffer, check_malformed_requests;
    dma_buf_poll_all_events => HeapBuffer, check_poll_all;
    dma_buf_fdinfo_lines => HeapBuffer, check_fdinfo_lines;
    read_only_dma_buf_read_einval => ReadOnlyBuffer, check_read;
    read_only_dma_buf_write_ebadf => ReadOnlyBuffer, check_write;
    read_only_dma_buf_pread_pwrite_espipe => ReadOnlyBuffer, check_positional;
    read_only_dma_buf_lseek_cur_einval => ReadOnlyBuffer, check_lseek_cur;
    read_only_dma_buf_fstat => ReadOnlyBuffer, check_fstat;
    read_only_dma_buf_proc_fd_link => ReadOnlyBuffer, check_path;
    read_only_dma_buf_fcntl_flags => ReadOnlyBuffer, check_fcntl;
    read_only_dma_buf_vfs_ioctls => ReadOnlyBuffer, check_vfs_ioctls;
    read_only_dma_buf_unknown_requests_enotty => ReadOnlyBuffer, check_unknown_requests;
    read_only_dma_buf_null_args_efault => ReadOnlyBuffer, check_null_args;
    read_only_dma_buf_malformed_requests_enotty => ReadOnlyBuffer, check_malformed_requests;
    read_only_dma_buf_poll_all_events => ReadOnlyBuffer, check_poll_all;
    read_only_dma_buf_fdinfo_lines => ReadOnlyBuffer, check_fdinfo_lines;
    udmabuf_read_einval => Udmabuf, check_read;
    udmabuf_write_einval => Udmabuf, check_write;
    udmabuf_pread_pwrite_espipe => Udmabuf, check_positional;
    udmabuf_lseek_cur_einval => Udmabuf, check_lseek_cur;
    udmabuf_fstat_size_and_blocks => Udmabuf, check_fstat;
    udmabuf_proc_fd_link => Udmabuf, check_path;
    udmabuf_fcntl_flags => Udmabuf, check_fcntl;
    udmabuf_vfs_ioctls => Udmabuf, check_vfs_ioctls;
    udmabuf_unknown_requests_enotty => Udmabuf, check_unknown_requests;
    udmabuf_null_args_efault => Udmabuf, check_null_args;
    udmabuf_malformed_requests_enotty => Udmabuf, check_malformed_requests;
    udmabuf_poll_all_events => Udmabuf, check_poll_all;
    udmabuf_fdinfo_lines => Udmabuf, check_fdinfo_lines;
    sync_file_read_einval => SyncFile, check_read;
    sync_file_write_ebadf => SyncFile, check_write;
    sync_file_pread_pwrite_espipe => SyncFile, check_positional;
    sync_file_lseek_espipe => SyncFile, check_lseek_cur;
    sync_file_fstat_anon_inode => SyncFile, check_fstat;
    sync_file_proc_fd_link => SyncFile, check_path;
    sync_file_fcntl_flags => SyncFile, check_fcntl;
    sync_file_vfs_ioctls => SyncFile, check_vfs_ioctls;
    sync_file_unknown_requests_enotty => SyncFile, check_unknown_requests;
    sync_file_null_args_efault => SyncFile, check_null_args;
    sync_file_malformed_requests_enotty => SyncFile, check_malformed_requests;
    sync_file_poll_signaled => SyncFile, check_poll_all;
    sync_file_fdinfo_lines => SyncFile, check_fdinfo_lines;
    memfd_read_at_the_position => Memfd, check_read;
    memfd_write_at_the_position => Memfd, check_write;
    memfd_pread_pwrite => Memfd, check_positional;
    memfd_lseek_cur_is_the_position => Memfd, check_lseek_cur;
    memfd_fstat_is_a_regular_file => Memfd, check_fstat;
    memfd_proc_fd_link_deleted => Memfd, check_path;
    memfd_fcntl_flags => Memfd, check_fcntl;
    memfd_vfs_ioctls => Memfd, check_vfs_ioctls;
    memfd_unknown_requests_and_fionread => Memfd, check_unknown_requests;
    memfd_null_args_enotty => Memfd, check_null_args;
    memfd_malformed_requests_enotty => Memfd, check_malformed_requests;
    memfd_poll_default_mask => Memfd, check_poll_all;
    memfd_fdinfo_lines => Memfd, check_fdinfo_lines;
}
