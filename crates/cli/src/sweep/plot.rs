//! `sweep.svg`: one headline figure against the first varied field.
//!
//! The x axis is the first `--vary` field: linear when every value is a number or a size
//! (`64MiB`), else its values evenly spaced in the order given. Each combination of the other
//! varied fields is one line (with a legend); a point without the figure (a missing report) is
//! left out of its line.

use super::Vary;
use crate::figures::{show, Figure};
use scenario::report::xml_escape;
use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 220.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];

/// A varied value as a number, when it is one (`6`, `2.5`, `64MiB`, `0x1000`).
fn numeric(v: &str) -> Option<f64> {
    let t = v.trim().trim_matches('"');
    t.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .or_else(|| soc::desc::ByteSize::parse(t).ok().map(|b| b.bytes() as f64))
}

/// Round tick positions covering `lo..=hi`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 && out.len() < 12 {
        out.push(t);
        t += step;
    }
    out
}

/// The SVG of `points` (each point's values, one per varied field, and its figure).
pub fn svg(vary: &[Vary], points: &[(Vec<String>, Option<f64>)], figure: &Figure) -> String {
    let Some(first) = vary.first() else {
        return String::new();
    };
    let xs_num: Option<Vec<f64>> = first.values.iter().map(|v| numeric(v)).collect();
    let x_of = |v: &str| -> f64 {
        match &xs_num {
            Some(_) => numeric(v).unwrap_or(0.0),
            None => first.values.iter().position(|x| x == v).unwrap_or(0) as f64,
        }
    };
    let (x_lo, x_hi) = match &xs_num {
        Some(xs) => xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            }),
        None => (0.0, (first.values.len().max(1) - 1) as f64),
    };
    let (x_lo, x_hi) = if x_hi > x_lo {
        (x_lo, x_hi)
    } else {
        (x_lo - 1.0, x_hi + 1.0)
    };
    let ys: Vec<f64> = points.iter().filter_map(|p| p.1).collect();
    let y_hi = ys.iter().copied().fold(0.0f64, f64::max);
    let y_lo = ys.iter().copied().fold(0.0f64, f64::min);
    let y_hi = if y_hi > y_lo { y_hi * 1.05 } else { y_lo + 1.0 };
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let px = |x: f64| LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w;
    let py = |y: f64| TOP + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="24" font-size="15">{} ({}) against {}</text>"#,
        xml_escape(figure.name),
        xml_escape(figure.meaning),
        xml_escape(&first.path)
    );
    for t in ticks(y_lo, y_hi) {
        let y = py(t);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            show(t)
        );
    }
    for v in &first.values {
        let x = px(x_of(v));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#999"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 5.0,
            TOP + plot_h + 18.0,
            xml_escape(v)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        H - 16.0,
        xml_escape(&first.path)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        xml_escape(figure.name)
    );
    // One series per combination of the other fields, in first-appearance order.
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (values, y) in points {
        let label = vary[1..]
            .iter()
            .zip(&values[1..])
            .map(|(v, x)| format!("{}={x}", v.path))
            .collect::<Vec<_>>()
            .join(", ");
        let k = match series.iter().position(|s| s.0 == label) {
            Some(k) => k,
            None => {
                series.push((label, Vec::new()));
                series.len() - 1
            }
        };
        if let (Some(y), Some(v)) = (y, values.first()) {
            series[k].1.push((x_of(v), *y));
        }
    }
    for (k, (label, pts)) in series.iter_mut().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let line: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            line.join(" ")
        );
        for &(x, y) in pts.iter() {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}"><title>{}</title></circle>"#,
                px(x),
                py(y),
                show(y)
            );
        }
        if !label.is_empty() {
            let ly = TOP + 14.0 + k as f64 * 18.0;
            let lx = LEFT + plot_w + 14.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
                lx + 18.0,
                lx + 24.0,
                ly + 4.0,
                xml_escape(label)
            );
        }
    }
    s += "</svg>\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::figure;

    #[test]
    fn test_sizes_are_numeric_and_names_are_categories() {
        assert_eq!(numeric("64MiB"), Some(67108864.0));
        assert_eq!(numeric("2.5"), Some(2.5));
        assert_eq!(numeric("wayland"), None);
        assert_eq!(ticks(0.0, 10.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    }

    #[test]
    fn test_plot_draws_one_line_per_combination_of_the_other_fields() {
        let vary = vec![
            Vary::parse(1, "a=2,4,8").unwrap(),
            Vary::parse(2, "b=x,y").unwrap(),
        ];
        let mut points = Vec::new();
        for a in ["2", "4", "8"] {
            for (b, k) in [("x", 1.0), ("y", 2.0)] {
                let y = (a != "8" || b != "y").then(|| a.parse::<f64>().unwrap() * k);
                points.push((vec![a.to_string(), b.to_string()], y));
            }
        }
        let s = svg(&vary, &points, figure("p99_us").unwrap());
        assert_eq!(s.matches("<polyline").count(), 2);
        assert_eq!(
            s.matches("<circle").count(),
            5,
            "the missing point is left out"
        );
        assert!(s.contains(">b=x</text>") && s.contains(">b=y</text>"));
        assert!(s.contains("p99_us (99th-percentile latency, virtual µs) against a"));
    }
}
