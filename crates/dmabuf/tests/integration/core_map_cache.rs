//! The exporter-side mapping cache (seed 003) and buffer moves (seed 000, design step 5).

use crate::core_common::*;
use dmabuf::{Attachment, ImporterOps, MappedSgTable};
use fence::ResvGuard;
use parking_lot::Mutex;
use std::sync::Arc;
use uapi::{AsErrno, Errno};

#[test]
fn map_cache_hit_on_remap() {
    let (dma, ops, buf) = setup(all_features(), true, 16 * 4096);
    let att = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), Arc::new(Recorder::default()))
        .unwrap();
    let mut g = buf.resv().lock(None).unwrap();
    let first = att.map(&mut g, DmaDirection::Bidirectional).unwrap();
    let iova = first.dma_address();
    att.unmap(&mut g, first).unwrap();
    for _ in 0..10 {
        let again = att.map(&mut g, DmaDirection::Bidirectional).unwrap();
        assert_eq!(again.dma_address(), iova, "the same mapping, not a new one");
        att.unmap(&mut g, again).unwrap();
    }
    let cache = ops.cache().unwrap();
    assert_eq!((cache.misses(), cache.hits()), (1, 10));
    assert_eq!(
        dma.checker().live_mappings(Some("gpu0")).len(),
        1,
        "unmap of a cached table is not a real unmap"
    );
    // Another direction is another entry.
    let other = att.map(&mut g, DmaDirection::ToDevice).unwrap();
    assert_eq!(cache.misses(), 2);
    att.unmap(&mut g, other).unwrap();
    drop(g);
    buf.detach(att).unwrap();
    assert!(
        dma.checker().live_mappings(Some("gpu0")).is_empty(),
        "detach does the real unmap"
    );
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

/// A dynamic importer that keeps one mapping and gives it back on move_notify.
struct Holder {
    mapping: Mutex<Option<MappedSgTable>>,
    notified: std::sync::atomic::AtomicU64,
}

impl ImporterOps for Holder {
    fn move_notify(&self, att: &Attachment, resv: &mut ResvGuard<'_>) {
        self.notified
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(m) = self.mapping.lock().take() {
            att.unmap(resv, m).unwrap();
        }
    }
}

#[test]
fn map_cache_invalidated_on_move() {
    let (dma, ops, buf) = setup(all_features(), true, 8 * 4096);
    let holder = Arc::new(Holder {
        mapping: Mutex::new(None),
        notified: Default::default(),
    });
    let gpu = dma.device("gpu0").unwrap();
    let att = buf.dynamic_attach(&gpu, holder.clone()).unwrap();
    {
        let mut g = buf.resv().lock(None).unwrap();
        let m = att.map(&mut g, DmaDirection::Bidirectional).unwrap();
        dma.device_write(&gpu, m.dma_address().unwrap(), b"before the move")
            .unwrap();
        *holder.mapping.lock() = Some(m);
    }
    let old_page = ops.page_phys(0).unwrap();
    ops.migrate(&buf).unwrap();
    assert_eq!(holder.notified.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_ne!(ops.page_phys(0).unwrap(), old_page, "new storage");
    let cache = ops.cache().unwrap();
    assert_eq!(
        (cache.len(), cache.in_use()),
        (0, 0),
        "invalidated, really unmapped"
    );
    let mut g = buf.resv().lock(None).unwrap();
    let m = att.map(&mut g, DmaDirection::Bidirectional).unwrap();
    assert_eq!(cache.misses(), 2, "the re-map after a move is a miss");
    let mut got = [0u8; 15];
    dma.device_read(&gpu, m.dma_address().unwrap(), &mut got)
        .unwrap();
    assert_eq!(&got, b"before the move", "the bytes moved with the buffer");
    att.unmap(&mut g, m).unwrap();
    drop(g);
    drop(att);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn move_refused_while_static_importer_has_it_mapped() {
    let (dma, ops, buf) = setup(all_features(), true, 4096);
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let m = isp.map_unlocked(DmaDirection::ToDevice).unwrap();
    let before = ops.page_phys(0);
    assert_eq!(ops.migrate(&buf).unwrap_err().errno(), Errno::EBUSY);
    assert_eq!(ops.page_phys(0), before, "nothing changed");
    isp.unmap_unlocked(m).unwrap();
    ops.migrate(&buf).unwrap();
}

#[test]
fn invalidated_table_still_held_is_unmapped_when_given_back() {
    let (dma, ops, buf) = setup(all_features(), true, 4096);
    let rec = Arc::new(Recorder::default()); // ignores move_notify
    let att = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), rec)
        .unwrap();
    let mut g = buf.resv().lock(None).unwrap();
    let m = att.map(&mut g, DmaDirection::Bidirectional).unwrap();
    let cache = ops.cache().unwrap();
    buf.move_notify(&mut g).unwrap();
    cache.invalidate().unwrap();
    assert_eq!(
        (cache.len(), cache.in_use()),
        (0, 1),
        "held: a zombie, still mapped"
    );
    assert_eq!(dma.checker().live_mappings(Some("gpu0")).len(), 1);
    att.unmap(&mut g, m).unwrap();
    assert_eq!(cache.in_use(), 0);
    assert!(dma.checker().live_mappings(Some("gpu0")).is_empty());
}

