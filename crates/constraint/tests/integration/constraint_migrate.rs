//! Migration on late attach (seed 000), with real bytes: one test per behaviour.

use super::constraint_common::*;
use constraint::{
    ConstraintExporter, DmaEngineMover, ExportSpec, MigrationCause, MigrationConfig, Source,
};
use dma::DmaDirection;
use dmabuf::testing::mock_dma;
use fence::{context_alloc, DmaResvUsage, Interrupt, SimpleFenceOps};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use uapi::{AsErrno, Errno};

const SIZE: usize = 6 << 20;

fn is_cma(s: &Source) -> bool {
    matches!(s, Source::Cma { .. })
}

#[test]
fn test_late_display_migrates_scattered_to_cma_and_mmap_follows() {
    let dma = mock_dma();
    let before = page_accounting(&dma);
    {
        let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(SIZE as u64)).unwrap();
        let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
        // The CPU maps the buffer before anything moves, and touches it (faults on old pages).
        let cpu = buf.mmap(0, SIZE as u64, false).unwrap();
        let mut sums = Vec::new();
        for f in 0..3u64 {
            let data = frame(f, SIZE);
            produce(&dma, &isp, &data);
            sums.push(checksum(&data));
        }
        let old = exp.placement().unwrap();
        assert!(
            matches!(old.groups[0].source, Source::Scattered { .. }),
            "{old}"
        );
        let old_page = cpu.page_phys(0).unwrap();

        let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
        let new = exp.placement().unwrap();
        assert!(is_cma(&new.groups[0].source), "{new}");
        assert_eq!(
            new.groups[0].runs, 1,
            "contiguous for the direct-mapped display"
        );
        assert!(
            new.groups[0].highest < 1 << 30,
            "below display0's 30-bit mask"
        );

        // Every device, and the CPU mapping opened before the move, sees the last frame.
        let last = *sums.last().unwrap();
        assert_eq!(checksum(&consume(&dma, &display, SIZE)), last);
        assert_eq!(checksum(&consume(&dma, &isp, SIZE)), last);
        buf.begin_cpu_access(DmaDirection::FromDevice).unwrap();
        let mut seen = vec![0u8; SIZE];
        cpu.read(0, &mut seen).unwrap();
        buf.end_cpu_access(DmaDirection::FromDevice).unwrap();
        assert_eq!(checksum(&seen), last);
        assert_ne!(
            cpu.page_phys(0).unwrap(),
            old_page,
            "the mapping was zapped and re-faulted"
        );
        assert!(buf.zap_count() >= 1);

        let ev = exp.log().events();
        assert_eq!(ev.len(), 1);
        assert_eq!(
            ev[0].cause,
            MigrationCause::LateAttach {
                device: "display0".into()
            }
        );
        assert_eq!(ev[0].bytes, SIZE as u64);
        assert_eq!(
            ev[0].engine, "isp0",
            "the first DMA engine behind an IOMMU copies"
        );
        assert_eq!(ev[0].from, old);
        assert_eq!(ev[0].to, new);
        assert!(ev[0].stall_ns >= ev[0].copy_ns);
        // The copy's cost is the copying engine's on the machine's time model, recorded even
        // though nothing advanced the (virtual) clock while it ran.
        assert_eq!(
            ev[0].copy_ns,
            soc::timing::copy_ns(dma.soc(), "isp0", SIZE as u64)
        );
        assert!(ev[0].copy_ns > 0);
        drop((cpu, isp, display, buf));
    }
    assert_eq!(page_accounting(&dma), before, "every page came back");
    assert_clean(&dma);
}

