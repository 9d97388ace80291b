//! The machinery under every map and unmap: checks, translation, the checker's record, and cache
//! maintenance (see the parent module for the rules).

use super::DmaApi;
use crate::attrs::{DmaAttrs, DmaDirection};
use crate::debug::rules::UnmapRequest;
use crate::debug::{MappingInfo, MappingKind, PhysRun};
use crate::error::DmaError;
use crate::iova;
use crate::sg::{DmaSegment, SegmentLimits, SgBacking, SgEntry};
use soc::{BankKind, Device, DmaAddr, PhysAddr};

/// What one map call records, before the checker gives it an id.
struct Mapped {
    segments: Vec<DmaSegment>,
    iova_alloc: Option<(DmaAddr, u64)>,
    iova_maps: Vec<(DmaAddr, u64)>,
}

impl DmaApi {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn map_single(
        &self,
        dev: &Device,
        pa: PhysAddr,
        size: u64,
        dir: DmaDirection,
        attrs: DmaAttrs,
        backing: SgBacking,
        kind: MappingKind,
    ) -> Result<DmaAddr, DmaError> {
        if size == 0 {
            return Err(DmaError::ZeroSize(if kind == MappingKind::Resource {
                "dma_map_resource"
            } else {
                "dma_map_page"
            }));
        }
        if pa.0.checked_add(size).is_none() {
            return Err(DmaError::BadEntry {
                index: 0,
                addr: pa,
                len: size,
                reason: "range wraps the address space".into(),
            });
        }
        let entry = SgEntry {
            phys: pa,
            len: size,
            backing,
        };
        let (_, segs) = self.map_entries(dev, &[entry], dir, attrs, kind, 0)?;
        Ok(segs[0].addr)
    }

    /// Checks entries against memory: in a bank, page-backed ones in system RAM, resources not.
    fn check_entries(&self, entries: &[SgEntry]) -> Result<(), DmaError> {
        for (index, e) in entries.iter().enumerate() {
            let bad = |reason: String| DmaError::BadEntry {
                index,
                addr: e.phys,
                len: e.len,
                reason,
            };
            let bank = self
                .soc
                .mem()
                .check_range(e.phys, e.len)
                .map_err(|err| bad(err.to_string()))?;
            match (e.backing, bank.kind()) {
                (SgBacking::Pages, BankKind::System)
                | (SgBacking::Resource, BankKind::Carveout | BankKind::DeviceLocal) => {}
                (SgBacking::Pages, k) => {
                    return Err(bad(format!(
                        "page-backed but in {k} bank `{}` (no struct pages): map it as a resource",
                        bank.name()
                    )))
                }
                (SgBacking::Resource, _) => {
                    return Err(bad(format!(
                        "a resource in system RAM bank `{}`: map it as pages",
                        bank.name()
                    )))
                }
            }
        }
        Ok(())
    }

    /// The core of every map: translation, checker record, cache maintenance.
    pub(crate) fn map_entries(
        &self,
        dev: &Device,
        entries: &[SgEntry],
        dir: DmaDirection,
        attrs: DmaAttrs,
        kind: MappingKind,
        min_align: u64,
    ) -> Result<(u64, Vec<DmaSegment>), DmaError> {
        self.check_entries(entries)?;
        let limits = SegmentLimits::of_device(dev)?;
        if dev.needs_contiguous() {
            let runs = count_runs(entries);
            if runs > 1 {
                return Err(DmaError::NotContiguous {
                    device: dev.name().to_string(),
                    runs,
                });
            }
        }
        let mapped = self.translate_in(dev, entries, dir, limits, min_align)?;
        if mapped.segments.len() > dev.max_segments() as usize {
            let n = mapped.segments.len();
            self.undo_iommu(dev, &mapped.iova_alloc, &mapped.iova_maps);
            return Err(DmaError::TooManySegments {
                device: dev.name().to_string(),
                nents: n,
                max: dev.max_segments(),
            });
        }
        let segments = mapped.segments.clone();
        let (iova_alloc, iova_maps) = (mapped.iova_alloc, mapped.iova_maps.clone());
        let added = self.checker.add_mapping(limits, |id| MappingInfo {
            id,
            device: dev.name().to_string(),
            kind,
            addr: mapped.segments[0].addr,
            size: entries.iter().map(|e| e.len).sum(),
            dir,
            attrs,
            orig_nents: entries.len(),
            segments: mapped.segments,
            phys: entries
                .iter()
                .map(|e| PhysRun {
                    addr: e.phys,
                    len: e.len,
                    pages: e.backing == SgBacking::Pages,
                })
                .collect(),
            iova_alloc: mapped.iova_alloc,
            iova_maps: mapped.iova_maps,
            syncs_for_device: 0,
            syncs_for_cpu: 0,
        });
        let id = match added {
            Ok(id) => id,
            Err(e) => {
                self.undo_iommu(dev, &iova_alloc, &iova_maps);
                return Err(e);
            }
        };
        let sync = matches!(kind, MappingKind::Single | MappingKind::Sg)
            && !attrs.contains(DmaAttrs::SKIP_CPU_SYNC);
        if sync && !dev.is_coherent() {
            for e in entries.iter().filter(|e| e.backing == SgBacking::Pages) {
                self.maintain(dev, e.phys, e.len, dir, false)?;
            }
        }
        Ok((id, segments))
    }

