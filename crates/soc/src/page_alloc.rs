//! The page allocator: one buddy zone per system bank, with movable and unmovable allocations.
//!
//! C side: `mm/page_alloc.c` (`alloc_pages`, `__free_pages`), zones and migratetypes in
//! `include/linux/mmzone.h`.
//!
//! Linux splits RAM into zones (`ZONE_DMA`, `ZONE_DMA32`, `ZONE_NORMAL`) so that a device with a
//! narrow DMA mask can still be served, and within a zone keeps free pages on per-order buddy free
//! lists. Here a **zone is a system bank** ([`BankKind::System`](crate::BankKind)); carveouts and
//! device-local banks have no `struct page`s and are served by a [`GenPool`](crate::GenPool)
//! instead. A request ([`AllocRequest`]) names an order, optionally a bank, optionally a **limit**
//! (the highest physical address the caller can use, inclusive: a DMA mask), and whether the pages
//! are movable. Without a bank, the first system bank (in description order) that can serve the
//! request does; the limit replaces Linux's zone modifiers: no page of the returned block lies above
//! it.
//!
//! # Migratetypes
//! Every allocation is either unmovable (the default: kernel data, pinned DMA buffers) or
//! **movable**. A movable allocation made with [`PageAllocator::alloc_movable`] names an owner
//! ([`MovableOwner`]) that can repoint its references when the pages move; such allocations may
//! borrow idle pages of CMA regions (`MIGRATE_CMA` pageblocks), and [`PageAllocator::cma_alloc`]
//! migrates them out when it needs the range back (see [`crate::cma`]). Unmovable pages, and movable
//! pages without an owner, never land in a CMA region. Like Linux's `__rmqueue`, a movable request
//! takes CMA pages first when more than half of the zone's free pages are CMA pages, else ordinary
//! pages first. (Linux also groups movable and unmovable pages by 2 MiB pageblock inside a zone to
//! fight fragmentation; this model does not.)
//!
//! # Errors
//! A request that cannot be met answers [`SocError::NoMemory`] naming bank, order and limit; an
//! order above [`MAX_ORDER`] or a non-system bank is [`SocError::InvalidArgument`]. A free of a
//! block that is not allocated (double free, wild address) is [`SocError::NotAllocated`], of the
//! wrong order [`SocError::WrongOrder`]; in both cases nothing changes.
//!
//! # Locking
//! 1. Each zone has one mutex (the zone lock) that protects its free lists, its CMA regions'
//!    bitmaps and free lists, the record of allocated blocks and the pending CMA isolations.
//! 2. At most one zone lock is held at a time; a request that may be served by several banks takes
//!    their locks one after the other.
//! 3. No zone lock is held while calling a [`MovableOwner`] or copying page contents. An owner may
//!    therefore call back into the allocator from `migrate`, and may hold its own locks while
//!    calling `alloc_*`/`free_pages`.
//! 4. The counters in [`PageAllocStats`] that span zones (migrations) are atomics, read without
//!    locks; a snapshot is consistent per zone, not across zones.
//!
//! ```
//! use soc::{AllocRequest, BankDesc, BankKind, ByteSize, PageAllocator, PhysMem};
//! use std::sync::Arc;
//! let mem = Arc::new(PhysMem::new(&[BankDesc {
//!     name: "dram0".into(), kind: BankKind::System, base: ByteSize(0), size: ByteSize(64 << 20),
//! }]).unwrap());
//! let pages = PageAllocator::new(mem, &[]).unwrap();
//! let p = pages.alloc_pages(&AllocRequest::new(2).below(0xff_ffff)).unwrap();
//! assert!(p.end().0 <= 0x100_0000);
//! pages.free_pages(p).unwrap();
//! assert!(pages.free_pages(p).is_err(), "double free");
//! ```

