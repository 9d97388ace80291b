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
//! a virtual clock. [`DeviceJob::execute`] then moves every byte through the device's DMA
//! engine, chunk by chunk ([`CHUNK`]), and returns what happened as a value ([`JobEffects`]):
//! which inputs verified, what each output's frame checksum is, the encoder's bitstream, and
//! the views to give back. Nothing else is touched, so jobs of different devices may execute
//! on different threads; the scheduler applies their effects in its own order.
//!
//! The byte transforms are the drivers': the camera's test pattern ([`crate::pattern`]), the
//! ISP's [`IspTransform`], the GPU's composite ([`crate::gpu::luma_to_xrgb`]), the encoder's
//! [`Codec`] ([`RleStream`]); the checksum and the frame stamp are [`crate::frame`]'s.
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
//! 4. A DMA that fails stops the job; [`JobEffects::error`] says why and every input counts as
//!    not verified. The views always come back.
//! 5. A job's bytes move in order, chunk by chunk. [`DeviceJob::execute_paused`] stops after a
//!    given number of bytes, runs something else (another device's job that overlaps this one
//!    on a scheduler's clock), and carries on: the other job sees this one's bytes as far as
//!    they got, exactly what two engines racing on one buffer see.
//! 6. What each input looked like is kept ([`JobEffects::inputs_seen`]), so that an input whose
//!    expected checksum was not known when the job ran (its producer was still writing) can be
//!    judged afterwards with the same rule 2 ([`Seen::verifies`]).
//! 7. An injected [`Fault`] ([`DeviceJob::fault`]) is the driver leaving out what it owes: a
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
use crate::encoder::{Codec, RleStream};
use crate::fault::Fault;
use crate::frame::{Hasher, CHUNK, STAMP_LEN, STAMP_MAGIC};
use crate::isp::IspTransform;
use crate::pattern::{render_from, PatternGen, TestPattern};
use dma::{DmaApi, DmaDirection, DmaError};
use soc::Device;
use std::cell::{Cell, RefCell};
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
    /// The encoder's own bitstream buffer ([`Codec::Rle`]).
    pub bitstream: Option<DmaView>,
    /// A fault the driver commits in this job (rule 7).
    pub fault: Option<Fault>,
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

/// Rule 5: how many bytes are left before the pause, and what runs then.
struct Tick<'m> {
    left: Cell<u64>,
    mid: RefCell<Option<&'m mut dyn FnMut()>>,
}

impl<'m> Tick<'m> {
    fn none() -> Tick<'m> {
        Tick {
            left: Cell::new(u64::MAX),
            mid: RefCell::new(None),
        }
    }

    /// `n` more bytes moved; runs the pause's work once they reach the mark.
    fn moved(&self, n: u64) {
        let left = self.left.get();
        if left == u64::MAX {
            return;
        }
        if n >= left {
            self.left.set(u64::MAX);
            let f = self.mid.borrow_mut().take();
            if let Some(f) = f {
                f();
            }
        } else {
            self.left.set(left - n);
        }
    }

    /// The end of the job: a pause not reached yet happens now.
    fn finish(&self) {
        if self.left.get() != u64::MAX {
            self.moved(u64::MAX - 1);
        }
    }
}

/// The bitstream an encoder job wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bitstream {
    /// Bytes written into the bitstream buffer.
    pub len: u64,
    /// Their checksum.
    pub checksum: u64,
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

/// A frame being written: body hashed as it goes, header last (rule 1).
struct FrameOut<'a> {
    o: &'a JobOutput,
    h: Hasher,
    stamped: bool,
}

impl<'a> FrameOut<'a> {
    fn new(o: &'a JobOutput) -> FrameOut<'a> {
        FrameOut {
            o,
            h: Hasher::new(),
            stamped: stamped(&o.planes),
        }
    }

    fn put(&mut self, dma: &DmaApi, p: usize, at: u64, data: &[u8]) -> Result<(), DmaError> {
        let skip = stamp_skip(self.stamped, p, at, data.len());
        let body = &data[skip..];
        if body.is_empty() {
            return Ok(());
        }
        self.h.update(body);
        self.o
            .view
            .write(dma, self.o.planes[p].0 + at + skip as u64, body)
    }

    fn finish(self, dma: &DmaApi, frame: u64) -> Result<u64, DmaError> {
        let sum = self.h.finish();
        if self.stamped {
            self.o
                .view
                .write(dma, self.o.planes[0].0, &header(frame, sum))?;
        }
        Ok(sum)
    }
}

/// A frame being read and checked (rule 2).
struct FrameIn<'a> {
    i: &'a JobInput,
    h: Hasher,
    head: [u8; STAMP_LEN],
    stamped: bool,
}

