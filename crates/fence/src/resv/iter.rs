//! Walking a reservation object's fences, locked and unlocked, and the queries built on the
//! unlocked walk (`dma_resv_iter_*`, `dma_resv_test_signaled`, `dma_resv_wait_timeout`,
//! `dma_resv_get_fences`, `dma_resv_get_singleton`).
//!
//! The unlocked walk is the kernel's RCU + seqcount cursor: it walks the published snapshot and,
//! before each step and at the end, compares the object's sequence number with the one it
//! started from. If the list changed, it starts over from the new snapshot and marks the next
//! fence [`ResvFence::is_restarted`]; a consumer that accumulates (like [`DmaResv::get_fences`])
//! throws away what it gathered. A walk therefore only ends after a complete pass over one
//! unchanged list.

use super::{DmaResv, DmaResvUsage, Entry};
use crate::array::DmaFenceArray;
use crate::fence::{context_alloc, DmaFence, Interrupt};
use crate::resv::ResvError;
use crate::sync::Arc;
use crate::unwrap::unwrap_iter;
use std::time::Duration;

/// One fence of a walk, with its stored usage (`dma_resv_iter_usage`) and whether the walk
/// (re)started at it (`dma_resv_iter_is_restarted`).
#[derive(Debug, Clone)]
pub struct ResvFence {
    /// The fence (a new reference).
    pub fence: DmaFence,
    /// The usage it was added with.
    pub usage: DmaResvUsage,
    /// `true` for the first fence of a pass: everything gathered before it is stale.
    pub is_restarted: bool,
}

/// The locked walk, from [`ResvGuard::iter`](super::ResvGuard::iter): signaled fences included.
pub struct ResvIter<'a> {
    entries: std::slice::Iter<'a, Entry>,
    usage: DmaResvUsage,
    first: bool,
}

impl<'a> ResvIter<'a> {
    pub(super) fn new(entries: &'a [Entry], usage: DmaResvUsage) -> ResvIter<'a> {
        ResvIter {
            entries: entries.iter(),
            usage,
            first: true,
        }
    }
}

impl Iterator for ResvIter<'_> {
    type Item = ResvFence;

    fn next(&mut self) -> Option<ResvFence> {
        let usage = self.usage;
        let e = self.entries.by_ref().find(|e| e.usage <= usage)?;
        let is_restarted = std::mem::replace(&mut self.first, false);
        Some(ResvFence {
            fence: e.fence.clone(),
            usage: e.usage,
            is_restarted,
        })
    }
}

/// The unlocked walk, from [`DmaResv::iter_unlocked`]: skips signaled fences and restarts when
/// the list changes (see the module doc).
pub struct ResvUnlockedIter<'a> {
    resv: &'a DmaResv,
    usage: DmaResvUsage,
    /// The sequence number and snapshot of the current pass; `None` before the first.
    pass: Option<(u64, Arc<Vec<Entry>>)>,
    index: usize,
    /// The next fence returned starts a pass.
    restarted: bool,
}

impl ResvUnlockedIter<'_> {
    fn restart(&mut self) {
        self.pass = Some(self.resv.snapshot());
        self.index = 0;
        self.restarted = true;
    }

    /// Collects `f(fence)` for every fence, starting over on each restart, so the result comes
    /// from one unchanged list.
    pub fn restartable_collect<T>(self, mut f: impl FnMut(ResvFence) -> T) -> Vec<T> {
        let mut out = Vec::new();
        for item in self {
            if item.is_restarted {
                out.clear();
            }
            out.push(f(item));
        }
        out
    }
}

