//! The DMA-API checker: one test per class of finding, strict mode, and the findings API.

use crate::common::{machine, scattered_pages};
use dma::{DmaAttrs, DmaDirection, DmaError, FindingAddr, FindingKind, SegmentLimits, SgTable};
use soc::{
    AllocRequest, BankDesc, BankKind, ByteSize, DeviceDesc, DmaAddr, Soc, SocDesc, PAGE_SIZE,
};

const TO: DmaDirection = DmaDirection::ToDevice;
const FROM: DmaDirection = DmaDirection::FromDevice;
const BIDI: DmaDirection = DmaDirection::Bidirectional;
const NONE: DmaAttrs = DmaAttrs::NONE;

fn kinds(api: &dma::DmaApi) -> Vec<FindingKind> {
    api.checker().findings().iter().map(|f| f.kind).collect()
}

#[test]
fn unmap_with_wrong_size_direction_or_nents_is_reported() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let display = api.device("display0").unwrap();
    // Wrong size on a single mapping.
    let page = soc
        .pages()
        .alloc_pages(&AllocRequest::new(0).below(display.dma_mask()))
        .unwrap();
    let a = api
        .map_page(&display, page.addr, PAGE_SIZE, TO, NONE)
        .unwrap();
    api.unmap_page(&display, a, 100, TO, NONE).unwrap();
    assert_eq!(kinds(&api), [FindingKind::UnmapWrongSize]);
    let f = &api.checker().findings()[0];
    assert_eq!(
        (f.device.as_str(), f.address, f.size),
        ("display0", FindingAddr::Dma(a), 100)
    );
    assert!(
        f.context.contains("[map size=0x1000] [unmap size=0x64]"),
        "{}",
        f.context
    );
    api.checker().clear();
    // Wrong direction.
    let a = api
        .map_page(&display, page.addr, PAGE_SIZE, TO, NONE)
        .unwrap();
    api.unmap_page(&display, a, PAGE_SIZE, FROM, NONE).unwrap();
    assert_eq!(kinds(&api), [FindingKind::UnmapWrongDirection]);
    assert!(api.checker().findings()[0]
        .context
        .contains("[mapped with DMA_TO_DEVICE] [unmapped with DMA_FROM_DEVICE]"));
    api.checker().clear();
    // Wrong nents on an sg mapping.
    let pages = scattered_pages(&soc, 3, AllocRequest::new(0));
    let mut sgt = SgTable::from_pages(&pages, SegmentLimits::UNLIMITED).unwrap();
    api.map_sg(&isp, &mut sgt, BIDI, NONE).unwrap();
    api.unmap_sg_nents(&isp, &mut sgt, 1, BIDI, NONE).unwrap();
    assert_eq!(kinds(&api), [FindingKind::UnmapWrongNents]);
    assert!(api.checker().findings()[0]
        .context
        .contains("[map count=3] [unmap count=1]"));
    assert!(
        api.checker().live_mappings(None).is_empty(),
        "unmapped anyway, as Linux does"
    );
}

#[test]
fn unmap_of_unknown_address_or_with_the_wrong_function_is_reported() {
    let (soc, api) = machine();
    let display = api.device("display0").unwrap();
    let e = api
        .unmap_page(&display, DmaAddr(0x1234_0000), PAGE_SIZE, TO, NONE)
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::NotMapped {
            device: "display0".into(),
            addr: DmaAddr(0x1234_0000)
        }
    );
    assert_eq!(kinds(&api), [FindingKind::UnmapUnknown]);
    assert!(api.checker().findings()[0]
        .context
        .contains("has not allocated"));
    api.checker().clear();
    let page = soc
        .pages()
        .alloc_pages(&AllocRequest::new(0).below(display.dma_mask()))
        .unwrap();
    let a = api
        .map_page(&display, page.addr, PAGE_SIZE, TO, NONE)
        .unwrap();
    // Double unmap: the second is unknown.
    api.unmap_page(&display, a, PAGE_SIZE, TO, NONE).unwrap();
    assert!(api.unmap_page(&display, a, PAGE_SIZE, TO, NONE).is_err());
    assert_eq!(kinds(&api), [FindingKind::UnmapUnknown]);
    api.checker().clear();
    let a = api
        .map_page(&display, page.addr, PAGE_SIZE, TO, NONE)
        .unwrap();
    api.unmap_resource(&display, a, PAGE_SIZE, TO, NONE)
        .unwrap();
    assert_eq!(kinds(&api), [FindingKind::UnmapWrongType]);
    assert!(api.checker().findings()[0]
        .context
        .contains("[mapped as single] [unmapped as resource]"));
}

