//! Wound/wait mutex rules (wait-die), one test per rule. Mirrors the spirit of
//! `kernel/locking/test-ww_mutex.c`: no wall-clock assertions, threads are synchronised by
//! watching the mutex's queue.

use fence::ww_mutex::{WwAcquireCtx, WwClass, WwError, WwMutex};
use fence::Interrupt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use uapi::{AsErrno, Errno};

/// Spins (yielding) until `m` has `n` queued lockers.
fn wait_for_waiters<T>(m: &WwMutex<T>, n: usize) {
    while m.waiter_count() != n {
        thread::yield_now();
    }
}

#[test]
fn errors_map_to_linux_errnos() {
    assert_eq!(WwError::Deadlock.errno(), Errno::EDEADLK);
    assert_eq!(WwError::Already.errno(), Errno::EALREADY);
    assert_eq!(WwError::Interrupted.errno(), Errno::EINTR);
    assert_eq!(WwError::WouldBlock.errno(), Errno::EBUSY);
    assert_eq!(WwError::NotBackedOff { held: 1 }.errno(), Errno::EDEADLK);
    assert_eq!(WwError::AcquireDone.errno(), Errno::EINVAL);
    assert_eq!(WwError::WrongClass.errno(), Errno::EINVAL);
    assert_eq!(WwError::StillHeld(2).errno(), Errno::EBUSY);
}

#[test]
fn stamps_increase_older_is_smaller() {
    let class = WwClass::new("t");
    let a = WwAcquireCtx::new(&class);
    let b = WwAcquireCtx::new(&class);
    assert!(a.stamp() < b.stamp());
}

#[test]
fn lock_without_ctx_is_a_plain_mutex() {
    let class = WwClass::new("t");
    let m = WwMutex::new(&class, 5);
    {
        let mut g = m.lock(None).unwrap();
        *g += 1;
        assert!(m.is_locked());
        assert_eq!(g.stamp(), None);
        assert_eq!(m.try_lock(None).unwrap_err(), WwError::WouldBlock);
    }
    assert!(!m.is_locked());
    assert_eq!(*m.try_lock(None).unwrap(), 6);
}

#[test]
fn ctx_counts_the_locks_it_holds() {
    let class = WwClass::new("t");
    let (a, b) = (WwMutex::new(&class, ()), WwMutex::new(&class, ()));
    let mut ctx = WwAcquireCtx::new(&class);
    let ga = a.lock(Some(&mut ctx)).unwrap();
    assert_eq!(ga.stamp(), Some(ctx.stamp()));
    let gb = b.lock(Some(&mut ctx)).unwrap();
    assert_eq!(ctx.acquired(), 2);
    drop(ga);
    assert_eq!(ctx.acquired(), 1);
    gb.unlock();
    assert_eq!(ctx.acquired(), 0);
    ctx.fini().unwrap();
}

#[test]
fn same_ctx_twice_is_ealready() {
    let class = WwClass::new("t");
    let m = WwMutex::new(&class, ());
    let mut ctx = WwAcquireCtx::new(&class);
    let _g = m.lock(Some(&mut ctx)).unwrap();
    assert_eq!(m.lock(Some(&mut ctx)).unwrap_err(), WwError::Already);
    assert_eq!(m.try_lock(Some(&mut ctx)).unwrap_err(), WwError::Already);
    assert_eq!(ctx.acquired(), 1);
}

#[test]
fn younger_holding_locks_gets_edeadlk_from_older_owner() {
    let class = WwClass::new("t");
    let (a, b) = (WwMutex::new(&class, ()), WwMutex::new(&class, ()));
    let mut old = WwAcquireCtx::new(&class);
    let mut young = WwAcquireCtx::new(&class);
    let _ga = a.lock(Some(&mut old)).unwrap();
    let gb = b.lock(Some(&mut young)).unwrap();
    let err = a.lock(Some(&mut young)).unwrap_err();
    assert_eq!(err.errno(), Errno::EDEADLK);
    // The died context still holds its lock until it backs off.
    assert_eq!(young.acquired(), 1);
    // Not backing off and trying again is refused, never a deadlock.
    assert_eq!(a.lock(Some(&mut young)).unwrap_err(), WwError::Deadlock);
    drop(gb);
}

#[test]
fn younger_holding_nothing_waits_instead_of_dying() {
    let class = WwClass::new("t");
    let m = Arc::new(WwMutex::new(&class, 0));
    let mut old = WwAcquireCtx::new(&class);
    let young = WwAcquireCtx::new(&class);
    let g = m.lock(Some(&mut old)).unwrap();
    let m2 = m.clone();
    let t = thread::spawn(move || {
        let mut young = young;
        let mut g = m2
            .lock(Some(&mut young))
            .expect("no lock held: waits, never dies");
        *g += 1;
    });
    wait_for_waiters(&m, 1);
    drop(g);
    t.join().unwrap();
    assert_eq!(*m.lock(None).unwrap(), 1);
}

