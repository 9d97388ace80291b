//! `dmabuf diff A.json B.json`: what changed between two reports.
//!
//! Both reports are read as plain JSON (see [`crate::figures`]) and compared structurally, so a
//! field this version of `dmabuf` does not know is compared like any other. The comparison:
//!
//! - objects key by key (a key only one side has is added or removed);
//! - arrays of objects element by element, matched by identity, not position: the first of
//!   `name`, `buffer`+`frame` (migrations), `device`, `node`+`link` (vb2 queues),
//!   `kind`+`message` (findings), `errno`+`message` (errors) that every element has and that is
//!   unique; an element only one side has is added or removed as a whole;
//! - other arrays position by position when short, else summarised (`600 entries, 12 differ`):
//!   `latency_us.per_frame` is covered by the percentiles;
//! - numbers by value (`16725 -> 18010.5 (+7.7%)`), anything else by equality.
//!
//! Sections come in key order (alphabetical, as `serde_json` keeps objects). Above the details,
//! the headline figures that changed ([`crate::figures::FIGURES`]) and the
//! verdicts. Exit code: 0 when the reports are the same, 1 when they differ, 2 when one cannot be
//! read (as `diff(1)`).

use crate::figures::{self, show};
use serde_json::{json, Map, Value};
use std::fmt::Write;
use std::path::Path;

/// Arrays without identity longer than this are summarised, not listed.
const LIST_LIMIT: usize = 32;

/// How a path differs.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Both sides have it, with different values.
    Changed,
    /// Only B has it.
    Added,
    /// Only A has it.
    Removed,
    /// A long array that differs, summarised.
    Summary(String),
}

/// One difference.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Where (`buffers[cam->screen[0]].placement.heap`).
    pub path: String,
    /// How.
    pub kind: Kind,
    /// A's value (`Null` when added).
    pub a: Value,
    /// B's value (`Null` when removed).
    pub b: Value,
}

impl Change {
    /// The top-level key the change is under (`buffers`).
    pub fn section(&self) -> &str {
        let end = self.path.find(['.', '[']).unwrap_or(self.path.len());
        &self.path[..end]
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The identity of each element of both arrays, by the first key set that all have and that
/// is unique on each side.
fn identities(a: &[Value], b: &[Value]) -> Option<(Vec<String>, Vec<String>)> {
    const KEYS: &[&[&str]] = &[
        &["name"],
        &["buffer", "frame"],
        &["device"],
        &["node", "link"],
        &["kind", "message"],
        &["errno", "message"],
    ];
    let id = |v: &Value, keys: &[&str]| -> Option<String> {
        let parts: Option<Vec<String>> = keys.iter().map(|k| scalar_text(v.get(k)?)).collect();
        Some(parts?.join(" @ "))
    };
    let ids = |side: &[Value], keys: &[&str]| -> Option<Vec<String>> {
        let v: Option<Vec<String>> = side.iter().map(|e| id(e, keys)).collect();
        let v = v?;
        let mut sorted = v.clone();
        sorted.sort();
        sorted.dedup();
        (sorted.len() == v.len()).then_some(v)
    };
    if a.is_empty() && b.is_empty() {
        return None;
    }
    KEYS.iter()
        .find_map(|keys| Some((ids(a, keys)?, ids(b, keys)?)))
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<Change>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => walk(&join(path, k), va, vb, out),
                    None => out.push(Change {
                        path: join(path, k),
                        kind: Kind::Removed,
                        a: va.clone(),
                        b: Value::Null,
                    }),
                }
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(Change {
                    path: join(path, k),
                    kind: Kind::Added,
                    a: Value::Null,
                    b: vb.clone(),
                });
            }
        }
        (Value::Array(x), Value::Array(y)) => walk_array(path, x, y, out),
        _ if numbers_equal(a, b) => {}
        _ => out.push(Change {
            path: path.to_string(),
            kind: Kind::Changed,
            a: a.clone(),
            b: b.clone(),
        }),
    }
}

