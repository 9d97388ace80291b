//! Scatter-gather tables: a buffer as a list of physically contiguous runs.
//!
//! C side: `lib/scatterlist.c` (`sg_alloc_table_from_pages_segment()`), `include/linux/scatterlist.h`
//! (`struct sg_table`: `orig_nents` CPU entries, `nents` mapped DMA segments).
//!
//! A buffer made of pages scattered over physical memory is described by an [`SgTable`]: one
//! [`SgEntry`] per physically contiguous run. The CPU side (the entries) is fixed when the table is
//! built; the device side (the [`DmaSegment`]s) exists only while the table is mapped for one
//! device by [`DmaApi::map_sg`](crate::DmaApi::map_sg), and may have fewer segments than entries
//! (an IOMMU joins scattered runs into one IOVA range).
//!
//! # Building rules
//! 1. Physically contiguous neighbours of the same backing are merged into one entry
//!    ([`SgBacking::Pages`] with struct pages, or [`SgBacking::Resource`] for a carveout).
//! 2. No entry is longer than [`SegmentLimits::max_segment_size`] (rounded down to whole pages, as
//!    `sg_alloc_table_from_pages_segment()` does).
//! 3. No entry crosses a multiple of `segment_boundary_mask + 1`.
//! 4. Entries keep the order of the input; an empty input, an empty range, or a range that wraps the
//!    address space is an error.
//!
//! ```
//! use dma::{SegmentLimits, SgBacking, SgTable};
//! use soc::PhysAddr;
//! let limits = SegmentLimits::new(8192, 0xffff_ffff).unwrap();
//! // Three contiguous pages, then one elsewhere: 8 KiB + 4 KiB + 4 KiB entries.
//! let sgt = SgTable::from_ranges(
//!     &[(PhysAddr(0x10000), 0x3000), (PhysAddr(0x40000), 0x1000)],
//!     SgBacking::Pages,
//!     limits,
//! ).unwrap();
//! assert_eq!(sgt.orig_nents(), 3);
//! assert_eq!(sgt.entries()[0].len, 8192);
//! assert_eq!(sgt.nents(), 0, "not mapped yet");
//! ```

use crate::attrs::{DmaAttrs, DmaDirection};
use crate::error::DmaError;
use soc::{DmaAddr, Page, PhysAddr, PAGE_SIZE};

/// What kind of memory an sg entry describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SgBacking {
    /// System RAM with struct pages: mapped with cache maintenance for non-coherent devices.
    Pages,
    /// Memory without struct pages (a carveout, device-local memory): mapped like
    /// `dma_map_resource()`, without cache maintenance; the CPU reaches it uncached.
    Resource,
}

/// One CPU-side entry: a physically contiguous run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SgEntry {
    /// First physical byte (`sg_phys()`).
    pub phys: PhysAddr,
    /// Length in bytes (`sg->length`).
    pub len: u64,
    /// Whether the run has struct pages.
    pub backing: SgBacking,
}

/// One device-side segment of a mapped table (`sg_dma_address()`, `sg_dma_len()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DmaSegment {
    /// First DMA address, as the device sees it.
    pub addr: DmaAddr,
    /// Length in bytes.
    pub len: u64,
}

/// A device's scatter-gather limits (`dma_get_max_seg_size()`, `dma_get_seg_boundary()`).
///
/// # Invariants
/// `max_segment_size` is a non-zero multiple of [`PAGE_SIZE`]; `boundary_mask + 1` is a power of
/// two no smaller than [`PAGE_SIZE`] (or `boundary_mask` is `u64::MAX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SegmentLimits {
    max_segment_size: u64,
    boundary_mask: u64,
}

impl SegmentLimits {
    /// No limit: segments of any length anywhere.
    pub const UNLIMITED: SegmentLimits = SegmentLimits {
        max_segment_size: !(PAGE_SIZE - 1),
        boundary_mask: u64::MAX,
    };

    /// Limits from a maximum segment size (rounded down to whole pages) and a boundary mask.
    ///
    /// Errors: a maximum below one page, or a mask that is not `2^n - 1` with `2^n >= PAGE_SIZE`.
    pub fn new(max_segment_size: u64, boundary_mask: u64) -> Result<SegmentLimits, DmaError> {
        let max = max_segment_size & !(PAGE_SIZE - 1);
        if max == 0 {
            return Err(DmaError::InvalidArgument(format!(
                "max segment size {max_segment_size:#x} is below one page"
            )));
        }
        let valid_mask = boundary_mask == u64::MAX
            || (boundary_mask >= PAGE_SIZE - 1 && (boundary_mask + 1).is_power_of_two());
        if !valid_mask {
            return Err(DmaError::InvalidArgument(format!(
                "segment boundary mask {boundary_mask:#x} is not 2^n - 1 of at least a page"
            )));
        }
        // INVARIANT: checked just above.
        Ok(SegmentLimits {
            max_segment_size: max,
            boundary_mask,
        })
    }

