//! dma-fence: a one-shot "this work is done" event shared between drivers.
//!
//! C side: `drivers/dma-buf/dma-fence.c`, `include/linux/dma-fence.h`.
//!
//! # The concept
//!
//! A fence is a promise made by a driver that some piece of work (a DMA transfer, a GPU job, a
//! display flip) will finish. It starts *pending* and is *signaled* exactly once, possibly with an
//! error. Anyone holding a reference can ask whether it has signaled, wait for it (with a timeout
//! and an [`Interrupt`]), or register a callback that runs when it signals. Fences are identified
//! by a *context* (a timeline, from [`context_alloc`]) and a *seqno* on that timeline: on one
//! context, fences signal in seqno order, so the later of two fences implies the earlier.
//!
//! Fences are used three ways: as implicit synchronisation attached to a buffer (`resv`), as
//! explicit synchronisation passed through user space (`sync_file`), and inside a driver to chain
//! its own jobs. Containers ([`DmaFenceArray`], [`DmaFenceChain`]) combine several fences into one.
//!
//! # The cross-driver contract
//!
//! 1. A fence must signal in bounded time once someone enabled signaling or waits on it. A fence
//!    that never signals is a deadlock waiting to happen in every other driver that depends on it.
//! 2. Never take a reservation (`DmaResv`) lock, or any lock that is held while waiting on a
//!    fence, on the path that signals a fence. The deadlock it causes:
//!    ```text
//!    thread A: lock(resv); fence.wait();           // waits for B's signal
//!    thread B: lock(resv); /* blocks on A */ fence.signal();   // never reached
//!    ```
//! 3. Callbacks run on the signalling thread, must not block, and must be quick.
//! 4. A callback must not own a strong reference ([`DmaFence`] clone) of the fence it is registered
//!    on: it gets `&DmaFence` as its argument. A self-reference is an `Arc` cycle and the fence is
//!    then only freed when it signals (and leaks if it never does).
//! 5. Every fence dropped while callbacks are still pending is signaled with `EDEADLK` on its last
//!    drop (kernel behaviour 25), so no callback is ever silently lost.
//!
//! # Locking rules
//!
//! * Each fence has one mutex (`state`), the analogue of the kernel's `fence->lock`. It protects
//!   the signaled flag, timestamp, error, enable-signaling flag and the callback list.
//! * No user code (driver ops, callbacks) ever runs with that mutex held. Signalling collects the
//!   callbacks under the lock, releases it, then runs them in registration order (the tokio
//!   waker pattern). Consequence: a callback may call any method of any fence, including this one.
//! * [`FenceOps`] methods are called without any fence lock held.
//! * Because callbacks run after the lock is dropped, [`DmaFence::remove_callback`] returning
//!   `false` means the callback has run *or is running right now* on the signalling thread.
//!
//! # Example
//!
//! ```
//! use fence::{context_alloc, DmaFence, FenceStatus, SimpleFenceOps};
//! use std::sync::{atomic::{AtomicBool, Ordering}, Arc};
//!
//! let ctx = context_alloc(1).unwrap();
//! let f = SimpleFenceOps::create("my-driver", "ring0", ctx, 1);
//! let seen = Arc::new(AtomicBool::new(false));
//! let s = seen.clone();
//! f.add_callback(move |_f| s.store(true, Ordering::SeqCst)).unwrap();
//! assert_eq!(f.status(), FenceStatus::Pending);
//! f.signal().unwrap();
//! assert!(seen.load(Ordering::SeqCst));
//! assert_eq!(f.status(), FenceStatus::Signaled);
//! assert!(f.signal().is_err()); // signals exactly once
//! ```

mod ops;
mod wait;

pub use ops::{FenceOps, SimpleFenceOps};
pub use wait::{wait_any_timeout, Interrupt};
pub(crate) use wait::{Registration, Wakee};

use crate::array::DmaFenceArray;
use crate::chain::DmaFenceChain;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Mutex, Ordering};
use std::fmt;
use uapi::{AsErrno, Errno};

/// Why a fence operation failed; [`AsErrno::errno`] gives the kernel's errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    /// `signal`/`set_error` on a fence that has already signaled (`EINVAL`, behaviour 8/12).
    #[error("fence already signaled")]
    AlreadySignaled,
    /// `add_callback` on a signaled fence: the callback was not added and will not run
    /// (`ENOENT`, behaviour 16).
    #[error("fence already signaled; callback not added")]
    CallbackNotAdded,
    /// A wait timed out (`ETIME`, as the selftests' mock wait reports it).
    #[error("fence wait timed out")]
    Timeout,
    /// A wait was interrupted by a pending [`Interrupt`] (`ERESTARTSYS`).
    #[error("fence wait interrupted")]
    Interrupted,
    /// A bad argument; the string says which (`EINVAL`).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A driver-specific failure reported by a custom [`FenceOps::wait`].
    #[error("driver error: {0}")]
    Driver(Errno),
}

