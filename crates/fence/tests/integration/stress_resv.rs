//! Stress: threads lock random sets of 8 of 64 reservation objects with acquire contexts, add
//! fences, and other threads signal them, while a reader walks the objects unlocked.
//!
//! Asserts that it completes (no deadlock; a watchdog fails the test instead of hanging) and that
//! no fence callback is lost (every added callback runs exactly once). Bounded both in
//! iterations and in time: at most about 3 s by default, 30 s with `DMABUF_STRESS=1`.

use fence::resv::{DmaResv, DmaResvUsage, ResvExec};
use fence::ww_mutex::WwError;
use fence::{context_alloc, DmaFence, Interrupt, SimpleFenceOps};
use rand::seq::{index, SliceRandom};
use rand::Rng;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

const OBJECTS: usize = 64;
const SET: usize = 8;
const WORKERS: usize = 4;

struct Config {
    run_for: Duration,
    iterations: usize,
}

fn config() -> Config {
    if std::env::var("DMABUF_STRESS").is_ok_and(|v| v == "1") {
        Config {
            run_for: Duration::from_secs(30),
            iterations: 1_000_000,
        }
    } else {
        Config {
            run_for: Duration::from_secs(3),
            iterations: 50_000,
        }
    }
}

#[derive(Default)]
struct Counters {
    fences: AtomicUsize,
    callbacks_added: AtomicUsize,
    callbacks_run: AtomicUsize,
    backoffs: AtomicUsize,
    interrupted: AtomicUsize,
    reads: AtomicUsize,
}

/// One worker: lock a random set, add one new fence to each object, hand the fence to its
/// signaller (one per worker, so each timeline signals in seqno order as the contract requires).
fn worker(
    id: usize,
    objs: &[DmaResv],
    cfg: &Config,
    n: &Counters,
    intr: Option<&Interrupt>,
    to_signal: mpsc::Sender<DmaFence>,
) {
    let mut rng = rand::thread_rng();
    let ctx = context_alloc(1).unwrap();
    let ops = SimpleFenceOps::new("stress", &format!("worker{id}"));
    let start = Instant::now();
    let mut seqno = 0;
    while seqno < cfg.iterations && start.elapsed() < cfg.run_for {
        let mut set: Vec<&DmaResv> = index::sample(&mut rng, OBJECTS, SET)
            .into_iter()
            .map(|i| &objs[i])
            .collect();
        set.shuffle(&mut rng);
        let mut exec = match ResvExec::lock_all(&set, intr) {
            Ok(e) => e,
            Err(WwError::Interrupted) => {
                n.interrupted.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(e) => panic!("lock_all: {e}"),
        };
        n.backoffs.fetch_add(exec.backoffs(), Ordering::Relaxed);
        seqno += 1;
        let f = DmaFence::new(ops.clone(), ctx, seqno as u64);
        n.fences.fetch_add(1, Ordering::Relaxed);
        for g in exec.guards_mut() {
            g.reserve_fences(1).unwrap();
            let usage = DmaResvUsage::ALL[rng.gen_range(0..4)];
            g.add_fence(&f, usage).unwrap();
        }
        drop(exec);
        to_signal.send(f).unwrap();
    }
}

#[test]
fn stress_resv_random_sets_with_backoff_no_deadlock_no_lost_callback() {
    let cfg = Arc::new(config());
    let objs: Arc<Vec<DmaResv>> = Arc::new((0..OBJECTS).map(|_| DmaResv::new()).collect());
    let n = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let intr = Interrupt::new();
    let (done_tx, done_rx) = mpsc::channel::<()>();

    let mut handles = Vec::new();
    for id in 0..WORKERS {
        let (tx, rx) = mpsc::channel::<DmaFence>();
        let (objs, cfg, wn, intr) = (objs.clone(), cfg.clone(), n.clone(), intr.clone());
        handles.push(thread::spawn(move || {
            // Worker 0 uses interruptible locking while the pest thread raises the interrupt.
            let intr = (id == 0).then_some(&intr);
            worker(id, &objs, &cfg, &wn, intr, tx);
        }));
        let n = n.clone();
        handles.push(thread::spawn(move || {
            // The signaller: registers a counting callback, then signals, in arrival order.
            for f in rx {
                let run = n.clone();
                if f.add_callback(move |_| {
                    run.callbacks_run.fetch_add(1, Ordering::Relaxed);
                })
                .is_ok()
                {
                    n.callbacks_added.fetch_add(1, Ordering::Relaxed);
                }
                thread::yield_now();
                f.signal().unwrap();
            }
        }));
    }
    let reader = {
        let (objs, n, stop) = (objs.clone(), n.clone(), stop.clone());
        thread::spawn(move || {
            let mut rng = rand::thread_rng();
            while !stop.load(Ordering::Relaxed) {
                let o = &objs[rng.gen_range(0..OBJECTS)];
                let usage = DmaResvUsage::ALL[rng.gen_range(0..4)];
                // Callbacks added while the signallers run must all run too.
                for f in o.get_fences(usage) {
                    let run = n.clone();
                    let cb = move |_: &DmaFence| {
                        run.callbacks_run.fetch_add(1, Ordering::Relaxed);
                    };
                    if f.add_callback(cb).is_ok() {
                        n.callbacks_added.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = o.test_signaled(usage);
                let _ = o.get_singleton(usage).unwrap();
                let _ = o.wait_timeout(usage, None, Some(Duration::from_micros(200)));
                if let Ok(g) = o.try_lock() {
                    // Nothing changes while locked: the unlocked walk is the locked one minus
                    // the signaled fences.
                    let locked = g.iter(usage).count();
                    assert!(o.iter_unlocked(usage).count() <= locked);
                }
                n.reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let pest = {
        let (intr, stop) = (intr.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                intr.raise();
                thread::sleep(Duration::from_micros(50));
                intr.clear();
                thread::sleep(Duration::from_micros(500));
            }
        })
    };

    // Watchdog: a deadlock fails the test instead of hanging it.
    let joiner = thread::spawn(move || {
        for h in handles {
            h.join().unwrap();
        }
        done_tx.send(()).unwrap();
    });
    let limit = cfg.run_for + Duration::from_secs(60);
    if done_rx.recv_timeout(limit).is_err() {
        panic!("stress_resv did not finish: deadlock or lost wake-up");
    }
    joiner.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    pest.join().unwrap();

    let fences = n.fences.load(Ordering::Relaxed);
    let added = n.callbacks_added.load(Ordering::Relaxed);
    let run = n.callbacks_run.load(Ordering::Relaxed);
    eprintln!(
        "stress_resv: {fences} fences, {added} callbacks, {} backoffs, {} interrupted, {} reads",
        n.backoffs.load(Ordering::Relaxed),
        n.interrupted.load(Ordering::Relaxed),
        n.reads.load(Ordering::Relaxed),
    );
    assert!(fences > 0);
    assert_eq!(run, added, "lost fence callbacks");
    for o in objs.iter() {
        assert!(o.test_signaled(DmaResvUsage::Bookkeep));
        assert!(!o.is_locked());
    }
}
