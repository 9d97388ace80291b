//! Per-process address spaces: cached mappings, invalidation on move.

use super::*;
use drivers::gpu::{BoDesc, GpuError, GpuVm, Job, Placement};
use uapi::{AsErrno, Errno};

#[test]
fn vm_mapping_cache_hits_on_reuse_and_is_invalidated_on_move() {
    let (dma, gpu) = setup(4, RingMode::Thread);
    let vm = GpuVm::new(&gpu, "game");
    let bo = gpu.create_bo(BoDesc::vram("tex", BO)).unwrap();
    let va = vm.map(&bo).unwrap();
    assert_eq!(vm.map(&bo).unwrap(), va, "the same mapping");
    let s = vm.stats();
    assert_eq!((s.misses, s.hits, s.invalidations, s.mapped), (1, 1, 0, 1));
    assert_eq!(vm.lookup(&bo), Some(va));

    // Jobs reuse the mapping: one hit per use, no new mapping.
    let other = gpu.create_bo(BoDesc::vram("rt", BO)).unwrap();
    for _ in 0..3 {
        let f = gpu.submit(&vm, Job::copy(&bo, &other)).unwrap();
        gpu.wait_idle(&f).unwrap();
    }
    let s = vm.stats();
    assert_eq!((s.misses, s.hits), (2, 1 + 3 + 2), "{s:?}");

    gpu.evict(&bo).unwrap();
    assert_eq!(vm.stats().invalidations, 1);
    assert_eq!(
        vm.lookup(&bo),
        None,
        "the old mapping is gone with the move"
    );
    vm.map(&bo).unwrap();
    assert_eq!(vm.stats().misses, 3, "the next use re-maps the new storage");
    assert_eq!(bo.placement(), Some(Placement::Gtt));
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn two_vms_map_the_same_bo_independently() {
    let (dma, gpu) = setup(4, RingMode::Thread);
    let a = GpuVm::new(&gpu, "a");
    let b = GpuVm::new(&gpu, "b");
    let bo = gpu.create_bo(BoDesc::vram("shared", BO)).unwrap();
    let va = a.map(&bo).unwrap();
    let vb = b.map(&bo).unwrap();
    assert_ne!(va, vb, "each address space has its own mapping");
    gpu.evict(&bo).unwrap();
    assert_eq!((a.stats().invalidations, b.stats().invalidations), (1, 1));
    drop(a);
    b.unmap(&bo).unwrap();
    assert_eq!(b.unmap(&bo).unwrap_err().errno(), Errno::ENOENT);
    assert_eq!(
        dma.checker().live_mappings(Some("gpu0")).len(),
        1,
        "only the GTT binding"
    );
    drop((b, bo));
    assert!(dma.checker().live_mappings(Some("gpu0")).is_empty());
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn an_evicted_bo_in_system_is_brought_back_when_mapped() {
    let (dma, gpu) = setup(1, RingMode::Thread);
    let vm = GpuVm::new(&gpu, "p");
    let bo = gpu.create_bo(BoDesc::vram("tex", BO)).unwrap();
    let data = pattern(11, BO as usize);
    bo.write(0, &data).unwrap();
    assert_eq!(gpu.evict(&bo).unwrap(), Placement::Gtt);
    assert_eq!(gpu.evict(&bo).unwrap(), Placement::System);
    assert!(matches!(gpu.evict(&bo), Err(GpuError::InvalidArgument(_))));
    vm.map(&bo).unwrap();
    assert_eq!(
        bo.placement(),
        Some(Placement::Vram),
        "back to its preferred placement"
    );
    let mut got = vec![0u8; BO as usize];
    bo.read(0, &mut got).unwrap();
    assert_eq!(got, data);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}
