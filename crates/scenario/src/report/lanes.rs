//! What the timeline picture needs of a trace, kept as the run goes: per lane its job bars
//! (the `migrations` lane: a red bar per migration, its copy or else its stall), the
//! migrations' stall bands and the attach ticks.
//!
//! The timeline ([`super::timeline_svg`]) merges, per lane, bars closer than a third of a pixel.
//! A streamed trace keeps no event list, so [`Lanes`] merges as the events arrive (in sorted
//! order), with a gap of a quarter of a pixel at the span seen so far: the run only gets longer,
//! so a gap merged now is under a third of a pixel in the final picture too, and merging is
//! associative (a run of bars that merges at a gap merges the same way from pre-merged pieces).
//! The picture is therefore the one the whole event list gives, and a lane holds a bounded
//! number of bars: when it passes [`REMERGE`] bars (or twice what the last merge left) it is merged again at
//! the current span.
//!
//! That holds for the default picture and any no finer that shows the whole run
//! ([`Lanes::exact_for`]). Another view (a window, a wider picture) needs the bars its own
//! gap would merge: it reads them back from the streamed trace's file ([`body_bars`]), the
//! slices in the window only, merged at a quarter pixel of that view as they come, so it too
//! holds a bounded number of bars and draws what the event list draws.
//!
//! Lifetime: owned by the trace it summarises; no lock.

use super::trace::{JobCategory, Trace, TraceEvent, TraceKind, TrackId};
use crate::clock::VirtualTime;
use std::io::BufRead;

/// A bar: start, end, whether it is a migration copy (red).
pub type Bar = (VirtualTime, VirtualTime, bool);

/// A lane's bar count past which it is merged again.
pub const REMERGE: usize = 8192;

/// The pre-merged timeline parts of a streamed trace (module doc).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lanes {
    /// Per track, its bars in time order.
    pub bars: Vec<Vec<Bar>>,
    /// Each migration: when, its stall, the buffer, in sorted order.
    pub migrations: Vec<(VirtualTime, VirtualTime, String)>,
    /// Each attach: track, when, buffer, in record order.
    pub attaches: Vec<(TrackId, VirtualTime, String)>,
    /// Per track, its bar count that triggers the next merge.
    limits: Vec<usize>,
    /// The latest end seen.
    span: VirtualTime,
    /// Plot width in pixels the merging gap is computed for.
    plot_w: f64,
}

impl Lanes {
    /// Parts for a picture `plot_w` pixels wide.
    pub fn new(plot_w: f64) -> Lanes {
        Lanes {
            plot_w,
            ..Lanes::default()
        }
    }

    /// The merging gap now: a quarter of a pixel at the span seen so far.
    fn gap(&self) -> u64 {
        (self.span.as_ns() as f64 * 0.25 / self.plot_w.max(1.0)).floor() as u64
    }

    /// Takes the next event in sorted order.
    pub fn add(&mut self, e: &TraceEvent) {
        match &e.kind {
            TraceKind::Job { end, category, .. } => {
                self.span = self.span.max(*end);
                let gap = self.gap();
                let lane = e.track.0;
                if self.bars.len() <= lane {
                    self.bars.resize(lane + 1, Vec::new());
                    self.limits.resize(lane + 1, REMERGE);
                }
                let bars = &mut self.bars[lane];
                push_bar(bars, (e.at, *end, *category == JobCategory::Migration), gap);
                if bars.len() > self.limits[lane] {
                    let old = std::mem::take(bars);
                    for b in old {
                        push_bar(bars, b, gap);
                    }
                    self.limits[lane] = REMERGE.max(2 * bars.len());
                }
            }
            TraceKind::Migration { stall, buffer, .. } => {
                self.span = self.span.max(e.at + *stall);
                self.migrations.push((e.at, *stall, buffer.clone()));
                if let Some(bar) = migration_bar(e) {
                    self.span = self.span.max(bar.1);
                    let gap = self.gap();
                    let lane = e.track.0;
                    if self.bars.len() <= lane {
                        self.bars.resize(lane + 1, Vec::new());
                        self.limits.resize(lane + 1, REMERGE);
                    }
                    push_bar(&mut self.bars[lane], bar, gap);
                }
            }
            _ => self.span = self.span.max(e.at),
        }
    }
}

