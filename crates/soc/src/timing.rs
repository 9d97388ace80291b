//! The machine's time model: how long moving bytes takes, on the virtual clock.
//!
//! # The concept
//! Every DMA engine is a latency plus a bandwidth (its [`DeviceDesc`](crate::DeviceDesc)'s
//! `latency_ns` and `bandwidth_bps`): moving `bytes` takes `latency + bytes / bandwidth`. A copy
//! reads and writes every byte, so it moves twice its length. The CPU copies (a migration with no
//! device engine) at [`CPU_COPY_BPS`] with no setup latency. Drivers cost their jobs with
//! [`transfer_ns`], and an exporter that copies a buffer records [`copy_ns`] for the engine that
//! copied, so a runner reads the cost the library recorded instead of recomputing it.
//!
//! Pure functions of the machine's description: no locks, no state.

use crate::machine::Soc;

/// The CPU's copy bandwidth in the time model (bytes per second), for copies no device engine
/// makes.
pub const CPU_COPY_BPS: u64 = 8_000_000_000;

/// `latency_ns + ceil(bytes * 1e9 / bandwidth_bps)` nanoseconds, in 128 bits, saturating; a
/// bandwidth of 0 counts as 1 byte per second.
///
/// ```
/// assert_eq!(soc::timing::transfer_ns(2_000, 1_000_000_000, 4096), 2_000 + 4_096);
/// assert_eq!(soc::timing::transfer_ns(0, 3, 1), 333_333_334);
/// assert_eq!(soc::timing::transfer_ns(0, 1, u64::MAX), u64::MAX);
/// ```
pub fn transfer_ns(latency_ns: u64, bandwidth_bps: u64, bytes: u64) -> u64 {
    let bw = u128::from(bandwidth_bps.max(1));
    let ns = u128::from(latency_ns) + (u128::from(bytes) * 1_000_000_000).div_ceil(bw);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// How long `engine` takes to copy `bytes` (read and write each): a device of `soc` by its
/// timing, anything else (the CPU) at [`CPU_COPY_BPS`].
///
/// ```
/// let soc = soc::Soc::new(soc::SocDesc::default_soc()).unwrap();
/// // isp0: 5 us of latency, 6 GB/s; 3 MB copied is 6 MB moved.
/// assert_eq!(soc::timing::copy_ns(&soc, "isp0", 3_000_000), 5_000 + 1_000_000);
/// assert_eq!(soc::timing::copy_ns(&soc, "cpu", 4_000_000), 1_000_000);
/// ```
pub fn copy_ns(soc: &Soc, engine: &str, bytes: u64) -> u64 {
    let moved = bytes.saturating_mul(2);
    match soc.device(engine) {
        Ok(dev) => {
            let d = dev.desc();
            transfer_ns(d.latency_ns, d.bandwidth_bps, moved)
        }
        Err(_) => {
            let ns = u128::from(moved) * 1_000_000_000 / u128::from(CPU_COPY_BPS);
            u64::try_from(ns).unwrap_or(u64::MAX)
        }
    }
}
