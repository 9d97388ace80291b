//! The field walk: every field and parameter docs/scenario.md documents (top level, `[soc]` and
//! its tables, `[[nodes]]` and `params`, `[[links]]`, `[[events]]` with each action and its
//! fields and each fault, `[expect]`) takes effect: changing it changes what the run writes
//! (report.json or the thumbnail), or the change is refused by validation with exit 2 and
//! `file:line:column`. A documented field without a row here fails the test.
//!
//! Table-driven: a new documented field gets a row `(field, base text, from, to)` in its
//! section's table; `from` is replaced once by `to` in the base text (comment lines removed).

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

/// The bundled scaler pipeline at 640x360 -> 320x180 (NV12 -> XRGB8888), 6 frames.
fn scaler() -> String {
    scenario::bundled_text("scale-convert")
        .unwrap()
        .replace("frames = 120", "frames = 6")
        .replace("width = 3840", "width = 640")
        .replace("height = 2160", "height = 360")
        .replace("width = 1920", "width = 320")
        .replace("height = 1080", "height = 180")
}

/// The bundled encoder -> decoder pipeline at 320x240, 6 frames.
fn transcode() -> String {
    scenario::bundled_text("transcode")
        .unwrap()
        .replace("frames = 120", "frames = 6")
        .replace("width = 1280", "width = 320")
        .replace("height = 720", "height = 240")
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
            let msg = e.to_string();
            // walk.toml:LINE:COLUMN: ...
            let mut parts = msg.splitn(4, ':');
            assert_eq!(parts.next(), Some("walk.toml"), "{msg}");
            for what in ["line", "column"] {
                let n = parts.next().unwrap_or_default().trim();
                assert!(
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
                    "no {what} in `{msg}` (changing `{from}` to `{to}`)"
                );
            }
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
        (
            "driver",
            b.clone(),
            "driver = \"display\"",
            "driver = \"encoder\"",
        ),
        // The m2m kinds: an ISP in the scaler's place copies no pixels of the camera's through
        // a box filter (other bytes, other checksums); a decoder's place needs a decoder.
        (
            "driver",
            scaler(),
            "driver = \"scaler\"",
            "driver = \"isp\"",
        ),
        (
            "driver",
            transcode(),
            "driver = \"decoder\"",
            "driver = \"isp\"",
        ),
        (
            "device",
            b.clone(),
            "device = \"isp0\"",
            "device = \"encoder0\"",
        ),
        // The process a node lives in is what a `kill` event takes down.
        (
            "process",
            scenario::bundled_text("process-killed")
                .unwrap()
                .replace("frames = 180", "frames = 40")
                .replace("at_frame = 90", "at_frame = 20"),
            "process = \"compositor\"",
            "process = \"recorder\"",
        ),
        (
            "format",
            b.clone(),
            "format = \"XRGB8888\"\nwidth",
            "format = \"NV12\"\nwidth",
        ),
        ("width", b.clone(), "width = 640", "width = 320"),
        ("height", b.clone(), "height = 480", "height = 240"),
        ("fps", b.clone(), "fps = 60", "fps = 30"),
        ("attached", b.clone(), "attached = false", "attached = true"),
        (
            "map_policy",
            b.clone(),
            // The encoder's OUTPUT queue (a KMS display has none: refused there, kms.rs test).
            "process = \"recorder\"\nwidth = 640",
            "process = \"recorder\"\nmap_policy = \"unmap_on_dequeue\"\nwidth = 640",
        ),
        (
            "params",
            b.clone(),
            "params = { pattern = \"bars\" }",
            "params = { pattern = \"ramp\" }",
        ),
        (
            "pattern",
            rle(),
            "pattern = \"bars\"",
            "pattern = \"noise\"",
        ),
        (
            "transform",
            rle(),
            "transform = \"copy\"",
            "transform = \"invert\"",
        ),
        (
            "swapchain",
            swapchain(),
            "swapchain = \"wayland\"",
            "swapchain = \"dri2\"",
        ),
        (
            "max_in_flight",
            swapchain(),
            "max_in_flight = 1 }",
            "max_in_flight = 2 }",
        ),
        ("vram", b.clone(), "vram = \"vram0\"", "vram = \"dram0\""),
        (
            "p2p",
            b.clone(),
            "vram = \"vram0\" }",
            "vram = \"vram0\", p2p = true }",
        ),
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

/// Every name in the first column of every table under `heading`, up to the next heading of
/// the same or a higher level; with `cells`, also the backticked names in the other columns
/// whose header is one of `cells` (an action's required and optional fields).
fn documented_all(doc: &str, heading: &str, cells: &[&str]) -> BTreeSet<String> {
    let at = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no `{heading}` in the doc"));
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut names = BTreeSet::new();
    let mut header: Vec<String> = Vec::new();
    for line in doc[at..].lines().skip(1) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        if !line.starts_with('|') {
            header.clear();
            continue;
        }
        let cols: Vec<&str> = line.split(" | ").collect();
        if header.is_empty() {
            header = cols
                .iter()
                .map(|c| c.trim_matches(['|', ' ']).to_string())
                .collect();
            continue;
        }
        if let Some(rest) = line.strip_prefix("| `") {
            names.insert(rest.split('`').next().unwrap().to_string());
        }
        for (k, col) in cols.iter().enumerate().skip(1) {
            if !header.get(k).is_some_and(|h| cells.contains(&h.as_str())) {
                continue;
            }
            // `name` (a size), `name`: each backticked word outside brackets.
            let mut flat = String::new();
            let mut depth = 0usize;
            for c in col.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth = depth.saturating_sub(1),
                    _ if depth == 0 => flat.push(c),
                    _ => {}
                }
            }
            let mut rest = flat.as_str();
            while let Some(i) = rest.find('`') {
                let after = &rest[i + 1..];
                let Some(j) = after.find('`') else { break };
                let word = &after[..j];
                if word.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !word.is_empty() {
                    names.insert(word.to_string());
                }
                rest = &after[j + 1..];
            }
        }
    }
    names
}

