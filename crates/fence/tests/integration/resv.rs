//! dma_resv behaviours 37-50 of `reference/kernel-semantics.md`, one test (or a few) each, plus
//! the multi-object helper [`ResvExec`].

use fence::resv::{DmaResv, DmaResvUsage, ResvError, ResvExec};
use fence::ww_mutex::{WwAcquireCtx, WwClass, WwError};
use fence::{context_alloc, DmaFence, DmaFenceArray, FenceError, Interrupt, SimpleFenceOps};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use uapi::{AsErrno, Errno};
use DmaResvUsage::{Bookkeep, Kernel, Read, Write};

fn fence_on(ctx: u64, seqno: u64) -> DmaFence {
    SimpleFenceOps::create("test", "resv", ctx, seqno)
}

fn new_fence() -> DmaFence {
    fence_on(context_alloc(1).unwrap(), 1)
}

/// Adds each (fence, usage) under one lock, reserving one slot per fence.
fn add_all(resv: &DmaResv, fences: &[(&DmaFence, DmaResvUsage)]) {
    let mut g = resv.lock(None).unwrap();
    g.reserve_fences(fences.len()).unwrap();
    for (f, u) in fences {
        g.add_fence(f, *u).unwrap();
    }
}

/// The (fence, usage) pairs of a locked walk with usage `Bookkeep` (everything).
fn entries(resv: &DmaResv) -> Vec<(DmaFence, DmaResvUsage)> {
    let g = resv.lock(None).unwrap();
    g.iter(Bookkeep).map(|e| (e.fence, e.usage)).collect()
}

#[test]
fn errors_map_to_linux_errnos() {
    assert_eq!(ResvError::ZeroReserve.errno(), Errno::EINVAL);
    assert_eq!(ResvError::NoMemory.errno(), Errno::ENOMEM);
    assert_eq!(ResvError::NoSlot.errno(), Errno::ENOSPC);
    assert_eq!(ResvError::Lock(WwError::Deadlock).errno(), Errno::EDEADLK);
    assert_eq!(ResvError::Fence(FenceError::Timeout).errno(), Errno::ETIME);
    assert_eq!(
        ResvError::Fence(FenceError::Interrupted).errno(),
        Errno::ERESTARTSYS
    );
}

#[test]
fn b37_usage_rw_and_queries_include_every_lower_usage() {
    assert_eq!(DmaResvUsage::rw(true), Read);
    assert_eq!(DmaResvUsage::rw(false), Write);
    assert!(Kernel < Write && Write < Read && Read < Bookkeep);
    for added in DmaResvUsage::ALL {
        let f = new_fence();
        let resv = DmaResv::new();
        add_all(&resv, &[(&f, added)]);
        for query in DmaResvUsage::ALL {
            let seen = resv.get_fences(query).len() == 1;
            assert_eq!(seen, added <= query, "added {added:?}, queried {query:?}");
        }
        f.signal().unwrap();
    }
}

