//! What a run leaves behind: the report, its JSON and text forms, the trace, and the pictures.
//!
//! The runner fills a [`Report`] (counts, placements, migrations, latency samples, findings)
//! and records a [`Trace`] (jobs, fences, migrations, attaches on the virtual clock). Writers
//! turn them into the files of `--out DIR` ([`write_outputs`]):
//!
//! | file | from | writer |
//! |---|---|---|
//! | `report.json` | [`Report`] | [`Report::to_json`] (schema in [`model`]) |
//! | `trace.json` | [`Trace`] | [`Trace::write_chrome_json`] (opens in Perfetto; streamed to disk during a run, module [`chrome`]) |
//! | `timeline.svg` | [`Trace`] | [`timeline_svg`] |
//! | `latency.svg` | [`Report`] | [`latency_svg`] |
//! | `memory.svg` | [`Report`]'s counters | [`memory_svg`] (banks, CMA regions, processes' dma-buf RSS over time) |
//!
//! (`thumbnail.jpg` comes from the thumbnailer driver itself.) Every writer is deterministic: the
//! same report and trace give the same bytes.

pub mod chrome;
pub mod cost;
pub mod counters;
pub mod drivers;
pub mod lanes;
pub mod latency;
pub mod limits;
mod memory_svg;
pub mod model;
pub mod reason;
mod stats;
mod svg;
mod text;
mod trace;

pub use cost::{DelayedJob, FrameCost};
pub use counters::{CounterSeries, CountersReport};
pub use drivers::{DisplayReport, EncoderReport, GpuReport, SwapchainReport, Vb2QueueReport};
pub use latency::SourceLatency;
pub use limits::{GroupReport, GroupVram};
pub use memory_svg::{memory_series, memory_svg};
pub use model::{
    BufferReport, CheckerReport, CorruptedFrame, DeviceReport, FaultReport, FenceCounts, Finding,
    FrameCounts, FrameLatency, LatencyReport, MapCounts, MigrationReport, NodeLatency, NodeReport,
    Placement, Report, RunError, Unexplained, SCHEMA_VERSION,
};
pub use reason::{BufferReason, ReasonConstraint, ReasonDecision, ReasonGroup};
pub use stats::{
    percentile, FrameSample, LatencyStats, LatencySummary, EXACT_SAMPLES, FRAME_SAMPLE_CAP,
};
pub use svg::{latency_svg, timeline_svg, xml_escape, TimelineOptions};
pub use text::{stutter_around, text_summary, STUTTER_WINDOW};
pub use trace::{JobCategory, Trace, TraceEvent, TraceKind, TrackId, MIGRATION_TRACK};

use std::path::{Path, PathBuf};

/// The file names [`write_outputs`] writes, in order.
pub const OUTPUT_FILES: [&str; 5] = [
    "report.json",
    "trace.json",
    "timeline.svg",
    "latency.svg",
    "memory.svg",
];

/// Writes `report.json`, `trace.json`, `timeline.svg`, `latency.svg` and `memory.svg` into
/// `dir` (created if
/// missing); returns their paths. `trace.json` is written from the trace's file when it was
/// streamed ([`Trace::stream_to`]; the file is removed after), never whole in memory.
pub fn write_outputs(dir: &Path, report: &Report, trace: &Trace) -> std::io::Result<Vec<PathBuf>> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    for name in OUTPUT_FILES {
        let p = dir.join(name);
        match name {
            "trace.json" => {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&p)?);
                trace.write_chrome_json(&mut f)?;
                f.flush()?;
                trace.remove_stream_file()?;
            }
            "report.json" => std::fs::write(&p, report.to_json())?,
            "timeline.svg" => std::fs::write(&p, timeline_svg(trace, &TimelineOptions::default()))?,
            "memory.svg" => std::fs::write(&p, memory_svg(report))?,
            _ => std::fs::write(&p, latency_svg(report))?,
        }
        paths.push(p);
    }
    Ok(paths)
}
