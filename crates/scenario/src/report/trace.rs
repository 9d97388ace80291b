//! The trace recorder and its Chrome trace format writer (`trace.json`, opens in Perfetto).
//!
//! The runner records what happened on the virtual clock into a [`Trace`]: DMA jobs on the track
//! of the device engine that ran them, fence signals, migrations and attaches. The same record
//! feeds two writers: [`Trace::to_chrome_json`] here, and the SVG timeline
//! ([`super::svg::timeline_svg`]).
//!
//! # What the JSON holds (Chrome trace event format, "JSON object format")
//! - one process (`pid` 1) named after the scenario, one thread per track (`thread_name`
//!   metadata, sorted by `thread_sort_index` in creation order);
//! - a complete slice (`"ph": "X"`) per job, `cat` `dma`, `migration` or `cpu`, with the
//!   buffer, frame and bytes in `args`;
//! - flow arrows per buffer (`"ph": "s"` on a job, `"ph": "f"` with `"bp": "e"` on the next job
//!   that touches the same buffer), `cat` `buffer`;
//! - counter tracks (`"ph": "C"`, `cat` `counter`, `args.value`) for the counters sampled over
//!   time (named `"SERIES (UNIT)"`, see [`super::counters`]);
//! - instants (`"ph": "i"`, thread scope) for fence signals (`cat` `fence`), migrations
//!   (`cat` `migration`, also a slice on the `migrations` track: the buffer's copy when the
//!   runner knows it, else the stall; the stall is in `args.stall_us`) and attaches
//!   (`cat` `attach`).
//!
//! Timestamps are virtual microseconds with nanosecond fractions. Events are written sorted by
//! `(ts, track, record order)`, so the same run gives the same file.
//!
//! ```
//! use scenario::clock::VirtualTime;
//! use scenario::report::{JobCategory, Trace};
//! let mut t = Trace::new("demo");
//! let cam = t.track("camera0");
//! let isp = t.track("isp0");
//! let us = VirtualTime::from_us;
//! t.job(cam, "capture 0", us(0), us(100), Some("cam->isp[0]"), 4096, Some(0), JobCategory::Dma);
//! t.fence_signal(cam, "capture 0 done", us(100));
//! t.job(isp, "process 0", us(100), us(150), Some("cam->isp[0]"), 4096, Some(0), JobCategory::Dma);
//! let json = t.to_chrome_json();
//! assert!(json.contains("\"ph\":\"X\"") && json.contains("\"ph\":\"s\"") && json.contains("\"ph\":\"i\""));
//! ```

use crate::clock::VirtualTime;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A track (a device engine, or a pseudo-track such as `migrations`): its index in
/// [`Trace::tracks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub usize);

/// What a job slice is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobCategory {
    /// A device DMA job (capture, process, scanout, encode).
    Dma,
    /// A copy made by a migration.
    Migration,
    /// CPU work (the thumbnailer's read through mmap).
    Cpu,
}

impl JobCategory {
    /// The `cat` of the slice.
    pub fn name(self) -> &'static str {
        match self {
            JobCategory::Dma => "dma",
            JobCategory::Migration => "migration",
            JobCategory::Cpu => "cpu",
        }
    }
}

/// What a recorded event is.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceKind {
    /// A job from `at` to `end`.
    Job {
        /// End time.
        end: VirtualTime,
        /// The buffer it touched, for flow arrows.
        buffer: Option<String>,
        /// Bytes it moved.
        bytes: u64,
        /// The frame it worked on.
        frame: Option<u64>,
        /// What kind of job.
        category: JobCategory,
    },
    /// A fence signalled.
    FenceSignal,
    /// A buffer migrated; access was stalled from `at` to `at + stall`.
    Migration {
        /// The buffer.
        buffer: String,
        /// Old placement.
        from: String,
        /// New placement.
        to: String,
        /// Bytes copied.
        bytes: u64,
        /// Stall.
        stall: VirtualTime,
        /// How long the copy took from `at` (`None`: unknown, the slice spans the stall).
        copy: Option<VirtualTime>,
    },
    /// A device attached to a buffer.
    Attach {
        /// The buffer.
        buffer: String,
    },
    /// Anything else worth a mark (stream off, a process killed).
    Instant,
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEvent {
    /// The track.
    pub track: TrackId,
    /// Its label.
    pub name: String,
    /// When it started.
    pub at: VirtualTime,
    /// What it is.
    pub kind: TraceKind,
    /// Record order (tie-break).
    pub seq: u64,
}

/// The recorder (see the module doc). Plain data: a threaded runner wraps it in a mutex, and
/// the writers sort, so the order of recording among equal times matters only as a tie-break.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    title: String,
    tracks: Vec<String>,
    by_name: BTreeMap<String, TrackId>,
    events: Vec<TraceEvent>,
    /// Counter samples `(series, at, value)`, in record order (not tracks: no timeline lane).
    counters: Vec<(String, VirtualTime, f64)>,
}