#[test]
fn b38_reserve_zero_is_einval() {
    let resv = DmaResv::new();
    let mut g = resv.lock(None).unwrap();
    assert_eq!(g.reserve_fences(0).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(g.max_fences(), 0);
}

#[test]
fn b38_reserve_huge_is_enomem_not_a_panic() {
    let resv = DmaResv::new();
    let mut g = resv.lock(None).unwrap();
    assert_eq!(
        g.reserve_fences(usize::MAX).unwrap_err(),
        ResvError::NoMemory
    );
    g.reserve_fences(1).unwrap();
    let f = new_fence();
    g.add_fence(&f, Write).unwrap();
    assert_eq!(
        g.reserve_fences(usize::MAX).unwrap_err(),
        ResvError::NoMemory
    );
}

#[test]
fn b38_first_reservation_is_max_4_and_next_power_of_two() {
    for (n, expect) in [(1, 4), (3, 4), (4, 4), (5, 8), (9, 16)] {
        let resv = DmaResv::new();
        let mut g = resv.lock(None).unwrap();
        g.reserve_fences(n).unwrap();
        assert_eq!(g.max_fences(), expect, "reserve({n})");
    }
}

#[test]
fn b38_growth_is_max_of_needed_and_double() {
    let resv = DmaResv::new();
    let mut g = resv.lock(None).unwrap();
    g.reserve_fences(1).unwrap();
    assert_eq!(g.max_fences(), 4);
    g.reserve_fences(4).unwrap(); // 0 + 4 <= 4: enough room, nothing happens
    assert_eq!(g.max_fences(), 4);
    let fences: Vec<_> = (0..4).map(|_| new_fence()).collect();
    for f in &fences {
        g.add_fence(f, Read).unwrap();
    }
    g.reserve_fences(1).unwrap(); // max(4 + 1, 2 * 4)
    assert_eq!(g.max_fences(), 8);
    g.reserve_fences(9).unwrap(); // max(4 + 9, 2 * 8)
    assert_eq!(g.max_fences(), 16);
    g.reserve_fences(30).unwrap(); // max(4 + 30, 2 * 16)
    assert_eq!(g.max_fences(), 34);
}

#[test]
fn b38_growth_prunes_signaled_fences_but_room_does_not() {
    let resv = DmaResv::new();
    let fences: Vec<_> = (0..4).map(|_| new_fence()).collect();
    let mut g = resv.lock(None).unwrap();
    g.reserve_fences(4).unwrap();
    for f in &fences {
        g.add_fence(f, Bookkeep).unwrap();
    }
    fences[0].signal().unwrap();
    fences[2].signal().unwrap();
    let seq = resv.seq();
    g.reserve_fences(1).unwrap();
    assert_eq!(g.num_fences(), 2, "signaled fences pruned on growth");
    let left: Vec<_> = g.iter(Bookkeep).map(|e| e.fence).collect();
    assert!(
        left[0].ptr_eq(&fences[1]) && left[1].ptr_eq(&fences[3]),
        "order kept"
    );
    assert_eq!(resv.seq(), seq, "pruning does not change the effective set");
    fences[1].signal().unwrap();
    g.reserve_fences(1).unwrap(); // 2 + 1 <= 8: room, no pruning
    assert_eq!(g.num_fences(), 2);
}

#[test]
fn b39_add_without_reservation_is_an_error_not_a_bug() {
    let resv = DmaResv::new();
    let f = new_fence();
    let mut g = resv.lock(None).unwrap();
    let err = g.add_fence(&f, Write).unwrap_err();
    assert_eq!(err, ResvError::NoSlot);
    assert_eq!(err.errno(), Errno::ENOSPC);
    assert_eq!(g.num_fences(), 0);
}

#[test]
fn b39_the_object_keeps_its_own_reference() {
    let resv = DmaResv::new();
    let ctx = context_alloc(1).unwrap();
    add_all(&resv, &[(&fence_on(ctx, 1), Write)]);
    let got = resv.get_fences(Write);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].context(), got[0].seqno()), (ctx, 1));
}

#[test]
fn b40_reservations_do_not_survive_an_unlock() {
    let resv = DmaResv::new();
    let (a, b) = (new_fence(), new_fence());
    let mut g = resv.lock(None).unwrap();
    g.reserve_fences(2).unwrap();
    g.add_fence(&a, Write).unwrap();
    drop(g);
    let mut g = resv.lock(None).unwrap();
    assert_eq!(g.max_fences(), 1, "unused reservation dropped at unlock");
    assert_eq!(g.add_fence(&b, Write).unwrap_err(), ResvError::NoSlot);
    g.reserve_fences(1).unwrap();
    g.add_fence(&b, Write).unwrap();
    assert_eq!(g.num_fences(), 2);
}

#[test]
fn b41_later_fence_of_same_context_replaces() {
    let resv = DmaResv::new();
    let ctx = context_alloc(1).unwrap();
    let (f1, f2) = (fence_on(ctx, 1), fence_on(ctx, 2));
    add_all(&resv, &[(&f1, Write), (&f2, Write)]);
    let e = entries(&resv);
    assert_eq!(e.len(), 1);
    assert!(e[0].0.ptr_eq(&f2));
}

