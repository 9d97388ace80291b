//! What a migration's copy costs the pipeline, measured on the virtual clock: the jobs it
//! delayed on its engine's lane, by how much, and the frames that made late or dropped.
//!
//! # The concept
//! A migration's copy runs on one engine's lane (`migrate_with`, docs/migration.md): it
//! queues behind the job the engine is running (it never preempts) and the engine's next jobs
//! queue behind it. From the moment a copy is charged, the runner keeps, next to the run, the
//! times the run *would* have had without the copies (a shadow timeline), and compares each
//! job with it:
//!
//! 1. **Delayed jobs, per copy.** For each copy the lane keeps its shadow: the lane's
//!    `busy_until` as if that copy had not been charged (every other copy and job still
//!    there). A job submitted to the lane would have started at `max(ready, shadow)`; it
//!    started at `start`; the difference is what this copy cost it
//!    (`migrations[].delayed[]`: node, frame, would-start, start, delay). The copy stops
//!    being followed when its shadow caught up with the lane (it no longer delays anything)
//!    or the lane went idle. Its `cost_us` is the sum: 0 when it fit in idle time.
//! 2. **The delay travels with the frame.** With every copy removed at once, a job would
//!    have been ready at the latest of what it waited for, each as it would have been: its
//!    node's previous job's end, its inputs' producers' ends, its output buffers' readers'
//!    ends (each recorded, actual and would-be, since the first copy), never before the
//!    first copy was charged (nothing differs before). What the runner does not model here
//!    (a migrated buffer's `available_at`, a camera's tick, a display's KMS wait) is taken as
//!    unaffected; when such a term bound the job, it is not delayed. So a delay is never
//!    invented: when in doubt it is smaller. The job then would have started at the latest of
//!    that and its lane's would-be `busy_until`.
//! 3. **A frame made late.** A display shows a frame at the first vblank at or after it is
//!    ready, one frame per vblank. If its would-be ready time gives an earlier vblank than the
//!    one it got, the frame missed that vblank: `frames_cost[]` `missed_vblank`, naming both
//!    times.
//! 4. **A frame dropped.** A camera's tick drops its frame (`queue_full`) when the previous
//!    capture is still running or no output buffer is free. If that capture, or the reader
//!    holding a buffer, would have ended by the tick without the copies, the copies cost that
//!    frame: `frames_cost[]` `dropped`, cause `queue_full`.
//!
//! Each delayed job and frame is charged to every migration whose copy (or whose delay,
//! carried) was behind it; `cost` says it in words. Once no copy is followed and every
//! recorded time equals its would-be time, the shadow is dropped: a run without migrations
//! on a busy lane pays nothing for this module.
//!
//! Lifetime: single-threaded, on the runner's loop (the hooks are called from
//! `record_migration`, `start_job` and `tick`); the state is small (the buffers and nodes of
//! the run) and lives in the [`Sched`].

use super::sched::Sched;
use crate::clock::VirtualTime;
use crate::report::cost::{DelayedJob, FrameCost, COST_ENTRIES};
use crate::report::MigrationReport;
use crate::schema::DriverKind;
use std::collections::{BTreeMap, BTreeSet};

/// A time as it was and as it would have been without the copies, and the migrations that
/// make the difference.
#[derive(Clone, Debug, Default)]
struct Shift {
    at: VirtualTime,
    would: VirtualTime,
    migs: BTreeSet<usize>,
}

impl Shift {
    fn same(at: VirtualTime) -> Shift {
        Shift {
            at,
            would: at,
            migs: BTreeSet::new(),
        }
    }

    fn delayed(&self) -> bool {
        self.would < self.at
    }
}

/// A job in flight that ends later than it would have: its node, frame and end.
type LateJob = (usize, Option<(usize, u64)>, Shift);

/// A copy still followed (module rule 1).
#[derive(Debug)]
struct LaneCopy {
    mig: usize,
    lane: String,
    /// The lane's `busy_until` as if this copy had not been charged.
    shadow: VirtualTime,
}

/// The shadow timeline (module doc); empty while no copy is followed.
#[derive(Debug, Default)]
pub(crate) struct CopyCosts {
    /// Whether the shadow is kept (from the first copy until nothing differs).
    on: bool,
    /// When the first copy followed was charged: nothing differs before.
    since: VirtualTime,
    copies: Vec<LaneCopy>,
    /// Per engine: its `busy_until` (rule 2).
    lanes: BTreeMap<String, Shift>,
    /// Per node: its last job's end.
    nodes: BTreeMap<usize, Shift>,
    /// Per buffer: when its content was last ready (its producer's job end).
    ready: BTreeMap<usize, Shift>,
    /// Per buffer: when its last reader's job ended.
    freed: BTreeMap<usize, Shift>,
    /// Per display node: the vblank of its last frame.
    vblanks: BTreeMap<usize, Shift>,
    /// Jobs in flight that end later than they would have.
    jobs: BTreeMap<u64, LateJob>,
}

