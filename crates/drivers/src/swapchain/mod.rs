//! A swapchain between the GPU and the display, in both of seed 000's modes, with a number of
//! buffers that follows the pipeline's latency instead of being fixed up front.
//!
//! C side: the user-space protocols on top of DRM/KMS — DRI2 (`DRI2GetBuffers` /
//! `DRI2SwapBuffers`, the X server owns the buffers) and Wayland (`wl_surface.attach` +
//! `commit`, `wl_buffer.release`; the client owns them, allocated with GBM) — over
//! [`crate::gpu`] (the client's rendering, with per-process VMs and job fences) and
//! [`crate::display`] (page flips that wait on those fences).
//!
//! # The concept (seed 000)
//! "All modern linux apis for pushing frames out use one of two modes: gimme the next frame to
//! draw into (dri2); here's the next frame I've drawn into (wayland)." From the producer's point
//! of view there is only ever one buffer, the current one; the others are transparently in
//! flight (queued for a flip, scanned out). "There's just no way to know the amount of buffers
//! you need up-front": the swapchain allocates a new buffer whenever the producer asks and
//! every buffer is in flight, until allocation fails (`ENOMEM`) — then the producer waits for a
//! vblank to release one — and frees spare buffers again once the pipeline has caught up.
//!
//! # The two modes
//! * [`SwapMode::Dri2`]: the **display side** allocates (from a dma-heap, by default the CMA
//!   heap scanout needs without an IOMMU), creates the framebuffer at once, and hands the buffer
//!   to the client, whose GPU imports it ([`Gpu::import`]) and renders into it.
//! * [`SwapMode::Wayland`]: the **client** allocates GPU objects ([`Gpu::create_bo`], GTT) and
//!   exports them ([`Gpu::export`]); the compositor imports a buffer the first time it is
//!   committed (`add_fb`), which may move it to memory the display can scan out (the GPU
//!   exporter honours the display's needs). Releases come back at vblank.
//!
//! # Rules
//! 1. A buffer is `Free`, `Drawing` (acquired), `Queued` (presented, flip pending) or `Scanout`;
//!    in flight means drawn or queued (the buffer on screen is shown, not in flight: real KMS
//!    scans it out until the next flip latches). Only `Free` buffers are handed out, so the
//!    producer never draws into a buffer the display reads.
//! 2. [`Swapchain::acquire`] reuses the free buffer idle the shortest time; with none free it
//!    allocates (up to [`SwapchainConfig::max_buffers`]); if allocation fails with `ENOMEM` (or
//!    `EBUSY`: the GPU found nothing it could evict now) it returns `Ok(None)`: the producer
//!    waits ([`SwapchainStats::waits`]).
//! 3. [`Swapchain::present`] queues the flip with the render fence: the display shows the frame
//!    only after the GPU finished it. The display takes one flip at a time, so the swapchain
//!    keeps the presented frames in order and flips the next once the pending one latched.
//! 4. [`Swapchain::vblank`] runs the display's vblank, marks the released buffers free, and
//!    frees every free buffer idle for [`SwapchainConfig::shrink_after`] vblanks while more than
//!    [`SwapchainConfig::min_buffers`] exist.
//! 5. With [`SwapchainConfig::max_in_flight`] set, the producer waits while that many buffers
//!    are in flight, free buffers or not (a compositor's bound on queued frames).
//!
//! # The policy, the chain, the swapchain
//! Rules 2, 4 and 5 — when to grow, when to shrink, when the producer waits — are
//! [`SwapchainPolicy`], a value with no buffers of its own. [`Chain`] owns the buffers: it
//! allocates them (the GPU exporter, a dma-heap), follows their states and applies the policy.
//! [`Swapchain`] is a chain plus the display it flips; a scheduler driving KMS itself (the
//! scenario runner's gpu->display links) owns a [`Chain`] and tells it each acquire, present,
//! latch and release, so there is one implementation of seed 000's swapchain.

mod chain;
mod policy;

pub use chain::{Acquire, Chain, ChainAlloc, ChainBuffer};
pub use policy::SwapchainPolicy;

use crate::display::{Display, Expect, FbId, Vblank};
use crate::frame::FrameFormat;
use crate::gpu::{Gpu, GpuBo, GpuVm, Job, Placement};
use crate::media::MediaError;
use fence::DmaFence;
use kernel::Kernel;
use std::collections::BTreeMap;
use std::sync::Arc;
use uapi::{AsErrno, Errno};

