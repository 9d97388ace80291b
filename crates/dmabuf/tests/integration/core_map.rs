//! Map, unmap, pin and move_notify (behaviours 68-74).

use crate::core_common::*;
use dmabuf::{DmaBufError, OpsFeatures};
use fence::{DmaResv, DmaResvUsage, Interrupt};
use std::sync::mpsc;
use std::sync::Arc;
use uapi::{AsErrno, Errno};

#[test]
fn map_with_another_resv_locked_is_einval() {
    let (dma, _ops, buf) = setup_default();
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let other = DmaResv::new();
    let mut g = other.lock(None).unwrap();
    assert_eq!(
        att.map(&mut g, DmaDirection::ToDevice).unwrap_err(),
        DmaBufError::WrongResv
    );
}

#[test]
fn static_map_pins_and_unmap_unpins() {
    let (dma, ops, buf) = setup(all_features(), false, 4 * 4096);
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let sgt = att.map_unlocked(DmaDirection::ToDevice).unwrap();
    assert_eq!((count(&ops.counters.pin), count(&ops.counters.map)), (1, 1));
    assert_eq!(att.mapped_count(), 1);
    assert!(sgt.dma_address().is_some());
    att.unmap_unlocked(sgt).unwrap();
    assert_eq!(
        (count(&ops.counters.unmap), count(&ops.counters.unpin)),
        (1, 1)
    );
    assert_eq!(att.mapped_count(), 0);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn static_map_without_exporter_pin_does_not_pin() {
    let (dma, ops, buf) = setup_default();
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let sgt = att.map_unlocked(DmaDirection::ToDevice).unwrap();
    att.unmap_unlocked(sgt).unwrap();
    assert_eq!(
        (count(&ops.counters.pin), count(&ops.counters.unpin)),
        (0, 0)
    );
}

#[test]
fn pin_failure_on_map_is_returned_and_nothing_mapped() {
    let (dma, ops, buf) = setup(all_features(), false, 4096);
    ops.fail.lock().pin = Some(Errno::EBUSY);
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    assert_eq!(
        att.map_unlocked(DmaDirection::ToDevice)
            .unwrap_err()
            .errno(),
        Errno::EBUSY
    );
    assert_eq!((count(&ops.counters.map), att.mapped_count()), (0, 0));
}

#[test]
fn map_failure_after_pin_unpins() {
    let (dma, ops, buf) = setup(all_features(), false, 4096);
    ops.fail.lock().map = Some(Errno::ENOMEM);
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    assert_eq!(
        att.map_unlocked(DmaDirection::ToDevice)
            .unwrap_err()
            .errno(),
        Errno::ENOMEM
    );
    assert_eq!(
        (count(&ops.counters.pin), count(&ops.counters.unpin)),
        (1, 1)
    );
    assert_eq!(att.mapped_count(), 0);
}

#[test]
fn static_map_waits_for_kernel_fences() {
    let (dma, ops, buf) = setup_default();
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    // A WRITE fence is not a KERNEL fence: the map does not wait for it.
    let write = fence("write");
    add_fence(&buf, &write, DmaResvUsage::Write);
    let sgt = att.map_unlocked(DmaDirection::ToDevice).unwrap();
    att.unmap_unlocked(sgt).unwrap();
    // A pending KERNEL fence (a move in flight): the map returns only once it signals.
    let kernel = fence("move");
    add_fence(&buf, &kernel, DmaResvUsage::Kernel);
    let (tx, rx) = mpsc::channel();
    let a = buf.attachments().pop().unwrap();
    let t = std::thread::spawn(move || {
        let r = a.map_unlocked(DmaDirection::ToDevice);
        tx.send(r.is_ok()).unwrap();
        a.unmap_unlocked(r.unwrap()).unwrap();
    });
    // The exporter has mapped already; the importer is parked on the fence.
    while count(&ops.counters.map) < 2 {
        std::thread::yield_now();
    }
    assert!(
        rx.try_recv().is_err(),
        "map returned before the KERNEL fence signaled"
    );
    kernel.signal().unwrap();
    assert!(rx.recv().unwrap());
    t.join().unwrap();
    drop(att);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn interrupted_static_map_unmaps_and_returns_erestartsys() {
    let (dma, ops, buf) = setup(all_features(), false, 4 * 4096);
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    add_fence(&buf, &fence("move"), DmaResvUsage::Kernel);
    let intr = Interrupt::new();
    intr.raise();
    let mut g = buf.resv().lock(None).unwrap();
    let err = att
        .map_interruptible(&mut g, DmaDirection::ToDevice, Some(&intr))
        .unwrap_err();
    assert_eq!(err.errno(), Errno::ERESTARTSYS);
    assert!(err.is_interrupted());
    drop(g);
    assert_eq!(count(&ops.counters.map), 1);
    assert_eq!(count(&ops.counters.unmap), 1, "the exporter unmapped");
    assert_eq!(
        (count(&ops.counters.pin), count(&ops.counters.unpin)),
        (1, 1)
    );
    assert_eq!(att.mapped_count(), 0);
    assert!(dma.checker().live_mappings(Some("isp0")).is_empty());
}

#[test]
fn dynamic_map_does_not_wait_for_kernel_fences() {
    let (dma, _ops, buf) = setup(all_features(), false, 4096);
    let att = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), Arc::new(Recorder::default()))
        .unwrap();
    let k = fence("move");
    add_fence(&buf, &k, DmaResvUsage::Kernel);
    let intr = Interrupt::new();
    intr.raise();
    let mut g = buf.resv().lock(None).unwrap();
    let sgt = att
        .map_interruptible(&mut g, DmaDirection::Bidirectional, Some(&intr))
        .unwrap();
    att.unmap(&mut g, sgt).unwrap();
    drop(g);
    k.signal().unwrap();
}

