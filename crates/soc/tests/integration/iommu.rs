//! IOMMUs: the IOVA allocator, page tables, protection and faults.

use crate::device::observed_soc;
use ::soc::{DmaAddr, FaultReason, IommuProt, PhysAddr, Soc, SocDesc, SocError, PAGE_SIZE};
use proptest::prelude::*;

fn mem_bytes(soc: &Soc, pa: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    soc.mem().read(PhysAddr(pa), &mut v).unwrap();
    v
}

#[test]
fn iommu_fault_leaves_memory_untouched_and_is_recorded() {
    let (soc, rec) = observed_soc();
    let isp = soc.device("isp0").unwrap();
    let d = isp.iommu_domain().unwrap();
    let iova = d
        .alloc_iova(2 * PAGE_SIZE, PAGE_SIZE, isp.dma_mask())
        .unwrap();
    d.map(iova, PhysAddr(0x40_0000), PAGE_SIZE, IommuProt::READ_WRITE)
        .unwrap(); // second page unmapped
    let err = isp.dma_write(iova.add(100), &[0xEE; 8000]).unwrap_err();
    let hole = iova.add(PAGE_SIZE);
    assert_eq!(
        err,
        SocError::IommuFault {
            device: "isp0".into(),
            iova: hole,
            len: 8000,
            write: true
        }
    );
    assert_eq!(
        mem_bytes(&soc, 0x40_0000, 4096),
        vec![0; 4096],
        "not even the mapped page was written"
    );
    let expected = ::soc::IommuFaultRecord {
        device: "isp0".into(),
        iommu: "smmu0".into(),
        iova: hole,
        len: 8000,
        write: true,
        reason: FaultReason::NotMapped,
    };
    assert_eq!(d.faults(), vec![expected.clone()]);
    assert_eq!(*rec.faults.lock().unwrap(), vec![expected.clone()]);
    assert_eq!(soc.iommu("smmu0").unwrap().faults(), vec![expected]);
    assert_eq!(isp.stats().faults, 1);
    assert_eq!(isp.stats().bytes_written, 0);
    assert!(rec.accesses.lock().unwrap().is_empty());
    // A read of the same range faults too, and leaves the caller's buffer alone.
    let mut buf = vec![0x11u8; 8000];
    assert!(isp.dma_read(iova.add(100), &mut buf).is_err());
    assert!(buf.iter().all(|&b| b == 0x11));
    assert_eq!(d.fault_count(), 2);
}

#[test]
fn write_through_readonly_mapping_faults() {
    let (soc, rec) = observed_soc();
    let enc = soc.device("encoder0").unwrap();
    let d = enc.iommu_domain().unwrap();
    let iova = DmaAddr(0x1000_0000);
    d.map(iova, PhysAddr(0x50_0000), PAGE_SIZE, IommuProt::READ)
        .unwrap();
    soc.mem().write(PhysAddr(0x50_0000), b"input").unwrap();
    let mut buf = [0u8; 5];
    enc.dma_read(iova, &mut buf).unwrap();
    assert_eq!(&buf, b"input");
    let err = enc.dma_write(iova, b"oops!").unwrap_err();
    assert!(
        matches!(err, SocError::IommuFault { write: true, .. }),
        "{err}"
    );
    assert_eq!(mem_bytes(&soc, 0x50_0000, 5), b"input");
    assert_eq!(
        rec.faults.lock().unwrap()[0].reason,
        FaultReason::NotWritable
    );
    // And the other way round: a read through a write-only mapping.
    d.map(
        iova.add(PAGE_SIZE),
        PhysAddr(0x51_0000),
        PAGE_SIZE,
        IommuProt::WRITE,
    )
    .unwrap();
    assert!(enc.dma_read(iova.add(PAGE_SIZE), &mut buf).is_err());
    assert_eq!(
        rec.faults.lock().unwrap()[1].reason,
        FaultReason::NotReadable
    );
}

