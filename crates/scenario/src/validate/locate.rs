//! From a field path (`nodes[2].device`) back to where it is written.
//!
//! Serde errors carry a byte span already (`toml::de::Error::span`). Cross-field rules are
//! checked on the deserialized values, which have no positions; instead of threading
//! `toml::Spanned<T>` through every type the runner uses, each rule names the offending field by
//! its path, and this module finds that path in a span-keeping parse of the same text
//! (`toml_edit`, the parser `toml` itself uses). A path that is not written (a defaulted field)
//! resolves to the nearest written ancestor, such as the `[[nodes]]` header.

use std::fmt;
use std::ops::Range;
use toml_edit::{ImDocument, Item, Table, Value};

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A key of a table.
    Key(String),
    /// An element of an array or array of tables.
    Index(usize),
}

/// The path of a field in a scenario file (`soc.devices[1].iommu`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The document root.
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// This path, then `key`.
    pub fn key(&self, key: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }

    /// This path, then element `i`.
    pub fn index(&self, i: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// Parses a path as soc's messages spell it (`devices[1].dma_mask_bits`); `None` if it is
    /// not one.
    pub fn parse(s: &str) -> Option<FieldPath> {
        let mut segs = Vec::new();
        for part in s.split('.') {
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            segs.push(Seg::Key(key.to_string()));
            while !rest.is_empty() {
                let close = rest.find(']')?;
                segs.push(Seg::Index(rest.get(1..close)?.parse().ok()?));
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return None;
                }
            }
        }
        Some(FieldPath(segs))
    }

    /// This path with `prefix` in front.
    pub fn under(&self, prefix: &FieldPath) -> FieldPath {
        let mut p = prefix.clone();
        p.0.extend(self.0.iter().cloned());
        p
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

impl<'a> Node<'a> {
    fn span(&self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
            Node::Table(t) => t.span(),
        }
    }

    /// The child at `seg`, with the span to report for it when it is the last step (a value's
    /// span; for a table, its header).
    fn child(&self, seg: &Seg) -> Option<Node<'a>> {
        let value = match self {
            Node::Item(Item::Value(v)) => Some(v),
            Node::Value(v) => Some(*v),
            _ => None,
        };
        if let Some(v) = value {
            return match (v, seg) {
                (Value::InlineTable(t), Seg::Key(k)) => t.get(k).map(Node::Value),
                (Value::Array(a), Seg::Index(i)) => a.get(*i).map(Node::Value),
                _ => None,
            };
        }
        match (self, seg) {
            (Node::Item(Item::Table(t)), Seg::Key(k)) => t.get(k).map(Node::Item),
            // An `[[array]]` element: its header's span stands for it.
            (Node::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => a.get(*i).map(Node::Table),
            (Node::Table(t), Seg::Key(k)) => t.get(k).map(Node::Item),
            _ => None,
        }
    }
}

/// Finds the span of `path` in `doc`: the value if it is written, else the nearest written
/// ancestor's span; `None` if nothing along the path has one (e.g. an omitted `[soc]`).
pub fn locate(doc: &ImDocument<&str>, path: &FieldPath) -> Option<Range<usize>> {
    let root = doc.as_item();
    let mut node = Node::Item(root);
    let mut best = None;
    for seg in &path.0 {
        match node.child(seg) {
            Some(next) => {
                if let Some(s) = next.span() {
                    best = Some(s);
                }
                node = next;
            }
            None => break,
        }
    }
    best
}

/// Whether every step of `path` is written in `doc` (the field itself, not an ancestor).
pub(crate) fn is_written(doc: &ImDocument<&str>, path: &FieldPath) -> bool {
    let mut node = Node::Item(doc.as_item());
    for seg in &path.0 {
        match node.child(seg) {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}
