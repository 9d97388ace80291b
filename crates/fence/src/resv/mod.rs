//! Reservation objects: the fences that guard one buffer, each with how it uses the buffer.
//!
//! C side: `drivers/dma-buf/dma-resv.c`, `include/linux/dma-resv.h`.
//!
//! # The concept
//!
//! A [`DmaResv`] is attached to a shared buffer. Whoever submits work that touches the buffer adds
//! the work's [`DmaFence`] with a [`DmaResvUsage`] saying how it touches it; whoever wants to
//! touch the buffer next asks for the fences it must wait for. The usages are ordered
//! `Kernel < Write < Read < Bookkeep`, and a query for usage `U` sees every fence whose usage is
//! at most `U` (behaviour 37): an implicit reader waits for `Write` (writers and kernel moves),
//! an implicit writer waits for `Read` (all readers too), and `Bookkeep` fences are seen only by
//! those who ask for everything (e.g. before freeing the memory).
//!
//! The object is a [`WwMutex`] around the list, so many buffers can be
//! locked together with one [`WwAcquireCtx`] ([`ResvExec`] does the back-off dance). Readers
//! that do not hold the lock see a published snapshot and a sequence counter, the analogue of
//! the kernel's RCU list and `seqcount`: an unlocked walk restarts when the list changed under it.
//!
//! # Usage rules
//!
//! 1. Lock the object ([`DmaResv::lock`] and friends); every operation that changes the list is
//!    a method of the returned [`ResvGuard`], so the lock rule is a type.
//! 2. Reserve before adding: [`ResvGuard::reserve_fences`] then [`ResvGuard::add_fence`]. Adding
//!    without a free reserved slot fails with [`ResvError::NoSlot`] (a kernel `BUG_ON`).
//! 3. Reservations do not survive an unlock (behaviour 40, which the kernel only enforces with
//!    `CONFIG_DEBUG_MUTEXES`; here always): reserve again after every relock.
//! 4. Add leaf fences, not containers (arrays, chains): a container is accepted, as the kernel
//!    does after its `WARN_ON`, but waits and replacement rules then see it as one opaque fence.
//! 5. A fence replaces an entry of the same context whose usage is at least as strong when it is
//!    later or the same; a signaled entry is always reused (behaviour 41).
//!
//! # Lock rules
//!
//! 1. The list and the reserved capacity are protected by the ww lock (the guard).
//! 2. The published snapshot and its sequence number are protected by a private leaf mutex,
//!    held only to swap or clone an `Arc`, never while calling a fence or driver.
//! 3. Changes made under the ww lock are published once, when the guard is dropped (the
//!    unlock), still under the ww lock: unlocked readers see the list as it was before the
//!    critical section until it ends, then the whole new list — never half of a batch of adds.
//! 4. Never take a reservation lock on a fence-signalling path (the fence contract, rule 2):
//!    waiting on a fence while holding the lock that its signaller needs is a deadlock.
//!
//! # Example
//!
//! ```
//! use fence::resv::{DmaResv, DmaResvUsage};
//! use fence::{context_alloc, SimpleFenceOps};
//! let resv = DmaResv::new();
//! let f = SimpleFenceOps::create("gpu", "ring0", context_alloc(1).unwrap(), 1);
//! {
//!     let mut g = resv.lock(None).unwrap();
//!     g.reserve_fences(1).unwrap();
//!     g.add_fence(&f, DmaResvUsage::Write).unwrap();
//! }
//! assert!(!resv.test_signaled(DmaResvUsage::Read));
//! assert!(resv.test_signaled(DmaResvUsage::Kernel)); // a WRITE fence is not a KERNEL fence
//! f.signal().unwrap();
//! assert!(resv.test_signaled(DmaResvUsage::Bookkeep));
//! ```

mod exec;
mod iter;

pub use exec::ResvExec;
pub use iter::{ResvFence, ResvIter, ResvUnlockedIter};

use crate::fence::{DmaFence, FenceError, Interrupt};
use crate::sync::{Arc, AtomicU64, Mutex, Ordering};
use crate::ww_mutex::{WwAcquireCtx, WwClass, WwError, WwMutex, WwMutexGuard};
use std::fmt;
use uapi::{AsErrno, Errno};

