//! The `prime` conformance suite (`seam::conformance::prime`) on the simulated GPU's PRIME
//! ([`drivers::gpu::prime_seam::GpuPrime`]): every case passes (none skipped) on a freshly
//! booted machine, and the machine has the free memory it had before once the process exits.
//! The same suite runs on vgem under `scripts/kernel-conformance`.

use drivers::gpu::prime_seam::GpuPrime;
use drivers::gpu::{Gpu, GpuConfig, RingMode};
use kernel::sim::{free_memory, SimProcess};
use seam::conformance::{prime, Outcome};

#[test]
fn prime_suite_on_the_simulated_gpu() {
    let mut failures = Vec::new();
    for case in prime::cases::<SimProcess, GpuPrime>() {
        let mut p = SimProcess::boot().expect("boot the default SoC");
        let kernel = p.kernel().clone();
        let before = free_memory(&kernel);
        let gpu = Gpu::new(
            kernel.dma(),
            GpuConfig {
                ring: RingMode::Manual,
                ..GpuConfig::default()
            },
        )
        .expect("gpu0 on the default SoC");
        let mut dev = GpuPrime::new(gpu);
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
