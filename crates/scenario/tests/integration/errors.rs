//! Bad input: each class of mistake gives its message at its line and column, and exit code 2.

use super::{after, pos, with_soc, BASE, SOC};
use scenario::ExitCode;

/// Validates `text`, expects an error at `at` (line, column) whose message contains every part
/// of `msg`.
#[track_caller]
fn expect_err(text: &str, at: (usize, usize), msg: &[&str]) {
    let e = scenario::validate(text, "t.toml").expect_err("should not validate");
    assert_eq!(e.exit_code(), ExitCode::Invalid);
    let loc = e.location().expect("an invalid scenario has a location");
    assert_eq!((loc.line, loc.column), at, "{}", e.render());
    assert_eq!(loc.file, "t.toml");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("t.toml:{}:{}: ", loc.line, loc.column)),
        "{shown}"
    );
    for m in msg {
        assert!(shown.contains(m), "`{m}` not in: {shown}");
    }
}

#[test]
fn the_base_scenarios_are_valid() {
    scenario::validate(BASE, "t.toml").unwrap();
    scenario::validate(&with_soc(SOC), "t.toml").unwrap();
}

#[test]
fn unknown_field_lists_the_expected_ones() {
    let t = BASE.replace(
        "name = \"screen\"\n",
        "colour = \"red\"\nname = \"screen\"\n",
    );
    let e = scenario::validate(&t, "t.toml").unwrap_err();
    assert!(
        e.to_string().starts_with(
            "t.toml:12:1: unknown field `colour`, expected one of `name`, `driver`, `device`"
        ),
        "{e}"
    );
    assert!(
        e.render().contains("12 | colour = \"red\"\n   | ^^^^^^"),
        "{}",
        e.render()
    );
}

#[test]
fn unknown_field_in_the_machine_and_in_params() {
    let t = with_soc(&SOC.replace("name = \"smmu0\"", "name = \"smmu0\"\npagesize = 4096"));
    expect_err(
        &t,
        pos(&t, "pagesize"),
        &["unknown field `pagesize`", "aperture_bits"],
    );
    let t = BASE.replace(
        "height = 480",
        "height = 480\nparams = { patern = \"bars\" }",
    );
    expect_err(
        &t,
        pos(&t, "patern"),
        &["unknown field `patern`", "`pattern`"],
    );
}

#[test]
fn bad_unit() {
    let t = with_soc(&SOC.replacen("size = \"1GiB\"", "size = \"4 parsecs\"", 1));
    expect_err(
        &t,
        pos(&t, "\"4 parsecs\""),
        &["unknown size unit `parsecs`", "GiB"],
    );
}

#[test]
fn bad_enum_value() {
    let t = BASE.replace("driver = \"display\"", "driver = \"scanner\"");
    expect_err(
        &t,
        pos(&t, "\"scanner\""),
        &["unknown variant `scanner`", "`thumbnailer`"],
    );
    let t = BASE.replace(
        "to = \"screen\"",
        "to = \"screen\"\nexporter = \"heap:vram\"",
    );
    expect_err(
        &t,
        pos(&t, "\"heap:vram\""),
        &["unknown exporter `heap:vram`", "`heap:cma`"],
    );
}

#[test]
fn bad_toml_syntax_and_types() {
    // toml reports the third `[` of `[[[`.
    expect_err(
        &BASE.replace("frames = 10", "frames = 10\n[[["),
        (3, 3),
        &["invalid"],
    );
    let t = BASE.replace("frames = 10", "frames = -1");
    expect_err(&t, (2, 10), &["expected u64"]);
    let t = BASE.replace("width = 640", "width = \"wide\"");
    expect_err(&t, after(&t, "width = "), &["expected u32"]);
}

#[test]
fn missing_field_points_at_its_table() {
    let t = BASE.replace("device = \"display0\"\n", "");
    let e = scenario::validate(&t, "t.toml").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("t.toml:11:1: missing field `device`"),
        "{e}"
    );
}

#[test]
fn dangling_node_names() {
    let t = BASE.replace("to = \"screen\"", "to = \"screeen\"");
    expect_err(
        &t,
        pos(&t, "\"screeen\""),
        &["`links[0].to`", "no node is named `screeen`", "cam, screen"],
    );
    let t = BASE.replace("from = \"cam\"", "from = \"camm\"");
    expect_err(&t, pos(&t, "\"camm\""), &["`links[0].from`"]);
    let t = BASE.replace("to = \"screen\"", "to = [\"screen\", \"ghost\"]");
    expect_err(
        &t,
        pos(&t, "\"ghost\""),
        &["`links[0].to[1]`", "no node is named `ghost`"],
    );
}

