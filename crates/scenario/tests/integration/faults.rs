//! Injected faults: each bundled fault scenario corrupts frames and the checker names the
//! cause; the same scenario without its fault events is VERIFIED (the check fails both ways);
//! bad fault events are rejected at their line and column.

use scenario::run::{run, RunOptions};
use scenario::ExitCode;

/// The bundled scenario `name`'s text, and the same text with every `[[events]]` table removed.
fn with_and_without(name: &str) -> (String, String) {
    let text = scenario::bundled_text(name).expect("bundled").to_string();
    let mut clean = String::new();
    let mut skip = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skip = line.trim() == "[[events]]";
        }
        if line.starts_with("corrupted = ") {
            continue;
        }
        if !skip {
            clean.push_str(line);
            clean.push('\n');
        }
    }
    // Without the fault the findings it provokes are no longer expected either.
    let clean = clean
        .lines()
        .filter(|l| {
            !l.starts_with("findings = ") && !l.starts_with("exit = ") && !l.starts_with("error = ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    (text, clean)
}

#[track_caller]
fn fires_and_is_quiet_without(name: &str, kinds: &[&str], fault: &str) {
    let (text, clean) = with_and_without(name);
    let s = scenario::validate(&text, "f.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    assert!(r.frames.corrupted > 0, "{name}: {:?}", r.frames);
    assert_eq!(r.corrupted_frames.len() as u64, r.frames.corrupted);
    for k in kinds {
        assert!(
            r.checker.findings.iter().any(|f| &f.kind == k),
            "{name}: no {k} in {:?}",
            r.checker
                .findings
                .iter()
                .map(|f| &f.kind)
                .collect::<Vec<_>>()
        );
    }
    assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
    assert_eq!(r.faults.len(), text.matches("action = \"fault\"").count());
    assert!(r
        .faults
        .iter()
        .all(|f| f.fault == fault && !f.frames.is_empty()));
    // The corrupted frame is one a fault touched.
    let touched: Vec<u64> = r.faults.iter().flat_map(|f| f.frames.clone()).collect();
    assert!(
        r.corrupted_frames
            .iter()
            .all(|c| touched.iter().any(|&t| t == c.frame || t == c.frame + 1)),
        "{name}: corrupted {:?}, touched {touched:?}",
        r.corrupted_frames
    );
    assert_eq!(r.exit_code(), ExitCode::Failed);
    // Same scenario, no fault: VERIFIED.
    let s = scenario::validate(&clean, "clean.toml").unwrap();
    assert!(s.events.is_empty());
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    assert_eq!(r.frames.corrupted, 0, "{name} without its fault");
    assert!(r.checker.findings.is_empty(), "{:?}", r.checker.findings);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.frames.delivered > 0);
    assert_eq!(
        r.exit_code(),
        ExitCode::Verified,
        "{name} without its fault"
    );
}

#[test]
fn missing_cache_sync_reads_stale_lines_and_is_verified_without_the_fault() {
    fires_and_is_quiet_without("missing-cache-sync", &["cpu-stale-read"], "skip_cache_sync");
}

#[test]
fn missing_fence_wait_tears_a_frame_and_is_verified_without_the_fault() {
    fires_and_is_quiet_without("missing-fence-wait", &["fence-conflict"], "skip_fence_wait");
}

#[test]
fn early_release_tears_a_frame_and_is_verified_without_the_fault() {
    fires_and_is_quiet_without("early-release", &["fence-conflict"], "early_release");
}

#[test]
fn wrong_direction_behind_an_iommu_faults_and_loses_the_frame() {
    let (text, _) = with_and_without("missing-fence-wait");
    let text = text.replace("fault = \"skip_fence_wait\"", "fault = \"wrong_direction\"");
    let s = scenario::validate(&text, "f.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    // The encoder's read faults: its job fails, and the frame is lost under that cause.
    let enc = r.nodes.iter().find(|n| n.name == "encoder").unwrap();
    assert_eq!(enc.dropped.get("job_failed"), Some(&1), "{enc:?}");
    assert_eq!(enc.failed_jobs.get("EFAULT"), Some(&1), "{enc:?}");
    assert!(
        r.checker.findings.iter().any(|f| f.kind == "iommu-fault"),
        "{:?}",
        r.checker.findings
    );
    assert_eq!(r.exit_code(), ExitCode::Failed);
}

#[test]
fn the_wrong_direction_scenario_shows_what_happens_and_is_verified_without_the_fault() {
    let (text, clean) = with_and_without("wrong-direction");
    let s = scenario::validate(&text, "wrong-direction.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    // What its [expect] states: exit 1 with EFAULT, the IOMMU fault, the overlapping mappings
    // and the display's reads against the direction of its only mapping, no wrong byte: the
    // ISP's frame is lost, counted under its cause.
    assert_eq!(s.expect.exit, Some(1));
    assert_eq!(r.exit_code(), ExitCode::Failed);
    assert_eq!(r.frames.corrupted, 0, "{:?}", r.frames);
    assert_eq!(r.frames.dropped, 1, "{:?}", r.frames);
    let isp = r.nodes.iter().find(|n| n.name == "isp").unwrap();
    assert_eq!(isp.dropped.get("job_failed"), Some(&1), "{isp:?}");
    assert_eq!(isp.failed_jobs.get("EFAULT"), Some(&1), "{isp:?}");
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].errno, "EFAULT");
    let kinds: std::collections::BTreeSet<&str> =
        r.checker.findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "access-against-direction",
            "iommu-fault",
            "overlapping-mapping"
        ]
        .into_iter()
        .collect(),
        "{:?}",
        r.checker.findings
    );
    assert!(r.checker.findings.iter().all(|f| f.expected));
    // The display (no IOMMU, KMS) read through its own wrong mapping: its framebuffer's right
    // one was replaced (`Display::remap_fb`).
    assert!(r
        .checker
        .findings
        .iter()
        .any(|f| f.kind == "access-against-direction"
            && f.device.as_deref() == Some("display0")
            && f.message.contains("DMA_FROM_DEVICE")));
    assert_eq!(
        r.faults
            .iter()
            .map(|f| (f.node.as_str(), f.frames.clone()))
            .collect::<Vec<_>>(),
        [("isp", vec![2]), ("display", vec![4])]
    );
    // Without the fault events: VERIFIED, every frame delivered.
    let s = scenario::validate(&clean, "clean.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    assert_eq!(
        r.exit_code(),
        ExitCode::Verified,
        "{:?} {:?}",
        r.errors,
        r.checker.findings
    );
    assert_eq!(r.frames.delivered, r.frames.produced);
}

