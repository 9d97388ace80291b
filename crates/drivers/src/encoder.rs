//! A video encoder: a V4L2 stateful mem2mem encoder that reads each raw frame by DMA from its
//! OUTPUT queue, verifies its stamp and run-length encodes it into a buffer of its CAPTURE
//! queue, so that what it encoded can be decoded and compared.
//!
//! C side: `drivers/media/test-drivers/vicodec/` (a stateful m2m codec with the FWHT codec) and
//! `drivers/media/platform/verisilicon/hantro_h1_jpeg_enc.c` (the CAPTURE buffer's size is the
//! engine's stream limit; the payload is what it wrote), over `v4l2-mem2mem.c`.
//!
//! # The concept
//! The encoder is the device seed 000 predicts trouble for: it is switched on **mid-stream**,
//! importing buffers that other devices already share (user space QBUFs the same dma-buf fds on
//! its DMABUF OUTPUT queue). vb2 attaches its device and maps at that first QBUF. If its
//! constraints are stricter than the buffer's placement (an encoder that needs physically
//! contiguous memory, say), the exporter must migrate the buffer: with the constraint exporter
//! of [`constraint`] the QBUF waits for the other users to drain, the buffer moves, and
//! the pipeline goes on — the stutter, counted in the exporter's migration log. With an
//! exporter that cannot move (vb2's MMAP, a CMA heap), the QBUF either fits as is or fails.
//!
//! A job takes one OUTPUT buffer (the raw frame) and one CAPTURE buffer (the bitstream), as
//! `v4l2_m2m_try_schedule` does; the bytes move through the same [`DeviceJob`] the scenario
//! runner schedules ([`Op::Encode`]), and the end of the job is [`Drain::job_done`], which the
//! runner calls too: one implementation of what the driver does with the two buffers.
//! `VIDIOC_ENCODER_CMD` (`V4L2_ENC_CMD_STOP`/`START`, the drain) is [`drain`]'s.
//!
//! # Rules
//! 1. [`Encoder::encode`] runs one job if both queues are streaming, each has a buffer and the
//!    encoder has not stopped: it DMA-reads the OUTPUT buffer's `bytesused`, checks the stamp
//!    and RLE-encodes the bytes ([`RleStream`]) into the CAPTURE buffer's plane.
//! 2. The CAPTURE buffer's payload (`bytesused`) is the stream's length; both buffers complete
//!    DONE. A stream longer than the CAPTURE plane (a `sizeimage` below the codec's worst case,
//!    [`Encoder::with_sizeimage`]) or a DMA failure completes both ERROR, payload 0, with no
//!    errno (the H1's buffer-full interrupt: not `FRAME_RDY`, `VB2_BUF_STATE_ERROR`). A CAPTURE
//!    buffer smaller than `sizeimage` is refused at QBUF (`EINVAL`, vb2's plane check).
//! 3. A frame whose stamp is bad is still encoded (an encoder does not judge content) but
//!    counted [`EncoderStats::corrupted`] and reported `verified: false`.
//! 4. The drain rules are [`drain`]'s.

use crate::dmaview::DmaView;
use crate::frame::{FrameFormat, STAMP_LEN, STAMP_MAGIC};
use crate::job::{DeviceJob, JobInput, JobOutput, Op};
use crate::media::{dma_cost, MediaError, ReadyList};
use dma::{DmaApi, DmaSegment};
use kernel::Process;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use vb2::{Allocator, BufType, DriverPlane, Memory, Vb2Fh, Vb2Queue, Vb2QueueConfig, Vb2State};

pub mod drain;
pub use drain::{CaptureOps, Drain, DrainState, DrainStats, JobEnd, OutputOps, V4l2EncoderCmd};

/// What an encoder makes of a frame: a setting of the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Verifies the frame and keeps its checksum; writes no bitstream.
    Checksum,
    /// Run-length encodes the frame ([`RleStream`]) into a bitstream buffer the encoder owns.
    #[default]
    Rle,
}

/// A run-length encoder fed chunk by chunk: `(count, byte)` pairs, counts 1..=255, the same
/// bytes in any chunking as [`crate::frame::rle_encode`] of the whole.
///
/// ```
/// use drivers::encoder::RleStream;
/// let data = [7u8, 7, 7, 1, 1, 9];
/// let mut out = vec![0u8; 16];
/// let mut rle = RleStream::default();
/// let mut n = rle.feed(&data[..2], &mut out);
/// n += rle.feed(&data[2..], &mut out[n..]);
/// n += rle.finish(&mut out[n..]);
/// assert_eq!(&out[..n], &drivers::frame::rle_encode(&data)[..]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RleStream {
    run: Option<(u8, u8)>,
}

