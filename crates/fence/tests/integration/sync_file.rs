//! sync_file behaviours 51-56 (`drivers/dma-buf/sync_file.c`), one test per behaviour or edge
//! case, named after it. No wall-clock assertions.

use fence::sync_file::{
    name_to_c, PollEvents, PollRegistration, SyncFile, SyncFileError, SyncFileInfo, SyncMergeData,
    SyncSetDeadline,
};
use fence::{context_alloc, DmaFence, FenceError, FenceOps, SimpleFenceOps};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use uapi::{AsErrno, Errno};

fn fence_on(ctx: u64, seqno: u64) -> DmaFence {
    SimpleFenceOps::create("drv", "tl", ctx, seqno)
}

fn new_fence() -> DmaFence {
    fence_on(context_alloc(1).unwrap(), 1)
}

/// Mock ops that count `enable_signaling` calls and record deadlines.
#[derive(Default)]
struct MockOps {
    enabled: AtomicUsize,
    deadlines: Mutex<Vec<u64>>,
}

impl FenceOps for MockOps {
    fn driver_name(&self) -> &str {
        "mock"
    }
    fn timeline_name(&self) -> &str {
        "mock-tl"
    }
    fn enable_signaling(&self, _fence: &DmaFence) -> bool {
        self.enabled.fetch_add(1, Ordering::SeqCst);
        true
    }
    fn set_deadline(&self, _fence: &DmaFence, deadline_ns: u64) {
        self.deadlines.lock().unwrap().push(deadline_ns);
    }
}

fn mock_fence() -> (Arc<MockOps>, DmaFence) {
    let ops = Arc::new(MockOps::default());
    let f = DmaFence::new(ops.clone(), context_alloc(1).unwrap(), 1);
    (ops, f)
}

// --- 51: create ---------------------------------------------------------------------------

#[test]
fn create_takes_its_own_reference() {
    let f = new_fence();
    let file = SyncFile::new(&f);
    let witness = f.clone();
    drop(f);
    assert!(file.fence().ptr_eq(&witness));
    witness.signal().unwrap();
    assert!(file.fence().is_signaled());
}

#[test]
fn get_fence_gives_the_wrapped_fence() {
    let f = new_fence();
    let file = SyncFile::new(&f);
    let got = file.fence().clone();
    drop(file);
    assert!(got.ptr_eq(&f));
}

// --- 52: merge ----------------------------------------------------------------------------

#[test]
fn merge_with_flags_is_einval() {
    let (a, b) = (SyncFile::new(&new_fence()), SyncFile::new(&new_fence()));
    let data = SyncMergeData {
        flags: 1,
        ..SyncMergeData::new("m", 4)
    };
    let err = a.ioctl_merge(&data, Some(&b)).unwrap_err();
    assert_eq!(err, SyncFileError::NonZero("flags"));
    assert_eq!(err.errno(), Errno::EINVAL);
}

#[test]
fn merge_with_pad_is_einval() {
    let (a, b) = (SyncFile::new(&new_fence()), SyncFile::new(&new_fence()));
    let data = SyncMergeData {
        pad: 7,
        ..SyncMergeData::new("m", 4)
    };
    assert_eq!(
        a.ioctl_merge(&data, Some(&b)).unwrap_err().errno(),
        Errno::EINVAL
    );
}

#[test]
fn merge_with_fd2_not_a_sync_file_is_enoent() {
    let a = SyncFile::new(&new_fence());
    let err = a
        .ioctl_merge(&SyncMergeData::new("m", 99), None)
        .unwrap_err();
    assert_eq!(err, SyncFileError::NotASyncFile);
    assert_eq!(err.errno(), Errno::ENOENT);
}

#[test]
fn merge_checks_flags_before_fd2() {
    let a = SyncFile::new(&new_fence());
    let data = SyncMergeData {
        flags: 1,
        ..SyncMergeData::new("m", -1)
    };
    assert_eq!(
        a.ioctl_merge(&data, None).unwrap_err().errno(),
        Errno::EINVAL
    );
}