#[test]
fn sync_in_wrong_direction_is_reported() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let page = soc.pages().alloc_pages(&AllocRequest::new(0)).unwrap();
    let mut sgt = SgTable::from_pages(&[page], SegmentLimits::UNLIMITED).unwrap();
    api.map_sg(&isp, &mut sgt, TO, NONE).unwrap();
    // For the CPU, with a direction the device does not write: read-only memory synced for cpu.
    api.sync_sg_for_cpu(&isp, &sgt, FROM).unwrap();
    assert_eq!(
        kinds(&api),
        [
            FindingKind::SyncWrongDirection,
            FindingKind::SyncReadOnlyForCpu
        ]
    );
    api.checker().clear();
    // The matching direction is fine (a no-op for TO_DEVICE).
    api.sync_sg_for_cpu(&isp, &sgt, TO).unwrap();
    api.sync_sg_for_device(&isp, &sgt, TO).unwrap();
    assert!(kinds(&api).is_empty());
    api.unmap_sg(&isp, &mut sgt, TO, NONE).unwrap();
    // A FROM_DEVICE mapping synced for the device to read.
    api.map_sg(&isp, &mut sgt, FROM, NONE).unwrap();
    api.sync_sg_for_device(&isp, &sgt, BIDI).unwrap();
    assert_eq!(
        kinds(&api),
        [
            FindingKind::SyncWrongDirection,
            FindingKind::SyncWriteOnlyForDevice
        ]
    );
    assert!(api.checker().findings()[1]
        .context
        .contains("write-only DMA memory to device"));
    api.checker().clear();
    api.sync_sg_for_device(&isp, &sgt, FROM).unwrap();
    assert!(
        kinds(&api).is_empty(),
        "giving a FROM_DEVICE buffer back to the device is legal"
    );
    api.unmap_sg(&isp, &mut sgt, FROM, NONE).unwrap();
    // BIDIRECTIONAL mappings accept any direction.
    api.map_sg(&isp, &mut sgt, BIDI, NONE).unwrap();
    api.sync_sg_for_cpu(&isp, &sgt, FROM).unwrap();
    api.sync_sg_for_device(&isp, &sgt, TO).unwrap();
    assert!(kinds(&api).is_empty());
    api.unmap_sg(&isp, &mut sgt, BIDI, NONE).unwrap();
}

#[test]
fn sync_outside_a_mapping_is_reported() {
    let (soc, api) = machine();
    let display = api.device("display0").unwrap();
    let page = soc
        .pages()
        .alloc_pages(&AllocRequest::new(0).below(display.dma_mask()))
        .unwrap();
    api.sync_single_for_cpu(&display, DmaAddr(page.addr.0), 64, FROM)
        .unwrap();
    assert_eq!(kinds(&api), [FindingKind::SyncUnmapped]);
    api.checker().clear();
    let a = api.map_page(&display, page.addr, 256, FROM, NONE).unwrap();
    api.sync_single_for_cpu(&display, a.add(128), 64, FROM)
        .unwrap();
    assert!(kinds(&api).is_empty(), "a part of a mapping");
    api.sync_single_for_cpu(&display, a.add(128), 256, FROM)
        .unwrap();
    assert_eq!(kinds(&api), [FindingKind::SyncOutOfRange]);
    api.unmap_page(&display, a, 256, FROM, NONE).unwrap();
}

#[test]
fn segments_over_max_size_or_across_boundary_are_reported() {
    // A direct-mapped device with 8 KiB segments and a 64 KiB boundary.
    let mut desc = SocDesc {
        banks: vec![BankDesc {
            name: "dram0".into(),
            kind: BankKind::System,
            base: ByteSize(0),
            size: ByteSize(64 << 20),
        }],
        ..SocDesc::default()
    };
    desc.devices.push(DeviceDesc {
        max_segment_size: ByteSize(8 << 10),
        segment_boundary_mask: ByteSize(0xffff),
        ..DeviceDesc::new("dev0")
    });
    let soc = Soc::new(desc).unwrap();
    let api = dma::DmaApi::new(&soc);
    let dev = api.device("dev0").unwrap();
    // A table built for another device: one 16 KiB entry across a 64 KiB boundary.
    let mut sgt = SgTable::from_ranges(
        &[(soc::PhysAddr(0x1e000), 0x4000)],
        dma::SgBacking::Pages,
        SegmentLimits::UNLIMITED,
    )
    .unwrap();
    api.map_sg(&dev, &mut sgt, TO, NONE).unwrap();
    assert_eq!(
        kinds(&api),
        [
            FindingKind::SegmentTooLong,
            FindingKind::SegmentCrossesBoundary
        ]
    );
    assert!(api.checker().findings()[1]
        .context
        .contains("[boundary=0xffff]"));
    api.unmap_sg(&dev, &mut sgt, TO, NONE).unwrap();
    // Built with the device's limits, the same range is legal.
    let mut ok = SgTable::from_ranges(
        &[(soc::PhysAddr(0x1e000), 0x4000)],
        dma::SgBacking::Pages,
        SegmentLimits::of_device(&dev).unwrap(),
    )
    .unwrap();
    api.checker().clear();
    assert_eq!(api.map_sg(&dev, &mut ok, TO, NONE).unwrap(), 2);
    assert!(kinds(&api).is_empty());
}

