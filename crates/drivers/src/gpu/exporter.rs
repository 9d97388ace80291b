//! PRIME: GPU objects as dma-bufs, and dma-bufs as GPU objects.
//!
//! C side: `drivers/gpu/drm/drm_prime.c` (`drm_gem_prime_export`, `drm_gem_prime_import`,
//! `drm_gem_map_dma_buf`), `drivers/gpu/drm/amd/amdgpu/amdgpu_dma_buf.c` (`amdgpu_dma_buf_attach`,
//! `amdgpu_dma_buf_pin`, `amdgpu_dma_buf_map`, `amdgpu_dma_buf_move_notify`).
//!
//! # The concept
//! [`BoExport`] is the exporter's [`DmaBufOps`]: a *dynamic* exporter (it can pin) whose buffer may
//! move until pinned. The dma-buf shares the object's reservation object, so fences added by the
//! GPU's jobs and moves are the buffer's implicit-sync fences.
//!
//! # Rules
//! 1. **Self-import** (seed 003): [`Gpu::import`](super::Gpu::import) of a buffer whose ops are a
//!    [`BoExport`] of the same GPU returns the object itself ([`DmaBuf::exporter_ops`]); no
//!    attachment, no mapping.
//! 2. **Peer-to-peer**: an importer gets VRAM only if it allows peer-to-peer
//!    ([`ImporterOps::allow_peer2peer`]), the GPU's config allows it, and its device reaches VRAM.
//!    As soon as one attached importer does not qualify, the object may not stay in VRAM: the next
//!    pin or map moves it to GTT (system pages), where every importer can reach it
//!    (`amdgpu_dma_buf_attach` restricting `allowed_domains`).
//! 3. Importers behind no IOMMU add their DMA mask (pages must lie below it) and contiguity (one
//!    physical run: they scan physical addresses), as do devices that need contiguity behind an
//!    IOMMU or take a single segment. Such an importer is served at attach: the object moves
//!    to contiguous storage it reaches — a CMA region below its mask, else one page block —
//!    with `move_notify` to the importers already attached, or the attach fails with the
//!    move's errno and nothing changes (`TTM_PL_SYSTEM` with `ttm_pool`'s DMA-contiguous
//!    pages; mainline amdgpu leaves it to `drm_gem_dma_prime_import_sg_table` refusing a
//!    scattered table with `EINVAL`; here the exporter places for its importers, as the
//!    constraint exporter does). Other importers' needs are met at their map or pin.
//! 4. Static importers are pinned by the core around their maps, so they never see a move;
//!    dynamic importers get `move_notify` and re-map. A table a dynamic importer keeps after
//!    `move_notify` keeps the old storage alive as a ghost until it is unmapped.
//! 5. Tables go through the export's [`MapCache`] with [`MapCacheOptions`]
//!    `{ attrs: DMA_ATTR_SKIP_CPU_SYNC, explicit_sync: true }` (as `amdgpu_dma_buf_map`: mapped
//!    without the DMA API's maintenance, synced explicitly for non-coherent importers): a
//!    re-map of an unmoved object is a cache hit (seed 003). Every move invalidates the cache
//!    ([`MapCache::buffer_moved`]); CPU access syncs every cached table
//!    ([`MapCache::sync_for_cpu`]). Old storage that an importer's table still maps is kept as
//!    a ghost until [`MapCache::in_use_at`] of the epoch it was mapped at is 0.
//! 6. A vmap pins the object (its physical ranges must stay valid) until the vunmap.

use super::bo::{check_guard, satisfies, BoInner, Domains, ExportLink, GpuBo, ImportLink};
use super::bo::{ImporterNeeds, Placement, Storage};
use super::ttm::{exported_buf, move_locked, Target};
use super::{GpuCore, GpuError};
use dma::{DmaAttrs, DmaDirection, SegmentLimits, SgTable};
use dmabuf::{
    Attachment, BufRegistry, DmaBuf, DmaBufError, DmaBufOps, ExportInfo, FaultPage, ImporterOps,
    IosysMap, MapCache, MapCacheOptions, OpsFeatures, ReleaseInfo,
};
use fence::{DmaResvUsage, ResvGuard};
use soc::PAGE_SIZE;
use std::sync::{Arc, Weak};
use uapi::ioctl::O_RDWR;

/// The dma-buf ops of an exported GPU object (`amdgpu_dmabuf_ops`). Each callback's contract
/// (caller, lock, errors) is the one of [`DmaBufOps`]; what this exporter does is below.
pub struct BoExport {
    bo: Arc<BoInner>,
    cache: Arc<MapCache>,
}