type Row = (&'static str, String, &'static str, &'static str);

/// Walks one section: every documented name has a row, every row takes effect.
fn walk(heading: &str, cells: &[&str], rows: &[Row]) {
    let doc = include_str!("../../../../docs/scenario.md");
    let covered: BTreeSet<String> = rows.iter().map(|c| c.0.to_string()).collect();
    let fields = documented_all(doc, heading, cells);
    let missing: Vec<_> = fields.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "{heading}: documented without a row: {missing:?}"
    );
    for (_, text, from, to) in rows {
        outcome(text, from, to);
    }
}

#[test]
fn test_every_documented_top_level_field_changes_the_run_or_is_refused() {
    let b = base();
    let event = "action = \"attach\"\nnode = \"encoder\"";
    walk(
        "## Top level",
        &[],
        &[
            ("name", b.clone(), "name = \"default\"", "name = \"walked\""),
            (
                "description",
                b.clone(),
                "description = \"4K",
                "description = \"Four K",
            ),
            ("seed", b.clone(), "seed = 1\n", "seed = 2\n"),
            ("frames", b.clone(), "frames = 24", "frames = 20"),
            // A bundled machine and a `[soc]` table both: TOML refuses the key twice.
            (
                "soc",
                b.clone(),
                "seed = 1\n",
                "seed = 1\nsoc = \"rk3588\"\n",
            ),
            // The machine: the ISP's device behind no IOMMU scatters no more.
            (
                "[soc]",
                b.clone(),
                "name = \"isp0\"\ndma_mask_bits = 40\niommu = \"smmu0\"",
                "name = \"isp0\"\ndma_mask_bits = 40",
            ),
            (
                "[[nodes]]",
                b.clone(),
                "[[nodes]]\nname = \"thumbnailer\"",
                "[[nodes]]\nname = \"gallery\"",
            ),
            (
                "[[links]]",
                b.clone(),
                "[[links]]\nfrom = \"gpu\"\nto = \"display\"\nbuffers = 3",
                "[[links]]\nfrom = \"gpu\"\nto = \"display\"\nbuffers = 2",
            ),
            ("[[events]]", b.clone(), "at_frame = 12", "at_frame = 16"),
            // A process of no node and a group no process names are refused.
            (
                "[[groups]]",
                limits_heap(),
                "[[groups]]\nname = \"apps\"",
                "[[groups]]\nname = \"others\"",
            ),
            (
                "[[processes]]",
                limits_heap(),
                "[[processes]]\nname = \"app\"",
                "[[processes]]\nname = \"viewer\"",
            ),
            (
                "[expect]",
                b.clone(),
                event,
                "action = \"attach\"\nnode = \"encoder\"\n\n[expect]\nerror = \"ENOMEM\"",
            ),
        ],
    );
}

