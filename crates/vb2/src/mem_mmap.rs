//! MMAP memory: vb2 allocates the planes, user space maps them or exports them (EXPBUF).
//!
//! C side: `videobuf2-dma-contig.c` (`vb2_dc_alloc`, `vb2_dc_mmap`, `vb2_dc_get_dmabuf` and the
//! `vb2_dc_dmabuf_ops` exporter), `videobuf2-dma-sg.c` (page-list allocation).
//!
//! # Rules
//! 1. A coherent queue allocates with `dma_alloc_attrs` for the queue's device
//!    ([`DmaApi::alloc_attrs`]): the CPU reaches the memory uncached on a non-coherent device,
//!    so the cache "prepare"/"finish" memops do nothing.
//! 2. A queue with `V4L2_MEMORY_FLAG_NON_COHERENT` (cache hints allowed) allocates pages (one
//!    contiguous block for dma-contig or a device without IOMMU, single pages otherwise) and maps
//!    them with a streaming mapping for the queue's direction: the CPU mapping is cached, and
//!    "prepare" syncs for the device, "finish" for the CPU. A driver or application that skips
//!    them sees stale bytes.
//! 3. The memory is reference counted ([`MmapMem`] in an `Arc`): the queue holds one reference,
//!    each [`Vb2Mapping`] and each exported dma-buf another. REQBUFS(0) drops the queue's; the
//!    memory is freed when the last mmap or dma-buf goes ("orphaned buffers", d644cca50f36).
//! 4. EXPBUF exports a **new** dma-buf each call ([`Vb2Exporter`]); its `map_dma_buf` keeps the
//!    mapping per attachment and direction, its `unmap_dma_buf` does nothing, and the real unmap
//!    happens at detach (a [`MapCache`]).

use crate::Vb2Error;
use dma::{
    DmaApi, DmaAttrs, DmaBuffer, DmaDirection, DmaSegment, SegmentLimits, SgBacking, SgTable,
};
use dmabuf::{
    Attachment, DmaBuf, DmaBufError, DmaBufOps, FaultPage, MapCache, OpsFeatures, ReleaseInfo,
};
use fence::ResvGuard;
use soc::{AllocRequest, Device, Page, PhysAddr, MAX_ORDER, PAGE_SIZE};
use std::sync::Arc;
use uapi::Errno;

enum Storage {
    /// Rule 1: a coherent allocation, uncached for the CPU.
    Coherent(DmaBuffer),
    /// Rule 2: pages with a streaming mapping for the queue's device.
    Streaming { pages: Vec<Page>, sgt: SgTable },
}

/// The memory of one MMAP plane (`struct vb2_dc_buf` / `vb2_dma_sg_buf`), shared by the queue,
/// mmaps and exported dma-bufs (rule 3).
pub struct MmapMem {
    dma: Arc<DmaApi>,
    dev: Arc<Device>,
    dir: DmaDirection,
    size: u64,
    runs: Vec<(PhysAddr, u64)>,
    storage: Option<Storage>,
}

impl std::fmt::Debug for MmapMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmapMem")
            .field("device", &self.dev.name())
            .field("size", &self.size)
            .field("coherent", &self.is_coherent())
            .finish()
    }
}

impl MmapMem {
    /// Allocates `size` bytes (rounded up to pages) for `dev` (rules 1-2).
    pub(crate) fn alloc(
        dma: &Arc<DmaApi>,
        dev: &Arc<Device>,
        dir: DmaDirection,
        size: u64,
        non_coherent: bool,
        contiguous: bool,
    ) -> Result<MmapMem, Vb2Error> {
        let size = size.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE;
        let storage = if non_coherent {
            Self::alloc_streaming(dma, dev, dir, size, contiguous)?
        } else {
            let attrs = if contiguous {
                DmaAttrs::FORCE_CONTIGUOUS
            } else {
                DmaAttrs::NONE
            };
            Storage::Coherent(dma.alloc_attrs(dev, size, attrs)?)
        };
        let runs = match &storage {
            Storage::Coherent(b) => b
                .sg_table()
                .entries()
                .iter()
                .map(|e| (e.phys, e.len))
                .collect(),
            Storage::Streaming { sgt, .. } => {
                sgt.entries().iter().map(|e| (e.phys, e.len)).collect()
            }
        };
        Ok(MmapMem {
            dma: dma.clone(),
            dev: dev.clone(),
            dir,
            size,
            runs,
            storage: Some(storage),
        })
    }

