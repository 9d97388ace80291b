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
//! Lifetime: owned by the trace it summarises; no lock.

use super::trace::{JobCategory, TraceEvent, TraceKind, TrackId};
use crate::clock::VirtualTime;

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

#[cfg(test)]
mod tests {
    use super::*;

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
