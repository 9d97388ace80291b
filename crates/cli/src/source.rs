//! Where a scenario comes from: a file, a bundled name, or standard input (`-`), with the
//! command line's `--set PATH=VALUE` overrides applied.
//!
//! The text is read once; validation (and every override) happens in the scenario crate, so an
//! error names the file (`<stdin>` for standard input) with line and column, or the override
//! (`--set #2`).

use scenario::schema::{validate_with_overrides, Override};
use scenario::{Scenario, ScenarioError};
use std::io::Read;
use std::path::Path;

/// What `dmabuf` calls standard input in messages.
pub const STDIN: &str = "<stdin>";

/// The text of scenario argument `arg` and how messages name it: `-` is standard input, an
/// existing path (or one ending in `.toml`) a file, anything else a bundled scenario's name.
pub fn text_of(arg: &str) -> Result<(String, String), ScenarioError> {
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| ScenarioError::Io {
                path: STDIN.to_string(),
                source,
            })?;
        return Ok((text, STDIN.to_string()));
    }
    let p = Path::new(arg);
    if p.exists() || arg.ends_with(".toml") {
        let shown = p.display().to_string();
        let text = std::fs::read_to_string(p).map_err(|source| ScenarioError::Io {
            path: shown.clone(),
            source,
        })?;
        return Ok((text, shown));
    }
    let text = scenario::bundled_text(arg).ok_or_else(|| ScenarioError::UnknownBundled {
        name: arg.to_string(),
        known: scenario::bundled()
            .iter()
            .map(|b| b.0)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    Ok((text.to_string(), format!("<bundled {arg}>")))
}

/// Parses `--set` arguments, numbering them from 1 in messages (`--set #1`).
pub fn parse_sets(sets: &[String]) -> Result<Vec<Override>, ScenarioError> {
    sets.iter()
        .enumerate()
        .map(|(i, a)| Override::parse(&format!("--set #{}", i + 1), a))
        .collect()
}

/// Validates `text` (named `file`) with `sets` applied.
pub fn validate(text: &str, file: &str, sets: &[Override]) -> Result<Scenario, ScenarioError> {
    validate_with_overrides(text, file, sets)
}

/// Loads scenario argument `arg` with the `--set` arguments `sets` applied.
pub fn load(arg: &str, sets: &[String]) -> Result<Scenario, ScenarioError> {
    let (text, file) = text_of(arg)?;
    validate(&text, &file, &parse_sets(sets)?)
}
