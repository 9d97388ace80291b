//! The thumbnailer's job on the virtual clock: it holds the buffer it reads until its job ends
//! (its completion event), its JPEG encode is costed, and on an explicit-sync link its fence
//! wait counts from when its one thread comes to the frame.

use scenario::run::{run, RunOptions};
use scenario::ExitCode;
use serde_json::Value;

/// Camera (640x480 NV12, 60 fps) -> {encoder (the sink), thumbnailer of frame 0} on `buffers`
/// buffers, on a machine whose `cpu` reads at `cpu_bps` bytes per second.
fn camera_and_thumbnailer(frames: u64, buffers: u32, cpu_bps: u64, extra_link: &str) -> String {
    format!(
        r#"name = "thumb"
seed = 1
frames = {frames}

[soc]

[[soc.banks]]
name = "dram0"
kind = "system"
base = 0
size = "1GiB"

[[soc.devices]]
name = "camera0"
bandwidth_bps = 2_000_000_000
latency_ns = 2_000

[[soc.devices]]
name = "encoder0"
bandwidth_bps = 3_000_000_000
latency_ns = 8_000

[[soc.devices]]
name = "cpu"
bandwidth_bps = {cpu_bps}

[[nodes]]
name = "camera"
driver = "camera"
device = "camera0"
width = 640
height = 480
fps = 60
params = {{ pattern = "bars" }}

[[nodes]]
name = "encoder"
driver = "encoder"
device = "encoder0"
width = 640
height = 480
params = {{ codec = "checksum" }}

[[nodes]]
name = "thumbnailer"
driver = "thumbnailer"
device = "encoder0"
params = {{ frame = 0, scale = 8 }}

[[links]]
from = "camera"
to = ["encoder", "thumbnailer"]
buffers = {buffers}
{extra_link}
"#
    )
}

/// `(name, start us, end us, buffer)` of every slice of the trace.
fn slices(json: &str) -> Vec<(String, f64, f64, String)> {
    let v: Value = serde_json::from_str(json).unwrap();
    v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            let ts = e["ts"].as_f64().unwrap();
            (
                e["name"].as_str().unwrap_or("").to_string(),
                ts,
                ts + e["dur"].as_f64().unwrap(),
                e["args"]["buffer"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A thumbnail read of 460,800 bytes at 10 MB/s takes 46 ms, nearly three frame periods: the
/// camera, which wants its one buffer back, writes it again only after the read ended (frames
/// 1 and 2 find no free buffer: `queue_full`). With the buffer given back when the read started
/// (the old early release), the camera's frame 1 wrote into it at 16.7 ms, mid-read, and no
/// frame was dropped.
#[test]
fn a_producer_gets_the_thumbnailers_buffer_back_only_when_its_read_ends() {
    let text = camera_and_thumbnailer(8, 1, 10_000_000, "");
    let s = scenario::validate(&text, "thumb.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let json = r.to_json();
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
    assert!(out.thumbnail.is_some(), "the thumbnail was made");
    let all = slices(&out.trace.to_chrome_json());
    let (_, t0, t1, buf) = all
        .iter()
        .find(|s| s.0 == "thumbnail frame 0")
        .cloned()
        .expect("the thumbnailer's job");
    // The read (460,800 bytes at 10 MB/s: 46.08 ms) and the encode (80x60 pixels at the
    // CPU's JPEG rate), one after the other.
    let encode_us = (80.0 * 60.0) * 1e6 / drivers::thumbnailer::CPU_JPEG_PIXELS_PER_S as f64;
    assert!(
        (t1 - t0 - (46_080.0 + encode_us)).abs() < 1.0,
        "the job's length is its read and its encode: {t0}..{t1}"
    );
    // Every camera job writing that buffer after the thumbnail's started after it ended.
    let next = all
        .iter()
        .filter(|s| s.0.starts_with("camera frame") && s.3 == buf && s.1 > t0)
        .map(|s| (s.0.clone(), s.1))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("the camera writes the buffer again");
    assert!(
        next.1 >= t1,
        "{} wrote {buf} at {} us while the thumbnailer read it until {t1} us",
        next.0,
        next.1
    );
    // The camera had no buffer meanwhile: frames 1 and 2 dropped `queue_full`, explained;
    // with a fast CPU (a 58 us read) none are.
    let camera = r.nodes.iter().find(|n| n.name == "camera").unwrap();
    let fast = run(
        &scenario::validate(
            &camera_and_thumbnailer(8, 1, 8_000_000_000, ""),
            "thumb.toml",
        )
        .unwrap(),
        &RunOptions::default(),
    );
    let fast_camera = fast.report.nodes.iter().find(|n| n.name == "camera").unwrap();
    assert_eq!(fast.report.exit_code(), ExitCode::Verified);
    assert_eq!(
        camera.dropped.get("queue_full"),
        Some(&2),
        "{camera:?}"
    );
    assert_eq!(
        fast_camera.dropped.get("queue_full"),
        None,
        "{fast_camera:?}"
    );
}
