//! Explained failure: why no memory can serve every attached device, in words that name them.
//!
//! A [`Conflict`] is one reason, naming the devices and the constraints that clash
//! (`"display0 reaches only below 1 GiB; encoder0 requires bank dram1"`). A
//! [`ConstraintError`] carries the conflicts (or the busy/out-of-memory condition of a
//! migration) and its errno:
//!
//! | condition | errno |
//! |---|---|
//! | constraints contradict each other (no bank left, bad alignment, pitch, too many segments, mixed backings, device memory for a static importer, no common format modifier, a negotiated layout larger than the buffer) | `EINVAL` |
//! | no memory can meet them (mask below every allowed bank, a contiguous range larger than any region) or an allocation failed | `ENOMEM` |
//! | the placement is fixed (policy, pins) or access did not drain in time | `EBUSY` |
//! | the wait was interrupted | `ERESTARTSYS` |
//!
//! It converts into [`DmaBufError`] with the whole explanation in the message;
//! [`ConstraintExporter::last_error`](super::ConstraintExporter::last_error) keeps the
//! structured value.
//!
//! Explained success: a [`PlacementReason`] is the exporter's own record of one placement
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
use dmabuf::error::DmaBufError;
use serde::{Deserialize, Serialize};
use soc::human_size;
use std::fmt;
use uapi::{AsErrno, Errno};

/// One reason a set of constraint records cannot be met.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "conflict", rename_all = "snake_case")]
pub enum Conflict {
    /// A device without an IOMMU reaches only below `limit`, and every bank the plane may use
    /// starts above it (`banks`), possibly because other devices restrict the banks (`rules`).
    Unreachable {
        /// The plane group (0 for a single-plane buffer).
        plane: usize,
        /// The device whose mask binds.
        device: String,
        /// Its highest reachable address.
        limit: u64,
        /// The banks the plane may use.
        banks: Vec<String>,
        /// Other devices' bank rules that narrowed the banks, in words.
        rules: Vec<(String, String)>,
    },
    /// The bank rules leave no bank for a plane.
    NoBank {
        /// The plane.
        plane: usize,
        /// Every (device, rule) restricting the plane.
        rules: Vec<(String, String)>,
    },
    /// A device's IOVA space (its mask) is smaller than the buffer.
    IovaTooSmall {
        /// The device.
        device: String,
        /// Its mask.
        mask: u64,
        /// Bytes to map.
        size: u64,
    },
    /// The buffer needs more segments than a device takes.
    TooManySegments {
        /// The device with the fewest segments.
        device: String,
        /// How many it takes.
        max: u32,
        /// How many the buffer needs.
        needed: u64,
        /// The device whose segment size limit forces the split.
        by: String,
    },
    /// An alignment that is not a power of two.
    BadAlignment {
        /// The device.
        device: String,
        /// The alignment asked for.
        align: u64,
    },
    /// A plane's pitch does not meet a device's pitch alignment.
    Pitch {
        /// The device.
        device: String,
        /// The plane.
        plane: usize,
        /// The plane's pitch.
        pitch: u64,
        /// The alignment the device needs.
        align: u64,
    },
    /// A plane rule names a plane the buffer does not have.
    NoSuchPlane {
        /// The device.
        device: String,
        /// The plane index.
        plane: usize,
        /// Planes the buffer has.
        planes: usize,
    },
    /// A bank name that does not exist.
    UnknownBank {
        /// The device.
        device: String,
        /// The name.
        bank: String,
    },
    /// Only device-local memory is allowed, and a static importer needs struct pages.
    NeedsPages {
        /// The importer without `peer2peer`.
        device: String,
        /// The device-local bank.
        bank: String,
        /// The devices requiring that bank.
        by: Vec<String>,
    },
    /// Planes would need memory with and without struct pages in one table.
    MixedBacking {
        /// The planes in page-backed memory.
        pages: Vec<usize>,
        /// The planes in carveout or device-local memory.
        iomem: Vec<usize>,
    },
    /// A contiguous plane larger than any region or block that could hold it.
    TooLarge {
        /// The plane group.
        plane: usize,
        /// Bytes needed contiguously.
        bytes: u64,
        /// Why contiguous.
        reason: String,
        /// Where it was looked for.
        looked: Vec<String>,
    },
    /// No format modifier is understood by every device (`EINVAL`, as `drm_mode_addfb2`
    /// answers a modifier no plane supports).
    NoCommonModifier {
        /// The exporter's preference order.
        preference: Vec<String>,
        /// Per device, the modifiers it lists.
        devices: Vec<(String, Vec<String>)>,
        /// Modifiers every device lists that cannot hold the image, with why.
        passed_over: Vec<(String, String)>,
    },
    /// The negotiated layout needs more bytes than the buffer has (a dma-buf never grows).
    LayoutTooLarge {
        /// The modifier.
        modifier: String,
        /// The negotiated pitches.
        pitches: Vec<u64>,
        /// Bytes the layout needs.
        needed: u64,
        /// Bytes of the buffer.
        size: u64,
        /// The device whose pitch alignment grew it.
        by: Option<String>,
    },
    /// The placement is fixed and does not meet a device (policy, pin, ...).
    Fixed {
        /// Why it cannot move.
        why: String,
        /// The device that joined.
        device: String,
        /// What the placement does not meet, in words.
        unmet: Vec<String>,
    },
}

