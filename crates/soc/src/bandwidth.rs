//! Shared memory bandwidth: memory controllers whose bandwidth the devices' DMA to their banks
//! shares, on the virtual clock.
//!
//! # The concept
//! Each device's DMA engine has its own bandwidth ([`crate::DeviceDesc::bandwidth_bps`]), but
//! on a real SoC every engine's traffic to DRAM goes through the same memory controller, and
//! a busy controller slows everyone: this is what makes real pipelines drop frames when one
//! more device starts streaming. A [`MemoryControllerDesc`] (`[[soc.memory_controllers]]`)
//! names the banks it serves and its bandwidth in bytes per second; a bank no controller
//! serves has no shared limit (each engine runs at its own bandwidth, as before).
//!
//! # The model: fair share at admission
//! A [`Ledger`] keeps, per controller, the transfers admitted on it as `[start, end)` spans
//! of the virtual clock with their bytes. A transfer of `bytes` starting at `t` on a
//! controller of bandwidth `B` with `k` transfers still in flight at `t` (`start <= t < end`)
//! gets a fair share `B / (k + 1)` for its whole length:
//! `ceil(bytes * (k + 1) * 1e9 / B)` ns ([`Ledger::share_ns`]). A job moving bytes on several
//! controllers takes as long as its slowest share, and never less than its own engine's time.
//! Transfers already admitted keep their timing (the clock never rewinds), so a transfer
//! admitted alone is not slowed by one that starts after it, and the controller can be
//! oversubscribed for a while; the model is deterministic (it depends only on the order the
//! runner admits transfers, which is the virtual schedule) and conservative for the
//! late-comer, who bears the contention.
//!
//! Utilisation ([`Ledger::moved_between`]): each transfer's bytes spread evenly over its span;
//! the bytes of every transfer overlapping an interval, over `B` times the interval. It can
//! exceed 1 while the controller is oversubscribed.
//!
//! ```
//! use soc::bandwidth::{Ledger, MemoryControllerDesc};
//! let mc = MemoryControllerDesc { name: "ddr".into(), banks: vec!["dram0".into()], bandwidth_bps: 1_000_000_000 };
//! let mut l = Ledger::new(&[mc]);
//! // Alone: 1 MB at 1 GB/s is 1 ms.
//! assert_eq!(l.share_ns("ddr", 0, 1_000_000), Some(1_000_000));
//! l.admit("ddr", 0, 1_000_000, 1_000_000);
//! // A second transfer while the first is in flight gets half the controller.
//! assert_eq!(l.share_ns("ddr", 500_000, 1_000_000), Some(2_000_000));
//! // After it ended, the whole controller again.
//! assert_eq!(l.share_ns("ddr", 1_000_000, 1_000_000), Some(1_000_000));
//! assert_eq!(l.share_ns("dram1", 0, 1), None);
//! ```
//!
//! Locking and lifetime: plain data owned by the runner's loop; [`Ledger::prune`] drops
//! transfers that ended before a time nobody asks about any more.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A memory controller: the banks whose traffic shares its bandwidth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryControllerDesc {
    /// Name, unique among controllers (`"ddr"`).
    pub name: String,
    /// The banks it serves (names of `[[soc.banks]]`); a bank belongs to at most one.
    pub banks: Vec<String>,
    /// Bytes per second every device's DMA to those banks shares; above zero.
    pub bandwidth_bps: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transfer {
    start: u64,
    end: u64,
    bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Controller {
    bandwidth_bps: u64,
    transfers: Vec<Transfer>,
}

/// The transfers admitted on each controller (module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    controllers: BTreeMap<String, Controller>,
    bank_to_controller: BTreeMap<String, String>,
}

impl Ledger {
    /// A ledger for `controllers` (those with a zero bandwidth are left out: validation refuses
    /// them before).
    pub fn new(controllers: &[MemoryControllerDesc]) -> Ledger {
        let mut l = Ledger::default();
        for mc in controllers.iter().filter(|m| m.bandwidth_bps > 0) {
            l.controllers.insert(
                mc.name.clone(),
                Controller {
                    bandwidth_bps: mc.bandwidth_bps,
                    transfers: Vec::new(),
                },
            );
            for b in &mc.banks {
                l.bank_to_controller.insert(b.clone(), mc.name.clone());
            }
        }
        l
    }

