//! Device jobs: what a driver's engine does for one frame, as a value a scheduler plans, times
//! and executes.
//!
//! C side: a V4L2 mem2mem driver's `device_run` (`v4l2-mem2mem.c`), a capture driver's
//! per-frame fill (`vivid-kthread-cap.c`), a DRM driver's scanout and a GPU ring job: the device
//! programs its DMA engine with the buffers' DMA addresses and moves the frame.
//!
//! # The concept
//! A scheduler (the scenario runner, a test) **plans** a job: it picks the buffers, maps each
//! for the job's device ([`DmaView`]), and builds a [`DeviceJob`] with the [`Op`] of the node's
//! driver. [`DeviceJob::cost`] is what the job takes on the device's time model
//! ([`crate::media::dma_cost`]), known before any byte moves, so the scheduler can place it on
//! a virtual clock. [`DeviceJob::execute`] (or [`DeviceJob::execute_on`] a [`Pool`] of host
//! threads) then moves every byte through the device's DMA engine, in independent pieces of
//! at most [`CHUNK`] bytes of a plane, and returns what happened as a value ([`JobEffects`]):
//! which inputs verified, what each output's frame checksum is, the encoder's bitstream, and
//! the views to give back. Nothing else is touched, so jobs of different devices may execute
//! on different threads; the scheduler applies their effects in its own order. Which passes
//! over the bytes a piece makes, and why, is in the `units` module's doc (in short: DMA read,
//! one cache-resident sweep that transforms and hashes, DMA write).
//!
//! The byte transforms are the drivers': the camera's test pattern ([`crate::pattern`]), the
//! ISP's [`IspTransform`], the GPU's composite ([`crate::gpu::luma_to_xrgb`]), the encoder's
//! [`Codec`] ([`RleStream`](crate::encoder::RleStream)), the scaler's [`crate::scaler::scale_frame`];
//! the checksum and the frame stamp are [`crate::frame`]'s.
//!
//! # Rules
//! 1. Every output frame is stamped ([`crate::frame`]): the body is written first, hashed as it
//!    goes, and the 16-byte header (magic, frame number, body checksum) last. The checksum of
//!    a frame is its body's checksum; [`JobEffects::out_sums`] carries it to the consumers.
//! 2. An input verifies when its body hashes to what its producer wrote and its header names
//!    the expected frame with that checksum: a stale, torn or misplaced frame never does.
//! 3. A transform keeps the frame number of its first input; a producer whose output has no
//!    byte-for-byte relation to its input (another size or format) renders it from the input's
//!    checksum ([`crate::pattern::render_from`]), so the output still depends on every byte in.
//! 4. A DMA that fails stops its piece; the job fails with the first failing piece's error
//!    ([`JobEffects::error`]), every input counts as not verified, no output is stamped. The
//!    views always come back.
//! 5. The pieces are fixed by the job's buffers alone, each piece touches only its own bytes
//!    and every piece runs even when another failed, so the bytes in memory, the DMA calls the
//!    devices and the DMA-API checker see, and the effects are the same for any number of host
//!    threads; only the order in which pieces' DMA calls happen differs.
//! 6. What each input looked like is kept ([`JobEffects::inputs_seen`]), so that an input whose
//!    expected checksum was not known when the job ran (its producer was still writing) can be
//!    judged afterwards with rule 2 ([`Seen::verifies`]).
//! 7. [`DeviceJob::execute_paused`] runs the pieces in order and, once a given share of the
//!    job's bytes has moved, runs something else (another device's job that overlaps this one
//!    on a scheduler's clock) before carrying on: that job sees this one's bytes as far as they
//!    got, and the old stamp (stamps are written last).
//! 8. An injected [`Fault`] ([`DeviceJob::fault`]) is the driver leaving out what it owes: a
//!    job with [`Fault::SkipFenceWait`] does not wait for its inputs' fences
//!    ([`DeviceJob::waits_for_fences`]), one with [`Fault::EarlyRelease`] writes buffers their
//!    readers still hold ([`DeviceJob::waits_for_readers`]), one with [`Fault::WrongDirection`]
//!    maps its buffers the wrong way ([`DeviceJob::map_direction`]).
//!
//! ```
//! use drivers::dmaview::DmaView;
//! use drivers::job::{DeviceJob, JobInput, JobOutput, Op};
//! use drivers::pattern::TestPattern;
//! let dma = dmabuf::testing::mock_dma();
//! let cam = dma.device("camera0")?;
//! let disp = dma.device("display0")?;
//! let buf = dma.alloc_attrs_for_devices(
//!     &[dma::DeviceNeeds::new(&cam), dma::DeviceNeeds::new(&disp)], 64 << 10, dma::DmaAttrs::NONE)?;
//! let view = |name: &str, dev| {
//!     DmaView::from_segments(dev, buf.handle(name).unwrap().sg_table().dma_segments())
//! };
//! // The camera writes frame 7 of the bars...
//! let capture = DeviceJob::new(Op::Capture { pattern: TestPattern::Bars, seed: 1, frame: 7 })
//!     .output(JobOutput { view: view("camera0", cam.clone()), planes: vec![(0, 64 << 10)],
//!                         bytes_per_line: vec![256] });
//! assert_eq!(capture.bytes(), (0, 64 << 10));
//! let fx = capture.execute(&dma);
//! assert!(fx.error.is_none());
//! // ...and the display reads it back and verifies it.
//! let scanout = |frame| DeviceJob::new(Op::Scanout).input(JobInput {
//!     view: view("display0", disp.clone()), planes: vec![(0, 64 << 10)],
//!     expected: fx.out_sums[0], frame });
//! assert_eq!(scanout(7).execute(&dma).inputs_ok, [true]);
//! assert_eq!(scanout(6).execute(&dma).inputs_ok, [false], "the stamp names frame 7");
//! # dma.free_attrs(buf)?;
//! # Ok::<(), dma::DmaError>(())
//! ```

