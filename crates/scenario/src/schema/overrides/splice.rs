//! Turning an override into one splice of the scenario text: a value replaced in place, a key
//! inserted after its table's header (or into an inline table), or the default machine written
//! out first; and the TOML spelling of keys and values.

use super::walk::{child, describe, shown_path, At};
use super::{Override, OverrideSeg};
use crate::error::ScenarioError;
use serde::Serialize;
use soc::SocDesc;
use toml_edit::{ImDocument, Value};

/// A TOML key as written: bare if it can be, else quoted.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_string(k)
    }
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            '\n' => out += "\\n",
            '\t' => out += "\\t",
            '\r' => out += "\\r",
            c if c.is_control() => out += &format!("\\u{:04X}", c as u32),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The TOML text `raw` stands for; `replacing_string` when the value it replaces is a string.
fn value_text(raw: &str, replacing_string: bool) -> String {
    let raw = raw.trim();
    if replacing_string && !raw.starts_with('"') && !raw.starts_with('\'') {
        return toml_string(raw);
    }
    match raw.parse::<Value>() {
        Ok(mut v) => {
            v.decor_mut().clear();
            v.to_string()
        }
        Err(_) => toml_string(raw),
    }
}

/// The byte offset where a key of the table whose header is at `header` may be inserted: the
/// start of the line after the header.
fn after_header(text: &str, header_end: usize) -> (usize, &'static str) {
    match text[header_end..].find('\n') {
        Some(i) => (header_end + i + 1, ""),
        None => (text.len(), "\n"),
    }
}

/// A splice of the text: at this offset, replace this many bytes by this text; `true` when it
/// applies the override, `false` when it only prepared for it (wrote out the default machine).
pub(super) type Splice = (usize, usize, String, bool);

/// The splice that applies `o` to `text` (parsed as `doc`).
pub(super) fn splice(
    doc: &ImDocument<&str>,
    text: &str,
    o: &Override,
) -> Result<Splice, ScenarioError> {
    let root = doc.as_table();
    let mut at = At::Table(root);
    for (depth, seg) in o.path.iter().enumerate() {
        let shown = shown_path(&o.path[..depth]);
        let next = child(at, seg, &shown).map_err(|m| o.error(m))?;
        let Some(next) = next else {
            // The key is missing: add it (and what is missing under it) as a dotted key.
            let rest = &o.path[depth..];
            if depth == 0 && o.path.len() > 1 && *seg == OverrideSeg::Key("soc".into()) {
                return Ok((text.len(), 0, default_soc_text(text)?, false));
            }
            if rest.iter().any(|s| matches!(s, OverrideSeg::Index(_))) {
                return Err(o.error(format!(
                    "`{}` is not in the scenario: an array element cannot be created by --set",
                    shown_path(&o.path[..=depth])
                )));
            }
            let key: Vec<String> = rest
                .iter()
                .filter_map(|s| match s {
                    OverrideSeg::Key(k) => Some(toml_key(k)),
                    OverrideSeg::Index(_) => None,
                })
                .collect();
            let assignment = format!("{} = {}", key.join("."), value_text(&o.value, false));
            return match at {
                At::Table(t) if std::ptr::eq(t, root) => Ok((0, 0, assignment + "\n", true)),
                At::Table(t) => match t.span() {
                    Some(span) => {
                        let (pos, lead) = after_header(text, span.end);
                        Ok((pos, 0, format!("{lead}{assignment}\n"), true))
                    }
                    None => Err(o.error(format!(
                        "`{shown}` is written without a header here: add `{}` to the file",
                        key.join(".")
                    ))),
                },
                At::Value(Value::InlineTable(t)) => {
                    let span = t.span().ok_or_else(|| o.error("cannot locate the table"))?;
                    let sep = if t.is_empty() { " " } else { ", " };
                    Ok((span.start + 1, 0, format!(" {assignment}{sep}"), true))
                }
                other => Err(o.error(format!("`{shown}` is {}", describe(&other)))),
            };
        };
        at = next;
    }
    match at {
        At::Value(v) => {
            let span = v
                .span()
                .ok_or_else(|| o.error("cannot locate this value in the file"))?;
            let new = value_text(&o.value, matches!(v, Value::String(_)));
            Ok((span.start, span.len(), new, true))
        }
        other => Err(o.error(format!(
            "`{}` is {}: set one of its fields (`{}.FIELD`)",
            shown_path(&o.path),
            describe(&other),
            shown_path(&o.path)
        ))),
    }
}

/// The bundled default machine as a `[soc]` table appended to `text`.
fn default_soc_text(text: &str) -> Result<String, ScenarioError> {
    #[derive(Serialize)]
    struct Wrap {
        soc: SocDesc,
    }
    let body = toml::to_string(&Wrap {
        soc: SocDesc::default_soc(),
    })
    .map_err(|e| ScenarioError::Run(format!("writing the default machine: {e}")))?;
    let lead = if text.ends_with('\n') || text.is_empty() {
        "\n"
    } else {
        "\n\n"
    };
    Ok(format!(
        "{lead}# the bundled default machine, written out by --set\n{body}"
    ))
}