#[test]
fn test_migration_without_memory_keeps_old_placement_and_bytes() {
    let dma = mock_dma();
    // 8 MiB contiguous below 1 GiB: larger than a buddy block, so only CMA can serve it. Take
    // all of CMA first.
    let size = 8usize << 20;
    let soc = dma.soc().clone();
    let cma = soc.pages().cma_regions()[0].clone();
    let hog = soc.pages().cma_alloc(&cma.name, cma.size >> 12, 0).unwrap();
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(size as u64)).unwrap();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let data = frame(7, size);
    produce(&dma, &isp, &data);
    let old = exp.placement().unwrap();
    let raw_before = {
        let mut v = vec![0u8; size];
        soc.mem()
            .read_runs(&runs_of(&exp, size as u64), &mut v)
            .unwrap();
        v
    };

    let err = buf.attach(&dma.device("display0").unwrap()).unwrap_err();
    assert_eq!(err.errno(), Errno::ENOMEM, "{err}");
    assert!(err.to_string().contains("cma0"), "{err}");
    assert_eq!(exp.placement().unwrap(), old, "the old placement stays");
    assert_eq!(checksum(&consume(&dma, &isp, size)), checksum(&data));
    let mut raw_after = vec![0u8; size];
    soc.mem()
        .read_runs(&runs_of(&exp, size as u64), &mut raw_after)
        .unwrap();
    assert!(raw_after == raw_before, "no byte changed");
    assert_eq!(exp.log().failures().len(), 1);
    assert_eq!(exp.log().failures()[0].errno, "ENOMEM");
    assert_eq!(buf.attachment_infos().len(), 1, "display0 was not attached");

    // With CMA given back, the same attach migrates.
    soc.pages()
        .cma_release(&cma.name, hog, cma.size >> 12)
        .unwrap();
    let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
    assert_eq!(checksum(&consume(&dma, &display, size)), checksum(&data));
    drop((display, isp, buf));
    assert_clean(&dma);
}

fn runs_of(exp: &ConstraintExporter, size: u64) -> Vec<(soc::PhysAddr, u64)> {
    let mut out = Vec::new();
    let mut left = size;
    let mut off = 0;
    while left > 0 {
        let pa = exp.phys_at(off).unwrap();
        out.push((pa, 4096.min(left)));
        off += 4096;
        left = left.saturating_sub(4096);
    }
    out
}

#[test]
fn test_move_notify_reaches_dynamic_importer_who_remaps() {
    let dma = mock_dma();
    let size = 1 << 20;
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(size as u64)).unwrap();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let gpu_imp = Remapper::new();
    let gpu = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), gpu_imp.clone())
        .unwrap();
    let data = frame(1, size);
    produce(&dma, &isp, &data);
    assert_eq!(checksum(&gpu_imp.read(&dma, &gpu, size)), checksum(&data));
    let before = exp.phys_at(0).unwrap();

    let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
    assert_eq!(gpu_imp.notified.load(Ordering::SeqCst), 1);
    assert!(gpu_imp.table.lock().is_none(), "it dropped its mapping");
    assert_ne!(exp.phys_at(0).unwrap(), before);
    // It re-maps on its next use and reads the moved bytes.
    assert_eq!(checksum(&gpu_imp.read(&dma, &gpu, size)), checksum(&data));
    assert_eq!(exp.ghost_count(), 0);
    gpu_imp.release(&gpu);
    drop((display, gpu, isp, buf));
    assert_clean(&dma);
}

#[test]
fn test_importer_ignoring_move_notify_keeps_old_storage_until_unmap() {
    let dma = mock_dma();
    let before = page_accounting(&dma);
    let size = 1 << 20;
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(size as u64)).unwrap();
    let imp = Remapper::new();
    imp.ignore.store(true, Ordering::SeqCst);
    let gpu = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), imp.clone())
        .unwrap();
    imp.read(&dma, &gpu, 16);
    let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
    assert_eq!(imp.notified.load(Ordering::SeqCst), 1);
    assert_eq!(
        exp.ghost_count(),
        1,
        "the old storage is still mapped: not freed"
    );
    imp.release(&gpu);
    assert_eq!(exp.ghost_count(), 0, "freed at the last unmap");
    drop((display, gpu, buf));
    assert_eq!(page_accounting(&dma), before);
    assert_clean(&dma);
}