/// How a fence's work uses the buffer (`enum dma_resv_usage`), ordered weakest-last.
///
/// A query with usage `U` returns every fence whose usage is `<= U`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DmaResvUsage {
    /// Kernel memory management (moves, clears); everybody waits for it (`DMA_RESV_USAGE_KERNEL`).
    Kernel,
    /// Implicit-sync writers (`DMA_RESV_USAGE_WRITE`).
    Write,
    /// Implicit-sync readers (`DMA_RESV_USAGE_READ`).
    Read,
    /// Explicitly synced work, waited on only by memory management (`DMA_RESV_USAGE_BOOKKEEP`).
    Bookkeep,
}

impl DmaResvUsage {
    /// Every usage, strongest first.
    pub const ALL: [DmaResvUsage; 4] = [
        DmaResvUsage::Kernel,
        DmaResvUsage::Write,
        DmaResvUsage::Read,
        DmaResvUsage::Bookkeep,
    ];

    /// The usage implicit sync must wait for (`dma_resv_usage_rw`): a writer waits for readers
    /// and writers (`Read`), a reader only for writers (`Write`).
    ///
    /// ```
    /// use fence::resv::DmaResvUsage;
    /// assert_eq!(DmaResvUsage::rw(true), DmaResvUsage::Read);
    /// assert_eq!(DmaResvUsage::rw(false), DmaResvUsage::Write);
    /// ```
    pub fn rw(write: bool) -> DmaResvUsage {
        if write {
            DmaResvUsage::Read
        } else {
            DmaResvUsage::Write
        }
    }
}

/// Why a reservation operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResvError {
    /// `reserve_fences(0)` (`EINVAL`; a kernel WARN).
    #[error("reserve_fences(0)")]
    ZeroReserve,
    /// The reservation would exceed what the kernel's `u32` count can describe (`ENOMEM`).
    #[error("cannot reserve that many fence slots")]
    NoMemory,
    /// `add_fence` with no free reserved slot (`ENOSPC`; a kernel `BUG_ON`): reserve first, and
    /// again after every relock.
    #[error("no reserved fence slot: call reserve_fences (again after every relock)")]
    NoSlot,
    /// Taking the lock failed (`EDEADLK`, `EALREADY`, `EINTR`, ...).
    #[error(transparent)]
    Lock(#[from] WwError),
    /// A fence wait or fence creation failed (`ETIME`, `ERESTARTSYS`, ...).
    #[error(transparent)]
    Fence(#[from] FenceError),
}

impl AsErrno for ResvError {
    fn errno(&self) -> Errno {
        match self {
            ResvError::ZeroReserve => Errno::EINVAL,
            ResvError::NoMemory => Errno::ENOMEM,
            ResvError::NoSlot => Errno::ENOSPC,
            ResvError::Lock(e) => e.errno(),
            ResvError::Fence(e) => e.errno(),
        }
    }
}

/// The most slots a list may have (the kernel counts them in a `u32`).
const MAX_FENCES: usize = u32::MAX as usize;

/// The process-wide class of every [`DmaResv`] made with [`DmaResv::new`] (`reservation_ww_class`).
///
/// Under `cfg(loom)` each call gives a fresh class (loom objects cannot live in statics);
/// loom models use [`DmaResv::with_class`].
pub fn reservation_ww_class() -> WwClass {
    #[cfg(not(loom))]
    {
        static CLASS: std::sync::OnceLock<WwClass> = std::sync::OnceLock::new();
        CLASS
            .get_or_init(|| WwClass::new("reservation_ww_class"))
            .clone()
    }
    #[cfg(loom)]
    {
        WwClass::new("reservation_ww_class")
    }
}

/// One slot of the list.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) fence: DmaFence,
    pub(crate) usage: DmaResvUsage,
}

/// The list, under the ww lock (`struct dma_resv_list`).
pub(crate) struct ResvList {
    fences: Vec<Entry>,
    /// `max_fences`: slots available; `max_fences - fences.len()` are reserved and free.
    max_fences: usize,
}

/// What unlocked readers see (the RCU-published list and its seqcount).
pub(crate) struct Published {
    pub(crate) seq: u64,
    pub(crate) fences: Arc<Vec<Entry>>,
}