impl BoExport {
    pub(crate) fn bo(&self) -> &Arc<BoInner> {
        &self.bo
    }

    /// The exported object.
    pub fn gpu_bo(&self) -> GpuBo {
        GpuBo(self.bo.clone())
    }

    /// The export's mapping cache (rule 5).
    pub fn map_cache(&self) -> &MapCache {
        &self.cache
    }

    /// Moves the object, if needed, to storage every importer can use (rules 2-3).
    fn ensure_for_importers(&self, g: &mut ResvGuard<'_>) -> Result<(), GpuError> {
        let bo = &self.bo;
        let (p2p_ok, limit, contiguous) = bo.importer_needs();
        let target = {
            let st = bo.state.lock();
            let res = st.res.as_ref().ok_or_else(|| {
                GpuError::InvalidArgument(format!("buffer object {} has no storage", bo.id))
            })?;
            match res.placement {
                Placement::Vram if p2p_ok => None,
                Placement::Vram => {
                    let placement = if bo.domains.allows(Placement::Gtt) {
                        Placement::Gtt
                    } else {
                        Placement::System
                    };
                    Some(Target {
                        placement,
                        limit,
                        contiguous,
                    })
                }
                p => {
                    let t = Target {
                        placement: p,
                        limit,
                        contiguous,
                    };
                    (!satisfies(res, &t)).then_some(t)
                }
            }
        };
        match target {
            Some(t) => move_locked(&bo.gpu, bo, g, t, &[]),
            None => Ok(()),
        }
    }

    /// Frees ghosts no importer table maps any more (rule 5).
    fn reap_ghosts(&self) -> Result<(), GpuError> {
        let dead: Vec<_> = {
            let mut st = self.bo.state.lock();
            let (dead, keep) = std::mem::take(&mut st.ghosts)
                .into_iter()
                .partition(|(epoch, _)| self.cache.in_use_at(*epoch) == 0);
            st.ghosts = keep;
            dead
        };
        for (_, r) in dead {
            super::ttm::free_resident(&self.bo.gpu, r)?;
        }
        Ok(())
    }
}

impl DmaBufOps for BoExport {
    /// `PIN | UNPIN | MMAP | VMAP`: a dynamic, mmapable exporter.
    fn features(&self) -> OpsFeatures {
        OpsFeatures::PIN | OpsFeatures::UNPIN | OpsFeatures::MMAP | OpsFeatures::VMAP
    }

    /// Records what the importer needs (rules 2-3). An importer that needs one physical run
    /// (no IOMMU, contiguous-only, or a single segment) is served now (rule 3): the object
    /// moves if its storage does not fit (a late attach: `move_notify` to the importers
    /// already there, the move's fence in the reservation object), or the attach is refused
    /// with the move's errno (`ENOMEM` with what was tried, `EBUSY` for a pinned or busy
    /// object, `EINVAL` for an object that may only live in VRAM the device cannot reach), and
    /// the importer's needs are forgotten. Takes the resv lock.
    fn attach(&self, _buf: &DmaBuf, att: &Attachment) -> Result<(), DmaBufError> {
        let core = &self.bo.gpu;
        let dev = att.device();
        let direct = dev.iommu_domain().is_none();
        let needs = ImporterNeeds {
            att_id: att.id(),
            p2p_ok: core.cfg.p2p && att.peer2peer() && core.reaches_vram(dev),
            limit: if direct { dev.dma_mask() } else { u64::MAX },
            contiguous: direct || dev.needs_contiguous() || dev.max_segments() == 1,
        };
        let mut g = self.bo.resv.lock(None)?;
        self.bo.state.lock().importers.push(needs);
        if !needs.contiguous {
            return Ok(());
        }
        let placed = if !needs.p2p_ok
            && !self.bo.domains.allows(Placement::Gtt)
            && !self.bo.domains.allows(Placement::System)
        {
            Err(GpuError::InvalidArgument(format!(
                "buffer object {} may only live in VRAM, which {} cannot reach",
                self.bo.id,
                dev.name()
            )))
        } else {
            self.ensure_for_importers(&mut g)
        };
        if let Err(e) = placed {
            self.bo
                .state
                .lock()
                .importers
                .retain(|n| n.att_id != att.id());
            let e = match e {
                GpuError::NoSpace { placement, msg } => GpuError::NoSpace {
                    placement,
                    msg: format!("placing it for {}: {msg}", dev.name()),
                },
                other => other,
            };
            return Err(e.into());
        }
        Ok(())
    }