fn walk_array(path: &str, x: &[Value], y: &[Value], out: &mut Vec<Change>) {
    if let Some((ia, ib)) = identities(x, y) {
        for (i, id) in ia.iter().enumerate() {
            let p = format!("{path}[{id}]");
            match ib.iter().position(|j| j == id) {
                Some(k) => walk(&p, &x[i], &y[k], out),
                None => out.push(Change {
                    path: p,
                    kind: Kind::Removed,
                    a: x[i].clone(),
                    b: Value::Null,
                }),
            }
        }
        for (k, id) in ib.iter().enumerate().filter(|(_, id)| !ia.contains(id)) {
            out.push(Change {
                path: format!("{path}[{id}]"),
                kind: Kind::Added,
                a: Value::Null,
                b: y[k].clone(),
            });
        }
        return;
    }
    if x.len().max(y.len()) <= LIST_LIMIT {
        for i in 0..x.len().max(y.len()) {
            let p = format!("{path}[{i}]");
            match (x.get(i), y.get(i)) {
                (Some(va), Some(vb)) => walk(&p, va, vb, out),
                (Some(va), None) => out.push(Change {
                    path: p,
                    kind: Kind::Removed,
                    a: va.clone(),
                    b: Value::Null,
                }),
                (None, Some(vb)) => out.push(Change {
                    path: p,
                    kind: Kind::Added,
                    a: Value::Null,
                    b: vb.clone(),
                }),
                (None, None) => {}
            }
        }
        return;
    }
    let differ = x
        .iter()
        .zip(y)
        .filter(|(va, vb)| {
            let mut sub = Vec::new();
            walk("", va, vb, &mut sub);
            !sub.is_empty()
        })
        .count();
    if differ > 0 || x.len() != y.len() {
        let what = if x.len() == y.len() {
            format!("{} entries, {differ} differ", x.len())
        } else {
            format!(
                "{} -> {} entries, {differ} of the first {} differ",
                x.len(),
                y.len(),
                x.len().min(y.len())
            )
        };
        out.push(Change {
            path: path.to_string(),
            kind: Kind::Summary(what),
            a: json!(x.len()),
            b: json!(y.len()),
        });
    }
}

/// Every difference between reports `a` and `b`.
pub fn diff(a: &Value, b: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk("", a, b, &mut out);
    out
}

/// The headline figures that differ: `(name, a, b)`.
pub fn headline(a: &Value, b: &Value) -> Vec<(&'static str, Option<f64>, Option<f64>)> {
    figures::FIGURES
        .iter()
        .map(|f| (f.name, f.of(a), f.of(b)))
        .filter(|(_, x, y)| x != y)
        .collect()
}

/// `s` cut to `max` characters, with `...` when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        format!("{}...", s.chars().take(max - 3).collect::<String>())
    } else {
        s.to_string()
    }
}

fn compact(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), show),
        other => other.to_string(),
    };
    shorten(&s, 160)
}

fn delta(a: &Value, b: &Value) -> Option<String> {
    let (x, y) = (a.as_f64()?, b.as_f64()?);
    let d = y - x;
    let sign = if d >= 0.0 { "+" } else { "-" };
    Some(if x != 0.0 {
        format!(" ({sign}{}%)", show((d / x * 100.0).abs()))
    } else {
        format!(" ({sign}{})", show(d.abs()))
    })
}

fn opt(x: Option<f64>) -> String {
    x.map_or("absent".to_string(), show)
}

/// The text rendering.
pub fn text(a_name: &str, b_name: &str, a: &Value, b: &Value) -> String {
    let changes = diff(a, b);
    let mut s = String::new();
    let _ = writeln!(s, "--- {a_name}\n+++ {b_name}");
    if changes.is_empty() {
        let _ = writeln!(s, "the reports are the same");
        return s;
    }
    let (va, vb) = (figures::verdict(a), figures::verdict(b));
    if va != vb {
        let _ = writeln!(s, "verdict: {va} -> {vb}");
    }
    let head = headline(a, b);
    if !head.is_empty() {
        let _ = writeln!(s, "headline:");
        let w = head.iter().map(|h| h.0.len()).max().unwrap_or(0);
        for (name, x, y) in head {
            let d = match (x, y) {
                (Some(x), Some(y)) => delta(&json!(x), &json!(y)).unwrap_or_default(),
                _ => String::new(),
            };
            let _ = writeln!(s, "  {name:w$}  {} -> {}{d}", opt(x), opt(y));
        }
    }
    let mut section = "";
    for c in &changes {
        let rest = c.path[c.section().len()..].trim_start_matches('.');
        // A top-level scalar is its own line; anything deeper goes under its section.
        let (indent, at) = if rest.is_empty() {
            section = "";
            ("", c.section().to_string())
        } else {
            if c.section() != section {
                section = c.section();
                let _ = writeln!(s, "{section}:");
            }
            ("  ", shorten(rest, 100))
        };
        let _ = write!(s, "{indent}");
        let _ = match &c.kind {
            Kind::Changed => writeln!(
                s,
                "{at}: {} -> {}{}",
                compact(&c.a),
                compact(&c.b),
                delta(&c.a, &c.b).unwrap_or_default()
            ),
            Kind::Added => writeln!(s, "+ {at}: {}", compact(&c.b)),
            Kind::Removed => writeln!(s, "- {at}: {}", compact(&c.a)),
            Kind::Summary(what) => writeln!(s, "{at}: {what}"),
        };
    }
    let _ = writeln!(s, "{} difference(s)", changes.len());
    s
}

