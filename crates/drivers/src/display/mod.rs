//! A display controller: scanout of imported dma-bufs, page flips that wait on fences, and a
//! sink that reads and verifies every frame it shows.
//!
//! C side: `drivers/gpu/drm/drm_gem_dma_helper.c` (`drm_gem_dma_prime_import_sg_table`: a
//! controller without an IOMMU refuses a buffer that is not one contiguous run),
//! `drm_atomic_helper.c` (`drm_atomic_helper_wait_for_fences`: a flip waits for its explicit
//! `IN_FENCE_FD` and, through `drm_gem_plane_helper_prepare_fb`, for the buffer's implicit
//! WRITE fences), `drm_vblank.c` (flips complete at vblank; the out-fence signals then).
//!
//! # The concept
//! [`Display::add_fb`] is `DRM_IOCTL_MODE_ADDFB2` of a PRIME-imported buffer: the display
//! attaches its device, maps the buffer once, and keeps the mapping for the framebuffer's life.
//! [`Display::page_flip`] queues a flip with its fences; [`Display::latch`] is the vertical
//! blank interrupt: the oldest queued flip whose fences have all signaled becomes the scanned-out
//! frame, and the frame it replaces is released ([`Vblank::released`]) — only now may a producer
//! draw into that one again. The scanout itself is a device job ([`Scanout`], an
//! [`Op::Scanout`] [`DeviceJob`] through the framebuffer's mapping): a scheduler executes it
//! in fixed pieces like any other job (on its pool, on its clock), every piece hashing what it
//! reads, and [`Display::scanned`] judges the result ([`Expect`]). [`Display::vblank`] does
//! the three on the caller's thread. No frame is copied into host memory.
//!
//! # Rules
//! 1. **Contiguity.** A device with no IOMMU scans out physical addresses: the mapping must be
//!    one DMA-contiguous run covering the frame, else `add_fb` fails with
//!    [`MediaError::NotContiguous`] and the buffer is detached. Behind an IOMMU any pages do.
//! 2. **Size.** A buffer smaller than the format's frame is `EINVAL`.
//! 3. **Fences.** A flip waits for the fences the buffer's reservation object holds when the
//!    flip is queued: its WRITE (and KERNEL) fences, or, with an explicit in-fence
//!    (`IN_FENCE_FD`), that fence and the KERNEL ones only — explicit sync overrules implicit
//!    (`drm_gem_plane_helper_prepare_fb`). With
//!    [`DisplayConfig::fence_timeout`] `None` (the virtual clock) a vblank never blocks: a flip
//!    whose fences have not signaled stays queued and the current frame is shown again
//!    ([`DisplayStats::missed`]). With `Some(t)` the vblank waits up to `t`.
//! 4. **Fenced errors.** A fence that signaled with an error drops its flip: the frame is never
//!    shown (counted in [`DisplayStats::dropped`]) and the buffer is released at once.
//! 5. **Verification.** Each new frame is read whole by DMA (the scanout job); its stamp and
//!    body checksum are checked against the flip's [`Expect`]; [`DisplayStats::verified`] or
//!    [`DisplayStats::corrupted`] counts it (a failed read is corrupted).
//! 6. **Busy framebuffers.** `rm_fb` of a framebuffer that is scanned out or queued is `EBUSY`;
//!    an unknown id is `ENOENT` for `rm_fb` and `page_flip`.
//! 7. **One flip at a time.** A `page_flip` while another is pending (not yet latched) is
//!    `EBUSY`, as `drm_mode_page_flip_ioctl` answers; a compositor keeps its own queue.
//! 8. **Framebuffers.** [`Display::add_fb2`] checks its [`FbCmd2`] as `framebuffer_check` does
//!    (module `addfb`); the scanout reads exactly the planes it names.
//! 9. **Pinned while on screen.** A framebuffer imported dynamically
//!    ([`Display::add_fb2_dynamic`], a peer-to-peer GPU's buffer) is pinned by each flip of it
//!    (`prepare_fb`: `dma_buf_pin`, the exporter's errno if it cannot be) and unpinned when
//!    the flip that replaces it latches, or when the flip is dropped or the CRTC turned off
//!    (`cleanup_fb`); a flip scans out the addresses it was committed with (module `import`).
//! 10. **Planes.** A CRTC has [`DisplayConfig::planes`] planes (primary and overlays);
//!     [`Display::atomic_commit`] flips several at one vblank, all or none, each plane's old
//!     framebuffer released then (module `atomic`); [`Display::page_flip`] is a commit of the
//!     primary plane alone.

