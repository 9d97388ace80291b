//! loom models of the fence core: every interleaving of signal against callbacks and waits.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p fence --test loom_fence --release`.
//! Each model is two threads and a handful of lock operations, so it finishes in seconds.
#![cfg(loom)]

use fence::{DmaFence, FenceError, Interrupt, SimpleFenceOps};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

fn fence() -> DmaFence {
    SimpleFenceOps::create("loom", "loom", 1, 1)
}

/// A callback that counts its runs.
fn counter() -> (Arc<AtomicUsize>, impl FnOnce(&DmaFence) + Send + 'static) {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    (n, move |_: &DmaFence| {
        m.fetch_add(1, Ordering::SeqCst);
    })
}

/// A callback runs exactly once if `add_callback` succeeded and never if it failed, however the
/// add races the signal.
#[test]
fn signal_races_add_callback() {
    loom::model(|| {
        let f = fence();
        let g = f.clone();
        let t = thread::spawn(move || g.signal().unwrap());
        let (runs, cb) = counter();
        let added = f.add_callback(cb).is_ok();
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), usize::from(added));
    });
}

/// `remove_callback` returning `true` means the callback never runs; `false` means it ran
/// exactly once (checked after the signalling thread finished).
#[test]
fn signal_races_remove_callback() {
    loom::model(|| {
        let f = fence();
        let (runs, cb) = counter();
        let id = f.add_callback(cb).unwrap();
        let g = f.clone();
        let t = thread::spawn(move || g.signal().unwrap());
        let removed = f.remove_callback(id);
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), usize::from(!removed));
    });
}

/// A wait never misses the wake-up of a signal that races it (no lost wake-up), and returns Ok.
#[test]
fn signal_races_wait() {
    loom::model(|| {
        let f = fence();
        let g = f.clone();
        let t = thread::spawn(move || g.signal().unwrap());
        assert!(f.wait(None).is_ok());
        t.join().unwrap();
    });
}

/// An interrupt raised during a wait always ends it: with `Interrupted`, or `Ok` if the fence
/// had signaled.
#[test]
fn interrupt_races_wait() {
    loom::model(|| {
        let f = fence();
        let intr = Interrupt::new();
        let i2 = intr.clone();
        let t = thread::spawn(move || i2.raise());
        let r = f.wait(Some(&intr));
        t.join().unwrap();
        assert_eq!(r, Err(FenceError::Interrupted));
    });
}

/// The last drop of an unsignaled fence with a pending callback, racing a signal through another
/// reference, runs the callback exactly once.
#[test]
fn last_drop_races_signal() {
    loom::model(|| {
        let f = fence();
        let (runs, cb) = counter();
        f.add_callback(cb).unwrap();
        let g = f.clone();
        let t = thread::spawn(move || {
            let _ = g.signal();
        });
        drop(f);
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

/// Two threads dropping the last two handles of an unsignaled fence with a pending callback:
/// exactly one of them is the last and signals (`EDEADLK`), so the callback runs exactly once.
#[test]
fn concurrent_last_drops_run_callback_once() {
    loom::model(|| {
        let f = fence();
        let (runs, cb) = counter();
        f.add_callback(cb).unwrap();
        let g = f.clone();
        let t = thread::spawn(move || drop(g));
        drop(f);
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}
