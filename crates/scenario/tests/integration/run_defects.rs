//! The runner's known defects, each shown fixed: a failed pressure allocation is an error,
//! frames are accounted for, every drop has its cause (a failed job's mappings, a failed job's
//! frame and a drop with no cause: `run::tests`).

use crate::{with_soc, BASE};
use scenario::run::{run, RunOptions};

fn run_text(text: &str) -> scenario::report::Report {
    let s = scenario::validate(text, "<test>").expect("valid scenario");
    run(&s, &RunOptions::default()).report
}

/// A GPU writing two links: the first maps, the second (a carveout above its 30-bit mask, no
/// IOMMU) does not.
const TWO_OUTPUTS: &str = r#"name = "fail-job"
seed = 1
frames = 4

[soc]
[[soc.banks]]
name = "dram0"
kind = "system"
base = "0x0"
size = "2GiB"
[[soc.banks]]
name = "carveout0"
kind = "carveout"
base = "0x8000_0000"
size = "256MiB"
[[soc.cma]]
name = "cma0"
bank = "dram0"
base = "0x2000_0000"
size = "256MiB"
[[soc.devices]]
name = "camera0"
dma_mask_bits = 32
needs_contiguous = true
max_segment_size = "16MiB"
[[soc.devices]]
name = "gpu0"
dma_mask_bits = 30
max_segment_size = "64MiB"
[[soc.devices]]
name = "display0"
dma_mask_bits = 32
max_segment_size = "64MiB"
[[soc.devices]]
name = "display1"
dma_mask_bits = 32
max_segment_size = "64MiB"

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 64
height = 64
fps = 30
[[nodes]]
name = "gpu"
driver = "gpu"
device = "gpu0"
width = 64
height = 64
[[nodes]]
name = "display"
driver = "display"
device = "display0"
width = 64
height = 64
fps = 30
[[nodes]]
name = "display2"
driver = "display"
device = "display1"
width = 64
height = 64
fps = 30

[[links]]
from = "cam"
to = "gpu"
buffers = 2
[[links]]
from = "gpu"
to = "display"
buffers = 2
[[links]]
from = "gpu"
to = "display2"
buffers = 2
exporter = "heap:carveout"
region = "carveout0"
"#;

#[test]
fn a_job_that_fails_to_map_gives_back_the_mappings_it_made() {
    let r = run_text(TWO_OUTPUTS);
    assert!(
        r.errors.iter().any(|e| e.errno == "EIO"
            && e.message.contains("gpu->display2")
            && e.message.contains("above the DMA mask")),
        "{:?}",
        r.errors
    );
    let leaks: Vec<_> = r
        .checker
        .findings
        .iter()
        .filter(|f| f.kind == "map-leak")
        .collect();
    assert!(leaks.is_empty(), "{leaks:?}");
}

#[test]
fn a_pressure_allocation_that_fails_is_an_error() {
    // dram0 is 1 GiB and the camera's buffers live in it: 1 GiB more cannot be had.
    let t = with_soc(crate::SOC)
        + "\n[[events]]\nat_frame = 2\naction = \"memory_pressure\"\nbank = \"dram0\"\nbytes = \"1GiB\"\nfor_frames = 2\n";
    let r = run_text(&t);
    let e = r
        .errors
        .iter()
        .find(|e| e.message.contains("pressure on dram0"))
        .unwrap_or_else(|| panic!("no pressure error in {:?}", r.errors));
    assert_eq!(e.errno, "ENOMEM", "{e:?}");
    assert_eq!(r.exit_code(), scenario::ExitCode::Failed);
    // Half the bank is had: no error.
    let ok = with_soc(crate::SOC)
        + "\n[[events]]\nat_frame = 2\naction = \"memory_pressure\"\nbank = \"dram0\"\nbytes = \"64MiB\"\nfor_frames = 2\n";
    let r = run_text(&ok);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn frames_dropped_at_the_source_are_the_dropped_count() {
    // The screen joins at frame 4: the camera's first 4 frames have nobody to go to.
    let t = BASE.replace(
        "device = \"display0\"",
        "device = \"display0\"\nattached = false",
    ) + "\n[[events]]\nat_frame = 4\naction = \"attach\"\nnode = \"screen\"\n";
    let r = run_text(&t);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.frames.produced, 10);
    assert_eq!(r.frames.dropped, 4, "{:?}", r.frames);
    assert_eq!(r.frames.delivered, 6, "{:?}", r.frames);
}

/// Every frame that did not arrive is under a cause, at a node: the dropped count is their sum.
#[track_caller]
fn every_drop_has_a_cause(r: &scenario::report::Report) {
    let causes: u64 = r.nodes.iter().flat_map(|n| n.dropped.values()).sum();
    assert_eq!(r.frames.dropped + r.frames.merged, causes, "{:?}", r.nodes);
    assert!(
        r.nodes.iter().all(|n| n.unexplained.is_none()),
        "{:?}",
        r.nodes
    );
    assert_eq!(
        r.frames.produced,
        r.frames.delivered + r.frames.dropped + r.frames.corrupted + r.frames.merged
    );
}