    /// Whether no controller limits anything (every transfer runs at its engine's speed).
    pub fn is_empty(&self) -> bool {
        self.controllers.is_empty()
    }

    /// The controller serving `bank`, if any.
    pub fn controller_of(&self, bank: &str) -> Option<&str> {
        self.bank_to_controller.get(bank).map(String::as_str)
    }

    /// The controllers and their bandwidths, by name.
    pub fn controllers(&self) -> impl Iterator<Item = (&str, u64)> {
        self.controllers
            .iter()
            .map(|(n, c)| (n.as_str(), c.bandwidth_bps))
    }

    /// Transfers on `controller` in flight at `t` (`start <= t < end`).
    pub fn in_flight(&self, controller: &str, t: u64) -> usize {
        self.controllers.get(controller).map_or(0, |c| {
            c.transfers
                .iter()
                .filter(|x| x.start <= t && t < x.end)
                .count()
        })
    }

    /// How long `bytes` take on `controller` starting at `t`, at the fair share
    /// `B / (in_flight + 1)`: `ceil(bytes * (k + 1) * 1e9 / B)` ns, saturating; `None` for an
    /// unknown controller.
    pub fn share_ns(&self, controller: &str, t: u64, bytes: u64) -> Option<u64> {
        let c = self.controllers.get(controller)?;
        let k = self.in_flight(controller, t) as u128 + 1;
        let ns = (bytes as u128 * k * 1_000_000_000).div_ceil(c.bandwidth_bps as u128);
        Some(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Records a transfer of `bytes` on `controller` over `[start, end)`.
    pub fn admit(&mut self, controller: &str, start: u64, end: u64, bytes: u64) {
        if let Some(c) = self.controllers.get_mut(controller) {
            c.transfers.push(Transfer {
                start,
                end: end.max(start),
                bytes,
            });
        }
    }

    /// Bytes moved on `controller` during `[t0, t1)`: each transfer's bytes spread evenly
    /// over its span.
    pub fn moved_between(&self, controller: &str, t0: u64, t1: u64) -> f64 {
        let Some(c) = self.controllers.get(controller) else {
            return 0.0;
        };
        c.transfers
            .iter()
            .map(|x| {
                let lo = x.start.max(t0);
                let hi = x.end.min(t1);
                if x.end == x.start {
                    // An instant transfer counts where it happens.
                    return if (t0..t1).contains(&x.start) {
                        x.bytes as f64
                    } else {
                        0.0
                    };
                }
                if hi <= lo {
                    return 0.0;
                }
                x.bytes as f64 * (hi - lo) as f64 / (x.end - x.start) as f64
            })
            .sum()
    }

    /// Drops the transfers that ended at or before `t`.
    pub fn prune(&mut self, t: u64) {
        for c in self.controllers.values_mut() {
            c.transfers.retain(|x| x.end > t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(bw: u64) -> Ledger {
        Ledger::new(&[MemoryControllerDesc {
            name: "ddr".into(),
            banks: vec!["dram0".into(), "dram1".into()],
            bandwidth_bps: bw,
        }])
    }

    #[test]
    fn each_transfer_in_flight_takes_an_equal_share() {
        let mut l = ledger(1_000_000_000);
        for k in 0..4u64 {
            assert_eq!(l.share_ns("ddr", 10, 1_000), Some(1_000 * (k + 1)));
            l.admit("ddr", 0, 100, 1);
        }
        assert_eq!(l.in_flight("ddr", 99), 4);
        assert_eq!(l.in_flight("ddr", 100), 0);
        assert_eq!(l.controller_of("dram1"), Some("ddr"));
        assert_eq!(l.controller_of("vram0"), None);
    }

    #[test]
    fn moved_bytes_spread_over_the_span_and_pruning_forgets_ended_ones() {
        let mut l = ledger(1_000);
        l.admit("ddr", 0, 100, 1_000);
        l.admit("ddr", 50, 50, 7);
        assert_eq!(l.moved_between("ddr", 0, 50), 500.0);
        assert_eq!(l.moved_between("ddr", 50, 200), 507.0);
        l.prune(100);
        assert_eq!(l.moved_between("ddr", 0, 200), 0.0);
    }

    #[test]
    fn a_zero_bandwidth_controller_limits_nothing() {
        let l = ledger(0);
        assert!(l.is_empty());
        assert_eq!(l.share_ns("ddr", 0, 1), None);
    }
}
