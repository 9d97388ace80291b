//! The trace recorder and its Chrome trace format writer (`trace.json`, opens in Perfetto).
//!
//! The runner records what happened on the virtual clock into a [`Trace`]: DMA jobs on the track
//! of the device engine that ran them, fence signals, migrations and attaches. The same record
//! feeds two writers: [`Trace::to_chrome_json`] here, and the SVG timeline
//! ([`super::svg::timeline_svg`]).
//!
//! # What the JSON holds (Chrome trace event format, "JSON object format")
//! - a process (`pid` 1) named after the scenario, holding the machine's counter tracks
//!   (banks, CMA, memory controllers, groups: a simulated process's and its queues' counters
//!   are on its own `pid`, a device's traffic, IOMMU and cache counters on its engine's); then one
//!   Perfetto process per device engine (and one each for the `events` and `migrations`
//!   tracks), and one per simulated process (`process NAME`) whose threads are its nodes'
//!   tracks (`NODE fences`: a `fence-wait` slice each time a job of the node waited for the
//!   fences of its buffers) — `process_name`/`process_sort_index` metadata, and one thread per
//!   track (`thread_name`, sorted by `thread_sort_index` in creation order);
//! - a complete slice (`"ph": "X"`) per job, `cat` `dma`, `migration` or `cpu`, with the
//!   buffer, frame and bytes in `args`;
//! - flow arrows per buffer (`"ph": "s"` on a job, `"ph": "f"` with `"bp": "e"` on the next job
//!   that touches the same buffer), `cat` `buffer`;
//! - counter tracks (`"ph": "C"`, `cat` `counter`, `args.value`) for the counters sampled over
//!   time (named `"SERIES (UNIT)"`, see [`super::counters`]), and per simulated process its
//!   open dma-buf fds (`process NAME dma-buf fds (fds)`), recorded where the count changes;
//! - instants (`"ph": "i"`, thread scope) for fence signals (`cat` `fence`), migrations
//!   (`cat` `migration`, also a slice on the `migrations` track: the buffer's copy when the
//!   runner knows it, else the stall; the stall is in `args.stall_us`) and attaches
//!   (`cat` `attach`).
//!
//! Timestamps are virtual microseconds with nanosecond fractions. Events are written sorted by
//! `(ts, track, record order)`, so the same run gives the same file.
//!
//! # Streaming
//! A run writes its trace to disk as it goes ([`Trace::stream_to`], the runner's
//! `RunOptions::trace_dir`): the recorder promises with [`Trace::advance`] that nothing it
//! records later starts earlier, and everything before that promise leaves memory for the file
//! (the two passes of [`super::chrome`]). Host memory then stays bounded however long the run
//! (a 64x64 camera->display run of 100,000 frames: 46 MB RSS, was 1.15 GB with the trace in
//! memory), and the file is the in-memory trace's byte for byte.
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

use super::chrome::{assemble, Body};
use super::lanes::Lanes;
use crate::clock::VirtualTime;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// A node's job waiting for the fences of its buffers (on its process's track).
    FenceWait,
}

