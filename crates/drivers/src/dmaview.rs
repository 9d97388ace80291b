//! A device's view of one buffer through DMA segments, for the length of a job.
//!
//! C side: what a driver does with the `sg_table` `dma_buf_map_attachment` (or vb2's plane
//! cookie) gave it: it programs its engine with the segments' DMA addresses.
//!
//! Every byte a device job ([`crate::job`]) moves goes through
//! [`dma::DmaApi::device_read`] / [`device_write`](dma::DmaApi::device_write) at the DMA
//! addresses of the device's own mapping of the buffer: through its IOMMU, or physical for a
//! direct-mapped device, checked against its DMA mask and watched by the DMA-API checker.
//!
//! # Lifetime
//! A view made by [`DmaView::new`] owns the mapped table; whoever planned the job gives it back
//! to its attachment ([`DmaView::into_sgt`]) after the job. A view made by
//! [`DmaView::from_segments`] borrows segments someone else mapped (a vb2 queue's plane) and
//! must not outlive that mapping: the queue keeps the buffer until the job completes it.

use dma::{DmaApi, DmaError};
use dmabuf::MappedSgTable;
use soc::{Device, DmaAddr};
use std::sync::Arc;

/// One device's mapping of one buffer, for the length of a job (module doc).
pub struct DmaView {
    dev: Arc<Device>,
    segs: Vec<(u64, u64)>,
    /// The job's own mapping; `None` when the DMA segments are a vb2 queue's.
    sgt: Option<MappedSgTable>,
}

impl std::fmt::Debug for DmaView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaView")
            .field("device", &self.dev.name())
            .field("segments", &self.segs.len())
            .finish()
    }
}

impl DmaView {
    /// A view through a table mapped for `dev`; the view owns it until [`Self::into_sgt`].
    pub fn new(dev: Arc<Device>, sgt: MappedSgTable) -> DmaView {
        let segs = sgt
            .dma_segments()
            .iter()
            .map(|s| (s.addr.0, s.len))
            .collect();
        DmaView {
            dev,
            segs,
            sgt: Some(sgt),
        }
    }

    /// A view through DMA segments someone else mapped (a vb2 queue's plane).
    pub fn from_segments(dev: Arc<Device>, segs: &[dma::DmaSegment]) -> DmaView {
        DmaView {
            dev,
            segs: segs.iter().map(|s| (s.addr.0, s.len)).collect(),
            sgt: None,
        }
    }

    /// The table, to give back to the attachment (`None` for a vb2 queue's view).
    pub fn into_sgt(self) -> Option<MappedSgTable> {
        self.sgt
    }

    /// The device whose DMA addresses these are.
    pub fn device(&self) -> &Arc<Device> {
        &self.dev
    }

    /// Bytes the segments cover.
    pub fn len(&self) -> u64 {
        self.segs.iter().map(|s| s.1).sum()
    }

    /// Whether the view covers no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of DMA segments.
    pub fn segments(&self) -> usize {
        self.segs.len()
    }

    /// The runs `[offset, offset + len)` of the buffer covers, as `(dma address, length)`.
    fn runs(
        &self,
        mut offset: u64,
        mut len: u64,
        mut f: impl FnMut(DmaAddr, u64) -> Result<(), DmaError>,
    ) -> Result<(), DmaError> {
        for &(addr, slen) in &self.segs {
            if len == 0 {
                break;
            }
            if offset >= slen {
                offset -= slen;
                continue;
            }
            let n = (slen - offset).min(len);
            f(DmaAddr(addr + offset), n)?;
            len -= n;
            offset = 0;
        }
        if len > 0 {
            return Err(DmaError::from(soc::SocError::InvalidArgument(format!(
                "{len:#x} bytes past the end of the mapping"
            ))));
        }
        Ok(())
    }

    /// The device reads `out.len()` bytes at buffer offset `offset`. Bytes past the mapping are
    /// `EINVAL`; a DMA its IOMMU or mask refuses is the DMA layer's error.
    pub fn read(&self, dma: &DmaApi, offset: u64, out: &mut [u8]) -> Result<(), DmaError> {
        let mut done = 0usize;
        self.runs(offset, out.len() as u64, |addr, n| {
            let n = n as usize;
            dma.device_read(&self.dev, addr, &mut out[done..done + n])?;
            done += n;
            Ok(())
        })
    }

    /// The device writes `data` at buffer offset `offset` (errors as [`Self::read`]).
    pub fn write(&self, dma: &DmaApi, offset: u64, data: &[u8]) -> Result<(), DmaError> {
        let mut done = 0usize;
        self.runs(offset, data.len() as u64, |addr, n| {
            let n = n as usize;
            dma.device_write(&self.dev, addr, &data[done..done + n])?;
            done += n;
            Ok(())
        })
    }

    /// The device reads `len` bytes at buffer offset `offset`, handing them to `f` piece by
    /// piece in order where they live, without a copy ([`DmaApi::device_read_with`]); errors
    /// as [`Self::read`]. `f` must not touch simulated memory.
    pub fn read_with(
        &self,
        dma: &DmaApi,
        offset: u64,
        len: u64,
        mut f: impl FnMut(&[u8]),
    ) -> Result<(), DmaError> {
        self.runs(offset, len, |addr, n| {
            dma.device_read_with(&self.dev, addr, n, &mut f)
        })
    }

    /// The device writes `len` bytes at buffer offset `offset`, `f` setting them piece by piece
    /// in order in place ([`DmaApi::device_write_with`]); errors as [`Self::write`]. `f` must
    /// not touch simulated memory.
    pub fn write_with(
        &self,
        dma: &DmaApi,
        offset: u64,
        len: u64,
        mut f: impl FnMut(&mut [u8]),
    ) -> Result<(), DmaError> {
        self.runs(offset, len, |addr, n| {
            dma.device_write_with(&self.dev, addr, n, &mut f)
        })
    }
}