use crate::addr::{PhysAddr, PAGE_SHIFT, PAGE_SIZE};
use crate::buddy::{FreeArea, MAX_ORDER, NR_ORDERS};
use crate::cma::{place_regions, CmaRegion};
use crate::desc::{BankKind, CmaDesc};
use crate::error::SocError;
use crate::phys::{BankId, PhysMem};
use crate::zone::{Alloc, Arena, Zone, ZoneState};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A block of `2^order` physically contiguous pages (`struct page *` plus its order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Page {
    /// Physical address of the first byte; aligned to the block size.
    pub addr: PhysAddr,
    /// log2 of the number of pages.
    pub order: u32,
}

impl Page {
    /// Number of pages in the block.
    pub fn pages(&self) -> u64 {
        1u64 << self.order.min(MAX_ORDER)
    }

    /// Size of the block in bytes.
    pub fn size(&self) -> u64 {
        self.pages() << PAGE_SHIFT
    }

    /// One past the last byte of the block.
    pub fn end(&self) -> PhysAddr {
        PhysAddr(self.addr.0.saturating_add(self.size()))
    }

    /// Page frame number of the first page.
    pub fn pfn(&self) -> u64 {
        self.addr.pfn()
    }
}

/// What [`PageAllocator::alloc_pages`] is asked for (the order and GFP flags of `alloc_pages`).
///
/// ```
/// use soc::{AllocRequest, BankId};
/// let req = AllocRequest::new(3).in_bank(BankId(0)).below(0xffff_ffff).as_movable();
/// assert_eq!((req.order, req.bank, req.limit, req.movable), (3, Some(BankId(0)), Some(0xffff_ffff), true));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AllocRequest {
    /// log2 of the number of contiguous pages, at most [`MAX_ORDER`].
    pub order: u32,
    /// The bank to allocate from; `None`: the first system bank that can serve the request.
    pub bank: Option<BankId>,
    /// Highest usable physical address, inclusive (a DMA mask); `None`: anywhere.
    pub limit: Option<u64>,
    /// `__GFP_MOVABLE`: the pages may be migrated (only allocations with an owner actually are).
    pub movable: bool,
}

impl AllocRequest {
    /// An unmovable request for `2^order` pages, anywhere.
    pub fn new(order: u32) -> AllocRequest {
        AllocRequest {
            order,
            ..AllocRequest::default()
        }
    }

    /// The same request, restricted to `bank`.
    pub fn in_bank(self, bank: BankId) -> AllocRequest {
        AllocRequest {
            bank: Some(bank),
            ..self
        }
    }

    /// The same request, with no byte above `limit` (inclusive).
    pub fn below(self, limit: u64) -> AllocRequest {
        AllocRequest {
            limit: Some(limit),
            ..self
        }
    }

    /// The same request, movable.
    pub fn as_movable(self) -> AllocRequest {
        AllocRequest {
            movable: true,
            ..self
        }
    }
}

/// The owner of a movable allocation: whoever holds references to the pages and can repoint them
/// (Linux's `address_space_operations::migrate_folio` and the rmap walk behind it).
///
/// # Contract
/// 1. **Who calls it:** [`PageAllocator::cma_alloc`], on the caller's thread, when it needs the
///    owner's block `old` for a contiguous allocation; and again with the arguments swapped to undo
///    a migration if that `cma_alloc` attempt fails later.
/// 2. **On entry:** `new` is allocated to the same owner and already holds a copy of `old`'s
///    bytes. No allocator lock is held: the owner may take its own locks and call the allocator.
/// 3. **What it does:** repoint every reference from `old` to `new`, so that the owner's later
///    accesses and its eventual `free_pages` use `new`. It must not free either block.
/// 4. **Errors:** [`SocError::Busy`] if the pages are pinned (in use by a device, mapped for DMA);
///    any error leaves the owner on `old`, and the allocator frees `new` itself.
/// 5. **Must not:** call `cma_alloc`, or be called while its caller holds a lock `migrate` takes
///    (a `cma_alloc` made under an owner's lock deadlocks on that owner).
/// 6. An owner that writes to `old` between the copy and its repointing must refuse (`Busy`)
///    rather than lose the write; this is the same rule as Linux's page lock during migration.
/// 7. The allocator keeps a strong reference to the owner until the block is freed; an owner
///    that holds the allocator itself should do so through a `Weak`.
///
/// The deadlock rule 5 forbids, in three lines:
/// ```text
/// buffer.lock();  pages.cma_alloc(..)      // thread A holds the owner's lock
///   -> owner.migrate(old, new)             // cma_alloc calls the owner (no allocator lock held)
///     -> buffer.lock()                     // the owner waits for A: A waits forever
/// ```
pub trait MovableOwner: Send + Sync {
    /// Repoints the owner's references from `old` to `new`; see the trait documentation.
    fn migrate(&self, old: Page, new: Page) -> Result<(), SocError>;
}

