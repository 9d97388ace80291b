//! The GPU exporter's side of a run: starting the driver, peer-to-peer importers, and VRAM
//! pressure that evicts shared buffers and gives them back.
//!
//! What a move cost is the driver's record ([`drivers::gpu::GpuBo::last_move`]: the copy on
//! the machine's time model for the GPU's engine); the runner charges that to the engine and
//! never computes a cost itself.
//!
//! # The concept
//! A `gpu` node with `p2p = true` starts its driver with [`drivers::gpu::GpuConfig::p2p`] on,
//! and every device that attaches a buffer the GPU exports attaches it **dynamically**
//! ([`dmabuf::DmaBuf::dynamic_attach`]) with a [`P2pImporter`] that allows peer-to-peer: the
//! GPU itself (it renders through its own attachment) and the display (a DRM/KMS importer: its
//! node attachment, and its framebuffers' own, never a vb2 queue). Every importer that
//! reaches VRAM (through its IOMMU or a wide enough mask) lets the buffer stay there.
//!
//! A `vram_pressure` event allocates a VRAM-only object of the asked size; the GPU's TTM
//! manager evicts the least recently used shared buffers to GTT (system pages), copying their
//! bytes with the GPU's DMA engine and calling `move_notify` on each dynamic attachment. The
//! runner maps every buffer per job, so the next job of each importer maps the new storage and
//! its checks keep verifying. When the pressure ends, the runner validates the evicted buffers
//! back into VRAM (another move). Each move is a migration in the report and the trace, each
//! `move_notify` an instant on the importer's track, and the driver's counters go to the
//! report's `gpus`.
//!
//! A `gpu` node's jobs are the driver's: the node's process has a [`drivers::gpu::GpuVm`], its
//! buffers are GEM objects ([`World::gpu_import`]: the GPU's own export comes back as itself,
//! any other dma-buf is PRIME-imported through a dynamic attachment, read-only for an input),
//! and each composite is a
//! ring job ([`drivers::gpu::Job::device`]) submitted with [`drivers::gpu::Gpu::submit`]: the
//! driver maps the objects in the VM (hits after the first use), waits on their reservation
//! objects' fences (implicit sync) and adds its ring fence to them, which is the job's
//! out-fence. Deterministic runs use a manual ring: the runner starts the job at its start
//! (its bytes on the run's pool) and retires it when it collects it (module `inflight`; the
//! fence signals then, stamped with the job's end), or runs it at once if it runs alone;
//! `--engine-threads` the ring's own thread.
//!
//! A display reads such a link through KMS ([`super::kms`]): it imports each buffer
//! dynamically (peer-to-peer allowed) and each flip pins its buffer until the flip that
//! replaces it latches, as `amdgpu_dm_plane_helper_prepare_fb` / `cleanup_fb` do. The buffer
//! on screen is therefore never evicted: the pressure takes the others, and fails with
//! `ENOMEM` (a run error) if only the pinned one could have made room.
//!
//! # Rules
//! 1. A pressure event and its end apply with no job holding a mapping (the loop's barrier), so
//!    a move never races a job's bytes (`--engine-threads`).
//! 2. A buffer that cannot go back to VRAM (still no room) stays where it is; that is not an
//!    error.
//! 3. A buffer pinned on screen when the pressure ends goes back once the display released
//!    it (the vblank that latched the next flip), not before: a pinned object never moves.

use super::sched::Sched;
use super::world::{ExporterHandle, RunFailure, World};
use crate::clock::VirtualTime;
use crate::report::GpuReport;
use crate::schema::NodeDesc;
use dmabuf::{Attachment, ImporterOps};
use drivers::gpu::Placement;
use fence::ResvGuard;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The dynamic importer the runner attaches a p2p GPU's buffers with: it allows peer-to-peer
/// and counts `move_notify` calls (the runner maps per job, so there is no table to drop).
#[derive(Debug, Default)]
pub(crate) struct P2pImporter {
    notifies: AtomicU64,
}

