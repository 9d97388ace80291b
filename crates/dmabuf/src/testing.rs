//! A small exporter for tests, examples and benches (the selftests' mock ops).
//!
//! [`MockExporter`] allocates system pages on first use (map, CPU fault or vmap), where every
//! attached device can reach them (below the smallest DMA mask of the devices without an IOMMU,
//! one contiguous block if one of them needs it), counts every callback, can be told to fail
//! some of them, can move its buffer ([`MockExporter::migrate`]) the way seed 000 describes,
//! and optionally caches mappings in a [`MapCache`]. Pages are not zero-filled (heaps do that).

use crate::attach::Attachment;
use crate::buf::{DmaBuf, ExportInfo};
use crate::error::DmaBufError;
use crate::map_cache::MapCache;
use crate::ops::{DmaBufOps, FaultPage, IosysMap, OpsFeatures, ReleaseInfo};
use dma::{DmaApi, DmaDirection, SegmentLimits, SgTable};
use fence::ResvGuard;
use parking_lot::Mutex;
use soc::{AllocRequest, Page, PhysAddr, Soc, SocDesc, MAX_ORDER, PAGE_SHIFT, PAGE_SIZE};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use uapi::Errno;

/// The DMA API of a fresh default SoC (`SocDesc::default_soc()`).
pub fn mock_dma() -> Arc<DmaApi> {
    let soc = Soc::new(SocDesc::default_soc()).expect("the default SoC description is valid");
    Arc::new(DmaApi::new(&soc))
}

/// How many times each callback of a [`MockExporter`] ran.
#[derive(Default, Debug)]
pub struct MockCounters {
    /// `attach` calls (refused ones included).
    pub attach: AtomicU64,
    /// `detach` calls.
    pub detach: AtomicU64,
    /// `pin` calls.
    pub pin: AtomicU64,
    /// `unpin` calls.
    pub unpin: AtomicU64,
    /// `map_dma_buf` calls.
    pub map: AtomicU64,
    /// `unmap_dma_buf` calls.
    pub unmap: AtomicU64,
    /// `release` calls.
    pub release: AtomicU64,
    /// `begin_cpu_access` calls.
    pub begin_cpu: AtomicU64,
    /// `end_cpu_access` calls.
    pub end_cpu: AtomicU64,
    /// `mmap` calls.
    pub mmap: AtomicU64,
    /// `mmap_fault` calls.
    pub fault: AtomicU64,
    /// `vmap` calls.
    pub vmap: AtomicU64,
    /// `vunmap` calls.
    pub vunmap: AtomicU64,
    /// Storage allocations (first use and migrations).
    pub alloc: AtomicU64,
}

impl MockCounters {
    /// Reads one counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

struct Storage {
    blocks: Vec<Page>,
    /// Physical address of every page, in buffer order.
    pages: Vec<PhysAddr>,
    /// Unmapped tables of the storage, per device limits.
    templates: Vec<(SegmentLimits, SgTable)>,
}

/// Callbacks a test can make fail.
#[derive(Default, Clone, Copy, Debug)]
pub struct MockFailures {
    /// `attach` fails with this errno.
    pub attach: Option<Errno>,
    /// `pin` fails with this errno.
    pub pin: Option<Errno>,
    /// `map_dma_buf` fails with this errno.
    pub map: Option<Errno>,
    /// `begin_cpu_access` fails with this errno.
    pub begin_cpu: Option<Errno>,
    /// `vmap` fails with this errno.
    pub vmap: Option<Errno>,
    /// `mmap` fails with this errno.
    pub mmap: Option<Errno>,
}

/// The test exporter (module doc).
pub struct MockExporter {
    features: OpsFeatures,
    cached: bool,
    dma: OnceLock<Arc<DmaApi>>,
    cache: OnceLock<MapCache>,
    storage: Mutex<Option<Storage>>,
    /// Callback counts.
    pub counters: MockCounters,
    /// Failure injection.
    pub fail: Mutex<MockFailures>,
    /// Attachments the exporter was told about and not yet told to forget (ids).
    pub attached: Mutex<HashMap<u64, String>>,
}

impl MockExporter {
    /// A static exporter with `MMAP | VMAP`, without a cache.
    pub fn new() -> Arc<MockExporter> {
        Self::with(OpsFeatures::MMAP | OpsFeatures::VMAP, false)
    }

