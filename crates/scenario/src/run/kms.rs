//! A display node through KMS: its process imports each buffer, makes a framebuffer of it once,
//! and shows frames with atomic commits, a plane per input link; the driver's scanout job
//! reads them.
//!
//! # The concept
//! Every `display` node is a [`drivers::display::Display`] in its process, as a compositor
//! drives a DRM/KMS device; a display with N input links is one CRTC with N planes (the first
//! link's the primary plane, the others overlays). There is no other display path: no display
//! has a vb2 queue or reads through its node attachment. That attachment (every link user's,
//! made at allocation) stays, never mapped: it is how an exporter learns the display's needs
//! before the first framebuffer exists (placement), and a p2p GPU's `move_notify` to it is what
//! the report counts.
//! - the first time a buffer reaches it, the process imports the fd it holds (PRIME fd -> GEM
//!   handle, `drmPrimeFDToHandle`) and creates a framebuffer with `ADDFB2`
//!   ([`drivers::display::FbCmd2`]: the link's DRM fourcc, size, and each plane's pitch and
//!   offset in the buffer); the driver maps the buffer once for the framebuffer's life. A
//!   peer-to-peer GPU's buffer is imported dynamically, p2p allowed (it may stay in VRAM), and
//!   each commit pins it until the commit that replaces it latches (`prepare_fb`/`cleanup_fb`,
//!   [`drivers::display::Display::add_fb2_dynamic`]): VRAM pressure never evicts the frame on
//!   screen ([`super::gpu`]);
//! - each frame time is one atomic commit ([`Sched::kms_commit`]) flipping every plane whose
//!   link has a new frame, for the vblank the runner placed the primary's frame on
//!   ([`super::handoff`]), latched at that vblank, all planes at once: the driver's
//!   [`drivers::display::Scanout`] jobs (one per plane) are read by the node's one job,
//!   executed in pieces on the pool like every other job, and judged per plane;
//! - each plane's buffer stays the display's until the commit that replaces it latches (real
//!   KMS scans the old framebuffer out until then): at that vblank it is released to its
//!   producer (an instant `release <buffer>` on the display's track), not earlier (the commit)
//!   nor later (the end of the next scanout); in between it is on screen, not in flight; a
//!   plane the commit does not name keeps its buffer;
//! - a commit that does not latch at its vblank (its fences did not come, or one failed) fails
//!   its job and is cancelled ([`Display::cancel_flips`]): the screen stays as it was, as a
//!   failed atomic commit leaves the CRTC, and the next commit that latches releases what it
//!   replaces;
//! - `RMFB` when the buffer goes away (a swapchain shrinking, `set_buffers`, the end); a
//!   detach, a kill or a STREAMOFF of the display turns the CRTC off
//!   ([`drivers::display::Display::disable`]): the frames on screen are released.
//!
//! A compositor commits once its planes' acquire fences signalled (explicit sync), so a commit
//! whose frames' producer fences have not signalled on the loop yet waits in the ready queue;
//! the node's fence wait still counts from when it could have started
//! ([`Sched::kms_ready_from`]).
//!
//! Locking and lifetime: single-threaded (the runner's loop); [`World::kms`] holds the
//! displays until the end of the run, which disables them and removes every framebuffer
//! before the buffers are dropped.

use super::sched::Sched;
use super::world::{RunFailure, World};
use crate::clock::VirtualTime;
use crate::schema::DriverKind;
use drivers::display::{AtomicCommit, Display, DisplayConfig, Expect, FbCmd2, FbId, PlaneId};
use drivers::job::JobInput;
use std::collections::BTreeMap;

/// One display node's KMS state.
pub(crate) struct Kms {
    display: Display,
    /// Framebuffer of each buffer (by buffer index).
    fbs: BTreeMap<usize, FbId>,
    /// The buffer each plane shows, from when (its scanout job's start, the vblank that
    /// latched it).
    on_screen: BTreeMap<PlaneId, usize>,
    shown_from: VirtualTime,
    /// Per job: the buffers its commit flips onto the screen.
    flipping: BTreeMap<u64, Vec<usize>>,
    /// Per job: the buffers its latch took off screen, released at its vblank.
    releasing: BTreeMap<u64, Vec<usize>>,
    /// Per job: what its frames must be (one per plane), judged by the driver when the
    /// scanout ends.
    expects: BTreeMap<u64, Vec<Expect>>,
    /// When the node first found a frame whose acquire fence had not signalled.
    waiting_since: Option<VirtualTime>,
}

