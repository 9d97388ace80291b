//! Bad input: each a typed error naming the offending value, never a panic.

use crate::common::machine;
use dma::{DeviceNeeds, DmaAttrs, DmaDirection, DmaError, SegmentLimits, SgBacking, SgTable};
use soc::{AllocRequest, PhysAddr, SocError, PAGE_SIZE};
use uapi::{AsErrno, Errno};

const TO: DmaDirection = DmaDirection::ToDevice;

#[test]
fn zero_sizes_are_refused() {
    let (soc, api) = machine();
    let display = api.device("display0").unwrap();
    let page = soc.pages().alloc_pages(&AllocRequest::new(0)).unwrap();
    let e = api
        .map_page(&display, page.addr, 0, TO, DmaAttrs::NONE)
        .unwrap_err();
    assert_eq!(e, DmaError::ZeroSize("dma_map_page"));
    assert_eq!(e.errno(), Errno::EINVAL);
    assert_eq!(
        api.alloc_attrs(&display, 0, DmaAttrs::NONE).unwrap_err(),
        DmaError::ZeroSize("dma_alloc_attrs_for_devices")
    );
    assert!(api
        .sync_single_for_cpu(&display, soc::DmaAddr(page.addr.0), 0, TO)
        .is_err());
    assert!(SgTable::from_ranges(
        &[(page.addr, 0)],
        SgBacking::Pages,
        SegmentLimits::UNLIMITED
    )
    .is_err());
}

#[test]
fn out_of_range_and_wrapping_addresses_name_the_entry() {
    let (_soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    // 0x9000_0000 is in the hole between carveout0 and dram1.
    let e = api
        .map_page(&isp, PhysAddr(0x9000_0000), PAGE_SIZE, TO, DmaAttrs::NONE)
        .unwrap_err();
    assert!(
        matches!(
            e,
            DmaError::BadEntry {
                index: 0,
                addr: PhysAddr(0x9000_0000),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("outside every bank"), "{e}");
    let e = api
        .map_page(&isp, PhysAddr(u64::MAX - 10), PAGE_SIZE, TO, DmaAttrs::NONE)
        .unwrap_err();
    assert!(e.to_string().contains("wraps"), "{e}");
    let mut sgt = SgTable::from_ranges(
        &[
            (PhysAddr(0x1000), PAGE_SIZE),
            (PhysAddr(0x9000_0000), PAGE_SIZE),
        ],
        SgBacking::Pages,
        SegmentLimits::UNLIMITED,
    )
    .unwrap();
    let e = api.map_sg(&isp, &mut sgt, TO, DmaAttrs::NONE).unwrap_err();
    assert!(matches!(e, DmaError::BadEntry { index: 1, .. }), "{e}");
    assert_eq!(
        isp.iommu_domain().unwrap().allocated_iova_bytes(),
        0,
        "nothing left behind"
    );
}

#[test]
fn unknown_device_and_bank_are_named() {
    let (_soc, api) = machine();
    let e = api.device("nope0").unwrap_err();
    assert_eq!(e, DmaError::Soc(SocError::UnknownDevice("nope0".into())));
    assert_eq!(e.errno(), Errno::ENODEV);
    let gpu = api.device("gpu0").unwrap();
    let e = api
        .alloc_attrs_for_devices(
            &[DeviceNeeds::new(&gpu).in_bank("dram9")],
            PAGE_SIZE,
            DmaAttrs::NONE,
        )
        .unwrap_err();
    assert_eq!(e, DmaError::Soc(SocError::UnknownBank("dram9".into())));
}

#[test]
fn table_state_errors_are_typed() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let gpu = api.device("gpu0").unwrap();
    let page = soc.pages().alloc_pages(&AllocRequest::new(0)).unwrap();
    let mut sgt = SgTable::from_pages(&[page], SegmentLimits::UNLIMITED).unwrap();
    assert_eq!(
        api.unmap_sg(&isp, &mut sgt, TO, DmaAttrs::NONE)
            .unwrap_err(),
        DmaError::TableNotMapped
    );
    assert_eq!(
        api.sync_sg_for_cpu(&isp, &sgt, TO).unwrap_err(),
        DmaError::TableNotMapped
    );
    api.map_sg(&isp, &mut sgt, TO, DmaAttrs::NONE).unwrap();
    assert_eq!(
        api.map_sg(&gpu, &mut sgt, TO, DmaAttrs::NONE).unwrap_err(),
        DmaError::AlreadyMapped("isp0".into())
    );
    // Unmapping for the wrong device: not mapped for it, nothing changes.
    let e = api
        .unmap_sg(&gpu, &mut sgt, TO, DmaAttrs::NONE)
        .unwrap_err();
    assert!(
        matches!(e, DmaError::NotMapped { ref device, .. } if device == "gpu0"),
        "{e}"
    );
    assert!(sgt.is_mapped());
    api.unmap_sg(&isp, &mut sgt, TO, DmaAttrs::NONE).unwrap();
    // Empty device list, duplicate device.
    assert!(api
        .alloc_attrs_for_devices(&[], PAGE_SIZE, DmaAttrs::NONE)
        .is_err());
    let e = api
        .alloc_attrs_for_devices(&[(&isp).into(), (&isp).into()], PAGE_SIZE, DmaAttrs::NONE)
        .unwrap_err();
    assert!(e.to_string().contains("isp0 is listed twice"), "{e}");
}