    fn alloc_streaming(
        dma: &Arc<DmaApi>,
        dev: &Arc<Device>,
        dir: DmaDirection,
        size: u64,
        contiguous: bool,
    ) -> Result<Storage, Vb2Error> {
        let soc = dma.soc();
        let npages = size / PAGE_SIZE;
        let direct = dev.iommu_domain().is_none();
        let mut req = AllocRequest::new(0);
        if direct {
            req = req.below(dev.dma_mask());
        }
        let mut pages = Vec::new();
        let undo = |pages: Vec<Page>| {
            for p in pages {
                let _ = soc.free_pages(p);
            }
        };
        if contiguous || direct || dev.needs_contiguous() {
            let order = npages.next_power_of_two().trailing_zeros();
            if order > MAX_ORDER {
                return Err(Vb2Error::new(
                    Errno::ENOMEM,
                    format!("{npages} contiguous pages"),
                ));
            }
            pages.push(soc.pages().alloc_pages(&AllocRequest { order, ..req })?);
        } else {
            for _ in 0..npages {
                match soc.pages().alloc_pages(&req) {
                    Ok(p) => pages.push(p),
                    Err(e) => {
                        undo(pages);
                        return Err(e.into());
                    }
                }
            }
        }
        // The table covers exactly `size` bytes, even from a larger block.
        let mut ranges = Vec::new();
        let mut left = size;
        for p in &pages {
            let n = p.size().min(left);
            ranges.push((p.addr, n));
            left -= n;
        }
        let built = (|| -> Result<SgTable, Vb2Error> {
            for &(pa, len) in &ranges {
                soc.cpu().invalidate(pa, len)?;
                soc.mem().fill(pa, len, 0)?;
            }
            let mut sgt =
                SgTable::from_ranges(&ranges, SgBacking::Pages, SegmentLimits::of_device(dev)?)?;
            dma.map_sg(dev, &mut sgt, dir, DmaAttrs::NONE)?;
            Ok(sgt)
        })();
        match built {
            Ok(sgt) => Ok(Storage::Streaming { pages, sgt }),
            Err(e) => {
                undo(pages);
                Err(e)
            }
        }
    }

    /// The physical runs of the plane's memory, in plane order.
    pub fn phys_runs(&self) -> &[(PhysAddr, u64)] {
        &self.runs
    }

    /// Bytes allocated (page aligned).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the CPU mapping is uncached (rule 1), so no cache maintenance is needed.
    pub fn is_coherent(&self) -> bool {
        matches!(self.storage, Some(Storage::Coherent(_)))
    }

    /// The DMA segments for the queue's device.
    pub(crate) fn segments(&self) -> Vec<DmaSegment> {
        match &self.storage {
            Some(Storage::Coherent(b)) => b
                .handle(self.dev.name())
                .map(|h| h.sg_table().dma_segments().to_vec())
                .unwrap_or_default(),
            Some(Storage::Streaming { sgt, .. }) => sgt.dma_segments().to_vec(),
            None => Vec::new(),
        }
    }

    /// The memop "prepare": hand the buffer to the device (rule 2; nothing for coherent memory).
    pub(crate) fn prepare(&self) -> Result<(), Vb2Error> {
        if let Some(Storage::Streaming { sgt, .. }) = &self.storage {
            self.dma.sync_sg_for_device(&self.dev, sgt, self.dir)?;
        }
        Ok(())
    }

    /// The memop "finish": hand the buffer back to the CPU (rule 2).
    pub(crate) fn finish(&self) -> Result<(), Vb2Error> {
        if let Some(Storage::Streaming { sgt, .. }) = &self.storage {
            self.dma.sync_sg_for_cpu(&self.dev, sgt, self.dir)?;
        }
        Ok(())
    }

