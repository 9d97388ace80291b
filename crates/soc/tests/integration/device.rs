//! Devices and their DMA engines: masks, translation, cache coherency, counters, observers.

use ::soc::{
    ByteSize, DmaAccess, DmaAddr, IommuFaultRecord, IommuProt, PhysAddr, Soc, SocDesc, SocError,
    SocObserver, PAGE_SIZE,
};
use std::sync::{Arc, Mutex};

/// One [`DmaAccess`], owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub device: String,
    pub addr: DmaAddr,
    pub len: u64,
    pub write: bool,
    pub runs: Vec<(PhysAddr, u64)>,
    pub stale_cpu_bytes: u64,
}

/// An observer that writes everything down.
#[derive(Default)]
pub struct Recorder {
    pub accesses: Mutex<Vec<Access>>,
    pub stale_reads: Mutex<Vec<(PhysAddr, u64)>>,
    pub freed: Mutex<Vec<(PhysAddr, u64)>>,
    pub faults: Mutex<Vec<IommuFaultRecord>>,
}

impl SocObserver for Recorder {
    fn dma_access(&self, ev: &DmaAccess<'_>) {
        self.accesses.lock().unwrap().push(Access {
            device: ev.device.to_string(),
            addr: ev.addr,
            len: ev.len,
            write: ev.write,
            runs: ev.runs.to_vec(),
            stale_cpu_bytes: ev.stale_cpu_bytes,
        });
    }
    fn cpu_stale_read(&self, pa: PhysAddr, len: u64) {
        self.stale_reads.lock().unwrap().push((pa, len));
    }
    fn pages_freed(&self, pa: PhysAddr, len: u64) {
        self.freed.lock().unwrap().push((pa, len));
    }
    fn iommu_fault(&self, rec: &IommuFaultRecord) {
        self.faults.lock().unwrap().push(rec.clone());
    }
}

/// The default SoC with a recorder attached.
pub fn observed_soc() -> (Arc<Soc>, Arc<Recorder>) {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let rec = Arc::new(Recorder::default());
    soc.add_observer(rec.clone());
    (soc, rec)
}

fn mem_bytes(soc: &Soc, pa: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    soc.mem().read(PhysAddr(pa), &mut v).unwrap();
    v
}

#[test]
fn noncoherent_device_reads_stale_data_when_cpu_skips_clean() {
    let (soc, rec) = observed_soc();
    let camera = soc.device("camera0").unwrap(); // direct-mapped, not coherent
    let pa = PhysAddr(0x10_0000);
    soc.mem().write(pa, &[0xAA; 128]).unwrap();
    soc.cpu().write(pa, &[0x55; 128]).unwrap(); // no clean
    let mut seen = [0u8; 128];
    camera.dma_read(DmaAddr(pa.0), &mut seen).unwrap();
    assert_eq!(
        seen, [0xAA; 128],
        "the device read memory, not the dirty CPU lines"
    );
    let ev = rec.accesses.lock().unwrap()[0].clone();
    assert_eq!(
        ev.stale_cpu_bytes, 128,
        "the event says how many dirty bytes the device missed"
    );
    assert!(!ev.write);
}

#[test]
fn clean_makes_cpu_writes_visible_to_noncoherent_device() {
    let (soc, rec) = observed_soc();
    let camera = soc.device("camera0").unwrap();
    let pa = PhysAddr(0x10_0000);
    soc.cpu().write(pa, &[0x55; 100]).unwrap();
    soc.cpu().clean(pa, 100).unwrap();
    let mut seen = [0u8; 100];
    camera.dma_read(DmaAddr(pa.0), &mut seen).unwrap();
    assert_eq!(seen, [0x55; 100]);
    assert_eq!(rec.accesses.lock().unwrap()[0].stale_cpu_bytes, 0);
    assert_eq!(soc.cpu().dirty_bytes(pa, 100), 0);
}