impl Iterator for ResvUnlockedIter<'_> {
    type Item = ResvFence;

    fn next(&mut self) -> Option<ResvFence> {
        loop {
            match &self.pass {
                Some((seq, _)) if *seq == self.resv.seq() => {}
                _ => self.restart(),
            }
            let Some((_, entries)) = &self.pass else {
                return None;
            };
            while let Some(e) = entries.get(self.index) {
                self.index += 1;
                if e.usage <= self.usage && !e.fence.is_signaled() {
                    let is_restarted = std::mem::replace(&mut self.restarted, false);
                    return Some(ResvFence {
                        fence: e.fence.clone(),
                        usage: e.usage,
                        is_restarted,
                    });
                }
            }
            // End of this pass: valid only if nothing changed meanwhile (`read_seqcount_retry`).
            if matches!(&self.pass, Some((seq, _)) if *seq == self.resv.seq()) {
                return None;
            }
        }
    }
}

impl DmaResv {
    /// Walks the unsignaled fences with usage `<= usage` without the lock
    /// (`dma_resv_for_each_fence_unlocked`, behaviour 43).
    pub fn iter_unlocked(&self, usage: DmaResvUsage) -> ResvUnlockedIter<'_> {
        ResvUnlockedIter {
            resv: self,
            usage,
            pass: None,
            index: 0,
            restarted: true,
        }
    }

    /// Whether no fence with usage `<= usage` is pending (`dma_resv_test_signaled`,
    /// behaviour 44); `true` for an empty object. Needs no lock.
    pub fn test_signaled(&self, usage: DmaResvUsage) -> bool {
        self.iter_unlocked(usage).next().is_none()
    }

    /// Waits for every fence with usage `<= usage` (`dma_resv_wait_timeout`, behaviour 45).
    ///
    /// `timeout` is shared by all the waits (`None` waits forever). Returns the time left
    /// (`Duration::MAX` without a timeout; a zero timeout only polls and gives `ZERO` when all
    /// are signaled), [`FenceError::Timeout`](crate::FenceError::Timeout) (`ETIME`, the kernel's
    /// 0) or [`FenceError::Interrupted`](crate::FenceError::Interrupted) (`ERESTARTSYS`) if
    /// `intr` is raised. Needs no lock; may be called with it held.
    pub fn wait_timeout(
        &self,
        usage: DmaResvUsage,
        intr: Option<&Interrupt>,
        timeout: Option<Duration>,
    ) -> Result<Duration, ResvError> {
        let mut left = timeout;
        for f in self.iter_unlocked(usage) {
            let rem = f.fence.wait_timeout(intr, left)?;
            if left.is_some() {
                left = Some(rem);
            }
        }
        Ok(left.unwrap_or(Duration::MAX))
    }

    /// New references to the unsignaled fences with usage `<= usage`, from one consistent pass
    /// (`dma_resv_get_fences`, behaviour 46). Empty when there are none.
    pub fn get_fences(&self, usage: DmaResvUsage) -> Vec<DmaFence> {
        self.iter_unlocked(usage).restartable_collect(|f| f.fence)
    }

    /// One fence standing for all fences with usage `<= usage` (`dma_resv_get_singleton`,
    /// behaviour 47): `None` if there are none, the fence itself if there is one, else a new
    /// [`DmaFenceArray`] on a fresh context, seqno 1, that signals when all have signaled.
    ///
    /// Containers among the fences are unwrapped into their leaves first (an array may not
    /// contain containers here); do not add the result back to this object (the kernel's
    /// warning about nesting arrays applies).
    pub fn get_singleton(&self, usage: DmaResvUsage) -> Result<Option<DmaFence>, ResvError> {
        let mut fences = self.get_fences(usage);
        if fences.len() > 1 && fences.iter().any(DmaFence::is_container) {
            fences = fences
                .iter()
                .flat_map(unwrap_iter)
                .filter(|f| !f.is_signaled())
                .collect();
        }
        match fences.len() {
            0 => Ok(None),
            1 => Ok(fences.pop()),
            _ => Ok(Some(DmaFenceArray::create(
                fences,
                context_alloc(1)?,
                1,
                false,
            )?)),
        }
    }
}