use crate::dmaview::DmaView;
use crate::encoder::Codec;
use crate::fault::Fault;
use crate::frame::{CHUNK, STAMP_LEN, STAMP_MAGIC};
use crate::isp::IspTransform;
use crate::pattern::TestPattern;
use dma::{DmaApi, DmaDirection};
use soc::Device;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a job's device does with its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A camera writes frame `frame` of a test pattern.
    Capture {
        /// The pattern.
        pattern: TestPattern,
        /// The pattern's seed (noise).
        seed: u64,
        /// The frame number stamped.
        frame: u64,
    },
    /// An ISP transforms its first input into its outputs.
    Process(IspTransform),
    /// A GPU composites its first input into its outputs.
    Composite,
    /// A display scans out and verifies every input.
    Scanout,
    /// An encoder reads, verifies and encodes its first input.
    Encode(Codec),
    /// A scaler reads its first input as `src` and writes every output as `dst`, scaled and
    /// converted ([`crate::scaler`]).
    Scale(crate::scaler::Scale),
    /// A decoder decodes the RLE bitstream of its first input through its reference frame
    /// ([`DeviceJob::bitstream`]) into its outputs ([`crate::decoder`]).
    Decode,
}

/// One buffer a job reads.
#[derive(Debug)]
pub struct JobInput {
    /// The device's view of the buffer.
    pub view: DmaView,
    /// `(offset, len)` of each plane in the buffer.
    pub planes: Vec<(u64, u64)>,
    /// The frame checksum its producer reported ([`JobEffects::out_sums`]).
    pub expected: u64,
    /// The frame number its producer stamped.
    pub frame: u64,
}

/// One buffer a job writes.
#[derive(Debug)]
pub struct JobOutput {
    /// The device's view of the buffer.
    pub view: DmaView,
    /// `(offset, len)` of each plane in the buffer.
    pub planes: Vec<(u64, u64)>,
    /// Bytes per line of each plane (patterns are laid out by line).
    pub bytes_per_line: Vec<u64>,
}

/// A planned job (module doc).
#[derive(Debug)]
pub struct DeviceJob {
    /// What the device does.
    pub op: Op,
    /// Buffers read, in the node's input order.
    pub inputs: Vec<JobInput>,
    /// Buffers written.
    pub outputs: Vec<JobOutput>,
    /// The driver's own buffer: the encoder's bitstream buffer ([`Codec::Rle`] with no output:
    /// with an output, the encoder writes its bitstream there), the decoder's reference frame
    /// ([`Op::Decode`]).
    pub bitstream: Option<DmaView>,
    /// Host threads to execute on, whoever executes it ([`DeviceJob::on_pool`]).
    host: Option<(Arc<Pool>, Arc<DmaApi>)>,
    /// A fault the driver commits in this job (rule 8).
    pub fault: Option<Fault>,
}

