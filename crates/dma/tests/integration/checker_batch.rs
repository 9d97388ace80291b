//! Findings of a batch of pieces running on several threads are committed in piece order when
//! the batch closes, so the order, and which findings the cap keeps, never depend on which
//! thread raised what first (`dma::debug::FindingOrigin`, module `debug::batch`).

use crate::common::machine;
use dma::debug::{FindingOrigin, MAX_KEPT_FINDINGS};
use dma::{DmaApi, FindingKind};
use soc::{AllocRequest, DmaAddr, PAGE_SIZE};

/// `n` device reads by the display of page `k`'s addresses, none mapped: one
/// `access-outside-mapping` each, naming `base + k * PAGE_SIZE`.
fn stray_reads(api: &DmaApi, base: DmaAddr, k: u64, n: usize) {
    let display = api.device("display0").unwrap();
    let mut b = [0u8; 8];
    for _ in 0..n {
        api.device_read(&display, base.add(k * PAGE_SIZE), &mut b)
            .unwrap();
    }
}

/// A page the display reaches, as its DMA address (direct-mapped: the physical one).
fn page(api: &DmaApi, soc: &soc::Soc) -> DmaAddr {
    let display = api.device("display0").unwrap();
    let p = soc
        .pages()
        .alloc_pages(&AllocRequest::new(1).below(display.dma_mask()))
        .unwrap();
    DmaAddr(p.addr.0)
}

#[test]
fn a_batchs_findings_are_committed_in_piece_order_when_it_closes() {
    let (soc, api) = machine();
    let base = page(&api, &soc);
    let batch = api.checker().open_batch();
    // Piece 1 raises first, on another thread; piece 0 after it.
    std::thread::scope(|s| {
        s.spawn(|| {
            let _tag = FindingOrigin::enter(batch, 1);
            stray_reads(&api, base, 1, 1);
        });
    });
    {
        let _tag = FindingOrigin::enter(batch, 0);
        stray_reads(&api, base, 0, 1);
    }
    assert!(api.checker().findings().is_empty(), "held until the close");
    assert_eq!(api.checker().total(), 0);
    // Outside the batch: committed at once.
    stray_reads(&api, base, 0, 1);
    assert_eq!(api.checker().findings().len(), 1);
    api.checker().clear();
    api.checker().close_batch(batch);
    let at: Vec<String> = api
        .checker()
        .findings()
        .iter()
        .map(|f| f.address.to_string())
        .collect();
    assert_eq!(
        at,
        [base.to_string(), base.add(PAGE_SIZE).to_string()]
            .map(|a| format!("dma {a}"))
            .to_vec()
    );
    assert_eq!(api.checker().count(FindingKind::AccessOutsideMapping), 2);
    // Closed: a late tag with its id commits at once; a second close does nothing.
    {
        let _tag = FindingOrigin::enter(batch, 5);
        stray_reads(&api, base, 0, 1);
    }
    assert_eq!(api.checker().findings().len(), 3);
    api.checker().close_batch(batch);
    assert_eq!(api.checker().findings().len(), 3);
}

#[test]
fn the_cap_keeps_the_first_findings_in_piece_order_not_the_first_to_arrive() {
    let (soc, api) = machine();
    let base = page(&api, &soc);
    let batch = api.checker().open_batch();
    // Piece 1 fills the cap before piece 0 raises its one finding.
    std::thread::scope(|s| {
        s.spawn(|| {
            let _tag = FindingOrigin::enter(batch, 1);
            stray_reads(&api, base, 1, MAX_KEPT_FINDINGS);
        });
    });
    {
        let _tag = FindingOrigin::enter(batch, 0);
        stray_reads(&api, base, 0, 1);
    }
    api.checker().close_batch(batch);
    let kept = api.checker().findings();
    assert_eq!(kept.len(), MAX_KEPT_FINDINGS);
    assert_eq!(api.checker().dropped(), 1);
    assert_eq!(
        kept[0].address.to_string(),
        format!("dma {base}"),
        "piece 0's finding comes first and is kept"
    );
    assert!(kept[1..]
        .iter()
        .all(|f| f.address.to_string() == format!("dma {}", base.add(PAGE_SIZE))));
}
