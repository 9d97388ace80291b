//! Placement, explained failure, the what-if query and the policies.

use super::constraint_common::*;
use constraint::{
    plan, Conflict, ConstraintExporter, ConstraintRecord, ExportSpec, ImporterNeeds, KnownDevice,
    Layout, Policy, Source, WhatIfAction,
};
use dma::DmaDirection;
use dmabuf::testing::mock_dma;
use uapi::{AsErrno, Errno};

#[test]
fn test_all_iommu_devices_get_scattered_pages() {
    let dma = mock_dma();
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(3 << 20)).unwrap();
    assert!(
        exp.placement().is_none(),
        "no storage before the first map (seed 000)"
    );
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let gpu = buf.attach(&dma.device("gpu0").unwrap()).unwrap();
    assert!(exp.placement().is_none(), "attach allocates nothing");
    let data = frame(9, 3 << 20);
    produce(&dma, &isp, &data);
    let p = exp.placement().unwrap();
    assert!(
        matches!(p.groups[0].source, Source::Scattered { .. }),
        "{p}"
    );
    assert_eq!(checksum(&consume(&dma, &gpu, 3 << 20)), checksum(&data));
    drop((isp, gpu, buf));
    assert_clean(&dma);
}

#[test]
fn test_luma_and_chroma_land_in_the_requested_banks() {
    let dma = mock_dma();
    let layout = Layout::nv12(1920, 1080);
    let size = layout.size as usize;
    let chroma = layout.planes[1].offset;
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::with_layout(layout)).unwrap();
    let needs = ImporterNeeds::new()
        .plane_bank(0, "dram0")
        .plane_bank(1, "dram1");
    let isp = exp
        .attach_with(&buf, &dma.device("isp0").unwrap(), needs)
        .unwrap();
    let data = frame(2, size);
    produce(&dma, &isp, &data);
    let p = exp.placement().unwrap();
    assert_eq!(p.groups.len(), 2, "{p}");
    assert_eq!(p.groups[0].source.bank(), "dram0");
    assert_eq!(p.groups[1].source.bank(), "dram1");
    let soc = dma.soc();
    let bank_of = |off| {
        soc.mem()
            .bank_of(exp.phys_at(off).unwrap())
            .unwrap()
            .name()
            .to_string()
    };
    assert_eq!(bank_of(0), "dram0");
    assert_eq!(bank_of(chroma), "dram1");
    // A device without an IOMMU can still use it: each plane is contiguous.
    let gpu = buf.attach(&dma.device("gpu0").unwrap()).unwrap();
    assert_eq!(checksum(&consume(&dma, &gpu, size)), checksum(&data));
    drop((isp, gpu, buf));
    assert_clean(&dma);
}

#[test]
fn test_unsatisfiable_set_names_devices_and_constraints() {
    let dma = mock_dma();
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(1 << 20)).unwrap();
    let enc = exp
        .attach_with(
            &buf,
            &dma.device("encoder0").unwrap(),
            ImporterNeeds::new().only_bank("dram1"),
        )
        .unwrap();
    let err = buf.attach(&dma.device("display0").unwrap()).unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.errno(), Errno::ENOMEM, "{msg}");
    assert!(
        msg.contains("display0 reaches only below 1 GiB; encoder0 requires bank dram1"),
        "{msg}"
    );
    let structured = exp.last_error().unwrap();
    assert!(matches!(
        structured.conflicts(),
        [Conflict::Unreachable { device, .. }] if device == "display0"
    ));
    assert_eq!(
        buf.attachment_infos().len(),
        1,
        "refused at attach: not listed"
    );
    drop((enc, buf));
}

#[test]
fn test_contradicting_bank_rules_are_einval() {
    let dma = mock_dma();
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(1 << 20)).unwrap();
    let _isp = exp
        .attach_with(
            &buf,
            &dma.device("isp0").unwrap(),
            ImporterNeeds::new().only_bank("dram0"),
        )
        .unwrap();
    let err = exp
        .attach_with(
            &buf,
            &dma.device("gpu0").unwrap(),
            ImporterNeeds::new().exclude_bank("dram0"),
        )
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL);
    let msg = err.to_string();
    assert!(
        msg.contains("isp0 requires bank dram0") && msg.contains("gpu0 excludes bank dram0"),
        "{msg}"
    );
    let err = exp
        .attach_with(
            &buf,
            &dma.device("gpu0").unwrap(),
            ImporterNeeds::new().align(3000),
        )
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
}