use crate::dmaview::DmaView;
use crate::frame::{FrameFormat, STAMP_MAGIC};
use crate::job::{DeviceJob, JobEffects, JobInput, Op, Seen};
use crate::media::MediaError;
use dma::{DmaApi, DmaDirection};
use dmabuf::DmaBuf;
use fence::{DmaFence, DmaResvUsage, SimpleFenceOps};
use import::FbImport;
use parking_lot::Mutex;
use soc::Device;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

mod addfb;
mod atomic;
mod framebuffer;
mod import;
pub use addfb::{fourcc_name, FbCmd2, DRM_FORMAT_MOD_LINEAR};
pub use atomic::{AtomicCommit, PlaneId, PlaneSet};

/// A framebuffer id (`fb_id`).
pub type FbId = u32;

/// How a [`Display`] is set up.
#[derive(Clone, Debug)]
pub struct DisplayConfig {
    /// The controller's DMA device (default `display0`).
    pub device: String,
    /// The mode: what one frame is.
    pub format: FrameFormat,
    /// How long a vblank waits for a flip's fences (rule 3); `None` never waits.
    pub fence_timeout: Option<Duration>,
    /// Planes of the CRTC: the primary (plane 0) and `planes - 1` overlays (rule 10).
    pub planes: u32,
}

impl DisplayConfig {
    /// `display0`, `format`, never waiting (virtual clock).
    pub fn new(format: FrameFormat) -> DisplayConfig {
        DisplayConfig {
            device: "display0".into(),
            format,
            fence_timeout: None,
            planes: 1,
        }
    }
}

/// What a shown frame must be (rule 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Any frame whose stamp is valid ([`crate::frame::verify_stamp`]).
    Stamp,
    /// A valid stamp of this frame number.
    Frame(u32),
    /// Exactly this frame checksum (the checksum of the body after the stamp, the one
    /// [`crate::job`]'s producers report), whatever the stamp says.
    Checksum(u64),
    /// Frame `frame` whose producer reported checksum `checksum` ([`crate::job`] rule 2: the
    /// body hashes to it and the stamp names both).
    Exact {
        /// The frame number.
        frame: u64,
        /// The producer's checksum.
        checksum: u64,
    },
    /// Not verified (the frame is shown and counted, neither verified nor corrupted).
    Nothing,
}

/// Display counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DisplayStats {
    /// Vblanks run.
    pub vblanks: u64,
    /// Flips queued.
    pub flips: u64,
    /// New frames shown.
    pub shown: u64,
    /// Shown frames that matched their [`Expect`].
    pub verified: u64,
    /// Shown frames that did not.
    pub corrupted: u64,
    /// Vblanks with a queued flip that was not ready (the old frame stayed).
    pub missed: u64,
    /// Flips dropped because a fence signaled with an error.
    pub dropped: u64,
    /// Bytes read by scanout DMA.
    pub bytes_read: u64,
    /// Framebuffers created (`ADDFB2`).
    pub fbs_created: u64,
    /// Framebuffers removed (`RMFB`).
    pub fbs_removed: u64,
}

/// What one vblank did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vblank {
    /// The framebuffer newly shown (of a commit of several planes, the lowest plane's), if a
    /// flip completed.
    pub shown: Option<FbId>,
    /// Whether the new frames verified (rule 5; all of them, for a commit of several
    /// planes); `None` without a new frame or with [`Expect::Nothing`].
    pub verified: Option<bool>,
    /// Framebuffers no longer scanned out nor queued (the replaced one, dropped flips).
    pub released: Vec<FbId>,
    /// Scanout DMA time of the new frame.
    pub cost: Duration,
}

struct Framebuffer {
    /// The buffer, its attachment and mapping (module `import`).
    import: Arc<FbImport>,
    /// `(offset, len)` of each plane the display scans out.
    planes: Vec<(u64, u64)>,
    /// Width and height in pixels.
    size: (u32, u32),
}

/// A frame a vblank latched, and the job that scans it out.
#[derive(Debug)]
pub struct Scanout {
    /// The framebuffer now on screen.
    pub fb: FbId,
    /// The display's [`Op::Scanout`] of it: one input, the framebuffer's planes through the
    /// mapping [`Display::add_fb`] made; its pieces verify as they read (rule 5).
    pub job: DeviceJob,
    /// What the frame must be ([`Display::scanned`]).
    pub expect: Expect,
    /// The plane it is on.
    pub plane: PlaneId,
}

/// What [`Display::latch`] did.
#[derive(Debug)]
pub struct Latched {
    /// The vblank (its `verified` is `None` until the scanout is judged).
    pub vblank: Vblank,
    /// The new frames' scanouts, one per plane the latched commit flipped, by plane.
    pub scanouts: Vec<Scanout>,
}

