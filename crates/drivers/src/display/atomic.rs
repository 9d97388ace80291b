//! Planes and atomic commits: a CRTC with a primary plane and overlays, each commit flipping
//! every plane it names at one vblank, and the vertical blank's latch.
//!
//! C side: `drivers/gpu/drm/drm_atomic_uapi.c` (`drm_mode_atomic_ioctl`: an unknown object is
//! `ENOENT`; a plane named twice in one commit just has its property set twice, the last
//! value wins; `OUT_FENCE_PTR` is one fence per CRTC), `drm_atomic.c` (`drm_atomic_plane_check`:
//! a source rectangle outside the framebuffer is `ENOSPC`), `drm_atomic_helper.c`
//! (`drm_atomic_helper_wait_for_fences` waits for every plane's fence before the commit goes to
//! the hardware, so the planes flip together; `drm_atomic_helper_setup_commit`: a nonblocking
//! commit while the CRTC's previous one is pending is `EBUSY`; `drm_atomic_helper_cleanup_planes`
//! cleans up each plane's old framebuffer once the new state is on screen).
//!
//! # Rules (the parent module's rule 10)
//! 1. A commit names planes by id (0 is the primary); an id past the CRTC's planes is `ENOENT`,
//!    an unknown framebuffer `ENOENT`; a plane named twice takes its last entry.
//! 2. Each entry's source rectangle (`SRC_W`, `SRC_H`) must fit its framebuffer: `ENOSPC`.
//! 3. The commit is one flip: it latches at the first vblank where the fences of every plane
//!    it names have signaled (all planes at once, or none), its one out-fence signals then, and
//!    each plane's old framebuffer is released (its pin goes) at that vblank. Planes it does
//!    not name keep what they show.
//! 4. A fence that signaled with an error drops the whole commit (rule 4 of the parent).
//!
//! Locking: as the parent module: pins (`prepare_fb`) and unpins are done without the state
//! lock held.

use super::*;

/// A plane of the CRTC: 0 is the primary, then the overlays.
pub type PlaneId = u32;

/// One plane's part of an [`AtomicCommit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneSet {
    /// The plane.
    pub plane: PlaneId,
    /// Its new framebuffer (`FB_ID`).
    pub fb: FbId,
    /// Its source rectangle's size (`SRC_W`, `SRC_H`); `None`: the framebuffer's whole size.
    pub src: Option<(u32, u32)>,
    /// What its frame must be.
    pub expect: Expect,
}

/// `DRM_IOCTL_MODE_ATOMIC` of one CRTC's planes (module rules).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AtomicCommit {
    /// The planes it sets, in the order given.
    pub planes: Vec<PlaneSet>,
}

impl AtomicCommit {
    /// Sets `plane` to show `fb` (its whole size), whose frame must be `expect`.
    pub fn set(&mut self, plane: PlaneId, fb: FbId, expect: Expect) -> &mut Self {
        self.planes.push(PlaneSet {
            plane,
            fb,
            src: None,
            expect,
        });
        self
    }
}

impl Display {
    /// The CRTC's planes (primary and overlays).
    pub fn planes(&self) -> u32 {
        self.state.lock().planes.len() as u32
    }

    /// The framebuffer plane `plane` scans out.
    pub fn plane_fb(&self, plane: PlaneId) -> Option<FbId> {
        self.state
            .lock()
            .planes
            .get(plane as usize)
            .copied()
            .flatten()
    }

    /// `DRM_IOCTL_MODE_ATOMIC` (nonblocking, with a page-flip event and `OUT_FENCE_PTR`):
    /// checks `c` (module rules 1-2), pins each dynamically imported framebuffer (parent rule
    /// 9), and queues it for the vblank where every plane's fences (each buffer's implicit
    /// WRITE fences, or `in_fence` and the KERNEL ones) have signaled. Returns the commit's
    /// out-fence. `EBUSY` while another commit is pending (parent rule 7).
    pub fn atomic_commit(
        &self,
        c: &AtomicCommit,
        in_fence: Option<DmaFence>,
    ) -> Result<DmaFence, MediaError> {
        self.commit(c, in_fence)
    }