#[test]
fn test_every_documented_soc_field_changes_the_run_or_is_refused() {
    let b = base();
    // Bundled scenarios on the default machine written out as a `[soc]` table.
    let on_machine = |name: &str| {
        let t = scenario::bundled_text(name).unwrap();
        let at = t.find("[[nodes]]").unwrap();
        let machine = soc::bundled::machine_toml("default").unwrap();
        format!("{}{machine}\n{}", &t[..at], &t[at..])
    };
    let stale = on_machine("missing-cache-sync");
    let banks = on_machine("luma-chroma-banks");
    walk(
        "### `[soc.cpu_cache]`",
        &[],
        // The cache's capacity decides whether a line an uncached CPU read left behind is still
        // there for the next read: a cache of one 64-byte line keeps nothing stale.
        &[(
            "size",
            stale.clone(),
            "[soc.cpu_cache]\nsize = 1048576",
            "[soc.cpu_cache]\nsize = 64",
        )],
    );
    walk(
        "### `[[soc.banks]]`",
        &[],
        &[
            ("name", b.clone(), "name = \"dram0\"", "name = \"lowram\""),
            (
                "kind",
                b.clone(),
                "kind = \"device_local\"",
                "kind = \"system\"",
            ),
            (
                "base",
                b.clone(),
                "base = \"0x1_0000_0000\"",
                "base = \"0x2_0000_0000\"",
            ),
            (
                "size",
                b.clone(),
                "size = \"2GiB\"\n\n[[soc.banks]]\nname = \"carveout0\"",
                // cma0 (512 MiB at 512 MiB) no longer fits in dram0.
                "size = \"768MiB\"\n\n[[soc.banks]]\nname = \"carveout0\"",
            ),
        ],
    );
    walk(
        "### `[[soc.cma]]`",
        &[],
        &[
            ("name", b.clone(), "name = \"cma0\"", "name = \"cma1\""),
            ("bank", b.clone(), "bank = \"dram0\"", "bank = \"nowhere\""),
            (
                "base",
                b.clone(),
                "base = \"0x2000_0000\"",
                "base = \"0x1000_0000\"",
            ),
            ("size", b.clone(), "size = \"512MiB\"", "size = \"1MiB\""),
        ],
    );
    walk(
        "### `[[soc.iommus]]`",
        &[],
        &[
            ("name", b.clone(), "name = \"smmu0\"", "name = \"smmu1\""),
            (
                "aperture_bits",
                b.clone(),
                "aperture_bits = 40",
                "aperture_bits = 13",
            ),
        ],
    );
    let isp = "name = \"isp0\"\ndma_mask_bits = 40\niommu = \"smmu0\"\nmax_segment_size = \"4MiB\"";
    let cam = "dma_mask_bits = 32\nneeds_contiguous = true\nmax_segment_size = \"16MiB\"";
    walk(
        "### `[[soc.devices]]`",
        &[],
        &[
            ("name", b.clone(), "name = \"isp0\"", "name = \"isp1\""),
            ("dma_mask_bits", b.clone(), "name = \"isp0\"\ndma_mask_bits = 40", "name = \"isp0\"\ndma_mask_bits = 12"),
            // vb2's dma-contig MMAP buffers of the direct-mapped camera come from
            // dma_alloc_coherent: below the coherent mask.
            ("coherent_dma_mask_bits", banks.clone(), "name = \"camera0\"\ndma_mask_bits = 32", "name = \"camera0\"\ndma_mask_bits = 32\ncoherent_dma_mask_bits = 12"),
            // A coherent ISP leaves no stale line for the CPU reader that skips its sync.
            ("coherent", stale.clone(), "name = \"isp0\"\ndma_mask_bits = 40\ncoherent = false", "name = \"isp0\"\ndma_mask_bits = 40\ncoherent = true"),
            ("max_segment_size", b.clone(), "max_segment_size = \"16MiB\"", "max_segment_size = \"4KiB\""),
            ("segment_boundary_mask", b.clone(), cam, "dma_mask_bits = 32\nneeds_contiguous = true\nmax_segment_size = \"16MiB\"\nsegment_boundary_mask = \"0xFFF\""),
            // No bundled pipeline has a direct-mapped importer of scattered memory any more
            // (exporters place contiguous memory for them), so this row shows the check only.
            ("max_segments", b.clone(), "dma_mask_bits = 30", "dma_mask_bits = 30\nmax_segments = 0"),
            ("iommu", b.clone(), "iommu = \"smmu0\"", "iommu = \"smmu9\""),
            ("needs_contiguous", b.clone(), isp, "name = \"isp0\"\ndma_mask_bits = 40\niommu = \"smmu0\"\nmax_segment_size = \"4MiB\"\nneeds_contiguous = true"),
            ("bandwidth_bps", b.clone(), "bandwidth_bps = 6_000_000_000", "bandwidth_bps = 1_000_000_000"),
            ("latency_ns", b.clone(), "latency_ns = 5_000", "latency_ns = 500_000"),
            ("modifiers", b.clone(), "name = \"isp0\"\ndma_mask_bits = 40", "name = \"isp0\"\ndma_mask_bits = 40\nmodifiers = [\"no_such_layout\"]"),
            // The ISP writes the frames of the constraint-exported link: its lines now start
            // every 64 KiB, so the buffers grow.
            ("pitch_align", b.clone(), "name = \"isp0\"\ndma_mask_bits = 40", "name = \"isp0\"\ndma_mask_bits = 40\npitch_align = 65536"),
        ],
    );
    // One controller shared by every bank of the default machine.
    let mc = format!(
        "{b}\n[[soc.memory_controllers]]\nname = \"ddr\"\nbanks = [\"dram0\"]\nbandwidth_bps = 100_000_000_000\n"
    );
    walk(
        "### `[[soc.memory_controllers]]`",
        &[],
        &[
            // The counter series is named after it.
            ("name", mc.clone(), "name = \"ddr\"", "name = \"lpddr\""),
            (
                "banks",
                mc.clone(),
                "banks = [\"dram0\"]",
                "banks = [\"nowhere\"]",
            ),
            (
                "bandwidth_bps",
                mc.clone(),
                "bandwidth_bps = 100_000_000_000",
                "bandwidth_bps = 0",
            ),
        ],
    );
}

