//! What each node did, for the report's `nodes` and for a verdict that cannot lie.
//!
//! # The concept
//! Every node counts the frames it wrote (`produced`), the jobs that read frames (`consumed`),
//! the frames that verified at a sink (`delivered`) and those a job got wrong (`corrupted`);
//! a source counts each frame it did not capture under its cause (`dropped`): `detached` (the
//! node is not attached), `killed` (its process died), `stream_off` (its queue, or every
//! queue downstream, is off) or `queue_full` (no free buffer, or the previous capture still
//! running); a frame lost after capture is counted at the node it was lost at, under its cause
//! ([`super::outcome`]); a node's failed jobs are counted per errno. A sink summarises its
//! delivered frames' latency in bounded memory ([`LatencySummary`]).
//!
//! The verdict: a run in which a sink that streamed to the end received no frame at all is not
//! verified, whatever else went right (a run error saying which sink); nor is a run that lost
//! a frame without a cause ([`Sched::check_unexplained`]).
//!
//! Lifetime: single-threaded, with the loop; read once by `collect`.

use super::sched::Sched;
use super::world::{BufState, RunFailure};
use crate::clock::VirtualTime;
use crate::report::LatencySummary;
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
    /// Its failed jobs, per errno name.
    pub failed_jobs: BTreeMap<String, u64>,
    /// Latency of the frames delivered at this node (a sink).
    pub latencies: LatencySummary,
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

    /// Node `n`'s job on frame `key` ended at `now`; a `late` display job (its vblank missed)
    /// read the frame but did not deliver it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn note_job(
        &mut self,
        n: usize,
        read: bool,
        wrote: bool,
        corrupted: bool,
        late: bool,
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
        } else if read && sink && !late {
            st.delivered += 1;
            if let Some(start) = start {
                st.latencies.add(now.saturating_sub(start));
            }
        }
    }

    /// A job of node `n` failed with `errno` (its frame is lost as `job_failed`).
    pub(crate) fn note_failed_job(&mut self, n: usize, errno: &str) {
        let name = if errno.is_empty() { "EIO" } else { errno };
        *self
            .node_stats
            .entry(n)
            .or_default()
            .failed_jobs
            .entry(name.to_string())
            .or_default() += 1;
    }

    /// The frames waiting in node `n`'s input queues will not go on from it, for `cause`
    /// (the buffers stay where they are).
    pub(crate) fn lose_queued(&mut self, n: usize, cause: &'static str) {
        let keys: Vec<(usize, u64)> = self.w.nodes[n]
            .ready
            .keys()
            .flat_map(|&li| self.w.ready_bufs(n, li))
            .filter_map(|bi| match &self.w.bufs[bi].as_ref()?.state {
                BufState::Ready { meta, .. } => Some((meta.src, meta.frame)),
                _ => None,
            })
            .collect();
        for k in keys {
            self.lose_frame(k, n, cause);
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