    pub(super) fn commit(
        &self,
        c: &AtomicCommit,
        in_fence: Option<DmaFence>,
    ) -> Result<DmaFence, MediaError> {
        // Rule 1: the last entry of a plane counts.
        let mut sets: BTreeMap<PlaneId, PlaneSet> = BTreeMap::new();
        for p in &c.planes {
            sets.insert(p.plane, *p);
        }
        let imports = {
            let st = self.state.lock();
            let mut imports = Vec::with_capacity(sets.len());
            for p in sets.values() {
                if p.plane as usize >= st.planes.len() {
                    return Err(MediaError::NotFound(format!(
                        "no plane {} (the CRTC has {})",
                        p.plane,
                        st.planes.len()
                    )));
                }
                let f = st
                    .fbs
                    .get(&p.fb)
                    .ok_or_else(|| MediaError::NotFound(format!("no framebuffer {}", p.fb)))?;
                // Rule 2.
                if let Some((w, h)) = p.src {
                    if w > f.size.0 || h > f.size.1 {
                        return Err(MediaError::NoSpace(format!(
                            "plane {}: a {w}x{h} source does not fit framebuffer {} ({}x{})",
                            p.plane, p.fb, f.size.0, f.size.1
                        )));
                    }
                }
                imports.push(f.import.clone());
            }
            // Parent rule 7: one commit at a time.
            if let Some(p) = st.queue.front() {
                return Err(MediaError::Busy(format!(
                    "a commit of framebuffer {} is pending (wait for its vblank)",
                    p.updates.first().map_or(0, |u| u.fb)
                )));
            }
            imports
        };
        // Parent rule 9: prepare_fb of every plane, without the state lock.
        let mut segments = Vec::with_capacity(imports.len());
        for (k, i) in imports.iter().enumerate() {
            match i.prepare() {
                Ok(s) => segments.push(s),
                Err(e) => {
                    self.cleanup(imports[..k].to_vec());
                    return Err(e);
                }
            }
        }
        let mut st = self.state.lock();
        if let Some(p) = st.queue.front() {
            let pending = p.updates.first().map_or(0, |u| u.fb);
            drop(st);
            self.cleanup(imports);
            return Err(MediaError::Busy(format!(
                "a commit of framebuffer {pending} is pending (wait for its vblank)"
            )));
        }
        // Parent rule 3: an explicit in-fence overrules the implicit WRITE fences (KERNEL ones,
        // memory moves, are always waited for).
        let usage = match in_fence {
            Some(_) => DmaResvUsage::Kernel,
            None => DmaResvUsage::Write,
        };
        let mut fences: Vec<DmaFence> = imports
            .iter()
            .flat_map(|i| i.buf.resv().get_fences(usage))
            .collect();
        fences.extend(in_fence);
        st.seqno += 1;
        let done = DmaFence::new(self.ops.clone(), self.context, st.seqno);
        let updates = sets
            .values()
            .zip(segments)
            .map(|(p, segments)| PlaneUpdate {
                plane: p.plane,
                fb: p.fb,
                segments,
                expect: p.expect,
            })
            .collect();
        st.queue.push_back(Flip {
            updates,
            fences,
            done: done.clone(),
        });
        st.stats.flips += 1;
        Ok(done)
    }

    /// The vertical blank's latch: completes the oldest ready commit and releases the frames
    /// it replaces (module rule 3, parent rules 3 and 4); each new frame's scanout is a
    /// returned job, for the caller to execute (on its pool, on its clock) and to judge with
    /// [`Self::scanned`]. The replaced frames' and dropped commits' pins go (parent rule 9).
    pub fn latch(&self) -> Result<Latched, MediaError> {
        let mut unpin = Vec::new();
        let out = self.latch_locked(&mut unpin);
        self.cleanup(unpin);
        out
    }

    fn latch_locked(&self, unpin: &mut Vec<Arc<FbImport>>) -> Result<Latched, MediaError> {
        let mut out = Vblank::default();
        let mut st = self.state.lock();
        st.stats.vblanks += 1;
        let flip = loop {
            let Some(flip) = st.queue.pop_front() else {
                break None;
            };
            match self.flip_ready(&flip) {
                (false, _) => {
                    st.queue.push_front(flip);
                    st.stats.missed += 1;
                    break None;
                }
                (true, Some(e)) => {
                    let _ = flip.done.set_error(e);
                    let _ = flip.done.signal();
                    st.stats.dropped += 1;
                    for u in &flip.updates {
                        unpin.extend(Self::import_of(&st, u.fb));
                        out.released.push(u.fb);
                    }
                }
                (true, None) => break Some(flip),
            }
        };
        let Some(flip) = flip else {
            return Ok(Latched {
                vblank: out,
                scanouts: Vec::new(),
            });
        };
        let mut scanouts = Vec::with_capacity(flip.updates.len());
        for u in flip.updates {
            let fb = st
                .fbs
                .get(&u.fb)
                .ok_or_else(|| MediaError::Invalid(format!("framebuffer {} vanished", u.fb)))?;
            // The scanout job: the framebuffer's planes at the addresses the commit programmed
            // (no mapping and no host buffer per frame).
            let input = JobInput {
                view: DmaView::from_segments(self.dev.clone(), &u.segments),
                planes: fb.planes.clone(),
                expected: match u.expect {
                    Expect::Exact { checksum, .. } | Expect::Checksum(checksum) => checksum,
                    _ => 0,
                },
                frame: match u.expect {
                    Expect::Exact { frame, .. } => frame,
                    Expect::Frame(n) => u64::from(n),
                    _ => 0,
                },
            };
            let job = DeviceJob::new(Op::Scanout).input(input);
            st.stats.shown += 1;
            st.stats.bytes_read += job.bytes().0;
            let slot = &mut st.planes[u.plane as usize];
            if let Some(old) = slot.replace(u.fb) {
                // Its commit's pin goes, even when the same framebuffer is shown again (the
                // new commit holds its own).
                unpin.extend(Self::import_of(&st, old));
                if old != u.fb {
                    out.released.push(old);
                }
            }
            out.shown.get_or_insert(u.fb);
            out.cost += job.cost(&self.dev);
            scanouts.push(Scanout {
                fb: u.fb,
                job,
                expect: u.expect,
                plane: u.plane,
            });
        }
        let _ = flip.done.signal();
        Ok(Latched {
            vblank: out,
            scanouts,
        })
    }
}
