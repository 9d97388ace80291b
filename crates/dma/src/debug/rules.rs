//! The checker's rules: pure functions from the registry and one event to findings.
//!
//! C side: `check_unmap()`, `check_sync()`, `check_sg_segment()`, `active_cacheline_insert()` and
//! `dma_debug_device_change()` of `kernel/dma/debug.c`; the access, staleness, free and fault rules
//! have no kernel counterpart (they need to see the bus).
//!
//! Each rule only reads the [`Registry`]; recording, strict mode and disabled kinds are the
//! [`Checker`](super::Checker)'s business.

use super::finding::{Finding, FindingAddr, FindingKind};
use super::registry::{MappingInfo, MappingKind, Registry};
use crate::attrs::{DmaAttrs, DmaDirection};
use crate::sg::{DmaSegment, SegmentLimits};
use soc::{DmaAccess, DmaAddr, IommuFaultRecord, PhysAddr, CACHE_LINE_SIZE};

/// An unmap as the caller asked for it (`struct dma_debug_entry ref` of `check_unmap()`).
#[derive(Clone, Debug)]
pub(crate) struct UnmapRequest<'a> {
    pub device: &'a str,
    pub addr: DmaAddr,
    pub size: u64,
    pub kind: MappingKind,
    pub dir: DmaDirection,
    /// For sg unmaps: the nents passed (should be `orig_nents`).
    pub nents: Option<usize>,
}

/// A sync as the caller asked for it.
#[derive(Clone, Debug)]
pub(crate) struct SyncRequest<'a> {
    pub device: &'a str,
    pub addr: DmaAddr,
    pub size: u64,
    pub dir: DmaDirection,
    pub to_cpu: bool,
    /// For sg syncs: the table's DMA segments, each of which must lie in the mapping (instead of
    /// `[addr, addr + size)`, which may span IOVA padding).
    pub segments: Option<&'a [DmaSegment]>,
}

fn finding(
    kind: FindingKind,
    device: &str,
    address: FindingAddr,
    size: u64,
    context: String,
) -> Finding {
    Finding {
        kind,
        device: device.to_string(),
        address,
        size,
        context,
    }
}

/// Rules applied when a mapping is added: segment limits (`check_sg_segment()`) and overlapping
/// cachelines (`active_cacheline_insert()` returning `-EEXIST`).
pub(crate) fn check_map(reg: &Registry, new: &MappingInfo, limits: SegmentLimits) -> Vec<Finding> {
    let mut out = Vec::new();
    if new.kind == MappingKind::Sg {
        for (i, s) in new.segments.iter().enumerate() {
            if s.len > limits.max_segment_size() {
                out.push(finding(
                    FindingKind::SegmentTooLong,
                    &new.device,
                    FindingAddr::Dma(s.addr),
                    s.len,
                    format!(
                        "mapping sg segment {i} longer than device claims to support [len={:#x}] [max={:#x}]",
                        s.len,
                        limits.max_segment_size()
                    ),
                ));
            }
            if limits.crosses_boundary(s.addr.0, s.len) {
                out.push(finding(
                    FindingKind::SegmentCrossesBoundary,
                    &new.device,
                    FindingAddr::Dma(s.addr),
                    s.len,
                    format!(
                        "mapping sg segment {i} across boundary [start={}] [end={:#x}] [boundary={:#x}]",
                        s.addr,
                        s.addr.0 + s.len - 1,
                        limits.boundary_mask()
                    ),
                ));
            }
        }
    }
    // Cacheline tracking: only page-backed streaming mappings the device may write are tracked.
    let tracked = |m: &MappingInfo| {
        matches!(m.kind, MappingKind::Single | MappingKind::Sg) && m.dir != DmaDirection::ToDevice
    };
    if tracked(new) && !new.attrs.contains(DmaAttrs::SKIP_CPU_SYNC) {
        let mut seen = Vec::new();
        for r in new.phys.iter().filter(|r| r.pages) {
            let lo = r.addr.0 & !(CACHE_LINE_SIZE - 1);
            let hi = (r.addr.0 + r.len).div_ceil(CACHE_LINE_SIZE) * CACHE_LINE_SIZE;
            for (id, s, e) in reg.phys.overlapping(
                lo.saturating_sub(CACHE_LINE_SIZE),
                hi.saturating_add(CACHE_LINE_SIZE),
            ) {
                let (olo, ohi) = (
                    s & !(CACHE_LINE_SIZE - 1),
                    e.div_ceil(CACHE_LINE_SIZE) * CACHE_LINE_SIZE,
                );
                if id == new.id || seen.contains(&id) || olo >= hi || ohi <= lo {
                    continue;
                }
                let Some(other) = reg.maps.get(&id) else {
                    continue;
                };
                if !tracked(other) {
                    continue;
                }
                seen.push(id);
                let at = lo.max(olo);
                out.push(finding(
                    FindingKind::OverlappingMapping,
                    &new.device,
                    FindingAddr::Phys(PhysAddr(at)),
                    hi.min(ohi) - at,
                    format!(
                        "cacheline tracking EEXIST, overlapping mappings aren't supported: {} overlaps {}'s {}",
                        new.describe(),
                        other.device,
                        other.describe()
                    ),
                ));
            }
        }
    }
    out
}

