//! Streaming DMA mappings: map, unmap and sync for one device.
//!
//! C header: `include/linux/dma-mapping.h`; C side: `kernel/dma/mapping.c`, `kernel/dma/direct.c`
//! (no IOMMU), `drivers/iommu/dma-iommu.c` (behind an IOMMU), `arch/arm64/mm/dma-mapping.c` (cache
//! maintenance of a non-coherent device).
//!
//! # The concept
//! Mapping hands a buffer to a device: it gives the buffer DMA addresses the device can drive, and
//! it makes the bytes the CPU wrote visible to the device. Unmapping (or syncing for the CPU) hands
//! it back: the IOVA range is released and the CPU stops seeing stale cache lines. Between the two
//! the buffer belongs to the device; a CPU that touches it must bracket the access with
//! [`DmaApi::sync_sg_for_cpu`] / [`DmaApi::sync_sg_for_device`].
//!
//! # Address translation
//! 1. **Behind an IOMMU**, the whole sg list is mapped into one contiguous IOVA range allocated
//!    below the device's DMA mask (the private `iova` module has the layout rules of dma-iommu); the reported
//!    DMA segments respect the device's max segment size and boundary.
//! 2. **Direct** (no IOMMU), DMA address = physical address, one segment per entry
//!    (`dma_direct_map_sg()`); an entry above the device's DMA mask fails the whole map with
//!    [`DmaError::AboveMask`] naming the entry (no bounce buffers: swiotlb is not modelled).
//! 3. A device that `needs_contiguous` memory refuses a table with more than one physical run.
//!
//! # Cache maintenance (non-coherent devices only; arm64 `arch_sync_dma_for_*`)
//! | call | `TO_DEVICE` | `FROM_DEVICE` | `BIDIRECTIONAL` |
//! |---|---|---|---|
//! | map, sync for device | clean | clean + invalidate | clean |
//! | unmap, sync for CPU | nothing | invalidate | invalidate |
//!
//! `DMA_ATTR_SKIP_CPU_SYNC` skips the maintenance of map and unmap (never of an explicit sync).
//! Coherent devices, resources (memory without struct pages) and coherent allocations get none.
//! Unmap uses the direction the caller passes, as Linux does (the checker reports a mismatch).
//!
//! # Locking
//! [`DmaApi`] holds no lock of its own. Each call takes the checker's lock briefly (never while
//! calling into the SoC) and the SoC's internal locks through its methods. Calls for different
//! tables and devices run in parallel; an [`SgTable`] is `&mut` while mapped or unmapped, so one
//! table cannot be mapped twice at once.

use crate::attrs::{DmaAttrs, DmaDirection};
use crate::debug::rules::{SyncRequest, UnmapRequest};
use crate::debug::{Checker, MappingKind};
use crate::error::DmaError;
use crate::sg::{SgBacking, SgMapping, SgTable};
use soc::{Device, DmaAddr, Page, PhysAddr, PhysChunk, Soc};
use std::sync::Arc;

mod core;

/// The DMA API of one machine: the mapping calls, allocations and the checker that watches them.
///
/// Make one per [`Soc`] with [`DmaApi::new`] and share it (`Arc<DmaApi>`); each `DmaApi`
/// registers its own checker as an observer of the SoC, so two of them would each report the
/// other's mappings as accesses outside any mapping.
pub struct DmaApi {
    soc: Arc<Soc>,
    checker: Arc<Checker>,
}

impl std::fmt::Debug for DmaApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaApi")
            .field("checker", &self.checker)
            .finish()
    }
}

impl DmaApi {
    /// The DMA API of `soc`, with a fresh checker registered as its observer.
    pub fn new(soc: &Arc<Soc>) -> DmaApi {
        let checker = Arc::new(Checker::new());
        soc.add_observer(checker.clone());
        DmaApi {
            soc: soc.clone(),
            checker,
        }
    }

    /// The machine.
    pub fn soc(&self) -> &Arc<Soc> {
        &self.soc
    }

    /// The checker (CONFIG_DMA_API_DEBUG).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The device named `name` (`ENODEV` if none).
    pub fn device(&self, name: &str) -> Result<Arc<Device>, DmaError> {
        Ok(self.soc.device(name)?)
    }

    /// `dma_map_sgtable()`: maps `sgt` for `dev`; returns the number of DMA segments (`nents`).
    ///
    /// Errors: [`DmaError::AlreadyMapped`], [`DmaError::BadEntry`] (an entry outside memory, a
    /// page-backed entry outside system RAM, a resource entry in system RAM),
    /// [`DmaError::AboveMask`], [`DmaError::NotContiguous`], [`DmaError::TooManySegments`], the
    /// IOMMU's `NoMemory`, and in strict mode [`DmaError::Checker`]. On error nothing is mapped.
    pub fn map_sg(
        &self,
        dev: &Device,
        sgt: &mut SgTable,
        dir: DmaDirection,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        if let Some(m) = sgt.mapping() {
            return Err(DmaError::AlreadyMapped(m.device().to_string()));
        }
        let segments = self
            .map_entries(dev, sgt.entries(), dir, attrs, MappingKind::Sg, 0)?
            .1;
        let n = segments.len();
        sgt.mapping = Some(SgMapping {
            device: dev.name().to_string(),
            dir,
            attrs,
            segments,
        });
        Ok(n)
    }

