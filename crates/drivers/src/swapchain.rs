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
//!    in flight means not `Free`. Only `Free` buffers are handed out, so the producer never draws
//!    into a buffer the display reads.
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
//! # The policy, on its own
//! Rules 2, 4 and 5 — when to grow, when to shrink, when the producer waits — are
//! [`SwapchainPolicy`], a value with no buffers of its own. [`Swapchain`] applies it to its
//! slots; a scheduler that owns a link's buffers itself (the scenario runner's gpu->display
//! links) steps the same policy, so there is one implementation of seed 000's sizing.

use crate::display::{Display, Expect, FbId, Vblank};
use crate::frame::FrameFormat;
use crate::gpu::{BoDesc, Gpu, GpuBo, GpuVm, Job, Placement};
use crate::media::MediaError;
use dmabuf::DmaBuf;
use fence::DmaFence;
use kernel::Kernel;
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

/// Seed 000's sizing of a swapchain (rules 2, 4 and 5), apart from any buffer: a value the
/// [`Swapchain`] applies to its slots and a scheduler owning its buffers steps the same way.
///
/// Idle ages are in whatever unit the caller counts (vblanks for [`Swapchain`]; a scheduler on
/// a clock passes nanoseconds and the length of [`shrink_after`](Self::shrink_after) vblanks
/// in nanoseconds).
///
/// ```
/// use drivers::swapchain::SwapchainPolicy;
/// let p = SwapchainPolicy { max_in_flight: Some(2), ..SwapchainPolicy::new(4) };
/// assert_eq!(p.initial(), 2);
/// assert!(p.grows(2, 0, 1) && !p.grows(2, 1, 1) && !p.grows(4, 0, 1));
/// assert!(!p.may_draw(2), "two in flight: the producer waits");
/// // Three buffers, free ones idle for 1 and 5 vblanks: the second goes (one over the minimum).
/// assert_eq!(p.shrink(3, &[1, 5], 4), vec![1]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapchainPolicy {
    /// Buffers kept however idle (and the ones a chain starts with).
    pub min_buffers: usize,
    /// The most buffers that may exist.
    pub max_buffers: usize,
    /// Vblanks a free buffer stays before it is freed.
    pub shrink_after: u64,
    /// At most this many buffers in flight; `None`: only `max_buffers` bounds them.
    pub max_in_flight: Option<usize>,
}

impl SwapchainPolicy {
    /// Buffers kept however idle by default: one shown, one drawn.
    pub const DEFAULT_MIN_BUFFERS: usize = 2;
    /// Vblanks a free buffer idles before it is freed, by default.
    pub const DEFAULT_SHRINK_AFTER: u64 = 4;

    /// The defaults with at most `max_buffers` buffers and no in-flight bound.
    pub fn new(max_buffers: usize) -> SwapchainPolicy {
        SwapchainPolicy {
            min_buffers: Self::DEFAULT_MIN_BUFFERS,
            max_buffers,
            shrink_after: Self::DEFAULT_SHRINK_AFTER,
            max_in_flight: None,
        }
    }

    /// Buffers a chain starts with (and keeps): the minimum, capped by the maximum.
    pub fn initial(&self) -> usize {
        self.min_buffers.min(self.max_buffers)
    }

    /// Rule 5: whether the producer may take a buffer with `in_flight` buffers in flight.
    pub fn may_draw(&self, in_flight: usize) -> bool {
        self.max_in_flight.is_none_or(|m| in_flight < m)
    }

    /// Rule 2: whether to allocate one more buffer, with `live` buffers, `free` of them free
    /// and `in_flight` in flight: only when none is free, the producer may draw, and the
    /// maximum is not reached.
    pub fn grows(&self, live: usize, free: usize, in_flight: usize) -> bool {
        free == 0 && self.may_draw(in_flight) && live < self.max_buffers
    }

