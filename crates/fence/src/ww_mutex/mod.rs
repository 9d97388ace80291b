//! Wound/wait mutexes: locking many objects in any order without deadlock.
//!
//! C side: `include/linux/ww_mutex.h`, `kernel/locking/ww_mutex.h`,
//! `Documentation/locking/ww-mutex-design.rst`.
//!
//! # The idea, by analogy
//!
//! Think of a bank where every customer takes a numbered ticket at the door and keeps it until
//! they leave. A customer needs several counters at once (a GPU job needs several buffers locked).
//! When a customer finds a counter taken:
//!
//! - by someone with a *later* ticket (younger), they **wait**: the younger one will finish or
//!   give way;
//! - by someone with an *earlier* ticket (older), and they already hold a counter themselves,
//!   they **die**: give back every counter they hold, queue for the contended counter with
//!   empty hands, and start again *with the same ticket*, so they grow older and eventually win.
//!
//! That is **wait-die**, the algorithm of the kernel's `reservation_ww_class`
//! (`DEFINE_WD_CLASS`), which every `dma_resv` uses and which [`WwClass`] always implements.
//! Waits only ever go from older to younger, so a cycle of waiters cannot form. Wait-die was
//! chosen over wound-wait because it is what dma-resv uses, because dying happens only at a lock
//! call (no asynchronous "wounded" flag to poll), and because it is easy to check under loom.
//!
//! The ticket is the acquire context's **stamp** ([`WwAcquireCtx::stamp`]): smaller is older.
//! A [`WwAcquireCtx`] is one transaction (one `ww_acquire_ctx`); it counts the locks it holds.
//!
//! # Rules of use
//!
//! 1. Create one [`WwAcquireCtx`] per transaction, from the class of the mutexes it will take.
//! 2. Lock with the context. [`WwError::Deadlock`] (`EDEADLK`) means: drop **every** guard this
//!    context holds, then take the contended mutex with [`WwMutex::lock_slow`] (it blocks and
//!    never dies, because the context holds nothing), then lock the rest again.
//! 3. [`WwError::Already`] (`EALREADY`) means this context already holds that mutex (a duplicate
//!    in the caller's list); it is not an error to the algorithm.
//! 4. Optionally call [`WwAcquireCtx::acquire_done`] once everything is locked; locking more with
//!    that context is then refused.
//! 5. Drop the guards, then the context. A mutex may also be locked without a context (`None`):
//!    it then behaves as a plain mutex and never dies, but must not be mixed with other locks of
//!    the class in one thread (there is no deadlock avoidance for it, as in Linux).
//!
//! # The tricky orderings
//!
//! 1. A context that holds no lock never dies: it has nothing another waiter could be waiting
//!    for, so it simply waits, even behind an older owner (this is why `lock_slow` cannot fail).
//! 2. Waiters with a context queue in stamp order, plain waiters in FIFO order between them
//!    (invariant (1) of the design document). A context that holds locks dies not only when the
//!    owner is older but also when an older context is queued ahead of it (it would have to wait
//!    for that one); an older context that arrives later wakes younger waiters so they re-check.
//! 3. An unlock hands the mutex to the first waiter: a newcomer (or [`WwMutex::try_lock`]) does
//!    not overtake queued waiters, so an older context cannot be starved by younger ones.
//! 4. The guard releases the data before the ownership, and decrements the context's count
//!    last; a context's count is only read by the thread that uses the context.
//! 5. An interruptible waiter parks like any other and is woken by [`Interrupt::raise`]
//!    itself: before its first sleep it registers the mutex's shared state (an `Arc` of the
//!    state lock and condition variable) with the interrupt, and deregisters when the lock call
//!    returns. `raise` sets its flag first, then takes the state lock and notifies, while the
//!    waiter checks the flag and goes to sleep under that same lock, so the wake-up cannot fall
//!    between the check and the sleep. Nothing polls; `EINTR` comes as soon as the waiter runs.
//!
//! # Misuse, answered with errors instead of the kernel's debug warnings
//!
//! 1. A context of another class -> [`WwError::WrongClass`] (`EINVAL`).
//! 2. Locking after [`WwAcquireCtx::acquire_done`] -> [`WwError::AcquireDone`] (`EINVAL`).
//! 3. After `EDEADLK`, locking anything while still holding locks -> `EDEADLK` again;
//!    `lock_slow` while holding locks -> [`WwError::NotBackedOff`] (`EDEADLK`).
//! 4. Dropping a context while guards are still alive: in Linux `ww_acquire_fini` with locks
//!    held is a `DEBUG_LOCKS_WARN_ON`. Here the guards own their locks and release them when
//!    they drop, so nothing is corrupted; [`WwAcquireCtx::fini`] reports the case as
//!    [`WwError::StillHeld`] (`EBUSY`) for callers that want to check.
//!
//! # Example
//!
//! ```
//! use fence::ww_mutex::{WwAcquireCtx, WwClass, WwError, WwMutex, WwMutexGuard};
//!
//! let class = WwClass::new("example");
//! let objs = [WwMutex::new(&class, 1), WwMutex::new(&class, 2)];
//!
//! // Lock every object; on EDEADLK back off and retry with the contended one first.
//! fn lock_all<'a>(
//!     objs: &'a [WwMutex<i32>],
//!     ctx: &mut WwAcquireCtx,
//! ) -> Result<Vec<WwMutexGuard<'a, i32>>, WwError> {
//!     let mut held: Vec<WwMutexGuard<'a, i32>> = Vec::new();
//!     let mut first: Option<usize> = None;
//!     'retry: loop {
//!         for (i, obj) in objs.iter().enumerate() {
//!             if first == Some(i) {
//!                 continue; // already taken by lock_slow
//!             }
//!             match obj.lock(Some(ctx)) {
//!                 Ok(g) => held.push(g),
//!                 Err(WwError::Deadlock) => {
//!                     held.clear(); // rule 2: drop everything first
//!                     held.push(obj.lock_slow(ctx)?);
//!                     first = Some(i);
//!                     continue 'retry;
//!                 }
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!         ctx.acquire_done();
//!         return Ok(held);
//!     }
//! }
//!
//! let mut ctx = WwAcquireCtx::new(&class);
//! let mut guards = lock_all(&objs, &mut ctx).unwrap();
//! *guards[0] += 10;
//! assert_eq!(ctx.acquired(), 2);
//! drop(guards);
//! assert_eq!(ctx.acquired(), 0);
//! ```