impl CopyCosts {
    fn active(&self) -> bool {
        self.on
    }
}

/// A job as [`Sched::cost_job`] sees it, right after it was put on its lane.
pub(crate) struct LaneJob<'a> {
    pub id: u64,
    pub node: usize,
    pub frame: Option<(usize, u64)>,
    pub engine: &'a str,
    /// When it was ready before a display's vblank rounding.
    pub ready: VirtualTime,
    /// A display's previous vblank, before this job took one.
    pub vblank_before: Option<VirtualTime>,
    /// What it was submitted as ready at (a display: its vblank).
    pub submitted: VirtualTime,
    pub start: VirtualTime,
    pub end: VirtualTime,
    pub inputs: &'a [(usize, usize)],
    pub outputs: &'a [(usize, usize)],
}

impl Sched<'_> {
    /// Follows the copy of migration `mig` (index in `self.migrations`), charged at `now` to
    /// `engine`'s lane from `start` to `end`: ready at `idle`, the lane busy until `before`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cost_copy(
        &mut self,
        mig: usize,
        engine: &str,
        now: VirtualTime,
        idle: VirtualTime,
        before: VirtualTime,
        start: VirtualTime,
        end: VirtualTime,
    ) {
        let c = &mut self.migcost;
        if !c.active() {
            *c = CopyCosts {
                on: true,
                since: now,
                ..CopyCosts::default()
            };
            // Every lane as it is: nothing differs yet.
            for (name, e) in &self.w.engines {
                c.lanes.insert(name.clone(), Shift::same(e.busy_until()));
            }
            c.lanes.insert(engine.to_string(), Shift::same(before));
        }
        // The lane without each earlier copy still runs this one.
        for lc in c.copies.iter_mut().filter(|lc| lc.lane == engine) {
            lc.shadow = idle.max(lc.shadow) + (end - start);
        }
        let lane = c
            .lanes
            .entry(engine.to_string())
            .or_insert_with(|| Shift::same(before));
        lane.at = end;
        lane.migs.insert(mig);
        c.copies.push(LaneCopy {
            mig,
            lane: engine.to_string(),
            shadow: before,
        });
    }

    /// Compares job `j` with the shadow timeline (module rules 1-3), at `now`.
    pub(crate) fn cost_job(&mut self, j: LaneJob<'_>, now: VirtualTime) {
        if !self.migcost.active() {
            return;
        }
        let dur = j.end - j.start;
        let c = &self.migcost;
        // Rule 2: what the job waited for, as it was and as it would have been.
        let mut terms: Vec<&Shift> = Vec::new();
        terms.extend(c.nodes.get(&j.node));
        terms.extend(j.inputs.iter().filter_map(|(_, bi)| c.ready.get(bi)));
        terms.extend(j.outputs.iter().filter_map(|(_, bi)| c.freed.get(bi)));
        let actual = terms.iter().map(|t| t.at).fold(c.since, VirtualTime::max);
        let would = terms
            .iter()
            .map(|t| t.would)
            .fold(c.since, VirtualTime::max);
        let mut migs: BTreeSet<usize> = BTreeSet::new();
        let ready = if j.ready > actual {
            // Bound by something the copies did not move.
            j.ready
        } else {
            let unaffected = j
                .inputs
                .iter()
                .chain(j.outputs)
                .filter_map(|&(_, bi)| self.w.bufs[bi].as_ref().map(|b| b.available_at))
                .fold(VirtualTime::ZERO, VirtualTime::max);
            let r = would.max(unaffected).min(j.ready);
            if r < j.ready {
                for t in terms.iter().filter(|t| t.delayed()) {
                    migs.extend(&t.migs);
                }
            }
            r
        };
        // Rule 3: a display's vblank.
        let node = &self.w.nodes[j.node];
        let mut missed = None;
        let submitted = if node.desc.driver == DriverKind::Display && node.desc.fps.num() != 0 {
            let fps = node.desc.fps;
            let prev = c.vblanks.get(&j.node).map(|v| v.would).or(j.vblank_before);
            let mut idx = fps.first_tick_at_or_after(ready);
            if let Some(p) = prev {
                idx = idx.max(fps.first_tick_at_or_after(p).saturating_add(1));
            }
            let v = fps.tick(idx).min(j.submitted);
            if v < j.submitted {
                missed = Some(v);
            }
            v
        } else {
            ready
        };
        let lane = c.lanes.get(j.engine);
        let lane_would = lane.map_or(VirtualTime::ZERO, |l| l.would);
        if lane.is_some_and(Shift::delayed) && submitted.max(lane_would) < j.start {
            migs.extend(lane.map(|l| l.migs.clone()).unwrap_or_default());
        }
        let would_start = submitted.max(lane_would).min(j.start);
        let would_end = would_start + dur;
        // Rule 1: each copy on this lane, alone.
        let mut direct = Vec::new();
        for lc in self
            .migcost
            .copies
            .iter_mut()
            .filter(|lc| lc.lane == j.engine)
        {
            let s = j.submitted.max(lc.shadow).min(j.start);
            lc.shadow = s + dur;
            if s < j.start {
                direct.push((lc.mig, s));
            }
        }
        let direct_migs: BTreeSet<usize> = direct.iter().map(|&(m, _)| m).collect();
        let c = &mut self.migcost;
        let after = |at, would| Shift {
            at,
            would,
            migs: if would < at {
                migs.clone()
            } else {
                BTreeSet::new()
            },
        };
        c.lanes
            .insert(j.engine.to_string(), after(j.end, would_end));
        c.nodes.insert(j.node, after(j.end, would_end));
        for &(_, bi) in j.inputs {
            c.freed.insert(bi, after(j.end, would_end));
        }
        for &(_, bi) in j.outputs {
            c.ready.insert(bi, after(j.end, would_end));
        }
        if let Some(v) = missed {
            c.vblanks.insert(j.node, after(j.submitted, v));
        } else if self.w.nodes[j.node].desc.driver == DriverKind::Display {
            c.vblanks.insert(j.node, Shift::same(j.submitted));
        }
        if would_end < j.end {
            c.jobs
                .insert(j.id, (j.node, j.frame, after(j.end, would_end)));
        }
        for (mig, s) in direct {
            self.note_delayed(mig, &j, s);
        }
        if let (Some(v), Some((src, f))) = (missed, j.frame) {
            let why = format!(
                "ready at {:.1} us; without the copies it would have been ready by {:.1} us and \
                 made the vblank at {:.1} us (or an earlier one); shown at {:.1} us",
                j.ready.as_us_f64(),
                ready.as_us_f64(),
                v.as_us_f64(),
                j.submitted.as_us_f64()
            );
            let cost = FrameCost {
                source: self.w.nodes[src].desc.name.clone(),
                frame: f,
                node: self.w.nodes[j.node].desc.name.clone(),
                what: "missed_vblank".into(),
                cause: None,
                why,
            };
            for mig in migs.union(&direct_migs).copied() {
                self.note_frame(mig, cost.clone());
            }
        }
        self.cost_settle(now);
    }

    /// Source `n` dropped frame `frame` at its tick `now` (module rule 4).
    pub(crate) fn cost_source_drop(&mut self, n: usize, frame: u64, now: VirtualTime) {
        if !self.migcost.active() {
            return;
        }
        let node = &self.w.nodes[n];
        if !node.active || node.dead || !node.stream_out {
            return;
        }
        let c = &self.migcost;
        let (migs, why) = if node.busy {
            let Some((_, prev, s)) = c
                .jobs
                .iter()
                .find(|(id, (m, _, s))| {
                    *m == n && self.jobs.contains_key(id) && s.would <= now && now < s.at
                })
                .map(|(_, v)| v)
            else {
                return;
            };
            let what = prev.map_or(String::new(), |(_, f)| format!(" (frame {f})"));
            (
                s.migs.clone(),
                format!(
                    "its previous capture{what} would have ended at {:.1} us, before this tick \
                     at {:.1} us, but ended at {:.1} us",
                    s.would.as_us_f64(),
                    now.as_us_f64(),
                    s.at.as_us_f64()
                ),
            )
        } else {
            let held = node
                .outputs
                .iter()
                .flat_map(|&li| self.w.links[li].bufs.iter().copied())
                .find_map(|bi| {
                    let s = c.freed.get(&bi)?;
                    (s.would <= now && now < s.at).then_some((bi, s))
                });
            let Some((bi, s)) = held else {
                return;
            };
            (
                s.migs.clone(),
                format!(
                    "no free buffer: {} would have been released at {:.1} us, before this tick at \
                     {:.1} us, but its reader's job ended at {:.1} us",
                    self.w.buf(bi).name,
                    s.would.as_us_f64(),
                    now.as_us_f64(),
                    s.at.as_us_f64()
                ),
            )
        };
        let name = self.w.nodes[n].desc.name.clone();
        let cost = FrameCost {
            source: name.clone(),
            frame,
            node: name,
            what: "dropped".into(),
            cause: Some("queue_full".into()),
            why,
        };
        for mig in migs {
            self.note_frame(mig, cost.clone());
        }
    }

    /// Records that migration `mig`'s copy delayed job `j` from `would` to its start.
    fn note_delayed(&mut self, mig: usize, j: &LaneJob<'_>, would: VirtualTime) {
        let delay = j.start - would;
        let d = DelayedJob {
            node: self.w.nodes[j.node].desc.name.clone(),
            source: j.frame.map(|(s, _)| self.w.nodes[s].desc.name.clone()),
            frame: j.frame.map(|(_, f)| f),
            would_start_us: would.as_us_f64(),
            started_us: j.start.as_us_f64(),
            delay_us: delay.as_us_f64(),
        };
        let Some(m) = self.migrations.get_mut(mig) else {
            return;
        };
        *m.cost_us.get_or_insert(0.0) += d.delay_us;
        if m.delayed.len() < COST_ENTRIES {
            m.delayed.push(d);
        }
        m.cost = describe(m);
    }

    /// Records that migration `mig`'s copy cost frame `f`.
    fn note_frame(&mut self, mig: usize, f: FrameCost) {
        let Some(m) = self.migrations.get_mut(mig) else {
            return;
        };
        if m.frames_cost.contains(&f) || m.frames_cost.len() >= COST_ENTRIES {
            return;
        }
        m.frames_cost.push(f);
        m.cost = describe(m);
    }

    /// Stops following copies that no longer delay anything, and drops the shadow once
    /// nothing differs (module doc).
    fn cost_settle(&mut self, now: VirtualTime) {
        // Jobs that ended are forgotten (the one being started is not in `jobs` yet).
        let (jobs, next) = (&self.jobs, self.next_job);
        let c = &mut self.migcost;
        c.jobs.retain(|id, _| *id >= next || jobs.contains_key(id));
        let lanes = &c.lanes;
        c.copies.retain(|lc| {
            let busy = lanes.get(&lc.lane).map_or(VirtualTime::ZERO, |l| l.at);
            lc.shadow < busy && busy > now
        });
        if !c.copies.is_empty() {
            return;
        }
        let differs = c
            .lanes
            .values()
            .chain(c.nodes.values())
            .chain(c.ready.values())
            .chain(c.freed.values())
            .chain(c.vblanks.values())
            .any(Shift::delayed)
            || !c.jobs.is_empty();
        if !differs {
            *c = CopyCosts::default();
        }
    }
}

