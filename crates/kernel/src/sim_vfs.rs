//! The simulator's answers to the plain system calls on any fd: `ioctl` with any request,
//! `read`/`write`, `fstat`, the `/proc/self/fd` link, `fcntl(F_GETFL/F_GETFD)` — the VFS layer
//! a call crosses before (or instead of) the file's own driver.
//!
//! C side: `fs/ioctl.c` (`do_vfs_ioctl`, then `vfs_ioctl`), `fs/read_write.c` (`vfs_read`,
//! `vfs_write`, `ksys_pread64`), `fs/stat.c`, `fs/fcntl.c`, `fs/proc/fd.c`, the drivers'
//! `unlocked_ioctl`s (`dma_buf_ioctl`, `sync_file_ioctl`, `dma_heap_ioctl`, `udmabuf_ioctl`).
//!
//! # Rules (Linux 6.12, as found in qemu; the table in [`seam::syscalls`])
//!
//! 1. `ioctl`: `FIOCLEX`, `FIONCLEX`, `FIONBIO`, `FIOASYNC` and `FIGETBSZ` are answered for
//!    every file; `FIONREAD` and `FS_IOC_GETFLAGS` for regular files (memfds); anything else
//!    goes to the driver by the file's kind. Drivers match the *whole* request number, so a
//!    known command with another size or direction is `ENOTTY` — except a heap, which decodes
//!    only `_IOC_NR` (behaviour 90). A null argument a call reads is `EFAULT`.
//! 2. `read`/`write`: a file not open for that direction is `EBADF`; a file without the
//!    operation is `EINVAL`; memfds read and write at the shared file position.
//! 3. `pread`/`pwrite` on a file opened without `FMODE_PREAD` (dma-bufs, sync files, heap nodes:
//!    `nonseekable_open`) is `ESPIPE`, checked before the access mode.
//! 4. `F_GETFL` shows `O_LARGEFILE` on files `open(2)` or `memfd_create(2)` made (heap nodes,
//!    memfds, `/dev/udmabuf`, the sw_sync file), never on dma-bufs or sync files.
//! 5. Inode numbers: a dma-buf's is its [`DmaBuf::ino`](dmabuf::DmaBuf::ino) (counted
//!    per machine from 1); all sync files share one anonymous inode.

use crate::file::{File, FileObject};
use crate::sim::SimProcess;
use seam::syscalls::*;
use seam::{Errno, Fd, SyncMergeData};
use std::sync::Arc;
use uapi::ioctl::*;
use uapi::AsErrno;

/// The inode number of the anonymous inode every sync file shares (`anon_inode_inode`). Its
/// value is whatever the boot gave it (65 in the qemu run the table was taken from); only its
/// sharing is observable.
const ANON_INODE_INO: u64 = 65;
/// The block size every file system here reports (`FIGETBSZ`, `st_blksize`).
const BLOCK_SIZE: u64 = 4096;
/// Mount ids as `/proc/<pid>/fdinfo` printed them in the qemu run (the dmabuf pseudo file
/// system, the anon-inode one, devtmpfs, and the internal shmem mount of memfds).
const MNT_DMABUF: u32 = 12;
const MNT_ANON: u32 = 17;
const MNT_DEVTMPFS: u32 = 25;
const MNT_SHM: u32 = 0;

/// Whether the file was made by `open(2)`/`memfd_create(2)` (rule 4).
fn opened_by_path(obj: &FileObject) -> bool {
    !matches!(obj, FileObject::DmaBuf(_) | FileObject::SyncFile(_))
}

/// `f_flags` as `fcntl(F_GETFL)` shows them (rule 4).
pub(super) fn status_flags(file: &File) -> u32 {
    file.flags()
        | if opened_by_path(file.object()) {
            O_LARGEFILE
        } else {
            0
        }
}

/// The `mnt_id:` of the file's fdinfo.
pub(super) fn mount_id(obj: &FileObject) -> u32 {
    match obj {
        FileObject::DmaBuf(_) => MNT_DMABUF,
        FileObject::SyncFile(_) => MNT_ANON,
        FileObject::Memfd(_) => MNT_SHM,
        _ => MNT_DEVTMPFS,
    }
}

