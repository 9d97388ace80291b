//! Fence arrays: one fence that signals when all (or any) of a set of fences has signaled.
//!
//! C side: `drivers/dma-buf/dma-fence-array.c`, `include/linux/dma-fence-array.h`.
//!
//! A [`DmaFenceArray`] is a [`DmaFence`] whose ops watch a fixed list of member fences. It is
//! what `sync_file` merge and [`merge`](crate::unwrap::merge) return when several timelines have
//! to be waited on together.
//!
//! # Rules
//!
//! 1. Members must not be containers (arrays or chains): creating one is `EINVAL` (a kernel WARN),
//!    because nesting makes every operation recursive. Flatten with
//!    [`unwrap_iter`](crate::unwrap::unwrap_iter) first.
//! 2. The array signals when its last pending member signals (or the first, with
//!    `signal_on_any`). The signal happens on the member's signalling thread, from its callback
//!    (the kernel defers it through `irq_work`; our callbacks already run outside every lock).
//! 3. [`DmaFence::is_signaled`] on the array also polls the members, so an array is seen as done
//!    even if nobody enabled signaling (behaviour 30).
//! 4. The first member error recorded becomes the array's error (behaviour 31).
//! 5. While signaling is enabled, each pending member's callback holds a reference to the array
//!    (as in the kernel); the array is freed once the members have signaled.
//!
//! ```
//! use fence::{context_alloc, DmaFenceArray, SimpleFenceOps};
//! let ctx = context_alloc(3).unwrap();
//! let a = SimpleFenceOps::create("d", "t", ctx, 1);
//! let b = SimpleFenceOps::create("d", "t", ctx + 1, 1);
//! let arr = DmaFenceArray::create(vec![a.clone(), b.clone()], ctx + 2, 1, false).unwrap();
//! a.signal().unwrap();
//! assert!(!arr.is_signaled());
//! b.signal().unwrap();
//! assert!(arr.is_signaled());
//! assert_eq!(arr.as_array().unwrap().fences().len(), 2);
//! ```

use crate::fence::{DmaFence, FenceError, FenceOps, Kind};
use crate::sync::{AtomicUsize, Mutex, Ordering};
use std::sync::Arc;
use uapi::Errno;

/// The container part of an array fence (`struct dma_fence_array`); reach it with
/// [`DmaFence::as_array`].
pub struct DmaFenceArray {
    fences: Vec<DmaFence>,
    signal_on_any: bool,
    /// Members still to signal before the array does (`num_pending`); counts down to 0.
    pending: AtomicUsize,
    /// The first member error seen (the kernel's `PENDING_ERROR` cmpxchg).
    first_error: Mutex<Option<Errno>>,
}

struct ArrayOps;

impl FenceOps for ArrayOps {
    fn driver_name(&self) -> &str {
        "dma_fence_array"
    }

    fn timeline_name(&self) -> &str {
        "unbound"
    }

    fn enable_signaling(&self, fence: &DmaFence) -> bool {
        let Some(array) = fence.as_array() else {
            return true;
        };
        for member in &array.fences {
            let me = fence.clone();
            let added = member.add_callback(move |m| {
                if let Some(a) = me.as_array() {
                    if a.member_done(m) {
                        a.finish(&me);
                    }
                }
            });
            if added.is_err() && array.member_done(member) {
                array.apply_error(fence);
                return false;
            }
        }
        true
    }

    fn signaled(&self, fence: &DmaFence) -> bool {
        let Some(array) = fence.as_array() else {
            return false;
        };
        if array.pending.load(Ordering::Acquire) == 0 {
            array.apply_error(fence);
            return true;
        }
        let done = if array.signal_on_any {
            array.fences.iter().any(DmaFence::is_signaled)
        } else {
            array.fences.iter().all(DmaFence::is_signaled)
        };
        if done {
            for m in array.fences.iter().filter(|m| m.is_signaled()) {
                array.record_error(m);
            }
            array.apply_error(fence);
        }
        done
    }
}

impl DmaFenceArray {
    /// Creates an array fence over `fences` (`dma_fence_array_create`).
    ///
    /// Takes the member references. `seqno` compares as 32-bit. An empty list or a container
    /// member is [`FenceError::InvalidArgument`] (`EINVAL`; a kernel WARN).
    pub fn create(
        fences: Vec<DmaFence>,
        context: u64,
        seqno: u64,
        signal_on_any: bool,
    ) -> Result<DmaFence, FenceError> {
        if fences.is_empty() {
            return Err(FenceError::InvalidArgument("fence array with no fences"));
        }
        if fences.iter().any(DmaFence::is_container) {
            return Err(FenceError::InvalidArgument(
                "fence array containing a container",
            ));
        }
        let pending = if signal_on_any { 1 } else { fences.len() };
        let array = DmaFenceArray {
            fences,
            signal_on_any,
            pending: AtomicUsize::new(pending),
            first_error: Mutex::new(None),
        };
        Ok(DmaFence::with_kind(
            Arc::new(ArrayOps),
            context,
            seqno,
            false,
            Kind::Array(array),
        ))
    }

