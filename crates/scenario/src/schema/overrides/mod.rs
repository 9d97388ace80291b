//! `--set PATH=VALUE`: overriding any field of a scenario from the command line.
//!
//! An override is applied to the scenario *text*, before the typed validation, so an overridden
//! value is checked exactly like one written in the file (units, ranges, names, the machine), and
//! a mistake is reported against the override that made it:
//!
//! ```text
//! error: --set #2 (links.camera->isp.buffers=100): `links[0].buffers`: 100 buffers: expected 1 to 32
//! ```
//!
//! # Paths
//! A path is keys separated by dots, with `[N]` indexing an array (`soc.cma[0].size`). A key
//! applied to an array of tables picks the element whose `name` is that key, or, for an element
//! with `from` and `to`, whose `FROM->TO` is (`links.camera->isp.buffers`, the link's name as the
//! report spells it). A key containing a dot is written in double quotes
//! (`nodes."cam.0".width`). A field the file leaves out is added to its table; a table the file
//! leaves out is added too (`expect.error=ENOMEM`), and `soc.*` on a scenario without `[soc]`
//! first writes out the bundled default machine, then overrides it.
//!
//! # Values
//! `VALUE` is a TOML value (`6`, `true`, `"x"`, `["a", "b"]`, `{ k = 1 }`). Anything that does
//! not parse as one, and anything replacing a string that is not itself quoted, is taken as a
//! string: `--set soc.cma[0].size=64MiB` and `--set links.camera->isp.memory=dmabuf` need no
//! quotes.
//!
//! # How positions survive
//! Each override is a splice of the text (a value replaced in place, or a key inserted after its
//! table's header); the splices are recorded, so a position in the edited text maps back either
//! into one override (the error names it) or to the same place in the original file (the error
//! keeps the file's line and column).

mod splice;
mod walk;

use crate::error::{Location, ScenarioError};
use crate::validate::{validate, Scenario};
use splice::splice;
use toml_edit::ImDocument;
use walk::{child, At};

/// One step of an override's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OverrideSeg {
    /// A key of a table, or the name of an element of an array of tables.
    Key(String),
    /// An element of an array.
    Index(usize),
}

/// One `--set PATH=VALUE`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// How errors name it (`"--set #2"`).
    pub flag: String,
    /// `PATH=VALUE` as the user wrote it.
    pub arg: String,
    /// The path.
    pub path: Vec<OverrideSeg>,
    /// The value as written (after the first `=`).
    pub value: String,
}

impl Override {
    /// Parses `PATH=VALUE`; `flag` names it in errors (`"--set #1"`).
    ///
    /// ```
    /// use scenario::schema::{Override, OverrideSeg};
    /// let o = Override::parse("--set #1", "soc.cma[0].size=64MiB").unwrap();
    /// assert_eq!(o.path[1], OverrideSeg::Key("cma".into()));
    /// assert_eq!(o.path[2], OverrideSeg::Index(0));
    /// assert_eq!(o.value, "64MiB");
    /// assert!(Override::parse("--set #2", "frames").unwrap_err().to_string().starts_with("--set #2"));
    /// ```
    pub fn parse(flag: &str, arg: &str) -> Result<Override, ScenarioError> {
        let err = |message: String| ScenarioError::Override {
            flag: flag.to_string(),
            arg: arg.to_string(),
            message,
        };
        let (path, value) = split_assignment(arg)
            .ok_or_else(|| err("expected PATH=VALUE (`links.camera->isp.buffers=6`)".into()))?;
        let path = parse_path(path).map_err(err)?;
        Ok(Override {
            flag: flag.to_string(),
            arg: arg.to_string(),
            path,
            value: value.to_string(),
        })
    }

    fn error(&self, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Override {
            flag: self.flag.clone(),
            arg: self.arg.clone(),
            message: message.into(),
        }
    }
}

/// Splits at the first `=` outside double quotes.
fn split_assignment(arg: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in arg.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '=' if !quoted => return Some((&arg[..i], &arg[i + 1..])),
            _ => {}
        }
    }
    None
}

