//! The buffer a KMS display replaces is released at the vblank that latches the next flip
//! (real KMS scans the old framebuffer out until then), not at the commit and not at the end
//! of the next scanout (`run::kms`), on a camera's V4L2 link and on a swapchain.

use scenario::run::{run, RunOptions};
use scenario::validate;
use serde_json::Value;

/// A scanout slice: `(start, end, buffer)`.
type Scanout = (f64, f64, String);
/// A release instant: `(ts, buffer)`.
type Release = (f64, String);

/// The display track's scanout slices and release instants of a Chrome trace, for the track
/// named by its first `display` slice.
fn display_events(json: &str) -> (Vec<Scanout>, Vec<Release>) {
    let v: Value = serde_json::from_str(json).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let first = events
        .iter()
        .find(|e| {
            e["ph"] == "X"
                && e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("display frame") || n.starts_with("screen"))
        })
        .expect("a scanout slice");
    let on_track = |e: &&Value| e["pid"] == first["pid"] && e["tid"] == first["tid"];
    let jobs = events
        .iter()
        .filter(on_track)
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            let ts = e["ts"].as_f64().unwrap();
            let dur = e["dur"].as_f64().unwrap();
            let buf = e["args"]["buffer"].as_str().unwrap_or("").to_string();
            (ts, ts + dur, buf)
        })
        .collect();
    let releases = events
        .iter()
        .filter(on_track)
        .filter(|e| e["ph"] == "i")
        .filter_map(|e| {
            let name = e["name"].as_str()?.strip_prefix("release ")?;
            Some((e["ts"].as_f64().unwrap(), name.to_string()))
        })
        .collect();
    (jobs, releases)
}

/// What is wrong with the releases, in words (empty: each replaced buffer is released exactly
/// at the start of the scanout that replaced it, the vblank that latched its flip).
fn release_faults(jobs: &[(f64, f64, String)], releases: &[(f64, String)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut expected = Vec::new();
    for w in jobs.windows(2) {
        if w[0].2 != w[1].2 {
            expected.push((w[1].0, w[0].2.clone()));
        }
    }
    for (ts, buf) in &expected {
        if releases.iter().any(|(t, b)| b == buf && t == ts) {
            continue;
        }
        out.push(format!("{buf} replaced at {ts} us but not released then"));
    }
    for (ts, buf) in releases {
        if !expected.iter().any(|(t, b)| t == ts && b == buf) {
            out.push(format!(
                "{buf} released at {ts} us, not at a vblank that replaced it"
            ));
        }
    }
    if expected.is_empty() {
        out.push("no frame replaced another".into());
    }
    out
}

fn trace_of(text: &str) -> String {
    let s = validate(text, "t.toml").unwrap();
    run(&s, &RunOptions::default()).trace.to_chrome_json()
}

#[test]
fn the_replaced_buffer_is_released_at_the_vblank_that_latches_the_next_flip() {
    let cam = super::BASE
        .replace("frames = 10", "frames = 12")
        .replace("to = \"screen\"", "to = \"screen\"\nbuffers = 3");
    let wayland = scenario::bundled_text("swapchain-wayland")
        .unwrap()
        .replace("frames = 120", "frames = 16");
    for (name, text) in [("camera", cam), ("swapchain-wayland", wayland.to_string())] {
        let (jobs, releases) = display_events(&trace_of(&text));
        assert!(jobs.len() >= 8, "{name}: {jobs:?}");
        let f = release_faults(&jobs, &releases);
        assert!(f.is_empty(), "{name}: {f:#?}");
        // The check fires on a release at the end of the next scanout (late) and at the
        // commit, before the vblank (early).
        let late: Vec<(f64, String)> = releases
            .iter()
            .map(|(t, b)| {
                let end = jobs.iter().find(|j| j.0 == *t).map_or(*t, |j| j.1);
                (end, b.clone())
            })
            .collect();
        assert!(!release_faults(&jobs, &late).is_empty(), "{name}: late");
        let early: Vec<(f64, String)> =
            releases.iter().map(|(t, b)| (t - 1.0, b.clone())).collect();
        assert!(!release_faults(&jobs, &early).is_empty(), "{name}: early");
    }
}
