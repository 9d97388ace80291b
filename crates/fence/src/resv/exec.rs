//! Locking a set of reservation objects together, with the wait-die back-off done for you.
//!
//! C side: `drivers/gpu/drm/drm_exec.c` and `ttm_eu_reserve_buffers` in
//! `drivers/gpu/drm/ttm/ttm_execbuf_util.c`.
//!
//! [`ResvExec::lock_all`] takes one [`WwAcquireCtx`] and locks the objects in the given order.
//! When a lock dies (`EDEADLK`), it drops every lock it holds, waits for the contended object
//! with `lock_slow`, and starts the list again with that object already held (method 1 of
//! `ww-mutex-design.rst`). Duplicates in the list are skipped (`EALREADY`, drm_exec's
//! `DRM_EXEC_IGNORE_DUPLICATES`). Any other error drops every lock and is returned.
//!
//! ```
//! use fence::resv::{DmaResv, DmaResvUsage, ResvExec};
//! use fence::{context_alloc, SimpleFenceOps};
//! let bufs = [DmaResv::new(), DmaResv::new()];
//! let job = SimpleFenceOps::create("gpu", "ring", context_alloc(1).unwrap(), 1);
//! let mut exec = ResvExec::lock_all(&[&bufs[0], &bufs[1], &bufs[0]], None).unwrap();
//! assert_eq!(exec.len(), 2); // the duplicate was skipped
//! for g in exec.guards_mut() {
//!     g.reserve_fences(1).unwrap();
//!     g.add_fence(&job, DmaResvUsage::Write).unwrap();
//! }
//! drop(exec);
//! assert!(!bufs[1].test_signaled(DmaResvUsage::Write));
//! ```

use super::{DmaResv, ResvGuard};
use crate::fence::Interrupt;
use crate::ww_mutex::{WwAcquireCtx, WwError};

/// A set of locked reservation objects and the acquire context that locked them
/// (`struct drm_exec`). Dropping it unlocks everything, then ends the context.
pub struct ResvExec<'a> {
    // Field order is drop order: the guards go before the context.
    guards: Vec<ResvGuard<'a>>,
    ctx: WwAcquireCtx,
    backoffs: usize,
}

impl<'a> ResvExec<'a> {
    /// Locks every object of `objs` (all of one class) with a new acquire context, backing off
    /// on `EDEADLK` as often as needed, then marks the context done.
    ///
    /// With `intr`, every wait is interruptible and a raised interrupt gives `EINTR` with
    /// nothing locked. A context of another class gives `EINVAL`
    /// ([`WwError::WrongClass`]). An empty list gives an empty set.
    pub fn lock_all(objs: &[&'a DmaResv], intr: Option<&Interrupt>) -> Result<Self, WwError> {
        let Some(first) = objs.first() else {
            return Ok(ResvExec {
                guards: Vec::new(),
                ctx: WwAcquireCtx::new(&super::reservation_ww_class()),
                backoffs: 0,
            });
        };
        let mut ctx = WwAcquireCtx::new(first.class());
        let mut guards: Vec<ResvGuard<'a>> = Vec::with_capacity(objs.len());
        let mut backoffs = 0;
        // The object taken with lock_slow at the start of this pass.
        let mut slow: Option<usize> = None;
        'retry: loop {
            for (i, obj) in objs.iter().enumerate() {
                if slow == Some(i) {
                    continue;
                }
                let locked = match intr {
                    Some(intr) => obj.lock_interruptible(Some(&mut ctx), intr),
                    None => obj.lock(Some(&mut ctx)),
                };
                match locked {
                    Ok(g) => guards.push(g),
                    Err(WwError::Already) => continue,
                    Err(WwError::Deadlock) => {
                        backoffs += 1;
                        guards.clear();
                        let g = match intr {
                            Some(intr) => obj.lock_slow_interruptible(&mut ctx, intr)?,
                            None => obj.lock_slow(&mut ctx)?,
                        };
                        guards.push(g);
                        slow = Some(i);
                        continue 'retry;
                    }
                    Err(e) => return Err(e),
                }
            }
            break;
        }
        ctx.acquire_done();
        Ok(ResvExec {
            guards,
            ctx,
            backoffs,
        })
    }

    /// The locked objects' guards, in locking order (the object that made the last back-off
    /// first, then the rest in list order).
    pub fn guards_mut(&mut self) -> &mut [ResvGuard<'a>] {
        &mut self.guards
    }

    /// The guard of `resv`, if it is in the set.
    pub fn guard_of(&mut self, resv: &DmaResv) -> Option<&mut ResvGuard<'a>> {
        self.guards
            .iter_mut()
            .find(|g| std::ptr::eq(g.resv(), resv))
    }

    /// How many distinct objects are locked.
    pub fn len(&self) -> usize {
        self.guards.len()
    }

    /// Whether no object is locked.
    pub fn is_empty(&self) -> bool {
        self.guards.is_empty()
    }

    /// How many times locking had to back off (`EDEADLK` answers).
    pub fn backoffs(&self) -> usize {
        self.backoffs
    }

    /// The acquire context's stamp.
    pub fn stamp(&self) -> u64 {
        self.ctx.stamp()
    }

    /// Unlocks everything (the same as dropping it; `drm_exec_fini`).
    pub fn unlock_all(self) {}
}