fn parse_path(path: &str) -> Result<Vec<OverrideSeg>, String> {
    let bad = |why: &str| format!("bad path `{path}`: {why}");
    let mut segs = Vec::new();
    let mut rest = path.trim();
    loop {
        let key;
        if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').ok_or_else(|| bad("unterminated quote"))?;
            key = &q[..end];
            rest = &q[end + 1..];
        } else {
            let end = rest.find(['.', '[', '"']).unwrap_or(rest.len());
            key = &rest[..end];
            rest = &rest[end..];
        }
        if key.is_empty() {
            return Err(bad("an empty key"));
        }
        segs.push(OverrideSeg::Key(key.to_string()));
        while let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or_else(|| bad("`[` without `]`"))?;
            let n = r[..close]
                .trim()
                .parse()
                .map_err(|_| bad("an index is a number (`soc.cma[0]`)"))?;
            segs.push(OverrideSeg::Index(n));
            rest = &r[close + 1..];
        }
        if rest.is_empty() {
            return Ok(segs);
        }
        rest = rest
            .strip_prefix('.')
            .ok_or_else(|| bad("expected `.` or `[` after a key"))?;
    }
}

/// One splice of the text: bytes `at..at + old` replaced by `new` bytes, by override `who`.
struct Edit {
    at: usize,
    old: usize,
    new: usize,
    who: usize,
}

/// Where a position of the edited text came from.
enum Origin {
    /// Inside the text override `n` wrote.
    Override(usize),
    /// This byte offset of the original text.
    Original(usize),
}

fn origin(edits: &[Edit], mut pos: usize) -> Origin {
    for e in edits.iter().rev() {
        if pos >= e.at && pos < e.at + e.new {
            return Origin::Override(e.who);
        }
        if pos >= e.at + e.new {
            pos = pos - e.new + e.old;
        }
    }
    Origin::Original(pos)
}

/// Validates scenario `text` read from `file` with `overrides` applied in order (a later one
/// wins). Errors the file would give keep its line and column; errors an override causes name
/// it ([`ScenarioError::Override`]).
///
/// ```
/// use scenario::schema::{validate_with_overrides, Override};
/// let text = scenario::bundled_text("default").unwrap();
/// let set = |i: usize, a: &str| Override::parse(&format!("--set #{i}"), a).unwrap();
/// let s = validate_with_overrides(text, "d.toml", &[
///     set(1, "links.camera->isp.buffers=6"),
///     set(2, "soc.cma[0].size=64MiB"),
/// ]).unwrap();
/// assert_eq!(s.links[0].buffers, 6);
/// assert_eq!(s.soc.cma[0].size.0, 64 << 20);
///
/// // An error in the override names it...
/// let err = validate_with_overrides(text, "d.toml", &[set(1, "seed=3"), set(2, "links.camera->isp.buffers=100")])
///     .unwrap_err();
/// assert!(err.to_string().starts_with("--set #2 (links.camera->isp.buffers=100): `links[0].buffers`"), "{err}");
/// // ...and one it causes elsewhere is reported where the file says it.
/// let err = validate_with_overrides(text, "d.toml", &[set(1, "frames=2")]).unwrap_err();
/// assert!(err.to_string().starts_with("d.toml:149:20: `nodes[5].params.frame`"), "{err}");
/// ```
pub fn validate_with_overrides(
    text: &str,
    file: &str,
    overrides: &[Override],
) -> Result<Scenario, ScenarioError> {
    if overrides.is_empty() {
        return validate(text, file);
    }
    let mut current = text.to_string();
    let mut edits = Vec::new();
    for (who, o) in overrides.iter().enumerate() {
        // At most two rounds: the second after writing out the default machine.
        for _ in 0..2 {
            // The file must parse before it can be edited; if it does not, its own error says
            // why.
            let Ok(doc) = ImDocument::parse(current.as_str()) else {
                return Err(validate(text, file)
                    .err()
                    .unwrap_or_else(|| o.error("the file is not valid TOML")));
            };
            let (at, old, new, done) = splice(&doc, &current, o)?;
            drop(doc);
            current.replace_range(at..at + old, &new);
            edits.push(Edit {
                at,
                old,
                new: new.len(),
                who,
            });
            if done {
                break;
            }
        }
    }
    validate(&current, file).map_err(|e| remap(e, text, &current, file, &edits, overrides))
}

