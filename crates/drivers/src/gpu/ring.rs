//! The GPU's ring: jobs in submission order, each run once its input fences signal, by the GPU's
//! DMA engine, then its output fence signaled.
//!
//! C side: `drivers/gpu/drm/scheduler/sched_main.c` (`drm_sched_main`, `drm_sched_job_done`),
//! `sched_entity.c` (`drm_sched_entity_add_dependency_cb`, error propagation), and a ring's
//! fence (`amdgpu_fence.c`).
//!
//! # The ring's contract
//! 1. Jobs run in submission order, each once all its input fences have signaled.
//! 2. An input fence that signaled with an error cancels the job: its bytes are not touched and
//!    its fence signals with `ECANCELED` (`drm_sched_entity`'s error propagation).
//! 3. A DMA failure (an IOMMU fault) signals the fence with `EIO`.
//! 4. The ring takes no reservation lock: it only waits on fences and signals its own, so
//!    waiting for a ring fence with a reservation lock held cannot deadlock.
//! 5. [`RingMode::Thread`] runs jobs on a thread of their own; [`RingMode::Manual`] runs them only
//!    in [`Gpu::run_pending`](super::Gpu::run_pending), for a deterministic simulation, or
//!    starts them in [`Gpu::start_pending`](super::Gpu::start_pending) (rule 7).
//! 6. A job's references (its VM, its objects) are dropped before its fence signals: whoever
//!    wakes on the fence sees them released.
//! 7. A started job is on the hardware: a device job's bytes move on the host threads its
//!    [`DeviceJob`](crate::job::DeviceJob) was given ([`DeviceJob::on_pool`](crate::job::DeviceJob::on_pool)),
//!    other work's at its start; it completes only when [`Gpu::retire`](super::Gpu::retire)
//!    processes its fence (the fence interrupt, `amdgpu_fence_process`): its bytes are waited
//!    for, its effects sent, and its fence signals with the timestamp the caller gives (a
//!    simulator's completion time on its clock). Retiring a job retires every job started
//!    before it first (a ring's fences signal in seqno order); [`Gpu::run_pending`](super::Gpu::run_pending)
//!    retires every started job before it runs another, so fences never signal out of order.
//!    While a job is started its fence is unsignaled in its objects' reservation objects, so
//!    whoever would move or overwrite them waits for it (the caller retires it first).

use super::bo::BoInner;
use super::vm::VmInner;
use super::GpuError;
use clock::ClockRef;
use fence::{DmaFence, FenceError, SimpleFenceOps};
use parking_lot::{Condvar, Mutex};
use soc::{Device, DmaAddr};
use std::collections::VecDeque;
use std::sync::Arc;
use uapi::Errno;

/// How the ring runs its jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingMode {
    /// On a thread of the ring's own (the default).
    Thread,
    /// Only when [`Gpu::run_pending`](super::Gpu::run_pending) is called.
    Manual,
}

/// Ring counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Jobs queued.
    pub submitted: u64,
    /// Jobs that ran and signaled without error.
    pub completed: u64,
    /// Jobs whose fence signaled with an error (cancelled or failed).
    pub failed: u64,
    /// Bytes the jobs wrote.
    pub bytes: u64,
}

pub(crate) type Segs = Vec<(DmaAddr, u64)>;

/// The resolved work: GPU addresses captured at submission (valid until the fence signals,
/// because moves and unmaps wait for it).
pub(crate) enum Work {
    Blit {
        src: Segs,
        so: u64,
        dst: Segs,
        d_o: u64,
        len: u64,
    },
    Fill {
        dst: Segs,
        len: u64,
        value: u8,
    },
    Invert {
        src: Segs,
        dst: Segs,
        len: u64,
    },
    Blend {
        a: Segs,
        b: Segs,
        dst: Segs,
        len: u64,
        alpha: u8,
    },
    /// A driver's device job with the VM's views, its effects' channel, the DMA API.
    Device(Mutex<Option<DeviceWork>>),
}

type DeviceWork = (
    crate::job::DeviceJob,
    std::sync::mpsc::Sender<crate::job::JobEffects>,
    Arc<dma::DmaApi>,
);

pub(crate) struct PendingJob {
    pub(crate) fence: DmaFence,
    pub(crate) deps: Vec<DmaFence>,
    pub(crate) work: Work,
    pub(crate) dev: Arc<Device>,
    /// Keeps the VM (its mappings) and the objects alive until the job is done.
    pub(crate) _vm: Arc<VmInner>,
    pub(crate) _bos: Vec<Arc<BoInner>>,
}

