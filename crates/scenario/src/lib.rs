//! Scenarios: a machine and a pipeline described in TOML, validated, run on a virtual clock, and
//! reported.
//!
//! This is the user-facing layer of `dmabuf` (no kernel counterpart): a driver or media engineer
//! writes what the SoC looks like (banks, CMA, IOMMUs, devices with their bandwidth) and which
//! drivers share which buffers, runs it, and reads where every buffer was placed, what migrated
//! and why, what each frame cost, and whether every byte arrived intact.
//!
//! The pieces, in the order a run uses them:
//!
//! 1. [`schema`]: the file format (serde types, every table `deny_unknown_fields`);
//! 2. [`validate()`]: text to a [`Scenario`], or a [`ScenarioError`] with file, line and column
//!    and what was expected; [`bundled()`] scenarios ship in the binary;
//! 3. [`clock`]: the virtual clock and a deterministic discrete-event queue; device time is the
//!    drivers' model (`drivers::media::dma_cost`: latency + bytes / bandwidth);
//! 4. [`run`]: the runner, a scheduler over the drivers' device jobs (`drivers::job`) on that
//!    clock; it moves no byte itself;
//! 5. [`report`]: the [`Report`](report::Report) and its JSON/text writers, the
//!    [`Trace`](report::Trace) and its Perfetto writer, the SVG timeline and latency plot.
//!
//! # Tutorial: validate a scenario, read an error
//! ```
//! let text = r#"
//! name = "tiny"
//! frames = 30
//!
//! [[nodes]]
//! name = "cam"
//! driver = "camera"
//! device = "camera0"     # a device of the default machine
//! width = 640
//! height = 480
//!
//! [[nodes]]
//! name = "screen"
//! driver = "display"
//! device = "display0"
//!
//! [[links]]
//! from = "cam"
//! to = "screen"
//! buffers = 3
//! "#;
//! let s = scenario::validate(text, "tiny.toml").unwrap();
//! assert_eq!(s.links[0].link_name(), "cam->screen");
//! assert_eq!(s.buffer_size(&s.links[0]), 640 * 480 * 3 / 2);
//!
//! // A dangling name is reported where it is written, with what exists.
//! let bad = text.replace("to = \"screen\"", "to = \"screeen\"");
//! let err = scenario::validate(&bad, "tiny.toml").unwrap_err();
//! assert_eq!(err.exit_code().code(), 2);
//! assert!(err.to_string().starts_with("tiny.toml:19:6: `links[0].to`: no node is named `screeen`"), "{err}");
//! ```
//!
//! # Tutorial: a report and its files
//! ```
//! use scenario::clock::VirtualTime;
//! use scenario::report::{JobCategory, LatencyReport, Report, Trace};
//! let mut report = Report::new("tiny", 0);
//! report.frames.produced = 2;
//! report.frames.delivered = 2;
//! report.latency_us = LatencyReport::from_samples(&[(0, VirtualTime::from_us(900)), (1, VirtualTime::from_us(1100))]);
//! let mut trace = Trace::new("tiny");
//! let cam = trace.track("camera0");
//! trace.job(cam, "capture 0", VirtualTime::ZERO, VirtualTime::from_us(300), Some("cam->screen[0]"), 460_800, Some(0), JobCategory::Dma);
//! assert_eq!(report.to_json(), report.clone().to_json()); // byte-identical
//! assert_eq!(report.exit_code(), scenario::ExitCode::Verified);
//! let dir = std::env::temp_dir().join(format!("scenario-doc-{}", std::process::id()));
//! let files = scenario::report::write_outputs(&dir, &report, &trace).unwrap();
//! assert_eq!(files.len(), 5); // report.json, trace.json, timeline.svg, latency.svg, memory.svg
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod bundled;
pub mod clock;
mod error;
pub mod report;
pub mod run;
pub mod schema;
pub mod validate;

pub use bundled::{bundled, bundled_text, load_bundled, DEFAULT};
pub use error::{io_by_name, ExitCode, Location, ScenarioError};
pub use validate::{load, validate, Scenario};
