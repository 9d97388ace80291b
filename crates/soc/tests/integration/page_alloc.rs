//! The buddy page allocator: limits, coalescing, refused frees, and a property test.

use proptest::prelude::*;
use soc::{
    AllocRequest, BankDesc, BankId, BankKind, ByteSize, CmaDesc, MovableOwner, Page, PageAllocator,
    PhysAddr, PhysMem, SocError, MAX_ORDER, PAGE_SIZE,
};
use std::sync::Arc;
use uapi::{AsErrno, Errno};

pub fn bank(name: &str, kind: BankKind, base: u64, size: u64) -> BankDesc {
    BankDesc {
        name: name.into(),
        kind,
        base: ByteSize(base),
        size: ByteSize(size),
    }
}

pub fn cma(name: &str, bank: &str, base: Option<u64>, size: u64) -> CmaDesc {
    CmaDesc {
        name: name.into(),
        bank: bank.into(),
        size: ByteSize(size),
        base: base.map(ByteSize),
    }
}

pub fn allocator(banks: &[BankDesc], regions: &[CmaDesc]) -> PageAllocator {
    PageAllocator::new(Arc::new(PhysMem::new(banks).unwrap()), regions).unwrap()
}

/// One 64 MiB system bank at 0, a carveout above it, a 16 MiB system bank at 1 GiB.
fn two_zones() -> PageAllocator {
    allocator(
        &[
            bank("dram0", BankKind::System, 0, 64 << 20),
            bank("carve", BankKind::Carveout, 64 << 20, 16 << 20),
            bank("dram1", BankKind::System, 1 << 30, 16 << 20),
        ],
        &[],
    )
}

#[test]
fn alloc_below_limit_never_returns_a_page_above_it() {
    let pages = two_zones();
    let limit = (8 << 20) - 1;
    let mut got = Vec::new();
    for order in [10, 0, 3, 1, 0, 2] {
        let p = pages
            .alloc_pages(&AllocRequest::new(order).below(limit))
            .unwrap();
        assert!(p.end().0 - 1 <= limit, "{p:?} ends above {limit:#x}");
        assert!(
            p.addr.is_aligned(p.size()),
            "{p:?} is not naturally aligned"
        );
        got.push(p);
    }
    // A limit that is not one below a page boundary excludes the page it falls in.
    let p = pages
        .alloc_pages(&AllocRequest::new(0).below(0x1_0fff + 0x800))
        .unwrap();
    assert!(p.end().0 <= 0x1_1000, "{p:?}");
}

#[test]
fn without_a_limit_high_memory_is_used_first() {
    let pages = two_zones();
    let p = pages.alloc_pages(&AllocRequest::new(0)).unwrap();
    assert_eq!(
        p.addr,
        PhysAddr((4 << 20) * 15),
        "the highest order-10 block of dram0, split"
    );
}

#[test]
fn a_limit_below_the_first_bank_falls_to_no_bank_and_names_the_limit() {
    let pages = two_zones();
    let e = pages
        .alloc_pages(
            &AllocRequest::new(0)
                .in_bank(BankId(2))
                .below(0xffff_ffff >> 2),
        )
        .unwrap_err();
    assert_eq!(e.errno(), Errno::ENOMEM);
    let msg = e.to_string();
    assert!(
        msg.contains("dram1") && msg.contains("0x3fffffff") && msg.contains("order-0"),
        "{msg}"
    );
}

#[test]
fn without_a_bank_the_first_bank_that_fits_serves() {
    let pages = two_zones();
    let mut big = Vec::new();
    while let Ok(p) = pages.alloc_pages(&AllocRequest::new(MAX_ORDER).in_bank(BankId(0))) {
        big.push(p);
    }
    assert_eq!(big.len(), 16);
    let p = pages.alloc_pages(&AllocRequest::new(2)).unwrap();
    assert!(p.addr.0 >= 1 << 30, "dram0 is full, dram1 serves: {p:?}");
    let e = pages
        .alloc_pages(&AllocRequest::new(0).below((64 << 20) - 1))
        .unwrap_err();
    assert!(e.to_string().contains("any system bank"), "{e}");
}

#[test]
fn free_coalesces_buddies_back_to_max_order() {
    let pages = two_zones();
    let initial = pages.free_counts(BankId(0)).unwrap();
    assert_eq!(initial[MAX_ORDER as usize], 16);
    let blocks: Vec<Page> = (0..40)
        .map(|i| pages.alloc_pages(&AllocRequest::new(i % 4)).unwrap())
        .collect();
    assert_ne!(pages.free_counts(BankId(0)).unwrap(), initial);
    for p in blocks
        .iter()
        .rev()
        .step_by(2)
        .chain(blocks.iter().step_by(2))
    {
        pages.free_pages(*p).unwrap();
    }
    assert_eq!(pages.free_counts(BankId(0)).unwrap(), initial);
    assert_eq!(pages.stats().zones[0].free_pages, 16 << 10);
}