    /// `dma_unmap_sgtable()`: unmaps `sgt` from `dev` (nents = `orig_nents`).
    pub fn unmap_sg(
        &self,
        dev: &Device,
        sgt: &mut SgTable,
        dir: DmaDirection,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.unmap_sg_nents(dev, sgt, sgt.orig_nents(), dir, attrs)
    }

    /// `dma_unmap_sg(dev, sgl, nents, dir)`: the C signature, where `nents` must be the
    /// `orig_nents` the list was mapped with (the checker reports any other value).
    ///
    /// Errors: [`DmaError::TableNotMapped`], [`DmaError::NotMapped`] (not mapped for `dev`), and in
    /// strict mode [`DmaError::Checker`] (then nothing changes).
    pub fn unmap_sg_nents(
        &self,
        dev: &Device,
        sgt: &mut SgTable,
        nents: usize,
        dir: DmaDirection,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let Some(addr) = sgt.dma_address() else {
            return Err(DmaError::TableNotMapped);
        };
        let req = UnmapRequest {
            device: dev.name(),
            addr,
            size: sgt.size(),
            kind: MappingKind::Sg,
            dir,
            nents: Some(nents),
        };
        self.unmap_core(dev, &req, attrs)?;
        sgt.mapping = None;
        Ok(())
    }

    /// `dma_sync_sgtable_for_cpu()`: gives the buffer back to the CPU (invalidate unless
    /// `TO_DEVICE`, for a non-coherent device).
    pub fn sync_sg_for_cpu(
        &self,
        dev: &Device,
        sgt: &SgTable,
        dir: DmaDirection,
    ) -> Result<(), DmaError> {
        self.sync_sg(dev, sgt, dir, true)
    }

    /// `dma_sync_sgtable_for_device()`: gives the buffer to the device (clean, or clean +
    /// invalidate for `FROM_DEVICE`, for a non-coherent device).
    pub fn sync_sg_for_device(
        &self,
        dev: &Device,
        sgt: &SgTable,
        dir: DmaDirection,
    ) -> Result<(), DmaError> {
        self.sync_sg(dev, sgt, dir, false)
    }

    fn sync_sg(
        &self,
        dev: &Device,
        sgt: &SgTable,
        dir: DmaDirection,
        to_cpu: bool,
    ) -> Result<(), DmaError> {
        let Some(addr) = sgt.dma_address() else {
            return Err(DmaError::TableNotMapped);
        };
        let req = SyncRequest {
            device: dev.name(),
            addr,
            size: sgt.size(),
            dir,
            to_cpu,
            segments: Some(sgt.dma_segments()),
        };
        if let Some(kind) = self.checker.check_sync(&req)? {
            if kind == MappingKind::Sg && !dev.is_coherent() {
                for e in sgt
                    .entries()
                    .iter()
                    .filter(|e| e.backing == SgBacking::Pages)
                {
                    self.maintain(dev, e.phys, e.len, dir, to_cpu)?;
                }
            }
        }
        Ok(())
    }

    /// `dma_map_page()` / `dma_map_single()`: maps `size` bytes of system RAM at `pa`.
    pub fn map_page(
        &self,
        dev: &Device,
        pa: PhysAddr,
        size: u64,
        dir: DmaDirection,
        attrs: DmaAttrs,
    ) -> Result<DmaAddr, DmaError> {
        self.map_single(
            dev,
            pa,
            size,
            dir,
            attrs,
            SgBacking::Pages,
            MappingKind::Single,
        )
    }

    /// `dma_unmap_page()` / `dma_unmap_single()`.
    pub fn unmap_page(
        &self,
        dev: &Device,
        addr: DmaAddr,
        size: u64,
        dir: DmaDirection,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.unmap_single(dev, addr, size, dir, attrs, MappingKind::Single)
    }

    /// `dma_map_resource()`: maps memory without struct pages (a carveout, device-local memory).
    /// No cache maintenance is done; system RAM is refused, as Linux refuses a `pfn_valid()` page.
    pub fn map_resource(
        &self,
        dev: &Device,
        pa: PhysAddr,
        size: u64,
        dir: DmaDirection,
        attrs: DmaAttrs,
    ) -> Result<DmaAddr, DmaError> {
        self.map_single(
            dev,
            pa,
            size,
            dir,
            attrs,
            SgBacking::Resource,
            MappingKind::Resource,
        )
    }

    /// `dma_unmap_resource()`.
    pub fn unmap_resource(
        &self,
        dev: &Device,
        addr: DmaAddr,
        size: u64,
        dir: DmaDirection,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.unmap_single(dev, addr, size, dir, attrs, MappingKind::Resource)
    }

