//! Combining constraint records: one record standing for every attached device.
//!
//! C side: none; seed 002's "for simple stuff like the dma_mask we can just & them together, for
//! crazier stuff like contiguous or a special CMA pool we could use flags".
//!
//! # The rules
//! 1. **Masks AND**: the physical limit is the AND of the masks of the devices *without* an
//!    IOMMU (they see physical addresses); IOMMU devices bound only their IOVA space
//!    (`iova_mask`, the AND of theirs, must hold the buffer).
//! 2. **Contiguity OR**: each plane group is physically contiguous if any device has no IOMMU,
//!    needs contiguous memory, or asks for it.
//! 3. **Alignments LCM**: of every device's alignment (powers of two, so the largest) and of
//!    every pitch alignment (any integers).
//! 4. **Segment limits min**: smallest max segment size, boundary mask, and segment count.
//! 5. **Banks intersect, per plane**: a plane may use a bank only if every device's whole-buffer
//!    rule and plane rule allow it; preferences are gathered in device order.
//! 6. **Padding max**, and device-local memory only if every importer has `peer2peer`.
//!
//! Every combined value remembers the device that decided it (a [`Bound`]), so a failure can
//! name it.

use super::explain::Conflict;
use super::layout::Layout;
use super::record::{BankRule, ConstraintRecord};
use serde::{Deserialize, Serialize};
use soc::{PhysMem, PAGE_SIZE};

/// A combined value and the device that decided it (`None`: nobody constrains it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound<T> {
    /// The value.
    pub value: T,
    /// The device whose record set it.
    pub by: Option<String>,
}

impl<T> Bound<T> {
    fn free(value: T) -> Bound<T> {
        Bound { value, by: None }
    }

    fn set(&mut self, value: T, by: &str) {
        self.value = value;
        self.by = Some(by.to_string());
    }
}

/// The combined record of a set of devices (module rules).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CombinedRecord {
    /// The devices combined, in order.
    pub devices: Vec<String>,
    /// Rule 1: highest physical address every direct-mapped device reaches.
    pub phys_limit: Bound<u64>,
    /// Rule 1: the smallest IOVA space among IOMMU devices.
    pub iova_mask: Bound<u64>,
    /// Rule 2: why planes must be contiguous (empty: they need not be).
    pub contiguous: Vec<String>,
    /// Rule 3: physical alignment of every plane group (at least a page).
    pub align: Bound<u64>,
    /// Rule 3: pitch alignment (1: none).
    pub pitch_align: Bound<u64>,
    /// Rule 4.
    pub max_segment_size: Bound<u64>,
    /// Rule 4.
    pub segment_boundary_mask: Bound<u64>,
    /// Rule 4.
    pub max_segments: Bound<u32>,
    /// Rule 6: bytes of padding after the buffer.
    pub padding: Bound<u64>,
    /// Rule 6: importers without `peer2peer` (they exclude device-local memory).
    pub needs_pages: Vec<String>,
    /// Whether every device snoops the CPU caches.
    pub all_coherent: bool,
    /// Rule 5: per plane, every (device, rule) that restricts it.
    pub plane_rules: Vec<Vec<(String, BankRule)>>,
    /// Whether some device has a plane-specific rule (planes get their own backings).
    pub split_planes: bool,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Least common multiple, saturating.
pub fn lcm(a: u64, b: u64) -> u64 {
    if a == 0 || b == 0 {
        return a.max(b);
    }
    (a / gcd(a, b)).saturating_mul(b)
}

impl CombinedRecord {
    /// Combines `records` for a buffer of `planes` planes (module rules). An empty set gives the
    /// unconstrained record.
    ///
    /// ```
    /// use constraint::{CombinedRecord, ConstraintRecord, ImporterNeeds};
    /// let soc = soc::Soc::new(soc::SocDesc::default_soc()).unwrap();
    /// let rec = |n: &str| ConstraintRecord::of_device(&soc.device(n).unwrap());
    /// let c = CombinedRecord::combine(
    ///     &[rec("isp0"), rec("display0").with_needs(ImporterNeeds::new().align(1 << 16))],
    ///     1,
    /// );
    /// assert_eq!(c.phys_limit.value, (1 << 30) - 1);
    /// assert_eq!(c.phys_limit.by.as_deref(), Some("display0"));
    /// assert_eq!(c.align.value, 1 << 16);
    /// assert_eq!(c.contiguous, ["display0 has no IOMMU"]);
    /// ```
    pub fn combine(records: &[ConstraintRecord], planes: usize) -> CombinedRecord {
        let mut c = CombinedRecord {
            devices: Vec::with_capacity(records.len()),
            phys_limit: Bound::free(u64::MAX),
            iova_mask: Bound::free(u64::MAX),
            contiguous: Vec::new(),
            align: Bound::free(PAGE_SIZE),
            pitch_align: Bound::free(1),
            max_segment_size: Bound::free(u64::MAX),
            segment_boundary_mask: Bound::free(u64::MAX),
            max_segments: Bound::free(u32::MAX),
            padding: Bound::free(0),
            needs_pages: Vec::new(),
            all_coherent: true,
            plane_rules: vec![Vec::new(); planes.max(1)],
            split_planes: false,
        };
        for r in records {
            let d = r.device.as_str();
            c.devices.push(r.device.clone());
            match r.phys_limit() {
                Some(mask) => {
                    let and = c.phys_limit.value & mask;
                    if and != c.phys_limit.value {
                        c.phys_limit.set(and, d);
                    }
                }
                None => {
                    let and = c.iova_mask.value & r.dma_mask;
                    if and != c.iova_mask.value {
                        c.iova_mask.set(and, d);
                    }
                }
            }
            if let Some(why) = r.contiguity_reason() {
                c.contiguous.push(why);
            }
            let a = lcm(c.align.value, r.align());
            if a != c.align.value {
                c.align.set(a, d);
            }
            if r.pitch_alignment() > 1 {
                let p = lcm(c.pitch_align.value, r.pitch_alignment());
                if p != c.pitch_align.value {
                    c.pitch_align.set(p, d);
                }
            }
            if r.max_segment_size < c.max_segment_size.value {
                c.max_segment_size.set(r.max_segment_size, d);
            }
            if r.segment_boundary_mask < c.segment_boundary_mask.value {
                c.segment_boundary_mask.set(r.segment_boundary_mask, d);
            }
            if r.max_segments < c.max_segments.value {
                c.max_segments.set(r.max_segments, d);
            }
            if r.needs.padding > c.padding.value {
                c.padding.set(r.needs.padding, d);
            }
            if !r.peer2peer {
                c.needs_pages.push(r.device.clone());
            }
            c.all_coherent &= r.coherent;
            for (i, rules) in c.plane_rules.iter_mut().enumerate() {
                if !r.needs.banks.is_empty() {
                    rules.push((r.device.clone(), r.needs.banks.clone()));
                }
                if let Some(pr) = r.needs.plane_rule(i) {
                    rules.push((r.device.clone(), pr.clone()));
                }
            }
            c.split_planes |= r.needs.plane_banks.iter().any(|p| !p.is_empty());
        }
        c
    }

