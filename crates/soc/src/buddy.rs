//! The binary buddy system: free lists of power-of-two page blocks that split and coalesce.
//!
//! C side: `mm/page_alloc.c` (`__rmqueue_smallest`, `expand`, `__free_one_page`), the free areas of
//! `struct zone` in `include/linux/mmzone.h`.
//!
//! Memory is handed out in **blocks** of `2^order` pages, `order` in `0..=MAX_ORDER`. A block of
//! order `k` always starts at a page frame number (pfn) that is a multiple of `2^k`, so every block
//! has exactly one **buddy**: the block of the same order whose pfn differs only in bit `k`
//! (`pfn ^ (1 << k)`). Allocating an order-`k` block takes the smallest free block of order `j >= k`
//! and splits it in halves down to order `k`, putting each upper half back on the free list of its
//! order (Linux's `expand`). Freeing a block merges it with its buddy while the buddy is free too,
//! climbing one order per merge (Linux's `__free_one_page`), so freeing everything always restores
//! the initial, maximally merged free lists.
//!
//! A [`FreeArea`] is one such set of free lists over a set of page ranges that never merge with
//! anything outside them. The page allocator keeps one per zone for ordinary pages and one per CMA
//! region (Linux keeps CMA pageblocks on their own `MIGRATE_CMA` lists for the same reason: a CMA
//! page must never coalesce into a block that is handed out for unmovable data).
//!
//! # Physical limits
//! Each free list is an ordered set of pfns, so "a free block whose first `2^k` pages end at or
//! below a limit" is one range query per order (`O(MAX_ORDER * log n)`), even on an 8 GiB bank of two
//! million pages. Among the blocks that fit, the allocator takes one of the smallest order (least
//! splitting, least fragmentation) and, within that order, the highest-addressed: Linux serves a
//! request from the highest zone its GFP mask allows so that `ZONE_DMA`/`ZONE_DMA32` stay free for
//! devices that can reach nothing else; inside one bank, taking high addresses first has the same
//! effect.
//!
//! This type holds no lock and checks nothing about ownership: the page allocator wraps it, keeps
//! the record of allocated blocks, and validates every free before it reaches [`FreeArea::free`].
//!
//! # Invariants
//! - Every free block of order `k` starts at a multiple of `2^k` and lies wholly inside the ranges
//!   the area was given.
//! - Free blocks never overlap one another.
//! - No free block's buddy is also free at the same order (merging is eager).
//! - `free_pages` is the sum of `2^k` over all free blocks.

use std::collections::BTreeSet;

/// The highest block order: blocks hold `1..=2^MAX_ORDER` pages (4 KiB to 4 MiB).
pub const MAX_ORDER: u32 = 10;

/// Number of distinct orders, the length of per-order arrays such as free counts.
pub const NR_ORDERS: usize = MAX_ORDER as usize + 1;

/// Free lists of one allocation arena. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct FreeArea {
    /// Start pfns of the free blocks, one ordered set per order.
    free: [BTreeSet<u64>; NR_ORDERS],
    /// Total pages in free blocks.
    free_pages: u64,
}

/// Splits `[start, end)` into maximal naturally aligned blocks, lowest first: the way memblock
/// hands a range of memory to the buddy allocator at boot.
pub fn carve(start: u64, end: u64) -> impl Iterator<Item = (u64, u32)> {
    let mut at = start;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let align = if at == 0 {
            MAX_ORDER
        } else {
            at.trailing_zeros().min(MAX_ORDER)
        };
        let fit = (end - at).ilog2().min(MAX_ORDER);
        let order = align.min(fit);
        let block = (at, order);
        at += 1 << order;
        Some(block)
    })
}

impl FreeArea {
    /// An area with no free pages.
    pub fn new() -> FreeArea {
        FreeArea::default()
    }