mod wait_die;

use crate::fence::Interrupt;
use crate::sync::{Arc, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering};
use std::fmt;
use std::ops::{Deref, DerefMut};
use uapi::{AsErrno, Errno};
pub(crate) use wait_die::LockShared;
use wait_die::{Holder, LockCore, Mode, Ownership};

/// Why a ww_mutex operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WwError {
    /// Wait-die "die": the mutex is owned by (or promised to) an older context while this
    /// context holds locks. Drop every lock of the context, then [`WwMutex::lock_slow`].
    #[error(
        "deadlock avoided: an older acquire context wants this lock; back off and lock_slow it"
    )]
    Deadlock,
    /// The context already holds this mutex (`ww_mutex_lock` returns `-EALREADY`).
    #[error("this acquire context already holds the lock")]
    Already,
    /// The interruptible wait saw its [`Interrupt`] raised (`-EINTR`, as `mutex_lock_interruptible`).
    #[error("interrupted while waiting for the lock")]
    Interrupted,
    /// [`WwMutex::try_lock`] found the mutex owned or promised to a waiter.
    #[error("the lock is busy")]
    WouldBlock,
    /// [`WwMutex::lock_slow`] was called while the context still holds locks.
    #[error("lock_slow with {held} lock(s) still held: release them first")]
    NotBackedOff {
        /// How many locks the context held.
        held: usize,
    },
    /// The context was marked done with [`WwAcquireCtx::acquire_done`].
    #[error("the acquire context is done; no more locks may be taken with it")]
    AcquireDone,
    /// The context and the mutex belong to different [`WwClass`]es.
    #[error("the acquire context belongs to another ww class")]
    WrongClass,
    /// [`WwAcquireCtx::fini`] on a context that still holds locks.
    #[error("the acquire context still holds {0} lock(s)")]
    StillHeld(usize),
}