/// `check_unmap()`: the mapping the request names (if any) and what is wrong with the request.
pub(crate) fn check_unmap(reg: &Registry, req: &UnmapRequest<'_>) -> (Option<u64>, Vec<Finding>) {
    let candidates = reg.at(req.device, req.addr);
    let addr = FindingAddr::Dma(req.addr);
    let Some(m) = candidates
        .iter()
        .find(|m| m.kind == req.kind && m.size == req.size && m.dir == req.dir)
        .or_else(|| candidates.first())
    else {
        let inside = reg.containing(req.device, req.addr);
        let hint = match inside.first() {
            Some(m) => format!("; the address is inside {}", m.describe()),
            None => String::new(),
        };
        let f = finding(
            FindingKind::UnmapUnknown,
            req.device,
            addr,
            req.size,
            format!(
                "device driver tries to free DMA memory it has not allocated ({} unmap){hint}",
                req.kind
            ),
        );
        return (None, vec![f]);
    };
    let mut out = Vec::new();
    if m.size != req.size {
        out.push(finding(
            FindingKind::UnmapWrongSize,
            req.device,
            addr,
            req.size,
            format!(
                "device driver frees DMA memory with different size [map size={:#x}] [unmap size={:#x}] of {}",
                m.size,
                req.size,
                m.describe()
            ),
        ));
    }
    if m.kind != req.kind {
        out.push(finding(
            FindingKind::UnmapWrongType,
            req.device,
            addr,
            m.size,
            format!(
                "device driver frees DMA memory with wrong function [mapped as {}] [unmapped as {}]",
                m.kind, req.kind
            ),
        ));
    }
    if let Some(n) = req.nents {
        if m.kind == MappingKind::Sg && n != m.orig_nents {
            out.push(finding(
                FindingKind::UnmapWrongNents,
                req.device,
                addr,
                m.size,
                format!(
                    "device driver frees DMA sg list with different entry count [map count={}] [unmap count={n}]",
                    m.orig_nents
                ),
            ));
        }
    }
    if m.dir != req.dir {
        out.push(finding(
            FindingKind::UnmapWrongDirection,
            req.device,
            addr,
            m.size,
            format!(
                "device driver frees DMA memory with different direction [mapped with {}] [unmapped with {}]",
                m.dir, req.dir
            ),
        ));
    }
    (Some(m.id), out)
}