#[test]
fn b41_write_then_read_of_same_context_keeps_both() {
    let resv = DmaResv::new();
    let ctx = context_alloc(1).unwrap();
    let (f1, f2) = (fence_on(ctx, 1), fence_on(ctx, 2));
    add_all(&resv, &[(&f1, Write), (&f2, Read)]);
    let e = entries(&resv);
    assert_eq!(e.len(), 2);
    assert_eq!((e[0].1, e[1].1), (Write, Read));
}

#[test]
fn b41_bookkeep_then_later_write_is_replaced_and_promoted() {
    let resv = DmaResv::new();
    let ctx = context_alloc(1).unwrap();
    let (f1, f2) = (fence_on(ctx, 1), fence_on(ctx, 2));
    add_all(&resv, &[(&f1, Bookkeep), (&f2, Write)]);
    let e = entries(&resv);
    assert_eq!(e.len(), 1);
    assert!(e[0].0.ptr_eq(&f2));
    assert_eq!(e[0].1, Write);
}

#[test]
fn b41_earlier_fence_of_same_context_does_not_replace() {
    let resv = DmaResv::new();
    let ctx = context_alloc(1).unwrap();
    let (f1, f2) = (fence_on(ctx, 1), fence_on(ctx, 2));
    add_all(&resv, &[(&f2, Write), (&f1, Write)]);
    assert_eq!(entries(&resv).len(), 2);
}

#[test]
fn b41_signaled_entry_is_reused_without_a_reservation() {
    let resv = DmaResv::new();
    let (a, b) = (new_fence(), new_fence());
    add_all(&resv, &[(&a, Read)]);
    a.signal().unwrap();
    let mut g = resv.lock(None).unwrap();
    assert_eq!(g.max_fences(), 1);
    g.add_fence(&b, Kernel).expect("reuses the signaled slot");
    drop(g);
    let e = entries(&resv);
    assert_eq!(e.len(), 1);
    assert!(e[0].0.ptr_eq(&b));
    assert_eq!(e[0].1, Kernel);
}

#[test]
fn b42_container_fence_is_accepted() {
    let resv = DmaResv::new();
    let (a, b) = (new_fence(), new_fence());
    let array = DmaFenceArray::create(
        vec![a.clone(), b.clone()],
        context_alloc(1).unwrap(),
        1,
        false,
    )
    .unwrap();
    add_all(&resv, &[(&array, Write)]);
    let got = resv.get_fences(Write);
    assert_eq!(got.len(), 1);
    assert!(got[0].ptr_eq(&array));
    a.signal().unwrap();
    b.signal().unwrap();
    assert!(resv.test_signaled(Write));
}

#[test]
fn b43_locked_walk_includes_signaled_unlocked_skips_them() {
    let resv = DmaResv::new();
    let (a, b, c) = (new_fence(), new_fence(), new_fence());
    add_all(&resv, &[(&a, Kernel), (&b, Read), (&c, Bookkeep)]);
    a.signal().unwrap();
    let locked: Vec<_> = resv.lock(None).unwrap().iter(Read).collect();
    assert_eq!(locked.len(), 2);
    assert!(locked[0].fence.ptr_eq(&a) && locked[0].usage == Kernel && locked[0].is_restarted);
    assert!(locked[1].fence.ptr_eq(&b) && locked[1].usage == Read && !locked[1].is_restarted);
    let unlocked: Vec<_> = resv.iter_unlocked(Read).collect();
    assert_eq!(unlocked.len(), 1);
    assert!(unlocked[0].fence.ptr_eq(&b) && unlocked[0].usage == Read && unlocked[0].is_restarted);
    assert_eq!(resv.iter_unlocked(Bookkeep).count(), 2);
}

