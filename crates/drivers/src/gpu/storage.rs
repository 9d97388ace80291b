//! What backs a buffer object: VRAM ranges or system page blocks, and their GPU mappings.
//!
//! C side: `struct ttm_resource` (`include/drm/ttm/ttm_resource.h`), `struct ttm_tt`
//! (`ttm_tt.c`: the pages of a GTT/SYSTEM object), `amdgpu_ttm_backend_bind` (GTT binding),
//! `dma_map_resource` of VRAM for peers.
//!
//! # Rules
//! 1. VRAM storage is one range of the bank's pool; page storage is a list of physical chunks
//!    in buffer order: buddy blocks (scattered, or one block for a small contiguous object) or
//!    one CMA range (a contiguous object for an importer without an IOMMU, `ttm_pool` /
//!    `dma_alloc_contiguous`). A chunk may be larger than the object (a buddy block rounds up
//!    to a power of two); the storage is the object's first `len` bytes of its chunks, and only
//!    those are mapped, reported or charged.
//! 2. Every GPU mapping goes through the DMA API, so the checker knows what the GPU may touch.
//!    Page mappings use `DMA_ATTR_SKIP_CPU_SYNC` (several devices map the same pages) and are
//!    synced explicitly for a non-coherent GPU.

use super::bo::Placement;
use super::ttm::Target;
use super::{GpuCore, GpuError};
use dma::{DmaAttrs, DmaDirection, SegmentLimits, SgTable};
use soc::{DmaAddr, PhysAddr, PhysChunk};

/// The memory behind a placement.
pub(crate) enum Storage {
    /// A range of VRAM (from the bank's pool).
    Vram { addr: PhysAddr, len: u64 },
    /// System memory chunks (buddy blocks or a CMA range) in buffer order, of which the first
    /// `len` bytes are the object's (rule 1).
    Pages {
        /// The chunks, as their allocators handed them out.
        chunks: Vec<PhysChunk>,
        /// The object's bytes (at most the chunks' total).
        len: u64,
    },
}

impl Storage {
    /// Physical runs in buffer order.
    pub(crate) fn runs(&self) -> Vec<(PhysAddr, u64)> {
        match self {
            Storage::Vram { addr, len } => vec![(*addr, *len)],
            Storage::Pages { chunks, len } => {
                let mut runs: Vec<(PhysAddr, u64)> = Vec::with_capacity(chunks.len());
                let mut left = *len;
                for c in chunks {
                    let (addr, size) = c.run();
                    let size = size.min(left);
                    if size == 0 {
                        break;
                    }
                    left -= size;
                    match runs.last_mut() {
                        Some((a, n)) if a.0 + *n == addr.0 => *n += size,
                        _ => runs.push((addr, size)),
                    }
                }
                runs
            }
        }
    }

    /// Whether page storage lies below `limit` (inclusive) and, if `contiguous`, is one run;
    /// VRAM never does (it is not system memory).
    pub(crate) fn fits(&self, limit: u64, contiguous: bool) -> bool {
        match self {
            Storage::Vram { .. } => false,
            Storage::Pages { .. } => {
                let runs = self.runs();
                runs.iter().all(|(pa, n)| pa.0 + (n - 1) <= limit)
                    && (!contiguous || runs.len() == 1)
            }
        }
    }

    /// Memory without struct pages.
    pub(crate) fn is_iomem(&self) -> bool {
        matches!(self, Storage::Vram { .. })
    }

    /// An unmapped sg table of the storage with `limits`.
    pub(crate) fn sg_table(&self, limits: SegmentLimits) -> Result<SgTable, GpuError> {
        Ok(match self {
            Storage::Vram { addr, len } => {
                SgTable::from_ranges(&[(*addr, *len)], dma::SgBacking::Resource, limits)?
            }
            Storage::Pages { .. } => {
                SgTable::from_ranges(&self.runs(), dma::SgBacking::Pages, limits)?
            }
        })
    }

    /// The physical address of byte `off`.
    pub(crate) fn phys_at(&self, off: u64) -> Option<PhysAddr> {
        let mut at = 0;
        for (pa, n) in self.runs() {
            if off < at + n {
                return Some(pa.add(off - at));
            }
            at += n;
        }
        None
    }
}

/// A mapping of storage for the GPU (the kernel GPU mapping, or a VM mapping).
pub(crate) enum GpuMap {
    /// VRAM through `dma_map_resource`.
    Resource { addr: DmaAddr, len: u64 },
    /// Pages through `dma_map_sgtable`.
    Sg(SgTable),
}

impl GpuMap {
    /// Maps `storage` for the GPU, read-write. Page tables are mapped with
    /// `DMA_ATTR_SKIP_CPU_SYNC` (as `amdgpu_ttm_tt_pin_userptr` and `amdgpu_dma_buf_map` do) and
    /// synced explicitly for a non-coherent GPU.
    pub(crate) fn new(core: &GpuCore, storage: &Storage) -> Result<GpuMap, GpuError> {
        let dev = &core.dev;
        let dir = DmaDirection::Bidirectional;
        match storage {
            Storage::Vram { addr, len } => {
                let a = core
                    .dma
                    .map_resource(dev, *addr, *len, dir, DmaAttrs::NONE)?;
                Ok(GpuMap::Resource { addr: a, len: *len })
            }
            Storage::Pages { .. } => {
                let mut sgt = storage.sg_table(SegmentLimits::of_device(dev)?)?;
                core.dma
                    .map_sg(dev, &mut sgt, dir, DmaAttrs::SKIP_CPU_SYNC)?;
                if !dev.is_coherent() {
                    core.dma.sync_sg_for_device(dev, &sgt, dir)?;
                }
                Ok(GpuMap::Sg(sgt))
            }
        }
    }

    /// DMA segments in buffer order.
    pub(crate) fn segments(&self) -> Vec<(DmaAddr, u64)> {
        match self {
            GpuMap::Resource { addr, len } => vec![(*addr, *len)],
            GpuMap::Sg(t) => t.dma_segments().iter().map(|s| (s.addr, s.len)).collect(),
        }
    }

    /// Unmaps it (syncing for the CPU first on a non-coherent GPU).
    pub(crate) fn unmap(self, core: &GpuCore) -> Result<(), GpuError> {
        let dev = &core.dev;
        let dir = DmaDirection::Bidirectional;
        match self {
            GpuMap::Resource { addr, len } => {
                core.dma
                    .unmap_resource(dev, addr, len, dir, DmaAttrs::NONE)?
            }
            GpuMap::Sg(mut t) => {
                if !dev.is_coherent() {
                    core.dma.sync_sg_for_cpu(dev, &t, dir)?;
                }
                core.dma
                    .unmap_sg(dev, &mut t, dir, DmaAttrs::SKIP_CPU_SYNC)?;
            }
        }
        Ok(())
    }
}

/// Storage in a placement, with its kernel GPU mapping (none in SYSTEM).
pub(crate) struct Resident {
    pub(crate) placement: Placement,
    pub(crate) storage: Storage,
    pub(crate) kmap: Option<GpuMap>,
    /// The dmem group's charge for VRAM storage, given back when the storage goes.
    pub(crate) _dmem: Option<super::dmem::DmemCharge>,
}

/// Whether `res` meets `t`: the same placement and, for pages, every block below the limit and
/// one run if contiguity is asked for.
pub(crate) fn satisfies(res: &Resident, t: &Target) -> bool {
    if res.placement != t.placement {
        return false;
    }
    match &res.storage {
        Storage::Vram { .. } => true,
        Storage::Pages { .. } => res.storage.fits(t.limit, t.contiguous),
    }
}
