//! USERPTR memory: the application's pages, pinned and mapped for the queue's device at
//! QBUF/PREPARE_BUF.
//!
//! C side: `videobuf2-dma-contig.c` / `videobuf2-dma-sg.c` (`get_userptr`, `put_userptr`,
//! `prepare`, `finish`), `videobuf2-core.c` (`__prepare_userptr`).
//!
//! # Rules
//! 1. QBUF with the same pointer and length as last time reuses the pinned, mapped pages.
//! 2. Otherwise the old pages are unmapped and unpinned (`buf_cleanup` once before), the new
//!    range is pinned ([`UserMemory::pin_user_pages`]: `EFAULT` for a pointer outside the
//!    application's memory) and mapped; `buf_init` follows.
//! 3. A length below the plane's `min_length` is `EINVAL`; a dma-contig queue needs the range
//!    DMA-contiguous after mapping (`EFAULT` otherwise).
//! 4. Any failure releases every plane of the buffer.
//! 5. User memory is cacheable: "prepare" syncs for the device and "finish" for the CPU, always
//!    (cache hints act only on MMAP queues).

use crate::userptr::{PinnedUserPages, UserMemory};
use crate::Vb2Error;
use dma::{DmaApi, DmaAttrs, DmaDirection, DmaSegment, SegmentLimits, SgBacking, SgTable};
use soc::Device;
use std::sync::Arc;
use uapi::Errno;

/// One pinned and mapped USERPTR plane (`struct vb2_dc_buf` with a frame vector).
pub(crate) struct UserptrPlane {
    dma: Arc<DmaApi>,
    dev: Arc<Device>,
    dir: DmaDirection,
    pub(crate) userptr: u64,
    pub(crate) length: u32,
    sgt: SgTable,
    _pins: PinnedUserPages,
}

impl UserptrPlane {
    /// `get_userptr` (rules 2-3).
    pub(crate) fn get(
        dma: &Arc<DmaApi>,
        dev: &Arc<Device>,
        dir: DmaDirection,
        mem: &UserMemory,
        userptr: u64,
        length: u32,
        contiguous: bool,
    ) -> Result<UserptrPlane, Vb2Error> {
        let pins = mem.pin_user_pages(userptr, u64::from(length))?;
        let mut sgt = SgTable::from_ranges(
            pins.ranges(),
            SgBacking::Pages,
            SegmentLimits::of_device(dev)?,
        )?;
        dma.map_sg(dev, &mut sgt, dir, DmaAttrs::NONE)?;
        if contiguous && !sgt.is_dma_contiguous() {
            let _ = dma.unmap_sg(dev, &mut sgt, dir, DmaAttrs::NONE);
            return Err(Vb2Error::new(
                Errno::EFAULT,
                format!("userptr {userptr:#x}: contiguous mapping is too small"),
            ));
        }
        Ok(UserptrPlane {
            dma: dma.clone(),
            dev: dev.clone(),
            dir,
            userptr,
            length,
            sgt,
            _pins: pins,
        })
    }

    pub(crate) fn segments(&self) -> Vec<DmaSegment> {
        self.sgt.dma_segments().to_vec()
    }

    /// The memop "prepare" (rule 5).
    pub(crate) fn prepare(&self) -> Result<(), Vb2Error> {
        Ok(self
            .dma
            .sync_sg_for_device(&self.dev, &self.sgt, self.dir)?)
    }

    /// The memop "finish" (rule 5).
    pub(crate) fn finish(&self) -> Result<(), Vb2Error> {
        Ok(self.dma.sync_sg_for_cpu(&self.dev, &self.sgt, self.dir)?)
    }
}

impl Drop for UserptrPlane {
    /// `put_userptr`: unmap, then the pins go.
    fn drop(&mut self) {
        let _ = self
            .dma
            .unmap_sg(&self.dev, &mut self.sgt, self.dir, DmaAttrs::SKIP_CPU_SYNC);
    }
}