    /// An exporter declaring `features`, caching mappings if `cached`.
    pub fn with(features: OpsFeatures, cached: bool) -> Arc<MockExporter> {
        Arc::new(MockExporter {
            features,
            cached,
            dma: OnceLock::new(),
            cache: OnceLock::new(),
            storage: Mutex::new(None),
            counters: MockCounters::default(),
            fail: Mutex::new(MockFailures::default()),
            attached: Mutex::new(HashMap::new()),
        })
    }

    /// Exports a buffer of `size` bytes with these ops.
    pub fn export(self: &Arc<Self>, dma: &Arc<DmaApi>, size: u64) -> Result<DmaBuf, DmaBufError> {
        let _ = self.dma.set(dma.clone());
        DmaBuf::export(dma, ExportInfo::new("mock", size, self.clone()))
    }

    /// The mapping cache, once the exporter knows its DMA API (cached exporters only).
    pub fn cache(&self) -> Option<&MapCache> {
        if self.cached {
            self.cache.get()
        } else {
            None
        }
    }

    /// Physical address of page `index` of the storage, if allocated.
    pub fn page_phys(&self, index: u64) -> Option<PhysAddr> {
        self.storage
            .lock()
            .as_ref()
            .and_then(|s| s.pages.get(index as usize).copied())
    }

    /// Whether storage is allocated.
    pub fn has_storage(&self) -> bool {
        self.storage.lock().is_some()
    }

    fn dma_of(&self, buf: &DmaBuf) -> Arc<DmaApi> {
        self.dma.get_or_init(|| buf.dma().clone()).clone()
    }

    fn map_cache(&self, buf: &DmaBuf) -> &MapCache {
        self.cache.get_or_init(|| MapCache::new(&self.dma_of(buf)))
    }

    /// Allocates storage every attached device can reach (caller holds the storage lock).
    fn alloc(&self, buf: &DmaBuf) -> Result<Storage, DmaBufError> {
        let dma = self.dma_of(buf);
        let npages = buf.size().div_ceil(PAGE_SIZE);
        if npages == 0 {
            return Err(DmaBufError::InvalidArgument(
                "buffer of size 0 has no storage".into(),
            ));
        }
        let mut limit = u64::MAX;
        let mut contig = false;
        for att in buf.attachments() {
            let d = att.device();
            if d.iommu_domain().is_none() {
                limit = limit.min(d.dma_mask());
                contig |= d.needs_contiguous();
            }
        }
        let soc = dma.soc();
        let mut blocks: Vec<Page> = Vec::new();
        let undo = |blocks: Vec<Page>| {
            for b in blocks {
                let _ = dma.free_pages(b);
            }
        };
        if contig {
            let order = npages.next_power_of_two().trailing_zeros();
            if order > MAX_ORDER {
                return Err(DmaBufError::NoMemory(format!("{npages} contiguous pages")));
            }
            blocks.push(
                soc.pages()
                    .alloc_pages(&AllocRequest::new(order).below(limit))?,
            );
        } else {
            let mut left = npages;
            while left > 0 {
                let mut got = None;
                for order in [8u32, 4, 0] {
                    if (1u64 << order) > left && order > 0 {
                        continue;
                    }
                    if let Ok(p) = soc
                        .pages()
                        .alloc_pages(&AllocRequest::new(order).below(limit))
                    {
                        got = Some(p);
                        break;
                    }
                }
                match got {
                    Some(p) => {
                        left -= p.pages();
                        blocks.push(p);
                    }
                    None => {
                        undo(blocks);
                        return Err(DmaBufError::NoMemory(format!(
                            "{npages} pages below {limit:#x}"
                        )));
                    }
                }
            }
        }
        let mut pages = Vec::with_capacity(npages as usize);
        'outer: for b in &blocks {
            for i in 0..b.pages() {
                if pages.len() as u64 == npages {
                    break 'outer;
                }
                pages.push(b.addr.add(i << PAGE_SHIFT));
            }
        }
        self.counters.alloc.fetch_add(1, Ordering::Relaxed);
        Ok(Storage {
            blocks,
            pages,
            templates: Vec::new(),
        })
    }

    fn with_storage<T>(
        &self,
        buf: &DmaBuf,
        f: impl FnOnce(&mut Storage) -> Result<T, DmaBufError>,
    ) -> Result<T, DmaBufError> {
        let mut st = self.storage.lock();
        if st.is_none() {
            *st = Some(self.alloc(buf)?);
        }
        f(st.as_mut().expect("allocated above"))
    }