#[test]
fn older_waits_for_younger_owner_and_never_backs_off() {
    let class = WwClass::new("t");
    let (a, b) = (
        Arc::new(WwMutex::new(&class, ())),
        Arc::new(WwMutex::new(&class, ())),
    );
    let old = WwAcquireCtx::new(&class);
    let mut young = WwAcquireCtx::new(&class);
    let gb = b.lock(Some(&mut young)).unwrap();
    let (a2, b2) = (a.clone(), b.clone());
    let t = thread::spawn(move || {
        let mut old = old;
        let _ga = a2.lock(Some(&mut old)).unwrap();
        // Holds `a`, and the owner of `b` is younger: waits.
        let _gb = b2
            .lock(Some(&mut old))
            .expect("the older context never gets EDEADLK");
        old.acquired()
    });
    wait_for_waiters(&b, 1);
    // The younger now wants `a`, owned by the older: it dies, backs off, waits with lock_slow.
    assert_eq!(a.lock(Some(&mut young)).unwrap_err(), WwError::Deadlock);
    drop(gb);
    let ga = a.lock_slow(&mut young).unwrap();
    assert_eq!(young.acquired(), 1);
    drop(ga);
    assert_eq!(t.join().unwrap(), 2);
}

#[test]
fn lock_slow_with_locks_held_is_refused() {
    let class = WwClass::new("t");
    let (a, b) = (WwMutex::new(&class, ()), WwMutex::new(&class, ()));
    let mut ctx = WwAcquireCtx::new(&class);
    let _ga = a.lock(Some(&mut ctx)).unwrap();
    let err = b.lock_slow(&mut ctx).unwrap_err();
    assert_eq!(err, WwError::NotBackedOff { held: 1 });
    assert_eq!(err.errno(), Errno::EDEADLK);
}

#[test]
fn lock_slow_blocks_until_the_older_owner_unlocks() {
    let class = WwClass::new("t");
    let m = Arc::new(WwMutex::new(&class, 0u32));
    let mut old = WwAcquireCtx::new(&class);
    let young = WwAcquireCtx::new(&class);
    let mut g = m.lock(Some(&mut old)).unwrap();
    let m2 = m.clone();
    let t = thread::spawn(move || {
        let mut young = young;
        let g = m2.lock_slow(&mut young).unwrap();
        *g
    });
    wait_for_waiters(&m, 1);
    *g = 7;
    drop(g);
    assert_eq!(t.join().unwrap(), 7);
}

#[test]
fn older_arriving_later_makes_younger_waiter_die() {
    let class = WwClass::new("t");
    let (m, n) = (
        Arc::new(WwMutex::new(&class, ())),
        Arc::new(WwMutex::new(&class, ())),
    );
    let oldest = WwAcquireCtx::new(&class);
    let middle = WwAcquireCtx::new(&class);
    let mut youngest = WwAcquireCtx::new(&class);
    let gm = m.lock(Some(&mut youngest)).unwrap();
    // `middle` holds `n` and waits for `m` (owned by the younger `youngest`).
    let (m2, n2) = (m.clone(), n.clone());
    let tm = thread::spawn(move || {
        let mut middle = middle;
        let _gn = n2.lock(Some(&mut middle)).unwrap();
        m2.lock(Some(&mut middle)).map(|_| ())
    });
    wait_for_waiters(&m, 1);
    // `oldest` (holding nothing) queues ahead of `middle`, which must now die.
    let m3 = m.clone();
    let to = thread::spawn(move || {
        let mut oldest = oldest;
        m3.lock(Some(&mut oldest)).map(|_| ())
    });
    assert_eq!(tm.join().unwrap(), Err(WwError::Deadlock));
    wait_for_waiters(&m, 1);
    drop(gm);
    to.join().unwrap().unwrap();
}

#[test]
fn unlock_hands_off_to_the_queued_waiter() {
    let class = WwClass::new("t");
    let m = Arc::new(WwMutex::new(&class, 0));
    let g = m.lock(None).unwrap();
    let m2 = m.clone();
    let t = thread::spawn(move || *m2.lock(None).unwrap() += 1);
    wait_for_waiters(&m, 1);
    drop(g);
    // A newcomer cannot overtake the waiter: it fails, or comes after the waiter's increment.
    match m.try_lock(None) {
        Ok(g) => assert_eq!(*g, 1),
        Err(e) => assert_eq!(e, WwError::WouldBlock),
    }
    t.join().unwrap();
    assert_eq!(*m.try_lock(None).unwrap(), 1);
}

#[test]
fn interruptible_lock_returns_eintr_when_raised() {
    let class = WwClass::new("t");
    let m = Arc::new(WwMutex::new(&class, ()));
    let g = m.lock(None).unwrap();
    let intr = Interrupt::new();
    let (m2, i2) = (m.clone(), intr.clone());
    let t = thread::spawn(move || {
        let mut ctx = WwAcquireCtx::new(m2.class());
        m2.lock_interruptible(Some(&mut ctx), &i2)
            .map(|_| ctx.acquired())
    });
    wait_for_waiters(&m, 1);
    intr.raise();
    let err = t.join().unwrap().unwrap_err();
    assert_eq!(err.errno(), Errno::EINTR);
    assert_eq!(m.waiter_count(), 0);
    drop(g);
    assert!(!m.is_locked());
}

