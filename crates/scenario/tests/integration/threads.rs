//! Ordering guarantee 4 of the runner: report.json, trace.json and the pictures are
//! byte-identical for any number of host threads (`--threads N`).
//!
//! Every bundled scenario runs with 1, 2 and 8 host threads; the 1-thread run keeps its trace
//! in memory, the others stream it to disk as the run goes (`RunOptions::trace_dir`), so the
//! test also shows the streamed `trace.json` and timeline are the in-memory ones byte for
//! byte, with no event recorded out of order and no part file left. To keep the test in CI time the
//! scenarios' events move to a tenth of their frame (or time), and each run stops a few frames
//! after its last event: every event, migration and teardown path still runs.

use scenario::run::{run, RunOptions};
use scenario::schema::At;

/// The bundled scenario `name` with its events at a tenth of their moment and just enough
/// frames to pass them.
fn shortened(name: &str) -> scenario::Scenario {
    let text = scenario::bundled_text(name).expect("a bundled scenario");
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        let key = ["at_frame", "at_us"]
            .into_iter()
            .find(|k| t.starts_with(k) && t[k.len()..].trim_start().starts_with('='));
        match key {
            Some(k) => {
                let v: u64 = t[k.len()..]
                    .trim_start()
                    .trim_start_matches('=')
                    .trim()
                    .replace('_', "")
                    .parse()
                    .expect("a number");
                let min = if k == "at_frame" { 2 } else { 1 };
                out.push_str(&format!("{k} = {}\n", (v / 10).max(min)));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let s = scenario::validate(&out, name).expect("the shortened scenario validates");
    let period = scenario::clock::VirtualTime::frame_period(60).as_ns();
    let last = s
        .events
        .iter()
        .map(|e| match e.at {
            At::Frame(f) => f,
            At::Time(t) => t.as_ns() / period + 1,
        })
        .max()
        .unwrap_or(0);
    let frames = (last + 4).clamp(6, s.frames);
    s.with_frames(frames).expect("a frame count")
}

/// Every file a run writes, by name (the trace streamed to disk with more than one thread).
fn outputs(s: &scenario::Scenario, threads: usize) -> Vec<(String, Vec<u8>)> {
    let dir = std::env::temp_dir().join(format!(
        "dmabuf-threads-{}-{}-{threads}",
        std::process::id(),
        s.name
    ));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let streamed = threads > 1;
    let out = run(
        s,
        &RunOptions {
            threads,
            trace_dir: streamed.then(|| dir.clone()),
            ..RunOptions::default()
        },
    );
    assert_eq!(out.trace.is_streamed(), streamed);
    assert_eq!(
        out.trace.late_events(),
        0,
        "{}: events recorded out of order",
        s.name
    );
    let paths = out.write(&dir).expect("the outputs are written");
    assert!(
        !dir.join(scenario::run::TRACE_PART).exists(),
        "{}: the streamed trace's part file is removed",
        s.name
    );
    let mut files: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (
                name.unwrap_or_default(),
                std::fs::read(p).expect("readable"),
            )
        })
        .collect();
    files.sort();
    let _ = std::fs::remove_dir_all(&dir);
    files
}

#[test]
fn every_bundled_scenario_writes_the_same_bytes_with_1_2_and_8_host_threads() {
    let mut checked = Vec::new();
    for &(name, _, _) in scenario::bundled() {
        let s = shortened(name);
        let reference = outputs(&s, 1);
        assert!(
            reference.iter().any(|(n, _)| n == "report.json")
                && reference.iter().any(|(n, _)| n == "trace.json"),
            "{name}: the run writes report.json and trace.json"
        );
        for threads in [2, 8] {
            let got = outputs(&s, threads);
            let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
            assert_eq!(
                names(&got),
                names(&reference),
                "{name}, {threads} threads: files"
            );
            for ((file, a), (_, b)) in reference.iter().zip(&got) {
                assert!(
                    a == b,
                    "{name}: {file} differs between 1 and {threads} host threads"
                );
            }
        }
        checked.push(name);
    }
    assert_eq!(checked.len(), scenario::bundled().len());
}

/// Several devices busy at once: the camera captures, the ISP processes, the display scans
/// out and the encoder encodes, each job on its own buffers, so their jobs run on the pool at
/// the same time (`run::inflight`); 1, 2 and 4 host threads write the same bytes.
const CONCURRENT: &str = r#"name = "concurrent"
frames = 40

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 1280
height = 720
params = { pattern = "noise" }

[[nodes]]
name = "isp"
driver = "isp"
device = "isp0"
width = 1280
height = 720
params = { transform = "invert" }

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
width = 1280
height = 720

[[nodes]]
name = "enc"
driver = "encoder"
device = "encoder0"
width = 1280
height = 720

[[links]]
from = "cam"
to = "isp"
buffers = 3

[[links]]
from = "isp"
to = ["screen", "enc"]
buffers = 4
"#;

#[test]
fn devices_busy_at_once_write_the_same_bytes_with_1_2_and_4_host_threads() {
    let s = scenario::validate(CONCURRENT, "concurrent.toml").expect("valid");
    let reference = outputs(&s, 1);
    let report = &reference
        .iter()
        .find(|(n, _)| n == "report.json")
        .expect("report.json")
        .1;
    let json: serde_json::Value = serde_json::from_slice(report).expect("json");
    assert_eq!(json["frames"]["corrupted"], 0);
    assert!(
        json["frames"]["delivered"].as_u64().unwrap_or(0) > 30,
        "{}",
        json["frames"]
    );
    for threads in [2, 4] {
        let got = outputs(&s, threads);
        assert_eq!(got.len(), reference.len());
        for ((file, a), (_, b)) in reference.iter().zip(&got) {
            assert!(
                a == b,
                "{file} differs between 1 and {threads} host threads"
            );
        }
    }
}