impl Lanes {
    /// Whether these bars draw the view from `start` to `end`, `plot_w` pixels wide, as the
    /// event list does (module doc): the view shows the whole run, so no bar crosses its
    /// edges, and each gap merged here is at most a quarter pixel of it.
    pub fn exact_for(&self, start: VirtualTime, end: VirtualTime, plot_w: f64) -> bool {
        let span = end.saturating_sub(start).as_ns() as f64;
        start == VirtualTime::ZERO && end >= self.span && self.gap() as f64 * plot_w <= 0.25 * span
    }
}

/// A view's bars read back from a streamed trace's body (the file pass 1 of
/// [`super::chrome`] writes): per track (`tid` - 1, `tracks` of them), each slice
/// (`"ph":"X"`) that reaches into `[start, end]` as a bar from its group's marker (exact
/// nanoseconds) for its `dur`, red for a migration (`cat` `migration`), merged at `gap` as
/// it comes. Errors: the file's, or a line that is not what pass 1 writes (`InvalidData`).
pub fn body_bars(
    body: impl BufRead,
    tracks: usize,
    (start, end): (VirtualTime, VirtualTime),
    gap: u64,
) -> std::io::Result<Vec<Vec<Bar>>> {
    let bad = |what: &str, line: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("trace body: {what}: {line:?}"),
        )
    };
    let mut bars = vec![Vec::new(); tracks];
    let mut at = VirtualTime::ZERO;
    for line in body.lines() {
        let line = line?;
        if let Some(ns) = line.strip_prefix('@') {
            at = VirtualTime::from_ns(ns.parse().map_err(|_| bad("bad marker", &line))?);
            continue;
        }
        // Only a slice carries this (a name or argument has its quotes escaped).
        if !line.contains("\"ph\":\"X\"") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|_| bad("not JSON", &line))?;
        let (Some(tid), Some(dur)) = (v["tid"].as_u64(), v["dur"].as_f64()) else {
            return Err(bad("a slice without tid or dur", &line));
        };
        let je = at + VirtualTime::from_ns((dur * 1000.0).round() as u64);
        if je < start || at > end {
            continue;
        }
        let lane = usize::try_from(tid.saturating_sub(1)).unwrap_or(usize::MAX);
        if let Some(lane) = bars.get_mut(lane) {
            push_bar(lane, (at, je, v["cat"] == "migration"), gap);
        }
    }
    Ok(bars)
}

/// The bar of a migration on its own lane (the `migrations` track): red, from its start for
/// its copy when the runner knows it, else for its stall. `None` for any other event.
pub fn migration_bar(e: &TraceEvent) -> Option<Bar> {
    match &e.kind {
        TraceKind::Migration { stall, copy, .. } => {
            Some((e.at, e.at + copy.unwrap_or(*stall), true))
        }
        _ => None,
    }
}

/// Appends `b`, merged into the last bar when of the same colour and at most `gap` after it.
fn push_bar(bars: &mut Vec<Bar>, b: Bar, gap: u64) {
    match bars.last_mut() {
        Some(last) if last.2 == b.2 && b.0.as_ns() <= last.1.as_ns().saturating_add(gap) => {
            last.1 = last.1.max(b.1);
        }
        _ => bars.push(b),
    }
}

