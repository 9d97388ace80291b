//! The GPU exporter's side of a run: starting the driver, peer-to-peer importers, and VRAM
//! pressure that evicts shared buffers and gives them back.
//!
//! # The concept
//! A `gpu` node with `p2p = true` starts its driver with [`drivers::gpu::GpuConfig::p2p`] on,
//! and every device that attaches a buffer the GPU exports attaches it **dynamically**
//! ([`dmabuf::DmaBuf::dynamic_attach`]) with a [`P2pImporter`] that allows peer-to-peer: the
//! GPU itself (it renders through its own attachment) and the display (a DRM/KMS importer, so
//! it reads such a link through that attachment, not through a vb2 queue). Every importer that
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
//! # Rules
//! 1. A pressure event and its end apply with no job holding a mapping (the loop's barrier), so
//!    a move never races a job's bytes (`--engine-threads`).
//! 2. A buffer that cannot go back to VRAM (still no room) stays where it is; that is not an
//!    error.

use super::sched::Sched;
use super::world::{ExporterHandle, RunFailure, World};
use crate::clock::VirtualTime;
use crate::report::GpuReport;
use crate::schema::NodeDesc;
use dmabuf::{Attachment, ImporterOps};
use drivers::gpu::Placement;
use fence::ResvGuard;
use std::sync::atomic::{AtomicU64, Ordering};

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
            ..Default::default()
        };
        if let Some(v) = node.params.vram.clone().or_else(|| {
            let mut dl = self
                .kernel
                .soc()
                .desc()
                .banks
                .iter()
                .filter(|b| b.kind == soc::BankKind::DeviceLocal);
            match (dl.next(), dl.next()) {
                (Some(b), None) => Some(b.name.clone()),
                _ => None,
            }
        }) {
            cfg.vram_bank = v;
        }
        let gpu = drivers::gpu::Gpu::new(self.kernel.dma(), cfg).map_err(|e| {
            RunFailure::new(&e, format!("starting the GPU driver on {device}: {e}"))
        })?;
        self.gpus.insert(device.to_string(), gpu.clone());
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

/// A buffer's placement and the `move_notify` calls its importers got.
type Snapshot = Vec<(usize, Option<Placement>, u64)>;

impl Sched<'_> {
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
                let users: Vec<usize> = self.w.buf(bi).atts.keys().copied().collect();
                for n in users {
                    let track = self.w.nodes[n].track;
                    self.w
                        .trace
                        .instant(track, &format!("move_notify {name}"), now);
                }
            }
            if after != p {
                let copy = self
                    .w
                    .time
                    .copy_time(gpu.device().name(), size)
                    .unwrap_or_default();
                let from = p.map_or("none".into(), |p| p.to_string());
                let to = after.map_or("none".into(), |p| p.to_string());
                let engine = gpu.device().name().to_string();
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
                self.errors
                    .push(RunFailure::new(&e, format!("vram pressure on {bank}: {e}")));
                None
            }
        }
    }

    /// The pressure is gone: evicted buffers that prefer VRAM go back (rule 2).
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
                    if bo.preferred() == Placement::Vram {
                        let _ = gpu.validate(bo, Placement::Vram);
                    }
                }
            }
            self.gpu_moved(&gpu, before, now, "restored: VRAM pressure released");
        }
    }
}
