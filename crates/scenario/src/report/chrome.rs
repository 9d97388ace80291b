//! The Chrome trace format writer behind `trace.json`, in two passes that hold a bounded amount
//! of host memory however long the run.
//!
//! # The concept
//! `trace.json` lists, after a header naming every track, the run's events sorted by
//! `(time, track, record order)`, each followed by its flow arrows, with the counter samples
//! merged in by time (format in the `trace` module). Two things are only known late: the header's
//! tracks (a track can appear at the last frame) and an event's outgoing flow arrow (`"ph":"s"`,
//! written after a job, exists only if a later job touches the same buffer, and its id is the
//! number of arrows before that later job). So:
//!
//! 1. **Body** ([`Body`]): events arrive in sorted order; each becomes a *group* of lines (the
//!    event, its incoming arrow `"f"`, its outgoing arrow `"s"` once known) behind a marker line
//!    `@<time in ns>`. A group whose job still waits for its buffer's next job is held; the
//!    groups before it too, so the file stays in order. At most [`HOLD`] groups are held: past
//!    that the oldest goes out without its arrow, which is then kept aside (`late`, one short
//!    line per buffer idle for that long) and inserted by pass 2.
//! 2. **Assembly** ([`assemble`]): writes the header, then copies the body line by line, putting
//!    the counter samples (few: at most 129 per series) before the first group at or after
//!    their time and the late arrows at the end of their groups.
//!
//! The in-memory trace ([`super::Trace::to_chrome_json`]) and the streamed one (the runner's
//! `--out`) go through these same two passes, so they write the same bytes.
//!
//! # Lifetime
//! A [`Body`] owns its writer until [`Body::finish`], which hands it back with the late arrows;
//! nothing is shared, no lock is taken.

use super::trace::{TraceEvent, TraceKind};
use crate::clock::VirtualTime;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Write};

/// The most groups held back waiting for a job's outgoing flow arrow.
pub const HOLD: usize = 4096;

/// A track's `tid` in the file.
fn tid(track: usize) -> u64 {
    track as u64 + 1
}

fn us(t: VirtualTime) -> Value {
    json!(t.as_us_f64())
}

/// One event's lines.
#[derive(Debug)]
struct Group {
    at: VirtualTime,
    lines: Vec<String>,
    /// A job whose outgoing arrow is not known yet.
    waiting: bool,
}

/// Pass 1 (module doc): sorted events in, marker-separated groups of lines out.
#[derive(Debug)]
pub struct Body<W: Write> {
    out: W,
    held: VecDeque<Group>,
    /// Index of `held.front()`.
    first: u64,
    /// Index of the next group.
    next: u64,
    /// Per buffer: the group index, pid, tid and time of its last job.
    last_job: BTreeMap<String, (u64, u64, u64, VirtualTime)>,
    flow_id: u64,
    late: BTreeMap<u64, String>,
}

impl<W: Write> Body<W> {
    /// A body written to `out`.
    pub fn new(out: W) -> Body<W> {
        Body {
            out,
            held: VecDeque::new(),
            first: 0,
            next: 0,
            last_job: BTreeMap::new(),
            flow_id: 0,
            late: BTreeMap::new(),
        }
    }

    /// Adds the next event in sorted order; `pids` gives each track's `pid`
    /// ([`super::Trace::track_pids`]).
    pub fn push(&mut self, e: &TraceEvent, pids: &[u64]) -> std::io::Result<()> {
        let index = self.next;
        self.next += 1;
        let pid = pids.get(e.track.0).copied().unwrap_or(1);
        let mut lines = event_lines(e, pid);
        let mut waiting = false;
        if let TraceKind::Job {
            buffer: Some(b), ..
        } = &e.kind
        {
            let t = tid(e.track.0);
            if let Some((prev, prev_pid, prev_tid, prev_at)) =
                self.last_job.insert(b.clone(), (index, pid, t, e.at))
            {
                self.flow_id += 1;
                let start = json!({"ph": "s", "id": self.flow_id, "cat": "buffer", "name": b,
                    "pid": prev_pid, "tid": prev_tid, "ts": us(prev_at)})
                .to_string();
                match prev
                    .checked_sub(self.first)
                    .and_then(|k| usize::try_from(k).ok().and_then(|k| self.held.get_mut(k)))
                {
                    Some(g) => {
                        g.lines.push(start);
                        g.waiting = false;
                    }
                    None => {
                        self.late.insert(prev, start);
                    }
                }
                let finish = json!({"ph": "f", "bp": "e", "id": self.flow_id, "cat": "buffer",
                    "name": b, "pid": pid, "tid": t, "ts": us(e.at)});
                lines.push(finish.to_string());
            }
            waiting = true;
        }
        self.held.push_back(Group {
            at: e.at,
            lines,
            waiting,
        });
        self.drain(false)
    }

