//! The trace (Chrome trace format for Perfetto) and the SVG pictures.

use scenario::clock::VirtualTime;
use scenario::report::*;

/// Two frames through camera -> isp, a migration with its copy, fences and an attach.
fn sample_trace() -> Trace {
    let us = VirtualTime::from_us;
    let mut t = Trace::new("demo <&>");
    let cam = t.track("camera0");
    let isp = t.track("isp0");
    let enc = t.track("encoder0");
    for f in 0..2u64 {
        let base = f * 16_667;
        let buf = format!("cam->isp[{f}]");
        t.job(
            cam,
            &format!("capture {f}"),
            us(base),
            us(base + 3_000),
            Some(&buf),
            3_110_400,
            Some(f),
            JobCategory::Dma,
        );
        t.fence_signal(cam, &format!("capture {f} done"), us(base + 3_000));
        t.job(
            isp,
            &format!("process {f}"),
            us(base + 3_000),
            us(base + 5_000),
            Some(&buf),
            3_110_400,
            Some(f),
            JobCategory::Dma,
        );
    }
    t.attach(enc, "cam->isp[0]", us(20_000));
    t.migration(
        "cam->isp[0]",
        us(20_000),
        "dram1",
        "cma0",
        3_110_400,
        us(2_500),
    );
    t.job(
        isp,
        "copy cam->isp[0]",
        us(20_000),
        us(22_500),
        Some("cam->isp[0]"),
        3_110_400,
        None,
        JobCategory::Migration,
    );
    t.job(
        enc,
        "encode 0",
        us(22_500),
        us(24_000),
        Some("cam->isp[0]"),
        3_110_400,
        Some(0),
        JobCategory::Dma,
    );
    t
}

#[test]
fn trace_json_parses_and_has_every_event_kind() {
    let json = sample_trace().to_chrome_json();
    let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let events = v["traceEvents"].as_array().unwrap();
    let has = |ph: &str, cat: Option<&str>| {
        events
            .iter()
            .any(|e| e["ph"] == ph && cat.is_none_or(|c| e["cat"] == c))
    };
    assert!(has("M", None), "metadata");
    assert!(has("X", Some("dma")), "DMA job slices");
    assert!(has("X", Some("migration")), "migration slices");
    assert!(
        has("s", Some("buffer")) && has("f", Some("buffer")),
        "flow arrows per buffer"
    );
    assert!(has("i", Some("fence")), "fence signal instants");
    assert!(has("i", Some("migration")), "migration instants");
    assert!(has("i", Some("attach")), "attach instants");
    let threads: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        threads,
        ["camera0", "isp0", "encoder0", MIGRATION_TRACK],
        "a track per engine"
    );
    // Every flow start has its finish, and the finish binds to the enclosing slice.
    let starts = events.iter().filter(|e| e["ph"] == "s").count();
    let finishes: Vec<_> = events.iter().filter(|e| e["ph"] == "f").collect();
    assert_eq!(starts, finishes.len());
    assert!(finishes.iter().all(|e| e["bp"] == "e"));
    // Virtual microseconds.
    let slice = events.iter().find(|e| e["name"] == "process 1").unwrap();
    assert_eq!(slice["ts"].as_f64().unwrap(), 19_667.0);
    assert_eq!(slice["dur"].as_f64().unwrap(), 2_000.0);
}

#[test]
fn trace_json_is_deterministic_and_sorted_by_time() {
    let a = sample_trace().to_chrome_json();
    assert_eq!(a, sample_trace().to_chrome_json());
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    let ts: Vec<f64> = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| e["ts"].as_f64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
}

/// Every `<` opens or closes a tag whose name is balanced: a small well-formedness check.
fn assert_well_formed(svg: &str) {
    assert!(svg.starts_with("<svg"), "starts with <svg");
    assert!(svg.trim_end().ends_with("</svg>"));
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        let end = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "balanced tags");
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap().to_string());
        }
        let text = &rest[end + 1..];
        let next = text.find('<').unwrap_or(text.len());
        assert!(!text[..next].contains('>'), "text is escaped");
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
}

#[test]
fn timeline_svg_has_a_lane_per_track_and_shows_the_migration() {
    let svg = timeline_svg(&sample_trace(), &TimelineOptions::default());
    assert_well_formed(&svg);
    assert_eq!(svg.matches("class=\"lane\"").count(), 4);
    for lane in ["camera0", "isp0", "encoder0", MIGRATION_TRACK] {
        assert!(svg.contains(&format!("data-track=\"{lane}\"")));
    }
    assert!(svg.contains("class=\"migration\""));
    assert!(svg.contains("class=\"attach\""));
    assert!(svg.contains("#e15759"), "the copy is red");
    assert!(svg.contains("demo &lt;&amp;&gt;"), "escaped title");
    assert!(svg.contains(" ms</text>"), "a time axis");
    assert_eq!(
        svg,
        timeline_svg(&sample_trace(), &TimelineOptions::default())
    );
}

#[test]
fn timeline_svg_merges_bars_of_long_runs() {
    let mut t = Trace::new("long");
    let cam = t.track("camera0");
    for f in 0..100_000u64 {
        let s = VirtualTime::from_us(f * 100);
        t.job(
            cam,
            "capture",
            s,
            s + VirtualTime::from_us(60),
            None,
            0,
            Some(f),
            JobCategory::Dma,
        );
    }
    let svg = timeline_svg(&t, &TimelineOptions::default());
    assert_well_formed(&svg);
    assert!(
        svg.matches("class=\"job\"").count() < 2_000,
        "bars are merged below a pixel"
    );
    let window = TimelineOptions {
        start: VirtualTime::ZERO,
        end: Some(VirtualTime::from_us(1_000)),
        ..Default::default()
    };
    let zoom = timeline_svg(&t, &window);
    assert_well_formed(&zoom);
    assert_eq!(
        zoom.matches("class=\"job\"").count(),
        11,
        "a zoomed window shows every job in it"
    );
}

#[test]
fn timeline_of_an_empty_trace_is_still_an_svg() {
    assert_well_formed(&timeline_svg(
        &Trace::new("empty"),
        &TimelineOptions::default(),
    ));
    assert_well_formed(&latency_svg(&Report::new("empty", 0)));
}

#[test]
fn latency_svg_plots_every_frame_and_marks_migrations() {
    let r = super::report::sample();
    let svg = latency_svg(&r);
    assert_well_formed(&svg);
    let points = svg
        .split("points=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(points.split_whitespace().count(), 600);
    assert_eq!(svg.matches("class=\"migration\"").count(), 2);
    assert!(svg.contains(">p50 ") && svg.contains(">p99 "));
    assert_eq!(svg, latency_svg(&r));
}
