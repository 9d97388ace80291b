//! sw_sync behaviours 57-58 (`drivers/dma-buf/sw_sync.c`), then a port of the kernel's sync
//! selftests (`tools/testing/selftests/sync/`), with the stress tests bounded in count.
//!
//! The selftests talk to fds through a tiny library (`sync.c`); [`sync_wait`] and
//! [`count_with_status`] below are that library over the typed API. No wall-clock assertions:
//! timeouts are only ever zero (a poll) or infinite.

use fence::sw_sync::{SwSyncCreateFenceData, SwSyncError, SwSyncGetDeadline, SwSyncTimeline};
use fence::sync_file::{name_to_c, SyncFile, SyncMergeData};
use fence::{DmaFence, FenceStatus, SimpleFenceOps};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use uapi::{AsErrno, Errno};

/// `FENCE_STATUS_ACTIVE` / `SIGNALED` of the selftests' `sync.h`.
const ACTIVE: i32 = 0;
const SIGNALED: i32 = 1;

fn timeline() -> SwSyncTimeline {
    SwSyncTimeline::new("selftest").unwrap()
}

/// `sync_wait(fd, timeout)`: 1 if signaled, 0 on timeout; `None` waits forever.
fn sync_wait(file: &SyncFile, timeout: Option<Duration>) -> i32 {
    match file.wait_timeout(None, timeout) {
        Ok(_) => 1,
        Err(e) => {
            assert_eq!(e.errno(), Errno::ETIME, "only a timeout is expected");
            0
        }
    }
}

/// `sync_merge(name, a, b)` through the ioctl path.
fn sync_merge(name: &str, a: &SyncFile, b: &SyncFile) -> SyncFile {
    a.ioctl_merge(&SyncMergeData::new(name, 0), Some(b))
        .unwrap()
}

/// `sync_fence_count_with_status`: FILE_INFO twice, counting leaves with `status`.
fn count_with_status(file: &SyncFile, status: i32) -> usize {
    let n = file.info(0).unwrap().num_fences;
    file.info(n)
        .unwrap()
        .sync_fence_info
        .iter()
        .filter(|i| i.status == status)
        .count()
}

/// `sync_fence_size`.
fn fence_size(file: &SyncFile) -> u32 {
    file.info(0).unwrap().num_fences
}

// --- 57: timelines and points -------------------------------------------------------------

#[test]
fn each_timeline_has_a_new_context() {
    let (a, b) = (timeline(), timeline());
    assert_ne!(a.context(), b.context());
    let f = a.create_fence(1);
    assert_eq!((f.context(), f.seqno()), (a.context(), 1));
    assert_eq!(f.driver_name(), "sw_sync");
    assert_eq!(f.timeline_name(), "selftest");
}

#[test]
fn fence_signals_once_the_timeline_reaches_its_value() {
    let tl = timeline();
    let f = tl.create_fence(3);
    for _ in 0..2 {
        tl.inc(1);
        assert_eq!(f.status(), FenceStatus::Pending);
    }
    tl.inc(1);
    assert_eq!(f.status(), FenceStatus::Signaled);
    assert_eq!(tl.pending_count(), 0);
}

#[test]
fn fence_at_or_behind_the_counter_is_signaled_at_once() {
    let tl = timeline();
    tl.inc(5);
    assert!(tl.create_fence(5).is_signaled());
    assert!(tl.create_fence(2).is_signaled());
    assert_eq!(tl.pending_count(), 0);
}

#[test]
fn creating_a_pending_value_again_reuses_the_fence() {
    let tl = timeline();
    let a = tl.create_fence(7);
    let b = tl.create_fence(7);
    assert!(a.ptr_eq(&b));
    assert_eq!(tl.pending_count(), 1);
    let file = tl.create_sync_file(7);
    assert!(file.fence().ptr_eq(&a));
}

