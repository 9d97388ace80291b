//! Unit tests, one per numbered behaviour of `reference/kernel-semantics.md` section 2.

use super::*;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as O};
use std::sync::Arc as StdArc;
use std::time::Duration;

fn f(ctx: u64, seqno: u64) -> DmaFence {
    SimpleFenceOps::create("test", "test", ctx, seqno)
}

/// Ops that count calls and answer `enable_signaling`/`signaled` as configured.
struct CountingOps {
    enable_answer: bool,
    signaled_answer: std::sync::atomic::AtomicBool,
    enables: StdAtomicUsize,
    deadlines: StdAtomicUsize,
}

impl CountingOps {
    fn new(enable_answer: bool) -> StdArc<CountingOps> {
        StdArc::new(CountingOps {
            enable_answer,
            signaled_answer: false.into(),
            enables: StdAtomicUsize::new(0),
            deadlines: StdAtomicUsize::new(0),
        })
    }
}

impl FenceOps for CountingOps {
    fn driver_name(&self) -> &str {
        "counting"
    }
    fn timeline_name(&self) -> &str {
        "counting-tl"
    }
    fn enable_signaling(&self, _: &DmaFence) -> bool {
        self.enables.fetch_add(1, O::SeqCst);
        self.enable_answer
    }
    fn signaled(&self, _: &DmaFence) -> bool {
        self.signaled_answer.load(O::SeqCst)
    }
    fn set_deadline(&self, _: &DmaFence, _: u64) {
        self.deadlines.fetch_add(1, O::SeqCst);
    }
}

#[test]
fn b01_context_alloc_ranges_are_disjoint_and_nonzero() {
    let a = context_alloc(10).unwrap();
    let b = context_alloc(1).unwrap();
    assert!(a >= 1);
    assert!(b >= a + 10 || b < a);
    assert_eq!(context_alloc(0).unwrap_err().errno(), Errno::EINVAL);
    assert!(context_alloc(u64::MAX).is_err());
}

#[test]
fn b02_new_fence_is_pending_without_error() {
    let x = f(1, 1);
    assert_eq!(x.status(), FenceStatus::Pending);
    assert_eq!(x.error(), None);
    assert_eq!(x.timestamp_ns(), None);
}

#[test]
fn b03_32bit_compare_wraps() {
    assert!(f(1, 1).is_later(&f(1, 0xFFFF_FFFF)));
    assert!(!f(1, 0xFFFF_FFFF).is_later(&f(1, 1)));
    assert!(f(1, 2).is_later(&f(1, 1)));
    // Only the low 32 bits count.
    assert!(!f(1, 0x1_0000_0001).is_later(&f(1, 1)));
}

#[test]
fn b04_64bit_compare_is_plain() {
    let ops = SimpleFenceOps::new("t", "t");
    let a = DmaFence::new64(ops.clone(), 1, 1);
    let b = DmaFence::new64(ops, 1, 0xFFFF_FFFF);
    assert!(!a.is_later(&b));
    assert!(b.is_later(&a));
}

#[test]
fn b05_different_contexts_are_never_later() {
    assert!(!f(1, 5).is_later(&f(2, 1)));
    let x = f(1, 1);
    assert!(x.is_later_or_same(&x));
    assert!(f(1, 3).is_later_or_same(&f(1, 3)));
    assert!(!f(1, 2).is_later_or_same(&f(1, 3)));
}

#[test]
fn b06_later_picks_unsignaled_later_fence() {
    let (a, b) = (f(1, 1), f(1, 2));
    assert!(DmaFence::later(&a, &b).unwrap().ptr_eq(&b));
    assert!(DmaFence::later(&b, &a).unwrap().ptr_eq(&b));
    b.signal().unwrap();
    assert!(DmaFence::later(&a, &b).is_none());
    assert!(DmaFence::later(&a, &f(2, 9)).is_none());
}

#[test]
fn b07_signal_runs_callbacks_once_in_order_with_timestamp() {
    let x = f(1, 1);
    let order = StdArc::new(parking_lot::Mutex::new(Vec::new()));
    for i in 0..3 {
        let o = order.clone();
        x.add_callback(move |_| o.lock().push(i)).unwrap();
    }
    x.signal().unwrap();
    assert_eq!(*order.lock(), vec![0, 1, 2]);
    assert!(x.timestamp_ns().is_some());
}

