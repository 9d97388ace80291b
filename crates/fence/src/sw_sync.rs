//! sw_sync: a software timeline whose fences tests and scenarios signal by hand.
//!
//! C side: `drivers/dma-buf/sw_sync.c`, `drivers/dma-buf/sync_debug.h` (the debugfs file
//! `<debugfs>/sync/sw_sync`).
//!
//! # The concept
//!
//! Real fences are signaled by hardware; to test code that waits on fences you want fences you
//! control. A sw_sync timeline is a 32-bit counter, starting at 0. [`create_fence`] gives a
//! fence ("sync point") that signals once the counter reaches its value; [`inc`] moves the counter
//! forward and signals every point it passes, in value order. In Linux each `open()` of the
//! debugfs file is a timeline and closing the fd ends it; here a [`SwSyncTimeline`] value is the
//! open file and dropping it is the close.
//!
//! # Rules (kernel behaviours 57-58)
//!
//! 1. Every timeline has a context of its own ([`crate::context_alloc`]); its fences have that
//!    context and their value as seqno, compared as 32-bit numbers with wrap-around.
//! 2. A point is signaled when `(value - timeline_value) as i32 <= 0`: asking
//!    [`DmaFence::is_signaled`] of a fence the counter has passed signals it, even before
//!    [`inc`] got to it. A point created at or behind the counter is signaled at once.
//! 3. Creating a point with the value of a still-pending point returns that same fence.
//! 4. [`inc`]`(n)` adds `n` (wrapping) and signals the passed points in ascending value order.
//!    An `n` above `i32::MAX` is applied in chunks of at most `i32::MAX`, so the wrap-around
//!    compare never sees a jump of half the counter or more.
//! 5. Dropping (closing) the timeline signals every pending point with error `ENOENT`. Fences
//!    outlive the timeline handle; their names stay valid.
//! 6. GET_DEADLINE: `deadline_ns` or `pad` not zero on input is `EINVAL`; a fence that is not a
//!    point of this timeline is `EINVAL`; a point without deadline is `ENOENT`; otherwise the
//!    earliest deadline ever set on it (deadlines only move earlier).
//!
//! # Locking
//!
//! One mutex per timeline protects the counter, the pending points and the deadlines. Fences are
//! signaled after it is dropped, so their callbacks may call back into the timeline (create a
//! point, increment it). Consequence: when two threads increment at once, one may return before
//! the points passed by the other have run their callbacks; [`DmaFence::is_signaled`] and
//! `status` are still exact at every moment, because they read the counter (rule 2).
//!
//! # Example
//!
//! ```
//! use fence::sw_sync::SwSyncTimeline;
//! use fence::FenceStatus;
//! use uapi::Errno;
//!
//! let tl = SwSyncTimeline::new("camera").unwrap();
//! let f1 = tl.create_fence(1);
//! let f3 = tl.create_fence(3);
//! tl.inc(2);
//! assert!(f1.is_signaled() && !f3.is_signaled());
//! drop(tl); // close: pending points signal with ENOENT
//! assert_eq!(f3.status(), FenceStatus::Error(Errno::ENOENT));
//! ```
//!
//! [`create_fence`]: SwSyncTimeline::create_fence
//! [`inc`]: SwSyncTimeline::inc

use crate::fence::{context_alloc, DmaFence, FenceError, FenceOps};
use crate::sync::{Arc, Mutex};
use crate::sync_file::{cut_name, SyncFile, SYNC_NAME_LEN};
use clock::{Clock, ClockRef};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use uapi::{AsErrno, Errno};

/// The driver name of every sw_sync fence.
pub const SW_SYNC_DRIVER_NAME: &str = "sw_sync";

/// Why a sw_sync operation failed; [`AsErrno::errno`] gives the kernel's errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwSyncError {
    /// An ioctl field that must be zero on input was not; the string names it (`EINVAL`).
    #[error("sw_sync ioctl: `{0}` must be zero")]
    NonZero(&'static str),
    /// GET_DEADLINE on a fence that is not a point of this timeline, or on an fd that is not a
    /// sync file (`EINVAL`).
    #[error("not a sw_sync fence of this timeline")]
    NotSwSyncFence,
    /// GET_DEADLINE on a point nobody set a deadline on (`ENOENT`).
    #[error("no deadline set on this sw_sync fence")]
    NoDeadline,
    /// The timeline could not be created: no fence context left (`ENOMEM`, as any failure of
    /// `sync_timeline_create`).
    #[error("cannot create sw_sync timeline: {0}")]
    NoContext(FenceError),
}

