//! The synchronisation primitives the workspace's concurrent cores are built from, behind one
//! facade shared by every crate that has loom models (`fence`: fences, ww_mutex, resv; `dmabuf`:
//! the mapping cache's zombie protocol; `constraint`: the migration gate).
//!
//! Normally these are `parking_lot` and `std` types. Built with `RUSTFLAGS="--cfg loom"` they are
//! loom's model-checked equivalents, so the loom tests (`tests/loom_*.rs` of those crates)
//! explore every interleaving of the same code that ships (the pattern of tokio's
//! `loom/mod.rs`).
//!
//! Only what those crates use is re-exported; their modelled code imports its locks, condition
//! variables, atomics and `Arc` from here and never from `std::sync` or `parking_lot` directly.
//!
//! # One API under both builds
//!
//! The code is written against the `parking_lot` API: `Mutex::lock()` returns the guard (no
//! poisoning), `Condvar::wait(&mut guard)` re-locks in place and `Condvar::wait_for(&mut guard,
//! dur)` returns a [`WaitTimeoutResult`]. loom's types follow `std` instead (guards by value,
//! `LockResult`), so under `cfg(loom)` thin wrappers give them the `parking_lot` shape. Under
//! loom a timed wait never times out (loom does not model time); the model tests therefore only
//! use timed waits where a wake-up is guaranteed.
//!
//! `Weak` exists only in the normal build (loom has none); code that must run under loom avoids it.

#![warn(missing_docs)]

#[cfg(not(loom))]
mod imp {
    pub use parking_lot::{Condvar, Mutex, MutexGuard, WaitTimeoutResult};
    pub use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub use std::sync::{Arc, Weak};
}

#[cfg(loom)]
mod imp {
    pub use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub use loom::sync::Arc;
    use std::ops::{Deref, DerefMut};
    use std::time::Duration;

    /// loom's mutex with the `parking_lot` API (no poisoning).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    /// A guard of [`Mutex`]; the `Option` lets [`Condvar::wait`] re-lock it in place.
    ///
    /// # Invariants
    /// The option is `Some` except inside [`Condvar::wait`].
    #[derive(Debug)]
    pub struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        /// Locks, blocking the (model) thread.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }

        /// Locks if free.
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok().map(|g| MutexGuard(Some(g)))
        }

        /// Consumes the mutex.
        pub fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(|e| e.into_inner())
        }

        /// Mutable access without locking.
        pub fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0
                .as_deref()
                .expect("guard is only empty inside Condvar::wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0
                .as_deref_mut()
                .expect("guard is only empty inside Condvar::wait")
        }
    }

    /// The result of [`Condvar::wait_for`].
    #[derive(Debug, Clone, Copy)]
    pub struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        /// Whether the wait timed out (never, under loom).
        pub fn timed_out(&self) -> bool {
            self.0
        }
    }

    /// loom's condition variable with the `parking_lot` API.
    #[derive(Debug, Default)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        /// Unlocks, sleeps until notified, re-locks.
        pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard
                .0
                .take()
                .expect("guard is only empty inside Condvar::wait");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
        }

        /// Like [`Condvar::wait`]; loom does not model time, so this never times out.
        pub fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _timeout: Duration,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }

        /// Wakes one waiter.
        pub fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }

        /// Wakes every waiter.
        pub fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }
}

pub use imp::*;
