//! When a DMABUF plane is unmapped: seed 004's debate, as a queue option.
//!
//! C side: `videobuf2-core.c`, `__vb2_dqbuf` and `__vb2_queue_cancel`, before and after commit
//! 2cc1802f62e5 ("media: vb2: Keep dma-buf buffers mapped until they are freed", about v5.1).
//!
//! In June 2012 Dima Zavin found that STREAMOFF followed by QBUF hit "dmabuf already pinned": the
//! cancel path never unmapped, and the next prepare mapped the attachment a second time. PATCHv9
//! unmapped in both DQBUF and cancel, keeping the attachment; every QBUF then mapped again. In
//! 2019 that per-frame remap (and decoders that read dequeued reference frames) led mainline to
//! keep the mapping until the dma-buf changes or the buffer is freed.
//!
//! Both policies are correct (no double map, no leak); they differ in cost, which the counters
//! ([`Counters`](crate::Counters)) show: under [`MapPolicy::UnmapOnDequeue`] every QBUF of a
//! dequeued buffer costs one map per plane.

/// When vb2 unmaps the DMABUF planes it imported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MapPolicy {
    /// Mainline since about v5.1 (the default): planes stay attached **and mapped** across
    /// DQBUF and STREAMOFF; they are unmapped only when released (the dma-buf or length changes,
    /// a prepare fails, REQBUFS, REMOVE_BUFS, close).
    #[default]
    KeepMapped,
    /// v3.8 to about v5.0: DQBUF and STREAMOFF unmap the planes but keep the attachment; the next
    /// QBUF maps again.
    UnmapOnDequeue,
}
