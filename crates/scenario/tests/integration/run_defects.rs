//! The runner's known defects, each shown fixed: a failed job gives its mappings back, a failed
//! pressure allocation is an error, frames are accounted for.

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