#[test]
fn test_every_documented_event_field_action_and_fault_changes_the_run_or_is_refused() {
    let b = base();
    let ev = "[[events]]\nat_frame = 12\naction = \"attach\"\nnode = \"encoder\"";
    let with = |extra: &'static str| -> &'static str {
        Box::leak(format!("{ev}\n\n{extra}").into_boxed_str())
    };
    let faults = scenario::bundled_text("missing-fence-wait")
        .unwrap()
        .to_string();
    walk(
        "## `[[events]]`",
        &["required", "optional"],
        &[
            ("at_frame", b.clone(), "at_frame = 12", "at_frame = 14"),
            ("at_us", b.clone(), "at_frame = 12", "at_us = 250_000"),
            ("attach", b.clone(), "action = \"attach\"", "action = \"detach\""),
            ("detach", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"detach\"\nnode = \"encoder\"")),
            ("node", b.clone(), "node = \"encoder\"", "node = \"thumbnailer\""),
            ("vram_pressure", b.clone(), ev, with("[[events]]\nat_frame = 6\naction = \"vram_pressure\"\nbytes = \"2GiB\"")),
            ("bytes", b.clone(), ev, with("[[events]]\nat_frame = 6\naction = \"vram_pressure\"\nbytes = \"3GiB\"")),
            ("bank", b.clone(), ev, with("[[events]]\nat_frame = 6\naction = \"memory_pressure\"\nbank = \"dram9\"\nbytes = \"1GiB\"")),
            ("for_frames", b.clone(), ev, with("[[events]]\nat_frame = 6\naction = \"vram_pressure\"\nbytes = \"2GiB\"\nfor_frames = 0")),
            ("memory_pressure", b.clone(), ev, with("[[events]]\nat_frame = 6\naction = \"memory_pressure\"\nbank = \"dram0\"\nbytes = \"1800MiB\"")),
            ("kill", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"kill\"\nprocess = \"recorder\"")),
            ("process", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"kill\"\nprocess = \"nobody\"")),
            ("stream_off", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"stream_off\"\nnode = \"display\"")),
            ("queue", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"stream_off\"\nnode = \"display\"\nqueue = \"capture\"")),
            ("stream_on", b.clone(), ev, with("[[events]]\nat_frame = 16\naction = \"stream_off\"\nnode = \"display\"\n\n[[events]]\nat_frame = 18\naction = \"stream_on\"\nnode = \"display\"")),
            ("set_buffers", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"set_buffers\"\nlink = \"isp-out\"\ncount = 2")),
            ("link", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"set_buffers\"\nlink = \"nowhere\"\ncount = 2")),
            ("count", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"set_buffers\"\nlink = \"isp-out\"\ncount = 33")),
            ("fault", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"fault\"\nnode = \"display\"\nfault = \"wrong_direction\"")),
            ("bufinfo", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"bufinfo\"\nnode = \"display\"")),
            ("skip_cache_sync", b.clone(), ev, with("[[events]]\nat_frame = 2\naction = \"fault\"\nnode = \"thumbnailer\"\nfault = \"skip_cache_sync\"")),
            ("skip_fence_wait", faults.clone(), "fault = \"skip_fence_wait\"", "fault = \"early_release\""),
            ("early_release", b.clone(), ev, with("[[events]]\nat_frame = 4\naction = \"fault\"\nnode = \"camera\"\nfault = \"early_release\"\nfor_frames = 4")),
            ("wrong_direction", b.clone(), ev, with("[[events]]\nat_frame = 18\naction = \"fault\"\nnode = \"encoder\"\nfault = \"wrong_direction\"")),
        ],
    );
}

