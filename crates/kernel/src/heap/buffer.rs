//! The exporter behind heap buffers and udmabufs: a fixed list of physical runs.
//!
//! C side: the `dma_buf_ops` of `drivers/dma-buf/heaps/system_heap.c`,
//! `drivers/dma-buf/heaps/cma_heap.c` and `drivers/dma-buf/udmabuf.c`, which differ in where the
//! memory comes from but not in how it is exported.
//!
//! A [`HeapBuffer`] owns storage allocated up front (heaps allocate at `DMA_HEAP_IOCTL_ALLOC`,
//! udmabuf pins at `UDMABUF_CREATE`): never moved, never migrated, so it needs no `pin` and
//! never calls `move_notify`.
//!
//! # Behaviour
//! 1. `map_dma_buf` builds an sg table of the runs, split to the importer's segment limits,
//!    and maps it for the importer's device ([`DmaApi::map_sg`]): through its IOMMU, or direct,
//!    where a run above the device's DMA mask fails the map with an error naming the device
//!    ([`dma::DmaError::AboveMask`], `EIO`). Memory without struct pages (a carveout) is
//!    described as [`SgBacking::Resource`] runs: mapped like `dma_map_resource`, no page ever
//!    reaches the importer (seed 002). Mapped tables are kept in the exporter's
//!    [`MapCache`] per attachment and direction, so a re-map costs a lookup
//!    (seed 003); the real unmap happens at detach.
//! 2. `mmap` faults in the page at the offset asked for: RAM through the CPU cache, carveout
//!    memory uncached (a PFN mapping with write-combine). CMA buffers and udmabufs require
//!    `MAP_SHARED` (`EINVAL` otherwise).
//! 3. `begin_cpu_access`/`end_cpu_access`: heap buffers sync every mapped non-coherent
//!    attachment for the CPU / for the device. A udmabuf syncs for its misc device instead: the
//!    first `begin` maps the pages for it, later ones sync for the CPU; an `end` before any
//!    `begin` is `EINVAL` (behaviour 101).
//! 4. `vmap` covers the runs (`is_iomem` for a carveout).
//! 5. `release` frees the storage exactly once: pages to the buddy allocator, a CMA range to its
//!    region, a carveout range to its pool, udmabuf pins to their memfd pages.
//!
//! # Locking
//! `storage` and the udmabuf sync state are leaf mutexes; the cache has its own. None is held
//! while calling the DMA API except the cache's, which the cache documents.

use crate::kernel::errno;
use crate::memcg::{MemCgroup, MemcgCharge};
use crate::memfd::PinnedPage;
use dma::{DmaApi, DmaDirection, SegmentLimits, SgBacking, SgTable};
use dmabuf::buf::DmaBuf;
use dmabuf::error::DmaBufError;
use dmabuf::map_cache::MapCache;
use dmabuf::ops::{DmaBufOps, FaultPage, IosysMap, OpsFeatures, ReleaseInfo};
use dmabuf::Attachment;
use fence::ResvGuard;
use parking_lot::Mutex;
use soc::{PhysAddr, PhysChunk, PAGE_SIZE};
use std::sync::Arc;
use uapi::Errno;

/// Where a [`HeapBuffer`]'s memory came from, and so how it is given back.
#[derive(Debug)]
pub enum Storage {
    /// Memory the heap allocated itself: buddy blocks (the system heap), one CMA range (a CMA
    /// heap) or one pool range (a carveout heap), each given back to its own allocator.
    Chunks(Vec<PhysChunk>),
    /// memfd pages pinned by a udmabuf.
    Pinned(Vec<PinnedPage>),
}

/// How CPU access is bracketed (behaviour rule 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuSync {
    /// Sync the importers' mappings (the heaps).
    Attachments,
    /// Sync a private mapping for the udmabuf misc device.
    MiscDevice,
}

/// The page-list exporter (see the module documentation).
pub struct HeapBuffer {
    dma: Arc<DmaApi>,
    /// Physical runs, in buffer order.
    runs: Vec<(PhysAddr, u64)>,
    backing: SgBacking,
    needs_shared: bool,
    cpu_sync: CpuSync,
    /// The storage until release (`None` after).
    storage: Mutex<Option<Storage>>,
    /// Mapped tables per attachment and direction.
    cache: MapCache,
    /// udmabuf: whether the misc device has mapped the pages (`ubuf->sg`).
    misc_mapped: Mutex<bool>,
    /// The memory cgroup charge of a heap buffer (`dmabuf->memcg`), until release.
    charge: Mutex<Option<MemcgCharge>>,
}