fn rules_text(rules: &[(String, String)]) -> String {
    rules
        .iter()
        .map(|(d, r)| format!("{d} {r}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::Unreachable {
                plane,
                device,
                limit,
                banks,
                rules,
            } => {
                let below = human_size(limit.saturating_add(1));
                if rules.is_empty() {
                    write!(
                        f,
                        "{device} reaches only below {below}, and no usable bank of plane {plane} \
                         ({}) has memory there",
                        banks.join(", ")
                    )
                } else {
                    write!(f, "{device} reaches only below {below}; {}", rules_text(rules))
                }
            }
            Conflict::NoBank { plane, rules } => {
                write!(f, "no bank is left for plane {plane}: {}", rules_text(rules))
            }
            Conflict::IovaTooSmall { device, mask, size } => write!(
                f,
                "{device} maps at most {} through its IOMMU (mask {mask:#x}) but the buffer is {}",
                human_size(mask.saturating_add(1)),
                human_size(*size)
            ),
            Conflict::TooManySegments {
                device,
                max,
                needed,
                by,
            } => write!(
                f,
                "{device} takes at most {max} segments but the buffer needs {needed} \
                 ({by}'s segment size limit)"
            ),
            Conflict::BadAlignment { device, align } => {
                write!(f, "{device} asks for alignment {align:#x}, not a power of two")
            }
            Conflict::Pitch {
                device,
                plane,
                pitch,
                align,
            } => write!(
                f,
                "{device} requires pitches aligned to {align} bytes; plane {plane} has pitch {pitch}"
            ),
            Conflict::NoSuchPlane {
                device,
                plane,
                planes,
            } => write!(
                f,
                "{device} places plane {plane} but the buffer has {planes} plane(s)"
            ),
            Conflict::UnknownBank { device, bank } => {
                write!(f, "{device} names bank {bank}, which does not exist")
            }
            Conflict::NeedsPages { device, bank, by } => write!(
                f,
                "{device} (no peer2peer) needs memory with struct pages; {} requires \
                 device-local bank {bank}",
                by.join(", ")
            ),
            Conflict::MixedBacking { pages, iomem } => write!(
                f,
                "planes {pages:?} need system RAM and planes {iomem:?} carveout or device memory: \
                 one sg table cannot mix them"
            ),
            Conflict::TooLarge {
                plane,
                bytes,
                reason,
                looked,
            } => write!(
                f,
                "plane {plane} needs {} of contiguous memory ({reason}) and nothing that could \
                 hold it is usable ({})",
                human_size(*bytes),
                looked.join(", ")
            ),
            Conflict::NoCommonModifier {
                preference,
                devices,
                passed_over,
            } => {
                let lists: Vec<String> = devices
                    .iter()
                    .map(|(d, m)| format!("{d} understands {}", m.join(", ")))
                    .collect();
                write!(
                    f,
                    "no format modifier is understood by every device (exporter prefers {}): {}",
                    preference.join(", "),
                    lists.join("; ")
                )?;
                if !passed_over.is_empty() {
                    let p: Vec<String> = passed_over
                        .iter()
                        .map(|(m, why)| format!("{m}: {why}"))
                        .collect();
                    write!(f, " ({})", p.join("; "))?;
                }
                Ok(())
            }
            Conflict::LayoutTooLarge {
                modifier,
                pitches,
                needed,
                size,
                by,
            } => write!(
                f,
                "the {modifier} layout with pitches {pitches:?}{} needs {needed} bytes but the \
                 buffer has {size} (a dma-buf never grows: reallocate, or reserve the size at export)",
                by.as_ref()
                    .map(|d| format!(" (pitch alignment set by {d})"))
                    .unwrap_or_default()
            ),
            Conflict::Fixed { why, device, unmet } => write!(
                f,
                "{why}: the placement cannot move for {device}: {}",
                unmet.join("; ")
            ),
        }
    }
}