    /// Unmaps the importer's cached tables and forgets its needs (the object may go back to
    /// VRAM on its next validation).
    fn detach(&self, _buf: &DmaBuf, att: &Attachment) {
        let _ = self.cache.detach(att);
        if let Ok(_g) = self.bo.resv.lock(None) {
            self.bo
                .state
                .lock()
                .importers
                .retain(|n| n.att_id != att.id());
        }
    }

    /// Moves the object where every importer reaches it (if needed), then pins it there.
    fn pin(&self, _att: &Attachment, g: &mut ResvGuard<'_>) -> Result<(), DmaBufError> {
        check_guard(&self.bo, g)?;
        self.ensure_for_importers(g)?;
        self.bo.state.lock().pins += 1;
        Ok(())
    }

    /// Drops one pin.
    fn unpin(&self, _att: &Attachment, _g: &mut ResvGuard<'_>) {
        let mut st = self.bo.state.lock();
        st.pins = st.pins.saturating_sub(1);
    }

    /// Moves if needed (rules 2-3; `EBUSY` if pinned elsewhere), then hands out the cached
    /// table of the current storage for the importer's device, mapping it on a miss (rule 5).
    fn map_dma_buf(
        &self,
        att: &Attachment,
        dir: DmaDirection,
        g: &mut ResvGuard<'_>,
    ) -> Result<Arc<SgTable>, DmaBufError> {
        check_guard(&self.bo, g)?;
        self.ensure_for_importers(g)?;
        let dev = att.device();
        let sgt = self.cache.map(att, dir, || {
            let st = self.bo.state.lock();
            let res = st.res.as_ref().expect("native objects are resident");
            Ok(res.storage.sg_table(SegmentLimits::of_device(dev)?)?)
        })?;
        self.bo.state.lock().dma_buf_maps += 1;
        self.bo.gpu.ttm.touch(self.bo.id);
        Ok(sgt)
    }

    /// Gives the table back to the cache (really unmapped only once invalidated and given
    /// back); frees the ghost it kept alive, if it was the last (rules 4-5).
    fn unmap_dma_buf(
        &self,
        _att: &Attachment,
        sgt: Arc<SgTable>,
        _dir: DmaDirection,
        g: &mut ResvGuard<'_>,
    ) -> Result<(), DmaBufError> {
        check_guard(&self.bo, g)?;
        self.cache.unmap(sgt)?;
        self.reap_ghosts()?;
        Ok(())
    }

    /// The dma-buf is gone: the object forgets it (`obj->dma_buf = NULL`).
    fn release(&self, info: &ReleaseInfo) {
        let mut st = self.bo.state.lock();
        if st.export.as_ref().is_some_and(|e| e.ino == info.ino) {
            st.export = None;
        }
    }

    /// Syncs every cached table for the CPU (rule 5).
    fn begin_cpu_access(&self, _buf: &DmaBuf, _dir: DmaDirection) -> Result<(), DmaBufError> {
        self.cache.sync_for_cpu()
    }

    /// Syncs every cached table for its device (rule 5).
    fn end_cpu_access(&self, _buf: &DmaBuf, _dir: DmaDirection) -> Result<(), DmaBufError> {
        self.cache.sync_for_device()
    }

    /// Any page may be mapped; faults decide where it is.
    fn mmap(&self, _: &DmaBuf, _: u64, _: u64, _: bool) -> Result<(), DmaBufError> {
        Ok(())
    }

    /// `ttm_bo_vm_fault`: waits for a move in flight (KERNEL fences), then hands out the page
    /// where the object is now (VRAM pages as I/O memory).
    fn mmap_fault(&self, _buf: &DmaBuf, pgoff: u64) -> Result<FaultPage, DmaBufError> {
        let bo = &self.bo;
        bo.resv.wait_timeout(DmaResvUsage::Kernel, None, None)?;
        let _g = bo.resv.lock(None)?;
        let st = bo.state.lock();
        let res = st.res.as_ref().expect("native objects are resident");
        let off = pgoff
            .checked_mul(PAGE_SIZE)
            .ok_or(DmaBufError::Overflow("mmap fault offset"))?;
        let pa = res
            .storage
            .phys_at(off)
            .ok_or_else(|| DmaBufError::Fault(format!("page {pgoff} beyond the object")))?;
        Ok(match res.storage {
            Storage::Vram { .. } => FaultPage::iomem(pa),
            Storage::Pages { .. } => FaultPage::ram(pa),
        })
    }

