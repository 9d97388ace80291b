//! The thumbnailer's job on the virtual clock: it holds the buffer it reads until its job ends
//! (its completion event), its JPEG encode is costed, and on an explicit-sync link its fence
//! wait counts from when its one thread comes to the frame.

use scenario::run::{run, RunOptions};
use scenario::ExitCode;
use serde_json::Value;

/// Camera (640x480 NV12, 60 fps) -> {encoder (the sink), thumbnailer of frame 0} on `buffers`
/// buffers, on a machine whose `cpu` reads at `cpu_bps` bytes per second.
fn camera_and_thumbnailer(frames: u64, buffers: u32, cpu_bps: u64, extra_link: &str) -> String {
    camera_thumbnailing(frames, buffers, cpu_bps, 2_000_000_000, 0, extra_link)
}

/// [`camera_and_thumbnailer`] with the camera's bandwidth and the thumbnailer's frame given.
fn camera_thumbnailing(
    frames: u64,
    buffers: u32,
    cpu_bps: u64,
    camera_bps: u64,
    thumb_frame: u64,
    extra_link: &str,
) -> String {
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
bandwidth_bps = {camera_bps}
latency_ns = 0

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
params = {{ frame = {thumb_frame}, scale = 8 }}

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
    let fast_camera = fast
        .report
        .nodes
        .iter()
        .find(|n| n.name == "camera")
        .unwrap();
    assert_eq!(fast.report.exit_code(), ExitCode::Verified);
    assert_eq!(camera.dropped.get("queue_full"), Some(&2), "{camera:?}");
    assert_eq!(
        fast_camera.dropped.get("queue_full"),
        None,
        "{fast_camera:?}"
    );
}

/// Explicit sync: the thumbnailer's fence wait is what its `DMA_BUF_IOCTL_SYNC` blocks for on
/// the frame it reads, from that frame's arrival (with the camera's job, 10 ms before its
/// fence signals) to the signal: exactly the camera's job for frame 2. The frames it lets go
/// it closes the sync_file of unwaited. Counting a wait for every frame offered (the runner
/// before) made it 6 x 10 ms, and one sync_file wait per frame instead of one.
#[test]
fn an_explicit_sync_thumbnailer_waits_only_for_the_fence_of_the_frame_it_reads() {
    // 460,800 bytes at 46.08 MB/s: each camera job (and its fence) lasts 10 ms.
    let text = camera_thumbnailing(6, 4, 8_000_000_000, 46_080_000, 2, "sync = \"explicit\"");
    let s = scenario::validate(&text, "thumb.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let json = r.to_json();
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
    let all = slices(&out.trace.to_chrome_json());
    let (_, c0, c1, _) = all
        .iter()
        .find(|s| s.0 == "camera frame 2")
        .cloned()
        .expect("the camera's job of frame 2");
    assert!((c1 - c0 - 10_000.0).abs() < 1e-3, "{c0}..{c1}");
    let (_, t0, _, _) = all
        .iter()
        .find(|s| s.0 == "thumbnail frame 2")
        .cloned()
        .expect("the thumbnailer's job");
    assert!(
        (t0 - c1).abs() < 1e-3,
        "the read starts at the signal: {t0} vs {c1}"
    );
    let wait = |node: &str| {
        r.nodes
            .iter()
            .find(|n| n.name == node)
            .unwrap()
            .fence_wait_us
    };
    assert!(
        (wait("thumbnailer") - (c1 - c0)).abs() < 1e-3,
        "the thumbnailer blocked on frame 2's fence only: {} us",
        wait("thumbnailer")
    );
    // The wait is a fence-wait slice on the thumbnailer's process, over exactly that time.
    let (_, w0, w1, _) = all
        .iter()
        .find(|s| s.0 == "thumbnailer waits for fences")
        .cloned()
        .expect("the thumbnailer's fence-wait slice");
    assert!(
        (w0 - c0).abs() < 1e-3 && (w1 - c1).abs() < 1e-3,
        "{w0}..{w1}"
    );
    // The encoder (a device job per frame) waited on each of the 6 fences.
    assert!(
        (wait("encoder") - 6.0 * 10_000.0).abs() < 1.0,
        "{}",
        wait("encoder")
    );
    // One sync_file per frame; the encoder waited on 6, the thumbnailer imported 1.
    assert_eq!(r.fences.sync_files, 6, "{:?}", r.fences);
    assert_eq!(r.fences.sync_file_waits, 7, "{:?}", r.fences);
}
