//! Placement: where a buffer's memory can come from, decided without allocating.
//!
//! C side: the choice `dma_direct_alloc()` / `iommu_dma_alloc()` / `dma_alloc_contiguous()` make
//! for one device, done here for every attached device at once (seed 002).
//!
//! # Cost order
//! For each plane group, every source that meets the [`CombinedRecord`] is listed, cheapest
//! first; allocation ([`Backing::allocate`](super::Backing::allocate)) tries them in that order:
//! 1. banks a device *prefers* (or requires) come first, in the order named;
//! 2. **scattered system pages** when nothing needs contiguity (every device has an IOMMU), from
//!    the highest system bank down (low memory is precious to direct-mapped devices);
//! 3. when a group must be contiguous: a **CMA region** (a single page: one buddy block first),
//!    then **one buddy block** (at most `MAX_ORDER`);
//! 4. a **carveout** or **device-local** bank only when a device requires or prefers it; device
//!    memory never when an importer lacks `peer2peer`.
//!
//! When no source is left the plan fails with the [`Conflict`] that explains it.

use super::combine::{record_conflicts, CombinedRecord};
use super::explain::{Conflict, ConstraintError};
use super::layout::{Group, Layout};
use super::record::ConstraintRecord;
use serde::{Deserialize, Serialize};
use soc::{human_size, Bank, BankKind, Soc, CMA_MAX_ALIGN_ORDER, MAX_ORDER, PAGE_SHIFT, PAGE_SIZE};
use std::fmt;

/// Where one plane group's memory comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Buddy pages of a system bank, largest orders first (`iommu_dma_alloc_pages`).
    Scattered {
        /// The bank.
        bank: String,
    },
    /// A range of a CMA region (`cma_alloc`).
    Cma {
        /// The region.
        region: String,
        /// Its bank.
        bank: String,
    },
    /// One buddy block of a system bank.
    Block {
        /// The bank.
        bank: String,
    },
    /// A range of a carveout's pool (no struct pages).
    Carveout {
        /// The bank.
        bank: String,
    },
    /// A range of device-local memory (no struct pages, peer-to-peer only).
    DeviceLocal {
        /// The bank.
        bank: String,
    },
}

impl Source {
    /// The bank the memory is in.
    pub fn bank(&self) -> &str {
        match self {
            Source::Scattered { bank }
            | Source::Cma { bank, .. }
            | Source::Block { bank }
            | Source::Carveout { bank }
            | Source::DeviceLocal { bank } => bank,
        }
    }

    /// Memory without struct pages (mapped as a resource, accessed uncached by the CPU).
    pub fn is_iomem(&self) -> bool {
        matches!(self, Source::Carveout { .. } | Source::DeviceLocal { .. })
    }

    /// Whether the source gives one physically contiguous range.
    pub fn is_contiguous(&self) -> bool {
        !matches!(self, Source::Scattered { .. })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Scattered { bank } => write!(f, "scattered pages of {bank}"),
            Source::Cma { region, bank } => write!(f, "CMA region {region} ({bank})"),
            Source::Block { bank } => write!(f, "one block of {bank}"),
            Source::Carveout { bank } => write!(f, "carveout {bank}"),
            Source::DeviceLocal { bank } => write!(f, "device memory {bank}"),
        }
    }
}

/// The plan of one plane group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPlan {
    /// The bytes and planes covered.
    pub group: Group,
    /// Sources meeting every constraint, in the order allocation tries them (cost order).
    pub candidates: Vec<Source>,
    /// Whether the group must be physically contiguous.
    pub contiguous: bool,
    /// Highest physical address any byte may have.
    pub limit: u64,
    /// Physical alignment of the group's first byte.
    pub align: u64,
    /// Every source of the machine the constraints ruled out for this group, with why
    /// (`"scattered pages of dram1: must be contiguous (display0 has no IOMMU)"`), in bank
    /// order: the alternatives a placement reason shows as refused by the records.
    #[serde(default)]
    pub excluded: Vec<String>,
}

/// What a placement would be, without allocating (the what-if answer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementPlan {
    /// The buffer's size.
    pub size: u64,
    /// Bytes allocated and mapped (size and padding, page rounded).
    pub mapped_len: u64,
    /// One plan per plane group.
    pub groups: Vec<GroupPlan>,
    /// The record the plan meets.
    pub combined: CombinedRecord,
}

impl PlacementPlan {
    /// The first (cheapest) source of each group.
    pub fn first_choice(&self) -> Vec<&Source> {
        self.groups
            .iter()
            .filter_map(|g| g.candidates.first())
            .collect()
    }