/// The bitstream an encoder job wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bitstream {
    /// Bytes written into the bitstream buffer.
    pub len: u64,
    /// Their checksum.
    pub checksum: u64,
}

/// What a job saw of one input: the checksum of the body it read and the stamp (rule 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Checksum of the body as read.
    pub sum: u64,
    /// The 16-byte stamp as read.
    pub head: [u8; STAMP_LEN],
    /// Whether the frame is big enough to carry a stamp.
    pub stamped: bool,
}

impl Seen {
    /// Rule 2: whether what was read is frame `frame` whose producer reported `expected`.
    pub fn verifies(&self, expected: u64, frame: u64) -> bool {
        self.sum == expected && (!self.stamped || self.head == header(frame, self.sum))
    }
}

/// What executing a job did (module rules); the views come back for unmapping.
#[derive(Debug)]
pub struct JobEffects {
    /// Per input: whether it verified (rule 2).
    pub inputs_ok: Vec<bool>,
    /// Per input: what was read (rule 6); `None` for an input the job did not get to.
    pub inputs_seen: Vec<Option<Seen>>,
    /// Per output: the checksum of the frame written (rule 1).
    pub out_sums: Vec<u64>,
    /// The encoder's bitstream, if it made one.
    pub bitstream: Option<Bitstream>,
    /// A DMA or an operation that failed (rule 4).
    pub error: Option<String>,
    /// The inputs' views.
    pub inputs: Vec<DmaView>,
    /// The outputs' views.
    pub outputs: Vec<DmaView>,
    /// The bitstream buffer's view.
    pub bitstream_view: Option<DmaView>,
}

mod combine;
mod decode;
mod pool;
mod scale;
mod units;

impl JobEffects {
    /// The effects of a job that could not run: `error`, nothing verified, no view.
    pub fn failed(error: &str) -> JobEffects {
        JobEffects {
            inputs_ok: Vec::new(),
            inputs_seen: Vec::new(),
            out_sums: Vec::new(),
            bitstream: None,
            error: Some(error.to_string()),
            inputs: Vec::new(),
            outputs: Vec::new(),
            bitstream_view: None,
        }
    }
}

/// A job whose bytes are moving on a [`Pool`] ([`DeviceJob::spawn_on`]).
///
/// Lifetime: the job's views live in it until [`Running::wait`] hands them back in the
/// [`JobEffects`]; dropping it unwaited waits for the pieces the workers run and drops the
/// views unreturned (a scheduler always waits). While it runs, the scheduler must not let
/// another job write its buffers or read its outputs (module rule 5 holds only then).
#[derive(Debug)]
pub struct Running(RunState);

#[derive(Debug)]
enum RunState {
    /// Its pieces are out on the pool; the checker holds what they raise until every piece
    /// ran ([`FindingsBatch`]).
    Out(Arc<Shared>, pool::Batch, FindingsBatch),
    /// It could not be planned: its effects are known.
    Done(Box<JobEffects>),
}

impl Running {
    /// Moves the pieces no worker took yet on the caller's thread, waits for the rest and
    /// returns the job's effects, as [`DeviceJob::execute`] would.
    pub fn wait(self) -> JobEffects {
        let (shared, batch, findings) = match self.0 {
            RunState::Done(fx) => return *fx,
            RunState::Out(s, b, f) => (s, b, f),
        };
        batch.wait();
        // Every piece ran: what they raised goes into the checker in piece order.
        drop(findings);
        // Every worker dropped its reference before the batch reported it done.
        let mut shared = shared;
        let shared = loop {
            match Arc::try_unwrap(shared) {
                Ok(s) => break s,
                Err(s) => {
                    shared = s;
                    std::thread::yield_now();
                }
            }
        };
        let dma = shared.dma.clone();
        let fx = shared
            .done
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .map(|f| {
                f.unwrap_or_else(|| units::UnitFx {
                    error: Some(
                        "a piece of the job did not complete (its host thread panicked)".into(),
                    ),
                    ..Default::default()
                })
            })
            .collect();
        shared.job.effects(&dma, Ok(fx))
    }
}

