//! `dmabuf check` refuses what `dmabuf run` would fail on (or run to no effect): each case is an
//! invalid scenario with its line and column, and the nearest valid one runs.

use crate::{line_col, pos, with_soc, BASE};
use scenario::run::{run, RunOptions};
use scenario::ExitCode;

fn refused(text: &str, at: (usize, usize), words: &[&str]) {
    let e = scenario::validate(text, "t.toml").expect_err("should not validate");
    assert_eq!(e.exit_code(), ExitCode::Invalid);
    let loc = e.location().expect("a location");
    assert_eq!((loc.line, loc.column), at, "{}", e.render());
    let shown = e.to_string();
    for w in words {
        assert!(shown.contains(w), "`{w}` not in: {shown}");
    }
}

const CHAIN: &str = r#"name = "t"
frames = 10

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 640
height = 480

[[nodes]]
name = "isp"
driver = "isp"
device = "isp0"
width = 640
height = 480

[[nodes]]
name = "isp2"
driver = "isp"
device = "isp0"
width = 640
height = 480

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
width = 640
height = 480

[[links]]
from = "cam"
to = "isp"

[[links]]
from = "isp"
to = ["isp2", "screen"]
"#;

#[test]
fn a_link_cycle_is_refused() {
    let t = format!("{CHAIN}\n[[links]]\nfrom = \"isp2\"\nto = \"isp\"\n");
    let at = line_col(&t, t.rfind("[[links]]").unwrap());
    refused(&t, at, &["`links[2]`", "cycle (isp -> isp2 -> isp)"]);
    // Without the loop back: valid.
    scenario::validate(CHAIN, "t.toml").expect("a chain validates");
}

#[test]
fn a_sink_never_attached_is_refused() {
    let t = BASE.replace(
        "device = \"display0\"",
        "device = \"display0\"\nattached = false",
    );
    refused(
        &t,
        pos(&t, "false"),
        &["`nodes[1].attached`", "no event attaches it"],
    );
    let ok = format!("{t}\n[[events]]\nat_frame = 3\naction = \"attach\"\nnode = \"screen\"\n");
    scenario::validate(&ok, "t.toml").expect("attached at frame 3");
}

#[test]
fn sizes_or_formats_that_differ_are_refused() {
    let t = CHAIN.replacen(
        "width = 640\nheight = 480\n\n[[links]]",
        "width = 320\nheight = 480\n\n[[links]]",
        1,
    );
    refused(
        &t,
        pos(&t, "\"screen\"]"),
        &["display `screen` takes 320x480", "`isp` produces 640x480"],
    );
    let t = CHAIN.replacen(
        "name = \"screen\"\ndriver = \"display\"\ndevice = \"display0\"\n",
        "name = \"screen\"\ndriver = \"display\"\ndevice = \"display0\"\nformat = \"YUYV\"\n",
        1,
    );
    refused(
        &t,
        pos(&t, "\"screen\"]"),
        &["display `screen` takes YUYV", "`isp` produces NV12"],
    );
    // An ISP converts: its format is what it writes.
    let t = CHAIN.replacen(
        "name = \"isp2\"\ndriver = \"isp\"\ndevice = \"isp0\"\n",
        "name = \"isp2\"\ndriver = \"isp\"\ndevice = \"isp0\"\nformat = \"XRGB8888\"\n",
        1,
    );
    scenario::validate(&t, "t.toml").expect("an ISP converting NV12 to XRGB8888 validates");
}

#[test]
fn a_gpu_without_vram_is_an_integrated_gpu_and_its_exports_run() {
    let t = with_soc(crate::SOC).replace("to = \"screen\"", "to = \"screen\"\nexporter = \"gpu\"");
    let t = t.replace(
        "name = \"screen\"\ndriver = \"display\"",
        "name = \"gpu\"\ndriver = \"gpu\"\ndevice = \"display0\"\n\n[[nodes]]\nname = \"screen\"\ndriver = \"display\"",
    );
    let t = t.replace(
        "from = \"cam\"\nto = \"screen\"",
        "from = \"cam\"\nto = \"gpu\"\n\n[[links]]\nfrom = \"gpu\"\nto = \"screen\"",
    );
    // No device_local bank: the GPU's objects (and its exports) live in system memory.
    let s = scenario::validate(&t, "t.toml").expect("an integrated GPU validates");
    let r = run(&s, &RunOptions::default()).report;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.frames.delivered, r.frames.produced, "{:?}", r.frames);
    assert_eq!(r.frames.corrupted, 0, "{:?}", r.frames);
    // Two VRAM banks, neither `vram0` and none named by the node: which one is refused.
    let banks = "\n[[soc.banks]]\nname = \"vramA\"\nkind = \"device_local\"\nbase = \"0x10_0000_0000\"\nsize = \"256MiB\"\n\n[[soc.banks]]\nname = \"vramB\"\nkind = \"device_local\"\nbase = \"0x20_0000_0000\"\nsize = \"256MiB\"\n";
    let two = t.replacen("[[soc.iommus]]", &format!("{banks}\n[[soc.iommus]]"), 1);
    let e = scenario::validate(&two, "t.toml").expect_err("ambiguous VRAM");
    assert!(
        e.to_string().contains("does not say which VRAM it has"),
        "{}",
        e.render()
    );
    // Named, it validates.
    let named = two.replacen(
        "driver = \"gpu\"\ndevice = \"display0\"",
        "driver = \"gpu\"\ndevice = \"display0\"\nparams = { vram = \"vramB\" }",
        1,
    );
    scenario::validate(&named, "t.toml").expect("a GPU naming its VRAM validates");
}

#[test]
fn buffer_counts_a_vb2_queue_cannot_hold_are_refused_and_the_limit_runs() {
    let t = BASE.replace("to = \"screen\"", "to = \"screen\"\nbuffers = 33");
    refused(&t, pos(&t, "33"), &["33 buffers: expected 1 to 32"]);
    // 32 buffers run past frame 32 without ENOBUFS.
    let t = BASE
        .replace("to = \"screen\"", "to = \"screen\"\nbuffers = 32")
        .replace("frames = 10", "frames = 40");
    let s = scenario::validate(&t, "t.toml").expect("32 buffers validate");
    let r = run(&s, &RunOptions::default()).report;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.frames.delivered, 40, "{:?}", r.frames);
}