#[test]
fn signal_stamps_the_fence_with_its_machine_clock() {
    use clock::Clock;
    let machine = clock::VirtualClock::shared();
    machine.advance(std::time::Duration::from_millis(7));
    let x = DmaFence::new(SimpleFenceOps::on(machine.clone(), "d", "t"), 1, 1);
    x.signal().unwrap();
    assert_eq!(x.timestamp_ns(), Some(machine.now_ns()));
    assert_eq!(machine.now_ns(), clock::BOOT_NS + 7_000_000);
}

#[test]
fn a_timed_out_wait_moves_the_virtual_clock_to_its_deadline() {
    use clock::Clock;
    let machine = clock::VirtualClock::shared();
    let x = DmaFence::new(SimpleFenceOps::on(machine.clone(), "d", "t"), 1, 1);
    let t = std::time::Duration::from_millis(2);
    assert_eq!(x.wait_timeout(None, Some(t)), Err(FenceError::Timeout));
    assert_eq!(machine.now_ns(), clock::BOOT_NS + 2_000_000);
}

#[test]
fn b08_second_signal_is_einval_and_changes_nothing() {
    let x = f(1, 1);
    x.signal_timestamp(42).unwrap();
    let e = x.signal().unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert_eq!(x.timestamp_ns(), Some(42));
}

#[test]
fn b09_signal_timestamp_stores_it() {
    let x = f(1, 1);
    x.signal_timestamp(1234).unwrap();
    assert_eq!(x.timestamp_ns(), Some(1234));
}

#[test]
fn b11_error_reported_only_after_signal() {
    let x = f(1, 1);
    x.set_error(Errno::EIO).unwrap();
    assert_eq!(x.get_status(), 0);
    x.signal().unwrap();
    assert_eq!(x.get_status(), -5);
    assert_eq!(x.status(), FenceStatus::Error(Errno::EIO));
}

#[test]
fn b12_set_error_after_signal_or_out_of_range_fails() {
    let x = f(1, 1);
    assert!(x.set_error(Errno::from_raw(5000).unwrap()).is_err());
    x.signal().unwrap();
    assert_eq!(
        x.set_error(Errno::EIO).unwrap_err(),
        FenceError::AlreadySignaled
    );
    assert_eq!(x.status(), FenceStatus::Signaled);
}

#[test]
fn b13_get_status_values_and_polling() {
    let ops = CountingOps::new(true);
    let x = DmaFence::new(ops.clone(), 1, 1);
    assert_eq!(x.get_status(), 0);
    ops.signaled_answer.store(true, O::SeqCst);
    assert_eq!(x.get_status(), 1);
    assert!(x.timestamp_ns().is_some());
}

#[test]
fn b14_is_signaled_polls_and_runs_callbacks_without_enabling() {
    let ops = CountingOps::new(true);
    let x = DmaFence::new(ops.clone(), 1, 1);
    assert!(!x.is_signaled());
    assert_eq!(ops.enables.load(O::SeqCst), 0);
    let ran = StdArc::new(StdAtomicUsize::new(0));
    let r = ran.clone();
    x.add_callback(move |_| {
        r.fetch_add(1, O::SeqCst);
    })
    .unwrap();
    ops.signaled_answer.store(true, O::SeqCst);
    assert!(x.is_signaled());
    assert_eq!(ran.load(O::SeqCst), 1);
}

#[test]
fn b15_first_add_enables_once_and_false_means_enoent() {
    let ops = CountingOps::new(true);
    let x = DmaFence::new(ops.clone(), 1, 1);
    x.add_callback(|_| {}).unwrap();
    x.add_callback(|_| {}).unwrap();
    assert_eq!(ops.enables.load(O::SeqCst), 1);

    let ops = CountingOps::new(false);
    let y = DmaFence::new(ops.clone(), 1, 1);
    let ran = StdArc::new(StdAtomicUsize::new(0));
    let r = ran.clone();
    let e = y.add_callback(move |_| {
        r.fetch_add(1, O::SeqCst);
    });
    assert_eq!(e.unwrap_err().errno(), Errno::ENOENT);
    assert!(y.is_signaled());
    assert_eq!(ran.load(O::SeqCst), 0);
}