    /// The limits of a device, as its description declares them.
    pub fn of_device(dev: &soc::Device) -> Result<SegmentLimits, DmaError> {
        SegmentLimits::new(dev.max_segment_size(), dev.segment_boundary_mask())
            .map_err(|e| DmaError::InvalidArgument(format!("{}: {e}", dev.name())))
    }

    /// The strictest of two limits: the smaller size and the smaller boundary.
    pub fn strictest(self, other: SegmentLimits) -> SegmentLimits {
        SegmentLimits {
            max_segment_size: self.max_segment_size.min(other.max_segment_size),
            boundary_mask: self.boundary_mask.min(other.boundary_mask),
        }
    }

    /// Largest segment, in bytes.
    pub fn max_segment_size(self) -> u64 {
        self.max_segment_size
    }

    /// A segment may not cross a multiple of `boundary_mask + 1`.
    pub fn boundary_mask(self) -> u64 {
        self.boundary_mask
    }

    /// Length of the longest segment that may start at `addr` with `len` bytes left.
    pub(crate) fn piece_at(self, addr: u64, len: u64) -> u64 {
        let mut n = len.min(self.max_segment_size);
        if self.boundary_mask != u64::MAX {
            let to_boundary = (addr | self.boundary_mask)
                .wrapping_add(1)
                .wrapping_sub(addr);
            if to_boundary != 0 {
                n = n.min(to_boundary);
            }
        }
        n
    }

    /// Whether `[addr, addr + len)` is a legal segment under these limits.
    pub fn allows(self, addr: u64, len: u64) -> bool {
        len <= self.max_segment_size && !self.crosses_boundary(addr, len)
    }

    /// Whether `[addr, addr + len)` crosses a multiple of `boundary_mask + 1`.
    pub fn crosses_boundary(self, addr: u64, len: u64) -> bool {
        len > 0
            && (addr & !self.boundary_mask) != (addr.wrapping_add(len - 1) & !self.boundary_mask)
    }
}

/// The mapped state of a table: which device, how, and the device-side segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SgMapping {
    pub(crate) device: String,
    pub(crate) dir: DmaDirection,
    pub(crate) attrs: DmaAttrs,
    pub(crate) segments: Vec<DmaSegment>,
}

impl SgMapping {
    /// The device the table is mapped for.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The direction it was mapped with.
    pub fn dir(&self) -> DmaDirection {
        self.dir
    }

    /// The attributes it was mapped with.
    pub fn attrs(&self) -> DmaAttrs {
        self.attrs
    }
}

/// `struct sg_table`: the CPU-side entries, and the DMA segments while mapped for one device.
///
/// # Invariants
/// `entries` is non-empty; every entry has a non-zero length and does not wrap the address space.
#[derive(Debug, PartialEq, Eq)]
pub struct SgTable {
    entries: Vec<SgEntry>,
    limits: SegmentLimits,
    pub(crate) mapping: Option<SgMapping>,
}

impl SgTable {
    /// Builds a table from page blocks (`sg_alloc_table_from_pages_segment()`), each block
    /// `PAGE_SIZE << order` bytes, following the module's building rules.
    pub fn from_pages(pages: &[Page], limits: SegmentLimits) -> Result<SgTable, DmaError> {
        let mut ranges = Vec::with_capacity(pages.len());
        for p in pages {
            if p.order >= 64 - soc::PAGE_SHIFT {
                return Err(DmaError::InvalidArgument(format!(
                    "page order {} is too large",
                    p.order
                )));
            }
            ranges.push((p.addr, PAGE_SIZE << p.order));
        }
        SgTable::from_ranges(&ranges, SgBacking::Pages, limits)
    }

    /// Builds a table from physical ranges of one backing, following the module's building rules.
    pub fn from_ranges(
        ranges: &[(PhysAddr, u64)],
        backing: SgBacking,
        limits: SegmentLimits,
    ) -> Result<SgTable, DmaError> {
        if ranges.is_empty() {
            return Err(DmaError::ZeroSize("sg table (no ranges)"));
        }
        // Rule 1: merge physically contiguous neighbours.
        let mut runs: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (i, &(pa, len)) in ranges.iter().enumerate() {
            if len == 0 {
                return Err(DmaError::BadEntry {
                    index: i,
                    addr: pa,
                    len,
                    reason: "empty range".into(),
                });
            }
            if pa.0.checked_add(len).is_none() {
                return Err(DmaError::BadEntry {
                    index: i,
                    addr: pa,
                    len,
                    reason: "range wraps the address space".into(),
                });
            }
            match runs.last_mut() {
                Some((start, rlen))
                    if *start + *rlen == pa.0 && rlen.checked_add(len).is_some() =>
                {
                    *rlen += len
                }
                _ => runs.push((pa.0, len)),
            }
        }
        // Rules 2 and 3: split each run at the size limit and at segment boundaries.
        let mut entries = Vec::with_capacity(runs.len());
        for (start, len) in runs {
            let mut done = 0;
            while done < len {
                let n = limits.piece_at(start + done, len - done);
                entries.push(SgEntry {
                    phys: PhysAddr(start + done),
                    len: n,
                    backing,
                });
                done += n;
            }
        }
        // INVARIANT: non-empty input, every piece non-zero and checked against wrapping.
        Ok(SgTable {
            entries,
            limits,
            mapping: None,
        })
    }