#[test]
fn map_overlapping_existing_mapping_is_refused() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let d = soc.device("isp0").unwrap().iommu_domain().unwrap().clone();
    let iova = DmaAddr(0x100_0000);
    d.map(
        iova,
        PhysAddr(0x10_0000),
        4 * PAGE_SIZE,
        IommuProt::READ_WRITE,
    )
    .unwrap();
    let before = d.translate(iova, 4 * PAGE_SIZE, true).unwrap();
    for (at, len) in [
        (iova.0 - PAGE_SIZE, 2 * PAGE_SIZE),
        (iova.0 + 3 * PAGE_SIZE, 2 * PAGE_SIZE),
        (iova.0 + PAGE_SIZE, PAGE_SIZE),
        (iova.0 - PAGE_SIZE, 8 * PAGE_SIZE),
    ] {
        let err = d
            .map(DmaAddr(at), PhysAddr(0x80_0000), len, IommuProt::READ)
            .unwrap_err();
        assert_eq!(
            err,
            SocError::IommuMapExists {
                iova: DmaAddr(at),
                len,
                existing: iova
            }
        );
    }
    assert_eq!(d.mapped_bytes(), 4 * PAGE_SIZE, "nothing changed");
    assert_eq!(d.translate(iova, 4 * PAGE_SIZE, true).unwrap(), before);
    assert!(d.translate(DmaAddr(iova.0 - PAGE_SIZE), 1, false).is_err());
    // Right next to it is fine.
    d.map(
        DmaAddr(iova.0 + 4 * PAGE_SIZE),
        PhysAddr(0x80_0000),
        PAGE_SIZE,
        IommuProt::READ,
    )
    .unwrap();
}

#[test]
fn map_refuses_bad_arguments_and_maps_nothing() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let d = soc.device("isp0").unwrap().iommu_domain().unwrap().clone();
    let rw = IommuProt::READ_WRITE;
    let p = PhysAddr(0x10_0000);
    assert_eq!(
        d.map(DmaAddr(0x1000), p, 0, rw).unwrap_err(),
        SocError::ZeroSize("iommu map")
    );
    assert!(matches!(
        d.map(DmaAddr(0x1001), p, PAGE_SIZE, rw),
        Err(SocError::Misaligned {
            what: "IOMMU map IOVA",
            ..
        })
    ));
    assert!(matches!(
        d.map(DmaAddr(0x1000), PhysAddr(8), PAGE_SIZE, rw),
        Err(SocError::Misaligned { .. })
    ));
    assert!(matches!(
        d.map(DmaAddr(0x1000), p, 100, rw),
        Err(SocError::Misaligned { .. })
    ));
    assert!(
        matches!(
            d.map(DmaAddr(0), p, PAGE_SIZE, rw),
            Err(SocError::InvalidArgument(_))
        ),
        "IOVA 0 is outside the aperture"
    );
    assert!(matches!(
        d.map(DmaAddr(1 << 40), p, PAGE_SIZE, rw),
        Err(SocError::InvalidArgument(_))
    ));
    assert!(matches!(
        d.map(DmaAddr(!0xfff), p, PAGE_SIZE, rw),
        Err(SocError::InvalidArgument(_))
    ));
    let none = IommuProt {
        read: false,
        write: false,
    };
    assert!(matches!(
        d.map(DmaAddr(0x1000), p, PAGE_SIZE, none),
        Err(SocError::InvalidArgument(_))
    ));
    // Physical memory that is not there: the hole after carveout0.
    assert!(matches!(
        d.map(DmaAddr(0x1000), PhysAddr(0x9000_0000), PAGE_SIZE, rw),
        Err(SocError::OutOfRange { .. })
    ));
    assert!(matches!(
        d.map(DmaAddr(0x1000), PhysAddr(0x8fff_f000), 2 * PAGE_SIZE, rw),
        Err(SocError::OutOfRange { .. })
    ));
    assert_eq!(d.mapped_bytes(), 0);
    assert_eq!(d.mapping_count(), 0);
}