impl AsErrno for FenceError {
    fn errno(&self) -> Errno {
        match self {
            FenceError::AlreadySignaled | FenceError::InvalidArgument(_) => Errno::EINVAL,
            FenceError::CallbackNotAdded => Errno::ENOENT,
            FenceError::Timeout => Errno::ETIME,
            FenceError::Interrupted => Errno::ERESTARTSYS,
            FenceError::Driver(e) => *e,
        }
    }
}

/// The state of a fence as [`DmaFence::status`] reports it (`dma_fence_get_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceStatus {
    /// Not signaled yet (kernel 0).
    Pending,
    /// Signaled without error (kernel 1).
    Signaled,
    /// Signaled with an error (kernel `-errno`).
    Error(Errno),
}

/// Identifies a callback registered with [`DmaFence::add_callback`], for
/// [`DmaFence::remove_callback`]. Only meaningful for the fence that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

type Callback = Box<dyn FnOnce(&DmaFence) + Send + 'static>;

/// What a fence is, beyond the common state: the container downcasts.
pub(crate) enum Kind {
    Plain,
    Array(DmaFenceArray),
    Chain(DmaFenceChain),
}

/// Mutable state of a fence, protected by [`Inner::state`].
struct State {
    /// When it signaled (`DMA_FENCE_FLAG_TIMESTAMP_BIT` + `timestamp`).
    timestamp: Option<u64>,
    /// `fence->error`; reported only after the signal by `status`.
    error: Option<Errno>,
    /// `DMA_FENCE_FLAG_ENABLE_SIGNAL_BIT`: `ops.enable_signaling` has been (or is being) called.
    enable_signal: bool,
    /// Pending callbacks, in registration order.
    callbacks: Vec<(u64, Callback)>,
    /// Next [`CallbackId`].
    next_id: u64,
}

struct Inner {
    ops: std::sync::Arc<dyn FenceOps>,
    context: u64,
    seqno: u64,
    /// `DMA_FENCE_FLAG_SEQNO64_BIT`: compare seqnos as 64-bit numbers.
    seqno64: bool,
    /// `DMA_FENCE_FLAG_SIGNALED_BIT`. Written only with `state` held (Release), so a reader that
    /// sees `true` with Acquire also sees the timestamp and error stored before it; read lock-free.
    signaled: AtomicBool,
    /// The fence lock.
    state: Mutex<State>,
    /// Number of [`DmaFence`] handles (the kernel's kref). Kept apart from the `Arc` count so
    /// that "this drop released the last handle" is decided by one atomic read-modify-write.
    refs: AtomicUsize,
    kind: Kind,
}

/// A reference-counted fence (`struct dma_fence *`).
///
/// `Clone` is `dma_fence_get`, dropping is `dma_fence_put`. The last drop of an unsignaled fence
/// that still has callbacks signals it with `EDEADLK` first (contract rule 5).
///
/// # Invariants
/// `Inner::refs` equals the number of live `DmaFence` handles on the inner value.
pub struct DmaFence(Arc<Inner>);

/// Compares two seqnos the way the kernel does for a fence with the given flag (behaviour 3/4).
pub(crate) fn seqno_is_later(a: u64, b: u64, seqno64: bool) -> bool {
    if seqno64 {
        a > b
    } else {
        // Wrap-around compare on the low 32 bits: 1 is later than 0xFFFF_FFFF.
        ((a as u32).wrapping_sub(b as u32) as i32) > 0
    }
}

/// Allocates `num` consecutive fence contexts and returns the first (`dma_fence_context_alloc`).
///
/// Contexts are never reused; the counter starts at 1 because 0 belongs to the stub fences.
/// `num == 0` (a kernel WARN) or an exhausted counter is `EINVAL`.
///
/// ```
/// let a = fence::context_alloc(2).unwrap();
/// let b = fence::context_alloc(1).unwrap();
/// assert!(a >= 1 && b >= a + 2);
/// assert!(fence::context_alloc(0).is_err());
/// ```
pub fn context_alloc(num: u64) -> Result<u64, FenceError> {
    // A process-wide id counter, not a lock: Relaxed is enough, only uniqueness matters.
    use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
    static NEXT: StdAtomicU64 = StdAtomicU64::new(1);
    if num == 0 {
        return Err(FenceError::InvalidArgument("context_alloc(0)"));
    }
    NEXT.fetch_update(StdOrdering::Relaxed, StdOrdering::Relaxed, |n| {
        n.checked_add(num)
    })
    .map_err(|_| FenceError::InvalidArgument("fence context space exhausted"))
}