/// Rule 5 on what a scanout read.
fn judge(expect: Expect, s: &Seen) -> bool {
    let stamp_ok = s.stamped && s.head[..4] == STAMP_MAGIC && s.head[8..] == s.sum.to_le_bytes();
    let number = u32::from_le_bytes([s.head[4], s.head[5], s.head[6], s.head[7]]);
    match expect {
        Expect::Stamp => stamp_ok,
        Expect::Frame(n) => stamp_ok && number == n,
        Expect::Checksum(c) => s.sum == c,
        Expect::Exact { frame, checksum } => s.verifies(checksum, frame),
        Expect::Nothing => true,
    }
}

/// One plane of a queued commit.
struct PlaneUpdate {
    plane: PlaneId,
    fb: FbId,
    /// The addresses the commit programmed (`prepare_fb`), read at the vblank.
    segments: Vec<dma::DmaSegment>,
    expect: Expect,
}

/// A queued commit (a page flip is one of the primary plane).
struct Flip {
    updates: Vec<PlaneUpdate>,
    fences: Vec<DmaFence>,
    done: DmaFence,
}

impl Flip {
    fn names(&self, fb: FbId) -> bool {
        self.updates.iter().any(|u| u.fb == fb)
    }
}

#[derive(Default)]
struct State {
    fbs: BTreeMap<FbId, Framebuffer>,
    next_id: FbId,
    queue: VecDeque<Flip>,
    /// The framebuffer each plane scans out (index: [`PlaneId`]).
    planes: Vec<Option<FbId>>,
    stats: DisplayStats,
    seqno: u64,
}

