//! Shared memory bandwidth: devices' DMA to banks one memory controller serves contends on
//! the virtual clock, so extra traffic can make a display miss vblanks (`late`).

use super::after;
use scenario::run::{run, RunOptions};
use scenario::ExitCode;

/// A 1080p30 camera shown on a 60 Hz display, all on one DRAM bank behind a memory controller
/// of 259.2 MB/s: a capture or a scanout (3.1 MB of NV12) takes 12 ms alone, and they never
/// overlap (capture at 0, scanout at the 16.7 ms vblank, next capture at 33.3 ms), so every
/// scanout ends within its 16.7 ms refresh. `extra` adds a 4K camera streaming into an encoder
/// on the same bank: its 12.4 MB transfers take 48 ms or more, always in flight, so a scanout
/// gets half the controller or less: 24 ms, longer than a refresh.
fn contention(extra: bool) -> String {
    let mut t = String::from(
        r#"name = "contention"
frames = 40

[soc]

[[soc.banks]]
name = "dram0"
kind = "system"
base = 0
size = "1GiB"

[[soc.memory_controllers]]
name = "ddr"
banks = ["dram0"]
bandwidth_bps = 259_200_000

[[soc.iommus]]
name = "smmu0"

[[soc.devices]]
name = "camera0"
iommu = "smmu0"

[[soc.devices]]
name = "camera1"
iommu = "smmu0"

[[soc.devices]]
name = "display0"
iommu = "smmu0"

[[soc.devices]]
name = "encoder0"
iommu = "smmu0"

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
fps = 30

[[nodes]]
name = "screen"
driver = "display"
device = "display0"

[[links]]
from = "cam"
to = "screen"
buffers = 4
"#,
    );
    if extra {
        t.push_str(
            r#"
[[nodes]]
name = "cam2"
driver = "camera"
device = "camera1"
width = 3840
height = 2160
fps = 30

[[nodes]]
name = "enc"
driver = "encoder"
device = "encoder0"
width = 3840
height = 2160

[[links]]
from = "cam2"
to = "enc"
buffers = 4
"#,
        );
    }
    t
}

fn late(r: &scenario::report::Report) -> u64 {
    let screen = r.nodes.iter().find(|n| n.name == "screen").unwrap();
    screen.dropped.get("late").copied().unwrap_or(0)
}

fn utilisation(r: &scenario::report::Report) -> Vec<f64> {
    let c = r.counters.as_ref().expect("counters sampled");
    let s = c
        .series
        .iter()
        .find(|s| s.name == "memory ddr utilisation")
        .expect("the controller's utilisation series");
    assert_eq!(s.unit, "ratio");
    s.values.clone()
}

#[test]
fn contention_for_the_memory_controller_makes_the_display_miss_vblanks() {
    let quiet = run(
        &scenario::validate(&contention(false), "c.toml").unwrap(),
        &RunOptions::default(),
    );
    let busy = run(
        &scenario::validate(&contention(true), "c.toml").unwrap(),
        &RunOptions::default(),
    );
    let (q, b) = (&quiet.report, &busy.report);
    // Without the extra traffic every frame is shown.
    assert_eq!(q.exit_code(), ExitCode::Verified, "{}", q.to_json());
    assert_eq!(late(q), 0, "{}", q.to_json());
    assert_eq!(q.frames.dropped, 0, "{}", q.to_json());
    // With it, scanouts overrun the refresh period: missed vblanks, each a frame dropped late.
    let missed = late(b);
    assert!(missed > 0, "{}", b.to_json());
    assert!(b.frames.dropped >= missed, "{}", b.to_json());
    assert_eq!(b.frames.corrupted, 0, "{}", b.to_json());
    // The controller is busier, and the report shows it over time.
    let (uq, ub) = (utilisation(q), utilisation(b));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // Alone: a capture and a scanout of 3.1 MB every 33.3 ms, 72% of 259.2 MB/s.
    assert!(uq[1..].iter().all(|&u| (u - 0.72).abs() < 0.01), "{uq:?}");
    assert!(mean(&ub[1..]) > mean(&uq[1..]) + 0.1, "{uq:?} vs {ub:?}");
}

#[test]
fn without_a_memory_controller_the_same_traffic_misses_no_vblank() {
    let text = contention(true).replace(
        "[[soc.memory_controllers]]\nname = \"ddr\"\nbanks = [\"dram0\"]\nbandwidth_bps = 259_200_000\n",
        "",
    );
    let out = run(
        &scenario::validate(&text, "c.toml").unwrap(),
        &RunOptions::default(),
    );
    assert_eq!(late(&out.report), 0, "{}", out.report.to_json());
    assert_eq!(out.report.frames.dropped, 0, "{}", out.report.to_json());
}

#[test]
fn a_zero_bandwidth_or_an_unknown_bank_is_exit_2_at_the_value() {
    let t = contention(false).replace("bandwidth_bps = 259_200_000", "bandwidth_bps = 0");
    let e = scenario::validate(&t, "c.toml").unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::Invalid);
    let loc = e.location().unwrap();
    assert_eq!((loc.line, loc.column), after(&t, "bandwidth_bps = "), "{e}");
    assert!(e.to_string().contains("above zero"), "{e}");
    let t = contention(false).replace("banks = [\"dram0\"]", "banks = [\"dram9\"]");
    let e = scenario::validate(&t, "c.toml").unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::Invalid);
    assert!(
        e.to_string().contains("`dram9`") && e.to_string().contains("dram0"),
        "{e}"
    );
    let loc = e.location().unwrap();
    assert_eq!((loc.line, loc.column), after(&t, "banks = ["), "{e}");
}
