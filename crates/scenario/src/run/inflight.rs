//! Independent jobs at once: a device job's bytes move on the run's pool of host threads
//! between its start and its completion event, while the loop goes on planning other jobs.
//!
//! # The concept
//! A job that starts on the virtual clock is *spawned* ([`drivers::job::DeviceJob::spawn_on`];
//! a GPU composite is *started* on the GPU's manual ring, [`drivers::gpu::Gpu::start_pending`],
//! its bytes on the same pool): its pieces go to the pool's workers and the loop carries on.
//! Its result is *collected* (the loop waits for it, moving the pieces no worker took yet
//! itself; a GPU job is *retired*, [`drivers::gpu::Gpu::retire`], which signals its ring fence
//! stamped with the job's end on the virtual clock) at fixed points of the loop, never when
//! the host happens to finish it:
//! 1. its completion event, before anything reads its effects (the fence signal, the
//!    consumers' hand-over, the checksum check);
//! 2. before another job starts that conflicts with it ([`Sched::make_room`]): on the same
//!    device or engine; writing a buffer it reads or writes, or reading one it writes (two
//!    readers of one buffer conflict only when neither device is cache-coherent: the second
//!    one's map cleans CPU cache lines while the first one reads); or mapping a buffer the
//!    GPU it runs on exports (a map may move that GPU's objects: TTM). Jobs that touch the
//!    same memory never run at once, whatever the reason (a consumer handed a buffer early, a
//!    producer writing a buffer a reader still holds), so they are found by what they touch,
//!    not by a list of faults;
//! 3. before a job that does not run this way starts: a faulted job, a held-back or
//!    overlapped one (module `faults`), and any job with `--engine-threads` — they run as
//!    before, alone;
//! 4. before what must see every running job's effects: a scenario event (the loop's
//!    `barrier`), a swapchain that grows (its allocation may evict, `super::swapchain`), the
//!    end of the run. A counter sample collects only the jobs that completed on the virtual
//!    clock by then ([`Sched::collect_for_sample`]); the DMA counters of a device whose job
//!    still runs are sampled as they were when that job started (`super::counters`). A CPU
//!    reader (the thumbnailer) collects only the jobs that touch the buffer it reads
//!    ([`Sched::collect_for_cpu`]).
//!
//! Those points depend on the virtual clock only, so every mapping goes back, every mapping
//! is made, and every ring fence signals, in the same order for any number of host threads;
//! with one thread the bytes move inside the collection instead. The bytes each job sees are
//! the same as when it ran alone, because nothing it reads is written, and nothing it writes
//! is read, until it is collected (rule 2). A GPU job's ring fence is in its objects'
//! reservation objects, unsignaled, until it is retired: whoever would move or overwrite
//! those objects waits for it, and the loop retires it before (rules 2 and 4).
//!
//! # The DMA-API checker's findings
//! A running job raises its findings (if any) on the pool's threads at a moment the host
//! picks. So while any job is running the loop leaves the checker's findings where they are,
//! and takes them out, sorted, when the last running job is collected: the set taken is fixed
//! by the collection points, and so is its order. (Jobs that run alone drain the checker
//! around themselves as before, `super::workers`.)
//!
//! # What the waits cost
//! With [`super::RunOptions::host_clock`] set, the wall time the loop spends waiting in each
//! collection is summed by why the job was collected ([`CollectWaits`], in
//! [`super::RunOutput::collect_waits`]): never in the report, which stays byte-identical.
//!
//! Locking and lifetime: everything here runs on the loop's thread, which owns [`Sched`]; a
//! running job's views stay in its [`drivers::job::Running`] (a GPU job's in its ring) until it
//! is collected, and its mappings go back then (`super::workers`'s `collect`).

use super::sched::{InFlight, Sched};
use super::workers::Pending;
use super::world::{BufState, ExporterHandle};
use crate::clock::VirtualTime;
use drivers::fault::Fault;
use drivers::job::{DeviceJob, JobEffects};
use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// What a running job's result comes from (module doc).
pub(crate) enum OnPool {
    /// A device job spawned on the pool.
    Job(drivers::job::Running),
    /// A GPU ring job started on its manual ring: retired at collection.
    Ring(RingRun),
}

/// A GPU ring job started on the hardware ([`drivers::gpu::Gpu::start_pending`]).
pub(crate) struct RingRun {
    gpu: drivers::gpu::Gpu,
    fence: fence::DmaFence,
    /// Its end on the machine's clock: its fence's timestamp.
    at_ns: u64,
    effects: Receiver<JobEffects>,
}

impl OnPool {
    /// Waits for the job's bytes (moving what no worker took yet) and returns its effects;
    /// `None` for a ring job that sent none (cancelled by a failed input fence).
    pub(crate) fn wait(self) -> Option<JobEffects> {
        match self {
            OnPool::Job(r) => Some(r.wait()),
            OnPool::Ring(r) => {
                // Not started (its inputs had not signaled): the ring runs it now, if it can.
                if r.gpu.retire(&r.fence, r.at_ns) == 0 && !r.fence.is_signaled() {
                    r.gpu.run_pending();
                }
                // A manual ring sends the effects before it signals the fence.
                r.effects.try_recv().ok()
            }
        }
    }
}

