//! Simulated device drivers over the dma-buf framework.
//!
//! C side: `drivers/gpu/drm` (TTM, amdgpu, PRIME) and `drivers/media` (V4L2 drivers): the code
//! that owns devices, allocates their buffers, exports and imports them as dma-bufs and drives
//! their engines.
//!
//! Each driver is a module of its own, usable alone: it takes a [`dma::DmaApi`] of a
//! [`soc::Soc`], finds its device by name, and talks to the rest of the system only through
//! [`dmabuf::DmaBuf`]s, fences ([`fence::DmaFence`]) and reservation objects.
//!
//! # Tutorial: a GPU renders into a buffer object and exports it
//! ```
//! use drivers::gpu::{checksum, BoDesc, Gpu, GpuConfig, GpuVm, Job, Placement};
//! use dmabuf::testing::mock_dma;
//!
//! let dma = mock_dma();
//! let gpu = Gpu::new(&dma, GpuConfig::default())?;
//! let vm = GpuVm::new(&gpu, "compositor");
//!
//! // Two buffer objects in VRAM; the CPU fills the source.
//! let src = gpu.create_bo(BoDesc::vram("src", 64 << 10))?;
//! let dst = gpu.create_bo(BoDesc::vram("dst", 64 << 10))?;
//! assert_eq!(src.placement(), Some(Placement::Vram));
//! src.write(0, &[7u8; 64 << 10])?;
//!
//! // A copy job on the GPU ring: its fence signals when the bytes moved.
//! let done = gpu.submit(&vm, Job::invert(&src, &dst))?;
//! gpu.wait_idle(&done)?;
//! let mut out = vec![0u8; 64 << 10];
//! dst.read(0, &mut out)?;
//! assert!(out.iter().all(|&b| b == !7u8));
//! assert_eq!(checksum(&out), checksum(&[!7u8; 64 << 10]));
//!
//! // Exported as a dma-buf; importing it back gives the same object (self-import).
//! let buf = gpu.export(&dst)?;
//! assert!(gpu.import(&buf)?.ptr_eq(&dst));
//! assert_eq!(dma.checker().total(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Drivers
//! * [`camera`]: a V4L2 capture device (vivid-like): stamped NV12 frames DMA-written into vb2
//!   buffers, exportable with EXPBUF.
//! * [`isp`]: a memory-to-memory ISP (vicodec/m2m-like): output and capture queues, a 2x NV12
//!   downscale with a CPU reference.
//! * [`gpu`]: a TTM-like GPU: VRAM/GTT/SYSTEM placements with LRU eviction, per-process address
//!   spaces with cached mappings, PRIME export/import, and a ring of jobs with fences.
//! * [`display`]: DRM-style scanout: framebuffers from dma-bufs, page flips that wait on fences,
//!   every shown frame read and verified.
//! * [`decoder`]: a stateful decoder of the encoder's RLE bitstream, through reference frames
//!   it allocates and holds.
//! * [`encoder`]: a V4L2 stateful encoder, raw frames in through its OUTPUT queue, a verifiable
//!   RLE bitstream out through its CAPTURE queue, drained with `V4L2_ENC_CMD_STOP`;
//!   attachable mid-stream.
//! * [`scaler`]: an m2m scaler and format converter (RGA/G2D/PXP-like): a box filter and
//!   BT.601 conversion between the 8-bit formats.
//! * [`swapchain`]: GPU -> display buffer recycling in seed 000's dri2 and wayland modes, growing
//!   on demand and shrinking back.
//! * [`thumbnailer`]: seed 001's software path: mmap + CPU-access bracket, downscale, JPEG.
//! * [`frame`], [`hash`], [`pattern`], [`media`]: NV12 formats, the stamp and the one
//!   checksum, the camera's test patterns, the one DMA time model ([`media::dma_cost`]); vb2
//!   plumbing the drivers share.
//! * [`fault`]: faults a driver can be told to commit (a skipped cache sync or fence wait, an
//!   early release, a wrong DMA direction), to show what they break and what catches them.
//! * [`job`], [`dmaview`]: the drivers' operations as device jobs a scheduler plans, times on
//!   its virtual clock and executes (the scenario runner drives every device through them).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod camera;
pub mod decoder;
pub mod display;
pub mod dmaview;
pub mod encoder;
pub mod fault;
pub mod format;
pub mod frame;
pub mod gpu;
pub mod hash;
pub mod isp;
pub mod job;
pub mod media;
pub mod modifier;
pub mod pattern;
pub mod scaler;
pub mod swapchain;
pub mod thumbnailer;
pub mod vivid;

/// A new fence context on `dma`'s machine (`dma_fence_context_alloc(1)` of that kernel): every
/// driver timeline is numbered per machine, as on a booted kernel.
///
/// Errors: [`fence::FenceError::InvalidArgument`] when the machine's context space is exhausted.
pub(crate) fn machine_fence_context(dma: &dma::DmaApi) -> Result<u64, fence::FenceError> {
    dma.soc()
        .ids()
        .fence_context_alloc(1)
        .ok_or(fence::FenceError::InvalidArgument(
            "fence context space exhausted",
        ))
}