/// Free and used pages of one zone, from [`PageAllocator::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneStats {
    /// The bank.
    pub bank: BankId,
    /// The bank's name.
    pub name: String,
    /// Pages in the bank, CMA regions included.
    pub total_pages: u64,
    /// Free pages, idle CMA pages included (`MemFree`).
    pub free_pages: u64,
    /// Pages in the bank's CMA regions (`CmaTotal`).
    pub cma_pages: u64,
    /// Idle CMA pages (`CmaFree`).
    pub cma_free_pages: u64,
    /// Pages of unmovable allocations.
    pub unmovable_pages: u64,
    /// Pages of movable allocations, in or out of CMA.
    pub movable_pages: u64,
    /// Pages of movable allocations lent from CMA regions.
    pub borrowed_pages: u64,
}

/// A snapshot of the page allocator's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageAllocStats {
    /// One entry per system bank, in bank order.
    pub zones: Vec<ZoneStats>,
    /// Movable blocks migrated out of CMA ranges by `cma_alloc` and kept there.
    pub migrations: u64,
    /// Migrations undone because a later borrower of the same `cma_alloc` attempt refused.
    pub migrations_rolled_back: u64,
    /// `cma_alloc` calls that succeeded.
    pub cma_allocs: u64,
    /// `cma_alloc` calls that failed.
    pub cma_failures: u64,
}

/// The machine's page allocator: buddy zones over the system banks, CMA regions inside them.
/// `Send + Sync`; see the module documentation for the locking rules.
///
/// # Invariants
/// - One zone per system bank, in bank order; no zone for carveout or device-local banks.
/// - Every page of a zone is in exactly one place: a free list, an allocated block, a block held
///   by a pending `cma_alloc` isolation, or a CMA bitmap. So blocks handed out never overlap, and
///   freeing everything restores the free counts the allocator started with.
/// - A block handed out lies inside its zone, below the request's limit, and is naturally aligned.
pub struct PageAllocator {
    pub(crate) mem: Arc<PhysMem>,
    pub(crate) zones: Vec<Zone>,
    pub(crate) regions: Vec<CmaRegion>,
    pub(crate) next_isolation: AtomicU64,
    pub(crate) migrations: AtomicU64,
    pub(crate) rollbacks: AtomicU64,
    pub(crate) cma_allocs: AtomicU64,
    pub(crate) cma_failures: AtomicU64,
}

/// The first pfn above a limit (inclusive highest usable address).
fn end_pfn_of(limit: Option<u64>) -> u64 {
    match limit {
        None => u64::MAX,
        Some(l) => (l >> PAGE_SHIFT) + u64::from(l & (PAGE_SIZE - 1) == PAGE_SIZE - 1),
    }
}

impl PageAllocator {
    /// Builds a zone for every system bank of `mem`, all pages free, and carves the CMA regions
    /// `cma` from them (see [`crate::cma`] for the checks: the bank exists and is system memory,
    /// the region is page aligned, inside the bank, and overlaps no other region).
    pub fn new(mem: Arc<PhysMem>, cma: &[CmaDesc]) -> Result<PageAllocator, SocError> {
        let mut zones: Vec<Zone> = mem
            .banks()
            .iter()
            .filter(|b| b.kind() == BankKind::System)
            .map(|b| Zone {
                bank: b.id(),
                name: b.name().to_string(),
                start: b.base().pfn(),
                end: b.end().pfn(),
                state: Mutex::new(ZoneState {
                    normal: FreeArea::new(),
                    cma: Vec::new(),
                    allocated: HashMap::new(),
                    isolations: Vec::new(),
                    movable_pages: 0,
                    unmovable_pages: 0,
                }),
            })
            .collect();
        let regions = place_regions(&mem, cma, &mut zones)?;
        for zone in &mut zones {
            let st = zone.state.get_mut();
            let mut holes: Vec<(u64, u64)> = st.cma.iter().map(|c| (c.start, c.end)).collect();
            holes.sort_unstable();
            let mut at = zone.start;
            for (s, e) in holes.into_iter().chain([(zone.end, zone.end)]) {
                st.normal.free_range(at, s);
                at = e;
            }
            for c in &mut st.cma {
                c.area.free_range(c.start, c.end);
            }
        }
        Ok(PageAllocator {
            mem,
            zones,
            regions,
            next_isolation: AtomicU64::new(1),
            migrations: AtomicU64::new(0),
            rollbacks: AtomicU64::new(0),
            cma_allocs: AtomicU64::new(0),
            cma_failures: AtomicU64::new(0),
        })
    }

