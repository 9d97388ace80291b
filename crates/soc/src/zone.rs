//! The inside of a zone: what one zone lock protects.
//!
//! C side: `struct zone` in `include/linux/mmzone.h`.
//!
//! A zone ([`Zone`]) is the page allocator's view of one system bank. Its mutex protects a
//! [`ZoneState`]: the buddy free lists of ordinary pages, one [`CmaArena`] per CMA region in the
//! bank (its own free lists and bitmap), the record of allocated blocks, the pending CMA isolations,
//! and the movable/unmovable counters. See [`crate::page_alloc`] for the locking rules and
//! [`crate::cma`] for isolations.
//!
//! # Invariants
//! - Every page of the bank is in exactly one of: a free block of `normal` or of one region's
//!   free lists, an allocated block recorded in `allocated` (by its first pfn), a block held by an
//!   isolation, or a region bitmap (pages handed out by `cma_alloc`).
//! - `movable_pages + unmovable_pages` is the number of pages in recorded allocated blocks, and
//!   each region's `borrowed` is the number of those pages inside it.
//! - Isolations never overlap each other, and no block overlaps two of them.

use crate::buddy::{FreeArea, MAX_ORDER};
use crate::cma::CmaArena;
use crate::page_alloc::{AllocRequest, MovableOwner};
use crate::phys::BankId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// One allocated block, as recorded by its zone.
pub(crate) struct Alloc {
    pub(crate) order: u32,
    pub(crate) req: AllocRequest,
    pub(crate) owner: Option<Arc<dyn MovableOwner>>,
}

/// A CMA range being emptied by one `cma_alloc` attempt (`MIGRATE_ISOLATE` pageblocks).
pub(crate) struct Isolation {
    pub(crate) id: u64,
    /// First pfn of the range.
    pub(crate) start: u64,
    /// One past the last pfn.
    pub(crate) end: u64,
    /// Blocks overlapping the range that are neither free nor allocated any more: free blocks the
    /// attempt claimed, and borrowers' blocks freed or migrated since.
    pub(crate) held: Vec<(u64, u32)>,
}

/// Where a free block lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arena {
    Normal,
    Cma(usize),
}

/// Everything one zone lock protects.
pub(crate) struct ZoneState {
    pub(crate) normal: FreeArea,
    /// The CMA regions inside this zone, in description order.
    pub(crate) cma: Vec<CmaArena>,
    /// Allocated blocks, by first pfn.
    pub(crate) allocated: HashMap<u64, Alloc>,
    pub(crate) isolations: Vec<Isolation>,
    pub(crate) movable_pages: u64,
    pub(crate) unmovable_pages: u64,
}

impl ZoneState {
    pub(crate) fn arena_of(&self, pfn: u64) -> Arena {
        match self
            .cma
            .iter()
            .position(|c| (c.start..c.end).contains(&pfn))
        {
            Some(i) => Arena::Cma(i),
            None => Arena::Normal,
        }
    }

    pub(crate) fn area_mut(&mut self, arena: Arena) -> &mut FreeArea {
        match arena {
            Arena::Normal => &mut self.normal,
            Arena::Cma(i) => &mut self.cma[i].area,
        }
    }

    /// Returns a block no one owns any more to the free lists, or to the isolation it overlaps.
    pub(crate) fn release_block(&mut self, pfn: u64, order: u32) {
        let end = pfn + (1 << order);
        if let Some(iso) = self
            .isolations
            .iter_mut()
            .find(|i| pfn < i.end && i.start < end)
        {
            iso.held.push((pfn, order));
        } else {
            let arena = self.arena_of(pfn);
            self.area_mut(arena).free(pfn, order);
        }
    }

    pub(crate) fn free_pages(&self) -> u64 {
        self.normal.free_pages() + self.cma.iter().map(|c| c.area.free_pages()).sum::<u64>()
    }

    pub(crate) fn cma_free_pages(&self) -> u64 {
        self.cma.iter().map(|c| c.area.free_pages()).sum()
    }
}

/// One zone: the buddy allocator of one system bank.
pub(crate) struct Zone {
    pub(crate) bank: BankId,
    pub(crate) name: String,
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Protects everything mutable about the zone (see the module's locking rules).
    pub(crate) state: Mutex<ZoneState>,
}

impl ZoneState {
    /// Takes a block that stops being allocated out of the counters.
    pub(crate) fn account_free(&mut self, pfn: u64, alloc: &Alloc) {
        let pages = 1u64 << alloc.order;
        if alloc.req.movable {
            self.movable_pages -= pages;
        } else {
            self.unmovable_pages -= pages;
        }
        if let Arena::Cma(i) = self.arena_of(pfn) {
            self.cma[i].borrowed -= pages;
        }
    }

    /// Puts a block that becomes allocated again into the counters.
    pub(crate) fn account_alloc(&mut self, pfn: u64, alloc: &Alloc) {
        let pages = 1u64 << alloc.order;
        if alloc.req.movable {
            self.movable_pages += pages;
        } else {
            self.unmovable_pages += pages;
        }
        if let Arena::Cma(i) = self.arena_of(pfn) {
            self.cma[i].borrowed += pages;
        }
    }

    /// The allocated block containing page `pfn`, if any.
    pub(crate) fn allocated_block_containing(&self, pfn: u64) -> Option<(u64, &Alloc)> {
        (0..=MAX_ORDER).find_map(|k| {
            let start = pfn & !((1u64 << k) - 1);
            self.allocated
                .get(&start)
                .filter(|a| start + (1u64 << a.order) > pfn)
                .map(|a| (start, a))
        })
    }

    /// The end pfn of an isolation overlapping `[start, end)`, if any.
    pub(crate) fn overlaps_isolation(&self, start: u64, end: u64) -> Option<u64> {
        self.isolations
            .iter()
            .find(|i| start < i.end && i.start < end)
            .map(|i| i.end)
    }

    /// Removes and returns isolation `id`.
    pub(crate) fn take_isolation(&mut self, id: u64) -> Option<Isolation> {
        let i = self.isolations.iter().position(|iso| iso.id == id)?;
        Some(self.isolations.swap_remove(i))
    }
}
