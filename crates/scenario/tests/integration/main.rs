//! Integration tests of the `scenario` crate, one file per concern.

mod bandwidth;
mod bundled;
mod check_parity;
mod clock;
mod composite;
mod counters;
mod encoder_capture;
mod encoder_drain;
mod errors;
mod faults;
mod faults_prop;
mod fds;
mod fields;
mod findings_cap;
mod fps;
mod fuzz;
mod kms;
mod kms_latch;
mod kms_scanned;
mod limits;
mod m2m;
mod migration_cost;
mod modifiers;
mod pictures;
mod report;
mod rk3588;
mod run_defects;
mod run_drivers;
mod run_gpu;
mod run_pipeline;
mod threads;
mod thumbnail_job;
mod timeline_memory;
mod timeline_views;
mod trace_structure;
mod trace_svg;
mod uma_bandwidth;
mod v4l2_paths;
mod vram_import;

/// A small valid scenario on the bundled default machine; line numbers matter to the tests.
pub const BASE: &str = r#"name = "t"
frames = 10

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 640
height = 480

[[nodes]]
name = "screen"
driver = "display"
device = "display0"

[[links]]
from = "cam"
to = "screen"
"#;

/// A machine to splice into [`BASE`] (after its first two lines).
pub const SOC: &str = r#"
[soc]

[[soc.banks]]
name = "dram0"
kind = "system"
base = 0
size = "1GiB"

[[soc.banks]]
name = "dram1"
kind = "system"
base = "0x8000_0000"
size = "1GiB"

[[soc.iommus]]
name = "smmu0"

[[soc.devices]]
name = "camera0"

[[soc.devices]]
name = "display0"
iommu = "smmu0"
"#;

/// `BASE` with `SOC` spliced in after the frame count.
pub fn with_soc(soc: &str) -> String {
    BASE.replacen("frames = 10\n", &format!("frames = 10\n{soc}"), 1)
}

/// The 1-based (line, column) of byte offset `at` in `text`.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let line = text[..at].matches('\n').count() + 1;
    let col = text[..at].rsplit('\n').next().unwrap().chars().count() + 1;
    (line, col)
}

/// The (line, column) of the last occurrence of `needle` in `text`.
pub fn pos(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .rfind(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in text"));
    line_col(text, at)
}

/// The (line, column) just after the last occurrence of `needle` (where its value starts).
pub fn after(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .rfind(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in text"));
    line_col(text, at + needle.len())
}
