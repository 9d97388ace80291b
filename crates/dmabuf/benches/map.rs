//! Mapping and CPU-access costs of the dma-buf core (issue 4's measurements).
//!
//! - `remap/cached`: map + unmap (both, per iteration) of an attachment whose exporter caches the
//!   mapping in a `MapCache` (seed 003); target <= 100 ns. `remap/cached_mock`: the same through
//!   the test exporter, whose counters and failure checks add their own cost.
//! - `remap/uncached_first_map`: the same buffer's first map (the exporter builds and maps a
//!   table), for comparison.
//! - `map_1gib/<dev>`: first map of a 1 GiB buffer of system pages (the test exporter, with the
//!   system heap's 1 MiB blocks), per page; target <= 75 ns.
//! - `map_1gib_system_heap/<dev>`: the same through the system heap, in the `kernel` crate's
//!   `heap_map` bench.
//! - `cpu_access/begin_end_4mib`: begin + end_cpu_access on a 4 MiB buffer mapped by a
//!   non-coherent device (cache maintenance of every line).
//!
//! Run: `cargo bench -p dmabuf --bench map -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dma::DmaDirection;
use dma::{DmaApi, SegmentLimits, SgTable};
use dmabuf::testing::{mock_dma, MockExporter};
use dmabuf::{
    Attachment, DmaBuf, DmaBufError, DmaBufOps, ExportInfo, ImporterOps, MapCache, OpsFeatures,
    ReleaseInfo,
};
use fence::ResvGuard;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Quiet;
impl ImporterOps for Quiet {
    fn move_notify(&self, _: &Attachment, _: &mut ResvGuard<'_>) {}
}

const PAGE: u64 = 4096;

/// The smallest caching exporter: storage allocated up front, every map through a [`MapCache`]
/// (what a heap with cached mappings does), without the mock's counters and failure checks.
struct CachedExporter {
    pages: Vec<soc::Page>,
    table: SgTable,
    cache: MapCache,
    dma: Arc<DmaApi>,
}

impl CachedExporter {
    fn new(dma: &Arc<DmaApi>, npages: u64, limits: SegmentLimits) -> Arc<CachedExporter> {
        let pages: Vec<soc::Page> = (0..npages)
            .map(|_| {
                dma.soc()
                    .pages()
                    .alloc_pages(&soc::AllocRequest::new(0))
                    .unwrap()
            })
            .collect();
        let table = SgTable::from_pages(&pages, limits).unwrap();
        Arc::new(CachedExporter {
            pages,
            table,
            cache: MapCache::new(dma),
            dma: dma.clone(),
        })
    }
}

impl DmaBufOps for CachedExporter {
    fn map_dma_buf(
        &self,
        att: &Attachment,
        dir: DmaDirection,
        _: &mut ResvGuard<'_>,
    ) -> Result<Arc<SgTable>, DmaBufError> {
        self.cache.map(att, dir, || Ok(self.table.dup()))
    }
    fn unmap_dma_buf(
        &self,
        _: &Attachment,
        sgt: Arc<SgTable>,
        _: DmaDirection,
        _: &mut ResvGuard<'_>,
    ) -> Result<(), DmaBufError> {
        self.cache.unmap(sgt)
    }
    fn detach(&self, _: &DmaBuf, att: &Attachment) {
        let _ = self.cache.detach(att);
    }
    fn release(&self, _: &ReleaseInfo) {
        let _ = self.cache.invalidate();
        for p in &self.pages {
            let _ = self.dma.free_pages(*p);
        }
    }
}

fn remap(c: &mut Criterion) {
    let mut g = c.benchmark_group("remap");
    let dma = mock_dma();
    let gpu = dma.device("gpu0").unwrap();
    let size = 4 << 20;

    let ops = MockExporter::with(OpsFeatures::MMAP, true);
    let buf = ops.export(&dma, size).unwrap();
    let att = buf.dynamic_attach(&gpu, Arc::new(Quiet)).unwrap();
    {
        let mut guard = buf.resv().lock(None).unwrap();
        let m = att.map(&mut guard, DmaDirection::Bidirectional).unwrap();
        att.unmap(&mut guard, m).unwrap();
        g.bench_function("cached_mock", |b| {
            b.iter(|| {
                let m = att.map(&mut guard, DmaDirection::Bidirectional).unwrap();
                att.unmap(&mut guard, m).unwrap();
            })
        });
    }

    {
        let ops = CachedExporter::new(&dma, size / PAGE, SegmentLimits::of_device(&gpu).unwrap());
        let buf = DmaBuf::export(&dma, ExportInfo::new("cached", size, ops)).unwrap();
        let att = buf.dynamic_attach(&gpu, Arc::new(Quiet)).unwrap();
        let mut guard = buf.resv().lock(None).unwrap();
        let m = att.map(&mut guard, DmaDirection::Bidirectional).unwrap();
        att.unmap(&mut guard, m).unwrap();
        g.bench_function("cached", |b| {
            b.iter(|| {
                let m = att.map(&mut guard, DmaDirection::Bidirectional).unwrap();
                att.unmap(&mut guard, m).unwrap();
            })
        });
    }

    let ops2 = MockExporter::with(OpsFeatures::MMAP, false);
    let buf2 = ops2.export(&dma, size).unwrap();
    let att2 = buf2.dynamic_attach(&gpu, Arc::new(Quiet)).unwrap();
    let mut guard = buf2.resv().lock(None).unwrap();
    let m = att2.map(&mut guard, DmaDirection::Bidirectional).unwrap(); // allocate once
    att2.unmap(&mut guard, m).unwrap();
    g.throughput(Throughput::Elements(size / PAGE));
    g.bench_function("uncached_first_map", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let m = att2.map(&mut guard, DmaDirection::Bidirectional).unwrap();
                t += start.elapsed();
                att2.unmap(&mut guard, m).unwrap();
            }
            t
        })
    });
    drop(guard);
    g.finish();
}

