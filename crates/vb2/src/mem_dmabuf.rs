//! DMABUF memory: dma-bufs imported per plane.
//!
//! C side: `videobuf2-core.c` (`__prepare_dmabuf`, `__vb2_plane_dmabuf_put`),
//! `videobuf2-dma-contig.c` (`vb2_dc_attach_dmabuf`, `vb2_dc_map_dmabuf`,
//! `vb2_dc_unmap_dmabuf`, `vb2_dc_detach_dmabuf`).
//!
//! # The DMABUF plane lifecycle (current mainline, before v6.12)
//! At QBUF/PREPARE_BUF ([`Vb2Queue`](crate::Vb2Queue)'s prepare):
//! 1. Each plane's fd is looked up in the calling process (`dma_buf_get`); a bad fd, or an fd
//!    that is not a dma-buf, is `EINVAL`.
//! 2. A `length` of 0 means the dma-buf's size.
//! 3. A length below the plane's `min_length` is `EINVAL`.
//! 4. The **same dma-buf** (compared as an object, so a dup of the fd is the same) with the same
//!    length keeps its attachment and mapping; the extra reference is dropped.
//! 5. Otherwise the driver's `buf_cleanup` runs once for the buffer, the old plane is released
//!    (unmap if mapped, detach, put), and the new dma-buf is attached; a dma-buf smaller than the
//!    length is `EFAULT` (as dma-contig's and dma-sg's attach).
//! 6. Every plane not mapped yet is mapped for the queue's direction; a dma-contig queue needs
//!    the mapping DMA-contiguous (`EFAULT` otherwise).
//! 7. `buf_init` runs if planes were reacquired, then `buf_prepare`.
//! 8. **Any error releases every plane of the buffer**, unchanged ones included.
//!
//! At DQBUF and STREAMOFF nothing happens under [`MapPolicy::KeepMapped`](crate::MapPolicy);
//! under `UnmapOnDequeue` the planes are unmapped and stay attached. Release (unmap, detach, put)
//! happens only at a change, a failed prepare, REQBUFS, REMOVE_BUFS or close.
//!
//! vb2 never does cache maintenance on imported memory: the exporter owns coherency (its `map`
//! and `begin/end_cpu_access`).

use crate::counters::Counters;
use crate::Vb2Error;
use dma::{DmaDirection, DmaSegment};
use dmabuf::{Attachment, DmaBuf, MappedSgTable};
use soc::Device;
use std::sync::Arc;
use uapi::{AsErrno, Errno};

/// One imported plane: the dma-buf reference, the attachment, and the mapping if mapped.
pub(crate) struct DmabufPlane {
    pub(crate) dbuf: DmaBuf,
    att: Option<Attachment>,
    mapped: Option<MappedSgTable>,
    pub(crate) length: u32,
}

impl DmabufPlane {
    /// `attach_dmabuf` (rule 5).
    pub(crate) fn attach(
        dbuf: DmaBuf,
        dev: &Arc<Device>,
        importer_priv: Option<dmabuf::ImporterPriv>,
        length: u32,
        counters: &Counters,
    ) -> Result<DmabufPlane, Vb2Error> {
        if dbuf.size() < u64::from(length) {
            return Err(Vb2Error::new(
                Errno::EFAULT,
                format!(
                    "dma-buf of {:#x} bytes is smaller than the plane length {length:#x}",
                    dbuf.size()
                ),
            ));
        }
        let params = dmabuf::AttachParams {
            importer_ops: None,
            importer_priv,
        };
        let att = dbuf
            .attach_with(dev, params)
            .map_err(|e| Vb2Error::new(e.errno(), format!("attach: {e}")))?;
        Counters::inc(&counters.attach);
        Ok(DmabufPlane {
            dbuf,
            att: Some(att),
            mapped: None,
            length,
        })
    }

    /// Whether the attachment is mapped.
    pub(crate) fn is_mapped(&self) -> bool {
        self.mapped.is_some()
    }

    /// `map_dmabuf` (rule 6).
    pub(crate) fn map(
        &mut self,
        dir: DmaDirection,
        contiguous: bool,
        counters: &Counters,
    ) -> Result<(), Vb2Error> {
        let Some(att) = &self.att else {
            return Err(Vb2Error::new(Errno::EINVAL, "map of a detached plane"));
        };
        if self.mapped.is_some() {
            // The "dmabuf already pinned" WARN of 2012: never map twice.
            Counters::inc(&counters.warnings);
            return Ok(());
        }
        let sgt = att
            .map_unlocked(dir)
            .map_err(|e| Vb2Error::new(e.errno(), format!("map: {e}")))?;
        Counters::inc(&counters.map);
        let contiguous_len = sgt.dma_segments().first().map_or(0, |first| {
            let mut len = first.len;
            for w in sgt.dma_segments().windows(2) {
                if w[0].addr.0 + w[0].len != w[1].addr.0 {
                    break;
                }
                len += w[1].len;
            }
            len
        });
        self.mapped = Some(sgt);
        if contiguous && contiguous_len < u64::from(self.length) {
            self.unmap(counters);
            return Err(Vb2Error::new(
                Errno::EFAULT,
                format!(
                    "contiguous mapping of {contiguous_len:#x} bytes is smaller than the plane ({:#x})",
                    self.length
                ),
            ));
        }
        Ok(())
    }

    /// `unmap_dmabuf`, if mapped.
    pub(crate) fn unmap(&mut self, counters: &Counters) {
        if let (Some(att), Some(sgt)) = (&self.att, self.mapped.take()) {
            // An unmap refused by the DMA API was reported to its checker.
            let _ = att.unmap_unlocked(sgt);
            Counters::inc(&counters.unmap);
        }
    }

    /// `__vb2_plane_dmabuf_put`: unmap if mapped, detach, drop the reference.
    pub(crate) fn release(mut self, counters: &Counters) {
        self.unmap(counters);
        if let Some(att) = self.att.take() {
            let _ = self.dbuf.detach(att);
            Counters::inc(&counters.detach);
        }
    }

    pub(crate) fn segments(&self) -> Vec<DmaSegment> {
        self.mapped
            .as_ref()
            .map(|s| s.dma_segments().to_vec())
            .unwrap_or_default()
    }
}

impl Drop for DmabufPlane {
    fn drop(&mut self) {
        // Released planes have nothing left; a plane dropped without `release` (a panic path)
        // still gives its mapping back rather than leak it.
        if let (Some(att), Some(sgt)) = (&self.att, self.mapped.take()) {
            let _ = att.unmap_unlocked(sgt);
        }
    }
}

/// The error of a bad DMABUF fd (rule 1).
pub(crate) fn bad_fd(fd: i32, e: &dyn AsErrno) -> Vb2Error {
    Vb2Error::new(
        Errno::EINVAL,
        format!("invalid dmabuf fd {fd} ({:?})", e.errno()),
    )
}
