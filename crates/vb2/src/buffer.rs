//! One vb2 buffer: its state, flags and planes (`struct vb2_buffer`, `struct vb2_plane`), and
//! the view of it a driver gets ([`DriverBuffer`]).
//!
//! C header: `include/media/videobuf2-core.h`.
//!
//! The state machine itself is written down in the crate documentation; this module holds the
//! data it moves. "Prepared" is a flag, not a state (`vb->prepared`), and so is "synced" (the
//! memory "prepare" cache op ran and "finish" is owed).

use crate::ioctl::{
    V4L2_BUF_TYPE_VIDEO_CAPTURE, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, V4L2_BUF_TYPE_VIDEO_OUTPUT,
    V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE, V4L2_MEMORY_DMABUF, V4L2_MEMORY_MMAP, V4L2_MEMORY_USERPTR,
};
use crate::mem_dmabuf::DmabufPlane;
use crate::mem_mmap::MmapMem;
use crate::mem_userptr::UserptrPlane;
use crate::Vb2Error;
use dma::{DmaApi, DmaDirection, DmaSegment};
use soc::Device;
use std::sync::Arc;
use uapi::Errno;

/// `enum v4l2_buf_type`, the four video types vb2 queues carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BufType {
    /// `V4L2_BUF_TYPE_VIDEO_CAPTURE`.
    VideoCapture,
    /// `V4L2_BUF_TYPE_VIDEO_OUTPUT`.
    VideoOutput,
    /// `V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE`.
    VideoCaptureMplane,
    /// `V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE`.
    VideoOutputMplane,
}

impl BufType {
    /// The raw value.
    pub fn raw(self) -> u32 {
        match self {
            BufType::VideoCapture => V4L2_BUF_TYPE_VIDEO_CAPTURE,
            BufType::VideoOutput => V4L2_BUF_TYPE_VIDEO_OUTPUT,
            BufType::VideoCaptureMplane => V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
            BufType::VideoOutputMplane => V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
        }
    }

    /// `V4L2_TYPE_IS_OUTPUT`.
    pub fn is_output(self) -> bool {
        matches!(self, BufType::VideoOutput | BufType::VideoOutputMplane)
    }

    /// `V4L2_TYPE_IS_MULTIPLANAR`.
    pub fn is_multiplanar(self) -> bool {
        matches!(
            self,
            BufType::VideoCaptureMplane | BufType::VideoOutputMplane
        )
    }

    /// `q->dma_dir`: output queues are read by the device, capture queues written.
    pub fn dma_dir(self) -> DmaDirection {
        if self.is_output() {
            DmaDirection::ToDevice
        } else {
            DmaDirection::FromDevice
        }
    }
}

/// `enum vb2_memory`: where the plane memory comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Memory {
    /// vb2 allocates it; user space mmaps it or exports it (EXPBUF).
    Mmap,
    /// Pages of the application's memory, pinned at QBUF.
    Userptr,
    /// Imported dma-bufs, attached and mapped at QBUF.
    Dmabuf,
}

impl Memory {
    /// The raw `V4L2_MEMORY_*` value.
    pub fn raw(self) -> u32 {
        match self {
            Memory::Mmap => V4L2_MEMORY_MMAP,
            Memory::Userptr => V4L2_MEMORY_USERPTR,
            Memory::Dmabuf => V4L2_MEMORY_DMABUF,
        }
    }

    /// The memory type of a raw value; anything else (OVERLAY included) is `None`.
    pub fn from_raw(raw: u32) -> Option<Memory> {
        match raw {
            V4L2_MEMORY_MMAP => Some(Memory::Mmap),
            V4L2_MEMORY_USERPTR => Some(Memory::Userptr),
            V4L2_MEMORY_DMABUF => Some(Memory::Dmabuf),
            _ => None,
        }
    }
}

