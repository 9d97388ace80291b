//! Fence ordering: the dma-fence analogue of DMA-API-debug.
//!
//! C side: what `dma_resv_wait_timeout()`, `drm_sched_job_add_implicit_dependencies()` and a
//! page flip's `drm_atomic_helper_wait_for_fences()` are for. The kernel has no checker for a
//! driver that leaves them out; only the corrupted frame shows it. Here the bus is simulated, so
//! the checker can see the access itself.
//!
//! # The concept
//! Whoever puts a job's fence on a buffer (in its reservation object for implicit sync, or in
//! the sync_file a consumer gets for explicit sync) tells the checker with
//! [`Checker::watch_fence`](super::Checker::watch_fence): the owner's device, whether the fence
//! guards a write (`DMA_RESV_USAGE_WRITE`) or a read, the buffer's memory and how to ask
//! whether the fence has signaled. Every device access the SoC reports is then checked against
//! the watched fences: a device that **writes** memory guarded by any unsignalled fence of
//! another device, or **reads** memory guarded by another device's unsignalled **write** fence,
//! races that device's job: [`FindingKind::FenceConflict`](super::FindingKind::FenceConflict).
//!
//! A fence stops being watched when it signals or when its job's bytes have all moved
//! ([`Checker::unwatch_fence`](super::Checker::unwatch_fence)): a scheduler that runs jobs
//! ahead of its virtual clock, as the scenario runner does, ends the watch when the job is over
//! on that clock's terms.
//!
//! # Locking
//! The watches live behind the checker's lock. The `signaled` callback is called with that lock
//! held, so it must not call into the checker (a fence's `is_signaled` takes only the fence's
//! own lock).

use super::finding::{Finding, FindingAddr, FindingKind};
use soc::{DmaAccess, PhysAddr};
use std::fmt;

/// A fence guarding memory, as the checker watches it (module doc).
pub struct FenceWatch {
    /// The device whose job the fence belongs to (its own accesses never conflict).
    pub owner: String,
    /// Whether the fence guards a write (`DMA_RESV_USAGE_WRITE`); else a read.
    pub write: bool,
    /// The fence's name for findings (`"isp0 frame 12"`).
    pub label: String,
    /// The memory it guards, as physical runs.
    pub phys: Vec<(PhysAddr, u64)>,
    /// Whether the fence has signaled.
    pub signaled: Box<dyn Fn() -> bool + Send + Sync>,
}

impl fmt::Debug for FenceWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FenceWatch")
            .field("owner", &self.owner)
            .field("write", &self.write)
            .field("label", &self.label)
            .field("phys", &self.phys)
            .finish()
    }
}

/// The watched fences, by id.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    next: u64,
    /// Each watch with the devices it already reported (one finding per device and fence).
    live: Vec<(u64, FenceWatch, Vec<String>)>,
}

impl Watches {
    /// Starts watching `w`; forgets the signaled ones.
    pub(crate) fn add(&mut self, w: FenceWatch) -> u64 {
        self.live.retain(|(_, w, _)| !(w.signaled)());
        self.next += 1;
        self.live.push((self.next, w, Vec::new()));
        self.next
    }

    /// Stops watching `id`.
    pub(crate) fn remove(&mut self, id: u64) {
        self.live.retain(|(i, _, _)| *i != id);
    }

    /// How many are watched.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// The rule: the access against every watched fence of another device it conflicts with;
    /// the first conflicting access of each device under each fence is reported.
    pub(crate) fn check(&mut self, ev: &DmaAccess<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (_, w, reported) in &mut self.live {
            if w.owner == ev.device
                || !(ev.write || w.write)
                || reported.iter().any(|d| d == ev.device)
            {
                continue;
            }
            let overlap = ev.runs.iter().find_map(|&(pa, len)| {
                w.phys.iter().find_map(|&(wa, wlen)| {
                    let lo = pa.0.max(wa.0);
                    let hi = (pa.0 + len).min(wa.0 + wlen);
                    (lo < hi).then(|| (PhysAddr(lo), hi - lo))
                })
            });
            let Some((at, n)) = overlap else {
                continue;
            };
            if (w.signaled)() {
                continue;
            }
            reported.push(ev.device.to_string());
            let (op, guard) = (
                if ev.write { "wrote" } else { "read" },
                if w.write { "write" } else { "read" },
            );
            out.push(Finding {
                kind: FindingKind::FenceConflict,
                device: ev.device.to_string(),
                address: FindingAddr::Phys(at),
                size: n,
                context: format!(
                    "device {op} {:#x} bytes at {} while the {guard} fence of {} ({}) on that \
                     memory was unsignalled: it did not wait for the fence",
                    ev.len, ev.addr, w.owner, w.label
                ),
            });
        }
        out
    }
}