#[test]
fn two_maps_are_two_exporter_calls_without_a_cache() {
    let (dma, ops, buf) = setup_default();
    let att = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), Arc::new(Recorder::default()))
        .unwrap();
    let mut g = buf.resv().lock(None).unwrap();
    let a = att.map(&mut g, DmaDirection::ToDevice).unwrap();
    let b = att.map(&mut g, DmaDirection::ToDevice).unwrap();
    assert!(!a.same_table(&b), "behaviour 71: the core never caches");
    assert_eq!(count(&ops.counters.map), 2);
    att.unmap(&mut g, a).unwrap();
    att.unmap(&mut g, b).unwrap();
    assert_eq!(count(&ops.counters.unmap), 2);
}

#[test]
fn unmap_through_another_attachment_is_einval() {
    let (dma, _ops, buf) = setup_default();
    let a = buf.attach(&dma.device("gpu0").unwrap()).unwrap();
    let b = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let sgt = a.map_unlocked(DmaDirection::ToDevice).unwrap();
    assert_eq!(b.unmap_unlocked(sgt).unwrap_err().errno(), Errno::EINVAL);
}

#[test]
fn move_notify_reaches_dynamic_never_static() {
    let (dma, _ops, buf) = setup(all_features(), false, 4096);
    let rec = Arc::new(Recorder::default());
    let _dynamic = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), rec.clone())
        .unwrap();
    let _static = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let mut g = buf.resv().lock(None).unwrap();
    buf.move_notify(&mut g).unwrap();
    assert_eq!(rec.notified.load(std::sync::atomic::Ordering::SeqCst), 1);
    let other = DmaResv::new();
    let mut og = other.lock(None).unwrap();
    assert_eq!(
        buf.move_notify(&mut og).unwrap_err(),
        DmaBufError::WrongResv
    );
}

#[test]
fn pin_on_static_attachment_is_einval() {
    let (dma, _ops, buf) = setup(all_features(), false, 4096);
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let mut g = buf.resv().lock(None).unwrap();
    assert_eq!(att.pin(&mut g).unwrap_err(), DmaBufError::StaticPin);
}

#[test]
fn dynamic_pin_unpin_reach_the_exporter_and_balance() {
    let (dma, ops, buf) = setup(all_features(), false, 4096);
    let att = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), Arc::new(Recorder::default()))
        .unwrap();
    let mut g = buf.resv().lock(None).unwrap();
    att.pin(&mut g).unwrap();
    assert_eq!((count(&ops.counters.pin), att.pin_count()), (1, 1));
    att.unpin(&mut g).unwrap();
    assert_eq!(count(&ops.counters.unpin), 1);
    assert_eq!(
        att.unpin(&mut g).unwrap_err().errno(),
        Errno::EINVAL,
        "unpin without pin"
    );
}

#[test]
fn pin_without_exporter_pin_succeeds_doing_nothing() {
    let (dma, ops, buf) = setup(OpsFeatures::MMAP, false, 4096);
    let att = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), Arc::new(Recorder::default()))
        .unwrap();
    let mut g = buf.resv().lock(None).unwrap();
    att.pin(&mut g).unwrap();
    att.unpin(&mut g).unwrap();
    assert_eq!(
        (count(&ops.counters.pin), count(&ops.counters.unpin)),
        (0, 0)
    );
}

#[test]
fn device_sees_cpu_data_through_its_mapping_and_checker_stays_clean() {
    let (dma, _ops, buf) = setup_default();
    let m = buf.mmap(0, 4 * 4096, true).unwrap();
    buf.begin_cpu_access(DmaDirection::ToDevice).unwrap();
    m.write(4096 + 10, b"pixels").unwrap();
    buf.end_cpu_access(DmaDirection::ToDevice).unwrap();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let sgt = isp.map_unlocked(DmaDirection::ToDevice).unwrap();
    let mut got = [0u8; 6];
    dma.device_read(
        isp.device(),
        sgt.dma_address().unwrap().add(4096 + 10),
        &mut got,
    )
    .unwrap();
    assert_eq!(&got, b"pixels");
    isp.unmap_unlocked(sgt).unwrap();
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}