impl DmaFence {
    pub(crate) fn with_kind(
        ops: std::sync::Arc<dyn FenceOps>,
        context: u64,
        seqno: u64,
        seqno64: bool,
        kind: Kind,
    ) -> DmaFence {
        DmaFence(Arc::new(Inner {
            ops,
            context,
            seqno,
            seqno64,
            signaled: AtomicBool::new(false),
            state: Mutex::new(State {
                timestamp: None,
                error: None,
                enable_signal: false,
                callbacks: Vec::new(),
                next_id: 0,
            }),
            refs: AtomicUsize::new(1),
            kind,
        }))
    }

    /// A new pending fence whose seqnos compare as 32-bit with wrap-around (`dma_fence_init`).
    pub fn new(ops: std::sync::Arc<dyn FenceOps>, context: u64, seqno: u64) -> DmaFence {
        Self::with_kind(ops, context, seqno, false, Kind::Plain)
    }

    /// A new pending fence whose seqnos compare as plain 64-bit numbers (`dma_fence_init64`).
    pub fn new64(ops: std::sync::Arc<dyn FenceOps>, context: u64, seqno: u64) -> DmaFence {
        Self::with_kind(ops, context, seqno, true, Kind::Plain)
    }

    /// The timeline this fence belongs to.
    pub fn context(&self) -> u64 {
        self.0.context
    }

    /// The position on the timeline.
    pub fn seqno(&self) -> u64 {
        self.0.seqno
    }

    /// Whether seqnos of this fence compare as 64-bit (`DMA_FENCE_FLAG_SEQNO64_BIT`).
    pub fn is_seqno64(&self) -> bool {
        self.0.seqno64
    }

    /// The ops of this fence.
    pub fn ops(&self) -> &std::sync::Arc<dyn FenceOps> {
        &self.0.ops
    }

    /// Whether the signaled flag is set, without polling the driver.
    #[inline]
    pub(crate) fn signaled_flag(&self) -> bool {
        // Acquire pairs with the Release store in `signal_timestamp`.
        self.0.signaled.load(Ordering::Acquire)
    }

    /// Signals the fence now (`dma_fence_signal`), stamping it with its ops'
    /// [`clock`](FenceOps::clock).
    ///
    /// Runs every pending callback once, in registration order, on this thread, after the fence
    /// lock has been dropped. A second signal returns [`FenceError::AlreadySignaled`] (`EINVAL`)
    /// and runs nothing (behaviour 8).
    pub fn signal(&self) -> Result<(), FenceError> {
        self.signal_timestamp(self.0.ops.clock().now_ns())
    }

    /// Signals the fence with the given timestamp (`dma_fence_signal_timestamp`).
    pub fn signal_timestamp(&self, timestamp_ns: u64) -> Result<(), FenceError> {
        let callbacks = {
            let mut s = self.0.state.lock();
            if self.0.signaled.load(Ordering::Relaxed) {
                return Err(FenceError::AlreadySignaled);
            }
            s.timestamp = Some(timestamp_ns);
            // Release: publishes timestamp/error to lock-free readers of the flag.
            self.0.signaled.store(true, Ordering::Release);
            std::mem::take(&mut s.callbacks)
        };
        for (_, cb) in callbacks {
            cb(self);
        }
        Ok(())
    }

    /// Records an error to report once the fence signals (`dma_fence_set_error`).
    ///
    /// Before the signal, [`status`](Self::status) still says [`FenceStatus::Pending`]. On an
    /// already-signaled fence (a kernel WARN) this returns [`FenceError::AlreadySignaled`] and,
    /// unlike the kernel, does not change the stored error. An errno above `MAX_ERRNO` (4095) is
    /// [`FenceError::InvalidArgument`] and is not stored.
    pub fn set_error(&self, e: Errno) -> Result<(), FenceError> {
        if e.raw() > Errno::MAX {
            return Err(FenceError::InvalidArgument("error above MAX_ERRNO"));
        }
        let mut s = self.0.state.lock();
        if self.0.signaled.load(Ordering::Relaxed) {
            return Err(FenceError::AlreadySignaled);
        }
        s.error = Some(e);
        Ok(())
    }