impl<'a> FrameIn<'a> {
    fn new(i: &'a JobInput) -> FrameIn<'a> {
        FrameIn {
            i,
            h: Hasher::new(),
            head: [0; STAMP_LEN],
            stamped: stamped(&i.planes),
        }
    }

    fn get(&mut self, dma: &DmaApi, p: usize, at: u64, out: &mut [u8]) -> Result<(), DmaError> {
        self.i.view.read(dma, self.i.planes[p].0 + at, out)?;
        let skip = stamp_skip(self.stamped, p, at, out.len());
        if skip > 0 {
            self.head[at as usize..at as usize + skip].copy_from_slice(&out[..skip]);
        }
        self.h.update(&out[skip..]);
        Ok(())
    }

    fn read_all(mut self, dma: &DmaApi, a: &mut [u8], t: &Tick<'_>) -> Result<Seen, DmaError> {
        for (p, &(_, len)) in self.i.planes.iter().enumerate() {
            let mut at = 0u64;
            while at < len {
                let n = (len - at).min(CHUNK as u64) as usize;
                self.get(dma, p, at, &mut a[..n])?;
                t.moved(n as u64);
                at += n as u64;
            }
        }
        Ok(self.seen())
    }

    fn seen(&self) -> Seen {
        Seen {
            sum: self.h.finish(),
            head: self.head,
            stamped: self.stamped,
        }
    }
}

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

    fn push_input(&mut self, seen: Seen, i: &JobInput) {
        self.inputs_ok.push(seen.verifies(i.expected, i.frame));
        self.inputs_seen.push(Some(seen));
    }
}

impl DeviceJob {
    /// A job of `op` with no buffers yet.
    pub fn new(op: Op) -> DeviceJob {
        DeviceJob {
            op,
            inputs: Vec::new(),
            outputs: Vec::new(),
            bitstream: None,
            fault: None,
        }
    }

    /// The job with an injected fault (rule 7).
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
    /// known before it runs and is not in it.
    pub fn bytes(&self) -> (u64, u64) {
        let r = self.inputs.iter().map(|i| total(&i.planes)).sum();
        let w = self.outputs.iter().map(|o| total(&o.planes)).sum();
        (r, w)
    }

    /// What the job costs `dev` on its time model ([`crate::media::dma_cost`] of every byte it
    /// reads and writes).
    pub fn cost(&self, dev: &Device) -> Duration {
        let (r, w) = self.bytes();
        crate::media::dma_cost(dev, r + w)
    }

    /// Moves the job's bytes (module rules) and returns its effects.
    pub fn execute(self, dma: &DmaApi) -> JobEffects {
        self.execute_with(dma, &Tick::none())
    }