    fn each_run(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(PhysAddr, usize, usize) -> Result<(), soc::SocError>,
    ) -> Result<(), Vb2Error> {
        if offset.checked_add(len).is_none_or(|e| e > self.size) {
            return Err(Vb2Error::new(
                Errno::EFAULT,
                format!(
                    "CPU access {offset:#x}+{len:#x} outside {:#x} bytes",
                    self.size
                ),
            ));
        }
        let (mut start, mut done) = (0u64, 0u64);
        for &(pa, rlen) in &self.runs {
            let pos = offset + done;
            if done < len && pos >= start && pos < start + rlen {
                let n = (start + rlen - pos).min(len - done);
                f(pa.add(pos - start), done as usize, n as usize)?;
                done += n;
            }
            start += rlen;
        }
        Ok(())
    }

    /// A CPU load through the user mapping (uncached for coherent memory, cached otherwise).
    pub(crate) fn cpu_read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Vb2Error> {
        let cpu = self.dma.soc().cpu();
        let uncached = self.uncached_cpu();
        let mut pieces = Vec::new();
        self.each_run(offset, buf.len() as u64, |pa, at, n| {
            pieces.push((pa, at, n));
            Ok(())
        })?;
        for (pa, at, n) in pieces {
            let part = &mut buf[at..at + n];
            if uncached {
                cpu.read_uncached(pa, part)?;
            } else {
                cpu.read(pa, part)?;
            }
        }
        Ok(())
    }

    /// A CPU store through the user mapping.
    pub(crate) fn cpu_write(&self, offset: u64, data: &[u8]) -> Result<(), Vb2Error> {
        let cpu = self.dma.soc().cpu();
        let uncached = self.uncached_cpu();
        self.each_run(offset, data.len() as u64, |pa, at, n| {
            if uncached {
                cpu.write_uncached(pa, &data[at..at + n])
            } else {
                cpu.write(pa, &data[at..at + n])
            }
        })
    }

    /// Whether the CPU reaches the memory uncached: coherent memory of a non-coherent device.
    fn uncached_cpu(&self) -> bool {
        self.is_coherent() && !self.dev.is_coherent()
    }

    fn page_at(&self, pgoff: u64) -> Option<PhysAddr> {
        let mut off = pgoff.checked_mul(PAGE_SIZE)?;
        for &(pa, len) in &self.runs {
            if off < len {
                return Some(pa.add(off));
            }
            off -= len;
        }
        None
    }
}

impl Drop for MmapMem {
    fn drop(&mut self) {
        // The last reference (rule 3). Errors here were reported to the checker already; a
        // release cannot fail, as in the kernel.
        match self.storage.take() {
            Some(Storage::Coherent(b)) => {
                let _ = self.dma.free_attrs(b);
            }
            Some(Storage::Streaming { pages, mut sgt }) => {
                let _ = self
                    .dma
                    .unmap_sg(&self.dev, &mut sgt, self.dir, DmaAttrs::NONE);
                for p in pages {
                    let _ = self.dma.soc().free_pages(p);
                }
            }
            None => {}
        }
    }
}

/// A user-space mmap of an MMAP plane (`vb2_mmap`): holds a reference on the plane memory, so
/// the memory outlives REQBUFS(0) until the mapping is dropped (rule 3).
#[derive(Clone, Debug)]
pub struct Vb2Mapping {
    mem: Arc<MmapMem>,
    len: u64,
    writable: bool,
}

impl Vb2Mapping {
    pub(crate) fn new(mem: Arc<MmapMem>, len: u64, writable: bool) -> Vb2Mapping {
        Vb2Mapping { mem, len, writable }
    }

    /// Length of the mapping.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the mapping is empty (never: mmap refuses length 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Loads from the mapping (`EFAULT` outside it).
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Vb2Error> {
        self.check(offset, buf.len() as u64)?;
        self.mem.cpu_read(offset, buf)
    }

