//! Where each captured frame ended: delivered, corrupted, or dropped under a cause — decided
//! once, when the frame is over, in memory that does not grow with the run.
//!
//! # The concept
//! A captured frame is tracked ([`FrameTrack`]) while some sink it must reach has not had it.
//! It is *over* when no sink is pending: each sink either ran its job on the frame, or is no
//! longer owed it because the frame was lost on the way, under a cause
//! ([`Sched::lose_frame`]): the node it was lost at and why —
//!
//! | cause | the frame did not reach the sinks downstream of the node because |
//! |---|---|
//! | `stream_off` | the node's queue (either side) was off when the frame came, or went off while the frame waited in it |
//! | `detached` | the node was detached (or had stopped) |
//! | `killed` | the node's process was killed |
//! | `queue_full` | (sources only) no free buffer, or the previous capture still running |
//! | `late` | a display missed the frame's vblank (no display drops frames today; the cause is the display driver's to use) |
//! | `merged` | a composite (module `composite`) folded the frame into another frame's output: counted in `frames.merged`, neither delivered nor dropped |
//! | `job_failed` | the node's job failed (its errno is counted in the node's `failed_jobs`) |
//!
//! A job that fails before it starts (a mapping that fails: vb2's at QBUF, a framebuffer's at
//! ADDFB2, the runner's `get_scatterlist`; a flip that does not latch) stops its node, and
//! the node gives back every frame it holds, each lost there as `job_failed`, the failure
//! counted once ([`Sched::fail_node`], the one way for every such path): a frame left in a
//! stopped node's queue would keep its buffer from its producer for the rest of the run.
//!
//! A thumbnailer (a CPU reader, not a sink) that will read a frame keeps it tracked until it
//! has ([`FrameTrack::readers`]): a wrong read corrupts *that* frame, and a frame is counted
//! once. The frame's latency still ends when its last sink had it ([`FrameTrack::over_at`]).
//!
//! When a frame is over it is *retired*: its track leaves the map and only counts remain —
//! corrupted (any check on the way failed; this wins over a drop), dropped (under its first
//! cause, counted at the node that lost it), merged (counted by the composite) or delivered (its latency, from capture to the
//! last sink's job end, goes into a [`LatencySummary`] and a bounded [`FrameSample`]). So the
//! runner's memory holds the frames in flight, not the frames of the run.
//!
//! A frame still tracked when the loop has drained was lost without a cause: when it waits in
//! the queue of a node that is off, detached or dead, that is its cause; in a composite's
//! secondary input queue it would have been folded into the next output (`merged`); otherwise
//! it is
//! *unexplained*, counted per node (the first pending sink) with the first such frame, and the
//! verdict is not VERIFIED ([`Sched::check_unexplained`]).
//!
//! Lifetime: single-threaded, with the loop; read once by `collect`.

use super::sched::{FrameTrack, Sched};
use super::world::{BufState, RunFailure};
use crate::clock::VirtualTime;
use crate::report::{FrameSample, LatencySummary};
use std::collections::{BTreeMap, BTreeSet};

/// The drop causes (module doc).
pub(crate) const STREAM_OFF: &str = "stream_off";
pub(crate) const DETACHED: &str = "detached";
pub(crate) const KILLED: &str = "killed";
pub(crate) const JOB_FAILED: &str = "job_failed";

/// Corrupted frames the report names at most (the lowest by source, then frame); the count in
/// `frames.corrupted` is always whole.
pub(crate) const CORRUPTED_FRAMES_CAP: usize = 1024;

/// What the retired frames add up to.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    /// Frames that were tracked (captured).
    pub captured: u64,
    pub delivered: u64,
    pub corrupted: u64,
    /// Dropped after capture, with a cause.
    pub dropped: u64,
    /// Folded into another frame's output by a composite.
    pub merged: u64,
    /// Delivered frames' latency.
    pub latency: LatencySummary,
    /// Delivered frames' latency per frame, sampled (`latency_us.per_frame`).
    pub per_frame: FrameSample,
    /// The same two per source node (`latency_us.per_source`).
    pub per_source: BTreeMap<usize, (LatencySummary, FrameSample)>,
    /// The lowest [`CORRUPTED_FRAMES_CAP`] corrupted frames, `(source, frame)`.
    pub corrupted_frames: BTreeSet<(usize, u64)>,
    /// Per node (the first sink that never had them): frames lost without a cause, and the
    /// first such frame.
    pub unexplained: BTreeMap<usize, (u64, u64)>,
}

impl FrameTrack {
    /// A frame captured at `start` that must reach `pending`.
    pub(crate) fn new(start: VirtualTime, pending: BTreeSet<usize>) -> FrameTrack {
        FrameTrack {
            start,
            pending,
            corrupted: false,
            drop: None,
            merged: false,
            readers: BTreeSet::new(),
            over_at: None,
        }
    }
}