/// One input link's new frame for a KMS display's commit ([`Sched::kms_commit`]).
pub(crate) struct PlaneFrame {
    /// The input link (its position among the node's inputs is its plane).
    pub(crate) link: usize,
    /// The buffer holding the frame.
    pub(crate) buf: usize,
    /// The producer's checksum of it.
    pub(crate) expected: u64,
    /// Its frame number.
    pub(crate) frame: u64,
    /// Its planes `(offset, len)` as the producer laid them out (what the scanout reads).
    pub(crate) planes: Vec<(u64, u64)>,
}

fn fail(what: String, e: &drivers::media::MediaError) -> RunFailure {
    RunFailure::new(e, what)
}

impl World {
    /// Whether node `n` is a display driven through KMS (module doc).
    pub(crate) fn is_kms(&self, n: usize) -> bool {
        let node = &self.nodes[n];
        node.desc.driver == DriverKind::Display && !node.inputs.is_empty()
    }

    /// The KMS displays other than `n` reading any of `links` whose buffers the constraint
    /// exporter may move: before `n` attaches they drop their framebuffers (a compositor
    /// re-importing reallocated buffers), as vb2 consumers STREAMOFF (module doc).
    pub(crate) fn kms_quiesce(&self, n: usize, links: &[usize]) -> Vec<usize> {
        self.kms
            .iter()
            .filter(|&(&d, k)| {
                d != n
                    && !k.fbs.is_empty()
                    && self.nodes[d].inputs.iter().any(|li| {
                        links.contains(li)
                            && self.links[*li].bufs.iter().any(|&bi| {
                                matches!(
                                    self.buf(bi).exporter,
                                    super::world::ExporterHandle::Constraint(_)
                                )
                            })
                    })
            })
            .map(|(&d, _)| d)
            .collect()
    }

    /// The `ADDFB2` of buffer `bi` on its link's format: each plane's pitch is its length over
    /// its lines (a re-laid-out buffer's too).
    fn fb_cmd(&self, bi: usize) -> Result<FbCmd2, RunFailure> {
        let b = self.buf(bi);
        let src = &self.nodes[self.links[b.link].from].desc;
        let info = src.format.info();
        let bad = |m: String| RunFailure {
            errno: "EINVAL".into(),
            message: m,
        };
        let drm = info
            .drm
            .ok_or_else(|| bad(format!("{} has no DRM fourcc to scan out", info.name)))?;
        let layout = info.layout(src.width, src.height);
        let planes: Vec<(u64, u64)> = b
            .planes
            .iter()
            .zip(&layout)
            .map(|(&(_, len), l)| (len / l.lines.max(1), len))
            .collect();
        let mut cmd = FbCmd2::with_layout(drm, src.width, src.height, &planes)
            .map_err(|e| fail(format!("{}: ADDFB2: {e}", b.name), &e))?;
        for (k, &(off, _)) in b.planes.iter().enumerate().take(4) {
            cmd.offsets[k] = u32::try_from(off).map_err(|_| bad(format!("offset {off}")))?;
        }
        Ok(cmd)
    }

    /// Display node `n`'s framebuffer of buffer `bi`, made on first use: its process imports
    /// the fd it holds and `ADDFB2`s it.
    pub(crate) fn kms_fb(&mut self, n: usize, bi: usize) -> Result<FbId, RunFailure> {
        if let Some(&fb) = self.kms.get(&n).and_then(|k| k.fbs.get(&bi)) {
            return Ok(fb);
        }
        self.kms_open(n)?;
        let cmd = self.fb_cmd(bi)?;
        let b = self.buf(bi);
        let process = &self.nodes[n].process;
        // PRIME fd -> GEM handle: the dma-buf behind the fd the display's process holds.
        let fd = b
            .fds
            .iter()
            .find(|(p, _)| p.pid() == process.pid())
            .map(|x| x.1);
        let buf = match fd {
            Some(fd) => process
                .get_dma_buf(fd)
                .map_err(|e| RunFailure::new(&e, format!("{}: importing fd {fd}: {e}", b.name)))?,
            None => b.buf.clone(),
        };
        let name = b.name.clone();
        // A p2p GPU's buffer is imported dynamically, peer-to-peer allowed (it may stay in
        // VRAM), and pinned by each flip of it (module doc).
        let p2p = self.link_is_p2p(b.link);
        let k = self.kms.get_mut(&n).ok_or_else(|| RunFailure {
            errno: "ENODEV".into(),
            message: "no display".into(),
        })?;
        let fb = if p2p {
            k.display.add_fb2_dynamic(&buf, &cmd)
        } else {
            k.display.add_fb2(&buf, &cmd)
        };
        let fb = fb.map_err(|e| fail(format!("{name}: ADDFB2: {e}"), &e))?;
        k.fbs.insert(bi, fb);
        Ok(fb)
    }