/// A migration's cost in words (`None` when it delayed nothing).
fn describe(m: &MigrationReport) -> Option<String> {
    if m.delayed.is_empty() && m.frames_cost.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !m.delayed.is_empty() {
        let jobs: Vec<String> = m
            .delayed
            .iter()
            .take(4)
            .map(|d| {
                let frame = match (&d.source, d.frame) {
                    (Some(s), Some(f)) => format!(" frame {f} of {s}"),
                    _ => String::new(),
                };
                format!(
                    "{}{frame} by {:.1} us (would have started at {:.1} us, started at {:.1} us)",
                    d.node, d.delay_us, d.would_start_us, d.started_us
                )
            })
            .collect();
        let more = match m.delayed.len() {
            n if n > 4 => format!(" and {} more", n - 4),
            _ => String::new(),
        };
        parts.push(format!(
            "the copy on {} delayed {}{more}: {:.1} us in all",
            m.engine,
            jobs.join(", "),
            m.cost_us.unwrap_or(0.0)
        ));
    }
    for f in m.frames_cost.iter().take(4) {
        parts.push(match f.what.as_str() {
            "missed_vblank" => format!(
                "frame {} of {} missed its vblank on {}: {}",
                f.frame, f.source, f.node, f.why
            ),
            _ => format!(
                "frame {} of {} dropped at {} ({}): {}",
                f.frame,
                f.source,
                f.node,
                f.cause.as_deref().unwrap_or("dropped"),
                f.why
            ),
        });
    }
    if m.frames_cost.len() > 4 {
        parts.push(format!("and {} more frames", m.frames_cost.len() - 4));
    }
    Some(parts.join("; "))
}