fn map_1gib(c: &mut Criterion) {
    let mut g = c.benchmark_group("map_1gib");
    g.sample_size(10);
    let size: u64 = 1 << 30;
    g.throughput(Throughput::Elements(size / PAGE));
    // display0 (30-bit DMA mask, no IOMMU) cannot get 1 GiB below 1 GiB next to the CMA region.
    for dev in ["gpu0", "isp0"] {
        let dma = mock_dma();
        let d = dma.device(dev).unwrap();
        let ops = MockExporter::with(OpsFeatures::MMAP, false);
        let buf = ops.export(&dma, size).unwrap();
        let att = buf.attach(&d).unwrap();
        let mut guard = buf.resv().lock(None).unwrap();
        let m = att.map(&mut guard, DmaDirection::ToDevice).unwrap(); // allocate once
        att.unmap(&mut guard, m).unwrap();
        g.bench_function(dev, |b| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let m = att.map(&mut guard, DmaDirection::ToDevice).unwrap();
                    t += start.elapsed();
                    att.unmap(&mut guard, m).unwrap();
                }
                t
            })
        });
    }
    g.finish();
}

fn cpu_access(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu_access");
    let dma = mock_dma();
    let isp = dma.device("isp0").unwrap();
    let size = 4 << 20;
    let ops = MockExporter::with(OpsFeatures::MMAP, false);
    let buf = ops.export(&dma, size).unwrap();
    let att = buf.attach(&isp).unwrap();
    let m = att.map_unlocked(DmaDirection::Bidirectional).unwrap();
    g.throughput(Throughput::Bytes(size));
    g.bench_function("begin_end_4mib", |b| {
        b.iter(|| {
            buf.begin_cpu_access(DmaDirection::Bidirectional).unwrap();
            buf.end_cpu_access(DmaDirection::Bidirectional).unwrap();
        })
    });
    att.unmap_unlocked(m).unwrap();
    g.finish();
}

criterion_group!(benches, remap, map_1gib, cpu_access);
criterion_main!(benches);
