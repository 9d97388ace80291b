//! Costs of the constraint-solving exporter (issue 5's measurements).
//!
//! - `migrate_64mib/dma_engine`: a late display attach moving a 64 MiB buffer from scattered
//!   pages to CMA (drain, allocate, move_notify, zap, copy with a DMA engine through IOMMU
//!   mappings, free), timed alone; `migrate_64mib/cpu`: the same with the CPU mover;
//!   `migrate_64mib/memcpy`: a host `memcpy` of 64 MiB in the same run. Target: migration
//!   throughput >= 0.8x memcpy's.
//! - `placement/plan_8_devices`: combining 8 constraint records and planning a placement;
//!   `placement/what_if_8th_device`: the what-if query on a buffer with 7 attached devices.
//!
//! Run: `cargo bench -p constraint --bench migrate -- --warm-up-time 1 --measurement-time 3`.

use constraint::{
    plan, ConstraintExporter, ConstraintRecord, CpuMover, ExportSpec, ImporterNeeds, Layout,
    MigrationConfig, Mover,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dma::DmaApi;
use dmabuf::testing::mock_dma;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZE: u64 = 64 << 20;

/// One migration of a 64 MiB buffer, timed alone.
fn one_migration(dma: &Arc<DmaApi>, mover: Arc<dyn Mover>, data: &[u8]) -> Duration {
    let cfg = MigrationConfig {
        mover,
        ..MigrationConfig::default()
    };
    let (buf, exp) = ConstraintExporter::export(dma, ExportSpec::new(SIZE).config(cfg)).unwrap();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let sgt = isp.map_unlocked(dma::DmaDirection::Bidirectional).unwrap();
    dma.device_write(isp.device(), sgt.dma_address().unwrap(), data)
        .unwrap();
    isp.unmap_unlocked(sgt).unwrap();
    let display = dma.device("display0").unwrap();
    let t0 = Instant::now();
    let att = buf.attach(&display).unwrap();
    let took = t0.elapsed();
    assert_eq!(exp.log().events().len(), 1);
    drop((att, isp, buf));
    took
}

fn bench_migration(c: &mut Criterion) {
    let dma = mock_dma();
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 + (i >> 12)) as u8).collect();
    let mut g = c.benchmark_group("migrate_64mib");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(SIZE));
    let engines: [(&str, Arc<dyn Mover>); 2] = [
        ("dma_engine", MigrationConfig::default().mover),
        ("cpu", Arc::new(CpuMover)),
    ];
    for (name, mover) in engines {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| one_migration(&dma, mover.clone(), &data))
                    .sum()
            })
        });
    }
    let src = data.clone();
    let mut dst = vec![0u8; SIZE as usize];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.finish();
}

/// Eight records: the five devices of the default SoC and three importers with extra needs.
fn eight_records(dma: &DmaApi) -> Vec<ConstraintRecord> {
    let rec = |n: &str| ConstraintRecord::of_device(&dma.device(n).unwrap());
    vec![
        rec("camera0"),
        rec("isp0"),
        rec("gpu0"),
        rec("display0"),
        rec("encoder0"),
        rec("isp0").with_needs(ImporterNeeds::new().align(1 << 16)),
        rec("gpu0").with_needs(ImporterNeeds::new().padding(8192).pitch_align(64)),
        rec("encoder0").with_needs(ImporterNeeds::new().exclude_bank("dram1")),
    ]
}

fn bench_placement(c: &mut Criterion) {
    let dma = mock_dma();
    let records = eight_records(&dma);
    let layout = Layout::nv12(1920, 1080);
    let mut g = c.benchmark_group("placement");
    g.bench_function("plan_8_devices", |b| {
        b.iter(|| plan(black_box(&records), &layout, dma.soc()).unwrap())
    });
    let (buf, exp) =
        ConstraintExporter::export(&dma, ExportSpec::with_layout(layout.clone())).unwrap();
    let mut atts = Vec::new();
    for r in &records[..7] {
        let dev = dma.device(&r.device).unwrap();
        atts.push(exp.attach_with(&buf, &dev, r.needs.clone()).unwrap());
    }
    let enc = dma.device("encoder0").unwrap();
    let needs = records[7].needs.clone();
    g.bench_function("what_if_8th_device", |b| {
        b.iter(|| exp.what_if(black_box(&enc), needs.clone()))
    });
    g.finish();
    drop((atts, buf));
}

criterion_group!(benches, bench_migration, bench_placement);
criterion_main!(benches);
