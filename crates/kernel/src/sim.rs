//! [`Uapi`] answered by the simulator: one [`SimProcess`] is one simulated [`Process`] on a
//! simulated [`Kernel`].
//!
//! C side: the ioctl dispatchers `dma_buf_ioctl` / `dma_buf_llseek` / `dma_buf_poll` /
//! `dma_buf_show_fdinfo` (`drivers/dma-buf/dma-buf.c`), `sync_file_ioctl`
//! (`drivers/dma-buf/sync_file.c`), `sw_sync_ioctl` (`drivers/dma-buf/sw_sync.c`), and the VFS
//! around them (`fs/read_write.c`, `fs/select.c`, `fs/proc/fd.c`).
//!
//! # The concept
//!
//! The dma-buf core, the heaps, memfds and udmabuf already speak typed Rust
//! ([`DmaBuf::export_sync_file`](dmabuf::DmaBuf::export_sync_file), [`Process::heap_alloc`], ...). This module is the thin layer a
//! system call crosses on Linux: it looks the fd up in the calling process, checks that the file
//! is of the kind the call is for (an ioctl on the wrong kind of file is `ENOTTY`), checks the
//! raw arguments in the kernel's order, calls the typed API, installs any new fd, and turns the
//! typed error into the errno user space sees ([`AsErrno`], then `ERESTARTSYS` -> `EINTR`).
//!
//! # Rules
//!
//! 1. Lookup first: an fd that is not open is `EBADF` for every call except `poll`, which reports
//!    [`POLLNVAL`](seam::POLLNVAL) as Linux does.
//! 2. Dispatch by file kind: dma-buf ioctls on a non-dma-buf, sync-file ioctls on a non-sync-file,
//!    heap ioctls on a non-heap are `ENOTTY`.
//! 3. fdinfo's `count` is the open file's reference count as Linux counts it: one per fd (in
//!    any process) plus one per other holder of the buffer (mappings, attachments, kernel
//!    references) — not the dma-buf's own reference count, because the simulator's fds share
//!    one [`File`], which holds one buffer reference for all of them.
//! 4. Mappings are unmapped when the [`SimMapping`] is dropped.
//! 5. A system-heap allocation that runs the machine out of pages is an OOM kill, not `ENOMEM`
//!    (Linux 6.12, seen in qemu): the process dies, its fds close, and the caller gets `ESRCH`
//!    (`Uapi::child_heap_alloc` shows it as a child killed by `SIGKILL`). Carveout and CMA
//!    heaps still answer `ENOMEM`.
//!
//! # Example
//!
//! ```
//! use kernel::sim::SimProcess;
//! use seam::{Errno, Mapping, Uapi, DMA_BUF_SYNC_END, DMA_BUF_SYNC_START, DMA_BUF_SYNC_WRITE,
//!            O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE, SEEK_END};
//!
//! let mut p = SimProcess::boot()?;
//! let heap = p.open_heap("system")?;
//! let buf = p.heap_alloc(heap, 5000, O_RDWR | O_CLOEXEC, 0)?;
//! assert_eq!(p.lseek(buf, 0, SEEK_END)?, 8192); // rounded up to pages
//! let map = p.mmap(buf, 0, 8192, PROT_READ | PROT_WRITE, true)?;
//! p.dma_buf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE)?;
//! map.write(0, b"hello")?;
//! p.dma_buf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE)?;
//! assert_eq!(p.dma_buf_sync(buf, 0x80), Err(Errno::EINVAL));
//! p.close(buf)?;
//! assert_eq!(p.close(buf), Err(Errno::EBADF));
//! # Ok::<(), Errno>(())
//! ```
//!
//! Two processes sharing a buffer: the fd is passed as with `SCM_RIGHTS`, and the buffer lives
//! as long as any process holds it.
//!
//! ```
//! use kernel::sim::SimProcess;
//! use seam::{Mapping, Uapi, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE};
//!
//! let mut camera = SimProcess::boot()?; // a machine, and a first process on it
//! let mut display = camera.spawn_process()?; // a second process, same kernel
//! let heap = camera.open_heap("system")?;
//! let buf = camera.heap_alloc(heap, 1 << 20, O_RDWR | O_CLOEXEC, 0)?;
//! camera.mmap(buf, 0, 4096, PROT_READ | PROT_WRITE, true)?.write(0, b"frame 1")?;
//! let theirs = camera.send_fd(buf, &mut display)?; // display's own fd, own reference
//! camera.close(buf)?; // the buffer lives on in the display process
//! let mut got = [0u8; 7];
//! display.mmap(theirs, 0, 4096, PROT_READ, true)?.read(0, &mut got)?;
//! assert_eq!(&got, b"frame 1");
//! # Ok::<(), seam::Errno>(())
//! ```