impl AsErrno for SwSyncError {
    fn errno(&self) -> Errno {
        match self {
            SwSyncError::NonZero(_) | SwSyncError::NotSwSyncFence => Errno::EINVAL,
            SwSyncError::NoDeadline => Errno::ENOENT,
            SwSyncError::NoContext(_) => Errno::ENOMEM,
        }
    }
}

/// The state of a timeline (`struct sync_timeline` behind `obj->lock`).
struct State {
    /// The counter (`obj->value`).
    value: u32,
    /// Sum of every increment ever applied, unwrapped: pending points are keyed by the `passed`
    /// at which they signal, which keeps them in signalling order across counter wrap-around.
    passed: u128,
    /// Pending points by signalling key (`pt_tree` + `pt_list`). Holds a reference to each.
    pending: BTreeMap<u128, DmaFence>,
    /// Every live point of this timeline, by the address of its ops, with its deadline.
    /// An entry is removed when the point's last reference goes (`timeline_fence_release`).
    points: HashMap<usize, Option<u64>>,
}

/// The shared part of a timeline: kept alive by the handle and by every point.
struct Timeline {
    context: u64,
    name: String,
    state: Mutex<State>,
    /// The machine clock its points are stamped and timed on; `None` is [`clock::unbooted`].
    clock: Option<ClockRef>,
}

/// The ops of one point (`struct sync_pt` around its fence). One per fence, so its address
/// identifies the fence as a point of its timeline.
struct SwSyncPt {
    timeline: Arc<Timeline>,
}

/// The address that identifies a point: its ops' data pointer.
fn ops_key(ops: &std::sync::Arc<dyn FenceOps>) -> usize {
    std::sync::Arc::as_ptr(ops) as *const () as usize
}

impl FenceOps for SwSyncPt {
    fn driver_name(&self) -> &str {
        SW_SYNC_DRIVER_NAME
    }

    fn timeline_name(&self) -> &str {
        &self.timeline.name
    }

    fn clock(&self) -> &dyn Clock {
        match &self.timeline.clock {
            Some(c) => &**c,
            None => clock::unbooted(),
        }
    }

    /// Rule 2: passed when the 32-bit distance to the counter is not positive.
    fn signaled(&self, fence: &DmaFence) -> bool {
        let value = self.timeline.state.lock().value;
        (fence.seqno() as u32).wrapping_sub(value) as i32 <= 0
    }

    /// Keeps the earliest deadline (`timeline_fence_set_deadline`).
    fn set_deadline(&self, _fence: &DmaFence, deadline_ns: u64) {
        let key = self as *const SwSyncPt as usize;
        let mut s = self.timeline.state.lock();
        if let Some(d) = s.points.get_mut(&key) {
            *d = Some(d.map_or(deadline_ns, |old| old.min(deadline_ns)));
        }
    }
}

impl Drop for SwSyncPt {
    fn drop(&mut self) {
        let key = self as *const SwSyncPt as usize;
        self.timeline.state.lock().points.remove(&key);
    }
}

/// A software timeline: the open `<debugfs>/sync/sw_sync` file.
///
/// Not `Clone`: one value is one open file; share it with `Arc` (every method takes `&self`).
/// Dropping it is closing the file (rule 5).
pub struct SwSyncTimeline {
    timeline: Arc<Timeline>,
}

impl SwSyncTimeline {
    /// Opens a new timeline named `name` (cut to 31 bytes; Linux uses the opening task's name),
    /// on a new fence context, counter at 0.
    pub fn new(name: &str) -> Result<SwSyncTimeline, SwSyncError> {
        let context = context_alloc(1).map_err(SwSyncError::NoContext)?;
        Ok(SwSyncTimeline::build(name, context, None))
    }

    /// Like [`new`](Self::new), for a machine: on `context`, a fence context the machine
    /// allocated for it, with its points stamped with `clock` when they signal and their waits
    /// timed on it.
    pub fn on(clock: ClockRef, context: u64, name: &str) -> SwSyncTimeline {
        SwSyncTimeline::build(name, context, Some(clock))
    }

    fn build(name: &str, context: u64, clock: Option<ClockRef>) -> SwSyncTimeline {
        let state = State {
            value: 0,
            passed: 0,
            pending: BTreeMap::new(),
            points: HashMap::new(),
        };
        let timeline = Arc::new(Timeline {
            context,
            name: cut_name(name),
            state: Mutex::new(state),
            clock,
        });
        SwSyncTimeline { timeline }
    }

