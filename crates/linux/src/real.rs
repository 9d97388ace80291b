//! [`Uapi`] answered by the running kernel: [`RealLinux`].
//!
//! C side: the system calls themselves — `ioctl(2)` on `/dev/dma_heap/<name>`, `/dev/udmabuf`,
//! dma-bufs and sync files; `memfd_create(2)`, `ftruncate(2)`, `pread(2)`/`pwrite(2)`,
//! `fcntl(2)` `F_ADD_SEALS`, `mmap(2)`, `lseek(2)`, `poll(2)`, `dup(2)`, `close(2)`;
//! `proc(5)` for `/proc/thread-self/fdinfo/<fd>`; `sw_sync` in debugfs
//! (`/sys/kernel/debug/sync/sw_sync`, `drivers/dma-buf/sw_sync.c`).
//!
//! # The concept
//!
//! Every method makes the one call its [`Uapi`] doc names, on the fd table of the process the
//! value stands for ([`crate::process`]), and returns the kernel's errno unchanged. The
//! kernel does the checking; this layer only translates: Rust arguments to the C structs
//! ([`crate::sys`]), fds the kernel returns to [`OwnedFd`]s kept until [`Uapi::close`], and
//! `rustix` errors to [`Errno`].
//!
//! # Where the seam answers without the kernel
//!
//! A few arguments cannot be passed to the kernel as the seam states them; each is answered
//! with what the kernel answers for it:
//! 1. a negative fd: `EBADF` (`poll` reports nothing for it, as `poll(2)` ignores negative fds);
//! 2. a heap name that is empty, `.`, `..` or holds a `/`: `ENOENT` (the path would name a
//!    directory, not a heap);
//! 3. an `lseek` `whence` above `SEEK_HOLE`: `EBADF` if the fd is not open, else `EINVAL`
//!    (`ksys_lseek` checks `whence <= SEEK_MAX` after the fd lookup);
//! 4. `close` of an fd the seam did not open: `EBADF` ([`crate::process`] rule 3).

use crate::map::RealMapping;
use crate::process::{Exec, Files, Worker};
use crate::sys::{self, errno, SyncFenceInfoC, SyncFileInfoC, SyncMergeDataC};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fd::OwnedFd;
use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags, SeekFrom};
use seam::{Fd, Stat, SyncFenceInfo, SyncFileInfo, SyncMergeData, Uapi};
use std::path::Path;
use uapi::Errno;

/// Where the heaps' device nodes live.
pub const DMA_HEAP_DIR: &str = "/dev/dma_heap";
/// Where debugfs lists every dma-buf (`dma_buf_debug_show`).
pub const BUFINFO_PATH: &str = "/sys/kernel/debug/dma_buf/bufinfo";
/// Where debugfs exposes `sw_sync` (needs `CONFIG_SW_SYNC` and a mounted debugfs).
pub const SW_SYNC_PATH: &str = "/sys/kernel/debug/sync/sw_sync";

/// One process on the running Linux kernel, seen through the dma-buf system calls.
///
/// [`RealLinux::new`] speaks for the calling process itself; [`Uapi::spawn_process`] gives
/// another "process" with an fd table of its own (a thread after `unshare(CLONE_FILES)`; see
/// [`crate::process`] for what it shares and what it does not).
///
/// Fds created through it are owned by it and closed when it is dropped.
///
/// ```
/// use seam::{Uapi, Errno, SEEK_END};
/// use linux::RealLinux;
///
/// let mut p = RealLinux::new();
/// let m = p.memfd_create("demo", 0)?;
/// p.ftruncate(m, 8192)?;
/// assert_eq!(p.lseek(m, 0, SEEK_END)?, 8192);
/// // The memfd is not a dma-buf: the dma-buf ioctl is unknown to it.
/// assert_eq!(p.dma_buf_sync(m, 1), Err(Errno::ENOTTY));
/// p.close(m)?;
/// assert_eq!(p.close(m), Err(Errno::EBADF));
/// # Ok::<(), Errno>(())
/// ```
#[derive(Debug)]
pub struct RealLinux {
    exec: Exec,
}

