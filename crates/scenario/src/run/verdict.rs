//! What each node did, for the report's `nodes` and for a verdict that cannot lie.
//!
//! # The concept
//! Every node counts the frames it wrote (`produced`), the jobs that read frames (`consumed`),
//! the frames that verified at a sink (`delivered`) and those a job got wrong (`corrupted`);
//! a source counts each frame it did not capture under its cause (`dropped`): `detached` (the
//! node is not attached), `killed` (its process died), `stream_off` (its queue, or every
//! queue downstream, is off) or `queue_full` (no free buffer, or the previous capture still
//! running). A sink keeps each delivered frame's latency.
//!
//! The verdict: a run in which a sink that streamed to the end received no frame at all is not
//! verified, whatever else went right (a run error saying which sink).
//!
//! Lifetime: single-threaded, with the loop; read once by `collect`.

use super::sched::Sched;
use super::world::RunFailure;
use crate::clock::VirtualTime;
use crate::schema::DriverKind;
use std::collections::BTreeMap;

/// One node's counts.
#[derive(Debug, Default)]
pub(crate) struct NodeStats {
    pub produced: u64,
    pub consumed: u64,
    pub delivered: u64,
    pub corrupted: u64,
    pub dropped: BTreeMap<&'static str, u64>,
    /// Latency of each delivered frame at this node (a sink).
    pub latencies: Vec<VirtualTime>,
}

impl Sched<'_> {
    /// Source `n` did not capture a frame, for `cause`.
    pub(crate) fn note_drop(&mut self, n: usize, cause: &'static str) {
        *self
            .node_stats
            .entry(n)
            .or_default()
            .dropped
            .entry(cause)
            .or_default() += 1;
    }

    /// Why source `n` cannot capture now (`tick`'s first check), if it cannot.
    pub(crate) fn source_drop_cause(&self, n: usize) -> &'static str {
        let node = &self.w.nodes[n];
        if node.dead {
            "killed"
        } else if !node.active {
            "detached"
        } else if !node.stream_out {
            "stream_off"
        } else {
            "queue_full"
        }
    }

    /// Node `n`'s job on frame `key` ended at `now`.
    pub(crate) fn note_job(
        &mut self,
        n: usize,
        read: bool,
        wrote: bool,
        corrupted: bool,
        key: Option<(usize, u64)>,
        now: VirtualTime,
    ) {
        let sink = self.w.nodes[n].desc.driver != DriverKind::Thumbnailer
            && self.w.nodes[n].outputs.is_empty();
        let start = key.and_then(|k| self.frames.get(&k)).map(|f| f.start);
        let st = self.node_stats.entry(n).or_default();
        st.produced += u64::from(wrote);
        st.consumed += u64::from(read);
        if corrupted {
            st.corrupted += 1;
        } else if read && sink {
            st.delivered += 1;
            if let Some(start) = start {
                st.latencies.push(now.saturating_sub(start));
            }
        }
    }

    /// The verdict's rule (module doc): every sink that streamed to the end got a frame.
    pub(crate) fn check_sinks(&mut self) {
        let produced = self.counts.produced;
        if produced == 0 || !self.errors.is_empty() {
            return;
        }
        for (n, node) in self.w.nodes.iter().enumerate() {
            let sink = !node.inputs.is_empty()
                && node.outputs.is_empty()
                && node.desc.driver != DriverKind::Thumbnailer;
            let consumed = self.node_stats.get(&n).map_or(0, |s| s.consumed);
            if sink && node.active && !node.dead && node.stream_in && consumed == 0 {
                self.errors.push(RunFailure {
                    errno: "EIO".into(),
                    message: format!(
                        "sink `{}` received no frame although the sources produced {produced}: the run \
                         is not verified",
                        node.desc.name
                    ),
                });
            }
        }
    }
}