impl AsErrno for WwError {
    fn errno(&self) -> Errno {
        match self {
            WwError::Deadlock | WwError::NotBackedOff { .. } => Errno::EDEADLK,
            WwError::Already => Errno::EALREADY,
            WwError::Interrupted => Errno::EINTR,
            WwError::WouldBlock | WwError::StillHeld(_) => Errno::EBUSY,
            WwError::AcquireDone | WwError::WrongClass => Errno::EINVAL,
        }
    }
}

/// A wait-die lock class (`DEFINE_WD_CLASS`): the stamp counter shared by its contexts.
///
/// Cloning gives another handle to the same class. Mutexes and contexts of one class work
/// together; a context never locks a mutex of another class.
#[derive(Clone)]
pub struct WwClass {
    inner: Arc<ClassInner>,
}

struct ClassInner {
    name: String,
    /// Last stamp handed out; stamps start at 1.
    stamp: AtomicU64,
    /// Last mutex id handed out (to recognise the contended mutex after `EDEADLK`).
    next_id: AtomicU64,
}

impl WwClass {
    /// A new, empty class (`DEFINE_WD_CLASS(name)`).
    ///
    /// ```
    /// let class = fence::ww_mutex::WwClass::new("reservation_ww_class");
    /// assert_eq!(class.name(), "reservation_ww_class");
    /// ```
    pub fn new(name: &str) -> WwClass {
        WwClass {
            inner: Arc::new(ClassInner {
                name: name.to_owned(),
                stamp: AtomicU64::new(0),
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// The class name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether two handles name the same class.
    pub fn same(&self, other: &WwClass) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for WwClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WwClass")
            .field("name", &self.inner.name)
            .finish()
    }
}

/// One transaction: a stamp and the count of locks taken with it (`struct ww_acquire_ctx`).
///
/// Lock calls take it by `&mut`, so one thread uses a context at a time, as in Linux where a
/// context lives on one task's stack.
pub struct WwAcquireCtx {
    class: WwClass,
    stamp: u64,
    /// Locks held; incremented by the lock call, decremented by the guard's drop.
    acquired: Arc<AtomicUsize>,
    /// The mutex that made this context die, until the next successful lock.
    contending: Option<u64>,
    done: bool,
}

impl WwAcquireCtx {
    /// Starts a transaction with a fresh stamp, younger than every earlier context of the class
    /// (`ww_acquire_init`).
    ///
    /// ```
    /// use fence::ww_mutex::{WwAcquireCtx, WwClass};
    /// let class = WwClass::new("c");
    /// let (a, b) = (WwAcquireCtx::new(&class), WwAcquireCtx::new(&class));
    /// assert!(a.stamp() < b.stamp()); // a is older
    /// ```
    pub fn new(class: &WwClass) -> WwAcquireCtx {
        // Relaxed: the counter only has to hand out unique, increasing numbers; the stamp is
        // published to other threads under the mutex state lock, which orders it.
        let stamp = class.inner.stamp.fetch_add(1, Ordering::Relaxed) + 1;
        WwAcquireCtx {
            class: class.clone(),
            stamp,
            acquired: Arc::new(AtomicUsize::new(0)),
            contending: None,
            done: false,
        }
    }

    /// The ticket: smaller is older, and older wins.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// The class this context locks.
    pub fn class(&self) -> &WwClass {
        &self.class
    }

    /// How many mutexes this context holds now (guards alive).
    pub fn acquired(&self) -> usize {
        self.acquired.load(Ordering::Acquire)
    }

    /// Marks the end of the acquire phase (`ww_acquire_done`); later lock calls with this
    /// context fail with [`WwError::AcquireDone`]. Guards already taken stay valid.
    pub fn acquire_done(&mut self) {
        self.done = true;
    }

    /// Whether [`acquire_done`](Self::acquire_done) was called.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Ends the transaction (`ww_acquire_fini`), reporting [`WwError::StillHeld`] if guards
    /// taken with it are still alive. They stay valid and release their mutexes when dropped.
    pub fn fini(self) -> Result<(), WwError> {
        match self.acquired() {
            0 => Ok(()),
            n => Err(WwError::StillHeld(n)),
        }
    }
}

impl fmt::Debug for WwAcquireCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WwAcquireCtx")
            .field("class", &self.class.name())
            .field("stamp", &self.stamp)
            .field("acquired", &self.acquired())
            .field("done", &self.done)
            .finish()
    }
}

/// A mutex of a wait-die class protecting a `T` (`struct ww_mutex`).
///
/// # Invariants
/// `data` is locked only by the thread that owns the ww lock, so its own lock never contends.
pub struct WwMutex<T> {
    core: LockCore,
    data: Mutex<T>,
}

impl<T> WwMutex<T> {
    /// A new unlocked mutex of `class` (`ww_mutex_init`).
    pub fn new(class: &WwClass, value: T) -> WwMutex<T> {
        let id = class.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        WwMutex {
            core: LockCore::new(class.clone(), id),
            data: Mutex::new(value),
        }
    }