use crate::file::{File, FileObject};
use crate::kernel::Kernel;
use crate::process::{Process, UserMapping};
use crate::udmabuf::UdmabufItem;
use dma::DmaDirection;
use dmabuf::error::DmaBufError;
use fence::{SwSyncTimeline, SyncFile};
use seam::{Errno, Fd, Mapping, SyncFileInfo, SyncMergeData, Uapi};
use soc::PAGE_SIZE;
use std::sync::Arc;
use uapi::ioctl::*;
use uapi::AsErrno;

/// The errno user space sees for a typed error.
fn user(e: DmaBufError) -> Errno {
    e.errno().to_user()
}

/// A simulated process, seen through the system-call seam.
#[derive(Debug, Clone)]
pub struct SimProcess {
    proc: Arc<Process>,
    /// The process's vgem fences ([`crate::vgem_fence`]), shared by the clones of this value.
    fences: Arc<crate::vgem_fence::FenceSource>,
}

impl SimProcess {
    /// The seam over an existing process.
    pub fn new(proc: Arc<Process>) -> SimProcess {
        SimProcess {
            proc,
            fences: Arc::new(crate::vgem_fence::FenceSource::new()),
        }
    }

    /// Boots a kernel on the default SoC ([`soc::SocDesc::default_soc`]) and spawns a process
    /// on it.
    ///
    /// Errors: what booting the machine reports (never, for the default description).
    pub fn boot() -> Result<SimProcess, Errno> {
        let kernel = Kernel::boot(soc::SocDesc::default_soc()).map_err(user)?;
        Ok(SimProcess::new(kernel.spawn()))
    }

    /// The process.
    pub fn process(&self) -> &Arc<Process> {
        &self.proc
    }

    /// The kernel the process runs on.
    pub fn kernel(&self) -> &Arc<Kernel> {
        self.proc.kernel()
    }

    /// `exit`: closes every fd and unmaps every mapping of the process.
    pub fn exit(&self) {
        self.proc.exit();
    }

    /// The open file behind `fd`, or `EBADF`.
    pub(crate) fn file(&self, fd: Fd) -> Result<Arc<File>, Errno> {
        self.proc.file(fd).map_err(user)
    }

    fn dma_buf(&self, fd: Fd) -> Result<(Arc<File>, dmabuf::buf::DmaBuf), Errno> {
        let file = self.file(fd)?;
        let buf = file.as_dma_buf().cloned().ok_or(Errno::ENOTTY)?;
        Ok((file, buf))
    }

    /// A dma-buf ioctl sent to a dma-heap fd. `dma_heap_ioctl` looks only at `_IOC_NR`
    /// (behaviour 90), so the heap serves it as whatever its number means there: nr 0 is an
    /// ALLOC of the argument's bytes (the real kernel allocates and installs an fd it never
    /// reports back, for `DMA_BUF_IOCTL_SYNC`), any other nr is `EINVAL`. `None` when `fd` is
    /// not a heap.
    fn heap_ioctl(&self, fd: Fd, request: u32, arg: &mut [u8]) -> Option<Result<(), Errno>> {
        self.file(fd).ok()?.as_heap()?;
        Some(
            self.proc
                .dma_heap_ioctl(fd, request, arg)
                .map(|_| ())
                .map_err(user),
        )
    }