    /// The error stored with [`set_error`](Self::set_error), even before the signal.
    pub fn error(&self) -> Option<Errno> {
        self.0.state.lock().error
    }

    /// When the fence signaled, or `None` while it is pending.
    pub fn timestamp_ns(&self) -> Option<u64> {
        if !self.signaled_flag() {
            return None;
        }
        self.0.state.lock().timestamp
    }

    /// Whether the fence has signaled (`dma_fence_is_signaled`).
    ///
    /// If the flag is not set yet, asks [`FenceOps::signaled`]; if that says done, signals the
    /// fence here (running the callbacks). Never enables signaling (behaviour 14).
    pub fn is_signaled(&self) -> bool {
        if self.signaled_flag() {
            return true;
        }
        if self.0.ops.signaled(self) {
            let _ = self.signal();
            return true;
        }
        false
    }

    /// Pending, signaled or signaled with an error (`dma_fence_get_status`); polls like
    /// [`is_signaled`](Self::is_signaled).
    pub fn status(&self) -> FenceStatus {
        if !self.is_signaled() {
            return FenceStatus::Pending;
        }
        match self.0.state.lock().error {
            Some(e) => FenceStatus::Error(e),
            None => FenceStatus::Signaled,
        }
    }

    /// [`status`](Self::status) as the kernel returns it: 0 pending, 1 signaled, `-errno`.
    pub fn get_status(&self) -> i32 {
        match self.status() {
            FenceStatus::Pending => 0,
            FenceStatus::Signaled => 1,
            FenceStatus::Error(e) => e.to_kernel(),
        }
    }

    /// Calls [`FenceOps::enable_signaling`] at most once, and only while pending
    /// (`dma_fence_enable_sw_signaling`); if the driver answers `false` the fence signals now.
    pub fn enable_sw_signaling(&self) {
        let call = {
            let mut s = self.0.state.lock();
            if self.0.signaled.load(Ordering::Relaxed) || s.enable_signal {
                false
            } else {
                s.enable_signal = true;
                true
            }
        };
        if call && !self.0.ops.enable_signaling(self) {
            let _ = self.signal();
        }
    }

    /// Registers `cb` to run when the fence signals (`dma_fence_add_callback`).
    ///
    /// Enables signaling first (behaviour 15). On a signaled fence the callback is dropped
    /// without running and the answer is [`FenceError::CallbackNotAdded`] (`ENOENT`). The callback
    /// runs on the signalling thread, outside the fence lock; see contract rules 3 and 4.
    pub fn add_callback(
        &self,
        cb: impl FnOnce(&DmaFence) + Send + 'static,
    ) -> Result<CallbackId, FenceError> {
        self.enable_sw_signaling();
        let cb: Callback = Box::new(cb);
        let mut s = self.0.state.lock();
        if self.0.signaled.load(Ordering::Relaxed) {
            drop(s);
            drop(cb); // may drop fences: never under our lock
            return Err(FenceError::CallbackNotAdded);
        }
        let id = s.next_id;
        s.next_id += 1;
        s.callbacks.push((id, cb));
        Ok(CallbackId(id))
    }

    /// Unregisters a pending callback (`dma_fence_remove_callback`): `true` if it was pending and
    /// now never runs; `false` if it has run, is running, or was never added.
    pub fn remove_callback(&self, id: CallbackId) -> bool {
        let removed = {
            let mut s = self.0.state.lock();
            let pos = s.callbacks.iter().position(|(i, _)| *i == id.0);
            pos.map(|p| s.callbacks.remove(p))
        };
        removed.is_some()
    }

    /// Waits for the signal (`dma_fence_wait`): `Ok` once signaled, or
    /// [`FenceError::Interrupted`] (`ERESTARTSYS`) if `intr` is raised.
    pub fn wait(&self, intr: Option<&Interrupt>) -> Result<(), FenceError> {
        self.wait_timeout(intr, None).map(|_| ())
    }

    /// Whether this fence is later on its timeline than `other` (`dma_fence_is_later`).
    ///
    /// Different contexts (a kernel WARN) give `false`.
    pub fn is_later(&self, other: &DmaFence) -> bool {
        self.context() == other.context()
            && seqno_is_later(self.seqno(), other.seqno(), self.0.seqno64)
    }

    /// `is_later || same seqno`, on the same context (`dma_fence_is_later_or_same`).
    pub fn is_later_or_same(&self, other: &DmaFence) -> bool {
        self.ptr_eq(other)
            || (self.context() == other.context()
                && (self.seqno() == other.seqno() || self.is_later(other)))
    }

