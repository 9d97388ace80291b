//! `--engine-threads`: one OS thread per device engine (a stress mode).
//!
//! The scheduler still decides what runs when (on the virtual clock); only the byte movement of
//! each job goes to its engine's thread, so devices really copy, transform and verify at the
//! same time and the simulated SoC, the DMA-API checker and the exporters see concurrent
//! access. A job's result is collected at its completion event (or before a scenario event),
//! which keeps frames correct; the host interleaving differs from run to run, so this mode
//! checks for races and is not the deterministic reference.
//!
//! Also here: how the loop collects a job's result in any mode ([`Pending`], `collect`,
//! `barrier`): the job's mappings go back when its result is taken, and the DMA-API checker's
//! findings are moved out of the checker in the run's fixed order (`drain_findings`). A job
//! whose bytes move on the run's pool while the loop goes on (module `inflight`, the
//! deterministic mode) is only collected by waiting, at the loop's fixed points.

use super::sched::Sched;
use dma::DmaApi;
use drivers::job::{DeviceJob as JobIo, JobEffects, JobEffects as JobResult};
use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

type Work = (JobIo, Arc<DmaApi>, Sender<JobResult>);

/// A job's result, in or still coming.
pub(crate) struct Pending {
    state: PState,
    settled: bool,
}

enum PState {
    Ready(Box<JobResult>),
    Waiting(Receiver<JobResult>),
    /// Its bytes are moving on the run's pool (module `inflight`).
    Running(super::inflight::OnPool),
    Taken,
}

impl Pending {
    /// A result computed already.
    pub(crate) fn ready(r: JobResult) -> Pending {
        Pending {
            state: PState::Ready(Box::new(r)),
            settled: false,
        }
    }

    /// No result yet: the job's bytes have not moved (a deferred job, module `faults`).
    pub(crate) fn later() -> Pending {
        Pending {
            state: PState::Taken,
            settled: false,
        }
    }

    /// A result another engine sends once it ran the job (a GPU ring's device job,
    /// [`drivers::gpu::Job::device`]); a sender that goes away without one (the ring cancelled
    /// the job) is a lost job, as an engine thread that ended.
    pub(crate) fn waiting(rx: Receiver<JobResult>) -> Pending {
        Pending {
            state: PState::Waiting(rx),
            settled: false,
        }
    }

    /// A job whose bytes are moving on the run's pool; its result is taken only by waiting
    /// (module `inflight`).
    pub(crate) fn running(r: super::inflight::OnPool) -> Pending {
        Pending {
            state: PState::Running(r),
            settled: false,
        }
    }

    /// Whether the job's bytes are moving on the run's pool (module `inflight`).
    pub(crate) fn is_running(&self) -> bool {
        matches!(self.state, PState::Running(_))
    }

    /// Takes the result if it is in; with `wait`, blocks until it is (a job on the run's
    /// pool only answers `wait`: when it is taken must not depend on the host's timing).
    pub(crate) fn take(&mut self, wait: bool) -> Option<Box<JobResult>> {
        match std::mem::replace(&mut self.state, PState::Taken) {
            PState::Ready(r) => Some(r),
            PState::Running(r) if wait => r.wait().map(Box::new),
            PState::Running(r) => {
                self.state = PState::Running(r);
                None
            }
            PState::Waiting(rx) => {
                let got = if wait {
                    rx.recv().ok()
                } else {
                    rx.try_recv().ok()
                };
                match got {
                    Some(r) => Some(Box::new(r)),
                    None => {
                        self.state = PState::Waiting(rx);
                        None
                    }
                }
            }
            PState::Taken => None,
        }
    }

    /// Puts a (settled) result back.
    pub(crate) fn put_settled(&mut self, r: JobResult) {
        self.state = PState::Ready(Box::new(r));
        self.settled = true;
    }

    /// Whether the mappings went back already.
    pub(crate) fn is_settled(&self) -> bool {
        self.settled
    }

    /// The settled result, if the job's bytes have moved and its result is in.
    pub(crate) fn settled(&self) -> Option<&JobResult> {
        match (&self.state, self.settled) {
            (PState::Ready(r), true) => Some(r),
            _ => None,
        }
    }

