//! The pictures: `timeline.svg` (device lanes over time) and `latency.svg` (per-frame latency).
//!
//! Hand-built SVG (`write!` into a `String`): no font, no system library, no plotting crate, so
//! it builds on a fresh machine with only the Rust toolchain, and the same input gives the same
//! bytes. Text uses the generic `sans-serif` family and is laid out by whatever displays the file.
//!
//! The timeline draws one lane per trace track; each job is a bar (migration copies in red), a
//! migration's stall is a red band across every lane, and attaches are blue ticks. Under the
//! device lanes, one lane per memory controller draws its utilisation over time (the
//! `memory NAME utilisation` counter as a step area, 0 to 100%, or to the peak with a dashed
//! line at 100% when oversubscribed). Bars closer
//! than a third of a pixel are merged so that a long run stays a small file: the stutter shows as
//! a gap in the regular rhythm of the lanes under a red band.
//!
//! Any [`TimelineOptions`] view (width, window) of a streamed trace draws the bytes the
//! in-memory trace draws (module [`super::lanes`]), as long as the trace's file is there
//! (until [`Trace::remove_stream_file`]); after, a view finer than the merged bars says so in
//! its title ("bars merged at the resolution of the whole run").

use super::model::Report;
use super::trace::Trace;
use crate::clock::VirtualTime;
use std::fmt::Write;

/// Escapes text for SVG content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A chart's plot area and scales: its two axes, a grey grid line with a label at each
/// `y_step` up to `y_max`, and a label at each `x_step` up to `x_max` under the plot (the
/// latency and memory charts draw the same frame).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Axes {
    pub left: f64,
    pub top: f64,
    pub pw: f64,
    pub ph: f64,
    pub y_max: f64,
    pub y_step: f64,
    pub x_max: f64,
    pub x_step: f64,
}

