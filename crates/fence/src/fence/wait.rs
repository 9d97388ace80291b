//! Waiting on fences: the default parking wait, `wait_any`, and [`Interrupt`] (a simulated
//! pending signal).
//!
//! C side: `dma_fence_default_wait`, `dma_fence_wait_timeout`, `dma_fence_wait_any_timeout` in
//! `drivers/dma-buf/dma-fence.c`.
//!
//! A waiting thread owns a [`Waiter`] (a mutex and a condition variable). It registers a fence
//! callback that notifies the waiter, and registers the waiter with the [`Interrupt`] if it has
//! one; then it sleeps on the condition variable until a fence flag is set, the interrupt is
//! raised, or the deadline passes. Nothing spins.
//!
//! The [`Interrupt`] registry holds `Wakee`s, not only fence waiters: an interruptible
//! ww_mutex wait registers its mutex's shared state lock and condition variable
//! (`LockShared`) so that `raise` wakes it directly, without any polling.
//!
//! Ordering: every waker (fence callback, `Interrupt::raise`) first publishes its condition
//! (the fence's signaled flag, the interrupt's raised flag), then takes the waiter's mutex and
//! notifies. The waiter checks the conditions while holding that mutex and only then sleeps, so a
//! wake-up can never fall between the check and the sleep.

use super::{DmaFence, FenceError};
use crate::sync::{Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering};
use crate::ww_mutex::LockShared;
use clock::Clock;
use std::fmt;
use std::time::Duration;

/// One sleeping thread.
pub(crate) struct Waiter {
    lock: Mutex<()>,
    cv: Condvar,
}

impl Waiter {
    pub(crate) fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            lock: Mutex::new(()),
            cv: Condvar::new(),
        })
    }

    /// Wakes the waiter; the caller has already published its condition.
    pub(crate) fn wake(&self) {
        let _g = self.lock.lock();
        self.cv.notify_all();
    }

    /// Sleeps until `done` returns `Some`, `intr` is raised, or `deadline` passes.
    fn block<T>(
        this: &Arc<Self>,
        intr: Option<&Interrupt>,
        clock: &dyn Clock,
        deadline: Option<u64>,
        mut done: impl FnMut() -> Option<T>,
    ) -> Result<T, FenceError> {
        let _reg = intr.map(|i| i.register(Wakee::Fence(this.clone())));
        let mut g = this.lock.lock();
        loop {
            if let Some(v) = done() {
                return Ok(v);
            }
            if intr.is_some_and(Interrupt::is_raised) {
                return Err(FenceError::Interrupted);
            }
            match deadline {
                None => this.cv.wait(&mut g),
                Some(d) => {
                    let now = clock.now_ns();
                    if now >= d {
                        return Err(FenceError::Timeout);
                    }
                    let woken = this.cv.wait_for(&mut g, Duration::from_nanos(d - now));
                    if woken.timed_out() {
                        // Slept the time out: a virtual clock moves to the deadline.
                        clock.timed_out(d);
                    }
                }
            }
        }
    }
}

/// Something [`Interrupt::raise`] must wake: a sleeping fence wait, or an interruptible
/// ww_mutex wait sleeping on its mutex's condition variable.
///
/// Both variants hold an `Arc` to what the sleeper waits on, so a registration can never point
/// at freed memory, whatever outlives what.
#[derive(Clone)]
pub(crate) enum Wakee {
    /// A fence wait ([`Waiter::block`]).
    Fence(Arc<Waiter>),
    /// An interruptible ww_mutex lock wait.
    WwLock(Arc<LockShared>),
}

impl Wakee {
    /// Wakes the sleeper; the caller (`raise`) has already published the raised flag.
    fn wake(&self) {
        match self {
            Wakee::Fence(w) => w.wake(),
            Wakee::WwLock(l) => l.wake_all(),
        }
    }
}

