//! Any number of cameras, composites of N inputs at different rates: a composite folds the
//! frames it consumed into one output, counted `merged`, never an unexplained drop.

use scenario::run::{run, RunOptions};
use scenario::ExitCode;

/// Two cameras (30 and 60 fps) through one capture device into a GPU composite, shown on a
/// 60 Hz display, `frames` frames per camera.
fn two_cameras(frames: u64) -> String {
    format!(
        r#"name = "two-cameras"
frames = {frames}

[[nodes]]
name = "front"
driver = "camera"
device = "camera0"
width = 320
height = 240
fps = 30

[[nodes]]
name = "rear"
driver = "camera"
device = "camera0"
width = 320
height = 240
fps = 60

[[nodes]]
name = "gpu"
driver = "gpu"
device = "gpu0"
format = "XRGB8888"
width = 320
height = 240

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
format = "XRGB8888"
width = 320
height = 240

[[links]]
from = "front"
to = "gpu"
buffers = 4

[[links]]
from = "rear"
to = "gpu"
buffers = 4

[[links]]
from = "gpu"
to = "screen"
buffers = 3
exporter = "gpu"
"#
    )
}

#[test]
fn two_cameras_at_30_and_60_fps_composited_verify_with_every_frame_delivered_or_merged() {
    let s = scenario::validate(&two_cameras(60), "two.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let json = r.to_json();
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
    assert_eq!(r.frames.corrupted, 0, "{json}");
    // Each camera captured all its frames (a source produces `frames` frames at its rate).
    let node = |name: &str| r.nodes.iter().find(|n| n.name == name).unwrap();
    let (front, rear, gpu) = (node("front"), node("rear"), node("gpu"));
    assert_eq!((front.produced, rear.produced), (60, 60), "{json}");
    // Every input frame is delivered (through the primary input) or merged at the composite.
    assert_eq!(r.frames.dropped, 0, "{json}");
    assert_eq!(
        r.frames.produced,
        r.frames.delivered + r.frames.merged,
        "{json}"
    );
    let merged = gpu.dropped.get("merged").copied().unwrap_or(0);
    assert_eq!(merged, r.frames.merged, "{json}");
    // The composite is paced by its primary (`front`, the first link): every `front` frame is
    // delivered, every `rear` frame folded in (the newest read, the older one released unread).
    assert_eq!((r.frames.delivered, merged), (60, 60), "{json}");
    assert_eq!(node("screen").delivered, 60, "{json}");
    for n in [front, rear] {
        assert!(n.dropped.is_empty(), "{}: {:?}", n.name, n.dropped);
    }
}

#[test]
fn a_composite_input_short_of_buffers_drops_at_its_source_under_a_cause() {
    // The 60 fps input with one buffer: it waits in the composite's queue for the next 30 Hz
    // composite, so every other tick finds no free buffer: a drop at the source, `queue_full`.
    let text = two_cameras(60).replacen(
        "from = \"rear\"\nto = \"gpu\"\nbuffers = 4",
        "from = \"rear\"\nto = \"gpu\"\nbuffers = 1",
        1,
    );
    let s = scenario::validate(&text, "two.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let rear = r.nodes.iter().find(|n| n.name == "rear").unwrap();
    let full = rear.dropped.get("queue_full").copied().unwrap_or(0);
    assert!(full >= 20, "{}", r.to_json());
    assert_eq!(
        r.frames.produced,
        r.frames.delivered + r.frames.merged + r.frames.dropped + r.frames.corrupted,
        "{}",
        r.to_json()
    );
}

#[test]
fn a_display_with_two_planes_folds_through_kms() {
    // No GPU: both cameras straight into the display, a KMS CRTC with a plane per link (no
    // vb2 queue): each commit flips the planes with a new frame; the older frames it folds
    // go back unread.
    let text = two_cameras(30)
        .replace(
            "[[nodes]]\nname = \"gpu\"\ndriver = \"gpu\"\ndevice = \"gpu0\"\nformat = \"XRGB8888\"\nwidth = 320\nheight = 240\n\n",
            "",
        )
        .replace("format = \"XRGB8888\"\n", "")
        .replace("to = \"gpu\"", "to = \"screen\"")
        .replace(
            "[[links]]\nfrom = \"gpu\"\nto = \"screen\"\nbuffers = 3\nexporter = \"gpu\"\n",
            "",
        );
    let s = scenario::validate(&text, "planes.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let json = r.to_json();
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
    let screen = r.nodes.iter().find(|n| n.name == "screen").unwrap();
    assert_eq!(r.frames.produced, 60, "{json}");
    assert_eq!(r.frames.dropped, 0, "{json}");
    assert_eq!((r.frames.delivered, r.frames.merged), (30, 30), "{json}");
    assert_eq!(screen.dropped.get("merged"), Some(&30), "{json}");
    assert!(r.vb2_queues.iter().all(|q| q.node != "screen"), "{json}");
    let d = &r.displays[0];
    assert_eq!((d.node.as_str(), d.flips), ("screen", 30), "{json}");
    assert_eq!((d.verified, d.corrupted), (d.shown, 0), "{json}");
}

#[test]
fn a_camera_writing_into_gpu_exported_buffers_uses_the_gpus_driver() {
    // `exporter = "gpu"` on camera -> gpu: the GPU at the reading end exports the objects the
    // camera writes; no GPU driver is started on the camera's device.
    let text = two_cameras(12).replacen(
        "from = \"front\"\nto = \"gpu\"\nbuffers = 4",
        "from = \"front\"\nto = \"gpu\"\nbuffers = 4\nexporter = \"gpu\"",
        1,
    );
    assert!(text.contains("buffers = 4\nexporter = \"gpu\""));
    let s = scenario::validate(&text, "two.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    assert_eq!(r.exit_code(), ExitCode::Verified, "{}", r.to_json());
    let gpus: Vec<&str> = r.gpus.iter().map(|g| g.device.as_str()).collect();
    assert_eq!(gpus, ["gpu0"], "{}", r.to_json());
}