impl RleStream {
    /// Encodes `data`, writing the pairs of every run it closes into `out`; returns the bytes
    /// written. `out` must hold `2 * data.len()` bytes (a longer run than that never closes).
    pub fn feed(&mut self, data: &[u8], out: &mut [u8]) -> usize {
        let mut n = 0;
        let mut run = self.run;
        for &b in data {
            run = match run {
                Some((v, c)) if v == b && c < u8::MAX => Some((v, c + 1)),
                Some((v, c)) => {
                    out[n] = c;
                    out[n + 1] = v;
                    n += 2;
                    Some((b, 1))
                }
                None => Some((b, 1)),
            };
        }
        self.run = run;
        n
    }

    /// Closes the last run into `out` (two bytes); returns the bytes written.
    pub fn finish(&mut self, out: &mut [u8]) -> usize {
        match self.run.take() {
            Some((v, c)) => {
                out[0] = c;
                out[1] = v;
                2
            }
            None => 0,
        }
    }
}

/// Encoder counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncoderStats {
    /// Jobs that ran (frames encoded, or failed: [`EncodedFrame::state`]).
    pub frames: u64,
    /// Frames whose stamp verified.
    pub verified: u64,
    /// Frames whose stamp did not.
    pub corrupted: u64,
    /// Raw bytes read.
    pub bytes_in: u64,
    /// Encoded bytes produced (the CAPTURE buffers' payloads).
    pub bytes_out: u64,
    /// Jobs whose buffers completed ERROR (rule 2).
    pub errors: u64,
}

/// One job of the encoder: what became of its OUTPUT and CAPTURE buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The OUTPUT buffer (the raw frame) it read.
    pub index: u32,
    /// The CAPTURE buffer it wrote the bitstream into.
    pub capture_index: u32,
    /// The stamp's frame number, if the stamp verified.
    pub frame: Option<u32>,
    /// Whether the stamp verified.
    pub verified: bool,
    /// Checksum of the frame's body as read (0 if the job failed).
    pub checksum: u64,
    /// The CAPTURE buffer's payload: the stream's length ([`crate::frame::rle_decode`] of those bytes
    /// gives the raw frame back); 0 on ERROR.
    pub bytesused: u32,
    /// How both buffers completed (rule 2).
    pub state: Vb2State,
    /// The CAPTURE buffer is the drain's `LAST` one.
    pub last: bool,
    /// What failed, on ERROR.
    pub error: Option<String>,
    /// Device time of the job.
    pub cost: Duration,
}

/// A video encoder (module documentation).
pub struct Encoder {
    dma: Arc<DmaApi>,
    fmt: FrameFormat,
    output: Arc<Vb2Queue>,
    out_ready: Arc<ReadyList>,
    capture: Arc<Vb2Queue>,
    cap_ready: Arc<ReadyList>,
    drain: Arc<Drain>,
    stats: Mutex<EncoderStats>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("format", &self.fmt)
            .field("stats", &self.stats())
            .field("drain", &self.drain)
            .finish()
    }
}

/// The worst case of [`RleStream`] for `frame` bytes: a pair per byte and the closing pair.
pub fn rle_sizeimage(frame: usize) -> usize {
    frame * 2 + 2
}

/// The device's view of a plane, cut to its length: the engine never writes past it.
fn plane_view(dev: &Arc<soc::Device>, p: &DriverPlane) -> DmaView {
    let mut left = u64::from(p.length);
    let segs: Vec<DmaSegment> = p
        .segments
        .iter()
        .filter_map(|s| {
            let len = s.len.min(left);
            left -= len;
            (len > 0).then_some(DmaSegment { addr: s.addr, len })
        })
        .collect();
    DmaView::from_segments(dev.clone(), &segs)
}

impl Encoder {
    /// An encoder on `device` (`encoder0` in the default SoC) for frames of `fmt`; its queues
    /// take DMABUF and MMAP buffers, its CAPTURE `sizeimage` is the codec's worst case
    /// ([`rle_sizeimage`]).
    pub fn new(dma: &Arc<DmaApi>, device: &str, fmt: FrameFormat) -> Result<Encoder, MediaError> {
        Encoder::with_sizeimage(dma, device, fmt, rle_sizeimage(fmt.size()))
    }

    /// [`Encoder::new`] with the CAPTURE format's `sizeimage` the application set
    /// (`VIDIOC_S_FMT`): a stream longer than that fails its job (rule 2).
    pub fn with_sizeimage(
        dma: &Arc<DmaApi>,
        device: &str,
        fmt: FrameFormat,
        sizeimage: usize,
    ) -> Result<Encoder, MediaError> {
        let dev = dma.device(device)?;
        let too_large = |what: &str| MediaError::Invalid(format!("{what} is too large"));
        let size = u32::try_from(fmt.size()).map_err(|_| too_large(&fmt.to_string()))?;
        let sizeimage = u32::try_from(sizeimage).map_err(|_| too_large("sizeimage"))?;
        let drain = Drain::new();
        let out_ready = ReadyList::new(&[size]);
        let cap_ready = ReadyList::new(&[sizeimage]);
        let queue = |t: BufType, ops: Arc<dyn vb2::Vb2Ops>| {
            let mut qc = Vb2QueueConfig::new(t, dev.clone());
            qc.io_modes = vec![Memory::Dmabuf, Memory::Mmap];
            qc.allocator = Allocator::DmaContig;
            Vb2Queue::new(dma, qc, ops)
        };
        let output = queue(
            BufType::VideoOutput,
            Arc::new(OutputOps {
                ready: out_ready.clone(),
                drain: drain.clone(),
            }),
        );
        let capture = queue(
            BufType::VideoCapture,
            Arc::new(CaptureOps {
                ready: cap_ready.clone(),
                drain: drain.clone(),
            }),
        );
        drain.set_output(&output, out_ready.clone());
        drain.set_capture(&capture, cap_ready.clone());
        Ok(Encoder {
            dma: dma.clone(),
            fmt,
            output,
            out_ready,
            capture,
            cap_ready,
            drain,
            stats: Mutex::new(EncoderStats::default()),
        })
    }