    /// The class of this mutex.
    pub fn class(&self) -> &WwClass {
        &self.core.class
    }

    /// Locks, blocking (`ww_mutex_lock`). With a context: [`WwError::Deadlock`] if an older
    /// context owns or awaits it while `ctx` holds locks, [`WwError::Already`] if `ctx` owns it.
    /// Without a context it is a plain mutex lock and cannot fail.
    ///
    /// ```
    /// use fence::ww_mutex::{WwAcquireCtx, WwClass, WwError, WwMutex};
    /// let class = WwClass::new("c");
    /// let (a, b) = (WwMutex::new(&class, 0), WwMutex::new(&class, 0));
    /// let mut old = WwAcquireCtx::new(&class);
    /// let mut young = WwAcquireCtx::new(&class);
    /// let _ga = a.lock(Some(&mut old)).unwrap();
    /// let gb = b.lock(Some(&mut young)).unwrap();
    /// // The younger context holds `b` and wants `a`, held by the older one: it dies.
    /// assert_eq!(a.lock(Some(&mut young)).unwrap_err(), WwError::Deadlock);
    /// assert_eq!(b.lock(Some(&mut young)).unwrap_err(), WwError::Deadlock); // back off first
    /// drop(gb);
    /// ```
    pub fn lock(&self, ctx: Option<&mut WwAcquireCtx>) -> Result<WwMutexGuard<'_, T>, WwError> {
        let own = self.core.acquire(ctx, Mode::Block, false, None)?;
        Ok(self.guard(own))
    }

