//! Layout negotiation: the format modifier and the pitch every attached device can use.
//!
//! C side: what userspace does before it allocates a shared image — GBM's
//! `gbm_bo_create_with_modifiers2()` and Vulkan's `VK_EXT_image_drm_format_modifier` take the
//! modifiers every consumer advertised (`IN_FORMATS` of a KMS plane, `VIDIOC_ENUM_FMT`,
//! `vkGetPhysicalDeviceFormatProperties2`), keep the ones all of them list, and let the
//! allocating driver pick its favourite among those. A dma-buf carries no format (seed 001);
//! the constraint exporter is told the image at export ([`Negotiation`]) so that it can
//! negotiate for every device that attaches, and re-negotiate when a late one joins.
//!
//! # The rules
//! 1. **Modifiers intersect.** A device lists the modifiers it understands
//!    ([`ConstraintRecord::modifiers`]); an empty list means linear only
//!    ([`MOD_LINEAR`]), the layout every device understands. The candidates are the
//!    exporter's preference order ([`Negotiation::preference`], the producing device's own
//!    list) filtered by every attached device; the first whose layout exists for the image
//!    wins ([`ImageLayouts::layout`] may refuse a modifier for a format, AFBC for a two-plane
//!    NV12, say). Every modifier the exporter preferred to it is remembered with the devices
//!    that ruled it out ([`Negotiated::passed_over`]).
//! 2. **No common modifier is an error** naming, per device, what it lists
//!    ([`Conflict::NoCommonModifier`](super::Conflict::NoCommonModifier), `EINVAL`: the errno
//!    of `drm_mode_addfb2` for a modifier no plane supports).
//! 3. **Pitch is negotiated, not checked.** The pitch alignment is the LCM of every attached
//!    device's (device description and importer needs); the layout rounds every plane's pitch
//!    up to it (and to the modifier's own alignment).
//! 4. **The buffer never grows.** A dma-buf's size is fixed at export (as in the kernel); a
//!    modifier whose layout is larger than it is passed over, and when every common one is,
//!    the negotiation is refused (`EINVAL`, as an importer refuses a buffer smaller than its
//!    format needs). [`ExportSpec::reserve`](super::ExportSpec::reserve) lets
//!    the exporter's owner size the buffer for layouts it expects later.
//! 5. **A change re-lays out.** When a late attach changes the modifier or a pitch, the buffer
//!    migrates and its bytes are converted on the way ([`ImageLayouts::convert`]: rows copied
//!    at the new pitch, tiles to lines); the migration's reason names the change.
//!
//! Plain data and pure functions: no lock, no lifetime.

use super::combine::{Bound, CombinedRecord};
use super::explain::{Conflict, ConstraintError};
use super::layout::Layout;
use super::record::ConstraintRecord;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The linear layout's name (`DRM_FORMAT_MOD_LINEAR`, value 0).
pub const MOD_LINEAR: &str = "linear";

/// One piece of a layout conversion: `len` bytes from offset `src` of the old layout to offset
/// `dst` of the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Offset in the old layout.
    pub src: u64,
    /// Offset in the new layout.
    pub dst: u64,
    /// Bytes.
    pub len: u64,
}

/// What an exporter negotiating a layout knows of the image (implemented by the format and
/// modifier tables above this crate, `drivers::modifier`).
pub trait ImageLayouts: Send + Sync + fmt::Debug {
    /// The image's planes with modifier `modifier`, every pitch a multiple of `pitch_align`.
    /// Err: why this modifier cannot hold this image (unknown name, wrong format).
    fn layout(&self, modifier: &str, pitch_align: u64) -> Result<Layout, String>;

    /// The modifier's `drm_fourcc.h` value, for reports (`None`: unknown name).
    fn modifier_value(&self, modifier: &str) -> Option<u64>;

    /// The copies that turn the image in `from` into the image in `to` (every visible byte of
    /// every line, in any order).
    fn convert(&self, from: &Negotiated, to: &Negotiated) -> Vec<Piece>;
}

/// What the exporter is told about the image it negotiates for.
#[derive(Clone, Debug)]
pub struct Negotiation {
    /// The exporter's preference order (the producer's modifiers; empty: linear only).
    pub preference: Vec<String>,
    /// The image's layouts.
    pub image: Arc<dyn ImageLayouts>,
}

/// A modifier the exporter preferred that was not chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassedOver {
    /// The modifier.
    pub modifier: String,
    /// The attached devices that do not list it (empty: it cannot hold the image).
    pub lacking: Vec<String>,
    /// Why, in words (`"rga lacks it"`, `"AFBC holds single-plane formats only, not NV12"`).
    pub why: String,
}

/// The outcome of a negotiation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Negotiated {
    /// The modifier chosen.
    pub modifier: String,
    /// Its `drm_fourcc.h` value.
    pub value: u64,
    /// Modifiers the exporter preferred to it, each with why it was passed over (the devices
    /// that lack it, or why it cannot hold the image).
    pub passed_over: Vec<PassedOver>,
    /// The pitch alignment every plane meets, and the device that set it.
    pub pitch_align: Bound<u64>,
    /// The layout.
    pub layout: Layout,
}

