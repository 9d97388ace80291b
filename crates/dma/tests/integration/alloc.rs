//! Allocation for one device and for a set of devices (seed 002).

use crate::common::machine;
use dma::{DeviceNeeds, DmaAttrs, DmaError, FindingKind};
use soc::{DmaAddr, PAGE_SIZE};
use uapi::{AsErrno, Errno};

#[test]
fn alloc_for_devices_fails_naming_the_device_whose_mask_cannot_be_met() {
    let (soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let display = api.device("display0").unwrap();
    let needs = [
        DeviceNeeds::new(&isp).in_bank("dram1"),
        DeviceNeeds::new(&display),
    ];
    let e = api
        .alloc_attrs_for_devices(&needs, 1 << 20, DmaAttrs::NONE)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "display0: DMA mask 0x3fffffff cannot be met: no memory below it in bank dram1"
    );
    assert_eq!(e.errno(), Errno::ENOMEM);
    // Without the bank constraint the same pair succeeds, below the display's 1 GiB.
    let buf = api
        .alloc_attrs_for_devices(&[(&isp).into(), (&display).into()], 1 << 20, DmaAttrs::NONE)
        .unwrap();
    assert!(buf.phys_addr().0 + buf.size() <= 1 << 30);
    api.free_attrs(buf).unwrap();
    // More contiguous memory below the mask than exists.
    let e = api
        .alloc_attrs(&display, 3 << 30, DmaAttrs::NONE)
        .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "display0: 3 GiB of contiguous memory below DMA mask 0x3fffffff cannot be met"
        ),
        "{e}"
    );
    assert_eq!(soc.pages().stats(), api.soc().pages().stats());
}