impl Axes {
    /// Writes the axes, grid and labels; `y` and `x` map values to pixels.
    pub(crate) fn write(&self, s: &mut String, y: &dyn Fn(f64) -> f64, x: &dyn Fn(f64) -> f64) {
        let Axes {
            left,
            top,
            pw,
            ph,
            y_max,
            y_step,
            x_max,
            x_step,
        } = *self;
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/><line x1=\"{left}\" y1=\"{top}\" \
             x2=\"{left}\" y2=\"{b}\" stroke=\"#333\"/>",
            b = top + ph,
            r = left + pw
        );
        let mut k = 0.0;
        while k * y_step <= y_max + 1e-9 {
            let v = k * y_step;
            let _ = writeln!(
                s,
                "<line x1=\"{left}\" y1=\"{yy:.2}\" x2=\"{r}\" y2=\"{yy:.2}\" stroke=\"#e6e6e6\"/><text x=\"{tx}\" \
                 y=\"{ty:.2}\" text-anchor=\"end\">{}</text>",
                trim_float(v),
                yy = y(v),
                r = left + pw,
                tx = left - 6.0,
                ty = y(v) + 4.0
            );
            k += 1.0;
        }
        let mut k = 0.0;
        while k * x_step <= x_max + 1e-9 {
            let v = k * x_step;
            let _ = writeln!(
                s,
                "<text x=\"{:.2}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x(v),
                top + ph + 16.0,
                trim_float(v)
            );
            k += 1.0;
        }
    }
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` ticks over `span`.
pub(crate) fn tick_step(span: f64, target: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / target.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Latency line colours, by source (the first is the single-source line's).
const SOURCE_COLOURS: [&str; 6] = [
    "#4e79a7", "#b07aa1", "#9c755f", "#76b7b2", "#edc948", "#bab0ac",
];

/// Lane colours, by track index.
const PALETTE: [&str; 8] = [
    "#4e79a7", "#59a14f", "#f28e2b", "#76b7b2", "#edc948", "#b07aa1", "#9c755f", "#bab0ac",
];

/// Which part of the run a timeline shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelineOptions {
    /// Width of the picture in pixels (at least 200).
    pub width: u32,
    /// First instant shown.
    pub start: VirtualTime,
    /// Last instant shown (`None`: the end of the trace).
    pub end: Option<VirtualTime>,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        TimelineOptions {
            width: 1200,
            start: VirtualTime::ZERO,
            end: None,
        }
    }
}

const LEFT: f64 = 130.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const LANE_H: f64 = 28.0;
const BAR_H: f64 = 18.0;

/// The timeline picture of a trace (see the module doc).
///
/// ```
/// use scenario::clock::VirtualTime;
/// use scenario::report::{timeline_svg, JobCategory, Trace, TimelineOptions};
/// let mut t = Trace::new("demo");
/// let cam = t.track("camera0");
/// t.job(cam, "capture 0", VirtualTime::ZERO, VirtualTime::from_us(100), None, 0, Some(0), JobCategory::Dma);
/// let svg = timeline_svg(&t, &TimelineOptions::default());
/// assert!(svg.starts_with("<svg") && svg.contains("camera0"));
/// ```
pub fn timeline_svg(trace: &Trace, opt: &TimelineOptions) -> String {
    let width = f64::from(opt.width.max(200));
    let start = opt.start;
    let end = opt
        .end
        .unwrap_or_else(|| trace.end_time())
        .max(start + VirtualTime(1));
    let span_ns = (end - start).as_ns() as f64;
    let plot_w = width - LEFT - RIGHT;
    let x = |t: VirtualTime| LEFT + (t.as_ns() as f64 - start.as_ns() as f64) / span_ns * plot_w;
    let lanes = trace.tracks().len().max(1);
    let memory = utilisation_series(trace);
    let height = TOP + (lanes + memory.len()) as f64 * LANE_H + 40.0;
    let (parts, exact) = super::lanes::timeline_parts(trace, start, end, plot_w);
    // Only when a streamed trace's file is gone and the view is finer than its merged bars.
    let note = match exact {
        true => "",
        false => "; bars merged at the resolution of the whole run",
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        s,
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{LEFT}\" y=\"22\" \
         font-size=\"15\">{} — device timeline ({}, virtual time{note})</text>",
        xml_escape(trace.title()),
        span_label(start, end)
    );
    // Lanes.
    for (i, name) in trace.tracks().iter().enumerate() {
        let y = TOP + i as f64 * LANE_H;
        let fill = if i % 2 == 0 { "#f4f4f4" } else { "#ffffff" };
        let _ = writeln!(
            s,
            "<g class=\"lane\" data-track=\"{n}\"><rect x=\"{LEFT}\" y=\"{y}\" width=\"{plot_w}\" \
             height=\"{LANE_H}\" fill=\"{fill}\"/><text x=\"{tx}\" y=\"{ty:.1}\" \
             text-anchor=\"end\">{n}</text></g>",
            n = xml_escape(name),
            tx = LEFT - 8.0,
            ty = y + LANE_H / 2.0 + 4.0
        );
    }
    // Migration stalls: a red band across all lanes.
    let bottom = TOP + lanes as f64 * LANE_H;
    for (at, stall, buffer) in &parts.migrations {
        let (a, b) = ((*at).max(start), (*at + *stall).min(end));
        if a > end || b < start {
            continue;
        }
        let (x0, x1) = (x(a), x(b).max(x(a) + 1.0));
        let _ = writeln!(
            s,
            "<rect class=\"migration\" x=\"{x0:.2}\" y=\"{TOP}\" width=\"{:.2}\" height=\"{:.1}\" \
             fill=\"#e15759\" fill-opacity=\"0.35\"><title>migrate {} at {} (stall {})</title></rect>",
            x1 - x0,
            bottom - TOP,
            xml_escape(buffer),
            at,
            stall
        );
    }
    // Jobs, merged per lane when closer than a third of a pixel.
    for (lane, events) in parts.bars.iter().enumerate() {
        let mut bars: Vec<(f64, f64, bool)> = Vec::new();
        for &(at, je, red) in events {
            if je < start || at > end {
                continue;
            }
            let (x0, x1) = (x(at.max(start)), x(je.min(end)));
            match bars.last_mut() {
                Some(last) if last.2 == red && x0 <= last.1 + 0.33 => last.1 = last.1.max(x1),
                _ => bars.push((x0, x1, red)),
            }
        }
        let y = TOP + lane as f64 * LANE_H + (LANE_H - BAR_H) / 2.0;
        let colour = PALETTE[lane % PALETTE.len()];
        for (x0, x1, red) in bars {
            let _ = writeln!(
                s,
                "<rect class=\"job\" x=\"{x0:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{BAR_H}\" fill=\"{}\"/>",
                (x1 - x0).max(0.5),
                if red { "#e15759" } else { colour }
            );
        }
    }
    // Attaches.
    for (track, at, buffer) in &parts.attaches {
        if *at < start || *at > end {
            continue;
        }
        let y = TOP + track.0 as f64 * LANE_H;
        let _ = writeln!(
            s,
            "<line class=\"attach\" x1=\"{x:.2}\" y1=\"{y}\" x2=\"{x:.2}\" y2=\"{:.1}\" stroke=\"#1f4e9c\" \
             stroke-width=\"2\"><title>attach {}</title></line>",
            y + LANE_H,
            xml_escape(buffer),
            x = x(*at)
        );
    }
    // Memory controllers' utilisation, one lane each under the device lanes.
    for (j, (mc, samples)) in memory.iter().enumerate() {
        let y = bottom + j as f64 * LANE_H;
        utilisation_lane(&mut s, mc, samples, y, (start, end), &x, plot_w);
    }
    axis(&mut s, start, end, x, bottom + memory.len() as f64 * LANE_H);
    s.push_str("</svg>\n");
    s
}