impl std::fmt::Debug for HeapBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapBuffer")
            .field("runs", &self.runs.len())
            .field("backing", &self.backing)
            .field("storage", &self.storage.lock().is_some())
            .finish()
    }
}

fn merge_runs(ranges: impl IntoIterator<Item = (PhysAddr, u64)>) -> Vec<(PhysAddr, u64)> {
    let mut runs: Vec<(PhysAddr, u64)> = Vec::new();
    for (pa, len) in ranges {
        match runs.last_mut() {
            Some((start, l)) if start.0 + *l == pa.0 => *l += len,
            _ => runs.push((pa, len)),
        }
    }
    runs
}

impl HeapBuffer {
    /// An exporter for `storage`. The runs are derived from it; memory is expected zeroed (or
    /// filled) by the caller already.
    pub fn new(
        dma: &Arc<DmaApi>,
        storage: Storage,
        cpu_sync: CpuSync,
        needs_shared: bool,
    ) -> Arc<HeapBuffer> {
        let (runs, backing) = match &storage {
            Storage::Chunks(chunks) => (
                merge_runs(chunks.iter().map(PhysChunk::run)),
                if chunks.iter().any(PhysChunk::is_iomem) {
                    SgBacking::Resource
                } else {
                    SgBacking::Pages
                },
            ),
            Storage::Pinned(pins) => (
                merge_runs(pins.iter().map(|p| (p.phys(), PAGE_SIZE))),
                SgBacking::Pages,
            ),
        };
        Arc::new(HeapBuffer {
            dma: dma.clone(),
            runs,
            backing,
            needs_shared,
            cpu_sync,
            storage: Mutex::new(Some(storage)),
            cache: MapCache::new(dma),
            misc_mapped: Mutex::new(false),
            charge: Mutex::new(None),
        })
    }

    /// Keeps `charge` until release (replacing, and so uncharging, any earlier one).
    pub(crate) fn set_charge(&self, charge: MemcgCharge) {
        let old = self.charge.lock().replace(charge);
        drop(old);
    }

    /// The group the buffer is charged to, if it is.
    pub fn charged_memcg(&self) -> Option<Arc<MemCgroup>> {
        self.charge.lock().as_ref().map(|c| c.memcg().clone())
    }

    /// Runs `f` on the charge, under its lock.
    pub(crate) fn with_charge<R>(&self, f: impl FnOnce(Option<&mut MemcgCharge>) -> R) -> R {
        f(self.charge.lock().as_mut())
    }

    /// The physical runs, in buffer order.
    pub fn runs(&self) -> &[(PhysAddr, u64)] {
        &self.runs
    }

