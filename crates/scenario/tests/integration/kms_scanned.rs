//! The display driver judges every scanout of a run (`Display::scanned`): its verified and
//! corrupted counters are the report's `displays[]`, and a torn frame is counted there.

use scenario::run::{run, RunOptions};
use scenario::validate;

/// Bundled scenario `name` without its `[[events]]` and `[expect]` sections.
fn without_events(text: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skip = matches!(line.trim(), "[[events]]" | "[expect]");
        }
        if !skip {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn report_of(text: &str) -> scenario::report::Report {
    let s = validate(text, "t.toml").unwrap();
    run(&s, &RunOptions::default()).report
}

#[test]
fn the_display_driver_counts_a_torn_frame_as_corrupted_and_none_without_the_fault() {
    // The ISP writes a buffer the display still scans out (`early_release`).
    let text = scenario::bundled_text("early-release").unwrap();
    let r = report_of(text);
    assert!(r.frames.corrupted > 0, "{:?}", r.frames);
    let d = &r.displays[0];
    assert!(d.corrupted >= 1, "{d:?}");
    assert!(d.corrupted <= r.frames.corrupted, "{d:?} {:?}", r.frames);
    assert!(d.verified + d.corrupted <= d.shown, "{d:?}");
    // Without the fault every frame shown is verified by the driver.
    let clean = report_of(&without_events(text));
    assert_eq!(clean.frames.corrupted, 0);
    let d = &clean.displays[0];
    assert!(d.shown >= 10, "{d:?}");
    assert_eq!((d.verified, d.corrupted), (d.shown, 0), "{d:?}");
}

#[test]
fn on_every_verified_bundled_scenario_the_display_driver_verifies_every_frame_it_showed() {
    for (name, _, _) in scenario::bundled() {
        let s = scenario::load_bundled(name).unwrap();
        let s = if s.frames > 24 {
            s.with_frames(24).unwrap()
        } else {
            s
        };
        let r = run(&s, &RunOptions::default()).report;
        if r.exit_code() != scenario::ExitCode::Verified {
            continue;
        }
        for d in &r.displays {
            assert_eq!((d.verified, d.corrupted), (d.shown, 0), "{name}: {d:?}");
        }
    }
}