#[test]
fn an_unaligned_bank_is_carved_into_aligned_blocks() {
    // 12 KiB base, 4 MiB + 20 KiB: the edges cannot form order-10 blocks.
    let pages = allocator(
        &[bank(
            "odd",
            BankKind::System,
            3 * PAGE_SIZE,
            (1024 + 5) * PAGE_SIZE,
        )],
        &[],
    );
    let counts = pages.free_counts(BankId(0)).unwrap();
    let total: u64 = counts.iter().enumerate().map(|(k, n)| n << k).sum();
    assert_eq!(total, 1029);
    assert_eq!(
        counts[MAX_ORDER as usize], 0,
        "no 4 MiB aligned block fits: {counts:?}"
    );
    let mut all = Vec::new();
    while let Ok(p) = pages.alloc_pages(&AllocRequest::new(0)) {
        assert!(
            p.addr.0 >= 3 * PAGE_SIZE && p.end().0 <= (3 + 1029) * PAGE_SIZE,
            "{p:?}"
        );
        all.push(p);
    }
    assert_eq!(all.len(), 1029);
    for p in all {
        pages.free_pages(p).unwrap();
    }
    assert_eq!(pages.free_counts(BankId(0)).unwrap(), counts);
}

#[test]
fn double_free_is_refused_and_changes_nothing() {
    let pages = two_zones();
    let p = pages.alloc_pages(&AllocRequest::new(3)).unwrap();
    pages.free_pages(p).unwrap();
    let (counts, stats) = (pages.free_counts(BankId(0)).unwrap(), pages.stats());
    let e = pages.free_pages(p).unwrap_err();
    assert!(
        matches!(e, SocError::NotAllocated { addr, .. } if addr == p.addr),
        "{e:?}"
    );
    assert_eq!(e.errno(), Errno::EINVAL);
    // A page inside an allocated block is not a block either.
    let q = pages.alloc_pages(&AllocRequest::new(3)).unwrap();
    let inner = Page {
        addr: q.addr.add(PAGE_SIZE),
        order: 0,
    };
    assert!(matches!(
        pages.free_pages(inner),
        Err(SocError::NotAllocated { .. })
    ));
    pages.free_pages(q).unwrap();
    assert_eq!(pages.free_counts(BankId(0)).unwrap(), counts);
    assert_eq!(pages.stats(), stats);
}

#[test]
fn wrong_order_free_is_refused_and_changes_nothing() {
    let pages = two_zones();
    let p = pages.alloc_pages(&AllocRequest::new(2)).unwrap();
    let counts = pages.free_counts(BankId(0)).unwrap();
    let e = pages.free_pages(Page { order: 1, ..p }).unwrap_err();
    assert_eq!(
        e,
        SocError::WrongOrder {
            addr: p.addr,
            given: 1,
            allocated: 2
        }
    );
    assert_eq!(pages.free_counts(BankId(0)).unwrap(), counts);
    pages.free_pages(p).unwrap();
}

#[test]
fn zero_and_oversized_requests_are_errors() {
    let pages = two_zones();
    let e = pages
        .alloc_pages(&AllocRequest::new(MAX_ORDER + 1))
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert!(pages.alloc_pages(&AllocRequest::new(u32::MAX)).is_err());
    assert_eq!(
        pages
            .alloc_pages(&AllocRequest::new(0).in_bank(BankId(9)))
            .unwrap_err(),
        SocError::UnknownBank("#9".into())
    );
    let e = pages
        .alloc_pages(&AllocRequest::new(0).in_bank(BankId(1)))
        .unwrap_err();
    assert!(e.to_string().contains("carve"), "{e}");
    assert!(pages.alloc_pages(&AllocRequest::new(0).below(0)).is_err());
    assert!(pages
        .free_pages(Page {
            addr: PhysAddr(123),
            order: 0
        })
        .is_err());
    assert!(pages
        .free_pages(Page {
            addr: PhysAddr(!4095),
            order: 0
        })
        .is_err());
    assert!(pages
        .free_pages(Page {
            addr: PhysAddr(0),
            order: 99
        })
        .is_err());
    assert!(pages.free_counts(BankId(1)).is_err());
    assert!(pages.free_counts(BankId(7)).is_err());
}

