//! Mapping, unmapping and syncing: address translation and cache maintenance.

use crate::common::{machine, scattered_pages};
use dma::{
    DmaAttrs, DmaDirection, DmaError, FindingAddr, FindingKind, SegmentLimits, SgBacking, SgTable,
};
use soc::{AllocRequest, BankId, DmaAddr, PhysAddr, PAGE_SIZE};
use uapi::{AsErrno, Errno};

const DRAM1: BankId = BankId(2);

#[test]
fn iommu_maps_scattered_pages_into_one_contiguous_iova_range() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let pages = scattered_pages(&soc, 16, AllocRequest::new(0));
    let mut sgt = SgTable::from_pages(&pages, SegmentLimits::of_device(&isp).unwrap()).unwrap();
    assert_eq!(sgt.orig_nents(), 16, "no two pages are adjacent");
    let nents = api
        .map_sg(&isp, &mut sgt, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
    assert_eq!(
        nents, 1,
        "one IOVA range, reported as one segment under isp0's 4 MiB limit"
    );
    let seg = sgt.dma_segments()[0];
    assert_eq!(seg.len, 16 * PAGE_SIZE);
    assert!(seg.addr.0 + seg.len - 1 <= isp.dma_mask());
    // Every page is where the IOMMU says it is.
    for (i, p) in pages.iter().enumerate() {
        let runs = isp
            .translate(seg.addr.add(i as u64 * PAGE_SIZE), PAGE_SIZE, false)
            .unwrap();
        assert_eq!(runs, vec![(p.addr, PAGE_SIZE)]);
    }
    // The device reads the pages in order through the one range.
    for (i, p) in pages.iter().enumerate() {
        soc.mem().write(p.addr, &[i as u8; 4]).unwrap();
    }
    let mut buf = vec![0u8; (16 * PAGE_SIZE) as usize];
    api.device_read(&isp, seg.addr, &mut buf).unwrap();
    assert!((0..16).all(|i| buf[i * PAGE_SIZE as usize] == i as u8));
    // Unmap gives the IOVA range and the page tables back.
    api.unmap_sg(&isp, &mut sgt, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
    let domain = isp.iommu_domain().unwrap();
    assert_eq!(domain.mapped_bytes(), 0);
    assert_eq!(domain.allocated_iova_bytes(), 0);
    assert!(!sgt.is_mapped());
    assert_eq!(api.checker().total(), 0, "{:?}", api.checker().findings());
}

#[test]
fn iommu_segments_follow_the_device_limits() {
    let (soc, api) = machine();
    let enc = api.device("encoder0").unwrap(); // 4 KiB segments
    let pages = scattered_pages(&soc, 8, AllocRequest::new(0));
    let mut sgt = SgTable::from_pages(&pages, SegmentLimits::UNLIMITED).unwrap();
    let nents = api
        .map_sg(&enc, &mut sgt, DmaDirection::Bidirectional, DmaAttrs::NONE)
        .unwrap();
    assert_eq!(nents, 8);
    assert!(sgt.is_dma_contiguous(), "still one IOVA range");
    assert!(sgt.dma_segments().iter().all(|s| s.len == PAGE_SIZE));
    api.unmap_sg(&enc, &mut sgt, DmaDirection::Bidirectional, DmaAttrs::NONE)
        .unwrap();
}

#[test]
fn direct_map_above_mask_names_the_segment() {
    let (soc, api) = machine();
    let display = api.device("display0").unwrap(); // 30-bit mask, no IOMMU
    let low = soc
        .pages()
        .alloc_pages(&AllocRequest::new(0).below(display.dma_mask()))
        .unwrap();
    let high = soc
        .pages()
        .alloc_pages(&AllocRequest::new(0).in_bank(DRAM1))
        .unwrap();
    let mut sgt = SgTable::from_pages(&[low, high], SegmentLimits::UNLIMITED).unwrap();
    let e = api
        .map_sg(&display, &mut sgt, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::AboveMask {
            device: "display0".into(),
            index: 1,
            addr: high.addr,
            len: PAGE_SIZE,
            mask: 0x3fff_ffff
        }
    );
    assert_eq!(e.errno(), Errno::EIO);
    assert!(e.to_string().contains("sg entry 1"), "{e}");
    assert!(!sgt.is_mapped());
    assert!(
        api.checker().live_mappings(None).is_empty(),
        "nothing recorded"
    );
    // Below the mask, a direct mapping is the physical address.
    let mut ok = SgTable::from_pages(&[low], SegmentLimits::UNLIMITED).unwrap();
    api.map_sg(&display, &mut ok, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
    assert_eq!(ok.dma_address(), Some(DmaAddr(low.addr.0)));
    api.unmap_sg(&display, &mut ok, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
}

#[test]
fn sync_for_device_makes_cpu_writes_visible() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let page = soc.pages().alloc_pages(&AllocRequest::new(0)).unwrap();
    let mut sgt = SgTable::from_pages(&[page], SegmentLimits::UNLIMITED).unwrap();
    api.map_sg(&isp, &mut sgt, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
    let iova = sgt.dma_address().unwrap();
    // The CPU writes a second frame into the mapped buffer, then hands it over.
    soc.cpu().write(page.addr, b"frame 2").unwrap();
    api.sync_sg_for_device(&isp, &sgt, DmaDirection::ToDevice)
        .unwrap();
    let mut got = [0u8; 7];
    api.device_read(&isp, iova, &mut got).unwrap();
    assert_eq!(&got, b"frame 2");
    api.unmap_sg(&isp, &mut sgt, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
    assert_eq!(api.checker().total(), 0, "{:?}", api.checker().findings());
}

#[test]
fn noncoherent_device_reads_stale_data_when_cpu_skips_sync_and_checker_names_it() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let page = soc.pages().alloc_pages(&AllocRequest::new(0)).unwrap();
    soc.mem().write(page.addr, b"old data").unwrap();
    let mut sgt = SgTable::from_pages(&[page], SegmentLimits::UNLIMITED).unwrap();
    api.map_sg(&isp, &mut sgt, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
    // The CPU writes through its cache and forgets dma_sync_sgtable_for_device().
    soc.cpu().write(page.addr, b"new data").unwrap();
    let iova = sgt.dma_address().unwrap();
    let mut got = [0u8; 8];
    api.device_read(&isp, iova, &mut got).unwrap();
    assert_eq!(&got, b"old data", "the device does not see dirty CPU lines");
    let f = api.checker().findings_of(FindingKind::StaleCpuData);
    assert_eq!(f.len(), 1, "{:?}", api.checker().findings());
    assert_eq!(f[0].device, "isp0");
    assert_eq!(f[0].address, FindingAddr::Dma(iova));
    assert!(f[0].context.contains("8 were dirty"), "{}", f[0].context);
    assert!(f[0].context.contains("DMA_TO_DEVICE"), "{}", f[0].context);
    // A coherent device snoops: no stale data, no finding.
    let gpu = api.device("gpu0").unwrap();
    let mut sg2 = sgt.dup();
    api.map_sg(
        &gpu,
        &mut sg2,
        DmaDirection::ToDevice,
        DmaAttrs::SKIP_CPU_SYNC,
    )
    .unwrap();
    soc.cpu().write(page.addr, b"gpu data").unwrap();
    api.device_read(&gpu, sg2.dma_address().unwrap(), &mut got)
        .unwrap();
    assert_eq!(&got, b"gpu data");
    assert_eq!(api.checker().count(FindingKind::StaleCpuData), 1);
}

#[test]
fn cpu_reads_stale_after_device_write_without_sync_for_cpu_and_checker_names_it() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let page = soc.pages().alloc_pages(&AllocRequest::new(0)).unwrap();
    let mut sgt = SgTable::from_pages(&[page], SegmentLimits::UNLIMITED).unwrap();
    api.map_sg(&isp, &mut sgt, DmaDirection::FromDevice, DmaAttrs::NONE)
        .unwrap();
    // The CPU peeks at the buffer while the device owns it: the lines are now cached.
    let mut peek = [0u8; 8];
    soc.cpu().read(page.addr, &mut peek).unwrap();
    api.device_write(&isp, sgt.dma_address().unwrap(), b"captured")
        .unwrap();
    // No dma_sync_sgtable_for_cpu(): the CPU reads its stale lines.
    let mut got = [0u8; 8];
    api.cpu_read(page.addr, &mut got).unwrap();
    assert_eq!(got, [0u8; 8], "stale");
    let f = api.checker().findings_of(FindingKind::CpuStaleRead);
    assert_eq!(f.len(), 1, "{:?}", api.checker().findings());
    assert_eq!(f[0].device, "isp0");
    assert_eq!(f[0].address, FindingAddr::Phys(page.addr));
    assert!(f[0].context.contains("DMA_FROM_DEVICE"), "{}", f[0].context);
    // With the sync, the CPU sees the device's bytes.
    api.sync_sg_for_cpu(&isp, &sgt, DmaDirection::FromDevice)
        .unwrap();
    api.cpu_read(page.addr, &mut got).unwrap();
    assert_eq!(&got, b"captured");
    api.unmap_sg(&isp, &mut sgt, DmaDirection::FromDevice, DmaAttrs::NONE)
        .unwrap();
    assert_eq!(api.checker().total(), 1);
}

#[test]
fn unmap_invalidates_for_the_cpu_unless_skip_cpu_sync() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let page = soc.pages().alloc_pages(&AllocRequest::new(0)).unwrap();
    for (attrs, want) in [
        (DmaAttrs::NONE, *b"dev!"),
        (DmaAttrs::SKIP_CPU_SYNC, [0u8; 4]),
    ] {
        soc.mem().write(page.addr, &[0; 4]).unwrap();
        let mut sgt = SgTable::from_pages(&[page], SegmentLimits::UNLIMITED).unwrap();
        api.map_sg(&isp, &mut sgt, DmaDirection::FromDevice, attrs)
            .unwrap();
        let mut peek = [0u8; 4];
        soc.cpu().read(page.addr, &mut peek).unwrap();
        api.device_write(&isp, sgt.dma_address().unwrap(), b"dev!")
            .unwrap();
        api.unmap_sg(&isp, &mut sgt, DmaDirection::FromDevice, attrs)
            .unwrap();
        let mut got = [0u8; 4];
        soc.cpu().read(page.addr, &mut got).unwrap();
        assert_eq!(got, want, "{attrs}");
        soc.cpu().invalidate(page.addr, PAGE_SIZE).unwrap();
    }
}

#[test]
fn iommu_fault_leaves_memory_untouched_and_is_reported() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let page = soc.pages().alloc_pages(&AllocRequest::new(0)).unwrap();
    let mut sgt = SgTable::from_pages(&[page], SegmentLimits::UNLIMITED).unwrap();
    api.map_sg(&isp, &mut sgt, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
    let iova = sgt.dma_address().unwrap();
    // A write through a read-only (TO_DEVICE) mapping, and one past the mapping.
    let e = api.device_write(&isp, iova, b"oops").unwrap_err();
    assert_eq!(e.errno(), Errno::EIO);
    let e = api
        .device_write(&isp, DmaAddr(iova.0 - PAGE_SIZE), b"oops")
        .unwrap_err();
    assert!(
        matches!(e, DmaError::Soc(soc::SocError::IommuFault { .. })),
        "{e}"
    );
    let mut b = [1u8; 4];
    soc.mem().read(page.addr, &mut b).unwrap();
    assert_eq!(b, [0; 4]);
    let f = api.checker().findings_of(FindingKind::IommuFault);
    assert_eq!(f.len(), 2);
    assert!(
        f[0].context.contains("mapped read-only") && f[0].context.contains("DMA_TO_DEVICE"),
        "{}",
        f[0].context
    );
    assert!(
        f[1].context.contains("no live DMA mapping"),
        "{}",
        f[1].context
    );
    api.unmap_sg(&isp, &mut sgt, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
}

#[test]
fn map_resource_maps_a_carveout_without_struct_pages() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let display = api.device("camera0").unwrap();
    let carve = soc.mem().bank_by_name("carveout0").unwrap().id();
    let pa = soc
        .pool(carve)
        .unwrap()
        .alloc(2 * PAGE_SIZE, PAGE_SIZE)
        .unwrap();
    let iova = api
        .map_resource(
            &isp,
            pa,
            2 * PAGE_SIZE,
            DmaDirection::FromDevice,
            DmaAttrs::NONE,
        )
        .unwrap();
    api.device_write(&isp, iova, b"to the carveout").unwrap();
    let mut b = [0u8; 15];
    soc.cpu().read_uncached(pa, &mut b).unwrap();
    assert_eq!(&b, b"to the carveout");
    api.unmap_resource(
        &isp,
        iova,
        2 * PAGE_SIZE,
        DmaDirection::FromDevice,
        DmaAttrs::NONE,
    )
    .unwrap();
    // System RAM is not a resource; a carveout is not pages.
    let page = soc.pages().alloc_pages(&AllocRequest::new(0)).unwrap();
    let e = api
        .map_resource(
            &display,
            page.addr,
            PAGE_SIZE,
            DmaDirection::ToDevice,
            DmaAttrs::NONE,
        )
        .unwrap_err();
    assert!(e.to_string().contains("map it as pages"), "{e}");
    let e = api
        .map_page(
            &display,
            pa,
            PAGE_SIZE,
            DmaDirection::ToDevice,
            DmaAttrs::NONE,
        )
        .unwrap_err();
    assert!(e.to_string().contains("map it as a resource"), "{e}");
    // An sg table of resource entries maps without cache maintenance.
    let mut sgt = SgTable::from_ranges(
        &[(pa, PAGE_SIZE)],
        SgBacking::Resource,
        SegmentLimits::UNLIMITED,
    )
    .unwrap();
    api.map_sg(&display, &mut sgt, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
    assert_eq!(sgt.dma_address(), Some(DmaAddr(pa.0)));
    api.unmap_sg(&display, &mut sgt, DmaDirection::ToDevice, DmaAttrs::NONE)
        .unwrap();
    assert_eq!(api.checker().total(), 0, "{:?}", api.checker().findings());
}

#[test]
fn device_needing_contiguous_memory_refuses_a_scattered_table() {
    let (soc, api) = machine();
    let camera = api.device("camera0").unwrap();
    let pages = scattered_pages(&soc, 2, AllocRequest::new(0).below(camera.dma_mask()));
    let mut sgt = SgTable::from_pages(&pages, SegmentLimits::UNLIMITED).unwrap();
    let e = api
        .map_sg(&camera, &mut sgt, DmaDirection::FromDevice, DmaAttrs::NONE)
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::NotContiguous {
            device: "camera0".into(),
            runs: 2
        }
    );
}

#[test]
fn single_mappings_sync_part_of_a_buffer() {
    let (soc, api) = machine();
    let display = api.device("display0").unwrap();
    let page = soc
        .pages()
        .alloc_pages(&AllocRequest::new(1).below(display.dma_mask()))
        .unwrap();
    let addr = api
        .map_page(
            &display,
            page.addr,
            2 * PAGE_SIZE,
            DmaDirection::ToDevice,
            DmaAttrs::NONE,
        )
        .unwrap();
    assert_eq!(addr, DmaAddr(page.addr.0));
    soc.cpu()
        .write(page.addr.add(PAGE_SIZE), b"second page")
        .unwrap();
    api.sync_single_for_device(
        &display,
        addr.add(PAGE_SIZE),
        PAGE_SIZE,
        DmaDirection::ToDevice,
    )
    .unwrap();
    let mut b = [0u8; 11];
    api.device_read(&display, addr.add(PAGE_SIZE), &mut b)
        .unwrap();
    assert_eq!(&b, b"second page");
    api.unmap_page(
        &display,
        addr,
        2 * PAGE_SIZE,
        DmaDirection::ToDevice,
        DmaAttrs::NONE,
    )
    .unwrap();
    assert_eq!(api.checker().total(), 0, "{:?}", api.checker().findings());
    let _ = PhysAddr(0);
}
