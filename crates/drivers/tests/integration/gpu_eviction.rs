//! VRAM pressure: LRU eviction, pinned objects, dynamic importers across moves, ghosts.

use super::*;
use drivers::gpu::{BoDesc, GpuError, Placement};
use uapi::{AsErrno, Errno};

#[test]
fn vram_pressure_evicts_the_least_recently_used_unpinned_bo_and_its_bytes_survive() {
    let (dma, gpu) = setup(3, RingMode::Thread);
    let bos: Vec<_> = (0..3)
        .map(|i| {
            let bo = gpu.create_bo(BoDesc::vram(&format!("bo{i}"), BO)).unwrap();
            bo.write(0, &pattern(i, BO as usize)).unwrap();
            bo
        })
        .collect();
    // Use bo0 again: bo1 becomes the least recently used.
    let mut tmp = vec![0u8; 16];
    bos[0].read(0, &mut tmp).unwrap();
    assert_eq!(
        gpu.lru(Placement::Vram),
        vec![bos[1].id(), bos[2].id(), bos[0].id()]
    );

    let newcomer = gpu.create_bo(BoDesc::vram("new", BO)).unwrap();
    assert_eq!(newcomer.placement(), Some(Placement::Vram));
    assert_eq!(
        bos[1].placement(),
        Some(Placement::Gtt),
        "the LRU victim went to GTT"
    );
    assert_eq!(bos[0].placement(), Some(Placement::Vram));
    assert_eq!(bos[2].placement(), Some(Placement::Vram));
    assert_eq!(bos[1].evictions(), 1);
    assert_eq!(gpu.ttm_stats().evictions, 1);
    for (i, bo) in bos.iter().enumerate() {
        let mut got = vec![0u8; BO as usize];
        bo.read(0, &mut got).unwrap();
        assert_eq!(got, pattern(i as u64, BO as usize), "bo{i} survived");
    }
    // The move left a signaled KERNEL fence in the victim's reservation object.
    assert!(bos[1].resv().test_signaled(DmaResvUsage::Kernel));
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_pinned_bo_is_never_evicted() {
    let (dma, gpu) = setup(2, RingMode::Thread);
    let a = gpu.create_bo(BoDesc::vram("a", BO)).unwrap();
    let b = gpu.create_bo(BoDesc::vram("b", BO)).unwrap();
    a.pin().unwrap();
    // a is the least recently used, but pinned: b goes.
    let c = gpu.create_bo(BoDesc::vram("c", BO)).unwrap();
    assert_eq!(a.placement(), Some(Placement::Vram));
    assert_eq!(b.placement(), Some(Placement::Gtt));
    assert_eq!(c.placement(), Some(Placement::Vram));
    // Explicit eviction of a pinned object is refused.
    assert_eq!(gpu.evict(&a).unwrap_err().errno(), Errno::EBUSY);
    a.unpin().unwrap();
    assert_eq!(gpu.evict(&a).unwrap(), Placement::Gtt);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn eviction_fails_with_enomem_when_only_pinned_bos_remain() {
    let (dma, gpu) = setup(2, RingMode::Thread);
    let a = gpu.create_bo(BoDesc::vram("a", BO)).unwrap();
    let b = gpu.create_bo(BoDesc::vram("b", BO)).unwrap();
    a.pin().unwrap();
    b.pin().unwrap();
    let before = gpu.ttm_stats();
    let err = gpu.create_bo(BoDesc::vram_only("c", BO)).unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::NoSpace {
                placement: Placement::Vram,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.errno(), Errno::ENOMEM);
    assert!(err.to_string().contains("2 pinned"), "{err}");
    assert_eq!(
        gpu.ttm_stats().vram_used,
        before.vram_used,
        "nothing leaked"
    );
    // An object that may live in GTT falls back there.
    let d = gpu.create_bo(BoDesc::vram("d", BO)).unwrap();
    assert_eq!(d.placement(), Some(Placement::Gtt));
    assert_eq!(
        (a.placement(), b.placement()),
        (Some(Placement::Vram), Some(Placement::Vram))
    );
    assert_eq!(dma.checker().total(), 0);
}

#[test]
fn a_victim_busy_past_the_timeout_gives_ebusy_and_is_evicted_once_idle() {
    let (dma, gpu) = setup(1, RingMode::Manual);
    let vm = drivers::gpu::GpuVm::new(&gpu, "p");
    let a = gpu.create_bo(BoDesc::vram("a", BO)).unwrap();
    let gate = fence::SimpleFenceOps::create("test", "gate", fence::context_alloc(1).unwrap(), 1);
    let job = gpu
        .submit(&vm, drivers::gpu::Job::fill(&a, 0x5a).after(gate.clone()))
        .unwrap();
    // The job cannot run: a is busy for longer than the eviction timeout.
    let err = gpu.create_bo(BoDesc::vram_only("b", BO)).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    assert_eq!(a.placement(), Some(Placement::Vram));
    gate.signal().unwrap();
    gpu.wait_idle(&job).unwrap();
    let b = gpu.create_bo(BoDesc::vram_only("b", BO)).unwrap();
    assert_eq!(b.placement(), Some(Placement::Vram));
    let mut got = vec![0u8; BO as usize];
    a.read(0, &mut got).unwrap();
    assert!(
        got.iter().all(|&x| x == 0x5a),
        "the job's bytes moved with a"
    );
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn eviction_with_a_dynamic_importer_notifies_it_and_it_remaps_without_reading_freed_memory() {
    let (dma, gpu) = setup(2, RingMode::Thread);
    let a = gpu.create_bo(BoDesc::vram("shared", BO)).unwrap();
    let data = pattern(7, BO as usize);
    a.write(0, &data).unwrap();
    let buf = gpu.export(&a).unwrap();
    let imp = TestImporter::new(true);
    let att = attach_dynamic(&buf, &dma, "isp0", &imp);
    assert_eq!(imp.read(&att, BO as usize), data);
    assert!(imp.maps_vram(), "a p2p importer maps VRAM directly");
    let mmap = buf.mmap(0, BO, false).unwrap();
    let mut first = [0u8; 8];
    mmap.read(0, &mut first).unwrap();

    // Pressure: a is the least recently used.
    let _b = gpu.create_bo(BoDesc::vram("b", BO)).unwrap();
    let _c = gpu.create_bo(BoDesc::vram("c", BO)).unwrap();
    assert_eq!(a.placement(), Some(Placement::Gtt));
    assert_eq!(imp.notified(), 1, "move_notify reached the importer");
    assert!(
        imp.table.lock().is_none(),
        "it dropped its mapping under the resv lock"
    );
    assert_eq!(buf.zap_count(), 1, "CPU mmaps were zapped");

    // It re-maps: system pages now, same bytes; the mmap faults to the new pages.
    assert_eq!(imp.read(&att, BO as usize), data);
    assert!(!imp.maps_vram());
    assert_eq!(imp.maps.load(Ordering::SeqCst), 2);
    let mut again = [0u8; 8];
    mmap.read(0, &mut again).unwrap();
    assert_eq!(again, first);
    assert_eq!(a.ghosts(), 0);
    imp.unmap(&att);
    buf.detach(att).unwrap();
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_lagging_importer_keeps_the_old_storage_as_a_ghost_until_it_unmaps() {
    let (dma, gpu) = setup(2, RingMode::Thread);
    let a = gpu.create_bo(BoDesc::vram("shared", BO)).unwrap();
    let data = pattern(9, BO as usize);
    a.write(0, &data).unwrap();
    let buf = gpu.export(&a).unwrap();
    let imp = TestImporter::lazy(true);
    let att = attach_dynamic(&buf, &dma, "isp0", &imp);
    assert_eq!(imp.read(&att, BO as usize), data);
    let vram_before = gpu.ttm_stats().vram_used;

    gpu.evict(&a).unwrap();
    assert_eq!(imp.notified(), 1);
    assert_eq!(
        a.ghosts(),
        1,
        "the old VRAM lives on for the importer's table"
    );
    assert_eq!(
        gpu.ttm_stats().vram_used,
        vram_before,
        "the ghost still holds its VRAM"
    );
    // Still reading the old (valid, never freed) storage.
    assert_eq!(imp.read(&att, BO as usize), data);
    imp.unmap(&att);
    assert_eq!(a.ghosts(), 0, "the ghost went with the last table");
    assert_eq!(gpu.ttm_stats().vram_used, vram_before - BO);
    assert_eq!(imp.read(&att, BO as usize), data);
    imp.unmap(&att);
    drop(att);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_static_importer_pins_the_bo_while_mapped() {
    let (dma, gpu) = setup(1, RingMode::Thread);
    let a = gpu.create_bo(BoDesc::vram("scanout", BO)).unwrap();
    let buf = gpu.export(&a).unwrap();
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let t = att.map_unlocked(DmaDirection::ToDevice).unwrap();
    assert_eq!(
        a.placement(),
        Some(Placement::Gtt),
        "a static importer gets system pages"
    );
    assert_eq!(a.pin_count(), 1);
    assert_eq!(gpu.evict(&a).unwrap_err().errno(), Errno::EBUSY);
    att.unmap_unlocked(t).unwrap();
    assert_eq!(a.pin_count(), 0);
    assert_eq!(gpu.evict(&a).unwrap(), Placement::System);
    drop(att);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn every_move_records_its_copy_cost_on_the_machines_time_model() {
    let (dma, gpu) = setup(1, RingMode::Thread);
    let desc = BoDesc {
        domains: drivers::gpu::Domains::ALL,
        ..BoDesc::vram("frame", BO)
    };
    let bo = gpu.create_bo(desc).unwrap();
    assert_eq!(bo.last_move(), None, "never moved");
    // Pressure evicts it to GTT: the GPU's engine copies BO bytes.
    let _hog = gpu.create_bo(BoDesc::vram("hog", BO)).unwrap();
    let evict = bo.last_move().expect("evicted");
    let cost = soc::timing::copy_ns(dma.soc(), "gpu0", BO);
    assert!(cost > 0);
    assert_eq!(
        (evict.from, evict.to, evict.bytes, evict.copy_ns, evict.seq),
        (Placement::Vram, Placement::Gtt, BO, cost, 1)
    );
    assert_eq!(evict.engine, "gpu0");
    // GTT -> SYSTEM keeps the pages: a rebind, no copy, no cost.
    gpu.validate(&bo, Placement::System).unwrap();
    let rebind = bo.last_move().unwrap();
    assert_eq!(
        (
            rebind.from,
            rebind.to,
            rebind.bytes,
            rebind.copy_ns,
            rebind.seq
        ),
        (Placement::Gtt, Placement::System, 0, 0, 2)
    );
    assert_eq!(gpu.ttm_stats().move_ns, cost, "the copies' sum");
}