#[test]
fn unmovable_and_ownerless_allocations_never_take_cma_pages() {
    let pages = allocator(
        &[bank("dram0", BankKind::System, 0, 16 << 20)],
        &[cma("cma0", "dram0", None, 12 << 20)],
    );
    let mut got = Vec::new();
    for movable in [false, true] {
        loop {
            let mut req = AllocRequest::new(0);
            req.movable = movable;
            match pages.alloc_pages(&req) {
                Ok(p) => got.push(p),
                Err(e) => {
                    assert_eq!(e.errno(), Errno::ENOMEM);
                    break;
                }
            }
        }
    }
    assert_eq!(got.len(), 1024, "only the 4 MiB outside CMA");
    assert!(got.iter().all(|p| p.end().0 <= 4 << 20));
    let z = &pages.stats().zones[0];
    assert_eq!((z.cma_free_pages, z.borrowed_pages), (3072, 0));
}

#[test]
fn the_allocator_is_shared_between_threads_without_overlaps() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PageAllocator>();
    let pages = Arc::new(two_zones());
    let initial = pages.free_counts(BankId(0)).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let pages = pages.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..200u32 {
                    mine.push(
                        pages
                            .alloc_pages(&AllocRequest::new((i + t) % 3).in_bank(BankId(0)))
                            .unwrap(),
                    );
                    if mine.len() > 40 {
                        // Free an older block while other threads allocate and free.
                        pages.free_pages(mine.swap_remove(i as usize % 40)).unwrap();
                    }
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<Page> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    for w in all.windows(2) {
        assert!(w[0].end() <= w[1].addr, "{:?} overlaps {:?}", w[0], w[1]);
    }
    for p in all {
        pages.free_pages(p).unwrap();
    }
    assert_eq!(pages.free_counts(BankId(0)).unwrap(), initial);
}

#[test]
fn an_8_gib_bank_serves_low_limits_without_scanning() {
    // 2M pages; every allocation below 1 GiB is a range query, not a walk of the free lists.
    let pages = allocator(&[bank("big", BankKind::System, 0, 8 << 30)], &[]);
    let blocks: Vec<Page> = (0..2000)
        .map(|_| {
            pages
                .alloc_pages(&AllocRequest::new(0).below((1 << 30) - 1))
                .unwrap()
        })
        .collect();
    assert!(blocks.iter().all(|p| p.end().0 <= 1 << 30));
    for p in blocks {
        pages.free_pages(p).unwrap();
    }
    assert_eq!(
        pages.free_counts(BankId(0)).unwrap()[MAX_ORDER as usize],
        2048
    );
}

/// A movable owner of exactly one block, following it through migrations unless pinned.
struct OneBlock(parking_lot::Mutex<Option<Page>>, bool);