/// A reservation object (`struct dma_resv`).
///
/// # Invariants
/// `published.fences` equals the locked list's effective content (same unsignaled fences and
/// usages) whenever the ww lock is not held, and `seq` mirrors `published.seq`.
pub struct DmaResv {
    lock: WwMutex<ResvList>,
    /// Leaf lock: the snapshot unlocked readers walk.
    published: Mutex<Published>,
    /// Copy of `published.seq` for a lock-free "did it change?" check.
    seq: AtomicU64,
}

impl Default for DmaResv {
    fn default() -> Self {
        DmaResv::new()
    }
}

impl DmaResv {
    /// An empty object of the [`reservation_ww_class`] (`dma_resv_init`).
    pub fn new() -> DmaResv {
        DmaResv::with_class(&reservation_ww_class())
    }

    /// An empty object of `class`, for objects that must never be locked with the global class.
    pub fn with_class(class: &WwClass) -> DmaResv {
        DmaResv {
            lock: WwMutex::new(
                class,
                ResvList {
                    fences: Vec::new(),
                    max_fences: 0,
                },
            ),
            published: Mutex::new(Published {
                seq: 0,
                fences: Arc::new(Vec::new()),
            }),
            seq: AtomicU64::new(0),
        }
    }

    /// The lock class, to build a [`WwAcquireCtx`] for it.
    pub fn class(&self) -> &WwClass {
        self.lock.class()
    }

    /// Locks (`dma_resv_lock`): with `None` a plain lock that never fails; with a context the
    /// wait-die rules apply (`EDEADLK` means back off, behaviour 50; `EALREADY` if held by `ctx`).
    pub fn lock(&self, ctx: Option<&mut WwAcquireCtx>) -> Result<ResvGuard<'_>, WwError> {
        self.lock.lock(ctx).map(|g| self.guard(g))
    }

    /// [`lock`](Self::lock) that fails with `EINTR` once `intr` is raised
    /// (`dma_resv_lock_interruptible`).
    pub fn lock_interruptible(
        &self,
        ctx: Option<&mut WwAcquireCtx>,
        intr: &Interrupt,
    ) -> Result<ResvGuard<'_>, WwError> {
        self.lock
            .lock_interruptible(ctx, intr)
            .map(|g| self.guard(g))
    }

    /// Takes the contended object after backing off (`dma_resv_lock_slow`); `ctx` must hold
    /// nothing.
    pub fn lock_slow(&self, ctx: &mut WwAcquireCtx) -> Result<ResvGuard<'_>, WwError> {
        self.lock.lock_slow(ctx).map(|g| self.guard(g))
    }

    /// Interruptible [`lock_slow`](Self::lock_slow) (`dma_resv_lock_slow_interruptible`).
    pub fn lock_slow_interruptible(
        &self,
        ctx: &mut WwAcquireCtx,
        intr: &Interrupt,
    ) -> Result<ResvGuard<'_>, WwError> {
        self.lock
            .lock_slow_interruptible(ctx, intr)
            .map(|g| self.guard(g))
    }

    /// Locks without waiting and without a context (`dma_resv_trylock`): `EBUSY` if taken.
    pub fn try_lock(&self) -> Result<ResvGuard<'_>, WwError> {
        self.lock.try_lock(None).map(|g| self.guard(g))
    }

    /// Whether the object is locked now (`dma_resv_is_locked`); a snapshot.
    pub fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// The sequence number of the published list; it changes whenever the set of fences does.
    pub fn seq(&self) -> u64 {
        // Acquire pairs with the Release store in `publish`.
        self.seq.load(Ordering::Acquire)
    }

    fn guard<'a>(&'a self, list: WwMutexGuard<'a, ResvList>) -> ResvGuard<'a> {
        ResvGuard {
            resv: self,
            list,
            publish: None,
        }
    }

    /// The current snapshot (`rcu_read_lock` + `read_seqcount_begin`).
    pub(crate) fn snapshot(&self) -> (u64, Arc<Vec<Entry>>) {
        let p = self.published.lock();
        (p.seq, p.fences.clone())
    }

    /// Publishes the locked list; `changed` bumps the sequence (a `write_seqcount` section).
    fn publish(&self, list: &ResvList, changed: bool) {
        let fences = Arc::new(list.fences.clone());
        let old = {
            let mut p = self.published.lock();
            if changed {
                p.seq += 1;
                self.seq.store(p.seq, Ordering::Release);
            }
            std::mem::replace(&mut p.fences, fences)
        };
        drop(old); // may drop the last reference of fences: outside the leaf lock
    }
}