    fn sync_file(&self, fd: Fd) -> Result<Arc<SyncFile>, Errno> {
        let file = self.file(fd)?;
        file.as_sync_file().cloned().ok_or(Errno::ENOTTY)
    }

    fn timeline(&self, fd: Fd) -> Result<Arc<SwSyncTimeline>, Errno> {
        match self.file(fd)?.object() {
            FileObject::SwSync(t) => Ok(t.clone()),
            _ => Err(Errno::ENOTTY),
        }
    }

    /// The OOM kill (rule 5): an allocation from the system heap that ran the machine out of
    /// pages (`ENOMEM` from the page allocator) kills the allocating process — every fd closes,
    /// every mapping goes — and the call reports `ESRCH`, as every later call on the process
    /// does (on Linux the call never returns).
    pub(crate) fn oom_kill_on<T>(&self, heap_fd: Fd, r: Result<T, Errno>) -> Result<T, Errno> {
        let system_pages = self
            .file(heap_fd)
            .ok()
            .and_then(|f| f.as_heap().map(|h| h.name() == "system"))
            .unwrap_or(false);
        match r {
            Err(Errno::ENOMEM) if system_pages => {
                self.proc.exit();
                Err(Errno::ESRCH)
            }
            other => other,
        }
    }

    /// Installs a new sync file at the lowest free fd, `O_CLOEXEC` as the kernel does.
    fn install_sync_file(&self, sf: SyncFile) -> Result<Fd, Errno> {
        let obj = FileObject::SyncFile(Arc::new(sf));
        self.proc.install(obj, O_RDONLY | O_CLOEXEC).map_err(user)
    }
}

/// A mapping made by [`SimProcess`]'s `mmap`; dropping it unmaps it.
#[derive(Debug)]
pub struct SimMapping {
    proc: Arc<Process>,
    map: UserMapping,
    prot: u32,
}

impl Mapping for SimMapping {
    fn len(&self) -> u64 {
        self.map.len()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if self.prot & (PROT_READ | PROT_WRITE) == 0 {
            return Err(Errno::EACCES);
        }
        self.map.read(offset, buf).map_err(user)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        if self.prot & PROT_WRITE == 0 {
            return Err(Errno::EACCES);
        }
        self.map.write(offset, data).map_err(user)
    }
}

impl Drop for SimMapping {
    fn drop(&mut self) {
        // Already gone if the process exited: nothing left to unmap.
        let _ = self.proc.munmap(&self.map);
    }
}

impl Uapi for SimProcess {
    type Map = SimMapping;

    fn open_heap(&mut self, name: &str) -> Result<Fd, Errno> {
        if !seam::is_heap_name(name) {
            return Err(Errno::ENOENT);
        }
        self.proc.open_heap(name).map_err(user)
    }

    fn heap_names(&mut self) -> Result<Vec<String>, Errno> {
        let mut names = self.kernel().heap_names();
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
        let r = self.proc.heap_alloc(heap_fd, len, fd_flags, heap_flags);
        self.oom_kill_on(heap_fd, r.map_err(user))
    }

    fn memfd_create(&mut self, name: &str, flags: u32) -> Result<Fd, Errno> {
        self.proc.memfd_create(name, flags).map_err(user)
    }

    fn ftruncate(&mut self, fd: Fd, len: u64) -> Result<(), Errno> {
        self.proc.ftruncate(fd, len).map_err(user)
    }

    fn pwrite(&mut self, fd: Fd, offset: u64, bytes: &[u8]) -> Result<usize, Errno> {
        super::sim_vfs::positional(&*self.file(fd)?)?;
        self.proc.pwrite(fd, offset, bytes).map_err(user)
    }