#[test]
fn a_link_to_itself() {
    let t = BASE.replace("to = \"screen\"", "to = \"cam\"");
    expect_err(&t, pos(&t, "\"cam\"\n"), &["from `cam` to itself"]);
}

#[test]
fn zero_frames_fps_width_buffers() {
    let t = BASE.replace("frames = 10", "frames = 0");
    expect_err(&t, (2, 10), &["0 frames: expected 1 to"]);
    let t = BASE.replace("width = 640", "fps = 0");
    expect_err(
        &t,
        after(&t, "fps = "),
        &["`nodes[0].fps`", "expected 1 to"],
    );
    let t = BASE.replace("width = 640", "width = 0");
    expect_err(&t, after(&t, "width = "), &["width 0"]);
    let t = BASE.replace("height = 480", "height = 481");
    expect_err(&t, pos(&t, "481"), &["odd", "NV12"]);
    let t = BASE.replace("to = \"screen\"", "to = \"screen\"\nbuffers = 0");
    expect_err(
        &t,
        after(&t, "buffers = "),
        &["`links[0].buffers`", "expected 1 to 32"],
    );
}

#[test]
fn bank_overlap() {
    let t = with_soc(&SOC.replace("base = \"0x8000_0000\"", "base = \"0x2000_0000\""));
    expect_err(
        &t,
        pos(&t, "\"0x2000_0000\""),
        &[
            "`soc.banks[1].base`",
            "bank `dram1`",
            "overlaps bank `dram0`",
        ],
    );
}

#[test]
fn a_device_naming_an_unknown_iommu() {
    let t = with_soc(&SOC.replace("iommu = \"smmu0\"", "iommu = \"smmu9\""));
    expect_err(
        &t,
        pos(&t, "\"smmu9\""),
        &["`soc.devices[1].iommu`", "IOMMU `smmu9`", "IOMMUs: smmu0"],
    );
}

#[test]
fn a_node_on_an_unknown_device() {
    let t = BASE.replace("device = \"display0\"", "device = \"display9\"");
    expect_err(
        &t,
        pos(&t, "\"display9\""),
        &["`nodes[1].device`", "display9", "camera0, isp0"],
    );
}

#[test]
fn soc_validation_is_mapped_back_to_the_field() {
    let t = with_soc(&SOC.replace(
        "name = \"camera0\"",
        "name = \"camera0\"\ndma_mask_bits = 99",
    ));
    expect_err(
        &t,
        pos(&t, "99"),
        &["`soc.devices[0].dma_mask_bits`", "camera0", "12 to 64"],
    );
    let t = with_soc(&SOC.replace(
        "name = \"camera0\"",
        "name = \"camera0\"\nbandwidth_bps = 0",
    ));
    expect_err(
        &t,
        after(&t, "bandwidth_bps = "),
        &["`soc.devices[0].bandwidth_bps`"],
    );
    let t = with_soc(&format!(
        "{SOC}\n[[soc.cma]]\nname = \"cma0\"\nbank = \"dram9\"\nsize = \"16MiB\"\n"
    ));
    expect_err(&t, pos(&t, "\"dram9\""), &["`soc.cma[0].bank`", "dram9"]);
}

#[test]
fn duplicate_names() {
    let t = BASE.replace("name = \"screen\"", "name = \"cam\"");
    expect_err(&t, (12, 8), &["second node is named `cam`"]);
    let t = with_soc(&SOC.replace("name = \"dram1\"", "name = \"dram0\""));
    expect_err(&t, (13, 8), &["second bank is named `dram0`"]);
}

#[test]
fn link_fields_that_do_not_apply() {
    let t = BASE.replace(
        "to = \"screen\"",
        "to = \"screen\"\nexporter = \"heap:system\"\npolicy = \"deferred\"",
    );
    expect_err(
        &t,
        pos(&t, "\"deferred\""),
        &[
            "`policy` applies to the `constraint` exporter",
            "heap:system",
        ],
    );
    let t = BASE.replace(
        "to = \"screen\"",
        "to = \"screen\"\nmemory = \"userptr\"\nexporter = \"gpu\"",
    );
    expect_err(
        &t,
        pos(&t, "\"gpu\""),
        &["applies to `memory = \"dmabuf\"` links"],
    );
    let t = BASE.replace(
        "to = \"screen\"",
        "to = \"screen\"\nexporter = \"constraint\"\nregion = \"cma0\"",
    );
    expect_err(
        &t,
        pos(&t, "\"cma0\""),
        &["`region` applies to the `heap:cma`"],
    );
    let t = BASE.replace("to = \"screen\"", "to = \"screen\"\nexporter = \"gpu\"");
    expect_err(&t, pos(&t, "\"gpu\""), &["needs a gpu node"]);
}

