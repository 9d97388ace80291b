//! How an sg list is laid out in one contiguous IOVA range, and which DMA segments it reports.
//!
//! C side: `iommu_dma_map_sg()` and `__finalise_sg()` in `drivers/iommu/dma-iommu.c`.
//!
//! # Rules (copied from dma-iommu)
//! 1. Each entry gets a page-aligned slot of `align_up(offset_in_page + len, PAGE_SIZE)` bytes,
//!    slots back to back, so the whole list needs one IOVA allocation.
//! 2. If an entry's slot would cross a segment boundary (`boundary_mask + 1`) and the room left
//!    before it is smaller than the slot, the previous slot is padded up to the boundary.
//! 3. The allocation is aligned to the smaller of its size rounded up to a power of two and the
//!    boundary, so the padding computed from offset 0 holds at the real base.
//! 4. Reported segments: an entry joins the previous segment if that one is open (the previous
//!    entry ended on a page boundary), the entry starts on a page boundary, its IOVA is not at a
//!    segment boundary, and the merged length stays within `max_segment_size`; otherwise it
//!    starts a new segment. An entry longer than `max_segment_size` stays one segment (the checker
//!    reports it).

use crate::error::DmaError;
use crate::sg::{DmaSegment, SegmentLimits, SgEntry};
use soc::{DmaAddr, PhysAddr, PAGE_SIZE};

/// One entry's slot in the IOVA range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Offset of the slot from the start of the range (page aligned).
    pub off: u64,
    /// Page-aligned physical address to map at the slot.
    pub pa: PhysAddr,
    /// Page-aligned bytes to map.
    pub map_len: u64,
    /// The entry's offset inside its first page.
    pub in_page: u64,
    /// The entry's true length.
    pub len: u64,
    /// Slot length including any padding after it.
    pub padded: u64,
}

/// The layout of a whole list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Total IOVA bytes (page multiple).
    pub total: u64,
    /// Required alignment of the IOVA base.
    pub align: u64,
    /// One slot per entry.
    pub slots: Vec<Slot>,
}

fn too_big() -> DmaError {
    DmaError::InvalidArgument("the sg list does not fit in a 64-bit IOVA space".into())
}

/// Rules 1-3.
pub(crate) fn layout(entries: &[SgEntry], limits: SegmentLimits) -> Result<Layout, DmaError> {
    let mask = limits.boundary_mask();
    let mut slots: Vec<Slot> = Vec::with_capacity(entries.len());
    let mut total: u64 = 0;
    for e in entries {
        let in_page = e.phys.page_offset();
        let map_len = e
            .len
            .checked_add(in_page)
            .and_then(|n| soc::align_up(n, PAGE_SIZE))
            .ok_or_else(too_big)?;
        let pad = mask.wrapping_sub(total).wrapping_add(1) & mask;
        if pad != 0 && pad < map_len - 1 {
            if let Some(prev) = slots.last_mut() {
                prev.padded += pad;
                total = total.checked_add(pad).ok_or_else(too_big)?;
            }
        }
        slots.push(Slot {
            off: total,
            pa: PhysAddr(e.phys.0 - in_page),
            map_len,
            in_page,
            len: e.len,
            padded: map_len,
        });
        total = total.checked_add(map_len).ok_or_else(too_big)?;
    }
    let pow2 = total.checked_next_power_of_two().unwrap_or(1 << 63);
    let boundary = if mask == u64::MAX { pow2 } else { mask + 1 };
    Ok(Layout {
        total,
        align: pow2.min(boundary).max(PAGE_SIZE),
        slots,
    })
}

/// Rule 4: the DMA segments of a layout placed at `base`.
pub(crate) fn finalise(layout: &Layout, base: DmaAddr, limits: SegmentLimits) -> Vec<DmaSegment> {
    let (mask, max_len) = (limits.boundary_mask(), limits.max_segment_size());
    let mut segs: Vec<DmaSegment> = Vec::new();
    let mut cur_len = 0u64;
    let mut dma = base.0;
    for s in &layout.slots {
        let joins = cur_len != 0 && s.in_page == 0 && dma & mask != 0 && max_len - cur_len >= s.len;
        match segs.last_mut() {
            Some(last) if joins => {
                cur_len += s.len;
                last.len = cur_len;
            }
            _ => {
                segs.push(DmaSegment {
                    addr: DmaAddr(dma + s.in_page),
                    len: s.len,
                });
                cur_len = s.len;
            }
        }
        dma += s.padded;
        if s.len + s.in_page < s.padded {
            cur_len = 0;
        }
    }
    segs
}

/// The page-aligned IOVA ranges to map, physically contiguous neighbours joined:
/// `(iova offset, pa, len)`.
pub(crate) fn map_ranges(layout: &Layout) -> Vec<(u64, PhysAddr, u64)> {
    let mut out: Vec<(u64, PhysAddr, u64)> = Vec::new();
    for s in &layout.slots {
        match out.last_mut() {
            Some((off, pa, len)) if *off + *len == s.off && pa.0 + *len == s.pa.0 => {
                *len += s.map_len
            }
            _ => out.push((s.off, s.pa, s.map_len)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sg::SgBacking;

    fn entry(pa: u64, len: u64) -> SgEntry {
        SgEntry {
            phys: PhysAddr(pa),
            len,
            backing: SgBacking::Pages,
        }
    }

    #[test]
    fn scattered_pages_become_one_segment_within_the_size_limit() {
        let entries: Vec<_> = (0..8)
            .map(|i| entry(0x100_0000 + i * 0x3000, 0x1000))
            .collect();
        let limits = SegmentLimits::new(0x4000, u64::MAX).unwrap();
        let l = layout(&entries, limits).unwrap();
        assert_eq!(l.total, 0x8000);
        assert_eq!(l.align, 0x8000);
        let segs = finalise(&l, DmaAddr(0x10_0000), limits);
        assert_eq!(
            segs,
            vec![
                DmaSegment {
                    addr: DmaAddr(0x10_0000),
                    len: 0x4000
                },
                DmaSegment {
                    addr: DmaAddr(0x10_4000),
                    len: 0x4000
                },
            ]
        );
        assert_eq!(map_ranges(&l).len(), 8, "nothing physically contiguous");
    }

    #[test]
    fn a_slot_that_would_cross_the_boundary_is_padded_to_it() {
        // 12 KiB, then 8 KiB, with a 16 KiB boundary: the second slot moves to 16 KiB.
        let entries = [entry(0x10_0000, 0x3000), entry(0x20_0000, 0x2000)];
        let limits = SegmentLimits::new(1 << 20, 0x3fff).unwrap();
        let l = layout(&entries, limits).unwrap();
        assert_eq!(l.slots[1].off, 0x4000);
        assert_eq!(l.total, 0x6000);
        let segs = finalise(&l, DmaAddr(0x8_0000), limits);
        assert_eq!(segs.len(), 2, "never merged across the boundary");
        assert_eq!(segs[1].addr, DmaAddr(0x8_4000));
    }

    #[test]
    fn unaligned_entries_keep_their_offset_and_close_the_segment() {
        let entries = [entry(0x10_0100, 0x100), entry(0x20_0000, 0x1000)];
        let l = layout(&entries, SegmentLimits::UNLIMITED).unwrap();
        let segs = finalise(&l, DmaAddr(0x1000), SegmentLimits::UNLIMITED);
        assert_eq!(
            segs[0],
            DmaSegment {
                addr: DmaAddr(0x1100),
                len: 0x100
            }
        );
        assert_eq!(
            segs[1],
            DmaSegment {
                addr: DmaAddr(0x2000),
                len: 0x1000
            }
        );
    }
}
