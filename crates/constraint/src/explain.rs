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
