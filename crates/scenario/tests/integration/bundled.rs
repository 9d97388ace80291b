//! The bundled scenarios: all validate, match their files, and say what they claim.

use scenario::schema::{At, EventAction, Exporter};

#[test]
fn every_bundled_scenario_validates() {
    for (name, desc, text) in scenario::bundled() {
        let s = scenario::validate(text, name).unwrap_or_else(|e| panic!("{}", e.render()));
        assert_eq!(&s.name, name, "the file's name matches the table");
        assert!(!desc.is_empty() && !desc.contains('\n'));
        assert_eq!(
            &s.description, desc,
            "{name}: the file's description matches the table"
        );
    }
}

#[test]
fn bundled_scenarios_are_the_files_under_scenarios() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut bundled: Vec<String> = scenario::bundled()
        .iter()
        .map(|b| format!("{}.toml", b.0))
        .collect();
    bundled.sort();
    assert_eq!(on_disk, bundled);
    for (name, _, text) in scenario::bundled() {
        let path = dir.join(format!("{name}.toml"));
        let s = scenario::load(&path).unwrap();
        assert_eq!(&std::fs::read_to_string(&path).unwrap(), text);
        assert_eq!(s.name, *name);
    }
}

#[test]
fn default_scenario_is_the_one_the_issue_describes() {
    let s = scenario::load_bundled(scenario::DEFAULT).unwrap();
    assert_eq!((s.frames, s.seed), (600, 1));
    let cam = s.node("camera").unwrap();
    assert_eq!(
        (cam.width, cam.height, cam.fps),
        (3840, 2160, scenario::clock::Fps::from_int(60))
    );
    assert_eq!(cam.format.name(), "NV12");
    let enc = s.node("encoder").unwrap();
    assert!(!enc.attached);
    let dev = s.soc.devices.iter().find(|d| d.name == enc.device).unwrap();
    assert!(
        dev.iommu.is_none() && dev.needs_contiguous,
        "the encoder has no IOMMU"
    );
    assert!(s.events.iter().any(|e| e.at == At::Frame(300)
        && e.action
            == EventAction::Attach {
                node: "encoder".into()
            }));
    assert_eq!(s.node("thumbnailer").unwrap().params.frame, Some(100));
    let shared = s.link("isp-out").unwrap();
    assert!(shared.feeds("gpu") && shared.feeds("encoder"));
    assert_eq!(shared.effective_exporter(), Some(Exporter::Constraint));
    assert!(!s.soc.cma.is_empty(), "there is CMA to migrate to");
}

#[test]
fn unknown_bundled_name_lists_the_known_ones() {
    let e = scenario::load_bundled("nope").unwrap_err();
    assert_eq!(e.exit_code().code(), 2);
    assert!(e.to_string().contains("default, luma-chroma-banks"), "{e}");
}

#[test]
fn with_frames_cuts_events_and_keeps_the_thumbnail_in_range() {
    let s = scenario::load_bundled("default")
        .unwrap()
        .with_frames(50)
        .unwrap();
    assert_eq!(s.frames, 50);
    assert!(
        s.events.is_empty(),
        "the attach at frame 300 is past the end"
    );
    assert_eq!(s.node("thumbnailer").unwrap().params.frame, Some(49));
    assert!(scenario::load_bundled("default")
        .unwrap()
        .with_frames(0)
        .is_err());
}
