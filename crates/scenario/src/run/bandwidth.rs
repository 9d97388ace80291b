//! Shared memory bandwidth on the virtual clock: the runner's side of [`soc::bandwidth`].
//!
//! # The concept
//! Each job's bytes are attributed to the memory controllers serving the banks its buffers'
//! planes are placed in (the report's placement: a plane's bank). Planning a job, the runner
//! asks the controllers' [`Ledger`] what fair share each gives at the job's start (its
//! bandwidth over one more than the transfers in flight there) and the job lasts as long as
//! the slowest of: its own engine's time ([`drivers::job::DeviceJob::cost`]) and, per
//! controller, the device's latency plus its bytes at that share; the job's transfers are then
//! admitted over its span. So adding a device's traffic slows the jobs that start while it
//! streams. A machine without `[[soc.memory_controllers]]` is timed as before (nothing to
//! share), and bytes on a bank no controller serves are not limited. A GPU object's bytes
//! (a UMA GPU's GTT or SYSTEM pages, a VRAM range) go to the banks its storage's physical runs
//! are in ([`drivers::gpu::GpuBo::phys_ranges`]), so a UMA GPU's rendering and the scanout of
//! what it rendered load the same controller as the cameras writing into system memory.
//!
//! A display whose scanout, so slowed, does not end within one refresh period misses its
//! vblank: its FIFO underruns and the frame is not shown. The frame is dropped with cause
//! **`late`** at the display (`nodes[].dropped.late`), not counted delivered there.
//!
//! The per-controller utilisation over time is a counter series (`memory NAME utilisation`,
//! module `counters`).
//!
//! Locking and lifetime: single-threaded, on the runner's loop; the ledger forgets transfers
//! that ended before the last counter sample ([`Ledger::prune`]).

use super::sched::Sched;
use super::world::{ExporterHandle, World};
use crate::clock::VirtualTime;
use crate::schema::DriverKind;
use soc::bandwidth::Ledger;
use std::collections::{BTreeMap, BTreeSet};

/// The name of the cause, in `nodes[].dropped`.
pub(crate) const LATE: &str = "late";

/// The run's shared-bandwidth state (module doc).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The transfers admitted on each memory controller.
    pub ledger: Ledger,
    /// Jobs (by id) of displays whose scanout overran the refresh period.
    late: BTreeSet<u64>,
}

impl Shared {
    /// The state for a machine's memory controllers.
    pub(crate) fn new(soc: &soc::SocDesc) -> Shared {
        Shared {
            ledger: Ledger::new(&soc.memory_controllers),
            late: BTreeSet::new(),
        }
    }
}

impl Sched<'_> {
    /// The duration of node `n`'s job on `buffers` (its inputs and outputs), ready at `ready`,
    /// that its engine alone would finish in `duration`, with the memory controllers shared
    /// (module doc); admits its transfers. `job` is the id the job will get.
    pub(crate) fn contended(
        &mut self,
        n: usize,
        job: u64,
        buffers: &[usize],
        ready: VirtualTime,
        duration: VirtualTime,
    ) -> VirtualTime {
        if self.w.bandwidth.ledger.is_empty() {
            return duration;
        }
        let node = &self.w.nodes[n];
        let start = ready.max(
            self.w
                .engines
                .get(&node.engine_name)
                .map_or(VirtualTime::ZERO, |e| e.busy_until()),
        );
        let latency = self
            .w
            .time
            .device(&node.desc.device)
            .map_or(VirtualTime::ZERO, |t| t.latency);
        let per_mc = self.bytes_per_controller(buffers);
        let mut d = duration;
        for (mc, &bytes) in &per_mc {
            if let Some(ns) = self.w.bandwidth.ledger.share_ns(mc, start.as_ns(), bytes) {
                d = d.max(latency + VirtualTime(ns));
            }
        }
        let end = start + d;
        for (mc, bytes) in per_mc {
            self.w
                .bandwidth
                .ledger
                .admit(&mc, start.as_ns(), end.as_ns(), bytes);
        }
        let node = &self.w.nodes[n];
        if node.desc.driver == DriverKind::Display && d > node.desc.fps.tick(1) {
            self.w.bandwidth.late.insert(job);
        }
        d
    }

    /// Bytes of `buffers` per memory controller, from each plane's bank.
    fn bytes_per_controller(&self, buffers: &[usize]) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for &bi in buffers {
            let b = self.w.buf(bi);
            // A GPU object (GTT or SYSTEM pages of a UMA GPU, a VRAM range): its bytes go to
            // the banks its storage's pages are in, run by run.
            if let ExporterHandle::Gpu(bo) = &b.exporter {
                let Some(runs) = bo.phys_ranges() else {
                    continue;
                };
                for (bank, bytes) in plane_bytes_per_bank(&self.w, &runs, &b.planes) {
                    if let Some(mc) = self.w.bandwidth.ledger.controller_of(&bank) {
                        *out.entry(mc.to_string()).or_default() += bytes;
                    }
                }
                continue;
            }
            let Some(p) = super::collect::placement(&self.w, b) else {
                continue;
            };
            for (k, &(_, len)) in b.planes.iter().enumerate() {
                let Some(bank) = p.banks.get(k) else {
                    continue;
                };
                if let Some(mc) = self.w.bandwidth.ledger.controller_of(bank) {
                    *out.entry(mc.to_string()).or_default() += len;
                }
            }
        }
        out
    }

    /// Whether job `id` was a display's overrun scanout (its frame missed the vblank it was
    /// for); forgets it. The caller drops the frame `late` at the display
    /// ([`Sched::lose_frame`]): not delivered there, and not in the latency figures.
    pub(crate) fn take_late(&mut self, id: u64) -> bool {
        self.w.bandwidth.late.remove(&id)
    }
}

/// The bytes of `planes` (`(offset, len)` in the buffer) per bank, for storage made of the
/// physical `runs` in buffer order: each plane's range cut where the runs are cut, each piece
/// charged to the bank its run is in.
fn plane_bytes_per_bank(
    w: &World,
    runs: &[(soc::PhysAddr, u64)],
    planes: &[(u64, u64)],
) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for &(off, len) in planes {
        let (lo, hi) = (off, off + len);
        let mut at = 0u64;
        for &(pa, n) in runs {
            let (a, b) = (lo.max(at), hi.min(at + n));
            if a < b {
                let bank = w
                    .kernel
                    .soc()
                    .mem()
                    .bank_of(soc::PhysAddr(pa.0 + (a - at)))
                    .map(|bk| bk.name().to_string());
                if let Some(bank) = bank {
                    *out.entry(bank).or_default() += b - a;
                }
            }
            at += n;
            if at >= hi {
                break;
            }
        }
    }
    out
}