    /// The orders of the buddy blocks behind a system-heap buffer, in buffer order (empty for
    /// other storage or after release).
    pub fn block_orders(&self) -> Vec<u32> {
        match &*self.storage.lock() {
            Some(Storage::Chunks(chunks)) => chunks
                .iter()
                .filter_map(|c| match c {
                    PhysChunk::Pages(p) => Some(p.order),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the memory has struct pages (`false` for a carveout).
    pub fn is_page_backed(&self) -> bool {
        self.backing == SgBacking::Pages
    }

    /// Whether `mmap` requires `MAP_SHARED` (CMA heap, udmabuf).
    pub fn needs_shared_mmap(&self) -> bool {
        self.needs_shared
    }

    /// Whether the storage has been released.
    pub fn is_released(&self) -> bool {
        self.storage.lock().is_none()
    }

    /// The mapping cache.
    pub fn map_cache(&self) -> &MapCache {
        &self.cache
    }

    fn size(&self) -> u64 {
        self.runs.iter().map(|r| r.1).sum()
    }

    /// The table of the runs, split to `limits`, not mapped.
    fn table(&self, limits: SegmentLimits) -> Result<SgTable, DmaBufError> {
        Ok(SgTable::from_ranges(&self.runs, self.backing, limits)?)
    }

    /// The physical page at page offset `pgoff`.
    fn page_at(&self, pgoff: u64) -> Option<PhysAddr> {
        let mut off = pgoff.checked_mul(PAGE_SIZE)?;
        for &(pa, len) in &self.runs {
            if off < len {
                return Some(pa.add(off));
            }
            off -= len;
        }
        None
    }

    /// The udmabuf misc device's view: a device with a 64-bit mask and no IOMMU, not coherent.
    /// Its "mapping" is the cache maintenance of a direct mapping, done on the runs.
    fn misc_sync(&self, dir: DmaDirection, for_cpu: bool) -> Result<(), DmaBufError> {
        let cpu = self.dma.soc().cpu();
        for &(pa, len) in &self.runs {
            match (for_cpu, dir) {
                (true, DmaDirection::ToDevice) => {}
                (true, _) => cpu.invalidate(pa, len)?,
                (false, DmaDirection::FromDevice) => cpu.flush(pa, len)?,
                (false, _) => cpu.clean(pa, len)?,
            }
        }
        Ok(())
    }
}

impl DmaBufOps for HeapBuffer {
    fn features(&self) -> OpsFeatures {
        OpsFeatures::MMAP | OpsFeatures::VMAP
    }

    fn detach(&self, _buf: &DmaBuf, att: &Attachment) {
        // The cached tables of this attachment are unmapped now, for its device. An unmap the
        // DMA API refuses has been reported to its checker; detach cannot fail.
        let _ = self.cache.detach(att);
    }

    fn map_dma_buf(
        &self,
        att: &Attachment,
        dir: DmaDirection,
        _resv: &mut ResvGuard<'_>,
    ) -> Result<Arc<SgTable>, DmaBufError> {
        if self.is_released() {
            return Err(errno(Errno::ENODEV, "map of a released buffer"));
        }
        self.cache.map(att, dir, || {
            self.table(SegmentLimits::of_device(att.device())?)
        })
    }

    fn unmap_dma_buf(
        &self,
        _att: &Attachment,
        sgt: Arc<SgTable>,
        _dir: DmaDirection,
        _resv: &mut ResvGuard<'_>,
    ) -> Result<(), DmaBufError> {
        self.cache.unmap(sgt)
    }

    fn release(&self, _info: &ReleaseInfo) {
        // `dma_buf_release` uncharges the buffer's memcg.
        let charge = self.charge.lock().take();
        drop(charge);
        let Some(storage) = self.storage.lock().take() else {
            return;
        };
        let soc = self.dma.soc();
        // Each free below gives back exactly what was allocated for this buffer, once (the
        // storage was just taken); a refusal would be a bug in the allocator's bookkeeping,
        // and there is nobody to report it to, as in Linux's release.
        match storage {
            Storage::Chunks(chunks) => {
                for c in chunks {
                    let _ = soc.free_chunk(c);
                }
            }
            Storage::Pinned(pins) => drop(pins),
        }
    }

    fn begin_cpu_access(&self, _buf: &DmaBuf, dir: DmaDirection) -> Result<(), DmaBufError> {
        match self.cpu_sync {
            // Every table an importer holds is a cached one: syncing the cache covers them all.
            CpuSync::Attachments => self.cache.sync_for_cpu(),
            CpuSync::MiscDevice => {
                let mut mapped = self.misc_mapped.lock();
                if *mapped {
                    self.misc_sync(dir, true)
                } else {
                    // The first begin maps the pages for the misc device: a sync for the device.
                    self.misc_sync(dir, false)?;
                    *mapped = true;
                    Ok(())
                }
            }
        }
    }

    fn end_cpu_access(&self, _buf: &DmaBuf, dir: DmaDirection) -> Result<(), DmaBufError> {
        match self.cpu_sync {
            CpuSync::Attachments => self.cache.sync_for_device(),
            CpuSync::MiscDevice => {
                if !*self.misc_mapped.lock() {
                    return Err(errno(
                        Errno::EINVAL,
                        "udmabuf: end_cpu_access before any begin_cpu_access",
                    ));
                }
                self.misc_sync(dir, false)
            }
        }
    }

    fn mmap(
        &self,
        buf: &DmaBuf,
        _pgoff: u64,
        _npages: u64,
        _writable: bool,
    ) -> Result<(), DmaBufError> {
        if self.is_released() {
            return Err(errno(
                Errno::ENODEV,
                format!("mmap of released {} buffer", buf.exp_name()),
            ));
        }
        Ok(())
    }

    fn mmap_fault(&self, buf: &DmaBuf, pgoff: u64) -> Result<FaultPage, DmaBufError> {
        let pa = self.page_at(pgoff).ok_or_else(|| {
            DmaBufError::Fault(format!(
                "SIGBUS: page {pgoff} is past the end of {}",
                buf.exp_name()
            ))
        })?;
        Ok(match self.backing {
            SgBacking::Pages => FaultPage::ram(pa),
            SgBacking::Resource => FaultPage::iomem(pa),
        })
    }

    fn vmap(&self, _buf: &DmaBuf, _resv: &mut ResvGuard<'_>) -> Result<IosysMap, DmaBufError> {
        debug_assert_eq!(self.size() % PAGE_SIZE, 0);
        Ok(IosysMap {
            ranges: self.runs.clone(),
            is_iomem: self.backing == SgBacking::Resource,
        })
    }
}