/// The name of the pseudo-track migrations are drawn on.
pub const MIGRATION_TRACK: &str = "migrations";

impl Trace {
    /// An empty trace titled after the scenario.
    pub fn new(title: &str) -> Trace {
        Trace {
            title: title.to_string(),
            ..Trace::default()
        }
    }

    /// The title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The track named `name`, created on first use.
    pub fn track(&mut self, name: &str) -> TrackId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = TrackId(self.tracks.len());
        self.tracks.push(name.to_string());
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// The track names, in creation order.
    pub fn tracks(&self) -> &[String] {
        &self.tracks
    }

    /// Every event, in record order.
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    /// The latest time any event reaches.
    pub fn end_time(&self) -> VirtualTime {
        self.events
            .iter()
            .map(|e| match &e.kind {
                TraceKind::Job { end, .. } => *end,
                TraceKind::Migration { stall, .. } => e.at + *stall,
                _ => e.at,
            })
            .max()
            .unwrap_or_default()
    }

    fn push(&mut self, track: TrackId, name: &str, at: VirtualTime, kind: TraceKind) {
        let seq = self.events.len() as u64;
        self.events.push(TraceEvent {
            track,
            name: name.to_string(),
            at,
            kind,
            seq,
        });
    }

    /// Records a job on `track` from `start` to `end` (an `end` before `start` is taken as
    /// `start`).
    #[allow(clippy::too_many_arguments)]
    pub fn job(
        &mut self,
        track: TrackId,
        name: &str,
        start: VirtualTime,
        end: VirtualTime,
        buffer: Option<&str>,
        bytes: u64,
        frame: Option<u64>,
        category: JobCategory,
    ) {
        let kind = TraceKind::Job {
            end: end.max(start),
            buffer: buffer.map(str::to_string),
            bytes,
            frame,
            category,
        };
        self.push(track, name, start, kind);
    }

    /// Records a fence signal on `track`.
    pub fn fence_signal(&mut self, track: TrackId, name: &str, at: VirtualTime) {
        self.push(track, name, at, TraceKind::FenceSignal);
    }

    /// Records a migration of `buffer` at `at`, stalling access for `stall`, on the
    /// [`MIGRATION_TRACK`].
    pub fn migration(
        &mut self,
        buffer: &str,
        at: VirtualTime,
        from: &str,
        to: &str,
        bytes: u64,
        stall: VirtualTime,
    ) {
        self.migration_copy(buffer, at, from, to, bytes, stall, None);
    }

    /// [`migration`](Self::migration) whose copy started at `at` and lasted `copy`: the
    /// buffer's slice in `trace.json` is the copy, so the copies of one engine (serialized)
    /// never overlap; the stall stays in its `args`.
    #[allow(clippy::too_many_arguments)]
    pub fn migration_copy(
        &mut self,
        buffer: &str,
        at: VirtualTime,
        from: &str,
        to: &str,
        bytes: u64,
        stall: VirtualTime,
        copy: Option<VirtualTime>,
    ) {
        let track = self.track(MIGRATION_TRACK);
        let kind = TraceKind::Migration {
            buffer: buffer.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            bytes,
            stall,
            copy,
        };
        self.push(track, &format!("migrate {buffer}"), at, kind);
    }

    /// Records that the device of `track` attached to `buffer`.
    pub fn attach(&mut self, track: TrackId, buffer: &str, at: VirtualTime) {
        let kind = TraceKind::Attach {
            buffer: buffer.to_string(),
        };
        self.push(track, &format!("attach {buffer}"), at, kind);
    }

    /// Records a sample of counter `name` (a Perfetto counter track, `"ph": "C"`).
    pub fn counter(&mut self, name: &str, at: VirtualTime, value: f64) {
        self.counters.push((name.to_string(), at, value));
    }

    /// Every counter sample `(series, at, value)`, in record order.
    pub fn counters(&self) -> &[(String, VirtualTime, f64)] {
        &self.counters
    }

    /// Records a labelled mark on `track`.
    pub fn instant(&mut self, track: TrackId, name: &str, at: VirtualTime) {
        self.push(track, name, at, TraceKind::Instant);
    }

    /// The events sorted for writing: by `(at, track, seq)`.
    pub fn sorted_events(&self) -> Vec<&TraceEvent> {
        let mut v: Vec<&TraceEvent> = self.events.iter().collect();
        v.sort_by_key(|e| (e.at, e.track, e.seq));
        v
    }