impl MovableOwner for OneBlock {
    fn migrate(&self, old: Page, new: Page) -> Result<(), SocError> {
        if self.1 {
            return Err(SocError::Busy("pinned".into()));
        }
        let mut cur = self.0.lock();
        if *cur != Some(old) {
            return Err(SocError::InvalidArgument(format!("not my block: {old:?}")));
        }
        *cur = Some(new);
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        order: u32,
        bank: Option<usize>,
        limit: Option<u64>,
        kind: u8,
    },
    Free(usize),
    CmaAlloc {
        count: u64,
        align: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let limit = prop_oneof![
        Just(None),
        (1u64..34).prop_map(|mib| Some((mib << 20) - 1)),
        Just(Some(0x56_7fff))
    ];
    prop_oneof![
        5 => (0u32..=5, prop_oneof![Just(None), Just(Some(0usize)), Just(Some(2usize))], limit, 0u8..4)
            .prop_map(|(order, bank, limit, kind)| Op::Alloc { order, bank, limit, kind }),
        3 => any::<usize>().prop_map(Op::Free),
        1 => (1u64..600, 0u32..4).prop_map(|(count, align)| Op::CmaAlloc { count, align }),
    ]
}

enum Live {
    Plain(Page, Option<u64>),
    Owned(Arc<OneBlock>, Option<u64>),
    Cma(PhysAddr, u64),
}

impl Live {
    fn range(&self) -> (u64, u64) {
        match self {
            Live::Plain(p, _) => (p.addr.0, p.end().0),
            Live::Owned(o, _) => o.0.lock().map(|p| (p.addr.0, p.end().0)).unwrap_or((0, 0)),
            Live::Cma(a, n) => (a.0, a.0 + n * PAGE_SIZE),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random alloc/free/cma_alloc sequences never hand out overlapping blocks, keep every block
    /// inside its bank and below its limit (through migrations too), and freeing everything
    /// restores the initial free counts.
    #[test]
    fn random_sequences_never_overlap_and_free_coalesces_back(ops in proptest::collection::vec(op(), 1..60)) {
        // dram0: 12 KiB base, odd size, mostly CMA (so movable blocks borrow it and cma_alloc
        // migrates them); the region sits at an unaligned spot; dram1 above a carveout.
        let pages = allocator(
            &[
                bank("dram0", BankKind::System, 3 * PAGE_SIZE, (8 << 20) + 5 * PAGE_SIZE),
                bank("carve", BankKind::Carveout, 16 << 20, 4 << 20),
                bank("dram1", BankKind::System, 24 << 20, 8 << 20),
            ],
            &[cma("cma0", "dram0", Some((3 << 20) + 7 * PAGE_SIZE), 9 << 19)],
        );
        let banks: Vec<(u64, u64)> = vec![(3 * PAGE_SIZE, (8 << 20) + 8 * PAGE_SIZE), (16 << 20, 20 << 20), (24 << 20, 32 << 20)];
        let cma_range = ((3 << 20) + 7 * PAGE_SIZE, (3 << 20) + 7 * PAGE_SIZE + (9 << 19));
        let initial = [pages.free_counts(BankId(0)).unwrap(), pages.free_counts(BankId(2)).unwrap()];
        let mut live: Vec<Live> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc { order, bank, limit, kind } => {
                    let mut req = AllocRequest::new(order);
                    req.bank = bank.map(BankId);
                    req.limit = limit;
                    req.movable = kind > 0;
                    let got = if kind >= 2 {
                        let owner = Arc::new(OneBlock(parking_lot::Mutex::new(None), kind == 3));
                        pages.alloc_movable(&req, owner.clone()).inspect(|&p| {
                            *owner.0.lock() = Some(p);
                            live.push(Live::Owned(owner, limit));
                        })
                    } else {
                        pages.alloc_pages(&req).inspect(|&p| live.push(Live::Plain(p, limit)))
                    };
                    if let Ok(p) = got {
                        prop_assert_eq!(p.order, order);
                        if kind < 2 {
                            prop_assert!(p.end().0 <= cma_range.0 || p.addr.0 >= cma_range.1, "unmovable {:?} in CMA", p);
                        }
                        if let Some(b) = bank {
                            prop_assert!(p.addr.0 >= banks[b].0 && p.end().0 <= banks[b].1, "{:?} not in bank {}", p, b);
                        }
                    }
                }
                Op::Free(i) if !live.is_empty() => {
                    match live.swap_remove(i % live.len()) {
                        Live::Plain(p, _) => pages.free_pages(p).unwrap(),
                        Live::Owned(o, _) => pages.free_pages(o.0.lock().take().unwrap()).unwrap(),
                        Live::Cma(a, n) => pages.cma_release("cma0", a, n).unwrap(),
                    }
                }
                Op::Free(_) => {}
                Op::CmaAlloc { count, align } => {
                    if let Ok(a) = pages.cma_alloc("cma0", count, align) {
                        prop_assert!(a.is_aligned(PAGE_SIZE << align));
                        prop_assert!(a.0 >= cma_range.0 && a.0 + count * PAGE_SIZE <= cma_range.1);
                        live.push(Live::Cma(a, count));
                    }
                }
            }
            let mut ranges: Vec<(u64, u64)> = live.iter().map(Live::range).collect();
            for l in &live {
                let (s, e) = l.range();
                prop_assert!(banks.iter().any(|&(bs, be)| s >= bs && e <= be), "{:#x}..{:#x} outside every bank", s, e);
                if let Live::Plain(_, Some(limit)) | Live::Owned(_, Some(limit)) = l {
                    prop_assert!(e - 1 <= *limit, "{:#x}..{:#x} above limit {:#x}", s, e, limit);
                }
            }
            ranges.sort_unstable();
            for w in ranges.windows(2) {
                prop_assert!(w[0].1 <= w[1].0, "{:x?} overlaps {:x?}", w[0], w[1]);
            }
        }
        for l in live {
            match l {
                Live::Plain(p, _) => pages.free_pages(p).unwrap(),
                Live::Owned(o, _) => pages.free_pages(o.0.lock().take().unwrap()).unwrap(),
                Live::Cma(a, n) => pages.cma_release("cma0", a, n).unwrap(),
            }
        }
        prop_assert_eq!([pages.free_counts(BankId(0)).unwrap(), pages.free_counts(BankId(2)).unwrap()], initial);
        let z = &pages.stats().zones[0];
        prop_assert_eq!((z.movable_pages, z.unmovable_pages, z.borrowed_pages), (0, 0, 0));
    }
}