    /// Writes the held groups that are complete (all of them when `all`, or past [`HOLD`]).
    fn drain(&mut self, all: bool) -> std::io::Result<()> {
        while let Some(g) = self.held.front() {
            if g.waiting && !all && self.held.len() <= HOLD {
                break;
            }
            let g = self.held.pop_front().expect("front exists");
            self.first += 1;
            writeln!(self.out, "@{}", g.at.as_ns())?;
            for l in &g.lines {
                writeln!(self.out, "{l}")?;
            }
        }
        Ok(())
    }

    /// Writes what is held and hands back the writer and the late arrows (group index ->
    /// line).
    pub fn finish(mut self) -> std::io::Result<(W, BTreeMap<u64, String>)> {
        self.drain(true)?;
        self.out.flush()?;
        Ok((self.out, self.late))
    }
}

/// The lines of event `e` (on process `pid`) before its flow arrows.
fn event_lines(e: &TraceEvent, pid: u64) -> Vec<String> {
    let (t, ts) = (tid(e.track.0), us(e.at));
    let mut args = Map::new();
    let mut lines = Vec::with_capacity(2);
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
            json!({"ph": "X", "cat": category.name(), "name": e.name, "pid": pid, "tid": t,
                "ts": ts, "dur": us(*end - e.at), "args": args})
        }
        TraceKind::FenceSignal => {
            json!({"ph": "i", "s": "t", "cat": "fence", "name": e.name, "pid": pid, "tid": t, "ts": ts})
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
            lines.push(
                json!({"ph": "i", "s": "g", "cat": "migration", "name": e.name,
                "pid": pid, "tid": t, "ts": ts, "args": args.clone()})
                .to_string(),
            );
            json!({"ph": "X", "cat": "migration", "name": e.name, "pid": pid, "tid": t,
                "ts": ts, "dur": us(copy.unwrap_or(*stall)), "args": args})
        }
        TraceKind::Attach { buffer } => {
            args.insert("buffer".into(), json!(buffer));
            json!({"ph": "i", "s": "t", "cat": "attach", "name": e.name, "pid": pid, "tid": t,
                "ts": ts, "args": args})
        }
        TraceKind::Instant => {
            json!({"ph": "i", "s": "t", "cat": "event", "name": e.name, "pid": pid, "tid": t, "ts": ts})
        }
    };
    lines.push(ev.to_string());
    lines
}

/// The Perfetto processes after `pid` 1, the track names and each track's `pid`.
pub type Layout<'a> = (&'a [String], &'a [String], &'a [u64]);

/// The counter samples `(series, at, value)` and the `pid` of each series that has one (the
/// others are on `pid` 1).
pub type CounterSamples<'a> = (&'a [(String, VirtualTime, f64)], &'a BTreeMap<String, u64>);

