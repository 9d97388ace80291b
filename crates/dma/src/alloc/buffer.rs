//! The handles an allocation gives back: [`DeviceNeeds`] in, [`DmaBuffer`] and [`DmaHandle`]s out.

use crate::attrs::DmaAttrs;
use crate::error::DmaError;
use crate::sg::SgTable;
use soc::{BankId, Device, DmaAddr, Page, PhysAddr, Soc};
use std::sync::Arc;

/// What one device asks of an allocation beyond its description.
#[derive(Clone, Copy, Debug)]
pub struct DeviceNeeds<'a> {
    /// The device.
    pub device: &'a Device,
    /// Alignment of the buffer for this device (a power of two; 0: a page).
    pub align: u64,
    /// The bank the buffer must come from, if the device cares.
    pub bank: Option<&'a str>,
}

impl<'a> DeviceNeeds<'a> {
    /// Only what the device's description says.
    pub fn new(device: &'a Device) -> DeviceNeeds<'a> {
        DeviceNeeds {
            device,
            align: 0,
            bank: None,
        }
    }

    /// With an alignment.
    pub fn align(self, align: u64) -> DeviceNeeds<'a> {
        DeviceNeeds { align, ..self }
    }

    /// From one bank.
    pub fn in_bank(self, bank: &'a str) -> DeviceNeeds<'a> {
        DeviceNeeds {
            bank: Some(bank),
            ..self
        }
    }
}

impl<'a> From<&'a Device> for DeviceNeeds<'a> {
    fn from(device: &'a Device) -> DeviceNeeds<'a> {
        DeviceNeeds::new(device)
    }
}

impl<'a> From<&'a Arc<Device>> for DeviceNeeds<'a> {
    fn from(device: &'a Arc<Device>) -> DeviceNeeds<'a> {
        DeviceNeeds::new(device)
    }
}

/// Where an allocation's memory came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Memory {
    Cma {
        region: String,
        addr: PhysAddr,
        count: u64,
    },
    Pages(Vec<Page>),
    Pool {
        bank: BankId,
        addr: PhysAddr,
        size: u64,
    },
}

/// One device's view of a [`DmaBuffer`]: `dma_handle` and the sg table mapped for it.
#[derive(Debug)]
pub struct DmaHandle {
    pub(super) device: String,
    pub(super) sgt: SgTable,
}

impl DmaHandle {
    /// The device.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The DMA address of the buffer's first byte for this device (`*dma_handle`).
    pub fn dma_addr(&self) -> DmaAddr {
        self.sgt.dma_address().unwrap_or_default()
    }

    /// The sg table mapped for this device.
    pub fn sg_table(&self) -> &SgTable {
        &self.sgt
    }
}

/// A coherent allocation, mapped for one or more devices.
#[derive(Debug)]
pub struct DmaBuffer {
    pub(super) soc: Arc<Soc>,
    pub(super) size: u64,
    pub(super) attrs: DmaAttrs,
    pub(super) memory: Memory,
    pub(super) sgt: SgTable,
    pub(super) handles: Vec<DmaHandle>,
    pub(super) uncached: bool,
}

impl DmaBuffer {
    /// Bytes asked for.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The attributes it was allocated with.
    pub fn attrs(&self) -> DmaAttrs {
        self.attrs
    }

    /// One handle per device, in the order the devices were given.
    pub fn handles(&self) -> &[DmaHandle] {
        &self.handles
    }

    /// The handle of the device named `device`.
    pub fn handle(&self, device: &str) -> Option<&DmaHandle> {
        self.handles.iter().find(|h| h.device == device)
    }

    /// The DMA address for the device named `device`.
    pub fn dma_addr(&self, device: &str) -> Option<DmaAddr> {
        self.handle(device).map(DmaHandle::dma_addr)
    }

    /// The CPU-side sg table (unmapped), to map for a device that joins later.
    pub fn sg_table(&self) -> &SgTable {
        &self.sgt
    }

    /// Whether the memory is physically contiguous.
    pub fn is_contiguous(&self) -> bool {
        self.sgt.phys_runs() == 1
    }

    /// The physical address of the first byte.
    pub fn phys_addr(&self) -> PhysAddr {
        self.sgt.entries()[0].phys
    }

    /// Whether the memory has struct pages (system RAM) rather than a carveout's.
    pub fn is_page_backed(&self) -> bool {
        !matches!(self.memory, Memory::Pool { .. })
    }

    /// Writes `data` at `offset` through the buffer's CPU mapping (uncached when a device is not
    /// coherent or with `DMA_ATTR_WRITE_COMBINE`, so no sync is needed).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), DmaError> {
        self.each_run(offset, data.len() as u64, |pa, at, n| {
            let part = &data[at..at + n];
            if self.uncached {
                self.soc.cpu().write_uncached(pa, part)
            } else {
                self.soc.cpu().write(pa, part)
            }
        })
    }

    /// Reads `buf.len()` bytes at `offset` through the buffer's CPU mapping.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let len = buf.len() as u64;
        let mut runs = Vec::new();
        self.each_run(offset, len, |pa, at, n| {
            runs.push((pa, at, n));
            Ok(())
        })?;
        for (pa, at, n) in runs {
            let part = &mut buf[at..at + n];
            if self.uncached {
                self.soc.cpu().read_uncached(pa, part)?;
            } else {
                self.soc.cpu().read(pa, part)?;
            }
        }
        Ok(())
    }

    /// Calls `f(pa, offset in the caller's buffer, len)` for each physical piece of a range.
    fn each_run(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(PhysAddr, usize, usize) -> Result<(), soc::SocError>,
    ) -> Result<(), DmaError> {
        if self.attrs.contains(DmaAttrs::NO_KERNEL_MAPPING) {
            return Err(DmaError::NoKernelMapping);
        }
        let end = offset.checked_add(len).filter(|&e| e <= self.size);
        if end.is_none() {
            return Err(DmaError::OutOfBounds {
                offset,
                len,
                size: self.size,
            });
        }
        let (mut pos, mut done) = (0u64, 0u64);
        for e in self.sgt.entries() {
            if done == len {
                break;
            }
            let (s, t) = (pos, pos + e.len);
            pos = t;
            let cur = offset + done;
            if cur >= t || cur < s {
                continue;
            }
            let n = (t - cur).min(len - done);
            f(e.phys.add(cur - s), done as usize, n as usize)?;
            done += n;
        }
        Ok(())
    }
}
