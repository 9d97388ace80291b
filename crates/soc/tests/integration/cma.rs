//! CMA regions: validation, contiguous allocation, and migration of movable borrowers.

use crate::page_alloc::{allocator, bank, cma};
use parking_lot::Mutex;
use soc::{
    AllocRequest, BankId, BankKind, MovableOwner, Page, PageAllocator, PhysAddr, PhysMem, SocError,
    PAGE_SIZE,
};
use std::collections::HashSet;
use std::sync::{Arc, Weak};
use uapi::{AsErrno, Errno};

const MIB: u64 = 1 << 20;

/// An owner of many movable blocks that can pin some of them, and that checks the allocator can
/// be re-entered from `migrate`.
#[derive(Default)]
struct Owner {
    blocks: Mutex<Vec<Page>>,
    pinned: Mutex<HashSet<PhysAddr>>,
    moves: Mutex<Vec<(Page, Page)>>,
    reenter: Mutex<Weak<PageAllocator>>,
    /// Blocks the owner frees from inside its first `migrate` call (through `reenter`).
    free_during_migrate: Mutex<Vec<Page>>,
}

impl MovableOwner for Owner {
    fn migrate(&self, old: Page, new: Page) -> Result<(), SocError> {
        if let Some(pages) = self.reenter.lock().upgrade() {
            // Rule 3 of the locking rules: no allocator lock is held here.
            let _ = pages.stats();
            for p in self.free_during_migrate.lock().drain(..) {
                self.blocks.lock().retain(|b| *b != p);
                pages.free_pages(p).unwrap();
            }
        }
        if self.pinned.lock().contains(&old.addr) {
            return Err(SocError::Busy(format!("{} is pinned", old.addr)));
        }
        let mut blocks = self.blocks.lock();
        let slot = blocks
            .iter_mut()
            .find(|b| **b == old)
            .ok_or_else(|| SocError::InvalidArgument("not mine".into()))?;
        *slot = new;
        self.moves.lock().push((old, new));
        Ok(())
    }
}

/// 32 MiB of DRAM with a 16 MiB CMA region at its top, 16 MiB ordinary memory below.
fn machine() -> (Arc<PageAllocator>, Arc<PhysMem>) {
    let mem = Arc::new(PhysMem::new(&[bank("dram0", BankKind::System, 0, 32 * MIB)]).unwrap());
    let pages =
        Arc::new(PageAllocator::new(mem.clone(), &[cma("cma0", "dram0", None, 16 * MIB)]).unwrap());
    (pages, mem)
}

/// Fills ordinary memory with unmovable ballast so that movable allocations borrow CMA pages.
fn ballast(pages: &PageAllocator) -> Vec<Page> {
    let mut out = Vec::new();
    for order in (0..=10).rev() {
        while let Ok(p) = pages.alloc_pages(&AllocRequest::new(order)) {
            out.push(p);
        }
    }
    out
}

/// `n` movable order-`order` blocks owned by `owner`, each filled with its own byte pattern.
fn borrow(pages: &PageAllocator, mem: &PhysMem, owner: &Arc<Owner>, n: usize, order: u32) {
    for i in 0..n {
        let p = pages
            .alloc_movable(&AllocRequest::new(order), owner.clone())
            .unwrap();
        mem.fill(p.addr, p.size(), 0x10 + i as u8).unwrap();
        mem.write(p.addr, &(i as u64).to_le_bytes()).unwrap();
        owner.blocks.lock().push(p);
    }
}

/// Checks every block of `owner` still holds the pattern `borrow` wrote.
fn assert_data_intact(mem: &PhysMem, owner: &Owner) {
    for (i, p) in owner.blocks.lock().iter().enumerate() {
        let mut buf = vec![0u8; p.size() as usize];
        mem.read(p.addr, &mut buf).unwrap();
        assert_eq!(&buf[..8], &(i as u64).to_le_bytes(), "block {i} at {p:?}");
        assert!(
            buf[8..].iter().all(|&b| b == 0x10 + i as u8),
            "block {i} at {p:?} lost its bytes"
        );
    }
}