/// The trace's memory-controller utilisation counters (`memory NAME utilisation (ratio)`, module
/// `run::counters`): each controller's samples `(at, value)`, by controller name. A sample is
/// the utilisation over the interval that ends at its time.
fn utilisation_series(trace: &Trace) -> Vec<(String, Vec<(VirtualTime, f64)>)> {
    let mut by: std::collections::BTreeMap<String, Vec<(VirtualTime, f64)>> = Default::default();
    for (name, at, v) in trace.counters() {
        let mc = name
            .strip_prefix("memory ")
            .and_then(|r| r.strip_suffix(" utilisation (ratio)"));
        if let Some(mc) = mc {
            by.entry(mc.to_string()).or_default().push((*at, *v));
        }
    }
    by.into_iter().collect()
}

/// One memory controller's lane at `y`: its utilisation as a step area over time, on a scale
/// from 0 to 100% (or to the peak when oversubscribed, with a dashed line at 100%).
fn utilisation_lane(
    s: &mut String,
    mc: &str,
    samples: &[(VirtualTime, f64)],
    y: f64,
    (start, end): (VirtualTime, VirtualTime),
    x: &impl Fn(VirtualTime) -> f64,
    plot_w: f64,
) {
    let peak = samples.iter().map(|&(_, v)| v).fold(0.0, f64::max);
    let full = peak.max(1.0);
    let (base, room) = (y + LANE_H - 3.0, LANE_H - 6.0);
    let h = |v: f64| base - (v.max(0.0) / full) * room;
    let _ = writeln!(
        s,
        "<g class=\"lane utilisation\" data-controller=\"{n}\"><rect x=\"{LEFT}\" y=\"{y}\" \
         width=\"{plot_w}\" height=\"{LANE_H}\" fill=\"#eef3f8\"/><text x=\"{tx}\" y=\"{ty:.1}\" \
         text-anchor=\"end\">memory {n}</text><text class=\"scale\" x=\"{sx}\" y=\"{sy:.1}\" \
         font-size=\"9\">{top}%</text><title>memory controller {n}: utilisation, peak {pk}%</title></g>",
        n = xml_escape(mc),
        tx = LEFT - 8.0,
        ty = y + LANE_H / 2.0 + 4.0,
        sx = LEFT + 2.0,
        sy = y + 10.0,
        top = trim_float(full * 100.0),
        pk = trim_float(peak * 100.0),
    );
    // The step area: each sample covers the interval since the previous one.
    let mut d = String::new();
    let mut prev = VirtualTime::ZERO;
    for &(at, v) in samples {
        let (a, b) = (prev.max(start), at.min(end));
        prev = at;
        if a >= b {
            continue;
        }
        let (x0, x1, top) = (x(a), x(b), h(v));
        let _ = write!(d, "M{x0:.2} {base:.1}V{top:.1}H{x1:.2}V{base:.1}Z");
    }
    if !d.is_empty() {
        let _ = writeln!(
            s,
            "<path class=\"utilisation\" data-controller=\"{}\" d=\"{d}\" fill=\"#4e79a7\" \
             fill-opacity=\"0.6\"/>",
            xml_escape(mc)
        );
    }
    if full > 1.0 {
        let y1 = h(1.0);
        let _ = writeln!(
            s,
            "<line class=\"full\" x1=\"{LEFT}\" y1=\"{y1:.1}\" x2=\"{:.2}\" y2=\"{y1:.1}\" \
             stroke=\"#e15759\" stroke-dasharray=\"4 3\"><title>100%</title></line>",
            LEFT + plot_w
        );
    }
}

