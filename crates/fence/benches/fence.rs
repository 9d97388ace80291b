//! Fence hot paths, each measured against a baseline in the same run.
//!
//! 1. `signal/no_waiter`: [`DmaFence::signal`] on a fresh fence nobody waits on, against
//!    locking an uncontended mutex and setting a flag. Target: <= 50 ns. Two breakdown figures
//!    go with it: the signal with a given timestamp (no clock read) and the clock read alone.
//! 2. `handoff/*`: a ping-pong between two threads. One side signals fence `i` and waits for
//!    the reply fence `i`; the other waits (parked) for fence `i` and signals the reply. Baseline:
//!    the same ping-pong over a `std::sync::Mutex` and two `Condvar`s. Target: <= 2x the
//!    baseline per round trip.
//! 3. `resv16/*`: lock a new [`DmaResv`], reserve 16 slots, add 16 fences of 16 contexts and
//!    iterate them; baseline: push 16 `Arc`s into a new `Vec` and iterate it.
//!
//! Run: `cargo bench -p fence --bench fence -- --warm-up-time 1 --measurement-time 3`.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use fence::resv::{DmaResv, DmaResvUsage};
use fence::{context_alloc, DmaFence, FenceOps, SimpleFenceOps};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

fn ops() -> Arc<dyn FenceOps> {
    SimpleFenceOps::new("bench", "bench")
}

fn signal(c: &mut Criterion) {
    let mut g = c.benchmark_group("signal");
    let ops = ops();
    let ctx = context_alloc(1).unwrap();
    g.bench_function("no_waiter", |b| {
        b.iter_batched(
            || DmaFence::new(ops.clone(), ctx, 1),
            |f| {
                f.signal().unwrap();
                f // dropped outside the timed region
            },
            BatchSize::SmallInput,
        )
    });
    // Breakdown of the above: the same signal with the timestamp given (no clock read), and
    // the clock read alone.
    g.bench_function("no_waiter_given_timestamp", |b| {
        b.iter_batched(
            || DmaFence::new(ops.clone(), ctx, 1),
            |f| {
                f.signal_timestamp(1).unwrap();
                f
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("clock_now_ns", |b| {
        b.iter(|| clock::Clock::now_ns(clock::unbooted()))
    });
    g.bench_function("baseline_mutex_flag", |b| {
        b.iter_batched(
            || Box::new(parking_lot::Mutex::new(false)),
            |m| {
                *m.lock() = true;
                m
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// `n` ping fences and `n` pong fences sharing one ops object.
fn fence_pairs(n: usize) -> (Arc<Vec<DmaFence>>, Arc<Vec<DmaFence>>) {
    let ops = ops();
    let ctx = context_alloc(2).unwrap();
    let make = |c: u64| {
        (1..=n as u64)
            .map(|s| DmaFence::new(ops.clone(), c, s))
            .collect()
    };
    (Arc::new(make(ctx)), Arc::new(make(ctx + 1)))
}

fn fence_pingpong(iters: u64) -> Duration {
    let n = iters as usize;
    let (ping, pong) = fence_pairs(n);
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        thread::spawn(move || {
            for i in 0..n {
                ping[i].wait(None).unwrap();
                pong[i].signal().unwrap();
            }
        })
    };
    let start = Instant::now();
    for i in 0..n {
        ping[i].signal().unwrap();
        pong[i].wait(None).unwrap();
    }
    let elapsed = start.elapsed();
    echo.join().unwrap();
    elapsed
}

/// The same ping-pong over a counter, a `std` mutex and one condition variable per direction.
struct Court {
    ball: Mutex<u64>,
    to_echo: Condvar,
    to_main: Condvar,
}

fn condvar_pingpong(iters: u64) -> Duration {
    let court = Arc::new(Court {
        ball: Mutex::new(0),
        to_echo: Condvar::new(),
        to_main: Condvar::new(),
    });
    let echo = {
        let court = court.clone();
        thread::spawn(move || {
            for i in 0..iters {
                let mut b = court.ball.lock().unwrap();
                while *b != 2 * i + 1 {
                    b = court.to_echo.wait(b).unwrap();
                }
                *b = 2 * i + 2;
                drop(b);
                court.to_main.notify_one();
            }
        })
    };
    let start = Instant::now();
    for i in 0..iters {
        *court.ball.lock().unwrap() = 2 * i + 1;
        court.to_echo.notify_one();
        let mut b = court.ball.lock().unwrap();
        while *b != 2 * i + 2 {
            b = court.to_main.wait(b).unwrap();
        }
    }
    let elapsed = start.elapsed();
    echo.join().unwrap();
    elapsed
}

fn handoff(c: &mut Criterion) {
    let mut g = c.benchmark_group("handoff");
    g.bench_function("fence_signal_wakes_parked_waiter", |b| {
        b.iter_custom(fence_pingpong)
    });
    g.bench_function("baseline_mutex_condvar", |b| {
        b.iter_custom(condvar_pingpong)
    });
    g.finish();
}

fn resv16(c: &mut Criterion) {
    let mut g = c.benchmark_group("resv16");
    let ops = ops();
    let ctx = context_alloc(16).unwrap();
    let fences: Vec<DmaFence> = (0..16)
        .map(|i| DmaFence::new(ops.clone(), ctx + i, 1))
        .collect();
    g.bench_function("resv_reserve_add16_iterate", |b| {
        b.iter(|| {
            let resv = DmaResv::new();
            let mut guard = resv.lock(None).unwrap();
            guard.reserve_fences(16).unwrap();
            for f in &fences {
                guard.add_fence(f, DmaResvUsage::Write).unwrap();
            }
            let sum: u64 = guard
                .iter(DmaResvUsage::Bookkeep)
                .map(|e| e.fence.seqno())
                .sum();
            drop(guard);
            black_box(sum)
        })
    });
    let arcs: Vec<Arc<u64>> = (0..16).map(Arc::new).collect();
    g.bench_function("baseline_vec_push16_iterate", |b| {
        b.iter(|| {
            let mut v = Vec::new();
            for a in &arcs {
                v.push(a.clone());
            }
            let sum: u64 = v.iter().map(|a| **a).sum();
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(benches, signal, handoff, resv16);
criterion_main!(benches);
