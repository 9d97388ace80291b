//! A driver re-mapping the imported planes of a buffer it owns, for a direction it chooses.
//!
//! C side: what a driver does when it calls `dma_buf_unmap_attachment` and
//! `dma_buf_map_attachment` on a plane's attachment itself (`vb2_dma_contig_plane_dma_addr`'s
//! buffer, `buf->db_attach`), bypassing `q->dma_dir` — or what an m2m driver whose source and
//! destination queue types are swapped gets from vb2 at prepare. Either way the device's only
//! live mapping of the plane has the other `enum dma_data_direction`: CONFIG_DMA_API_DEBUG then
//! reports each device access against it, and the cache maintenance done at map/unmap is the
//! wrong one for a non-coherent device. The runner's `wrong_direction` fault uses it (module
//! `scenario::run::faults`), and gives the right mapping back the same way.
//!
//! # Rules
//! 1. Only a buffer the driver owns (`Active`) and only DMABUF memory; other memory is `EINVAL`
//!    (vb2's own MMAP/USERPTR mappings are not the importer's to redo).
//! 2. Each mapped plane is re-imported: released (unmap, detach, put) and attached again to
//!    the same dma-buf, then mapped for `dir` (counted as vb2's own). A plain unmap would not
//!    do: an exporter that caches its mappings (`dmabuf::map_cache`) keeps the old direction's
//!    mapping live until the attachment detaches, and the device would still reach the buffer
//!    through it. A dma-contig queue still needs the new mapping contiguous (`EFAULT`).
//! 3. The new DMA segments per plane are returned: the driver programs its engine with them.
//! 4. On an error the plane is left released, as a failed prepare leaves it (rule 8 of
//!    `mem_dmabuf`): the next QBUF imports it again.
//!
//! Locking: takes the queue's state lock, not the ioctl lock (a driver's context).

use crate::buffer::{PlaneMem, Vb2State};
use crate::mem_dmabuf::DmabufPlane;
use crate::queue::{einval, Vb2Queue};
use crate::Vb2Error;
use dma::{DmaDirection, DmaSegment};

impl Vb2Queue {
    /// Re-maps every mapped DMABUF plane of buffer `index`, which the driver owns, for `dir`
    /// (module rules); returns each plane's new DMA segments.
    ///
    /// Errors: `EINVAL` for no such buffer, a buffer the driver does not own or memory that
    /// is not DMABUF; the exporter's map errors; `EFAULT` for a non-contiguous mapping on a
    /// dma-contig queue.
    pub fn remap_dmabuf(
        &self,
        index: u32,
        dir: DmaDirection,
    ) -> Result<Vec<Vec<DmaSegment>>, Vb2Error> {
        let contiguous = self.contiguous();
        let mut st = self.state.lock();
        let vb = st
            .bufs
            .get_mut(&index)
            .ok_or_else(|| einval(format!("no buffer {index}")))?;
        if vb.state != Vb2State::Active {
            return Err(einval(format!(
                "buffer {index} is {:?}, not owned by the driver",
                vb.state
            )));
        }
        let importer_priv = self.importer_priv.lock().clone();
        let mut segs = Vec::new();
        for p in &mut vb.planes {
            let PlaneMem::Dmabuf(d) = &p.mem else {
                return Err(einval(format!(
                    "buffer {index} is not DMABUF memory: not the importer's to re-map"
                )));
            };
            if !d.is_mapped() {
                segs.push(Vec::new());
                continue;
            }
            let (dbuf, length) = (d.dbuf.clone(), d.length);
            self.release_plane(&mut p.mem);
            let mut d = DmabufPlane::attach(
                dbuf,
                &self.cfg.device,
                importer_priv.clone(),
                length,
                &self.counters,
            )?;
            if let Err(e) = d.map(dir, contiguous, &self.counters) {
                d.release(&self.counters);
                return Err(e);
            }
            segs.push(d.segments());
            p.mem = PlaneMem::Dmabuf(d);
        }
        Ok(segs)
    }
}