    /// One line per group: `"planes 0..1 (8 MiB): CMA region cma0 (dram0)"`.
    pub fn describe(&self) -> String {
        self.groups
            .iter()
            .map(|g| {
                format!(
                    "planes {}..{} ({}): {}",
                    g.group.first_plane,
                    g.group.first_plane + g.group.planes,
                    human_size(g.group.len),
                    g.candidates
                        .first()
                        .map_or_else(|| "nothing".to_string(), ToString::to_string)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Order of a contiguous block of `len` bytes aligned to `align`, if the buddy allocator has it.
pub(crate) fn block_order(len: u64, align: u64) -> Option<u32> {
    let pages = len.div_ceil(PAGE_SIZE).max(1);
    let order = (64 - (pages - 1).leading_zeros()).max((align >> PAGE_SHIFT).trailing_zeros());
    (order <= MAX_ORDER).then_some(order)
}

/// The CMA alignment order for `align`, if `cma_alloc` takes it.
pub(crate) fn cma_align_order(align: u64) -> Option<u32> {
    let o = (align.max(PAGE_SIZE) >> PAGE_SHIFT).trailing_zeros();
    (o <= CMA_MAX_ALIGN_ORDER).then_some(o)
}

/// Plans a placement for `records` over `layout` on `soc` (module doc), allocating nothing.
///
/// Errors: [`ConstraintError::Conflict`] with every conflict found.
///
/// ```
/// use constraint::{plan, ConstraintRecord, Layout, Source};
/// let soc = soc::Soc::new(soc::SocDesc::default_soc()).unwrap();
/// let rec = |n: &str| ConstraintRecord::of_device(&soc.device(n).unwrap());
/// let p = plan(&[rec("isp0"), rec("gpu0")], &Layout::single(8 << 20), &soc).unwrap();
/// assert!(matches!(p.first_choice()[0], Source::Scattered { .. }), "all behind an IOMMU");
/// let p = plan(&[rec("isp0"), rec("display0")], &Layout::single(8 << 20), &soc).unwrap();
/// assert_eq!(p.first_choice()[0].to_string(), "CMA region cma0 (dram0)");
/// ```
pub fn plan(
    records: &[ConstraintRecord],
    layout: &Layout,
    soc: &Soc,
) -> Result<PlacementPlan, ConstraintError> {
    let devices = || records.iter().map(|r| r.device.clone()).collect::<Vec<_>>();
    let mut conflicts = record_conflicts(records, layout, soc.mem());
    if !conflicts.is_empty() {
        return Err(ConstraintError::conflict(devices(), conflicts));
    }
    let combined = CombinedRecord::combine(records, layout.planes.len());
    let contiguous = !combined.contiguous.is_empty();
    let mut groups = Vec::new();
    for group in layout.groups(combined.split_planes, combined.padding.value) {
        match plan_group(&combined, group, contiguous, soc) {
            Ok(g) => groups.push(g),
            Err(c) => conflicts.push(c),
        }
    }
    let class = |g: &GroupPlan| {
        (
            g.candidates.iter().any(|s| !s.is_iomem()),
            g.candidates.iter().any(Source::is_iomem),
        )
    };
    let pages: Vec<usize> = groups
        .iter()
        .filter(|g| class(g) == (true, false))
        .map(|g| g.group.first_plane)
        .collect();
    let iomem: Vec<usize> = groups
        .iter()
        .filter(|g| class(g) == (false, true))
        .map(|g| g.group.first_plane)
        .collect();
    if !pages.is_empty() && !iomem.is_empty() {
        conflicts.push(Conflict::MixedBacking { pages, iomem });
    }
    if !conflicts.is_empty() {
        return Err(ConstraintError::conflict(devices(), conflicts));
    }
    Ok(PlacementPlan {
        size: layout.size,
        mapped_len: layout.mapped_len(combined.padding.value),
        groups,
        combined,
    })
}

fn plan_group(
    c: &CombinedRecord,
    group: Group,
    contiguous: bool,
    soc: &Soc,
) -> Result<GroupPlan, Conflict> {
    let plane = group.first_plane;
    let limit = c.phys_limit.value;
    let align = c.align.value;
    let len = group.len;
    let prefers = c.plane_prefers(plane);
    let named = |b: &Bank| prefers.iter().any(|p| p == b.name());
    let mut excluded = Vec::new();
    let allowed: Vec<&Bank> = soc
        .mem()
        .banks()
        .iter()
        .filter(|b| {
            let ok = c.plane_allows(plane, b.name());
            if !ok {
                let rules: Vec<String> = c
                    .plane_rules
                    .get(plane)
                    .into_iter()
                    .flatten()
                    .filter(|(_, r)| !r.allows(b.name()))
                    .map(|(d, r)| format!("{d} {}", r.describe()))
                    .collect();
                excluded.push(format!("bank {}: {}", b.name(), rules.join("; ")));
            }
            ok
        })
        .collect();
    let why_contiguous = c.contiguous.join(", ");
    let limit_by = c.phys_limit.by.clone().unwrap_or_default();
    let reachable = |b: &Bank| b.base().0.checked_add(len - 1).is_some_and(|e| e <= limit);
    let mut ranked: Vec<((usize, u8, i128), Source)> = Vec::new();
    let mut looked = Vec::new();
    let mut p2p_refused = Vec::new();
    let cma = soc.pages().cma_regions();
    for b in &allowed {
        let pref = prefers
            .iter()
            .position(|p| p == b.name())
            .unwrap_or(usize::MAX);
        let base = i128::from(b.base().0);
        let bank = b.name().to_string();
        match b.kind() {
            BankKind::System if !contiguous && b.base().0 <= limit => {
                ranked.push(((pref, 0, -base), Source::Scattered { bank }));
            }
            BankKind::System if !contiguous => excluded.push(format!(
                "scattered pages of {bank}: above {limit_by}'s limit ({:#x})",
                limit
            )),
            BankKind::System => {
                excluded.push(format!(
                    "scattered pages of {bank}: must be contiguous ({why_contiguous})"
                ));
                let single = len <= PAGE_SIZE;
                for r in cma.iter().filter(|r| r.bank == b.id()) {
                    looked.push(format!("CMA region {} ({})", r.name, human_size(r.size)));
                    let fits =
                        r.size >= len && r.base.0.checked_add(len - 1).is_some_and(|e| e <= limit);
                    if r.size < len {
                        excluded.push(format!(
                            "CMA region {} ({bank}): {} is smaller than {}",
                            r.name,
                            human_size(r.size),
                            human_size(len)
                        ));
                    } else if !fits {
                        excluded.push(format!(
                            "CMA region {} ({bank}): ends above {limit_by}'s limit ({limit:#x})",
                            r.name
                        ));
                    } else if cma_align_order(align).is_none() {
                        excluded.push(format!(
                            "CMA region {} ({bank}): alignment {align:#x} is past CMA's largest",
                            r.name
                        ));
                    }
                    if fits && cma_align_order(align).is_some() {
                        let region = r.name.clone();
                        let rank = if single { 2 } else { 1 };
                        ranked.push((
                            (pref, rank, base),
                            Source::Cma {
                                region,
                                bank: bank.clone(),
                            },
                        ));
                    }
                }
                looked.push(format!(
                    "buddy blocks of {} (at most {})",
                    b.name(),
                    human_size(PAGE_SIZE << MAX_ORDER)
                ));
                if block_order(len, align).is_none() {
                    excluded.push(format!(
                        "one block of {bank}: {} is past the buddy allocator's largest block ({})",
                        human_size(len),
                        human_size(PAGE_SIZE << MAX_ORDER)
                    ));
                } else if !reachable(b) {
                    excluded.push(format!(
                        "one block of {bank}: above {limit_by}'s limit ({limit:#x})"
                    ));
                }
                if block_order(len, align).is_some() && reachable(b) {
                    let rank = if single { 1 } else { 2 };
                    ranked.push(((pref, rank, base), Source::Block { bank }));
                }
            }
            BankKind::Carveout if named(b) => {
                looked.push(format!("carveout {}", b.name()));
                if reachable(b) && b.size() >= len {
                    ranked.push(((pref, 3, base), Source::Carveout { bank }));
                } else {
                    excluded.push(format!("carveout {bank}: too small or above the limit"));
                }
            }
            BankKind::DeviceLocal if named(b) => {
                looked.push(format!("device memory {}", b.name()));
                if !c.needs_pages.is_empty() {
                    excluded.push(format!(
                        "device memory {bank}: {} cannot take memory without struct pages",
                        c.needs_pages.join(", ")
                    ));
                    p2p_refused.push(bank);
                } else if reachable(b) && b.size() >= len {
                    ranked.push(((pref, 4, base), Source::DeviceLocal { bank }));
                } else {
                    excluded.push(format!(
                        "device memory {bank}: too small or above the limit"
                    ));
                }
            }
            BankKind::Carveout => {
                excluded.push(format!("carveout {bank}: no device requires or prefers it"))
            }
            BankKind::DeviceLocal => excluded.push(format!(
                "device memory {bank}: no device requires or prefers it"
            )),
        }
    }
    ranked.sort_by_key(|r| r.0);
    let candidates: Vec<Source> = ranked.into_iter().map(|(_, s)| s).collect();
    if !candidates.is_empty() {
        return Ok(GroupPlan {
            group,
            candidates,
            contiguous,
            limit,
            align,
            excluded,
        });
    }
    let usable: Vec<&&Bank> = allowed
        .iter()
        .filter(|b| b.kind() == BankKind::System || named(b))
        .collect();
    if let Some(bank) = p2p_refused.into_iter().next() {
        let by = c
            .plane_rules
            .get(plane)
            .into_iter()
            .flatten()
            .filter(|(_, r)| r.only.contains(&bank) || r.prefer.contains(&bank))
            .map(|(d, _)| d.clone())
            .collect();
        return Err(Conflict::NeedsPages {
            device: c.needs_pages[0].clone(),
            bank,
            by,
        });
    }
    if usable.is_empty() {
        return Err(Conflict::NoBank {
            plane,
            rules: c.plane_rule_texts(plane),
        });
    }
    if let Some(dev) = &c.phys_limit.by {
        if usable.iter().all(|b| b.base().0 > limit) {
            return Err(Conflict::Unreachable {
                plane,
                device: dev.clone(),
                limit,
                banks: usable.iter().map(|b| b.name().to_string()).collect(),
                rules: c.plane_rule_texts(plane),
            });
        }
    }
    Err(Conflict::TooLarge {
        plane,
        bytes: len,
        reason: c.contiguous.join(", "),
        looked,
    })
}