/// The time axis under the lanes, in milliseconds.
fn axis(
    s: &mut String,
    start: VirtualTime,
    end: VirtualTime,
    x: impl Fn(VirtualTime) -> f64,
    y: f64,
) {
    let (a, b) = (start.as_ns() as f64 / 1e6, end.as_ns() as f64 / 1e6);
    let step = tick_step(b - a, 8.0);
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{:.2}\" y2=\"{y}\" stroke=\"#333\"/>",
        x(end)
    );
    let mut k = (a / step).ceil();
    while k * step <= b + 1e-9 {
        let ms = k * step;
        let xx = x(VirtualTime((ms * 1e6).round() as u64));
        let _ = writeln!(
            s,
            "<line x1=\"{xx:.2}\" y1=\"{y}\" x2=\"{xx:.2}\" y2=\"{:.1}\" stroke=\"#333\"/><text x=\"{xx:.2}\" \
             y=\"{:.1}\" text-anchor=\"middle\">{} ms</text>",
            y + 5.0,
            y + 18.0,
            trim_float(ms)
        );
        k += 1.0;
    }
}

/// `12.5`, `3`, `0.25`: a float with at most 3 decimals and no trailing zeros.
pub(crate) fn trim_float(v: f64) -> String {
    let t = format!("{v:.3}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    if t == "-0" {
        "0".into()
    } else {
        t.to_string()
    }
}

