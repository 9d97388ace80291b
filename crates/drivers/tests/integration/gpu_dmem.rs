//! The dmem VRAM limit per group: a group over its limit evicts its own objects first, never
//! other groups'; without a limit nothing happens.

use super::*;
use drivers::gpu::{BoDesc, DmemGroup, GpuBo, Placement};
use uapi::{AsErrno, Errno};

/// Room for 6 objects in VRAM; group "b" creates its object first (the global LRU victim),
/// then group "a" creates two. Returns (gpu, a's group, a's objects, b's object).
fn two_groups(a_max: Option<u64>) -> (Gpu, Arc<DmemGroup>, Vec<GpuBo>, GpuBo) {
    let (_dma, gpu) = setup(6, RingMode::Thread);
    let (ga, gb) = (gpu.create_dmem_group("a"), gpu.create_dmem_group("b"));
    ga.set_max(a_max);
    let b1 = gpu.create_bo_in(BoDesc::vram("b1", BO), &gb).unwrap();
    b1.write(0, &pattern(9, BO as usize)).unwrap();
    let a: Vec<GpuBo> = (0..2)
        .map(|i| {
            let bo = gpu
                .create_bo_in(BoDesc::vram(&format!("a{i}"), BO), &ga)
                .unwrap();
            bo.write(0, &pattern(i, BO as usize)).unwrap();
            bo
        })
        .collect();
    assert_eq!(gb.current(), BO);
    (gpu, ga, a, b1)
}

#[test]
fn a_group_over_its_vram_limit_evicts_its_own_bo_not_another_groups() {
    let (gpu, ga, a, b1) = two_groups(Some(2 * BO));
    assert_eq!(ga.current(), 2 * BO);
    // b1 is the least recently used object in VRAM, and VRAM has room for three more: only
    // group a's limit is in the way, so a's own LRU object (a0) goes.
    assert_eq!(gpu.lru(Placement::Vram)[0], b1.id());
    let a2 = gpu.create_bo_in(BoDesc::vram("a2", BO), &ga).unwrap();
    assert_eq!(a2.placement(), Some(Placement::Vram));
    assert_eq!(
        a[0].placement(),
        Some(Placement::Gtt),
        "a's own LRU object evicted"
    );
    assert_eq!(a[1].placement(), Some(Placement::Vram));
    assert_eq!(b1.placement(), Some(Placement::Vram), "group b untouched");
    assert_eq!(b1.evictions(), 0);
    assert_eq!((ga.current(), ga.limit_evictions()), (2 * BO, 1));
    assert_eq!(b1.dmem_group().unwrap().current(), BO);
    // The evicted object's bytes moved with it.
    let mut got = vec![0u8; BO as usize];
    a[0].read(0, &mut got).unwrap();
    assert_eq!(got, pattern(0, BO as usize));
    // Freeing a VRAM object of the group gives its charge back: the next one fits.
    drop(a2);
    assert_eq!(ga.current(), BO);
    // The high-water mark stays: never past the limit.
    assert_eq!(ga.peak(), 2 * BO);
    let a3 = gpu.create_bo_in(BoDesc::vram("a3", BO), &ga).unwrap();
    assert_eq!(a3.placement(), Some(Placement::Vram));
    assert_eq!(ga.limit_evictions(), 1);
}

#[test]
fn without_a_limit_nothing_is_evicted() {
    let (gpu, ga, a, b1) = two_groups(None);
    let a2 = gpu.create_bo_in(BoDesc::vram("a2", BO), &ga).unwrap();
    for bo in a.iter().chain([&a2, &b1]) {
        assert_eq!(bo.placement(), Some(Placement::Vram), "{}", bo.name());
        assert_eq!(bo.evictions(), 0);
    }
    assert_eq!((ga.current(), ga.limit_evictions()), (3 * BO, 0));
    assert_eq!(gpu.ttm_stats().evictions, 0);
}

#[test]
fn a_group_with_nothing_of_its_own_to_evict_falls_back_to_gtt_or_fails_enomem() {
    let (gpu, ga, a, b1) = two_groups(Some(2 * BO));
    for bo in &a {
        bo.pin().unwrap();
    }
    // May live in GTT: placed there, nothing evicted, b untouched.
    let a2 = gpu.create_bo_in(BoDesc::vram("a2", BO), &ga).unwrap();
    assert_eq!(a2.placement(), Some(Placement::Gtt));
    assert_eq!(b1.placement(), Some(Placement::Vram));
    // VRAM only: ENOMEM naming the group and its limit.
    let err = gpu
        .create_bo_in(BoDesc::vram_only("a3", BO), &ga)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::ENOMEM);
    assert!(err.to_string().contains("dmem.max"), "{err}");
    assert_eq!(ga.current(), 2 * BO);
    assert!(ga.limit_failures() >= 2);
    assert_eq!(ga.limit_evictions(), 0);
    // Explicitly validating a GTT object of the group into VRAM is refused the same way.
    assert_eq!(
        gpu.validate(&a2, Placement::Vram).unwrap_err().errno(),
        Errno::ENOMEM
    );
}

#[test]
fn a_limit_lowered_below_current_acts_at_the_next_charge() {
    let (gpu, ga, a, b1) = two_groups(None);
    ga.set_max(Some(BO));
    // Nothing happens at once.
    assert!(a.iter().all(|b| b.placement() == Some(Placement::Vram)));
    // The next charge evicts a's objects until the new one fits: both go.
    let a2 = gpu.create_bo_in(BoDesc::vram("a2", BO), &ga).unwrap();
    assert_eq!(a2.placement(), Some(Placement::Vram));
    assert!(a.iter().all(|b| b.placement() == Some(Placement::Gtt)));
    assert_eq!(b1.placement(), Some(Placement::Vram));
    assert_eq!((ga.current(), ga.limit_evictions()), (BO, 2));
}

#[test]
fn a_group_of_another_gpu_is_refused() {
    let (_d1, gpu1) = setup(2, RingMode::Thread);
    let (_d2, gpu2) = setup(2, RingMode::Thread);
    let g = gpu1.create_dmem_group("a");
    assert_eq!(g.region(), "drm/gpu0/vram0");
    let err = gpu2.create_bo_in(BoDesc::vram("x", BO), &g).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL);
}