/// Who allocates and when the display learns of a buffer (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SwapMode {
    /// "Give me the next buffer to draw into": the display side allocates.
    Dri2,
    /// "Here is the next buffer I drew": the client allocates.
    Wayland,
}

/// How a [`Swapchain`] is set up.
#[derive(Clone, Debug)]
pub struct SwapchainConfig {
    /// The mode.
    pub mode: SwapMode,
    /// The frame format.
    pub format: FrameFormat,
    /// Dri2: the dma-heap the display side allocates from (default `"cma0"`).
    pub heap: String,
    /// A cap on buffers, whatever memory says (default 16).
    pub max_buffers: usize,
    /// Buffers kept however idle (default 2: one shown, one drawn).
    pub min_buffers: usize,
    /// Vblanks a free buffer stays before it is freed (default 4).
    pub shrink_after: u64,
    /// At most this many buffers in flight (rule 5); `None`: only `max_buffers` bounds them.
    pub max_in_flight: Option<usize>,
}

impl SwapchainConfig {
    /// A swapchain of `format` in `mode` with the defaults.
    pub fn new(mode: SwapMode, format: FrameFormat) -> SwapchainConfig {
        SwapchainConfig {
            mode,
            format,
            heap: "cma0".into(),
            max_buffers: 16,
            min_buffers: SwapchainPolicy::DEFAULT_MIN_BUFFERS,
            shrink_after: SwapchainPolicy::DEFAULT_SHRINK_AFTER,
            max_in_flight: None,
        }
    }

    /// The sizing policy of this configuration.
    pub fn policy(&self) -> SwapchainPolicy {
        SwapchainPolicy {
            min_buffers: self.min_buffers,
            max_buffers: self.max_buffers,
            shrink_after: self.shrink_after,
            max_in_flight: self.max_in_flight,
        }
    }
}

/// Swapchain counters: what the report shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwapchainStats {
    /// Buffers allocated.
    pub allocations: u64,
    /// Of those, buffers allocated past the ones the chain starts with (it grew).
    pub grown: u64,
    /// Buffers freed by shrinking.
    pub frees: u64,
    /// Allocations that failed with `ENOMEM` or `EBUSY`.
    pub alloc_failures: u64,
    /// Times the producer had to wait (rule 2).
    pub waits: u64,
    /// Frames presented.
    pub presented: u64,
    /// The most buffers in flight at once.
    pub max_in_flight: usize,
    /// The most buffers that existed at once.
    pub max_buffers: usize,
}

/// A buffer's state (rule 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Available to the producer.
    Free,
    /// Handed to the producer.
    Drawing,
    /// Presented; its flip is queued.
    Queued,
    /// Being scanned out.
    Scanout,
}

/// The buffer the producer draws into, from [`Swapchain::acquire`]; give it back with
/// [`Swapchain::present`].
#[derive(Debug)]
pub struct BackBuffer {
    id: u64,
    bo: GpuBo,
}

impl BackBuffer {
    /// The GPU object to render into.
    pub fn bo(&self) -> &GpuBo {
        &self.bo
    }
}

/// A GPU -> display swapchain (module documentation): a [`Chain`] and the display it flips.
pub struct Swapchain {
    gpu: Gpu,
    vm: GpuVm,
    display: Arc<Display>,
    cfg: SwapchainConfig,
    chain: Chain,
    /// Per buffer: the client's GPU object of it and its framebuffer (made at allocation in
    /// DRI2, at the first present in Wayland).
    bufs: BTreeMap<u64, (GpuBo, Option<FbId>)>,
    /// Presented frames not flipped yet (rule 3): `(buffer id, fb, render fence, expect)`.
    pending: std::collections::VecDeque<(u64, FbId, Option<DmaFence>, Expect)>,
    next_id: u64,
    vblanks: u64,
}

impl std::fmt::Debug for Swapchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swapchain")
            .field("mode", &self.cfg.mode)
            .field("states", &self.states())
            .field("stats", &self.stats())
            .finish()
    }
}

/// An allocation failure the producer waits out: no memory, or (GPU) nothing evictable now.
fn must_wait(e: &MediaError) -> bool {
    matches!(e.errno(), Errno::ENOMEM | Errno::EBUSY)
}