#[test]
fn cpu_reads_fresh_data_after_noncoherent_device_write_with_invalidate() {
    let (soc, rec) = observed_soc();
    let camera = soc.device("camera0").unwrap();
    let pa = PhysAddr(0x20_0000);
    let mut buf = [0u8; 64];
    soc.cpu().read(pa, &mut buf).unwrap(); // line now cached
    camera.dma_write(DmaAddr(pa.0), &[7; 64]).unwrap();
    soc.cpu().invalidate(pa, 64).unwrap();
    soc.cpu().read(pa, &mut buf).unwrap();
    assert_eq!(buf, [7; 64]);
    assert!(rec.stale_reads.lock().unwrap().is_empty());
}

#[test]
fn coherent_device_snoops_dirty_lines() {
    let (soc, rec) = observed_soc();
    let gpu = soc.device("gpu0").unwrap();
    let domain = gpu.iommu_domain().unwrap();
    let pa = PhysAddr(0x30_0000);
    let iova = domain
        .alloc_iova(PAGE_SIZE, PAGE_SIZE, gpu.dma_mask())
        .unwrap();
    domain
        .map(iova, pa, PAGE_SIZE, IommuProt::READ_WRITE)
        .unwrap();

    // Its reads see what the CPU left dirty in its cache.
    soc.cpu().write(pa.add(10), b"cpu data").unwrap();
    let mut seen = [0u8; 8];
    gpu.dma_read(iova.add(10), &mut seen).unwrap();
    assert_eq!(&seen, b"cpu data");
    assert_eq!(rec.accesses.lock().unwrap()[0].stale_cpu_bytes, 0);
    assert_eq!(
        mem_bytes(&soc, pa.0 + 10, 8),
        [0; 8],
        "snooping does not write back"
    );

    // Its writes update the CPU's cached lines: no invalidate needed, nothing stale.
    gpu.dma_write(iova.add(12), b"GPU").unwrap();
    let mut cpu_view = [0u8; 8];
    soc.cpu().read(pa.add(10), &mut cpu_view).unwrap();
    assert_eq!(&cpu_view, b"cpGPUata");
    assert!(rec.stale_reads.lock().unwrap().is_empty());
    soc.cpu().clean(pa, PAGE_SIZE).unwrap();
    assert_eq!(mem_bytes(&soc, pa.0 + 10, 8), b"cpGPUata");
}

#[test]
fn direct_device_cannot_reach_above_its_mask() {
    let (soc, rec) = observed_soc();
    let display = soc.device("display0").unwrap(); // 30-bit mask, no IOMMU
    assert_eq!(display.dma_mask(), (1 << 30) - 1);
    let above = 1u64 << 30;
    let err = display.dma_write(DmaAddr(above), &[1; 16]).unwrap_err();
    assert_eq!(
        err,
        SocError::AboveDmaMask {
            device: "display0".into(),
            addr: DmaAddr(above),
            len: 16,
            mask: (1 << 30) - 1,
        }
    );
    assert_eq!(mem_bytes(&soc, above, 16), [0; 16], "nothing touched");
    // Straddling the mask is refused whole, too.
    let straddle = DmaAddr(above - 8);
    assert!(matches!(
        display.dma_write(straddle, &[1; 16]),
        Err(SocError::AboveDmaMask { .. })
    ));
    assert_eq!(mem_bytes(&soc, above - 8, 8), [0; 8]);
    let mut buf = [0u8; 4];
    assert!(
        display.dma_read(DmaAddr(u64::MAX - 1), &mut buf).is_err(),
        "wrapping end"
    );
    assert_eq!(display.stats().faults, 3);
    assert!(rec.accesses.lock().unwrap().is_empty());
    // Below the mask it works.
    display.dma_write(DmaAddr(above - 16), &[1; 16]).unwrap();
    assert_eq!(mem_bytes(&soc, above - 16, 16), [1; 16]);
}

#[test]
fn direct_device_access_into_a_hole_is_refused() {
    let mut desc = SocDesc::default_soc();
    desc.banks.retain(|b| b.name == "dram0"); // [0, 2 GiB) only
    desc.cma.clear();
    desc.banks[0].size = ByteSize(1 << 20);
    let soc = Soc::new(desc).unwrap();
    let camera = soc.device("camera0").unwrap();
    let err = camera
        .dma_write(DmaAddr((1 << 20) - 4), &[9; 8])
        .unwrap_err();
    assert!(matches!(err, SocError::OutOfRange { .. }), "{err}");
    assert_eq!(mem_bytes(&soc, (1 << 20) - 4, 4), [0; 4]);
}

