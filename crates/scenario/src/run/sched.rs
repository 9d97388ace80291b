//! The discrete-event loop: source ticks, device jobs and scenario events on the virtual clock.
//!
//! See the ordering guarantee in the [module doc](super). A job's bytes move between its start
//! and its completion event, on the run's pool while the loop goes on (module `inflight`, a
//! GPU ring job's too; a faulted one at its start, alone; with `--engine-threads`, on its device's
//! thread); its outputs become visible to consumers, and its inputs free for producers, only
//! at its completion event, so what a device reads never depends on when the host ran it.

use super::workers::{Pending, Workers};
use super::world::{BufState, RunFailure, World};
use crate::clock::{EventQueue, VirtualTime};
use crate::schema::{DriverKind, Event};
use crate::validate::Scenario;
use drivers::job::DeviceJob;
use std::collections::{BTreeMap, BTreeSet};

/// What the queue holds.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A source's frame clock.
    Tick(usize),
    /// A job ends.
    Done(u64),
    /// A scenario event (index into the scenario's events).
    Scenario(usize),
    /// A pressure allocation ends (index into the holds).
    PressureEnd(usize),
    /// A thumbnailer's CPU read ends: `(node, buffer, frame)` ([`super::thumbnail`]).
    ReadDone(usize, usize, (usize, u64)),
    /// A display job's flip latches at its vblank: what it took off screen is released
    /// (`super::kms`).
    Latch(u64),
}

/// A frame's way through the pipeline, while it is in flight ([`super::outcome`]).
#[derive(Debug)]
pub(crate) struct FrameTrack {
    pub start: VirtualTime,
    /// Sinks that have not had it yet.
    pub pending: BTreeSet<usize>,
    pub corrupted: bool,
    /// Where and why it was first lost: `(node, cause)`.
    pub drop: Option<(usize, &'static str)>,
    /// Folded into another frame by a composite (module `composite`).
    pub merged: bool,
    /// Thumbnailers that will still read it: the frame stays tracked until they have
    /// ([`super::outcome`]).
    pub readers: BTreeSet<usize>,
    /// When its last sink had it (or it was lost), if thumbnailers still read it then.
    pub over_at: Option<VirtualTime>,
}

pub(crate) struct InFlight {
    pub node: usize,
    pub frame: Option<(usize, u64)>,
    pub inputs: Vec<(usize, usize)>,
    pub outputs: Vec<(usize, usize)>,
    /// Buffers taken from a vb2 queue's driver (inputs read, outputs filled): `(port, slot,
    /// generation)`.
    pub vb2: Vec<(usize, u32, u64)>,
    pub result: Pending,
    /// The job's out-fence ([`super::fences`]).
    pub fence: Option<super::fences::JobFence>,
    /// Outputs handed to their readers at submission (explicit sync from a GPU).
    pub handed: Vec<usize>,
    /// The job's bytes, held back (module `faults`).
    pub deferred: Option<DeviceJob>,
    /// A GPU ring job not run yet (module `faults`).
    pub ring_held: bool,
    /// Its place on the virtual clock.
    pub start: VirtualTime,
    pub end: VirtualTime,
    /// The checker's watches of its fences (module `faults`).
    pub watches: Vec<u64>,
}

/// The buffer behind each view of a job being planned, in the job's order.
#[derive(Debug, Default)]
pub(super) struct MappedViews {
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// Buffers taken from a vb2 queue's driver so far: `(port, slot, generation)`
    /// ([`InFlight::vb2`]; given back in error if the job fails, [`Sched::fail_node`]).
    pub vb2: Vec<(usize, u32, u64)>,
}

/// Counters the report is built from.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub produced: u64,
    pub dropped_at_source: u64,
    /// Jobs that found wrong bytes on a buffer no tracked frame owns.
    pub corrupted_untracked: u64,
    pub jobs: BTreeMap<String, u64>,
    /// Frames each encoder node encoded.
    pub encoded: BTreeMap<usize, u64>,
}