pub use pool::{Batch, Pool};

thread_local! {
    static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> =
        RefCell::new((vec![0u8; CHUNK], vec![0u8; CHUNK * 4]));
}

fn total(planes: &[(u64, u64)]) -> u64 {
    planes.iter().map(|p| p.1).sum()
}

fn header(frame: u64, sum: u64) -> [u8; STAMP_LEN] {
    let mut h = [0u8; STAMP_LEN];
    h[..4].copy_from_slice(&STAMP_MAGIC);
    h[4..8].copy_from_slice(&(frame as u32).to_le_bytes());
    h[8..].copy_from_slice(&sum.to_le_bytes());
    h
}

fn stamped(planes: &[(u64, u64)]) -> bool {
    planes.first().is_some_and(|p| p.1 > STAMP_LEN as u64)
}

/// How many leading bytes of a chunk at `at` of plane `p` are the stamp's.
fn stamp_skip(stamped: bool, p: usize, at: u64, n: usize) -> usize {
    if stamped && p == 0 && at < STAMP_LEN as u64 {
        (STAMP_LEN - at as usize).min(n)
    } else {
        0
    }
}

/// The DMA-API checker's batch of a job's pieces ([`dma::debug::FindingOrigin`]): closed when
/// dropped, once every piece ran, so their findings are committed in piece order whatever
/// thread raised them when.
#[derive(Debug)]
struct FindingsBatch {
    dma: Arc<DmaApi>,
    id: u64,
}

impl Drop for FindingsBatch {
    fn drop(&mut self) {
        self.dma.checker().close_batch(self.id);
    }
}

/// The job's pieces and what is shared with the pool's threads while they run.
struct Shared {
    job: DeviceJob,
    dma: Arc<DmaApi>,
    units: Vec<units::Unit>,
    done: Mutex<Vec<Option<units::UnitFx>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("job", &self.job)
            .field("pieces", &self.units.len())
            .finish()
    }
}

fn run_with_scratch(job: &DeviceJob, dma: &DmaApi, unit: units::Unit) -> units::UnitFx {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let (a, b) = &mut *s;
        units::run_unit(job, dma, unit, a, b)
    })
}

impl DeviceJob {
    /// A job of `op` with no buffers yet.
    pub fn new(op: Op) -> DeviceJob {
        DeviceJob {
            op,
            inputs: Vec::new(),
            outputs: Vec::new(),
            bitstream: None,
            host: None,
            fault: None,
        }
    }

    /// The job with an injected fault (rule 8).
    pub fn with_fault(mut self, fault: Option<Fault>) -> DeviceJob {
        self.fault = fault;
        self
    }

    /// Whether the driver waits for its inputs' fences before the job starts (it owes it; not
    /// with [`Fault::SkipFenceWait`]).
    pub fn waits_for_fences(&self) -> bool {
        self.fault != Some(Fault::SkipFenceWait)
    }

    /// Whether the driver waits until every reader of an output buffer released it before
    /// writing it again (it owes it; not with [`Fault::EarlyRelease`]).
    pub fn waits_for_readers(&self) -> bool {
        self.fault != Some(Fault::EarlyRelease)
    }

    /// The direction the driver maps an input (`output == false`) or output buffer with:
    /// `TO_DEVICE` for what the device reads, `FROM_DEVICE` for what it writes; the other one
    /// with [`Fault::WrongDirection`].
    pub fn map_direction(&self, output: bool) -> DmaDirection {
        let wrong = self.fault == Some(Fault::WrongDirection);
        if output != wrong {
            DmaDirection::FromDevice
        } else {
            DmaDirection::ToDevice
        }
    }