/// The start of every `[table]` header on the path of `o` in `doc`, and of each such table's
/// `name` value (a rule about a whole table, such as "the machine does not build" at
/// `[[soc.cma]]`, is reported at its header or its name).
fn headers_on_path(doc: &ImDocument<&str>, o: &Override) -> Vec<usize> {
    let mut at = At::Table(doc.as_table());
    let mut starts = Vec::new();
    for seg in &o.path {
        match child(at, seg, "") {
            Ok(Some(next)) => {
                if let At::Table(t) = next {
                    starts.extend(t.span().map(|s| s.start));
                    // A rule about a whole `[[array]]` entry is shown at its `name` line
                    // (`validate::machine`): that is the entry's too.
                    starts.extend(t.get("name").and_then(|n| n.span()).map(|s| s.start));
                }
                at = next;
            }
            _ => break,
        }
    }
    starts
}

/// The error `err` of validating `edited` (the original `original` with `edits` applied), with
/// its location moved back to the original file or onto the override that caused it.
fn remap(
    err: ScenarioError,
    original: &str,
    edited: &str,
    file: &str,
    edits: &[Edit],
    overrides: &[Override],
) -> ScenarioError {
    let ScenarioError::Invalid { location, message } = err else {
        return err;
    };
    let Some(span) = location.span.clone() else {
        return ScenarioError::Invalid { location, message };
    };
    if let Ok(doc) = ImDocument::parse(edited) {
        if let Some(o) = overrides
            .iter()
            .rev()
            .find(|o| headers_on_path(&doc, o).contains(&span.start))
        {
            return o.error(message);
        }
    }
    match origin(edits, span.start) {
        Origin::Override(n) => overrides[n].error(message),
        Origin::Original(start) => ScenarioError::Invalid {
            location: Location::of_span(file, original, start..start + span.len()),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use soc::SocDesc;

    const TINY: &str =
        "name = \"tiny\"\nframes = 30\n\n[[nodes]]\nname = \"cam\"\ndriver = \"camera\"\n\
        device = \"camera0\"\nwidth = 640\nheight = 480\n\n[[nodes]]\nname = \"screen\"\n\
        driver = \"display\"\ndevice = \"display0\"\n\n[[links]]\nfrom = \"cam\"\nto = \"screen\"\n\
        buffers = 3\n";

    fn sets(args: &[&str]) -> Vec<Override> {
        args.iter()
            .enumerate()
            .map(|(i, a)| Override::parse(&format!("--set #{}", i + 1), a).unwrap())
            .collect()
    }

    fn run(args: &[&str]) -> Result<Scenario, ScenarioError> {
        validate_with_overrides(TINY, "tiny.toml", &sets(args))
    }

    #[test]
    fn test_override_replaces_a_written_value_and_a_later_one_wins() {
        let s = run(&[
            "links.cam->screen.buffers=6",
            "frames=12",
            "links[0].buffers=5",
        ])
        .unwrap();
        assert_eq!(s.links[0].buffers, 5);
        assert_eq!(s.frames, 12);
    }

    #[test]
    fn test_override_adds_a_missing_field_and_a_missing_table() {
        let s = run(&[
            "links.cam->screen.memory=mmap+expbuf",
            "expect.error=ENOMEM",
            "seed=9",
        ])
        .unwrap();
        assert_eq!(s.links[0].memory, crate::schema::MemoryType::MmapExpbuf);
        assert_eq!(s.expect.error.as_deref(), Some("ENOMEM"));
        assert_eq!(s.seed, 9);
    }

    #[test]
    fn test_override_of_the_machine_writes_out_the_default_one_first() {
        let s = run(&["soc.cma[0].size=64MiB"]).unwrap();
        let mut want = SocDesc::default_soc();
        want.cma[0].size.0 = 64 << 20;
        assert_eq!(s.soc, want);
    }

    #[test]
    fn test_string_fields_take_unquoted_values_and_quoted_ones_alike() {
        assert_eq!(run(&["name=123"]).unwrap().name, "123");
        assert_eq!(run(&["name=\"x y\""]).unwrap().name, "x y");
        assert_eq!(
            run(&["nodes.cam.name=c2", "links[0].from=c2"])
                .unwrap()
                .nodes[0]
                .name,
            "c2"
        );
    }

    #[test]
    fn test_bad_overrides_name_the_override() {
        let cases: [(&[&str], &str); 8] = [
            (&["links[0].buffers=0"], "--set #1 (links[0].buffers=0): `links[0].buffers`"),
            (&["frames=1", "links.cam->screen.buffers=six"], "--set #2 (links.cam->screen.buffers=six): invalid type"),
            (&["links.cam->nowhere.buffers=2"], "--set #1 (links.cam->nowhere.buffers=2): `links` has no element named `cam->nowhere` (it has cam->screen)"),
            (&["links[3].buffers=2"], "`links` has 1 element(s): no index 3"),
            (&["nodes[0].colour=red"], "--set #1 (nodes[0].colour=red): unknown field `colour`"),
            (&["frames.x=1"], "`frames` is an integer: it has no field `x`"),
            (&["nodes[0]=1"], "`nodes[0]` is a table: set one of its fields"),
            (&["links[0].to=ghost"], "--set #1 (links[0].to=ghost): `links[0].to`: no node is named `ghost`"),
        ];
        for (args, want) in cases {
            let err = run(args).unwrap_err();
            assert!(err.to_string().contains(want), "{args:?}: {err}");
            assert_eq!(err.exit_code(), crate::ExitCode::Invalid);
        }
        for bad in ["frames", "=3", "a..b=1", "a[x]=1", "a[0=1", "\"a=1"] {
            let err = Override::parse("--set #1", bad).unwrap_err();
            assert!(err.to_string().starts_with("--set #1 ("), "{bad}: {err}");
        }
    }

    #[test]
    fn test_errors_the_file_gives_keep_its_line_after_inserted_lines() {
        let bad = TINY.replace("to = \"screen\"", "to = \"screeen\"");
        let plain = validate(&bad, "t.toml").unwrap_err().to_string();
        assert!(plain.starts_with("t.toml:18:6:"), "{plain}");
        // Two inserted lines above the error, one value changed on a line of its own.
        let o = sets(&[
            "nodes.cam.params.pattern=bars",
            "nodes.screen.fps=30",
            "seed=4",
        ]);
        let with = validate_with_overrides(&bad, "t.toml", &o)
            .unwrap_err()
            .to_string();
        assert_eq!(with, plain);
    }

    #[test]
    fn test_override_adds_a_key_to_an_inline_table() {
        // An inline table written in the file gains the key (a swapchain is only valid on a
        // gpu->display link, so the camera's pattern is the key that fits this tiny pipeline).
        let text = TINY.replace(
            "device = \"camera0\"\n",
            "device = \"camera0\"\nparams = { }\n",
        );
        let plain = validate_with_overrides(&text, "t.toml", &[]).unwrap();
        assert!(plain.nodes[0].params.pattern.is_none());
        let s = validate_with_overrides(&text, "t.toml", &sets(&["nodes.cam.params.pattern=bars"]))
            .unwrap();
        assert!(s.nodes[0].params.pattern.is_some());
        // A table the file does not have is created, and a key added to it.
        let s = run(&["nodes.cam.params={}", "nodes.cam.params.pattern=bars"]).unwrap();
        assert!(s.nodes[0].params.pattern.is_some());
    }

    proptest::proptest! {
        #[test]
        fn test_any_override_text_is_answered_without_panicking(
            path in "[a-z_.\\[\\]0-9>\"-]{0,24}",
            value in "[ -~]{0,12}",
        ) {
            let arg = format!("{path}={value}");
            if let Ok(o) = Override::parse("--set #1", &arg) {
                let _ = validate_with_overrides(TINY, "t.toml", &[o]);
            }
        }
    }

    #[test]
    fn test_no_override_is_plain_validation() {
        assert_eq!(run(&[]).unwrap(), validate(TINY, "tiny.toml").unwrap());
    }
}