impl JobCategory {
    /// The `cat` of the slice.
    pub fn name(self) -> &'static str {
        match self {
            JobCategory::Dma => "dma",
            JobCategory::Migration => "migration",
            JobCategory::Cpu => "cpu",
            JobCategory::FenceWait => "fence-wait",
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
///
/// A trace keeps every event in memory, or, once [`stream_to`](Self::stream_to) a file,
/// writes them there as the run goes (module [`super::chrome`]): then it holds only what the
/// runner may still add before ([`advance`](Self::advance)), the tracks, the counter samples
/// and the timeline's merged bars, and [`events`](Self::events) is empty.
#[derive(Debug, Default)]
pub struct Trace {
    title: String,
    tracks: Vec<String>,
    by_name: BTreeMap<String, TrackId>,
    /// The Perfetto processes after `pid` 1 (the run's), in creation order.
    processes: Vec<String>,
    /// Each track's `pid`.
    track_pids: Vec<u64>,
    events: Vec<TraceEvent>,
    /// Counter samples `(series, at, value)`, in record order (not tracks: no timeline lane).
    counters: Vec<(String, VirtualTime, f64)>,
    /// The `pid` of each series recorded with [`counter_in`](Self::counter_in) (else 1).
    counter_pids: BTreeMap<String, u64>,
    /// Events recorded so far (the next one's `seq`).
    recorded: u64,
    /// The latest time any event reaches.
    end: VirtualTime,
    stream: Option<Box<Stream>>,
}

/// A streamed trace's state (see [`Trace::stream_to`]).
struct Stream {
    /// Recorded, not yet written: by `(at, track, seq)`.
    pending: BTreeMap<(VirtualTime, TrackId, u64), TraceEvent>,
    /// Every event before this is written.
    watermark: VirtualTime,
    /// Events recorded before the watermark (written out of order; a runner bug).
    late: u64,
    /// Pass 1, until [`Trace::finish_stream`].
    body: Option<Body<std::io::BufWriter<std::fs::File>>>,
    /// Where the body goes.
    path: PathBuf,
    /// The body's late flow arrows, after [`Trace::finish_stream`].
    arrows: BTreeMap<u64, String>,
    /// The timeline's parts.
    lanes: Lanes,
    /// The first write error (the trace is then incomplete).
    error: Option<String>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("path", &self.path)
            .field("pending", &self.pending.len())
            .field("watermark", &self.watermark)
            .field("late", &self.late)
            .field("error", &self.error)
            .finish()
    }
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
    /// It is a Perfetto process of its own (a device engine is one, so are `events` and
    /// `migrations`).
    pub fn track(&mut self, name: &str) -> TrackId {
        self.track_in(name, name, name)
    }

    /// The track `name` of simulated process `process` (a Perfetto process `process NAME`
    /// holding one thread per track), created on first use.
    pub fn process_track(&mut self, process: &str, name: &str) -> TrackId {
        let key = format!("process {process}\u{1f}{name}");
        self.track_in(&key, &format!("process {process}"), name)
    }

    fn track_in(&mut self, key: &str, process: &str, name: &str) -> TrackId {
        if let Some(&id) = self.by_name.get(key) {
            return id;
        }
        let pid = self.process_pid(process);
        let id = TrackId(self.tracks.len());
        self.tracks.push(name.to_string());
        self.track_pids.push(pid);
        self.by_name.insert(key.to_string(), id);
        id
    }

    /// The Perfetto `pid` of process `process` (from 2), created on first use.
    fn process_pid(&mut self, process: &str) -> u64 {
        match self.processes.iter().position(|p| p == process) {
            Some(i) => i as u64 + 2,
            None => {
                self.processes.push(process.to_string());
                self.processes.len() as u64 + 1
            }
        }
    }

    /// Each track's Perfetto `pid` (1 is the run's own process, holding the counters no
    /// process owns).
    pub fn track_pids(&self) -> &[u64] {
        &self.track_pids
    }

    /// The Perfetto processes after `pid` 1, in `pid` order from 2.
    pub fn processes(&self) -> &[String] {
        &self.processes
    }

    /// The track names, in creation order.
    pub fn tracks(&self) -> &[String] {
        &self.tracks
    }

    /// Every event, in record order (none once streamed: they are in the file).
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    /// The latest time any event reaches.
    pub fn end_time(&self) -> VirtualTime {
        self.end
    }

    fn push(&mut self, track: TrackId, name: &str, at: VirtualTime, kind: TraceKind) {
        let seq = self.recorded;
        self.recorded += 1;
        let reaches = match &kind {
            TraceKind::Job { end, .. } => *end,
            TraceKind::Migration { stall, .. } => at + *stall,
            _ => at,
        };
        self.end = self.end.max(reaches);
        let e = TraceEvent {
            track,
            name: name.to_string(),
            at,
            kind,
            seq,
        };
        match &mut self.stream {
            Some(st) => {
                if let TraceKind::Attach { buffer } = &e.kind {
                    st.lanes.attaches.push((track, at, buffer.clone()));
                }
                if at < st.watermark {
                    st.late += 1;
                }
                st.pending.insert((at, track, seq), e);
            }
            None => self.events.push(e),
        }
    }

    /// From now on, write the events to `path` as the run goes (module [`super::chrome`],
    /// pass 1); the events recorded so far go there too. [`advance`](Self::advance) says what
    /// is final, [`finish_stream`](Self::finish_stream) ends the run, and
    /// [`write_chrome_json`](Self::write_chrome_json) writes `trace.json` from the file (and
    /// removes it).
    pub fn stream_to(&mut self, path: &Path) -> std::io::Result<()> {
        let file = std::fs::File::create(path)?;
        let mut st = Stream {
            pending: BTreeMap::new(),
            watermark: VirtualTime::ZERO,
            late: 0,
            body: Some(Body::new(std::io::BufWriter::new(file))),
            path: path.to_path_buf(),
            arrows: BTreeMap::new(),
            lanes: Lanes::new(TIMELINE_PLOT_W),
            error: None,
        };
        for e in std::mem::take(&mut self.events) {
            if let TraceKind::Attach { buffer } = &e.kind {
                st.lanes.attaches.push((e.track, e.at, buffer.clone()));
            }
            st.pending.insert((e.at, e.track, e.seq), e);
        }
        self.stream = Some(Box::new(st));
        Ok(())
    }

    /// Whether the events go to a file ([`stream_to`](Self::stream_to)).
    pub fn is_streamed(&self) -> bool {
        self.stream.is_some()
    }

    /// The recorder's promise that no event it records from now on starts before `now`: what
    /// is before is written out (a streamed trace; a no-op otherwise). An event recorded
    /// before a time already promised is written out of order and counted
    /// ([`late_events`](Self::late_events)).
    pub fn advance(&mut self, now: VirtualTime) {
        let Some(st) = &mut self.stream else {
            return;
        };
        st.watermark = st.watermark.max(now);
        while let Some(entry) = st.pending.first_entry() {
            if entry.key().0 >= st.watermark {
                break;
            }
            let e = entry.remove();
            st.lanes.add(&e);
            if let Some(body) = &mut st.body {
                if let Err(err) = body.push(&e, &self.track_pids) {
                    st.error.get_or_insert_with(|| err.to_string());
                }
            }
        }
    }

    /// Events recorded before a time already promised to [`advance`](Self::advance) (0 for
    /// a correct recorder).
    pub fn late_events(&self) -> u64 {
        self.stream.as_ref().map_or(0, |s| s.late)
    }

    /// Ends a streamed run: every event pending is written and the file flushed.
    pub fn finish_stream(&mut self) {
        self.advance(VirtualTime(u64::MAX));
        let Some(st) = &mut self.stream else {
            return;
        };
        // The one event that can sit at the end of time.
        for (_, e) in std::mem::take(&mut st.pending) {
            st.lanes.add(&e);
            if let Some(body) = &mut st.body {
                if let Err(err) = body.push(&e, &self.track_pids) {
                    st.error.get_or_insert_with(|| err.to_string());
                }
            }
        }
        if let Some(body) = st.body.take() {
            match body.finish() {
                Ok((_, arrows)) => st.arrows = arrows,
                Err(err) => {
                    st.error.get_or_insert_with(|| err.to_string());
                }
            }
        }
    }

    /// The timeline's parts of a streamed trace (bars merged as they came).
    pub(crate) fn lanes(&self) -> Option<&Lanes> {
        self.stream.as_ref().map(|s| &s.lanes)
    }

    /// A streamed trace's body, for the timeline's views the merged bars do not draw
    /// ([`super::lanes::body_bars`]). Errors: not streamed, still being written, written
    /// with an error, or its file removed ([`remove_stream_file`](Self::remove_stream_file)).
    pub(crate) fn stream_body(&self) -> std::io::Result<impl std::io::BufRead> {
        let Some(st) = &self.stream else {
            return Err(std::io::Error::other("the trace is not streamed"));
        };
        if let Some(e) = &st.error {
            return Err(std::io::Error::other(format!("{}: {e}", st.path.display())));
        }
        if st.body.is_some() {
            return Err(std::io::Error::other(
                "the streamed trace is still being written (finish_stream first)",
            ));
        }
        Ok(std::io::BufReader::new(std::fs::File::open(&st.path)?))
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

    /// Records a sample of counter `name` on the Perfetto process `process` (a simulated
    /// process's `process NAME`, a device engine's name), created on first use: the counter
    /// track is that process's. A series keeps the process of its first sample.
    pub fn counter_in(&mut self, process: &str, name: &str, at: VirtualTime, value: f64) {
        if !self.counter_pids.contains_key(name) {
            let pid = self.process_pid(process);
            self.counter_pids.insert(name.to_string(), pid);
        }
        self.counter(name, at, value);
    }

    /// The Perfetto `pid` counter `name` is written on (1 unless it has a process).
    pub fn counter_pid(&self, name: &str) -> u64 {
        self.counter_pids.get(name).copied().unwrap_or(1)
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

    /// The Chrome trace format JSON (see the module doc), one event per line. A streamed
    /// trace reads its file (see [`write_chrome_json`](Self::write_chrome_json)).
    pub fn to_chrome_json(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = self.write_chrome_json(&mut out) {
            return format!("{{\"error\":{}}}\n", serde_json::json!(e.to_string()));
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Writes [`to_chrome_json`](Self::to_chrome_json)'s text to `out`, holding a bounded
    /// amount of memory for a streamed trace (whose file this reads; it stays until
    /// [`remove_stream_file`](Self::remove_stream_file)).
    pub fn write_chrome_json(&self, out: &mut impl Write) -> std::io::Result<()> {
        match &self.stream {
            Some(st) => {
                if let Some(e) = &st.error {
                    return Err(std::io::Error::other(format!("{}: {e}", st.path.display())));
                }
                if st.body.is_some() {
                    return Err(std::io::Error::other(
                        "the streamed trace is still being written (finish_stream first)",
                    ));
                }
                let body = std::io::BufReader::new(std::fs::File::open(&st.path)?);
                assemble(
                    out,
                    &self.title,
                    (&self.processes, &self.tracks, &self.track_pids),
                    (&self.counters, &self.counter_pids),
                    body,
                    &st.arrows,
                )
            }
            None => {
                let mut body = Body::new(Vec::new());
                for e in self.sorted_events() {
                    body.push(e, &self.track_pids)?;
                }
                let (bytes, arrows) = body.finish()?;
                assemble(
                    out,
                    &self.title,
                    (&self.processes, &self.tracks, &self.track_pids),
                    (&self.counters, &self.counter_pids),
                    &bytes[..],
                    &arrows,
                )
            }
        }
    }

    /// Removes a streamed trace's file (after [`write_chrome_json`](Self::write_chrome_json)).
    pub fn remove_stream_file(&self) -> std::io::Result<()> {
        match &self.stream {
            Some(st) => std::fs::remove_file(&st.path),
            None => Ok(()),
        }
    }
}

/// The plot width of the default timeline ([`super::TimelineOptions`]), for which a streamed
/// trace merges its bars.
pub const TIMELINE_PLOT_W: f64 = 1200.0 - 130.0 - 20.0;
