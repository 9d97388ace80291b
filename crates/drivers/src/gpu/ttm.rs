//! The placement and eviction manager: budgets, LRU lists, moves (`struct ttm_device`,
//! `struct ttm_resource_manager`).
//!
//! C side: `drivers/gpu/drm/ttm/ttm_bo.c` (`ttm_bo_validate`, `ttm_bo_mem_space`,
//! `ttm_mem_evict_first`, `ttm_bo_evict`), `ttm_resource.c` (LRU bulk moves), `ttm_bo_util.c`
//! (`ttm_bo_move_accel_cleanup`, ghost objects), `amdgpu_ttm.c` (`amdgpu_evict_flags`,
//! `amdgpu_bo_move` with the SDMA copy engine).
//!
//! The eviction and move rules are numbered in the [module doc](super); this file implements
//! them. A VRAM allocation charges the budget and carves the bank's [`soc::GenPool`]; when either
//! refuses, `evict_one` takes the least recently used victim and the allocation retries. GTT and
//! SYSTEM storage's pages come from module `pages`.

use super::bo::{BoInner, GpuMap, Placement, Resident, Storage};
pub(crate) use super::moves::{exported_buf, move_locked};
use super::pages::{alloc_chunks, clear};
use super::{GpuCore, GpuError};
use fence::{DmaResvUsage, ResvGuard};
use parking_lot::Mutex;
use soc::PAGE_SIZE;

use std::sync::{Arc, Weak};

/// Counters of the memory manager.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TtmStats {
    /// VRAM bytes in use (ghosts included).
    pub vram_used: u64,
    /// VRAM bytes the manager may hand out.
    pub vram_size: u64,
    /// Bytes bound in GTT.
    pub gtt_used: u64,
    /// GTT budget (`u64::MAX` if unlimited).
    pub gtt_size: u64,
    /// Evictions done.
    pub evictions: u64,
    /// Bytes moved by evictions.
    pub evicted_bytes: u64,
    /// Moves done (evictions, validations, moves for importers).
    pub moves: u64,
    /// Bytes copied by moves.
    pub moved_bytes: u64,
    /// Allocations that found nothing to evict.
    pub evict_failures: u64,
    /// Old storage kept for importers after a move (ghost objects created).
    pub ghosts: u64,
    /// Nanoseconds the copy engine spent on moves, on the machine's time model (the sum of
    /// every [`TtmMove::copy_ns`]).
    pub move_ns: u64,
}

/// One move of a buffer object as the driver recorded it (`trace_amdgpu_bo_move`): where it
/// went and what the copy cost on the machine's time model ([`soc::timing::copy_ns`] of the
/// GPU's copy engine), so a scheduler charges the engine what the driver says instead of
/// recomputing it. A move that kept its pages (a GTT <-> SYSTEM rebind) copied nothing and
/// costs 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TtmMove {
    /// The object's moves so far, this one included.
    pub seq: u64,
    /// Where it was.
    pub from: Placement,
    /// Where it is now.
    pub to: Placement,
    /// Bytes the copy engine copied (0 for a rebind).
    pub bytes: u64,
    /// The copy's modelled duration in nanoseconds (0 for a rebind).
    pub copy_ns: u64,
    /// The engine that copied: the GPU's device.
    pub engine: String,
}

/// One LRU list: (object id, object), least recently used first.
type Lru = Vec<(u64, Weak<BoInner>)>;

struct TtmState {
    stats: TtmStats,
    vram_lru: Lru,
    gtt_lru: Lru,
}

/// The manager of one GPU. Its lock comes after reservation locks and before object state locks
/// (locking rule 1 of [`super`]).
pub(crate) struct Ttm {
    state: Mutex<TtmState>,
}

/// Where a move goes: a placement, and for pages a highest address and contiguity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub(crate) placement: Placement,
    pub(crate) limit: u64,
    pub(crate) contiguous: bool,
}

impl Target {
    pub(crate) fn anywhere(placement: Placement) -> Target {
        Target {
            placement,
            limit: u64::MAX,
            contiguous: false,
        }
    }
}

impl Ttm {
    pub(crate) fn new(vram_size: u64, gtt_size: Option<u64>) -> Ttm {
        Ttm {
            state: Mutex::new(TtmState {
                stats: TtmStats {
                    vram_size,
                    gtt_size: gtt_size.unwrap_or(u64::MAX),
                    ..TtmStats::default()
                },
                vram_lru: Vec::new(),
                gtt_lru: Vec::new(),
            }),
        }
    }

