//! DMA-BUF heaps: user-space allocation of dma-bufs from named memory pools.
//!
//! C side: `drivers/dma-buf/dma-heap.c` (`dma_heap_add`, `dma_heap_ioctl`,
//! `dma_heap_ioctl_allocate`, `dma_heap_buffer_alloc`), `include/uapi/linux/dma-heap.h`; the
//! heaps in `drivers/dma-buf/heaps/`.
//!
//! A heap is a device node, `/dev/dma_heap/<name>`. User space opens it and asks for a buffer
//! with `DMA_HEAP_IOCTL_ALLOC`; it gets a dma-buf fd whose exporter is the heap. Here a heap is a
//! [`DmaHeap`] registered in the [`Kernel`](crate::kernel::Kernel); a process opens it with
//! [`Process::open_heap`] and allocates with [`Process::heap_alloc`] (typed) or
//! [`Process::dma_heap_ioctl`] (the raw ioctl with its argument bytes).
//!
//! # Rules of `DMA_HEAP_IOCTL_ALLOC` (behaviours 88-90)
//! 1. The ioctl number's `_IOC_NR` must be 0, else `EINVAL` (not `ENOTTY`); the type byte is not
//!    checked.
//! 2. The argument may be shorter or longer than the kernel's 24-byte struct: what the caller
//!    did not pass reads as zero, what the kernel does not know is ignored, and exactly the
//!    caller's size is copied back (the selftest's `test_alloc_compat`). A direction without
//!    `_IOC_WRITE` passes nothing in (all zero, so `len` 0 and `EINVAL`).
//! 3. `fd` must be 0 on input, `fd_flags` within `O_CLOEXEC | O_ACCMODE`, `heap_flags` 0 (no heap
//!    flag exists): else `EINVAL`.
//! 4. `len` is rounded up to `PAGE_SIZE`; 0, or a length that wraps to 0, is `EINVAL`.
//! 5. On success `fd` is the new dma-buf fd, installed with `fd_flags` (`O_CLOEXEC` marks the fd,
//!    the access mode becomes the dma-buf file's mode), the buffer's size is the rounded `len`
//!    and its `exp_name` the heap's name. If no fd is free (`EMFILE`) the buffer is released
//!    at once: nothing leaks.
//! 6. An ioctl on an fd that is not a heap is that file's unknown ioctl: `ENOTTY`.
//!
//! # The heaps
//! - [`system::SystemHeap`] (`"system"`): scattered pages, largest orders first, zero-filled.
//! - [`cma::CmaHeap`] (one per CMA region): physically contiguous, zero-filled.
//! - [`carveout::CarveoutHeap`] (`"carveout-<bank>"`): memory without struct pages (seed 002).
//!
//! All three export through [`buffer::HeapBuffer`], the page-list exporter they share with
//! udmabuf.

pub mod buffer;
pub mod carveout;
pub mod cma;
pub mod system;

use crate::file::{Fd, FileObject};
use crate::kernel::errno;
use crate::process::Process;
use dmabuf::buf::DmaBuf;
use dmabuf::error::DmaBufError;
use dmabuf::mmap::CpuMapping;
use soc::{align_up, PAGE_SIZE};
use uapi::ioctl::{
    ioc_dir, ioc_nr, ioc_size, DMA_HEAP_ALLOCATION_DATA_SIZE, DMA_HEAP_VALID_FD_FLAGS,
    DMA_HEAP_VALID_HEAP_FLAGS, IOC_READ, IOC_WRITE, O_CLOEXEC, O_RDONLY,
};
use uapi::Errno;

/// `NUM_HEAP_MINORS`: the most heaps a kernel registers.
pub const DMA_HEAP_MAX_HEAPS: usize = 128;

/// A dma-buf heap (`struct dma_heap` with its `struct dma_heap_ops`).
pub trait DmaHeap: Send + Sync {
    /// The heap's name: its device node is `/dev/dma_heap/<name>`, and its buffers'
    /// `exp_name`.
    fn name(&self) -> &str;

    /// `ops->allocate`: a new dma-buf of `len` bytes (already page aligned and non-zero, rule 4),
    /// its file opened with `fd_flags & O_ACCMODE`. `heap_flags` is 0 (rule 3).
    ///
    /// - Called by [`dma_heap_buffer_alloc`]; mandatory. May block. No lock held.
    /// - Errors: `ENOMEM` when the heap cannot provide the memory; nothing stays allocated.
    fn allocate(&self, len: u64, fd_flags: u32, heap_flags: u64) -> Result<DmaBuf, DmaBufError>;
}

impl std::fmt::Debug for dyn DmaHeap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DmaHeap({})", self.name())
    }
}

