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

/// The bundled `rk3588-relayout` at 640x480 (same layout rules: 640 and 480 are multiples of
/// AFBC's 16x16 superblocks).
fn relayout(policy: &str) -> scenario::report::Report {
    let text = scenario::bundled_text("rk3588-relayout")
        .expect("bundled")
        .replace("width = 1920", "width = 640")
        .replace("height = 1080", "height = 480")
        .replace("policy = \"deferred\"", &format!("policy = \"{policy}\""));
    let s = scenario::validate(&text, "rk3588-relayout.toml")
        .unwrap()
        .with_frames(160)
        .unwrap();
    run(&s, &RunOptions::default()).report
}

#[test]
fn rk3588_relayout_negotiates_afbc_then_re_lays_out_to_linear_when_rkvenc_joins() {
    let r = relayout("deferred");
    let json = r.to_json();
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
    assert_eq!(r.frames.delivered, r.frames.produced, "{json}");
    // Placed for the Mali and VOP2 in AFBC: the first placement's reason says so.
    let why = serde_json::to_string(&r.buffers).unwrap();
    assert!(why.contains("arm_afbc_16x16_sparse"), "{why}");
    // rkvenc lacks AFBC: each of the three buffers re-laid out to linear at frame 150, by the
    // CPU, and the linear layout is smaller (no AFBC header area).
    let relaid: Vec<_> = r
        .migrations
        .iter()
        .filter(|m| {
            m.cause
                .contains("re-laid out: modifier arm_afbc_16x16_sparse -> linear")
        })
        .collect();
    assert_eq!(relaid.len(), 3, "{json}");
    assert!(
        relaid.iter().all(|m| m.frame == 150 && m.engine == "cpu"),
        "{json}"
    );
    assert!(
        relaid.iter().all(|m| m.cause.contains("rkvenc0 lacks it")),
        "{json}"
    );
    assert!(
        relaid.iter().all(|m| m.bytes == 640 * 480 * 4),
        "every visible byte copied once: {json}"
    );
    let enc = r.nodes.iter().find(|n| n.name == "encoder").unwrap();
    assert!(enc.delivered > 0, "{json}");
}

#[test]
fn rk3588_relayout_under_no_migrate_refuses_the_late_encoder_with_the_reason() {
    let r = relayout("no_migrate");
    let json = r.to_json();
    assert!(r.migrations.is_empty(), "{json}");
    let e = r.errors.first().expect("the attach is refused");
    assert_eq!(e.errno, "EBUSY", "{json}");
    assert!(e.message.contains("arm_afbc_16x16_sparse"), "{json}");
}
