//! Why a buffer is where it is: `buffers[].reason` of `report.json`, and its text (`dmabuf
//! explain`, and one `why:` line per buffer in the text summary).
//!
//! A [`BufferReason`] lists the buffer's placement decisions, oldest first: the first
//! allocation, then one per migration. For a constraint-exporter buffer each decision is the
//! exporter's own record ([`constraint::PlacementReason`], taken when it placed the buffer, never
//! re-derived): the devices whose constraint records were combined, every combined constraint
//! with the device that set it, and per plane group the source chosen, its physical ranges, the
//! cheaper candidates allocation tried and that failed (`refused`), the costlier ones it did not
//! need (`untried`), and what the constraints ruled out (`excluded`). Buffers of other
//! exporters (a dma-heap, vb2's MMAP, the GPU's TTM) are placed without looking at importers:
//! their one decision says so and lists where the memory is.
//!
//! Plain data, built once at the end of the run; lists are bounded (at most
//! [`constraint::REASON_MAX_RANGES`] ranges per group, the real count beside them).

use serde::{Deserialize, Serialize};
use soc::human_size;
use std::fmt::Write;

/// One combined constraint and the device that set it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonConstraint {
    /// Which (`"physical limit"`, `"contiguity"`, `"alignment"`, `"max segments"`,
    /// `"banks (plane 0)"`...).
    pub constraint: String,
    /// Its value in words.
    pub value: String,
    /// The device whose record set it (`None`: nobody, the default holds).
    pub by: Option<String>,
}

/// Where one plane group went, and what else was considered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonGroup {
    /// The planes, `"0..2"`.
    pub planes: String,
    /// Bytes.
    pub bytes: u64,
    /// The source it got (`"CMA region cma0 (dram0)"`).
    pub chosen: String,
    /// Whether it had to be physically contiguous.
    pub contiguous: bool,
    /// Physical ranges `[start, length]`, in buffer order (at most
    /// [`constraint::REASON_MAX_RANGES`]).
    pub ranges: Vec<[u64; 2]>,
    /// How many physical ranges it really has.
    pub range_count: usize,
    /// Cheaper candidates allocation tried and that failed, with their answer.
    pub refused: Vec<String>,
    /// Costlier candidates it did not need.
    pub untried: Vec<String>,
    /// Sources the constraints ruled out, with why.
    pub excluded: Vec<String>,
}

/// One placement decision: the first allocation or a migration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonDecision {
    /// `"allocation"` or `"migration"`.
    pub when: String,
    /// The frame of a migration (the report's `migrations[].frame`).
    pub frame: Option<u64>,
    /// What caused it (`"late attach of encoder0"`; for the first allocation, who placed it).
    pub cause: String,
    /// The devices whose constraints were combined (empty: the exporter looks at none).
    pub devices: Vec<String>,
    /// Every combined constraint with the device that set it.
    pub constraints: Vec<ReasonConstraint>,
    /// One entry per plane group.
    pub groups: Vec<ReasonGroup>,
}

/// Every placement decision of one buffer, oldest first (module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferReason {
    /// The decisions.
    pub decisions: Vec<ReasonDecision>,
}

impl ReasonDecision {
    /// The decision a constraint exporter recorded (`frame`: the migration's frame, if one).
    pub fn from_constraint(r: &constraint::PlacementReason, frame: Option<u64>) -> ReasonDecision {
        ReasonDecision {
            when: if r.cause.is_some() {
                "migration"
            } else {
                "allocation"
            }
            .into(),
            frame,
            cause: r.cause.as_ref().map_or_else(
                || "first map: the constraint exporter placed it for the devices attached".into(),
                ToString::to_string,
            ),
            devices: r.combined.devices.clone(),
            constraints: r
                .constraints()
                .into_iter()
                .map(|l| ReasonConstraint {
                    constraint: l.constraint,
                    value: l.value,
                    by: l.by,
                })
                .collect(),
            groups: r
                .groups
                .iter()
                .map(|g| ReasonGroup {
                    planes: format!("{}..{}", g.first_plane, g.first_plane + g.planes),
                    bytes: g.bytes,
                    chosen: g.chosen.to_string(),
                    contiguous: g.contiguous,
                    ranges: g.ranges.iter().map(|&(a, l)| [a, l]).collect(),
                    range_count: g.range_count,
                    refused: g.refused.clone(),
                    untried: g.untried.iter().map(ToString::to_string).collect(),
                    excluded: g.excluded.clone(),
                })
                .collect(),
        }
    }

    /// The decision of an exporter that places without importers' constraints: `cause` says
    /// which, `source` where the memory came from, `runs` its physical ranges.
    pub fn unconstrained(
        cause: &str,
        source: &str,
        size: u64,
        runs: &[(u64, u64)],
    ) -> ReasonDecision {
        ReasonDecision {
            when: "allocation".into(),
            frame: None,
            cause: cause.to_string(),
            devices: Vec::new(),
            constraints: Vec::new(),
            groups: vec![ReasonGroup {
                planes: "all".into(),
                bytes: size,
                chosen: source.to_string(),
                contiguous: runs.len() == 1,
                ranges: runs
                    .iter()
                    .take(constraint::REASON_MAX_RANGES)
                    .map(|&(a, l)| [a, l])
                    .collect(),
                range_count: runs.len(),
                ..ReasonGroup::default()
            }],
        }
    }