/// A simulated "signal pending" for interruptible waits (`signal_pending(current)`).
///
/// Think of it as a Ctrl-C that a test or another thread can deliver: [`raise`](Self::raise)
/// makes every wait given this interrupt return [`FenceError::Interrupted`] (`ERESTARTSYS`)
/// promptly, and makes new interruptible waits fail at once, until [`clear`](Self::clear).
/// Clones share the same flag.
///
/// ```
/// use fence::{Interrupt, SimpleFenceOps};
/// use uapi::{AsErrno, Errno};
/// let f = SimpleFenceOps::create("d", "t", 1, 1);
/// let intr = Interrupt::new();
/// intr.raise();
/// assert_eq!(f.wait(Some(&intr)).unwrap_err().errno(), Errno::ERESTARTSYS);
/// intr.clear();
/// ```
#[derive(Clone)]
pub struct Interrupt(Arc<IntrInner>);

struct IntrInner {
    raised: AtomicBool,
    next_id: AtomicU64,
    waiters: Mutex<Vec<(u64, Wakee)>>,
}

/// Removes a waiter from an interrupt's list when the wait ends (drop it after the last sleep).
pub(crate) struct Registration<'a> {
    intr: &'a Interrupt,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let removed = {
            let mut w = self.intr.0.waiters.lock();
            w.iter()
                .position(|(i, _)| *i == self.id)
                .map(|p| w.swap_remove(p))
        };
        drop(removed);
    }
}

impl Interrupt {
    /// A new, not raised interrupt.
    pub fn new() -> Interrupt {
        Interrupt(Arc::new(IntrInner {
            raised: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
        }))
    }

    /// Delivers the "signal": wakes every wait using this interrupt.
    pub fn raise(&self) {
        // SeqCst store before taking the list lock: a waiter registering after this sees it in
        // its check; one registered before is woken below.
        self.0.raised.store(true, Ordering::SeqCst);
        // The list lock is released before waking: a ww waiter registers while holding its
        // mutex's state lock, and `Wakee::wake` takes that lock, so holding both here could
        // deadlock (list -> state here, state -> list there).
        let waiters: Vec<Wakee> = self
            .0
            .waiters
            .lock()
            .iter()
            .map(|(_, w)| w.clone())
            .collect();
        for w in waiters {
            w.wake();
        }
    }

    /// Takes the signal back: later waits are no longer interrupted.
    pub fn clear(&self) {
        self.0.raised.store(false, Ordering::SeqCst);
    }

    /// Whether the signal is pending.
    pub fn is_raised(&self) -> bool {
        self.0.raised.load(Ordering::SeqCst)
    }

    /// Adds `w` to the sleepers `raise` wakes, until the returned registration is dropped.
    ///
    /// Register *before* the last check of [`is_raised`](Self::is_raised) that precedes a sleep:
    /// then either `raise` finds the registration and wakes the sleeper, or the registration
    /// came after `raise` took the list lock, hence after its store of the flag, and the check
    /// sees it.
    pub(crate) fn register(&self, w: Wakee) -> Registration<'_> {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        self.0.waiters.lock().push((id, w));
        Registration { intr: self, id }
    }
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt::new()
    }
}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interrupt")
            .field("raised", &self.is_raised())
            .finish()
    }
}

/// What is left of `timeout` at the end of a successful wait (`Duration::MAX` for forever).
fn remaining(clock: &dyn Clock, timeout: Option<Duration>, deadline: Option<u64>) -> Duration {
    match (timeout, deadline) {
        (None, _) | (Some(_), None) => Duration::MAX,
        (Some(_), Some(d)) => clock::remaining(clock, d),
    }
}

impl DmaFence {
    /// Waits for the signal for at most `timeout` (`None` = forever) (`dma_fence_wait_timeout`).
    ///
    /// Enables signaling, then uses [`FenceOps::wait`](super::FenceOps::wait) if the driver has
    /// one, else the default wait, which parks the thread. Returns `Ok(remaining time)` once
    /// signaled (`Duration::MAX` with no timeout; a zero timeout on a signaled fence gives
    /// `Ok(ZERO)`), [`FenceError::Timeout`] (`ETIME`) if time ran out, or
    /// [`FenceError::Interrupted`] (`ERESTARTSYS`) if `intr` is raised (behaviours 20-23). An
    /// already-signaled fence succeeds even with a raised interrupt.
    ///
    /// ```
    /// use fence::{FenceError, SimpleFenceOps};
    /// use std::time::Duration;
    /// let f = SimpleFenceOps::create("d", "t", 1, 1);
    /// assert_eq!(f.wait_timeout(None, Some(Duration::ZERO)), Err(FenceError::Timeout));
    /// f.signal().unwrap();
    /// assert!(f.wait_timeout(None, Some(Duration::from_millis(5))).is_ok());
    /// ```
    pub fn wait_timeout(
        &self,
        intr: Option<&Interrupt>,
        timeout: Option<Duration>,
    ) -> Result<Duration, FenceError> {
        self.enable_sw_signaling();
        if let Some(r) = self.0.ops.wait(self, intr, timeout) {
            return r;
        }
        self.default_wait(intr, timeout)
    }