#[test]
fn test_every_documented_expect_field_changes_the_run_or_is_refused() {
    let b = base();
    let ev = "action = \"attach\"\nnode = \"encoder\"";
    let with = |extra: &'static str| -> &'static str {
        Box::leak(format!("{ev}\n\n[expect]\n{extra}").into_boxed_str())
    };
    walk(
        "## `[expect]`",
        &[],
        &[
            (
                "findings",
                b.clone(),
                ev,
                with("findings = [\"cpu-stale-read\"]\ncorrupted = \"some\""),
            ),
            ("error", b.clone(), ev, with("error = \"EBUSY\"")),
            // CI compares `dmabuf run`'s exit with it; one contradicting the rest is refused.
            (
                "exit",
                b.clone(),
                ev,
                with("corrupted = \"some\"\nexit = 0"),
            ),
            ("corrupted", b.clone(), ev, with("corrupted = \"some\"")),
        ],
    );
}

/// A camera service allocating four 1200 KiB CMA-heap buffers for a display app, billed to
/// the app's group (`[[groups]]`, `[[processes]]`).
fn limits_heap() -> String {
    r#"name = "limits"
frames = 8

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
process = "service"
format = "XRGB8888"
width = 640
height = 480

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
process = "app"
format = "XRGB8888"
width = 640
height = 480

[[links]]
from = "cam"
to = "screen"
buffers = 4
exporter = "heap:cma"

[[groups]]
name = "apps"
heap_limit = "4800KiB"

[[processes]]
name = "app"
group = "apps"

[[processes]]
name = "service"
charge_to = "app"
"#
    .to_string()
}

#[test]
fn test_every_documented_group_and_process_field_changes_the_run_or_is_refused() {
    let heap = limits_heap();
    // The GPU's three 1920x1080 buffers in VRAM, its process in a group.
    let vram = scenario::bundled_text("gpu-vram-pressure")
        .unwrap()
        .replace("frames = 180", "frames = 12")
        .replace("at_frame = 60", "at_frame = 6")
        + "\n[[groups]]\nname = \"comp\"\nvram_limit = \"24MiB\"\n\n[[processes]]\nname = \"gpu\"\ngroup = \"comp\"\n";
    walk(
        "## `[[groups]]` and `[[processes]]`",
        &[],
        &[
            // The report names the group.
            (
                "name",
                vram.clone(),
                "name = \"comp\"\nvram_limit",
                "name = \"compositors\"\nvram_limit",
            ),
            // Three buffers no longer fit: the fourth allocation is ENOMEM.
            (
                "heap_limit",
                heap.clone(),
                "heap_limit = \"4800KiB\"",
                "heap_limit = \"3600KiB\"",
            ),
            // Two of the GPU's buffers fit: its own third one is evicted.
            (
                "vram_limit",
                vram.clone(),
                "vram_limit = \"24MiB\"",
                "vram_limit = \"16MiB\"",
            ),
            // The app out of the group: its charges land in the root group.
            (
                "group",
                heap.clone(),
                "name = \"app\"\ngroup = \"apps\"",
                "name = \"app\"",
            ),
            // Without it the service keeps the charges (and its group, the root, has no limit).
            ("charge_to", heap.clone(), "charge_to = \"app\"", ""),
        ],
    );
}