    /// The unmap of one range mapped as `kind` ([`map_page`](Self::map_page) or
    /// [`map_resource`](Self::map_resource)): the checker's rules, then the shared unmap path.
    fn unmap_single(
        &self,
        dev: &Device,
        addr: DmaAddr,
        size: u64,
        dir: DmaDirection,
        attrs: DmaAttrs,
        kind: MappingKind,
    ) -> Result<(), DmaError> {
        let req = UnmapRequest {
            device: dev.name(),
            addr,
            size,
            kind,
            dir,
            nents: None,
        };
        self.unmap_core(dev, &req, attrs).map(drop)
    }

    /// `dma_sync_single_for_cpu()` of `size` bytes at `addr` (a part of a mapping is allowed).
    pub fn sync_single_for_cpu(
        &self,
        dev: &Device,
        addr: DmaAddr,
        size: u64,
        dir: DmaDirection,
    ) -> Result<(), DmaError> {
        self.sync_single(dev, addr, size, dir, true)
    }

    /// `dma_sync_single_for_device()` of `size` bytes at `addr`.
    pub fn sync_single_for_device(
        &self,
        dev: &Device,
        addr: DmaAddr,
        size: u64,
        dir: DmaDirection,
    ) -> Result<(), DmaError> {
        self.sync_single(dev, addr, size, dir, false)
    }

    fn sync_single(
        &self,
        dev: &Device,
        addr: DmaAddr,
        size: u64,
        dir: DmaDirection,
        to_cpu: bool,
    ) -> Result<(), DmaError> {
        if size == 0 {
            return Err(DmaError::ZeroSize("dma_sync_single"));
        }
        let req = SyncRequest {
            device: dev.name(),
            addr,
            size,
            dir,
            to_cpu,
            segments: None,
        };
        let Some(kind) = self.checker.check_sync(&req)? else {
            return Ok(());
        };
        if matches!(kind, MappingKind::Single | MappingKind::Sg) && !dev.is_coherent() {
            // Translate through the hardware; a range the device cannot reach is skipped, as the
            // checker has already reported it.
            let runs = dev
                .translate(addr, size, false)
                .or_else(|_| dev.translate(addr, size, true));
            if let Ok(runs) = runs {
                for (pa, len) in runs {
                    self.maintain(dev, pa, len, dir, to_cpu)?;
                }
            }
        }
        Ok(())
    }

    /// A device read through the checker: the bytes move as with [`Device::dma_read`]; in strict
    /// mode a finding the access raised (outside a mapping, stale CPU data) is returned after it.
    pub fn device_read(&self, dev: &Device, addr: DmaAddr, buf: &mut [u8]) -> Result<(), DmaError> {
        let mark = self.checker.mark();
        dev.dma_read(addr, buf)?;
        self.checker.result_since(mark)
    }

    /// A device write through the checker (see [`device_read`](Self::device_read)).
    pub fn device_write(&self, dev: &Device, addr: DmaAddr, data: &[u8]) -> Result<(), DmaError> {
        let mark = self.checker.mark();
        dev.dma_write(addr, data)?;
        self.checker.result_since(mark)
    }

    /// A device read through the checker that hands the bytes to `f` where they live instead of
    /// copying them ([`Device::dma_read_with`]: a device that checks what it reads on the fly
    /// needs no buffer). Checks, counters and findings as [`device_read`](Self::device_read).
    pub fn device_read_with(
        &self,
        dev: &Device,
        addr: DmaAddr,
        len: u64,
        f: impl FnMut(&[u8]),
    ) -> Result<(), DmaError> {
        let mark = self.checker.mark();
        dev.dma_read_with(addr, len, f)?;
        self.checker.result_since(mark)
    }

    /// A device write through the checker whose bytes `f` sets in place
    /// ([`Device::dma_write_with`]: a device that generates what it writes needs no buffer).
    /// Checks, counters and findings as [`device_write`](Self::device_write).
    pub fn device_write_with(
        &self,
        dev: &Device,
        addr: DmaAddr,
        len: u64,
        f: impl FnMut(&mut [u8]),
    ) -> Result<(), DmaError> {
        let mark = self.checker.mark();
        dev.dma_write_with(addr, len, f)?;
        self.checker.result_since(mark)
    }

    /// A cached CPU read through the checker: in strict mode a stale read is returned as an
    /// error after the bytes were read.
    pub fn cpu_read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), DmaError> {
        let mark = self.checker.mark();
        self.soc.cpu().read(pa, buf)?;
        self.checker.result_since(mark)
    }

    /// Frees pages through [`Soc::free_pages`]; in strict mode memory still mapped is refused.
    pub fn free_pages(&self, page: Page) -> Result<(), DmaError> {
        self.checker.check_free_strict(page.addr, page.size())?;
        Ok(self.soc.free_pages(page)?)
    }

    /// Gives any [`PhysChunk`] back through [`Soc::free_chunk`]; in strict mode memory still
    /// mapped is refused, as for [`free_pages`](Self::free_pages).
    pub fn free_chunk(&self, chunk: PhysChunk) -> Result<(), DmaError> {
        let (addr, len) = chunk.run();
        self.checker.check_free_strict(addr, len)?;
        Ok(self.soc.free_chunk(chunk)?)
    }
}