#[test]
fn interruptible_lock_of_a_free_mutex_succeeds_even_if_raised() {
    let class = WwClass::new("t");
    let m = WwMutex::new(&class, ());
    let intr = Interrupt::new();
    intr.raise();
    let mut ctx = WwAcquireCtx::new(&class);
    assert!(m.lock_interruptible(Some(&mut ctx), &intr).is_ok());
}

#[test]
fn lock_slow_interruptible_returns_eintr() {
    let class = WwClass::new("t");
    let m = WwMutex::new(&class, ());
    let _g = m.lock(None).unwrap();
    let intr = Interrupt::new();
    intr.raise();
    let mut ctx = WwAcquireCtx::new(&class);
    assert_eq!(
        m.lock_slow_interruptible(&mut ctx, &intr).unwrap_err(),
        WwError::Interrupted
    );
    assert_eq!(ctx.acquired(), 0);
}

#[test]
fn acquire_done_refuses_more_locks() {
    let class = WwClass::new("t");
    let (a, b) = (WwMutex::new(&class, ()), WwMutex::new(&class, ()));
    let mut ctx = WwAcquireCtx::new(&class);
    let _ga = a.lock(Some(&mut ctx)).unwrap();
    ctx.acquire_done();
    assert!(ctx.is_done());
    assert_eq!(b.lock(Some(&mut ctx)).unwrap_err(), WwError::AcquireDone);
    assert_eq!(b.lock(None).map(|_| ()), Ok(()));
}

#[test]
fn ctx_of_another_class_is_refused() {
    let (c1, c2) = (WwClass::new("one"), WwClass::new("two"));
    assert!(!c1.same(&c2));
    let m = WwMutex::new(&c1, ());
    let mut ctx = WwAcquireCtx::new(&c2);
    assert_eq!(m.lock(Some(&mut ctx)).unwrap_err(), WwError::WrongClass);
    assert_eq!(ctx.acquired(), 0);
}

#[test]
fn fini_with_locks_held_reports_and_guards_still_unlock() {
    let class = WwClass::new("t");
    let m = WwMutex::new(&class, ());
    let mut ctx = WwAcquireCtx::new(&class);
    let g = m.lock(Some(&mut ctx)).unwrap();
    assert_eq!(ctx.fini().unwrap_err(), WwError::StillHeld(1));
    assert!(m.is_locked());
    drop(g);
    assert!(!m.is_locked());
}

#[test]
fn backoff_loop_in_opposite_orders_always_completes() {
    let class = WwClass::new("t");
    let locks: Arc<Vec<WwMutex<u64>>> = Arc::new((0..4).map(|_| WwMutex::new(&class, 0)).collect());
    let deadlocks = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (locks, class, deadlocks) = (locks.clone(), class.clone(), deadlocks.clone());
            thread::spawn(move || {
                for _ in 0..200 {
                    let order: Vec<usize> = if t % 2 == 0 {
                        (0..4).collect()
                    } else {
                        (0..4).rev().collect()
                    };
                    let mut ctx = WwAcquireCtx::new(&class);
                    let mut held = Vec::new();
                    let mut slow: Option<usize> = None;
                    'retry: loop {
                        for &i in &order {
                            if slow == Some(i) {
                                continue;
                            }
                            match locks[i].lock(Some(&mut ctx)) {
                                Ok(g) => held.push(g),
                                Err(WwError::Deadlock) => {
                                    deadlocks.fetch_add(1, Ordering::Relaxed);
                                    held.clear();
                                    held.push(locks[i].lock_slow(&mut ctx).unwrap());
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
                    assert_eq!(ctx.acquired(), 4);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for l in locks.iter() {
        assert_eq!(*l.lock(None).unwrap(), 800);
    }
}

/// A raise from another thread ends a parked interruptible wait promptly: the waiter is woken by
/// `raise` itself, not by a timer. Only a wait of more than 5 s (a lost wake-up) fails the test.
#[test]
fn raise_wakes_a_parked_interruptible_waiter_promptly() {
    use std::sync::mpsc;
    use std::time::Duration;

    let class = WwClass::new("t");
    let m = Arc::new(WwMutex::new(&class, ()));
    let g = m.lock(None).unwrap();
    let intr = Interrupt::new();
    let (tx, rx) = mpsc::channel();
    let t = {
        let (m, intr) = (m.clone(), intr.clone());
        thread::spawn(move || {
            let mut ctx = WwAcquireCtx::new(m.class());
            let r = m.lock_interruptible(Some(&mut ctx), &intr).map(|_| ());
            tx.send(r).unwrap();
        })
    };
    wait_for_waiters(&m, 1);
    let raiser = {
        let intr = intr.clone();
        thread::spawn(move || intr.raise())
    };
    let r = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the interrupted ww_mutex wait did not end within 5 s of raise()");
    assert_eq!(r, Err(WwError::Interrupted));
    raiser.join().unwrap();
    t.join().unwrap();
    assert_eq!(m.waiter_count(), 0);
    drop(g);
    assert!(!m.is_locked());
}