/// The loop and everything it tracks.
pub(crate) struct Sched<'a> {
    pub w: World,
    pub s: &'a Scenario,
    pub q: EventQueue<Ev>,
    /// The first source's frame rate: what `at = { frame = N }` events are dated on.
    pub period: crate::clock::Fps,
    pub frames: BTreeMap<(usize, u64), FrameTrack>,
    pub jobs: BTreeMap<u64, InFlight>,
    pub next_job: u64,
    pub counts: Counts,
    pub errors: Vec<RunFailure>,
    pub workers: Option<Workers>,
    pub holds: Vec<super::events::Hold>,
    pub migrations: Vec<crate::report::MigrationReport>,
    /// What the migrations' copies cost, measured ([`super::migcost`]).
    pub migcost: super::migcost::CopyCosts,
    pub thumbnail: Option<Vec<u8>>,
    /// `bufinfo` events' snapshots: (frame, the debugfs text), in event order.
    pub bufinfo: Vec<(u64, String)>,
    pub progress: Option<indicatif::ProgressBar>,
    pub first_source: Option<usize>,
    /// The engines' fence timelines ([`super::fences`]).
    pub fences: super::fences::Fences,
    /// Faults armed per node, and what each fault event did ([`super::faults`]).
    pub armed: BTreeMap<usize, super::faults::Armed>,
    pub fault_log: Vec<super::faults::FaultLog>,
    /// Thumbnailer nodes that took their frame.
    pub thumbnailed: BTreeSet<usize>,
    /// `early_release`: `(buffer, reader)` whose reader's release of its old frame must not
    /// release the new frame the producer wrote under it ([`super::faults`]).
    pub reused: Vec<(usize, usize)>,
    /// `wrong_direction`: vb2 slots `(port, slot)` a faulted job re-mapped the wrong way
    /// ([`super::faults`]).
    pub wrong_mapped: BTreeSet<(usize, u32)>,
    /// Per node: what it did ([`super::verdict`]).
    pub node_stats: BTreeMap<usize, super::verdict::NodeStats>,
    /// The frames that are over ([`super::outcome`]).
    pub outcomes: super::outcome::Outcomes,
    /// The host threads jobs' bytes move on (`--threads N`).
    pub pool: std::sync::Arc<drivers::job::Pool>,
    /// DMA-API checker findings taken out of the checker, in the run's fixed order
    /// (ordering guarantee 4).
    pub findings: Vec<dma::Finding>,
    /// The wall time collections waited, if the caller lent a clock ([`super::inflight`]).
    pub waits: super::inflight::CollectWaits,
}

impl<'a> Sched<'a> {
    /// The frame the first source is at (what events and migrations are dated by).
    pub(crate) fn current_frame(&self) -> u64 {
        self.first_source.map_or(0, |n| self.w.nodes[n].next_frame)
    }

    /// Runs the loop to the end.
    pub(crate) fn run(&mut self) {
        let events: Vec<Event> = self.s.events_in_order().into_iter().cloned().collect();
        for e in &events {
            let at = e.at.at_rate(self.period);
            let _ = self.q.push(at, Ev::Scenario(e.index));
        }
        for (i, n) in self.w.nodes.iter().enumerate() {
            if n.desc.driver == DriverKind::Camera {
                let _ = self.q.push(VirtualTime::ZERO, Ev::Tick(i));
            }
        }
        while let Some((now, ev)) = self.q.pop() {
            // The machine's clock is the loop's: every layer that asks it (fence timestamps,
            // the exporters' stall times, timeouts) sees the moment of the event.
            if let Some(c) = self.w.kernel.soc().clock().as_virtual() {
                c.advance_to(::clock::BOOT_NS.saturating_add(now.as_ns()));
            }
            // Nothing recorded from here starts before `now`: a streamed trace writes the rest.
            self.w.trace.advance(now);
            match ev {
                Ev::Tick(n) => self.tick(n, now),
                Ev::Done(id) => self.done(id, now),
                Ev::ReadDone(n, bi, key) => super::thumbnail::read_done(self, n, bi, key),
                Ev::Scenario(i) => {
                    self.barrier();
                    self.fence_flush();
                    if let Some(e) = self.s.events.iter().find(|e| e.index == i) {
                        self.scenario_event(e, now);
                    }
                }
                Ev::Latch(id) => self.kms_latched(id, now),
                Ev::PressureEnd(h) => {
                    self.barrier();
                    self.fence_flush();
                    self.release_hold(h, now);
                }
            }
            self.try_start_all(now);
            self.poll_drains(now);
            self.w.note_fds(now);
        }
        // The stream's end: every encoder drains (V4L2_ENC_CMD_STOP, super::encoder_drain).
        self.drain_encoders_at_end(self.q.now());
        self.barrier();
    }