    fn pread(&mut self, fd: Fd, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        super::sim_vfs::positional(&*self.file(fd)?)?;
        self.proc.pread(fd, offset, len).map_err(user)
    }

    fn add_seals(&mut self, fd: Fd, seals: u32) -> Result<(), Errno> {
        self.proc.add_seals(fd, seals).map_err(user)
    }

    fn has_udmabuf(&mut self) -> bool {
        udmabuf_available()
    }

    fn udmabuf_create(
        &mut self,
        memfd: Fd,
        offset: u64,
        size: u64,
        flags: u32,
    ) -> Result<Fd, Errno> {
        udmabuf_create_list(&self.proc, flags, &[(memfd, offset, size)])
    }

    fn udmabuf_create_list(&mut self, flags: u32, items: &[(Fd, u64, u64)]) -> Result<Fd, Errno> {
        udmabuf_create_list(&self.proc, flags, items)
    }

    fn dma_buf_sync(&mut self, fd: Fd, flags: u64) -> Result<(), Errno> {
        if let Some(r) = self.heap_ioctl(fd, DMA_BUF_IOCTL_SYNC, &mut flags.to_ne_bytes()) {
            return r;
        }
        let (_file, buf) = self.dma_buf(fd)?;
        if flags & !DMA_BUF_SYNC_VALID_FLAGS_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        let dir = match flags & DMA_BUF_SYNC_RW {
            DMA_BUF_SYNC_READ => DmaDirection::FromDevice,
            DMA_BUF_SYNC_WRITE => DmaDirection::ToDevice,
            DMA_BUF_SYNC_RW => DmaDirection::Bidirectional,
            _ => return Err(Errno::EINVAL),
        };
        if flags & DMA_BUF_SYNC_END != 0 {
            buf.end_cpu_access(dir).map_err(user)
        } else {
            buf.begin_cpu_access_interruptible(dir, None).map_err(user)
        }
    }

    fn dma_buf_set_name(&mut self, fd: Fd, name: &[u8]) -> Result<(), Errno> {
        if let Some(r) = self.heap_ioctl(fd, DMA_BUF_SET_NAME_B, &mut [0u8; 8]) {
            return r;
        }
        let (_file, buf) = self.dma_buf(fd)?;
        buf.set_name(name).map_err(user)
    }

