//! Fence chains: a timeline of fences with 64-bit points, as used by timeline syncobjs.
//!
//! C side: `drivers/dma-buf/dma-fence-chain.c`, `include/linux/dma-fence-chain.h`.
//!
//! A chain node is a [`DmaFence`] that wraps one *contained* fence at a 64-bit seqno and links
//! to the previous node. The node counts as signaled only when its contained fence and those of
//! every earlier node have signaled, so waiting on the newest node waits for the whole timeline
//! up to it. [`DmaFenceChain::find_seqno`] finds the node that covers a timeline point.
//!
//! # Rules
//!
//! 1. Context reuse (behaviour 32): a node whose `prev` is a chain node with a smaller seqno
//!    joins `prev`'s context and records `prev_seqno`; otherwise it gets a new context, and its
//!    seqno is raised to at least `prev`'s so the timeline never goes backwards.
//! 2. The contained fence must not itself be a chain (`EINVAL`; a kernel WARN).
//! 3. Walking the chain ([`DmaFenceChain::walk`], [`DmaFenceChain::iter`]) unlinks nodes whose
//!    contained fence has signaled, so signaled history is freed while the chain is in use.
//! 4. Dropping a long chain never recurses: the drop of a node unlinks, one by one, every
//!    earlier node nobody else holds (as `dma_fence_chain_release` does).
//! 5. Locking: each node's `prev` link has its own mutex, held only to read or swap the link;
//!    fences are dropped after it is released.
//! 6. Errors of contained fences are not propagated to the chain node (as in the kernel); use
//!    [`unwrap_iter`](crate::unwrap::unwrap_iter) to inspect the leaves.
//!
//! ```
//! use fence::{DmaFenceChain, SimpleFenceOps};
//! let a = SimpleFenceOps::create("d", "t", 1, 1);
//! let b = SimpleFenceOps::create("d", "t", 2, 1);
//! let n1 = DmaFenceChain::new(None, a.clone(), 1).unwrap();
//! let n2 = DmaFenceChain::new(Some(n1.clone()), b.clone(), 2).unwrap();
//! assert_eq!(n2.context(), n1.context());
//! b.signal().unwrap();
//! assert!(!n2.is_signaled()); // node 1 is still pending
//! a.signal().unwrap();
//! assert!(n2.is_signaled());
//! let found = DmaFenceChain::find_seqno(&n2, 1).unwrap();
//! assert!(found.is_none()); // everything up to point 1 has signaled
//! ```

use crate::fence::{context_alloc, seqno_is_later, DmaFence, FenceError, FenceOps, Kind};
use crate::sync::Mutex;
use std::sync::Arc;

/// The container part of a chain node (`struct dma_fence_chain`); reach it with
/// [`DmaFence::as_chain`].
pub struct DmaFenceChain {
    /// The previous node (or plain fence); protected by its own mutex, replaced by walks.
    prev: Mutex<Option<DmaFence>>,
    /// Seqno of `prev` when this node joined its context, else 0.
    prev_seqno: u64,
    /// The contained fence.
    fence: DmaFence,
}

struct ChainOps;

impl FenceOps for ChainOps {
    fn driver_name(&self) -> &str {
        "dma_fence_chain"
    }

    fn timeline_name(&self) -> &str {
        "unbound"
    }

    fn enable_signaling(&self, fence: &DmaFence) -> bool {
        arm(fence)
    }

    fn signaled(&self, fence: &DmaFence) -> bool {
        DmaFenceChain::iter(fence).all(|node| contained(&node).is_signaled())
    }
}

/// Puts one callback on the newest still-pending contained fence of the chain from `head`;
/// `false` if there is none (everything signaled). The callback re-arms, so a node waits for
/// its predecessors one at a time without recursion.
fn arm(head: &DmaFence) -> bool {
    for node in DmaFenceChain::iter(head) {
        let h = head.clone();
        if contained(&node)
            .add_callback(move |_| {
                if !arm(&h) {
                    let _ = h.signal();
                }
            })
            .is_ok()
        {
            return true;
        }
    }
    false
}

/// The fence a node contains, or the fence itself if it is not a chain
/// (`dma_fence_chain_contained`).
pub fn contained(fence: &DmaFence) -> &DmaFence {
    fence.as_chain().map_or(fence, |c| &c.fence)
}

