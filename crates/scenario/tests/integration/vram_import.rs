//! A group's `vram_limit` and GPU imports: the kernel charges `dmem.max` when TTM gives an
//! object VRAM, to the allocating process's cgroup; a GPU's import of a buffer another
//! exporter made stays in GTT on that exporter's pages and is never charged. So a limit on a
//! group whose processes only import could never act: `check` and `run` refuse it (`EINVAL`,
//! at the limit's position), and without the limit the same group runs with nothing charged.

use super::pos;
use scenario::run::{run, RunOptions};
use scenario::ExitCode;

/// camera (process `capture`) -> gpu (process `compositor`, imports the camera's constraint
/// buffers) -> display, the GPU's output in its VRAM (`exporter = "gpu"`), 12 frames; `extra`
/// goes at the end.
fn pipeline(extra: &str) -> String {
    scenario::bundled_text("gpu-vram-pressure")
        .unwrap()
        .replace("frames = 180", "frames = 12")
        .replace("at_frame = 61", "at_frame = 7")
        .replace(
            "device = \"camera0\"\n",
            "device = \"camera0\"\nprocess = \"capture\"\n",
        )
        .replace(
            "device = \"gpu0\"\n",
            "device = \"gpu0\"\nprocess = \"compositor\"\n",
        )
        + extra
}

fn group(name: &str, limit: &str, process: &str) -> String {
    format!(
        "\n[[groups]]\nname = \"{name}\"\n{limit}\n\n[[processes]]\nname = \"{process}\"\ngroup = \"{name}\"\n"
    )
}

#[track_caller]
fn refused(text: &str, near: &str, parts: &[&str]) {
    let e = scenario::validate(text, "t.toml").expect_err("should not validate");
    assert_eq!(e.exit_code(), ExitCode::Invalid);
    let loc = e.location().expect("a location");
    assert_eq!((loc.line, loc.column), pos(text, near), "{e}");
    let shown = e.to_string();
    for p in parts {
        assert!(shown.contains(p), "`{p}` not in {shown}");
    }
}

#[test]
fn a_vram_limit_on_a_group_that_only_imports_gpu_buffers_is_refused_with_einval() {
    // The capture process allocates constraint buffers the GPU imports: nothing of its is
    // ever in VRAM.
    let t = pipeline(&group("cams", "vram_limit = \"16MiB\"", "capture"));
    refused(
        &t,
        "\"16MiB\"",
        &[
            "EINVAL",
            "no process of group `cams` (capture) allocates a GPU buffer",
            "import",
            "compositor",
        ],
    );
    // The compositor in the group, but its output no longer the GPU's: it only imports.
    let t = pipeline(&group("comp", "vram_limit = \"16MiB\"", "compositor"))
        .replace("exporter = \"gpu\"\n", "exporter = \"constraint\"\n");
    refused(
        &t,
        "\"16MiB\"",
        &[
            "EINVAL",
            "(compositor) allocates a GPU buffer",
            "exporter = \"gpu\"",
        ],
    );
    // A group with no process at all.
    let t = pipeline("\n[[groups]]\nname = \"empty\"\nvram_limit = \"16MiB\"\n");
    refused(&t, "\"16MiB\"", &["EINVAL", "group `empty` has no process"]);
}

#[test]
fn the_same_limit_on_the_allocating_group_is_accepted_and_charged() {
    // The compositor allocates the GPU's output in VRAM: the limit acts (3 buffers of 8100
    // KiB, 16 MiB holds 2: its own third one is evicted).
    let t = pipeline(&group("comp", "vram_limit = \"16MiB\"", "compositor"));
    let r = run(
        &scenario::validate(&t, "t.toml").unwrap(),
        &RunOptions::default(),
    )
    .report;
    let g = r.groups.iter().find(|g| g.name == "comp").unwrap();
    assert_eq!(g.vram.len(), 1, "{:?}", r.groups);
    assert!(g.vram[0].evictions > 0, "{:?}", g.vram[0]);
    assert!(g.vram[0].peak <= 16 << 20, "{:?}", g.vram[0]);
}

#[test]
fn without_the_limit_the_importing_group_is_charged_nothing() {
    let t = pipeline(&group("cams", "", "capture"));
    let r = run(
        &scenario::validate(&t, "t.toml").unwrap(),
        &RunOptions::default(),
    )
    .report;
    assert_eq!(
        r.exit_code(),
        ExitCode::Verified,
        "{}",
        scenario::report::text_summary(&r)
    );
    let g = r.groups.iter().find(|g| g.name == "cams").unwrap();
    // The GPU imported every camera buffer (it read 12 frames) and no VRAM was charged to
    // the group the buffers' allocator is in.
    assert!(g.vram.is_empty(), "{:?}", g.vram);
    assert_eq!(g.processes, ["capture"]);
    assert!(r.devices.iter().any(|d| d.name == "gpu0" && d.jobs > 0));
}