    /// Whether plane `plane` may use bank `name` (rule 5).
    pub fn plane_allows(&self, plane: usize, name: &str) -> bool {
        self.plane_rules
            .get(plane)
            .is_none_or(|rules| rules.iter().all(|(_, r)| r.allows(name)))
    }

    /// The preferred banks of plane `plane`, in device order.
    pub fn plane_prefers(&self, plane: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, r) in self.plane_rules.get(plane).into_iter().flatten() {
            for b in r.prefer.iter().chain(r.only.iter()) {
                if !out.contains(b) {
                    out.push(b.clone());
                }
            }
        }
        out
    }

    /// The rules of plane `plane` in words, `(device, rule)`.
    pub fn plane_rule_texts(&self, plane: usize) -> Vec<(String, String)> {
        self.plane_rules
            .get(plane)
            .into_iter()
            .flatten()
            .filter(|(_, r)| !r.only.is_empty() || !r.exclude.is_empty())
            .map(|(d, r)| (d.clone(), r.describe()))
            .collect()
    }
}

/// The conflicts `records` have on their own, before any bank is looked at: bad alignments,
/// plane rules for planes that do not exist, unknown banks, pitches, IOVA space and segment
/// counts. Bank and reach conflicts come from [`plan`](super::placement::plan).
pub fn record_conflicts(
    records: &[ConstraintRecord],
    layout: &Layout,
    mem: &PhysMem,
) -> Vec<Conflict> {
    let mut out = Vec::new();
    let c = CombinedRecord::combine(records, layout.planes.len());
    for r in records {
        let d = &r.device;
        if r.needs.align != 0 && !r.needs.align.is_power_of_two() {
            out.push(Conflict::BadAlignment {
                device: d.clone(),
                align: r.needs.align,
            });
        }
        for (plane, rule) in r.needs.plane_banks.iter().enumerate() {
            if !rule.is_empty() && plane >= layout.planes.len() {
                out.push(Conflict::NoSuchPlane {
                    device: d.clone(),
                    plane,
                    planes: layout.planes.len(),
                });
            }
        }
        let rules = std::iter::once(&r.needs.banks).chain(r.needs.plane_banks.iter());
        for name in rules.flat_map(|rule| rule.only.iter().chain(&rule.exclude).chain(&rule.prefer))
        {
            let unknown = Conflict::UnknownBank {
                device: d.clone(),
                bank: name.clone(),
            };
            if mem.bank_by_name(name).is_err() && !out.contains(&unknown) {
                out.push(unknown);
            }
        }
        if r.pitch_alignment() > 1 {
            for (plane, p) in layout.planes.iter().enumerate() {
                if p.pitch != 0 && p.pitch % r.pitch_alignment() != 0 {
                    out.push(Conflict::Pitch {
                        device: d.clone(),
                        plane,
                        pitch: p.pitch,
                        align: r.pitch_alignment(),
                    });
                }
            }
        }
    }
    let mapped = layout.mapped_len(c.padding.value);
    if let Some(by) = &c.iova_mask.by {
        if c.iova_mask.value < mapped - 1 {
            out.push(Conflict::IovaTooSmall {
                device: by.clone(),
                mask: c.iova_mask.value,
                size: mapped,
            });
        }
    }
    // Each device sees at least one segment per max segment size of every group (an IOMMU
    // range or a contiguous group; segment boundaries may add a few more at map time).
    let groups = layout.groups(c.split_planes, c.padding.value);
    for r in records {
        let seg = r
            .max_segment_size
            .min(r.segment_boundary_mask.saturating_add(1))
            .max(1);
        let needed: u64 = groups.iter().map(|g| g.len.div_ceil(seg)).sum();
        if needed > u64::from(r.max_segments) {
            out.push(Conflict::TooManySegments {
                device: r.device.clone(),
                max: r.max_segments,
                needed,
                by: r.device.clone(),
            });
        }
    }
    out
}