#[test]
fn overlapping_mappings_of_a_cacheline_are_reported() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let display = api.device("display0").unwrap();
    let page = soc
        .pages()
        .alloc_pages(&AllocRequest::new(0).below(display.dma_mask()))
        .unwrap();
    let a = api.map_page(&isp, page.addr, 100, FROM, NONE).unwrap();
    // Another mapping sharing the first cacheline (bytes 100..200 are in line 0 and 1).
    let b = api
        .map_page(&display, page.addr.add(100), 100, BIDI, NONE)
        .unwrap();
    assert_eq!(kinds(&api), [FindingKind::OverlappingMapping]);
    let f = &api.checker().findings()[0];
    assert_eq!(
        f.address,
        FindingAddr::Phys(page.addr.add(64)),
        "the shared line"
    );
    assert!(
        f.context.contains("cacheline tracking EEXIST") && f.context.contains("isp0"),
        "{}",
        f.context
    );
    api.checker().clear();
    // Not reported with SKIP_CPU_SYNC, nor for TO_DEVICE mappings.
    let c = api
        .map_page(&display, page.addr, 64, BIDI, DmaAttrs::SKIP_CPU_SYNC)
        .unwrap();
    let d = api.map_page(&display, page.addr, 64, TO, NONE).unwrap();
    assert!(kinds(&api).is_empty());
    for (dev, addr, size, dir, attrs) in [
        (&isp, a, 100, FROM, NONE),
        (&display, b, 100, BIDI, NONE),
        (&display, c, 64, BIDI, DmaAttrs::SKIP_CPU_SYNC),
        (&display, d, 64, TO, NONE),
    ] {
        api.unmap_page(dev, addr, size, dir, attrs).unwrap();
    }
    // Disjoint cachelines of one page do not overlap.
    let a = api.map_page(&isp, page.addr, 64, FROM, NONE).unwrap();
    let b = api
        .map_page(&isp, page.addr.add(64), 64, FROM, NONE)
        .unwrap();
    assert!(kinds(&api).is_empty());
    api.unmap_page(&isp, a, 64, FROM, NONE).unwrap();
    api.unmap_page(&isp, b, 64, FROM, NONE).unwrap();
}

#[test]
fn device_access_outside_live_mappings_is_reported() {
    let (soc, api) = machine();
    let display = api.device("display0").unwrap();
    let page = soc
        .pages()
        .alloc_pages(&AllocRequest::new(0).below(display.dma_mask()))
        .unwrap();
    let a = api.map_page(&display, page.addr, 2048, TO, NONE).unwrap();
    let mut buf = [0u8; 1024];
    api.device_read(&display, a.add(1024), &mut buf).unwrap();
    assert!(kinds(&api).is_empty());
    // Past the end of the mapping: the hardware lets a direct-mapped device do it, the checker not.
    api.device_read(&display, a.add(1536), &mut buf).unwrap();
    assert_eq!(kinds(&api), [FindingKind::AccessOutsideMapping]);
    let f = &api.checker().findings()[0];
    assert_eq!(f.device, "display0");
    assert!(
        f.context
            .contains(&format!("reaches {:#x}", page.addr.0 + 2048)),
        "{}",
        f.context
    );
    api.checker().clear();
    // After the unmap, any access is outside.
    api.unmap_page(&display, a, 2048, TO, NONE).unwrap();
    api.device_read(&display, a, &mut buf).unwrap();
    assert_eq!(kinds(&api), [FindingKind::AccessOutsideMapping]);
}