    /// Total pages in free blocks.
    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }

    /// Number of free blocks of each order (`/proc/buddyinfo`).
    pub fn counts(&self) -> [u64; NR_ORDERS] {
        std::array::from_fn(|k| self.free[k].len() as u64)
    }

    /// Gives the pages `[start, end)` to the area, merging with free neighbours.
    ///
    /// The caller guarantees that none of these pages is free or allocated already.
    pub fn free_range(&mut self, start: u64, end: u64) {
        for (pfn, order) in carve(start, end) {
            self.free(pfn, order);
        }
    }

    /// Frees the block `(pfn, order)`, merging it with its buddy as long as the buddy is free.
    ///
    /// The caller guarantees that the block is aligned, lies inside the area's ranges and that none
    /// of its pages is free.
    pub fn free(&mut self, mut pfn: u64, mut order: u32) {
        self.free_pages += 1 << order;
        while order < MAX_ORDER {
            let buddy = pfn ^ (1 << order);
            if !self.free[order as usize].remove(&buddy) {
                break;
            }
            pfn = pfn.min(buddy);
            order += 1;
        }
        self.free[order as usize].insert(pfn);
    }

    /// Whether some free block of order `>= order` could serve an order-`order` request whose
    /// pages must all lie below `end_pfn`.
    pub fn can_alloc(&self, order: u32, end_pfn: u64) -> bool {
        self.find(order, end_pfn).is_some()
    }

    fn find(&self, order: u32, end_pfn: u64) -> Option<(u64, u32)> {
        let last_start = end_pfn.checked_sub(1 << order)?;
        (order..=MAX_ORDER).find_map(|j| {
            self.free[j as usize]
                .range(..=last_start)
                .next_back()
                .map(|&p| (p, j))
        })
    }

    /// Takes an order-`order` block whose pages all lie below `end_pfn` (exclusive), splitting a
    /// larger block if needed. Returns its pfn, or `None` if no free block qualifies.
    pub fn alloc(&mut self, order: u32, end_pfn: u64) -> Option<u64> {
        let (pfn, mut j) = self.find(order, end_pfn)?;
        self.free[j as usize].remove(&pfn);
        // expand(): keep the lowest half, give back the upper halves.
        while j > order {
            j -= 1;
            self.free[j as usize].insert(pfn + (1 << j));
        }
        self.free_pages -= 1 << order;
        Some(pfn)
    }

    /// The free block that contains page `pfn`, if that page is free.
    pub fn free_block_containing(&self, pfn: u64) -> Option<(u64, u32)> {
        (0..=MAX_ORDER).find_map(|k| {
            let start = pfn & !((1u64 << k) - 1);
            self.free[k as usize].contains(&start).then_some((start, k))
        })
    }

    /// Removes the free block `(pfn, order)` from the free lists (it must be free), as
    /// `alloc_contig_range` takes pages it has isolated.
    pub fn take_block(&mut self, pfn: u64, order: u32) -> bool {
        let taken = self.free[order as usize].remove(&pfn);
        if taken {
            self.free_pages -= 1 << order;
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carve_makes_maximal_aligned_blocks() {
        let blocks: Vec<_> = carve(3, 3 + 1024 + 5).collect();
        assert_eq!(blocks.first(), Some(&(3, 0)));
        let total: u64 = blocks.iter().map(|&(_, o)| 1u64 << o).sum();
        assert_eq!(total, 1029);
        assert!(blocks.iter().all(|&(p, o)| p & ((1 << o) - 1) == 0));
        assert_eq!(carve(0, 4096).count(), 4);
        assert_eq!(carve(5, 5).count(), 0);
    }

    #[test]
    fn split_then_free_restores_one_max_order_block() {
        let mut a = FreeArea::new();
        a.free_range(1024, 2048);
        assert_eq!(a.counts()[MAX_ORDER as usize], 1);
        let p = a.alloc(0, u64::MAX).unwrap();
        assert_eq!(p, 1024);
        let c = a.counts();
        assert!(c[..MAX_ORDER as usize].iter().all(|&n| n == 1), "{c:?}");
        a.free(p, 0);
        assert_eq!(a.counts()[MAX_ORDER as usize], 1);
        assert_eq!(a.free_pages(), 1024);
    }

    #[test]
    fn limit_picks_the_highest_block_that_fits() {
        let mut a = FreeArea::new();
        a.free_range(0, 4096);
        assert_eq!(a.alloc(10, 2048), Some(1024));
        assert_eq!(a.alloc(10, 2048), Some(0));
        assert_eq!(a.alloc(10, 2048), None);
        assert_eq!(a.alloc(0, 0), None);
        assert_eq!(a.free_block_containing(3000), Some((2048, 10)));
        assert_eq!(a.free_block_containing(5000), None);
    }
}