#[test]
fn per_plane_banks() {
    let t = BASE.replace(
        "to = \"screen\"",
        "to = \"screen\"\nplanes = [{ bank = \"dram0\" }]",
    );
    expect_err(
        &t,
        pos(&t, "[{"),
        &["1 entry, but `cam` produces NV12 with 2 plane(s)"],
    );
    let t = BASE.replace(
        "to = \"screen\"",
        "to = \"screen\"\nplanes = [{ bank = \"dram0\" }, { bank = \"dram7\" }]",
    );
    expect_err(
        &t,
        pos(&t, "\"dram7\""),
        &["`links[0].planes[1].bank`", "no bank is named `dram7`"],
    );
    let t = BASE.replace(
        "to = \"screen\"",
        "to = \"screen\"\nexporter = \"heap:system\"\nplanes = [{ bank = \"dram0\" }, { bank = \"vram0\" }]",
    );
    expect_err(
        &t,
        pos(&t, "\"vram0\""),
        &["chroma (CbCr) plane in bank `vram0`", "system banks only"],
    );
}

#[test]
fn params_on_the_wrong_driver() {
    let t = BASE.replace("[[links]]", "params = { quality = 5 }\n\n[[links]]");
    expect_err(
        &t,
        pos(&t, "5 }"),
        &[
            "`nodes[1].params.quality`",
            "thumbnailer nodes",
            "display node",
        ],
    );
}

#[test]
fn event_mistakes() {
    let cases: [(&str, &str, &[&str]); 11] = [
        (
            "at_frame = 3\naction = \"attach\"\n",
            "[[events]]",
            &["without `node`"],
        ),
        (
            "action = \"attach\"\nnode = \"screen\"\n",
            "[[events]]",
            &["expected `at_frame = N` or `at_us = N`"],
        ),
        (
            "at_frame = 3\nat_us = 4\naction = \"attach\"\nnode = \"screen\"\n",
            "4\n",
            &["exactly one"],
        ),
        (
            "at_frame = 30\naction = \"attach\"\nnode = \"screen\"\n",
            "30",
            &["frame 30 is past the end", "0 to 9"],
        ),
        (
            "at_frame = 3\naction = \"kill\"\nprocess = \"nobody\"\n",
            "\"nobody\"",
            &["no node runs in process `nobody`"],
        ),
        (
            "at_frame = 3\naction = \"kill\"\nprocess = \"cam\"\ncount = 3\n",
            "3\n",
            &["`kill` events do not take `count`"],
        ),
        (
            "at_frame = 3\naction = \"stream_off\"\nnode = \"cam\"\nqueue = \"output\"\n",
            "\"output\"",
            &["a camera node has no output queue"],
        ),
        (
            "at_frame = 3\naction = \"set_buffers\"\nlink = \"cam->tv\"\ncount = 3\n",
            "\"cam->tv\"",
            &["no link is named `cam->tv`", "cam->screen"],
        ),
        (
            "at_frame = 3\naction = \"memory_pressure\"\nbank = \"vram0\"\nbytes = \"1MiB\"\n",
            "\"vram0\"",
            &["a device-local bank", "expects a system bank"],
        ),
        (
            "at_frame = 3\naction = \"vram_pressure\"\nbytes = \"64GiB\"\n",
            "\"64GiB\"",
            &["at most the bank's size"],
        ),
        (
            "at_frame = 3\naction = \"explode\"\n",
            "\"explode\"",
            &["unknown variant `explode`"],
        ),
    ];
    for (body, at, msg) in cases {
        let t = format!("{BASE}\n[[events]]\n{body}");
        expect_err(&t, pos(&t, at), msg);
    }
}

#[test]
fn expect_mistakes() {
    let t = format!("{BASE}\n[expect]\nerror = \"ENOPE\"\n");
    expect_err(&t, pos(&t, "\"ENOPE\""), &["not an errno name"]);
    let t = format!("{BASE}\n[expect]\nexit = 3\n");
    expect_err(&t, pos(&t, "3\n"), &["exit code 3"]);
}

#[test]
fn unreadable_file_is_an_io_error_with_exit_code_2() {
    let e = scenario::load(std::path::Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(matches!(e, scenario::ScenarioError::Io { .. }));
    assert_eq!(e.exit_code().code(), 2);
    assert!(e.to_string().contains("/nonexistent/x.toml"));
}

#[test]
fn oversized_text_is_refused() {
    let t = format!("{BASE}#{}\n", "x".repeat(scenario::validate::MAX_TEXT_LEN));
    let e = scenario::validate(&t, "t.toml").unwrap_err();
    assert!(e.to_string().contains("at most"), "{e}");
}