/// `MapCacheOptions`: with `DMA_ATTR_SKIP_CPU_SYNC` the map does no cache maintenance, so what
/// the CPU left in its cache never reaches a non-coherent device unless `explicit_sync` syncs
/// the table for the device after the map.
#[test]
fn map_cache_skip_cpu_sync_needs_explicit_sync_for_a_non_coherent_device() {
    use dma::{DmaAttrs, FindingKind, SegmentLimits, SgTable};
    use dmabuf::{MapCache, MapCacheOptions};
    use soc::AllocRequest;
    for explicit_sync in [false, true] {
        let dma = dmabuf::testing::mock_dma();
        let isp = dma.device("isp0").unwrap();
        assert!(!isp.is_coherent());
        let buf = dmabuf::testing::MockExporter::new()
            .export(&dma, 4096)
            .unwrap();
        let att = buf.attach(&isp).unwrap();
        let page = dma
            .soc()
            .pages()
            .alloc_pages(&AllocRequest::new(0))
            .unwrap();
        dma.soc().cpu().write(page.addr, b"fresh").unwrap(); // dirty in the CPU cache
        let opts = MapCacheOptions {
            attrs: DmaAttrs::SKIP_CPU_SYNC,
            explicit_sync,
        };
        let cache = MapCache::with_options(&dma, opts);
        let limits = SegmentLimits::of_device(&isp).unwrap();
        let sgt = cache
            .map(&att, DmaDirection::ToDevice, || {
                Ok(SgTable::from_pages(std::slice::from_ref(&page), limits)?)
            })
            .unwrap();
        let mut got = [0u8; 5];
        dma.device_read(&isp, sgt.dma_address().unwrap(), &mut got)
            .unwrap();
        let stale = dma.checker().count(FindingKind::StaleCpuData);
        if explicit_sync {
            assert_eq!(&got, b"fresh");
            assert_eq!(stale, 0);
        } else {
            assert_ne!(
                &got, b"fresh",
                "the device read memory the CPU never cleaned"
            );
            assert_eq!(stale, 1);
        }
        cache.unmap(sgt).unwrap();
        cache.detach(&att).unwrap();
        assert!(dma.checker().live_mappings(Some("isp0")).is_empty());
        dma.free_pages(page).unwrap();
        buf.detach(att).unwrap();
    }
}

/// Rule 5: a table held across a move stays in use *at its epoch*, so an exporter knows when
/// the old storage it maps may go, while tables of the new epoch do not keep it.
#[test]
fn a_table_held_across_a_move_is_in_use_at_its_epoch_until_given_back() {
    let (dma, ops, buf) = setup(all_features(), true, 4096);
    let rec = Arc::new(Recorder::default()); // ignores move_notify: keeps its table
    let gpu = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), rec)
        .unwrap();
    let isp = buf
        .dynamic_attach(&dma.device("isp0").unwrap(), Arc::new(Recorder::default()))
        .unwrap();
    let mut g = buf.resv().lock(None).unwrap();
    let held = gpu.map(&mut g, DmaDirection::Bidirectional).unwrap();
    let cache = ops.cache().unwrap(); // made at the first map
    let old_epoch = cache.epoch();
    let given = isp.map(&mut g, DmaDirection::ToDevice).unwrap();
    isp.unmap(&mut g, given).unwrap();
    assert_eq!(cache.in_use_at(old_epoch), 1, "only the held one");
    cache.invalidate().unwrap();
    let new_epoch = cache.epoch();
    assert_eq!(new_epoch, old_epoch + 1);
    assert_eq!(cache.in_use_at(old_epoch), 1, "a zombie of the old epoch");
    let fresh = isp.map(&mut g, DmaDirection::ToDevice).unwrap();
    assert_eq!(cache.in_use_at(new_epoch), 1);
    assert_eq!(
        cache.in_use_at(old_epoch),
        1,
        "the new table is not the old one"
    );
    gpu.unmap(&mut g, held).unwrap();
    assert_eq!(
        cache.in_use_at(old_epoch),
        0,
        "given back: the old storage may go"
    );
    isp.unmap(&mut g, fresh).unwrap();
    assert_eq!(cache.in_use_at(new_epoch), 0);
    drop(g);
    buf.detach(gpu).unwrap();
    buf.detach(isp).unwrap();
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}
