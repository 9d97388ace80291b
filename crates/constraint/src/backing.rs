//! Backing storage: the memory a [`PlacementPlan`] turned into, one piece per plane group.
//!
//! C side: what `dma_alloc_pages()`, `cma_alloc()` and `gen_pool_alloc()` hand out, and the
//! `sg_table` an exporter builds over it.
//!
//! A [`Backing`] is allocated whole or not at all ([`Backing::allocate`]), knows its physical
//! runs in buffer order, builds unmapped sg tables for any device's segment limits, answers CPU
//! faults, checks itself against a [`CombinedRecord`] ([`Backing::unmet`]), and is freed exactly
//! once ([`Backing::free`]). It holds no reference to the buffer, so an evicting exporter (a GPU's
//! TTM-like one) can keep several per buffer and move between them.

use super::combine::CombinedRecord;
use super::explain::ConstraintError;
use super::layout::{Group, Layout};
use super::placement::{block_order, cma_align_order, GroupPlan, PlacementPlan, Source};
use dma::{DmaApi, DmaError, SegmentLimits, SgBacking, SgTable};
use dmabuf::ops::{FaultPage, IosysMap};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use soc::{human_size, AllocRequest, PhysAddr, PhysChunk, MAX_ORDER, PAGE_SHIFT, PAGE_SIZE};
use std::fmt;

/// The memory of one plane group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupBacking {
    /// The bytes and planes it holds.
    pub group: Group,
    /// Where it came from.
    pub source: Source,
    /// Physical runs covering exactly `group.len` bytes, in order, neighbours merged.
    pub runs: Vec<(PhysAddr, u64)>,
}

/// Where a buffer lives, for events and reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// First plane of the group.
    pub first_plane: usize,
    /// Planes in the group.
    pub planes: usize,
    /// Where it came from.
    pub source: Source,
    /// Bytes.
    pub bytes: u64,
    /// Physically contiguous runs.
    pub runs: usize,
    /// Lowest physical address.
    pub lowest: u64,
    /// Highest physical address (last byte).
    pub highest: u64,
}

/// A whole placement, summarised (one entry per group).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementSummary {
    /// The groups.
    pub groups: Vec<GroupSummary>,
}

impl fmt::Display for PlacementSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.groups.is_empty() {
            return f.write_str("nowhere (no storage)");
        }
        let parts: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                format!(
                    "{} ({}, {} run{}, {:#x}..={:#x})",
                    g.source,
                    human_size(g.bytes),
                    g.runs,
                    if g.runs == 1 { "" } else { "s" },
                    g.lowest,
                    g.highest
                )
            })
            .collect();
        f.write_str(&parts.join(" + "))
    }
}

/// Allocated memory of a buffer (module doc).
///
/// # Invariants
/// `groups` cover `[0, mapped_len)` in order; `chunks` hold exactly the allocations behind the
/// runs until [`free`](Self::free) takes them.
pub struct Backing {
    groups: Vec<GroupBacking>,
    mapped_len: u64,
    iomem: bool,
    chunks: Mutex<Vec<PhysChunk>>,
    /// Candidates tried before the one each group got, and what they answered: (group index,
    /// `"CMA region cma0 (dram0): ..."`).
    refused: Vec<(usize, String)>,
}

impl fmt::Debug for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Backing({})", self.summary())
    }
}

fn merge(runs: &mut Vec<(PhysAddr, u64)>, pa: PhysAddr, len: u64) {
    match runs.last_mut() {
        Some((s, l)) if s.0 + *l == pa.0 => *l += len,
        _ => runs.push((pa, len)),
    }
}

