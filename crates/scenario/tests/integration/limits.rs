//! `[[groups]]` and `[[processes]]` through the runner: a heap limit refuses the allocation
//! past it with `ENOMEM` (the run's error, and what `[expect] error` checks), an allocator
//! service's `charge_to` moves the charge to its client's group, and a group's VRAM limit
//! evicts its own GPU buffers, not another group's. Bad values exit 2 at file:line:column.

use scenario::report::{GroupReport, Report};
use scenario::run::{run, RunOptions};

/// A camera feeding a display through 4 heap buffers of 640x480 XRGB8888 (1200 KiB, 300
/// pages each), allocated by the camera's process `service` for the display's process `app`.
fn heap_pipeline(extra: &str) -> String {
    format!(
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
{extra}"#
    )
}

const BUF: u64 = 640 * 480 * 4;

fn run_text(text: &str) -> Report {
    let s = scenario::validate(text, "limits.toml").unwrap_or_else(|e| panic!("{e}"));
    run(&s, &RunOptions::default()).report
}

fn group<'a>(r: &'a Report, name: &str) -> &'a GroupReport {
    r.groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name} in {:?}", r.groups))
}

fn series_max(r: &Report, name: &str) -> f64 {
    let c = r.counters.as_ref().expect("counters");
    c.series(name)
        .unwrap_or_else(|| panic!("no series {name}"))
        .values
        .iter()
        .copied()
        .fold(0.0, f64::max)
}

#[test]
fn a_heap_allocation_past_the_groups_limit_fails_the_run_with_enomem() {
    let groups = |limit: u64| {
        format!(
            "\n[[groups]]\nname = \"cam\"\nheap_limit = {limit}\n\n[[processes]]\nname = \"service\"\ngroup = \"cam\"\n"
        )
    };
    // Exactly four buffers fit: the run is clean and the peak is the limit.
    let r = run_text(&heap_pipeline(&groups(4 * BUF)));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let g = group(&r, "cam");
    assert_eq!(
        (g.heap_max, g.heap_peak, g.heap_failcnt),
        (Some(4 * BUF), 4 * BUF, 0)
    );
    assert_eq!(g.heap_current, 0, "teardown uncharges every buffer");
    assert_eq!(g.processes, ["service"]);
    assert_eq!(series_max(&r, "group cam heap"), (4 * BUF) as f64);
    // One page less: the fourth buffer is refused.
    let r = run_text(&heap_pipeline(&groups(4 * BUF - 4096)));
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].errno, "ENOMEM");
    assert!(
        r.errors[0].message.contains("memcg cam") && r.errors[0].message.contains("cam->screen[3]"),
        "{}",
        r.errors[0].message
    );
    let g = group(&r, "cam");
    assert_eq!((g.heap_peak, g.heap_failcnt), (3 * BUF, 1));
    // `[expect] error = "ENOMEM"` accepts it; expecting another errno adds the mismatch.
    for (want, errors) in [("ENOMEM", 1), ("EBUSY", 2)] {
        let mut text = heap_pipeline(&groups(4 * BUF - 4096));
        text.push_str(&format!("\n[expect]\nerror = \"{want}\"\n"));
        assert_eq!(run_text(&text).errors.len(), errors, "expecting {want}");
    }
}

#[test]
fn charge_to_moves_the_services_heap_charge_to_the_clients_group() {
    let text = |transfer: bool, app_limit: &str| {
        heap_pipeline(&format!(
            "\n[[groups]]\nname = \"system-services\"\n\n[[groups]]\nname = \"apps\"\n{app_limit}\n\
             [[processes]]\nname = \"service\"\ngroup = \"system-services\"\n{}\n\
             [[processes]]\nname = \"app\"\ngroup = \"apps\"\n",
            if transfer { "charge_to = \"app\"" } else { "" }
        ))
    };
    // Without charge_to the service pays for the app's buffers.
    let r = run_text(&text(false, ""));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(group(&r, "system-services").heap_peak, 4 * BUF);
    assert_eq!(group(&r, "apps").heap_peak, 0);
    // With it, each buffer's charge moves to the app as soon as it is allocated: the service
    // never holds more than one at a time.
    let r = run_text(&text(true, ""));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(group(&r, "system-services").heap_peak, BUF);
    assert_eq!(group(&r, "apps").heap_peak, 4 * BUF);
    assert_eq!(series_max(&r, "group apps heap"), (4 * BUF) as f64);
    assert_eq!(series_max(&r, "group system-services heap"), 0.0);
    // The client's limit is what refuses the service's fourth allocation.
    let r = run_text(&text(true, &format!("heap_limit = {}\n", 3 * BUF)));
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].errno, "ENOMEM");
    assert_eq!(group(&r, "apps").heap_failcnt, 1);
    assert_eq!(group(&r, "system-services").heap_failcnt, 0);
}