    /// An unmapped copy of the CPU side, to map for another device (what a dma-buf exporter does
    /// for each attachment).
    pub fn dup(&self) -> SgTable {
        SgTable {
            entries: self.entries.clone(),
            limits: self.limits,
            mapping: None,
        }
    }

    /// The CPU-side entries.
    pub fn entries(&self) -> &[SgEntry] {
        &self.entries
    }

    /// `orig_nents`: number of CPU-side entries.
    pub fn orig_nents(&self) -> usize {
        self.entries.len()
    }

    /// `nents`: number of DMA segments while mapped, 0 when not mapped.
    pub fn nents(&self) -> usize {
        self.mapping.as_ref().map_or(0, |m| m.segments.len())
    }

    /// The limits the table was built with.
    pub fn limits(&self) -> SegmentLimits {
        self.limits
    }

    /// Total bytes of the buffer.
    pub fn size(&self) -> u64 {
        self.entries.iter().map(|e| e.len).sum()
    }

    /// Number of physically contiguous runs (entries split only by limits count once).
    pub fn phys_runs(&self) -> usize {
        let mut runs = 0;
        let mut end = None;
        for e in &self.entries {
            if end != Some(e.phys.0) {
                runs += 1;
            }
            end = Some(e.phys.0 + e.len);
        }
        runs
    }

    /// The mapped state, if mapped.
    pub fn mapping(&self) -> Option<&SgMapping> {
        self.mapping.as_ref()
    }

    /// Whether the table is mapped for a device.
    pub fn is_mapped(&self) -> bool {
        self.mapping.is_some()
    }

    /// The DMA segments (`for_each_sgtable_dma_sg()`); empty when not mapped.
    pub fn dma_segments(&self) -> &[DmaSegment] {
        self.mapping.as_ref().map_or(&[], |m| &m.segments)
    }

    /// The first DMA address (`sg_dma_address(sgt->sgl)`), if mapped.
    pub fn dma_address(&self) -> Option<DmaAddr> {
        self.dma_segments().first().map(|s| s.addr)
    }

    /// Whether the mapping is one contiguous DMA range (always true through an IOMMU).
    pub fn is_dma_contiguous(&self) -> bool {
        self.dma_segments()
            .windows(2)
            .all(|w| w[0].addr.0.checked_add(w[0].len) == Some(w[1].addr.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: u64, mask: u64) -> SegmentLimits {
        SegmentLimits::new(max, mask).unwrap()
    }

    #[test]
    fn contiguous_pages_merge_and_split_at_the_boundary() {
        // 8 contiguous pages starting one page below a 16 KiB boundary.
        let sgt = SgTable::from_ranges(
            &[(PhysAddr(0x3000), 0x8000)],
            SgBacking::Pages,
            limits(1 << 20, 0x3fff),
        )
        .unwrap();
        let lens: Vec<_> = sgt.entries().iter().map(|e| (e.phys.0, e.len)).collect();
        assert_eq!(
            lens,
            vec![(0x3000, 0x1000), (0x4000, 0x4000), (0x8000, 0x3000)]
        );
    }

    #[test]
    fn bad_limits_and_ranges_are_named() {
        assert!(SegmentLimits::new(100, u64::MAX)
            .unwrap_err()
            .to_string()
            .contains("0x64"));
        assert!(SegmentLimits::new(4096, 0x1233)
            .unwrap_err()
            .to_string()
            .contains("0x1233"));
        let e = SgTable::from_ranges(
            &[(PhysAddr(0), 4096), (PhysAddr(8192), 0)],
            SgBacking::Pages,
            SegmentLimits::UNLIMITED,
        )
        .unwrap_err();
        assert!(matches!(e, DmaError::BadEntry { index: 1, .. }), "{e}");
        let e = SgTable::from_ranges(
            &[(PhysAddr(u64::MAX - 10), 4096)],
            SgBacking::Pages,
            SegmentLimits::UNLIMITED,
        )
        .unwrap_err();
        assert!(e.to_string().contains("wraps"));
        assert!(SgTable::from_ranges(&[], SgBacking::Pages, SegmentLimits::UNLIMITED).is_err());
    }

    #[test]
    fn limits_round_down_and_combine() {
        let l = limits(0x1800, 0xffff).strictest(limits(1 << 20, 0x3fff));
        assert_eq!(l.max_segment_size(), 0x1000);
        assert_eq!(l.boundary_mask(), 0x3fff);
        assert!(l.crosses_boundary(0x3000, 0x2000));
        assert!(!l.crosses_boundary(0x4000, 0x1000));
        assert_eq!(
            SegmentLimits::UNLIMITED.piece_at(u64::MAX - 4095, 4096),
            4096
        );
    }
}
