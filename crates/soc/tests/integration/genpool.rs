//! GenPool: first-fit ranges with alignment and limits over carveouts and device memory.

use crate::page_alloc::bank;
use soc::{BankKind, GenPool, PhysAddr, PhysMem, SocError, PAGE_SIZE};
use uapi::{AsErrno, Errno};

const BASE: u64 = 0x8000_0000;
const MIB: u64 = 1 << 20;

fn pool() -> GenPool {
    let mem = PhysMem::new(&[bank("carveout0", BankKind::Carveout, BASE, 16 * MIB)]).unwrap();
    GenPool::new(&mem.banks()[0])
}

#[test]
fn first_fit_takes_the_lowest_range_that_fits() {
    let pool = pool();
    let a = pool.alloc(PAGE_SIZE, PAGE_SIZE).unwrap();
    let b = pool.alloc(3 * PAGE_SIZE, PAGE_SIZE).unwrap();
    assert_eq!((a, b), (PhysAddr(BASE), PhysAddr(BASE + PAGE_SIZE)));
    pool.free(a, PAGE_SIZE).unwrap();
    assert_eq!(
        pool.alloc(100, 1).unwrap(),
        PhysAddr(BASE),
        "the hole left by `a` is reused"
    );
    assert_eq!(pool.avail(), 16 * MIB - 4 * PAGE_SIZE);
}

#[test]
fn alignment_is_honoured_and_the_skipped_gap_stays_free() {
    let pool = pool();
    pool.alloc(PAGE_SIZE, 0).unwrap_err();
    let a = pool.alloc(PAGE_SIZE, PAGE_SIZE).unwrap();
    let b = pool.alloc(MIB, MIB).unwrap();
    assert!(b.is_aligned(MIB) && b.0 > a.0);
    let c = pool.alloc(PAGE_SIZE, PAGE_SIZE).unwrap();
    assert_eq!(
        c,
        PhysAddr(BASE + PAGE_SIZE),
        "first fit lands in the alignment gap"
    );
}

#[test]
fn alloc_below_never_returns_a_range_above_the_limit() {
    let pool = pool();
    let limit = BASE + 2 * MIB - 1;
    let a = pool.alloc_below(MIB, PAGE_SIZE, limit).unwrap();
    let b = pool.alloc_below(MIB, PAGE_SIZE, limit).unwrap();
    assert!(a.0 + MIB - 1 <= limit && b.0 + MIB - 1 <= limit);
    let e = pool.alloc_below(PAGE_SIZE, PAGE_SIZE, limit).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOMEM);
    assert!(e.to_string().contains("carveout0"), "{e}");
    assert!(
        pool.alloc_below(PAGE_SIZE, PAGE_SIZE, BASE - 1).is_err(),
        "limit below the pool"
    );
}

#[test]
fn double_free_and_unknown_ranges_are_refused_and_change_nothing() {
    let pool = pool();
    let a = pool.alloc(2 * PAGE_SIZE, PAGE_SIZE).unwrap();
    let avail = pool.avail();
    assert!(
        matches!(pool.free(a, PAGE_SIZE), Err(SocError::NotAllocated { .. })),
        "wrong size"
    );
    assert!(
        pool.free(a.add(PAGE_SIZE), PAGE_SIZE).is_err(),
        "inside an allocation"
    );
    assert!(
        pool.free(PhysAddr(0), PAGE_SIZE).is_err(),
        "outside the pool"
    );
    assert!(pool.free(a, 0).is_err());
    assert!(pool.free(a, u64::MAX).is_err());
    assert_eq!(pool.avail(), avail);
    pool.free(a, 2 * PAGE_SIZE).unwrap();
    assert_eq!(
        pool.free(a, 2 * PAGE_SIZE).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(pool.avail(), 16 * MIB);
}

#[test]
fn zero_and_oversized_requests_are_errors() {
    let pool = pool();
    assert_eq!(
        pool.alloc(0, PAGE_SIZE).unwrap_err(),
        SocError::ZeroSize("gen_pool_alloc size")
    );
    assert_eq!(pool.alloc(PAGE_SIZE, 3).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        pool.alloc(17 * MIB, PAGE_SIZE).unwrap_err().errno(),
        Errno::ENOMEM
    );
    assert_eq!(
        pool.alloc(u64::MAX, PAGE_SIZE).unwrap_err().errno(),
        Errno::ENOMEM
    );
    assert_eq!(
        pool.alloc(PAGE_SIZE, 1 << 63).unwrap_err().errno(),
        Errno::ENOMEM
    );
    let all = pool.alloc(16 * MIB, PAGE_SIZE).unwrap();
    assert_eq!(pool.avail(), 0);
    pool.free(all, 16 * MIB).unwrap();
}
