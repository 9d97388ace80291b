//! Scatter-gather tables: coalescing within the segment limits.

use dma::{SegmentLimits, SgBacking, SgTable};
use proptest::prelude::*;
use soc::{PhysAddr, PAGE_SIZE};

fn check_table(ranges: &[(PhysAddr, u64)], limits: SegmentLimits, sgt: &SgTable) {
    // The entries cover exactly the input bytes, in order.
    let mut want: Vec<(u64, u64)> = Vec::new();
    for &(pa, len) in ranges {
        match want.last_mut() {
            Some((s, l)) if *s + *l == pa.0 => *l += len,
            _ => want.push((pa.0, len)),
        }
    }
    let mut got: Vec<(u64, u64)> = Vec::new();
    for e in sgt.entries() {
        assert!(e.len > 0);
        assert!(
            e.len <= limits.max_segment_size(),
            "{e:?} longer than {limits:?}"
        );
        assert!(
            !limits.crosses_boundary(e.phys.0, e.len),
            "{e:?} crosses {limits:?}"
        );
        match got.last_mut() {
            Some((s, l)) if *s + *l == e.phys.0 => *l += e.len,
            _ => got.push((e.phys.0, e.len)),
        }
    }
    assert_eq!(got, want);
    // Split only where a limit forces it.
    for w in sgt.entries().windows(2) {
        if w[0].phys.0 + w[0].len == w[1].phys.0 {
            let at_boundary = w[1].phys.0 & limits.boundary_mask() == 0;
            let full = w[0].len == limits.max_segment_size();
            let merged_too_long = w[0].len + w[1].len > limits.max_segment_size();
            assert!(
                at_boundary || full || merged_too_long,
                "needless split {:?}",
                w
            );
        }
    }
}

#[test]
fn sg_coalescing_respects_max_segment_size_and_boundary() {
    let limits = SegmentLimits::new(16 * PAGE_SIZE, 0xffff).unwrap();
    // 40 contiguous pages from 0x1_c000 (crossing 64 KiB boundaries), then 2 lone pages.
    let ranges: Vec<(PhysAddr, u64)> = (0..40)
        .map(|i| (PhysAddr(0x1_c000 + i * PAGE_SIZE), PAGE_SIZE))
        .chain([
            (PhysAddr(0x100_0000), PAGE_SIZE),
            (PhysAddr(0x200_0000), PAGE_SIZE),
        ])
        .collect();
    let sgt = SgTable::from_ranges(&ranges, SgBacking::Pages, limits).unwrap();
    let lens: Vec<(u64, u64)> = sgt.entries().iter().map(|e| (e.phys.0, e.len)).collect();
    assert_eq!(
        lens,
        vec![
            (0x1_c000, 0x4000),  // up to the 64 KiB boundary
            (0x2_0000, 0x10000), // a full 64 KiB segment
            (0x3_0000, 0x10000),
            (0x4_0000, 0x4000), // the rest of the run
            (0x100_0000, 0x1000),
            (0x200_0000, 0x1000),
        ]
    );
    assert_eq!(sgt.orig_nents(), 6);
    assert_eq!(sgt.phys_runs(), 3);
    assert_eq!(sgt.size(), 42 * PAGE_SIZE);
    check_table(&ranges, limits, &sgt);
}

#[test]
fn pages_of_higher_order_are_split_by_the_limits() {
    let limits = SegmentLimits::new(PAGE_SIZE, u64::MAX).unwrap();
    let sgt = SgTable::from_pages(
        &[soc::Page {
            addr: PhysAddr(0x8000),
            order: 2,
        }],
        limits,
    )
    .unwrap();
    assert_eq!(sgt.orig_nents(), 4);
    assert!(sgt.entries().iter().all(|e| e.len == PAGE_SIZE));
}

proptest! {
    #[test]
    fn sg_coalescing_proptest(
        pages in proptest::collection::vec((0u64..64, 1u64..5), 1..40),
        max_pages in 1u64..20,
        boundary_shift in 12u32..20,
    ) {
        // Each input: either the page right after the previous run or a jump.
        let mut ranges = Vec::new();
        let mut next = 0x10_0000u64;
        for (jump, n) in pages {
            if jump >= 32 {
                next += jump * PAGE_SIZE;
            }
            ranges.push((PhysAddr(next), n * PAGE_SIZE));
            next += n * PAGE_SIZE;
        }
        let limits = SegmentLimits::new(max_pages * PAGE_SIZE, (1u64 << boundary_shift) - 1).unwrap();
        let sgt = SgTable::from_ranges(&ranges, SgBacking::Pages, limits).unwrap();
        check_table(&ranges, limits, &sgt);
    }
}