    /// Rule 7: moves the job's pieces in order on the caller's thread; once `share.0 /
    /// share.1` of its bytes moved, runs `mid`, then carries on. `mid` runs at the end if the
    /// share is never reached (also if the job cannot run).
    ///
    /// ```
    /// use drivers::dmaview::DmaView;
    /// use drivers::job::{DeviceJob, JobInput, JobOutput, Op};
    /// use drivers::pattern::TestPattern;
    /// let dma = dmabuf::testing::mock_dma();
    /// let cam = dma.device("camera0")?;
    /// let disp = dma.device("display0")?;
    /// let buf = dma.alloc_attrs_for_devices(
    ///     &[dma::DeviceNeeds::new(&cam), dma::DeviceNeeds::new(&disp)], 64 << 10, dma::DmaAttrs::NONE)?;
    /// let view = |name: &str, dev| {
    ///     DmaView::from_segments(dev, buf.handle(name).unwrap().sg_table().dma_segments())
    /// };
    /// let capture = |frame| DeviceJob::new(Op::Capture { pattern: TestPattern::Bars, seed: 1, frame })
    ///     .output(JobOutput { view: view("camera0", cam.clone()), planes: vec![(0, 64 << 10)],
    ///                         bytes_per_line: vec![256] });
    /// let sum = capture(1).execute(&dma).out_sums[0];
    /// // The display reads frame 1 while the camera is half-way through frame 2: torn.
    /// let mut seen = None;
    /// let fx2 = capture(2).execute_paused(&dma, (1, 2), &mut || {
    ///     let scan = DeviceJob::new(Op::Scanout).input(JobInput {
    ///         view: view("display0", disp.clone()), planes: vec![(0, 64 << 10)], expected: sum, frame: 1 });
    ///     seen = Some(scan.execute(&dma).inputs_ok[0]);
    /// });
    /// assert_eq!(seen, Some(false));
    /// assert!(fx2.error.is_none());
    /// # dma.free_attrs(buf)?;
    /// # Ok::<(), dma::DmaError>(())
    /// ```
    pub fn execute_paused(
        mut self,
        dma: &DmaApi,
        share: (u64, u64),
        mid: &mut dyn FnMut(),
    ) -> JobEffects {
        self.host = None;
        let plan = match units::plan(&self) {
            Ok(p) => p,
            Err(e) => {
                mid();
                return self.effects(dma, Err(e));
            }
        };
        let total: u64 = plan.iter().map(|u| units::unit_len(&self, u)).sum();
        let mark = (u128::from(total) * u128::from(share.0) / u128::from(share.1.max(1))) as u64;
        let mut moved = 0u64;
        let mut paused = false;
        let mut fx = Vec::with_capacity(plan.len());
        for u in plan {
            if !paused && moved >= mark {
                paused = true;
                mid();
            }
            moved += units::unit_len(&self, &u);
            fx.push(run_with_scratch(&self, dma, u));
        }
        if !paused {
            mid();
        }
        self.effects(dma, Ok(fx))
    }

    /// Makes [`Self::execute`] run the job on `pool` ([`Self::execute_on`]), whoever calls it
    /// (a GPU ring executes the jobs it is handed). `dma` is the DMA API of the job's views.
    pub fn on_pool(mut self, pool: Arc<Pool>, dma: Arc<DmaApi>) -> DeviceJob {
        self.host = Some((pool, dma));
        self
    }

    /// Starts the job's bytes on the pool [`Self::on_pool`] gave it ([`Self::spawn_on`]), or
    /// moves them now on the caller's thread (with `dma`) if it has none; [`Running::wait`]
    /// gives the effects either way (a GPU ring starts the jobs it is handed this way).
    pub fn spawn(mut self, dma: &Arc<DmaApi>) -> Running {
        match self.host.take() {
            Some((pool, host_dma)) => self.spawn_on(&host_dma, &pool),
            None => Running(RunState::Done(Box::new(self.execute(dma)))),
        }
    }

    /// Adds an input.
    pub fn input(mut self, i: JobInput) -> DeviceJob {
        self.inputs.push(i);
        self
    }

    /// Adds an output.
    pub fn output(mut self, o: JobOutput) -> DeviceJob {
        self.outputs.push(o);
        self
    }

