//! The checker's record of live mappings (`struct dma_debug_entry` and its hash buckets).
//!
//! Every mapping made through [`DmaApi`](crate::DmaApi) is recorded here with both of its views:
//! the device side (DMA segments, indexed per device) and the CPU side (physical runs, indexed
//! across devices). The DMA API itself relies on the record (the IOVA range to free at unmap), so
//! it is kept whether or not any rule is enabled.
//!
//! Interval lookups use one ordered index per address space, keyed by segment start; a query scans
//! back at most the longest segment ever inserted, so its cost is the number of segments near the
//! queried range, not the number of live mappings.

use crate::attrs::{DmaAttrs, DmaDirection};
use crate::sg::DmaSegment;
use soc::{DmaAddr, PhysAddr};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Which API call made a mapping; unmapping with another is `UnmapWrongType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappingKind {
    /// `dma_map_page()` / `dma_map_single()`.
    Single,
    /// `dma_map_sg()` / `dma_map_sgtable()`.
    Sg,
    /// `dma_map_resource()`: memory without struct pages.
    Resource,
    /// `dma_alloc_attrs()`: a coherent allocation's mapping for one device.
    Coherent,
}

impl fmt::Display for MappingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MappingKind::Single => "single",
            MappingKind::Sg => "scatter-gather",
            MappingKind::Resource => "resource",
            MappingKind::Coherent => "coherent",
        })
    }
}

/// One physically contiguous run of a mapping, CPU side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRun {
    /// First byte.
    pub addr: PhysAddr,
    /// Length.
    pub len: u64,
    /// Whether the run has struct pages (cache maintenance and cacheline tracking apply).
    pub pages: bool,
}

/// A live mapping, as the checker knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingInfo {
    /// Unique id in this checker.
    pub id: u64,
    /// The device it is mapped for.
    pub device: String,
    /// The call that made it.
    pub kind: MappingKind,
    /// The DMA address the caller got (the key for unmap).
    pub addr: DmaAddr,
    /// Bytes of the buffer (the sum of the CPU-side runs).
    pub size: u64,
    /// Direction it was mapped with.
    pub dir: DmaDirection,
    /// Attributes it was mapped with.
    pub attrs: DmaAttrs,
    /// CPU-side entries (`orig_nents`); 1 for single and resource mappings.
    pub orig_nents: usize,
    /// Device-side segments.
    pub segments: Vec<DmaSegment>,
    /// CPU-side runs.
    pub phys: Vec<PhysRun>,
    /// The IOVA range allocated for it (behind an IOMMU), freed at unmap.
    pub iova_alloc: Option<(DmaAddr, u64)>,
    /// The IOVA ranges mapped in the IOMMU (the allocation minus boundary padding).
    pub iova_maps: Vec<(DmaAddr, u64)>,
    /// Times synced for the device since it was mapped.
    pub syncs_for_device: u64,
    /// Times synced for the CPU since it was mapped.
    pub syncs_for_cpu: u64,
}

impl MappingInfo {
    /// One line naming the mapping, for finding contexts.
    pub fn describe(&self) -> String {
        format!(
            "{} mapping #{} at {} ({:#x} bytes, {} entries, {}{})",
            self.kind,
            self.id,
            self.addr,
            self.size,
            self.orig_nents,
            self.dir,
            if self.attrs.is_empty() {
                String::new()
            } else {
                format!(", {}", self.attrs)
            }
        )
    }
}

/// An interval index: `(start, id, piece) -> end`.
#[derive(Default, Debug)]
pub(crate) struct SpanIndex {
    map: BTreeMap<(u64, u64, u32), u64>,
    max_len: u64,
}

impl SpanIndex {
    fn insert(&mut self, start: u64, len: u64, id: u64, piece: u32) {
        self.max_len = self.max_len.max(len);
        self.map
            .insert((start, id, piece), start.saturating_add(len));
    }

    fn remove(&mut self, start: u64, id: u64, piece: u32) {
        self.map.remove(&(start, id, piece));
    }

    /// `(id, start, end)` of every span intersecting `[start, end)`.
    pub(crate) fn overlapping(
        &self,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        let from = start.saturating_sub(self.max_len);
        self.map
            .range((from, 0, 0)..(end, 0, 0))
            .filter(move |(_, &e)| e > start)
            .map(|(&(s, id, _), &e)| (id, s, e))
    }

    /// The first byte of `[start, end)` not covered by spans accepted by `keep`, if any.
    pub(crate) fn first_uncovered(
        &self,
        start: u64,
        end: u64,
        keep: impl Fn(u64) -> bool,
    ) -> Option<u64> {
        let mut spans: Vec<(u64, u64)> = self
            .overlapping(start, end)
            .filter(|&(id, _, _)| keep(id))
            .map(|(_, s, e)| (s, e))
            .collect();
        spans.sort_unstable();
        let mut cursor = start;
        for (s, e) in spans {
            if s > cursor {
                break;
            }
            cursor = cursor.max(e);
            if cursor >= end {
                return None;
            }
        }
        (cursor < end).then_some(cursor)
    }
}

/// All live mappings of one checker.
#[derive(Default, Debug)]
pub(crate) struct Registry {
    next_id: u64,
    pub(crate) maps: HashMap<u64, MappingInfo>,
    /// device -> DMA address handed out -> ids (a direct-mapped device may map one address twice).
    by_addr: HashMap<String, BTreeMap<u64, Vec<u64>>>,
    /// device -> its DMA segments.
    pub(crate) dma: HashMap<String, SpanIndex>,
    /// Physical runs of every device's mappings.
    pub(crate) phys: SpanIndex,
}

impl Registry {
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn insert(&mut self, info: MappingInfo) {
        let id = info.id;
        self.by_addr
            .entry(info.device.clone())
            .or_default()
            .entry(info.addr.0)
            .or_default()
            .push(id);
        let dma = self.dma.entry(info.device.clone()).or_default();
        for (i, s) in info.segments.iter().enumerate() {
            dma.insert(s.addr.0, s.len, id, i as u32);
        }
        for (i, r) in info.phys.iter().enumerate() {
            self.phys.insert(r.addr.0, r.len, id, i as u32);
        }
        self.maps.insert(id, info);
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<MappingInfo> {
        let info = self.maps.remove(&id)?;
        if let Some(by) = self.by_addr.get_mut(&info.device) {
            if let Some(ids) = by.get_mut(&info.addr.0) {
                ids.retain(|&x| x != id);
                if ids.is_empty() {
                    by.remove(&info.addr.0);
                }
            }
        }
        if let Some(dma) = self.dma.get_mut(&info.device) {
            for (i, s) in info.segments.iter().enumerate() {
                dma.remove(s.addr.0, id, i as u32);
            }
        }
        for (i, r) in info.phys.iter().enumerate() {
            self.phys.remove(r.addr.0, id, i as u32);
        }
        Some(info)
    }

    /// Mappings of `device` handed out at exactly `addr`.
    pub(crate) fn at(&self, device: &str, addr: DmaAddr) -> Vec<&MappingInfo> {
        self.by_addr
            .get(device)
            .and_then(|by| by.get(&addr.0))
            .map(|ids| ids.iter().filter_map(|id| self.maps.get(id)).collect())
            .unwrap_or_default()
    }

    /// Mappings of `device` with a segment containing `addr`.
    pub(crate) fn containing(&self, device: &str, addr: DmaAddr) -> Vec<&MappingInfo> {
        let Some(dma) = self.dma.get(device) else {
            return Vec::new();
        };
        let mut ids: Vec<u64> = dma
            .overlapping(addr.0, addr.0.saturating_add(1))
            .map(|(id, _, _)| id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.iter().filter_map(|id| self.maps.get(id)).collect()
    }

    /// Mappings with a physical run intersecting `[pa, pa + len)`.
    pub(crate) fn over_phys(&self, pa: PhysAddr, len: u64) -> Vec<&MappingInfo> {
        let mut ids: Vec<u64> = self
            .phys
            .overlapping(pa.0, pa.0.saturating_add(len.max(1)))
            .map(|(id, _, _)| id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.iter().filter_map(|id| self.maps.get(id)).collect()
    }

    /// Live mappings of one device (or of all), oldest first.
    pub(crate) fn list(&self, device: Option<&str>) -> Vec<&MappingInfo> {
        let mut v: Vec<&MappingInfo> = self
            .maps
            .values()
            .filter(|m| device.is_none() || device == Some(m.device.as_str()))
            .collect();
        v.sort_by_key(|m| m.id);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_index_finds_gaps_and_overlaps() {
        let mut ix = SpanIndex::default();
        ix.insert(0x1000, 0x1000, 1, 0);
        ix.insert(0x2000, 0x2000, 1, 1);
        ix.insert(0x5000, 0x1000, 2, 0);
        assert_eq!(ix.first_uncovered(0x1000, 0x4000, |_| true), None);
        assert_eq!(ix.first_uncovered(0x1000, 0x6000, |_| true), Some(0x4000));
        assert_eq!(
            ix.first_uncovered(0x5000, 0x6000, |id| id == 1),
            Some(0x5000)
        );
        assert_eq!(ix.overlapping(0x3fff, 0x5001).count(), 2);
        ix.remove(0x2000, 1, 1);
        assert_eq!(ix.first_uncovered(0x1000, 0x3000, |_| true), Some(0x2000));
    }
}