#[test]
fn b16_add_on_signaled_is_enoent_and_never_runs() {
    let x = f(1, 1);
    x.signal().unwrap();
    let ran = StdArc::new(StdAtomicUsize::new(0));
    let r = ran.clone();
    let e = x.add_callback(move |_| {
        r.fetch_add(1, O::SeqCst);
    });
    assert_eq!(e.unwrap_err(), FenceError::CallbackNotAdded);
    assert_eq!(ran.load(O::SeqCst), 0);
}

#[test]
fn b18_remove_callback_true_only_while_pending() {
    let x = f(1, 1);
    let ran = StdArc::new(StdAtomicUsize::new(0));
    let r = ran.clone();
    let id = x
        .add_callback(move |_| {
            r.fetch_add(1, O::SeqCst);
        })
        .unwrap();
    let id2 = x.add_callback(|_| {}).unwrap();
    assert!(x.remove_callback(id));
    assert!(!x.remove_callback(id));
    x.signal().unwrap();
    assert_eq!(ran.load(O::SeqCst), 0);
    assert!(!x.remove_callback(id2));
}

#[test]
fn b19_enable_sw_signaling_at_most_once_and_false_signals() {
    let ops = CountingOps::new(true);
    let x = DmaFence::new(ops.clone(), 1, 1);
    x.enable_sw_signaling();
    x.enable_sw_signaling();
    assert_eq!(ops.enables.load(O::SeqCst), 1);

    let ops = CountingOps::new(false);
    let y = DmaFence::new(ops.clone(), 1, 1);
    y.enable_sw_signaling();
    assert!(y.is_signaled());
    let z = DmaFence::new(ops.clone(), 1, 2);
    z.signal().unwrap();
    z.enable_sw_signaling();
    assert_eq!(ops.enables.load(O::SeqCst), 1);
}

#[test]
fn b20_wait_enables_signaling() {
    let ops = CountingOps::new(false);
    let x = DmaFence::new(ops.clone(), 1, 1);
    assert_eq!(
        x.wait_timeout(None, Some(Duration::ZERO)),
        Ok(Duration::ZERO)
    );
    assert_eq!(ops.enables.load(O::SeqCst), 1);
}

#[test]
fn b21_default_wait_results() {
    let x = f(1, 1);
    assert_eq!(
        x.wait_timeout(None, Some(Duration::ZERO)),
        Err(FenceError::Timeout)
    );
    assert_eq!(
        x.wait_timeout(None, Some(Duration::from_millis(1)))
            .unwrap_err()
            .errno(),
        Errno::ETIME
    );
    let intr = Interrupt::new();
    intr.raise();
    let e = x
        .wait_timeout(Some(&intr), Some(Duration::from_secs(5)))
        .unwrap_err();
    assert_eq!(e.errno(), Errno::ERESTARTSYS);
    // Non-interruptible waits ignore the signal.
    assert_eq!(
        x.wait_timeout(None, Some(Duration::ZERO)),
        Err(FenceError::Timeout)
    );
    x.signal().unwrap();
    assert!(
        x.wait_timeout(Some(&intr), Some(Duration::from_secs(5)))
            .unwrap()
            > Duration::ZERO
    );
    assert_eq!(x.wait_timeout(None, None), Ok(Duration::MAX));
}

#[test]
fn b21_signal_from_another_thread_ends_wait() {
    let x = f(1, 1);
    let y = x.clone();
    let t = std::thread::spawn(move || y.wait_timeout(None, Some(Duration::from_secs(30))));
    std::thread::sleep(Duration::from_millis(5));
    x.signal().unwrap();
    assert!(t.join().unwrap().is_ok());
}

#[test]
fn b21_raise_wakes_a_sleeping_wait() {
    let x = f(1, 1);
    let intr = Interrupt::new();
    let (y, i2) = (x.clone(), intr.clone());
    let t = std::thread::spawn(move || y.wait(Some(&i2)));
    std::thread::sleep(Duration::from_millis(5));
    intr.raise();
    assert_eq!(t.join().unwrap(), Err(FenceError::Interrupted));
    assert!(!x.is_signaled());
}

struct MockWaitOps;
impl FenceOps for MockWaitOps {
    fn driver_name(&self) -> &str {
        "mock"
    }
    fn timeline_name(&self) -> &str {
        "mock"
    }
    fn wait(
        &self,
        _: &DmaFence,
        _: Option<&Interrupt>,
        _: Option<Duration>,
    ) -> Option<Result<Duration, FenceError>> {
        Some(Err(FenceError::Driver(Errno::EIO)))
    }
}