    /// Rule 4: which free buffers to free, as positions in `free_idle` (the idle age of each
    /// free buffer, in the caller's order): the first ones idle for at least `idle_for`, while
    /// more than [`initial`](Self::initial) of the `live` buffers would remain.
    pub fn shrink(&self, live: usize, free_idle: &[u64], idle_for: u64) -> Vec<usize> {
        let keep = self.initial();
        let mut left = live;
        let mut out = Vec::new();
        for (i, &age) in free_idle.iter().enumerate() {
            if left <= keep {
                break;
            }
            if age >= idle_for {
                out.push(i);
                left -= 1;
            }
        }
        out
    }
}

/// Swapchain counters: what the report shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwapchainStats {
    /// Buffers allocated.
    pub allocations: u64,
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

struct Slot {
    id: u64,
    bo: GpuBo,
    buf: DmaBuf,
    fb: Option<FbId>,
    state: SlotState,
    idle_since: u64,
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

/// A GPU -> display swapchain (module documentation).
pub struct Swapchain {
    kernel: Arc<Kernel>,
    gpu: Gpu,
    vm: GpuVm,
    display: Arc<Display>,
    cfg: SwapchainConfig,
    slots: Vec<Slot>,
    /// Presented frames not flipped yet (rule 3): `(buffer id, fb, render fence, expect)`.
    pending: std::collections::VecDeque<(u64, FbId, Option<DmaFence>, Expect)>,
    next_id: u64,
    vblanks: u64,
    stats: SwapchainStats,
}

impl std::fmt::Debug for Swapchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swapchain")
            .field("mode", &self.cfg.mode)
            .field("states", &self.states())
            .field("stats", &self.stats)
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
        Ok(Swapchain {
            kernel: kernel.clone(),
            vm: GpuVm::new(gpu, &format!("{:?}-client", cfg.mode)),
            gpu: gpu.clone(),
            display,
            cfg,
            slots: Vec::new(),
            pending: std::collections::VecDeque::new(),
            next_id: 0,
            vblanks: 0,
            stats: SwapchainStats::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> SwapchainStats {
        self.stats
    }

    /// Buffers that exist.
    pub fn buffers(&self) -> usize {
        self.slots.len()
    }

    /// Buffers in flight (not free).
    pub fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state != SlotState::Free)
            .count()
    }

    /// Every buffer's state, oldest buffer first.
    pub fn states(&self) -> Vec<SlotState> {
        self.slots.iter().map(|s| s.state).collect()
    }

    /// The client's GPU address space.
    pub fn vm(&self) -> &GpuVm {
        &self.vm
    }

    /// The display.
    pub fn display(&self) -> &Arc<Display> {
        &self.display
    }

    fn allocate(&mut self) -> Result<Slot, MediaError> {
        let size = self.cfg.format.size() as u64;
        let id = self.next_id;
        let (bo, buf, fb) = match self.cfg.mode {
            SwapMode::Dri2 => {
                let heap = self.kernel.heap(&self.cfg.heap).ok_or_else(|| {
                    MediaError::Invalid(format!("no dma-heap {:?}", self.cfg.heap))
                })?;
                let len = soc::align_up(size, soc::PAGE_SIZE)
                    .ok_or_else(|| MediaError::Invalid(format!("{size:#x} bytes overflow")))?;
                let buf = heap.allocate(len, uapi::ioctl::O_RDWR, 0)?;
                let fb = self.display.add_fb(&buf)?;
                match self.gpu.import(&buf) {
                    Ok(bo) => (bo, buf, Some(fb)),
                    Err(e) => {
                        let _ = self.display.rm_fb(fb);
                        return Err(e.into());
                    }
                }
            }
            SwapMode::Wayland => {
                let bo = self
                    .gpu
                    .create_bo(BoDesc::gtt(&format!("swapchain-{id}"), size))?;
                self.gpu.validate(&bo, Placement::Gtt)?;
                let buf = self.gpu.export(&bo)?;
                (bo, buf, None)
            }
        };
        self.next_id += 1;
        Ok(Slot {
            id,
            bo,
            buf,
            fb,
            state: SlotState::Free,
            idle_since: self.vblanks,
        })
    }