#[test]
fn timeline_compares_values_with_32bit_wrap() {
    let tl = timeline();
    tl.inc(u32::MAX); // counter = 0xFFFF_FFFF
    let before_wrap = tl.create_fence(u32::MAX);
    assert!(before_wrap.is_signaled());
    let after_wrap = tl.create_fence(2); // 2 is later than 0xFFFF_FFFF
    assert!(!after_wrap.is_signaled());
    tl.inc(3);
    assert!(after_wrap.is_signaled());
    assert_eq!(tl.value(), 2);
}

#[test]
fn inc_above_int_max_is_applied_in_chunks() {
    let tl = timeline();
    let f = tl.create_fence(10);
    // One jump of u32::MAX would land the counter "just behind" 10 (10 - 0xFFFFFFFF = 11 > 0).
    // In chunks of i32::MAX the first chunk passes 10 and signals it.
    tl.inc(u32::MAX);
    assert_eq!(tl.value(), u32::MAX);
    assert_eq!(f.status(), FenceStatus::Signaled);
}

#[test]
fn inc_signals_passed_points_in_value_order() {
    let tl = timeline();
    let order = Arc::new(Mutex::new(Vec::new()));
    for v in [3u32, 1, 2, 5] {
        let o = order.clone();
        tl.create_fence(v)
            .add_callback(move |_| o.lock().unwrap().push(v))
            .unwrap();
    }
    tl.inc(4);
    assert_eq!(*order.lock().unwrap(), vec![1, 2, 3]);
    assert_eq!(tl.pending_count(), 1);
}

#[test]
fn polling_a_passed_fence_signals_it_before_inc_reaches_it() {
    // A callback that asks the timeline about a later point while inc is still signalling.
    let tl = Arc::new(timeline());
    let later = tl.create_fence(2);
    let seen = Arc::new(Mutex::new(None));
    {
        let (later, seen) = (later.clone(), seen.clone());
        tl.create_fence(1)
            .add_callback(move |_| *seen.lock().unwrap() = Some(later.is_signaled()))
            .unwrap();
    }
    tl.inc(2);
    assert_eq!(
        *seen.lock().unwrap(),
        Some(true),
        "the counter already passed 2"
    );
    assert!(later.is_signaled());
}

#[test]
fn callbacks_may_create_and_advance_points_on_the_same_timeline() {
    let tl = Arc::new(timeline());
    let next = Arc::new(Mutex::new(None));
    {
        let (tl2, next) = (tl.clone(), next.clone());
        tl.create_fence(1)
            .add_callback(move |_| {
                *next.lock().unwrap() = Some(tl2.create_fence(3));
                tl2.inc(1);
            })
            .unwrap();
    }
    tl.inc(1);
    let next = next.lock().unwrap().take().unwrap();
    assert!(!next.is_signaled());
    assert_eq!(tl.value(), 2);
    tl.inc(1);
    assert!(next.is_signaled());
}

#[test]
fn create_fence_ioctl_ignores_the_name() {
    let tl = timeline();
    let data = SwSyncCreateFenceData {
        value: 4,
        name: name_to_c("ignored"),
        fence: -1,
    };
    let file = tl.ioctl_create_fence(&data);
    assert_eq!(file.name(), format!("sw_sync-selftest{}-4", tl.context()));
}

// --- 58: close and GET_DEADLINE -----------------------------------------------------------

#[test]
fn closing_timeline_signals_pending_with_enoent() {
    let tl = timeline();
    let done = tl.create_fence(1);
    let (p2, p9) = (tl.create_fence(2), tl.create_fence(9));
    tl.inc(1);
    drop(tl);
    assert_eq!(
        done.status(),
        FenceStatus::Signaled,
        "signaled points keep their status"
    );
    assert_eq!(p2.status(), FenceStatus::Error(Errno::ENOENT));
    assert_eq!(p9.status(), FenceStatus::Error(Errno::ENOENT));
    assert_eq!(p9.get_status(), -Errno::ENOENT.raw());
}