/// GPU node's ring job with ring fence `fence`, ending at `end`, started on its manual ring
/// with its effects coming on `effects`: a running job, retired when collected.
pub(crate) fn ring_running(
    gpu: drivers::gpu::Gpu,
    fence: &fence::DmaFence,
    end: VirtualTime,
    effects: Receiver<JobEffects>,
) -> Pending {
    Pending::running(OnPool::Ring(RingRun {
        gpu,
        fence: fence.clone(),
        at_ns: ::clock::BOOT_NS.saturating_add(end.as_ns()),
        effects,
    }))
}

/// Why a running job was collected (module doc), for [`CollectWaits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    /// At or after its end on the virtual clock (its completion event, or any point after it).
    Completed,
    /// Before its end: a job that conflicts with it starts (rule 2).
    Conflict,
    /// Before its end: a job that runs alone starts (rule 3).
    Alone,
    /// Before its end: a scenario event, a swapchain that grows, the end of the run (rule 4).
    Barrier,
    /// Before its end: a CPU reader reads a buffer it touches (rule 4).
    CpuRead,
    /// Before its end: its frames go to their readers at its submission (explicit sync).
    HandOver,
}

impl Why {
    /// A short name for a benchmark's line.
    pub fn name(self) -> &'static str {
        match self {
            Why::Completed => "at completion",
            Why::Conflict => "conflicting job",
            Why::Alone => "job running alone",
            Why::Barrier => "barrier",
            Why::CpuRead => "CPU read",
            Why::HandOver => "early hand-over",
        }
    }
}

/// A wall clock the caller lends the run to time its collections with (the runner reads no
/// wall clock itself): the time since any fixed moment.
#[derive(Clone)]
pub struct HostClock(pub std::sync::Arc<dyn Fn() -> Duration + Send + Sync>);

impl std::fmt::Debug for HostClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostClock")
    }
}

/// The wall time the loop spent waiting for running jobs, by why they were collected (module
/// doc): `(jobs, wall)` each. Empty without a [`HostClock`].
#[derive(Clone, Debug, Default)]
pub struct CollectWaits {
    /// Per reason: jobs collected and the wall time their collections took.
    pub by: BTreeMap<Why, (u64, Duration)>,
    clock: Option<HostClock>,
    /// Why the collections under way happen (set by the loop's collection points).
    pub(crate) why: Option<Why>,
}

impl CollectWaits {
    /// Waits timed with `clock` (none if `None`).
    pub(crate) fn new(clock: Option<HostClock>) -> CollectWaits {
        CollectWaits {
            clock,
            ..CollectWaits::default()
        }
    }

    /// The whole wall time waited.
    pub fn total(&self) -> Duration {
        self.by.values().map(|v| v.1).sum()
    }

    /// The clock's reading now, if there is a clock.
    pub(crate) fn now(&self) -> Option<Duration> {
        self.clock.as_ref().map(|c| (c.0)())
    }

    /// A collection of a job ending at `end` at loop time `now` that began at clock reading
    /// `since` is over.
    pub(crate) fn note(&mut self, since: Option<Duration>, end: VirtualTime, now: VirtualTime) {
        let (Some(since), Some(t)) = (since, self.now()) else {
            return;
        };
        let why = match self.why {
            _ if end <= now => Why::Completed,
            Some(w) => w,
            // The only other collection before a job's end: its frames handed over early.
            None => Why::HandOver,
        };
        let e = self.by.entry(why).or_default();
        e.0 += 1;
        e.1 += t.saturating_sub(since);
    }
}