    pub(crate) fn stats(&self) -> TtmStats {
        self.state.lock().stats
    }

    pub(crate) fn lru_ids(&self, p: Placement) -> Vec<u64> {
        let st = self.state.lock();
        match p {
            Placement::Vram => st.vram_lru.iter().map(|e| e.0).collect(),
            Placement::Gtt => st.gtt_lru.iter().map(|e| e.0).collect(),
            Placement::System => Vec::new(),
        }
    }

    /// `ttm_bo_move_to_lru_tail`: `id` was just used.
    pub(crate) fn touch(&self, id: u64) {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        for lru in [&mut st.vram_lru, &mut st.gtt_lru] {
            if let Some(i) = lru.iter().position(|e| e.0 == id) {
                let e = lru.remove(i);
                lru.push(e);
            }
        }
    }

    /// The live objects of `p`'s LRU list, least recently used first.
    pub(crate) fn lru_objects(&self, p: Placement) -> Vec<Arc<BoInner>> {
        let st = self.state.lock();
        let lru = match p {
            Placement::Vram => &st.vram_lru,
            Placement::Gtt => &st.gtt_lru,
            Placement::System => return Vec::new(),
        };
        lru.iter().filter_map(|(_, w)| w.upgrade()).collect()
    }

    pub(crate) fn lru_remove(&self, id: u64) {
        let mut st = self.state.lock();
        st.vram_lru.retain(|e| e.0 != id);
        st.gtt_lru.retain(|e| e.0 != id);
    }

    pub(crate) fn lru_insert(&self, bo: &Arc<BoInner>, p: Placement) {
        let mut st = self.state.lock();
        st.vram_lru.retain(|e| e.0 != bo.id);
        st.gtt_lru.retain(|e| e.0 != bo.id);
        let e = (bo.id, Arc::downgrade(bo));
        match p {
            Placement::Vram => st.vram_lru.push(e),
            Placement::Gtt => st.gtt_lru.push(e),
            Placement::System => {}
        }
    }

    /// Charges `len` bytes to a budget; `false` if it does not fit.
    pub(crate) fn charge(&self, p: Placement, len: u64) -> bool {
        let mut st = self.state.lock();
        let s = &mut st.stats;
        let (used, size) = match p {
            Placement::Vram => (&mut s.vram_used, s.vram_size),
            Placement::Gtt => (&mut s.gtt_used, s.gtt_size),
            Placement::System => return true,
        };
        if used.saturating_add(len) > size {
            return false;
        }
        *used += len;
        true
    }

    pub(crate) fn uncharge(&self, p: Placement, len: u64) {
        let mut st = self.state.lock();
        match p {
            Placement::Vram => st.stats.vram_used -= len,
            Placement::Gtt => st.stats.gtt_used -= len,
            Placement::System => {}
        }
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut TtmStats)) {
        f(&mut self.state.lock().stats);
    }
}

/// Allocates and binds storage for `bo` at `t`, evicting others (never `bo`, nor `exclude`).
pub(crate) fn alloc_resident(
    core: &Arc<GpuCore>,
    bo: &BoInner,
    t: Target,
    exclude: &[u64],
) -> Result<Resident, GpuError> {
    let len = bo.size;
    let mut excl = exclude.to_vec();
    excl.push(bo.id);
    // A grouped object's VRAM is charged to its dmem group first (`dmem` rules 1-3).
    let dmem = match t.placement {
        Placement::Vram => super::dmem::charge_vram(core, bo, len, &excl)?,
        _ => None,
    };
    let storage = match t.placement {
        Placement::Vram => {
            let pool = core
                .dma
                .soc()
                .pool(core.vram_bank.ok_or_else(|| GpuError::NoSpace {
                    placement: Placement::Vram,
                    msg: "an integrated GPU has no VRAM".into(),
                })?)
                .ok_or_else(|| GpuError::InvalidArgument("VRAM bank has no pool".into()))?;
            loop {
                if core.ttm.charge(Placement::Vram, len) {
                    match pool.alloc(len, PAGE_SIZE) {
                        Ok(addr) => break Storage::Vram { addr, len },
                        Err(_) => core.ttm.uncharge(Placement::Vram, len),
                    }
                }
                evict_one(core, Placement::Vram, &excl)?;
            }
        }
        Placement::Gtt => {
            while !core.ttm.charge(Placement::Gtt, len) {
                evict_one(core, Placement::Gtt, &excl)?;
            }
            match alloc_chunks(core, len, t.limit, t.contiguous) {
                Ok(chunks) => Storage::Pages { chunks, len },
                Err(e) => {
                    core.ttm.uncharge(Placement::Gtt, len);
                    return Err(e);
                }
            }
        }
        Placement::System => Storage::Pages {
            chunks: alloc_chunks(core, len, t.limit, t.contiguous)?,
            len,
        },
    };
    let kmap = match t.placement {
        Placement::System => Ok(None),
        _ => GpuMap::new(core, &storage).map(Some),
    };
    match kmap {
        Ok(kmap) => Ok(Resident {
            placement: t.placement,
            storage,
            kmap,
            _dmem: dmem,
        }),
        Err(e) => {
            let _ = free_resident(
                core,
                Resident {
                    placement: t.placement,
                    storage,
                    kmap: None,
                    _dmem: dmem,
                },
            );
            Err(e)
        }
    }
}

