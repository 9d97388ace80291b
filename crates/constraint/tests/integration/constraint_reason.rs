//! The exporter's placement reasons: one record per placement decision, naming the devices and
//! the alternatives.

use constraint::{ConstraintExporter, ExportSpec, MigrationCause, Source};
use dma::DmaDirection;
use dmabuf::testing::mock_dma;

#[test]
fn placement_reason_records_first_allocation_and_each_migration_with_the_deciding_device() {
    let dma = mock_dma();
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(1 << 20)).unwrap();
    assert!(exp.placement_reasons().is_empty(), "no storage, no reason");
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let sgt = isp.map_unlocked(DmaDirection::Bidirectional).unwrap();
    isp.unmap_unlocked(sgt).unwrap();
    let first = exp.placement_reasons();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].generation, 1);
    assert_eq!(first[0].cause, None);
    assert_eq!(first[0].combined.devices, ["isp0"]);
    let g = &first[0].groups[0];
    assert!(matches!(g.chosen, Source::Scattered { .. }));
    assert!(!g.contiguous);
    assert_eq!(g.ranges.iter().map(|r| r.1).sum::<u64>(), 1 << 20);
    assert_eq!(g.range_count, g.ranges.len());

    let display = buf.attach(&dma.device("display0").unwrap()).unwrap();
    let reasons = exp.placement_reasons();
    assert_eq!(
        reasons.len(),
        2,
        "the late attach migrated: one more reason"
    );
    let r = &reasons[1];
    assert_eq!(
        r.cause,
        Some(MigrationCause::LateAttach {
            device: "display0".into()
        })
    );
    assert_eq!(r.combined.devices, ["isp0", "display0"]);
    let lines = r.constraints();
    let by = |name: &str| {
        lines
            .iter()
            .find(|l| l.constraint == name)
            .and_then(|l| l.by.clone())
    };
    assert_eq!(by("physical limit").as_deref(), Some("display0"));
    assert_eq!(by("contiguity").as_deref(), Some("display0"));
    let g = &r.groups[0];
    assert!(matches!(g.chosen, Source::Cma { .. }), "{:?}", g.chosen);
    assert_eq!(g.ranges.len(), 1, "CMA is one range");
    assert!(g.ranges[0].0 + g.ranges[0].1 - 1 <= g.limit);
    assert!(
        g.excluded
            .iter()
            .any(|e| e.starts_with("scattered pages of") && e.contains("display0 has no IOMMU")),
        "{:?}",
        g.excluded
    );
    let place = exp.placement().unwrap();
    assert_eq!(
        place.groups[0].lowest, g.ranges[0].0,
        "the reason is the placement's"
    );
    drop(display);
}