/// `struct dma_heap_allocation_data`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaHeapAllocationData {
    /// Size of the allocation in bytes.
    pub len: u64,
    /// Out: the dma-buf fd. Must be 0 on input.
    pub fd: u32,
    /// File flags for the fd: `O_CLOEXEC | O_ACCMODE` bits.
    pub fd_flags: u32,
    /// Heap flags: none defined, must be 0.
    pub heap_flags: u64,
}

impl DmaHeapAllocationData {
    /// Decodes the first `bytes.len()` bytes of the struct (native endian), the rest zero
    /// (rule 2).
    pub fn from_bytes(bytes: &[u8]) -> DmaHeapAllocationData {
        let mut raw = [0u8; DMA_HEAP_ALLOCATION_DATA_SIZE];
        let n = bytes.len().min(raw.len());
        raw[..n].copy_from_slice(&bytes[..n]);
        let u64_at = |o: usize| u64::from_ne_bytes(raw[o..o + 8].try_into().unwrap_or_default());
        let u32_at = |o: usize| u32::from_ne_bytes(raw[o..o + 4].try_into().unwrap_or_default());
        DmaHeapAllocationData {
            len: u64_at(0),
            fd: u32_at(8),
            fd_flags: u32_at(12),
            heap_flags: u64_at(16),
        }
    }

    /// Encodes the struct into the first `out.len()` bytes of `out` (bytes past the kernel's
    /// struct are left as the caller passed them).
    pub fn write_to(&self, out: &mut [u8]) {
        let mut raw = [0u8; DMA_HEAP_ALLOCATION_DATA_SIZE];
        raw[0..8].copy_from_slice(&self.len.to_ne_bytes());
        raw[8..12].copy_from_slice(&self.fd.to_ne_bytes());
        raw[12..16].copy_from_slice(&self.fd_flags.to_ne_bytes());
        raw[16..24].copy_from_slice(&self.heap_flags.to_ne_bytes());
        let n = out.len().min(raw.len());
        out[..n].copy_from_slice(&raw[..n]);
    }
}

/// Checks `fd_flags` and `heap_flags` (rule 3).
pub fn check_alloc_flags(fd_flags: u32, heap_flags: u64) -> Result<(), DmaBufError> {
    if fd_flags & !DMA_HEAP_VALID_FD_FLAGS != 0 {
        return Err(errno(
            Errno::EINVAL,
            format!("DMA_HEAP_IOCTL_ALLOC: fd_flags {fd_flags:#x} outside O_CLOEXEC|O_ACCMODE"),
        ));
    }
    if heap_flags & !DMA_HEAP_VALID_HEAP_FLAGS != 0 {
        return Err(errno(
            Errno::EINVAL,
            format!("DMA_HEAP_IOCTL_ALLOC: unknown heap_flags {heap_flags:#x}"),
        ));
    }
    Ok(())
}

/// `dma_heap_buffer_alloc` without the fd: rounds `len` up to pages (`EINVAL` if that is 0,
/// rule 4) and asks the heap.
pub fn dma_heap_buffer_alloc(
    heap: &dyn DmaHeap,
    len: u64,
    fd_flags: u32,
    heap_flags: u64,
) -> Result<DmaBuf, DmaBufError> {
    // PAGE_ALIGN wraps to 0 near the top of the range; so does `None` here.
    let aligned = align_up(len, PAGE_SIZE).unwrap_or(0);
    if aligned == 0 {
        return Err(errno(
            Errno::EINVAL,
            format!("DMA_HEAP_IOCTL_ALLOC: len {len:#x} rounds to 0 pages"),
        ));
    }
    heap.allocate(aligned, fd_flags, heap_flags)
}

/// `mmap` of a dma-buf on behalf of a process: `MAP_SHARED` is required by exporters that
/// check it (the CMA heap, behaviour 94; udmabuf, behaviour 101), then the core's
/// [`DmaBuf::mmap`].
pub(crate) fn mmap_dma_buf(
    buf: &DmaBuf,
    pgoff: u64,
    len: u64,
    writable: bool,
    shared: bool,
) -> Result<CpuMapping, DmaBufError> {
    if !shared
        && buf
            .exporter_ops::<buffer::HeapBuffer>()
            .is_some_and(|b| b.needs_shared_mmap())
    {
        return Err(errno(
            Errno::EINVAL,
            format!("mmap of a {} buffer without MAP_SHARED", buf.exp_name()),
        ));
    }
    buf.mmap(pgoff, len, writable)
}

impl Process {
    /// `open("/dev/dma_heap/<name>", O_RDONLY | O_CLOEXEC)`, as the selftest opens heaps.
    ///
    /// Errors: `ENOENT` if no heap has that name (the device node does not exist), `EMFILE`.
    pub fn open_heap(&self, name: &str) -> Result<Fd, DmaBufError> {
        self.open_heap_flags(name, O_RDONLY | O_CLOEXEC)
    }