#[test]
fn device_access_against_the_mapping_direction_is_reported() {
    let (soc, api) = machine();
    let display = api.device("display0").unwrap();
    let page = soc
        .pages()
        .alloc_pages(&AllocRequest::new(0).below(display.dma_mask()))
        .unwrap();
    let a = api
        .map_page(&display, page.addr, PAGE_SIZE, TO, NONE)
        .unwrap();
    api.device_write(&display, a, b"scribble").unwrap();
    assert_eq!(kinds(&api), [FindingKind::AccessAgainstDirection]);
    assert!(api.checker().findings()[0]
        .context
        .contains("DMA_TO_DEVICE"));
    api.unmap_page(&display, a, PAGE_SIZE, TO, NONE).unwrap();
}

#[test]
fn freeing_mapped_memory_is_reported() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let pages = scattered_pages(&soc, 2, AllocRequest::new(0));
    let mut sgt = SgTable::from_pages(&pages, SegmentLimits::UNLIMITED).unwrap();
    api.map_sg(&isp, &mut sgt, BIDI, NONE).unwrap();
    // Freed straight through the SoC: the checker sees it as an observer.
    soc.free_pages(pages[1]).unwrap();
    assert_eq!(kinds(&api), [FindingKind::FreeWhileMapped]);
    let f = &api.checker().findings()[0];
    assert_eq!(
        (f.device.as_str(), f.address, f.size),
        ("isp0", FindingAddr::Phys(pages[1].addr), PAGE_SIZE)
    );
    assert!(
        f.context.contains("scatter-gather mapping"),
        "{}",
        f.context
    );
}

#[test]
fn leaked_mappings_are_reported_at_teardown() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let pages = scattered_pages(&soc, 4, AllocRequest::new(0));
    let mut tables: Vec<SgTable> = pages
        .iter()
        .map(|p| SgTable::from_pages(&[*p], SegmentLimits::UNLIMITED).unwrap())
        .collect();
    for t in &mut tables {
        api.map_sg(&isp, t, BIDI, NONE).unwrap();
    }
    api.unmap_sg(&isp, &mut tables[0], BIDI, NONE).unwrap();
    assert_eq!(api.checker().check_leaks("isp0").unwrap(), 3);
    assert_eq!(api.checker().check_leaks("gpu0").unwrap(), 0);
    assert_eq!(kinds(&api), [FindingKind::Leak]);
    let f = &api.checker().findings()[0];
    assert!(f.context.contains("[count=3]"), "{}", f.context);
    assert_eq!(
        f.address,
        FindingAddr::Dma(tables[1].dma_address().unwrap())
    );
}

#[test]
fn strict_mode_turns_findings_into_errors() {
    let (soc, api) = machine();
    api.checker().set_strict(true);
    let isp = api.device("isp0").unwrap();
    let display = api.device("display0").unwrap();
    let page = soc
        .pages()
        .alloc_pages(&AllocRequest::new(0).below(display.dma_mask()))
        .unwrap();
    // An unmap with the wrong size is refused and changes nothing.
    let a = api
        .map_page(&display, page.addr, PAGE_SIZE, TO, NONE)
        .unwrap();
    let e = api.unmap_page(&display, a, 64, TO, NONE).unwrap_err();
    let DmaError::Checker(f) = &e else {
        panic!("{e}")
    };
    assert_eq!(f.kind, FindingKind::UnmapWrongSize);
    assert_eq!(uapi::AsErrno::errno(&e), uapi::Errno::EINVAL);
    assert_eq!(api.checker().live_mappings(Some("display0")).len(), 1);
    // Freeing mapped memory is refused.
    let e = api.free_pages(page).unwrap_err();
    assert!(
        matches!(&e, DmaError::Checker(f) if f.kind == FindingKind::FreeWhileMapped),
        "{e}"
    );
    // A stale device read is returned by the access that made it.
    soc.cpu().write(page.addr, b"dirty").unwrap();
    let mut b = [0u8; 5];
    let e = api.device_read(&display, a, &mut b).unwrap_err();
    assert!(
        matches!(&e, DmaError::Checker(f) if f.kind == FindingKind::StaleCpuData),
        "{e}"
    );
    // An overlapping mapping is refused and not recorded.
    let e = api.map_page(&isp, page.addr, PAGE_SIZE, FROM, NONE);
    assert!(e.is_ok(), "display0's mapping is TO_DEVICE: not tracked");
    let e = api
        .map_page(&display, page.addr, 64, BIDI, NONE)
        .unwrap_err();
    assert!(
        matches!(&e, DmaError::Checker(f) if f.kind == FindingKind::OverlappingMapping),
        "{e}"
    );
    assert_eq!(api.checker().live_mappings(None).len(), 2);
    assert_eq!(
        isp.iommu_domain().unwrap().mapped_bytes(),
        PAGE_SIZE,
        "the refused map left no IOMMU mapping"
    );
    // Leaks.
    assert!(api.checker().check_leaks("display0").is_err());
    // Everything was still counted.
    assert_eq!(api.checker().total(), 5);
}