#[test]
fn direct_access_may_span_adjacent_banks() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let camera = soc.device("camera0").unwrap(); // 32-bit: reaches dram0 and carveout0
    let at = 0x8000_0000 - 4; // dram0 ends where carveout0 begins
    let runs = camera.translate(DmaAddr(at), 8, true).unwrap();
    assert_eq!(runs, vec![(PhysAddr(at), 4), (PhysAddr(0x8000_0000), 4)]);
    camera.dma_write(DmaAddr(at), b"abcdefgh").unwrap();
    assert_eq!(mem_bytes(&soc, at, 4), b"abcd");
    assert_eq!(mem_bytes(&soc, 0x8000_0000, 4), b"efgh");
    let mut back = [0u8; 8];
    camera.dma_read(DmaAddr(at), &mut back).unwrap();
    assert_eq!(&back, b"abcdefgh");
}

#[test]
fn dma_copy_moves_bytes_between_iovas_across_scattered_pages() {
    let (soc, rec) = observed_soc();
    let isp = soc.device("isp0").unwrap();
    let d = isp.iommu_domain().unwrap();
    let src = d
        .alloc_iova(3 * PAGE_SIZE, PAGE_SIZE, isp.dma_mask())
        .unwrap();
    let dst = d
        .alloc_iova(3 * PAGE_SIZE, PAGE_SIZE, isp.dma_mask())
        .unwrap();
    for (i, pa) in [0x50_0000u64, 0x40_0000, 0x60_0000].iter().enumerate() {
        d.map(
            src.add(i as u64 * PAGE_SIZE),
            PhysAddr(*pa),
            PAGE_SIZE,
            IommuProt::READ,
        )
        .unwrap();
    }
    for (i, pa) in [0x70_3000u64, 0x70_1000, 0x70_2000].iter().enumerate() {
        d.map(
            dst.add(i as u64 * PAGE_SIZE),
            PhysAddr(*pa),
            PAGE_SIZE,
            IommuProt::WRITE,
        )
        .unwrap();
    }
    let data: Vec<u8> = (0..3 * PAGE_SIZE as usize)
        .map(|i| (i % 251) as u8)
        .collect();
    soc.mem().write(PhysAddr(0x50_0000), &data[..4096]).unwrap();
    soc.mem()
        .write(PhysAddr(0x40_0000), &data[4096..8192])
        .unwrap();
    soc.mem().write(PhysAddr(0x60_0000), &data[8192..]).unwrap();
    isp.dma_copy(src.add(100), dst.add(100), 3 * PAGE_SIZE - 200)
        .unwrap();
    let mut back = vec![0u8; data.len()];
    isp.dma_read(dst.add(0), &mut back[..0]).unwrap(); // empty access: a no-op
    assert!(isp.dma_read(dst, &mut back).is_err(), "dst is write-only");
    for (i, pa) in [0x70_3000u64, 0x70_1000, 0x70_2000].iter().enumerate() {
        soc.mem()
            .read(PhysAddr(*pa), &mut back[i * 4096..(i + 1) * 4096])
            .unwrap();
    }
    assert_eq!(&back[100..data.len() - 100], &data[100..data.len() - 100]);
    assert_eq!(&back[..100], &[0; 100][..]);
    let s = isp.stats();
    assert_eq!(
        (s.bytes_read, s.bytes_written, s.transfers, s.faults),
        (12088, 12088, 1, 1)
    );
    let acc = rec.accesses.lock().unwrap().clone();
    assert_eq!(acc.len(), 2, "one read event, one write event");
    assert_eq!(acc[0].runs.len(), 3);
    assert_eq!(
        acc[1].runs,
        vec![
            (PhysAddr(0x70_3000 + 100), 3996),
            (PhysAddr(0x70_1000), 8192 - 100)
        ]
    );
}