impl Default for RealLinux {
    fn default() -> Self {
        RealLinux::new()
    }
}

impl RealLinux {
    /// The calling process. Opens `/dev/udmabuf` (close-on-exec) if it exists, once, so that
    /// later calls never take an fd number for it.
    pub fn new() -> RealLinux {
        RealLinux {
            exec: Exec::Here(Files::new()),
        }
    }

    /// Whether `sw_sync` can be opened (a kernel with `CONFIG_SW_SYNC` and debugfs mounted).
    pub fn has_sw_sync(&mut self) -> bool {
        match self.sw_sync_open() {
            Ok(fd) => {
                let _ = self.close(fd);
                true
            }
            Err(_) => false,
        }
    }

    fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Files) -> Result<T, Errno> + Send + 'static,
    ) -> Result<T, Errno> {
        self.exec.run(f)
    }

    /// Runs `f` on the fd numbered `fd` in this process's table.
    fn on<T: Send + 'static>(
        &mut self,
        fd: Fd,
        f: impl FnOnce(rustix::fd::BorrowedFd<'_>) -> Result<T, Errno> + Send + 'static,
    ) -> Result<T, Errno> {
        self.run(move |files| files.with(fd, f))
    }

    /// Runs `f` on the fd numbered `fd` and records the fd it returns.
    fn on_new(
        &mut self,
        fd: Fd,
        f: impl FnOnce(rustix::fd::BorrowedFd<'_>) -> Result<OwnedFd, Errno> + Send + 'static,
    ) -> Result<Fd, Errno> {
        self.run(move |files| {
            let new = files.with(fd, f)?;
            Ok(files.insert(new))
        })
    }

    /// Opens `path` and records the fd.
    fn open_path(&mut self, path: String, flags: OFlags) -> Result<Fd, Errno> {
        self.run(move |files| {
            let fd = rustix::fs::open(path.as_str(), flags, Mode::empty()).map_err(errno)?;
            Ok(files.insert(fd))
        })
    }
}

/// A C string field (`char name[32]`) as Rust text, up to the first NUL.
fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn fence_info(c: &SyncFenceInfoC) -> SyncFenceInfo {
    SyncFenceInfo {
        obj_name: c_text(&c.obj_name),
        driver_name: c_text(&c.driver_name),
        status: c.status,
        flags: c.flags,
        timestamp_ns: c.timestamp_ns,
    }
}

impl Uapi for RealLinux {
    type Map = RealMapping;

    fn open_heap(&mut self, name: &str) -> Result<Fd, Errno> {
        if !seam::is_heap_name(name) {
            return Err(Errno::ENOENT);
        }
        self.open_path(
            format!("{DMA_HEAP_DIR}/{name}"),
            OFlags::RDONLY | OFlags::CLOEXEC,
        )
    }

