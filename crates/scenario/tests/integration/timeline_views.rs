//! The timeline of a streamed trace (`RunOptions::trace_dir`, what `dmabuf run` does) is the
//! in-memory trace's byte for byte in every view [`TimelineOptions`] offers: the default
//! whole run, narrower and wider pictures, a window anywhere in the run (around a migration,
//! the stutter one zooms into), a window past the end and one open at its end.

use scenario::clock::VirtualTime;
use scenario::report::{timeline_svg, JobCategory, TimelineOptions, Trace, TraceKind};
use scenario::run::{run, RunOptions, RunOutput};

/// The bundled default cut to 12 frames, its encoder joining at frame 3 so that it migrates.
fn default_short() -> scenario::Scenario {
    let text = scenario::bundled_text("default")
        .unwrap()
        .replace("at_frame = 300", "at_frame = 3")
        .replace("frames = 600", "frames = 12")
        .replace("frame = 100", "frame = 2");
    scenario::validate(&text, "default").unwrap()
}

/// The scenario run with its trace in memory and streamed into `dir`.
fn both(s: &scenario::Scenario, dir: &std::path::Path) -> (RunOutput, RunOutput) {
    std::fs::create_dir_all(dir).unwrap();
    let memory = run(s, &RunOptions::default());
    let streamed = run(
        s,
        &RunOptions {
            trace_dir: Some(dir.to_path_buf()),
            ..RunOptions::default()
        },
    );
    assert!(!memory.trace.is_streamed() && streamed.trace.is_streamed());
    assert_eq!(streamed.trace.late_events(), 0);
    assert_eq!(memory.trace.end_time(), streamed.trace.end_time());
    (memory, streamed)
}

/// Every view the options offer, for a run ending at `end` with its first migration at `mig`.
fn views(end: VirtualTime, mig: VirtualTime) -> Vec<(&'static str, TimelineOptions)> {
    let ns = |f: f64| VirtualTime::from_ns((end.as_ns() as f64 * f) as u64);
    let d = TimelineOptions::default();
    vec![
        ("default", d),
        ("narrow", TimelineOptions { width: 600, ..d }),
        ("wide", TimelineOptions { width: 2400, ..d }),
        (
            "middle window",
            TimelineOptions {
                start: ns(0.3),
                end: Some(ns(0.55)),
                ..d
            },
        ),
        (
            "around the migration",
            TimelineOptions {
                start: mig.saturating_sub(VirtualTime::from_us(200)),
                end: Some(mig + VirtualTime::from_us(3_000)),
                width: 1600,
            },
        ),
        (
            "past the end",
            TimelineOptions {
                end: Some(end + end),
                ..d
            },
        ),
        (
            "second half",
            TimelineOptions {
                start: ns(0.5),
                ..d
            },
        ),
    ]
}

#[test]
fn a_streamed_timeline_is_the_in_memory_one_in_every_view() {
    let s = default_short();
    let dir = std::env::temp_dir().join(format!("dmabuf-views-{}", std::process::id()));
    let (memory, streamed) = both(&s, &dir);
    let mig = memory
        .trace
        .events()
        .iter()
        .find(|e| matches!(e.kind, TraceKind::Migration { .. }))
        .expect("the default migrates")
        .at;
    let mut differ = Vec::new();
    for (name, view) in views(memory.trace.end_time(), mig) {
        let (a, b) = (
            timeline_svg(&memory.trace, &view),
            timeline_svg(&streamed.trace, &view),
        );
        assert!(a.matches("class=\"job\"").count() > 0, "{name}: bars drawn");
        if a != b {
            differ.push(name);
        }
    }
    streamed.trace.remove_stream_file().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(differ.is_empty(), "views that differ: {differ:?}");
}

/// A long trace (100,000 jobs on two lanes, a migration with its copy, attaches) recorded
/// into `t` as a runner would (each event after its `advance`).
fn long_trace(t: &mut Trace) {
    let us = VirtualTime::from_us;
    let (cam, isp) = (t.track("camera0"), t.track("isp0"));
    for f in 0..100_000u64 {
        let s = us(f * 100);
        t.advance(s);
        if f == 50_000 {
            t.attach(isp, "isp-out[0]", s);
            t.migration_copy(
                "isp-out[0]",
                s,
                "dram0",
                "dram1",
                4096,
                us(900),
                Some(us(300)),
            );
            t.job(
                isp,
                "copy",
                s,
                s + us(300),
                Some("isp-out[0]"),
                4096,
                None,
                JobCategory::Migration,
            );
        }
        t.job(
            cam,
            "capture",
            s,
            s + us(60),
            Some("cam[0]"),
            64,
            Some(f),
            JobCategory::Dma,
        );
        if f % 3 == 0 {
            t.job(
                isp,
                "process",
                s + us(60),
                s + us(95),
                Some("cam[0]"),
                64,
                Some(f),
                JobCategory::Dma,
            );
        }
    }
}

#[test]
fn a_streamed_long_trace_draws_every_view_as_the_in_memory_one() {
    let mut memory = Trace::new("long");
    long_trace(&mut memory);
    let dir = std::env::temp_dir().join(format!("dmabuf-views-long-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut streamed = Trace::new("long");
    streamed.stream_to(&dir.join("part")).unwrap();
    long_trace(&mut streamed);
    streamed.finish_stream();
    assert_eq!(streamed.late_events(), 0);
    let mig = VirtualTime::from_us(5_000_000);
    let mut differ = Vec::new();
    for (name, view) in views(memory.end_time(), mig) {
        let a = timeline_svg(&memory, &view);
        if a != timeline_svg(&streamed, &view) {
            differ.push(name);
        }
    }
    // A 1 ms window shows each of its 11 captures, apart (the whole run's picture merges
    // them: they are 40 us apart, under a pixel of 10 s).
    let zoom = TimelineOptions {
        end: Some(VirtualTime::from_us(1_000)),
        ..TimelineOptions::default()
    };
    let svg = timeline_svg(&streamed, &zoom);
    assert_eq!(svg, timeline_svg(&memory, &zoom));
    streamed.remove_stream_file().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(differ.is_empty(), "views that differ: {differ:?}");
    let captures = svg.matches("#4e79a7").count();
    assert_eq!(captures, 11, "{svg}");
    // Once the file is gone, a finer view is drawn from the bars merged for the whole run
    // and says so; the default view still is the in-memory one.
    let (_, around) = views(memory.end_time(), mig)[4];
    let (after, exact) = (
        timeline_svg(&streamed, &around),
        timeline_svg(&memory, &around),
    );
    let note = "bars merged at the resolution of the whole run";
    assert!(after.contains(note) && !exact.contains(note));
    let bars = |svg: &str| svg.matches("class=\"job\"").count();
    assert!(
        bars(&after) < bars(&exact),
        "{} vs {}",
        bars(&after),
        bars(&exact)
    );
    let d = TimelineOptions::default();
    assert_eq!(timeline_svg(&streamed, &d), timeline_svg(&memory, &d));
}
