//! The whole conformance suite against the running kernel.

use linux::RealLinux;
use seam::conformance::{run_all, Outcome};

/// Runs every case; the ones this machine cannot run are skipped with their reason printed.
/// Where `/dev/dma_heap/system` and `/dev/udmabuf` exist, this is the full real-kernel run.
#[test]
fn conformance_suite_on_this_kernel() {
    let _serial = crate::serial();
    let (heap, udmabuf) = linux::devices_present();
    if !heap || !udmabuf {
        println!(
            "note: system heap present: {heap}, /dev/udmabuf present: {udmabuf}; the cases \
             needing what is missing are SKIPPED below (run scripts/kernel-conformance for a \
             kernel that has both)"
        );
    }
    let mut p = RealLinux::new();
    let report = run_all(&mut p);
    println!("{report}");
    let ran = report
        .results
        .iter()
        .filter(|r| matches!(r.result, Ok(Outcome::Passed)))
        .count();
    assert!(ran > 0, "no case ran at all: even memfd cases were skipped");
    assert_eq!(report.failed(), 0, "cases failed on this kernel:\n{report}");
}