    /// The member fences, in creation order.
    pub fn fences(&self) -> &[DmaFence] {
        &self.fences
    }

    /// Whether the array signals on the first member rather than the last.
    pub fn signal_on_any(&self) -> bool {
        self.signal_on_any
    }

    /// Member `index`, or `None` past the end (`dma_fence_array_next`).
    pub fn get(&self, index: usize) -> Option<&DmaFence> {
        self.fences.get(index)
    }

    fn record_error(&self, member: &DmaFence) {
        if let Some(e) = member.error() {
            let mut first = self.first_error.lock();
            if first.is_none() {
                *first = Some(e);
            }
        }
    }

    /// A member has signaled: record its error, count it; `true` if that made the array done.
    fn member_done(&self, member: &DmaFence) -> bool {
        self.record_error(member);
        // AcqRel: the thread that brings the count to zero sees every earlier member's error.
        let prev = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        prev == Ok(1)
    }

    fn apply_error(&self, fence: &DmaFence) {
        let e = *self.first_error.lock();
        if let Some(e) = e {
            let _ = fence.set_error(e);
        }
    }

    fn finish(&self, fence: &DmaFence) {
        self.apply_error(fence);
        let _ = fence.signal();
    }
}

impl DmaFence {
    /// Whether this fence, or every member if it is an array, is on `context`
    /// (`dma_fence_match_context`).
    pub fn match_context(&self, context: u64) -> bool {
        match self.as_array() {
            Some(a) => a.fences.iter().all(|f| f.context() == context),
            None => self.context() == context,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{context_alloc, FenceStatus, SimpleFenceOps};

    fn f(ctx: u64, seqno: u64) -> DmaFence {
        SimpleFenceOps::create("test", "test", ctx, seqno)
    }

    #[test]
    fn empty_or_nested_array_is_einval() {
        assert!(DmaFenceArray::create(vec![], 1, 1, false).is_err());
        let inner = DmaFenceArray::create(vec![f(1, 1)], 2, 1, false).unwrap();
        let e = DmaFenceArray::create(vec![inner], 3, 1, false).unwrap_err();
        assert_eq!(uapi::AsErrno::errno(&e), Errno::EINVAL);
    }

    #[test]
    fn signals_on_all_with_callbacks_enabled() {
        let (a, b) = (f(1, 1), f(2, 1));
        let arr = DmaFenceArray::create(vec![a.clone(), b.clone()], 3, 1, false).unwrap();
        arr.enable_sw_signaling();
        a.signal().unwrap();
        assert_eq!(arr.status(), FenceStatus::Pending);
        b.signal().unwrap();
        assert_eq!(arr.status(), FenceStatus::Signaled);
    }

    #[test]
    fn signals_on_any() {
        let (a, b) = (f(1, 1), f(2, 1));
        let arr = DmaFenceArray::create(vec![a.clone(), b.clone()], 3, 1, true).unwrap();
        arr.enable_sw_signaling();
        b.signal().unwrap();
        assert!(arr.is_signaled());
        a.signal().unwrap();
    }

    #[test]
    fn polled_without_enable_signaling() {
        let a = f(1, 1);
        let arr = DmaFenceArray::create(vec![a.clone()], 3, 1, false).unwrap();
        a.signal().unwrap();
        assert!(arr.is_signaled());
    }

    #[test]
    fn first_member_error_wins() {
        let (a, b, c) = (f(1, 1), f(2, 1), f(3, 1));
        let arr =
            DmaFenceArray::create(vec![a.clone(), b.clone(), c.clone()], 4, 1, false).unwrap();
        arr.enable_sw_signaling();
        a.signal().unwrap();
        b.set_error(Errno::EIO).unwrap();
        b.signal().unwrap();
        c.set_error(Errno::ENOMEM).unwrap();
        c.signal().unwrap();
        assert_eq!(arr.status(), FenceStatus::Error(Errno::EIO));
    }

    #[test]
    fn already_signaled_members_signal_at_enable() {
        let a = f(1, 1);
        a.set_error(Errno::EIO).unwrap();
        a.signal().unwrap();
        let arr = DmaFenceArray::create(vec![a], 4, 1, false).unwrap();
        arr.enable_sw_signaling();
        assert_eq!(arr.status(), FenceStatus::Error(Errno::EIO));
    }

    #[test]
    fn match_context_needs_every_member() {
        let ctx = context_alloc(2).unwrap();
        let arr = DmaFenceArray::create(vec![f(ctx, 1), f(ctx, 2)], 9, 1, false).unwrap();
        assert!(arr.match_context(ctx));
        let mixed = DmaFenceArray::create(vec![f(ctx, 1), f(ctx + 1, 2)], 9, 1, false).unwrap();
        assert!(!mixed.match_context(ctx));
        assert!(f(ctx, 1).match_context(ctx));
    }
}