    pub(super) fn tick(&mut self, n: usize, now: VirtualTime) {
        let frame = self.w.nodes[n].next_frame;
        if frame >= self.s.frames {
            return;
        }
        self.w.nodes[n].next_frame += 1;
        if Some(n) == self.first_source {
            if self.w.sampler.due(frame) {
                self.collect_for_sample(now);
            }
            self.w.sample_counters(frame, now, false);
        }
        // Tick N at exactly fps.tick(N): no rounded period accumulates.
        let next = self.w.nodes[n].desc.fps.tick(frame + 1).max(now);
        let _ = self.q.push(next, Ev::Tick(n));
        if let Some(pb) = &self.progress {
            if Some(n) == self.first_source {
                pb.set_position(frame + 1);
            }
        }
        self.counts.produced += 1;
        let node = &self.w.nodes[n];
        if !node.active || node.dead || !node.stream_out || node.busy {
            self.counts.dropped_at_source += 1;
            let cause = self.source_drop_cause(n);
            self.note_drop(n, cause);
            self.cost_source_drop(n, frame, now);
            return;
        }
        let pending = self.sinks_from(n);
        if pending.is_empty() {
            // Nobody streams downstream (every consumer's queue is off): the frame is dropped.
            self.counts.dropped_at_source += 1;
            self.note_drop(n, "stream_off");
            return;
        }
        self.track_frame((n, frame), FrameTrack::new(now, pending));
        if !self.start_job(n, now, Some((n, frame))) {
            // Never captured: a drop at the source, not a frame in flight.
            self.counts.dropped_at_source += 1;
            let cause = match self.w.nodes[n].active {
                true => "queue_full",
                false => super::outcome::JOB_FAILED,
            };
            self.note_drop(n, cause);
            self.cost_source_drop(n, frame, now);
            self.untrack_frame((n, frame));
        }
    }

    /// Active consumers of link `li` that stream their input side.
    pub(crate) fn readers(&self, li: usize) -> BTreeSet<usize> {
        self.w.links[li]
            .to
            .iter()
            .copied()
            .filter(|&t| {
                let n = &self.w.nodes[t];
                n.active && !n.dead && n.stream_in
            })
            .collect()
    }