impl Conflict {
    /// The errno this conflict alone would give (module table).
    pub fn errno(&self) -> Errno {
        match self {
            Conflict::Unreachable { .. }
            | Conflict::IovaTooSmall { .. }
            | Conflict::TooLarge { .. } => Errno::ENOMEM,
            Conflict::Fixed { .. } => Errno::EBUSY,
            _ => Errno::EINVAL,
        }
    }
}

/// Why a placement, a migration or an attach failed (module doc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ConstraintError {
    /// The constraint records conflict (the errno of the first conflict: `EINVAL` before
    /// `ENOMEM` before `EBUSY`).
    Conflict {
        /// The devices whose records were combined.
        devices: Vec<String>,
        /// Every conflict found.
        conflicts: Vec<Conflict>,
    },
    /// The records are consistent but the memory could not be allocated now (`ENOMEM`).
    NoMemory(String),
    /// Outstanding access did not drain in time, or the buffer is pinned (`EBUSY`).
    Busy(String),
    /// A wait was interrupted (`ERESTARTSYS`).
    Interrupted(String),
    /// A lower layer failed (its errno).
    Lower {
        /// The errno.
        errno: i32,
        /// What failed.
        msg: String,
    },
}

impl ConstraintError {
    /// A conflict error.
    pub fn conflict(devices: Vec<String>, conflicts: Vec<Conflict>) -> ConstraintError {
        ConstraintError::Conflict { devices, conflicts }
    }

    /// The conflicts, if this is a conflict error.
    pub fn conflicts(&self) -> &[Conflict] {
        match self {
            ConstraintError::Conflict { conflicts, .. } => conflicts,
            _ => &[],
        }
    }

    /// Wraps a lower layer's error.
    pub fn lower(e: &DmaBufError) -> ConstraintError {
        ConstraintError::Lower {
            errno: e.errno().raw(),
            msg: e.to_string(),
        }
    }
}

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstraintError::Conflict { devices, conflicts } => {
                let text: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "no placement serves {}: {}",
                    devices.join(", "),
                    text.join("; ")
                )
            }
            ConstraintError::NoMemory(m) => write!(f, "no memory for the placement: {m}"),
            ConstraintError::Busy(m) => write!(f, "buffer busy: {m}"),
            ConstraintError::Interrupted(m) => write!(f, "interrupted: {m}"),
            ConstraintError::Lower { msg, .. } => f.write_str(msg),
        }
    }
}

impl std::error::Error for ConstraintError {}

impl AsErrno for ConstraintError {
    fn errno(&self) -> Errno {
        match self {
            ConstraintError::Conflict { conflicts, .. } => {
                let errnos: Vec<Errno> = conflicts.iter().map(Conflict::errno).collect();
                [Errno::EINVAL, Errno::ENOMEM, Errno::EBUSY]
                    .into_iter()
                    .find(|e| errnos.contains(e))
                    .unwrap_or(Errno::EINVAL)
            }
            ConstraintError::NoMemory(_) => Errno::ENOMEM,
            ConstraintError::Busy(_) => Errno::EBUSY,
            ConstraintError::Interrupted(_) => Errno::ERESTARTSYS,
            // Built from a lower error's `Errno::raw`, hence positive.
            ConstraintError::Lower { errno, .. } => Errno::from_raw(*errno).unwrap_or(Errno::EIO),
        }
    }
}

impl From<ConstraintError> for DmaBufError {
    fn from(e: ConstraintError) -> DmaBufError {
        let errno = e.errno();
        let msg = e.to_string();
        match errno {
            Errno::EINVAL => DmaBufError::InvalidArgument(msg),
            Errno::ENOMEM => DmaBufError::NoMemory(msg),
            Errno::EBUSY => DmaBufError::Busy(msg),
            _ => DmaBufError::exporter(errno, msg),
        }
    }
}

impl From<soc::SocError> for ConstraintError {
    fn from(e: soc::SocError) -> ConstraintError {
        ConstraintError::lower(&DmaBufError::Soc(e))
    }
}

impl From<dma::DmaError> for ConstraintError {
    fn from(e: dma::DmaError) -> ConstraintError {
        ConstraintError::lower(&DmaBufError::Dma(e))
    }
}

impl From<DmaBufError> for ConstraintError {
    fn from(e: DmaBufError) -> ConstraintError {
        ConstraintError::lower(&e)
    }
}

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
