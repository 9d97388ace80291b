//! Every field and driver parameter docs/scenario.md documents for `[[nodes]]` and `[[links]]`
//! takes effect: changing it changes what the run writes (report.json or the thumbnail), or
//! the combination is refused by validation with exit 2. A documented field without a case
//! here fails the test.

use scenario::run::{run, RunOptions};
use scenario::validate;
use std::collections::BTreeSet;

/// The default pipeline at 640x480 for 24 frames; the encoder still joins mid-stream.
fn base() -> String {
    scenario::bundled_text("default")
        .unwrap()
        .replace("width = 3840", "width = 640")
        .replace("height = 2160", "height = 480")
        .replace("frames = 600", "frames = 24")
        .replace("at_frame = 300", "at_frame = 12")
        .replace("frame = 100,", "frame = 4,")
}

fn swapchain() -> String {
    scenario::bundled_text("swapchain-wayland")
        .unwrap()
        .replace("frames = 120", "frames = 24")
}

fn rle() -> String {
    scenario::bundled_text("encoder-rle")
        .unwrap()
        .replace("frames = 120", "frames = 8")
}

/// The names in the first column of the first table after `heading` in docs/scenario.md.
fn documented(doc: &str, heading: &str) -> BTreeSet<String> {
    let at = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no `{heading}` in the doc"));
    let mut names = BTreeSet::new();
    let mut in_table = false;
    for line in doc[at..].lines().skip(1) {
        if let Some(rest) = line.strip_prefix("| `") {
            in_table = true;
            names.insert(rest.split('`').next().unwrap().to_string());
        } else if in_table && !line.starts_with('|') {
            break;
        }
    }
    names
}

/// Changing `from` to `to` in `text` is refused with exit 2, or changes what the run writes;
/// anything else panics.
fn outcome(text: &str, from: &str, to: &str) {
    // Comment lines out, so that a replacement never lands in one.
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = text.as_str();
    assert!(text.contains(from), "`{from}` is not in the base text");
    let changed = text.replacen(from, to, 1);
    let s = match validate(&changed, "walk.toml") {
        Ok(s) => s,
        Err(e) => {
            assert_eq!(e.exit_code().code(), 2, "{e}");
            assert!(e.to_string().starts_with("walk.toml:"), "{e}");
            return;
        }
    };
    let a = run(
        &validate(text, "base.toml").unwrap(),
        &RunOptions::default(),
    );
    let b = run(&s, &RunOptions::default());
    assert!(
        a.report.to_json() != b.report.to_json() || a.thumbnail != b.thumbnail,
        "changing `{from}` to `{to}` changed nothing the run writes"
    );
}

#[test]
fn test_every_documented_node_field_and_param_changes_the_run_or_is_refused() {
    let doc = include_str!("../../../../docs/scenario.md");
    let b = base();
    // (field, base text, from, to)
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("name", b.clone(), "name = \"display\"", "name = \"screen\""),
        ("driver", b.clone(), "driver = \"display\"", "driver = \"encoder\""),
        ("device", b.clone(), "device = \"isp0\"", "device = \"encoder0\""),
        // The process a node lives in is what a `kill` event takes down.
        (
            "process",
            scenario::bundled_text("process-killed").unwrap().replace("frames = 180", "frames = 40").replace("at_frame = 90", "at_frame = 20"),
            "process = \"compositor\"",
            "process = \"recorder\"",
        ),
        ("format", b.clone(), "format = \"XRGB8888\"\nwidth", "format = \"NV12\"\nwidth"),
        ("width", b.clone(), "width = 640", "width = 320"),
        ("height", b.clone(), "height = 480", "height = 240"),
        ("fps", b.clone(), "fps = 60", "fps = 30"),
        ("attached", b.clone(), "attached = false", "attached = true"),
        (
            "map_policy",
            b.clone(),
            "process = \"compositor\"\nformat = \"XRGB8888\"\nwidth = 640\nheight = 480\nfps = 60",
            "process = \"compositor\"\nformat = \"XRGB8888\"\nwidth = 640\nheight = 480\nfps = 60\nmap_policy = \"unmap_on_dequeue\"",
        ),
        ("params", b.clone(), "params = { pattern = \"bars\" }", "params = { pattern = \"ramp\" }"),
        ("pattern", rle(), "pattern = \"bars\"", "pattern = \"noise\""),
        ("transform", rle(), "transform = \"copy\"", "transform = \"invert\""),
        ("swapchain", swapchain(), "swapchain = \"wayland\"", "swapchain = \"dri2\""),
        ("max_in_flight", swapchain(), "max_in_flight = 1 }", "max_in_flight = 2 }"),
        ("vram", b.clone(), "vram = \"vram0\"", "vram = \"dram0\""),
        ("p2p", b.clone(), "vram = \"vram0\" }", "vram = \"vram0\", p2p = true }"),
        ("codec", rle(), "codec = \"rle\"", "codec = \"checksum\""),
        ("frame", b.clone(), "frame = 4,", "frame = 5,"),
        ("scale", b.clone(), "scale = 16,", "scale = 8,"),
        ("quality", b.clone(), "quality = 85", "quality = 40"),
    ];
    let covered: BTreeSet<String> = cases.iter().map(|c| c.0.to_string()).collect();
    let mut fields = documented(doc, "## `[[nodes]]`");
    fields.extend(documented(doc, "### `params`"));
    let missing: Vec<_> = fields.difference(&covered).collect();
    assert!(missing.is_empty(), "documented without a case: {missing:?}");
    for (_, text, from, to) in &cases {
        outcome(text, from, to);
    }
}

#[test]
fn test_every_documented_link_field_changes_the_run_or_is_refused() {
    let doc = include_str!("../../../../docs/scenario.md");
    let b = base();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("name", b.clone(), "name = \"isp-out\"", "name = \"isp-frames\""),
        ("from", b.clone(), "from = \"gpu\"", "from = \"isp\""),
        ("to", b.clone(), "to = \"isp\"", "to = \"gpu\""),
        ("buffers", b.clone(), "buffers = 3", "buffers = 2"),
        ("memory", b.clone(), "memory = \"dmabuf\"", "memory = \"mmap+expbuf\""),
        ("exporter", rle(), "to = [\"display\", \"encoder\"]\nbuffers = 4", "to = [\"display\", \"encoder\"]\nbuffers = 4\nexporter = \"heap:cma\""),
        ("policy", b.clone(), "policy = \"deferred\"            #", "policy = \"no_migrate\"            #"),
        ("region", b.clone(), "exporter = \"gpu\"", "exporter = \"gpu\"\nregion = \"cma0\""),
        (
            "planes",
            rle(),
            "to = [\"display\", \"encoder\"]\nbuffers = 4",
            "to = [\"display\", \"encoder\"]\nbuffers = 4\nplanes = [{ bank = \"dram0\" }, { bank = \"dram1\" }]",
        ),
        ("sync", b.clone(), "exporter = \"gpu\"", "exporter = \"gpu\"\nsync = \"explicit\""),
        // The copy of the late encoder's migrations moves from the default engine to the CPU.
        ("migrate_with", b.clone(), "policy = \"deferred\"            #", "migrate_with = \"cpu\"\npolicy = \"deferred\"            #"),
    ];
    let covered: BTreeSet<String> = cases.iter().map(|c| c.0.to_string()).collect();
    let fields = documented(doc, "## `[[links]]`");
    let missing: Vec<_> = fields.difference(&covered).collect();
    assert!(missing.is_empty(), "documented without a case: {missing:?}");
    for (_, text, from, to) in &cases {
        outcome(text, from, to);
    }
}
