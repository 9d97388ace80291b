//! The machine as a whole: building and validating descriptions, accessors, independence.

use crate::device::observed_soc;
use ::soc::{
    AllocRequest, BankKind, ByteSize, DeviceDesc, DmaAddr, IommuDesc, IommuProt, PhysAddr, Soc,
    SocDesc, SocError, PAGE_SIZE,
};
use std::sync::Arc;

#[test]
fn default_soc_builds_cheaply() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    assert_eq!(
        soc.mem().committed_bytes(),
        0,
        "no memory committed until touched"
    );
    assert_eq!(soc.desc(), &SocDesc::default_soc());
    assert_eq!(soc.devices().len(), 5);
    assert_eq!(soc.iommus().len(), 1);
    assert_eq!(soc.cpu().cache_size(), 1 << 20);
}

fn err_of(edit: impl FnOnce(&mut SocDesc)) -> String {
    let mut desc = SocDesc::default_soc();
    edit(&mut desc);
    match Soc::new(desc) {
        Ok(_) => panic!("the description should have been refused"),
        Err(e) => {
            assert!(matches!(e, SocError::InvalidDesc(_)), "{e:?}");
            e.to_string()
        }
    }
}

/// A change that breaks a description, and the words its error must contain.
type BrokenDesc = (Box<dyn FnOnce(&mut SocDesc)>, &'static [&'static str]);

#[test]
fn soc_desc_errors_name_the_field() {
    let cases: Vec<BrokenDesc> = vec![
        (
            Box::new(|d| d.devices[1].dma_mask_bits = 65),
            &["devices[1].dma_mask_bits", "isp0", "65"],
        ),
        (
            Box::new(|d| d.devices[0].dma_mask_bits = 8),
            &["devices[0].dma_mask_bits", "camera0"],
        ),
        (
            Box::new(|d| d.devices[2].coherent_dma_mask_bits = Some(0)),
            &["devices[2].coherent_dma_mask_bits", "gpu0"],
        ),
        (
            Box::new(|d| d.devices[3].max_segment_size = ByteSize(512)),
            &["devices[3].max_segment_size", "display0"],
        ),
        (
            Box::new(|d| d.devices[4].segment_boundary_mask = ByteSize(0x1_0000)),
            &["devices[4].segment_boundary_mask", "encoder0"],
        ),
        (
            Box::new(|d| d.devices[4].segment_boundary_mask = ByteSize(0x7ff)),
            &["segment_boundary_mask"],
        ),
        (
            Box::new(|d| d.devices[1].max_segments = 0),
            &["devices[1].max_segments"],
        ),
        (
            Box::new(|d| d.devices[1].bandwidth_bps = 0),
            &["devices[1].bandwidth_bps"],
        ),
        (
            Box::new(|d| d.devices[1].iommu = Some("smmu9".into())),
            &["devices[1].iommu", "isp0", "smmu9"],
        ),
        (
            Box::new(|d| d.devices[2].name = "isp0".into()),
            &["devices[2].name", "isp0"],
        ),
        (
            Box::new(|d| d.devices[0].name.clear()),
            &["devices[0].name", "empty"],
        ),
        (
            Box::new(|d| d.iommus[0].aperture_bits = 12),
            &["iommus[0].aperture_bits", "smmu0"],
        ),
        (
            Box::new(|d| d.iommus[0].aperture_bits = 65),
            &["iommus[0].aperture_bits"],
        ),
        (
            Box::new(|d| {
                d.iommus.push(IommuDesc {
                    name: "smmu0".into(),
                    aperture_bits: 32,
                })
            }),
            &["iommus[1].name", "smmu0"],
        ),
        (
            Box::new(|d| d.cma[0].bank = "dram7".into()),
            &["cma[0].bank", "cma0", "dram7"],
        ),
        (
            Box::new(|d| d.cma[0].bank = "carveout0".into()),
            &["cma[0].bank", "carveout"],
        ),
        (
            Box::new(|d| d.cpu_cache.size = ByteSize(100)),
            &["cpu_cache.size"],
        ),
        (
            Box::new(|d| d.cpu_cache.size = ByteSize(0)),
            &["cpu_cache.size"],
        ),
        (
            Box::new(|d| d.cpu_cache.size = ByteSize(1 << 40)),
            &["cpu_cache.size"],
        ),
        (
            Box::new(|d| d.banks[1].base = ByteSize(0x10)),
            &["carveout0", "aligned"],
        ),
    ];
    for (edit, needles) in cases {
        let msg = err_of(edit);
        for needle in needles {
            assert!(msg.contains(needle), "`{msg}` should mention `{needle}`");
        }
    }
}

#[test]
fn odd_but_valid_descriptions_are_accepted() {
    let mut desc = SocDesc::default_soc();
    desc.devices[0].dma_mask_bits = 64;
    desc.devices[0].segment_boundary_mask = ByteSize(u64::MAX);
    desc.devices[0].max_segment_size = ByteSize(u32::MAX as u64);
    desc.iommus[0].aperture_bits = 64;
    desc.cpu_cache.size = ByteSize(64);
    desc.devices.push(DeviceDesc {
        iommu: Some("smmu0".into()),
        dma_mask_bits: 64,
        ..DeviceDesc::new("wide")
    });
    let soc = Soc::new(desc).unwrap();
    let wide = soc.device("wide").unwrap();
    let d = wide.iommu_domain().unwrap();
    let top = d.alloc_iova(PAGE_SIZE, PAGE_SIZE, wide.dma_mask()).unwrap();
    d.map(top, PhysAddr(0x1000), PAGE_SIZE, IommuProt::READ_WRITE)
        .unwrap();
    wide.dma_write(top.add(PAGE_SIZE - 4), &[1; 4]).unwrap();
    assert!(
        wide.dma_write(top.add(PAGE_SIZE - 4), &[1; 5]).is_err(),
        "the end of the 64-bit space"
    );
    assert!(
        Soc::new(SocDesc::default()).is_ok(),
        "an empty machine is a machine"
    );
}