/// `enum vb2_buffer_state` (crate doc, "The buffer state machine").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vb2State {
    /// Owned by user space (after REQBUFS, DQBUF, STREAMOFF).
    Dequeued,
    /// Bound to a request (not reachable: requests are not modelled).
    InRequest,
    /// Being prepared by PREPARE_BUF or QBUF.
    Preparing,
    /// Queued in vb2, not yet handed to the driver.
    Queued,
    /// Owned by the driver (`buf_queue` was called).
    Active,
    /// The driver completed it; on the done list.
    Done,
    /// The driver completed it with an error; on the done list.
    Error,
}

/// A plane's memory, per memory type (`vb->planes[p].mem_priv` and friends).
pub(crate) enum PlaneMem {
    /// No memory yet (USERPTR/DMABUF before the first QBUF, or after a release).
    None,
    /// vb2-allocated memory; shared with mmaps and exported dma-bufs.
    Mmap(Arc<MmapMem>),
    /// Pinned user pages.
    Userptr(UserptrPlane),
    /// An imported dma-buf.
    Dmabuf(DmabufPlane),
}

/// `struct vb2_plane`.
pub(crate) struct Plane {
    pub(crate) mem: PlaneMem,
    /// Size of the plane memory (DMABUF/USERPTR: what user space gave).
    pub(crate) length: u32,
    /// The smallest acceptable length (`min_length`, from `queue_setup`).
    pub(crate) min_length: u32,
    pub(crate) bytesused: u32,
    pub(crate) data_offset: u32,
    pub(crate) m_fd: i32,
    pub(crate) m_userptr: u64,
}

impl Plane {
    pub(crate) fn new(size: u32) -> Plane {
        Plane {
            mem: PlaneMem::None,
            length: size,
            min_length: size,
            bytesused: 0,
            data_offset: 0,
            m_fd: 0,
            m_userptr: 0,
        }
    }

    /// The DMA segments of the plane for the queue's device, if it has mapped memory.
    pub(crate) fn segments(&self) -> Vec<DmaSegment> {
        match &self.mem {
            PlaneMem::None => Vec::new(),
            PlaneMem::Mmap(m) => m.segments(),
            PlaneMem::Userptr(u) => u.segments(),
            PlaneMem::Dmabuf(d) => d.segments(),
        }
    }

    /// `num_users > 1`: an mmap or an exported dma-buf shares the memory (MMAP only).
    pub(crate) fn in_use(&self) -> bool {
        matches!(&self.mem, PlaneMem::Mmap(m) if Arc::strong_count(m) > 1)
    }
}

/// `struct vb2_buffer` (+ `vb2_v4l2_buffer`).
pub(crate) struct Vb2Buffer {
    pub(crate) index: u32,
    pub(crate) state: Vb2State,
    pub(crate) prepared: bool,
    /// The memory "prepare" ran; "finish" is owed.
    pub(crate) synced: bool,
    /// `buf_init` ran and `buf_cleanup` is owed.
    pub(crate) inited: bool,
    pub(crate) skip_cache_sync_on_prepare: bool,
    pub(crate) skip_cache_sync_on_finish: bool,
    /// User-visible flags kept with the buffer (hints, LAST, KEYFRAME...); state flags are
    /// computed when the buffer is reported.
    pub(crate) flags: u32,
    pub(crate) field: u32,
    pub(crate) sequence: u32,
    pub(crate) timestamp_ns: u64,
    pub(crate) planes: Vec<Plane>,
}

impl Vb2Buffer {
    pub(crate) fn new(index: u32, sizes: &[u32]) -> Vb2Buffer {
        Vb2Buffer {
            index,
            state: Vb2State::Dequeued,
            prepared: false,
            synced: false,
            inited: false,
            skip_cache_sync_on_prepare: false,
            skip_cache_sync_on_finish: false,
            flags: 0,
            field: 0,
            sequence: 0,
            timestamp_ns: 0,
            planes: sizes.iter().map(|&s| Plane::new(s)).collect(),
        }
    }

