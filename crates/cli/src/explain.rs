//! `dmabuf explain SOURCE BUFFER`: why one buffer is where it is.
//!
//! `SOURCE` is a `report.json` (any path ending in `.json`, or a file that reads as a report)
//! or a scenario (a file, a bundled name, or `-`), which is then run first (with `--set`,
//! `--frames`, `--seed`; nothing is written). The answer is the report's `buffers[].reason`
//! for `BUFFER` ([`scenario::report::reason`]): every placement decision, with the devices, each
//! combined constraint and the device that set it, the source chosen, its physical ranges and
//! the alternatives refused, untried and ruled out. `--json` prints the reason as JSON.

use crate::source;
use scenario::report::Report;
use scenario::run::{run, RunOptions};
use std::process::ExitCode;

/// The arguments of `dmabuf explain`.
pub struct Args {
    /// A report.json or a scenario.
    pub source: String,
    /// The buffer's name (`isp-out[0]`).
    pub buffer: String,
    /// Print JSON.
    pub json: bool,
    /// `--set` overrides (a scenario source only).
    pub set: Vec<String>,
    /// `--frames` (a scenario source only).
    pub frames: Option<u64>,
    /// `--seed` (a scenario source only).
    pub seed: Option<u64>,
}

fn report_of(a: &Args) -> Result<Report, (String, u8)> {
    let p = std::path::Path::new(&a.source);
    let looks_json = a.source.ends_with(".json");
    if looks_json || p.is_file() {
        if let Ok(text) = std::fs::read_to_string(p) {
            match Report::from_json(&text) {
                Ok(r) => return Ok(r),
                Err(e) if looks_json => {
                    return Err((format!("{}: not a report: {e}", a.source), 2));
                }
                Err(_) => {}
            }
        } else if looks_json {
            return Err((format!("{}: cannot read it", a.source), 2));
        }
    }
    let s = source::load(&a.source, &a.set).map_err(|e| (e.render(), 2))?;
    let s = match a.seed {
        Some(seed) => s.with_seed(seed),
        None => s,
    };
    let s = match a.frames {
        Some(f) => s.with_frames(f).map_err(|e| (e.render(), 2))?,
        None => s,
    };
    Ok(run(&s, &RunOptions::default()).report)
}

/// Runs `dmabuf explain` (module doc): exit 0 with the explanation, 2 when the source cannot
/// be read or has no such buffer.
pub fn main(a: Args) -> ExitCode {
    let report = match report_of(&a) {
        Ok(r) => r,
        Err((msg, code)) => {
            eprint!("{msg}");
            if !msg.ends_with('\n') {
                eprintln!();
            }
            return ExitCode::from(code);
        }
    };
    let Some(b) = report.buffers.iter().find(|b| b.name == a.buffer) else {
        let names: Vec<&str> = report.buffers.iter().map(|b| b.name.as_str()).collect();
        eprintln!(
            "error: no buffer `{}` in the report (it has {})",
            a.buffer,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return ExitCode::from(2);
    };
    let Some(reason) = &b.reason else {
        eprintln!(
            "error: the report has no reason for `{}` (never allocated, or a report of an \
             older dmabuf)",
            b.name
        );
        return ExitCode::from(2);
    };
    if a.json {
        out!(
            "{}\n",
            serde_json::to_string_pretty(reason).unwrap_or_default()
        );
    } else {
        out!("{}", reason.text(&b.name, b.size, &b.link));
    }
    ExitCode::SUCCESS
}