    /// The Chrome trace format JSON (see the module doc), one event per line.
    pub fn to_chrome_json(&self) -> String {
        let tid = |t: TrackId| t.0 as u64 + 1;
        let us = |t: VirtualTime| json!(t.as_us_f64());
        let mut out: Vec<Value> = vec![json!({
            "ph": "M", "pid": 1, "tid": 0, "name": "process_name",
            "args": { "name": format!("dmabuf: {}", self.title) }
        })];
        for (i, name) in self.tracks.iter().enumerate() {
            let t = tid(TrackId(i));
            out.push(json!({"ph": "M", "pid": 1, "tid": t, "name": "thread_name", "args": { "name": name }}));
            out.push(json!({"ph": "M", "pid": 1, "tid": t, "name": "thread_sort_index", "args": { "sort_index": i }}));
        }
        // Flow arrows: consecutive jobs on the same buffer, in time order.
        let sorted = self.sorted_events();
        let mut last_job: BTreeMap<&str, &TraceEvent> = BTreeMap::new();
        let mut flows: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        let mut flow_id = 0u64;
        for e in &sorted {
            let TraceKind::Job {
                buffer: Some(b), ..
            } = &e.kind
            else {
                continue;
            };
            if let Some(prev) = last_job.insert(b.as_str(), e) {
                flow_id += 1;
                let start = json!({"ph": "s", "id": flow_id, "cat": "buffer", "name": b,
                    "pid": 1, "tid": tid(prev.track), "ts": us(prev.at)});
                let finish = json!({"ph": "f", "bp": "e", "id": flow_id, "cat": "buffer", "name": b,
                    "pid": 1, "tid": tid(e.track), "ts": us(e.at)});
                flows.entry(prev.seq).or_default().push(start);
                flows.entry(e.seq).or_default().push(finish);
            }
        }
        let mut counters: Vec<&(String, VirtualTime, f64)> = self.counters.iter().collect();
        counters.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        let mut counters = counters.into_iter().peekable();
        let counter = |c: &(String, VirtualTime, f64)| {
            let v = if c.2.is_finite() { c.2 } else { 0.0 };
            json!({"ph": "C", "cat": "counter", "name": c.0, "pid": 1, "ts": us(c.1),
                "args": { "value": v }})
        };
        for e in sorted {
            while let Some(c) = counters.next_if(|c| c.1 <= e.at) {
                out.push(counter(c));
            }
            let (t, ts) = (tid(e.track), us(e.at));
            let mut args = Map::new();
            let ev = match &e.kind {
                TraceKind::Job {
                    end,
                    buffer,
                    bytes,
                    frame,
                    category,
                } => {
                    if let Some(b) = buffer {
                        args.insert("buffer".into(), json!(b));
                    }
                    if let Some(f) = frame {
                        args.insert("frame".into(), json!(f));
                    }
                    args.insert("bytes".into(), json!(bytes));
                    json!({"ph": "X", "cat": category.name(), "name": e.name, "pid": 1, "tid": t,
                        "ts": ts, "dur": us(*end - e.at), "args": args})
                }
                TraceKind::FenceSignal => {
                    json!({"ph": "i", "s": "t", "cat": "fence", "name": e.name, "pid": 1, "tid": t, "ts": ts})
                }
                TraceKind::Migration {
                    buffer,
                    from,
                    to,
                    bytes,
                    stall,
                    copy,
                } => {
                    args.insert("buffer".into(), json!(buffer));
                    args.insert("from".into(), json!(from));
                    args.insert("to".into(), json!(to));
                    args.insert("bytes".into(), json!(bytes));
                    args.insert("stall_us".into(), us(*stall));
                    if let Some(c) = copy {
                        args.insert("copy_us".into(), us(*c));
                    }
                    out.push(
                        json!({"ph": "i", "s": "g", "cat": "migration", "name": e.name,
                        "pid": 1, "tid": t, "ts": ts, "args": args.clone()}),
                    );
                    json!({"ph": "X", "cat": "migration", "name": e.name, "pid": 1, "tid": t,
                        "ts": ts, "dur": us(copy.unwrap_or(*stall)), "args": args})
                }
                TraceKind::Attach { buffer } => {
                    args.insert("buffer".into(), json!(buffer));
                    json!({"ph": "i", "s": "t", "cat": "attach", "name": e.name, "pid": 1, "tid": t,
                        "ts": ts, "args": args})
                }
                TraceKind::Instant => {
                    json!({"ph": "i", "s": "t", "cat": "event", "name": e.name, "pid": 1, "tid": t, "ts": ts})
                }
            };
            out.push(ev);
            out.extend(flows.remove(&e.seq).unwrap_or_default());
        }
        out.extend(counters.map(counter));
        let mut s = String::from("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
        for (i, v) in out.iter().enumerate() {
            if i > 0 {
                s.push_str(",\n");
            }
            s.push_str(&v.to_string());
        }
        s.push_str("\n]}\n");
        s
    }
}
