//! Contiguous placement for importers without an IOMMU (exporter rule 3): a CMA range below the
//! importer's mask, moved into at a late attach, or the attach refused with the move's errno.

use super::*;
use drivers::gpu::{BoDesc, GpuConfig, Placement};
use soc::{Soc, SocDesc};
use uapi::AsErrno;

/// 3840x2160 XRGB8888: 33,177,600 bytes, 8100 pages — above the largest page block.
const FRAME_4K: u64 = 3840 * 2160 * 4;

/// A GPU on `desc`'s machine, unlimited budgets, threaded ring.
fn gpu_on(desc: SocDesc) -> (Arc<DmaApi>, Gpu) {
    let soc = Soc::new(desc).unwrap();
    let dma = Arc::new(DmaApi::new(&soc));
    let gpu = Gpu::new(
        &dma,
        GpuConfig {
            evict_timeout: Duration::from_millis(200),
            ..GpuConfig::default()
        },
    )
    .unwrap();
    (dma, gpu)
}

/// Reads `len` bytes of a mapped table through `att`'s device.
fn read_through(dma: &DmaApi, att: &Attachment, t: &MappedSgTable, len: usize) -> Vec<u8> {
    let mut got = vec![0u8; len];
    let mut at = 0;
    for s in t.dma_segments() {
        let k = (s.len as usize).min(len - at);
        dma.device_read(att.device(), s.addr, &mut got[at..at + k])
            .unwrap();
        at += k;
        if at == len {
            break;
        }
    }
    got
}

