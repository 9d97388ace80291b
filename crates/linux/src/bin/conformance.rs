//! The conformance suite against the running kernel: every case of
//! [`seam::conformance`] on a [`linux::RealLinux`], one line per case as it finishes,
//! then the closing line `N passed, N failed, N skipped`.
//!
//! `scripts/kernel-conformance` builds this binary statically, boots it as part of an initramfs
//! under qemu, and reads its output from the serial console; run by hand it checks the machine
//! it runs on. Exit status: 0 when no case failed, 1 otherwise.
//!
//! The first line names the kernel (`uname -r`, `uname -v`) and what it offers, so a log says
//! which kernel the results describe.
#![deny(unsafe_code)]

use linux::RealLinux;
use seam::conformance::{cases, CaseResult, Outcome, Report};
use std::io::Write;
use std::time::Instant;

fn main() {
    let uname = rustix::system::uname();
    let (heap, udmabuf) = linux::devices_present();
    let mut p = RealLinux::new();
    let sw_sync = p.has_sw_sync();
    println!(
        "conformance: Linux {} {} | system heap: {heap} | /dev/udmabuf: {udmabuf} | sw_sync: {sw_sync}",
        uname.release().to_string_lossy(),
        uname.version().to_string_lossy(),
    );
    let start = Instant::now();
    let mut report = Report::default();
    for case in cases::<RealLinux>() {
        let t = Instant::now();
        let result = (case.run)(&mut p);
        let ms = t.elapsed().as_millis();
        match &result {
            Ok(Outcome::Passed) => println!("ok    {} ({ms} ms)", case.name),
            Ok(Outcome::Skipped(why)) => println!("SKIP  {} ({why})", case.name),
            Err(e) => println!("FAIL  {} [covers {}]: {e}", case.name, case.covers),
        }
        let _ = std::io::stdout().flush();
        report.results.push(CaseResult {
            name: case.name,
            result,
        });
    }
    println!(
        "{} passed, {} failed, {} skipped ({} ms)",
        report.passed(),
        report.failed(),
        report.skipped(),
        start.elapsed().as_millis()
    );
    std::process::exit(if report.failed() == 0 { 0 } else { 1 });
}