/// Pass 2 (module doc): writes `trace.json` to `out` from the title, the layout (processes
/// and tracks), the counter samples `(series, at, value)` with each series' `pid`, the body pass 1 wrote and its late
/// arrows.
pub fn assemble(
    out: &mut impl Write,
    title: &str,
    (processes, tracks, pids): Layout<'_>,
    (counters, counter_pids): CounterSamples<'_>,
    body: impl BufRead,
    late: &BTreeMap<u64, String>,
) -> std::io::Result<()> {
    out.write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")?;
    let mut first = true;
    let mut item = |out: &mut dyn Write, line: &str| -> std::io::Result<()> {
        if !first {
            out.write_all(b",\n")?;
        }
        first = false;
        out.write_all(line.as_bytes())
    };
    let meta = json!({"ph": "M", "pid": 1, "tid": 0, "name": "process_name",
        "args": { "name": format!("dmabuf: {title}") }});
    item(out, &meta.to_string())?;
    for (i, name) in processes.iter().enumerate() {
        let pid = i as u64 + 2;
        let name_ev = json!({"ph": "M", "pid": pid, "tid": 0, "name": "process_name",
            "args": { "name": name }});
        item(out, &name_ev.to_string())?;
        let sort = json!({"ph": "M", "pid": pid, "tid": 0, "name": "process_sort_index",
            "args": { "sort_index": i + 1 }});
        item(out, &sort.to_string())?;
    }
    for (i, name) in tracks.iter().enumerate() {
        let (t, pid) = (tid(i), pids.get(i).copied().unwrap_or(1));
        let name_ev = json!({"ph": "M", "pid": pid, "tid": t, "name": "thread_name",
            "args": { "name": name }});
        item(out, &name_ev.to_string())?;
        let sort = json!({"ph": "M", "pid": pid, "tid": t, "name": "thread_sort_index",
            "args": { "sort_index": i }});
        item(out, &sort.to_string())?;
    }
    let mut sorted: Vec<&(String, VirtualTime, f64)> = counters.iter().collect();
    sorted.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    let mut samples = sorted.into_iter().peekable();
    let counter = |c: &(String, VirtualTime, f64)| {
        let v = if c.2.is_finite() { c.2 } else { 0.0 };
        let pid = counter_pids.get(&c.0).copied().unwrap_or(1);
        json!({"ph": "C", "cat": "counter", "name": c.0, "pid": pid, "ts": us(c.1),
            "args": { "value": v }})
        .to_string()
    };
    let mut group: Option<u64> = None;
    for line in body.lines() {
        let line = line?;
        let Some(at) = line.strip_prefix('@') else {
            item(out, &line)?;
            continue;
        };
        if let Some(s) = group.and_then(|g| late.get(&g)) {
            item(out, s)?;
        }
        group = Some(group.map_or(0, |g| g + 1));
        let at = at.parse::<u64>().map(VirtualTime::from_ns).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("trace body: bad marker {line:?}: {e}"),
            )
        })?;
        while let Some(c) = samples.next_if(|c| c.1 <= at) {
            item(out, &counter(c))?;
        }
    }
    if let Some(s) = group.and_then(|g| late.get(&g)) {
        item(out, s)?;
    }
    for c in samples {
        item(out, &counter(c))?;
    }
    out.write_all(b"\n]}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{JobCategory, Trace};

    /// The whole-list writer the two passes replace: every event sorted, arrows from a full
    /// pre-pass, counters merged before the first event at or after them.
    fn whole_list(t: &Trace) -> String {
        let sorted = t.sorted_events();
        let mut last: BTreeMap<&str, &TraceEvent> = BTreeMap::new();
        let mut flows: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let mut id = 0u64;
        for e in &sorted {
            if let TraceKind::Job {
                buffer: Some(b), ..
            } = &e.kind
            {
                if let Some(p) = last.insert(b.as_str(), e) {
                    id += 1;
                    flows.entry(p.seq).or_default().push(
                        json!({"ph": "s", "id": id, "cat": "buffer", "name": b, "pid": p.track.0 as u64 + 2,
                            "tid": tid(p.track.0), "ts": us(p.at)})
                        .to_string(),
                    );
                    flows.entry(e.seq).or_default().push(
                        json!({"ph": "f", "bp": "e", "id": id, "cat": "buffer", "name": b,
                            "pid": e.track.0 as u64 + 2, "tid": tid(e.track.0), "ts": us(e.at)})
                        .to_string(),
                    );
                }
            }
        }
        let mut out = Vec::new();
        let mut cs: Vec<_> = t.counters().iter().collect();
        cs.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        let mut cs = cs.into_iter().peekable();
        let c = |c: &(String, VirtualTime, f64)| {
            json!({"ph": "C", "cat": "counter", "name": c.0, "pid": 1, "ts": us(c.1),
                "args": { "value": c.2 }})
            .to_string()
        };
        for e in sorted {
            while let Some(x) = cs.next_if(|x| x.1 <= e.at) {
                out.push(c(x));
            }
            out.extend(event_lines(e, e.track.0 as u64 + 2));
            out.extend(flows.remove(&e.seq).unwrap_or_default());
        }
        out.extend(cs.map(c));
        out.join("\n")
    }

    /// A trace where buffer `idle` waits more than [`HOLD`] events for its next job.
    fn long_idle_trace() -> Trace {
        let us = VirtualTime::from_us;
        let mut t = Trace::new("hold");
        let (a, b) = (t.track("a"), t.track("b"));
        t.counter("c (bytes)", us(0), 1.0);
        t.job(
            a,
            "first",
            us(0),
            us(5),
            Some("idle"),
            1,
            Some(0),
            JobCategory::Dma,
        );
        for i in 0..(HOLD as u64 + 50) {
            let at = us(10 + i * 10);
            t.job(
                b,
                "busy",
                at,
                at + us(4),
                Some("busy"),
                1,
                Some(i),
                JobCategory::Dma,
            );
            if i % 1000 == 0 {
                t.counter("c (bytes)", at, i as f64);
                t.fence_signal(a, "tick", at);
            }
        }
        let end = us(20 + (HOLD as u64 + 50) * 10);
        t.job(
            a,
            "again",
            end,
            end + us(5),
            Some("idle"),
            1,
            Some(1),
            JobCategory::Dma,
        );
        t.counter("c (bytes)", end + us(100), 2.0);
        t
    }

    #[test]
    fn both_passes_write_what_the_whole_list_writer_wrote_even_past_the_hold() {
        let t = long_idle_trace();
        let json = t.to_chrome_json();
        // The header line, the run's process, the tracks' two processes (two lines each) and
        // the two tracks' metadata, then the events.
        let lines: Vec<&str> = json.lines().collect();
        let body: Vec<&str> = lines[10..lines.len() - 1]
            .iter()
            .map(|l| l.trim_end_matches(','))
            .collect();
        assert_eq!(body.join("\n"), whole_list(&t));
        // The idle buffer's arrow came through the late path: the body held at most HOLD.
        let mut pass1 = Body::new(Vec::new());
        for e in t.sorted_events() {
            pass1.push(e, t.track_pids()).unwrap();
            assert!(pass1.held.len() <= HOLD + 1);
        }
        let (_, late) = pass1.finish().unwrap();
        assert_eq!(late.len(), 1, "one arrow went late");
        assert!(serde_json::from_str::<Value>(&json).is_ok());
    }

    #[test]
    fn a_streamed_trace_writes_the_in_memory_bytes() {
        let t = long_idle_trace();
        let dir = std::env::temp_dir().join(format!("dmabuf-chrome-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("part");
        let mut s = Trace::new("hold");
        s.stream_to(&path).unwrap();
        // Recorded in the same order, the promise advanced as a runner would.
        let mut events: Vec<&TraceEvent> = t.events().iter().collect();
        events.sort_by_key(|e| e.seq);
        for e in events {
            s.advance(e.at);
            match &e.kind {
                TraceKind::Job {
                    end,
                    buffer,
                    bytes,
                    frame,
                    category,
                } => {
                    let tr = s.track(&t.tracks()[e.track.0]);
                    s.job(
                        tr,
                        &e.name,
                        e.at,
                        *end,
                        buffer.as_deref(),
                        *bytes,
                        *frame,
                        *category,
                    )
                }
                TraceKind::FenceSignal => {
                    let tr = s.track(&t.tracks()[e.track.0]);
                    s.fence_signal(tr, &e.name, e.at)
                }
                _ => unreachable!("the trace holds jobs and fences"),
            }
        }
        for (n, at, v) in t.counters() {
            s.counter(n, *at, *v);
        }
        s.finish_stream();
        assert!(s.events().is_empty(), "the events went to the file");
        assert_eq!(s.late_events(), 0);
        assert_eq!(s.to_chrome_json(), t.to_chrome_json());
        s.remove_stream_file().unwrap();
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