    /// The physical memory the allocator hands out.
    pub fn mem(&self) -> &Arc<PhysMem> {
        &self.mem
    }

    pub(crate) fn zone_of_bank(&self, bank: BankId) -> Result<&Zone, SocError> {
        if let Some(z) = self.zones.iter().find(|z| z.bank == bank) {
            return Ok(z);
        }
        match self.mem.banks().get(bank.0) {
            None => Err(SocError::UnknownBank(format!("#{}", bank.0))),
            Some(b) => Err(SocError::InvalidArgument(format!(
                "bank `{}` is {} memory without struct pages: the page allocator does not serve it",
                b.name(),
                b.kind()
            ))),
        }
    }

    /// `alloc_pages`: a block of `2^req.order` pages that are not movable by the allocator (with
    /// `req.movable` they are accounted as movable, but without an owner they never borrow CMA).
    ///
    /// Errors: order above [`MAX_ORDER`] or a bank without struct pages (`EINVAL`); nothing free
    /// that satisfies bank and limit ([`SocError::NoMemory`] naming both).
    pub fn alloc_pages(&self, req: &AllocRequest) -> Result<Page, SocError> {
        self.alloc_inner(req, None)
    }

    /// A movable allocation owned by `owner`, which may be placed in an idle CMA region and
    /// migrated later (see [`MovableOwner`]). `req.movable` is implied.
    pub fn alloc_movable(
        &self,
        req: &AllocRequest,
        owner: Arc<dyn MovableOwner>,
    ) -> Result<Page, SocError> {
        self.alloc_inner(
            &AllocRequest {
                movable: true,
                ..*req
            },
            Some(owner),
        )
    }

    pub(crate) fn alloc_inner(
        &self,
        req: &AllocRequest,
        owner: Option<Arc<dyn MovableOwner>>,
    ) -> Result<Page, SocError> {
        if req.order > MAX_ORDER {
            return Err(SocError::InvalidArgument(format!(
                "order {} is above MAX_ORDER {MAX_ORDER}",
                req.order
            )));
        }
        let end_pfn = end_pfn_of(req.limit);
        let zones: Vec<&Zone> = match req.bank {
            Some(b) => vec![self.zone_of_bank(b)?],
            None => self.zones.iter().collect(),
        };
        for zone in &zones {
            if let Some(pfn) = self.alloc_in_zone(zone, req, end_pfn.min(zone.end), &owner) {
                return Ok(Page {
                    addr: PhysAddr(pfn << PAGE_SHIFT),
                    order: req.order,
                });
            }
        }
        let size = crate::addr::human_size(PAGE_SIZE << req.order);
        let limit = req
            .limit
            .map(|l| format!(" below {l:#x}"))
            .unwrap_or_default();
        Err(SocError::NoMemory(match zones.as_slice() {
            [] => "the machine has no system bank".to_string(),
            [z] if end_pfn < z.start + (1 << req.order) => format!(
                "bank `{}` starts at {:#x}: no order-{} block ({size}) fits{limit}",
                z.name,
                z.start << PAGE_SHIFT,
                req.order
            ),
            [z] => format!(
                "no free order-{} block ({size}) in bank `{}`{limit}",
                req.order, z.name
            ),
            _ => format!(
                "no free order-{} block ({size}) in any system bank{limit}",
                req.order
            ),
        }))
    }