    /// Gives entries DMA addresses for `dev`: an IOVA range, or the physical addresses.
    fn translate_in(
        &self,
        dev: &Device,
        entries: &[SgEntry],
        dir: DmaDirection,
        limits: SegmentLimits,
        min_align: u64,
    ) -> Result<Mapped, DmaError> {
        let Some(domain) = dev.iommu_domain() else {
            let mask = dev.dma_mask();
            let mut segments = Vec::with_capacity(entries.len());
            for (index, e) in entries.iter().enumerate() {
                if e.phys.0 + (e.len - 1) > mask {
                    return Err(DmaError::AboveMask {
                        device: dev.name().to_string(),
                        index,
                        addr: e.phys,
                        len: e.len,
                        mask,
                    });
                }
                segments.push(DmaSegment {
                    addr: DmaAddr(e.phys.0),
                    len: e.len,
                });
            }
            return Ok(Mapped {
                segments,
                iova_alloc: None,
                iova_maps: Vec::new(),
            });
        };
        let layout = iova::layout(entries, limits)?;
        let align = layout.align.max(min_align);
        let base = domain.alloc_iova(layout.total, align, dev.dma_mask())?;
        let alloc = Some((base, layout.total));
        let mut maps: Vec<(DmaAddr, u64)> = Vec::new();
        for (off, pa, len) in iova::map_ranges(&layout) {
            let iova = base.add(off);
            if let Err(e) = domain.map(iova, pa, len, dir.prot()) {
                self.undo_iommu(dev, &alloc, &maps);
                return Err(e.into());
            }
            match maps.last_mut() {
                Some((a, l)) if a.0 + *l == iova.0 => *l += len,
                _ => maps.push((iova, len)),
            }
        }
        Ok(Mapped {
            segments: iova::finalise(&layout, base, limits),
            iova_alloc: alloc,
            iova_maps: maps,
        })
    }

    /// Unmaps IOVA ranges and frees the allocation; errors are impossible for ranges we mapped.
    fn undo_iommu(&self, dev: &Device, alloc: &Option<(DmaAddr, u64)>, maps: &[(DmaAddr, u64)]) {
        if let Some(domain) = dev.iommu_domain() {
            for &(iova, len) in maps {
                let _ = domain.unmap(iova, len);
            }
            if let Some((base, size)) = *alloc {
                let _ = domain.free_iova(base, size);
            }
        }
    }

    /// The core of every unmap: checker, cache maintenance with the caller's direction, IOMMU.
    pub(crate) fn unmap_core(
        &self,
        dev: &Device,
        req: &UnmapRequest<'_>,
        attrs: DmaAttrs,
    ) -> Result<MappingInfo, DmaError> {
        let info = self.checker.remove_mapping(req)?;
        let sync = matches!(info.kind, MappingKind::Single | MappingKind::Sg)
            && !attrs.contains(DmaAttrs::SKIP_CPU_SYNC);
        if sync && !dev.is_coherent() {
            for r in info.phys.iter().filter(|r| r.pages) {
                self.maintain(dev, r.addr, r.len, req.dir, true)?;
            }
        }
        self.undo_iommu(dev, &info.iova_alloc, &info.iova_maps);
        Ok(info)
    }

    /// Cache maintenance of `[pa, pa + len)` for a non-coherent device (see the module table).
    /// Counted against `dev` ([`Device::cache_maintenance`]).
    pub(super) fn maintain(
        &self,
        dev: &Device,
        pa: PhysAddr,
        len: u64,
        dir: DmaDirection,
        to_cpu: bool,
    ) -> Result<(), DmaError> {
        let cpu = self.soc.cpu();
        let op = match (to_cpu, dir) {
            (false, DmaDirection::FromDevice) => {
                cpu.flush(pa, len)?;
                soc::CacheOp::Flush
            }
            (false, _) => {
                cpu.clean(pa, len)?;
                soc::CacheOp::Clean
            }
            (true, DmaDirection::ToDevice) => return Ok(()),
            (true, _) => {
                cpu.invalidate(pa, len)?;
                soc::CacheOp::Invalidate
            }
        };
        dev.note_cache_maintenance(op, len);
        Ok(())
    }
}

/// Physically contiguous runs among entries.
pub(crate) fn count_runs(entries: &[SgEntry]) -> usize {
    let mut runs = 0;
    let mut end = None;
    for e in entries {
        if end != Some(e.phys.0) {
            runs += 1;
        }
        end = Some(e.phys.0 + e.len);
    }
    runs
}