#[test]
fn b43_unlocked_walk_restarts_when_the_list_changes() {
    let resv = DmaResv::new();
    let (a, b, c) = (new_fence(), new_fence(), new_fence());
    add_all(&resv, &[(&a, Write), (&b, Write)]);
    let mut it = resv.iter_unlocked(Write);
    let first = it.next().unwrap();
    assert!(first.is_restarted && first.fence.ptr_eq(&a));
    add_all(&resv, &[(&c, Write)]);
    let again = it.next().unwrap();
    assert!(
        again.is_restarted && again.fence.ptr_eq(&a),
        "restarted from the beginning"
    );
    let rest: Vec<_> = it.collect();
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|e| !e.is_restarted));
    // The accumulating form only keeps the last, complete pass.
    assert_eq!(resv.get_fences(Write).len(), 3);
}

#[test]
fn b44_test_signaled_per_usage() {
    let resv = DmaResv::new();
    assert!(resv.test_signaled(Bookkeep), "empty object is signaled");
    let (w, r) = (new_fence(), new_fence());
    add_all(&resv, &[(&w, Write), (&r, Read)]);
    assert!(resv.test_signaled(Kernel));
    assert!(!resv.test_signaled(Write));
    w.signal().unwrap();
    assert!(resv.test_signaled(Write));
    assert!(!resv.test_signaled(Read));
    r.signal().unwrap();
    assert!(resv.test_signaled(Bookkeep));
}

#[test]
fn b45_wait_without_relevant_fences_returns_the_timeout() {
    let resv = DmaResv::new();
    let f = new_fence();
    add_all(&resv, &[(&f, Bookkeep)]);
    let t = Duration::from_secs(5);
    assert_eq!(resv.wait_timeout(Read, None, Some(t)).unwrap(), t);
    assert_eq!(
        resv.wait_timeout(Read, None, Some(Duration::ZERO)).unwrap(),
        Duration::ZERO
    );
    assert_eq!(resv.wait_timeout(Read, None, None).unwrap(), Duration::MAX);
}

#[test]
fn b45_zero_timeout_polls() {
    let resv = DmaResv::new();
    let f = new_fence();
    add_all(&resv, &[(&f, Write)]);
    let err = resv
        .wait_timeout(Write, None, Some(Duration::ZERO))
        .unwrap_err();
    assert_eq!(err.errno(), Errno::ETIME);
    f.signal().unwrap();
    assert!(resv.wait_timeout(Write, None, Some(Duration::ZERO)).is_ok());
}

#[test]
fn b45_interrupted_wait_is_erestartsys() {
    let resv = DmaResv::new();
    let f = new_fence();
    add_all(&resv, &[(&f, Kernel)]);
    let intr = Interrupt::new();
    intr.raise();
    let err = resv.wait_timeout(Kernel, Some(&intr), None).unwrap_err();
    assert_eq!(err.errno(), Errno::ERESTARTSYS);
    assert_eq!(err.errno().to_user(), Errno::EINTR);
}

#[test]
fn b45_wait_returns_once_every_fence_signals() {
    let resv = Arc::new(DmaResv::new());
    let (a, b) = (new_fence(), new_fence());
    add_all(&resv, &[(&a, Write), (&b, Read)]);
    let r2 = resv.clone();
    let waiter = thread::spawn(move || r2.wait_timeout(Read, None, None));
    a.signal().unwrap();
    b.signal().unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), Duration::MAX);
}

#[test]
fn b46_get_fences_returns_unsignaled_fences_of_the_usage() {
    let resv = DmaResv::new();
    assert!(resv.get_fences(Bookkeep).is_empty());
    let (a, b, c) = (new_fence(), new_fence(), new_fence());
    add_all(&resv, &[(&a, Write), (&b, Read), (&c, Write)]);
    c.signal().unwrap();
    let w = resv.get_fences(Write);
    assert_eq!(w.len(), 1);
    assert!(w[0].ptr_eq(&a));
    assert_eq!(resv.get_fences(Read).len(), 2);
}