impl Backing {
    /// Allocates every group of `plan`, trying each group's candidates in order (all groups in
    /// page-backed memory, or all in memory without struct pages). Nothing is zeroed (see
    /// [`zero`](Self::zero)).
    ///
    /// Errors: [`ConstraintError::NoMemory`] listing what each candidate answered; nothing stays
    /// allocated.
    pub fn allocate(dma: &DmaApi, plan: &PlacementPlan) -> Result<Backing, ConstraintError> {
        let mut chunks = Vec::new();
        let mut groups = Vec::new();
        let mut iomem: Option<bool> = None;
        let mut refused = Vec::new();
        for (gi, g) in plan.groups.iter().enumerate() {
            let mut tried = Vec::new();
            let mut done = None;
            for src in &g.candidates {
                if iomem.is_some_and(|i| i != src.is_iomem()) {
                    continue;
                }
                match alloc_source(dma, g, src) {
                    Ok((runs, mut got)) => {
                        chunks.append(&mut got);
                        done = Some((src.clone(), runs));
                        break;
                    }
                    Err(e) => tried.push(format!("{src}: {e}")),
                }
            }
            let Some((source, runs)) = done else {
                free_chunks(dma, std::mem::take(&mut chunks));
                return Err(ConstraintError::NoMemory(format!(
                    "planes {}..{} ({}{}): {}",
                    g.group.first_plane,
                    g.group.first_plane + g.group.planes,
                    human_size(g.group.len),
                    if g.contiguous { " contiguous" } else { "" },
                    if tried.is_empty() {
                        "no candidate".to_string()
                    } else {
                        tried.join("; ")
                    }
                )));
            };
            iomem = Some(source.is_iomem());
            refused.extend(tried.into_iter().map(|t| (gi, t)));
            groups.push(GroupBacking {
                group: g.group,
                source,
                runs,
            });
        }
        // INVARIANT: one backing per plan group, in order, covering the mapped length.
        Ok(Backing {
            groups,
            mapped_len: plan.mapped_len,
            iomem: iomem.unwrap_or(false),
            chunks: Mutex::new(chunks),
            refused,
        })
    }

    /// Zero-fills the memory as the CPU would, leaving no cache line behind (a heap's
    /// `clear_page`, `arch_dma_prep_coherent`).
    pub fn zero(&self, dma: &DmaApi) -> Result<(), ConstraintError> {
        self.zero_from(dma, 0)
    }

    /// [`zero`](Self::zero) from byte `offset` of the buffer to the end (the padding a migration
    /// adds beyond what it copied).
    pub fn zero_from(&self, dma: &DmaApi, offset: u64) -> Result<(), ConstraintError> {
        let soc = dma.soc();
        let mut pos = 0u64;
        for &(pa, len) in self.groups.iter().flat_map(|g| &g.runs) {
            let skip = offset.saturating_sub(pos).min(len);
            pos += len;
            if skip == len {
                continue;
            }
            let (pa, len) = (pa.add(skip), len - skip);
            soc.cpu().invalidate(pa, len)?;
            soc.mem().fill(pa, len, 0)?;
        }
        Ok(())
    }

    /// The groups.
    pub fn groups(&self) -> &[GroupBacking] {
        &self.groups
    }

    /// Bytes allocated and mapped (the buffer and its padding, page rounded).
    pub fn mapped_len(&self) -> u64 {
        self.mapped_len
    }

    /// Whether the memory has no struct pages (carveout, device memory).
    pub fn is_iomem(&self) -> bool {
        self.iomem
    }

    /// Every physical run in buffer order, neighbours merged.
    pub fn runs(&self) -> Vec<(PhysAddr, u64)> {
        let mut out = Vec::new();
        for &(pa, len) in self.groups.iter().flat_map(|g| &g.runs) {
            merge(&mut out, pa, len);
        }
        out
    }

    /// An unmapped sg table of the whole mapped length, split to `limits`.
    pub fn sg_table(&self, limits: SegmentLimits) -> Result<SgTable, DmaError> {
        let backing = if self.iomem {
            SgBacking::Resource
        } else {
            SgBacking::Pages
        };
        SgTable::from_ranges(&self.runs(), backing, limits)
    }

    /// The physical address of byte `offset` of the buffer.
    pub fn phys_at(&self, offset: u64) -> Option<PhysAddr> {
        let mut pos = 0;
        for &(pa, len) in self.groups.iter().flat_map(|g| &g.runs) {
            if offset < pos + len {
                return Some(pa.add(offset - pos));
            }
            pos += len;
        }
        None
    }

    /// The page a CPU fault at page `pgoff` maps.
    pub fn page_at(&self, pgoff: u64) -> Option<FaultPage> {
        let pa = self.phys_at(pgoff.checked_mul(PAGE_SIZE)?)?;
        Some(if self.iomem {
            FaultPage::iomem(pa)
        } else {
            FaultPage::ram(pa)
        })
    }