#[test]
fn contiguous_maps_merge_and_translate_to_one_run() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let d = soc.device("isp0").unwrap().iommu_domain().unwrap().clone();
    let iova = DmaAddr(0x200_0000);
    for i in 0..8 {
        d.map(
            iova.add(i * PAGE_SIZE),
            PhysAddr(0x30_0000 + i * PAGE_SIZE),
            PAGE_SIZE,
            IommuProt::READ_WRITE,
        )
        .unwrap();
    }
    assert_eq!(d.mapping_count(), 1);
    assert_eq!(
        d.translate(iova.add(10), 8 * PAGE_SIZE - 20, false)
            .unwrap(),
        vec![(PhysAddr(0x30_0000 + 10), 8 * PAGE_SIZE - 20)]
    );
    assert_eq!(
        d.iova_to_phys(iova.add(5 * PAGE_SIZE + 3)),
        Some(PhysAddr(0x30_5003))
    );
    assert_eq!(d.iova_to_phys(iova.add(8 * PAGE_SIZE)), None);
}

#[test]
fn unmap_splits_mappings_and_stops_at_the_first_hole() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let d = soc.device("isp0").unwrap().iommu_domain().unwrap().clone();
    let iova = DmaAddr(0x300_0000);
    d.map(
        iova,
        PhysAddr(0x40_0000),
        8 * PAGE_SIZE,
        IommuProt::READ_WRITE,
    )
    .unwrap();
    assert_eq!(
        d.unmap(iova.add(2 * PAGE_SIZE), 2 * PAGE_SIZE).unwrap(),
        2 * PAGE_SIZE
    );
    assert_eq!(d.mapped_bytes(), 6 * PAGE_SIZE);
    assert_eq!(d.mapping_count(), 2);
    assert_eq!(
        d.iova_to_phys(iova.add(4 * PAGE_SIZE)),
        Some(PhysAddr(0x40_4000)),
        "the tail kept its translation"
    );
    // From page 0 over the hole: unmaps pages 0 and 1, stops at page 2.
    assert_eq!(d.unmap(iova, 8 * PAGE_SIZE).unwrap(), 2 * PAGE_SIZE);
    assert_eq!(d.unmap(iova, PAGE_SIZE).unwrap(), 0);
    assert_eq!(d.mapped_bytes(), 4 * PAGE_SIZE);
    assert!(matches!(
        d.unmap(iova, 10),
        Err(SocError::Misaligned { .. })
    ));
    assert_eq!(
        d.unmap(iova, 0).unwrap_err(),
        SocError::ZeroSize("iommu unmap")
    );
}

#[test]
fn iova_allocator_respects_device_mask() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let enc = soc.device("encoder0").unwrap(); // 32-bit mask behind a 40-bit IOMMU
    let d = enc.iommu_domain().unwrap();
    assert_eq!(d.aperture(), (DmaAddr(PAGE_SIZE), DmaAddr(1 << 40)));
    let a = d.alloc_iova(1 << 20, PAGE_SIZE, enc.dma_mask()).unwrap();
    assert_eq!(a, DmaAddr((1 << 32) - (1 << 20)), "top-down from the mask");
    let b = d.alloc_iova(5000, 1 << 16, enc.dma_mask()).unwrap();
    assert!(b.0 + 8192 <= a.0 && b.is_aligned(1 << 16));
    // Without the mask's limit, the aperture's top.
    let c = d.alloc_iova(PAGE_SIZE, 0, u64::MAX).unwrap();
    assert_eq!(c, DmaAddr((1 << 40) - PAGE_SIZE));
    // A limit so low nothing fits.
    let e = d.alloc_iova(1 << 20, PAGE_SIZE, (1 << 20) - 1).unwrap_err();
    assert!(matches!(e, SocError::NoMemory(_)), "{e}");
    // Exhaust a small window and see it refuse.
    let small = 16 * PAGE_SIZE - 1 + PAGE_SIZE; // window [0x1000, 0x11000)
    for _ in 0..16 {
        d.alloc_iova(PAGE_SIZE, PAGE_SIZE, small).unwrap();
    }
    assert!(d.alloc_iova(PAGE_SIZE, PAGE_SIZE, small).is_err());
}

