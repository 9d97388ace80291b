//! The UAPI exerciser (`seam::exercise`) run on the simulator, with the machine-wide checks only
//! the simulator can make: after every process has exited, every exported buffer was released
//! exactly once and free memory is back to what it was at boot (rule 3 of `seam::exercise`).
//! The engine of the proptest and of the fuzz target (`crates/kernel/fuzz`).

use crate::kernel::Kernel;
use crate::sim::{free_memory, FreeMemory, SimProcess};
use seam::exercise::{decode, Exerciser};

/// What [`run_sim`] did: call counts, for reports of how much a run exercised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
}

/// Runs the program `data` on `nprocs` fresh processes of a freshly booted simulated machine,
/// then checks rule 3 ([`check_sim`]). Returns the call counts, or what broke.
pub fn run_sim(data: &[u8], nprocs: usize) -> Result<RunStats, String> {
    let first = SimProcess::boot().map_err(|e| format!("boot: {e}"))?;
    let kernel = first.kernel().clone();
    let before = free_memory(&kernel);
    let mut procs = vec![first];
    for _ in 1..nprocs.max(1) {
        procs.push(SimProcess::new(kernel.spawn()));
    }
    let mut ex = Exerciser::new(procs);
    for op in decode(data) {
        ex.apply(&op);
    }
    let stats = RunStats {
        calls: ex.calls,
        successes: ex.successes,
    };
    for p in ex.finish() {
        p.exit();
    }
    check_sim(&kernel, before)?;
    Ok(stats)
}

/// Rule 3 on a machine all of whose processes have exited: free memory back to `before`,
/// every exported buffer released exactly once.
pub fn check_sim(kernel: &Kernel, before: FreeMemory) -> Result<(), String> {
    let registry = kernel.registry();
    let stats = registry.stats();
    if !registry.is_empty() || stats.exported != stats.released {
        return Err(format!(
            "buffers alive after every process exited: {} live, {stats:?}\n{}",
            registry.len(),
            registry.bufinfo()
        ));
    }
    let after = free_memory(kernel);
    if after != before {
        return Err(format!(
            "free memory {after:?} after every process exited, {before:?} at boot"
        ));
    }
    Ok(())
}