/// Unbinds and frees storage, uncharging its budget.
pub(crate) fn free_resident(core: &GpuCore, r: Resident) -> Result<(), GpuError> {
    let len: u64 = r.storage.runs().iter().map(|x| x.1).sum();
    let mut first = Ok(());
    if let Some(m) = r.kmap {
        first = m.unmap(core);
    }
    match r.storage {
        Storage::Vram { addr, len } => {
            if let Some(bank) = core.vram_bank {
                core.dma.soc().free_pool(bank, addr, len)?;
            }
        }
        Storage::Pages { chunks, .. } => {
            for c in chunks {
                core.dma.free_chunk(c)?;
            }
        }
    }
    core.ttm.uncharge(r.placement, len);
    first
}

/// Places a new object (bo rule 1): preferred placement, then the others it allows.
pub(crate) fn populate(
    core: &Arc<GpuCore>,
    bo: &Arc<BoInner>,
    _g: &mut ResvGuard<'_>,
) -> Result<(), GpuError> {
    let mut order = vec![bo.preferred];
    for p in [Placement::Vram, Placement::Gtt, Placement::System] {
        if p != bo.preferred && bo.domains.allows(p) {
            order.push(p);
        }
    }
    let mut last = None;
    for p in order {
        match alloc_resident(core, bo, Target::anywhere(p), &[]) {
            Ok(res) => {
                clear(core, &res.storage)?;
                bo.state.lock().res = Some(res);
                core.ttm.lru_insert(bo, p);
                return Ok(());
            }
            Err(e @ (GpuError::NoSpace { .. } | GpuError::Busy(_))) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| GpuError::InvalidArgument("no allowed placement".into())))
}

/// `ttm_bo_validate` into `placement`.
pub(crate) fn validate_to(
    core: &Arc<GpuCore>,
    bo: &Arc<BoInner>,
    g: &mut ResvGuard<'_>,
    placement: Placement,
) -> Result<(), GpuError> {
    if !bo.domains.allows(placement) {
        return Err(GpuError::InvalidArgument(format!(
            "buffer object {} may not live in {placement} (domains {:?})",
            bo.id, bo.domains
        )));
    }
    let (p2p_ok, limit, contiguous) = bo.importer_needs();
    if placement == Placement::Vram && !p2p_ok {
        return Err(GpuError::Busy(format!(
            "buffer object {} is shared with an importer that cannot reach VRAM",
            bo.id
        )));
    }
    let t = Target {
        placement,
        limit,
        contiguous,
    };
    move_locked(core, bo, g, t, &[])
}

