//! Where a scenario comes from: a file, a bundled name, or standard input (`-`), with the
//! command line's `--set PATH=VALUE` overrides applied.
//!
//! The text is read once; validation (and every override) happens in the scenario crate, so an
//! error names the file (`<stdin>` for standard input) with line and column, or the override
//! (`--set #2`). Only regular files are read, and no more than [`MAX_SCENARIO_BYTES`] of
//! anything ([`read_file`]).

use scenario::schema::{validate_with_overrides, Override};
use scenario::{Scenario, ScenarioError};
use std::io::Read;
use std::path::Path;

/// What `dmabuf` calls standard input in messages.
pub const STDIN: &str = "<stdin>";

/// The largest scenario text read (16 MiB; the bundled ones are a few KiB). A file above it,
/// or standard input that goes on past it (`< /dev/zero`), is refused before it fills memory.
pub const MAX_SCENARIO_BYTES: u64 = 16 << 20;

/// The largest report `dmabuf diff` reads (1 GiB).
pub const MAX_REPORT_BYTES: u64 = 1 << 30;

fn io_err(path: &str, source: std::io::Error) -> ScenarioError {
    ScenarioError::Io {
        path: path.to_string(),
        source,
    }
}

/// Reads at most `max` bytes of `r`; more is an `EFBIG` error.
fn read_bounded(r: impl Read, path: &str, max: u64) -> Result<String, ScenarioError> {
    let mut bytes = Vec::new();
    r.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(path, e))?;
    if bytes.len() as u64 > max {
        return Err(too_big(path, max));
    }
    String::from_utf8(bytes).map_err(|e| {
        io_err(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            ),
        )
    })
}

fn too_big(path: &str, max: u64) -> ScenarioError {
    io_err(
        path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("EFBIG: larger than {} MiB, the most read here", max >> 20),
        ),
    )
}

/// What a path that is not a regular file is, for the message.
fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads file `p` (a scenario, or a report for `diff`): only a regular file (a symlink to one
/// is fine), its size checked against `max` before anything is read, so a directory, a FIFO
/// (which would block) or a device (`/dev/zero`, endless) is an error at once.
pub fn read_file(p: &Path, max: u64) -> Result<String, ScenarioError> {
    let shown = p.display().to_string();
    let meta = std::fs::metadata(p).map_err(|e| io_err(&shown, e))?;
    if !meta.file_type().is_file() {
        let what = kind_of(meta.file_type());
        let errno = if meta.is_dir() { "EISDIR" } else { "EINVAL" };
        return Err(io_err(
            &shown,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{errno}: {what}, not a regular file"),
            ),
        ));
    }
    if meta.len() > max {
        return Err(too_big(&shown, max));
    }
    let f = std::fs::File::open(p).map_err(|e| io_err(&shown, e))?;
    read_bounded(f, &shown, max)
}

/// The text of scenario argument `arg` and how messages name it: `-` is standard input, an
/// existing path (or one ending in `.toml`) a file, anything else a bundled scenario's name.
pub fn text_of(arg: &str) -> Result<(String, String), ScenarioError> {
    if arg == "-" {
        let text = read_bounded(std::io::stdin().lock(), STDIN, MAX_SCENARIO_BYTES)?;
        return Ok((text, STDIN.to_string()));
    }
    let p = Path::new(arg);
    if p.exists() || arg.ends_with(".toml") {
        let shown = p.display().to_string();
        return Ok((read_file(p, MAX_SCENARIO_BYTES)?, shown));
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