impl DmaFenceChain {
    /// Creates a node for `fence` at timeline point `seqno`, after `prev`
    /// (`dma_fence_chain_alloc` + `dma_fence_chain_init`).
    ///
    /// Takes both references. Seqnos compare as 64-bit. Context rule: see module rule 1. A
    /// `fence` that is a chain node is [`FenceError::InvalidArgument`] (`EINVAL`).
    // The node is reached through the `DmaFence` it lives in, so that is what "new" returns.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        prev: Option<DmaFence>,
        fence: DmaFence,
        seqno: u64,
    ) -> Result<DmaFence, FenceError> {
        if fence.as_chain().is_some() {
            return Err(FenceError::InvalidArgument(
                "a chain node cannot contain a chain",
            ));
        }
        let prev_chain = prev.as_ref().filter(|p| p.as_chain().is_some());
        let (context, seqno, prev_seqno) = match prev_chain {
            Some(p) if seqno_is_later(seqno, p.seqno(), true) => (p.context(), seqno, p.seqno()),
            Some(p) => (context_alloc(1)?, seqno.max(p.seqno()), 0),
            None => (context_alloc(1)?, seqno, 0),
        };
        let node = DmaFenceChain {
            prev: Mutex::new(prev),
            prev_seqno,
            fence,
        };
        Ok(DmaFence::with_kind(
            Arc::new(ChainOps),
            context,
            seqno,
            true,
            Kind::Chain(node),
        ))
    }

    /// The contained fence.
    pub fn fence(&self) -> &DmaFence {
        &self.fence
    }

    /// The previous node as it is linked now (`dma_fence_chain_get_prev`).
    pub fn prev(&self) -> Option<DmaFence> {
        self.prev.lock().clone()
    }

    /// Seqno of the previous node when this one joined its context, else 0.
    pub fn prev_seqno(&self) -> u64 {
        self.prev_seqno
    }

    /// The next node to visit after `fence` going back in time, unlinking signaled nodes in
    /// between (`dma_fence_chain_walk`). `None` at the end or if `fence` is not a chain node.
    pub fn walk(fence: &DmaFence) -> Option<DmaFence> {
        let chain = fence.as_chain()?;
        loop {
            let prev = chain.prev()?;
            if !contained(&prev).is_signaled() {
                return Some(prev);
            }
            let replacement = prev.as_chain().and_then(DmaFenceChain::prev);
            let removed = {
                let mut link = chain.prev.lock();
                // Swap only if nobody changed the link meanwhile (the kernel's cmpxchg).
                if link.as_ref().is_some_and(|l| l.ptr_eq(&prev)) {
                    std::mem::replace(&mut *link, replacement)
                } else {
                    None
                }
            };
            drop(removed); // outside the link lock
        }
    }

    /// Iterates from `head` back in time over the nodes not yet signaled, plus `head` itself
    /// (`dma_fence_chain_for_each`). A plain fence yields just itself.
    pub fn iter(head: &DmaFence) -> ChainIter {
        ChainIter {
            next: Some(head.clone()),
        }
    }

    /// Finds the node that covers timeline point `seqno` (`dma_fence_chain_find_seqno`,
    /// behaviour 34).
    ///
    /// * `seqno == 0`: nothing to look for; returns `Some(fence)` unchanged.
    /// * `fence` not a chain node, or `seqno` beyond `fence.seqno()`: `EINVAL`.
    /// * Otherwise `Some(node)`, the oldest still-pending node of `fence`'s context whose
    ///   predecessor is before `seqno`, or `None` if everything up to `seqno` has signaled.
    pub fn find_seqno(fence: &DmaFence, seqno: u64) -> Result<Option<DmaFence>, FenceError> {
        if seqno == 0 {
            return Ok(Some(fence.clone()));
        }
        let Some(_) = fence.as_chain() else {
            return Err(FenceError::InvalidArgument(
                "find_seqno on a fence that is not a chain",
            ));
        };
        if fence.seqno() < seqno {
            return Err(FenceError::InvalidArgument(
                "find_seqno beyond the chain's seqno",
            ));
        }
        let mut cur = Some(fence.clone());
        while let Some(node) = cur.take() {
            let stop = node.context() != fence.context()
                || !matches!(node.as_chain(), Some(c) if c.prev_seqno >= seqno);
            if stop {
                return Ok(Some(node));
            }
            cur = DmaFenceChain::walk(&node);
        }
        Ok(None)
    }
}

/// Iterator of [`DmaFenceChain::iter`].
pub struct ChainIter {
    next: Option<DmaFence>,
}

