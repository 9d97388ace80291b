//! PRIME: export, self-import, foreign import, peer-to-peer.

use super::*;
use dmabuf::testing::MockExporter;
use drivers::gpu::{BoDesc, GpuConfig, GpuVm, Job, Placement};

#[test]
fn self_import_returns_the_same_bo() {
    let (dma, gpu) = setup(4, RingMode::Thread);
    let bo = gpu.create_bo(BoDesc::vram("tex", BO)).unwrap();
    let buf = gpu.export(&bo).unwrap();
    assert!(
        gpu.export(&bo).unwrap().ptr_eq(&buf),
        "one dma-buf per object"
    );
    assert_eq!(buf.exp_name(), "gpu0");
    assert!(
        std::ptr::eq(&**buf.resv(), &**bo.resv()),
        "the dma-buf shares the object's resv"
    );
    let back = gpu.import(&buf).unwrap();
    assert!(back.ptr_eq(&bo));
    assert!(!back.is_imported());
    assert!(
        buf.attachment_infos().is_empty(),
        "self-import attaches nothing"
    );
    // Another GPU instance treats it as foreign.
    let other = Gpu::new(&dma, GpuConfig::default()).unwrap();
    let foreign = other.import(&buf).unwrap();
    assert!(foreign.is_imported() && !foreign.ptr_eq(&bo));
    drop(foreign);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_foreign_buffer_is_imported_once_and_used_by_jobs() {
    let (dma, gpu) = setup(4, RingMode::Thread);
    let exporter = MockExporter::new();
    let buf = exporter.export(&dma, BO).unwrap();
    let imported = gpu.import(&buf).unwrap();
    assert!(imported.is_imported());
    assert_eq!(imported.placement(), None);
    assert!(gpu.import(&buf).unwrap().ptr_eq(&imported), "imported once");
    assert!(
        gpu.export(&imported).unwrap().ptr_eq(&buf),
        "re-export gives the original"
    );

    // The GPU fills the foreign buffer; the CPU reads it through the buffer's mmap.
    let vm = GpuVm::new(&gpu, "p");
    let f = gpu.submit(&vm, Job::fill(&imported, 0xa5)).unwrap();
    gpu.wait_idle(&f).unwrap();
    buf.begin_cpu_access(DmaDirection::FromDevice).unwrap();
    let m = buf.mmap(0, BO, false).unwrap();
    let mut got = vec![0u8; BO as usize];
    m.read(0, &mut got).unwrap();
    buf.end_cpu_access(DmaDirection::FromDevice).unwrap();
    assert!(got.iter().all(|&b| b == 0xa5));
    drop((m, vm, imported));
    assert!(
        buf.attachment_infos().is_empty(),
        "dropping the import detached"
    );
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn p2p_import_gets_vram_when_both_ends_allow_it() {
    let (dma, gpu) = setup(4, RingMode::Thread);
    let bo = gpu.create_bo(BoDesc::vram("frame", BO)).unwrap();
    let data = pattern(3, BO as usize);
    bo.write(0, &data).unwrap();
    let buf = gpu.export(&bo).unwrap();
    let imp = TestImporter::new(true);
    let att = attach_dynamic(&buf, &dma, "isp0", &imp);
    assert!(att.peer2peer());
    assert_eq!(imp.read(&att, BO as usize), data);
    assert!(imp.maps_vram());
    assert_eq!(bo.placement(), Some(Placement::Vram), "nothing moved");
    imp.unmap(&att);
    drop(att);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn without_p2p_the_bo_is_placed_in_system_memory_for_the_importer() {
    let (dma, gpu) = setup(4, RingMode::Thread);
    let bo = gpu.create_bo(BoDesc::vram("frame", BO)).unwrap();
    let data = pattern(4, BO as usize);
    bo.write(0, &data).unwrap();
    let buf = gpu.export(&bo).unwrap();
    let p2p = TestImporter::new(true);
    let att_p2p = attach_dynamic(&buf, &dma, "isp0", &p2p);
    assert_eq!(p2p.read(&att_p2p, BO as usize), data);
    assert!(p2p.maps_vram());

    // An importer that does not allow p2p joins: the object moves to system pages, the p2p
    // importer is told and re-maps, both read the same bytes.
    let plain = TestImporter::new(false);
    let att_plain = attach_dynamic(&buf, &dma, "encoder0", &plain);
    assert!(!att_plain.peer2peer());
    assert_eq!(plain.read(&att_plain, BO as usize), data);
    assert!(!plain.maps_vram());
    assert_eq!(bo.placement(), Some(Placement::Gtt));
    assert_eq!(p2p.notified(), 1);
    assert_eq!(p2p.read(&att_p2p, BO as usize), data);
    assert!(!p2p.maps_vram());
    // VRAM is refused while the plain importer stays attached.
    assert!(gpu.validate(&bo, Placement::Vram).is_err());
    plain.unmap(&att_plain);
    p2p.unmap(&att_p2p);
    drop(att_plain);
    gpu.validate(&bo, Placement::Vram).unwrap();
    assert_eq!(p2p.read(&att_p2p, BO as usize), data);
    assert!(p2p.maps_vram());
    p2p.unmap(&att_p2p);
    drop(att_p2p);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn an_exporter_without_p2p_support_never_hands_out_vram() {
    let dma = mock_dma();
    let gpu = Gpu::new(
        &dma,
        GpuConfig {
            p2p: false,
            ..GpuConfig::default()
        },
    )
    .unwrap();
    let bo = gpu.create_bo(BoDesc::vram("frame", BO)).unwrap();
    let buf = gpu.export(&bo).unwrap();
    let imp = TestImporter::new(true);
    let att = attach_dynamic(&buf, &dma, "isp0", &imp);
    assert!(att.peer2peer(), "the importer allows it");
    let _ = imp.read(&att, 16);
    assert!(!imp.maps_vram());
    assert_eq!(bo.placement(), Some(Placement::Gtt));
    imp.unmap(&att);
    drop(att);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_direct_mapped_importer_gets_pages_below_its_dma_mask() {
    let (dma, gpu) = setup(4, RingMode::Thread);
    let bo = gpu.create_bo(BoDesc::vram("scanout", BO)).unwrap();
    let data = pattern(5, BO as usize);
    bo.write(0, &data).unwrap();
    let buf = gpu.export(&bo).unwrap();
    // display0: no IOMMU, 30-bit mask.
    let att = buf.attach(&dma.device("display0").unwrap()).unwrap();
    let t = att.map_unlocked(DmaDirection::ToDevice).unwrap();
    assert!(t.entries().iter().all(|e| e.phys.0 + e.len <= 1 << 30));
    let mut got = vec![0u8; BO as usize];
    let mut at = 0;
    for s in t.dma_segments() {
        dma.device_read(att.device(), s.addr, &mut got[at..at + s.len as usize])
            .unwrap();
        at += s.len as usize;
    }
    assert_eq!(got, data);
    att.unmap_unlocked(t).unwrap();
    drop(att);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn importers_re_maps_are_served_by_the_exports_map_cache_until_a_move() {
    let (dma, gpu) = setup(4, RingMode::Thread);
    let bo = gpu.create_bo(BoDesc::vram("frame", BO)).unwrap();
    let data = pattern(21, BO as usize);
    bo.write(0, &data).unwrap();
    let buf = gpu.export(&bo).unwrap();
    let imp = TestImporter::new(true);
    let att = attach_dynamic(&buf, &dma, "isp0", &imp);
    for _ in 0..3 {
        assert_eq!(imp.read(&att, BO as usize), data);
        imp.unmap(&att);
    }
    assert_eq!(bo.map_cache_stats(), (1, 2), "one real map, then hits");
    assert_eq!(bo.dma_buf_maps(), 3, "every map_dma_buf answered");
    assert_eq!(
        dma.checker().live_mappings(Some("isp0")).len(),
        1,
        "the cached table stays mapped"
    );
    // A move invalidates the cache: the next map is a miss of the new storage.
    assert_eq!(gpu.evict(&bo).unwrap(), Placement::Gtt);
    assert_eq!(imp.read(&att, BO as usize), data);
    assert_eq!(bo.map_cache_stats(), (2, 2));
    imp.unmap(&att);
    drop(att);
    assert!(
        dma.checker().live_mappings(Some("isp0")).is_empty(),
        "detach unmapped the cached table"
    );
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}