/// The per-frame latency picture of a report: latency in milliseconds against frame number, the
/// p50 and p99 as dashed lines, and a red line at each migration's frame.
///
/// ```
/// use scenario::clock::VirtualTime;
/// use scenario::report::{latency_svg, LatencyReport, Report};
/// let mut r = Report::new("demo", 0);
/// r.latency_us = LatencyReport::from_samples(&[(0, VirtualTime::from_ms(16)), (1, VirtualTime::from_ms(17))]);
/// let svg = latency_svg(&r);
/// assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
/// ```
pub fn latency_svg(report: &Report) -> String {
    let (w, h) = (1000.0, 420.0);
    let (left, right, top, bottom) = (70.0, 20.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let pts = &report.latency_us.per_frame;
    let last_frame = pts
        .iter()
        .map(|p| p.frame)
        .chain(report.migrations.iter().map(|m| m.frame))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let max_ms = (report.latency_us.max / 1000.0).max(1e-3) * 1.1;
    let x = |f: f64| left + f / last_frame * pw;
    let y = |ms: f64| top + ph - (ms / max_ms).clamp(0.0, 1.0) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"22\" font-size=\"15\">{} — per-frame latency (virtual ms)</text>",
        xml_escape(&report.scenario)
    );
    // Axes and ticks.
    Axes {
        left,
        top,
        pw,
        ph,
        y_max: max_ms,
        y_step: tick_step(max_ms, 6.0),
        x_max: last_frame,
        x_step: tick_step(last_frame, 10.0).max(1.0),
    }
    .write(&mut s, &y, &x);
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">frame</text>",
        left + pw / 2.0,
        h - 10.0
    );
    for m in &report.migrations {
        let xx = x(m.frame as f64);
        let _ = writeln!(
            s,
            "<line class=\"migration\" x1=\"{xx:.2}\" y1=\"{top}\" x2=\"{xx:.2}\" y2=\"{:.1}\" stroke=\"#e15759\">\
             <title>frame {}: migrate {} ({})</title></line>",
            top + ph,
            m.frame,
            xml_escape(&m.buffer),
            xml_escape(&m.cause)
        );
    }
    // p50 is labelled at the left end of its line and p99 at the right end, so the two labels
    // never overlap when the percentiles are equal or close.
    for (label, v, colour, anchor) in [
        ("p50", report.latency_us.p50, "#59a14f", "start"),
        ("p99", report.latency_us.p99, "#f28e2b", "end"),
    ] {
        let yy = y(v / 1000.0);
        let tx = if anchor == "start" {
            left + 4.0
        } else {
            left + pw
        };
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{yy:.2}\" x2=\"{r}\" y2=\"{yy:.2}\" stroke=\"{colour}\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{tx:.2}\" y=\"{ty:.2}\" text-anchor=\"{anchor}\" fill=\"{colour}\">{label} {} ms</text>",
            trim_float(v / 1000.0),
            r = left + pw,
            ty = yy - 4.0
        );
    }
    // One line per source (a run with several cameras), else one for the run.
    for (i, (source, pts)) in super::latency::latency_series(&report.latency_us)
        .into_iter()
        .enumerate()
    {
        let mut line = String::new();
        for p in pts {
            let _ = write!(line, "{:.2},{:.2} ", x(p.frame as f64), y(p.us / 1000.0));
        }
        let colour = SOURCE_COLOURS[i % SOURCE_COLOURS.len()];
        if source.is_empty() {
            let _ = writeln!(
                s,
                "<polyline class=\"latency\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.2\" points=\"{}\"/>",
                line.trim_end()
            );
        } else {
            let _ = writeln!(
                s,
                "<polyline class=\"latency source\" data-source=\"{src}\" fill=\"none\" stroke=\"{colour}\" \
                 stroke-width=\"1.2\" points=\"{}\"><title>{src}</title></polyline>\
                 <text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{colour}\">{src}</text>",
                line.trim_end(),
                left + pw,
                22.0 + 14.0 * i as f64,
                src = xml_escape(source),
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// `start` and `end` in the one unit that suits the span, three decimals at most:
/// `0 s to 10.021 s`, `0 ms to 20.815 ms`, `3 us to 900 us`.
fn span_label(start: VirtualTime, end: VirtualTime) -> String {
    let (div, unit) = match end.as_ns() {
        ns if ns >= 1_000_000_000 => (1e9, "s"),
        ns if ns >= 1_000_000 => (1e6, "ms"),
        ns if ns >= 1_000 => (1e3, "us"),
        _ => (1.0, "ns"),
    };
    let v = |t: VirtualTime| trim_float(t.as_ns() as f64 / div);
    format!("{} {unit} to {} {unit}", v(start), v(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_span_is_in_one_unit_that_suits_it() {
        let t = |ns| VirtualTime::from_ns(ns);
        assert_eq!(span_label(t(0), t(10_020_815_067)), "0 s to 10.021 s");
        assert_eq!(span_label(t(0), t(20_815_000)), "0 ms to 20.815 ms");
        assert_eq!(span_label(t(3_000), t(900_000)), "3 us to 900 us");
        assert_eq!(span_label(t(0), t(15)), "0 ns to 15 ns");
    }
}