    /// The fence context of this timeline.
    pub fn context(&self) -> u64 {
        self.timeline.context
    }

    /// The timeline's name, which its fences report as their timeline name.
    pub fn name(&self) -> &str {
        &self.timeline.name
    }

    /// The counter (`obj->value`).
    pub fn value(&self) -> u32 {
        self.timeline.state.lock().value
    }

    /// How many points are waiting for the counter.
    pub fn pending_count(&self) -> usize {
        self.timeline.state.lock().pending.len()
    }

    /// A new point, registered in `s.points`; the caller holds the state lock.
    fn new_point(&self, s: &mut State, value: u32) -> DmaFence {
        let pt = std::sync::Arc::new(SwSyncPt {
            timeline: self.timeline.clone(),
        });
        let ops: std::sync::Arc<dyn FenceOps> = pt;
        s.points.insert(ops_key(&ops), None);
        DmaFence::new(ops, self.timeline.context, u64::from(value))
    }

    /// A fence that signals once the counter reaches `value` (`sync_pt_create`, rules 1-3).
    ///
    /// ```
    /// use fence::sw_sync::SwSyncTimeline;
    /// let tl = SwSyncTimeline::new("t").unwrap();
    /// let a = tl.create_fence(5);
    /// assert!(tl.create_fence(5).ptr_eq(&a)); // a pending point is reused
    /// assert!(tl.create_fence(0).is_signaled()); // at or behind the counter: signaled
    /// ```
    pub fn create_fence(&self, value: u32) -> DmaFence {
        let passed_already = {
            let mut s = self.timeline.state.lock();
            let distance = value.wrapping_sub(s.value) as i32;
            if distance > 0 {
                let key = s.passed + distance as u128;
                if let Some(existing) = s.pending.get(&key) {
                    return existing.clone();
                }
                let fence = self.new_point(&mut s, value);
                s.pending.insert(key, fence.clone());
                return fence;
            }
            self.new_point(&mut s, value)
        };
        // Outside the lock: is_signaled asks our `signaled`, which takes it, then signals.
        passed_already.is_signaled();
        passed_already
    }

    /// [`create_fence`](Self::create_fence) wrapped in a new sync file (SW_SYNC_IOC_CREATE_FENCE).
    pub fn create_sync_file(&self, value: u32) -> SyncFile {
        SyncFile::new(&self.create_fence(value))
    }

    /// SW_SYNC_IOC_CREATE_FENCE on an argument copied from user space: like the kernel, the
    /// name is ignored. The caller installs the file in a new `O_CLOEXEC` fd and writes that into
    /// `data.fence`.
    pub fn ioctl_create_fence(&self, data: &SwSyncCreateFenceData) -> SyncFile {
        self.create_sync_file(data.value)
    }

    /// Advances the counter by `n` and signals every passed point (SW_SYNC_IOC_INC, rule 4).
    ///
    /// ```
    /// use fence::sw_sync::SwSyncTimeline;
    /// let tl = SwSyncTimeline::new("t").unwrap();
    /// let f = tl.create_fence(3);
    /// tl.inc(2);
    /// assert!(!f.is_signaled());
    /// tl.inc(1);
    /// assert!(f.is_signaled());
    /// assert_eq!(tl.value(), 3);
    /// ```
    pub fn inc(&self, n: u32) {
        const CHUNK: u32 = i32::MAX as u32;
        let mut left = n;
        while left > CHUNK {
            self.advance(CHUNK);
            left -= CHUNK;
        }
        self.advance(left);
    }

    /// One step of [`inc`](Self::inc) (`sync_timeline_signal`); `by <= i32::MAX`.
    fn advance(&self, by: u32) {
        let passed: Vec<DmaFence> = {
            let mut s = self.timeline.state.lock();
            s.value = s.value.wrapping_add(by);
            s.passed += u128::from(by);
            let first_pending = s.passed + 1;
            let still_pending = s.pending.split_off(&first_pending);
            std::mem::replace(&mut s.pending, still_pending)
                .into_values()
                .collect()
        };
        for fence in &passed {
            // Already signaled if someone polled it after the counter moved: fine.
            let _ = fence.signal();
        }
    }

