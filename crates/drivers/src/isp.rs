//! An ISP: a V4L2 memory-to-memory device that transforms NV12 frames (a 2x downscale, a copy,
//! an inversion, a chroma swap: [`IspTransform`]).
//!
//! C side: `drivers/media/v4l2-core/v4l2-mem2mem.c` and its test driver
//! `drivers/media/test-drivers/vim2m.c` (a job needs one source and one destination buffer;
//! `device_run` processes them and completes both), on the dma-contig allocator of a device
//! behind an IOMMU.
//!
//! # The concept
//! Two queues on one device: the **output** queue takes frames in (user space queues filled
//! buffers, typically DMABUF imports of a camera's EXPBUF), the **capture** queue gives frames
//! out. A job ([`Isp::process`]) takes the oldest buffer of each, DMA-reads the source, applies
//! the transform ([`IspTransform`]; the default [`frame::downscale_nv12`] is a 2x2 box filter),
//! re-stamps it with the source's frame number and DMA-writes the destination. A scheduler
//! that plans its own jobs ([`crate::job`]) applies the same [`IspTransform::apply`]. A test
//! recomputes the transform on the CPU and compares checksums.
//!
//! # Rules
//! 1. A job runs only when both queues are streaming and each holds a buffer (`job_ready`);
//!    otherwise [`Isp::process`] returns `Ok(None)` and nothing moves.
//! 2. The source's `bytesused` must be the input format's size; a short or long source fails
//!    the job with `EINVAL`, and both buffers complete with ERROR (nothing is written).
//! 3. The destination gets the timestamp-free copy semantics of vim2m: its `sequence` is the
//!    capture queue's, its payload the output format's size.

use crate::frame::{self, FrameFormat};
use crate::media::{dma_cost, read_plane, MediaError, ReadyList};
use dma::DmaApi;
use kernel::Process;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use vb2::{Allocator, BufType, Memory, Vb2Fh, Vb2Queue, Vb2QueueConfig, Vb2State};

/// What the ISP does to a frame: a setting of the device (`V4L2_CID_*`-style control), the
/// same for [`Isp::process`] and for the jobs a scheduler plans ([`crate::job::Op::Process`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IspTransform {
    /// Copies the frame.
    Copy,
    /// Inverts every byte.
    Invert,
    /// Swaps Cb and Cr in the chroma plane.
    SwapUv,
    /// Downscales 2x with a box filter ([`frame::downscale_nv12`]); whole frames only.
    #[default]
    Downscale,
}

impl IspTransform {
    /// Whether the output frame has the input's size.
    pub fn keeps_size(self) -> bool {
        self != IspTransform::Downscale
    }

    /// Applies a size-keeping transform in place to the bytes at `offset` of plane `plane`
    /// (plane 1 is NV12's interleaved CbCr); [`IspTransform::Downscale`] leaves them as they
    /// are (it needs whole frames).
    ///
    /// ```
    /// use drivers::isp::IspTransform;
    /// let mut d = [1u8, 2, 3, 4];
    /// IspTransform::SwapUv.apply(1, 0, &mut d);
    /// assert_eq!(d, [2, 1, 4, 3]);
    /// IspTransform::Invert.apply(0, 0, &mut d);
    /// assert_eq!(d, [!2, !1, !4, !3]);
    /// ```
    pub fn apply(self, plane: usize, offset: usize, data: &mut [u8]) {
        match self {
            IspTransform::Copy | IspTransform::Downscale => {}
            IspTransform::Invert => {
                // Word-wise: eight bytes per step.
                let mut words = data.chunks_exact_mut(8);
                for w in &mut words {
                    let v = !u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
                    w.copy_from_slice(&v.to_ne_bytes());
                }
                for b in words.into_remainder() {
                    *b = !*b;
                }
            }
            IspTransform::SwapUv => {
                if plane == 1 {
                    // Chroma pairs (Cb, Cr) start at even offsets of the plane.
                    let mut i = offset % 2;
                    while i + 1 < data.len() {
                        data.swap(i, i + 1);
                        i += 2;
                    }
                }
            }
        }
    }
}

/// ISP counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IspStats {
    /// Jobs that completed both buffers DONE.
    pub jobs: u64,
    /// Jobs failed (bad source size, DMA error).
    pub failed: u64,
    /// Bytes read by DMA.
    pub bytes_read: u64,
    /// Bytes written by DMA.
    pub bytes_written: u64,
}

/// One job the ISP ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IspJob {
    /// Output-queue (source) buffer index.
    pub src_index: u32,
    /// Capture-queue (destination) buffer index.
    pub dst_index: u32,
    /// The frame number the source was stamped with (the destination carries it too).
    pub frame: u32,
    /// Checksum of the destination frame.
    pub checksum: u64,
    /// Device time: read plus write.
    pub cost: Duration,
}

/// An m2m ISP (module documentation).
pub struct Isp {
    dma: Arc<DmaApi>,
    transform: IspTransform,
    in_fmt: FrameFormat,
    out_fmt: FrameFormat,
    output: Arc<Vb2Queue>,
    capture: Arc<Vb2Queue>,
    src_ready: Arc<ReadyList>,
    dst_ready: Arc<ReadyList>,
    stats: Mutex<IspStats>,
}

impl std::fmt::Debug for Isp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isp")
            .field("in", &self.in_fmt)
            .field("out", &self.out_fmt)
            .field("stats", &self.stats())
            .finish()
    }
}

fn plane_size(fmt: FrameFormat) -> Result<u32, MediaError> {
    u32::try_from(fmt.size()).map_err(|_| MediaError::Invalid(format!("{fmt} is too large")))
}