#[test]
fn test_static_mapping_held_past_the_drain_timeout_is_ebusy() {
    let dma = mock_dma();
    let size = 1 << 20;
    let cfg = MigrationConfig {
        drain_timeout: Duration::from_millis(30),
        ..MigrationConfig::default()
    };
    let (buf, exp) =
        ConstraintExporter::export(&dma, ExportSpec::new(size as u64).config(cfg)).unwrap();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let data = frame(3, size);
    let sgt = isp.map_unlocked(DmaDirection::Bidirectional).unwrap();
    write_through(&dma, &isp, &sgt, &data);
    let old = exp.placement();
    let err = buf.attach(&dma.device("display0").unwrap()).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    assert!(err.to_string().contains("isp0"), "names the holder: {err}");
    assert_eq!(exp.placement(), old);
    // The holder keeps working on the old placement.
    assert_eq!(
        checksum(&read_through(&dma, &isp, &sgt, size)),
        checksum(&data)
    );
    isp.unmap_unlocked(sgt).unwrap();
    drop((isp, buf));
    assert_clean(&dma);
}

#[test]
fn test_attach_waits_for_a_static_unmap_then_migrates() {
    let dma = mock_dma();
    let size = 1 << 20;
    let cfg = MigrationConfig {
        drain_timeout: Duration::from_secs(5),
        ..MigrationConfig::default()
    };
    let (buf, exp) =
        ConstraintExporter::export(&dma, ExportSpec::new(size as u64).config(cfg)).unwrap();
    let isp = Arc::new(buf.attach(&dma.device("isp0").unwrap()).unwrap());
    let data = frame(4, size);
    let sgt = isp.map_unlocked(DmaDirection::Bidirectional).unwrap();
    write_through(&dma, &isp, &sgt, &data);
    let gpu_imp = Remapper::new();
    let gpu = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), gpu_imp.clone())
        .unwrap();

    let attacher = {
        let (buf, dma) = (buf.clone(), dma.clone());
        std::thread::spawn(move || buf.attach(&dma.device("display0").unwrap()))
    };
    while !exp.migration_pending() {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The gate is closed: a dynamic map now stalls with EBUSY rather than block under the lock.
    let mut g = buf.resv().lock(None).unwrap();
    let err = gpu.map(&mut g, DmaDirection::Bidirectional).unwrap_err();
    drop(g);
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    assert!(err.to_string().contains("display0"), "{err}");
    // 20 ms pass on the machine's (virtual) clock before the ISP unmaps.
    let clock = dma.soc().clock().as_virtual().expect("a simulated machine");
    clock.advance(Duration::from_millis(20));
    isp.unmap_unlocked(sgt).unwrap();
    let display = attacher.join().unwrap().unwrap();
    let ev = exp.log().events();
    assert_eq!(ev.len(), 1);
    assert!(
        ev[0].stall_ns >= 20_000_000,
        "stalled until the unmap: {}",
        ev[0].stall_ns
    );
    assert_eq!(checksum(&consume(&dma, &display, size)), checksum(&data));
    assert_eq!(checksum(&gpu_imp.read(&dma, &gpu, size)), checksum(&data));
    gpu_imp.release(&gpu);
    drop((display, gpu, isp, buf));
    assert_clean(&dma);
}