    /// The runs of the first `size` bytes, for a vmap.
    pub fn iosys_map(&self, size: u64) -> IosysMap {
        let mut ranges = Vec::new();
        let mut left = size;
        for &(pa, len) in self.groups.iter().flat_map(|g| &g.runs) {
            if left == 0 {
                break;
            }
            let n = len.min(left);
            merge(&mut ranges, pa, n);
            left -= n;
        }
        IosysMap {
            ranges,
            is_iomem: self.iomem,
        }
    }

    /// Gives the memory back (pages through the DMA API so the checker sees the free). A second
    /// call does nothing.
    pub fn free(&self, dma: &DmaApi) {
        let chunks = std::mem::take(&mut *self.chunks.lock());
        free_chunks(dma, chunks);
    }

    /// Whether [`free`](Self::free) ran.
    pub fn is_freed(&self) -> bool {
        self.chunks.lock().is_empty()
    }

    /// The candidates allocation tried and that failed before each group got its memory:
    /// (group index, `"source: what it answered"`), in the order tried.
    pub fn refused(&self) -> &[(usize, String)] {
        &self.refused
    }

    /// Where the buffer lives, for events and reports.
    pub fn summary(&self) -> PlacementSummary {
        PlacementSummary {
            groups: self
                .groups
                .iter()
                .map(|g| GroupSummary {
                    first_plane: g.group.first_plane,
                    planes: g.group.planes,
                    source: g.source.clone(),
                    bytes: g.group.len,
                    runs: g.runs.len(),
                    lowest: g.runs.iter().map(|r| r.0 .0).min().unwrap_or(0),
                    highest: g.runs.iter().map(|r| r.0 .0 + r.1 - 1).max().unwrap_or(0),
                })
                .collect(),
        }
    }

    /// What this memory does not meet of `c` for `layout`, in words naming the device
    /// (`"display0 has no IOMMU; planes 0..1 are in 37 scattered runs"`). Empty: it serves
    /// every device of `c`.
    pub fn unmet(&self, c: &CombinedRecord, layout: &Layout) -> Vec<String> {
        let mut out = Vec::new();
        let want = layout.groups(c.split_planes, c.padding.value);
        let have: Vec<Group> = self.groups.iter().map(|g| g.group).collect();
        if want.len() != have.len() {
            out.push(format!(
                "planes need {} backing(s) of their own (per-plane banks), the buffer has {}",
                want.len(),
                have.len()
            ));
        } else if want != have && self.mapped_len < layout.mapped_len(0) {
            out.push(format!(
                "the layout needs {} bytes of memory; the buffer has {}",
                layout.mapped_len(c.padding.value),
                self.mapped_len
            ));
        } else if want != have {
            out.push(format!(
                "{} needs {} bytes of padding; the buffer has {}",
                c.padding.by.as_deref().unwrap_or("a device"),
                c.padding.value,
                self.mapped_len.saturating_sub(layout.mapped_len(0))
            ));
        }
        let contiguous = !c.contiguous.is_empty();
        for g in &self.groups {
            let planes = format!(
                "planes {}..{}",
                g.group.first_plane,
                g.group.first_plane + g.group.planes
            );
            let bank = g.source.bank();
            for p in g.group.first_plane..g.group.first_plane + g.group.planes {
                for (dev, rule) in c.plane_rules.get(p).into_iter().flatten() {
                    if !rule.allows(bank) {
                        out.push(format!("{dev} {}; plane {p} is in {bank}", rule.describe()));
                    }
                }
            }
            if contiguous && g.runs.len() > 1 {
                out.push(format!(
                    "{}; {planes} are in {} scattered runs",
                    c.contiguous.join(", "),
                    g.runs.len()
                ));
            }
            let highest = g.runs.iter().map(|r| r.0 .0 + r.1 - 1).max().unwrap_or(0);
            if highest > c.phys_limit.value {
                out.push(format!(
                    "{} reaches only below {}; {planes} reach up to {highest:#x}",
                    c.phys_limit.by.as_deref().unwrap_or("a device"),
                    human_size(c.phys_limit.value.saturating_add(1)),
                ));
            }
            let first = g.runs.first().map_or(0, |r| r.0 .0);
            if (contiguous || g.source.is_contiguous()) && first % c.align.value != 0 {
                out.push(format!(
                    "{} needs alignment {:#x}; {planes} start at {first:#x}",
                    c.align.by.as_deref().unwrap_or("a device"),
                    c.align.value
                ));
            }
            if matches!(g.source, Source::DeviceLocal { .. }) && !c.needs_pages.is_empty() {
                out.push(format!(
                    "{} (no peer2peer) needs memory with struct pages; {planes} are in {bank}",
                    c.needs_pages.join(", ")
                ));
            }
        }
        out
    }
}