impl Sched<'_> {
    /// Starts tracking frame `key` (module doc).
    pub(crate) fn track_frame(&mut self, key: (usize, u64), mut track: FrameTrack) {
        self.outcomes.captured += 1;
        // The thumbnailers downstream that take this frame number and have not taken one.
        track.readers = self
            .downstream(key.0)
            .into_iter()
            .filter(|&n| {
                let node = &self.w.nodes[n];
                node.desc.driver == crate::schema::DriverKind::Thumbnailer
                    && node.desc.params.frame.unwrap_or(0) == key.1
                    && !self.thumbnailed.contains(&n)
            })
            .collect();
        self.frames.insert(key, track);
    }

    /// Thumbnailer `n` read frame `key` (or let it go): the frame is retired if that was all
    /// it still waited for (module doc).
    pub(crate) fn reader_done(&mut self, key: (usize, u64), n: usize) {
        let Some(f) = self.frames.get_mut(&key) else {
            return;
        };
        if f.readers.remove(&n) && f.readers.is_empty() {
            if let Some(at) = f.over_at {
                self.retire(key, at);
            }
        }
    }

    /// Forgets frame `key` that turned out never captured (its capture could not start).
    pub(crate) fn untrack_frame(&mut self, key: (usize, u64)) {
        if self.frames.remove(&key).is_some() {
            self.outcomes.captured -= 1;
        }
    }

    /// Every node `at` feeds, itself included (links as the scenario draws them).
    pub(crate) fn downstream(&self, at: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![at];
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            for &li in &self.w.nodes[n].outputs {
                stack.extend(self.w.links[li].to.iter().copied());
            }
        }
        seen
    }

    /// Why node `n` takes no frame now, if it takes none: killed, detached or stream_off.
    pub(crate) fn refusal_cause(&self, n: usize) -> Option<&'static str> {
        let node = &self.w.nodes[n];
        if node.dead {
            Some(KILLED)
        } else if !node.active {
            Some(DETACHED)
        } else if !node.stream_in {
            Some(STREAM_OFF)
        } else {
            None
        }
    }

    /// Frame `key` will not reach the sinks from node `at` on, for `cause` (module doc); the
    /// frame is retired if no sink is left pending. A frame no sink from `at` on was owed is
    /// left alone.
    pub(crate) fn lose_frame(&mut self, key: (usize, u64), at: usize, cause: &'static str) {
        let below = self.downstream(at);
        let Some(f) = self.frames.get_mut(&key) else {
            return;
        };
        let hit: Vec<usize> = f.pending.intersection(&below).copied().collect();
        // Thumbnailers past `at` will not read it either.
        let readers = f.readers.len();
        f.readers.retain(|r| !below.contains(r));
        if hit.is_empty() && readers == f.readers.len() {
            return;
        }
        if !hit.is_empty() {
            f.drop.get_or_insert((at, cause));
        }
        for s in hit {
            f.pending.remove(&s);
        }
        if f.pending.is_empty() {
            self.retire(key, VirtualTime::ZERO);
        }
    }

    /// Node `n` stops: a job of its failed before it started with `e` (module doc). The
    /// failure is counted once (its errno in the node's `failed_jobs`, one run error), then
    /// every frame the node holds goes back to its producer, lost at `n` as `job_failed`:
    /// 1. the buffers the job took from its vb2 queues' drivers (`taken`: `(port, slot,
    ///    generation)`) come back in error ([`Port::complete_error`]); an input's frame is the
    ///    application's again, a producer's empty buffer is queued again;
    /// 2. what its OUTPUT queues' drivers still hold comes back with STREAMOFF (as a stopping
    ///    application does; a later `attach` streams them again, `World::port_restart`);
    /// 3. the application lets go of every frame it holds ([`Sched::discard_ready`]): the
    ///    last reader's release frees the buffer for its producer.
    ///
    /// [`Port::complete_error`]: super::vb2io::Port::complete_error
    pub(crate) fn fail_node(&mut self, n: usize, e: RunFailure, taken: &[(usize, u32, u64)]) {
        self.note_failed_job(n, &e.errno);
        self.errors.push(e);
        self.w.nodes[n].active = false;
        for &(p, slot, gen) in taken {
            let bi = self.w.ports[p].buffer_at(slot);
            match self.w.ports[p].complete_error(slot, gen) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    let what = format!(
                        "{}: buffer_done(ERROR)/DQBUF of buffer {slot}",
                        self.w.ports[p].label(&self.w)
                    );
                    self.errors.push(super::vb2io::vb2_fail(&what, &e));
                    continue;
                }
            }
            let (li, capture) = (self.w.ports[p].link, self.w.ports[p].capture);
            let Some(bi) = bi.filter(|&bi| self.w.bufs[bi].is_some()) else {
                continue;
            };
            if capture {
                // Still on the link's free list: the producer's process queues it again.
                if let Err(e) = self.w.vb2_qbuf(n, li, bi) {
                    self.errors.push(e);
                }
            } else if let Some(q) = self.w.nodes[n].ready.get_mut(&li) {
                q.push_front(bi);
            }
        }
        let errs = self.w.ports_stream(n, false, false);
        self.errors.extend(errs);
        self.discard_ready(n, JOB_FAILED);
    }

    /// Frame `key` is over: count it and forget its track (module doc).
    pub(crate) fn retire(&mut self, key: (usize, u64), now: VirtualTime) {
        let Some(f) = self.frames.get_mut(&key) else {
            return;
        };
        // Over for its sinks at `now`; a thumbnailer still reads it: counted when it has.
        let now = *f.over_at.get_or_insert(now);
        if !f.readers.is_empty() {
            return;
        }
        let Some(f) = self.frames.remove(&key) else {
            return;
        };
        let o = &mut self.outcomes;
        if f.corrupted {
            o.corrupted += 1;
            o.corrupted_frames.insert(key);
            if o.corrupted_frames.len() > CORRUPTED_FRAMES_CAP {
                o.corrupted_frames.pop_last();
            }
        } else if let Some((n, cause)) = f.drop {
            o.dropped += 1;
            self.note_drop(n, cause);
        } else if f.merged {
            // Counted `merged` at the composite when it folded the frame (module `composite`).
            o.merged += 1;
        } else {
            let latency = now.saturating_sub(f.start);
            o.delivered += 1;
            o.latency.add(latency);
            o.per_frame.add(key.1, latency.as_ns());
            let src = o.per_source.entry(key.0).or_default();
            src.0.add(latency);
            src.1.add(key.1, latency.as_ns());
        }
    }

    /// The loop has drained: every frame still tracked is lost. Frames waiting in the input
    /// queue of a node that is off, detached or dead are lost for that reason; the rest are
    /// unexplained (module doc).
    pub(crate) fn settle_leftovers(&mut self) {
        // A composite's secondary frame still waiting when the sources stopped would have been
        // folded into its next output: counted `merged` there (module `composite`).
        for n in 0..self.w.nodes.len() {
            if !self.is_composite(n) {
                continue;
            }
            let keys: Vec<(usize, u64)> = self.w.nodes[n]
                .inputs
                .iter()
                .skip(1)
                .flat_map(|&li| self.w.ready_bufs(n, li))
                .filter_map(|bi| match &self.w.bufs[bi].as_ref()?.state {
                    BufState::Ready { meta, .. } => Some((meta.src, meta.frame)),
                    _ => None,
                })
                .collect();
            for key in keys {
                if let Some(f) = self.frames.get_mut(&key) {
                    if f.drop.is_none() && !f.merged {
                        f.merged = true;
                        f.pending.clear();
                        self.note_drop(n, super::composite::MERGED);
                        self.retire(key, VirtualTime::ZERO);
                    }
                }
            }
        }
        for n in 0..self.w.nodes.len() {
            let node = &self.w.nodes[n];
            let cause = if node.dead {
                KILLED
            } else if !node.active {
                DETACHED
            } else if !node.stream_in || !node.stream_out {
                STREAM_OFF
            } else {
                continue;
            };
            self.lose_queued(n, cause);
        }
        let left: Vec<(usize, u64)> = self.frames.keys().copied().collect();
        for key in left {
            let Some(f) = self.frames.get_mut(&key) else {
                continue;
            };
            // Over for its sinks; a thumbnailer never came to read it.
            if let Some(at) = f.over_at {
                f.readers.clear();
                self.retire(key, at);
                continue;
            }
            f.readers.clear();
            if !f.corrupted && !f.merged {
                if let Some(&sink) = f.pending.first() {
                    let e = self.outcomes.unexplained.entry(sink).or_insert((0, key.1));
                    e.0 += 1;
                    e.1 = e.1.min(key.1);
                }
                self.outcomes.dropped += 1;
                self.frames.remove(&key);
            } else {
                self.retire(key, VirtualTime::ZERO);
            }
        }
    }

    /// The verdict's rule: a frame lost without a cause is a run error naming the node, how
    /// many and the first frame.
    pub(crate) fn check_unexplained(&mut self) {
        let found: Vec<(usize, u64, u64)> = self
            .outcomes
            .unexplained
            .iter()
            .map(|(&n, &(count, first))| (n, count, first))
            .collect();
        for (n, count, first) in found {
            self.errors.push(RunFailure {
                errno: String::new(),
                message: format!(
                    "{count} frame(s) never reached sink `{}` and nothing explains why (no \
                     stream-off, detach, kill, full queue, merge or failed job), the first frame \
                     {first}: the run is not verified",
                    self.w.nodes[n].desc.name
                ),
            });
        }
    }
}