#[test]
fn iova_allocator_reuses_freed_holes_and_checks_frees() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let isp = soc.device("isp0").unwrap();
    let d = isp.iommu_domain().unwrap();
    let mask = isp.dma_mask();
    let a = d.alloc_iova(PAGE_SIZE, PAGE_SIZE, mask).unwrap();
    let b = d.alloc_iova(PAGE_SIZE, PAGE_SIZE, mask).unwrap();
    assert_eq!(b.0 + PAGE_SIZE, a.0);
    d.free_iova(a, PAGE_SIZE).unwrap();
    assert_eq!(
        d.alloc_iova(100, PAGE_SIZE, mask).unwrap(),
        a,
        "first fit from the top finds the hole"
    );
    assert!(matches!(
        d.free_iova(DmaAddr(0x5000), PAGE_SIZE),
        Err(SocError::InvalidArgument(_))
    ));
    assert!(matches!(
        d.free_iova(b, 2 * PAGE_SIZE),
        Err(SocError::InvalidArgument(_))
    ));
    d.free_iova(b, 1).unwrap();
    assert_eq!(d.allocated_iova_bytes(), PAGE_SIZE);
    assert!(matches!(
        d.alloc_iova(0, PAGE_SIZE, mask),
        Err(SocError::ZeroSize(_))
    ));
    assert!(matches!(
        d.alloc_iova(PAGE_SIZE, 3000, mask),
        Err(SocError::InvalidArgument(_))
    ));
    assert!(d.alloc_iova(u64::MAX, PAGE_SIZE, mask).is_err());
}

#[test]
fn each_device_has_its_own_domain() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let isp = soc.device("isp0").unwrap();
    let enc = soc.device("encoder0").unwrap();
    let iova = DmaAddr(0x10_0000);
    isp.iommu_domain()
        .unwrap()
        .map(iova, PhysAddr(0x10_0000), PAGE_SIZE, IommuProt::READ_WRITE)
        .unwrap();
    isp.dma_write(iova, b"isp").unwrap();
    assert!(
        enc.dma_write(iova, b"enc").is_err(),
        "the encoder's domain maps nothing"
    );
    assert_eq!(soc.iommu("smmu0").unwrap().domains().len(), 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Live IOVA ranges never overlap, stay inside [PAGE_SIZE, limit], and are aligned.
    #[test]
    fn iova_ranges_never_overlap_and_respect_the_limit(ops in prop::collection::vec((1u64..40_000, 0u32..5, any::<bool>()), 1..60)) {
        let soc = Soc::new(SocDesc::default_soc()).unwrap();
        let d = soc.device("isp0").unwrap().iommu_domain().unwrap().clone();
        let limit = (1u64 << 24) - 1;
        let mut live: Vec<(u64, u64)> = Vec::new();
        for (size, align_order, free_one) in ops {
            if free_one && !live.is_empty() {
                let (a, s) = live.remove(size as usize % live.len());
                d.free_iova(DmaAddr(a), s).unwrap();
                continue;
            }
            let align = PAGE_SIZE << align_order;
            if let Ok(a) = d.alloc_iova(size, align, limit) {
                let s = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
                prop_assert!(a.0 >= PAGE_SIZE && a.0 + s - 1 <= limit && a.is_aligned(align));
                for &(b, t) in &live {
                    prop_assert!(a.0 + s <= b || b + t <= a.0, "overlap {a:?}+{s:#x} with {b:#x}+{t:#x}");
                }
                live.push((a.0, s));
            }
        }
        prop_assert_eq!(d.allocated_iova_bytes(), live.iter().map(|l| l.1).sum::<u64>());
    }
}
