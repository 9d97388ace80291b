//! Walking an override's path through the parsed scenario: tables by key, arrays by index or by
//! an element's name (`links.camera->isp`), with messages that say what is there instead.

use super::OverrideSeg;
use toml_edit::{Item, Table, Value};

/// A node of the parsed document while walking a path.
#[derive(Clone, Copy)]
pub(super) enum At<'a> {
    Table(&'a Table),
    Value(&'a Value),
    Tables(&'a toml_edit::ArrayOfTables),
}

pub(super) fn describe(at: &At<'_>) -> &'static str {
    match at {
        At::Table(_) => "a table",
        At::Tables(_) => "an array of tables",
        At::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date",
            Value::Array(_) => "an array",
            Value::InlineTable(_) => "an inline table",
        },
    }
}

fn item_at(item: &Item) -> Option<At<'_>> {
    match item {
        Item::Table(t) => Some(At::Table(t)),
        Item::Value(v) => Some(At::Value(v)),
        Item::ArrayOfTables(a) => Some(At::Tables(a)),
        Item::None => None,
    }
}

fn string_of(v: Option<&Item>) -> Option<String> {
    match v? {
        Item::Value(Value::String(s)) => Some(s.value().clone()),
        Item::Value(Value::Array(a)) => {
            let parts: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
            Some(parts?.join("+"))
        }
        _ => None,
    }
}

/// Whether a table (as key lookups) is the element named `key`: its `name`, or `FROM->TO`.
fn is_named(get: &dyn Fn(&str) -> Option<Item>, key: &str) -> bool {
    if string_of(get("name").as_ref()).as_deref() == Some(key) {
        return true;
    }
    match (
        string_of(get("from").as_ref()),
        string_of(get("to").as_ref()),
    ) {
        (Some(f), Some(t)) => format!("{f}->{t}") == key,
        _ => false,
    }
}

fn element_names(n: usize, get: &dyn Fn(usize, &str) -> Option<Item>) -> String {
    let names: Vec<String> = (0..n)
        .map(|i| {
            string_of(get(i, "name").as_ref()).unwrap_or_else(|| {
                match (
                    string_of(get(i, "from").as_ref()),
                    string_of(get(i, "to").as_ref()),
                ) {
                    (Some(f), Some(t)) => format!("{f}->{t}"),
                    _ => format!("[{i}]"),
                }
            })
        })
        .collect();
    if names.is_empty() {
        "it is empty".to_string()
    } else {
        format!("it has {}", names.join(", "))
    }
}

/// The child of `at` at `seg`; `Ok(None)` if a table lacks the key.
pub(super) fn child<'a>(
    at: At<'a>,
    seg: &OverrideSeg,
    shown: &str,
) -> Result<Option<At<'a>>, String> {
    match (at, seg) {
        (At::Table(t), OverrideSeg::Key(k)) => Ok(t.get(k).and_then(item_at)),
        (At::Value(Value::InlineTable(t)), OverrideSeg::Key(k)) => Ok(t.get(k).map(At::Value)),
        (At::Tables(a), OverrideSeg::Index(i)) => a
            .get(*i)
            .map(|t| Some(At::Table(t)))
            .ok_or_else(|| format!("`{shown}` has {} element(s): no index {i}", a.len())),
        (At::Value(Value::Array(a)), OverrideSeg::Index(i)) => a
            .get(*i)
            .map(|v| Some(At::Value(v)))
            .ok_or_else(|| format!("`{shown}` has {} element(s): no index {i}", a.len())),
        (At::Tables(a), OverrideSeg::Key(k)) => {
            let found: Vec<&Table> = a
                .iter()
                .filter(|t| is_named(&|f| t.get(f).cloned(), k))
                .collect();
            match found.as_slice() {
                [one] => Ok(Some(At::Table(one))),
                [] => Err(format!(
                    "`{shown}` has no element named `{k}` ({})",
                    element_names(a.len(), &|i, f| a.get(i)?.get(f).cloned())
                )),
                _ => Err(format!(
                    "`{shown}` has several elements named `{k}`: use `[N]`"
                )),
            }
        }
        (At::Value(Value::Array(a)), OverrideSeg::Key(k)) => {
            let tables: Vec<Option<&toml_edit::InlineTable>> =
                a.iter().map(Value::as_inline_table).collect();
            let get = |i: usize, f: &str| -> Option<Item> {
                Some(Item::Value(tables.get(i)?.as_ref()?.get(f)?.clone()))
            };
            let found: Vec<usize> = (0..tables.len())
                .filter(|&i| is_named(&|f| get(i, f), k))
                .collect();
            match found.as_slice() {
                [one] => Ok(a.get(*one).map(At::Value)),
                [] => Err(format!(
                    "`{shown}` has no element named `{k}` ({})",
                    element_names(tables.len(), &get)
                )),
                _ => Err(format!(
                    "`{shown}` has several elements named `{k}`: use `[N]`"
                )),
            }
        }
        (other, _) => Err(format!(
            "`{shown}` is {}: it has no {}",
            describe(&other),
            match seg {
                OverrideSeg::Key(k) => format!("field `{k}`"),
                OverrideSeg::Index(i) => format!("element [{i}]"),
            }
        )),
    }
}

pub(super) fn shown_path(segs: &[OverrideSeg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            OverrideSeg::Key(k) if s.is_empty() => s += k,
            OverrideSeg::Key(k) => {
                s.push('.');
                s += k;
            }
            OverrideSeg::Index(i) => s += &format!("[{i}]"),
        }
    }
    s
}