#[test]
fn test_pending_fence_blocks_migration_until_signaled_or_interrupted() {
    let dma = mock_dma();
    let size = 1 << 20;
    let intr = Interrupt::new();
    let cfg = MigrationConfig {
        drain_timeout: Duration::from_secs(5),
        interrupt: Some(intr.clone()),
        ..MigrationConfig::default()
    };
    let (buf, exp) =
        ConstraintExporter::export(&dma, ExportSpec::new(size as u64).config(cfg)).unwrap();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    produce(&dma, &isp, &frame(5, size));
    let f = SimpleFenceOps::create("test", "isp", context_alloc(1).unwrap(), 1);
    {
        let mut g = buf.resv().lock(None).unwrap();
        g.reserve_fences(1).unwrap();
        g.add_fence(&f, DmaResvUsage::Write).unwrap();
    }
    // Interrupted: ERESTARTSYS, nothing moved.
    let old = exp.placement();
    let raiser = {
        let intr = intr.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            intr.raise();
        })
    };
    let err = buf.attach(&dma.device("display0").unwrap()).unwrap_err();
    raiser.join().unwrap();
    assert!(err.is_interrupted(), "{err}");
    assert_eq!(exp.placement(), old);
    intr.clear();
    // Signaled meanwhile: the migration goes through.
    let signaller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        f.signal().unwrap();
    });
    let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
    signaller.join().unwrap();
    assert_ne!(exp.placement(), old);
    assert_eq!(
        checksum(&consume(&dma, &display, size)),
        checksum(&frame(5, size))
    );
    drop((display, isp, buf));
    assert_clean(&dma);
}

#[test]
fn test_pipeline_keeps_running_across_a_late_attach() {
    // Seed 000: "the video pipe might stutter a bit ... but it should Just Work".
    let dma = mock_dma();
    let size = 2 << 20;
    let cfg = MigrationConfig {
        drain_timeout: Duration::from_secs(5),
        ..MigrationConfig::default()
    };
    let (buf, exp) =
        ConstraintExporter::export(&dma, ExportSpec::new(size as u64).config(cfg)).unwrap();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let producer = {
        let (dma, done) = (dma.clone(), done.clone());
        std::thread::spawn(move || {
            let mut busy = 0;
            for f in 0..60u64 {
                let data = frame(f, size);
                loop {
                    match isp.map_unlocked(DmaDirection::Bidirectional) {
                        Ok(sgt) => {
                            write_through(&dma, &isp, &sgt, &data);
                            isp.unmap_unlocked(sgt).unwrap();
                            done.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        Err(e) if e.errno() == Errno::EBUSY => {
                            busy += 1;
                            std::thread::yield_now();
                        }
                        Err(e) => panic!("frame {f}: {e}"),
                    }
                }
            }
            (isp, busy)
        })
    };
    // Join mid-stream: once frames flow (storage exists), before the last one.
    while done.load(Ordering::SeqCst) < 2 {
        std::thread::yield_now();
    }
    let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
    let (isp, _stutters) = producer.join().unwrap();
    assert_eq!(exp.log().events().len(), 1);
    let last = checksum(&frame(59, size));
    assert_eq!(checksum(&consume(&dma, &display, size)), last);
    assert_eq!(checksum(&consume(&dma, &isp, size)), last);
    drop((display, isp, buf));
    assert_clean(&dma);
}

#[test]
fn test_vmap_holds_the_placement_like_a_pin() {
    let dma = mock_dma();
    let cfg = MigrationConfig {
        drain_timeout: Duration::from_millis(10),
        ..MigrationConfig::default()
    };
    let (buf, exp) =
        ConstraintExporter::export(&dma, ExportSpec::new(1 << 20).config(cfg)).unwrap();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let v = buf.vmap_unlocked().unwrap();
    v.write(0, b"kernel").unwrap();
    let err = buf.attach(&dma.device("display0").unwrap()).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY);
    assert!(err.to_string().contains("vmap"), "{err}");
    buf.vunmap_unlocked(v).unwrap();
    let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
    assert!(is_cma(&exp.placement().unwrap().groups[0].source));
    buf.begin_cpu_access(DmaDirection::ToDevice).unwrap();
    buf.end_cpu_access(DmaDirection::ToDevice).unwrap();
    assert_eq!(&consume(&dma, &display, 6)[..], b"kernel");
    drop((display, isp, buf));
    assert_clean(&dma);
}