impl fmt::Debug for DmaResv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (seq, fences) = self.snapshot();
        f.debug_struct("DmaResv")
            .field("seq", &seq)
            .field("fences", &fences.len())
            .field("locked", &self.is_locked())
            .finish()
    }
}

/// A locked [`DmaResv`]: proof that `dma_resv_assert_held` would pass.
///
/// Dropping it unlocks (`dma_resv_unlock`) and forgets unused reservations (rule 3). Not `Send`.
pub struct ResvGuard<'a> {
    resv: &'a DmaResv,
    list: WwMutexGuard<'a, ResvList>,
    /// What to publish at unlock: `None` nothing, `Some(changed)` the list, bumping the sequence
    /// if the set of fences changed. Publishing once per critical section (rather than once per
    /// `add_fence`) keeps adding n fences O(n) instead of O(n^2).
    publish: Option<bool>,
}

impl<'a> ResvGuard<'a> {
    /// The object this guard locks.
    pub fn resv(&self) -> &'a DmaResv {
        self.resv
    }

    /// Fences in the list, signaled ones included (`num_fences`).
    pub fn num_fences(&self) -> usize {
        self.list.fences.len()
    }

    /// Slots in the list, used and reserved (`max_fences`).
    pub fn max_fences(&self) -> usize {
        self.list.max_fences
    }

    /// Makes room for `n` more fences (`dma_resv_reserve_fences`, behaviour 38).
    ///
    /// Nothing happens if there is room. Otherwise the list grows to `max(num + n, 2 * max)`
    /// slots, or `max(4, n.next_power_of_two())` for a list without slots, and signaled fences
    /// are pruned on the way. `n == 0` is [`ResvError::ZeroReserve`] (`EINVAL`).
    ///
    /// ```
    /// let resv = fence::DmaResv::new();
    /// let mut g = resv.lock(None).unwrap();
    /// g.reserve_fences(1).unwrap();
    /// assert_eq!(g.max_fences(), 4); // max(4, roundup_pow_of_two(1))
    /// assert!(g.reserve_fences(0).is_err());
    /// ```
    pub fn reserve_fences(&mut self, n: usize) -> Result<(), ResvError> {
        if n == 0 {
            return Err(ResvError::ZeroReserve);
        }
        let list = &mut *self.list;
        let num = list.fences.len();
        let wanted = num.checked_add(n).ok_or(ResvError::NoMemory)?;
        let max = if list.max_fences > 0 {
            if wanted <= list.max_fences {
                return Ok(());
            }
            wanted.max(list.max_fences.saturating_mul(2))
        } else {
            n.checked_next_power_of_two()
                .ok_or(ResvError::NoMemory)?
                .max(4)
        };
        if max > MAX_FENCES {
            return Err(ResvError::NoMemory);
        }
        let before = list.fences.len();
        list.fences.retain(|e| !e.fence.is_signaled());
        list.max_fences = max;
        if list.fences.len() != before {
            // The effective (unsignaled) set is unchanged: swap the snapshot, keep the seq.
            self.mark_for_publish(false);
        }
        Ok(())
    }

    /// Adds `fence` with `usage` (`dma_resv_add_fence`, behaviours 39, 41, 42).
    ///
    /// Replaces the first entry that has signaled, or that has the same context, a usage at
    /// least `usage`, and a fence `fence` is later than or the same as; otherwise takes a
    /// reserved slot, or fails with [`ResvError::NoSlot`]. The object keeps its own reference.
    /// A container fence is added as-is (rule 4).
    ///
    /// ```
    /// use fence::{context_alloc, DmaResv, DmaResvUsage, ResvError, SimpleFenceOps};
    /// let ctx = context_alloc(1).unwrap();
    /// let (f1, f2) = (SimpleFenceOps::create("d", "t", ctx, 1), SimpleFenceOps::create("d", "t", ctx, 2));
    /// let resv = DmaResv::new();
    /// let mut g = resv.lock(None).unwrap();
    /// assert_eq!(g.add_fence(&f1, DmaResvUsage::Write), Err(ResvError::NoSlot));
    /// g.reserve_fences(1).unwrap();
    /// g.add_fence(&f1, DmaResvUsage::Write).unwrap();
    /// g.add_fence(&f2, DmaResvUsage::Write).unwrap(); // later, same context: replaces f1
    /// assert_eq!(g.num_fences(), 1);
    /// ```
    pub fn add_fence(&mut self, fence: &DmaFence, usage: DmaResvUsage) -> Result<(), ResvError> {
        let list = &mut *self.list;
        let slot = list.fences.iter().position(|old| {
            (old.fence.context() == fence.context()
                && old.usage >= usage
                && fence.is_later_or_same(&old.fence))
                || old.fence.is_signaled()
        });
        let entry = Entry {
            fence: fence.clone(),
            usage,
        };
        let replaced = match slot {
            Some(i) => Some(std::mem::replace(&mut list.fences[i], entry)),
            None if list.fences.len() < list.max_fences => {
                list.fences.push(entry);
                None
            }
            None => return Err(ResvError::NoSlot),
        };
        self.mark_for_publish(true);
        drop(replaced);
        Ok(())
    }

    /// Makes every fence of `context` into `replacement` with `usage`
    /// (`dma_resv_replace_fences`, behaviour 49). Needs no reserved slot.
    pub fn replace_fences(&mut self, context: u64, replacement: &DmaFence, usage: DmaResvUsage) {
        let list = &mut *self.list;
        let mut old = Vec::new();
        for e in list
            .fences
            .iter_mut()
            .filter(|e| e.fence.context() == context)
        {
            let new = Entry {
                fence: replacement.clone(),
                usage,
            };
            old.push(std::mem::replace(e, new));
        }
        if !old.is_empty() {
            self.mark_for_publish(true);
        }
    }

    /// Replaces this object's whole list with a snapshot of `src`'s unsignaled fences and their
    /// usages, `Bookkeep` included (`dma_resv_copy_fences`, behaviour 48). `src` need not be
    /// locked (it may even be this object). Leaves no reserved slot.
    pub fn copy_fences(&mut self, src: &DmaResv) {
        let copied: Vec<Entry> = src
            .iter_unlocked(DmaResvUsage::Bookkeep)
            .restartable_collect(|f| Entry {
                fence: f.fence,
                usage: f.usage,
            });
        let list = &mut *self.list;
        list.max_fences = copied.len();
        let old = std::mem::replace(&mut list.fences, copied);
        self.mark_for_publish(true);
        drop(old);
    }

    /// Walks the list under the lock (`dma_resv_for_each_fence`, behaviour 43): signaled fences
    /// included, only usages `<= usage`, each with its stored usage; the first is `is_restarted`.
    pub fn iter(&self, usage: DmaResvUsage) -> ResvIter<'_> {
        ResvIter::new(&self.list.fences, usage)
    }

    /// Unlocks now (the same as dropping the guard).
    pub fn unlock(self) {}
}

impl ResvGuard<'_> {
    /// Records that the list must be republished at unlock (`changed`: the set of fences
    /// changed, so unlocked readers must restart).
    fn mark_for_publish(&mut self, changed: bool) {
        self.publish = Some(self.publish.unwrap_or(false) | changed);
    }
}

impl Drop for ResvGuard<'_> {
    fn drop(&mut self) {
        // Behaviour 40 (`dma_resv_reset_max_fences`): reservations do not survive the unlock.
        let len = self.list.fences.len();
        self.list.max_fences = len;
        // Publish while still holding the ww lock, so the invariant "published equals the
        // list whenever the lock is free" holds at the moment the lock is released.
        if let Some(changed) = self.publish.take() {
            self.resv.publish(&self.list, changed);
        }
    }
}

impl fmt::Debug for ResvGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResvGuard")
            .field("num_fences", &self.num_fences())
            .field("max_fences", &self.max_fences())
            .finish()
    }
}
