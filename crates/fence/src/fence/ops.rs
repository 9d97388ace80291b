//! The driver side of a fence: [`FenceOps`] (`struct dma_fence_ops`) and ready-made ops.

use super::{DmaFence, FenceError, Interrupt};
use clock::{Clock, ClockRef};
use std::sync::Arc;
use std::time::Duration;

/// What a driver provides for its fences (`struct dma_fence_ops`).
///
/// No fence lock is ever held when these are called (unlike the kernel, where some run under
/// `fence->lock`), so every method may call back into the fence API. None of them may take a
/// reservation lock (contract rule 2).
pub trait FenceOps: Send + Sync + 'static {
    /// Name of the driver that made the fence (`get_driver_name`).
    ///
    /// Mandatory. Called by [`DmaFence::driver_name`] and debug output, on any thread, only while
    /// the fence is pending. Must not block. Cannot fail.
    fn driver_name(&self) -> &str;

    /// Name of the timeline the fence belongs to (`get_timeline_name`).
    ///
    /// Mandatory. Same rules as [`driver_name`](Self::driver_name).
    fn timeline_name(&self) -> &str;

    /// Turns on whatever makes the fence signal, e.g. an interrupt (`enable_signaling`).
    ///
    /// Optional (default: `true`, "I will signal"). Called at most once per fence, by the first
    /// of [`DmaFence::enable_sw_signaling`], [`DmaFence::add_callback`] or a wait, and only while
    /// pending. Must not block. Return `false` if the fence has in fact already completed: the
    /// core then signals it.
    fn enable_signaling(&self, fence: &DmaFence) -> bool {
        let _ = fence;
        true
    }

    /// Polls for completion, e.g. by reading a hardware seqno (`signaled`).
    ///
    /// Optional (default: `false`). Called by [`DmaFence::is_signaled`] and
    /// [`DmaFence::status`] while the flag is not set, possibly many times, from any thread.
    /// Must not block. Returning `true` makes the caller signal the fence.
    fn signaled(&self, fence: &DmaFence) -> bool {
        let _ = fence;
        false
    }

    /// A custom wait (`wait`).
    ///
    /// Optional (default: `None`, use the core's parking wait). Called by
    /// [`DmaFence::wait_timeout`] after signaling was enabled. May block, for at most `timeout`
    /// (`None` = forever), and must return promptly with [`FenceError::Interrupted`] when `intr`
    /// is raised. Returns `Ok(remaining)` once signaled, [`FenceError::Timeout`], or a
    /// [`FenceError::Driver`] code of its own.
    fn wait(
        &self,
        fence: &DmaFence,
        intr: Option<&Interrupt>,
        timeout: Option<Duration>,
    ) -> Option<Result<Duration, FenceError>> {
        let _ = (fence, intr, timeout);
        None
    }

    /// A hint that someone would like the fence signaled by `deadline_ns` (on
    /// [`clock`](Self::clock)) (`set_deadline`).
    ///
    /// Optional (default: ignore). Called by [`DmaFence::set_deadline`] only while pending. Must
    /// not block. Cannot fail.
    fn set_deadline(&self, fence: &DmaFence, deadline_ns: u64) {
        let _ = (fence, deadline_ns);
    }

    /// The clock of the machine the fence's driver runs on (`ktime_get`): it stamps
    /// [`DmaFence::signal`] and measures [`DmaFence::wait_timeout`]'s timeout.
    ///
    /// Optional (default: [`clock::unbooted`], the clock of objects made outside any machine).
    /// Called on every signal and timed wait, on any thread. Must not block.
    fn clock(&self) -> &dyn Clock {
        clock::unbooted()
    }
}

/// Ops for fences that are signaled by hand: just the two names, every optional op default.
///
/// ```
/// use fence::{DmaFence, SimpleFenceOps};
/// let ops = SimpleFenceOps::new("drv", "timeline");
/// let f = DmaFence::new(ops, 1, 1);
/// assert_eq!(f.driver_name(), "drv");
/// let g = SimpleFenceOps::create("drv", "timeline", 1, 2); // one line
/// assert!(g.is_later(&f));
/// ```
#[derive(Debug, Clone)]
pub struct SimpleFenceOps {
    /// Returned by [`FenceOps::driver_name`].
    pub driver: String,
    /// Returned by [`FenceOps::timeline_name`].
    pub timeline: String,
    /// Returned by [`FenceOps::clock`]; `None` is [`clock::unbooted`].
    pub clock: Option<ClockRef>,
}

impl SimpleFenceOps {
    /// Ops with these names, ready to pass to [`DmaFence::new`].
    pub fn new(driver: &str, timeline: &str) -> Arc<SimpleFenceOps> {
        Arc::new(SimpleFenceOps {
            driver: driver.into(),
            timeline: timeline.into(),
            clock: None,
        })
    }

    /// Ops with these names whose fences are stamped and timed on `clock` (a machine's).
    pub fn on(clock: ClockRef, driver: &str, timeline: &str) -> Arc<SimpleFenceOps> {
        Arc::new(SimpleFenceOps {
            driver: driver.into(),
            timeline: timeline.into(),
            clock: Some(clock),
        })
    }

    /// A pending 32-bit-seqno fence with new ops of these names, in one call.
    pub fn create(driver: &str, timeline: &str, context: u64, seqno: u64) -> DmaFence {
        DmaFence::new(Self::new(driver, timeline), context, seqno)
    }
}

impl FenceOps for SimpleFenceOps {
    fn driver_name(&self) -> &str {
        &self.driver
    }
    fn timeline_name(&self) -> &str {
        &self.timeline
    }
    fn clock(&self) -> &dyn Clock {
        match &self.clock {
            Some(c) => &**c,
            None => clock::unbooted(),
        }
    }
}

/// Ops of the stub fences (`dma_fence_stub_ops`).
pub(super) fn stub_ops() -> Arc<dyn FenceOps> {
    Arc::new(SimpleFenceOps {
        driver: "stub".into(),
        timeline: "stub".into(),
        clock: None,
    })
}
