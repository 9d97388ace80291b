//! loom models of the wait-die ww_mutex: every interleaving of a few contexts taking the same
//! mutexes in different orders, and an `Interrupt` raised while a locker waits.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p fence --test loom_ww_mutex --release`.
#![cfg(loom)]

use fence::ww_mutex::{WwAcquireCtx, WwClass, WwError, WwMutex};
use fence::Interrupt;
use loom::sync::Arc;
use loom::thread;

/// Locks `order` of `locks` with `ctx`, backing off on EDEADLK; returns how often it died.
fn lock_all(locks: &[WwMutex<u32>], order: &[usize], ctx: &mut WwAcquireCtx) -> usize {
    let mut deaths = 0;
    let mut held = Vec::new();
    let mut slow: Option<usize> = None;
    'retry: loop {
        for &i in order {
            if slow == Some(i) {
                continue;
            }
            match locks[i].lock(Some(ctx)) {
                Ok(g) => held.push(g),
                Err(WwError::Deadlock) => {
                    deaths += 1;
                    held.clear();
                    held.push(
                        locks[i]
                            .lock_slow(ctx)
                            .expect("holds nothing: lock_slow waits"),
                    );
                    slow = Some(i);
                    continue 'retry;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        break;
    }
    for g in &mut held {
        **g += 1;
    }
    assert_eq!(ctx.acquired(), order.len());
    deaths
}

fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    b.check(f);
}

/// Two contexts taking two mutexes in opposite orders always both finish, and the older one never dies.
#[test]
fn two_contexts_opposite_orders_finish_and_older_never_dies() {
    model(3, || {
        let class = WwClass::new("loom");
        let locks = Arc::new(vec![WwMutex::new(&class, 0), WwMutex::new(&class, 0)]);
        let mut old = WwAcquireCtx::new(&class);
        let young = WwAcquireCtx::new(&class);
        let l2 = locks.clone();
        let t = thread::spawn(move || {
            let mut young = young;
            lock_all(&l2, &[1, 0], &mut young);
        });
        assert_eq!(
            lock_all(&locks, &[0, 1], &mut old),
            0,
            "the older context died"
        );
        t.join().unwrap();
        for l in locks.iter() {
            assert_eq!(*l.lock(None).unwrap(), 2);
        }
    });
}

/// Three contexts taking three mutexes in rotated orders always finish, and the oldest never dies.
#[test]
fn three_contexts_rotated_orders_finish_and_oldest_never_dies() {
    model(3, || {
        let class = WwClass::new("loom");
        let locks = Arc::new((0..3).map(|_| WwMutex::new(&class, 0)).collect::<Vec<_>>());
        let mut oldest = WwAcquireCtx::new(&class);
        let ctxs = [WwAcquireCtx::new(&class), WwAcquireCtx::new(&class)];
        let orders: [&'static [usize]; 2] = [&[1, 2, 0], &[2, 0, 1]];
        let threads: Vec<_> = ctxs
            .into_iter()
            .zip(orders)
            .map(|(ctx, order)| {
                let l = locks.clone();
                thread::spawn(move || {
                    let mut ctx = ctx;
                    lock_all(&l, order, &mut ctx);
                })
            })
            .collect();
        assert_eq!(
            lock_all(&locks, &[0, 1, 2], &mut oldest),
            0,
            "the oldest context died"
        );
        for t in threads {
            t.join().unwrap();
        }
        for l in locks.iter() {
            assert_eq!(*l.lock(None).unwrap(), 3);
        }
    });
}

/// A plain (context-less) locker and a context contending for one mutex both finish.
#[test]
fn plain_and_ctx_lockers_share_a_mutex() {
    model(3, || {
        let class = WwClass::new("loom");
        let m = Arc::new(WwMutex::new(&class, 0));
        let m2 = m.clone();
        let c2 = class.clone();
        let t = thread::spawn(move || {
            let mut ctx = WwAcquireCtx::new(&c2);
            *m2.lock(Some(&mut ctx)).unwrap() += 1;
        });
        *m.lock(None).unwrap() += 1;
        t.join().unwrap();
        assert_eq!(*m.lock(None).unwrap(), 2);
    });
}

/// A raise racing an interruptible lock wait on a held mutex always ends that wait (no lost
/// wake-up): with the mutex held throughout, the wait can only end as `Interrupted`.
#[test]
fn raise_ends_an_interruptible_wait_on_a_held_mutex() {
    model(2, || {
        let class = WwClass::new("loom");
        let m = Arc::new(WwMutex::new(&class, 0));
        let held = m.lock(None).unwrap();
        let intr = Interrupt::new();
        let (m2, i2) = (m.clone(), intr.clone());
        let t = thread::spawn(move || {
            let mut ctx = WwAcquireCtx::new(m2.class());
            m2.lock_interruptible(Some(&mut ctx), &i2).map(|_| ())
        });
        intr.raise();
        assert_eq!(t.join().unwrap(), Err(WwError::Interrupted));
        assert_eq!(m.waiter_count(), 0);
        drop(held);
    });
}

/// A raise racing both an interruptible lock wait and the unlock always ends the wait, either
/// with the lock or with `Interrupted`, and leaves the mutex free and unqueued.
#[test]
fn raise_racing_unlock_ends_the_interruptible_wait_either_way() {
    model(2, || {
        let class = WwClass::new("loom");
        let m = Arc::new(WwMutex::new(&class, 0));
        let held = m.lock(None).unwrap();
        let intr = Interrupt::new();
        let (m2, i2) = (m.clone(), intr.clone());
        let t = thread::spawn(move || m2.lock_interruptible(None, &i2).map(|mut g| *g += 1));
        intr.raise();
        drop(held);
        let r = t.join().unwrap();
        assert!(matches!(r, Ok(()) | Err(WwError::Interrupted)), "{r:?}");
        assert!(!m.is_locked());
        assert_eq!(m.waiter_count(), 0);
    });
}
