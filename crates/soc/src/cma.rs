//! CMA: contiguous memory regions that lend their pages to movable allocations while idle.
//!
//! C side: `mm/cma.c` (`cma_init_reserved_mem`, `cma_alloc`, `cma_release`), `alloc_contig_range`
//! and `MIGRATE_CMA` in `mm/page_alloc.c`, page migration in `mm/migrate.c`.
//!
//! A device without an IOMMU (a camera, a scanout engine) needs megabytes of physically contiguous
//! memory, which the buddy allocator cannot promise once RAM is fragmented. Reserving that memory at
//! boot wastes it while the device is idle. CMA reserves a **region** of a system bank, but gives its
//! pages to the page allocator for **movable** allocations only (the `MIGRATE_CMA` migratetype).
//! When a driver asks for a contiguous range ([`PageAllocator::cma_alloc`]), CMA picks a free
//! range in its bitmap and empties it: borrowed pages are migrated elsewhere, then the whole range
//! is handed out. [`PageAllocator::cma_release`] gives it back to the page allocator.
//!
//! ```
//! use soc::*;
//! use std::sync::{Arc, Mutex};
//!
//! /// A buffer that follows its pages when CMA migrates them.
//! struct Buffer(Mutex<Option<Page>>);
//! impl MovableOwner for Buffer {
//!     fn migrate(&self, old: Page, new: Page) -> Result<(), SocError> {
//!         let mut at = self.0.lock().unwrap();
//!         assert_eq!(*at, Some(old));
//!         *at = Some(new);
//!         Ok(())
//!     }
//! }
//!
//! let bank = BankDesc { name: "dram0".into(), kind: BankKind::System, base: ByteSize(0), size: ByteSize(16 << 20) };
//! let mem = Arc::new(PhysMem::new(&[bank]).unwrap());
//! let region = CmaDesc { name: "cma0".into(), bank: "dram0".into(), size: ByteSize(12 << 20), base: None };
//! let pages = PageAllocator::new(mem.clone(), &[region]).unwrap();
//!
//! // CMA is most of the free memory, so a movable allocation borrows its idle pages.
//! let buf = Arc::new(Buffer(Mutex::new(None)));
//! let p = pages.alloc_movable(&AllocRequest::new(4), buf.clone()).unwrap();
//! *buf.0.lock().unwrap() = Some(p);
//! mem.write(p.addr, b"frame").unwrap();
//! assert!(p.addr.0 >= 4 << 20, "inside the region");
//!
//! // Taking the whole region migrates the borrower out, bytes and all.
//! let base = pages.cma_alloc("cma0", 3072, 0).unwrap();
//! let now = buf.0.lock().unwrap().unwrap();
//! assert!(now.addr.0 < 4 << 20);
//! let mut bytes = [0u8; 5];
//! mem.read(now.addr, &mut bytes).unwrap();
//! assert_eq!(&bytes, b"frame");
//! assert_eq!(pages.stats().migrations, 1);
//! pages.cma_release("cma0", base, 3072).unwrap();
//! ```
//!
//! # Regions
//! A [`CmaDesc`] names a system bank and a size; `base`, if given, is the region's **physical
//! address** (not an offset in the bank), else the region sits at the top of the bank, where Linux
//! places CMA. Both must be page aligned, the region must lie inside its bank, and regions must
//! not overlap; every violation is [`SocError::InvalidDesc`] naming the region.
//!
//! # `cma_alloc`, step by step (the migration contract)
//! 1. Under the zone lock, find the lowest range of `count` pages, aligned to `2^align_order`
//!    pages (absolute page frame numbers), that the region's bitmap shows unallocated and that no
//!    other attempt is emptying (Linux's `bitmap_find_next_zero_area_off`).
//! 2. Still under the lock, walk the range block by block. Free blocks are **claimed** (taken off
//!    the free lists, even the parts of a block that stick out of the range); movable blocks with
//!    an owner are **borrowers**. Anything else (a block another attempt holds) makes the range
//!    unusable. The range is recorded as an *isolation* (`MIGRATE_ISOLATE`): a borrower freed from
//!    now on goes to the isolation, not to the free lists, so no allocation can land in the range.
//! 3. Drop the lock. For each borrower: allocate a replacement block (same order, bank and limit as
//!    the borrower's original request; any movable-eligible pages outside isolated ranges), copy the
//!    bytes with [`PhysMem::copy`](crate::PhysMem::copy), call the owner's
//!    [`migrate(old, new)`](crate::MovableOwner::migrate); on success the old block joins the
//!    isolation.
//! 4. If an owner refuses (pinned: [`SocError::Busy`]) or no replacement can be allocated, the
//!    attempt is **rolled back**: each borrower already moved is copied back and told
//!    `migrate(new, old)`, the replacements are freed, and the claimed blocks go back to the free
//!    lists. Then the next candidate range past the refusing block is tried.
//! 5. When every borrower has moved, retake the lock: the range's pages are all held by the
//!    isolation; mark them allocated in the bitmap, give the parts of held blocks outside the range
//!    back to the free lists, and count the migrations.
//! 6. If no range works: [`SocError::Busy`] if some attempt was refused by a pinned owner, else
//!    [`SocError::NoMemory`]. Every borrower is then where it was (or, if an owner refused to be
//!    moved *back* in step 4, on its replacement with its bytes intact), and every page is either
//!    free or allocated to whoever had it: nothing is lost.
//!
//! # Locking
//! The region's bitmap and free lists belong to its bank's zone and are protected by that zone's
//! lock ([`crate::page_alloc`], rule 1). The lock is dropped across steps 3 and 4: owners are
//! called, and bytes copied, with no allocator lock held, so an owner may free or allocate pages
//! from `migrate`. Concurrent `cma_alloc`s on one region empty disjoint ranges. The one rule left
//! to callers is [`MovableOwner`](crate::MovableOwner) rule 5: never call `cma_alloc` while
//! holding a lock that some owner's `migrate` takes.
//!
//! # What this model leaves out
//! Linux migrates at page granularity and retries transient failures (`-EAGAIN`) a few times;
//! here a borrower moves as one block, and one refusal fails the attempt at once. Migration
//! targets may be idle CMA pages of other ranges (as in Linux); pages that were `cma_alloc`ed
//! are never lent.
//!
//! # Invariants
//! - A region's pages are in exactly one of: a free block of the region's free lists, a movable
//!   block lent to a borrower, a block held by an isolation, or set in the bitmap (handed out by
//!   `cma_alloc`).
//! - Isolations of one zone never overlap, and no block overlaps two of them.
//! - Unmovable allocations never take a region's pages.

