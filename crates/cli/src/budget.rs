//! `--max-host-memory`: how much host memory a run's simulated memory may take.
//!
//! The default is half the host's RAM (`MemTotal` in `/proc/meminfo`), leaving the rest to the
//! runner's own bookkeeping and to everything else on the machine; without `/proc/meminfo`
//! it is 4 GiB. The value is a size (`8GiB`, `512MiB`, or bytes).
//! [`scenario::Scenario::check_host_memory`] does the check, before any work.

/// Without `/proc/meminfo`.
const FALLBACK: u64 = 4 << 30;

/// Half of `MemTotal` in `/proc/meminfo`, or 4 GiB.
pub fn default_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib.saturating_mul(1024) / 2)
        })
        .unwrap_or(FALLBACK)
}

/// The budget `arg` says (a size), or the default.
pub fn budget(arg: Option<&str>) -> Result<u64, String> {
    match arg {
        None => Ok(default_budget()),
        Some(s) => soc::ByteSize::parse(s)
            .map(|b| b.0)
            .map_err(|e| format!("--max-host-memory {s}: {e}")),
    }
}