/// The timeline's parts for the view from `start` to `end`, `plot_w` pixels wide, and
/// whether they draw it exactly: a streamed trace's pre-merged ones ([`Lanes`]) when they do
/// ([`Lanes::exact_for`]), else its bars read back from its file at the view's own quarter
/// pixel ([`body_bars`]; not exact only once the file is removed); an
/// in-memory trace's event list, each job its own bar.
pub(crate) fn timeline_parts(
    trace: &Trace,
    start: VirtualTime,
    end: VirtualTime,
    plot_w: f64,
) -> (Lanes, bool) {
    if let Some(l) = trace.lanes() {
        let mut l = l.clone();
        let tracks = trace.tracks().len();
        let mut exact = l.exact_for(start, end, plot_w);
        if !exact {
            let span = end.saturating_sub(start).as_ns() as f64;
            let gap = (span * 0.25 / plot_w.max(1.0)).floor() as u64;
            let bars = trace
                .stream_body()
                .and_then(|body| body_bars(body, tracks, (start, end), gap));
            if let Ok(bars) = bars {
                (l.bars, exact) = (bars, true);
            }
        }
        l.bars.resize(tracks, Vec::new());
        return (l, exact);
    }
    let mut l = Lanes {
        bars: vec![Vec::new(); trace.tracks().len()],
        ..Lanes::default()
    };
    for e in trace.sorted_events() {
        match &e.kind {
            TraceKind::Job {
                end: je, category, ..
            } => {
                if *je < start || e.at > end {
                    continue;
                }
                if let Some(v) = l.bars.get_mut(e.track.0) {
                    v.push((e.at, *je, *category == JobCategory::Migration));
                }
            }
            TraceKind::Migration { stall, buffer, .. } => {
                l.migrations.push((e.at, *stall, buffer.clone()));
                // Its own lane's bar (module `lanes`).
                if let (Some(bar), Some(v)) = (migration_bar(e), l.bars.get_mut(e.track.0)) {
                    v.push(bar);
                }
            }
            _ => {}
        }
    }
    for e in trace.events() {
        if let TraceKind::Attach { buffer } = &e.kind {
            l.attaches.push((e.track, e.at, buffer.clone()));
        }
    }
    (l, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_bars_reads_slices_exactly_and_refuses_what_pass_1_does_not_write() {
        let t = VirtualTime::from_ns;
        let body = "@1000\n{\"cat\":\"dma\",\"dur\":0.5,\"name\":\"a\",\"ph\":\"X\",\"pid\":2,\"tid\":2,\"ts\":1.0}\n\
                    @1600\n{\"ph\":\"i\",\"name\":\"x\",\"tid\":1}\n\
                    {\"cat\":\"migration\",\"dur\":0.001,\"name\":\"m\",\"ph\":\"X\",\"pid\":2,\"tid\":1,\"ts\":1.6}\n";
        let bars = body_bars(body.as_bytes(), 2, (t(0), t(10_000)), 0).unwrap();
        assert_eq!(
            bars,
            vec![
                vec![(t(1600), t(1601), true)],
                vec![(t(1000), t(1500), false)]
            ]
        );
        // Outside the window: nothing.
        let none = body_bars(body.as_bytes(), 2, (t(2000), t(3000)), 0).unwrap();
        assert!(none.iter().all(Vec::is_empty));
        for bad in ["@x\n", "{\"ph\":\"X\" oops\n", "{\"ph\":\"X\",\"tid\":1}\n"] {
            let e = body_bars(bad.as_bytes(), 1, (t(0), t(1)), 0).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{bad}");
        }
    }

    #[test]
    fn bars_within_the_gap_merge_and_others_do_not() {
        let t = VirtualTime::from_ns;
        let mut bars = Vec::new();
        push_bar(&mut bars, (t(0), t(10), false), 5);
        push_bar(&mut bars, (t(15), t(20), false), 5);
        push_bar(&mut bars, (t(26), t(30), false), 5);
        push_bar(&mut bars, (t(31), t(32), true), 5);
        assert_eq!(
            bars,
            vec![
                (t(0), t(20), false),
                (t(26), t(30), false),
                (t(31), t(32), true)
            ]
        );
    }
}