impl Isp {
    /// An ISP on `device` (`isp0` in the default SoC) taking `in_fmt` and producing its half
    /// size. Both queues accept MMAP and DMABUF.
    ///
    /// Errors: `ENODEV`; `EINVAL` if `in_fmt` does not halve ([`FrameFormat::half`]).
    pub fn new(dma: &Arc<DmaApi>, device: &str, in_fmt: FrameFormat) -> Result<Isp, MediaError> {
        Isp::with_transform(dma, device, in_fmt, IspTransform::Downscale)
    }

    /// An ISP on `device` applying `transform` to frames of `in_fmt`; the output format is the
    /// input's, or its half for [`IspTransform::Downscale`].
    ///
    /// Errors: `ENODEV`; `EINVAL` if `in_fmt` does not halve for a downscale.
    pub fn with_transform(
        dma: &Arc<DmaApi>,
        device: &str,
        in_fmt: FrameFormat,
        transform: IspTransform,
    ) -> Result<Isp, MediaError> {
        let dev = dma.device(device)?;
        let out_fmt = if transform.keeps_size() {
            in_fmt
        } else {
            in_fmt.half()?
        };
        let src_ready = ReadyList::new(&[plane_size(in_fmt)?]);
        let dst_ready = ReadyList::new(&[plane_size(out_fmt)?]);
        let queue = |t: BufType, ops: &Arc<ReadyList>| {
            let mut qc = Vb2QueueConfig::new(t, dev.clone());
            qc.io_modes = vec![Memory::Mmap, Memory::Dmabuf];
            qc.allocator = Allocator::DmaContig;
            Vb2Queue::new(dma, qc, ops.clone())
        };
        Ok(Isp {
            dma: dma.clone(),
            transform,
            in_fmt,
            out_fmt,
            output: queue(BufType::VideoOutput, &src_ready),
            capture: queue(BufType::VideoCapture, &dst_ready),
            src_ready,
            dst_ready,
            stats: Mutex::new(IspStats::default()),
        })
    }

    /// Opens the output (source) queue in `process`.
    pub fn open_output(&self, process: &Arc<Process>) -> Vb2Fh {
        self.output.open(process)
    }

    /// Opens the capture (destination) queue in `process`.
    pub fn open_capture(&self, process: &Arc<Process>) -> Vb2Fh {
        self.capture.open(process)
    }

    /// The output (source) queue.
    pub fn output_queue(&self) -> &Arc<Vb2Queue> {
        &self.output
    }

    /// The capture (destination) queue.
    pub fn capture_queue(&self) -> &Arc<Vb2Queue> {
        &self.capture
    }

    /// The input format.
    pub fn input_format(&self) -> FrameFormat {
        self.in_fmt
    }

    /// The output format (half the input).
    pub fn output_format(&self) -> FrameFormat {
        self.out_fmt
    }

    /// Counters.
    pub fn stats(&self) -> IspStats {
        *self.stats.lock()
    }

    /// The transform it applies.
    pub fn transform_kind(&self) -> IspTransform {
        self.transform
    }

    /// What the ISP makes of `src`: the CPU reference of the transform, re-stamped with the
    /// source's frame number.
    pub fn transform(&self, src: &[u8]) -> Result<Vec<u8>, MediaError> {
        if !self.transform.keeps_size() {
            return frame::downscale_nv12(self.in_fmt, src);
        }
        if src.len() != self.in_fmt.size() {
            return Err(MediaError::Invalid(format!(
                "{} needs {} bytes, got {}",
                self.in_fmt,
                self.in_fmt.size(),
                src.len()
            )));
        }
        let mut out = src.to_vec();
        let (luma, chroma) = out.split_at_mut(self.in_fmt.luma_size());
        self.transform.apply(0, 0, luma);
        self.transform.apply(1, 0, chroma);
        frame::stamp(&mut out, frame::stamped_frame(src).unwrap_or(0));
        Ok(out)
    }

    /// Runs one job if one is ready (module rules).
    pub fn process(&self) -> Result<Option<IspJob>, MediaError> {
        if !self.output.is_started() || !self.capture.is_started() {
            return Ok(None);
        }
        let Some(src) = self.src_ready.pop() else {
            return Ok(None);
        };
        let Some(dst) = self.dst_ready.pop() else {
            self.src_ready.push_front(src);
            return Ok(None);
        };
        let fail = |e: MediaError| {
            self.stats.lock().failed += 1;
            let _ = self.output.buffer_done(src.index, Vb2State::Error);
            let _ = self.capture.buffer_done(dst.index, Vb2State::Error);
            Err(e)
        };
        let used = src.planes[0].bytesused as usize;
        if used != self.in_fmt.size() {
            return fail(MediaError::Invalid(format!(
                "source buffer {} carries {used} bytes, {} needs {}",
                src.index,
                self.in_fmt,
                self.in_fmt.size()
            )));
        }
        let input = match read_plane(&self.dma, &src, used) {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        let out = match self.transform(&input) {
            Ok(o) => o,
            Err(e) => return fail(e),
        };
        if let Err(e) = dst.dma_write(&self.dma, 0, 0, &out) {
            return fail(e.into());
        }
        self.capture
            .set_plane_payload(dst.index, 0, out.len() as u32)?;
        self.output.buffer_done(src.index, Vb2State::Done)?;
        self.capture.buffer_done(dst.index, Vb2State::Done)?;
        let mut st = self.stats.lock();
        st.jobs += 1;
        st.bytes_read += input.len() as u64;
        st.bytes_written += out.len() as u64;
        Ok(Some(IspJob {
            src_index: src.index,
            dst_index: dst.index,
            frame: frame::stamped_frame(&input).unwrap_or(0),
            checksum: frame::checksum(&out),
            cost: dma_cost(&src.device, input.len() as u64)
                + dma_cost(&dst.device, out.len() as u64),
        }))
    }
}