/// camera -> gpu-a (process `game`) -> gpu-b (process `comp`) -> display, both GPU links
/// from the GPU's exporter in VRAM (1920x1080 XRGB8888, 3 buffers each).
fn vram_pipeline(comp_limit: &str) -> String {
    let base = scenario::bundled_text("gpu-vram-pressure").unwrap();
    let at = base.find("[[nodes]]").unwrap();
    format!(
        r#"{}
[[nodes]]
name = "camera"
driver = "camera"
device = "camera0"
width = 1920
height = 1080

[[nodes]]
name = "gpu-a"
driver = "gpu"
device = "gpu0"
process = "game"
format = "XRGB8888"
width = 1920
height = 1080
params = {{ vram = "vram0", p2p = true }}

[[nodes]]
name = "gpu-b"
driver = "gpu"
device = "gpu0"
process = "comp"
format = "XRGB8888"
width = 1920
height = 1080
params = {{ vram = "vram0", p2p = true }}

[[nodes]]
name = "display"
driver = "display"
device = "display0"
format = "XRGB8888"
width = 1920
height = 1080

[[links]]
from = "camera"
to = "gpu-a"
buffers = 3

[[links]]
from = "gpu-a"
to = "gpu-b"
buffers = 3
exporter = "gpu"

[[links]]
from = "gpu-b"
to = "display"
buffers = 3
exporter = "gpu"

[[groups]]
name = "game"

[[groups]]
name = "comp"
{comp_limit}

[[processes]]
name = "game"
group = "game"

[[processes]]
name = "comp"
group = "comp"
"#,
        &base[..at].replace("frames = 180", "frames = 12")
    )
}

#[test]
fn a_groups_vram_limit_evicts_its_own_buffers_first() {
    let bo = (1920 * 1080 * 4u64).next_multiple_of(4096);
    // Without a limit every buffer of both groups stays in VRAM.
    let r = run_text(&vram_pipeline(""));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let vram = |r: &Report, g: &str| group(r, g).vram[0].clone();
    assert_eq!(vram(&r, "comp").peak, 3 * bo);
    assert_eq!(vram(&r, "game").peak, 3 * bo);
    assert_eq!(vram(&r, "comp").evictions, 0);
    // How many of a link's buffers ended the run outside VRAM.
    let out_of_vram = |r: &Report, link: &str| {
        r.buffers
            .iter()
            .filter(|b| b.link == link)
            .filter(|b| b.placement.as_ref().is_none_or(|p| p.heap != "VRAM"))
            .count()
    };
    assert_eq!(
        out_of_vram(&r, "gpu-b->display"),
        0,
        "{:?}",
        r.buffers
            .iter()
            .map(|b| (&b.name, &b.placement))
            .collect::<Vec<_>>()
    );
    assert_eq!(out_of_vram(&r, "gpu-a->gpu-b"), 0);
    // comp's limit is two buffers. game's are the least recently used in VRAM, and VRAM has
    // room to spare: only comp's limit is in the way, so comp's own buffers go, never game's.
    let r = run_text(&vram_pipeline(&format!("vram_limit = {}", 2 * bo)));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let comp = vram(&r, "comp");
    assert_eq!(comp.max, Some(2 * bo));
    assert!(comp.peak <= 2 * bo, "{comp:?}");
    assert!(comp.evictions > 0, "{comp:?}");
    assert_eq!(comp.region, "drm/gpu0/vram0");
    assert_eq!(vram(&r, "game").evictions, 0);
    assert_eq!(vram(&r, "game").peak, 3 * bo);
    assert_eq!(out_of_vram(&r, "gpu-b->display"), 1, "{:?}", r.buffers);
    assert_eq!(out_of_vram(&r, "gpu-a->gpu-b"), 0, "game's buffers stayed");
    assert_eq!(r.frames.corrupted, 0);
}

#[test]
fn bad_group_and_process_values_exit_2_at_their_position() {
    let cases: &[(&str, &str)] = &[
        // A size that is not one.
        (
            "\n[[groups]]\nname = \"g\"\nheap_limit = \"4 parsecs\"\n",
            "heap_limit",
        ),
        ("\n[[groups]]\nname = \"g/h\"\n", "g/h"),
        (
            "\n[[groups]]\nname = \"g\"\n\n[[groups]]\nname = \"g\"\n",
            "name = \"g\"",
        ),
        (
            "\n[[groups]]\nname = \"g\"\nheap_limit = \"4TiB\"\n",
            "4TiB",
        ),
        // No GPU VRAM in this scenario to limit.
        (
            "\n[[groups]]\nname = \"g\"\nvram_limit = \"1MiB\"\n",
            "vram_limit",
        ),
        ("\n[[processes]]\nname = \"nobody\"\n", "nobody"),
        (
            "\n[[processes]]\nname = \"app\"\ngroup = \"missing\"\n",
            "missing",
        ),
        (
            "\n[[processes]]\nname = \"app\"\ncharge_to = \"app\"\n",
            "charge_to",
        ),
        (
            "\n[[processes]]\nname = \"app\"\ncharge_to = \"ghost\"\n",
            "ghost",
        ),
        (
            "\n[[processes]]\nname = \"app\"\n\n[[processes]]\nname = \"app\"\n",
            "name = \"app\"\n",
        ),
        ("\n[[processes]]\nname = \"app\"\ncolour = 1\n", "colour"),
    ];
    for (extra, near) in cases {
        let text = heap_pipeline(extra);
        let err = scenario::validate(&text, "bad.toml").unwrap_err();
        assert_eq!(err.exit_code().code(), 2, "{err}");
        let msg = err.to_string();
        let (line, _) = super::pos(&text, near);
        assert!(
            msg.starts_with(&format!("bad.toml:{line}:")),
            "{extra:?}: expected line {line}: {msg}"
        );
    }
}