    fn heap_names(&mut self) -> Result<Vec<String>, Errno> {
        let dir = std::fs::read_dir(DMA_HEAP_DIR).map_err(io_errno)?;
        let mut names: Vec<String> = dir
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    fn heap_alloc(
        &mut self,
        heap_fd: Fd,
        len: u64,
        fd_flags: u32,
        heap_flags: u64,
    ) -> Result<Fd, Errno> {
        self.on_new(heap_fd, move |heap| {
            sys::heap_alloc(heap, len, fd_flags, heap_flags)
        })
    }

    fn memfd_create(&mut self, name: &str, flags: u32) -> Result<Fd, Errno> {
        let name = name.to_owned();
        self.run(move |files| {
            let flags = MemfdFlags::from_bits_retain(flags);
            let fd = rustix::fs::memfd_create(name.as_str(), flags).map_err(errno)?;
            Ok(files.insert(fd))
        })
    }

    fn ftruncate(&mut self, fd: Fd, len: u64) -> Result<(), Errno> {
        if i64::try_from(len).is_err() {
            return Err(Errno::EINVAL);
        }
        self.on(fd, move |fd| rustix::fs::ftruncate(fd, len).map_err(errno))
    }

    fn pwrite(&mut self, fd: Fd, offset: u64, bytes: &[u8]) -> Result<usize, Errno> {
        let bytes = bytes.to_vec();
        self.on(fd, move |fd| {
            rustix::io::pwrite(fd, &bytes, offset).map_err(errno)
        })
    }

    fn pread(&mut self, fd: Fd, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        self.on(fd, move |fd| {
            let mut buf = vec![0u8; len];
            let n = rustix::io::pread(fd, &mut buf[..], offset).map_err(errno)?;
            buf.truncate(n);
            Ok(buf)
        })
    }

    fn add_seals(&mut self, fd: Fd, seals: u32) -> Result<(), Errno> {
        self.on(fd, move |fd| {
            rustix::fs::fcntl_add_seals(fd, SealFlags::from_bits_retain(seals)).map_err(errno)
        })
    }

    fn has_udmabuf(&mut self) -> bool {
        self.run(|files| Ok(files.udmabuf().is_ok()))
            .unwrap_or(false)
    }

    fn udmabuf_create(
        &mut self,
        memfd: Fd,
        offset: u64,
        size: u64,
        flags: u32,
    ) -> Result<Fd, Errno> {
        self.run(move |files| {
            let new = sys::udmabuf_create(files.udmabuf()?, memfd, offset, size, flags)?;
            Ok(files.insert(new))
        })
    }

    fn udmabuf_create_list(&mut self, flags: u32, items: &[(Fd, u64, u64)]) -> Result<Fd, Errno> {
        let items = items.to_vec();
        self.run(move |files| {
            let new = sys::udmabuf_create_list(files.udmabuf()?, flags, &items)?;
            Ok(files.insert(new))
        })
    }

    fn dma_buf_sync(&mut self, fd: Fd, flags: u64) -> Result<(), Errno> {
        self.on(fd, move |fd| sys::dma_buf_sync(fd, flags))
    }

    fn dma_buf_set_name(&mut self, fd: Fd, name: &[u8]) -> Result<(), Errno> {
        let mut name = name.to_vec();
        name.push(0);
        self.on(fd, move |fd| sys::dma_buf_set_name(fd, &name))
    }

    fn export_sync_file(&mut self, fd: Fd, flags: u32) -> Result<Fd, Errno> {
        self.on_new(fd, move |fd| sys::export_sync_file(fd, flags))
    }

    fn import_sync_file(&mut self, fd: Fd, flags: u32, sync_fd: Fd) -> Result<(), Errno> {
        self.on(fd, move |fd| sys::import_sync_file(fd, flags, sync_fd))
    }

    fn sync_merge_ioctl(&mut self, fd: Fd, data: &mut SyncMergeData) -> Result<Fd, Errno> {
        let mut c = SyncMergeDataC {
            name: data.name,
            fd2: data.fd2,
            fence: data.fence,
            flags: data.flags,
            pad: data.pad,
        };
        let (new, c) = self.run(move |files| {
            let new = files.with(fd, |fd| sys::sync_merge(fd, &mut c))?;
            Ok((files.insert(new), c))
        })?;
        data.fence = c.fence;
        Ok(new)
    }

    fn sync_file_info_ioctl(&mut self, fd: Fd, info: &mut SyncFileInfo) -> Result<(), Errno> {
        let (flags, pad, slots) = (info.flags, info.pad, info.num_fences as usize);
        let (c, entries) = self.on(fd, move |fd| {
            let mut c = SyncFileInfoC {
                name: [0; 32],
                status: 0,
                flags,
                num_fences: 0,
                pad,
                sync_fence_info: 0,
            };
            let empty = SyncFenceInfoC {
                obj_name: [0; 32],
                driver_name: [0; 32],
                status: 0,
                flags: 0,
                timestamp_ns: 0,
            };
            let mut entries = vec![empty; slots];
            sys::sync_file_info(fd, &mut c, &mut entries)?;
            Ok((c, entries))
        })?;
        info.name = c_text(&c.name);
        info.status = c.status;
        info.flags = c.flags;
        info.num_fences = c.num_fences;
        info.pad = c.pad;
        info.sync_fence_info = if slots == 0 {
            Vec::new()
        } else {
            let filled = (c.num_fences as usize).min(slots);
            entries[..filled].iter().map(fence_info).collect()
        };
        Ok(())
    }

    fn sw_sync_open(&mut self) -> Result<Fd, Errno> {
        self.open_path(SW_SYNC_PATH.to_owned(), OFlags::RDWR | OFlags::CLOEXEC)
    }

    fn sw_sync_create_fence(&mut self, timeline: Fd, value: u32) -> Result<Fd, Errno> {
        self.on_new(timeline, move |tl| sys::sw_sync_create_fence(tl, value))
    }

    fn sw_sync_inc(&mut self, timeline: Fd, n: u32) -> Result<(), Errno> {
        self.on(timeline, move |tl| sys::sw_sync_inc(tl, n))
    }

    fn mmap(
        &mut self,
        fd: Fd,
        offset: u64,
        len: u64,
        prot: u32,
        shared: bool,
    ) -> Result<RealMapping, Errno> {
        self.on(fd, move |fd| {
            RealMapping::map(fd, offset, len, prot, shared)
        })
    }

    fn lseek(&mut self, fd: Fd, offset: i64, whence: u32) -> Result<u64, Errno> {
        let pos = match whence {
            0 => SeekFrom::Start(offset as u64),
            1 => SeekFrom::Current(offset),
            2 => SeekFrom::End(offset),
            3 => SeekFrom::Data(offset as u64),
            4 => SeekFrom::Hole(offset as u64),
            _ => {
                // Rule 3 of the module doc: EBADF first, then EINVAL.
                self.on(fd, |fd| rustix::io::fcntl_getfd(fd).map_err(errno))?;
                return Err(Errno::EINVAL);
            }
        };
        self.on(fd, move |fd| rustix::fs::seek(fd, pos).map_err(errno))
    }

    fn poll(&mut self, fd: Fd, events: u16, timeout_ms: i32) -> Result<u16, Errno> {
        if fd < 0 {
            return Ok(0);
        }
        self.on(fd, move |fd| {
            let mut fds = [PollFd::from_borrowed_fd(
                fd,
                PollFlags::from_bits_retain(events),
            )];
            let timeout = (timeout_ms >= 0).then(|| Timespec {
                tv_sec: i64::from(timeout_ms / 1000),
                tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
            });
            rustix::event::poll(&mut fds, timeout.as_ref()).map_err(errno)?;
            Ok(fds[0].revents().bits())
        })
    }

    fn dup(&mut self, fd: Fd) -> Result<Fd, Errno> {
        self.on_new(fd, |fd| rustix::io::dup(fd).map_err(errno))
    }

    fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        self.run(move |files| files.close(fd))
    }