impl Swapchain {
    /// A swapchain rendering with `gpu` in a VM of its own (the client process's) and showing on
    /// `display`, whose format must be `cfg.format` (`EINVAL` otherwise). No buffer yet.
    pub fn new(
        kernel: &Arc<Kernel>,
        gpu: &Gpu,
        display: Arc<Display>,
        cfg: SwapchainConfig,
    ) -> Result<Swapchain, MediaError> {
        if display.format() != cfg.format {
            return Err(MediaError::Invalid(format!(
                "the display shows {}, the swapchain makes {}",
                display.format(),
                cfg.format
            )));
        }
        if cfg.max_buffers == 0 {
            return Err(MediaError::Invalid("max_buffers must be at least 1".into()));
        }
        let alloc = match cfg.mode {
            SwapMode::Dri2 => ChainAlloc::Heap {
                kernel: kernel.clone(),
                heap: cfg.heap.clone(),
                process: None,
                fd_flags: uapi::ioctl::O_RDWR,
            },
            SwapMode::Wayland => ChainAlloc::Gpu {
                gpu: gpu.clone(),
                placement: Placement::Gtt,
                group: None,
                registry: None,
            },
        };
        Ok(Swapchain {
            vm: GpuVm::new(gpu, &format!("{:?}-client", cfg.mode)),
            gpu: gpu.clone(),
            display,
            chain: Chain::new(cfg.policy(), alloc),
            cfg,
            bufs: BTreeMap::new(),
            pending: std::collections::VecDeque::new(),
            next_id: 0,
            vblanks: 0,
        })
    }

    /// Counters.
    pub fn stats(&self) -> SwapchainStats {
        self.chain.stats()
    }

    /// Buffers that exist.
    pub fn buffers(&self) -> usize {
        self.chain.len()
    }

    /// Buffers in flight (drawn or queued; the one on screen is shown).
    pub fn in_flight(&self) -> usize {
        self.chain.in_flight(self.vblanks)
    }

    /// Every buffer's state, oldest buffer first.
    pub fn states(&self) -> Vec<SlotState> {
        self.chain.states()
    }

    /// The client's GPU address space.
    pub fn vm(&self) -> &GpuVm {
        &self.vm
    }

    /// The display.
    pub fn display(&self) -> &Arc<Display> {
        &self.display
    }

    /// One more buffer: the chain allocates it; DRI2 makes its framebuffer at once and the
    /// client imports it.
    fn allocate(&mut self) -> Result<u64, MediaError> {
        let size = self.cfg.format.size() as u64;
        let id = self.next_id;
        let (mode, display, gpu) = (self.cfg.mode, &self.display, &self.gpu);
        let (_, (bo, fb)) = self.chain.allocate_with(
            id,
            &format!("swapchain-{id}"),
            size,
            self.vblanks,
            |made| match mode {
                SwapMode::Dri2 => {
                    let fb = display.add_fb(&made.buf)?;
                    match gpu.import(&made.buf) {
                        Ok(bo) => Ok((bo, Some(fb))),
                        Err(e) => {
                            let _ = display.rm_fb(fb);
                            Err(e.into())
                        }
                    }
                }
                SwapMode::Wayland => made
                    .bo
                    .clone()
                    .map(|bo| (bo, None))
                    .ok_or_else(|| MediaError::Invalid("the GPU made no object".into())),
            },
        )?;
        self.next_id += 1;
        self.bufs.insert(id, (bo, fb));
        Ok(id)
    }

    /// The next buffer to draw into (rule 2): `Ok(None)` means "wait for a vblank".
    pub fn acquire(&mut self) -> Result<Option<BackBuffer>, MediaError> {
        let now = self.vblanks;
        let id = match self.chain.plan(now) {
            Acquire::Reuse(id) => id,
            Acquire::Grow => match self.allocate() {
                Ok(id) => id,
                Err(e) if must_wait(&e) => {
                    self.chain.waited();
                    return Ok(None);
                }
                Err(e) => return Err(e),
            },
            Acquire::Bound | Acquire::Exhausted => {
                self.chain.waited();
                return Ok(None);
            }
        };
        let bo = self
            .bufs
            .get(&id)
            .map(|b| b.0.clone())
            .ok_or_else(|| MediaError::Invalid(format!("buffer {id} has no GPU object")))?;
        self.chain.take(id, now)?;
        Ok(Some(BackBuffer { id, bo }))
    }