    fn note_in_flight(&mut self) {
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight());
        self.stats.max_buffers = self.stats.max_buffers.max(self.slots.len());
    }

    /// The next buffer to draw into (rule 2): `Ok(None)` means "wait for a vblank".
    pub fn acquire(&mut self) -> Result<Option<BackBuffer>, MediaError> {
        let free = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state == SlotState::Free)
            .max_by_key(|(_, s)| s.idle_since)
            .map(|(i, _)| i);
        let policy = self.cfg.policy();
        if !policy.may_draw(self.in_flight()) {
            self.stats.waits += 1;
            return Ok(None);
        }
        let pos = match free {
            Some(i) => i,
            None if !policy.grows(self.slots.len(), 0, self.in_flight()) => {
                self.stats.waits += 1;
                return Ok(None);
            }
            None => match self.allocate() {
                Ok(s) => {
                    self.stats.allocations += 1;
                    self.slots.push(s);
                    self.slots.len() - 1
                }
                Err(e) if must_wait(&e) => {
                    self.stats.alloc_failures += 1;
                    self.stats.waits += 1;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            },
        };
        let slot = &mut self.slots[pos];
        slot.state = SlotState::Drawing;
        let back = BackBuffer {
            id: slot.id,
            bo: slot.bo.clone(),
        };
        self.note_in_flight();
        Ok(Some(back))
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
        let pos = self
            .slots
            .iter()
            .position(|s| s.id == back.id && s.state == SlotState::Drawing)
            .ok_or_else(|| {
                MediaError::Invalid(format!("buffer {} was not acquired here", back.id))
            })?;
        let fb = match self.slots[pos].fb {
            Some(fb) => fb,
            None => match self.display.add_fb(&self.slots[pos].buf) {
                Ok(fb) => {
                    self.slots[pos].fb = Some(fb);
                    fb
                }
                Err(e) => {
                    let slot = self.slots.remove(pos);
                    let _ = self.vm.unmap(&slot.bo);
                    return Err(e);
                }
            },
        };
        self.slots[pos].state = SlotState::Queued;
        self.pending.push_back((back.id, fb, fence, expect));
        self.stats.presented += 1;
        self.note_in_flight();
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
                self.release_unpresented(&back);
                return Err(e);
            }
        };
        self.present(back, Some(fence.clone()), expect)?;
        Ok(Some(fence))
    }

    fn release_unpresented(&mut self, back: &BackBuffer) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.id == back.id) {
            s.state = SlotState::Free;
            s.idle_since = self.vblanks;
        }
    }

    /// A vblank (rule 4): the display shows the next ready frame; released buffers become free;
    /// idle spares are freed.
    pub fn vblank(&mut self) -> Result<Vblank, MediaError> {
        let v = self.display.vblank()?;
        self.vblanks += 1;
        for s in &mut self.slots {
            if s.fb.is_some() && s.fb == v.shown {
                s.state = SlotState::Scanout;
            } else if s.fb.is_some_and(|fb| v.released.contains(&fb)) {
                s.state = SlotState::Free;
                s.idle_since = self.vblanks;
            }
        }
        self.shrink();
        self.flip_next()?;
        Ok(v)
    }

    fn shrink(&mut self) {
        let now = self.vblanks;
        let free: Vec<(usize, u64)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state == SlotState::Free)
            .map(|(i, s)| (i, now - s.idle_since))
            .collect();
        let ages: Vec<u64> = free.iter().map(|f| f.1).collect();
        let go = self
            .cfg
            .policy()
            .shrink(self.slots.len(), &ages, self.cfg.shrink_after);
        // Remove from the back so earlier positions stay valid.
        for &k in go.iter().rev() {
            let slot = self.slots.remove(free[k].0);
            self.free_slot(slot);
            self.stats.frees += 1;
        }
    }

    fn free_slot(&self, slot: Slot) {
        if let Some(fb) = slot.fb {
            let _ = self.display.rm_fb(fb);
        }
        let _ = self.vm.unmap(&slot.bo);
        drop(slot);
    }
}

impl Drop for Swapchain {
    fn drop(&mut self) {
        let _ = self.display.disable();
        for slot in std::mem::take(&mut self.slots) {
            self.free_slot(slot);
        }
    }
}