#[test]
fn a_fault_scenario_whose_fault_corrupts_nothing_says_so() {
    let (text, _) = with_and_without("missing-fence-wait");
    // The encoder's fault armed at the last frame: nothing left to touch.
    let text = text.replace("at_frame = 10", "at_frame = 19");
    let s = scenario::validate(&text, "f.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    if r.frames.corrupted == 0 {
        assert!(
            r.errors.iter().any(|e| e
                .message
                .contains("corrupted = \"some\", but every frame verified")),
            "{:?}",
            r.errors
        );
        assert_eq!(r.exit_code(), ExitCode::Failed);
    }
}

#[track_caller]
fn rejected(event: &str, msg: &str) {
    let text = format!(
        "{}\n[[events]]\nat_frame = 1\naction = \"fault\"\n{event}\n",
        super::BASE
    );
    let e = scenario::validate(&text, "t.toml").expect_err("should not validate");
    assert_eq!(e.exit_code(), ExitCode::Invalid);
    let loc = e.location().expect("a location");
    assert!(loc.line > 1, "{}", e.render());
    assert!(e.to_string().contains(msg), "`{msg}` not in {e}");
}

#[test]
fn bad_fault_events_are_rejected_at_their_position() {
    rejected(
        "node = \"screen\"\nfault = \"bit_flip\"",
        "unknown variant `bit_flip`",
    );
    rejected(
        "node = \"nobody\"\nfault = \"early_release\"",
        "no node is named `nobody`",
    );
    rejected("node = \"screen\"", "without `fault`");
    rejected(
        "node = \"screen\"\nfault = \"skip_cache_sync\"",
        "where `skip_cache_sync` cannot apply",
    );
    rejected(
        "node = \"screen\"\nfault = \"skip_fence_wait\"",
        "where `skip_fence_wait` cannot apply",
    );
    rejected(
        "node = \"screen\"\nfault = \"early_release\"",
        "where `early_release` cannot apply",
    );
    rejected(
        "node = \"cam\"\nfault = \"early_release\"\nfor_frames = 0",
        "0 frames",
    );
    rejected(
        "node = \"cam\"\nfault = \"early_release\"\ncount = 2",
        "do not take `count`",
    );
}