/// A display controller (module documentation).
pub struct Display {
    dma: Arc<DmaApi>,
    dev: Arc<Device>,
    cfg: DisplayConfig,
    context: u64,
    ops: std::sync::Arc<SimpleFenceOps>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Display {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Display")
            .field("device", &self.cfg.device)
            .field("format", &self.cfg.format)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Display {
    /// A display on `cfg.device`. Errors: `ENODEV`.
    pub fn new(dma: &Arc<DmaApi>, cfg: DisplayConfig) -> Result<Display, MediaError> {
        let planes = cfg.planes.max(1) as usize;
        Ok(Display {
            dma: dma.clone(),
            dev: dma.device(&cfg.device)?,
            // The flip fences' timeline, on the machine's ids and clock.
            context: crate::machine_fence_context(dma)?,
            ops: SimpleFenceOps::on(dma.soc().clock().clone(), "display", &cfg.device),
            cfg,
            state: Mutex::new(State {
                next_id: 1,
                planes: vec![None; planes],
                ..State::default()
            }),
        })
    }

    /// The controller's device.
    pub fn device(&self) -> &Arc<Device> {
        &self.dev
    }

    /// The mode.
    pub fn format(&self) -> FrameFormat {
        self.cfg.format
    }

    /// Counters.
    pub fn stats(&self) -> DisplayStats {
        self.state.lock().stats
    }

    /// The framebuffer scanned out now.
    pub fn scanout(&self) -> Option<FbId> {
        self.state.lock().planes.first().copied().flatten()
    }

    /// Flips queued and not yet shown.
    pub fn queued_flips(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// Framebuffers that exist.
    pub fn framebuffers(&self) -> usize {
        self.state.lock().fbs.len()
    }

    /// `PAGE_FLIP` (atomic commit of one plane): queues `fb` to be shown at a coming vblank once
    /// `in_fence` and the buffer's implicit WRITE fences have signaled (rule 3). Returns the
    /// flip's out-fence, signaled at the vblank that shows it (with `ECANCELED` if it is
    /// dropped, rule 4). A dynamically imported framebuffer is pinned here (rule 9: its
    /// `prepare_fb`; the exporter's errno if it cannot be) until the flip that replaces it
    /// latches.
    pub fn page_flip(
        &self,
        fb: FbId,
        in_fence: Option<DmaFence>,
        expect: Expect,
    ) -> Result<DmaFence, MediaError> {
        let mut c = AtomicCommit::default();
        c.set(0, fb, expect);
        self.commit(&c, in_fence)
    }

    /// `cleanup_fb` of framebuffers whose flips left the screen or the queue (rule 9): their
    /// pins go. Called without the state lock.
    fn cleanup(&self, imports: Vec<Arc<FbImport>>) {
        for i in imports {
            i.cleanup();
        }
    }

    /// The import of framebuffer `fb` (for [`Self::cleanup`]), if it exists.
    fn import_of(st: &State, fb: FbId) -> Option<Arc<FbImport>> {
        st.fbs.get(&fb).map(|f| f.import.clone())
    }

    /// Whether every fence of the flip signaled (waiting up to the configured timeout), and the
    /// first error one carried.
    fn flip_ready(&self, flip: &Flip) -> (bool, Option<uapi::Errno>) {
        for f in &flip.fences {
            if !f.is_signaled() {
                match self.cfg.fence_timeout {
                    Some(t) if f.wait_timeout(None, Some(t)).is_ok() => {}
                    _ => return (false, None),
                }
            }
            if let Some(e) = f.error() {
                return (true, Some(e));
            }
        }
        (true, None)
    }

    /// Judges what a scanout job of `expect` read (rule 5) and counts it: `Some(true)` verified,
    /// `Some(false)` corrupted (a failed read too), `None` for [`Expect::Nothing`].
    pub fn scanned(&self, expect: Expect, fx: &JobEffects) -> Option<bool> {
        self.scanned_planes(&[expect], fx)
            .into_iter()
            .next()
            .flatten()
    }

    /// [`Self::scanned`] of one job that read several planes' frames (input `i` against
    /// `expects[i]`, rule 10): each counted apart.
    pub fn scanned_planes(&self, expects: &[Expect], fx: &JobEffects) -> Vec<Option<bool>> {
        let out: Vec<Option<bool>> = expects
            .iter()
            .enumerate()
            .map(|(i, &expect)| {
                let seen = fx.inputs_seen.get(i).copied().flatten();
                match (fx.error.is_some(), seen) {
                    _ if expect == Expect::Nothing => None,
                    (true, _) | (false, None) => Some(false),
                    (false, Some(s)) => Some(judge(expect, &s)),
                }
            })
            .collect();
        let mut st = self.state.lock();
        for ok in &out {
            match ok {
                Some(true) => st.stats.verified += 1,
                Some(false) => st.stats.corrupted += 1,
                None => {}
            }
        }
        out
    }

    /// The vertical blank, done whole on the caller's thread: [`Self::latch`], the scanout
    /// job executed, [`Self::scanned`] (module rules 3-5). A failed scanout read is `EIO`.
    pub fn vblank(&self) -> Result<Vblank, MediaError> {
        let Latched {
            mut vblank,
            scanouts,
        } = self.latch()?;
        let mut all = true;
        let mut any = false;
        for s in scanouts {
            let fx = s.job.execute(&self.dma);
            if let Some(ok) = self.scanned(s.expect, &fx) {
                any = true;
                all &= ok;
            }
            if let Some(e) = fx.error {
                return Err(MediaError::Io(format!(
                    "{}: scanout of framebuffer {}: {e}",
                    self.dev.name(),
                    s.fb
                )));
            }
        }
        vblank.verified = any.then_some(all);
        Ok(vblank)
    }

    /// A commit that failed before its vblank (its fences did not come in time, or one failed):
    /// the queued flips are dropped (their out-fences signal with `ECANCELED`, their pins go)
    /// and the frame on screen stays scanned out, as a failed `drm_mode_page_flip_ioctl` or
    /// atomic commit leaves the CRTC; the next flip that latches releases it. Returns the
    /// dropped flips' framebuffers.
    pub fn cancel_flips(&self) -> Vec<FbId> {
        let mut unpin = Vec::new();
        let dropped = {
            let mut st = self.state.lock();
            let flips = std::mem::take(&mut st.queue);
            let dropped: Vec<FbId> = flips
                .into_iter()
                .flat_map(|flip| {
                    let _ = flip.done.set_error(uapi::Errno::ECANCELED);
                    let _ = flip.done.signal();
                    flip.updates.into_iter().map(|u| u.fb).collect::<Vec<_>>()
                })
                .collect();
            unpin.extend(dropped.iter().filter_map(|&fb| Self::import_of(&st, fb)));
            dropped
        };
        self.cleanup(unpin);
        dropped
    }

    /// Turns scanout off (the CRTC is disabled): the shown frame is released, queued flips are
    /// dropped (their out-fences signal with `ECANCELED`), every pin goes. Returns the released
    /// framebuffers.
    pub fn disable(&self) -> Vec<FbId> {
        let mut unpin = Vec::new();
        let released = {
            let mut st = self.state.lock();
            let mut released: Vec<FbId> = st.planes.iter_mut().filter_map(Option::take).collect();
            for flip in std::mem::take(&mut st.queue) {
                let _ = flip.done.set_error(uapi::Errno::ECANCELED);
                let _ = flip.done.signal();
                released.extend(flip.updates.iter().map(|u| u.fb));
            }
            unpin.extend(released.iter().filter_map(|&fb| Self::import_of(&st, fb)));
            released
        };
        self.cleanup(unpin);
        released
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let ids: Vec<FbId> = {
            let _ = self.disable();
            self.state.lock().fbs.keys().copied().collect()
        };
        for id in ids {
            let _ = self.rm_fb(id);
        }
    }
}
