//! What the media drivers share: their error type, the vb2 plumbing of a driver that runs its
//! engine one buffer at a time, the DMA time model, and the user-space side of the V4L2 ioctls
//! the pipelines make.
//!
//! C side: `drivers/media/v4l2-core/v4l2-mem2mem.c` (a driver keeps the buffers vb2 hands it in
//! a ready list and runs a job when it has what it needs: `v4l2_m2m_buf_queue`,
//! `v4l2_m2m_next_src_buf`), and `v4l2-utils`' `cv4l-helpers.h` for the user side.
//!
//! # Stepping on a virtual clock
//! No driver of this crate runs a thread of its own. `buf_queue` only puts the buffer on the
//! driver's ready list ([`ReadyList`]); the engine runs when the caller steps it
//! ([`Camera::capture`](crate::camera::Camera::capture),
//! [`Isp::process`](crate::isp::Isp::process), [`Encoder::encode`](crate::encoder::Encoder::encode),
//! [`Display::vblank`](crate::display::Display::vblank)). Each step moves real bytes through the
//! device's DMA engine and returns what it cost on the device's time model ([`dma_cost`]).
//! The scenario runner does not step these objects: it plans the same operations as device
//! jobs ([`crate::job`]: the same pattern, transform, composite, codec, stamp and checksum),
//! places each on its virtual clock for [`DeviceJob::cost`](crate::job::DeviceJob::cost) and
//! lets the driver execute it; the same jobs give the same report, byte for byte. Its V4L2
//! queues (a consumer's OUTPUT queue, a camera's or ISP's CAPTURE queue) have a [`ReadyList`]
//! as their driver side: the runner asks the driver which buffer its next job gets
//! ([`ReadyList::next`], [`ReadyList::take`]) and completes it at the job's end
//! ([`ReadyList::finish`]); it keeps no list of its own of what a queue holds.

use dma::{DmaApi, DmaError};
use dmabuf::DmaBufError;
use fence::FenceError;
use kernel::Process;
use parking_lot::Mutex;
use soc::Device;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use uapi::{AsErrno, Errno};
use vb2::ioctl::*;
use vb2::{DriverBuffer, Vb2Error, Vb2Fh, Vb2Ops, Vb2Queue, Vb2State};

use crate::gpu::GpuError;