/// `fstat` of an open file.
pub(super) fn stat(file: &File) -> Stat {
    let chr = |ino| Stat {
        mode: S_IFCHR | 0o600,
        size: 0,
        blksize: BLOCK_SIZE,
        blocks: 0,
        nlink: 1,
        ino,
    };
    match file.object() {
        FileObject::DmaBuf(b) => Stat {
            mode: 0o600,
            size: b.size(),
            blksize: BLOCK_SIZE,
            blocks: b.size() / 512,
            nlink: 1,
            ino: b.ino(),
        },
        FileObject::SyncFile(_) => Stat {
            mode: 0o600,
            size: 0,
            blksize: BLOCK_SIZE,
            blocks: 0,
            nlink: 1,
            ino: ANON_INODE_INO,
        },
        FileObject::Memfd(m) => Stat {
            mode: S_IFREG | 0o777,
            size: m.size(),
            blksize: BLOCK_SIZE,
            blocks: m.resident_bytes() / 512,
            nlink: 0,
            ino: m.ino(),
        },
        FileObject::SwSync(_) => Stat {
            mode: S_IFREG | 0o644,
            ..chr(3)
        },
        FileObject::Heap(_) => chr(94),
        FileObject::Udmabuf => chr(95),
        FileObject::Device(_) => chr(108),
        FileObject::Tty => Stat {
            mode: S_IFCHR | 0o620,
            ..chr(5)
        },
    }
}

/// The `/proc/self/fd/<n>` link of an open file.
pub(super) fn path(file: &File) -> String {
    match file.object() {
        FileObject::DmaBuf(b) => format!("/dmabuf:{}", b.name().unwrap_or_default()),
        FileObject::SyncFile(_) => "anon_inode:sync_file".into(),
        // The memfd keeps the name procfs shows, `memfd:<name>`.
        FileObject::Memfd(m) => format!("/{} (deleted)", m.name()),
        FileObject::Heap(h) => format!("/dev/dma_heap/{}", h.name()),
        FileObject::Udmabuf => "/dev/udmabuf".into(),
        FileObject::SwSync(_) => "/sys/kernel/debug/sync/sw_sync".into(),
        FileObject::Tty => "/dev/console".into(),
        FileObject::Device(d) => d.path(),
    }
}

/// `read(fd, len)` (rule 2).
pub(super) fn read(file: &File, len: usize) -> Result<Vec<u8>, Errno> {
    if !file.readable() {
        return Err(Errno::EBADF);
    }
    let FileObject::Memfd(m) = file.object() else {
        return Err(Errno::EINVAL);
    };
    let got = m.pread(file.pos(), len).map_err(|e| e.errno().to_user())?;
    file.set_pos(file.pos() + got.len() as u64);
    Ok(got)
}

/// `write(fd, bytes)` (rule 2).
pub(super) fn write(file: &File, bytes: &[u8]) -> Result<usize, Errno> {
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    let FileObject::Memfd(m) = file.object() else {
        return Err(Errno::EINVAL);
    };
    if bytes.is_empty() {
        return Ok(0);
    }
    let n = m
        .pwrite(file.pos(), bytes)
        .map_err(|e| e.errno().to_user())?;
    file.set_pos(file.pos() + n as u64);
    Ok(n)
}

/// Whether `pread`/`pwrite` may be tried on the file (`FMODE_PREAD`, rule 3).
pub(super) fn positional(file: &File) -> Result<(), Errno> {
    match file.object() {
        FileObject::Memfd(_) | FileObject::Udmabuf | FileObject::Tty | FileObject::Device(_) => {
            Ok(())
        }
        _ => Err(Errno::ESPIPE),
    }
}

fn get_int(arg: Option<&[u8]>) -> Result<i32, Errno> {
    let b = arg.ok_or(Errno::EFAULT)?;
    Ok(i32::from_ne_bytes(
        b[..4].try_into().map_err(|_| Errno::EFAULT)?,
    ))
}