#[test]
fn a_run_where_a_sink_received_nothing_is_not_verified() {
    let text = r#"name = "t"
frames = 10

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 320
height = 240

[[nodes]]
name = "isp"
driver = "isp"
device = "isp0"
width = 320
height = 240

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
width = 320
height = 240

[[links]]
from = "cam"
to = "isp"
buffers = 2

[[links]]
from = "isp"
to = "screen"
buffers = 2

# The ISP stops its input queue before the first frame and never starts it again.
[[events]]
at_frame = 0
action = "stream_off"
node = "isp"
"#;
    let s = scenario::validate(text, "t.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    assert_eq!(r.frames.corrupted, 0);
    assert_eq!(r.frames.delivered, 0);
    assert!(
        r.errors
            .iter()
            .any(|e| e.message.contains("sink `screen` received no frame")),
        "{:?}",
        r.errors
    );
    assert_eq!(r.exit_code(), ExitCode::Failed);
    let cam = r.nodes.iter().find(|n| n.name == "cam").unwrap();
    assert_eq!(cam.dropped.get("stream_off"), Some(&10), "{cam:?}");
    // Streaming, the same pipeline delivers and is verified; the nodes say what each did.
    let streaming = &text[..text.find("\n# The ISP stops").unwrap()];
    let s = scenario::validate(streaming, "t.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    assert_eq!(r.exit_code(), ExitCode::Verified, "{:?}", r.errors);
    let screen = r.nodes.iter().find(|n| n.name == "screen").unwrap();
    assert_eq!(screen.delivered, r.frames.delivered);
    assert_eq!(screen.consumed, screen.delivered);
    assert!(screen.latency_us.as_ref().is_some_and(|l| l.max >= l.p50));
    let cam = r.nodes.iter().find(|n| n.name == "cam").unwrap();
    assert_eq!(
        cam.produced + cam.dropped.values().sum::<u64>(),
        r.frames.produced
    );
}

/// A camera without an IOMMU (camera0: non-coherent, direct DMA) whose driver maps its
/// buffers DMA_TO_DEVICE writes against the direction of its only mapping of them
/// (`access-against-direction`), and the CPU's `DMA_BUF_IOCTL_SYNC` then does the cache
/// maintenance of the wrong direction: START(READ) invalidates nothing for a TO_DEVICE mapping,
/// END cleans without invalidating, so the lines the preview read stay cached and the
/// thumbnailer, bracketed as it should be, reads the preview's frame out of the cache instead
/// of the frame the camera wrote under it: wrong bytes (`cpu-stale-read`). Without the fault:
/// VERIFIED.
#[test]
fn wrong_direction_without_an_iommu_leaves_stale_lines_for_a_bracketed_cpu_read() {
    let base = r#"name = "wd"
seed = 5
frames = 14

[[nodes]]
name = "camera"
driver = "camera"
device = "camera0"
width = 320
height = 240
fps = 30

[[nodes]]
name = "display"
driver = "display"
device = "display0"
width = 320
height = 240
fps = 30

[[nodes]]
name = "preview"
driver = "thumbnailer"
device = "isp0"
process = "gallery"
params = { frame = 3, scale = 4 }

[[nodes]]
name = "thumbnailer"
driver = "thumbnailer"
device = "isp0"
process = "gallery"
params = { frame = 6, scale = 4 }

[[links]]
from = "camera"
to = ["display", "preview", "thumbnailer"]
buffers = 3
"#;
    let faulty = format!(
        "{base}\n[[events]]\nat_frame = 1\naction = \"fault\"\nnode = \"camera\"\nfault = \"wrong_direction\"\nfor_frames = 12\n"
    );
    let s = scenario::validate(&faulty, "wd.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    assert_eq!(r.exit_code(), ExitCode::Failed);
    let kinds: std::collections::BTreeSet<&str> =
        r.checker.findings.iter().map(|f| f.kind.as_str()).collect();
    assert!(
        kinds.contains("access-against-direction") && kinds.contains("cpu-stale-read"),
        "{:?}",
        r.checker.findings
    );
    assert!(r.frames.corrupted >= 1, "{:?}", r.frames);
    assert!(
        r.corrupted_frames.iter().any(|f| f.frame == 6),
        "{:?}",
        r.corrupted_frames
    );
    assert_eq!(
        r.frames.produced,
        r.frames.delivered + r.frames.dropped + r.frames.corrupted + r.frames.merged
    );
    // Without the fault: every frame and both thumbnails verify.
    let s = scenario::validate(base, "wd.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    assert_eq!(
        r.exit_code(),
        ExitCode::Verified,
        "{:?} {:?}",
        r.errors,
        r.checker.findings
    );
    assert_eq!(r.frames.corrupted, 0);
}

/// `skip_fence_wait` with a V4L2 producer: the camera's frame travels to the ISP at the
/// camera job's submission with its out-fence (`sync = "explicit"`); the ISP's driver starts
/// without waiting for it, so on the virtual clock the ISP's job overlaps the camera's and
/// reads what the camera had written of the frame by then: the frame is wrong at the ISP and
/// the DMA-API checker names the unsignalled write fence (`fence-conflict`). Without the fault
/// the ISP waits on the fence (its fence wait > 0) and the run is VERIFIED.
#[test]
fn skip_fence_wait_on_a_camera_frame_reads_what_the_camera_had_written_by_then() {
    let base = r#"name = "sfw"
seed = 8
frames = 10

[[nodes]]
name = "camera"
driver = "camera"
device = "camera0"
width = 320
height = 240
fps = 30

[[nodes]]
name = "isp"
driver = "isp"
device = "isp0"
width = 320
height = 240

[[nodes]]
name = "display"
driver = "display"
device = "display0"
width = 320
height = 240
fps = 30

[[links]]
from = "camera"
to = "isp"
buffers = 3
sync = "explicit"

[[links]]
from = "isp"
to = "display"
buffers = 3
"#;
    let faulty = format!(
        "{base}\n[[events]]\nat_frame = 4\naction = \"fault\"\nnode = \"isp\"\nfault = \"skip_fence_wait\"\n"
    );
    let s = scenario::validate(&faulty, "sfw.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    assert_eq!(r.exit_code(), ExitCode::Failed);
    assert!(
        r.checker
            .findings
            .iter()
            .any(|f| f.kind == "fence-conflict" && f.device.as_deref() == Some("isp0")),
        "{:?}",
        r.checker.findings
    );
    assert_eq!(r.faults.len(), 1);
    assert_eq!(r.faults[0].frames, vec![4], "{:?}", r.faults);
    assert_eq!(r.frames.corrupted, 1, "{:?}", r.frames);
    assert_eq!(
        r.corrupted_frames
            .iter()
            .map(|f| f.frame)
            .collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(
        r.frames.produced,
        r.frames.delivered + r.frames.dropped + r.frames.corrupted + r.frames.merged
    );
    // Without the fault: the ISP waits for each camera frame's fence, and every frame verifies.
    let s = scenario::validate(base, "sfw.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    assert_eq!(
        r.exit_code(),
        ExitCode::Verified,
        "{:?} {:?}",
        r.errors,
        r.checker.findings
    );
    let isp = r.nodes.iter().find(|n| n.name == "isp").unwrap();
    assert!(isp.fence_wait_us > 0.0, "{isp:?}");
}
