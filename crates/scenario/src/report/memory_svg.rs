//! `memory.svg`: memory over time, drawn from the report's counters.
//!
//! One line per series, in three groups: each bank's used bytes (`bank NAME used`), each CMA
//! region's (`cma region NAME used`), and each simulated process's dma-buf RSS
//! (`process NAME dma-buf rss`). X is the virtual time of each sample (ms), Y the bytes in
//! MiB, one scale for all (a bank of GiB dwarfs a process of MiB: hover a line for its name and
//! its peak). A report without counters (an older run) gives a picture saying so. Deterministic:
//! the same report gives the same bytes.

use super::counters::CountersReport;
use super::model::Report;
use super::svg::{tick_step, trim_float, xml_escape, Axes};
use std::fmt::Write;

/// The series `memory.svg` draws, in the order drawn: `(kind, series)` for each bank, CMA
/// region and process of `c`.
pub fn memory_series(c: &CountersReport) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    for (kind, prefix, suffix) in [
        ("bank", "bank ", " used"),
        ("cma", "cma region ", " used"),
        ("process", "process ", " dma-buf rss"),
    ] {
        for s in &c.series {
            if s.name.starts_with(prefix) && s.name.ends_with(suffix) {
                out.push((kind, s.name.as_str()));
            }
        }
    }
    out
}

const COLOURS: [&str; 3] = ["#4e79a7", "#e15759", "#59a14f"];
const DASHES: [&str; 4] = ["", "6 3", "2 2", "8 3 2 3"];

/// The memory-over-time picture of `report` (module doc).
pub fn memory_svg(report: &Report) -> String {
    let (w, h) = (1000.0, 460.0);
    let (left, right, top, bottom) = (80.0, 260.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"22\" font-size=\"15\">{} — memory over time (MiB against virtual ms)</text>",
        xml_escape(&report.scenario)
    );
    let Some(c) = &report.counters else {
        let _ = writeln!(
            s,
            "<text x=\"{left}\" y=\"{:.1}\">no counters in this report</text>\n</svg>",
            top + 20.0
        );
        return s;
    };
    let series = memory_series(c);
    let mib = |v: f64| v / (1u64 << 20) as f64;
    let end_ms = c.t_us.last().copied().unwrap_or(0.0).max(1e-3) / 1000.0;
    let max_mib = series
        .iter()
        .filter_map(|(_, n)| c.series(n))
        .flat_map(|s| s.values.iter().copied())
        .map(mib)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.05;
    let x = |ms: f64| left + (ms / end_ms).clamp(0.0, 1.0) * pw;
    let y = |m: f64| top + ph - (m / max_mib).clamp(0.0, 1.0) * ph;
    Axes {
        left,
        top,
        pw,
        ph,
        y_max: max_mib,
        y_step: tick_step(max_mib, 6.0),
        x_max: end_ms,
        x_step: tick_step(end_ms, 8.0),
    }
    .write(&mut s, &y, &x);
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">virtual time (ms)</text>\
         <text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">MiB</text>",
        left + pw / 2.0,
        h - 10.0,
        top + ph / 2.0,
        top + ph / 2.0
    );
    let mut in_kind = [0usize; 3];
    for (i, (kind, name)) in series.iter().enumerate() {
        let Some(cs) = c.series(name) else { continue };
        let ki = match *kind {
            "bank" => 0,
            "cma" => 1,
            _ => 2,
        };
        let dash = DASHES[in_kind[ki] % DASHES.len()];
        in_kind[ki] += 1;
        let mut pts = String::new();
        for (&t, &v) in c.t_us.iter().zip(&cs.values) {
            let _ = write!(pts, "{:.2},{:.2} ", x(t / 1000.0), y(mib(v)));
        }
        let peak = cs.values.iter().copied().fold(0.0, f64::max);
        let dash_attr = if dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{dash}\"")
        };
        let _ = writeln!(
            s,
            "<polyline class=\"series {kind}\" data-series=\"{n}\" fill=\"none\" stroke=\"{col}\" \
             stroke-width=\"1.5\"{dash_attr} points=\"{}\"><title>{n}: peak {} MiB</title></polyline>",
            pts.trim_end(),
            trim_float(mib(peak)),
            n = xml_escape(name),
            col = COLOURS[ki],
        );
        // The legend, one row per series.
        let ly = top + 6.0 + i as f64 * 16.0;
        let lx = left + pw + 16.0;
        let _ = writeln!(
            s,
            "<line class=\"legend\" x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{col}\" \
             stroke-width=\"2\"{dash_attr}/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            xml_escape(name),
            col = COLOURS[ki],
        );
    }
    s.push_str("</svg>\n");
    s
}