    /// The earliest deadline set on `fence`, a point of this timeline (rule 6).
    ///
    /// ```
    /// use fence::sw_sync::{SwSyncError, SwSyncTimeline};
    /// let tl = SwSyncTimeline::new("t").unwrap();
    /// let f = tl.create_fence(1);
    /// assert_eq!(tl.get_deadline(&f), Err(SwSyncError::NoDeadline));
    /// f.set_deadline(2_000);
    /// f.set_deadline(1_000);
    /// f.set_deadline(3_000);
    /// assert_eq!(tl.get_deadline(&f), Ok(1_000));
    /// ```
    pub fn get_deadline(&self, fence: &DmaFence) -> Result<u64, SwSyncError> {
        if fence.context() != self.timeline.context {
            return Err(SwSyncError::NotSwSyncFence);
        }
        let key = ops_key(fence.ops());
        match self.timeline.state.lock().points.get(&key) {
            None => Err(SwSyncError::NotSwSyncFence),
            Some(None) => Err(SwSyncError::NoDeadline),
            Some(Some(d)) => Ok(*d),
        }
    }

    /// SW_SYNC_GET_DEADLINE on an argument copied from user space (rule 6). `fence` is the fence
    /// of the sync file behind `data.fence_fd`, `None` if that fd is not a sync file. On success
    /// writes `data.deadline_ns`.
    pub fn ioctl_get_deadline(
        &self,
        data: &mut SwSyncGetDeadline,
        fence: Option<&DmaFence>,
    ) -> Result<(), SwSyncError> {
        if data.deadline_ns != 0 {
            return Err(SwSyncError::NonZero("deadline_ns"));
        }
        if data.pad != 0 {
            return Err(SwSyncError::NonZero("pad"));
        }
        let fence = fence.ok_or(SwSyncError::NotSwSyncFence)?;
        data.deadline_ns = self.get_deadline(fence)?;
        Ok(())
    }

    /// Closes the timeline; the same as dropping it (rule 5).
    pub fn close(self) {}
}

impl Drop for SwSyncTimeline {
    /// `sw_sync_debugfs_release`: every pending point signals with `ENOENT`, in value order.
    fn drop(&mut self) {
        let pending: Vec<DmaFence> = {
            let mut s = self.timeline.state.lock();
            std::mem::take(&mut s.pending).into_values().collect()
        };
        for fence in &pending {
            // Both fail only if someone signaled the fence by hand: nothing left to do then.
            let _ = fence.set_error(Errno::ENOENT);
            let _ = fence.signal();
        }
    }
}

impl fmt::Debug for SwSyncTimeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.timeline.state.lock();
        f.debug_struct("SwSyncTimeline")
            .field("name", &self.timeline.name)
            .field("context", &self.timeline.context)
            .field("value", &s.value)
            .field("pending", &s.pending.len())
            .finish()
    }
}

/// The argument of SW_SYNC_IOC_CREATE_FENCE (`struct sw_sync_create_fence_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwSyncCreateFenceData {
    /// In: the counter value the fence waits for.
    pub value: u32,
    /// In: a name for the point; ignored, as in Linux.
    pub name: [u8; SYNC_NAME_LEN],
    /// Out: the fd of the new sync file.
    pub fence: i32,
}

/// The argument of SW_SYNC_GET_DEADLINE (`struct sw_sync_get_deadline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwSyncGetDeadline {
    /// In: must be 0. Out: the earliest deadline.
    pub deadline_ns: u64,
    /// In: must be 0.
    pub pad: u32,
    /// In: a sync file fd holding the sw_sync fence.
    pub fence_fd: i32,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_linux_errnos() {
        assert_eq!(SwSyncError::NonZero("pad").errno(), Errno::EINVAL);
        assert_eq!(SwSyncError::NotSwSyncFence.errno(), Errno::EINVAL);
        assert_eq!(SwSyncError::NoDeadline.errno(), Errno::ENOENT);
        let e = SwSyncError::NoContext(FenceError::InvalidArgument("x"));
        assert_eq!(e.errno(), Errno::ENOMEM);
    }

    #[test]
    fn a_dropped_point_leaves_the_registry() {
        let tl = SwSyncTimeline::new("t").unwrap();
        let f = tl.create_fence(0); // signaled, not held by the timeline
        assert_eq!(tl.timeline.state.lock().points.len(), 1);
        drop(f);
        assert!(tl.timeline.state.lock().points.is_empty());
    }

    #[test]
    fn keys_stay_ordered_across_counter_wrap() {
        let tl = SwSyncTimeline::new("t").unwrap();
        tl.inc(u32::MAX - 1); // counter 0xFFFF_FFFE
        let a = tl.create_fence(u32::MAX);
        let b = tl.create_fence(1); // after the wrap: later than a
        tl.inc(1);
        assert!(a.is_signaled() && !b.is_signaled());
        tl.inc(2);
        assert!(b.is_signaled());
        assert_eq!(tl.value(), 1);
    }
}