#[test]
fn test_pitch_and_alignment_and_padding_are_met() {
    let dma = mock_dma();
    let layout = Layout::nv12(1920, 1080);
    let size = layout.size;
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::with_layout(layout)).unwrap();
    let err = exp
        .attach_with(
            &buf,
            &dma.device("encoder0").unwrap(),
            ImporterNeeds::new().pitch_align(256),
        )
        .unwrap_err();
    assert!(err.to_string().contains("pitch 1920"), "{err}");
    let cam = exp
        .attach_with(
            &buf,
            &dma.device("camera0").unwrap(),
            ImporterNeeds::new()
                .align(1 << 20)
                .padding(8192)
                .pitch_align(128),
        )
        .unwrap();
    let sgt = cam.map_unlocked(DmaDirection::Bidirectional).unwrap();
    assert_eq!(sgt.dma_address().unwrap().0 % (1 << 20), 0, "1 MiB aligned");
    assert!(sgt.size() >= size + 8192, "padding is mapped");
    cam.unmap_unlocked(sgt).unwrap();
    drop((cam, buf));
    assert_clean(&dma);
}

#[test]
fn test_what_if_allocates_nothing() {
    let dma = mock_dma();
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(2 << 20)).unwrap();
    let display = dma.device("display0").unwrap();
    let w = exp.what_if(&display, ImporterNeeds::new());
    assert_eq!(w.action, WhatIfAction::AllocateAtFirstMap);
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    produce(&dma, &isp, &frame(1, 16));
    let before = page_accounting(&dma);
    let w = exp.what_if(&display, ImporterNeeds::new());
    assert_eq!(w.action, WhatIfAction::Migrates);
    assert!(matches!(
        w.plan.unwrap().first_choice()[0],
        Source::Cma { .. }
    ));
    assert!(!w.unmet.is_empty());
    let w = exp.what_if(&dma.device("gpu0").unwrap(), ImporterNeeds::new());
    assert_eq!(w.action, WhatIfAction::Stays);
    let w = exp.what_if(&display, ImporterNeeds::new().only_bank("dram1"));
    assert!(matches!(w.action, WhatIfAction::Refused { .. }));
    assert_eq!(page_accounting(&dma), before, "nothing allocated");
    assert!(serde_json_like(&w));
    drop((isp, buf));
}

/// The answer is plain data: it serialises (TOML needs a table at the top).
fn serde_json_like(w: &constraint::WhatIf) -> bool {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        what_if: &'a constraint::WhatIf,
    }
    toml::to_string(&Doc { what_if: w }).is_ok()
}

#[test]
fn test_plan_before_any_buffer_exists() {
    let dma = mock_dma();
    let soc = dma.soc();
    let rec = |n: &str| ConstraintRecord::of_device(&soc.device(n).unwrap());
    let p = plan(
        &[rec("camera0"), rec("display0")],
        &Layout::single(64 << 20),
        soc,
    )
    .unwrap();
    assert_eq!(p.first_choice()[0].to_string(), "CMA region cma0 (dram0)");
    let err = plan(&[rec("display0")], &Layout::single(512 << 20), soc).unwrap_err();
    assert_eq!(
        err.errno(),
        Errno::ENOMEM,
        "larger than cma0 and any block: {err}"
    );
}

#[test]
fn test_up_front_allocates_at_export_and_refuses_incompatible_attach() {
    let dma = mock_dma();
    let policy = Policy::UpFront {
        devices: vec![KnownDevice::new("isp0"), KnownDevice::new("gpu0")],
    };
    let (buf, exp) =
        ConstraintExporter::export(&dma, ExportSpec::new(1 << 20).policy(policy)).unwrap();
    assert!(exp.placement().is_some(), "allocated at export");
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let err = buf.attach(&dma.device("display0").unwrap()).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY);
    let msg = err.to_string();
    assert!(
        msg.contains("up-front") && msg.contains("display0"),
        "{msg}"
    );
    assert!(exp.log().events().is_empty());
    drop((isp, buf));
    assert_clean(&dma);
}