/// The JSON rendering: `{a, b, same, verdict: {a, b}, headline: [{figure, a, b}], changes:
/// [{path, section, kind, a, b}]}` (`kind`: `changed`, `added`, `removed`, `summary` with a
/// `summary` text).
pub fn json(a_name: &str, b_name: &str, a: &Value, b: &Value) -> String {
    let changes: Vec<Value> = diff(a, b)
        .into_iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("path".into(), json!(c.path));
            m.insert("section".into(), json!(c.section()));
            let kind = match &c.kind {
                Kind::Changed => "changed",
                Kind::Added => "added",
                Kind::Removed => "removed",
                Kind::Summary(what) => {
                    m.insert("summary".into(), json!(what));
                    "summary"
                }
            };
            m.insert("kind".into(), json!(kind));
            m.insert("a".into(), c.a);
            m.insert("b".into(), c.b);
            Value::Object(m)
        })
        .collect();
    let head: Vec<Value> = headline(a, b)
        .into_iter()
        .map(|(f, x, y)| json!({"figure": f, "a": figures::to_json(x), "b": figures::to_json(y)}))
        .collect();
    let v = json!({
        "a": a_name,
        "b": b_name,
        "same": changes.is_empty(),
        "verdict": {"a": figures::verdict(a), "b": figures::verdict(b)},
        "headline": head,
        "changes": changes,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// Reads a report: a JSON object, else an error naming the file.
pub fn read(path: &Path) -> Result<Value, String> {
    let text =
        crate::source::read_file(path, crate::source::MAX_REPORT_BYTES).map_err(|e| match e {
            scenario::ScenarioError::Io { source, .. } => {
                format!("{}: {}", path.display(), scenario::io_by_name(&source))
            }
            other => other.to_string(),
        })?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a report (invalid JSON: {e})", path.display()))?;
    if !v.is_object() {
        return Err(format!(
            "{}: not a report (expected a JSON object, as report.json)",
            path.display()
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(heap: &str, p99: f64, migrations: &str, new_field: bool) -> Value {
        let mut v: Value = serde_json::from_str(&format!(
            r#"{{"scenario": "t", "frames": {{"produced": 4, "dropped": 0}},
                "latency_us": {{"p50": 10, "p99": {p99}, "per_frame": [{}]}},
                "buffers": [{{"name": "a[0]", "placement": {{"heap": "{heap}"}}}},
                            {{"name": "a[1]", "placement": {{"heap": "cma0"}}}}],
                "migrations": [{migrations}],
                "checker": {{"findings": []}}}}"#,
            (0..40)
                .map(|i| format!(r#"{{"frame": {i}, "us": {}}}"#, 10 + i % 3))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .unwrap();
        if new_field {
            v["drops_by_cause"] = json!({"queue_empty": 3});
        }
        v
    }

    #[test]
    fn test_same_reports_have_no_difference() {
        let a = report("cma0", 20.0, "", false);
        assert!(diff(&a, &a).is_empty());
        assert!(text("a", "b", &a, &a).contains("the reports are the same"));
    }

    #[test]
    fn test_diff_matches_buffers_by_name_and_migrations_by_buffer_and_frame() {
        let a = report(
            "cma0",
            20.0,
            r#"{"buffer": "a[0]", "frame": 3, "stall_us": 5}"#,
            false,
        );
        let b = report(
            "system",
            22.0,
            r#"{"buffer": "a[1]", "frame": 9, "stall_us": 1}, {"buffer": "a[0]", "frame": 3, "stall_us": 7}"#,
            false,
        );
        let c = diff(&a, &b);
        let paths: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "buffers[a[0]].placement.heap",
                "latency_us.p99",
                "migrations[a[0] @ 3].stall_us",
                "migrations[a[1] @ 9]"
            ]
        );
        assert_eq!(c[3].kind, Kind::Added);
        let t = text("a.json", "b.json", &a, &b);
        assert!(t.contains("  p99: 20 -> 22 (+10%)"), "{t}");
        assert!(t.contains("\n  p99_us      20 -> 22 (+10%)\n"), "{t}");
        assert!(t.contains("  + [a[1] @ 9]: {"), "{t}");
        assert!(t.contains("\n  stall_us    5 -> 8 (+60%)\n"), "{t}");
        assert!(
            t.contains("\n  [a[0] @ 3].stall_us: 5 -> 7 (+40%)\n"),
            "{t}"
        );
    }

    #[test]
    fn test_unknown_fields_are_compared_too_and_long_arrays_summarised() {
        let a = report("cma0", 20.0, "", false);
        let mut b = report("cma0", 20.0, "", true);
        b["latency_us"]["per_frame"][5]["us"] = json!(99);
        let c = diff(&a, &b);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].kind, Kind::Summary("40 entries, 1 differ".into()));
        assert_eq!(c[1].path, "drops_by_cause");
        assert_eq!(c[1].kind, Kind::Added);
        let j: Value = serde_json::from_str(&json("a", "b", &a, &b)).unwrap();
        assert_eq!(j["same"], json!(false));
        assert_eq!(j["changes"][1]["section"], json!("drops_by_cause"));
        assert_eq!(j["changes"][1]["b"]["queue_empty"], json!(3));
    }
}