#[test]
fn a_4k_frame_for_a_display_without_iommu_is_one_cma_run_below_its_mask() {
    let (dma, gpu) = gpu_on(SocDesc::default_soc());
    let bo = gpu.create_bo(BoDesc::vram("scanout", FRAME_4K)).unwrap();
    let data = pattern(11, FRAME_4K as usize);
    bo.write(0, &data).unwrap();
    let buf = gpu.export(&bo).unwrap();
    // display0: no IOMMU, 30-bit mask; cma0 lies at 512 MiB.
    let att = buf.attach(&dma.device("display0").unwrap()).unwrap();
    assert_eq!(
        bo.placement(),
        Some(Placement::Gtt),
        "moved out of VRAM at attach"
    );
    assert_eq!(bo.phys_runs(), Some(1), "one physical run");
    let cma = &dma.soc().pages().cma_regions()[0];
    assert!(cma.used >= FRAME_4K, "from CMA: {cma:?}");
    let t = att.map_unlocked(DmaDirection::ToDevice).unwrap();
    assert!(t.is_dma_contiguous());
    assert!(t.entries().iter().all(|e| e.phys.0 + e.len <= 1 << 30));
    assert_eq!(read_through(&dma, &att, &t, FRAME_4K as usize), data);
    att.unmap_unlocked(t).unwrap();
    buf.detach(att).unwrap();
    drop((buf, bo));
    assert_eq!(dma.soc().pages().cma_regions()[0].used, 0, "CMA given back");
    assert_eq!(gpu.ttm_stats().gtt_used, 0);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_contiguous_page_block_larger_than_the_object_is_charged_and_freed_as_the_object() {
    // No CMA: a 3 MiB contiguous object is one order-10 block (4 MiB). The GTT budget is
    // charged the object's 3 MiB and given back the same (this overflowed before: the free
    // uncharged the whole block).
    let mut desc = SocDesc::default_soc();
    desc.cma.clear();
    let (dma, gpu) = gpu_on(desc);
    let size = 3 << 20;
    let bo = gpu.create_bo(BoDesc::gtt("staging", size)).unwrap();
    let data = pattern(12, size as usize);
    bo.write(0, &data).unwrap();
    let buf = gpu.export(&bo).unwrap();
    let att = buf.attach(&dma.device("camera0").unwrap()).unwrap();
    assert_eq!(bo.phys_runs(), Some(1));
    assert_eq!(
        gpu.ttm_stats().gtt_used,
        size,
        "the object's bytes, not the block's"
    );
    let t = att.map_unlocked(DmaDirection::ToDevice).unwrap();
    let mapped: u64 = t.dma_segments().iter().map(|s| s.len).sum();
    assert_eq!(mapped, size, "only the object's bytes are mapped");
    assert_eq!(read_through(&dma, &att, &t, size as usize), data);
    att.unmap_unlocked(t).unwrap();
    buf.detach(att).unwrap();
    drop((buf, bo));
    assert_eq!(gpu.ttm_stats().gtt_used, 0);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_late_attach_without_iommu_moves_the_object_and_notifies_the_importers_there() {
    let (dma, gpu) = gpu_on(SocDesc::default_soc());
    let bo = gpu.create_bo(BoDesc::gtt("frame", 1 << 20)).unwrap();
    let data = pattern(13, 1 << 20);
    bo.write(0, &data).unwrap();
    let buf = gpu.export(&bo).unwrap();
    let imp = TestImporter::new(false);
    let isp = attach_dynamic(&buf, &dma, "isp0", &imp);
    assert_eq!(imp.read(&isp, 1 << 20), data);
    let gen = bo.generation();
    let moves = gpu.ttm_stats().moves;
    assert!(bo.phys_runs().unwrap() >= 1);

    let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
    assert_eq!(bo.generation(), gen + 1, "moved at the attach");
    assert_eq!(gpu.ttm_stats().moves, moves + 1);
    assert_eq!(
        imp.notified(),
        1,
        "move_notify to the importer already there"
    );
    assert_eq!(bo.phys_runs(), Some(1));
    // Both read the moved bytes: the dynamic importer re-maps.
    assert_eq!(imp.read(&isp, 1 << 20), data);
    let t = display.map_unlocked(DmaDirection::ToDevice).unwrap();
    assert_eq!(read_through(&dma, &display, &t, 1 << 20), data);
    display.unmap_unlocked(t).unwrap();
    imp.unmap(&isp);
    buf.detach(display).unwrap();
    drop(isp);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn an_attach_that_cannot_be_placed_is_refused_with_enomem_and_changes_nothing() {
    // The only CMA region lies above the display's 30-bit mask, and 4K is above MAX_ORDER.
    let mut desc = SocDesc::default_soc();
    desc.cma[0].base = Some(soc::ByteSize(0x4000_0000));
    let (dma, gpu) = gpu_on(desc);
    let bo = gpu.create_bo(BoDesc::gtt("big", FRAME_4K)).unwrap();
    let buf = gpu.export(&bo).unwrap();
    let (gen, runs) = (bo.generation(), bo.phys_runs());
    let err = buf
        .attach(&dma.device("display0").unwrap())
        .expect_err("no contiguous memory below 1 GiB");
    assert_eq!(err.errno(), uapi::Errno::ENOMEM, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("display0"), "{msg}");
    assert!(msg.contains("cma0") && msg.contains("MAX_ORDER"), "{msg}");
    assert_eq!(
        (bo.generation(), bo.phys_runs()),
        (gen, runs),
        "nothing moved"
    );
    assert!(buf.attachment_infos().is_empty(), "not attached");
    // An importer behind the IOMMU still attaches and maps the scattered pages.
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let t = att.map_unlocked(DmaDirection::ToDevice).unwrap();
    assert_eq!(bo.generation(), gen);
    att.unmap_unlocked(t).unwrap();
    buf.detach(att).unwrap();
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_vram_only_object_refuses_an_importer_that_cannot_reach_vram_with_einval() {
    let (dma, gpu) = gpu_on(SocDesc::default_soc());
    let bo = gpu.create_bo(BoDesc::vram_only("local", BO)).unwrap();
    let buf = gpu.export(&bo).unwrap();
    let err = buf
        .attach(&dma.device("display0").unwrap())
        .expect_err("VRAM only");
    assert_eq!(err.errno(), uapi::Errno::EINVAL, "{err}");
    assert_eq!(bo.placement(), Some(Placement::Vram));
    assert!(buf.attachment_infos().is_empty());
}