#[test]
fn alloc_for_devices_is_contiguous_when_one_device_lacks_an_iommu() {
    let (_soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let gpu = api.device("gpu0").unwrap();
    let display = api.device("display0").unwrap();
    let size = 12_441_600;
    let buf = api
        .alloc_attrs_for_devices(
            &[(&isp).into(), (&gpu).into(), (&display).into()],
            size,
            DmaAttrs::NONE,
        )
        .unwrap();
    assert!(buf.is_contiguous());
    assert_eq!(buf.handles().len(), 3);
    assert_eq!(
        buf.dma_addr("display0"),
        Some(DmaAddr(buf.phys_addr().0)),
        "direct: DMA address = physical"
    );
    for h in buf.handles() {
        assert!(h.sg_table().is_dma_contiguous(), "{}", h.device());
    }
    // The buffer is zeroed, and what the CPU writes through its (uncached) mapping every device reads.
    buf.write(size - 5, b"tail!").unwrap();
    for dev in [&isp, &gpu, &display] {
        let mut b = [0u8; 6];
        api.device_read(dev, buf.dma_addr(dev.name()).unwrap().add(size - 6), &mut b)
            .unwrap();
        assert_eq!(&b, b"\0tail!", "{}", dev.name());
    }
    // A device writes; the CPU reads it without a sync (coherent allocation).
    api.device_write(&isp, buf.dma_addr("isp0").unwrap(), b"isp")
        .unwrap();
    let mut b = [0u8; 3];
    buf.read(0, &mut b).unwrap();
    assert_eq!(&b, b"isp");
    api.free_attrs(buf).unwrap();
    assert_eq!(api.checker().total(), 0, "{:?}", api.checker().findings());
    assert!(api.checker().live_mappings(None).is_empty());
}

#[test]
fn alloc_for_iommu_devices_takes_pages_and_maps_them_contiguously() {
    let (_soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let enc = api.device("encoder0").unwrap();
    let buf = api
        .alloc_attrs_for_devices(
            &[(&isp).into(), (&enc).into()],
            64 * PAGE_SIZE,
            DmaAttrs::ALLOC_SINGLE_PAGES,
        )
        .unwrap();
    // Strictest segment limits: the encoder's 4 KiB.
    assert!(buf.sg_table().entries().iter().all(|e| e.len <= PAGE_SIZE));
    assert_eq!(buf.handle("encoder0").unwrap().sg_table().nents(), 64);
    assert_eq!(buf.handle("isp0").unwrap().sg_table().nents(), 1);
    assert!(buf.dma_addr("encoder0").unwrap().0 + 64 * PAGE_SIZE - 1 <= enc.dma_mask());
    api.free_attrs(buf).unwrap();
    assert_eq!(isp.iommu_domain().unwrap().mapped_bytes(), 0);
}

#[test]
fn alloc_alignment_is_the_least_common_multiple() {
    let (_soc, api) = machine();
    let isp = api.device("isp0").unwrap();
    let camera = api.device("camera0").unwrap();
    let needs = [
        DeviceNeeds::new(&isp).align(64 << 10),
        DeviceNeeds::new(&camera).align(1 << 20),
    ];
    let buf = api
        .alloc_attrs_for_devices(&needs, 3 * PAGE_SIZE, DmaAttrs::NONE)
        .unwrap();
    assert!(buf.phys_addr().is_aligned(1 << 20));
    assert!(buf.dma_addr("isp0").unwrap().is_aligned(1 << 20));
    api.free_attrs(buf).unwrap();
    let e = api
        .alloc_attrs_for_devices(
            &[DeviceNeeds::new(&isp).align(3 << 10)],
            PAGE_SIZE,
            DmaAttrs::NONE,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "isp0: alignment 0xc00 cannot be met: not a power of two"
    );
}

#[test]
fn alloc_in_a_carveout_gives_memory_without_struct_pages() {
    let (soc, api) = machine();
    let camera = api.device("camera0").unwrap();
    let buf = api
        .alloc_attrs_for_devices(
            &[DeviceNeeds::new(&camera).in_bank("carveout0")],
            1 << 20,
            DmaAttrs::NONE,
        )
        .unwrap();
    assert!(!buf.is_page_backed());
    assert_eq!(
        soc.mem().bank_of(buf.phys_addr()).unwrap().name(),
        "carveout0"
    );
    api.free_attrs(buf).unwrap();
    // Two devices asking for different banks.
    let display = api.device("display0").unwrap();
    let isp = api.device("isp0").unwrap();
    let e = api
        .alloc_attrs_for_devices(
            &[
                DeviceNeeds::new(&isp).in_bank("dram1"),
                DeviceNeeds::new(&display).in_bank("dram0"),
            ],
            PAGE_SIZE,
            DmaAttrs::NONE,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "display0: bank dram0 cannot be met: isp0 needs bank dram1"
    );
}

#[test]
fn no_kernel_mapping_buffers_refuse_cpu_access() {
    let (_soc, api) = machine();
    let gpu = api.device("gpu0").unwrap();
    let buf = api
        .alloc_attrs(&gpu, PAGE_SIZE, DmaAttrs::NO_KERNEL_MAPPING)
        .unwrap();
    assert_eq!(buf.write(0, b"x").unwrap_err(), DmaError::NoKernelMapping);
    let mut b = [0u8; 1];
    assert_eq!(buf.read(0, &mut b).unwrap_err().errno(), Errno::EFAULT);
    api.free_attrs(buf).unwrap();
}

#[test]
fn a_buffer_never_freed_is_a_leak() {
    let (_soc, api) = machine();
    let gpu = api.device("gpu0").unwrap();
    let buf = api.alloc_attrs(&gpu, PAGE_SIZE, DmaAttrs::NONE).unwrap();
    let err = buf.write(PAGE_SIZE, b"x").unwrap_err();
    assert_eq!(
        err,
        DmaError::OutOfBounds {
            offset: PAGE_SIZE,
            len: 1,
            size: PAGE_SIZE
        }
    );
    drop(buf);
    assert_eq!(api.checker().check_leaks("gpu0").unwrap(), 1);
    assert_eq!(api.checker().count(FindingKind::Leak), 1);
}