/// What went wrong in a media driver; [`AsErrno::errno`] is what the ioctl would return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// A bad argument (format, index, size); the message names it (`EINVAL`).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A scanout or codec engine without an IOMMU was given memory it cannot reach in one run
    /// (`EINVAL`, as `drm_gem_dma_prime_import_sg_table` answers).
    #[error("{device} needs one DMA-contiguous run of {need:#x} bytes, the buffer maps as {segments} segments (no IOMMU: allocate it from a contiguous heap, e.g. CMA)")]
    NotContiguous {
        /// The device.
        device: String,
        /// DMA segments of the mapping.
        segments: usize,
        /// Bytes the device must reach.
        need: u64,
    },
    /// The object is in use (scanned out, queued) (`EBUSY`).
    #[error("busy: {0}")]
    Busy(String),
    /// No such object (an unknown framebuffer id: `ENOENT`, as `drm_framebuffer_lookup`).
    #[error("not found: {0}")]
    NotFound(String),
    /// A value does not fit the ioctl's range (`ERANGE`, as `framebuffer_check` answers a
    /// plane over 4 GiB).
    #[error("out of range: {0}")]
    Range(String),
    /// Nothing can be done now; try again after the pipeline moves (`EAGAIN`).
    #[error("would block: {0}")]
    WouldBlock(String),
    /// Writing an output file failed (`EIO`).
    #[error("i/o: {0}")]
    Io(String),
    /// A plane's source rectangle does not fit its framebuffer (`ENOSPC`, as
    /// `drm_atomic_plane_check` answers).
    #[error("no space: {0}")]
    NoSpace(String),
    /// A vb2 call failed.
    #[error(transparent)]
    Vb2(#[from] Vb2Error),
    /// A dma-buf call failed.
    #[error(transparent)]
    DmaBuf(#[from] DmaBufError),
    /// A DMA API call failed.
    #[error(transparent)]
    Dma(#[from] DmaError),
    /// The GPU driver failed.
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// A fence wait failed.
    #[error(transparent)]
    Fence(#[from] FenceError),
}

impl AsErrno for MediaError {
    fn errno(&self) -> Errno {
        match self {
            MediaError::Invalid(_) | MediaError::NotContiguous { .. } => Errno::EINVAL,
            MediaError::Busy(_) => Errno::EBUSY,
            MediaError::Range(_) => Errno::ERANGE,
            MediaError::NotFound(_) => Errno::ENOENT,
            MediaError::WouldBlock(_) => Errno::EAGAIN,
            MediaError::Io(_) => Errno::EIO,
            MediaError::NoSpace(_) => Errno::ENOSPC,
            MediaError::Vb2(e) => e.errno(),
            MediaError::DmaBuf(e) => e.errno(),
            MediaError::Dma(e) => e.errno(),
            MediaError::Gpu(e) => e.errno(),
            MediaError::Fence(e) => e.errno(),
        }
    }
}

impl From<soc::SocError> for MediaError {
    fn from(e: soc::SocError) -> MediaError {
        MediaError::Dma(DmaError::from(e))
    }
}

/// What a DMA of `bytes` costs `dev` on the time model of its description: the fixed latency
/// per transfer plus `bytes / bandwidth`, rounded up to the nanosecond ([`transfer_ns`]). The
/// one time model: the scenario runner's clock asks the same function.
///
/// ```
/// let soc = soc::Soc::new(soc::SocDesc::default_soc())?;
/// let cam = soc.device("camera0")?;       // 2 GB/s, 2 us per transfer
/// assert_eq!(drivers::media::dma_cost(&cam, 2_000_000).as_micros(), 1_002);
/// # Ok::<(), soc::SocError>(())
/// ```
pub fn dma_cost(dev: &Device, bytes: u64) -> Duration {
    let d = dev.desc();
    Duration::from_nanos(transfer_ns(d.latency_ns, d.bandwidth_bps, bytes))
}

pub use soc::timing::transfer_ns;

/// The vb2 side of a media driver: `buf_queue` puts buffers on a ready list in queue order
/// (`v4l2_m2m_buf_queue`), the driver takes them when it runs a job, and `stop_streaming`
/// hands back every buffer it still holds with ERROR (the `vb2_ops` contract).
///
/// Two ways to take a buffer, as the C drivers have them:
/// - a driver whose engine runs when stepped and completes the buffer in the same step takes
///   it with [`pop`](Self::pop) (`v4l2_m2m_src_buf_remove`) and calls
///   [`Vb2Queue::buffer_done`] itself ([`Camera`](crate::camera::Camera),
///   [`Isp`](crate::isp::Isp));
/// - a driver whose job runs for a while (the scenario runner's device jobs on its virtual
///   clock, and the [`Encoder`](crate::encoder::Encoder)'s jobs) looks at what is next ([`next`](Self::next), `v4l2_m2m_next_src_buf`), takes it
///   for the job ([`take`](Self::take), `v4l2_m2m_buf_remove_by_idx`): the buffer stays the
///   driver's, *in the job*, until [`finish`](Self::finish) completes it
///   (`v4l2_m2m_buf_done`); `stop_streaming` returns the buffers in a job too.
///
/// The plane sizes are fixed at creation (one format per queue).
///
/// Locking: one mutex over the list and the job set; `stop_streaming` takes the buffers out
/// under it and calls `buffer_done` after releasing it (vb2 may call back in).
pub struct ReadyList {
    sizes: Vec<u32>,
    st: Mutex<ReadyState>,
}

#[derive(Default)]
struct ReadyState {
    /// Queued by vb2, not taken yet, oldest first.
    ready: VecDeque<DriverBuffer>,
    /// Taken by a job that has not finished, by index.
    in_job: Vec<u32>,
}

impl ReadyList {
    /// A ready list for buffers of `sizes` bytes per plane.
    pub fn new(sizes: &[u32]) -> Arc<ReadyList> {
        Arc::new(ReadyList {
            sizes: sizes.to_vec(),
            st: Mutex::new(ReadyState::default()),
        })
    }

    /// The oldest buffer the driver holds, taken off the list; the caller completes it.
    pub fn pop(&self) -> Option<DriverBuffer> {
        self.st.lock().ready.pop_front()
    }

    /// Puts a buffer back at the head (a job that could not run yet).
    pub fn push_front(&self, vb: DriverBuffer) {
        self.st.lock().ready.push_front(vb);
    }

    /// How many buffers wait on the list (not counting those in a job).
    pub fn len(&self) -> usize {
        self.st.lock().ready.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vb2 index of the buffer the next job gets (the oldest queued), if any
    /// (`v4l2_m2m_next_src_buf`).
    pub fn next(&self) -> Option<u32> {
        self.st.lock().ready.front().map(|vb| vb.index)
    }

    /// The vb2 indices of the buffers waiting, in the order jobs get them.
    pub fn indices(&self) -> Vec<u32> {
        self.st.lock().ready.iter().map(|vb| vb.index).collect()
    }

    /// Takes buffer `index` off the list for a job (`v4l2_m2m_buf_remove_by_idx`): it stays
    /// the driver's until [`finish`](Self::finish). `None` if it is not on the list.
    pub fn take(&self, index: u32) -> Option<DriverBuffer> {
        let mut st = self.st.lock();
        let at = st.ready.iter().position(|vb| vb.index == index)?;
        let vb = st.ready.remove(at)?;
        st.in_job.push(index);
        Some(vb)
    }

    /// The job holding buffer `index` ended: the buffer goes back to vb2 in `state`
    /// (`v4l2_m2m_buf_done`). `Ok(false)` if no job holds it (vb2 took it back since, at
    /// STREAMOFF or REQBUFS(0)).
    pub fn finish(&self, q: &Vb2Queue, index: u32, state: Vb2State) -> Result<bool, Vb2Error> {
        {
            let mut st = self.st.lock();
            let Some(at) = st.in_job.iter().position(|&i| i == index) else {
                return Ok(false);
            };
            st.in_job.swap_remove(at);
        }
        q.buffer_done(index, state)?;
        Ok(true)
    }
}

impl Vb2Ops for ReadyList {
    fn queue_setup(&self, _n: &mut u32, req: Option<&[u32]>) -> Result<Vec<u32>, Errno> {
        vb2::default_queue_setup(&self.sizes, req)
    }

    fn buf_queue(&self, _q: &Vb2Queue, vb: DriverBuffer) {
        self.st.lock().ready.push_back(vb);
    }

    fn stop_streaming(&self, q: &Vb2Queue) {
        let held: Vec<u32> = {
            let mut st = self.st.lock();
            let mut v: Vec<u32> = st.ready.drain(..).map(|vb| vb.index).collect();
            v.append(&mut st.in_job);
            v
        };
        for i in held {
            // Not ACTIVE any more only if vb2 reclaimed it already: nothing to do then.
            let _ = q.buffer_done(i, Vb2State::Error);
        }
    }
}

/// Reads a whole plane of a driver buffer through the device's DMA engine.
pub(crate) fn read_plane(
    dma: &DmaApi,
    vb: &DriverBuffer,
    len: usize,
) -> Result<Vec<u8>, MediaError> {
    let mut data = vec![0u8; len];
    vb.dma_read(dma, 0, 0, &mut data)?;
    Ok(data)
}

// ---- The user side: the ioctls a pipeline makes, as one-liners. ----

/// `VIDIOC_REQBUFS(count, memory)` on a single-planar queue; returns the count granted.
pub fn reqbufs(fh: &Vb2Fh, memory: u32, count: u32) -> Result<u32, MediaError> {
    let mut r = V4l2RequestBuffers {
        count,
        type_: fh.queue().config().buf_type.raw(),
        memory,
        ..Default::default()
    };
    fh.reqbufs(&mut r)?;
    Ok(r.count)
}

/// `VIDIOC_QBUF` of MMAP buffer `index`, with `bytesused` (0 for capture queues).
pub fn qbuf_mmap(fh: &Vb2Fh, index: u32, bytesused: u32) -> Result<(), MediaError> {
    let mut b = V4l2Buffer::new(fh.queue().config().buf_type.raw(), V4L2_MEMORY_MMAP, index);
    b.bytesused = bytesused;
    fh.qbuf(&mut b)?;
    Ok(())
}

/// `VIDIOC_QBUF` of DMABUF buffer `index` with dma-buf `fd` (of the queue owner's process) and
/// `bytesused` (0 for capture queues).
pub fn qbuf_dmabuf(fh: &Vb2Fh, index: u32, fd: i32, bytesused: u32) -> Result<(), MediaError> {
    let mut b = V4l2Buffer::new(
        fh.queue().config().buf_type.raw(),
        V4L2_MEMORY_DMABUF,
        index,
    );
    b.m_fd = fd;
    b.bytesused = bytesused;
    fh.qbuf(&mut b)?;
    Ok(())
}

/// Non-blocking `VIDIOC_DQBUF`: `Ok(None)` when nothing is done yet (`EAGAIN`).
pub fn dqbuf(fh: &Vb2Fh) -> Result<Option<V4l2Buffer>, MediaError> {
    let q = fh.queue();
    let memory = q
        .memory()
        .ok_or_else(|| MediaError::Invalid("DQBUF on a queue without buffers".into()))?;
    let mut b = V4l2Buffer::new(q.config().buf_type.raw(), memory.raw(), 0);
    match fh.dqbuf_timeout(&mut b, Some(Duration::ZERO)) {
        Ok(()) => Ok(Some(b)),
        Err(e) if e.errno() == Errno::EAGAIN => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `VIDIOC_EXPBUF` of plane 0 of buffer `index`: a dma-buf fd (O_RDWR | O_CLOEXEC) in the
/// file handle's process.
pub fn expbuf(fh: &Vb2Fh, index: u32) -> Result<i32, MediaError> {
    let mut eb = V4l2ExportBuffer {
        type_: fh.queue().config().buf_type.raw(),
        index,
        flags: uapi::ioctl::O_RDWR | uapi::ioctl::O_CLOEXEC,
        ..Default::default()
    };
    fh.expbuf(&mut eb)?;
    Ok(eb.fd)
}

/// A dma-buf of `len` bytes from heap `heap` ("system", "cma0", ...) as an fd of `process`:
/// `open("/dev/dma_heap/<heap>")` + `DMA_HEAP_IOCTL_ALLOC` + close.
pub fn heap_fd(process: &Process, heap: &str, len: u64) -> Result<i32, MediaError> {
    let h = process.open_heap(heap)?;
    let fd = process.heap_alloc(h, len, uapi::ioctl::O_RDWR | uapi::ioctl::O_CLOEXEC, 0);
    process.close(h)?;
    Ok(fd?)
}