    /// `open("/dev/dma_heap/<name>", flags)`.
    pub fn open_heap_flags(&self, name: &str, flags: u32) -> Result<Fd, DmaBufError> {
        let heap = self.kernel().heap(name).ok_or_else(|| {
            errno(
                Errno::ENOENT,
                format!("/dev/dma_heap/{name} does not exist"),
            )
        })?;
        self.install(FileObject::Heap(heap), flags)
    }

    /// `DMA_HEAP_IOCTL_ALLOC` on `heap_fd`, typed: a new dma-buf fd (module rules 3-6).
    ///
    /// Errors: `EBADF`, `ENOTTY` (not a heap), `EINVAL`, `ENOMEM` (no memory, or past the
    /// process's memcg limit: `crate::memcg`), `EMFILE`.
    pub fn heap_alloc(
        &self,
        heap_fd: Fd,
        len: u64,
        fd_flags: u32,
        heap_flags: u64,
    ) -> Result<Fd, DmaBufError> {
        let file = self.file(heap_fd)?;
        let heap = file.as_heap().ok_or_else(|| {
            errno(
                Errno::ENOTTY,
                format!("fd {heap_fd} is a {}, not a dma-heap", file.object().kind()),
            )
        })?;
        check_alloc_flags(fd_flags, heap_flags)?;
        let buf = dma_heap_buffer_alloc(heap.as_ref(), len, fd_flags, heap_flags)?;
        // Charged at export to the allocating process's memcg; on ENOMEM the buffer is
        // dropped here, its last reference, so it is released.
        crate::memcg::charge_new_buffer(self, &buf)?;
        // On EMFILE the buffer is dropped here: its last reference, so it is released.
        self.install(FileObject::DmaBuf(buf), fd_flags)
    }

    /// The raw heap ioctl: `request` with its argument bytes `arg` (the size encoded in
    /// `request` is what the caller claims; `arg` is the memory it points at). Returns the
    /// ioctl's return value (0) and writes the result back into `arg` (module rules 1-2).
    ///
    /// Errors: `EBADF`; `ENOTTY` on a non-heap fd; `EINVAL` for `_IOC_NR != 0` or a bad
    /// argument; `EFAULT` if `arg` is shorter than the size in `request`; the allocation's errors.
    pub fn dma_heap_ioctl(
        &self,
        heap_fd: Fd,
        request: u32,
        arg: &mut [u8],
    ) -> Result<i32, DmaBufError> {
        let file = self.file(heap_fd)?;
        if file.as_heap().is_none() {
            return Err(errno(
                Errno::ENOTTY,
                format!("fd {heap_fd} is a {}, not a dma-heap", file.object().kind()),
            ));
        }
        if ioc_nr(request) != 0 {
            return Err(errno(
                Errno::EINVAL,
                format!("dma-heap ioctl nr {} does not exist", ioc_nr(request)),
            ));
        }
        let user_size = ioc_size(request);
        if arg.len() < user_size {
            return Err(errno(
                Errno::EFAULT,
                format!("ioctl argument of {} bytes, {user_size} claimed", arg.len()),
            ));
        }
        let dir = ioc_dir(request);
        let in_size = if dir & IOC_WRITE != 0 { user_size } else { 0 };
        let out_size = if dir & IOC_READ != 0 { user_size } else { 0 };
        let mut data = DmaHeapAllocationData::from_bytes(&arg[..in_size]);
        if data.fd != 0 {
            return Err(errno(
                Errno::EINVAL,
                format!("DMA_HEAP_IOCTL_ALLOC: fd {} on input, must be 0", data.fd),
            ));
        }
        let fd = self.heap_alloc(heap_fd, data.len, data.fd_flags, data.heap_flags)?;
        data.fd = fd as u32;
        // The kernel copies back `out_size` bytes of its (zero-extended) copy of the argument.
        let mut out = arg[..in_size].to_vec();
        out.resize(out_size.max(in_size), 0);
        data.write_to(&mut out);
        arg[..out_size].copy_from_slice(&out[..out_size]);
        Ok(0)
    }
}

/// Exports `info` (listed in `registry` if given). If the export fails the exporter's storage
/// is released at once: `DmaBuf::export` does not call `release` for a buffer it never
/// created, and a failed allocation must leak nothing.
pub(crate) fn export(
    dma: &std::sync::Arc<dma::DmaApi>,
    info: dmabuf::buf::ExportInfo,
    registry: Option<&std::sync::Arc<dmabuf::debugfs::BufRegistry>>,
) -> Result<DmaBuf, DmaBufError> {
    let ops = info.ops.clone();
    let release = dmabuf::ops::ReleaseInfo {
        ino: 0,
        size: info.size,
        exp_name: info.exp_name.clone(),
    };
    let res = match registry {
        Some(r) => DmaBuf::export_registered(dma, info, r),
        None => DmaBuf::export(dma, info),
    };
    if res.is_err() {
        ops.release(&release);
    }
    res
}
