//! CPU access: mmap (behaviour 81), zap on move, vmap (75-76), begin/end_cpu_access (77-78).

use crate::core_common::*;
use dmabuf::{DmaBufError, OpsFeatures};
use fence::{DmaResvUsage, Interrupt};
use uapi::{AsErrno, Errno};

const PAGE: u64 = 4096;

#[test]
fn mmap_bounds() {
    // 3 pages and a half: the partial last page can never be mapped.
    let (_dma, ops, buf) = setup(OpsFeatures::MMAP, false, 3 * PAGE + 100);
    assert!(buf.mmap(0, 3 * PAGE, true).is_ok());
    assert!(buf.mmap(2, 1, true).is_ok(), "a length rounds up to a page");
    assert_eq!(
        buf.mmap(0, 3 * PAGE + 1, true).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(buf.mmap(3, PAGE, true).unwrap_err().errno(), Errno::EINVAL);
    assert!(matches!(
        buf.mmap(2, 2 * PAGE, true).unwrap_err(),
        DmaBufError::MmapOutOfBounds {
            pgoff: 2,
            npages: 2,
            pages: 3
        }
    ));
    assert_eq!(
        buf.mmap(u64::MAX, PAGE, true).unwrap_err().errno(),
        Errno::EOVERFLOW
    );
    assert_eq!(buf.mmap(0, 0, true).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        count(&ops.counters.mmap),
        2,
        "refused mmaps never reach the exporter"
    );
}

#[test]
fn mmap_refused_by_exporter_is_returned() {
    let (_dma, ops, buf) = setup_default();
    ops.fail.lock().mmap = Some(Errno::EINVAL);
    assert_eq!(buf.mmap(0, PAGE, false).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(buf.mmap_count(), 0);
}

#[test]
fn not_mmapable_buffer_refuses_mmap() {
    let (_dma, ops, buf) = setup(OpsFeatures::VMAP, false, 4 * PAGE);
    let err = buf.mmap(0, PAGE, false).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL);
    assert!(matches!(err, DmaBufError::NotMmapable(_)));
    assert_eq!(count(&ops.counters.mmap), 0);
}

#[test]
fn mmap_faults_pages_lazily() {
    let (_dma, ops, buf) = setup_default();
    let m = buf.mmap(1, 3 * PAGE, true).unwrap();
    assert_eq!((m.fault_count(), m.resident_pages()), (0, 0));
    assert!(
        !ops.has_storage(),
        "nothing allocated before the first touch"
    );
    m.write(PAGE + 5, b"abc").unwrap();
    assert_eq!((m.fault_count(), m.resident_pages()), (1, 1));
    let mut b = [0u8; 3];
    m.read(PAGE + 5, &mut b).unwrap();
    assert_eq!((&b, m.fault_count()), (b"abc", 1));
    assert_eq!(
        m.page_phys(1).unwrap(),
        ops.page_phys(2).unwrap(),
        "pgoff 1 + index 1"
    );
    assert_eq!(
        m.read(3 * PAGE - 1, &mut b).unwrap_err().errno(),
        Errno::EFAULT,
        "beyond the mapping"
    );
    let ro = buf.mmap(0, PAGE, false).unwrap();
    assert_eq!(ro.write(0, b"x").unwrap_err().errno(), Errno::EFAULT);
}

#[test]
fn mmap_zapped_on_move_reads_new_storage() {
    let (dma, ops, buf) = setup_default();
    let m = buf.mmap(0, 4 * PAGE, true).unwrap();
    m.write(2 * PAGE, b"survives the move").unwrap();
    let old = m.page_phys(2).unwrap();
    let faults = m.fault_count();
    ops.migrate(&buf).unwrap();
    assert_eq!(m.resident_pages(), 0, "zapped");
    assert_eq!(buf.zap_count(), 1);
    let mut got = [0u8; 17];
    m.read(2 * PAGE, &mut got).unwrap();
    assert_eq!(&got, b"survives the move");
    assert_eq!(m.fault_count(), faults + 1, "the access faulted again");
    let new = m.page_phys(2).unwrap();
    assert_ne!(new, old);
    assert_eq!(Some(new), ops.page_phys(2));
    // A store lands in the new storage, not the freed old page.
    m.write(0, b"new").unwrap();
    let mut raw = [0u8; 3];
    dma.soc()
        .cpu()
        .read(ops.page_phys(0).unwrap(), &mut raw)
        .unwrap();
    assert_eq!(&raw, b"new");
}

#[test]
fn vmap_refcount() {
    let (_dma, ops, buf) = setup_default();
    let mut g = buf.resv().lock(None).unwrap();
    let a = buf.vmap(&mut g).unwrap();
    let b = buf.vmap(&mut g).unwrap();
    assert_eq!((count(&ops.counters.vmap), buf.vmap_count()), (1, 2));
    assert_eq!(a.iosys_map(), b.iosys_map());
    a.write(10, b"vmapped").unwrap();
    let mut got = [0u8; 7];
    b.read(10, &mut got).unwrap();
    assert_eq!(&got, b"vmapped");
    assert_eq!(
        a.read(4 * PAGE - 1, &mut got).unwrap_err().errno(),
        Errno::EFAULT
    );
    buf.vunmap(&mut g, a).unwrap();
    assert_eq!(count(&ops.counters.vunmap), 0, "not the last one");
    buf.vunmap(&mut g, b).unwrap();
    assert_eq!((count(&ops.counters.vunmap), buf.vmap_count()), (1, 0));
    // The next vmap reaches the exporter again.
    let c = buf.vmap(&mut g).unwrap();
    assert_eq!(count(&ops.counters.vmap), 2);
    buf.vunmap(&mut g, c).unwrap();
}

#[test]
fn vmap_error_leaves_counter_zero() {
    let (_dma, ops, buf) = setup_default();
    ops.fail.lock().vmap = Some(Errno::ENOMEM);
    assert_eq!(buf.vmap_unlocked().unwrap_err().errno(), Errno::ENOMEM);
    assert_eq!(buf.vmap_count(), 0);
    ops.fail.lock().vmap = None;
    let v = buf.vmap_unlocked().unwrap();
    assert_eq!(buf.vmap_count(), 1);
    buf.vunmap_unlocked(v).unwrap();
}

#[test]
fn vmap_without_exporter_vmap_is_einval() {
    let (_dma, _ops, buf) = setup(OpsFeatures::MMAP, false, PAGE);
    assert_eq!(buf.vmap_unlocked().unwrap_err().errno(), Errno::EINVAL);
}

#[test]
fn vunmap_mismatch_is_an_error_not_a_panic() {
    let (dma, ops, buf) = setup_default();
    let other = ops.export(&dma, PAGE).unwrap();
    let v = other.vmap_unlocked().unwrap();
    assert_eq!(
        buf.vunmap_unlocked(v).unwrap_err(),
        DmaBufError::VunmapMismatch
    );
    assert_eq!(
        other.vmap_count(),
        1,
        "the other buffer's count is untouched"
    );
}

#[test]
fn begin_cpu_access_waits_by_direction() {
    let (_dma, _ops, buf) = setup_default();
    let raised = Interrupt::new();
    raised.raise();
    let waits = |dir| {
        buf.begin_cpu_access_interruptible(dir, Some(&raised))
            .map_err(|e| e.errno())
            .err()
            == Some(Errno::ERESTARTSYS)
    };
    // A pending reader: the CPU may read (FROM_DEVICE) but must wait to write.
    let reader = fence("reader");
    add_fence(&buf, &reader, DmaResvUsage::Read);
    assert!(!waits(DmaDirection::FromDevice));
    assert!(waits(DmaDirection::ToDevice));
    assert!(waits(DmaDirection::Bidirectional));
    reader.signal().unwrap();
    // A pending writer: every direction waits.
    let writer = fence("writer");
    add_fence(&buf, &writer, DmaResvUsage::Write);
    assert!(waits(DmaDirection::FromDevice));
    assert!(waits(DmaDirection::ToDevice));
    writer.signal().unwrap();
    // BOOKKEEP is never waited for.
    let book = fence("bookkeep");
    add_fence(&buf, &book, DmaResvUsage::Bookkeep);
    assert!(!waits(DmaDirection::FromDevice));
    assert!(!waits(DmaDirection::Bidirectional));
    // And a signaled fence lets the wait finish.
    let w = fence("later");
    add_fence(&buf, &w, DmaResvUsage::Write);
    let b2 = buf.clone();
    let t = std::thread::spawn(move || b2.begin_cpu_access(DmaDirection::FromDevice));
    w.signal().unwrap();
    t.join().unwrap().unwrap();
}

#[test]
fn begin_cpu_access_exporter_error_is_returned_without_waiting() {
    let (_dma, ops, buf) = setup_default();
    ops.fail.lock().begin_cpu = Some(Errno::EIO);
    add_fence(&buf, &fence("writer"), DmaResvUsage::Write); // never signaled
    assert_eq!(
        buf.begin_cpu_access(DmaDirection::FromDevice)
            .unwrap_err()
            .errno(),
        Errno::EIO
    );
}

#[test]
fn end_cpu_access_never_waits() {
    let (_dma, ops, buf) = setup_default();
    add_fence(&buf, &fence("writer"), DmaResvUsage::Write); // never signaled
    buf.end_cpu_access(DmaDirection::Bidirectional).unwrap();
    assert_eq!(count(&ops.counters.end_cpu), 1);
}

#[test]
fn cpu_reads_what_a_non_coherent_device_wrote_inside_the_bracket() {
    for cached in [false, true] {
        let (dma, _ops, buf) = setup(OpsFeatures::MMAP | OpsFeatures::VMAP, cached, 2 * PAGE);
        let isp = dma.device("isp0").unwrap();
        assert!(!isp.is_coherent());
        let att = buf.attach(&isp).unwrap();
        let m = buf.mmap(0, 2 * PAGE, true).unwrap();
        // The CPU reads first: its cache now holds the lines.
        let mut got = [0u8; 8];
        m.read(PAGE, &mut got).unwrap();
        let sgt = att.map_unlocked(DmaDirection::FromDevice).unwrap();
        dma.device_write(&isp, sgt.dma_address().unwrap().add(PAGE), b"isp data")
            .unwrap();
        buf.begin_cpu_access(DmaDirection::FromDevice).unwrap();
        m.read(PAGE, &mut got).unwrap();
        buf.end_cpu_access(DmaDirection::FromDevice).unwrap();
        assert_eq!(&got, b"isp data", "cached={cached}");
        att.unmap_unlocked(sgt).unwrap();
        drop(att);
        assert_eq!(
            dma.checker().total(),
            0,
            "cached={cached}: {:?}",
            dma.checker().findings()
        );
    }
}