    /// Frame bytes the job reads and writes: `(read, written)`. An encoder's bitstream is not
    /// known before it runs and is not in it (nor the output buffer it goes into); a decoder's reference frame is (written once,
    /// read back once per output, [`crate::decoder`] rule 1).
    pub fn bytes(&self) -> (u64, u64) {
        let mut r: u64 = self.inputs.iter().map(|i| total(&i.planes)).sum();
        let mut w: u64 = self.outputs.iter().map(|o| total(&o.planes)).sum();
        match self.op {
            Op::Decode => {
                let frame = self.outputs.first().map_or(0, |o| total(&o.planes));
                r += w;
                w += frame;
            }
            // An encoder's outputs hold its bitstream: not known yet.
            Op::Encode(_) => w = 0,
            _ => {}
        }
        (r, w)
    }

    /// What the job costs `dev` on its time model ([`crate::media::dma_cost`] of every byte it
    /// reads and writes).
    pub fn cost(&self, dev: &Device) -> Duration {
        let (r, w) = self.bytes();
        crate::media::dma_cost(dev, r + w)
    }

    /// Moves the job's bytes (module rules) on the caller's thread (on its pool if
    /// [`Self::on_pool`] gave it one) and returns its effects.
    pub fn execute(mut self, dma: &DmaApi) -> JobEffects {
        if let Some((pool, dma)) = self.host.take() {
            return self.execute_on(&dma, &pool);
        }
        match units::plan(&self) {
            Ok(plan) => {
                let fx = plan
                    .into_iter()
                    .map(|u| run_with_scratch(&self, dma, u))
                    .collect();
                self.effects(dma, Ok(fx))
            }
            Err(e) => self.effects(dma, Err(e)),
        }
    }

    /// Moves the job's bytes on `pool`'s threads, piece by piece ([`CHUNK`] bytes of a plane
    /// each, claimed by whichever thread is free), and returns its effects: the same bytes,
    /// DMA calls and effects as [`Self::execute`] for any number of threads (rule 5).
    pub fn execute_on(self, dma: &Arc<DmaApi>, pool: &Pool) -> JobEffects {
        if pool.threads() == 1 {
            return self.execute(dma);
        }
        self.spawn_on(dma, pool).wait()
    }

    /// Starts moving the job's bytes on `pool`'s workers and returns at once; the caller
    /// goes on (planning other jobs) and takes the effects with [`Running::wait`], which
    /// moves what no worker took yet itself. The same bytes and effects as [`Self::execute`]
    /// (rule 5) provided that, until `wait` returns, nothing else writes the job's buffers nor
    /// reads its outputs: the scheduler's part ([`Running`]).
    pub fn spawn_on(self, dma: &Arc<DmaApi>, pool: &Pool) -> Running {
        let plan = match units::plan(&self) {
            Ok(p) => p,
            Err(e) => return Running(RunState::Done(Box::new(self.effects(dma, Err(e))))),
        };
        let n = plan.len();
        let shared = Arc::new(Shared {
            job: self,
            dma: dma.clone(),
            units: plan,
            done: Mutex::new((0..n).map(|_| None).collect()),
        });
        let s = shared.clone();
        let findings = FindingsBatch {
            dma: dma.clone(),
            id: dma.checker().open_batch(),
        };
        let tag = findings.id;
        let batch = pool.spawn(
            n,
            Arc::new(move |i| {
                let _origin = dma::debug::FindingOrigin::enter(tag, i as u64);
                let fx = run_with_scratch(&s.job, &s.dma, s.units[i]);
                s.done.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(fx);
            }),
        );
        Running(RunState::Out(shared, batch, findings))
    }

    /// Combines the pieces' effects and gives the views back.
    fn effects(self, dma: &DmaApi, fx: Result<Vec<units::UnitFx>, String>) -> JobEffects {
        let (inputs_ok, out_sums, bitstream, error, inputs_seen) = match fx {
            Ok(fx) => combine::combine_units(&self, dma, fx),
            Err(e) => (
                vec![false; self.inputs.len()],
                vec![0; self.outputs.len()],
                None,
                Some(e),
                vec![None; self.inputs.len()],
            ),
        };
        JobEffects {
            inputs_ok,
            inputs_seen,
            out_sums,
            bitstream,
            error,
            inputs: self.inputs.into_iter().map(|i| i.view).collect(),
            outputs: self.outputs.into_iter().map(|o| o.view).collect(),
            bitstream_view: self.bitstream,
        }
    }
}
