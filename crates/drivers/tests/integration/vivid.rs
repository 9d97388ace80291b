//! The `v4l2` conformance suite (`seam::conformance::v4l2`) on the simulator's vivid-like
//! device ([`drivers::vivid::VividDevice`]): every case passes (none skipped) on a freshly
//! booted machine, the vb2 counters balance, and the machine has the free memory it had before
//! once the process exits. The same suite runs on vivid under `scripts/kernel-conformance`.

use drivers::vivid::VividDevice;
use kernel::sim::{free_memory, SimProcess};
use seam::conformance::{v4l2, Outcome};

#[test]
fn v4l2_suite_on_the_simulated_vivid() {
    let mut failures = Vec::new();
    for case in v4l2::cases::<SimProcess, VividDevice>() {
        let mut p = SimProcess::boot().expect("boot the default SoC");
        let kernel = p.kernel().clone();
        let before = free_memory(&kernel);
        let mut dev = VividDevice::new(kernel.dma(), "isp0").expect("isp0 on the default SoC");
        let result = (case.run)(&mut p, &mut dev);
        p.exit();
        drop((p, dev));
        match result {
            Ok(Outcome::Passed) => println!("ok {}", case.name),
            Ok(Outcome::Skipped(why)) => failures.push(format!("{}: skipped ({why})", case.name)),
            Err(f) => failures.push(format!("{}: {f}", case.name)),
        }
        if free_memory(&kernel) != before {
            failures.push(format!(
                "{}: free memory differs after the process exited",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