impl Sched<'_> {
    /// Whether node `n`'s job reading `inputs` and writing `outputs` runs on the pool while
    /// the loop goes on (module doc): not with `--engine-threads`, no fault, not held back
    /// nor overlapping a held-back job.
    pub(super) fn runs_concurrently(
        &self,
        n: usize,
        fault: Option<Fault>,
        inputs: &[(usize, usize)],
        outputs: &[(usize, usize)],
    ) -> bool {
        self.workers.is_none()
            && fault.is_none()
            && !self.defers(n)
            && self.overlaps(inputs, outputs).is_none()
    }

    /// Collects running job `id` for reason `why` (module doc).
    fn collect_why(&mut self, id: u64, why: Why) {
        let before = self.waits.why.replace(why);
        self.barrier_one(id);
        self.waits.why = before;
    }

    /// The running jobs, in the order they started.
    fn running_ids(&self) -> Vec<u64> {
        let r = self.jobs.iter().filter(|(_, j)| j.result.is_running());
        r.map(|(&id, _)| id).collect()
    }

    /// Before node `n`'s job maps anything (module doc, rules 2 and 3): collects the running
    /// jobs it must not run beside (every one, if it does not run `concurrent`ly itself), in
    /// the order they started.
    pub(super) fn make_room(
        &mut self,
        n: usize,
        concurrent: bool,
        inputs: &[(usize, usize)],
        outputs: &[(usize, usize)],
    ) {
        let ids: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.result.is_running())
            .filter(|(_, j)| !concurrent || self.conflicts(n, j, inputs, outputs))
            .map(|(&id, _)| id)
            .collect();
        let why = if concurrent {
            Why::Conflict
        } else {
            Why::Alone
        };
        for id in ids {
            self.collect_why(id, why);
        }
    }

    /// Whether running job `j` and node `n`'s job must not run at once (module doc, rule 2).
    fn conflicts(
        &self,
        n: usize,
        j: &InFlight,
        inputs: &[(usize, usize)],
        outputs: &[(usize, usize)],
    ) -> bool {
        let (a, b) = (&self.w.nodes[n], &self.w.nodes[j.node]);
        if a.dev.name() == b.dev.name() || a.engine_name == b.engine_name {
            return true;
        }
        let has = |list: &[(usize, usize)], bi: usize| list.iter().any(|x| x.1 == bi);
        let touches = |bi: usize| has(&j.inputs, bi) || has(&j.outputs, bi);
        if outputs.iter().any(|o| touches(o.1)) || inputs.iter().any(|i| has(&j.outputs, i.1)) {
            return true;
        }
        let coherent = a.dev.desc().coherent || b.dev.desc().coherent;
        if !coherent && inputs.iter().any(|i| has(&j.inputs, i.1)) {
            return true;
        }
        // Mapping a buffer its GPU exports may move that GPU's objects (TTM).
        let gpu = b.dev.name();
        inputs
            .iter()
            .chain(outputs)
            .any(|&(_, bi)| self.gpu_exporter(bi) == Some(gpu))
    }

    /// The device of the GPU that exports buffer `bi`, if a GPU does (its link's producer).
    fn gpu_exporter(&self, bi: usize) -> Option<&str> {
        let b = self.w.bufs[bi].as_ref()?;
        match &b.exporter {
            ExporterHandle::Gpu(_) => Some(self.w.nodes[self.w.links[b.link].from].dev.name()),
            _ => None,
        }
    }

    /// Starts moving `io`'s bytes on the run's pool (module doc).
    pub(super) fn spawn_job(&mut self, n: usize, io: DeviceJob) -> Pending {
        self.note_job_start(n);
        let dma = self.w.kernel.dma().clone();
        Pending::running(OnPool::Job(io.spawn_on(&dma, &self.pool)))
    }

    /// Collects every running job (module doc, rule 4), in the order they started.
    pub(crate) fn collect_running(&mut self) {
        for id in self.running_ids() {
            self.collect_why(id, Why::Barrier);
        }
    }

    /// Before a counter sample at `now` (module doc, rule 4): collects the running jobs that
    /// completed on the virtual clock by then; the devices of the others are sampled as they
    /// were at those jobs' starts (`super::counters`).
    pub(crate) fn collect_for_sample(&mut self, now: VirtualTime) {
        for id in self.running_ids() {
            if self.jobs[&id].end <= now {
                self.collect_why(id, Why::Completed);
            }
        }
        let held: Vec<String> = self
            .running_ids()
            .iter()
            .map(|id| self.w.nodes[self.jobs[id].node].dev.name().to_string())
            .collect();
        self.w.sampler.hold(&held);
    }

    /// Before a CPU reader reads buffer `bi` (module doc, rule 4): collects the running jobs
    /// that touch it (and, for a buffer a GPU exports, that GPU's: the CPU access may move it).
    pub(crate) fn collect_for_cpu(&mut self, bi: usize) {
        let gpu = self.gpu_exporter(bi).map(str::to_string);
        let ids: Vec<u64> = self
            .running_ids()
            .into_iter()
            .filter(|id| {
                let j = &self.jobs[id];
                let dev = self.w.nodes[j.node].dev.name();
                j.inputs.iter().chain(&j.outputs).any(|x| x.1 == bi) || gpu.as_deref() == Some(dev)
            })
            .collect();
        for id in ids {
            self.collect_why(id, Why::CpuRead);
        }
    }

    /// The buffer thumbnailer `n` reads next, if the frame it is offered is the one it
    /// takes (`super::thumbnail`: it lets every other frame go without reading it).
    pub(crate) fn cpu_reads(&self, n: usize) -> Option<usize> {
        let node = &self.w.nodes[n];
        let li = *node.inputs.first()?;
        let bi = *node.ready.get(&li)?.front()?;
        let want = node.desc.params.frame.unwrap_or(0);
        let reads =
            matches!(&self.w.buf(bi).state, BufState::Ready { meta, .. } if meta.frame == want);
        (reads && !self.thumbnailed.contains(&n)).then_some(bi)
    }

    /// The device counters of node `n`'s device as its job starts on the pool, for the
    /// samples taken while it runs (`super::counters`).
    pub(super) fn note_job_start(&mut self, n: usize) {
        let dev = self.w.nodes[n].dev.clone();
        self.w.sampler.note_start(&dev);
    }

    /// A running job was collected: once none runs, the checker's findings come out, sorted
    /// (module doc).
    pub(crate) fn running_collected(&mut self) {
        if !self.jobs.values().any(|j| j.result.is_running()) {
            self.drain_findings(true);
        }
    }
}