    fn fdinfo(&mut self, fd: Fd) -> Result<String, Errno> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        // Read on the table's own thread: /proc/thread-self is that thread's view.
        self.run(move |_| {
            let path = format!("/proc/thread-self/fdinfo/{fd}");
            std::fs::read_to_string(Path::new(&path)).map_err(|e| match io_errno(e) {
                Errno::ENOENT => Errno::EBADF,
                other => other,
            })
        })
    }

    fn fence_attach(&mut self, buf: Fd, write: bool) -> Result<u32, Errno> {
        self.run(move |files| {
            let flags = if write {
                crate::drm::VGEM_FENCE_WRITE
            } else {
                0
            };
            let card = files.vgem().map_err(|_| Errno::ENOSYS)?;
            let handle = crate::drm::prime_fd_to_handle(card, buf)?;
            let r = crate::drm::vgem_fence_attach(card, handle, flags);
            // The fence lives in the buffer's reservation object and vgem's fence table; the
            // handle is not needed any more (this DRM file is private to the seam).
            let _ = crate::drm::gem_close(card, handle);
            r
        })
    }

    fn fence_signal(&mut self, fence: u32) -> Result<(), Errno> {
        self.run(move |files| {
            let card = files.vgem().map_err(|_| Errno::ENOSYS)?;
            crate::drm::vgem_fence_signal(card, fence)
        })
    }

    fn ioctl(&mut self, fd: Fd, request: u32, arg: Option<&mut [u8]>) -> Result<i32, Errno> {
        let mut bytes = arg.as_ref().map(|a| a.to_vec());
        let (r, back) = self.run(move |files| {
            let before = Files::open_numbers()?;
            let r = files.with(fd, |fd| {
                crate::raw::ioctl_bytes(fd, request, bytes.as_deref_mut())
            });
            if r.is_ok() {
                files.adopt_new(&before)?;
            }
            Ok((r, bytes))
        })?;
        if let (Some(arg), Some(back)) = (arg, back) {
            arg.copy_from_slice(&back);
        }
        r
    }

    fn read(&mut self, fd: Fd, len: usize) -> Result<Vec<u8>, Errno> {
        self.on(fd, move |fd| {
            let mut buf = vec![0u8; len];
            let n = rustix::io::read(fd, &mut buf[..]).map_err(errno)?;
            buf.truncate(n);
            Ok(buf)
        })
    }

    fn write(&mut self, fd: Fd, bytes: &[u8]) -> Result<usize, Errno> {
        let bytes = bytes.to_vec();
        self.on(fd, move |fd| rustix::io::write(fd, &bytes).map_err(errno))
    }

    fn fstat(&mut self, fd: Fd) -> Result<Stat, Errno> {
        self.on(fd, |fd| {
            let st = rustix::fs::fstat(fd).map_err(errno)?;
            Ok(Stat {
                mode: st.st_mode,
                size: st.st_size as u64,
                blksize: st.st_blksize as u64,
                blocks: st.st_blocks as u64,
                nlink: st.st_nlink,
                ino: st.st_ino,
            })
        })
    }

    fn fd_path(&mut self, fd: Fd) -> Result<String, Errno> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        self.run(move |_| {
            rustix::fs::readlink(format!("/proc/thread-self/fd/{fd}"), Vec::new())
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(|e| match errno(e) {
                    Errno::ENOENT => Errno::EBADF,
                    other => other,
                })
        })
    }

    fn fcntl_getfl(&mut self, fd: Fd) -> Result<u32, Errno> {
        self.on(fd, |fd| {
            rustix::fs::fcntl_getfl(fd).map(|f| f.bits()).map_err(errno)
        })
    }

    fn fcntl_getfd(&mut self, fd: Fd) -> Result<u32, Errno> {
        self.on(fd, |fd| {
            rustix::io::fcntl_getfd(fd).map(|f| f.bits()).map_err(errno)
        })
    }

    fn bufinfo(&mut self) -> Result<String, Errno> {
        std::fs::read_to_string(BUFINFO_PATH).map_err(io_errno)
    }

    fn child_heap_alloc(&mut self, heap: &str, len: u64) -> Result<seam::ChildExit, Errno> {
        crate::child::child_heap_alloc(heap, len)
    }

    fn spawn_process(&mut self) -> Result<Self, Errno> {
        Ok(RealLinux {
            exec: Exec::Thread(Worker::spawn()?),
        })
    }

    fn send_fd(&mut self, fd: Fd, to: &mut Self) -> Result<Fd, Errno> {
        crate::pass::send_fd(self, fd, to)
    }
}

impl RealLinux {
    /// Crate-internal access to the executor, for [`crate::pass`].
    pub(crate) fn exec(&mut self) -> &mut Exec {
        &mut self.exec
    }
}

/// A `std::io::Error` from a system call as an [`Errno`].
pub(crate) fn io_errno(e: std::io::Error) -> Errno {
    e.raw_os_error()
        .and_then(Errno::from_raw)
        .unwrap_or(Errno::EIO)
}
