//! Each simulated process's open dma-buf fds as a counter track of its own Perfetto process
//! (`process NAME dma-buf fds (fds)`, module `run::fds`): stepping where fds open and close,
//! dropping to 0 at a kill, and at the end of the run for everyone.

use scenario::run::{run, RunOptions};
use serde_json::Value;

/// `(ts, value)` of counter `name` in `trace`, with the Perfetto process it lies on.
fn counter(trace: &Value, name: &str) -> (Vec<(f64, f64)>, String) {
    let events = trace["traceEvents"].as_array().unwrap();
    let samples: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == name)
        .collect();
    assert!(!samples.is_empty(), "no counter {name}");
    let pid = samples[0]["pid"].as_u64().unwrap();
    let process = events
        .iter()
        .find(|e| e["ph"] == "M" && e["name"] == "process_name" && e["pid"] == pid)
        .and_then(|e| e["args"]["name"].as_str())
        .unwrap_or("")
        .to_string();
    let v = samples
        .iter()
        .map(|e| {
            (
                e["ts"].as_f64().unwrap(),
                e["args"]["value"].as_f64().unwrap(),
            )
        })
        .collect();
    (v, process)
}

/// The value of a step counter at `ts` (its last sample at or before).
fn at(samples: &[(f64, f64)], ts: f64) -> f64 {
    samples
        .iter()
        .take_while(|s| s.0 <= ts)
        .last()
        .map_or(0.0, |s| s.1)
}

/// The bundled `process-killed` (the encoder's process `recorder` killed at frame 90), cut
/// to 30 frames with the kill at frame 12, or without the kill.
fn killed(kill: bool) -> (Value, scenario::report::Report) {
    let mut text = scenario::bundled_text("process-killed")
        .unwrap()
        .replace("frames = 180", "frames = 30")
        .replace("at_frame = 90", "at_frame = 12");
    if !kill {
        let cut = text.find("[[events]]").unwrap();
        text.truncate(cut);
    }
    let s = scenario::validate(&text, "process-killed").unwrap();
    let out = run(&s, &RunOptions::default());
    let json: Value = serde_json::from_str(&out.trace.to_chrome_json()).unwrap();
    (json, out.report)
}

/// The `ts` of the instant named `name`.
fn instant(trace: &Value, name: &str) -> Option<f64> {
    trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ph"] == "i" && e["name"] == name)
        .and_then(|e| e["ts"].as_f64())
}

#[test]
fn a_killed_process_fds_drop_to_zero_at_the_kill_on_its_own_track() {
    let (trace, report) = killed(true);
    let kill = instant(&trace, "kill recorder").expect("the kill is marked");
    let (fds, on) = counter(&trace, "process recorder dma-buf fds (fds)");
    assert_eq!(on, "process recorder");
    // The recorder holds one fd per buffer of isp -> [display, encoder] (4) until the kill,
    // then none, from the kill's own instant.
    let before = fds
        .iter()
        .rev()
        .find(|s| s.0 < kill)
        .expect("a sample before");
    assert_eq!(before.1, 4.0, "{fds:?}");
    assert!(
        fds.iter().any(|&(t, v)| t == kill && v == 0.0),
        "0 at the kill ({kill} us): {fds:?}"
    );
    assert!(fds.iter().filter(|s| s.0 >= kill).all(|s| s.1 == 0.0));
    // The camera service keeps its fds (both links' buffers) until the end of the run.
    let (cam, on) = counter(&trace, "process camera-service dma-buf fds (fds)");
    assert_eq!(on, "process camera-service");
    assert_eq!(at(&cam, kill), 8.0, "{cam:?}");
    let end = report.duration_us;
    assert_eq!(cam.last(), Some(&(end, 0.0)), "closed at the end: {cam:?}");
    assert!(cam.iter().filter(|s| s.0 < end).all(|s| s.1 == 8.0));
}

#[test]
fn without_the_kill_the_recorder_keeps_its_fds_until_the_end() {
    let (trace, report) = killed(false);
    assert_eq!(instant(&trace, "kill recorder"), None);
    let (fds, _) = counter(&trace, "process recorder dma-buf fds (fds)");
    let end = report.duration_us;
    // The check above, failing here: no drop before the run's end.
    assert!(
        fds.iter().filter(|s| s.0 < end).all(|s| s.1 == 4.0),
        "{fds:?}"
    );
    assert_eq!(fds.last(), Some(&(end, 0.0)));
}