    /// Display node `n` maps buffer `bi`'s framebuffer for `dir` (made on first use): the
    /// direction a scanout reads with, `DmaDirection::ToDevice`, except under the
    /// `wrong_direction` fault, where the driver's only mapping of it is the wrong one until a
    /// later flip maps it back ([`Display::remap_fb`](drivers::display::Display::remap_fb)).
    pub(crate) fn kms_remap(
        &mut self,
        n: usize,
        bi: usize,
        dir: dma::DmaDirection,
    ) -> Result<(), RunFailure> {
        let fb = self.kms_fb(n, bi)?;
        let name = self.buf(bi).name.clone();
        let Some(k) = self.kms.get(&n) else {
            return Ok(());
        };
        k.display
            .remap_fb(fb, dir)
            .map_err(|e| fail(format!("{name}: re-mapping framebuffer {fb}: {e}"), &e))
    }

    /// Opens display node `n`'s device in its process, once.
    fn kms_open(&mut self, n: usize) -> Result<(), RunFailure> {
        if self.kms.contains_key(&n) {
            return Ok(());
        }
        let node = &self.nodes[n];
        // Each framebuffer brings its own size; the configured mode is not used here.
        let fmt =
            drivers::frame::FrameFormat::new(16, 2).map_err(|e| fail("display mode".into(), &e))?;
        // A plane per input link: the first the primary, the others overlays.
        let cfg = DisplayConfig {
            device: node.dev.name().to_string(),
            planes: u32::try_from(node.inputs.len()).unwrap_or(u32::MAX),
            ..DisplayConfig::new(fmt)
        };
        let display = Display::new(self.kernel.dma(), cfg)
            .map_err(|e| fail(format!("{}: opening the display: {e}", node.desc.name), &e))?;
        self.kms.insert(
            n,
            Kms {
                display,
                fbs: BTreeMap::new(),
                on_screen: BTreeMap::new(),
                shown_from: VirtualTime::ZERO,
                flipping: BTreeMap::new(),
                releasing: BTreeMap::new(),
                expects: BTreeMap::new(),
                waiting_since: None,
            },
        );
        Ok(())
    }

    /// Buffer `bi` goes away: `RMFB` on every display that made a framebuffer of it.
    pub(crate) fn kms_forget(&mut self, bi: usize) {
        for k in self.kms.values_mut() {
            if let Some(fb) = k.fbs.remove(&bi) {
                let _ = k.display.rm_fb(fb);
            }
        }
    }

    /// The end of the run: every display off, every framebuffer removed; the report's
    /// `displays` (each driver's counters, those removals included).
    pub(crate) fn kms_close(&mut self) -> Vec<crate::report::DisplayReport> {
        for k in self.kms.values_mut() {
            drop(k.display.disable());
            for (_, fb) in std::mem::take(&mut k.fbs) {
                let _ = k.display.rm_fb(fb);
            }
        }
        std::mem::take(&mut self.kms)
            .into_iter()
            .map(|(n, k)| {
                let st = k.display.stats();
                crate::report::DisplayReport {
                    node: self.nodes[n].desc.name.clone(),
                    device: self.nodes[n].dev.name().to_string(),
                    framebuffers: st.fbs_created,
                    removed: st.fbs_removed,
                    flips: st.flips,
                    shown: st.shown,
                    verified: st.verified,
                    corrupted: st.corrupted,
                }
            })
            .collect()
    }
}