fn in_cma(p: &Page) -> bool {
    p.addr.0 >= 16 * MIB
}

#[test]
fn cma_region_defaults_to_the_top_of_its_bank() {
    let (pages, _) = machine();
    let info = &pages.cma_regions()[0];
    assert_eq!(
        (info.name.as_str(), info.bank, info.base, info.size),
        ("cma0", BankId(0), PhysAddr(16 * MIB), 16 * MIB)
    );
    assert_eq!((info.used, info.borrowed), (0, 0));
}

#[test]
fn bad_cma_regions_are_refused_and_named() {
    let banks = [
        bank("dram0", BankKind::System, 0, 32 * MIB),
        bank("carve", BankKind::Carveout, 64 * MIB, MIB),
    ];
    let mem = Arc::new(PhysMem::new(&banks).unwrap());
    let err = |regions: &[soc::CmaDesc]| {
        PageAllocator::new(mem.clone(), regions)
            .unwrap_err()
            .to_string()
    };
    assert!(err(&[cma("c", "nope", None, MIB)]).contains("no bank named `nope`"));
    assert!(err(&[cma("c", "carve", None, MIB)]).contains("carveout"));
    assert!(err(&[cma("c", "dram0", None, 0)]).contains("size"));
    assert!(err(&[cma("c", "dram0", None, 100)]).contains("size"));
    assert!(err(&[cma("c", "dram0", Some(100), MIB)]).contains("not page aligned"));
    assert!(err(&[cma("c", "dram0", Some(31 * MIB), 2 * MIB)]).contains("not inside bank"));
    assert!(err(&[cma("c", "dram0", None, 64 * MIB)]).contains("larger than the bank"));
    assert!(err(&[cma("c", "dram0", Some(!4095), MIB)]).contains("not inside"));
    assert!(err(&[
        cma("a", "dram0", None, 4 * MIB),
        cma("b", "dram0", Some(30 * MIB), MIB)
    ])
    .contains("overlaps CMA region `a`"));
    assert!(err(&[
        cma("a", "dram0", None, MIB),
        cma("a", "dram0", Some(0), MIB)
    ])
    .contains("two CMA regions"));
    assert!(err(&[cma("", "dram0", None, MIB)]).contains("empty name"));
}

#[test]
fn cma_alloc_returns_aligned_contiguous_pages_inside_the_region() {
    let (pages, _) = machine();
    let a = pages.cma_alloc("cma0", 3, 0).unwrap();
    let b = pages.cma_alloc("cma0", 256, 8).unwrap();
    assert_eq!(
        a,
        PhysAddr(16 * MIB),
        "first fit from the bottom of the region"
    );
    assert!(
        b.is_aligned(256 * PAGE_SIZE) && b.0 >= a.0 + 3 * PAGE_SIZE,
        "{b}"
    );
    assert!(b.0 + 256 * PAGE_SIZE <= 32 * MIB);
    assert_eq!(pages.cma_regions()[0].used, 259 * PAGE_SIZE);
    // Not from the page allocator: free_pages refuses it.
    assert!(pages.free_pages(Page { addr: a, order: 0 }).is_err());
}

#[test]
fn cma_release_returns_the_pages_and_refuses_a_second_release() {
    let (pages, _) = machine();
    let before = pages.free_counts(BankId(0)).unwrap();
    let a = pages.cma_alloc("cma0", 1000, 4).unwrap();
    pages.cma_release("cma0", a, 1000).unwrap();
    assert_eq!(pages.free_counts(BankId(0)).unwrap(), before);
    let e = pages.cma_release("cma0", a, 1000).unwrap_err();
    assert!(
        matches!(
            e,
            SocError::NotAllocated {
                what: "cma_release",
                ..
            }
        ),
        "{e:?}"
    );
    // Partial release of one allocation is allowed, as in Linux; pages outside it are refused.
    let a = pages.cma_alloc("cma0", 8, 0).unwrap();
    pages.cma_release("cma0", a.add(4 * PAGE_SIZE), 4).unwrap();
    assert!(
        pages.cma_release("cma0", a, 8).is_err(),
        "half of it is already released"
    );
    pages.cma_release("cma0", a, 4).unwrap();
    assert_eq!(pages.free_counts(BankId(0)).unwrap(), before);
    assert_eq!(pages.cma_regions()[0].used, 0);
}