    /// The producer's drawing: a GPU job in the client's VM copying `scene` into `back`.
    /// Returns the job's fence.
    pub fn render(&self, back: &BackBuffer, scene: &GpuBo) -> Result<DmaFence, MediaError> {
        Ok(self.gpu.submit(&self.vm, Job::copy(scene, &back.bo))?)
    }

    /// "Here is the frame I drew" (rule 3): queues the flip of `back` after `fence`, verified
    /// with `expect`. In Wayland mode the first present of a buffer imports it into the
    /// display; if that fails the buffer is dropped and the error returned.
    pub fn present(
        &mut self,
        back: BackBuffer,
        fence: Option<DmaFence>,
        expect: Expect,
    ) -> Result<(), MediaError> {
        let id = back.id;
        if self.chain.state(id) != Some(SlotState::Drawing) {
            return Err(MediaError::Invalid(format!(
                "buffer {id} was not acquired here"
            )));
        }
        let fb = match self.bufs.get(&id).and_then(|b| b.1) {
            Some(fb) => fb,
            None => {
                let added = match self.chain.buffer(id) {
                    Some((buf, _)) => self.display.add_fb(buf),
                    None => Err(MediaError::Invalid(format!("buffer {id} is gone"))),
                };
                match added {
                    Ok(fb) => {
                        if let Some(b) = self.bufs.get_mut(&id) {
                            b.1 = Some(fb);
                        }
                        fb
                    }
                    Err(e) => {
                        self.chain.forget(id);
                        if let Some((bo, _)) = self.bufs.remove(&id) {
                            let _ = self.vm.unmap(&bo);
                        }
                        return Err(e);
                    }
                }
            }
        };
        self.chain.present(id, self.vblanks)?;
        self.pending.push_back((id, fb, fence, expect));
        self.flip_next()
    }

    /// The display takes one flip at a time (`EBUSY` otherwise): the oldest presented frame is
    /// flipped once no flip is pending.
    fn flip_next(&mut self) -> Result<(), MediaError> {
        if self.display.queued_flips() > 0 {
            return Ok(());
        }
        let Some((_, fb, fence, expect)) = self.pending.pop_front() else {
            return Ok(());
        };
        self.display.page_flip(fb, fence, expect)?;
        Ok(())
    }

    /// Acquire, render `scene`, present: one frame of a producer; its render fence. `Ok(None)`
    /// if the producer must wait (rule 2).
    pub fn draw_frame(
        &mut self,
        scene: &GpuBo,
        expect: Expect,
    ) -> Result<Option<DmaFence>, MediaError> {
        let Some(back) = self.acquire()? else {
            return Ok(None);
        };
        let fence = match self.render(&back, scene) {
            Ok(f) => f,
            Err(e) => {
                let _ = self.chain.release(back.id, self.vblanks);
                return Err(e);
            }
        };
        self.present(back, Some(fence.clone()), expect)?;
        Ok(Some(fence))
    }

    /// A vblank (rule 4): the display shows the next ready frame; released buffers become free;
    /// idle spares are freed.
    pub fn vblank(&mut self) -> Result<Vblank, MediaError> {
        let v = self.display.vblank()?;
        self.vblanks += 1;
        let now = self.vblanks;
        for (&id, &(_, fb)) in &self.bufs {
            let Some(fb) = fb else { continue };
            if v.shown == Some(fb) {
                self.chain.scanout(id, now)?;
            } else if v.released.contains(&fb) {
                self.chain.release(id, now)?;
            }
        }
        for id in self.chain.shrink(now, self.cfg.shrink_after) {
            self.free_buf(id);
        }
        self.flip_next()?;
        Ok(v)
    }

    fn free_buf(&mut self, id: u64) {
        if let Some((bo, fb)) = self.bufs.remove(&id) {
            if let Some(fb) = fb {
                let _ = self.display.rm_fb(fb);
            }
            let _ = self.vm.unmap(&bo);
        }
    }
}

impl Drop for Swapchain {
    fn drop(&mut self) {
        let _ = self.display.disable();
        for id in self.chain.keys() {
            self.chain.forget(id);
            self.free_buf(id);
        }
    }
}