impl P2pImporter {
    /// `move_notify` calls so far.
    pub(crate) fn notifies(&self) -> u64 {
        self.notifies.load(Ordering::Relaxed)
    }
}

impl ImporterOps for P2pImporter {
    fn move_notify(&self, _att: &Attachment, _resv: &mut ResvGuard<'_>) {
        self.notifies.fetch_add(1, Ordering::Relaxed);
    }

    fn allow_peer2peer(&self) -> bool {
        true
    }
}

impl World {
    /// The GPU driver of `node`'s device, started on first use.
    pub(crate) fn gpu_for(&mut self, node: &NodeDesc) -> Result<drivers::gpu::Gpu, RunFailure> {
        let device = node.device.as_str();
        if let Some(g) = self.gpus.get(device) {
            return Ok(g.clone());
        }
        let mut cfg = drivers::gpu::GpuConfig {
            device: device.to_string(),
            p2p: node.params.p2p == Some(true),
            ring: if self.threads {
                drivers::gpu::RingMode::Thread
            } else {
                drivers::gpu::RingMode::Manual
            },
            ..Default::default()
        };
        // Its VRAM: the bank `vram` names, else the only device-local bank; none at all is an
        // integrated GPU (its objects live in GTT).
        let mut dl = self
            .kernel
            .soc()
            .desc()
            .banks
            .iter()
            .filter(|b| b.kind == soc::BankKind::DeviceLocal);
        match (node.params.vram.clone(), dl.next(), dl.next()) {
            (Some(v), _, _) => cfg.vram_bank = Some(v),
            (None, Some(b), None) => cfg.vram_bank = Some(b.name.clone()),
            (None, None, _) => cfg.vram_bank = None,
            (None, Some(_), Some(_)) => {}
        }
        let gpu = drivers::gpu::Gpu::new(self.kernel.dma(), cfg).map_err(|e| {
            RunFailure::new(&e, format!("starting the GPU driver on {device}: {e}"))
        })?;
        self.gpus.insert(device.to_string(), gpu.clone());
        Ok(gpu)
    }

    /// GPU node `n` takes buffer `bi` as a GEM object (`drm_gem_prime_import`): its own export
    /// comes back as itself, a foreign dma-buf is attached dynamically for the GPU.
    pub(crate) fn gpu_import(&mut self, bi: usize, n: usize) -> Result<(), RunFailure> {
        if self.bufs[bi]
            .as_ref()
            .is_none_or(|b| b.gpu_bos.contains_key(&n))
        {
            return Ok(());
        }
        let desc = self.nodes[n].desc.clone();
        let gpu = self.gpu_for(&desc)?;
        // What it only reads (an input link) it imports read-only (mapped DMA_TO_DEVICE).
        let li = self.buf(bi).link;
        let reads = self.links[li].from != n;
        let needs: dmabuf::ImporterPriv = Arc::new(self.link_needs(li));
        let b = self.buf_mut(bi);
        let bo = gpu.import_with(&b.buf, reads, Some(needs));
        let bo = bo.map_err(|e| {
            RunFailure::new(&e, format!("{} importing {}: {e}", desc.device, b.name))
        })?;
        b.gpu_bos.insert(n, bo);
        Ok(())
    }

    /// GPU node `n` lets buffer `bi` go: out of its VM (after the object's fences), and the
    /// import's reference dropped (which detaches it once nothing else holds it).
    pub(crate) fn gpu_release(&mut self, bi: usize, n: usize) {
        let Some(bo) = self.bufs[bi].as_mut().and_then(|b| b.gpu_bos.remove(&n)) else {
            return;
        };
        if let Some(vm) = &self.nodes[n].vm {
            // Not mapped (never used) is fine.
            let _ = vm.unmap(&bo);
        }
    }