    fn export_sync_file(&mut self, fd: Fd, flags: u32) -> Result<Fd, Errno> {
        if let Some(r) = self.heap_ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &mut [0u8; 8]) {
            // nr 2 is never an ALLOC: the heap answers EINVAL.
            return Err(r.err().unwrap_or(Errno::EINVAL));
        }
        let (_file, buf) = self.dma_buf(fd)?;
        let sf = buf.export_sync_file(flags).map_err(user)?;
        self.install_sync_file(sf)
    }

    fn import_sync_file(&mut self, fd: Fd, flags: u32, sync_fd: Fd) -> Result<(), Errno> {
        if let Some(r) = self.heap_ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &mut [0u8; 8]) {
            return r;
        }
        let (_file, buf) = self.dma_buf(fd)?;
        let rw = u64::from(flags);
        if rw & !DMA_BUF_SYNC_RW != 0 || rw & DMA_BUF_SYNC_RW == 0 {
            return Err(Errno::EINVAL);
        }
        // sync_file_get_fence: anything but an open sync file is EINVAL, not EBADF.
        let sf = self.sync_file(sync_fd).map_err(|_| Errno::EINVAL)?;
        buf.import_sync_file(flags, &sf).map_err(user)
    }

    fn sync_merge_ioctl(&mut self, fd: Fd, data: &mut SyncMergeData) -> Result<Fd, Errno> {
        let sf = self.sync_file(fd)?;
        let other = self.sync_file(data.fd2).ok();
        let merged = sf
            .ioctl_merge(data, other.as_deref())
            .map_err(|e| e.errno())?;
        let new = self.install_sync_file(merged)?;
        data.fence = new;
        Ok(new)
    }

    fn sync_file_info_ioctl(&mut self, fd: Fd, info: &mut SyncFileInfo) -> Result<(), Errno> {
        let sf = self.sync_file(fd)?;
        sf.ioctl_file_info(info).map_err(|e| e.errno())
    }

    fn sw_sync_open(&mut self) -> Result<Fd, Errno> {
        let soc = self.proc.kernel().soc();
        let context = soc.ids().fence_context_alloc(1).ok_or(Errno::ENOMEM)?;
        let tl = SwSyncTimeline::on(soc.clock().clone(), context, "sim");
        let obj = FileObject::SwSync(Arc::new(tl));
        self.proc.install(obj, O_RDWR).map_err(user)
    }

    fn sw_sync_create_fence(&mut self, timeline: Fd, value: u32) -> Result<Fd, Errno> {
        let tl = self.timeline(timeline)?;
        self.install_sync_file(tl.create_sync_file(value))
    }

    fn sw_sync_inc(&mut self, timeline: Fd, n: u32) -> Result<(), Errno> {
        self.timeline(timeline)?.inc(n);
        Ok(())
    }

    fn mmap(
        &mut self,
        fd: Fd,
        offset: u64,
        len: u64,
        prot: u32,
        shared: bool,
    ) -> Result<SimMapping, Errno> {
        mmap_prechecks(offset, len)?;
        let map = self
            .proc
            .mmap(fd, offset, len, prot, shared)
            .map_err(user)?;
        Ok(SimMapping {
            proc: self.proc.clone(),
            map,
            prot,
        })
    }

    fn lseek(&mut self, fd: Fd, offset: i64, whence: u32) -> Result<u64, Errno> {
        self.file_llseek(fd, offset, whence)
    }

    fn poll(&mut self, fd: Fd, events: u16, timeout_ms: i32) -> Result<u16, Errno> {
        self.file_poll(fd, events, timeout_ms)
    }

    fn dup(&mut self, fd: Fd) -> Result<Fd, Errno> {
        self.proc.dup(fd).map_err(user)
    }

    fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        self.proc.close(fd).map_err(user)
    }

    fn fdinfo(&mut self, fd: Fd) -> Result<String, Errno> {
        self.file_fdinfo(fd)
    }

    fn fence_attach(&mut self, buf: Fd, write: bool) -> Result<u32, Errno> {
        // drm_gem_prime_fd_to_handle: dma_buf_get, so EBADF for a closed fd, EINVAL otherwise.
        let buf = self.proc.get_dma_buf(buf).map_err(user)?;
        self.fences.attach(&buf, write)
    }

    fn fence_signal(&mut self, fence: u32) -> Result<(), Errno> {
        self.fences.signal(fence)
    }

    fn ioctl(&mut self, fd: Fd, request: u32, arg: Option<&mut [u8]>) -> Result<i32, Errno> {
        self.vfs_ioctl(fd, request, arg)
    }

    fn read(&mut self, fd: Fd, len: usize) -> Result<Vec<u8>, Errno> {
        super::sim_vfs::read(&*self.file(fd)?, len)
    }

    fn write(&mut self, fd: Fd, bytes: &[u8]) -> Result<usize, Errno> {
        super::sim_vfs::write(&*self.file(fd)?, bytes)
    }

    fn fstat(&mut self, fd: Fd) -> Result<seam::Stat, Errno> {
        Ok(super::sim_vfs::stat(&*self.file(fd)?))
    }

    fn fd_path(&mut self, fd: Fd) -> Result<String, Errno> {
        Ok(super::sim_vfs::path(&*self.file(fd)?))
    }

    fn fcntl_getfl(&mut self, fd: Fd) -> Result<u32, Errno> {
        Ok(super::sim_vfs::status_flags(&*self.file(fd)?))
    }

    fn fcntl_getfd(&mut self, fd: Fd) -> Result<u32, Errno> {
        let cloexec = self.proc.cloexec(fd).map_err(user)?;
        Ok(u32::from(cloexec))
    }

    fn bufinfo(&mut self) -> Result<String, Errno> {
        Ok(super::sim_vfs::bufinfo(self.kernel()))
    }

    fn child_heap_alloc(&mut self, heap: &str, len: u64) -> Result<seam::ChildExit, Errno> {
        let mut child = SimProcess::new(self.kernel().spawn());
        let h = child.open_heap(heap)?;
        let r = child.heap_alloc(h, len, O_RDWR | O_CLOEXEC, 0);
        let alive = child.proc.is_alive();
        child.exit();
        Ok(match r {
            Ok(_) => seam::ChildExit::Exited(0),
            Err(_) if !alive => seam::ChildExit::Killed(seam::SIGKILL),
            Err(e) => seam::ChildExit::Exited(e.raw()),
        })
    }

    fn spawn_process(&mut self) -> Result<SimProcess, Errno> {
        Ok(SimProcess::new(self.kernel().spawn()))
    }

    fn send_fd(&mut self, fd: Fd, to: &mut SimProcess) -> Result<Fd, Errno> {
        self.proc.send_fd(fd, &to.proc).map_err(user)
    }
}

