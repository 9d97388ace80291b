//! The conformance suites against the running kernel: every case of every suite of
//! [`seam::conformance::suites`] on a [`linux::RealLinux`], one line per case as it finishes,
//! then one closing line per suite (`suite NAME: N passed, N failed, N skipped`) and the total
//! (`N passed, N failed, N skipped`).
//!
//! `scripts/kernel-conformance` builds this binary statically, boots it as part of an initramfs
//! under qemu, and reads its output from the serial console; run by hand it checks the machine
//! it runs on. Exit status: 0 when no case failed, 1 otherwise.
//!
//! The first line names the kernel (`uname -r`, `uname -v`) and what it offers, so a log says
//! which kernel the results describe.
#![deny(unsafe_code)]

use clock::Clock;
use linux::clock::Monotonic;
use linux::RealLinux;
use seam::conformance::{prime, suites, v4l2, CaseResult, Outcome, Report};
use std::io::Write;

/// Runs one case, prints its line as it finishes, returns its result.
fn run_case(
    name: &'static str,
    covers: &str,
    run: impl FnOnce() -> Result<Outcome, seam::conformance::Failure>,
) -> CaseResult {
    let t = Monotonic.now_ns();
    let result = run();
    let ms = Monotonic.now_ns().saturating_sub(t) / 1_000_000;
    match &result {
        Ok(Outcome::Passed) => println!("ok    {name} ({ms} ms)"),
        Ok(Outcome::Skipped(why)) => println!("SKIP  {name} ({why})"),
        Err(e) => println!("FAIL  {name} [covers {covers}]: {e}"),
    }
    let _ = std::io::stdout().flush();
    CaseResult { name, result }
}

fn closing_line(suite: &str, r: &Report) -> String {
    format!(
        "suite {suite}: {} passed, {} failed, {} skipped",
        r.passed(),
        r.failed(),
        r.skipped()
    )
}

fn main() {
    linux::serve_children();
    let uname = rustix::system::uname();
    let (heap, udmabuf) = linux::devices_present();
    let mut p = RealLinux::new();
    let sw_sync = p.has_sw_sync();
    println!(
        "conformance: Linux {} {} | system heap: {heap} | /dev/udmabuf: {udmabuf} | sw_sync: {sw_sync} | vgem: {}",
        uname.release().to_string_lossy(),
        uname.version().to_string_lossy(),
        linux::vgem_present(),
    );
    let start = Monotonic.now_ns();
    let mut report = Report::default();
    let mut closing = Vec::new();
    for suite in suites::<RealLinux>() {
        let mut this = Report::default();
        for case in suite.cases {
            this.results
                .push(run_case(case.name, case.covers, || (case.run)(&mut p)));
        }
        closing.push(closing_line(suite.name, &this));
        report.results.extend(this.results);
    }
    let mut this = Report::default();
    let mut vgem = linux::Vgem;
    for case in prime::cases::<RealLinux, linux::Vgem>() {
        this.results.push(run_case(case.name, case.covers, || {
            (case.run)(&mut p, &mut vgem)
        }));
    }
    closing.push(closing_line("prime", &this));
    report.results.extend(this.results);
    let mut this = Report::default();
    let mut vivid = linux::Vivid;
    for case in v4l2::cases::<RealLinux, linux::Vivid>() {
        this.results.push(run_case(case.name, case.covers, || {
            (case.run)(&mut p, &mut vivid)
        }));
    }
    closing.push(closing_line("v4l2", &this));
    report.results.extend(this.results);
    for line in closing {
        println!("{line}");
    }
    println!(
        "{} passed, {} failed, {} skipped ({} ms)",
        report.passed(),
        report.failed(),
        report.skipped(),
        Monotonic.now_ns().saturating_sub(start) / 1_000_000
    );
    std::process::exit(if report.failed() == 0 { 0 } else { 1 });
}