    /// What the driver sees of this buffer.
    pub(crate) fn driver_view(&self, dev: &Arc<Device>) -> DriverBuffer {
        DriverBuffer {
            index: self.index,
            device: dev.clone(),
            planes: self
                .planes
                .iter()
                .map(|p| DriverPlane {
                    segments: p.segments(),
                    length: p.length,
                    bytesused: p.bytesused,
                    data_offset: p.data_offset,
                })
                .collect(),
        }
    }
}

/// One plane as the driver sees it: DMA segments for the queue's device and the sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverPlane {
    /// DMA segments, in plane order (`vb2_dma_contig_plane_dma_addr` is `segments[0].addr`).
    pub segments: Vec<DmaSegment>,
    /// Plane length: the device may touch `[0, length)` and nothing else.
    pub length: u32,
    /// Bytes of data (output buffers: what the application queued).
    pub bytesused: u32,
    /// Offset of the data (output mplane).
    pub data_offset: u32,
}

/// A buffer handed to the driver (`buf_queue`, `buf_prepare`, ...): its index, the device, and
/// per plane the DMA segments to program into the engine.
///
/// The helpers [`dma_write`](Self::dma_write) and [`dma_read`](Self::dma_read) move bytes through
/// the device's DMA engine and refuse any access outside `[0, length)` of the plane with
/// `EFAULT`: the overrun a real engine would make silently (v4l2-compliance's guard-page check).
#[derive(Clone, Debug)]
pub struct DriverBuffer {
    /// `vb->index`.
    pub index: u32,
    /// The queue's device.
    pub device: Arc<Device>,
    /// The planes.
    pub planes: Vec<DriverPlane>,
}

impl DriverBuffer {
    fn each_piece(
        &self,
        plane: usize,
        offset: u64,
        len: u64,
        mut f: impl FnMut(soc::DmaAddr, usize, usize) -> Result<(), Vb2Error>,
    ) -> Result<(), Vb2Error> {
        let p = self
            .planes
            .get(plane)
            .ok_or_else(|| Vb2Error::new(Errno::EINVAL, format!("no plane {plane}")))?;
        let end = offset.checked_add(len);
        if end.is_none_or(|e| e > u64::from(p.length)) {
            return Err(Vb2Error::new(
                Errno::EFAULT,
                format!(
                    "DMA of {offset:#x}+{len:#x} outside plane {plane} of buffer {} (length {:#x})",
                    self.index, p.length
                ),
            ));
        }
        let mut seg_start = 0u64;
        let mut done = 0u64;
        for s in &p.segments {
            let seg_end = seg_start + s.len;
            let pos = offset + done;
            if done < len && pos < seg_end && pos >= seg_start {
                let n = (seg_end - pos).min(len - done);
                f(s.addr.add(pos - seg_start), done as usize, n as usize)?;
                done += n;
            }
            seg_start = seg_end;
        }
        if done < len {
            return Err(Vb2Error::new(
                Errno::EFAULT,
                format!(
                    "plane {plane} of buffer {} has no DMA mapping there",
                    self.index
                ),
            ));
        }
        Ok(())
    }

    /// The device writes `data` at `offset` of `plane`, through its DMA engine.
    ///
    /// Errors: `EFAULT` outside the plane or where nothing is mapped; the DMA API's errors (an
    /// IOMMU fault) otherwise.
    pub fn dma_write(
        &self,
        dma: &DmaApi,
        plane: usize,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Vb2Error> {
        self.each_piece(plane, offset, data.len() as u64, |addr, at, n| {
            dma.device_write(&self.device, addr, &data[at..at + n])
                .map_err(Vb2Error::from)
        })
    }

    /// The device reads `buf.len()` bytes at `offset` of `plane`, through its DMA engine.
    pub fn dma_read(
        &self,
        dma: &DmaApi,
        plane: usize,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), Vb2Error> {
        let mut pieces = Vec::new();
        self.each_piece(plane, offset, buf.len() as u64, |addr, at, n| {
            pieces.push((addr, at, n));
            Ok(())
        })?;
        for (addr, at, n) in pieces {
            dma.device_read(&self.device, addr, &mut buf[at..at + n])?;
        }
        Ok(())
    }
}
