//! videobuf2: the V4L2 buffer queue, over the simulated SoC.
//!
//! C side: `drivers/media/common/videobuf2/videobuf2-core.c`, `videobuf2-v4l2.c`,
//! `videobuf2-dma-contig.c`, `videobuf2-dma-sg.c`; C header: `include/media/videobuf2-core.h`,
//! `include/uapi/linux/videodev2.h`.
//!
//! # The concept
//! A V4L2 device moves frames through a *queue* of buffers that user space and the driver hand
//! back and forth: the application queues an empty buffer (QBUF), the driver fills it by DMA and
//! completes it (`vb2_buffer_done`), the application dequeues it (DQBUF), reads it, and queues it
//! again. vb2 is the part of the kernel that owns this queue: it allocates or imports the memory
//! (MMAP, USERPTR, DMABUF), maps it for the device, keeps the CPU caches honest around each
//! hand-over, and enforces the ioctl rules with the errnos applications rely on.
//!
//! A [`Vb2Queue`] is built by a driver with a [`Vb2QueueConfig`] (buffer type, memory types,
//! device, allocator, `min_queued_buffers`, `max_num_buffers`, cache hints, [`MapPolicy`]) and
//! its [`Vb2Ops`] callbacks. User space opens it ([`Vb2Queue::open`]) and calls the ioctls on the
//! file handle ([`Vb2Fh`]), with the UAPI structures of [`ioctl`].
//!
//! # The buffer state machine (`enum vb2_buffer_state`)
//! 1. REQBUFS(n>0) frees every buffer (after a cancel) and creates n' DEQUEUED buffers, not
//!    prepared; MMAP memory is allocated and `buf_init` called. REQBUFS(0) frees and releases
//!    the queue's ownership. CREATE_BUFS appends DEQUEUED buffers.
//! 2. PREPARE_BUF: DEQUEUED and not prepared -> PREPARING -> DEQUEUED with the PREPARED flag.
//!    The memory work (pin, attach, map, cache "prepare") and `buf_prepare` run here.
//! 3. QBUF: DEQUEUED -> (prepared if needed) -> QUEUED; if the driver is streaming it goes on to
//!    ACTIVE and `buf_queue`. If the queue is streaming, not started, and `queued_count` reaches
//!    `min_queued_buffers`, `start_streaming` runs: every QUEUED buffer becomes ACTIVE.
//! 4. STREAMON with enough queued buffers: QUEUED -> ACTIVE (`buf_queue` each), then
//!    `start_streaming(count)`. A start that fails must hand every buffer back with
//!    `buffer_done(QUEUED)`; they return to QUEUED (vb2 reclaims, with a warning, any it does
//!    not).
//! 5. `buffer_done(DONE|ERROR)`: only from ACTIVE; the cache "finish" runs, the buffer goes on
//!    the done list (FIFO) and a blocked DQBUF wakes.
//! 6. DQBUF: head of the done list -> DEQUEUED; `buf_finish`; PREPARED and DONE are cleared.
//! 7. STREAMOFF (cancel): `stop_streaming` if started; buffers the driver still holds are forced
//!    to ERROR (a warning); the queued and done lists are emptied; every buffer gets its cache
//!    "finish" if synced and `buf_finish` if prepared, and becomes DEQUEUED. Memory,
//!    attachments and (by default) mappings are **kept**.
//! 8. `queue_error()`: no state changes; QBUF/DQBUF answer `EIO` and poll `EPOLLERR` until
//!    STREAMOFF, REQBUFS or close clears it.
//! 9. close() by the owner: cancel, then free everything (as REQBUFS(0)).
//!
//! The DMABUF plane lifecycle is written as numbered rules in [`mem_dmabuf`], the cache rules
//! in [`cache`], MMAP memory and EXPBUF in [`mem_mmap`], USERPTR in [`mem_userptr`].
//!
//! # Locking
//! 1. `ioctl_lock` (the video device's `q->lock`) serialises the ioctls of all file handles; a
//!    blocking DQBUF releases it while it sleeps (`wait_prepare`/`wait_finish`).
//! 2. `state` (`done_lock` and the rest) is a leaf mutex: taken after `ioctl_lock`, never held
//!    while calling `buf_queue`, `start_streaming` or `stop_streaming`, so a driver may complete
//!    buffers from inside them or from its own thread ([`Vb2Queue::buffer_done`] takes only
//!    `state`).
//! 3. `buf_init`, `buf_prepare`, `buf_finish` and `buf_cleanup` run with `state` held: they must
//!    not call back into the queue.
//!
//! # Tutorial: capture into MMAP buffers
//! ```
//! use std::sync::Arc;
//! use vb2::{ioctl::*, BufType, DriverBuffer, Vb2Ops, Vb2Queue, Vb2QueueConfig, Vb2State};
//!
//! /// A driver that fills every buffer with 0xab as soon as it gets it.
//! struct Fill(Arc<dma::DmaApi>);
//! impl Vb2Ops for Fill {
//!     fn queue_setup(&self, _n: &mut u32, req: Option<&[u32]>) -> Result<Vec<u32>, uapi::Errno> {
//!         vb2::default_queue_setup(&[4096], req)
//!     }
//!     fn buf_queue(&self, q: &Vb2Queue, vb: DriverBuffer) {
//!         vb.dma_write(&self.0, 0, 0, &[0xab; 4096]).unwrap();
//!         q.set_plane_payload(vb.index, 0, 4096).unwrap();
//!         q.buffer_done(vb.index, Vb2State::Done).unwrap();
//!     }
//! }
//!
//! let kernel = kernel::Kernel::boot(soc::SocDesc::default_soc())?;
//! let dma = kernel.dma().clone();
//! let cfg = Vb2QueueConfig::new(BufType::VideoCapture, dma.device("isp0")?);
//! let q = Vb2Queue::new(&dma, cfg, Arc::new(Fill(dma.clone())));
//! let fh = q.open(&kernel.spawn());
//!
//! let mut req = V4l2RequestBuffers { count: 2, type_: V4L2_BUF_TYPE_VIDEO_CAPTURE,
//!                                    memory: V4L2_MEMORY_MMAP, ..Default::default() };
//! fh.reqbufs(&mut req)?;
//! let map = fh.mmap(mmap_cookie(0, 0), 4096, uapi::ioctl::PROT_READ, true)?;
//! let mut b = V4l2Buffer::new(V4L2_BUF_TYPE_VIDEO_CAPTURE, V4L2_MEMORY_MMAP, 0);
//! fh.qbuf(&mut b)?;
//! fh.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE)?;
//! fh.dqbuf(&mut b)?;
//! let mut got = [0u8; 4];
//! map.read(0, &mut got)?;
//! assert_eq!((b.bytesused, got), (4096, [0xab; 4]));
//! fh.close();
//! q.counters().snapshot().check_balanced()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod buffer;
pub mod cache;
pub mod counters;
mod fh;
pub mod ioctl;
pub mod mem_dmabuf;
pub mod mem_mmap;
pub mod mem_userptr;
pub mod policy;
mod prepare;
mod qbuf;
pub mod queue;
mod remap;
mod reqbufs;
mod streaming;
pub mod userptr;