#[test]
fn b47_get_singleton() {
    let resv = DmaResv::new();
    assert!(resv.get_singleton(Bookkeep).unwrap().is_none());
    let (a, b) = (new_fence(), new_fence());
    add_all(&resv, &[(&a, Write)]);
    assert!(resv.get_singleton(Write).unwrap().unwrap().ptr_eq(&a));
    add_all(&resv, &[(&b, Read)]);
    let single = resv.get_singleton(Read).unwrap().unwrap();
    let array = single.as_array().expect("more than one fence: an array");
    assert_eq!(array.fences().len(), 2);
    assert!(!array.signal_on_any());
    assert_eq!(single.seqno(), 1);
    assert!(single.context() != a.context() && single.context() != b.context());
    a.signal().unwrap();
    assert!(!single.is_signaled());
    b.signal().unwrap();
    assert!(single.is_signaled());
}

#[test]
fn b47_get_singleton_unwraps_containers() {
    let resv = DmaResv::new();
    let (a, b, c) = (new_fence(), new_fence(), new_fence());
    let arr = DmaFenceArray::create(
        vec![a.clone(), b.clone()],
        context_alloc(1).unwrap(),
        1,
        false,
    )
    .unwrap();
    add_all(&resv, &[(&arr, Write), (&c, Write)]);
    let single = resv.get_singleton(Write).unwrap().unwrap();
    assert_eq!(single.as_array().unwrap().fences().len(), 3);
}

#[test]
fn b48_copy_fences_replaces_dst_with_src_unsignaled_fences() {
    let (src, dst) = (DmaResv::new(), DmaResv::new());
    let (a, b, c, d) = (new_fence(), new_fence(), new_fence(), new_fence());
    add_all(&src, &[(&a, Write), (&b, Bookkeep), (&c, Read)]);
    add_all(&dst, &[(&d, Kernel)]);
    c.signal().unwrap();
    let mut g = dst.lock(None).unwrap();
    g.copy_fences(&src);
    let got: Vec<_> = g.iter(Bookkeep).map(|e| (e.fence, e.usage)).collect();
    assert_eq!(got.len(), 2);
    assert!(got[0].0.ptr_eq(&a) && got[0].1 == Write);
    assert!(got[1].0.ptr_eq(&b) && got[1].1 == Bookkeep);
    assert_eq!(g.max_fences(), 2);
}

#[test]
fn b48_copy_fences_from_itself_keeps_the_unsignaled() {
    let resv = DmaResv::new();
    let (a, b) = (new_fence(), new_fence());
    add_all(&resv, &[(&a, Write), (&b, Read)]);
    a.signal().unwrap();
    let mut g = resv.lock(None).unwrap();
    g.copy_fences(&resv);
    assert_eq!(g.num_fences(), 1);
}

#[test]
fn b49_replace_fences_of_a_context() {
    let resv = DmaResv::new();
    let ctx = context_alloc(2).unwrap();
    let (a1, a2, other) = (fence_on(ctx, 1), fence_on(ctx, 2), fence_on(ctx + 1, 1));
    add_all(&resv, &[(&a1, Write), (&a2, Read), (&other, Read)]);
    let r = new_fence();
    let mut g = resv.lock(None).unwrap();
    let seq = resv.seq();
    g.replace_fences(ctx, &r, Bookkeep);
    assert_eq!(resv.seq(), seq, "published only at unlock");
    let got: Vec<_> = g.iter(Bookkeep).map(|e| (e.fence, e.usage)).collect();
    drop(g);
    assert!(resv.seq() > seq, "the unlock published the change");
    assert_eq!(got.len(), 3);
    assert!(got[0].0.ptr_eq(&r) && got[0].1 == Bookkeep);
    assert!(got[1].0.ptr_eq(&r) && got[1].1 == Bookkeep);
    assert!(got[2].0.ptr_eq(&other) && got[2].1 == Read);
}

#[test]
fn b50_lock_without_ctx_succeeds_and_die_is_edeadlk() {
    let (x, y) = (DmaResv::new(), DmaResv::new());
    assert!(x.lock(None).is_ok());
    let mut old = WwAcquireCtx::new(x.class());
    let mut young = WwAcquireCtx::new(x.class());
    let gx = x.lock(Some(&mut old)).unwrap();
    let gy = y.lock(Some(&mut young)).unwrap();
    assert_eq!(
        x.lock(Some(&mut young)).unwrap_err().errno(),
        Errno::EDEADLK
    );
    assert_eq!(
        y.lock(Some(&mut young)).unwrap_err().errno(),
        Errno::EDEADLK,
        "must back off"
    );
    drop(gy);
    drop(gx);
    let gx = x.lock_slow(&mut young).unwrap();
    assert_eq!(
        x.lock(Some(&mut young)).unwrap_err().errno(),
        Errno::EALREADY
    );
    let gy = y.lock(Some(&mut young)).unwrap();
    assert_eq!(young.acquired(), 2);
    drop((gx, gy));
}