fn free_chunks(dma: &DmaApi, chunks: Vec<PhysChunk>) {
    for c in chunks {
        // Frees of memory this backing allocated cannot fail unless the allocator state is
        // corrupt; a strict checker refusing a mapped free is reported by the checker itself.
        let _ = dma.free_chunk(c);
    }
}

type Allocated = (Vec<(PhysAddr, u64)>, Vec<PhysChunk>);

/// Allocates one group from one source.
fn alloc_source(dma: &DmaApi, g: &GroupPlan, src: &Source) -> Result<Allocated, String> {
    let soc = dma.soc();
    let len = g.group.len;
    let pages = len >> PAGE_SHIFT;
    let bank = soc
        .mem()
        .bank_by_name(src.bank())
        .map_err(|e| e.to_string())?;
    let limited = |req: AllocRequest| {
        if g.limit == u64::MAX {
            req
        } else {
            req.below(g.limit)
        }
    };
    match src {
        Source::Scattered { .. } => {
            let min_order = (g.align >> PAGE_SHIFT).trailing_zeros().min(MAX_ORDER);
            let mut got: Vec<PhysChunk> = Vec::new();
            let mut runs = Vec::new();
            let mut left = pages;
            let mut order = MAX_ORDER;
            while left > 0 {
                order = order.min(63 - left.leading_zeros()).max(min_order);
                let req = limited(AllocRequest::new(order).in_bank(bank.id()));
                match soc.pages().alloc_pages(&req) {
                    Ok(p) => {
                        let n = p.pages().min(left);
                        merge(&mut runs, p.addr, n << PAGE_SHIFT);
                        left -= n;
                        got.push(PhysChunk::Pages(p));
                    }
                    Err(_) if order > min_order => order -= 1,
                    Err(e) => {
                        free_chunks(dma, got);
                        return Err(e.to_string());
                    }
                }
            }
            Ok((runs, got))
        }
        Source::Cma { region, .. } => {
            let align_order = cma_align_order(g.align).ok_or("alignment too large for CMA")?;
            let addr = soc
                .pages()
                .cma_alloc(region, pages, align_order)
                .map_err(|e| e.to_string())?;
            let chunk = PhysChunk::Cma {
                region: region.clone(),
                addr,
                count: pages,
            };
            if addr.0 + (len - 1) > g.limit {
                free_chunks(dma, vec![chunk]);
                return Err(format!(
                    "the free range at {addr:#x} is above {:#x}",
                    g.limit
                ));
            }
            Ok((vec![(addr, len)], vec![chunk]))
        }
        Source::Block { .. } => {
            let order = block_order(len, g.align).ok_or("larger than MAX_ORDER")?;
            let req = limited(AllocRequest::new(order).in_bank(bank.id()));
            let p = soc.pages().alloc_pages(&req).map_err(|e| e.to_string())?;
            Ok((vec![(p.addr, len)], vec![PhysChunk::Pages(p)]))
        }
        Source::Carveout { .. } | Source::DeviceLocal { .. } => {
            let pool = soc
                .pool(bank.id())
                .ok_or_else(|| format!("bank {} has no pool", bank.name()))?;
            let addr = pool
                .alloc_below(len, g.align, g.limit)
                .map_err(|e| e.to_string())?;
            Ok((
                vec![(addr, len)],
                vec![PhysChunk::Pool {
                    bank: bank.id(),
                    addr,
                    size: len,
                }],
            ))
        }
    }
}