    fn alloc_in_zone(
        &self,
        zone: &Zone,
        req: &AllocRequest,
        end_pfn: u64,
        owner: &Option<Arc<dyn MovableOwner>>,
    ) -> Option<u64> {
        if end_pfn < zone.start + (1 << req.order) {
            return None;
        }
        let mut st = zone.state.lock();
        let mut arenas = vec![Arena::Normal];
        if owner.is_some() {
            let cma = (0..st.cma.len()).map(Arena::Cma);
            if st.cma_free_pages() > st.free_pages() / 2 {
                arenas = cma.chain(arenas).collect();
            } else {
                arenas.extend(cma);
            }
        }
        let (arena, pfn) = arenas
            .into_iter()
            .find_map(|a| st.area_mut(a).alloc(req.order, end_pfn).map(|p| (a, p)))?;
        let pages = 1u64 << req.order;
        if req.movable {
            st.movable_pages += pages;
        } else {
            st.unmovable_pages += pages;
        }
        if let Arena::Cma(i) = arena {
            st.cma[i].borrowed += pages;
        }
        // INVARIANT: every allocated block is recorded exactly once, by its first pfn.
        st.allocated.insert(
            pfn,
            Alloc {
                order: req.order,
                req: *req,
                owner: owner.clone(),
            },
        );
        Some(pfn)
    }

    /// `__free_pages`: gives a block back. It must be a block this allocator handed out, with the
    /// order it was allocated with; otherwise nothing changes and the error says why.
    pub fn free_pages(&self, page: Page) -> Result<(), SocError> {
        let not_allocated = || SocError::NotAllocated {
            what: "free_pages",
            addr: page.addr,
            len: page.size(),
        };
        if page.order > MAX_ORDER {
            return Err(SocError::InvalidArgument(format!(
                "order {} is above MAX_ORDER {MAX_ORDER}",
                page.order
            )));
        }
        if !page.addr.is_aligned(PAGE_SIZE) {
            return Err(SocError::Misaligned {
                what: "free_pages address",
                value: page.addr.0,
                align: PAGE_SIZE,
            });
        }
        let pfn = page.pfn();
        let zone = self
            .zones
            .iter()
            .find(|z| (z.start..z.end).contains(&pfn))
            .ok_or_else(not_allocated)?;
        let mut st = zone.state.lock();
        let alloc = st.allocated.get(&pfn).ok_or_else(not_allocated)?;
        if alloc.order != page.order {
            return Err(SocError::WrongOrder {
                addr: page.addr,
                given: page.order,
                allocated: alloc.order,
            });
        }
        let alloc = st.allocated.remove(&pfn).ok_or_else(not_allocated)?;
        st.account_free(pfn, &alloc);
        st.release_block(pfn, alloc.order);
        Ok(())
    }

    /// Free blocks per order in the bank's zone, CMA regions included (a line of
    /// `/proc/buddyinfo`).
    pub fn free_counts(&self, bank: BankId) -> Result<[u64; NR_ORDERS], SocError> {
        let st = self.zone_of_bank(bank)?.state.lock();
        let mut counts = st.normal.counts();
        for c in &st.cma {
            for (n, m) in counts.iter_mut().zip(c.area.counts()) {
                *n += m;
            }
        }
        Ok(counts)
    }

    /// A snapshot of the counters: free and used pages per zone, CMA use, migrations.
    pub fn stats(&self) -> PageAllocStats {
        let zones = self
            .zones
            .iter()
            .map(|z| {
                let st = z.state.lock();
                ZoneStats {
                    bank: z.bank,
                    name: z.name.clone(),
                    total_pages: z.end - z.start,
                    free_pages: st.free_pages(),
                    cma_pages: st.cma.iter().map(|c| c.end - c.start).sum(),
                    cma_free_pages: st.cma_free_pages(),
                    unmovable_pages: st.unmovable_pages,
                    movable_pages: st.movable_pages,
                    borrowed_pages: st.cma.iter().map(|c| c.borrowed).sum(),
                }
            })
            .collect();
        PageAllocStats {
            zones,
            migrations: self.migrations.load(Ordering::Relaxed),
            migrations_rolled_back: self.rollbacks.load(Ordering::Relaxed),
            cma_allocs: self.cma_allocs.load(Ordering::Relaxed),
            cma_failures: self.cma_failures.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for PageAllocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageAllocator")
            .field("stats", &self.stats())
            .finish()
    }
}
