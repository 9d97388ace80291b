//! An ISP: a V4L2 memory-to-memory device that downscales NV12 frames 2x.
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
//! the transform ([`frame::downscale_nv12`]: a 2x2 box filter, re-stamped with the source's
//! frame number) and DMA-writes the destination. A test recomputes the transform on the CPU and
//! compares checksums.
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

/// A 2x downscaling m2m ISP (module documentation).
pub struct Isp {
    dma: Arc<DmaApi>,
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
        let dev = dma.device(device)?;
        let out_fmt = in_fmt.half()?;
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

    /// What the ISP makes of `src`: the CPU reference of the transform.
    pub fn transform(&self, src: &[u8]) -> Result<Vec<u8>, MediaError> {
        frame::downscale_nv12(self.in_fmt, src)
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
        let out = match frame::downscale_nv12(self.in_fmt, &input) {
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