    /// Rule 5: moves the job's bytes, but after `pause_after` bytes (read and written, in the
    /// job's order) runs `mid` and then carries on. `mid` runs at the end if the job moves
    /// fewer bytes, and also if it fails before.
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
    /// let fx2 = capture(2).execute_paused(&dma, 32 << 10, &mut || {
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
        self,
        dma: &DmaApi,
        pause_after: u64,
        mid: &mut dyn FnMut(),
    ) -> JobEffects {
        let t = Tick {
            left: Cell::new(pause_after.min(u64::MAX - 1)),
            mid: RefCell::new(Some(mid)),
        };
        let fx = self.execute_with(dma, &t);
        t.finish();
        fx
    }

    fn execute_with(self, dma: &DmaApi, t: &Tick<'_>) -> JobEffects {
        // A job run in another's pause (rule 5) gets scratch buffers of its own.
        SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut s) => {
                let (a, b) = &mut *s;
                self.execute_in(dma, a, b, t)
            }
            Err(_) => {
                let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK * 4]);
                self.execute_in(dma, &mut a, &mut b, t)
            }
        })
    }

    fn execute_in(self, dma: &DmaApi, a: &mut [u8], b: &mut [u8], t: &Tick<'_>) -> JobEffects {
        {
            let mut fx = JobEffects {
                inputs_ok: Vec::new(),
                inputs_seen: Vec::new(),
                out_sums: Vec::new(),
                bitstream: None,
                error: None,
                inputs: Vec::new(),
                outputs: Vec::new(),
                bitstream_view: None,
            };
            fx.error = self.run(dma, a, b, &mut fx, t).err();
            if fx.error.is_some() {
                fx.inputs_ok.clear();
            }
            fx.inputs_ok.resize(self.inputs.len(), false);
            fx.inputs_seen.resize(self.inputs.len(), None);
            fx.out_sums.resize(self.outputs.len(), 0);
            fx.inputs = self.inputs.into_iter().map(|i| i.view).collect();
            fx.outputs = self.outputs.into_iter().map(|o| o.view).collect();
            fx.bitstream_view = self.bitstream;
            fx
        }
    }

    fn run(
        &self,
        dma: &DmaApi,
        a: &mut [u8],
        b: &mut [u8],
        fx: &mut JobEffects,
        t: &Tick<'_>,
    ) -> Result<(), String> {
        let e = |e: DmaError| e.to_string();
        match self.op {
            Op::Capture {
                pattern,
                seed,
                frame,
            } => {
                for o in &self.outputs {
                    let mut w = FrameOut::new(o);
                    for (p, &(_, len)) in o.planes.iter().enumerate() {
                        let bpl = o.bytes_per_line.get(p).copied().unwrap_or(len);
                        let gen = PatternGen::new(pattern, seed, frame, p, bpl);
                        let mut at = 0u64;
                        while at < len {
                            let n = (len - at).min(CHUNK as u64) as usize;
                            gen.fill(at as usize, &mut a[..n]);
                            w.put(dma, p, at, &a[..n]).map_err(e)?;
                            t.moved(n as u64);
                            at += n as u64;
                        }
                    }
                    fx.out_sums.push(w.finish(dma, frame).map_err(e)?);
                }
                return Ok(());
            }
            Op::Scanout | Op::Encode(Codec::Checksum) => {}
            Op::Encode(Codec::Rle) => {
                if let Some(first) = self.inputs.first() {
                    let (seen, bs) = self.encode_rle(dma, first, a, b, t)?;
                    fx.push_input(seen, first);
                    fx.bitstream = Some(bs);
                }
            }
            Op::Process(IspTransform::Downscale) => {
                return Err(
                    "the 2x downscale runs on whole NV12 frames (Isp::process); \
                            a scheduled job transforms frames of one size"
                        .into(),
                );
            }
            Op::Process(tf) => {
                if let Some(first) = self.inputs.first() {
                    if self.outputs.iter().all(|o| o.planes == first.planes) {
                        let mut r = FrameIn::new(first);
                        let mut ws: Vec<FrameOut<'_>> =
                            self.outputs.iter().map(FrameOut::new).collect();
                        for (p, &(_, len)) in first.planes.iter().enumerate() {
                            let mut at = 0u64;
                            while at < len {
                                let n = (len - at).min(CHUNK as u64) as usize;
                                r.get(dma, p, at, &mut a[..n]).map_err(e)?;
                                tf.apply(p, at as usize, &mut a[..n]);
                                for w in &mut ws {
                                    w.put(dma, p, at, &a[..n]).map_err(e)?;
                                }
                                t.moved(n as u64 * (1 + ws.len() as u64));
                                at += n as u64;
                            }
                        }
                        fx.push_input(r.seen(), first);
                        for w in ws {
                            fx.out_sums.push(w.finish(dma, first.frame).map_err(e)?);
                        }
                    } else {
                        let seen = FrameIn::new(first).read_all(dma, a, t).map_err(e)?;
                        fx.push_input(seen, first);
                        self.render_outputs(dma, first, a, fx, t)?;
                    }
                }
            }
            Op::Composite => {
                if let Some(first) = self.inputs.first() {
                    let expand = first.planes.len() == 2
                        && self
                            .outputs
                            .iter()
                            .all(|o| o.planes.len() == 1 && o.planes[0].1 == first.planes[0].1 * 4);
                    if expand {
                        let mut r = FrameIn::new(first);
                        let mut ws: Vec<FrameOut<'_>> =
                            self.outputs.iter().map(FrameOut::new).collect();
                        let llen = first.planes[0].1;
                        let mut at = 0u64;
                        while at < llen {
                            let n = (llen - at).min(CHUNK as u64) as usize;
                            r.get(dma, 0, at, &mut a[..n]).map_err(e)?;
                            crate::gpu::luma_to_xrgb(&a[..n], &mut b[..n * 4]);
                            for w in &mut ws {
                                w.put(dma, 0, at * 4, &b[..n * 4]).map_err(e)?;
                            }
                            t.moved(n as u64 * (1 + 4 * ws.len() as u64));
                            at += n as u64;
                        }
                        let clen = first.planes[1].1;
                        let mut at = 0u64;
                        while at < clen {
                            let n = (clen - at).min(CHUNK as u64) as usize;
                            r.get(dma, 1, at, &mut a[..n]).map_err(e)?;
                            t.moved(n as u64);
                            at += n as u64;
                        }
                        fx.push_input(r.seen(), first);
                        for w in ws {
                            fx.out_sums.push(w.finish(dma, first.frame).map_err(e)?);
                        }
                    } else {
                        let seen = FrameIn::new(first).read_all(dma, a, t).map_err(e)?;
                        fx.push_input(seen, first);
                        self.render_outputs(dma, first, a, fx, t)?;
                    }
                }
            }
        }
        // Every input not checked above is read whole and verified.
        for i in &self.inputs[fx.inputs_ok.len()..] {
            let seen = FrameIn::new(i).read_all(dma, a, t).map_err(e)?;
            fx.push_input(seen, i);
        }
        Ok(())
    }

    /// Rule 3: outputs rendered from the first input's checksum.
    fn render_outputs(
        &self,
        dma: &DmaApi,
        first: &JobInput,
        a: &mut [u8],
        fx: &mut JobEffects,
        t: &Tick<'_>,
    ) -> Result<(), String> {
        let e = |e: DmaError| e.to_string();
        for o in &self.outputs {
            let mut w = FrameOut::new(o);
            let mut pos = 0usize;
            for (p, &(_, len)) in o.planes.iter().enumerate() {
                let mut at = 0u64;
                while at < len {
                    let n = (len - at).min(CHUNK as u64) as usize;
                    render_from(first.expected, pos, &mut a[..n]);
                    w.put(dma, p, at, &a[..n]).map_err(e)?;
                    t.moved(n as u64);
                    at += n as u64;
                    pos += n;
                }
            }
            fx.out_sums.push(w.finish(dma, first.frame).map_err(e)?);
        }
        Ok(())
    }

    /// [`Codec::Rle`]: the frame as read (stamp included) run-length encoded into the
    /// bitstream buffer, chunk by chunk.
    fn encode_rle(
        &self,
        dma: &DmaApi,
        first: &JobInput,
        a: &mut [u8],
        b: &mut [u8],
        t: &Tick<'_>,
    ) -> Result<(Seen, Bitstream), String> {
        let e = |e: DmaError| e.to_string();
        let Some(bs) = &self.bitstream else {
            return Err("an RLE encoder job needs a bitstream buffer".into());
        };
        let mut r = FrameIn::new(first);
        let mut rle = RleStream::default();
        let mut h = Hasher::new();
        let mut written = 0u64;
        let mut put = |enc: &[u8]| -> Result<(), String> {
            if written + enc.len() as u64 > bs.len() {
                return Err(format!(
                    "the bitstream buffer ({:#x} bytes) is too small for this frame",
                    bs.len()
                ));
            }
            bs.write(dma, written, enc).map_err(e)?;
            h.update(enc);
            written += enc.len() as u64;
            Ok(())
        };
        for (p, &(_, len)) in first.planes.iter().enumerate() {
            let mut at = 0u64;
            while at < len {
                let n = (len - at).min(CHUNK as u64) as usize;
                r.get(dma, p, at, &mut a[..n]).map_err(e)?;
                let m = rle.feed(&a[..n], b);
                put(&b[..m])?;
                t.moved(n as u64);
                at += n as u64;
            }
        }
        let m = rle.finish(b);
        put(&b[..m])?;
        Ok((
            r.seen(),
            Bitstream {
                len: written,
                checksum: h.finish(),
            },
        ))
    }
}