#[test]
fn cma_zero_unknown_and_oversized_requests_are_errors() {
    let (pages, _) = machine();
    assert_eq!(
        pages.cma_alloc("nope", 1, 0).unwrap_err(),
        SocError::UnknownCma("nope".into())
    );
    assert_eq!(
        pages.cma_alloc("cma0", 0, 0).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(
        pages.cma_alloc("cma0", 1, 99).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(
        pages.cma_alloc("cma0", 4097, 0).unwrap_err().errno(),
        Errno::ENOMEM
    );
    assert_eq!(
        pages.cma_alloc("cma0", u64::MAX, 0).unwrap_err().errno(),
        Errno::ENOMEM
    );
    assert_eq!(
        pages.cma_alloc("cma0", 1, 40).unwrap_err().errno(),
        Errno::ENOMEM
    );
    assert!(pages.cma_release("cma0", PhysAddr(3), 1).is_err());
    assert!(
        pages.cma_release("cma0", PhysAddr(0), 1).is_err(),
        "outside the region"
    );
    assert!(pages
        .cma_release("cma0", PhysAddr(16 * MIB), u64::MAX)
        .is_err());
    assert!(pages.cma_release("cma0", PhysAddr(16 * MIB), 0).is_err());
    assert!(pages.cma_release("nope", PhysAddr(16 * MIB), 1).is_err());
    assert_eq!(
        pages.stats().cma_failures,
        3,
        "argument errors are not attempts"
    );
}

#[test]
fn movable_allocations_borrow_cma_pages_while_the_region_is_mostly_free() {
    let (pages, _) = machine();
    let owner = Arc::new(Owner::default());
    let p = pages
        .alloc_movable(&AllocRequest::new(0), owner.clone())
        .unwrap();
    assert!(
        !in_cma(&p),
        "CMA is exactly half of free memory: ordinary pages first, {p:?}"
    );
    let q = pages
        .alloc_movable(&AllocRequest::new(0), owner.clone())
        .unwrap();
    assert!(
        in_cma(&q),
        "CMA is now more than half of free memory: CMA first, {q:?}"
    );
    let z = &pages.stats().zones[0];
    assert_eq!((z.borrowed_pages, z.movable_pages), (1, 2));
    pages.free_pages(q).unwrap();
    pages.free_pages(p).unwrap();
    assert_eq!(pages.stats().zones[0].borrowed_pages, 0);
}

#[test]
fn cma_alloc_migrates_movable_borrowers_and_data_survives() {
    let (pages, mem) = machine();
    let ballast = ballast(&pages);
    let owner = Arc::new(Owner::default());
    *owner.reenter.lock() = Arc::downgrade(&pages);
    borrow(&pages, &mem, &owner, 12, 6);
    assert!(owner.blocks.lock().iter().all(in_cma));
    // Room outside CMA for the migration targets.
    for p in ballast.iter().take(4) {
        pages.free_pages(*p).unwrap();
    }
    let a = pages.cma_alloc("cma0", 4096, 0).unwrap();
    assert_eq!(a, PhysAddr(16 * MIB), "the whole region");
    assert!(
        owner.blocks.lock().iter().all(|p| !in_cma(p)),
        "every borrower moved out"
    );
    assert_data_intact(&mem, &owner);
    assert_eq!(owner.moves.lock().len(), 12);
    let s = pages.stats();
    assert_eq!(
        (s.migrations, s.migrations_rolled_back, s.cma_allocs),
        (12, 0, 1)
    );
    assert_eq!(
        (s.zones[0].borrowed_pages, s.zones[0].movable_pages),
        (0, 12 * 64)
    );
    // The migrated blocks are owned and freeable at their new place.
    for p in owner.blocks.lock().drain(..) {
        pages.free_pages(p).unwrap();
    }
    pages.cma_release("cma0", a, 4096).unwrap();
}

#[test]
fn cma_alloc_with_pinned_borrower_fails_ebusy_and_loses_nothing() {
    let (pages, mem) = machine();
    let ballast = ballast(&pages);
    let owner = Arc::new(Owner::default());
    borrow(&pages, &mem, &owner, 10, 7);
    for p in ballast.iter().take(8) {
        pages.free_pages(*p).unwrap();
    }
    let mut sorted = owner.blocks.lock().clone();
    sorted.sort();
    owner.pinned.lock().insert(sorted[5].addr);
    let (blocks, counts, stats) = (
        owner.blocks.lock().clone(),
        pages.free_counts(BankId(0)).unwrap(),
        pages.stats(),
    );

    let e = pages.cma_alloc("cma0", 4096, 0).unwrap_err();
    assert_eq!(e.errno(), Errno::EBUSY, "{e}");
    assert_eq!(
        *owner.blocks.lock(),
        blocks,
        "every borrower is back where it was"
    );
    assert_data_intact(&mem, &owner);
    assert_eq!(
        pages.free_counts(BankId(0)).unwrap(),
        counts,
        "no page leaked or double-freed"
    );
    let after = pages.stats();
    assert_eq!(after.zones, stats.zones);
    assert_eq!(after.migrations, 0);
    assert_eq!(
        after.migrations_rolled_back, 5,
        "the five blocks below the pinned one moved and came back"
    );
    assert_eq!(after.cma_failures, 1);

    owner.pinned.lock().clear();
    let a = pages.cma_alloc("cma0", 4096, 0).unwrap();
    assert_data_intact(&mem, &owner);
    pages.cma_release("cma0", a, 4096).unwrap();
}

#[test]
fn cma_alloc_skips_a_range_with_a_pinned_borrower_and_uses_another() {
    let (pages, mem) = machine();
    let ballast = ballast(&pages);
    let owner = Arc::new(Owner::default());
    borrow(&pages, &mem, &owner, 4, 10);
    for p in ballast.iter().take(4) {
        pages.free_pages(*p).unwrap();
    }
    let mut sorted = owner.blocks.lock().clone();
    sorted.sort();
    owner.pinned.lock().insert(sorted[0].addr);
    let a = pages.cma_alloc("cma0", 1024, 10).unwrap();
    assert_eq!(
        a, sorted[1].addr,
        "the lowest range is pinned, the next one is emptied"
    );
    assert!(
        owner.blocks.lock().contains(&sorted[0]),
        "the pinned block did not move"
    );
    assert_data_intact(&mem, &owner);
    let s = pages.stats();
    assert_eq!((s.migrations, s.migrations_rolled_back), (1, 0));
}

#[test]
fn cma_alloc_without_room_for_migration_targets_fails_enomem_and_loses_nothing() {
    let (pages, mem) = machine();
    let _ballast = ballast(&pages);
    let owner = Arc::new(Owner::default());
    borrow(&pages, &mem, &owner, 3, 10);
    let blocks = owner.blocks.lock().clone();
    let e = pages.cma_alloc("cma0", 4096, 0).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOMEM, "{e}");
    assert_eq!(*owner.blocks.lock(), blocks);
    assert_data_intact(&mem, &owner);
    // The idle quarter of the region still serves a smaller request without migration.
    let a = pages.cma_alloc("cma0", 1024, 0).unwrap();
    assert_eq!(a, PhysAddr(16 * MIB));
}

#[test]
fn concurrent_cma_allocs_get_disjoint_ranges() {
    let (pages, _) = machine();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let pages = pages.clone();
            std::thread::spawn(move || {
                (0..8)
                    .map(|_| pages.cma_alloc("cma0", 100, 2).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<PhysAddr> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    for w in all.windows(2) {
        assert!(
            w[0].0 + 100 * PAGE_SIZE <= w[1].0,
            "{} overlaps {}",
            w[0],
            w[1]
        );
    }
    assert_eq!(pages.cma_regions()[0].used, 32 * 100 * PAGE_SIZE);
}

#[test]
fn the_default_soc_builds_its_page_allocator() {
    let desc = soc::SocDesc::default_soc();
    let pages = allocator(&desc.banks, &desc.cma);
    let info = &pages.cma_regions()[0];
    assert_eq!((info.base, info.size), (PhysAddr(0x2000_0000), 256 * MIB));
    assert_eq!(
        pages.stats().zones.len(),
        2,
        "dram0 and dram1; the carveout and VRAM have no zone"
    );
}

#[test]
fn a_borrower_freed_by_its_owner_during_cma_alloc_is_simply_taken() {
    let (pages, mem) = machine();
    let ballast = ballast(&pages);
    let owner = Arc::new(Owner::default());
    *owner.reenter.lock() = Arc::downgrade(&pages);
    borrow(&pages, &mem, &owner, 4, 8);
    for p in ballast.iter().take(2) {
        pages.free_pages(*p).unwrap();
    }
    let mut sorted = owner.blocks.lock().clone();
    sorted.sort();
    // While its lowest block is migrated, the owner frees its highest one.
    owner.free_during_migrate.lock().push(sorted[3]);
    let a = pages.cma_alloc("cma0", 4096, 0).unwrap();
    assert_eq!(a, PhysAddr(16 * MIB));
    assert_eq!(
        owner.moves.lock().len(),
        3,
        "the freed block needed no migration"
    );
    assert_eq!(pages.stats().migrations, 3);
    assert_eq!(pages.stats().zones[0].movable_pages, 3 * 256);
    pages.cma_release("cma0", a, 4096).unwrap();
    for p in owner.blocks.lock().drain(..) {
        pages.free_pages(p).unwrap();
    }
    for p in &ballast[2..] {
        pages.free_pages(*p).unwrap();
    }
    assert_eq!(
        pages.stats().zones[0].free_pages,
        8192,
        "every page came back"
    );
}

#[test]
fn migration_targets_honour_the_borrowers_limit() {
    // CMA in the middle of the bank: [4 MiB, 20 MiB); the borrower must stay below 20 MiB.
    let mem = Arc::new(PhysMem::new(&[bank("dram0", BankKind::System, 0, 32 * MIB)]).unwrap());
    let region = cma("cma0", "dram0", Some(4 * MIB), 16 * MIB);
    let pages = Arc::new(PageAllocator::new(mem.clone(), &[region]).unwrap());
    let ballast = ballast(&pages);
    let owner = Arc::new(Owner::default());
    let limit = 20 * MIB - 1;
    let p = pages
        .alloc_movable(&AllocRequest::new(10).below(limit), owner.clone())
        .unwrap();
    mem.fill(p.addr, p.size(), 0x10).unwrap();
    mem.write(p.addr, &0u64.to_le_bytes()).unwrap();
    owner.blocks.lock().push(p);
    // Room only above the limit: the borrower cannot move, the range cannot be emptied.
    let high: Vec<Page> = ballast
        .iter()
        .copied()
        .filter(|b| b.addr.0 >= 20 * MIB)
        .collect();
    pages.free_pages(high[0]).unwrap();
    let e = pages.cma_alloc("cma0", 4096, 0).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOMEM, "{e}");
    assert_eq!(*owner.blocks.lock(), vec![p]);
    // Room below the limit too: the borrower moves there, never above it.
    let low = ballast
        .iter()
        .copied()
        .find(|b| b.end().0 <= 4 * MIB)
        .unwrap();
    pages.free_pages(low).unwrap();
    pages.cma_alloc("cma0", 4096, 0).unwrap();
    let moved = owner.blocks.lock()[0];
    assert!(
        moved.end().0 - 1 <= limit && moved.end().0 <= 4 * MIB,
        "{moved:?}"
    );
    assert_data_intact(&mem, &owner);
}