    /// Like [`lock`](Self::lock), but gives up with [`WwError::Interrupted`] (`EINTR`) once
    /// `intr` is raised (`ww_mutex_lock_interruptible`). A raised interrupt does not stop an
    /// acquisition that needs no wait.
    ///
    /// ```
    /// use fence::ww_mutex::{WwClass, WwError, WwMutex};
    /// use fence::Interrupt;
    /// let m = WwMutex::new(&WwClass::new("c"), ());
    /// let _held = m.lock(None).unwrap();
    /// let intr = Interrupt::new();
    /// intr.raise(); // a signal is pending: the wait gives up at once
    /// assert_eq!(m.lock_interruptible(None, &intr).unwrap_err(), WwError::Interrupted);
    /// ```
    pub fn lock_interruptible(
        &self,
        ctx: Option<&mut WwAcquireCtx>,
        intr: &Interrupt,
    ) -> Result<WwMutexGuard<'_, T>, WwError> {
        let own = self.core.acquire(ctx, Mode::Block, false, Some(intr))?;
        Ok(self.guard(own))
    }

    /// Takes the contended mutex after backing off (`ww_mutex_lock_slow`): `ctx` must hold no
    /// lock ([`WwError::NotBackedOff`] otherwise), so this blocks and never dies.
    pub fn lock_slow(&self, ctx: &mut WwAcquireCtx) -> Result<WwMutexGuard<'_, T>, WwError> {
        let own = self.core.acquire(Some(ctx), Mode::Block, true, None)?;
        Ok(self.guard(own))
    }

    /// [`lock_slow`](Self::lock_slow) that gives up with `EINTR` once `intr` is raised
    /// (`ww_mutex_lock_slow_interruptible`).
    pub fn lock_slow_interruptible(
        &self,
        ctx: &mut WwAcquireCtx,
        intr: &Interrupt,
    ) -> Result<WwMutexGuard<'_, T>, WwError> {
        let own = self
            .core
            .acquire(Some(ctx), Mode::Block, true, Some(intr))?;
        Ok(self.guard(own))
    }

    /// Locks only if free and nobody is queued (`ww_mutex_trylock`): [`WwError::WouldBlock`]
    /// (`EBUSY`) otherwise, [`WwError::Already`] if `ctx` owns it. Never waits, never dies.
    ///
    /// ```
    /// use fence::ww_mutex::{WwClass, WwError, WwMutex};
    /// let m = WwMutex::new(&WwClass::new("c"), ());
    /// let g = m.try_lock(None).unwrap();
    /// assert_eq!(m.try_lock(None).unwrap_err(), WwError::WouldBlock);
    /// drop(g);
    /// ```
    pub fn try_lock(&self, ctx: Option<&mut WwAcquireCtx>) -> Result<WwMutexGuard<'_, T>, WwError> {
        let own = self.core.acquire(ctx, Mode::Try, false, None)?;
        Ok(self.guard(own))
    }

    /// Whether someone owns the mutex now (`ww_mutex_is_locked`); a snapshot.
    pub fn is_locked(&self) -> bool {
        self.core.shared.state.lock().owner.is_some()
    }

    /// How many lockers are queued now; a snapshot for tests and debug output.
    pub fn waiter_count(&self) -> usize {
        self.core.shared.state.lock().waiters.len()
    }

    /// Mutable access through exclusive ownership; no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Consumes the mutex, returning the data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }

    fn guard<'a>(&'a self, owner: Ownership<'a>) -> WwMutexGuard<'a, T> {
        // INVARIANT: we own the ww lock, and the previous owner's guard released `data`
        // before it released the ownership, so this lock does not wait.
        WwMutexGuard {
            data: self.data.lock(),
            _owner: owner,
        }
    }
}

impl<T> fmt::Debug for WwMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.core.shared.state.lock();
        f.debug_struct("WwMutex")
            .field("class", &self.core.class.name())
            .field("owner", &st.owner)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}

/// Proof of holding a [`WwMutex`]: derefs to the data; dropping it unlocks (`ww_mutex_unlock`).
///
/// Not `Send`: a mutex is unlocked by the thread that locked it, as in Linux.
pub struct WwMutexGuard<'a, T> {
    // Field order is drop order: the data is released before the ownership.
    data: MutexGuard<'a, T>,
    _owner: Ownership<'a>,
}

impl<T> WwMutexGuard<'_, T> {
    /// Unlocks now (the same as dropping the guard).
    pub fn unlock(self) {}

    /// The stamp of the context holding this guard, `None` for a plain lock.
    pub fn stamp(&self) -> Option<u64> {
        match self._owner.core.shared.state.lock().owner {
            Some(Holder::Ctx(s)) => Some(s),
            _ => None,
        }
    }
}

impl<T> Deref for WwMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T> DerefMut for WwMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T: fmt::Debug> fmt::Debug for WwMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WwMutexGuard").field(&*self.data).finish()
    }
}
