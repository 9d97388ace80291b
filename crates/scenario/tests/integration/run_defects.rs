//! The runner's known defects, each shown fixed: a failed pressure allocation is an error,
//! frames are accounted for (a failed job's mappings: `run::tests`).

use crate::{with_soc, BASE};
use scenario::run::{run, RunOptions};

fn run_text(text: &str) -> scenario::report::Report {
    let s = scenario::validate(text, "<test>").expect("valid scenario");
    run(&s, &RunOptions::default()).report
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
