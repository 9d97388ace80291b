//! loom model of the constraint exporter's migration gate: a late attach that forces a move
//! drains while a static importer unmaps, on the real exporter (`gate.rs`, `ops.rs`) with its
//! state lock and condition variable from the `sync` facade.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p constraint --test loom_gate --release`.
//! Under loom a timed wait never times out, so the drain can only end through the wake-up the
//! unmap (unpin) sends: a lost wake-up is a deadlock loom reports.
#![cfg(loom)]

use constraint::{ConstraintExporter, ExportSpec, MigrationConfig};
use dma::DmaDirection;
use dmabuf::testing::mock_dma;
use std::time::Duration;

/// The ISP has the buffer mapped; the display (no IOMMU, 30-bit mask) attaches and forces a
/// move to CMA; the ISP unmaps concurrently. Every interleaving ends with the display attached,
/// exactly one migration logged, and the ISP's mapping gone.
#[test]
fn late_attach_drains_while_the_static_importer_unmaps() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let dma = mock_dma();
        let cfg = MigrationConfig {
            drain_timeout: Duration::from_secs(3600),
            ..MigrationConfig::default()
        };
        let (buf, exp) =
            ConstraintExporter::export(&dma, ExportSpec::new(1 << 16).config(cfg)).unwrap();
        let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
        let sgt = isp.map_unlocked(DmaDirection::Bidirectional).unwrap();
        let unmapper = loom::thread::spawn(move || {
            isp.unmap_unlocked(sgt).unwrap();
            isp
        });
        let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
        let isp = unmapper.join().unwrap();
        assert_eq!(exp.log().events().len(), 1, "{:?}", exp.log().failures());
        drop((display, isp, buf));
    });
}