#[test]
fn fences_outlive_their_closed_timeline() {
    let tl = timeline();
    let f = tl.create_fence(1);
    let file = SyncFile::new(&f);
    tl.close();
    assert!(f.is_signaled());
    assert_eq!(
        file.info(1).unwrap().sync_fence_info[0].status,
        -Errno::ENOENT.raw()
    );
}

#[test]
fn get_deadline_with_nonzero_input_is_einval() {
    let tl = timeline();
    let f = tl.create_fence(1);
    f.set_deadline(100);
    let mut data = SwSyncGetDeadline {
        deadline_ns: 1,
        ..Default::default()
    };
    assert_eq!(
        tl.ioctl_get_deadline(&mut data, Some(&f))
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    let mut data = SwSyncGetDeadline {
        pad: 1,
        ..Default::default()
    };
    assert_eq!(
        tl.ioctl_get_deadline(&mut data, Some(&f))
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
}

#[test]
fn get_deadline_of_a_non_sw_sync_fence_is_einval() {
    let tl = timeline();
    let foreign = SimpleFenceOps::create("d", "t", tl.context(), 1); // same context, other ops
    assert_eq!(tl.get_deadline(&foreign), Err(SwSyncError::NotSwSyncFence));
    let mut data = SwSyncGetDeadline::default();
    assert_eq!(
        tl.ioctl_get_deadline(&mut data, None).unwrap_err().errno(),
        Errno::EINVAL
    );
}

#[test]
fn get_deadline_without_a_deadline_is_enoent() {
    let tl = timeline();
    let f = tl.create_fence(1);
    let mut data = SwSyncGetDeadline::default();
    let err = tl.ioctl_get_deadline(&mut data, Some(&f)).unwrap_err();
    assert_eq!(
        (err.clone(), err.errno()),
        (SwSyncError::NoDeadline, Errno::ENOENT)
    );
}

#[test]
fn get_deadline_returns_the_earliest_deadline() {
    let tl = timeline();
    let file = tl.create_sync_file(1);
    for d in [3_000, 1_000, 2_000] {
        file.set_deadline(d);
    }
    let mut data = SwSyncGetDeadline::default();
    tl.ioctl_get_deadline(&mut data, Some(file.fence()))
        .unwrap();
    assert_eq!(data.deadline_ns, 1_000);
    tl.inc(1);
    file.set_deadline(10); // signaled: the hint no longer reaches the driver
    assert_eq!(tl.get_deadline(file.fence()), Ok(1_000));
}

// --- selftests: sync_alloc.c --------------------------------------------------------------

#[test]
fn test_alloc_timeline() {
    let tl = timeline();
    assert_eq!(tl.value(), 0);
    tl.close();
}

#[test]
fn test_alloc_fence() {
    let tl = timeline();
    let fence = tl.create_sync_file(1);
    assert_eq!(fence_size(&fence), 1);
}

#[test]
fn test_alloc_fence_negative() {
    // The C test creates a fence on fd -1. A typed timeline cannot be invalid; the nearest
    // check is an ioctl naming a sync file that does not exist.
    let tl = timeline();
    let fence = tl.create_sync_file(1);
    let err = fence
        .ioctl_merge(&SyncMergeData::new("fence", -1), None)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::ENOENT);
}

// --- selftests: sync_fence.c --------------------------------------------------------------

#[test]
fn test_fence_one_timeline_wait() {
    let tl = timeline();
    let fence = tl.create_sync_file(5);
    assert_eq!(sync_wait(&fence, Some(Duration::ZERO)), 0);
    tl.inc(1);
    assert_eq!(sync_wait(&fence, Some(Duration::ZERO)), 0);
    tl.inc(4);
    assert_eq!(sync_wait(&fence, Some(Duration::ZERO)), 1);
    tl.inc(10);
    assert_eq!(sync_wait(&fence, Some(Duration::ZERO)), 1);
}

#[test]
fn test_fence_one_timeline_merge() {
    let tl = timeline();
    let (a, b, c) = (
        tl.create_sync_file(1),
        tl.create_sync_file(2),
        tl.create_sync_file(3),
    );
    let d = sync_merge("mergeFence", &b, &a);
    let d = sync_merge("mergeFence", &c, &d);
    for f in [&a, &b, &c, &d] {
        assert_eq!(count_with_status(f, ACTIVE), 1);
    }
    tl.inc(1);
    assert_eq!(count_with_status(&a, SIGNALED), 1);
    assert_eq!(count_with_status(&d, ACTIVE), 1);
    tl.inc(1);
    assert_eq!(count_with_status(&b, SIGNALED), 1);
    assert_eq!(count_with_status(&d, ACTIVE), 1);
    tl.inc(1);
    assert_eq!(count_with_status(&c, SIGNALED), 1);
    assert_eq!(
        (
            count_with_status(&d, ACTIVE),
            count_with_status(&d, SIGNALED)
        ),
        (0, 1)
    );
}

// --- selftests: sync_merge.c --------------------------------------------------------------

#[test]
fn test_fence_merge_same_fence() {
    let tl = timeline();
    let fence = tl.create_sync_file(5);
    let merged = sync_merge("mergeFence", &fence, &fence);
    assert_eq!(count_with_status(&merged, SIGNALED), 0);
    tl.inc(5);
    assert_eq!(count_with_status(&merged, SIGNALED), 1);
}

// --- selftests: sync_wait.c ---------------------------------------------------------------

#[test]
fn test_fence_multi_timeline_wait() {
    let (ta, tb, tc) = (timeline(), timeline(), timeline());
    let (fa, fb, fc) = (
        ta.create_sync_file(5),
        tb.create_sync_file(5),
        tc.create_sync_file(5),
    );
    let merged = sync_merge("mergeFence", &fb, &fa);
    let merged = sync_merge("mergeFence", &fc, &merged);
    assert_eq!(count_with_status(&merged, ACTIVE), 3);
    assert_eq!(sync_wait(&merged, Some(Duration::ZERO)), 0);
    for (i, tl) in [&ta, &tb, &tc].into_iter().enumerate() {
        tl.inc(5);
        assert_eq!(count_with_status(&merged, ACTIVE), 2 - i);
        assert_eq!(count_with_status(&merged, SIGNALED), i + 1);
    }
    assert_eq!(sync_wait(&merged, None), 1);
}

// --- selftests: sync_stress_parallelism.c -------------------------------------------------

#[test]
fn test_stress_two_threads_shared_timeline() {
    const ITERATIONS: u32 = 1 << 15; // the kernel runs 1 << 16
    let tl = Arc::new(timeline());
    let counter = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..2)
        .map(|id| {
            let (tl, counter) = (tl.clone(), counter.clone());
            thread::spawn(move || {
                for i in 0..ITERATIONS {
                    let fence = tl.create_sync_file(i * 2 + id);
                    assert_eq!(sync_wait(&fence, None), 1);
                    // The previous thread's write is visible; a plain load/store is the point.
                    assert_eq!(
                        counter.load(Ordering::Relaxed),
                        i * 2 + id,
                        "counter damaged"
                    );
                    counter.store(i * 2 + id + 1, Ordering::Relaxed);
                    tl.inc(1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(counter.load(Ordering::Relaxed), ITERATIONS * 2);
}

// --- selftests: sync_stress_consumer.c ----------------------------------------------------

/// `busy_wait_on_fence`: spin on FILE_INFO until nothing is active, asserting no error.
fn busy_wait_on_fence(file: &SyncFile) {
    loop {
        let n = file.info(0).unwrap().num_fences;
        let info = file.info(n).unwrap().sync_fence_info;
        assert!(info.iter().all(|i| i.status >= 0), "error on fence");
        if info.iter().all(|i| i.status != ACTIVE) {
            return;
        }
        thread::yield_now();
    }
}

#[test]
fn test_consumer_stress_multi_producer_single_consumer() {
    const ITERATIONS: u32 = 1 << 12; // as the kernel
    const N: usize = 5;
    let consumer = Arc::new(timeline());
    let producers: Arc<Vec<SwSyncTimeline>> = Arc::new((0..N).map(|_| timeline()).collect());
    let counter = Arc::new(Mutex::new(0u32));

    let threads: Vec<_> = (0..N)
        .map(|id| {
            let (consumer, producers, counter) =
                (consumer.clone(), producers.clone(), counter.clone());
            thread::spawn(move || {
                for i in 0..ITERATIONS {
                    let fence = consumer.create_sync_file(i);
                    // Vary the means of waiting, as the C test does.
                    match (i as usize + id) % 8 {
                        0 => busy_wait_on_fence(&fence),
                        _ => assert_eq!(sync_wait(&fence, None), 1),
                    }
                    *counter.lock().unwrap() += 1;
                    producers[id].inc(1);
                }
            })
        })
        .collect();

    for it in 1..=ITERATIONS {
        let mut fence = producers[0].create_sync_file(it);
        for p in producers.iter().skip(1) {
            let tmp = p.create_sync_file(it);
            fence = sync_merge("name", &tmp, &fence);
        }
        match it % 8 {
            0 => busy_wait_on_fence(&fence),
            _ => assert_eq!(sync_wait(&fence, None), 1),
        }
        assert_eq!(
            *counter.lock().unwrap(),
            N as u32 * it,
            "counter value mismatch"
        );
        consumer.inc(1);
    }
    for t in threads {
        t.join().unwrap();
    }
}

// --- selftests: sync_stress_merge.c -------------------------------------------------------

#[test]
fn test_merge_stress_random_merge() {
    const TIMELINES: usize = 32;
    const MERGES: usize = 1024 * 32; // as the kernel
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let timelines: Vec<SwSyncTimeline> = (0..TIMELINES).map(|_| timeline()).collect();
    let mut latest: [Option<u32>; TIMELINES] = [None; TIMELINES];

    let mut fence = timelines[0].create_sync_file(0);
    latest[0] = Some(0);
    for _ in 0..MERGES {
        let t = rng.gen_range(0..TIMELINES);
        let point = rng.gen_range(1..=i32::MAX as u32); // rand(): 0..=RAND_MAX
        latest[t] = Some(latest[t].map_or(point, |l| l.max(point)));
        let tmp = timelines[t].create_sync_file(point);
        fence = sync_merge("merge", &tmp, &fence);
    }
    // The first fence (value 0) was signaled at creation, so merging dropped it: count only
    // timelines that got a pending point.
    let expected = latest.iter().filter(|l| l.is_some_and(|v| v > 0)).count();
    assert_eq!(fence_size(&fence) as usize, expected);

    for (t, tl) in timelines.iter().enumerate() {
        if let Some(point) = latest[t] {
            assert_eq!(sync_wait(&fence, Some(Duration::ZERO)), 0);
            tl.inc(point);
        }
    }
    assert_eq!(sync_wait(&fence, Some(Duration::ZERO)), 1);
}

// --- a merged fence across timelines woken on another thread --------------------------------

#[test]
fn waiter_on_merged_fence_wakes_when_the_last_timeline_advances() {
    let (ta, tb) = (timeline(), Arc::new(timeline()));
    let merged = Arc::new(sync_merge(
        "m",
        &ta.create_sync_file(1),
        &tb.create_sync_file(1),
    ));
    ta.inc(1);
    let waiter = {
        let merged = merged.clone();
        thread::spawn(move || sync_wait(&merged, None))
    };
    tb.inc(1);
    assert_eq!(waiter.join().unwrap(), 1);
    let _: &DmaFence = merged.fence();
}