/// `check_sync()`: the mapping synced (if any) and what is wrong with the request.
pub(crate) fn check_sync(reg: &Registry, req: &SyncRequest<'_>) -> (Option<u64>, Vec<Finding>) {
    let addr = FindingAddr::Dma(req.addr);
    let Some(m) = reg.containing(req.device, req.addr).into_iter().next() else {
        let f = finding(
            FindingKind::SyncUnmapped,
            req.device,
            addr,
            req.size,
            "device driver tries to sync DMA memory it has not allocated".to_string(),
        );
        return (None, vec![f]);
    };
    let mut out = Vec::new();
    let one = [DmaSegment {
        addr: req.addr,
        len: req.size,
    }];
    let ranges = req.segments.unwrap_or(&one);
    let uncovered = reg.dma.get(req.device).and_then(|ix| {
        ranges.iter().find_map(|s| {
            ix.first_uncovered(s.addr.0, s.addr.0.saturating_add(s.len), |id| id == m.id)
        })
    });
    if let Some(at) = uncovered {
        out.push(finding(
            FindingKind::SyncOutOfRange,
            req.device,
            addr,
            req.size,
            format!(
                "device driver syncs DMA memory outside allocated range [sync {}+{:#x}] [first byte outside: {at:#x}] of {}",
                req.addr,
                req.size,
                m.describe()
            ),
        ));
    }
    let what = if req.to_cpu { "for cpu" } else { "for device" };
    if m.dir != DmaDirection::Bidirectional {
        if req.dir != m.dir {
            out.push(finding(
                FindingKind::SyncWrongDirection,
                req.device,
                addr,
                req.size,
                format!(
                    "device driver syncs DMA memory {what} with different direction [mapped with {}] [synced with {}]",
                    m.dir, req.dir
                ),
            ));
        }
        if req.to_cpu && m.dir != DmaDirection::FromDevice && req.dir != DmaDirection::ToDevice {
            out.push(finding(
                FindingKind::SyncReadOnlyForCpu,
                req.device,
                addr,
                req.size,
                format!(
                    "device driver syncs device read-only DMA memory for cpu [mapped with {}] [synced with {}]",
                    m.dir, req.dir
                ),
            ));
        }
        if !req.to_cpu && m.dir != DmaDirection::ToDevice && req.dir != DmaDirection::FromDevice {
            out.push(finding(
                FindingKind::SyncWriteOnlyForDevice,
                req.device,
                addr,
                req.size,
                format!(
                    "device driver syncs device write-only DMA memory to device [mapped with {}] [synced with {}]",
                    m.dir, req.dir
                ),
            ));
        }
    }
    (Some(m.id), out)
}

/// A device access checked against the device's live mappings, and a non-coherent read against
/// the dirty CPU lines it missed.
pub(crate) fn check_access(reg: &Registry, ev: &DmaAccess<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let (start, end) = (ev.addr.0, ev.addr.0.saturating_add(ev.len));
    let op = if ev.write { "write" } else { "read" };
    let ix = reg.dma.get(ev.device);
    let uncovered = match ix {
        Some(ix) => ix.first_uncovered(start, end, |_| true),
        None => Some(start),
    };
    if let Some(at) = uncovered {
        out.push(finding(
            FindingKind::AccessOutsideMapping,
            ev.device,
            FindingAddr::Dma(ev.addr),
            ev.len,
            format!(
                "device {op} of {:#x} bytes at {} reaches {at:#x}, which no live DMA mapping of {} covers",
                ev.len, ev.addr, ev.device
            ),
        ));
    } else if let Some(ix) = ix {
        let allowed = |id: u64| {
            reg.maps.get(&id).is_some_and(|m| {
                if ev.write {
                    m.dir.device_writes()
                } else {
                    m.dir.device_reads()
                }
            })
        };
        if let Some(at) = ix.first_uncovered(start, end, allowed) {
            let m = reg.containing(ev.device, DmaAddr(at));
            let what = m.first().map_or_else(String::new, |m| m.describe());
            out.push(finding(
                FindingKind::AccessAgainstDirection,
                ev.device,
                FindingAddr::Dma(ev.addr),
                ev.len,
                format!("device {op} at {at:#x} against the direction of {what}"),
            ));
        }
    }
    if !ev.write && !ev.coherent && ev.stale_cpu_bytes > 0 {
        let m = reg.containing(ev.device, ev.addr);
        let what = match m.first() {
            Some(m) => format!(
                "{}; synced for device {} time(s) since mapping",
                m.describe(),
                m.syncs_for_device
            ),
            None => "no live mapping".to_string(),
        };
        out.push(finding(
            FindingKind::StaleCpuData,
            ev.device,
            FindingAddr::Dma(ev.addr),
            ev.len,
            format!(
                "non-coherent device read {:#x} bytes of which {} were dirty in the CPU cache and never cleaned \
                 (missing dma_sync_*_for_device or a map with DMA_ATTR_SKIP_CPU_SYNC): {what}",
                ev.len, ev.stale_cpu_bytes
            ),
        ));
    }
    out
}

