//! The host threads device jobs move their bytes on.
//!
//! A [`Pool`] of `n` threads is the caller plus `n - 1` persistent workers. [`Pool::for_each`]
//! runs `task(0..count)` with every index claimed once from a shared counter, by whichever
//! thread is free; it returns when every index ran. Which thread ran which index is not
//! deterministic and must not matter: a [`DeviceJob`](super::DeviceJob)'s pieces each touch
//! their own bytes and return their effects as values, which the job combines in piece order.
//!
//! [`Pool::spawn`] is the same without waiting: the workers start on the indices at once and
//! the caller goes on with other work; [`Batch::wait`] then runs what no worker claimed yet on
//! the caller's thread and returns when every index ran. Several batches may be out at once
//! (jobs of different devices that overlap on a scheduler's clock); each worker takes its
//! batches in the order they were spawned. A pool of one thread runs a batch in `wait`.
//!
//! # Lifetime
//! Tasks are `'static` (they own what they use, behind an `Arc`). A worker drops its clone of
//! the task before it reports done, so once `for_each` returns the caller holds the only
//! reference again. Dropping the pool closes the queues and joins the workers. A task that
//! panics on a worker ends that worker (the index counts as run, its result is missing); later
//! calls run on the threads left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

type Work = Box<dyn FnOnce() + Send>;

/// A pool of host threads (module doc).
pub struct Pool {
    workers: Vec<Sender<Work>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads())
            .finish()
    }
}

/// Counts the helpers still at work; each counts down even when its task panics.
struct Latch {
    left: Mutex<usize>,
    cv: Condvar,
}

struct CountDown(Arc<Latch>);

impl Drop for CountDown {
    fn drop(&mut self) {
        let mut left = self.0.left.lock().unwrap_or_else(|e| e.into_inner());
        *left = left.saturating_sub(1);
        self.0.cv.notify_all();
    }
}

impl Pool {
    /// A pool of `threads` host threads in all (the caller is one; `0` counts as `1`).
    pub fn new(threads: usize) -> Pool {
        let mut workers = Vec::new();
        let mut handles = Vec::new();
        for i in 1..threads.max(1) {
            let (tx, rx) = channel::<Work>();
            let t = std::thread::Builder::new()
                .name(format!("job-pool-{i}"))
                .spawn(move || {
                    while let Ok(w) = rx.recv() {
                        w();
                    }
                });
            if let Ok(t) = t {
                workers.push(tx);
                handles.push(t);
            }
        }
        Pool {
            workers,
            threads: handles,
        }
    }

    /// Host threads of the pool, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `task(i)` for every `i` in `0..count`, on the pool's threads (module doc).
    pub fn for_each(&self, count: usize, task: Arc<dyn Fn(usize) + Send + Sync>) {
        self.spawn(count, task).wait();
    }

    /// Starts `task(i)` for every `i` in `0..count` on the pool's workers and returns at once;
    /// [`Batch::wait`] finishes it (module doc).
    pub fn spawn(&self, count: usize, task: Arc<dyn Fn(usize) + Send + Sync>) -> Batch {
        let next = Arc::new(AtomicUsize::new(0));
        let helpers = self.workers.len().min(count);
        let latch = Arc::new(Latch {
            left: Mutex::new(helpers),
            cv: Condvar::new(),
        });
        for tx in &self.workers[..helpers] {
            let (task, next, done) = (task.clone(), next.clone(), CountDown(latch.clone()));
            let work: Work = Box::new(move || {
                let _done = done;
                claim(&next, count, &*task);
                drop(task); // before the count down (module doc)
            });
            if let Err(e) = tx.send(work) {
                // The worker is gone: the work (and its count down) is dropped unrun.
                drop(e);
            }
        }
        Batch {
            next,
            count,
            task,
            latch,
        }
    }
}

/// Runs `task(i)` for every index still unclaimed.
fn claim(next: &AtomicUsize, count: usize, task: &(dyn Fn(usize) + Send + Sync)) {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            break;
        }
        task(i);
    }
}

/// A spawned batch of indices ([`Pool::spawn`]), running on the pool's workers.
pub struct Batch {
    next: Arc<AtomicUsize>,
    count: usize,
    task: Arc<dyn Fn(usize) + Send + Sync>,
    latch: Arc<Latch>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("count", &self.count).finish()
    }
}

impl Batch {
    /// Runs the indices no worker claimed yet on the caller's thread, then waits until every
    /// index ran; once it returns the workers hold no reference to the task (module doc).
    pub fn wait(self) {
        claim(&self.next, self.count, &*self.task);
        drop(self.task);
        let mut left = self.latch.left.lock().unwrap_or_else(|e| e.into_inner());
        while *left > 0 {
            left = self.latch.cv.wait(left).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.workers.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_index_runs_once_on_any_number_of_threads() {
        for n in [1, 2, 5] {
            let pool = Pool::new(n);
            assert_eq!(pool.threads(), n);
            let hits: Arc<Vec<AtomicU64>> = Arc::new((0..100).map(|_| AtomicU64::new(0)).collect());
            let h = hits.clone();
            pool.for_each(
                100,
                Arc::new(move |i| {
                    h[i].fetch_add(1, Ordering::Relaxed);
                }),
            );
            assert!(hits.iter().all(|c| c.load(Ordering::Relaxed) == 1));
            // The caller holds the only reference again.
            assert_eq!(Arc::strong_count(&hits), 1);
        }
    }

    #[test]
    fn batches_spawned_together_each_run_every_index_once_by_their_wait() {
        for n in [1, 2, 3] {
            let pool = Pool::new(n);
            let hits: Vec<Arc<Vec<AtomicU64>>> = (0..3)
                .map(|_| Arc::new((0..50).map(|_| AtomicU64::new(0)).collect()))
                .collect();
            let batches: Vec<Batch> = hits
                .iter()
                .map(|h| {
                    let h = h.clone();
                    pool.spawn(
                        50,
                        Arc::new(move |i| {
                            h[i].fetch_add(1, Ordering::Relaxed);
                        }),
                    )
                })
                .collect();
            // Waited for in another order than spawned.
            for b in batches.into_iter().rev() {
                b.wait();
            }
            for h in &hits {
                assert!(h.iter().all(|c| c.load(Ordering::Relaxed) == 1));
                assert_eq!(Arc::strong_count(h), 1);
            }
        }
    }
}
