//! The machine clock: `CLOCK_MONOTONIC` (`ktime_get()`) as a trait every layer asks.
//!
//! C side: `include/linux/timekeeping.h` (`ktime_get`, `ktime_get_ns`), and the jiffies-based
//! timeouts of `wait_event_timeout` / `dma_fence_wait_timeout`.
//!
//! # The concept
//!
//! A machine has one monotonic clock. Fence timestamps, wait deadlines, drain timeouts and the
//! cost the constraint exporter records for a migration are all read from it. In the simulator
//! the clock is a [`VirtualClock`]: it moves only when the scenario runner advances it or when a
//! thread sleeps out a timeout on it, so the same scenario gives the same times. Over a real
//! kernel (the `linux` crate) it is `clock_gettime(CLOCK_MONOTONIC)`. No crate below the CLI
//! reads the host's wall clock itself; each asks the [`Clock`] of its machine
//! (`soc::Soc::clock`), or the clock a fence's ops name (`fence::FenceOps::clock`).
//!
//! # Rules
//!
//! 1. **Monotonic.** [`Clock::now_ns`] never goes backwards.
//! 2. **A booted machine's clock is not zero.** A virtual machine clock starts at [`BOOT_NS`], so
//!    a timestamp of 0 keeps meaning "not yet" (a pending fence's FILE_INFO timestamp).
//! 3. **Sleeping is real, time is the clock's.** A timed wait computes its deadline on the clock
//!    ([`deadline_after`]), sleeps the calling thread for at most the [`remaining`] time, and,
//!    if nothing woke it, reports [`Clock::timed_out`]: a virtual clock then moves to the
//!    deadline (the thread spent that time), a real one has passed it already. A timeout thus
//!    costs the same on both, and a wait never hangs on a clock nobody advances.
//! 4. **No global machine.** Each machine owns its clock; the only process-wide clock is
//!    [`unbooted`], for objects created outside any machine (a fence made by a unit test).
//!
//! ```
//! use clock::{Clock, VirtualClock, BOOT_NS};
//! use std::time::Duration;
//!
//! let c = VirtualClock::new();
//! assert_eq!(c.now_ns(), BOOT_NS);
//! c.advance(Duration::from_millis(16));
//! assert_eq!(c.now_ns(), BOOT_NS + 16_000_000);
//! let d = clock::deadline_after(&c, Some(Duration::from_millis(5))).unwrap();
//! c.timed_out(d); // a waiter slept its 5 ms out
//! assert_eq!(c.now_ns(), BOOT_NS + 21_000_000);
//! c.advance_to(BOOT_NS); // never backwards
//! assert_eq!(c.now_ns(), BOOT_NS + 21_000_000);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Where a virtual machine clock starts: one second after "boot", as a booted kernel's
/// `CLOCK_MONOTONIC` is well past zero when user space first runs (rule 2).
pub const BOOT_NS: u64 = 1_000_000_000;

/// A monotonic clock in nanoseconds (`ktime_get_ns`).
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in nanoseconds on this clock; never less than an earlier reading (rule 1).
    fn now_ns(&self) -> u64;

    /// A thread slept until `deadline_ns` and nothing woke it (rule 3). A virtual clock moves
    /// forward to `deadline_ns` if it is behind; a real clock, which passed it while the thread
    /// slept, does nothing.
    fn timed_out(&self, deadline_ns: u64);

    /// This clock as a [`VirtualClock`], for whoever drives a simulated machine's time (the
    /// scenario runner, a test); `None` for a real clock.
    fn as_virtual(&self) -> Option<&VirtualClock> {
        None
    }
}

/// A shared clock: what a machine hands to every layer.
pub type ClockRef = Arc<dyn Clock>;

/// A virtual clock: moved by whoever runs the machine (the scenario runner) and by waits that
/// time out (rule 3). Lock-free; reading it costs one atomic load.
#[derive(Debug)]
pub struct VirtualClock {
    ns: AtomicU64,
}

impl VirtualClock {
    /// A clock at [`BOOT_NS`].
    pub fn new() -> VirtualClock {
        VirtualClock::starting_at(BOOT_NS)
    }

    /// A clock at `ns`.
    pub fn starting_at(ns: u64) -> VirtualClock {
        VirtualClock {
            ns: AtomicU64::new(ns),
        }
    }

    /// A shared clock at [`BOOT_NS`], ready to hand to a machine.
    pub fn shared() -> Arc<VirtualClock> {
        Arc::new(VirtualClock::new())
    }

    /// Moves the clock forward by `d` (saturating); returns the new time.
    pub fn advance(&self, d: Duration) -> u64 {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let prev = self
            .ns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(d))
            })
            .unwrap_or_else(|t| t);
        prev.saturating_add(d)
    }

    /// Moves the clock to `ns` if it is behind; never backwards (rule 1). Returns the time now.
    pub fn advance_to(&self, ns: u64) -> u64 {
        self.ns.fetch_max(ns, Ordering::AcqRel).max(ns)
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock::new()
    }
}

impl Clock for VirtualClock {
    fn now_ns(&self) -> u64 {
        self.ns.load(Ordering::Acquire)
    }

    fn timed_out(&self, deadline_ns: u64) {
        self.advance_to(deadline_ns);
    }

    fn as_virtual(&self) -> Option<&VirtualClock> {
        Some(self)
    }
}

/// The clock of objects made outside any machine (rule 4): a [`VirtualClock`] shared by the
/// whole process. A machine never uses it; it owns its own.
pub fn unbooted() -> &'static VirtualClock {
    static CLOCK: OnceLock<VirtualClock> = OnceLock::new();
    CLOCK.get_or_init(VirtualClock::new)
}

/// The deadline `timeout` from now on `clock`, or `None` (wait forever) when there is no
/// timeout or it lies past the end of time.
pub fn deadline_after(clock: &dyn Clock, timeout: Option<Duration>) -> Option<u64> {
    let t = u64::try_from(timeout?.as_nanos()).ok()?;
    clock.now_ns().checked_add(t)
}

/// How long is left until `deadline_ns` on `clock` (zero once it has passed).
pub fn remaining(clock: &dyn Clock, deadline_ns: u64) -> Duration {
    Duration::from_nanos(deadline_ns.saturating_sub(clock.now_ns()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_clock_moves_only_forward() {
        let c = VirtualClock::starting_at(10);
        assert_eq!(c.advance(Duration::from_nanos(5)), 15);
        assert_eq!(c.advance_to(12), 15);
        assert_eq!(c.now_ns(), 15);
        assert_eq!(c.advance(Duration::MAX), u64::MAX);
    }

    #[test]
    fn a_timed_out_wait_moves_a_virtual_clock_to_its_deadline() {
        let c = VirtualClock::new();
        let d = deadline_after(&c, Some(Duration::from_micros(3))).unwrap();
        assert_eq!(remaining(&c, d), Duration::from_micros(3));
        c.timed_out(d);
        assert_eq!(c.now_ns(), d);
        assert_eq!(remaining(&c, d), Duration::ZERO);
    }

    #[test]
    fn no_timeout_or_an_endless_one_is_no_deadline() {
        let c = VirtualClock::new();
        assert_eq!(deadline_after(&c, None), None);
        assert_eq!(deadline_after(&c, Some(Duration::MAX)), None);
    }

    #[test]
    fn two_machines_keep_their_own_time() {
        let a = VirtualClock::new();
        let b = VirtualClock::new();
        a.advance(Duration::from_secs(1));
        assert_eq!(b.now_ns(), BOOT_NS);
    }
}