#[test]
fn dma_copy_faulting_on_its_destination_moves_nothing() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let isp = soc.device("isp0").unwrap();
    let d = isp.iommu_domain().unwrap();
    let src = DmaAddr(0x10_0000);
    d.map(src, PhysAddr(0x10_0000), PAGE_SIZE, IommuProt::READ_WRITE)
        .unwrap();
    d.map(
        DmaAddr(0x20_0000),
        PhysAddr(0x20_0000),
        PAGE_SIZE,
        IommuProt::READ_WRITE,
    )
    .unwrap();
    soc.mem().write(PhysAddr(0x10_0000), &[3; 4096]).unwrap();
    // Destination: one mapped page, then a hole.
    let err = isp
        .dma_copy(src, DmaAddr(0x20_0800), PAGE_SIZE)
        .unwrap_err();
    assert_eq!(
        err,
        SocError::IommuFault {
            device: "isp0".into(),
            iova: DmaAddr(0x20_1000),
            len: PAGE_SIZE,
            write: true
        }
    );
    assert_eq!(mem_bytes(&soc, 0x20_0000, 4096), vec![0; 4096]);
    assert_eq!(isp.stats().transfers, 0);
}

#[test]
fn translate_checks_everything_but_records_nothing() {
    let (soc, rec) = observed_soc();
    let isp = soc.device("isp0").unwrap();
    assert!(matches!(
        isp.translate(DmaAddr(0x10_0000), 4, false),
        Err(SocError::IommuFault { .. })
    ));
    assert!(isp.iommu_domain().unwrap().faults().is_empty());
    assert!(rec.faults.lock().unwrap().is_empty());
    assert_eq!(isp.stats().faults, 0);
    assert_eq!(isp.translate(DmaAddr(0x10_0000), 0, false).unwrap(), vec![]);
}

#[test]
fn device_properties_come_from_the_description() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let enc = soc.device("encoder0").unwrap();
    assert_eq!(enc.name(), "encoder0");
    assert_eq!(enc.dma_mask(), u32::MAX as u64);
    assert_eq!(enc.coherent_dma_mask(), u32::MAX as u64);
    assert_eq!(enc.max_segment_size(), 4096);
    assert_eq!(enc.segment_boundary_mask(), u32::MAX as u64);
    assert_eq!(enc.max_segments(), 65535);
    assert!(!enc.is_coherent() && !enc.needs_contiguous());
    assert_eq!(enc.iommu_domain().unwrap().iommu_name(), "smmu0");
    let cam = soc.device("camera0").unwrap();
    assert!(cam.needs_contiguous() && cam.iommu_domain().is_none());
    assert_eq!(cam.desc().latency_ns, 2_000);
}

#[test]
fn a_frame_through_scattered_pages_is_one_event_with_one_run_per_page() {
    let (soc, rec) = observed_soc();
    let isp = soc.device("isp0").unwrap();
    let d = isp.iommu_domain().unwrap();
    let pages = 64u64;
    let iova = d
        .alloc_iova(pages * PAGE_SIZE, PAGE_SIZE, isp.dma_mask())
        .unwrap();
    for i in 0..pages {
        // Every other page, backwards: nothing coalesces.
        let pa = PhysAddr(0x100_0000 + (pages - i) * 2 * PAGE_SIZE);
        d.map(
            iova.add(i * PAGE_SIZE),
            pa,
            PAGE_SIZE,
            IommuProt::READ_WRITE,
        )
        .unwrap();
    }
    let frame: Vec<u8> = (0..pages * PAGE_SIZE)
        .map(|i| (i * 13 % 256) as u8)
        .collect();
    isp.dma_write(iova, &frame).unwrap();
    let mut back = vec![0u8; frame.len()];
    isp.dma_read(iova, &mut back).unwrap();
    assert_eq!(back, frame);
    let acc = rec.accesses.lock().unwrap();
    assert_eq!(acc.len(), 2);
    assert_eq!(acc[0].runs.len(), pages as usize);
    assert!(acc[0].write && !acc[1].write);
}

/// Maps `pages` pages of `dev`'s domain at `iova` onto every other page below `base`, backwards,
/// so that no two are contiguous; returns the physical page of each IOVA page.
fn map_scattered(dev: &::soc::Device, iova: DmaAddr, base: u64, pages: u64) -> Vec<u64> {
    let d = dev.iommu_domain().unwrap();
    (0..pages)
        .map(|i| {
            let pa = base + (pages - i) * 2 * PAGE_SIZE;
            d.map(
                iova.add(i * PAGE_SIZE),
                PhysAddr(pa),
                PAGE_SIZE,
                IommuProt::READ_WRITE,
            )
            .unwrap();
            pa
        })
        .collect()
}