use crate::addr::{PhysAddr, PAGE_SHIFT, PAGE_SIZE};
use crate::buddy::FreeArea;
use crate::desc::{BankKind, CmaDesc};
use crate::error::SocError;
use crate::page_alloc::PageAllocator;
use crate::phys::{BankId, PhysMem};
use crate::zone::Zone;

/// Largest `align_order` [`PageAllocator::cma_alloc`] accepts (2^40 pages, 4 PiB).
pub const CMA_MAX_ALIGN_ORDER: u32 = 40;

/// A CMA region as [`PageAllocator::cma_regions`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmaInfo {
    /// The region's name.
    pub name: String,
    /// The system bank it is carved from.
    pub bank: BankId,
    /// First physical address.
    pub base: PhysAddr,
    /// Size in bytes.
    pub size: u64,
    /// Bytes handed out by `cma_alloc`.
    pub used: u64,
    /// Bytes lent to movable allocations.
    pub borrowed: u64,
}

/// Where a region lives: which zone, which arena of that zone, which pages.
pub(crate) struct CmaRegion {
    pub(crate) name: String,
    pub(crate) zone: usize,
    pub(crate) arena: usize,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// The mutable part of a region, inside its zone's state.
pub(crate) struct CmaArena {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Free lists of the region's idle pages (`MIGRATE_CMA`).
    pub(crate) area: FreeArea,
    /// One bit per page, set when handed out by `cma_alloc`.
    pub(crate) bitmap: Vec<u64>,
    /// Pages set in the bitmap.
    pub(crate) used: u64,
    /// Pages lent to movable allocations.
    pub(crate) borrowed: u64,
}

impl CmaArena {
    pub(crate) fn bit(&self, pfn: u64) -> (usize, u64) {
        let i = pfn - self.start;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// The first page in `[from, to)` set in the bitmap.
    pub(crate) fn first_set(&self, from: u64, to: u64) -> Option<u64> {
        let mut pfn = from;
        while pfn < to {
            let (w, _) = self.bit(pfn);
            let shift = (pfn - self.start) % 64;
            let word = self.bitmap[w] >> shift;
            if word != 0 {
                let hit = pfn + u64::from(word.trailing_zeros());
                return (hit < to).then_some(hit);
            }
            pfn += 64 - shift;
        }
        None
    }

    pub(crate) fn set_range(&mut self, from: u64, to: u64, on: bool) {
        for pfn in from..to {
            let (w, b) = self.bit(pfn);
            if on {
                self.bitmap[w] |= b;
            } else {
                self.bitmap[w] &= !b;
            }
        }
    }

    pub(crate) fn all_set(&self, from: u64, to: u64) -> bool {
        (from..to).all(|pfn| {
            let (w, b) = self.bit(pfn);
            self.bitmap[w] & b != 0
        })
    }
}

/// Checks the CMA descriptions against the banks and attaches each region to its zone.
pub(crate) fn place_regions(
    mem: &PhysMem,
    descs: &[CmaDesc],
    zones: &mut [Zone],
) -> Result<Vec<CmaRegion>, SocError> {
    let mut regions: Vec<CmaRegion> = Vec::with_capacity(descs.len());
    for (i, d) in descs.iter().enumerate() {
        let bad = |why: String| SocError::InvalidDesc(format!("CMA region `{}`: {why}", d.name));
        if d.name.is_empty() {
            return Err(SocError::InvalidDesc(format!(
                "CMA region #{i} has an empty name"
            )));
        }
        if regions.iter().any(|r| r.name == d.name) {
            return Err(SocError::InvalidDesc(format!(
                "two CMA regions are named `{}`",
                d.name
            )));
        }
        let bank = mem
            .bank_by_name(&d.bank)
            .map_err(|_| bad(format!("no bank named `{}`", d.bank)))?;
        if bank.kind() != BankKind::System {
            return Err(bad(format!(
                "bank `{}` is {} memory, CMA needs system RAM",
                d.bank,
                bank.kind()
            )));
        }
        let size = d.size.bytes();
        if size == 0 || size & (PAGE_SIZE - 1) != 0 {
            return Err(bad(format!(
                "size {size:#x} is not a non-zero multiple of the page size"
            )));
        }
        let base = match d.base {
            Some(b) => b.bytes(),
            None => bank
                .end()
                .0
                .checked_sub(size)
                .ok_or_else(|| bad(format!("size {size:#x} is larger than the bank")))?,
        };
        if !PhysAddr(base).is_aligned(PAGE_SIZE) {
            return Err(bad(format!("base {base:#x} is not page aligned")));
        }
        if !bank.contains(PhysAddr(base), size) {
            return Err(bad(format!(
                "{base:#x}+{size:#x} is not inside bank `{}` ({}+{:#x})",
                d.bank,
                bank.base(),
                bank.size()
            )));
        }
        let (start, end) = (base >> PAGE_SHIFT, (base + size) >> PAGE_SHIFT);
        if let Some(o) = regions.iter().find(|r| start < r.end && r.start < end) {
            return Err(bad(format!(
                "{base:#x}+{size:#x} overlaps CMA region `{}`",
                o.name
            )));
        }
        let zone = zones
            .iter()
            .position(|z| z.bank == bank.id())
            .ok_or_else(|| bad("its bank has no zone".into()))?;
        let st = zones[zone].state.get_mut();
        st.cma.push(CmaArena {
            start,
            end,
            area: FreeArea::new(),
            bitmap: vec![0; (end - start).div_ceil(64) as usize],
            used: 0,
            borrowed: 0,
        });
        regions.push(CmaRegion {
            name: d.name.clone(),
            zone,
            arena: st.cma.len() - 1,
            start,
            end,
        });
    }
    Ok(regions)
}

impl PageAllocator {
    pub(crate) fn region(&self, name: &str) -> Result<&CmaRegion, SocError> {
        self.regions
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| SocError::UnknownCma(name.to_string()))
    }

