//! The DMA-API checker keeps at most `dma::debug::MAX_KEPT_FINDINGS` findings; which ones it
//! keeps must not depend on the host threads' interleaving (ordering guarantee 4 of the
//! runner), even where it is hardest: one job raising more findings than the cap from its
//! pieces, which run on every host thread of the pool at once.
//!
//! The display scans an 8K NV12 frame (48.6 MiB) out through a mapping of 4 KiB segments
//! (its `max_segment_size`) made for the wrong direction (`wrong_direction`, no IOMMU to stop
//! the reads): every segment a piece reads is an `access-against-direction`, 12,150 for the
//! frame, more than the checker keeps. Before the checker committed a job's findings in piece
//! order (`dma::debug::FindingOrigin`), the first 10,000 to arrive were kept: a different set
//! on every run with more than one thread, and report.json differed (trace.json did not).

use scenario::run::{run, RunOptions};

const SCENARIO: &str = r#"name = "findings-cap"
frames = 4

[soc]

[[soc.banks]]
name = "dram0"
kind = "system"
base = "0x0"
size = "1GiB"

[[soc.cma]]
name = "cma0"
bank = "dram0"
size = "512MiB"

[[soc.devices]]
name = "camera0"
dma_mask_bits = 32
needs_contiguous = true
max_segment_size = "16MiB"

[[soc.devices]]
name = "display0"
dma_mask_bits = 32
max_segment_size = "4KiB"

[[nodes]]
name = "camera"
driver = "camera"
device = "camera0"
width = 7680
height = 4320
fps = 30

[[nodes]]
name = "display"
driver = "display"
device = "display0"
width = 7680
height = 4320
fps = 30

[[links]]
from = "camera"
to = "display"
buffers = 3

[[events]]
at_frame = 1
action = "fault"
node = "display"
fault = "wrong_direction"
"#;

/// report.json and trace.json of a run with `threads` host threads.
fn outputs(s: &scenario::Scenario, threads: usize, rep: usize) -> (Vec<u8>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!(
        "dmabuf-findings-cap-{}-{threads}-{rep}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let out = run(
        s,
        &RunOptions {
            threads,
            ..RunOptions::default()
        },
    );
    out.write(&dir).expect("the outputs are written");
    let read = |f: &str| std::fs::read(dir.join(f)).expect("written");
    let files = (read("report.json"), read("trace.json"));
    let _ = std::fs::remove_dir_all(&dir);
    files
}

#[test]
fn findings_kept_under_the_checkers_cap_are_the_same_for_any_number_of_host_threads() {
    let s = scenario::validate(SCENARIO, "findings-cap.toml").expect("valid");
    let (report, trace) = outputs(&s, 1, 0);
    let r: serde_json::Value = serde_json::from_slice(&report).expect("json");
    let kept = r["checker"]["findings"].as_array().expect("findings");
    // The cap is reached: more were raised than kept (12,150 reads against the direction).
    assert_eq!(kept.len(), dma::debug::MAX_KEPT_FINDINGS);
    let against = kept
        .iter()
        .filter(|f| f["kind"] == "access-against-direction")
        .count();
    assert!(against >= dma::debug::MAX_KEPT_FINDINGS - 1, "{against}");
    for threads in [2, 8] {
        for rep in 0..3 {
            let (rep_report, rep_trace) = outputs(&s, threads, rep);
            assert!(
                rep_report == report,
                "report.json differs between 1 and {threads} host threads (run {rep})"
            );
            assert!(
                rep_trace == trace,
                "trace.json differs between 1 and {threads} host threads (run {rep})"
            );
        }
    }
}