#[test]
fn trylock_and_interruptible_lock() {
    let resv = Arc::new(DmaResv::new());
    let g = resv.try_lock().unwrap();
    assert!(resv.is_locked());
    assert_eq!(resv.try_lock().unwrap_err().errno(), Errno::EBUSY);
    let intr = Interrupt::new();
    intr.raise();
    let mut ctx = WwAcquireCtx::new(resv.class());
    assert_eq!(
        resv.lock_interruptible(Some(&mut ctx), &intr)
            .unwrap_err()
            .errno(),
        Errno::EINTR
    );
    assert_eq!(
        resv.lock_slow_interruptible(&mut ctx, &intr)
            .unwrap_err()
            .errno(),
        Errno::EINTR
    );
    drop(g);
    assert!(
        resv.lock_interruptible(None, &intr).is_ok(),
        "a free lock needs no wait"
    );
}

#[test]
fn exec_skips_duplicates_and_marks_the_context_done() {
    let objs: Vec<DmaResv> = (0..3).map(|_| DmaResv::new()).collect();
    let list = [&objs[0], &objs[1], &objs[0], &objs[2], &objs[1]];
    let mut exec = ResvExec::lock_all(&list, None).unwrap();
    assert_eq!(exec.len(), 3);
    assert!(objs.iter().all(DmaResv::is_locked));
    assert!(exec.guard_of(&objs[2]).is_some());
    exec.unlock_all();
    assert!(!objs.iter().any(DmaResv::is_locked));
    assert!(ResvExec::lock_all(&[], None).unwrap().is_empty());
}

#[test]
fn exec_of_mixed_classes_is_einval_and_unlocks() {
    let a = DmaResv::new();
    let b = DmaResv::with_class(&WwClass::new("other"));
    let err = ResvExec::lock_all(&[&a, &b], None).err().unwrap();
    assert_eq!(err.errno(), Errno::EINVAL);
    assert!(!a.is_locked());
}

#[test]
fn exec_interrupted_while_contended_holds_nothing() {
    let (a, b) = (DmaResv::new(), DmaResv::new());
    let _held = b.lock(None).unwrap();
    let intr = Interrupt::new();
    intr.raise();
    let err = ResvExec::lock_all(&[&a, &b], Some(&intr)).err().unwrap();
    assert_eq!(err.errno(), Errno::EINTR);
    assert!(!a.is_locked());
}

#[test]
fn exec_in_opposite_orders_completes_with_backoffs_counted() {
    let objs: Arc<Vec<DmaResv>> = Arc::new((0..6).map(|_| DmaResv::new()).collect());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let objs = objs.clone();
            thread::spawn(move || {
                let ctx = context_alloc(1).unwrap();
                for seqno in 1..=100 {
                    let mut list: Vec<&DmaResv> = objs.iter().collect();
                    if t % 2 == 1 {
                        list.reverse();
                    }
                    let mut exec = ResvExec::lock_all(&list, None).unwrap();
                    assert_eq!(exec.len(), 6);
                    let f = fence_on(ctx, seqno);
                    for g in exec.guards_mut() {
                        g.reserve_fences(1).unwrap();
                        g.add_fence(&f, Write).unwrap();
                    }
                    drop(exec);
                    f.signal().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(objs.iter().all(|o| o.test_signaled(Bookkeep)));
}

#[test]
fn objects_are_thread_safe() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<DmaResv>();
    send_sync::<fence::ww_mutex::WwMutex<Vec<u8>>>();
    send_sync::<WwClass>();
    send::<WwAcquireCtx>();
}
