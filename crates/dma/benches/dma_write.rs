//! One device DMA-writes a 3840x2160 NV12 frame (12,441,600 bytes) through an IOMMU-mapped sg
//! table of scattered pages, against `copy_from_slice` of the same bytes.
//!
//! Both destinations are touched before measuring, so first-touch page faults of the host do not
//! dominate. After criterion's report, a short best-of run prints the ratio memcpy time / DMA
//! time (1.0 = the simulated DMA is as fast as a host memcpy).

use criterion::{black_box, Criterion, Throughput};
use dma::{DmaApi, DmaAttrs, DmaDirection, SegmentLimits, SgTable};
use soc::{AllocRequest, DmaAddr, Page, Soc, SocDesc};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FRAME: usize = 3840 * 2160 * 3 / 2;

struct Setup {
    _soc: Arc<Soc>,
    _api: DmaApi,
    dev: Arc<soc::Device>,
    iova: DmaAddr,
    src: Vec<u8>,
    dst: Vec<u8>,
    _sgt: SgTable,
}

fn setup() -> Setup {
    let soc = Soc::new(SocDesc::default_soc()).expect("default SoC");
    let api = DmaApi::new(&soc);
    let dev = api.device("isp0").expect("isp0");
    // Interleave: keep every other page so that no two are physically adjacent.
    let npages = FRAME.div_ceil(soc::PAGE_SIZE as usize);
    let mut pages: Vec<Page> = Vec::with_capacity(npages);
    while pages.len() < npages {
        let keep = soc
            .pages()
            .alloc_pages(&AllocRequest::new(0))
            .expect("page");
        let gap = soc
            .pages()
            .alloc_pages(&AllocRequest::new(0))
            .expect("page");
        pages.push(keep);
        let _ = gap; // stays allocated: a hole between kept pages
    }
    let mut sgt = SgTable::from_pages(&pages, SegmentLimits::of_device(&dev).expect("limits"))
        .expect("sg table");
    assert_eq!(sgt.phys_runs(), npages, "pages are scattered");
    api.map_sg(&dev, &mut sgt, DmaDirection::FromDevice, DmaAttrs::NONE)
        .expect("map");
    let iova = sgt.dma_address().expect("mapped");
    let src: Vec<u8> = (0..FRAME).map(|i| (i * 31 % 251) as u8).collect();
    let mut dst = vec![0u8; FRAME];
    // Pre-touch both destinations.
    dst.copy_from_slice(&src);
    dev.dma_write(iova, &src).expect("first DMA");
    Setup {
        _soc: soc,
        _api: api,
        dev,
        iova,
        src,
        dst,
        _sgt: sgt,
    }
}

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let mut s = setup();
    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("nv12_frame_4k");
        g.throughput(Throughput::Bytes(FRAME as u64));
        g.bench_function("memcpy", |b| {
            b.iter(|| s.dst.copy_from_slice(black_box(&s.src)))
        });
        g.bench_function("dma_write_iommu_scattered", |b| {
            b.iter(|| {
                s.dev
                    .dma_write(black_box(s.iova), black_box(&s.src))
                    .expect("dma")
            })
        });
        g.finish();
    }
    c.final_summary();
    let (src, dst) = (&s.src, &mut s.dst);
    let memcpy = best_of(30, || dst.copy_from_slice(black_box(src)));
    let dma = best_of(30, || {
        s.dev.dma_write(s.iova, black_box(&s.src)).expect("dma")
    });
    // The host's own ceiling for this layout: the same bytes copied in 4 KiB pieces into every
    // other page of a buffer twice the size (what the DMA engine must do, minus the simulation).
    let mut spread = vec![1u8; 2 * FRAME + 8192];
    let pieces = best_of(30, || {
        for (i, c) in src.chunks(4096).enumerate() {
            spread[i * 8192..i * 8192 + c.len()].copy_from_slice(black_box(c));
        }
        black_box(&mut spread);
    });
    let gbps = |d: Duration| FRAME as f64 / d.as_secs_f64() / 1e9;
    println!(
        "nv12 4K frame: memcpy {:?} ({:.2} GB/s), DMA write {:?} ({:.2} GB/s), ratio memcpy/DMA = {:.3}",
        memcpy,
        gbps(memcpy),
        dma,
        gbps(dma),
        memcpy.as_secs_f64() / dma.as_secs_f64()
    );
    println!(
        "host ceiling for scattered 4 KiB pieces: {:?} ({:.2} GB/s), ratio memcpy/pieces = {:.3}",
        pieces,
        gbps(pieces),
        memcpy.as_secs_f64() / pieces.as_secs_f64()
    );
}
