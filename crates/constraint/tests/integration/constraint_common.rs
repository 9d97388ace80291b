//! Helpers of the `constraint_*` tests: device traffic through real mappings, checksums, page
//! accounting, a dynamic importer that re-maps after `move_notify`.

use dma::{DmaApi, DmaDirection};
use dmabuf::{Attachment, ImporterOps, MappedSgTable};
use fence::ResvGuard;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// FNV-1a, to compare frames.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A deterministic frame: `len` bytes depending on `seed`.
pub fn frame(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The device writes `data` at byte 0 of a mapped table, segment by segment.
pub fn write_through(dma: &DmaApi, att: &Attachment, sgt: &MappedSgTable, data: &[u8]) {
    let mut done = 0usize;
    for s in sgt.dma_segments() {
        if done == data.len() {
            break;
        }
        let n = (s.len as usize).min(data.len() - done);
        dma.device_write(att.device(), s.addr, &data[done..done + n])
            .unwrap();
        done += n;
    }
    assert_eq!(done, data.len(), "the table covers the data");
}

/// The device reads `len` bytes from byte 0 of a mapped table.
pub fn read_through(dma: &DmaApi, att: &Attachment, sgt: &MappedSgTable, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut done = 0usize;
    for s in sgt.dma_segments() {
        if done == len {
            break;
        }
        let n = (s.len as usize).min(len - done);
        dma.device_read(att.device(), s.addr, &mut out[done..done + n])
            .unwrap();
        done += n;
    }
    out
}

/// Maps, writes `data`, unmaps (a producer's frame).
pub fn produce(dma: &DmaApi, att: &Attachment, data: &[u8]) {
    let sgt = att.map_unlocked(DmaDirection::Bidirectional).unwrap();
    write_through(dma, att, &sgt, data);
    att.unmap_unlocked(sgt).unwrap();
}

/// Maps for reading, reads `len` bytes, unmaps (a consumer's frame).
pub fn consume(dma: &DmaApi, att: &Attachment, len: usize) -> Vec<u8> {
    let sgt = att.map_unlocked(DmaDirection::ToDevice).unwrap();
    let got = read_through(dma, att, &sgt, len);
    att.unmap_unlocked(sgt).unwrap();
    got
}

/// Free pages per zone and CMA pages in use: what must balance at the end of a test.
pub fn page_accounting(dma: &DmaApi) -> (Vec<u64>, Vec<u64>) {
    let soc = dma.soc();
    let stats = soc.pages().stats();
    (
        stats.zones.iter().map(|z| z.free_pages).collect(),
        soc.pages().cma_regions().iter().map(|r| r.used).collect(),
    )
}

/// Asserts the DMA checker saw nothing.
pub fn assert_clean(dma: &DmaApi) {
    assert_eq!(dma.checker().total(), 0, "{:#?}", dma.checker().findings());
}

/// A dynamic importer that keeps one mapping and drops it in `move_notify` (or ignores the
/// notification if `ignore` is set).
#[derive(Default)]
pub struct Remapper {
    /// The mapping it holds.
    pub table: Mutex<Option<MappedSgTable>>,
    /// `move_notify` calls.
    pub notified: AtomicU64,
    /// Keep the stale mapping (a buggy importer).
    pub ignore: AtomicBool,
}

impl Remapper {
    /// A shared importer.
    pub fn new() -> Arc<Remapper> {
        Arc::new(Remapper::default())
    }

    /// Maps for reading (if it has no mapping) and reads `len` bytes.
    pub fn read(&self, dma: &DmaApi, att: &Attachment, len: usize) -> Vec<u8> {
        let mut g = att.dmabuf().resv().lock(None).unwrap();
        let mut t = self.table.lock();
        if t.is_none() {
            *t = Some(att.map(&mut g, DmaDirection::ToDevice).unwrap());
        }
        read_through(dma, att, t.as_ref().unwrap(), len)
    }

    /// Gives its mapping back, if any.
    pub fn release(&self, att: &Attachment) {
        if let Some(t) = self.table.lock().take() {
            att.unmap_unlocked(t).unwrap();
        }
    }
}

impl ImporterOps for Remapper {
    fn move_notify(&self, att: &Attachment, resv: &mut ResvGuard<'_>) {
        self.notified.fetch_add(1, Ordering::SeqCst);
        if self.ignore.load(Ordering::SeqCst) {
            return;
        }
        if let Some(t) = self.table.lock().take() {
            att.unmap(resv, t).unwrap();
        }
    }
}