    /// Stores into the mapping (`EFAULT` outside it or without `PROT_WRITE`).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), Vb2Error> {
        if !self.writable {
            return Err(Vb2Error::new(Errno::EFAULT, "write to a read-only mapping"));
        }
        self.check(offset, data.len() as u64)?;
        self.mem.cpu_write(offset, data)
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), Vb2Error> {
        if offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(Vb2Error::new(
                Errno::EFAULT,
                format!(
                    "SIGSEGV: {offset:#x}+{len:#x} outside a mapping of {:#x}",
                    self.len
                ),
            ));
        }
        Ok(())
    }
}

/// The exporter of EXPBUF dma-bufs (`vb2_dc_dmabuf_ops`, rule 4). One per exported dma-buf;
/// holds a reference on the plane memory until the dma-buf is released.
pub struct Vb2Exporter {
    mem: Arc<MmapMem>,
    cache: MapCache,
}

impl std::fmt::Debug for Vb2Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vb2Exporter")
            .field("mem", &self.mem)
            .finish()
    }
}

impl Vb2Exporter {
    pub(crate) fn new(mem: Arc<MmapMem>) -> Arc<Vb2Exporter> {
        let cache = MapCache::new(&mem.dma);
        Arc::new(Vb2Exporter { mem, cache })
    }

    /// The plane memory this dma-buf exports.
    pub fn mem(&self) -> &Arc<MmapMem> {
        &self.mem
    }

    /// The mapping cache of this dma-buf (hits and misses of importers' maps).
    pub fn map_cache(&self) -> &MapCache {
        &self.cache
    }
}

impl DmaBufOps for Vb2Exporter {
    fn features(&self) -> OpsFeatures {
        OpsFeatures::MMAP
    }

    fn detach(&self, _buf: &DmaBuf, att: &Attachment) {
        // The real unmap of this attachment's tables (rule 4); failures went to the checker.
        let _ = self.cache.detach(att);
    }

    fn map_dma_buf(
        &self,
        att: &Attachment,
        dir: DmaDirection,
        _resv: &mut ResvGuard<'_>,
    ) -> Result<Arc<SgTable>, DmaBufError> {
        self.cache.map(att, dir, || {
            Ok(SgTable::from_ranges(
                &self.mem.runs,
                SgBacking::Pages,
                SegmentLimits::of_device(att.device())?,
            )?)
        })
    }

    fn unmap_dma_buf(
        &self,
        _att: &Attachment,
        sgt: Arc<SgTable>,
        _dir: DmaDirection,
        _resv: &mut ResvGuard<'_>,
    ) -> Result<(), DmaBufError> {
        self.cache.unmap(sgt)
    }

    fn release(&self, _info: &ReleaseInfo) {
        // The plane reference goes with `self` when the core drops the ops.
    }

    fn begin_cpu_access(&self, _buf: &DmaBuf, _dir: DmaDirection) -> Result<(), DmaBufError> {
        self.cache.sync_for_cpu()?;
        self.mem
            .finish()
            .map_err(|e| DmaBufError::exporter(e.errno(), e.to_string()))
    }

    fn end_cpu_access(&self, _buf: &DmaBuf, _dir: DmaDirection) -> Result<(), DmaBufError> {
        self.cache.sync_for_device()?;
        self.mem
            .prepare()
            .map_err(|e| DmaBufError::exporter(e.errno(), e.to_string()))
    }

    fn mmap_fault(&self, buf: &DmaBuf, pgoff: u64) -> Result<FaultPage, DmaBufError> {
        let pa = self.mem.page_at(pgoff).ok_or_else(|| {
            DmaBufError::Fault(format!("SIGBUS: page {pgoff} past {}", buf.exp_name()))
        })?;
        // Coherent memory is mapped write-combined, as `dma_mmap_attrs` maps it.
        Ok(if self.mem.uncached_cpu() {
            FaultPage::iomem(pa)
        } else {
            FaultPage::ram(pa)
        })
    }
}
