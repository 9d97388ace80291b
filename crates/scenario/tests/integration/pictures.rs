//! The structure of `memory.svg`: one line per bank, CMA region and simulated process, each
//! with a point per counter sample inside the plot, and nothing else drawn as a series.

use scenario::report::{memory_series, memory_svg, CounterSeries, CountersReport, Report};
use scenario::run::{run, RunOptions};

/// A series polyline: `(class, data-series, points)`.
type Line = (String, String, Vec<(f64, f64)>);

/// Every series polyline of `svg`.
fn polylines(svg: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for part in svg.split("<polyline ").skip(1) {
        let attr = |name: &str| {
            let at = part
                .find(&format!("{name}=\""))
                .map(|i| i + name.len() + 2)?;
            let end = part[at..].find('"')? + at;
            Some(part[at..end].to_string())
        };
        let class = attr("class").unwrap_or_default();
        if !class.starts_with("series") {
            continue;
        }
        let points = attr("points")
            .unwrap_or_default()
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        out.push((class, attr("data-series").unwrap_or_default(), points));
    }
    out
}

fn series(name: &str, values: &[f64]) -> CounterSeries {
    CounterSeries {
        name: name.into(),
        unit: "bytes".into(),
        values: values.to_vec(),
    }
}

#[test]
fn memory_svg_draws_each_bank_cma_region_and_process_and_nothing_else() {
    let mib = (1u64 << 20) as f64;
    let mut r = Report::new("mem", 0);
    r.counters = Some(CountersReport {
        every_frames: 1,
        frames: vec![0, 1, 2],
        t_us: vec![0.0, 1000.0, 2000.0],
        series: vec![
            series("bank dram0 used", &[0.0, mib, 2.0 * mib]),
            series("cma dram0 used", &[0.0, mib, mib]),
            series("cma region cma0 used", &[0.0, mib, mib]),
            series("process cam dma-buf rss", &[0.0, 2.0 * mib, mib]),
            series("process cam dma-buf pss", &[0.0, 2.0 * mib, mib]),
            series("queue isp <- cam->isp", &[0.0, 1.0, 2.0]),
        ],
    });
    let svg = memory_svg(&r);
    assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
    let lines = polylines(&svg);
    let names: Vec<(&str, &str)> = lines
        .iter()
        .map(|(c, n, _)| (c.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("series bank", "bank dram0 used"),
            ("series cma", "cma region cma0 used"),
            ("series process", "process cam dma-buf rss"),
        ]
    );
    // Same scale for all: the bank's and the process's 2 MiB peaks are at the same height,
    // the top of the data; zero is the bottom.
    let bank = &lines[0].2;
    let process = &lines[2].2;
    assert_eq!(bank.len(), 3);
    assert_eq!(bank[2].1, process[1].1);
    assert!(bank[0].1 > bank[1].1 && bank[1].1 > bank[2].1, "{bank:?}");
    assert_eq!(bank[0].1, process[0].1);
    // Time runs left to right.
    assert!(bank[0].0 < bank[1].0 && bank[1].0 < bank[2].0);
    assert!(svg.contains("peak 2 MiB"), "{svg}");
    // Deterministic; a report without counters says so and draws nothing.
    assert_eq!(svg, memory_svg(&r));
    let none = memory_svg(&Report::new("old", 0));
    assert!(none.contains("no counters") && polylines(&none).is_empty());
}

#[test]
fn memory_svg_of_a_run_has_a_line_per_bank_region_and_process_inside_the_plot() {
    let s = scenario::load_bundled("luma-chroma-banks")
        .unwrap()
        .with_frames(12)
        .unwrap();
    let r = run(&s, &RunOptions::default()).report;
    let c = r.counters.as_ref().unwrap();
    let svg = memory_svg(&r);
    let lines = polylines(&svg);
    let want = memory_series(c);
    assert_eq!(lines.len(), want.len());
    for kind in ["bank", "cma", "process"] {
        assert!(
            want.iter().any(|(k, _)| *k == kind),
            "no {kind} series in {want:?}"
        );
    }
    // Every process of the scenario has its line.
    for n in &s.nodes {
        let name = format!("process {} dma-buf rss", n.process_name());
        assert!(lines.iter().any(|l| l.1 == name), "no line {name}");
    }
    for (_, name, pts) in &lines {
        assert_eq!(pts.len(), c.frames.len(), "{name}");
        for &(x, y) in pts {
            assert!(
                (80.0..=740.0).contains(&x) && (40.0..=410.0).contains(&y),
                "{name}: {x},{y}"
            );
        }
    }
}