#[test]
fn b22_custom_wait_result_is_returned() {
    let x = DmaFence::new(StdArc::new(MockWaitOps), 1, 1);
    assert_eq!(x.wait(None).unwrap_err().errno(), Errno::EIO);
}

#[test]
fn b24_wait_any() {
    assert_eq!(
        wait_any_timeout(&[], None, None).unwrap_err().errno(),
        Errno::EINVAL
    );
    let (a, b) = (f(1, 1), f(2, 1));
    let v = [a.clone(), b.clone()];
    assert_eq!(
        wait_any_timeout(&v, None, Some(Duration::ZERO)),
        Err(FenceError::Timeout)
    );
    assert_eq!(
        wait_any_timeout(&v, None, Some(Duration::from_millis(1))),
        Err(FenceError::Timeout)
    );
    let intr = Interrupt::new();
    intr.raise();
    assert_eq!(
        wait_any_timeout(&v, Some(&intr), None),
        Err(FenceError::Interrupted)
    );
    let b2 = b.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        b2.signal().unwrap();
    });
    assert_eq!(
        wait_any_timeout(&v, None, Some(Duration::from_secs(30)))
            .unwrap()
            .0,
        1
    );
    t.join().unwrap();
    assert_eq!(
        wait_any_timeout(&v, None, Some(Duration::ZERO)).unwrap().0,
        1
    );
}

#[test]
fn b25_drop_with_pending_callbacks_signals_edeadlk() {
    let seen = StdArc::new(parking_lot::Mutex::new(None));
    let s = seen.clone();
    let x = f(1, 1);
    x.add_callback(move |f| *s.lock() = Some(f.status()))
        .unwrap();
    let y = x.clone();
    drop(x);
    assert!(seen.lock().is_none(), "not the last reference yet");
    drop(y);
    assert_eq!(*seen.lock(), Some(FenceStatus::Error(Errno::EDEADLK)));
}

#[test]
fn b26_stubs() {
    let s = DmaFence::stub();
    assert!(s.is_signaled());
    assert!(s.ptr_eq(&DmaFence::stub()));
    assert_eq!((s.context(), s.seqno()), (0, 0));
    let p = DmaFence::private_stub(77);
    assert!(p.is_signaled() && !p.ptr_eq(&s));
    assert_eq!(p.timestamp_ns(), Some(77));
}

#[test]
fn b27_set_deadline_only_while_pending() {
    let ops = CountingOps::new(true);
    let x = DmaFence::new(ops.clone(), 1, 1);
    x.set_deadline(10);
    x.signal().unwrap();
    x.set_deadline(20);
    assert_eq!(ops.deadlines.load(O::SeqCst), 1);
}

/// Behaviour 28 is 6.16+: in 6.12 (the conformance kernel) a signaled fence keeps its names.
#[test]
fn b28_names_stay_after_signal_in_6_12() {
    let ops = CountingOps::new(true);
    let x = DmaFence::new(ops, 1, 1);
    assert_eq!(
        (x.driver_name(), x.timeline_name()),
        ("counting".into(), "counting-tl".into())
    );
    x.signal().unwrap();
    assert_eq!(
        (x.driver_name(), x.timeline_name()),
        ("counting".into(), "counting-tl".into())
    );
}

#[test]
fn callback_may_reenter_the_fence() {
    let x = f(1, 1);
    x.add_callback(|f| {
        assert!(f.is_signaled());
        assert!(f.add_callback(|_| {}).is_err());
        assert!(f.signal().is_err());
    })
    .unwrap();
    x.signal().unwrap();
}

#[test]
fn error_codes() {
    assert_eq!(FenceError::AlreadySignaled.errno(), Errno::EINVAL);
    assert_eq!(FenceError::CallbackNotAdded.errno(), Errno::ENOENT);
    assert_eq!(FenceError::Timeout.errno(), Errno::ETIME);
    assert_eq!(FenceError::Interrupted.errno(), Errno::ERESTARTSYS);
    assert_eq!(FenceError::InvalidArgument("x").errno(), Errno::EINVAL);
    assert_eq!(FenceError::Driver(Errno::EBUSY).errno(), Errno::EBUSY);
}

#[test]
fn fence_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<DmaFence>();
    check::<Interrupt>();
}