    /// One line: the deciding devices and what they imposed, then where it went
    /// (`"isp0, encoder0: contiguity (encoder0 needs contiguous memory) -> CMA region cma0"`).
    pub fn summary(&self) -> String {
        let chosen: Vec<&str> = self.groups.iter().map(|g| g.chosen.as_str()).collect();
        // The constraints that decide where memory comes from (the segment limits and IOVA
        // space of IOMMU devices rarely do; `dmabuf explain` shows them all).
        let mut binding: Vec<String> = Vec::new();
        for c in &self.constraints {
            let decides = c.constraint == "physical limit"
                || c.constraint == "contiguity"
                || c.constraint == "alignment"
                || c.constraint.starts_with("banks");
            let text = format!("{} {}", c.constraint, c.value);
            if c.by.is_some() && decides && !binding.contains(&text) {
                binding.push(text);
            }
        }
        let who = if self.devices.is_empty() {
            self.cause.clone()
        } else {
            let mut devs: Vec<&str> = Vec::new();
            for d in &self.devices {
                if !devs.contains(&d.as_str()) {
                    devs.push(d);
                }
            }
            devs.join(", ")
        };
        if binding.is_empty() {
            format!("{who} -> {}", chosen.join(" + "))
        } else {
            format!("{who}: {} -> {}", binding.join("; "), chosen.join(" + "))
        }
    }
}

fn ranges_text(g: &ReasonGroup) -> String {
    let shown: Vec<String> = g
        .ranges
        .iter()
        .map(|[a, l]| format!("{a:#x}+{l:#x}"))
        .collect();
    let more = g.range_count.saturating_sub(g.ranges.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl BufferReason {
    /// The whole explanation of buffer `name` (`dmabuf explain`), one decision after the
    /// other.
    pub fn text(&self, name: &str, size: u64, link: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{name}: {} of link {link}", human_size(size));
        for (i, d) in self.decisions.iter().enumerate() {
            let when = match d.frame {
                Some(f) => format!("{} at frame {f}", d.when),
                None => d.when.clone(),
            };
            let _ = writeln!(s, "{}. {when}: {}", i + 1, d.cause);
            if !d.devices.is_empty() {
                let _ = writeln!(s, "   devices: {}", d.devices.join(", "));
            }
            if !d.constraints.is_empty() {
                let _ = writeln!(s, "   constraints:");
                let w = d
                    .constraints
                    .iter()
                    .map(|c| c.constraint.len())
                    .max()
                    .unwrap_or(0);
                for c in &d.constraints {
                    let by =
                        c.by.as_ref()
                            .map_or_else(|| "(nobody)".to_string(), |b| format!("by {b}"));
                    let _ = writeln!(s, "     {:w$}  {}  {by}", c.constraint, c.value);
                }
            }
            for g in &d.groups {
                let _ = writeln!(
                    s,
                    "   planes {} ({}{}): {}",
                    g.planes,
                    human_size(g.bytes),
                    if g.contiguous { ", contiguous" } else { "" },
                    g.chosen
                );
                let _ = writeln!(
                    s,
                    "     physical: {} range{}: {}",
                    g.range_count,
                    if g.range_count == 1 { "" } else { "s" },
                    ranges_text(g)
                );
                for r in &g.refused {
                    let _ = writeln!(s, "     refused (tried first): {r}");
                }
                for u in &g.untried {
                    let _ = writeln!(s, "     not needed (costlier): {u}");
                }
                for e in &g.excluded {
                    let _ = writeln!(s, "     ruled out: {e}");
                }
            }
        }
        if self.decisions.is_empty() {
            let _ = writeln!(s, "never allocated");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_every_constraint_setter_and_range_overflow() {
        let d = ReasonDecision {
            when: "migration".into(),
            frame: Some(300),
            cause: "late attach of encoder0".into(),
            devices: vec!["isp0".into(), "encoder0".into()],
            constraints: vec![ReasonConstraint {
                constraint: "contiguity".into(),
                value: "encoder0 needs contiguous memory".into(),
                by: Some("encoder0".into()),
            }],
            groups: vec![ReasonGroup {
                planes: "0..2".into(),
                bytes: 1 << 20,
                chosen: "CMA region cma0 (dram0)".into(),
                contiguous: true,
                ranges: vec![[0x1000, 0x100000]],
                range_count: 3,
                refused: vec![],
                untried: vec!["one block of dram0".into()],
                excluded: vec!["scattered pages of dram1: must be contiguous".into()],
            }],
        };
        let r = BufferReason {
            decisions: vec![d.clone()],
        };
        let t = r.text("isp-out[0]", 1 << 20, "isp-out");
        assert!(
            t.contains("migration at frame 300: late attach of encoder0"),
            "{t}"
        );
        assert!(t.contains("by encoder0"), "{t}");
        assert!(t.contains("0x1000+0x100000 and 2 more"), "{t}");
        assert!(t.contains("ruled out: scattered pages of dram1"), "{t}");
        assert_eq!(
            d.summary(),
            "isp0, encoder0: contiguity encoder0 needs contiguous memory -> CMA region cma0 (dram0)"
        );
    }
}
