//! The virtual clock: deterministic ordering, exact times, the device time model.

use scenario::clock::{ClockError, DeviceTiming, Engine, EventQueue, TimeModel, VirtualTime};

#[test]
fn equal_times_pop_in_push_order() {
    let mut q = EventQueue::new();
    let t = VirtualTime::from_us(10);
    for i in 0..100 {
        q.push(t, i).unwrap();
    }
    q.push(VirtualTime::from_us(5), -1).unwrap();
    let order: Vec<i32> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
    let mut expected = vec![-1];
    expected.extend(0..100);
    assert_eq!(order, expected);
}

#[test]
fn interleaved_pushes_give_the_same_order_every_time() {
    let run = || {
        let mut q = EventQueue::new();
        let mut out = Vec::new();
        for i in 0u64..50 {
            q.push(VirtualTime(i % 7), i).unwrap();
        }
        while let Some((t, e)) = q.pop() {
            out.push((t, e));
            if e < 20 {
                q.push_after(VirtualTime(3), e + 100);
            }
        }
        out
    };
    let a = run();
    assert_eq!(a, run());
    assert!(
        a.windows(2).all(|w| w[0].0 <= w[1].0),
        "time never goes backwards"
    );
}

#[test]
fn pushing_into_the_past_is_refused_and_time_is_exact() {
    let mut q = EventQueue::new();
    q.push(VirtualTime::from_ms(2), "a").unwrap();
    assert_eq!(q.peek_time(), Some(VirtualTime(2_000_000)));
    q.pop();
    assert_eq!(q.now(), VirtualTime(2_000_000));
    assert_eq!(
        q.push(VirtualTime::from_ms(1), "b"),
        Err(ClockError::InPast {
            at: VirtualTime::from_ms(1),
            now: VirtualTime::from_ms(2)
        })
    );
    assert!(q.is_empty());
}

#[test]
fn transfer_time_is_latency_plus_bytes_over_bandwidth() {
    let desc = soc::SocDesc::default_soc();
    let model = TimeModel::from_desc(&desc);
    // isp0: 6 GB/s, 5 us latency. 6 MB take 1 ms.
    assert_eq!(
        model.transfer_time("isp0", 6_000_000).unwrap(),
        VirtualTime::from_us(1_005)
    );
    // A copy reads and writes.
    assert_eq!(
        model.copy_time("isp0", 6_000_000).unwrap(),
        VirtualTime::from_us(2_005)
    );
    assert_eq!(
        model.transfer_time("nope", 1),
        Err(ClockError::UnknownDevice("nope".into()))
    );
    // Rounds up, never overflows.
    let t = DeviceTiming {
        bandwidth_bps: 3,
        latency: VirtualTime::ZERO,
    };
    assert_eq!(t.transfer_time(1).as_ns(), 333_333_334);
    assert_eq!(t.transfer_time(u64::MAX).as_ns(), u64::MAX);
}

#[test]
fn an_engine_runs_one_job_at_a_time() {
    let mut e = Engine::default();
    let us = VirtualTime::from_us;
    assert_eq!(e.submit(us(0), us(10)), (us(0), us(10)));
    assert_eq!(e.submit(us(5), us(10)), (us(10), us(20)));
    assert_eq!(e.submit(us(50), us(1)), (us(50), us(51)));
    assert_eq!(e.busy_total(), us(21));
    assert_eq!(e.busy_until(), us(51));
}

#[test]
fn frame_periods() {
    assert_eq!(VirtualTime::frame_period(30).as_ns(), 33_333_333);
    assert_eq!(VirtualTime::frame_period(1000).as_ns(), 1_000_000);
    assert_eq!(VirtualTime::frame_period(0), VirtualTime::ZERO);
}