/// The CPU read cache lines a device wrote under.
pub(crate) fn check_cpu_stale(reg: &Registry, pa: PhysAddr, len: u64) -> Finding {
    let maps = reg.over_phys(pa, len);
    let writer = maps
        .iter()
        .find(|m| m.dir.device_writes() && m.kind != MappingKind::Coherent)
        .or(maps.first());
    let (device, what) = match writer {
        Some(m) => (
            m.device.as_str(),
            format!(
                "{}; synced for cpu {} time(s) since mapping (missing dma_sync_*_for_cpu or unmap before the CPU read)",
                m.describe(),
                m.syncs_for_cpu
            ),
        ),
        None => (
            "cpu",
            "no live mapping covers it (unmapped with DMA_ATTR_SKIP_CPU_SYNC and no sync for cpu?)".to_string(),
        ),
    };
    finding(
        FindingKind::CpuStaleRead,
        device,
        FindingAddr::Phys(pa),
        len,
        format!("the CPU read {len:#x} bytes of stale cache lines a non-coherent device wrote under: {what}"),
    )
}

/// Memory about to be freed while mappings still cover it.
pub(crate) fn check_free(reg: &Registry, pa: PhysAddr, len: u64) -> Vec<Finding> {
    reg.over_phys(pa, len)
        .into_iter()
        .map(|m| {
            finding(
                FindingKind::FreeWhileMapped,
                &m.device,
                FindingAddr::Phys(pa),
                len,
                format!(
                    "memory freed while still mapped for DMA by {}: {}",
                    m.device,
                    m.describe()
                ),
            )
        })
        .collect()
}

/// An IOMMU fault, with what the checker knows about the address.
pub(crate) fn check_fault(reg: &Registry, rec: &IommuFaultRecord) -> Finding {
    let inside = reg.containing(&rec.device, rec.iova);
    let what = match inside.first() {
        Some(m) => format!("inside {}", m.describe()),
        None => "no live DMA mapping of the device covers it".to_string(),
    };
    finding(
        FindingKind::IommuFault,
        &rec.device,
        FindingAddr::Dma(rec.iova),
        rec.len,
        format!(
            "{} {} at {} refused ({}): {what}",
            rec.iommu,
            if rec.write { "write" } else { "read" },
            rec.iova,
            rec.reason
        ),
    )
}

/// `dma_debug_device_change()` on unbind: mappings still live for `device`.
pub(crate) fn check_leaks(reg: &Registry, device: &str) -> Option<Finding> {
    let live = reg.list(Some(device));
    let first = live.first()?;
    Some(finding(
        FindingKind::Leak,
        device,
        FindingAddr::Dma(first.addr),
        first.size,
        format!(
            "device driver has pending DMA allocations while released from device [count={}]; one of them: {}",
            live.len(),
            first.describe()
        ),
    ))
}