impl Iterator for ChainIter {
    type Item = DmaFence;

    fn next(&mut self) -> Option<DmaFence> {
        let cur = self.next.take()?;
        self.next = DmaFenceChain::walk(&cur);
        Some(cur)
    }
}

impl Drop for DmaFenceChain {
    fn drop(&mut self) {
        // Unlink iteratively: each earlier node we own alone gives up its own `prev` before
        // being dropped, so no drop recurses down the chain.
        let mut next = self.prev.get_mut().take();
        while let Some(p) = next {
            if !p.is_unique() {
                break; // someone else keeps the rest alive; just drop our reference
            }
            next = p.as_chain().and_then(|c| c.prev.lock().take());
            drop(p);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::SimpleFenceOps;
    use uapi::{AsErrno, Errno};

    fn f(ctx: u64, seqno: u64) -> DmaFence {
        SimpleFenceOps::create("test", "test", ctx, seqno)
    }

    #[test]
    fn later_seqno_reuses_prev_context() {
        let n1 = DmaFenceChain::new(None, f(1, 1), 5).unwrap();
        let n2 = DmaFenceChain::new(Some(n1.clone()), f(1, 2), 6).unwrap();
        assert_eq!(n2.context(), n1.context());
        assert_eq!(n2.as_chain().unwrap().prev_seqno(), 5);
        assert!(n2.is_seqno64());
    }

    #[test]
    fn earlier_seqno_gets_new_context_and_max_seqno() {
        let n1 = DmaFenceChain::new(None, f(1, 1), 10).unwrap();
        let n2 = DmaFenceChain::new(Some(n1.clone()), f(1, 2), 3).unwrap();
        assert_ne!(n2.context(), n1.context());
        assert_eq!(n2.seqno(), 10);
        assert_eq!(n2.as_chain().unwrap().prev_seqno(), 0);
    }

    #[test]
    fn plain_prev_gets_new_context_and_keeps_seqno() {
        let p = f(1, 100);
        let n = DmaFenceChain::new(Some(p), f(1, 2), 3).unwrap();
        assert_eq!(n.seqno(), 3);
        assert_ne!(n.context(), 1);
    }

    #[test]
    fn seqnos_compare_as_64_bit() {
        let n1 = DmaFenceChain::new(None, f(1, 1), 0xFFFF_FFFF).unwrap();
        let n2 = DmaFenceChain::new(Some(n1.clone()), f(1, 2), 0x1_0000_0000).unwrap();
        assert_eq!(n2.context(), n1.context());
        assert!(n2.is_later(&n1));
    }

    #[test]
    fn contained_chain_is_einval() {
        let n1 = DmaFenceChain::new(None, f(1, 1), 1).unwrap();
        let e = DmaFenceChain::new(None, n1, 2).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
    }

    #[test]
    fn find_seqno_errors() {
        let n1 = DmaFenceChain::new(None, f(1, 1), 1).unwrap();
        assert!(DmaFenceChain::find_seqno(&n1, 0)
            .unwrap()
            .unwrap()
            .ptr_eq(&n1));
        assert_eq!(
            DmaFenceChain::find_seqno(&n1, 2).unwrap_err().errno(),
            Errno::EINVAL
        );
        let plain = f(1, 9);
        assert_eq!(
            DmaFenceChain::find_seqno(&plain, 1).unwrap_err().errno(),
            Errno::EINVAL
        );
    }

    #[test]
    fn walk_unlinks_signaled_nodes() {
        let (a, b, c) = (f(1, 1), f(1, 2), f(1, 3));
        let n1 = DmaFenceChain::new(None, a.clone(), 1).unwrap();
        let n2 = DmaFenceChain::new(Some(n1), b.clone(), 2).unwrap();
        let n3 = DmaFenceChain::new(Some(n2), c, 3).unwrap();
        b.signal().unwrap();
        let p = DmaFenceChain::walk(&n3).unwrap();
        assert!(p.as_chain().unwrap().fence().ptr_eq(&a));
        assert!(n3.as_chain().unwrap().prev().unwrap().ptr_eq(&p));
    }

    #[test]
    fn dropping_a_long_chain_does_not_recurse() {
        let mut head: Option<DmaFence> = None;
        for i in 1..=200_000u64 {
            head = Some(DmaFenceChain::new(head, f(1, i), i).unwrap());
        }
        drop(head);
    }
}
