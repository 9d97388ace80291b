//! What a migration's copy cost, measured on the virtual clock: a copy on a busy ISP's lane
//! delays the ISP's next job by exactly the time the report gives (checked against the same
//! run without the migration), and the frame that delay made miss its vblank is named; a copy
//! on the camera's lane names the frames the camera dropped for it; a copy that fits in its
//! lane's idle time costs 0 and names nothing.

use scenario::report::{MigrationReport, Report, TraceKind};
use scenario::run::{run, RunOptions, RunOutput};

/// camera -> isp -> (screen + a late encoder), as in `modifiers.rs`: the ISP and the display
/// share Vivante tiles, the encoder (linear only) joins at frame 4 and the 4 ISP output
/// buffers are re-laid out, each copy on the ISP's own lane (`migrate_with = "isp0"`).
const TILED: &str = include_str!("migration_cost_tiled.toml");

/// The same at 1280x720 (3.5 MiB a buffer) with a 1 GB/s ISP: its job takes 7.37 ms, and so
/// does each buffer's copy.
fn big() -> String {
    TILED
        .replace("width = 96", "width = 1280")
        .replace("height = 40", "height = 720")
        .replace(
            "name = \"isp0\"\n",
            "name = \"isp0\"\nbandwidth_bps = 1_000_000_000\n",
        )
}

fn run_text(text: &str) -> RunOutput {
    run(
        &scenario::validate(text, "t.toml").unwrap(),
        &RunOptions::default(),
    )
}

fn verified(r: &Report) {
    assert_eq!(
        r.exit_code(),
        scenario::ExitCode::Verified,
        "{}",
        scenario::report::text_summary(r)
    );
}

/// When `node`'s job on `frame` started, from the trace.
fn job_start(out: &RunOutput, label: &str) -> f64 {
    out.trace
        .events()
        .iter()
        .find(|e| e.name == label && matches!(e.kind, TraceKind::Job { .. }))
        .unwrap_or_else(|| panic!("no job `{label}`"))
        .at
        .as_us_f64()
}

fn first(r: &Report) -> &MigrationReport {
    r.migrations
        .iter()
        .find(|m| m.buffer == "isp-out[0]")
        .unwrap()
}

#[test]
fn a_copy_on_the_busy_isp_names_the_job_it_delayed_and_the_frame_that_missed_its_vblank() {
    let out = run_text(&big());
    let r = &out.report;
    verified(r);
    assert_eq!(r.migrations.len(), 4, "{:?}", r.migrations);
    // The ISP job of frame 4 queued behind the four copies: each copy alone cost it its own
    // length (7372.8 us: 3686400 bytes read and written at 1 GB/s).
    for m in &r.migrations {
        assert_eq!(m.engine, "isp0");
        assert_eq!(m.delayed.len(), 1, "{m:?}");
        let d = &m.delayed[0];
        assert_eq!((d.node.as_str(), d.frame), ("isp", Some(4)));
        assert_eq!(d.delay_us, 7372.8, "{d:?}");
        assert!((d.started_us - d.would_start_us - d.delay_us).abs() < 1e-6);
        assert_eq!(m.cost_us, Some(7372.8));
    }
    // It started when the trace says it did.
    let m = first(r);
    assert_eq!(m.delayed[0].started_us, job_start(&out, "isp frame 4"));

    // Without the migration (the encoder attaches at the last frame instead), frame 4 is on
    // screen at the vblank of 83.3 ms; with it, at 116.7 ms: the report names that frame.
    let without = run_text(&big().replace("at_frame = 4\n", "at_frame = 9\n"));
    verified(&without.report);
    assert!((job_start(&without, "screen frame 4") - 83333.333).abs() < 0.01);
    assert!((job_start(&out, "screen frame 4") - 116666.667).abs() < 0.01);
    let f = m
        .frames_cost
        .iter()
        .find(|f| f.frame == 4)
        .unwrap_or_else(|| panic!("frame 4 not named: {:?}", m.frames_cost));
    assert_eq!(
        (f.source.as_str(), f.node.as_str(), f.what.as_str()),
        ("cam", "screen", "missed_vblank")
    );
    assert!(
        f.why.contains("vblank at 83333.3 us") && f.why.contains("shown at 116666.7 us"),
        "{}",
        f.why
    );
    let cost = m.cost.as_deref().unwrap();
    assert!(
        cost.contains("delayed isp frame 4 of cam by 7372.8 us")
            && cost.contains("frame 4 of cam missed its vblank on screen"),
        "{cost}"
    );
    // Nothing before the migration is named.
    assert!(m.frames_cost.iter().all(|f| f.frame >= 4));
}

#[test]
fn a_copy_on_the_cameras_lane_names_the_frames_the_camera_dropped_for_it() {
    // The camera copies (the surprise of the default rule, chosen here), at 0.5 GB/s: its
    // capture of frame 4 waits 59 ms for the copies and the next three ticks find it busy.
    let text = big()
        .replace("migrate_with = \"isp0\"", "migrate_with = \"camera0\"")
        .replace(
            "name = \"camera0\"\n",
            "name = \"camera0\"\nbandwidth_bps = 500_000_000\n",
        );
    let r = run_text(&text).report;
    let cam = r.nodes.iter().find(|n| n.name == "cam").unwrap();
    assert_eq!(cam.dropped.get("queue_full"), Some(&3), "{:?}", cam.dropped);
    let m = first(&r);
    assert_eq!(m.delayed[0].node, "cam");
    let dropped: Vec<u64> = m
        .frames_cost
        .iter()
        .filter(|f| f.what == "dropped")
        .map(|f| f.frame)
        .collect();
    assert_eq!(dropped, [5, 6, 7], "{:?}", m.frames_cost);
    let f = m.frames_cost.iter().find(|f| f.frame == 5).unwrap();
    assert_eq!(f.cause.as_deref(), Some("queue_full"));
    assert!(f.why.contains("previous capture (frame 4)"), "{}", f.why);
}

#[test]
fn a_copy_that_fits_in_its_lanes_idle_time_costs_nothing_and_names_nothing() {
    // The display's lane: a 3.8 us scanout at each vblank; the four 7.7 us copies run after
    // the one of frame 3 and end long before the next.
    let text = TILED.replace("migrate_with = \"isp0\"", "migrate_with = \"display0\"");
    let r = run_text(&text).report;
    verified(&r);
    assert_eq!(r.migrations.len(), 4);
    for m in &r.migrations {
        assert_eq!(m.engine, "display0");
        assert_eq!(m.cost_us, Some(0.0), "{m:?}");
        assert!(m.cost.is_none() && m.delayed.is_empty() && m.frames_cost.is_empty());
    }
    // The same copies on the ISP's lane do delay its job of frame 4 (by 7.68 us each).
    let r = run_text(TILED).report;
    assert!(r.migrations.iter().all(|m| m.cost_us == Some(7.68)));
}