#[test]
fn findings_can_be_counted_cleared_and_disabled() {
    let (_soc, api) = machine();
    let display = api.device("display0").unwrap();
    for _ in 0..3 {
        let _ = api.unmap_page(&display, DmaAddr(0x10_0000), 64, TO, NONE);
    }
    assert_eq!(api.checker().count(FindingKind::UnmapUnknown), 3);
    assert_eq!(
        api.checker().counts().get(&FindingKind::UnmapUnknown),
        Some(&3)
    );
    assert_eq!(api.checker().take().len(), 3);
    assert_eq!(api.checker().total(), 0);
    api.checker().set_enabled(FindingKind::UnmapUnknown, false);
    let _ = api.unmap_page(&display, DmaAddr(0x10_0000), 64, TO, NONE);
    assert_eq!(api.checker().total(), 0);
    api.checker().set_enabled(FindingKind::UnmapUnknown, true);
    let _ = api.unmap_page(&display, DmaAddr(0x10_0000), 64, TO, NONE);
    assert_eq!(api.checker().total(), 1);
    let text = api.checker().findings()[0].to_string();
    assert!(
        text.starts_with("[unmap-unknown] display0: dma 0x100000 +0x40:"),
        "{text}"
    );
    api.checker().clear();
    assert!(api.checker().findings().is_empty());
    assert_eq!(FindingKind::ALL.len(), 21);
}

#[test]
fn access_under_an_unsignalled_conflicting_fence_is_a_fence_conflict() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let display = api.device("display0").unwrap();
    let page = soc
        .pages()
        .alloc_pages(&AllocRequest::new(0).below(display.dma_mask()))
        .unwrap();
    let w = api
        .map_page(&isp, page.addr, PAGE_SIZE, BIDI, NONE)
        .unwrap();
    let r = api
        .map_page(&display, page.addr, PAGE_SIZE, TO, NONE)
        .unwrap();
    let watch = |owner: &str, write: bool, done: &Arc<AtomicBool>| {
        let done = done.clone();
        dma::FenceWatch {
            owner: owner.into(),
            write,
            label: "job 1".into(),
            phys: api
                .checker()
                .mapping_phys(owner, if owner == "isp0" { w } else { r }),
            signaled: Box::new(move || done.load(Ordering::SeqCst)),
        }
    };
    let mut buf = [0u8; 64];
    // The ISP's write fence is pending: the display reads anyway.
    let isp_done = Arc::new(AtomicBool::new(false));
    let id = api.checker().watch_fence(watch("isp0", true, &isp_done));
    api.device_write(&isp, w, &[1; 64]).unwrap();
    assert!(
        kinds(&api).is_empty(),
        "the owner's own access is no conflict"
    );
    api.device_read(&display, r, &mut buf).unwrap();
    assert_eq!(kinds(&api), [FindingKind::FenceConflict]);
    let f = &api.checker().findings()[0];
    assert_eq!(f.device, "display0");
    assert_eq!(f.address, FindingAddr::Phys(page.addr));
    assert!(
        f.context.contains("write fence of isp0 (job 1)"),
        "{}",
        f.context
    );
    api.checker().clear();
    // Signaled: quiet.
    isp_done.store(true, Ordering::SeqCst);
    api.device_read(&display, r, &mut buf).unwrap();
    assert!(kinds(&api).is_empty());
    api.checker().unwatch_fence(id);
    // A pending read fence: another read is fine, a write is not.
    let disp_done = Arc::new(AtomicBool::new(false));
    let id = api
        .checker()
        .watch_fence(watch("display0", false, &disp_done));
    api.device_read(&isp, w, &mut buf).unwrap();
    assert!(kinds(&api).is_empty(), "read vs read fence");
    api.device_write(&isp, w, &[2; 64]).unwrap();
    assert_eq!(kinds(&api), [FindingKind::FenceConflict]);
    api.checker().clear();
    // Unwatched (the job's bytes all moved): quiet although never signaled.
    api.checker().unwatch_fence(id);
    api.device_write(&isp, w, &[3; 64]).unwrap();
    assert!(kinds(&api).is_empty());
    assert_eq!(api.checker().watched_fences(), 0);
    api.unmap_page(&isp, w, PAGE_SIZE, BIDI, NONE).unwrap();
    api.unmap_page(&display, r, PAGE_SIZE, TO, NONE).unwrap();
    api.free_pages(page).unwrap();
}