#[test]
fn test_no_migrate_refuses_late_attach_but_deferred_moves() {
    let dma = mock_dma();
    for (policy, moves) in [(Policy::NoMigrate, false), (Policy::Deferred, true)] {
        let (buf, exp) =
            ConstraintExporter::export(&dma, ExportSpec::new(1 << 20).policy(policy)).unwrap();
        let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
        produce(&dma, &isp, &frame(4, 1 << 20));
        let r = buf.attach(&dma.device("display0").unwrap());
        assert_eq!(r.is_ok(), moves);
        if let Err(e) = &r {
            assert_eq!(e.errno(), Errno::EBUSY);
            assert!(e.to_string().contains("no-migrate"), "{e}");
        }
        assert_eq!(exp.log().events().len(), usize::from(moves));
        drop((r, isp, buf));
    }
    assert_clean(&dma);
}

#[test]
fn test_concurrent_attaches_of_one_device_each_keep_their_own_needs() {
    // Importer needs travel with the attachment (`importer_priv`), not through a queue keyed by
    // device name that two concurrent attaches of the same device could take from each other.
    let dma = mock_dma();
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(1 << 20)).unwrap();
    let exp = std::sync::Arc::new(exp);
    let dev = dma.device("isp0").unwrap();
    for _round in 0..50 {
        let start = std::sync::Arc::new(std::sync::Barrier::new(4));
        let threads: Vec<_> = (0..4u32)
            .map(|i| {
                let (buf, exp, dev) = (buf.clone(), exp.clone(), dev.clone());
                let start = start.clone();
                std::thread::spawn(move || {
                    let needs = ImporterNeeds::new().align(4096 << i);
                    start.wait();
                    let att = exp.attach_with(&buf, &dev, needs.clone()).unwrap();
                    (att, needs)
                })
            })
            .collect();
        for t in threads {
            let (att, needs) = t.join().unwrap();
            assert_eq!(att.importer_priv_as::<ImporterNeeds>(), Some(&needs));
            assert_eq!(exp.record(&att).unwrap().needs, needs);
            buf.detach(att).unwrap();
        }
    }
    drop(buf);
    assert_clean(&dma);
}

#[test]
fn test_a_weak_handle_finds_the_buffer_only_while_it_lives() {
    let dma = mock_dma();
    let (buf, _exp) = ConstraintExporter::export(&dma, ExportSpec::new(1 << 20)).unwrap();
    let weak = buf.downgrade();
    assert!(weak.upgrade().is_some_and(|b| b.ptr_eq(&buf)));
    drop(buf);
    assert!(weak.upgrade().is_none());
    assert_clean(&dma);
}

#[test]
fn test_two_attaches_of_one_device_each_carry_their_own_needs() {
    // Needs travel with each attachment (`importer_priv`), never by device name: a second
    // attach of the same device does not inherit, nor take, the first one's.
    let dma = mock_dma();
    let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(1 << 20)).unwrap();
    let isp0 = dma.device("isp0").unwrap();
    let needs = ImporterNeeds::new().only_bank("dram0");
    let a = exp.attach_with(&buf, &isp0, needs.clone()).unwrap();
    let b = buf.attach(&isp0).unwrap();
    let c = exp
        .attach_with(&buf, &isp0, ImporterNeeds::new().exclude_bank("dram1"))
        .unwrap();
    assert_eq!(exp.record(&a).unwrap().needs, needs);
    assert_eq!(exp.record(&b).unwrap().needs, ImporterNeeds::default());
    assert_eq!(
        exp.record(&c).unwrap().needs,
        ImporterNeeds::new().exclude_bank("dram1")
    );
    for att in [a, b, c] {
        buf.detach(att).unwrap();
    }
}