impl Sched<'_> {
    /// Display node `n` shows frame `frame` (checksum `expected`) of buffer `bi` on its
    /// primary plane: [`Self::kms_commit`] of that plane alone.
    #[cfg(test)]
    pub(crate) fn kms_flip(
        &mut self,
        n: usize,
        bi: usize,
        expected: u64,
        frame: u64,
        id: u64,
    ) -> Result<JobInput, RunFailure> {
        let li = self.w.buf(bi).link;
        let p = PlaneFrame {
            link: li,
            buf: bi,
            expected,
            frame,
            planes: Vec::new(),
        };
        let mut inputs = self.kms_commit(n, &[p], id)?;
        inputs.pop().ok_or_else(|| RunFailure {
            errno: "EINVAL".into(),
            message: "a scanout job without its framebuffer".into(),
        })
    }

    /// Display node `n` shows `frames`, one per input link with a new frame: a framebuffer of
    /// each buffer, one atomic commit flipping each link's plane (the input's position: the
    /// first the primary), latched at the vblank; the scanout jobs' inputs, in `frames`'
    /// order. What the latch took off screen is released at job `id`'s vblank
    /// ([`Self::kms_latched`]); planes without a new frame keep theirs.
    pub(crate) fn kms_commit(
        &mut self,
        n: usize,
        frames: &[PlaneFrame],
        id: u64,
    ) -> Result<Vec<JobInput>, RunFailure> {
        let mut commit = AtomicCommit::default();
        let mut names = Vec::with_capacity(frames.len());
        for f in frames {
            let fb = self.w.kms_fb(n, f.buf)?;
            let plane = self.w.nodes[n]
                .inputs
                .iter()
                .position(|&li| li == f.link)
                .unwrap_or(0);
            let expect = Expect::Exact {
                frame: f.frame,
                checksum: f.expected,
            };
            commit.set(u32::try_from(plane).unwrap_or(u32::MAX), fb, expect);
            names.push(self.w.buf(f.buf).name.clone());
        }
        let name = names.join(", ");
        let Some(k) = self.w.kms.get_mut(&n) else {
            return Err(RunFailure {
                errno: "ENODEV".into(),
                message: "no display".into(),
            });
        };
        k.waiting_since = None;
        k.display
            .atomic_commit(&commit, None)
            .map_err(|e| fail(format!("{name}: ATOMIC: {e}"), &e))?;
        let latched = k
            .display
            .latch()
            .map_err(|e| fail(format!("{name}: vblank: {e}"), &e))?;
        if latched.scanouts.is_empty() {
            // The commit failed: its flips go, the frames on screen stay (the driver's planes
            // and `on_screen` both), released by the next commit that latches; the job fails,
            // so its own buffers go back with the node's queued frames (Sched::fail_job).
            drop(k.display.cancel_flips());
            return Err(RunFailure {
                errno: "EAGAIN".into(),
                message: format!("{name}: the commit did not latch at its vblank (fences)"),
            });
        }
        let off: Vec<usize> = latched
            .vblank
            .released
            .iter()
            .filter_map(|fb| k.fbs.iter().find(|(_, f)| *f == fb).map(|(&b, _)| b))
            .collect();
        let mut inputs = Vec::with_capacity(frames.len());
        let mut expects = Vec::with_capacity(frames.len());
        let mut shown = Vec::with_capacity(frames.len());
        for mut scan in latched.scanouts {
            let bi = k.fbs.iter().find(|(_, f)| **f == scan.fb).map(|(&b, _)| b);
            if let Some(bi) = bi {
                k.on_screen.insert(scan.plane, bi);
                shown.push(bi);
            }
            expects.push(scan.expect);
            inputs.extend(scan.job.inputs.pop());
        }
        k.shown_from = VirtualTime(u64::MAX);
        k.releasing.insert(id, off);
        k.expects.insert(id, expects);
        k.flipping.insert(id, shown);
        if inputs.len() != frames.len() {
            return Err(RunFailure {
                errno: "EINVAL".into(),
                message: "a scanout job without its framebuffer".into(),
            });
        }
        Ok(inputs)
    }

    /// What KMS display `n` shows: the buffer on screen for the runner, and the buffer whose
    /// framebuffer the driver scans out.
    #[cfg(test)]
    pub(crate) fn kms_screen(&self, n: usize) -> (Option<usize>, Option<usize>) {
        let Some(k) = self.w.kms.get(&n) else {
            return (None, None);
        };
        let fb = k.display.scanout();
        let driver = k.fbs.iter().find(|(_, f)| Some(**f) == fb).map(|(&b, _)| b);
        (k.on_screen.get(&0).copied(), driver)
    }

    /// The buffers job `id`'s latch takes off screen (released at its vblank).
    #[cfg(test)]
    pub(crate) fn kms_releasing(&self, id: u64) -> Option<Vec<usize>> {
        self.w
            .kms
            .values()
            .find_map(|k| k.releasing.get(&id).cloned())
    }

    /// KMS display `n`'s job starts at `start` (the vblank that latched its flip): its frame
    /// is on screen from then.
    pub(crate) fn kms_started(&mut self, n: usize, start: VirtualTime) {
        let Some(k) = self.w.kms.get_mut(&n) else {
            return;
        };
        k.shown_from = start;
        // The job being started is `next_job` (kms_flip's id): at its vblank the frame it
        // replaces is released.
        if k.releasing.contains_key(&self.next_job) {
            let _ = self.q.push(start, super::sched::Ev::Latch(self.next_job));
        }
        // A swapchain's buffer is on screen from that vblank (super::swapchain).
        for bi in k.flipping.remove(&self.next_job).unwrap_or_default() {
            if let Err(e) = self.w.swap_scanout(bi, start) {
                self.errors.push(e);
            }
        }
    }

    /// Job `id`'s flip latched at its vblank `now`: the buffers it took off screen are
    /// released to their producers (module doc).
    pub(crate) fn kms_latched(&mut self, id: u64, now: VirtualTime) {
        let Some((&n, off)) = self
            .w
            .kms
            .iter_mut()
            .find_map(|(n, k)| k.releasing.remove(&id).map(|off| (n, off)))
        else {
            return;
        };
        for bi in off {
            let Some(b) = self.w.bufs[bi].as_ref() else {
                continue;
            };
            let label = format!("release {}", b.name);
            let track = self.w.nodes[n].track;
            self.w.trace.instant(track, &label, now);
            self.release(bi, n);
            // Unpinned now: if the end of a VRAM pressure found it on screen, it goes back.
            self.vram_restore_pending(bi, now);
        }
    }

    /// Job `id` of node `n` ended with effects `fx` (`None`: no result came): if `n` is a KMS
    /// display, the driver judges what the scanout read ([`Display::scanned`]: its verified
    /// and corrupted counters), and `true` (its own input stays on screen; what its latch
    /// took off screen went at the vblank, [`Self::kms_latched`]).
    pub(crate) fn kms_done(
        &mut self,
        id: u64,
        n: usize,
        fx: Option<&drivers::job::JobEffects>,
    ) -> bool {
        let Some(k) = self.w.kms.get_mut(&n) else {
            return false;
        };
        if let (Some(expects), Some(fx)) = (k.expects.remove(&id), fx) {
            k.display.scanned_planes(&expects, fx);
        }
        // A latch event not run yet (none is lost: it comes at the job's start).
        let off = k.releasing.remove(&id).unwrap_or_default();
        for bi in off {
            self.release(bi, n);
        }
        true
    }

    /// The display's CRTC goes off (detach, kill, STREAMOFF): the frame on screen is released,
    /// and framebuffers are removed when `rm` (the node leaves).
    pub(crate) fn kms_off(&mut self, n: usize, rm: bool) {
        let Some(k) = self.w.kms.get_mut(&n) else {
            return;
        };
        drop(k.display.disable());
        let shown = std::mem::take(&mut k.on_screen);
        if rm {
            for (_, fb) in std::mem::take(&mut k.fbs) {
                let _ = k.display.rm_fb(fb);
            }
        }
        for bi in shown.into_values() {
            if self.w.bufs[bi].is_some() {
                self.release(bi, n);
            }
        }
    }

    /// Whether KMS display `n` waits before committing its next frame: the buffer's implicit
    /// WRITE fence (its producer's out-fence) has not signalled on the loop yet (module doc).
    pub(crate) fn kms_waits(&mut self, n: usize, bi: usize, now: VirtualTime) -> bool {
        if !self.w.is_kms(n) {
            return false;
        }
        if let Err(e) = self.w.kms_open(n) {
            self.errors.push(e);
            return false;
        }
        let pending = !self
            .w
            .buf(bi)
            .buf
            .resv()
            .test_signaled(fence::DmaResvUsage::Write);
        if pending {
            if let Some(k) = self.w.kms.get_mut(&n) {
                k.waiting_since.get_or_insert(now);
            }
        }
        pending
    }

    /// When KMS display `n` could have started its job at `now`: when it first waited for a
    /// frame's fence (module doc), else `now`.
    pub(crate) fn kms_ready_from(&self, n: usize, now: VirtualTime) -> VirtualTime {
        self.w
            .kms
            .get(&n)
            .and_then(|k| k.waiting_since)
            .map_or(now, |t| t.min(now))
    }
}