#[test]
fn two_socs_are_independent() {
    let threads: Vec<_> = (0..4u8)
        .map(|n| {
            std::thread::spawn(move || {
                let soc = Soc::new(SocDesc::default_soc()).unwrap();
                let isp = soc.device("isp0").unwrap();
                let d = isp.iommu_domain().unwrap();
                let iova = d.alloc_iova(PAGE_SIZE, PAGE_SIZE, isp.dma_mask()).unwrap();
                d.map(iova, PhysAddr(0x10_0000), PAGE_SIZE, IommuProt::READ_WRITE)
                    .unwrap();
                for _ in 0..200 {
                    isp.dma_write(iova, &[n; 64]).unwrap();
                    soc.cpu().write(PhysAddr(0x10_0040), &[n; 64]).unwrap();
                    soc.cpu().clean(PhysAddr(0x10_0040), 64).unwrap();
                    let mut b = [0u8; 128];
                    soc.mem().read(PhysAddr(0x10_0000), &mut b).unwrap();
                    assert!(
                        b.iter().all(|&x| x == n),
                        "another machine's bytes leaked in"
                    );
                }
                (iova, isp.stats().transfers, d.fault_count())
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "same work, same results: {results:?}"
    );
    assert_eq!(results[0].1, 200);
}

#[test]
fn lookups_answer_typed_errors() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    assert_eq!(
        soc.device("npu0").unwrap_err(),
        SocError::UnknownDevice("npu0".into())
    );
    assert_eq!(
        soc.iommu("smmu1").unwrap_err(),
        SocError::UnknownIommu("smmu1".into())
    );
    assert_eq!(soc.iommu("smmu0").unwrap().aperture_bits(), 40);
    let carveout = soc.mem().bank_by_name("carveout0").unwrap().id();
    let vram = soc.mem().bank_by_name("vram0").unwrap().id();
    let dram = soc.mem().bank_by_name("dram0").unwrap().id();
    assert!(soc.pool(carveout).is_some() && soc.pool(vram).is_some());
    assert!(
        soc.pool(dram).is_none(),
        "system RAM is the page allocator's"
    );
    assert!(soc.pool(::soc::BankId(99)).is_none());
    assert_eq!(soc.mem().bank(carveout).unwrap().kind(), BankKind::Carveout);
}

#[test]
fn frees_through_the_soc_tell_observers_first() {
    let (soc, rec) = observed_soc();
    let page = soc.pages().alloc_pages(&AllocRequest::new(2)).unwrap();
    soc.free_pages(page).unwrap();
    let carveout = soc.mem().bank_by_name("carveout0").unwrap().id();
    let pool = soc.pool(carveout).unwrap();
    let pa = pool.alloc(3 * PAGE_SIZE, PAGE_SIZE).unwrap();
    soc.free_pool(carveout, pa, 3 * PAGE_SIZE).unwrap();
    assert_eq!(
        *rec.freed.lock().unwrap(),
        vec![(page.addr, 4 * PAGE_SIZE), (pa, 3 * PAGE_SIZE)]
    );
    let dram = soc.mem().bank_by_name("dram0").unwrap().id();
    assert!(matches!(
        soc.free_pool(dram, pa, PAGE_SIZE),
        Err(SocError::UnknownBank(_))
    ));
}

#[test]
fn observers_may_call_back_into_the_soc() {
    struct Reentrant(Option<std::sync::Weak<Soc>>);
    impl ::soc::SocObserver for Reentrant {
        fn dma_access(&self, ev: &::soc::DmaAccess<'_>) {
            if let Some(soc) = self.0.as_ref().and_then(|w| w.upgrade()) {
                let mut b = vec![0u8; ev.len as usize];
                soc.cpu().read(ev.runs[0].0, &mut b).unwrap();
                soc.add_observer(Arc::new(Reentrant(None)));
            }
        }
    }
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    soc.add_observer(Arc::new(Reentrant(Some(Arc::downgrade(&soc)))));
    let gpu = soc.device("gpu0").unwrap(); // coherent: holds the cache lock while moving bytes
    gpu.iommu_domain()
        .unwrap()
        .map(
            DmaAddr(0x1000),
            PhysAddr(0x1000),
            PAGE_SIZE,
            IommuProt::READ_WRITE,
        )
        .unwrap();
    gpu.dma_write(DmaAddr(0x1000), &[1; 16]).unwrap();
    assert_eq!(gpu.stats().transfers, 1);
}

#[test]
fn the_machine_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Soc>();
    assert_send_sync::<::soc::Device>();
    assert_send_sync::<::soc::Cpu>();
    assert_send_sync::<::soc::Iommu>();
    assert_send_sync::<::soc::IommuDomain>();
}