    /// The later of two fences of one context, or `None` if that one has already signaled or the
    /// contexts differ (`dma_fence_later`, behaviour 6).
    pub fn later(a: &DmaFence, b: &DmaFence) -> Option<DmaFence> {
        if a.context() != b.context() {
            return None;
        }
        let later = if a.is_later(b) { a } else { b };
        (!later.is_signaled()).then(|| later.clone())
    }

    /// Whether both handles refer to the same fence.
    pub fn ptr_eq(&self, other: &DmaFence) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The driver's name, signaled or not: Linux 6.12, the kernel the conformance suites run
    /// on, still names a signaled fence's driver (sync-file info, debugfs `bufinfo`); the
    /// `"detached-driver"` of behaviour 28 is 6.16+.
    pub fn driver_name(&self) -> String {
        self.0.ops.driver_name().to_owned()
    }

    /// The timeline's name, signaled or not (as [`driver_name`](Self::driver_name): 6.12, not
    /// the 6.16+ `"signaled-timeline"`).
    pub fn timeline_name(&self) -> String {
        self.0.ops.timeline_name().to_owned()
    }

    /// Passes a deadline hint to the driver, only while pending (`dma_fence_set_deadline`).
    pub fn set_deadline(&self, deadline_ns: u64) {
        if !self.signaled_flag() {
            self.0.ops.set_deadline(self, deadline_ns);
        }
    }

    /// The shared, always-signaled stub fence: context 0, seqno 0 (`dma_fence_get_stub`).
    pub fn stub() -> DmaFence {
        #[cfg(not(loom))]
        {
            static STUB: std::sync::OnceLock<DmaFence> = std::sync::OnceLock::new();
            STUB.get_or_init(|| DmaFence::private_stub(clock::Clock::now_ns(clock::unbooted())))
                .clone()
        }
        #[cfg(loom)]
        {
            // loom objects cannot live in statics across model runs.
            DmaFence::private_stub(clock::Clock::now_ns(clock::unbooted()))
        }
    }

    /// A new signaled fence with the given timestamp, context 0, seqno 0
    /// (`dma_fence_allocate_private_stub`).
    pub fn private_stub(timestamp_ns: u64) -> DmaFence {
        let f = DmaFence::new(ops::stub_ops(), 0, 0);
        f.0.state.lock().enable_signal = true;
        let _ = f.signal_timestamp(timestamp_ns);
        f
    }

    /// This fence as an array, if it is one (`to_dma_fence_array`).
    pub fn as_array(&self) -> Option<&DmaFenceArray> {
        match &self.0.kind {
            Kind::Array(a) => Some(a),
            _ => None,
        }
    }

    /// This fence as a chain node, if it is one (`to_dma_fence_chain`).
    pub fn as_chain(&self) -> Option<&DmaFenceChain> {
        match &self.0.kind {
            Kind::Chain(c) => Some(c),
            _ => None,
        }
    }

    /// Whether this is an array or a chain (`dma_fence_is_container`).
    pub fn is_container(&self) -> bool {
        !matches!(self.0.kind, Kind::Plain)
    }

    /// Whether this handle is the only reference to the fence.
    ///
    /// `true` is exact: no other handle exists, so none can appear concurrently. `false` may be
    /// stale if another handle is being dropped right now.
    pub(crate) fn is_unique(&self) -> bool {
        self.0.refs.load(Ordering::Acquire) == 1
    }
}

impl Clone for DmaFence {
    fn clone(&self) -> Self {
        // Relaxed, as in `Arc::clone`: a new handle can only be made from an existing one.
        // INVARIANT: one more handle, one more ref.
        self.0.refs.fetch_add(1, Ordering::Relaxed);
        DmaFence(self.0.clone())
    }
}

impl Drop for DmaFence {
    fn drop(&mut self) {
        // AcqRel: the last dropper sees every other handle's effects (like `Arc`'s drop). The
        // read-modify-write makes exactly one dropper see 1.
        if self.0.refs.fetch_sub(1, Ordering::AcqRel) != 1 || self.signaled_flag() {
            return;
        }
        let pending = !self.0.state.lock().callbacks.is_empty();
        if pending {
            // Behaviour 25: "released with pending signals" -> EDEADLK, callbacks still run.
            let _ = self.set_error(Errno::EDEADLK);
            let _ = self.signal();
        }
    }
}

impl fmt::Debug for DmaFence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaFence")
            .field("context", &self.context())
            .field("seqno", &self.seqno())
            .field("signaled", &self.signaled_flag())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
