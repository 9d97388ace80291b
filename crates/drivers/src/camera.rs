//! A camera: a V4L2 capture device that fills each queued buffer with a stamped test pattern
//! through its DMA engine.
//!
//! C side: `drivers/media/test-drivers/vivid/` (`vivid-kthread-cap.c`: take the oldest queued
//! buffer, fill it from the test-pattern generator, `vb2_buffer_done`), on the dma-contig
//! allocator of a sensor interface without an IOMMU (`videobuf2-dma-contig.c`).
//!
//! # The concept
//! User space owns the capture queue ([`Camera::open`] gives its file handle): REQBUFS (MMAP,
//! or DMABUF with imported buffers), QBUF, STREAMON, DQBUF, EXPBUF are the vb2 ioctls. The
//! camera's part is the sensor: every [`Camera::capture`] takes the oldest buffer vb2 gave the
//! driver, writes frame `n` ([`frame::pattern`]: a pattern seeded by `n`, stamped with `n` and
//! its checksum) by DMA, sets the payload and completes the buffer.
//!
//! # Rules
//! 1. The queue is single-planar NV12 ([`FrameFormat`]), dma-contig: on `camera0` of the
//!    default SoC, which has no IOMMU, every buffer is physically contiguous (MMAP allocates it
//!    so; a DMABUF import that is not is refused at QBUF with `EFAULT` by vb2).
//! 2. A capture with no buffer queued captures nothing (`Ok(None)`): the sensor drops the frame
//!    and [`CameraStats::dropped`] counts it. Frame numbers count the frames written, so
//!    they stay equal to vb2's `sequence`.
//! 3. A DMA that fails (an unmapped address) completes the buffer with ERROR and returns the
//!    error; the next capture goes on.

use crate::frame::{self, FrameFormat};
use crate::media::{dma_cost, MediaError, ReadyList};
use dma::DmaApi;
use kernel::Process;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use vb2::{Allocator, BufType, Memory, Vb2Fh, Vb2Queue, Vb2QueueConfig, Vb2State};

/// How a [`Camera`] is set up.
#[derive(Clone, Debug)]
pub struct CameraConfig {
    /// The sensor's DMA device (default `camera0`).
    pub device: String,
    /// The format it captures.
    pub format: FrameFormat,
    /// `min_queued_buffers` of the capture queue (default 1).
    pub min_queued_buffers: u32,
}

impl CameraConfig {
    /// `camera0`, `format`, one buffer queued before streaming starts.
    pub fn new(format: FrameFormat) -> CameraConfig {
        CameraConfig {
            device: "camera0".into(),
            format,
            min_queued_buffers: 1,
        }
    }
}

/// Camera counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CameraStats {
    /// Frames written into buffers and completed DONE.
    pub captured: u64,
    /// Frames the sensor produced with no buffer to put them in (rule 2).
    pub dropped: u64,
    /// Buffers completed with ERROR after a failed DMA.
    pub errors: u64,
    /// Bytes written by DMA.
    pub bytes: u64,
}

/// One frame the camera wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Captured {
    /// The vb2 buffer index it went into.
    pub index: u32,
    /// The frame number (equals the buffer's `sequence`).
    pub frame: u32,
    /// Checksum of the whole frame, as a sink will compute it.
    pub checksum: u64,
    /// What the DMA cost on the device's time model.
    pub cost: Duration,
}

/// A camera (module documentation).
pub struct Camera {
    dma: Arc<DmaApi>,
    cfg: CameraConfig,
    queue: Arc<Vb2Queue>,
    ready: Arc<ReadyList>,
    state: Mutex<(u32, CameraStats)>,
}

impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera")
            .field("device", &self.cfg.device)
            .field("format", &self.cfg.format)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Camera {
    /// A camera on `cfg.device` with its capture queue (MMAP and DMABUF, dma-contig).
    ///
    /// Errors: `ENODEV` for an unknown device; `EINVAL` for a frame too large for a plane.
    pub fn new(dma: &Arc<DmaApi>, cfg: CameraConfig) -> Result<Camera, MediaError> {
        let dev = dma.device(&cfg.device)?;
        let size = u32::try_from(cfg.format.size())
            .map_err(|_| MediaError::Invalid(format!("{} is too large", cfg.format)))?;
        let ready = ReadyList::new(&[size]);
        let mut qc = Vb2QueueConfig::new(BufType::VideoCapture, dev);
        qc.io_modes = vec![Memory::Mmap, Memory::Dmabuf];
        qc.allocator = Allocator::DmaContig;
        qc.min_queued_buffers = cfg.min_queued_buffers;
        let queue = Vb2Queue::new(dma, qc, ready.clone());
        Ok(Camera {
            dma: dma.clone(),
            cfg,
            queue,
            ready,
            state: Mutex::new((0, CameraStats::default())),
        })
    }

    /// Opens the video node in `process`: the file handle user space makes its ioctls on.
    pub fn open(&self, process: &Arc<Process>) -> Vb2Fh {
        self.queue.open(process)
    }

    /// The capture queue.
    pub fn queue(&self) -> &Arc<Vb2Queue> {
        &self.queue
    }

    /// The format.
    pub fn format(&self) -> FrameFormat {
        self.cfg.format
    }

    /// Buffers the driver holds, waiting for a frame.
    pub fn ready(&self) -> usize {
        self.ready.len()
    }

    /// Counters.
    pub fn stats(&self) -> CameraStats {
        self.state.lock().1
    }

    /// The bytes of frame `frame` (what [`capture`](Self::capture) writes).
    pub fn expected(&self, frame: u32) -> Vec<u8> {
        frame::pattern(self.cfg.format, frame)
    }

    /// Captures one frame into the oldest buffer the driver holds (module rules 2 and 3).
    pub fn capture(&self) -> Result<Option<Captured>, MediaError> {
        let Some(vb) = (self.queue.is_started())
            .then(|| self.ready.pop())
            .flatten()
        else {
            self.state.lock().1.dropped += 1;
            return Ok(None);
        };
        let frame = {
            let mut st = self.state.lock();
            st.0 = st.0.wrapping_add(1);
            st.0 - 1
        };
        let data = frame::pattern(self.cfg.format, frame);
        if let Err(e) = vb.dma_write(&self.dma, 0, 0, &data) {
            self.state.lock().1.errors += 1;
            let _ = self.queue.buffer_done(vb.index, Vb2State::Error);
            return Err(e.into());
        }
        self.queue
            .set_plane_payload(vb.index, 0, data.len() as u32)?;
        self.queue.buffer_done(vb.index, Vb2State::Done)?;
        let mut st = self.state.lock();
        st.1.captured += 1;
        st.1.bytes += data.len() as u64;
        Ok(Some(Captured {
            index: vb.index,
            frame,
            checksum: frame::checksum(&data),
            cost: dma_cost(&vb.device, data.len() as u64),
        }))
    }
}
