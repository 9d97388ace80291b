//! A device's DMA through a mapped scatter-gather table, chunk by chunk.
//!
//! Every byte a node moves goes through [`dma::DmaApi::device_read`] /
//! [`device_write`](dma::DmaApi::device_write) at the DMA addresses of the node's own mapping
//! of the buffer: through its IOMMU, or physical for a direct-mapped device, checked against
//! its DMA mask and watched by the DMA-API checker.

use dma::{DmaApi, DmaError};
use dmabuf::MappedSgTable;
use soc::{Device, DmaAddr};
use std::sync::Arc;

/// One device's mapping of one buffer, for the length of a job.
pub(crate) struct Mapped {
    dev: Arc<Device>,
    segs: Vec<(u64, u64)>,
    /// The runner's own mapping; `None` when the DMA segments are a vb2 queue's.
    sgt: Option<MappedSgTable>,
}

impl Mapped {
    pub(crate) fn new(dev: Arc<Device>, sgt: MappedSgTable) -> Mapped {
        let segs = sgt
            .dma_segments()
            .iter()
            .map(|s| (s.addr.0, s.len))
            .collect();
        Mapped {
            dev,
            segs,
            sgt: Some(sgt),
        }
    }

    /// A view through DMA segments someone else mapped (a vb2 queue's plane).
    pub(crate) fn from_segments(dev: Arc<Device>, segs: &[dma::DmaSegment]) -> Mapped {
        Mapped {
            dev,
            segs: segs.iter().map(|s| (s.addr.0, s.len)).collect(),
            sgt: None,
        }
    }

    /// The table, to give back to the attachment (`None` for a vb2 queue's view).
    pub(crate) fn into_sgt(self) -> Option<MappedSgTable> {
        self.sgt
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

    /// The device reads `out.len()` bytes at buffer offset `offset`.
    pub(crate) fn read(&self, dma: &DmaApi, offset: u64, out: &mut [u8]) -> Result<(), DmaError> {
        let mut done = 0usize;
        self.runs(offset, out.len() as u64, |addr, n| {
            let n = n as usize;
            dma.device_read(&self.dev, addr, &mut out[done..done + n])?;
            done += n;
            Ok(())
        })
    }

    /// The device writes `data` at buffer offset `offset`.
    pub(crate) fn write(&self, dma: &DmaApi, offset: u64, data: &[u8]) -> Result<(), DmaError> {
        let mut done = 0usize;
        self.runs(offset, data.len() as u64, |addr, n| {
            let n = n as usize;
            dma.device_write(&self.dev, addr, &data[done..done + n])?;
            done += n;
            Ok(())
        })
    }
}
