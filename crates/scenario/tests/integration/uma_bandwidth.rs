//! A UMA GPU's traffic on a memory controller: the objects it renders into live in system
//! memory (GTT pages), so its jobs and the scanout of what it rendered load the same
//! controller as the cameras; contention there makes the display miss vblanks.

use scenario::run::{run, RunOptions};
use scenario::ExitCode;

const CONTROLLER: &str =
    "[[soc.memory_controllers]]\nname = \"ddr\"\nbanks = [\"dram0\"]\nbandwidth_bps = 200_000_000\n";

/// Two 640x480 cameras (30 and 15 fps) composited by a GPU without VRAM into XRGB8888 frames a
/// 60 Hz display shows, all on one DRAM bank; with `controller`, behind a 200 MB/s memory
/// controller. `extra` adds a 1080p camera streaming into an encoder on the same bank.
fn uma(controller: bool, extra: bool) -> String {
    let mut t = String::from(
        r#"name = "uma-contention"
frames = 30

[soc]

[[soc.banks]]
name = "dram0"
kind = "system"
base = 0
size = "1GiB"

"#,
    );
    if controller {
        t.push_str(CONTROLLER);
    }
    t.push_str(
        r#"
[[soc.iommus]]
name = "smmu0"

[[soc.devices]]
name = "camera0"
iommu = "smmu0"

[[soc.devices]]
name = "camera1"
iommu = "smmu0"

[[soc.devices]]
name = "gpu0"
iommu = "smmu0"

[[soc.devices]]
name = "display0"
iommu = "smmu0"

[[soc.devices]]
name = "encoder0"
iommu = "smmu0"

[[nodes]]
name = "front"
driver = "camera"
device = "camera0"
width = 640
height = 480
fps = 30

[[nodes]]
name = "rear"
driver = "camera"
device = "camera0"
width = 640
height = 480
fps = 15

[[nodes]]
name = "gpu"
driver = "gpu"
device = "gpu0"
format = "XRGB8888"
width = 640
height = 480

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
format = "XRGB8888"
width = 640
height = 480

[[links]]
from = "front"
to = "gpu"
buffers = 4

[[links]]
from = "rear"
to = "gpu"
buffers = 4

[[links]]
name = "gpu-out"
from = "gpu"
to = "screen"
buffers = 3
exporter = "gpu"
"#,
    );
    if extra {
        t.push_str(
            r#"
[[nodes]]
name = "cam2"
driver = "camera"
device = "camera1"
width = 1920
height = 1080
fps = 30

[[nodes]]
name = "enc"
driver = "encoder"
device = "encoder0"
width = 1920
height = 1080

[[links]]
from = "cam2"
to = "enc"
buffers = 4
"#,
        );
    }
    t
}

fn go(text: &str) -> scenario::report::Report {
    run(
        &scenario::validate(text, "uma.toml").unwrap(),
        &RunOptions::default(),
    )
    .report
}

fn late(r: &scenario::report::Report) -> u64 {
    let screen = r.nodes.iter().find(|n| n.name == "screen").unwrap();
    screen.dropped.get("late").copied().unwrap_or(0)
}

fn mean_utilisation(r: &scenario::report::Report) -> f64 {
    let c = r.counters.as_ref().expect("counters sampled");
    let s = c
        .series
        .iter()
        .find(|s| s.name == "memory ddr utilisation")
        .expect("the controller's utilisation series");
    s.values[1..].iter().sum::<f64>() / (s.values.len() - 1) as f64
}

#[test]
fn a_uma_gpu_composite_and_a_camera_on_one_controller_miss_vblanks() {
    let r = go(&uma(true, true));
    let json = r.to_json();
    // The GPU's object is in system memory (no VRAM on this machine).
    let out = r.buffers.iter().find(|b| b.link == "gpu-out").unwrap();
    assert_eq!(out.placement.as_ref().unwrap().exporter, "gpu", "{json}");
    let missed = late(&r);
    assert!(missed > 0, "{json}");
    assert_eq!(r.frames.corrupted, 0, "{json}");
    // Every drop has a cause.
    assert!(r.nodes.iter().all(|n| n.unexplained.is_none()), "{json}");
}

#[test]
fn the_same_uma_traffic_without_the_controller_misses_no_vblank() {
    let r = go(&uma(false, true));
    let json = r.to_json();
    assert_eq!(late(&r), 0, "{json}");
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
}

#[test]
fn the_uma_composite_alone_on_the_controller_misses_no_vblank_and_loads_it() {
    // The GPU's rendering and the scanout of its GTT object are the controller's traffic too:
    // the composite alone loads it more than the two cameras' captures alone would.
    let r = go(&uma(true, false));
    let json = r.to_json();
    assert_eq!(late(&r), 0, "{json}");
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
    // Per 33.3 ms: front 0.46 MB + rear 0.23 MB (half the ticks) of NV12 captured, the GPU
    // reads both and writes 1.23 MB of XRGB8888, the display reads 1.23 MB: about 3.8 MB, or
    // 0.57 of 200 MB/s (measured 0.55; 0.20 before the GPU object's bytes were charged).
    let u = mean_utilisation(&r);
    assert!(u > 0.45, "{u} {json}");
}