    /// The settled result, taken (`None` if it never came: the engine thread ended).
    pub(crate) fn take_settled(&mut self) -> Option<JobResult> {
        match std::mem::replace(&mut self.state, PState::Taken) {
            PState::Ready(r) => Some(*r),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// A job whose engine thread ended before answering (its sender is gone).
    #[cfg(test)]
    pub(crate) fn lost() -> Pending {
        let (_, rx) = channel();
        Pending {
            state: PState::Waiting(rx),
            settled: true,
        }
    }
}

/// The engine threads.
pub(crate) struct Workers {
    senders: BTreeMap<String, Sender<Work>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// One thread per engine name.
    pub(crate) fn new(engines: &[String]) -> Workers {
        let mut senders = BTreeMap::new();
        let mut threads = Vec::new();
        for name in engines {
            if senders.contains_key(name) {
                continue;
            }
            let (tx, rx) = channel::<Work>();
            let t = std::thread::Builder::new()
                .name(format!("engine-{name}"))
                .spawn(move || {
                    while let Ok((io, dma, back)) = rx.recv() {
                        let _ = back.send(io.execute(&dma));
                    }
                });
            if let Ok(t) = t {
                threads.push(t);
                senders.insert(name.clone(), tx);
            }
        }
        Workers { senders, threads }
    }

    /// Runs `io` on `engine`'s thread (on the caller's if the engine has none).
    pub(crate) fn submit(&self, engine: &str, io: JobIo, dma: Arc<DmaApi>) -> Pending {
        let Some(tx) = self.senders.get(engine) else {
            return Pending::ready(io.execute(&dma));
        };
        let (btx, brx) = channel();
        match tx.send((io, dma.clone(), btx)) {
            Ok(()) => Pending {
                state: PState::Waiting(brx),
                settled: false,
            },
            Err(e) => {
                let (io, dma, _) = e.0;
                Pending::ready(io.execute(&dma))
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.senders.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Collecting results: a job's mappings go back when its result is taken.
impl Sched<'_> {
    /// Collects a job's result if it is in (blocking for `--engine-threads` only when `wait`), and
    /// gives its mappings back.
    pub(crate) fn collect(&mut self, id: u64, wait: bool) -> Option<JobEffects> {
        // A held-back job (module `faults`) moves its bytes now.
        self.run_deferred(id);
        let job = self.jobs.get_mut(&id)?;
        let was_running = job.result.is_running();
        let since = was_running.then(|| self.waits.now()).flatten();
        let taken = job.result.take(wait);
        let end = job.end;
        self.waits.note(since, end, self.q.now());
        let job = self.jobs.get_mut(&id)?;
        let Some(res) = taken else {
            // A running GPU ring job whose effects never came (cancelled): lost, but collected.
            if was_running {
                self.running_collected();
            }
            return None;
        };
        let res = *res;
        let node = job.node;
        // The bytes have moved: the job's fences guard nothing the checker must watch.
        for w in std::mem::take(&mut job.watches) {
            self.w.kernel.dma().checker().unwatch_fence(w);
        }
        let ins: Vec<usize> = job.inputs.iter().map(|x| x.1).collect();
        let outs: Vec<usize> = job.outputs.iter().map(|x| x.1).collect();
        let JobEffects {
            inputs_ok,
            inputs_seen,
            out_sums,
            bitstream,
            error,
            inputs,
            outputs,
            bitstream_view: _,
        } = res;
        for (m, bi) in inputs.into_iter().zip(&ins) {
            if let Err(e) = self.w.unmap(*bi, node, m) {
                self.errors.push(e);
            }
        }
        for (m, bi) in outputs.into_iter().zip(&outs) {
            if let Err(e) = self.w.unmap(*bi, node, m) {
                self.errors.push(e);
            }
        }
        if was_running {
            self.running_collected();
        }
        Some(JobEffects {
            inputs_ok,
            inputs_seen,
            out_sums,
            bitstream,
            error,
            inputs: Vec::new(),
            outputs: Vec::new(),
            bitstream_view: None,
        })
    }

    pub(crate) fn settle(&mut self, id: u64) {
        if self
            .jobs
            .get(&id)
            .is_some_and(|j| j.deferred.is_some() || j.ring_held || j.result.is_running())
        {
            return;
        }
        if let Some(r) = self.collect(id, false) {
            if let Some(j) = self.jobs.get_mut(&id) {
                j.result.put_settled(r);
            }
        }
    }

    /// Waits for every job in flight and gives its mappings back (before scenario events, so a
    /// migration's drain finds no mapping held by a job that is over in virtual terms).
    pub(crate) fn barrier(&mut self) {
        let why = self.waits.why.replace(super::inflight::Why::Barrier);
        let ids: Vec<u64> = self.jobs.keys().copied().collect();
        for id in ids {
            if self.jobs.get(&id).is_some_and(|j| !j.result.is_settled()) {
                if let Some(r) = self.collect(id, true) {
                    if let Some(j) = self.jobs.get_mut(&id) {
                        j.result.put_settled(r);
                    }
                }
            }
        }
        self.waits.why = why;
    }

    /// Moves the checker's findings into [`Self::findings`]; `sort` puts them in a fixed order.
    /// Which findings the checker kept under its cap is fixed already: it commits a job's
    /// pieces' findings in piece order when the job's last piece ran, whatever thread raised
    /// them when (`dma::debug::FindingOrigin`); the sort orders the whole window.
    pub(crate) fn drain_findings(&mut self, sort: bool) {
        let checker = self.w.kernel.dma().checker();
        if checker.total() == 0 {
            return;
        }
        let mut new = checker.take();
        if sort {
            new.sort_by_cached_key(|f| format!("{f:?}"));
        }
        let room = dma::debug::MAX_KEPT_FINDINGS.saturating_sub(self.findings.len());
        new.truncate(room);
        self.findings.extend(new);
    }

    pub(crate) fn barrier_one(&mut self, id: u64) {
        if let Some(r) = self.collect(id, true) {
            if let Some(j) = self.jobs.get_mut(&id) {
                j.result.put_settled(r);
            }
        }
    }
}
