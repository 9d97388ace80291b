//! The real machine's clock: `clock_gettime(CLOCK_MONOTONIC)`, as the [`clock::Clock`] every
//! layer asks.
//!
//! C side: `clock_gettime(2)` with `CLOCK_MONOTONIC` (`ktime_get` in the kernel, the clock sync
//! file timestamps and dma-fence deadlines are on).
//!
//! # The concept
//!
//! The simulator's machines run on a virtual clock; a program on a real kernel runs on the
//! kernel's monotonic clock. [`Monotonic`] is that clock behind the same trait, so code that
//! takes a [`clock::ClockRef`] (timeouts, timestamps, the time a migration took) runs unchanged
//! on either. It holds no state and no lock; every reading is one vDSO call.
//!
//! ```
//! use clock::Clock;
//! let c = linux::clock::Monotonic;
//! let a = c.now_ns();
//! assert!(c.now_ns() >= a);
//! ```

use clock::Clock;

/// `CLOCK_MONOTONIC`: nanoseconds since an unspecified point (boot, on Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct Monotonic;

impl Clock for Monotonic {
    fn now_ns(&self) -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let secs = u64::try_from(t.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
        secs.saturating_mul(1_000_000_000).saturating_add(nanos)
    }

    /// The kernel's clock passed the deadline while the thread slept: nothing to do.
    fn timed_out(&self, _deadline_ns: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_clock_never_goes_backwards_and_is_past_boot() {
        let c = Monotonic;
        let a = c.now_ns();
        let b = c.now_ns();
        assert!(a > 0 && b >= a);
        assert!(c.as_virtual().is_none());
    }
}