    /// The CMA regions, in description order, with how much of each is in use.
    pub fn cma_regions(&self) -> Vec<CmaInfo> {
        self.regions
            .iter()
            .map(|r| {
                let zone = &self.zones[r.zone];
                let st = zone.state.lock();
                let c = &st.cma[r.arena];
                CmaInfo {
                    name: r.name.clone(),
                    bank: zone.bank,
                    base: PhysAddr(r.start << PAGE_SHIFT),
                    size: (r.end - r.start) << PAGE_SHIFT,
                    used: c.used << PAGE_SHIFT,
                    borrowed: c.borrowed << PAGE_SHIFT,
                }
            })
            .collect()
    }

    /// `cma_release`: gives back `count` pages at `addr` that `cma_alloc` handed out from
    /// `region` (all or part of one allocation). Anything else is refused and nothing changes.
    pub fn cma_release(&self, region: &str, addr: PhysAddr, count: u64) -> Result<(), SocError> {
        let r = self.region(region)?;
        if count == 0 {
            return Err(SocError::ZeroSize("cma_release page count"));
        }
        if !addr.is_aligned(PAGE_SIZE) {
            return Err(SocError::Misaligned {
                what: "cma_release address",
                value: addr.0,
                align: PAGE_SIZE,
            });
        }
        let len = count.saturating_mul(PAGE_SIZE);
        let not_allocated = SocError::NotAllocated {
            what: "cma_release",
            addr,
            len,
        };
        let start = addr.pfn();
        let end = match start.checked_add(count) {
            Some(e) if start >= r.start && e <= r.end => e,
            _ => return Err(not_allocated),
        };
        let mut st = self.zones[r.zone].state.lock();
        let c = &mut st.cma[r.arena];
        if !c.all_set(start, end) {
            return Err(not_allocated);
        }
        c.set_range(start, end, false);
        c.used -= count;
        c.area.free_range(start, end);
        Ok(())
    }
}
