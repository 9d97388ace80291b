//! The wait-die algorithm itself: the ownership state of one mutex, its wait queue, and the
//! acquire path that decides between taking, waiting and dying (`kernel/locking/ww_mutex.h`:
//! `__ww_mutex_add_waiter`, `__ww_mutex_check_kill`, `__ww_mutex_kill`).
//!
//! Everything here runs under the mutex's private state lock; waiters sleep on its condition
//! variable, every change of owner or queue notifies it, and each waiter re-checks the rules
//! when it wakes. An interruptible waiter also registers the lock's shared state with its
//! [`Interrupt`], so that [`Interrupt::raise`] notifies the same condition variable: every wait
//! parks until woken, none polls.

use super::{WwAcquireCtx, WwClass, WwError};
use crate::fence::{Interrupt, Registration, Wakee};
use crate::sync::{Arc, AtomicUsize, Condvar, Mutex, Ordering};

/// Who owns a mutex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    /// Locked without a context.
    Plain,
    /// Locked by the context with this stamp.
    Ctx(u64),
}

/// A queued locker.
#[derive(Debug, Clone, Copy)]
pub(super) struct Waiter {
    ticket: u64,
    /// The waiter's context stamp, `None` for a plain waiter.
    stamp: Option<u64>,
}

/// The ownership state of one mutex, under `LockCore::state`.
///
/// # Invariants
/// Waiters with a stamp are in increasing stamp order; plain waiters keep their arrival order.
#[derive(Debug, Default)]
pub(super) struct LockState {
    pub(super) owner: Option<Holder>,
    pub(super) waiters: Vec<Waiter>,
    next_ticket: u64,
}

impl LockState {
    /// Whether the owner is a context older than `stamp`.
    fn owner_older_than(&self, stamp: u64) -> bool {
        matches!(self.owner, Some(Holder::Ctx(s)) if s < stamp)
    }
}

/// How a lock call behaves when the mutex is not free.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Block,
    Try,
}

/// The ownership state of one mutex and the condition variable its waiters sleep on.
///
/// It lives behind an `Arc` so that an interruptible waiter can hand a clone to its
/// [`Interrupt`]: the registration then keeps this alive on its own, and can never outlive
/// what it points to even though the [`WwMutex`](super::WwMutex) owns its [`LockCore`] by value.
#[derive(Default)]
pub(crate) struct LockShared {
    pub(super) state: Mutex<LockState>,
    pub(super) wake: Condvar,
}

impl LockShared {
    /// Wakes every waiter so it re-checks; used by [`Interrupt::raise`] after it has set its
    /// raised flag.
    pub(crate) fn wake_all(&self) {
        // Take the state lock before notifying. A waiter checks `Interrupt::is_raised` and then
        // sleeps while holding this lock (`Condvar::wait` releases it atomically with going to
        // sleep). `raise` stored its flag before calling us, so when we get the lock the waiter
        // is either
        //   - before its check: it will see the flag once it gets the lock after us, or
        //   - asleep: it released the lock inside `wait`, so the notify below reaches it.
        // Without the lock, the notify could land between the waiter's check (flag not yet
        // set) and its sleep, and be lost: the waiter would sleep until the next unlock.
        let _st = self.state.lock();
        self.wake.notify_all();
    }
}

/// The type-independent part of a [`WwMutex`](super::WwMutex): class, id and ownership.
pub(super) struct LockCore {
    pub(super) class: WwClass,
    pub(super) id: u64,
    pub(super) shared: Arc<LockShared>,
}

impl LockCore {
    /// A new unlocked core.
    pub(super) fn new(class: WwClass, id: u64) -> LockCore {
        LockCore {
            class,
            id,
            shared: Arc::new(LockShared::default()),
        }
    }

    /// Takes ownership for `ctx` (or plainly), applying the wait-die rules.
    pub(super) fn acquire(
        &self,
        mut ctx: Option<&mut WwAcquireCtx>,
        mode: Mode,
        slow: bool,
        intr: Option<&Interrupt>,
    ) -> Result<Ownership<'_>, WwError> {
        let mut held = 0;
        if let Some(c) = ctx.as_deref() {
            if !c.class.same(&self.class) {
                return Err(WwError::WrongClass);
            }
            if c.done {
                return Err(WwError::AcquireDone);
            }
            held = c.acquired();
            if slow && held > 0 {
                return Err(WwError::NotBackedOff { held });
            }
            if c.contending.is_some() && held > 0 {
                // Died before and did not back off: still not safe to block.
                return Err(WwError::Deadlock);
            }
        }
        let stamp = ctx.as_deref().map(|c| c.stamp);
        let holder = stamp.map_or(Holder::Plain, Holder::Ctx);
        let may_die = held > 0;