    /// Opens the OUTPUT queue (raw frames in) in `process`.
    pub fn open(&self, process: &Arc<Process>) -> Vb2Fh {
        self.output.open(process)
    }

    /// Opens the CAPTURE queue (the bitstream out) in `process`.
    pub fn open_capture(&self, process: &Arc<Process>) -> Vb2Fh {
        self.capture.open(process)
    }

    /// The OUTPUT queue.
    pub fn queue(&self) -> &Arc<Vb2Queue> {
        &self.output
    }

    /// The CAPTURE queue.
    pub fn capture_queue(&self) -> &Arc<Vb2Queue> {
        &self.capture
    }

    /// The frame format.
    pub fn format(&self) -> FrameFormat {
        self.fmt
    }

    /// Counters.
    pub fn stats(&self) -> EncoderStats {
        *self.stats.lock()
    }

    /// The drain state and its counters.
    pub fn drain(&self) -> &Arc<Drain> {
        &self.drain
    }

    /// `VIDIOC_ENCODER_CMD` ([`drain`]'s rules).
    pub fn encoder_cmd(&self, ec: &mut V4l2EncoderCmd) -> Result<(), MediaError> {
        self.drain.encoder_cmd(ec)
    }

    /// Runs one job, if one can run (module rules); `None` if not.
    pub fn encode(&self) -> Result<Option<EncodedFrame>, MediaError> {
        if !self.output.is_started() || !self.capture.is_started() {
            return Ok(None);
        }
        let (Some(si), Some(di)) = (self.out_ready.next(), self.cap_ready.next()) else {
            return Ok(None);
        };
        if !self.drain.job_started(si) {
            return Ok(None);
        }
        let (Some(src), Some(dst)) = (self.out_ready.take(si), self.cap_ready.take(di)) else {
            return Err(MediaError::Invalid(
                "the ready lists changed under the job".into(),
            ));
        };
        let (sp, dp) = (&src.planes[0], &dst.planes[0]);
        let used = u64::from(sp.bytesused).min(self.fmt.size() as u64);
        let job = DeviceJob::new(Op::Encode(Codec::Rle))
            .input(JobInput {
                view: plane_view(&src.device, sp),
                planes: vec![(0, used)],
                expected: 0,
                frame: 0,
            })
            .output(JobOutput {
                view: plane_view(&dst.device, dp),
                planes: vec![(0, u64::from(dp.length))],
                bytes_per_line: vec![u64::from(dp.length)],
            });
        let fx = job.execute(&self.dma);
        let stream = fx.bitstream.filter(|_| fx.error.is_none());
        let end = self.drain.job_done(si, Some(di), stream.map(|b| b.len))?;
        let seen = fx.inputs_seen.first().copied().flatten();
        let frame = seen.and_then(|s| {
            let ok = s.stamped
                && s.head[..4] == STAMP_MAGIC
                && s.head[8..STAMP_LEN] == s.sum.to_le_bytes();
            ok.then(|| u32::from_le_bytes([s.head[4], s.head[5], s.head[6], s.head[7]]))
        });
        let error = match (&fx.error, end.state) {
            (Some(e), _) => Some(e.clone()),
            (None, Vb2State::Error) => Some(format!(
                "the stream does not fit the CAPTURE buffer's {} bytes",
                dp.length
            )),
            _ => None,
        };
        let mut st = self.stats.lock();
        st.frames += 1;
        if end.state == Vb2State::Error {
            st.errors += 1;
        } else if frame.is_some() {
            st.verified += 1;
        } else {
            st.corrupted += 1;
        }
        st.bytes_in += used;
        st.bytes_out += u64::from(end.bytesused);
        Ok(Some(EncodedFrame {
            index: si,
            capture_index: di,
            frame,
            verified: frame.is_some(),
            checksum: seen.map_or(0, |s| s.sum),
            bytesused: end.bytesused,
            state: end.state,
            last: end.last,
            error,
            cost: dma_cost(&src.device, used + u64::from(end.bytesused)),
        }))
    }
}