impl Negotiated {
    /// The pitch of every plane.
    pub fn pitches(&self) -> Vec<u64> {
        self.layout.planes.iter().map(|p| p.pitch).collect()
    }

    /// Who constrained the modifier, in words (`"arm_afbc_16x16_sparse: rga lacks it"`), or
    /// `None` if the exporter's first choice held.
    pub fn constrained_by(&self) -> Option<String> {
        (!self.passed_over.is_empty()).then(|| {
            self.passed_over
                .iter()
                .map(|p| format!("{}: {}", p.modifier, p.why))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The first device that ruled out a modifier the exporter preferred, if any.
    pub fn constrained_by_device(&self) -> Option<&str> {
        self.passed_over
            .iter()
            .find_map(|p| p.lacking.first())
            .map(String::as_str)
    }

    /// What changes from `self` to `to`, in words (empty: nothing).
    pub fn changes(&self, to: &Negotiated) -> Vec<String> {
        let mut out = Vec::new();
        if self.modifier != to.modifier {
            out.push(format!(
                "modifier {} -> {} ({})",
                self.modifier,
                to.modifier,
                to.constrained_by()
                    .unwrap_or_else(|| "the exporter's first choice".into())
            ));
        }
        if self.pitches() != to.pitches() {
            out.push(format!(
                "pitch {:?} -> {:?} (alignment {} bytes, set by {})",
                self.pitches(),
                to.pitches(),
                to.pitch_align.value,
                to.pitch_align.by.as_deref().unwrap_or("the modifier")
            ));
        }
        out
    }
}

/// Negotiates the layout for `records` (module rules 1-4); `max_size` is the buffer's fixed
/// size (`None`: not exported yet, any size).
///
/// Errors: `EINVAL` conflicts — no common modifier (rule 2), a layout larger than the buffer
/// (rule 4).
pub fn negotiate(
    records: &[ConstraintRecord],
    neg: &Negotiation,
    max_size: Option<u64>,
) -> Result<Negotiated, ConstraintError> {
    let devices = || records.iter().map(|r| r.device.clone()).collect::<Vec<_>>();
    let preference = if neg.preference.is_empty() {
        vec![MOD_LINEAR.to_string()]
    } else {
        neg.preference.clone()
    };
    let pitch = CombinedRecord::combine(records, 1).pitch_align;
    let mut passed_over = Vec::new();
    let mut too_large = None;
    for m in &preference {
        let mut lacking: Vec<String> = Vec::new();
        for r in records.iter().filter(|r| !r.supports_modifier(m)) {
            if !lacking.contains(&r.device) {
                lacking.push(r.device.clone());
            }
        }
        if !lacking.is_empty() {
            let why = format!(
                "{} {} it",
                lacking.join(", "),
                if lacking.len() == 1 { "lacks" } else { "lack" }
            );
            passed_over.push(PassedOver {
                modifier: m.clone(),
                lacking,
                why,
            });
            continue;
        }
        let layout = match neg.image.layout(m, pitch.value) {
            Ok(l) => l,
            Err(why) => {
                passed_over.push(PassedOver {
                    modifier: m.clone(),
                    lacking: Vec::new(),
                    why,
                });
                continue;
            }
        };
        if let Some(max) = max_size.filter(|&max| layout.size > max) {
            passed_over.push(PassedOver {
                modifier: m.clone(),
                lacking: Vec::new(),
                why: format!(
                    "its layout needs {} bytes, the buffer has {max}",
                    layout.size
                ),
            });
            too_large.get_or_insert(Conflict::LayoutTooLarge {
                modifier: m.clone(),
                pitches: layout.planes.iter().map(|p| p.pitch).collect(),
                needed: layout.size,
                size: max,
                by: pitch.by.clone(),
            });
            continue;
        }
        return Ok(Negotiated {
            modifier: m.clone(),
            value: neg.image.modifier_value(m).unwrap_or(0),
            passed_over,
            pitch_align: pitch,
            layout,
        });
    }
    if let Some(c) = too_large {
        return Err(ConstraintError::conflict(devices(), vec![c]));
    }
    let passed_over: Vec<(String, String)> = passed_over
        .into_iter()
        .filter(|p| p.lacking.is_empty())
        .map(|p| (p.modifier, p.why))
        .collect();
    let mut lists: Vec<(String, Vec<String>)> = Vec::new();
    for r in records {
        if lists.iter().any(|(d, _)| *d == r.device) {
            continue;
        }
        let list = if r.modifiers.is_empty() {
            vec![format!("{MOD_LINEAR} (lists none)")]
        } else {
            r.modifiers.clone()
        };
        lists.push((r.device.clone(), list));
    }
    Err(ConstraintError::conflict(
        devices(),
        vec![Conflict::NoCommonModifier {
            preference,
            devices: lists,
            passed_over,
        }],
    ))
}