/// Two independent camera -> display pipelines at 30 and 60 fps on the default machine.
const TWO_SOURCES: &str = r#"name = "two-sources"
frames = 12

[[nodes]]
name = "front"
driver = "camera"
device = "camera0"
width = 320
height = 240
fps = 30

[[nodes]]
name = "back"
driver = "camera"
device = "camera0"
width = 640
height = 480
fps = 60

[[nodes]]
name = "front-screen"
driver = "display"
device = "display0"
width = 320
height = 240

[[nodes]]
name = "back-screen"
driver = "display"
device = "display0"
width = 640
height = 480

[[links]]
from = "front"
to = "front-screen"

[[links]]
from = "back"
to = "back-screen"
"#;

/// `data-source` of every per-source latency line of `svg`.
fn latency_sources(svg: &str) -> Vec<String> {
    svg.split("<polyline class=\"latency source\" data-source=\"")
        .skip(1)
        .map(|p| p.split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn latency_is_reported_and_drawn_per_source_when_there_are_several() {
    let s = scenario::validate(TWO_SOURCES, "two.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let l = &r.latency_us;
    let names: Vec<&str> = l.per_source.iter().map(|p| p.source.as_str()).collect();
    assert_eq!(names, ["front", "back"]);
    // Each source's frames are its own: together they are the run's.
    let per: usize = l.per_source.iter().map(|p| p.per_frame.len()).sum();
    assert_eq!(per, l.per_frame.len());
    assert_eq!(l.per_source[0].per_frame.len(), 12);
    let max = l.per_source.iter().map(|p| p.max).fold(0.0, f64::max);
    assert_eq!(max, l.max);
    // The larger frames of the back camera take longer.
    assert!(l.per_source[1].p50 > l.per_source[0].p50, "{l:?}");
    let svg = scenario::report::latency_svg(&r);
    assert_eq!(latency_sources(&svg), ["front", "back"]);
    assert!(!svg.contains("<polyline class=\"latency\" "));
    // One source: no per_source, one line for the run.
    let one = scenario::validate(super::BASE, "one.toml").unwrap();
    let r = run(&one, &RunOptions::default()).report;
    assert!(r.latency_us.per_source.is_empty());
    let svg = scenario::report::latency_svg(&r);
    assert!(latency_sources(&svg).is_empty());
    assert_eq!(svg.matches("<polyline class=\"latency\" ").count(), 1);
}

/// The red job bars (`rect class="job"` filled `#e15759`) of `svg`, as `(x, y)`.
fn red_bars(svg: &str) -> Vec<(f64, f64)> {
    svg.lines()
        .filter(|l| l.starts_with("<rect class=\"job\"") && l.contains("fill=\"#e15759\""))
        .map(|l| {
            let num = |k: &str| -> f64 {
                let at = l.find(&format!(" {k}=\"")).unwrap() + k.len() + 3;
                l[at..].split('"').next().unwrap().parse().unwrap()
            };
            (num("x"), num("y"))
        })
        .collect()
}

#[test]
fn the_timeline_migrations_lane_has_a_bar_per_migration() {
    use scenario::clock::VirtualTime;
    use scenario::report::{timeline_svg, JobCategory, TimelineOptions, Trace};
    let us = VirtualTime::from_us;
    let mut t = Trace::new("mig");
    let isp = t.track("isp0");
    t.job(
        isp,
        "isp 0",
        us(0),
        us(100),
        None,
        0,
        Some(0),
        JobCategory::Dma,
    );
    t.migration_copy(
        "isp-out[0]",
        us(200),
        "dram1",
        "cma0",
        4096,
        us(50),
        Some(us(30)),
    );
    t.migration("isp-out[1]", us(400), "dram1", "cma0", 4096, us(80));
    t.job(
        isp,
        "isp 1",
        us(600),
        us(700),
        None,
        1,
        Some(1),
        JobCategory::Dma,
    );
    let svg = timeline_svg(&t, &TimelineOptions::default());
    // The migrations lane is the second track: both bars on it, the first as long as its copy.
    let lane_y = |i: usize| {
        let key = format!("data-track=\"{}\"", t.tracks()[i]);
        let l = svg.lines().find(|l| l.contains(&key)).unwrap();
        let at = l.find(" y=\"").unwrap() + 4;
        l[at..].split('"').next().unwrap().parse::<f64>().unwrap()
    };
    assert_eq!(t.tracks()[1], "migrations");
    let bars = red_bars(&svg);
    assert_eq!(bars.len(), 2, "{svg}");
    for (_, y) in &bars {
        assert!(*y > lane_y(1) && *y < lane_y(1) + 30.0, "{bars:?}");
    }
    assert!(bars[0].0 < bars[1].0);
}
