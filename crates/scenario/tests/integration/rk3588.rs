//! The RK3588 two-camera pipeline of issue 13 (bundled `rk3588-two-cameras`): two cameras ->
//! ISPs -> a UMA Mali composite -> VOP2 + rkvenc on the machine's DDR controller, RGA2 (no
//! IOMMU, 32-bit) attaching late. Run at 640x480 to keep the test quick; the picture is the
//! same at 1080p (`scripts/run-bundled-scenarios` runs the file as shipped).

use scenario::run::{run, RunOptions};
use scenario::ExitCode;

fn small() -> scenario::Scenario {
    let (_, _, text) = scenario::bundled()
        .iter()
        .find(|(n, _, _)| *n == "rk3588-two-cameras")
        .expect("bundled");
    let text = text
        .replace("width = 1920", "width = 640")
        .replace("height = 1080", "height = 480");
    scenario::validate(&text, "rk3588-two-cameras.toml")
        .unwrap()
        .with_frames(160)
        .unwrap()
}

#[test]
fn rk3588_two_cameras_verify_with_every_drop_explained_and_rga2_moving_the_isp_output() {
    let r = run(&small(), &RunOptions::default()).report;
    let json = r.to_json();
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
    assert_eq!(r.frames.corrupted, 0, "{json}");
    // Every frame either delivered, merged into a composite or dropped under a cause.
    assert!(r.nodes.iter().all(|n| n.unexplained.is_none()), "{json}");
    assert_eq!(
        r.frames.produced,
        r.frames.delivered + r.frames.merged + r.frames.dropped,
        "{json}"
    );
    let node = |name: &str| r.nodes.iter().find(|n| n.name == name).unwrap();
    // Both cameras captured; the rear one is folded into the composite.
    assert_eq!(
        (node("front").produced, node("rear").produced),
        (160, 160),
        "{json}"
    );
    assert!(
        node("mali").dropped.get("merged").copied().unwrap_or(0) > 0,
        "{json}"
    );
    // The composite is a GPU object in system memory (no VRAM on this machine).
    let comp = r.buffers.iter().find(|b| b.link == "composite").unwrap();
    let p = comp.placement.as_ref().unwrap();
    assert_eq!(p.exporter, "gpu", "{json}");
    assert!(!p.heap.contains("VRAM"), "{json}");
    // RGA2's late attach moved ISP0's output into the CMA area below 4 GiB, copied by the CPU.
    let moved: Vec<_> = r
        .migrations
        .iter()
        .filter(|m| m.buffer.starts_with("front-isp"))
        .collect();
    assert_eq!(moved.len(), 4, "{json}");
    assert!(moved.iter().all(|m| m.frame == 150), "{json}");
    assert!(moved.iter().all(|m| m.engine == "cpu"), "{json}");
    assert!(moved.iter().all(|m| m.to.contains("cma0")), "{json}");
    assert!(
        node("rga").delivered > 0 || node("screen2").delivered > 0,
        "{json}"
    );
    // All of it on the machine's one DDR controller.
    let c = r.counters.as_ref().expect("counters");
    let u = c
        .series
        .iter()
        .find(|s| s.name == "memory ddr utilisation")
        .expect("the controller's series");
    assert!(u.values.iter().any(|&v| v > 0.0), "{json}");
}
