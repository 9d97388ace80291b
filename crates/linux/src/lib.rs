//! The dma-buf UAPI over the real Linux kernel: the same calls as the simulator, on real file
//! descriptors.
//!
//! C headers: `include/uapi/linux/dma-buf.h`, `include/uapi/linux/dma-heap.h`,
//! `include/uapi/linux/udmabuf.h`, `include/uapi/linux/sync_file.h`.
//!
//! # The concept
//!
//! On Linux a program shares buffers through fds and a handful of ioctls: it allocates from
//! `/dev/dma_heap/system` (or wraps a memfd with `/dev/udmabuf`), maps the buffer, brackets
//! CPU access with `DMA_BUF_IOCTL_SYNC`, names it, and turns its implicit fences into a sync
//! file. The `seam` crate states that vocabulary as one trait, [`seam::Uapi`]; the `kernel` crate
//! answers it with a simulated kernel; this crate answers it with the running one:
//! [`RealLinux`]. Because both answer the same trait, the conformance suite
//! ([`seam::conformance`]) runs unchanged against both, and every disagreement is a
//! simulator bug (the kernel is the reference). `scripts/kernel-conformance` boots a Debian
//! kernel under qemu to run it where this machine has no heaps; the `conformance` binary
//! (`src/bin/conformance.rs`) is what it runs.
//!
//! # Example
//!
//! ```no_run
//! use seam::{Mapping, Uapi, Errno, DMA_BUF_SYNC_END, DMA_BUF_SYNC_START,
//!                    DMA_BUF_SYNC_WRITE, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE};
//! use linux::RealLinux;
//!
//! let mut p = RealLinux::new();
//! let heap = p.open_heap("system")?; // ENOENT on a machine without dma-heaps
//! let buf = p.heap_alloc(heap, 4096, O_RDWR | O_CLOEXEC, 0)?;
//! let map = p.mmap(buf, 0, 4096, PROT_READ | PROT_WRITE, true)?;
//! p.dma_buf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE)?;
//! map.write(0, b"hello")?;
//! p.dma_buf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE)?;
//! p.dma_buf_set_name(buf, b"greeting")?;
//! # Ok::<(), Errno>(())
//! ```
//!
//! `examples/heap_sync.rs` is the same, with a sync-file export and what to do without a heap.
//!
//! # Where `unsafe` lives
//!
//! The rest of the workspace denies `unsafe_code`. This crate denies it at the root too and
//! allows it in exactly five modules, each saying why in its own doc: [`sys`] (rustix's
//! `ioctl` is `unsafe`, as is adopting an fd number the kernel returned), [`raw`] (an ioctl
//! whose request number is chosen at run time), [`drm`] (the PRIME and vgem ioctls), [`map`]
//! (`mmap` returns a raw address), and [`process`] (`unshare(CLONE_FILES)` for the threads
//! that stand in for extra processes). Every block carries a `// SAFETY:` comment.
//!
//! # Capabilities
//!
//! Nothing is assumed about the machine: without `/dev/dma_heap`, `/dev/udmabuf`, `sw_sync` in
//! debugfs (`CONFIG_SW_SYNC`, which Debian's kernels leave out) or hugetlb pages, the calls
//! answer with the kernel's errno and the conformance cases that need them are skipped with
//! that reason printed.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod child;
pub mod clock;
pub mod drm;
pub mod map;
mod pass;
pub mod process;
pub mod raw;
mod real;
pub mod sys;
mod vgem;
mod vivid;

pub use child::serve_children;
pub use map::RealMapping;
pub use real::{RealLinux, DMA_HEAP_DIR, SW_SYNC_PATH};
pub use vgem::{vgem_present, Vgem};
pub use vivid::Vivid;

/// Whether this machine has what the dma-buf cases need: `(system heap, /dev/udmabuf)`.
///
/// Tests and the example use it to say why they skip.
pub fn devices_present() -> (bool, bool) {
    use seam::Uapi;
    let mut p = RealLinux::new();
    (p.has_heap("system"), p.has_udmabuf())
}
