//! Unwrapping containers into leaf fences, and merging fences into the smallest equivalent one.
//!
//! C side: `drivers/dma-buf/dma-fence-unwrap.c`, `include/linux/dma-fence-unwrap.h`.
//!
//! Containers nest at most two deep: a chain node may contain an array, an array contains only
//! leaves. [`unwrap_iter`] flattens that into the leaf fences (behaviour 35): chain nodes from
//! newest to oldest (skipping nodes a walk unlinks because they signaled), each contained array
//! in index order. [`merge`] (behaviour 36) builds one fence that signals when all of its inputs
//! have: it unwraps every input, drops signaled leaves, keeps the latest leaf per context, and
//! returns a single leaf, a new array sorted by context, or a signaled private stub.
//!
//! ```
//! use fence::{context_alloc, merge, unwrap_iter, SimpleFenceOps};
//! let ctx = context_alloc(2).unwrap();
//! let old = SimpleFenceOps::create("d", "t", ctx, 1);
//! let new = SimpleFenceOps::create("d", "t", ctx, 2);
//! let other = SimpleFenceOps::create("d", "t", ctx + 1, 7);
//! let m = merge(&[old, new.clone(), other.clone()]).unwrap();
//! let leaves: Vec<_> = unwrap_iter(&m).collect();
//! assert_eq!(leaves.len(), 2);
//! assert!(leaves[0].ptr_eq(&new) && leaves[1].ptr_eq(&other));
//! ```

use crate::array::DmaFenceArray;
use crate::chain::{contained, DmaFenceChain};
use crate::fence::{context_alloc, DmaFence, FenceError};
use std::cmp::Ordering;

/// Iterator over the leaf fences of a fence (`dma_fence_unwrap_for_each`); see [`unwrap_iter`].
pub struct DmaFenceUnwrap {
    /// The chain node being visited (`cursor->chain`).
    chain: Option<DmaFence>,
    /// Index of the next member of the node's contained array.
    index: usize,
}

/// Iterates over the leaf fences of `head` (behaviour 35). A plain fence yields itself once.
pub fn unwrap_iter(head: &DmaFence) -> DmaFenceUnwrap {
    DmaFenceUnwrap {
        chain: Some(head.clone()),
        index: 0,
    }
}

impl Iterator for DmaFenceUnwrap {
    type Item = DmaFence;

    fn next(&mut self) -> Option<DmaFence> {
        loop {
            let node = self.chain.as_ref()?;
            let inner = contained(node);
            let leaf = match inner.as_array() {
                Some(a) => a.get(self.index).cloned(),
                None => (self.index == 0).then(|| inner.clone()),
            };
            if let Some(leaf) = leaf {
                self.index += 1;
                return Some(leaf);
            }
            let prev = DmaFenceChain::walk(node);
            self.chain = prev;
            self.index = 0;
        }
    }
}

impl DmaFence {
    /// The leaf fences of this fence; see [`unwrap_iter`].
    pub fn unwrap_iter(&self) -> DmaFenceUnwrap {
        unwrap_iter(self)
    }
}

/// Context ascending; within a context the later seqno first (the kernel's dedup sort).
fn by_context_then_latest(a: &DmaFence, b: &DmaFence) -> Ordering {
    a.context().cmp(&b.context()).then_with(|| {
        if a.is_later(b) {
            Ordering::Less
        } else if b.is_later(a) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    })
}

/// Merges `fences` into one fence that signals when all of them have (`dma_fence_unwrap_merge`,
/// behaviour 36).
///
/// Every input is unwrapped; signaled leaves are dropped. No leaf left: a new signaled
/// [`DmaFence::private_stub`] stamped with the latest leaf timestamp (0 if none). One distinct
/// leaf left: that fence itself. Otherwise a new [`DmaFenceArray`] on a new context, seqno 1,
/// whose members are sorted by context with only the latest seqno of each context kept.
/// Fails only if no context can be allocated.
pub fn merge(fences: &[DmaFence]) -> Result<DmaFence, FenceError> {
    let mut timestamp = 0u64;
    let mut pending = Vec::new();
    for leaf in fences.iter().flat_map(unwrap_iter) {
        if leaf.is_signaled() {
            timestamp = timestamp.max(leaf.timestamp_ns().unwrap_or(0));
        } else {
            pending.push(leaf);
        }
    }
    match pending.len() {
        0 => return Ok(DmaFence::private_stub(timestamp)),
        1 => return Ok(pending.remove(0)),
        _ => {}
    }
    pending.sort_by(by_context_then_latest);
    pending.dedup_by(|later, kept| later.context() == kept.context());
    if pending.len() == 1 {
        return Ok(pending.remove(0));
    }
    DmaFenceArray::create(pending, context_alloc(1)?, 1, false)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::SimpleFenceOps;

    fn f(ctx: u64, seqno: u64) -> DmaFence {
        SimpleFenceOps::create("test", "test", ctx, seqno)
    }

    #[test]
    fn plain_fence_yields_itself_once() {
        let a = f(1, 1);
        let v: Vec<_> = unwrap_iter(&a).collect();
        assert_eq!(v.len(), 1);
        assert!(v[0].ptr_eq(&a));
    }

    #[test]
    fn merge_of_nothing_is_a_signaled_stub() {
        let m = merge(&[]).unwrap();
        assert!(m.is_signaled());
        assert_eq!(m.timestamp_ns(), Some(0));
    }

    #[test]
    fn merge_of_signaled_keeps_latest_timestamp() {
        let (a, b) = (f(1, 1), f(2, 1));
        a.signal_timestamp(100).unwrap();
        b.signal_timestamp(300).unwrap();
        let m = merge(&[a.clone(), b.clone()]).unwrap();
        assert!(m.is_signaled() && !m.ptr_eq(&a) && !m.ptr_eq(&b));
        assert_eq!(m.timestamp_ns(), Some(300));
        assert_eq!((m.context(), m.seqno()), (0, 0));
    }

    #[test]
    fn merge_same_context_keeps_latest_even_wrapped() {
        let (a, b) = (f(1, 0xFFFF_FFFF), f(1, 1)); // 1 is later than 0xFFFFFFFF (32-bit)
        let m = merge(&[a, b.clone()]).unwrap();
        assert!(m.ptr_eq(&b));
    }
}
