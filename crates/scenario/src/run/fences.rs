//! Every DMA job fenced the way Linux pipelines are: out-fences in the buffers' reservation
//! objects, implicit sync, signals on the virtual clock.
//!
//! # The concept
//! Each device engine gets a fence context ([`fence::context_alloc`]) the first time it runs a
//! job; each job gets the next seqno of it. Before a job's bytes move, the runner
//! 1. checks implicit sync: every input's reservation object has no pending `WRITE` (or
//!    `KERNEL`) fence, every output's none pending at all up to `READ` — the loop only starts a
//!    job on buffers whose previous users are over, so a pending fence there is a runner bug and
//!    becomes a run error;
//! 2. creates the job's out-fence and adds it to each buffer's reservation object
//!    (`reserve_fences` then `add_fence` under the resv lock): `WRITE` for outputs, `READ` for
//!    inputs.
//!
//! At the job's completion event the fence is signaled with `signal_timestamp(end in ns)` and a
//! `fence_signal` instant goes to the engine's track.
//!
//! # Rules
//! 1. Before a scenario event or the end of a pressure (which may migrate or evict buffers, and
//!    the exporters then wait for every fence of the buffer), every job in flight has moved its
//!    bytes already (the loop's barrier); its fence is signaled then, stamped with the job's
//!    end on the virtual clock, so the move waits for nothing in host time, and its copy is
//!    dated after that end (`busy_until`) — the migration is delayed on the virtual clock.
//! 2. A fence is signaled once; its completion event finds it signaled and only forgets it.

use super::sched::Sched;
use super::world::RunFailure;
use crate::clock::VirtualTime;
use crate::report::{FenceCounts, TrackId};
use fence::{DmaFence, DmaResvUsage, SimpleFenceOps};
use std::collections::BTreeMap;

/// The fence timelines of the device engines and what they counted.
#[derive(Debug, Default)]
pub(crate) struct Fences {
    /// Per engine: its fence context and last seqno.
    timelines: BTreeMap<String, (u64, u64)>,
    /// The counts for the report.
    pub counts: FenceCounts,
}

/// A job's out-fence, to be signaled at the job's end.
#[derive(Debug)]
pub(crate) struct JobFence {
    pub fence: DmaFence,
    pub track: TrackId,
    pub end: VirtualTime,
    pub label: String,
}

impl Fences {
    /// The next fence on `engine`'s timeline.
    fn create(&mut self, engine: &str) -> Result<DmaFence, RunFailure> {
        let (ctx, seqno) = match self.timelines.get_mut(engine) {
            Some(t) => t,
            None => {
                let ctx = fence::context_alloc(1)
                    .map_err(|e| RunFailure::new(&e, format!("fence context for {engine}: {e}")))?;
                self.counts.contexts += 1;
                self.timelines.entry(engine.to_string()).or_insert((ctx, 0))
            }
        };
        *seqno += 1;
        self.counts.created += 1;
        Ok(SimpleFenceOps::create("dmabuf-sim", engine, *ctx, *seqno))
    }
}

impl Sched<'_> {
    /// Implicit sync for a job of `node` on `inputs` and `outputs` (buffer indices), then its
    /// out-fence in every buffer's reservation object (module doc). `None` on a failure, which
    /// is a run error.
    pub(crate) fn fence_job(
        &mut self,
        node: usize,
        inputs: &[usize],
        outputs: &[usize],
        end: VirtualTime,
        label: &str,
    ) -> Option<JobFence> {
        let who = self.w.nodes[node].desc.name.clone();
        let deps = inputs
            .iter()
            .map(|&b| (b, DmaResvUsage::Write, DmaResvUsage::Read))
            .chain(
                outputs
                    .iter()
                    .map(|&b| (b, DmaResvUsage::Read, DmaResvUsage::Write)),
            )
            .collect::<Vec<_>>();
        for &(bi, wait_for, _) in &deps {
            self.fences.counts.sync_checks += 1;
            let b = self.w.buf(bi);
            if !b.buf.resv().test_signaled(wait_for) {
                self.errors.push(RunFailure {
                    errno: "EBUSY".into(),
                    message: format!(
                        "runner bug: {who} started on {} with a {wait_for:?} fence pending",
                        b.name
                    ),
                });
            }
        }
        let engine = self.w.nodes[node].engine_name.clone();
        let fence = match self.fences.create(&engine) {
            Ok(f) => f,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        for &(bi, _, usage) in &deps {
            let b = self.w.buf(bi);
            let added = b
                .buf
                .resv()
                .lock(None)
                .map_err(|e| e.to_string())
                .and_then(|mut g| {
                    g.reserve_fences(1).map_err(|e| e.to_string())?;
                    g.add_fence(&fence, usage).map_err(|e| e.to_string())
                });
            if let Err(e) = added {
                let name = b.name.clone();
                self.errors.push(RunFailure {
                    errno: "EINVAL".into(),
                    message: format!("{who}: adding its fence to {name}: {e}"),
                });
            }
        }
        Some(JobFence {
            fence,
            track: self.w.nodes[node].track,
            end,
            label: label.to_string(),
        })
    }

    /// Signals a job's fence (if not yet) at its end on the virtual clock.
    pub(crate) fn fence_signal(&mut self, f: &JobFence) {
        if f.fence.is_signaled() {
            return;
        }
        if let Err(e) = f.fence.signal_timestamp(f.end.as_ns()) {
            self.errors.push(RunFailure::new(
                &e,
                format!("signaling the fence of {}: {e}", f.label),
            ));
            return;
        }
        self.fences.counts.signaled += 1;
        self.w
            .trace
            .fence_signal(f.track, &format!("fence {} signaled", f.label), f.end);
    }

    /// Rule 1: signals the fence of every job in flight (their bytes have moved).
    pub(crate) fn fence_flush(&mut self) {
        let ids: Vec<u64> = self.jobs.keys().copied().collect();
        for id in ids {
            if let Some(f) = self.jobs.get_mut(&id).and_then(|j| j.fence.take()) {
                self.fence_signal(&f);
                if let Some(j) = self.jobs.get_mut(&id) {
                    j.fence = Some(f);
                }
            }
        }
    }
}