        // The interrupt registration of this wait, made before its first sleep. Declared before
        // the state guard so that it is dropped after it (removing it takes the interrupt's
        // list lock, which then does not nest in the state lock).
        let mut registration: Option<Registration<'_>> = None;
        let mut st = self.shared.state.lock();
        if stamp.is_some() && st.owner == Some(holder) {
            return Err(WwError::Already);
        }
        if st.owner.is_none() && st.waiters.is_empty() {
            st.owner = Some(holder);
            drop(st);
            return Ok(self.owned(ctx));
        }
        if mode == Mode::Try {
            return Err(WwError::WouldBlock);
        }
        let die = |ctx: &mut Option<&mut WwAcquireCtx>| {
            if let Some(c) = ctx.as_deref_mut() {
                c.contending = Some(self.id);
            }
            Err(WwError::Deadlock)
        };

        // Queue: plain waiters at the tail; a context before every younger context, after
        // every older one (walking back from the tail, as `__ww_mutex_add_waiter`).
        let mut pos = st.waiters.len();
        if let Some(my) = stamp {
            if may_die && st.owner_older_than(my) {
                return die(&mut ctx);
            }
            for i in (0..st.waiters.len()).rev() {
                match st.waiters[i].stamp {
                    None => continue,
                    Some(s) if s < my => {
                        if may_die {
                            // An older context is queued ahead: we would wait for it.
                            return die(&mut ctx);
                        }
                        break;
                    }
                    Some(_) => pos = i,
                }
            }
        }
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.waiters.insert(pos, Waiter { ticket, stamp });
        if stamp.is_some() && pos + 1 < st.waiters.len() {
            // Younger contexts behind us may now have to die: let them re-check.
            self.shared.wake.notify_all();
        }

        loop {
            let idx = match st.waiters.iter().position(|w| w.ticket == ticket) {
                Some(i) => i,
                // INVARIANT: only this thread removes its own entry.
                None => unreachable_waiter(),
            };
            if st.owner.is_none() && idx == 0 {
                st.waiters.remove(0);
                st.owner = Some(holder);
                if !st.waiters.is_empty() {
                    // A new owner: younger waiters holding locks must die now.
                    self.shared.wake.notify_all();
                }
                drop(st);
                return Ok(self.owned(ctx));
            }
            if let Some(my) = stamp {
                let older_ahead = st.waiters[..idx].iter().any(|w| w.stamp.is_some());
                if may_die && (st.owner_older_than(my) || older_ahead) {
                    st.waiters.remove(idx);
                    self.shared.wake.notify_all();
                    return die(&mut ctx);
                }
            }
            if let Some(i) = intr {
                // Register before the check below, once per acquisition: from then on a `raise`
                // either is seen by that check or wakes the sleep that follows it (see
                // `LockShared::wake_all` for why its notify cannot slip in between). Lock
                // order: state lock, then the interrupt's list lock; `raise` never holds its
                // list lock while it takes a state lock.
                if registration.is_none() {
                    registration = Some(i.register(Wakee::WwLock(self.shared.clone())));
                }
                if i.is_raised() {
                    st.waiters.remove(idx);
                    self.shared.wake.notify_all();
                    return Err(WwError::Interrupted);
                }
            }
            self.shared.wake.wait(&mut st);
        }
    }

    /// Records a successful acquisition in the context and builds the ownership token.
    fn owned(&self, ctx: Option<&mut WwAcquireCtx>) -> Ownership<'_> {
        let acquired = ctx.map(|c| {
            c.contending = None;
            // Relaxed is enough for the count's own thread; Release pairs with the Acquire in
            // `acquired()` for a context moved to another thread.
            c.acquired.fetch_add(1, Ordering::Release);
            c.acquired.clone()
        });
        Ownership {
            core: self,
            acquired,
        }
    }

    fn release(&self) {
        let mut st = self.shared.state.lock();
        st.owner = None;
        if !st.waiters.is_empty() {
            self.shared.wake.notify_all();
        }
    }
}

/// Never called: a waiter's queue entry is removed only by the waiter itself.
#[cold]
fn unreachable_waiter() -> ! {
    unreachable!("ww_mutex waiter entry vanished")
}

/// Ownership of a mutex; dropping it unlocks and decrements the context's count.
pub(super) struct Ownership<'a> {
    pub(super) core: &'a LockCore,
    acquired: Option<Arc<AtomicUsize>>,
}

impl Drop for Ownership<'_> {
    fn drop(&mut self) {
        self.core.release();
        if let Some(a) = &self.acquired {
            a.fetch_sub(1, Ordering::Release);
        }
    }
}