/// The largest user address space of any Linux port (`TASK_SIZE`, 52-bit virtual addresses).
const TASK_SIZE: u64 = 1 << 52;

/// The checks `sys_mmap` and `do_mmap` make before looking at the file, in their order: an
/// unaligned offset or a zero length is `EINVAL`; a length that overflows when page-aligned,
/// or does not fit the address space, is `ENOMEM`; a page range that wraps is `EOVERFLOW`.
fn mmap_prechecks(offset: u64, len: u64) -> Result<(), Errno> {
    if !offset.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(Errno::EINVAL);
    }
    let aligned = len
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(Errno::ENOMEM)?;
    let pgoff = offset / PAGE_SIZE;
    pgoff
        .checked_add(aligned / PAGE_SIZE)
        .ok_or(Errno::EOVERFLOW)?;
    if aligned > TASK_SIZE {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// Whether the simulator has `/dev/udmabuf`: it always does.
fn udmabuf_available() -> bool {
    true
}

/// `UDMABUF_CREATE_LIST` (and `UDMABUF_CREATE`, as a list of one). The `memfd` field is a `__u32`
/// in the kernel's struct; a negative fd is a number no table holds, so `EBADFD`.
fn udmabuf_create_list(proc: &Process, flags: u32, items: &[(Fd, u64, u64)]) -> Result<Fd, Errno> {
    let items: Vec<UdmabufItem> = items
        .iter()
        .map(|&(memfd, offset, size)| UdmabufItem {
            memfd,
            offset,
            size,
        })
        .collect();
    proc.udmabuf_create_list(flags, &items).map_err(user)
}

/// Free memory of a machine, for leak checks: pages free in the buddy zones (CMA included)
/// and bytes free in the carveout pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeMemory {
    /// Free pages over all zones, CMA ranges included.
    pub pages: u64,
    /// Free bytes over all carveout pools.
    pub pool_bytes: u64,
}

/// What is free on `kernel`'s machine now. After every process has exited and every mapping
/// is gone, this is what it was at boot — or a buffer leaked (or was freed twice).
pub fn free_memory(kernel: &Kernel) -> FreeMemory {
    let soc = kernel.soc();
    let stats = soc.pages().stats();
    let pages = stats
        .zones
        .iter()
        .map(|z| z.free_pages + z.cma_free_pages)
        .sum();
    let pool_bytes = soc
        .mem()
        .banks()
        .iter()
        .filter_map(|b| soc.pool(b.id()))
        .map(|p| p.avail())
        .sum();
    FreeMemory { pages, pool_bytes }
}
