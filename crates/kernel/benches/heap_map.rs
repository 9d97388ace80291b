//! The first-map cost of a system-heap buffer (issue 4's measurements, split from the core's
//! `map` bench when the simulated kernel became its own crate).
//!
//! - `map_1gib_system_heap/<dev>`: first map of a 1 GiB buffer from the system heap
//!   (`/dev/dma_heap/system` of a simulated process), per page; a fresh attachment each
//!   iteration, so every map is a first map (the heap's `MapCache` would otherwise answer from
//!   its cache). Compare with the core's `map_1gib/<dev>` (`cargo bench -p dmabuf --bench map`).
//!
//! Run: `cargo bench -p kernel --bench heap_map -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dma::DmaDirection;
use std::time::{Duration, Instant};
use uapi::ioctl::{O_CLOEXEC, O_RDWR};

const PAGE: u64 = 4096;

fn map_1gib_system_heap(c: &mut Criterion) {
    let mut g = c.benchmark_group("map_1gib_system_heap");
    g.sample_size(10);
    let size: u64 = 1 << 30;
    g.throughput(Throughput::Elements(size / PAGE));
    let kernel = kernel::Kernel::boot(soc::SocDesc::default_soc()).unwrap();
    let process = kernel.spawn();
    let heap = process.open_heap("system").unwrap();
    let fd = process
        .heap_alloc(heap, size, O_RDWR | O_CLOEXEC, 0)
        .unwrap();
    let buf = process.get_dma_buf(fd).unwrap();
    for dev in ["gpu0", "isp0"] {
        let d = kernel.dma().device(dev).unwrap();
        g.bench_function(dev, |b| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    let att = buf.attach(&d).unwrap();
                    let start = Instant::now();
                    let m = att.map_unlocked(DmaDirection::ToDevice).unwrap();
                    t += start.elapsed();
                    att.unmap_unlocked(m).unwrap();
                    buf.detach(att).unwrap();
                }
                t
            })
        });
    }
    g.finish();
}

criterion_group!(benches, map_1gib_system_heap);
criterion_main!(benches);
