//! Format modifiers, pitch negotiation and the migration engine through whole scenarios: a
//! late encoder that lists no modifier re-lays the shared tiled buffers out to linear, the
//! copy charged to the engine `migrate_with` names; bad modifier input is exit 2 at its line.

use super::pos;
use scenario::run::{run, RunOptions};
use scenario::{validate, ExitCode};

/// camera -> isp -> (screen + a late encoder), every device behind one IOMMU; the ISP and the
/// display share Vivante tiles, the encoder lists nothing (linear only) and joins at frame 4.
const TILED: &str = r#"name = "tiled"
frames = 10

[soc]
[[soc.banks]]
name = "dram0"
kind = "system"
base = 0
size = "1GiB"

[[soc.iommus]]
name = "smmu0"

[[soc.devices]]
name = "camera0"
iommu = "smmu0"

[[soc.devices]]
name = "isp0"
iommu = "smmu0"
modifiers = ["vivante_super_tiled", "vivante_tiled", "linear"]

[[soc.devices]]
name = "display0"
iommu = "smmu0"
modifiers = ["vivante_tiled", "linear"]

[[soc.devices]]
name = "encoder0"
iommu = "smmu0"

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
format = "XRGB8888"
width = 96
height = 40

[[nodes]]
name = "isp"
driver = "isp"
device = "isp0"
format = "XRGB8888"
width = 96
height = 40

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
width = 96
height = 40

[[nodes]]
name = "enc"
driver = "encoder"
device = "encoder0"
width = 96
height = 40
attached = false

[[links]]
from = "cam"
to = "isp"

[[links]]
name = "isp-out"
from = "isp"
to = ["screen", "enc"]

[[events]]
at_frame = 4
action = "attach"
node = "enc"
"#;

#[track_caller]
fn invalid(text: &str, at: (usize, usize), parts: &[&str]) {
    let e = validate(text, "t.toml").expect_err("should not validate");
    assert_eq!(e.exit_code(), ExitCode::Invalid);
    let loc = e.location().unwrap();
    assert_eq!((loc.line, loc.column), at, "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("t.toml:{}:{}: ", loc.line, loc.column)),
        "{shown}"
    );
    for p in parts {
        assert!(shown.contains(p), "`{p}` not in {shown}");
    }
}

#[test]
fn the_late_linear_encoder_re_lays_out_the_tiled_buffers_and_every_frame_verifies() {
    let out = run(&validate(TILED, "t.toml").unwrap(), &RunOptions::default());
    let r = &out.report;
    assert_eq!(
        r.exit_code(),
        ExitCode::Verified,
        "{}",
        scenario::report::text_summary(r)
    );
    let relaid: Vec<_> = r
        .migrations
        .iter()
        .filter(|m| {
            m.cause
                .contains("re-laid out: modifier vivante_tiled -> linear")
        })
        .collect();
    assert_eq!(relaid.len(), 4, "every isp-out buffer: {:?}", r.migrations);
    assert!(relaid.iter().all(|m| m.buffer.starts_with("isp-out")));
    let why = serde_json::to_string(&r.buffers).unwrap();
    assert!(
        why.contains("vivante_tiled"),
        "the first placement's reason names the modifier"
    );
}

#[test]
fn without_modifiers_nothing_migrates() {
    let text = TILED.replace(
        "modifiers = [\"vivante_super_tiled\", \"vivante_tiled\", \"linear\"]\n",
        "",
    );
    let text = text.replace("modifiers = [\"vivante_tiled\", \"linear\"]\n", "");
    let r = run(&validate(&text, "t.toml").unwrap(), &RunOptions::default()).report;
    assert_eq!(r.exit_code(), ExitCode::Verified);
    assert!(r.migrations.is_empty(), "{:?}", r.migrations);
}

#[test]
fn migrate_with_cpu_or_a_device_charges_that_lane() {
    let cpu = TILED.replace("[soc]\n", "[soc]\nmigrate_with = \"cpu\"\n");
    let r = run(&validate(&cpu, "t.toml").unwrap(), &RunOptions::default()).report;
    assert!(!r.migrations.is_empty());
    assert!(r
        .migrations
        .iter()
        .all(|m| m.engine == "cpu" && m.cost.is_none()));

    let isp = TILED.replace(
        "name = \"isp-out\"\n",
        "name = \"isp-out\"\nmigrate_with = \"isp0\"\n",
    );
    let r = run(&validate(&isp, "t.toml").unwrap(), &RunOptions::default()).report;
    assert_eq!(r.exit_code(), ExitCode::Verified);
    assert!(
        r.migrations.iter().all(|m| m.engine == "isp0"),
        "{:?}",
        r.migrations
    );
    let cost = r.migrations[0].cost.as_deref().unwrap();
    assert!(
        cost.contains("the copy on isp0 delayed isp frame 4 of cam by 7.7 us"),
        "{cost}"
    );
}

#[test]
fn bad_modifier_input_is_exit_2_at_its_line() {
    let t = TILED.replace("\"vivante_super_tiled\", ", "\"intel_y_tiled\", ");
    invalid(
        &t,
        pos(&t, "\"intel_y_tiled\""),
        &["EINVAL", "intel_y_tiled", "vivante_tiled"],
    );

    // The encoder lists only SAND128: nothing is common to the link's three devices.
    let t = TILED.replace(
        "name = \"encoder0\"\niommu = \"smmu0\"\n",
        "name = \"encoder0\"\niommu = \"smmu0\"\nmodifiers = [\"broadcom_sand128\"]\n",
    );
    invalid(
        &t,
        pos(&t, "[\"screen\", \"enc\"]"),
        &[
            "EINVAL",
            "isp0 understands vivante_super_tiled, vivante_tiled, linear",
            "encoder0 understands broadcom_sand128",
        ],
    );

    let t = TILED.replace("[soc]\n", "[soc]\nmigrate_with = \"dma9\"\n");
    invalid(&t, pos(&t, "\"dma9\""), &["ENODEV", "dma9", "cpu"]);
    let t = TILED.replace(
        "name = \"isp-out\"\n",
        "name = \"isp-out\"\nmigrate_with = \"gpu7\"\n",
    );
    invalid(&t, pos(&t, "\"gpu7\""), &["ENODEV", "gpu7", "isp0"]);
}