fn put_int(arg: Option<&mut [u8]>, v: i32) -> Result<i32, Errno> {
    let b = arg.ok_or(Errno::EFAULT)?;
    b.get_mut(..4)
        .ok_or(Errno::EFAULT)?
        .copy_from_slice(&v.to_ne_bytes());
    Ok(0)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl SimProcess {
    /// `ioctl(fd, request, arg)` (rule 1): the argument as the kernel sees it, at least
    /// `_IOC_SIZE(request)` bytes, copied back afterwards.
    pub(super) fn vfs_ioctl(
        &mut self,
        fd: Fd,
        request: u32,
        arg: Option<&mut [u8]>,
    ) -> Result<i32, Errno> {
        let file = self.process().file(fd).map_err(|e| e.errno().to_user())?;
        match arg {
            None => self.dispatch(fd, &file, request, None),
            Some(user) => {
                let mut k = user.to_vec();
                k.resize(user.len().max(ioc_size(request)), 0);
                let r = self.dispatch(fd, &file, request, Some(&mut k));
                let n = user.len();
                user.copy_from_slice(&k[..n]);
                r
            }
        }
    }

    fn dispatch(
        &mut self,
        fd: Fd,
        file: &Arc<File>,
        request: u32,
        arg: Option<&mut [u8]>,
    ) -> Result<i32, Errno> {
        let proc = self.process().clone();
        match request {
            FIOCLEX | FIONCLEX => {
                proc.set_cloexec(fd, request == FIOCLEX)
                    .map_err(|e| e.errno().to_user())?;
                return Ok(0);
            }
            FIONBIO => {
                file.set_nonblock(get_int(arg.as_deref())? != 0);
                return Ok(0);
            }
            FIOASYNC => {
                // No file here has `fasync`: switching O_ASYNC on is ENOTTY, leaving it off is 0.
                return if get_int(arg.as_deref())? != 0 {
                    Err(Errno::ENOTTY)
                } else {
                    Ok(0)
                };
            }
            FIGETBSZ => return put_int(arg, BLOCK_SIZE as i32),
            _ => {}
        }
        if let FileObject::Memfd(m) = file.object() {
            return match request {
                FIONREAD => put_int(arg, m.size().saturating_sub(file.pos()) as i32),
                // shmem's fileattr_get: no attribute flags set on a memfd.
                FS_IOC_GETFLAGS => put_int(arg, 0),
                _ => Err(Errno::ENOTTY),
            };
        }
        match file.object() {
            FileObject::DmaBuf(_) => self.dma_buf_driver(fd, request, arg),
            FileObject::SyncFile(_) => self.sync_file_driver(fd, request, arg),
            FileObject::Heap(_) => self.heap_driver(fd, request, arg),
            FileObject::Udmabuf => self.udmabuf_driver(request, arg),
            _ => Err(Errno::ENOTTY),
        }
    }

    /// `dma_buf_ioctl`: whole request numbers only; `DMA_BUF_SET_NAME`'s argument is the
    /// string (`strndup_user` of at most 32 bytes with the NUL).
    fn dma_buf_driver(
        &mut self,
        fd: Fd,
        request: u32,
        arg: Option<&mut [u8]>,
    ) -> Result<i32, Errno> {
        use seam::Uapi;
        match request {
            DMA_BUF_IOCTL_SYNC => {
                let b = arg.ok_or(Errno::EFAULT)?;
                self.dma_buf_sync(fd, u64_at(b, 0)).map(|()| 0)
            }
            DMA_BUF_SET_NAME_A | DMA_BUF_SET_NAME_B => {
                let b = arg.ok_or(Errno::EFAULT)?;
                let end = b
                    .iter()
                    .take(DMA_BUF_NAME_LEN)
                    .position(|&c| c == 0)
                    .ok_or(Errno::EINVAL)?;
                self.dma_buf_set_name(fd, &b[..end]).map(|()| 0)
            }
            DMA_BUF_IOCTL_EXPORT_SYNC_FILE => {
                let b = arg.ok_or(Errno::EFAULT)?;
                let new = self.export_sync_file(fd, u32_at(b, 0))?;
                b[4..8].copy_from_slice(&new.to_ne_bytes());
                Ok(0)
            }
            DMA_BUF_IOCTL_IMPORT_SYNC_FILE => {
                let b = arg.ok_or(Errno::EFAULT)?;
                self.import_sync_file(fd, u32_at(b, 0), u32_at(b, 4) as i32)
                    .map(|()| 0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    /// `sync_file_ioctl`: `SYNC_IOC_MERGE`, `SYNC_IOC_FILE_INFO`, `SYNC_IOC_SET_DEADLINE`.
    fn sync_file_driver(
        &mut self,
        fd: Fd,
        request: u32,
        arg: Option<&mut [u8]>,
    ) -> Result<i32, Errno> {
        use seam::Uapi;
        match request {
            SYNC_IOC_MERGE => {
                let b = arg.ok_or(Errno::EFAULT)?;
                let mut data = SyncMergeData {
                    name: b[..32].try_into().expect("32 bytes"),
                    fd2: u32_at(b, 32) as i32,
                    fence: u32_at(b, 36) as i32,
                    flags: u32_at(b, 40),
                    pad: u32_at(b, 44),
                };
                self.sync_merge_ioctl(fd, &mut data)?;
                b[36..40].copy_from_slice(&data.fence.to_ne_bytes());
                Ok(0)
            }
            SYNC_IOC_FILE_INFO => {
                let b = arg.ok_or(Errno::EFAULT)?;
                let mut info = seam::SyncFileInfo {
                    flags: u32_at(b, 36),
                    num_fences: u32_at(b, 40),
                    pad: u32_at(b, 44),
                    ..Default::default()
                };
                let room = info.num_fences;
                self.sync_file_info_ioctl(fd, &mut info)?;
                if room != 0 {
                    // The entries go to the user pointer at offset 48, which the simulator
                    // cannot follow (module doc of `syscalls`).
                    return Err(Errno::EFAULT);
                }
                let name = uapi::sync_file::name_to_c(&info.name);
                b[..32].copy_from_slice(&name);
                b[32..36].copy_from_slice(&info.status.to_ne_bytes());
                b[40..44].copy_from_slice(&info.num_fences.to_ne_bytes());
                Ok(0)
            }
            SYNC_IOC_SET_DEADLINE => {
                let b = arg.ok_or(Errno::EFAULT)?;
                if u64_at(b, 8) != 0 {
                    return Err(Errno::EINVAL);
                }
                let file = self.process().file(fd).map_err(|e| e.errno().to_user())?;
                if let Some(sf) = file.as_sync_file() {
                    sf.set_deadline(u64_at(b, 0));
                }
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    /// `dma_heap_ioctl`: only `_IOC_NR` is decoded; the user's size and direction decide how
    /// much is copied in and out (behaviour 90).
    fn heap_driver(&mut self, fd: Fd, request: u32, arg: Option<&mut [u8]>) -> Result<i32, Errno> {
        if ioc_nr(request) != 0 {
            return Err(Errno::EINVAL);
        }
        let size = ioc_size(request);
        let mut zero;
        let arg = match arg {
            Some(b) => b,
            // copy_from_user of in_size bytes from NULL faults unless nothing is copied in.
            None if ioc_dir(request) & IOC_WRITE != 0 && size > 0 => return Err(Errno::EFAULT),
            None => {
                zero = vec![0u8; size];
                &mut zero[..]
            }
        };
        let r = self
            .process()
            .dma_heap_ioctl(fd, request, arg)
            .map_err(|e| e.errno().to_user());
        self.oom_kill_on(fd, r)
    }

    /// `udmabuf_ioctl`: `UDMABUF_CREATE` and `UDMABUF_CREATE_LIST`; the new fd is the value.
    fn udmabuf_driver(&mut self, request: u32, arg: Option<&mut [u8]>) -> Result<i32, Errno> {
        use seam::Uapi;
        match request {
            UDMABUF_CREATE => {
                let b = arg.ok_or(Errno::EFAULT)?;
                self.udmabuf_create(
                    u32_at(b, 0) as i32,
                    u64_at(b, 8),
                    u64_at(b, 16),
                    u32_at(b, 4),
                )
            }
            UDMABUF_CREATE_LIST => {
                let b = arg.ok_or(Errno::EFAULT)?;
                let (flags, count) = (u32_at(b, 0), u32_at(b, 4) as usize);
                if count as u32 > UDMABUF_LIST_LIMIT {
                    return Err(Errno::EINVAL);
                }
                if b.len() < 8 + 24 * count {
                    return Err(Errno::EFAULT);
                }
                let items: Vec<(Fd, u64, u64)> = (0..count)
                    .map(|i| {
                        let at = 8 + 24 * i;
                        (u32_at(b, at) as i32, u64_at(b, at + 8), u64_at(b, at + 16))
                    })
                    .collect();
                self.udmabuf_create_list(flags, &items)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
}

/// debugfs `bufinfo` of the machine, with the count column as Linux counts it
/// (`file_count(dmabuf->file)`): one per fd in any process, plus every other holder of the
/// buffer (mappings, attachments' references, kernel users) — the same rule as fdinfo's
/// `count` (rule 3 of [`crate::sim`]).
pub(super) fn bufinfo(kernel: &crate::kernel::Kernel) -> String {
    let mut files: Vec<Arc<File>> = Vec::new();
    for p in kernel.processes() {
        for fd in p.fds() {
            if let Ok(f) = p.file(fd) {
                if f.as_dma_buf().is_some() && !files.iter().any(|g| Arc::ptr_eq(g, &f)) {
                    files.push(f);
                }
            }
        }
    }
    kernel.registry().bufinfo_with(|b| {
        let mine: Vec<&Arc<File>> = files
            .iter()
            .filter(|f| f.as_dma_buf().map(|x| x.ino()) == Some(b.ino()))
            .collect();
        // Each held Arc<File> is one of ours; the DmaBuf `b` is the listing's own clone.
        let fd_refs: usize = mine.iter().map(|f| Arc::strong_count(f) - 1).sum();
        fd_refs + b.ref_count().saturating_sub(1 + mine.len())
    })
}