/// Makes `bo` usable by the GPU (VRAM or GTT), for a VM mapping or a job: an object in SYSTEM
/// goes back to its preferred placement, or GTT. Others in `exclude` are not evicted.
pub(crate) fn make_gpu_resident(
    core: &Arc<GpuCore>,
    bo: &Arc<BoInner>,
    g: &mut ResvGuard<'_>,
    exclude: &[u64],
) -> Result<(), GpuError> {
    let cur = bo.state.lock().res.as_ref().map(|r| r.placement);
    if cur != Some(Placement::System) {
        core.ttm.touch(bo.id);
        return Ok(());
    }
    let (p2p_ok, limit, contiguous) = bo.importer_needs();
    let mut tries = Vec::new();
    if bo.domains.allows(Placement::Vram) && p2p_ok && bo.preferred == Placement::Vram {
        tries.push(Placement::Vram);
    }
    if bo.domains.allows(Placement::Gtt) {
        tries.push(Placement::Gtt);
    }
    let mut last = GpuError::NoSpace {
        placement: Placement::Gtt,
        msg: format!("buffer object {} may live in neither VRAM nor GTT", bo.id),
    };
    for placement in tries {
        let t = Target {
            placement,
            limit,
            contiguous,
        };
        match move_locked(core, bo, g, t, exclude) {
            Ok(()) => return Ok(()),
            Err(e @ (GpuError::NoSpace { .. } | GpuError::Busy(_))) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Evicts one locked object (rule 4): VRAM -> GTT (if allowed, with room) -> SYSTEM;
/// GTT -> SYSTEM. Returns where it went.
pub(crate) fn evict_locked(
    core: &Arc<GpuCore>,
    bo: &Arc<BoInner>,
    g: &mut ResvGuard<'_>,
    exclude: &[u64],
) -> Result<Placement, GpuError> {
    let cur = bo.state.lock().res.as_ref().map(|r| r.placement);
    let (_, limit, contiguous) = bo.importer_needs();
    let targets: Vec<Placement> = match cur {
        Some(Placement::Vram) if bo.domains.allows(Placement::Gtt) => {
            vec![Placement::Gtt, Placement::System]
        }
        Some(Placement::Vram) | Some(Placement::Gtt) => vec![Placement::System],
        _ => {
            return Err(GpuError::InvalidArgument(format!(
                "buffer object {} is not in VRAM or GTT",
                bo.id
            )))
        }
    };
    let mut last = None;
    for placement in targets {
        let t = Target {
            placement,
            limit,
            contiguous,
        };
        match move_locked(core, bo, g, t, exclude) {
            Ok(()) => {
                let len = bo.size;
                bo.state.lock().evictions += 1;
                core.ttm.count(|s| {
                    s.evictions += 1;
                    s.evicted_bytes += len;
                });
                return Ok(placement);
            }
            Err(e @ GpuError::NoSpace { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| GpuError::Busy("no eviction target".into())))
}

/// `ttm_mem_evict_first`: evicts the least recently used evictable object of `domain` (rules
/// 1-5 of [`super`]).
pub(crate) fn evict_one(
    core: &Arc<GpuCore>,
    domain: Placement,
    exclude: &[u64],
) -> Result<(), GpuError> {
    let candidates: Vec<Arc<BoInner>> = {
        let st = core.ttm.state.lock();
        let lru = match domain {
            Placement::Vram => &st.vram_lru,
            _ => &st.gtt_lru,
        };
        lru.iter()
            .filter(|(id, _)| !exclude.contains(id))
            .filter_map(|(_, w)| w.upgrade())
            .collect()
    };
    let (mut pinned, mut busy) = (0usize, 0usize);
    for idle_pass in [true, false] {
        for bo in &candidates {
            if bo.state.lock().pins > 0 {
                pinned += usize::from(idle_pass);
                continue;
            }
            let Ok(mut g) = bo.resv.try_lock() else {
                busy += usize::from(idle_pass);
                continue;
            };
            let here = bo.state.lock().res.as_ref().map(|r| r.placement);
            if here != Some(domain) || bo.state.lock().pins > 0 {
                continue;
            }
            if idle_pass && !bo.resv.test_signaled(DmaResvUsage::Bookkeep) {
                busy += 1;
                continue;
            }
            match evict_locked(core, bo, &mut g, exclude) {
                Ok(_) => return Ok(()),
                Err(GpuError::Busy(_)) => busy += usize::from(idle_pass),
                Err(GpuError::NoSpace { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    drop(candidates); // rule 5: outside every lock of ours
    core.ttm.count(|s| s.evict_failures += 1);
    if busy > 0 {
        Err(GpuError::Busy(format!(
            "{domain} is full: {busy} object(s) busy or locked, {pinned} pinned"
        )))
    } else {
        Err(GpuError::NoSpace {
            placement: domain,
            msg: format!("nothing evictable ({pinned} pinned object(s) left)"),
        })
    }
}