#[test]
fn test_designated_copy_engine_moves_the_bytes() {
    let dma = mock_dma();
    let size = 1 << 20;
    let cfg = MigrationConfig {
        mover: Arc::new(DmaEngineMover::device("gpu0")),
        ..MigrationConfig::default()
    };
    let (buf, exp) =
        ConstraintExporter::export(&dma, ExportSpec::new(size as u64).config(cfg)).unwrap();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    produce(&dma, &isp, &frame(8, size));
    let gpu_before = dma.device("gpu0").unwrap().stats().bytes_written;
    let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
    assert_eq!(exp.log().events()[0].engine, "gpu0");
    assert!(dma.device("gpu0").unwrap().stats().bytes_written >= gpu_before + size as u64);
    assert_eq!(
        checksum(&consume(&dma, &display, size)),
        checksum(&frame(8, size))
    );
    drop((display, isp, buf));
    assert_clean(&dma);
}

#[test]
fn test_a_late_attach_that_fails_part_way_leaves_nothing_half_migrated() {
    let dma = mock_dma();
    // Three 8 MiB buffers for the ISP (scattered); CMA has room for two more contiguous ones.
    let size = 8usize << 20;
    let pages = (size >> 12) as u64;
    let soc = dma.soc().clone();
    let cma = soc.pages().cma_regions()[0].clone();
    let hog = soc
        .pages()
        .cma_alloc(&cma.name, (cma.size >> 12) - 2 * pages, 0)
        .unwrap();
    let mut bufs = Vec::new();
    for i in 0..3u64 {
        let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(size as u64)).unwrap();
        let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
        let data = frame(i, size);
        produce(&dma, &isp, &data);
        bufs.push((buf, exp, isp, checksum(&data)));
    }
    let scattered = |exp: &ConstraintExporter| {
        matches!(
            exp.placement().unwrap().groups[0].source,
            Source::Scattered { .. }
        )
    };
    assert!(bufs.iter().all(|b| scattered(&b.1)));
    // The display joins: two buffers move to CMA, the third finds none (ENOMEM).
    let display = dma.device("display0").unwrap();
    let mut attached = Vec::new();
    let mut failed = None;
    for (buf, exp, _, _) in &bufs {
        match buf.attach(&display) {
            Ok(a) => {
                assert!(is_cma(&exp.placement().unwrap().groups[0].source));
                attached.push(a);
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    assert_eq!(attached.len(), 2);
    assert_eq!(
        failed.expect("the third attach fails").errno(),
        Errno::ENOMEM
    );
    // The caller gives up on the display: it detaches from the buffers it joined.
    for (a, (buf, _, _, _)) in attached.into_iter().zip(&bufs) {
        buf.detach(a).unwrap();
    }
    for (_, exp, isp, sum) in &bufs {
        assert!(scattered(exp), "moved back: {}", exp.placement().unwrap());
        assert_eq!(checksum(&consume(&dma, isp, size)), *sum, "bytes kept");
    }
    let back: Vec<_> = bufs
        .iter()
        .flat_map(|b| b.1.log().events())
        .filter(|e| {
            e.cause
                .to_string()
                .contains("move back after the detach of display0")
        })
        .collect();
    assert_eq!(back.len(), 2, "{back:?}");
    // The CMA the two moves took is free again: all of it can be had.
    let again = soc.pages().cma_alloc(&cma.name, 2 * pages, 0).unwrap();
    soc.pages()
        .cma_release(&cma.name, again, 2 * pages)
        .unwrap();
    soc.pages()
        .cma_release(&cma.name, hog, (cma.size >> 12) - 2 * pages)
        .unwrap();
    drop(bufs);
    assert_clean(&dma);
}

#[test]
fn test_a_detach_that_changes_nothing_moves_nothing() {
    let dma = mock_dma();
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(SIZE as u64)).unwrap();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let gpu = buf.attach(&dma.device("gpu0").unwrap()).unwrap();
    produce(&dma, &isp, &frame(1, SIZE));
    let before = exp.placement().unwrap();
    buf.detach(gpu).unwrap();
    assert_eq!(exp.placement().unwrap(), before);
    assert!(exp.log().events().is_empty());
    drop((isp, buf));
    assert_clean(&dma);
}