    /// The core's wait (`dma_fence_default_wait`), for drivers whose custom
    /// [`FenceOps::wait`](super::FenceOps::wait) wants to fall back to it. Same results as
    /// [`wait_timeout`](Self::wait_timeout); its wake-up callback enables signaling like any
    /// [`add_callback`](Self::add_callback).
    pub fn default_wait(
        &self,
        intr: Option<&Interrupt>,
        timeout: Option<Duration>,
    ) -> Result<Duration, FenceError> {
        let clock = self.0.ops.clock();
        let deadline = clock::deadline_after(clock, timeout);
        if self.signaled_flag() {
            return Ok(remaining(clock, timeout, deadline));
        }
        if intr.is_some_and(Interrupt::is_raised) {
            return Err(FenceError::Interrupted);
        }
        if timeout == Some(Duration::ZERO) {
            return Err(FenceError::Timeout);
        }
        let waiter = Waiter::new();
        let w = waiter.clone();
        let id = match self.add_callback(move |_| w.wake()) {
            Ok(id) => id,
            Err(_) => return Ok(remaining(clock, timeout, deadline)),
        };
        let r = Waiter::block(&waiter, intr, clock, deadline, || {
            self.signaled_flag().then_some(())
        });
        self.remove_callback(id);
        r.map(|()| remaining(clock, timeout, deadline))
    }
}

/// Waits until any of `fences` signals (`dma_fence_wait_any_timeout`, behaviour 24).
///
/// The timeout runs on the first fence's [`clock`](super::FenceOps::clock).
/// Returns the index of a signaled fence (the first one found) and the remaining time;
/// [`FenceError::Timeout`], [`FenceError::Interrupted`], or [`FenceError::InvalidArgument`] for
/// an empty slice. A zero timeout only polls.
///
/// ```
/// use fence::{wait_any_timeout, SimpleFenceOps};
/// use std::time::Duration;
/// let a = SimpleFenceOps::create("d", "t", 1, 1);
/// let b = SimpleFenceOps::create("d", "t", 1, 2);
/// b.signal().unwrap();
/// let (idx, _) = wait_any_timeout(&[a, b], None, Some(Duration::ZERO)).unwrap();
/// assert_eq!(idx, 1);
/// ```
pub fn wait_any_timeout(
    fences: &[DmaFence],
    intr: Option<&Interrupt>,
    timeout: Option<Duration>,
) -> Result<(usize, Duration), FenceError> {
    if fences.is_empty() {
        return Err(FenceError::InvalidArgument("wait_any on no fences"));
    }
    let clock = fences[0].ops().clock();
    let deadline = clock::deadline_after(clock, timeout);
    if timeout == Some(Duration::ZERO) {
        return fences
            .iter()
            .position(DmaFence::is_signaled)
            .map(|i| (i, Duration::ZERO))
            .ok_or(FenceError::Timeout);
    }
    let waiter = Waiter::new();
    let mut ids = Vec::with_capacity(fences.len());
    let mut found = None;
    for (i, f) in fences.iter().enumerate() {
        let w = waiter.clone();
        match f.add_callback(move |_| w.wake()) {
            Ok(id) => ids.push(id),
            Err(_) => {
                found = Some(i);
                break;
            }
        }
    }
    let r = match found {
        Some(i) => Ok(i),
        None => Waiter::block(&waiter, intr, clock, deadline, || {
            fences.iter().position(DmaFence::signaled_flag)
        }),
    };
    for (f, id) in fences.iter().zip(ids) {
        f.remove_callback(id);
    }
    r.map(|i| (i, remaining(clock, timeout, deadline)))
}