    fn build_table(&self, att: &Attachment) -> Result<SgTable, DmaBufError> {
        let limits = SegmentLimits::of_device(att.device())?;
        let size = att.dmabuf().size();
        self.with_storage(att.dmabuf(), |s| {
            if let Some((_, t)) = s.templates.iter().find(|(l, _)| *l == limits) {
                return Ok(t.dup());
            }
            let ranges = runs(&s.pages, size);
            let t = SgTable::from_ranges(&ranges, dma::SgBacking::Pages, limits)?;
            let out = t.dup();
            s.templates.push((limits, t));
            Ok(out)
        })
    }

    /// Moves the buffer to new pages (seed 000, design step 5): dynamic importers are told
    /// (`move_notify`), cached mappings dropped, CPU mappings zapped, the bytes copied, the old
    /// pages freed. `EBUSY` if a static importer still has it mapped, or a mapping is still held,
    /// or it is pinned; then nothing changes. Takes the resv lock.
    pub fn migrate(&self, buf: &DmaBuf) -> Result<(), DmaBufError> {
        let mut g = buf.resv().lock(None)?;
        self.migrate_locked(buf, &mut g)
    }

    /// [`migrate`](Self::migrate) with the resv lock held.
    pub fn migrate_locked(
        &self,
        buf: &DmaBuf,
        resv: &mut ResvGuard<'_>,
    ) -> Result<(), DmaBufError> {
        if self.storage.lock().is_none() {
            return Ok(()); // nothing to move yet
        }
        for a in buf.attachments() {
            if (!a.is_dynamic() && a.mapped_count() > 0) || a.pin_count() > 0 {
                return Err(DmaBufError::Busy(format!(
                    "{} holds a pinned mapping",
                    a.device().name()
                )));
            }
        }
        buf.move_notify(resv)?;
        if let Some(c) = self.cache() {
            c.invalidate()?;
            if c.in_use() > 0 {
                return Err(DmaBufError::Busy(
                    "a mapping is still held after move_notify".into(),
                ));
            }
        }
        if buf.attachments().iter().any(|a| a.mapped_count() > 0) {
            return Err(DmaBufError::Busy(
                "a mapping is still held after move_notify".into(),
            ));
        }
        let dma = self.dma_of(buf);
        let mut st = self.storage.lock();
        // Zap first so no CPU store lands in the old pages during the copy; faults wait for
        // the storage lock and then see the new pages.
        buf.zap_mappings();
        let old = st.take().expect("checked above");
        let new = match self.alloc(buf) {
            Ok(n) => n,
            Err(e) => {
                *st = Some(old);
                return Err(e);
            }
        };
        let cpu = dma.soc().cpu();
        let mut page = vec![0u8; PAGE_SIZE as usize];
        for (o, n) in old.pages.iter().zip(&new.pages) {
            cpu.flush(*o, PAGE_SIZE)?;
            cpu.read_uncached(*o, &mut page)?;
            cpu.write_uncached(*n, &page)?;
        }
        *st = Some(new);
        drop(st);
        for b in old.blocks {
            dma.free_pages(b)?;
        }
        Ok(())
    }
}

/// Physically contiguous runs of `pages`, covering `size` bytes.
fn runs(pages: &[PhysAddr], size: u64) -> Vec<(PhysAddr, u64)> {
    let mut out: Vec<(PhysAddr, u64)> = Vec::new();
    let mut left = size;
    for &p in pages {
        let n = left.min(PAGE_SIZE);
        match out.last_mut() {
            Some((s, l)) if s.0 + *l == p.0 => *l += n,
            _ => out.push((p, n)),
        }
        left -= n;
    }
    out
}

fn fail(e: Option<Errno>, what: &str) -> Result<(), DmaBufError> {
    match e {
        Some(errno) => Err(DmaBufError::exporter(errno, format!("mock {what} refused"))),
        None => Ok(()),
    }
}

impl DmaBufOps for MockExporter {
    fn features(&self) -> OpsFeatures {
        self.features
    }

    fn attach(&self, buf: &DmaBuf, att: &Attachment) -> Result<(), DmaBufError> {
        self.counters.attach.fetch_add(1, Ordering::Relaxed);
        let _ = self.dma_of(buf);
        fail(self.fail.lock().attach, "attach")?;
        self.attached
            .lock()
            .insert(att.id(), att.device().name().to_string());
        Ok(())
    }

    fn detach(&self, _buf: &DmaBuf, att: &Attachment) {
        self.counters.detach.fetch_add(1, Ordering::Relaxed);
        self.attached.lock().remove(&att.id());
        if let Some(c) = self.cache() {
            let _ = c.detach(att);
        }
    }