#[test]
fn merge_name_is_cut_to_31_bytes() {
    let (a, b) = (SyncFile::new(&new_fence()), SyncFile::new(&new_fence()));
    let long = "0123456789abcdefghijklmnopqrstuvwxyz";
    let m = SyncFile::merge(long, &a, &b).unwrap();
    assert_eq!(m.name(), &long[..31]);
    // Through the ioctl struct: the kernel reads at most 31 bytes even without a NUL.
    let mut data = SyncMergeData::new("", 3);
    data.name = [b'n'; 32];
    let m = a.ioctl_merge(&data, Some(&b)).unwrap();
    assert_eq!(m.name(), "n".repeat(31));
}

#[test]
fn merge_keeps_both_inputs_valid() {
    let (fa, fb) = (new_fence(), new_fence());
    let (a, b) = (SyncFile::new(&fa), SyncFile::new(&fb));
    let m = a
        .ioctl_merge(&SyncMergeData::new("m", 5), Some(&b))
        .unwrap();
    assert!(a.fence().ptr_eq(&fa) && b.fence().ptr_eq(&fb));
    assert_eq!(m.num_fences(), 2);
    assert_eq!(a.num_fences(), 1);
    fa.signal().unwrap();
    fb.signal().unwrap();
    assert_eq!(m.poll(), PollEvents::IN);
}

#[test]
fn merge_of_one_context_keeps_only_the_latest() {
    let ctx = context_alloc(1).unwrap();
    let (old, new) = (fence_on(ctx, 1), fence_on(ctx, 2));
    let m = SyncFile::merge("m", &SyncFile::new(&new), &SyncFile::new(&old)).unwrap();
    assert!(m.fence().ptr_eq(&new));
}

#[test]
fn merge_with_itself_is_the_same_fence() {
    let f = new_fence();
    let a = SyncFile::new(&f);
    let m = SyncFile::merge("self", &a, &a).unwrap();
    assert!(m.fence().ptr_eq(&f));
}

#[test]
fn merge_drops_signaled_fences() {
    let (done, busy) = (new_fence(), new_fence());
    done.signal().unwrap();
    let m = SyncFile::merge("m", &SyncFile::new(&done), &SyncFile::new(&busy)).unwrap();
    assert!(m.fence().ptr_eq(&busy));
}

#[test]
fn merge_of_all_signaled_is_a_signaled_stub_with_the_latest_timestamp() {
    let (a, b) = (new_fence(), new_fence());
    a.signal_timestamp(10).unwrap();
    b.signal_timestamp(20).unwrap();
    let m = SyncFile::merge("m", &SyncFile::new(&a), &SyncFile::new(&b)).unwrap();
    assert!(!m.fence().ptr_eq(&a) && !m.fence().ptr_eq(&b));
    assert!(m.fence().is_signaled());
    assert_eq!(m.fence().timestamp_ns(), Some(20));
}

#[test]
fn merge_of_contexts_is_sorted_by_context() {
    let ctx = context_alloc(3).unwrap();
    let (c0, c1, c2) = (fence_on(ctx, 1), fence_on(ctx + 1, 1), fence_on(ctx + 2, 1));
    let ab = SyncFile::merge("ab", &SyncFile::new(&c2), &SyncFile::new(&c0)).unwrap();
    let abc = SyncFile::merge("abc", &SyncFile::new(&c1), &ab).unwrap();
    let leaves: Vec<u64> = abc.fence().unwrap_iter().map(|f| f.context()).collect();
    assert_eq!(leaves, vec![ctx, ctx + 1, ctx + 2]);
}

// --- 53: FILE_INFO ------------------------------------------------------------------------

