//! Explained success. A [`PlacementReason`] is the exporter's own record of one placement
//! decision (the first allocation, and every migration): the devices whose records were
//! combined, each combined constraint with the device that set it
//! ([`PlacementReason::constraints`]), and per plane group the source chosen, its physical
//! ranges, the candidates allocation tried first and that failed, the costlier candidates left
//! untried, and the sources the constraints ruled out. The exporter keeps one per placement
//! ([`ConstraintExporter::placement_reasons`](super::ConstraintExporter::placement_reasons));
//! they are plain data, built under the exporter's state lock from the plan and the backing
//! that were actually used, never re-derived afterwards.

use super::backing::Backing;
use super::combine::CombinedRecord;
use super::migrate::MigrationCause;
use super::negotiate::Negotiated;
use super::placement::{PlacementPlan, Source};
use serde::{Deserialize, Serialize};
use soc::human_size;

/// The most physical ranges a [`GroupReason`] lists (a scattered group has one per buddy
/// block); [`GroupReason::range_count`] has the real number.
pub const REASON_MAX_RANGES: usize = 32;

/// One plane group of a [`PlacementReason`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReason {
    /// First plane of the group.
    pub first_plane: usize,
    /// Planes in the group.
    pub planes: usize,
    /// Bytes (with padding, page rounded, for the last group).
    pub bytes: u64,
    /// Whether the group had to be physically contiguous.
    pub contiguous: bool,
    /// The highest physical address any byte could have.
    pub limit: u64,
    /// The physical alignment of its first byte.
    pub align: u64,
    /// The source it got.
    pub chosen: Source,
    /// Its physical ranges `(start, length)`, in buffer order, at most [`REASON_MAX_RANGES`].
    pub ranges: Vec<(u64, u64)>,
    /// How many physical ranges it really has.
    pub range_count: usize,
    /// Candidates allocation tried before `chosen`, and what each answered (cheaper, but
    /// out of memory or fragmented then).
    pub refused: Vec<String>,
    /// Candidates after `chosen` in cost order, not needed.
    pub untried: Vec<Source>,
    /// Sources the combined constraints ruled out, with why.
    pub excluded: Vec<String>,
}

/// One placement decision of a constraint exporter (module doc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementReason {
    /// The placement's generation (1: the first allocation, then one more per migration).
    pub generation: u64,
    /// What moved the buffer; `None` for the first allocation.
    pub cause: Option<MigrationCause>,
    /// The exporter clock's time of the decision, nanoseconds.
    pub at_ns: u64,
    /// The combined record the placement meets (its `devices` are the set at the decision).
    pub combined: CombinedRecord,
    /// One entry per plane group.
    pub groups: Vec<GroupReason>,
    /// The negotiated layout (modifier, pitch, who constrained them), for exporters that
    /// negotiate one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiated: Option<Negotiated>,
}

/// One combined constraint in words: what it is, its value, and the device that set it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstraintLine {
    /// `"physical limit"`, `"IOVA space"`, `"contiguity"`, `"alignment"`, `"pitch alignment"`,
    /// `"modifier"`, `"pitch"`, `"max segment size"`, `"segment boundary"`, `"max segments"`, `"padding"`,
    /// `"banks (plane N)"` or `"struct pages"`.
    pub constraint: String,
    /// Its value, in words.
    pub value: String,
    /// The device whose record set it (`None`: nobody constrains it, the default holds).
    pub by: Option<String>,
}

impl PlacementReason {
    /// The reason of `backing`, allocated for `plan` (generation `generation`, `cause` as
    /// given, at `at_ns`).
    pub fn new(
        generation: u64,
        cause: Option<MigrationCause>,
        at_ns: u64,
        plan: &PlacementPlan,
        backing: &Backing,
    ) -> PlacementReason {
        let groups = plan
            .groups
            .iter()
            .zip(backing.groups())
            .enumerate()
            .map(|(gi, (gp, gb))| {
                let chosen_at = gp.candidates.iter().position(|c| *c == gb.source);
                GroupReason {
                    first_plane: gp.group.first_plane,
                    planes: gp.group.planes,
                    bytes: gp.group.len,
                    contiguous: gp.contiguous,
                    limit: gp.limit,
                    align: gp.align,
                    chosen: gb.source.clone(),
                    ranges: gb
                        .runs
                        .iter()
                        .take(REASON_MAX_RANGES)
                        .map(|&(pa, len)| (pa.0, len))
                        .collect(),
                    range_count: gb.runs.len(),
                    refused: backing
                        .refused()
                        .iter()
                        .filter(|(g, _)| *g == gi)
                        .map(|(_, t)| t.clone())
                        .collect(),
                    untried: chosen_at.map_or_else(Vec::new, |i| gp.candidates[i + 1..].to_vec()),
                    excluded: gp.excluded.clone(),
                }
            })
            .collect();
        PlacementReason {
            generation,
            cause,
            at_ns,
            combined: plan.combined.clone(),
            groups,
            negotiated: None,
        }
    }