#[test]
fn cache_tracking_is_exact_across_many_scattered_runs() {
    let (soc, rec) = observed_soc();
    let isp = soc.device("isp0").unwrap();
    let gpu = soc.device("gpu0").unwrap();
    let iova = DmaAddr(0x100_0000);
    let isp_pages = map_scattered(&isp, iova, 0x200_0000, 16);
    let gpu_pages = map_scattered(&gpu, iova, 0x200_0000, 16);
    assert_eq!(isp_pages, gpu_pages);
    let inside = [isp_pages[3] + 128, isp_pages[10]];
    let outside = isp_pages[3] + PAGE_SIZE; // the page between two frame pages
    let mut line = [0u8; 64];
    for pa in inside.iter().chain([&outside]) {
        soc.cpu().read(PhysAddr(*pa), &mut line).unwrap(); // cached, clean
    }
    // A non-coherent write of the whole frame leaves exactly the two lines inside stale.
    isp.dma_write(iova, &vec![0xAB; 16 * PAGE_SIZE as usize])
        .unwrap();
    for pa in inside.iter().chain([&outside]) {
        soc.cpu().read(PhysAddr(*pa), &mut line).unwrap();
    }
    assert_eq!(
        *rec.stale_reads.lock().unwrap(),
        vec![(PhysAddr(inside[0]), 64), (PhysAddr(inside[1]), 64)]
    );
    soc.cpu().flush(PhysAddr(0), 1 << 30).unwrap();

    // Dirty CPU lines: a coherent read sees them, a non-coherent read counts what it missed.
    for pa in inside.iter().chain([&outside]) {
        soc.cpu().write(PhysAddr(*pa), &[0xCD; 64]).unwrap();
    }
    let mut frame = vec![0u8; 16 * PAGE_SIZE as usize];
    gpu.dma_read(iova, &mut frame).unwrap();
    let at = |page: usize, off: usize| page * PAGE_SIZE as usize + off;
    assert_eq!(&frame[at(3, 128)..at(3, 192)], &[0xCD; 64][..]);
    assert_eq!(&frame[at(10, 0)..at(10, 64)], &[0xCD; 64][..]);
    assert_eq!(frame.iter().filter(|&&b| b == 0xCD).count(), 128);
    isp.dma_read(iova, &mut frame).unwrap();
    assert_eq!(
        rec.accesses.lock().unwrap().last().unwrap().stale_cpu_bytes,
        128
    );
    assert_eq!(frame.iter().filter(|&&b| b == 0xCD).count(), 0);

    // A coherent write updates exactly the cached lines it covers.
    gpu.dma_write(iova, &vec![0x11; 16 * PAGE_SIZE as usize])
        .unwrap();
    soc.cpu().read(PhysAddr(inside[1]), &mut line).unwrap();
    assert_eq!(line, [0x11; 64]);
    soc.cpu().read(PhysAddr(outside), &mut line).unwrap();
    assert_eq!(line, [0xCD; 64]);
}

#[test]
fn aliased_iova_pages_each_see_the_cpu_lines() {
    let soc = Soc::new(SocDesc::default_soc()).unwrap();
    let gpu = soc.device("gpu0").unwrap();
    let d = gpu.iommu_domain().unwrap();
    let iova = DmaAddr(0x100_0000);
    for i in 0..12 {
        // Twelve IOVA pages, one physical page: runs alias.
        d.map(
            iova.add(i * PAGE_SIZE),
            PhysAddr(0x300_0000),
            PAGE_SIZE,
            IommuProt::READ,
        )
        .unwrap();
    }
    soc.cpu()
        .write(PhysAddr(0x300_0000 + 64), &[7; 64])
        .unwrap();
    let mut buf = vec![0u8; 12 * PAGE_SIZE as usize];
    gpu.dma_read(iova, &mut buf).unwrap();
    for i in 0..12 {
        let at = i * PAGE_SIZE as usize + 64;
        assert_eq!(&buf[at..at + 64], &[7; 64][..], "page {i}");
    }
    assert_eq!(buf.iter().filter(|&&b| b == 7).count(), 12 * 64);
}
