//! Errors of loading, validating and running a scenario, and the exit codes they map to.
//!
//! A scenario is user input, so every failure is a value that says *where* (file, line, column)
//! and *what was expected*, the way a compiler does:
//!
//! ```text
//! scenarios/mine.toml:12:1: unknown field `colour`, expected one of `name`, `kind`, `base`, `size`
//! ```
//!
//! # Exit codes (the `dmabuf` binary's contract)
//! 1. `0`: the run verified: every frame arrived intact and the checker found nothing unexpected.
//! 2. `1`: the run finished but found corruption or checker findings the scenario did not declare
//!    expected, or failed at run time ([`ScenarioError::Run`]).
//! 3. `2`: the scenario or the arguments are invalid ([`ScenarioError::Invalid`],
//!    [`ScenarioError::Io`], [`ScenarioError::UnknownBundled`], [`ScenarioError::Override`]);
//!    nothing ran.

use std::fmt;
use std::ops::Range;
use thiserror::Error;

/// The process exit code of a run or a check (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExitCode {
    /// `0`: verified.
    Verified,
    /// `1`: corruption, unexpected checker findings, or a run-time failure.
    Failed,
    /// `2`: invalid scenario or arguments.
    Invalid,
}

impl ExitCode {
    /// The number the process exits with.
    ///
    /// ```
    /// assert_eq!(scenario::ExitCode::Invalid.code(), 2);
    /// ```
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Verified => 0,
            ExitCode::Failed => 1,
            ExitCode::Invalid => 2,
        }
    }
}

/// Where in a scenario file something is: 1-based line and column (in characters), and the byte
/// span the parser reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file as the user named it (`"scenarios/default.toml"`, or `"<bundled default>"`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// The byte range in the text, when known.
    pub span: Option<Range<usize>>,
    /// The text of the line, for a caret display ([`ScenarioError::render`]).
    pub source_line: String,
}

impl Location {
    /// The location of byte offset `span.start` in `text`.
    ///
    /// ```
    /// let loc = scenario::Location::of_span("a.toml", "x = 1\ncolour = 2\n", 6..12);
    /// assert_eq!((loc.line, loc.column), (2, 1));
    /// assert_eq!(loc.to_string(), "a.toml:2:1");
    /// ```
    pub fn of_span(file: &str, text: &str, span: Range<usize>) -> Location {
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        Location {
            file: file.to_string(),
            line: text[..start].matches('\n').count() + 1,
            column: text[line_start..start].chars().count() + 1,
            span: Some(span),
            source_line: text[line_start..line_end]
                .trim_end_matches('\r')
                .to_string(),
        }
    }

    /// A location with no position (the file as a whole).
    pub fn whole_file(file: &str) -> Location {
        Location {
            file: file.to_string(),
            line: 1,
            column: 1,
            span: None,
            source_line: String::new(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Everything that can go wrong between a scenario path and a finished run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The scenario text is not a valid scenario: bad TOML, an unknown key, a bad unit, a dangling
    /// name, an inconsistent machine... The message says what was expected.
    #[error("{location}: {message}")]
    Invalid {
        /// Where.
        location: Location,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The scenario file could not be read (or is not a regular file of a sensible size).
    /// The operating system's answer is shown by errno name (`ENOENT (No such file or
    /// directory)`).
    #[error("cannot read scenario `{path}`: {}", io_by_name(source))]
    Io {
        /// The path as given.
        path: String,
        /// The operating system's answer.
        #[source]
        source: std::io::Error,
    },
    /// No bundled scenario has this name.
    #[error("no bundled scenario named `{name}` (bundled: {known})")]
    UnknownBundled {
        /// The name asked for.
        name: String,
        /// The bundled names, comma separated.
        known: String,
    },
    /// The scenario was valid but the run failed (an unsatisfiable constraint set, a device that
    /// cannot reach a buffer...): the message is the explaining error.
    #[error("run failed: {0}")]
    Run(String),
    /// A command-line override (`--set PATH=VALUE`) is malformed, names a field the scenario
    /// does not have, or gives a value validation rejects (see [`crate::schema::Override`]).
    #[error("{flag} ({arg}): {message}")]
    Override {
        /// Which override (`"--set #2"`).
        flag: String,
        /// `PATH=VALUE` as written.
        arg: String,
        /// What was wrong and what was expected.
        message: String,
    },
}

/// An I/O error with its errno by name (`ENOENT (No such file or directory)`), never
/// `os error 2`; an error without an errno is its message.
pub fn io_by_name(e: &std::io::Error) -> String {
    match e.raw_os_error().and_then(uapi::Errno::from_raw) {
        Some(errno) => errno.to_string(),
        None => e.to_string(),
    }
}

impl ScenarioError {
    /// The exit code this error maps to (see the module doc).
    ///
    /// ```
    /// let e = scenario::validate("frames = 0\n", "x.toml").unwrap_err();
    /// assert_eq!(e.exit_code(), scenario::ExitCode::Invalid);
    /// ```
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ScenarioError::Invalid { .. }
            | ScenarioError::Io { .. }
            | ScenarioError::UnknownBundled { .. }
            | ScenarioError::Override { .. } => ExitCode::Invalid,
            ScenarioError::Run(_) => ExitCode::Failed,
        }
    }

    /// The location, for [`ScenarioError::Invalid`].
    pub fn location(&self) -> Option<&Location> {
        match self {
            ScenarioError::Invalid { location, .. } => Some(location),
            _ => None,
        }
    }

    /// The message without the location prefix.
    pub fn message(&self) -> String {
        match self {
            ScenarioError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// A multi-line rendering with the offending line and a caret under the column, for a
    /// terminal:
    ///
    /// ```text
    /// error: unknown field `colour`, expected one of `name`, `kind`, `base`, `size`
    ///   --> scenarios/mine.toml:12:1
    ///    |
    /// 12 | colour = "red"
    ///    | ^^^^^^
    /// ```
    pub fn render(&self) -> String {
        let ScenarioError::Invalid { location, message } = self else {
            return format!("error: {self}");
        };
        let mut out = format!("error: {message}\n  --> {location}\n");
        if location.source_line.is_empty() {
            return out;
        }
        let num = location.line.to_string();
        let pad = " ".repeat(num.len());
        let width = location
            .span
            .as_ref()
            .map_or(1, |s| s.len())
            .clamp(1, 80)
            .min(
                location
                    .source_line
                    .chars()
                    .count()
                    .saturating_sub(location.column - 1)
                    .max(1),
            );
        out += &format!(
            "{pad} |\n{num} | {}\n{pad} | {}{}\n",
            location.source_line,
            " ".repeat(location.column - 1),
            "^".repeat(width)
        );
        out
    }
}