    /// Buffer `bi` is going: every GPU node lets it go.
    pub(crate) fn gpu_forget(&mut self, bi: usize) {
        let users: Vec<usize> = self.bufs[bi]
            .as_ref()
            .map(|b| b.gpu_bos.keys().copied().collect())
            .unwrap_or_default();
        for n in users {
            self.gpu_release(bi, n);
        }
    }

    /// The GPU driver and address space of GPU node `n` (the VM made on first use).
    pub(crate) fn gpu_node(&mut self, n: usize) -> Result<drivers::gpu::Gpu, RunFailure> {
        let desc = self.nodes[n].desc.clone();
        let gpu = self.gpu_for(&desc)?;
        if self.nodes[n].vm.is_none() {
            self.nodes[n].vm = Some(drivers::gpu::GpuVm::new(&gpu, desc.process_name()));
        }
        Ok(gpu)
    }

    /// Whether link `li`'s buffers come from a GPU exporter with peer-to-peer on (its consumers
    /// attach dynamically and read without a vb2 queue).
    pub(crate) fn link_is_p2p(&self, li: usize) -> bool {
        let l = &self.links[li];
        l.desc.effective_exporter() == Some(crate::schema::Exporter::Gpu)
            && self.nodes[l.from].desc.params.p2p == Some(true)
    }