    fn pin(&self, _att: &Attachment, _resv: &mut ResvGuard<'_>) -> Result<(), DmaBufError> {
        self.counters.pin.fetch_add(1, Ordering::Relaxed);
        fail(self.fail.lock().pin, "pin")
    }

    fn unpin(&self, _att: &Attachment, _resv: &mut ResvGuard<'_>) {
        self.counters.unpin.fetch_add(1, Ordering::Relaxed);
    }

    fn map_dma_buf(
        &self,
        att: &Attachment,
        dir: DmaDirection,
        _resv: &mut ResvGuard<'_>,
    ) -> Result<Arc<SgTable>, DmaBufError> {
        self.counters.map.fetch_add(1, Ordering::Relaxed);
        fail(self.fail.lock().map, "map")?;
        if self.cached {
            return self
                .map_cache(att.dmabuf())
                .map(att, dir, || self.build_table(att));
        }
        let mut sgt = self.build_table(att)?;
        self.dma_of(att.dmabuf())
            .map_sg(att.device(), &mut sgt, dir, dma::DmaAttrs::NONE)?;
        Ok(Arc::new(sgt))
    }

    fn unmap_dma_buf(
        &self,
        att: &Attachment,
        sgt: Arc<SgTable>,
        dir: DmaDirection,
        _resv: &mut ResvGuard<'_>,
    ) -> Result<(), DmaBufError> {
        self.counters.unmap.fetch_add(1, Ordering::Relaxed);
        if self.cached {
            return self.map_cache(att.dmabuf()).unmap(sgt);
        }
        match Arc::try_unwrap(sgt) {
            Ok(mut t) => {
                self.dma_of(att.dmabuf()).unmap_sg(
                    att.device(),
                    &mut t,
                    dir,
                    dma::DmaAttrs::NONE,
                )?;
                Ok(())
            }
            Err(_) => Err(DmaBufError::InvalidArgument(
                "table still shared at unmap".into(),
            )),
        }
    }

    fn release(&self, _info: &ReleaseInfo) {
        self.counters.release.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.cache() {
            let _ = c.invalidate();
        }
        if let (Some(st), Some(dma)) = (self.storage.lock().take(), self.dma.get()) {
            for b in st.blocks {
                let _ = dma.free_pages(b);
            }
        }
    }

    fn begin_cpu_access(&self, buf: &DmaBuf, dir: DmaDirection) -> Result<(), DmaBufError> {
        self.counters.begin_cpu.fetch_add(1, Ordering::Relaxed);
        fail(self.fail.lock().begin_cpu, "begin_cpu_access")?;
        match self.cache() {
            Some(c) => c.sync_for_cpu(),
            None => buf.sync_for_cpu_all_attachments(dir),
        }
    }

    fn end_cpu_access(&self, buf: &DmaBuf, dir: DmaDirection) -> Result<(), DmaBufError> {
        self.counters.end_cpu.fetch_add(1, Ordering::Relaxed);
        match self.cache() {
            Some(c) => c.sync_for_device(),
            None => buf.sync_for_device_all_attachments(dir),
        }
    }

    fn mmap(
        &self,
        _buf: &DmaBuf,
        _pgoff: u64,
        _npages: u64,
        _writable: bool,
    ) -> Result<(), DmaBufError> {
        self.counters.mmap.fetch_add(1, Ordering::Relaxed);
        fail(self.fail.lock().mmap, "mmap")
    }

    fn mmap_fault(&self, buf: &DmaBuf, pgoff: u64) -> Result<FaultPage, DmaBufError> {
        self.counters.fault.fetch_add(1, Ordering::Relaxed);
        self.with_storage(buf, |s| {
            s.pages
                .get(pgoff as usize)
                .map(|&p| FaultPage::ram(p))
                .ok_or_else(|| DmaBufError::Fault(format!("page {pgoff} beyond the buffer")))
        })
    }

    fn vmap(&self, buf: &DmaBuf, _resv: &mut ResvGuard<'_>) -> Result<IosysMap, DmaBufError> {
        self.counters.vmap.fetch_add(1, Ordering::Relaxed);
        fail(self.fail.lock().vmap, "vmap")?;
        let size = buf.size();
        self.with_storage(buf, |s| {
            Ok(IosysMap {
                ranges: runs(&s.pages, size),
                is_iomem: false,
            })
        })
    }

    fn vunmap(&self, _buf: &DmaBuf, _map: &IosysMap, _resv: &mut ResvGuard<'_>) {
        self.counters.vunmap.fetch_add(1, Ordering::Relaxed);
    }
}