    /// Pins the object and hands out its physical ranges (rule 6).
    fn vmap(&self, _buf: &DmaBuf, g: &mut ResvGuard<'_>) -> Result<IosysMap, DmaBufError> {
        check_guard(&self.bo, g)?;
        let mut st = self.bo.state.lock();
        let res = st.res.as_ref().expect("native objects are resident");
        let map = IosysMap {
            ranges: res.storage.runs(),
            is_iomem: res.storage.is_iomem(),
        };
        st.pins += 1;
        Ok(map)
    }

    /// Drops the vmap's pin.
    fn vunmap(&self, _buf: &DmaBuf, _map: &IosysMap, _g: &mut ResvGuard<'_>) {
        let mut st = self.bo.state.lock();
        st.pins = st.pins.saturating_sub(1);
    }
}

/// `drm_gem_prime_export` (see [`Gpu::export`](super::Gpu::export)).
pub(crate) fn export(
    core: &Arc<GpuCore>,
    bo: &Arc<BoInner>,
    registry: &Arc<BufRegistry>,
) -> Result<DmaBuf, GpuError> {
    if !Arc::ptr_eq(&bo.gpu, core) {
        return Err(GpuError::ForeignBo(bo.id));
    }
    if let Some(link) = bo.import.get() {
        // Re-exporting an import gives the original buffer back.
        return Ok(link.att.dmabuf().clone());
    }
    let _g = bo.resv.lock(None)?;
    if let Some(buf) = exported_buf(bo) {
        return Ok(buf);
    }
    // `amdgpu_dma_buf_map`: DMA_ATTR_SKIP_CPU_SYNC, and explicit syncs for non-coherent
    // importers (rule 5).
    let cache = Arc::new(MapCache::with_options(
        &core.dma,
        MapCacheOptions {
            attrs: DmaAttrs::SKIP_CPU_SYNC,
            explicit_sync: true,
        },
    ));
    let info = ExportInfo {
        exp_name: core.cfg.device.clone(),
        size: bo.size,
        flags: O_RDWR,
        resv: Some(bo.resv.clone()),
        ops: Arc::new(BoExport {
            bo: bo.clone(),
            cache: cache.clone(),
        }),
    };
    let buf = DmaBuf::export_registered(&core.dma, info, registry)?;
    bo.state.lock().export = Some(ExportLink {
        ino: buf.ino(),
        buf: buf.downgrade(),
        cache,
    });
    Ok(buf)
}

/// The GPU as a dynamic importer of a foreign dma-buf (`amdgpu_dma_buf_attach_ops`).
pub struct GpuImporter {
    bo: Weak<BoInner>,
    p2p: bool,
}

impl ImporterOps for GpuImporter {
    /// `amdgpu_dma_buf_move_notify`: drops the device mapping of the import and bumps its
    /// generation; every VM re-maps on its next use (vm rule 3). Resv lock held.
    fn move_notify(&self, att: &Attachment, g: &mut ResvGuard<'_>) {
        let Some(bo) = self.bo.upgrade() else {
            return;
        };
        let t = {
            let mut st = bo.state.lock();
            st.gen += 1;
            st.import_map.take()
        };
        if let Some(t) = t {
            let _ = att.unmap(g, t);
        }
        if Arc::strong_count(&bo) == 1 {
            // The last reference: dropping it detaches, which takes the resv lock we are called
            // with. Defer it, as TTM defers destruction to a worker.
            std::thread::spawn(move || drop(bo));
        }
    }

    /// The GPU's config `p2p` switch.
    fn allow_peer2peer(&self) -> bool {
        self.p2p
    }
}

/// `drm_gem_prime_import` of a foreign buffer: a dynamic attachment for the GPU.
pub(crate) fn import_foreign(
    core: &Arc<GpuCore>,
    buf: &DmaBuf,
    dir: dma::DmaDirection,
    importer_priv: Option<dmabuf::ImporterPriv>,
) -> Result<GpuBo, GpuError> {
    let inner = Arc::new(BoInner::new(
        core,
        &format!("import-{}", buf.ino()),
        buf.size(),
        Domains::default(),
        Placement::System,
        buf.resv().clone(),
    ));
    let importer = Arc::new(GpuImporter {
        bo: Arc::downgrade(&inner),
        p2p: core.cfg.p2p,
    });
    let params = dmabuf::AttachParams {
        importer_ops: Some(importer),
        importer_priv,
    };
    let att = buf.attach_with(&core.dev, params)?;
    let _ = inner.import.set(ImportLink { att, dir });
    Ok(GpuBo(inner))
}