/// A job the manual ring started (rule 7): on the hardware until retired.
pub(crate) struct Started {
    job: PendingJob,
    state: HwState,
}

/// Where a started job's work is.
enum HwState {
    /// It is over already (work other than a device job's moves its bytes at its start; a
    /// cancelled job never ran): its outcome.
    Over(Result<u64, Errno>),
    /// A device job's bytes moving on its host threads, where its effects go, its bytes written.
    Moving(
        crate::job::Running,
        std::sync::mpsc::Sender<crate::job::JobEffects>,
        u64,
    ),
}

impl Started {
    /// Rule 7: starts `job` (its inputs have signaled).
    fn start(job: PendingJob) -> Started {
        let state = match &job.work {
            Work::Device(slot) if job.deps.iter().all(|d| d.error().is_none()) => {
                match slot.lock().take() {
                    Some((dj, done, dma)) => {
                        let written = dj.bytes().1;
                        HwState::Moving(dj.spawn(&dma), done, written)
                    }
                    None => HwState::Over(Ok(0)),
                }
            }
            _ => HwState::Over(run(&job)),
        };
        Started { job, state }
    }

    /// Waits for the job's bytes and sends its effects (the order of `run`'s device work:
    /// effects before the fence); its outcome.
    fn complete(state: HwState) -> Result<u64, Errno> {
        match state {
            HwState::Over(r) => r,
            HwState::Moving(running, done, written) => {
                let fx = running.wait();
                let failed = fx.error.is_some();
                let _ = done.send(fx);
                if failed {
                    Err(Errno::EIO)
                } else {
                    Ok(written)
                }
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Queue {
    pub(crate) jobs: VecDeque<PendingJob>,
    /// Started jobs, in submission order (rule 7).
    hw: VecDeque<Started>,
    pub(crate) next_seqno: u64,
    shutdown: bool,
    pub(crate) stats: RingStats,
}

pub(crate) struct RingShared {
    pub(crate) q: Mutex<Queue>,
    pub(crate) cv: Condvar,
}

/// The GPU's ring: a context, a queue and (threaded mode) a worker.
pub(crate) struct Ring {
    pub(crate) shared: Arc<RingShared>,
    pub(crate) ctx: u64,
    pub(crate) ops: Arc<SimpleFenceOps>,
    mode: RingMode,
}

impl Ring {
    /// A ring on fence context `ctx`, its fences stamped on `clock` (the machine's).
    pub(crate) fn new(
        device: &str,
        mode: RingMode,
        ctx: u64,
        clock: ClockRef,
    ) -> Result<Ring, FenceError> {
        let shared = Arc::new(RingShared {
            q: Mutex::new(Queue::default()),
            cv: Condvar::new(),
        });
        if mode == RingMode::Thread {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("{device}-gfx"))
                .spawn(move || worker(&s))
                .map_err(|_| FenceError::InvalidArgument("cannot spawn the ring thread"))?;
        }
        Ok(Ring {
            shared,
            ctx,
            ops: SimpleFenceOps::on(clock, device, "gfx"),
            mode,
        })
    }

    pub(crate) fn shutdown(&self) {
        self.shared.q.lock().shutdown = true;
        self.shared.cv.notify_all();
    }

    pub(crate) fn stats(&self) -> RingStats {
        self.shared.q.lock().stats
    }

    /// Manual mode: runs ready jobs from the head (contract rule 1), after retiring the
    /// started ones (rule 7, their fences stamped now); how many completed.
    pub(crate) fn run_ready(&self) -> usize {
        if self.mode != RingMode::Manual {
            return 0;
        }
        let mut n = self.retire_started(usize::MAX, None);
        while let Some(job) = self.pop_ready() {
            let res = run(&job);
            finish(&self.shared, job, res, None);
            n += 1;
        }
        n
    }

    /// The head job, taken off the queue if its inputs have signaled.
    fn pop_ready(&self) -> Option<PendingJob> {
        let mut q = self.shared.q.lock();
        match q.jobs.front() {
            Some(j) if j.deps.iter().all(DmaFence::is_signaled) => q.jobs.pop_front(),
            _ => None,
        }
    }

    /// Manual mode: starts ready jobs from the head (rules 1 and 7); how many started.
    pub(crate) fn start_ready(&self) -> usize {
        if self.mode != RingMode::Manual {
            return 0;
        }
        let mut n = 0;
        while let Some(job) = self.pop_ready() {
            let started = Started::start(job);
            self.shared.q.lock().hw.push_back(started);
            n += 1;
        }
        n
    }

    /// Rule 7: completes the started jobs up to and including `fence`'s, in order, each
    /// fence stamped `at_ns`; how many (none if `fence` is no started job's).
    pub(crate) fn retire(&self, fence: &DmaFence, at_ns: u64) -> usize {
        let k = {
            let q = self.shared.q.lock();
            q.hw.iter().position(|s| {
                s.job.fence.context() == fence.context() && s.job.fence.seqno() == fence.seqno()
            })
        };
        match k {
            Some(k) => self.retire_started(k + 1, Some(at_ns)),
            None => 0,
        }
    }

    /// Completes the first `count` started jobs (all of them if fewer), stamped `at_ns` (the
    /// fence's clock if `None`).
    fn retire_started(&self, count: usize, at_ns: Option<u64>) -> usize {
        let mut n = 0;
        while n < count {
            let Some(Started { job, state }) = self.shared.q.lock().hw.pop_front() else {
                break;
            };
            let res = Started::complete(state);
            finish(&self.shared, job, res, at_ns);
            n += 1;
        }
        n
    }

    /// Jobs started and not retired yet (rule 7).
    pub(crate) fn started(&self) -> usize {
        self.shared.q.lock().hw.len()
    }
}

fn worker(s: &Arc<RingShared>) {
    loop {
        let job = {
            let mut q = s.q.lock();
            loop {
                if let Some(j) = q.jobs.pop_front() {
                    break j;
                }
                if q.shutdown {
                    return;
                }
                s.cv.wait(&mut q);
            }
        };
        for d in &job.deps {
            let _ = d.wait(None);
        }
        let res = run(&job);
        finish(s, job, res, None);
    }
}

/// Signals the job's fence with the outcome (rules 2-3), stamped `at_ns` (the fence's clock
/// if `None`). The job's references (VM, objects) are dropped first, outside the queue lock,
/// so a waiter woken by the fence sees them gone.
fn finish(s: &RingShared, job: PendingJob, res: Result<u64, Errno>, at_ns: Option<u64>) {
    let PendingJob {
        fence,
        deps,
        work,
        dev,
        _vm,
        _bos,
    } = job;
    drop((deps, work, dev, _vm, _bos));
    if let Err(e) = res {
        let _ = fence.set_error(e);
    }
    {
        let mut q = s.q.lock();
        match res {
            Ok(bytes) => {
                q.stats.completed += 1;
                q.stats.bytes += bytes;
            }
            Err(_) => q.stats.failed += 1,
        }
    }
    let _ = match at_ns {
        Some(t) => fence.signal_timestamp(t),
        None => fence.signal(),
    };
}

/// Calls `f(a, b, n)` for matching pieces of two segment lists over `len` bytes.
pub(crate) fn walk_pairs(
    a: &[(DmaAddr, u64)],
    b: &[(DmaAddr, u64)],
    len: u64,
    mut f: impl FnMut(DmaAddr, DmaAddr, u64) -> Result<(), GpuError>,
) -> Result<(), GpuError> {
    let (mut ia, mut oa, mut ib, mut ob, mut done) = (0, 0, 0, 0, 0);
    while done < len {
        let (Some(&(pa, na)), Some(&(pb, nb))) = (a.get(ia), b.get(ib)) else {
            return Err(GpuError::InvalidArgument(
                "copy beyond the mapped segments".into(),
            ));
        };
        let n = (na - oa).min(nb - ob).min(len - done);
        f(DmaAddr(pa.0 + oa), DmaAddr(pb.0 + ob), n)?;
        (oa, ob, done) = (oa + n, ob + n, done + n);
        if oa == na {
            (ia, oa) = (ia + 1, 0);
        }
        if ob == nb {
            (ib, ob) = (ib + 1, 0);
        }
    }
    Ok(())
}

/// The piece of `segs` at byte `off` (skipping whole segments).
fn seek(segs: &[(DmaAddr, u64)], mut off: u64) -> Segs {
    let mut out = Vec::new();
    for &(a, n) in segs {
        if off >= n {
            off -= n;
            continue;
        }
        out.push((DmaAddr(a.0 + off), n - off));
        off = 0;
    }
    out
}

/// Reads `buf.len()` bytes of `segs` from `off`.
fn gather(dev: &Device, segs: &[(DmaAddr, u64)], off: u64, buf: &mut [u8]) -> Result<(), GpuError> {
    let mut at = 0usize;
    for (a, n) in seek(segs, off) {
        if at == buf.len() {
            break;
        }
        let k = (n as usize).min(buf.len() - at);
        dev.dma_read(a, &mut buf[at..at + k])?;
        at += k;
    }
    Ok(())
}

/// Writes `data` to `segs` from `off`.
fn scatter(dev: &Device, segs: &[(DmaAddr, u64)], off: u64, data: &[u8]) -> Result<(), GpuError> {
    let mut at = 0usize;
    for (a, n) in seek(segs, off) {
        if at == data.len() {
            break;
        }
        let k = (n as usize).min(data.len() - at);
        dev.dma_write(a, &data[at..at + k])?;
        at += k;
    }
    Ok(())
}

/// Runs a job (rules 2-3); returns the bytes written.
fn run(job: &PendingJob) -> Result<u64, Errno> {
    if job.deps.iter().any(|d| d.error().is_some()) {
        return Err(Errno::ECANCELED);
    }
    const CHUNK: u64 = 1 << 20;
    let dev = &job.dev;
    let r: Result<u64, GpuError> = (|| match &job.work {
        Work::Blit {
            src,
            so,
            dst,
            d_o,
            len,
        } => {
            let (s, d) = (seek(src, *so), seek(dst, *d_o));
            walk_pairs(&s, &d, *len, |a, b, n| Ok(dev.dma_copy(a, b, n)?))?;
            Ok(*len)
        }
        Work::Fill { dst, len, value } => {
            let buf = vec![*value; CHUNK.min(*len) as usize];
            let mut off = 0;
            while off < *len {
                let k = CHUNK.min(*len - off) as usize;
                scatter(dev, dst, off, &buf[..k])?;
                off += k as u64;
            }
            Ok(*len)
        }
        Work::Invert { src, dst, len } => {
            let mut off = 0;
            while off < *len {
                let mut buf = vec![0u8; CHUNK.min(*len - off) as usize];
                gather(dev, src, off, &mut buf)?;
                buf.iter_mut().for_each(|x| *x = !*x);
                scatter(dev, dst, off, &buf)?;
                off += buf.len() as u64;
            }
            Ok(*len)
        }
        Work::Blend {
            a,
            b,
            dst,
            len,
            alpha,
        } => {
            let (wa, wb) = (255 - u32::from(*alpha), u32::from(*alpha));
            let mut off = 0;
            while off < *len {
                let k = CHUNK.min(*len - off) as usize;
                let (mut x, mut y) = (vec![0u8; k], vec![0u8; k]);
                gather(dev, a, off, &mut x)?;
                gather(dev, b, off, &mut y)?;
                for (p, q) in x.iter_mut().zip(&y) {
                    *p = ((u32::from(*p) * wa + u32::from(*q) * wb + 127) / 255) as u8;
                }
                scatter(dev, dst, off, &x)?;
                off += k as u64;
            }
            Ok(*len)
        }
        Work::Device(slot) => {
            let Some((dj, done, dma)) = slot.lock().take() else {
                return Ok(0);
            };
            let written = dj.bytes().1;
            let fx = dj.execute(&dma);
            let failed = fx.error.is_some();
            // The effects go before the fence signals (rule 6's order): a waiter on the fence
            // finds them in.
            let _ = done.send(fx);
            if failed {
                return Err(GpuError::InvalidArgument(
                    "the device job's DMA failed".into(),
                ));
            }
            Ok(written)
        }
    })();
    r.map_err(|_| Errno::EIO)
}

/// The checksum sinks compare frames with: [`crate::frame::checksum`] (one checksum for every
/// driver).
///
/// ```
/// assert_ne!(drivers::gpu::checksum(b"frame 1"), drivers::gpu::checksum(b"frame 2"));
/// ```
pub fn checksum(bytes: &[u8]) -> u64 {
    crate::hash::checksum(bytes)
}

/// The GPU's composite of a luma chunk into XRGB8888 pixels: each luma byte becomes a grey
/// pixel `[y, y, y, 0xff]` (blue, green, red, unused in memory order). `out` holds four bytes
/// per luma byte.
///
/// ```
/// let mut px = [0u8; 8];
/// drivers::gpu::luma_to_xrgb(&[1, 2], &mut px);
/// assert_eq!(px, [1, 1, 1, 0xff, 2, 2, 2, 0xff]);
/// ```
pub fn luma_to_xrgb(luma: &[u8], out: &mut [u8]) {
    for (px, &y) in out.chunks_exact_mut(4).zip(luma) {
        let v = (u32::from(y) * 0x0001_0101) | 0xff00_0000;
        px.copy_from_slice(&v.to_le_bytes());
    }
}