const CAM_ISP_SCREEN: &str = r#"name = "t"
frames = 30

[[nodes]]
name = "cam"
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
name = "screen"
driver = "display"
device = "display0"
width = 320
height = 240
fps = 30

[[links]]
from = "cam"
to = "isp"
buffers = 3

[[links]]
from = "isp"
to = "screen"
buffers = 3
"#;

#[test]
fn frames_lost_after_capture_are_counted_where_and_why_they_were_lost() {
    // The screen stops its queue mid-run: frames on their way are lost there, as stream_off;
    // then it is detached for good: the frames in flight to it are lost as detached.
    let text = format!(
        "{CAM_ISP_SCREEN}
[[events]]
at_us = 200_100
action = \"stream_off\"
node = \"screen\"

[[events]]
at_us = 400_000
action = \"stream_on\"
node = \"screen\"

[[events]]
at_us = 700_100
action = \"detach\"
node = \"screen\"
"
    );
    let r = run_text(&text);
    every_drop_has_a_cause(&r);
    assert_eq!(
        r.exit_code(),
        scenario::ExitCode::Verified,
        "{:?}",
        r.errors
    );
    let dropped = |node: &str, cause: &str| {
        r.nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.dropped.get(cause).copied())
            .unwrap_or(0)
    };
    assert!(dropped("screen", "stream_off") >= 1, "{:?}", r.nodes);
    assert!(dropped("screen", "detached") >= 1, "{:?}", r.nodes);
    assert!(
        r.frames.dropped > 0 && r.frames.delivered > 0,
        "{:?}",
        r.frames
    );
}

#[test]
fn a_process_killed_loses_its_frames_as_killed() {
    // The screen's process dies while frames are on their way to it.
    let text = format!(
        "{CAM_ISP_SCREEN}
[[events]]
at_us = 500_100
action = \"kill\"
process = \"screen\"
"
    );
    let r = run_text(&text);
    every_drop_has_a_cause(&r);
    let screen = r.nodes.iter().find(|n| n.name == "screen").unwrap();
    assert!(screen.dropped.get("killed") >= Some(&1), "{:?}", r.nodes);
    assert!(r.frames.dropped > 0, "{:?}", r.frames);
    let s = scenario::load_bundled("process-killed")
        .unwrap()
        .with_frames(92)
        .unwrap();
    let r = run(&s, &RunOptions::default()).report;
    every_drop_has_a_cause(&r);
    assert_eq!(
        r.exit_code(),
        scenario::ExitCode::Verified,
        "{:?}",
        r.errors
    );
}

#[test]
fn a_job_reading_two_frames_into_one_counts_the_other_as_merged() {
    // Two cameras into one GPU composite: each job reads a frame of each and carries one on.
    let text = r#"name = "merge"
frames = 12

[[nodes]]
name = "front"
driver = "camera"
device = "camera0"
width = 320
height = 240
fps = 30

[[nodes]]
name = "back"
driver = "camera"
device = "camera0"
width = 320
height = 240
fps = 30

[[nodes]]
name = "gpu"
driver = "gpu"
device = "gpu0"
format = "XRGB8888"
width = 320
height = 240

[[nodes]]
name = "encoder"
driver = "encoder"
device = "encoder0"
format = "XRGB8888"
width = 320
height = 240

[[links]]
from = "front"
to = "gpu"
buffers = 3

[[links]]
from = "back"
to = "gpu"
buffers = 3

[[links]]
from = "gpu"
to = "encoder"
buffers = 3
"#;
    let r = run_text(text);
    every_drop_has_a_cause(&r);
    let gpu = r.nodes.iter().find(|n| n.name == "gpu").unwrap();
    assert_eq!(gpu.dropped.get("merged"), Some(&12), "{gpu:?}");
    assert_eq!(
        (r.frames.produced, r.frames.delivered, r.frames.merged),
        (24, 12, 12)
    );
    assert_eq!(
        r.exit_code(),
        scenario::ExitCode::Verified,
        "{:?}",
        r.errors
    );
}

#[test]
fn every_bundled_scenario_accounts_for_every_frame() {
    for &(name, _, _) in scenario::bundled() {
        let Ok(s) = scenario::load_bundled(name) else {
            continue;
        };
        let frames = s.frames.min(40);
        let Ok(s) = s.with_frames(frames) else {
            continue; // events past the cut: run-bundled-scenarios runs it whole
        };
        let r = run(&s, &RunOptions::default()).report;
        let causes: u64 = r.nodes.iter().flat_map(|n| n.dropped.values()).sum();
        assert_eq!(
            r.frames.dropped + r.frames.merged,
            causes,
            "{name}: {:?}",
            r.nodes
        );
        assert!(
            r.nodes.iter().all(|n| n.unexplained.is_none()),
            "{name}: {:?}",
            r.nodes
        );
    }
}