#[test]
fn file_info_with_flags_is_einval() {
    let file = SyncFile::new(&new_fence());
    let mut info = SyncFileInfo {
        flags: 1,
        ..SyncFileInfo::default()
    };
    assert_eq!(
        file.ioctl_file_info(&mut info).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(info.num_fences, 0, "nothing written on error");
}

#[test]
fn file_info_with_pad_is_einval() {
    let file = SyncFile::new(&new_fence());
    let mut info = SyncFileInfo {
        pad: 1,
        num_fences: 4,
        ..SyncFileInfo::default()
    };
    let err = file.ioctl_file_info(&mut info).unwrap_err();
    assert_eq!(err, SyncFileError::NonZero("pad"));
    assert!(info.sync_fence_info.is_empty());
}

#[test]
fn file_info_with_zero_slots_reports_count_and_status_only() {
    let ctx = context_alloc(2).unwrap();
    let (a, b) = (fence_on(ctx, 1), fence_on(ctx + 1, 1));
    let m = SyncFile::merge("m", &SyncFile::new(&a), &SyncFile::new(&b)).unwrap();
    let info = m.info(0).unwrap();
    assert_eq!((info.num_fences, info.status), (2, 0));
    assert!(info.sync_fence_info.is_empty());
    assert_eq!(info.name, "m");
    a.signal().unwrap();
    b.signal().unwrap();
    assert_eq!(m.info(0).unwrap().status, 1);
}

#[test]
fn file_info_with_too_few_slots_is_einval() {
    let ctx = context_alloc(3).unwrap();
    let ab = SyncFile::merge(
        "ab",
        &SyncFile::new(&fence_on(ctx, 1)),
        &SyncFile::new(&fence_on(ctx + 1, 1)),
    )
    .unwrap();
    let abc = SyncFile::merge("abc", &ab, &SyncFile::new(&fence_on(ctx + 2, 1))).unwrap();
    let err = abc.info(2).unwrap_err();
    assert_eq!(
        err,
        SyncFileError::TooFewSlots {
            given: 2,
            needed: 3
        }
    );
    assert_eq!(err.errno(), Errno::EINVAL);
    assert_eq!(abc.info(3).unwrap().sync_fence_info.len(), 3);
}

#[test]
fn file_info_with_spare_slots_reports_the_real_count() {
    let file = SyncFile::new(&new_fence());
    let info = file.info(8).unwrap();
    assert_eq!(info.num_fences, 1);
    assert_eq!(info.sync_fence_info.len(), 1);
}

#[test]
fn file_info_fills_one_entry_per_leaf() {
    let (ops, pending) = mock_fence();
    let done = new_fence();
    done.signal_timestamp(1234).unwrap();
    let failed = new_fence();
    failed.set_error(Errno::EIO).unwrap();
    failed.signal_timestamp(99).unwrap();
    let file = SyncFile::new(&pending);
    let e = &file.info(1).unwrap().sync_fence_info[0];
    assert_eq!(e.obj_name, "mock-tl");
    assert_eq!(e.driver_name, "mock");
    assert_eq!((e.status, e.flags, e.timestamp_ns), (0, 0, 0));
    drop(ops);
    let e = &SyncFile::new(&done).info(1).unwrap().sync_fence_info[0];
    assert_eq!((e.status, e.flags, e.timestamp_ns), (1, 0, 1234));
    // Signaled fences keep their names in 6.12 (behaviour 28's detaching is 6.16+).
    assert_eq!((e.driver_name.as_str(), e.obj_name.as_str()), ("drv", "tl"));
    let e = &SyncFile::new(&failed).info(1).unwrap().sync_fence_info[0];
    assert_eq!((e.status, e.timestamp_ns), (-Errno::EIO.raw(), 99));
}

#[test]
fn file_info_cuts_long_names_to_31_bytes() {
    let long = "t".repeat(40);
    let f = SimpleFenceOps::create(&"d".repeat(40), &long, context_alloc(1).unwrap(), 1);
    let info = SyncFile::new(&f).info(1).unwrap();
    assert_eq!(info.name.len(), 31);
    assert_eq!(info.sync_fence_info[0].obj_name.len(), 31);
    assert_eq!(info.sync_fence_info[0].driver_name.len(), 31);
}

// --- 54: status and name ------------------------------------------------------------------

/// Three fences on ascending contexts, merged (so unwrap order is a, b, c).
fn three() -> (DmaFence, DmaFence, DmaFence, SyncFile) {
    let ctx = context_alloc(3).unwrap();
    let (a, b, c) = (fence_on(ctx, 1), fence_on(ctx + 1, 1), fence_on(ctx + 2, 1));
    let ab = SyncFile::merge("", &SyncFile::new(&a), &SyncFile::new(&b)).unwrap();
    let abc = SyncFile::merge("abc", &ab, &SyncFile::new(&c)).unwrap();
    (a, b, c, abc)
}

#[test]
fn file_info_status_is_one_only_when_every_leaf_signaled() {
    let (a, b, c, file) = three();
    a.signal().unwrap();
    b.signal().unwrap();
    assert_eq!(file.info(3).unwrap().status, 0);
    c.signal().unwrap();
    assert_eq!(file.info(3).unwrap().status, 1);
}

#[test]
fn file_info_status_is_the_first_non_positive_leaf_status() {
    let (a, b, c, file) = three();
    a.signal().unwrap();
    b.set_error(Errno::EIO).unwrap();
    b.signal().unwrap();
    // a = 1, b = -EIO, c = 0: the first status <= 0 is b's.
    assert_eq!(file.info(3).unwrap().status, -Errno::EIO.raw());
    c.set_error(Errno::ENOENT).unwrap();
    c.signal().unwrap();
    assert_eq!(file.info(3).unwrap().status, -Errno::EIO.raw());
}

#[test]
fn file_info_status_pending_before_error_stays_pending() {
    let (_a, b, _c, file) = three();
    b.set_error(Errno::EIO).unwrap();
    b.signal().unwrap();
    // a pending (0) comes first.
    assert_eq!(file.info(3).unwrap().status, 0);
}

#[test]
fn default_name_is_driver_timeline_context_seqno() {
    let ctx = context_alloc(1).unwrap();
    let f = SimpleFenceOps::create("gpu", "ring", ctx, 42);
    let file = SyncFile::new(&f);
    assert_eq!(file.name(), format!("gpu-ring{ctx}-42"));
    assert_eq!(file.info(0).unwrap().name, format!("gpu-ring{ctx}-42"));
}

#[test]
fn default_name_prints_the_seqno_signed() {
    let ctx = context_alloc(1).unwrap();
    let f = DmaFence::new64(SimpleFenceOps::new("d", "t"), ctx, u64::MAX);
    assert_eq!(SyncFile::new(&f).name(), format!("d-t{ctx}--1"));
}

#[test]
fn merge_name_replaces_the_default_name_and_empty_falls_back() {
    let (a, b) = (SyncFile::new(&new_fence()), SyncFile::new(&new_fence()));
    assert_eq!(
        SyncFile::merge("frame-7", &a, &b).unwrap().name(),
        "frame-7"
    );
    let unnamed = SyncFile::merge("", &a, &b).unwrap();
    let f = unnamed.fence();
    assert_eq!(
        unnamed.name(),
        format!(
            "{}-{}{}-{}",
            f.driver_name(),
            f.timeline_name(),
            f.context(),
            f.seqno()
        )
    );
}

// --- 55: poll -----------------------------------------------------------------------------

#[test]
fn poll_is_readable_if_and_only_if_signaled() {
    let f = new_fence();
    let file = SyncFile::new(&f);
    assert_eq!(file.poll(), PollEvents::empty());
    assert!(!file.poll().is_readable());
    f.signal().unwrap();
    assert_eq!(file.poll(), PollEvents::IN);
    assert_eq!(PollEvents::IN.bits(), 0x001);
}

#[test]
fn first_poll_enables_signaling_once() {
    let (ops, f) = mock_fence();
    let file = SyncFile::new(&f);
    assert_eq!(
        ops.enabled.load(Ordering::SeqCst),
        0,
        "creating a file enables nothing"
    );
    file.poll();
    file.poll();
    assert_eq!(ops.enabled.load(Ordering::SeqCst), 1);
}

#[test]
fn poll_notify_wakes_every_poller_on_signal() {
    let f = new_fence();
    let file = SyncFile::new(&f);
    let woken = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let w = woken.clone();
        let reg = file.poll_notify(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        assert!(matches!(reg, PollRegistration::Registered(_)));
    }
    assert_eq!(woken.load(Ordering::SeqCst), 0);
    f.signal().unwrap();
    assert_eq!(woken.load(Ordering::SeqCst), 3);
    assert_eq!(file.poll(), PollEvents::IN);
}

#[test]
fn poll_notify_on_signaled_fence_is_ready_and_never_calls() {
    let f = new_fence();
    f.signal().unwrap();
    let file = SyncFile::new(&f);
    let called = Arc::new(AtomicUsize::new(0));
    let c = called.clone();
    let reg = file.poll_notify(move || {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(reg, PollRegistration::Ready);
    assert_eq!(called.load(Ordering::SeqCst), 0);
}

#[test]
fn cancelled_poller_is_not_woken() {
    let f = new_fence();
    let file = SyncFile::new(&f);
    let called = Arc::new(AtomicUsize::new(0));
    let c = called.clone();
    let PollRegistration::Registered(id) = file.poll_notify(move || {
        c.fetch_add(1, Ordering::SeqCst);
    }) else {
        panic!("pending fence must register");
    };
    assert!(file.cancel_poll_notify(id));
    assert!(!file.cancel_poll_notify(id));
    f.signal().unwrap();
    assert_eq!(called.load(Ordering::SeqCst), 0);
}

#[test]
fn release_removes_the_poll_callback() {
    let f = new_fence();
    let file = SyncFile::new(&f);
    let called = Arc::new(AtomicUsize::new(0));
    let c = called.clone();
    let _ = file.poll_notify(move || {
        c.fetch_add(1, Ordering::SeqCst);
    });
    drop(file);
    f.signal().unwrap();
    assert_eq!(called.load(Ordering::SeqCst), 0);
}

#[test]
fn poller_on_another_thread_is_woken_by_the_signal() {
    let f = new_fence();
    let file = Arc::new(SyncFile::new(&f));
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = {
        let file = file.clone();
        thread::spawn(move || {
            // Ready means the signal came first and the waker was dropped uncalled.
            if let PollRegistration::Registered(_) = file.poll_notify(move || tx.send(()).unwrap())
            {
                rx.recv().unwrap();
            }
            file.poll()
        })
    };
    f.signal().unwrap();
    assert_eq!(waiter.join().unwrap(), PollEvents::IN);
}

#[test]
fn wait_timeout_zero_on_pending_times_out_and_returns_once_signaled() {
    let f = new_fence();
    let file = Arc::new(SyncFile::new(&f));
    assert_eq!(
        file.wait_timeout(None, Some(Duration::ZERO)),
        Err(FenceError::Timeout)
    );
    let t = {
        let file = file.clone();
        thread::spawn(move || file.wait_timeout(None, None))
    };
    f.signal().unwrap();
    assert!(t.join().unwrap().is_ok());
}

// --- 56: SET_DEADLINE ---------------------------------------------------------------------

#[test]
fn set_deadline_with_pad_is_einval() {
    let (ops, f) = mock_fence();
    let file = SyncFile::new(&f);
    let err = file
        .ioctl_set_deadline(&SyncSetDeadline {
            deadline_ns: 5,
            pad: 1,
        })
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL);
    assert!(ops.deadlines.lock().unwrap().is_empty());
}

#[test]
fn set_deadline_reaches_the_driver_while_pending() {
    let (ops, f) = mock_fence();
    let file = SyncFile::new(&f);
    file.ioctl_set_deadline(&SyncSetDeadline {
        deadline_ns: 500,
        pad: 0,
    })
    .unwrap();
    file.set_deadline(400);
    assert_eq!(*ops.deadlines.lock().unwrap(), vec![500, 400]);
    f.signal().unwrap();
    file.set_deadline(300);
    assert_eq!(
        ops.deadlines.lock().unwrap().len(),
        2,
        "no hint after the signal"
    );
}

#[test]
fn merge_data_name_round_trips_through_the_c_field() {
    let data = SyncMergeData::new("camera-frame", 3);
    assert_eq!(data.name, name_to_c("camera-frame"));
    assert_eq!((data.fd2, data.fence, data.flags, data.pad), (3, 0, 0, 0));
    assert_eq!(data.nonzero_field(), None);
}