    /// The sinks a frame from `src` must reach: active nodes downstream with no active
    /// consumer of their own (thumbnailers take single frames and are not sinks).
    pub(crate) fn sinks_from(&self, src: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![src];
        let mut sinks = BTreeSet::new();
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            let mut any = false;
            for &li in &self.w.nodes[n].outputs {
                for r in self.readers(li) {
                    if self.w.nodes[r].desc.driver != DriverKind::Thumbnailer {
                        any = true;
                        stack.push(r);
                    }
                }
            }
            if !any && n != src {
                sinks.insert(n);
            }
        }
        sinks
    }

    fn try_start_all(&mut self, now: VirtualTime) {
        loop {
            let mut started = false;
            for n in 0..self.w.nodes.len() {
                let node = &self.w.nodes[n];
                if node.desc.driver == DriverKind::Camera || node.inputs.is_empty() {
                    continue;
                }
                // A draining encoder finishes what is queued (super::encoder_drain).
                let draining = node.m2m.after_drain.is_some();
                if !node.active || node.dead || node.busy || !(node.stream_in || draining) {
                    continue;
                }
                if !self.inputs_ready(n) {
                    continue;
                }
                self.fold_older_inputs(n);
                // A display commits its planes' frames once their acquire fences signalled
                // (super::kms).
                let fronts: Vec<usize> = self.w.nodes[n]
                    .inputs
                    .iter()
                    .filter_map(|li| self.w.nodes[n].ready.get(li)?.front().copied())
                    .collect();
                if fronts.iter().any(|&bi| self.kms_waits(n, bi, now)) {
                    continue;
                }
                // The primary's frame; a KMS display past its primary's end carries its first
                // input's with one (super::composite).
                let frame = self.carried_frame(n);
                let node = &self.w.nodes[n];
                if node.desc.driver == DriverKind::Thumbnailer {
                    // A CPU read: no job touching its buffer runs beside it (super::inflight).
                    if let Some(bi) = self.cpu_reads(n) {
                        self.collect_for_cpu(bi);
                    }
                    // Not while its frame's sync_file is pending (fences.rs).
                    started |= super::thumbnail::thumbnail_step(self, n, now);
                    continue;
                }
                if self.start_job(n, now, frame) {
                    started = true;
                }
            }
            if !started {
                break;
            }
        }
    }

    pub(super) fn done(&mut self, id: u64, now: VirtualTime) {
        if self.jobs.get(&id).is_some_and(|j| !j.result.is_settled()) {
            self.barrier_one(id);
        }
        let Some(mut job) = self.jobs.remove(&id) else {
            return;
        };
        let out_fence = job.fence.as_ref().map(|f| f.fence.clone());
        if let Some(mut f) = job.fence.take() {
            self.fence_signal(&mut f);
        }
        let n = job.node;
        // The node is free again whatever the job's outcome.
        self.w.nodes[n].busy = false;
        let Some(res) = job.result.take_settled() else {
            self.lost_job(id, &job, now);
            return;
        };
        if let Some(bs) = res.bitstream {
            self.w.note_bitstream(n, bs);
            // Its output buffers hold the bitstream: their readers read what was written.
            for &(_, bi) in &job.outputs {
                if self.w.bufs[bi].is_some() {
                    self.w.buf_mut(bi).used = Some(bs.len);
                }
            }
        }
        if self.w.nodes[n].desc.driver == crate::schema::DriverKind::Encoder && res.error.is_none()
        {
            *self.counts.encoded.entry(n).or_default() += 1;
        }
        // A failed job's frame is lost (job_failed), not judged on what it half read.
        let failed = res.error.is_some();
        let corrupted = !failed && res.inputs_ok.iter().any(|ok| !ok);
        // A display's scanout that overran its vblank: the frame is dropped `late` there.
        let late = self.take_late(id);
        self.note_job(
            n,
            !job.inputs.is_empty(),
            !job.outputs.is_empty() && !failed,
            corrupted || failed,
            late,
            job.frame,
            now,
        );
        if let Some(e) = &res.error {
            self.note_failed_job(n, "EFAULT");
            self.errors.push(RunFailure {
                errno: "EFAULT".into(),
                message: format!("{}: DMA failed: {e}", self.w.nodes[n].desc.name),
            });
        }
        // vb2: the driver completes what it read or filled (a bitstream with its payload), the
        // application dequeues it (super::bitstream_io).
        self.complete_vb2(&job.vb2, res.bitstream.map(|b| b.len));
        // Inputs: this reader is done with them (a display keeps its frame on screen until
        // the next flip latched, super::kms).
        if !self.kms_done(id, n, Some(&res)) {
            for &(_, bi) in &job.inputs {
                self.release(bi, n);
            }
        }
        // Outputs: ready for the consumers streaming now (unless handed over at submission);
        // a failed job's outputs go back empty (VB2_BUF_STATE_ERROR) and its frame is lost.
        for (k, &(li, bi)) in job.outputs.iter().enumerate() {
            if job.handed.contains(&bi) {
                continue;
            }
            if failed {
                if self.w.bufs[bi].is_some() {
                    self.w.buf_mut(bi).state = BufState::Free;
                    self.free_buffer(bi);
                }
                continue;
            }
            let checksum = res.out_sums.get(k).copied().unwrap_or(0);
            self.hand_over(n, job.frame, li, bi, checksum, out_fence.as_ref());
        }
        let tracked = job.frame.and_then(|key| self.frames.get_mut(&key));
        match tracked {
            Some(f) => {
                f.corrupted |= corrupted;
                if !failed && !late {
                    f.pending.remove(&n);
                } else if let Some(key) = job.frame {
                    let cause = if failed {
                        super::outcome::JOB_FAILED
                    } else {
                        super::bandwidth::LATE
                    };
                    self.lose_frame(key, n, cause);
                }
            }
            None if late => self.note_drop(n, super::bandwidth::LATE),
            // Wrong bytes no frame owns (a job on a buffer whose frame is not tracked) still
            // count: the report's corrupted frames include them.
            None if corrupted => self.counts.corrupted_untracked += 1,
            None => {}
        }
        if let Some(key) = job.frame {
            self.check_delivered(key, now);
        }
    }

    /// A job whose result never came (its engine thread ended): an error; its frame is lost,
    /// its inputs go back to their producers and its outputs to their free lists.
    fn lost_job(&mut self, id: u64, job: &InFlight, now: VirtualTime) {
        let n = job.node;
        self.note_failed_job(n, "EIO");
        self.errors.push(RunFailure {
            errno: "EIO".into(),
            message: format!(
                "{}: a job ended without a result (its engine thread is gone)",
                self.w.nodes[n].desc.name
            ),
        });
        self.complete_vb2(&job.vb2, None);
        if !self.kms_done(id, n, None) {
            for &(_, bi) in &job.inputs {
                self.release(bi, n);
            }
        }
        for &(_, bi) in &job.outputs {
            if job.handed.contains(&bi) || self.w.bufs[bi].is_none() {
                continue;
            }
            self.w.buf_mut(bi).state = BufState::Free;
            self.free_buffer(bi);
        }
        if let Some(key) = job.frame {
            self.lose_frame(key, n, super::outcome::JOB_FAILED);
            self.check_delivered(key, now);
        }
    }
}