    /// The report's `gpus`: every GPU driver's counters, with the `move_notify` calls its
    /// importers got.
    pub(crate) fn gpu_reports(&self) -> Vec<GpuReport> {
        self.gpus
            .iter()
            .map(|(device, gpu)| {
                let st = gpu.ttm_stats();
                GpuReport {
                    device: device.clone(),
                    p2p: gpu.config().p2p,
                    evictions: st.evictions,
                    evicted_bytes: st.evicted_bytes,
                    moves: st.moves,
                    moved_bytes: st.moved_bytes,
                    move_notifies: self.move_notifies.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

/// Where a GPU job's effects come from once its ring ran it.
type GpuEffects = std::sync::mpsc::Receiver<drivers::job::JobEffects>;

/// The effects of a job that never ran: `why`, and nothing verified.
fn refused(why: String) -> drivers::job::JobEffects {
    drivers::job::JobEffects::failed(&why)
}

/// A buffer's placement and the `move_notify` calls its importers got.
type Snapshot = Vec<(usize, Option<Placement>, u64)>;

impl Sched<'_> {
    /// GPU node `n`'s composite `io` of buffers `inputs` into `outputs` (buffer indices), as a
    /// ring job through [`drivers::gpu::Gpu::submit`] (module doc): the job's result and its
    /// out-fence (the ring's). A job the driver refused is a run error and its result says so
    /// (no fence), which its completion counts as a failed job.
    pub(crate) fn gpu_job(
        &mut self,
        n: usize,
        io: drivers::job::DeviceJob,
        (inputs, outputs): (&[usize], &[usize]),
        end: VirtualTime,
        label: &str,
        concurrent: bool,
    ) -> (super::workers::Pending, Option<super::fences::JobFence>) {
        // Held while a reader skips its fence wait (module `faults`).
        let run_now = self.workers.is_some() || !self.defers(n);
        let who = self.w.nodes[n].desc.name.clone();
        self.fence_check(n, inputs, outputs);
        let submitted = self.gpu_submit(n, io, inputs, outputs);
        let (gpu, fence, rx) = match submitted {
            Ok(x) => x,
            Err(e) => {
                let fx = refused(format!("{who}: {}", e.message));
                self.errors.push(RunFailure {
                    errno: e.errno,
                    message: format!("{who}: {}", e.message),
                });
                return (super::workers::Pending::ready(fx), None);
            }
        };
        // A manual ring starts it now, its bytes on the pool while the loop goes on, and it is
        // retired when collected (module `inflight`); one that runs alone runs now, unless held.
        if concurrent {
            self.note_job_start(n);
            gpu.start_pending();
        } else if run_now {
            gpu.run_pending();
        }
        let engine = self.w.nodes[n].engine_name.clone();
        self.fences.adopt(&engine, &fence);
        let jf = super::fences::JobFence {
            fence,
            track: self.w.nodes[n].track,
            end,
            label: label.to_string(),
            driver: true,
            done: false,
        };
        let result = match concurrent {
            true => super::inflight::ring_running(gpu, &jf.fence, end, rx),
            false => super::workers::Pending::waiting(rx),
        };
        (result, Some(jf))
    }

    /// Submits GPU node `n`'s job: the driver, the ring fence, where the effects come.
    fn gpu_submit(
        &mut self,
        n: usize,
        io: drivers::job::DeviceJob,
        inputs: &[usize],
        outputs: &[usize],
    ) -> Result<(drivers::gpu::Gpu, fence::DmaFence, GpuEffects), RunFailure> {
        let gpu = self.w.gpu_node(n)?;
        let bo = |bi: usize| self.w.buf(bi).gpu_bos.get(&n).cloned();
        let reads: Option<Vec<_>> = inputs.iter().map(|&b| bo(b)).collect();
        let writes: Option<Vec<_>> = outputs.iter().map(|&b| bo(b)).collect();
        let (Some(reads), Some(writes)) = (reads, writes) else {
            return Err(RunFailure {
                errno: "ENOENT".into(),
                message: "a buffer of its job is not imported into its GPU".into(),
            });
        };
        let (job, rx) = drivers::gpu::Job::device(io, &reads, &writes);
        let vm = self.w.nodes[n].vm.as_ref().ok_or_else(|| RunFailure {
            errno: "EINVAL".into(),
            message: "no GPU address space".into(),
        })?;
        let fence = gpu.submit(vm, job).map_err(|e| {
            let names: Vec<&str> = inputs
                .iter()
                .chain(outputs)
                .map(|&b| self.w.buf(b).name.as_str())
                .collect();
            RunFailure::new(
                &e,
                format!("submitting its job on {}: {e}", names.join(", ")),
            )
        })?;
        Ok((gpu, fence, rx))
    }

    fn gpu_snapshot(&self) -> Snapshot {
        self.w
            .bufs
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let b = b.as_ref()?;
                match &b.exporter {
                    ExporterHandle::Gpu(bo) => Some((
                        i,
                        bo.placement(),
                        b.importer.as_ref().map_or(0, |imp| imp.notifies()),
                    )),
                    _ => None,
                }
            })
            .collect()
    }

    /// Records what moved since `before`: a migration per buffer whose placement changed, a
    /// `move_notify` instant per call on the importer's track, and adds the calls to the total.
    fn gpu_moved(
        &mut self,
        gpu: &drivers::gpu::Gpu,
        before: Snapshot,
        now: VirtualTime,
        why: &str,
    ) {
        for (bi, p, notified) in before {
            let (after, notifies, size) = {
                let b = self.w.buf(bi);
                let after = match &b.exporter {
                    ExporterHandle::Gpu(bo) => bo.placement(),
                    _ => None,
                };
                let n = b.importer.as_ref().map_or(0, |imp| imp.notifies());
                (after, n, b.buf.size())
            };
            if notifies > notified {
                self.w
                    .move_notifies
                    .fetch_add(notifies - notified, Ordering::Relaxed);
                let name = self.w.buf(bi).name.clone();
                let b = self.w.buf(bi);
                let users: Vec<usize> = b.atts.keys().chain(b.gpu_bos.keys()).copied().collect();
                for n in users {
                    let track = self.w.nodes[n].track;
                    self.w
                        .trace
                        .instant(track, &format!("move_notify {name}"), now);
                }
            }
            if after != p {
                // The driver's own record of the move: its copy's cost on the machine's time
                // model, and the engine that copied.
                let (copy, engine) = match &self.w.buf(bi).exporter {
                    ExporterHandle::Gpu(bo) => bo.last_move().map_or_else(
                        || (VirtualTime::ZERO, gpu.device().name().to_string()),
                        |m| (VirtualTime::from_ns(m.copy_ns), m.engine),
                    ),
                    _ => (VirtualTime::ZERO, gpu.device().name().to_string()),
                };
                let from = p.map_or("none".into(), |p| p.to_string());
                let to = after.map_or("none".into(), |p| p.to_string());
                let name = self.w.buf(bi).name.clone();
                let track = self.w.trace.track("events");
                let what = if after == Some(Placement::Vram) {
                    "restore"
                } else {
                    "evict"
                };
                self.w
                    .trace
                    .instant(track, &format!("{what} {name}: {from} -> {to}"), now);
                self.record_migration(bi, now, &from, &to, size, copy, why, &engine);
            }
        }
    }

    /// Another client takes `bytes` of VRAM `bank` of `gpu`: what it evicts is recorded.
    pub(crate) fn vram_pressure(
        &mut self,
        gpu: &drivers::gpu::Gpu,
        bank: &str,
        bytes: u64,
        now: VirtualTime,
    ) -> Option<drivers::gpu::GpuBo> {
        let before = self.gpu_snapshot();
        match gpu.create_bo(drivers::gpu::BoDesc::vram_only("pressure", bytes)) {
            Ok(bo) => {
                let why = format!(
                    "evicted: {} of {bank} taken by another client",
                    soc::human_size(bytes)
                );
                self.gpu_moved(gpu, before, now, &why);
                Some(bo)
            }
            Err(e) => {
                // What it evicted before finding no more room stays evicted (TTM does not
                // undo evictions): those moves are recorded too.
                let why = format!(
                    "evicted: {} of {bank} asked by another client (the allocation failed)",
                    soc::human_size(bytes)
                );
                self.gpu_moved(gpu, before, now, &why);
                self.errors
                    .push(RunFailure::new(&e, format!("vram pressure on {bank}: {e}")));
                None
            }
        }
    }

    /// The pressure is gone: evicted buffers that prefer VRAM go back (rule 2); one pinned on
    /// screen goes back when the display lets it go (rule 3, [`Self::vram_restore_pending`]).
    pub(crate) fn vram_restore(&mut self, now: VirtualTime) {
        let gpus: Vec<drivers::gpu::Gpu> = self.w.gpus.values().cloned().collect();
        for gpu in gpus {
            if !gpu.config().p2p {
                continue;
            }
            let before = self.gpu_snapshot();
            for &(bi, p, _) in &before {
                if p == Some(Placement::Vram) {
                    continue;
                }
                if let ExporterHandle::Gpu(bo) = &self.w.buf(bi).exporter {
                    if bo.preferred() != Placement::Vram {
                        continue;
                    }
                    if bo.pin_count() > 0 {
                        self.w.vram_pending.insert(bi);
                    } else {
                        let _ = gpu.validate(bo, Placement::Vram);
                    }
                }
            }
            self.gpu_moved(&gpu, before, now, "restored: VRAM pressure released");
        }
    }

    /// Buffer `bi` left the screen (unpinned): if the end of a VRAM pressure found it pinned,
    /// it goes back to VRAM now (rule 3).
    pub(crate) fn vram_restore_pending(&mut self, bi: usize, now: VirtualTime) {
        if !self.w.vram_pending.remove(&bi) {
            return;
        }
        let Some(ExporterHandle::Gpu(bo)) = self.w.bufs[bi].as_ref().map(|b| &b.exporter) else {
            return;
        };
        let bo = bo.clone();
        let gpus: Vec<drivers::gpu::Gpu> = self.w.gpus.values().cloned().collect();
        for gpu in gpus {
            let before = self.gpu_snapshot();
            // Another GPU's object is refused (ForeignBo) and nothing moves.
            let _ = gpu.validate(&bo, Placement::Vram);
            self.gpu_moved(
                &gpu,
                before,
                now,
                "restored once off screen: VRAM pressure released",
            );
        }
    }
}