pub use buffer::{BufType, DriverBuffer, DriverPlane, Memory, Vb2State};
pub use counters::{CounterSnapshot, Counters};
pub use mem_mmap::{MmapMem, Vb2Exporter, Vb2Mapping};
pub use policy::MapPolicy;
pub use queue::{default_queue_setup, Allocator, Vb2Fh, Vb2Ops, Vb2Queue, Vb2QueueConfig};
pub use userptr::{PinnedUserPages, UserMemory};

use uapi::{AsErrno, Errno};

/// A failed vb2 call: the errno Linux returns, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{errno:?}: {msg}")]
pub struct Vb2Error {
    errno: Errno,
    msg: String,
}

impl Vb2Error {
    /// An error with `errno` and a message.
    pub fn new(errno: Errno, msg: impl Into<String>) -> Vb2Error {
        Vb2Error {
            errno,
            msg: msg.into(),
        }
    }

    /// The errno.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.msg
    }
}

impl AsErrno for Vb2Error {
    fn errno(&self) -> Errno {
        self.errno
    }
}

impl From<Vb2Error> for Errno {
    fn from(e: Vb2Error) -> Errno {
        e.errno
    }
}

impl From<Errno> for Vb2Error {
    fn from(errno: Errno) -> Vb2Error {
        Vb2Error::new(errno, errno.description())
    }
}

macro_rules! from_lower {
    ($($t:ty),*) => {$(
        impl From<$t> for Vb2Error {
            fn from(e: $t) -> Vb2Error {
                Vb2Error::new(e.errno(), e.to_string())
            }
        }
    )*};
}
from_lower!(soc::SocError, dma::DmaError, dmabuf::DmaBufError);
