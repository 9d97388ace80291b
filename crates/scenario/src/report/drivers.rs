//! The report's per-driver sections: `vb2_queues`, `gpus`, `displays`, `swapchains` and
//! `encoders` (the schema table is in [`super::model`]).
//!
//! Each struct is what one driver object counted over the run, copied out once the run ended;
//! they are plain data with no locking or lifetime of their own.

use serde::{Deserialize, Serialize};

/// One consumer's vb2 queue: what its map policy cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vb2QueueReport {
    /// The consumer node.
    pub node: String,
    /// The link it reads.
    pub link: String,
    /// The V4L2 memory type its buffers use: `"dmabuf"`, `"mmap"` or `"userptr"`.
    #[serde(default)]
    pub memory: String,
    /// The queue's direction: `"output"` (the device reads) or `"capture"` (it writes).
    #[serde(default, rename = "type")]
    pub queue_type: String,
    /// `keep_mapped` or `unmap_on_dequeue`.
    pub map_policy: String,
    /// Plane maps vb2 made: DMABUF `dma_buf_map_attachment`s, and USERPTR pins (`get_userptr`:
    /// pinned and mapped for the device, again only when the pointer or length changes).
    pub maps: u64,
    /// DMABUF plane unmaps and USERPTR unpins (`put_userptr`).
    pub unmaps: u64,
    /// DMABUF plane attaches.
    pub attaches: u64,
    /// QBUFs.
    pub qbufs: u64,
    /// STREAMOFFs (events, detaches and migration cycles).
    pub streamoffs: u64,
    /// STREAMOFF + REQBUFS(0) cycles the runner made so that a migration could drain.
    pub requeue_cycles: u64,
}

/// One GPU driver's memory manager over the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuReport {
    /// The GPU's device.
    pub device: String,
    /// Whether its exporter hands out VRAM to peer-to-peer importers (the node's `p2p`).
    pub p2p: bool,
    /// Objects evicted (VRAM to GTT or SYSTEM).
    pub evictions: u64,
    /// Bytes evicted.
    pub evicted_bytes: u64,
    /// Moves done (evictions, validations back to VRAM, moves for importers).
    pub moves: u64,
    /// Bytes copied by moves.
    pub moved_bytes: u64,
    /// `move_notify` calls the dynamic importers of its buffers got.
    pub move_notifies: u64,
}

/// One display node driven through KMS (`run::kms`): the display driver's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayReport {
    /// The node.
    pub node: String,
    /// Its device.
    pub device: String,
    /// Framebuffers created (`ADDFB2`, once per buffer).
    pub framebuffers: u64,
    /// Framebuffers removed (`RMFB`).
    pub removed: u64,
    /// Page flips committed.
    pub flips: u64,
    /// Frames latched and scanned out.
    pub shown: u64,
    /// Scanned-out frames the display driver verified (`Display::scanned`: the frame and
    /// checksum its flip expected).
    pub verified: u64,
    /// Scanned-out frames the display driver found wrong (or whose scanout failed).
    pub corrupted: u64,
}

/// One gpu->display swapchain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapchainReport {
    /// The link.
    pub link: String,
    /// `"dri2"` (the display side allocates) or `"wayland"` (the client's GPU does).
    pub mode: String,
    /// The process whose fds the buffers were allocated as (the display's for dri2, the GPU's
    /// for wayland); the other end gets them with `send_fd`.
    pub allocated_by: String,
    /// Buffers the chain may grow to (the link's `buffers`).
    pub buffers: u32,
    /// Buffers it starts with and never shrinks below.
    pub min: u32,
    /// The most buffers it had at once.
    pub max: u32,
    /// Buffers allocated because the GPU found none free.
    pub grown: u64,
    /// Buffers freed after staying idle.
    pub shrunk: u64,
    /// The bound (`max_in_flight`), if any.
    pub max_in_flight: Option<u32>,
    /// The most buffers in flight at once (written, or waiting for the display).
    pub max_seen: u32,
    /// Times the GPU's next job was held back because the bound was reached (once per
    /// scheduling pass that found it so).
    pub waits: u64,
}

/// One encoder node: what its codec made of the frames it took.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderReport {
    /// The node.
    pub node: String,
    /// Its codec (`"checksum"`, `"rle"`).
    pub codec: String,
    /// Frames it encoded (jobs that ran to the end).
    pub frames: u64,
    /// Bitstream bytes it wrote by DMA into its own buffer (0 for `checksum`).
    pub bitstream_bytes: u64,
    /// Checksum of every frame's bitstream, folded in frame order (0 for `checksum`).
    pub bitstream_checksum: u64,
    /// Frames encoded while a drain (`V4L2_ENC_CMD_STOP`) was under way: queued before the
    /// command, encoded instead of thrown away by a STREAMOFF.
    #[serde(default)]
    pub drained: u64,
    /// Drains that ended: the `V4L2_BUF_FLAG_LAST` buffer dequeued (then DQBUF `EPIPE`), or
    /// the last job of an encoder without a CAPTURE queue.
    #[serde(default)]
    pub drains: u64,
}