    /// The same reason with the negotiated layout.
    pub fn with_negotiated(mut self, negotiated: Option<Negotiated>) -> PlacementReason {
        self.negotiated = negotiated;
        self
    }

    /// Every combined constraint that binds (or, for the mask and contiguity, that nobody
    /// sets), with the device that set it, in the combining rules' order.
    pub fn constraints(&self) -> Vec<ConstraintLine> {
        let c = &self.combined;
        let line = |constraint: &str, value: String, by: &Option<String>| ConstraintLine {
            constraint: constraint.into(),
            value,
            by: by.clone(),
        };
        let mut out = Vec::new();
        out.push(line(
            "physical limit",
            match c.phys_limit.by {
                Some(_) => format!(
                    "below {} ({:#x})",
                    human_size(c.phys_limit.value.saturating_add(1)),
                    c.phys_limit.value
                ),
                None => "none (every device is behind an IOMMU)".into(),
            },
            &c.phys_limit.by,
        ));
        if c.iova_mask.by.is_some() {
            out.push(line(
                "IOVA space",
                format!("{:#x}", c.iova_mask.value),
                &c.iova_mask.by,
            ));
        }
        if c.contiguous.is_empty() {
            out.push(line("contiguity", "not needed".into(), &None));
        }
        for (i, why) in c.contiguous.iter().enumerate() {
            if c.contiguous[..i].contains(why) {
                continue; // a second attachment of the same device
            }
            let dev = why.split_whitespace().next().map(str::to_string);
            out.push(line("contiguity", why.clone(), &dev));
        }
        out.push(line("alignment", human_size(c.align.value), &c.align.by));
        if let Some(n) = &self.negotiated {
            let by = n.constrained_by_device().map(str::to_string);
            let value = match n.constrained_by() {
                Some(why) => format!("{} ({:#x}); passed over {why}", n.modifier, n.value),
                None => format!(
                    "{} ({:#x}), the exporter's first choice",
                    n.modifier, n.value
                ),
            };
            out.push(line("modifier", value, &by));
            out.push(line(
                "pitch",
                format!(
                    "{:?} bytes (aligned to {})",
                    n.pitches(),
                    n.pitch_align.value
                ),
                &n.pitch_align.by,
            ));
        } else if c.pitch_align.by.is_some() {
            out.push(line(
                "pitch alignment",
                format!("{} bytes", c.pitch_align.value),
                &c.pitch_align.by,
            ));
        }
        if c.max_segment_size.by.is_some() {
            out.push(line(
                "max segment size",
                human_size(c.max_segment_size.value),
                &c.max_segment_size.by,
            ));
        }
        if c.segment_boundary_mask.by.is_some() {
            out.push(line(
                "segment boundary",
                format!("{:#x}", c.segment_boundary_mask.value),
                &c.segment_boundary_mask.by,
            ));
        }
        if c.max_segments.by.is_some() {
            out.push(line(
                "max segments",
                c.max_segments.value.to_string(),
                &c.max_segments.by,
            ));
        }
        if c.padding.by.is_some() {
            out.push(line(
                "padding",
                format!("{} bytes", c.padding.value),
                &c.padding.by,
            ));
        }
        for (plane, rules) in c.plane_rules.iter().enumerate() {
            for (dev, rule) in rules {
                if !rule.is_empty() {
                    out.push(line(
                        &format!("banks (plane {plane})"),
                        rule.describe(),
                        &Some(dev.clone()),
                    ));
                }
            }
        }
        if !c.needs_pages.is_empty() {
            out.push(line(
                "struct pages",
                format!(
                    "no device-local memory: {} without peer2peer",
                    c.needs_pages.join(", ")
                ),
                &None,
            ));
        }
        out
    }
}
