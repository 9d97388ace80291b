//! A VRAM limit per group of buffer objects, with the dmem cgroup controller's semantics: a
//! group over its limit evicts its own objects, not other groups'.
//!
//! C side: `kernel/cgroup/dmem.c` (`dmem_cgroup_register_region`, `dmem_cgroup_try_charge`,
//! `dmem_cgroup_uncharge`, `dmem_cgroup_state_evict_valuable`, the `dmem.max` and
//! `dmem.current` files), and its user in TTM: `ttm_resource_alloc` charges the region of the
//! placement to the cgroup of the object, and on `-EAGAIN` `ttm_bo_evict_alloc` evicts only
//! objects charged to the pool that hit its limit (or below it).
//!
//! # The concept
//! A [`DmemGroup`] is one cgroup's state in the VRAM region of one GPU (`drm/<gpu>/vram0`).
//! An object created with [`Gpu::create_bo_in`](super::Gpu::create_bo_in) belongs to a group
//! for its whole life; one created with [`Gpu::create_bo`](super::Gpu::create_bo) belongs to
//! none (the root cgroup: never limited).
//!
//! 1. **Charge.** Whenever a grouped object gets VRAM storage (creation, validation, a move
//!    back for a job), its size is charged to the group before the VRAM itself is taken. The
//!    charge lives as long as the storage does: it is given back when the object leaves VRAM
//!    (eviction, a move) or is freed, and a ghost (old storage an importer still reads) keeps
//!    its charge until it goes.
//! 2. **Over the limit: its own objects go first.** If the charge would take the group past
//!    `dmem.max`, the group's own least recently used VRAM object is evicted (to GTT, or
//!    SYSTEM: the usual eviction rules 2-4 of [`super`], pinned, locked or busy objects skipped,
//!    idle ones first) and the charge retried; objects of other groups, and ungrouped ones, are
//!    never evicted for it, even when they are less recently used.
//! 3. **Nothing of its own to evict:** VRAM is refused for this object with
//!    [`GpuError::NoSpace`] (`ENOMEM`) naming the group and its limit; a new object that may
//!    live in GTT falls back there (TTM tries the next placement), a VRAM-only one fails.
//! 4. **Device pressure** (the VRAM budget itself full) is unchanged: the global LRU victim
//!    goes, whatever its group (the dmem `min`/`low` protections are not modelled).
//! 5. A limit lowered below `dmem.current` evicts nothing at once; the group's next VRAM
//!    charge evicts its own objects until it fits (rule 2).
//!
//! # Locking
//! A group's counters are a leaf mutex, taken inside the TTM locks as the budget's is, never
//! held across an eviction. A charge (`DmemCharge`) uncharges once, when dropped.

use super::bo::BoInner;
use super::ttm::evict_locked;
use super::{BoDesc, Gpu, GpuBo, GpuCore, GpuError, Placement};
use fence::DmaResvUsage;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

#[derive(Debug, Default)]
struct Counters {
    current: u64,
    max: Option<u64>,
    peak: u64,
}

/// One cgroup's share of a GPU's VRAM region (see the module documentation).
#[derive(Debug)]
pub struct DmemGroup {
    name: String,
    region: String,
    gpu: Weak<GpuCore>,
    counters: Mutex<Counters>,
    evictions: AtomicU64,
    failures: AtomicU64,
}

impl DmemGroup {
    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The region it is charged in: `drm/<gpu device>/vram0`.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// `dmem.current` for the region: VRAM bytes charged to the group.
    pub fn current(&self) -> u64 {
        self.counters.lock().current
    }

    /// The highest `dmem.current` the group reached in the region (what `memory.peak` is for
    /// memory; dmem has no such file).
    pub fn peak(&self) -> u64 {
        self.counters.lock().peak
    }

    /// `dmem.max` for the region, `None` for `max` (no limit).
    pub fn max(&self) -> Option<u64> {
        self.counters.lock().max
    }

    /// Writes `dmem.max` for the region (`None` writes `max`). A limit below `dmem.current`
    /// is accepted and acts at the group's next VRAM charge (module rule 5).
    pub fn set_max(&self, max: Option<u64>) {
        self.counters.lock().max = max;
    }

    /// How many of the group's objects were evicted because the group hit its limit.
    pub fn limit_evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// How many VRAM charges were refused with nothing of the group's own left to evict.
    pub fn limit_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn try_charge(self: &Arc<Self>, len: u64) -> Option<DmemCharge> {
        let mut c = self.counters.lock();
        let new = c.current.checked_add(len)?;
        if c.max.is_some_and(|m| new > m) {
            return None;
        }
        c.current = new;
        c.peak = c.peak.max(new);
        Some(DmemCharge {
            group: self.clone(),
            len,
        })
    }
}

/// VRAM bytes charged to a group; uncharged when dropped (module rule 1).
#[derive(Debug)]
pub(crate) struct DmemCharge {
    group: Arc<DmemGroup>,
    len: u64,
}

impl Drop for DmemCharge {
    fn drop(&mut self) {
        let mut c = self.group.counters.lock();
        c.current = c.current.saturating_sub(self.len);
    }
}

/// Charges `bo`'s VRAM storage of `len` bytes to its group, evicting the group's own objects
/// while it is over the limit (module rules 2-3). `None` for an ungrouped object. Objects in
/// `exclude` (and `bo`) are not evicted.
pub(crate) fn charge_vram(
    core: &Arc<GpuCore>,
    bo: &BoInner,
    len: u64,
    exclude: &[u64],
) -> Result<Option<DmemCharge>, GpuError> {
    let Some(group) = bo.dmem.get() else {
        return Ok(None);
    };
    loop {
        if let Some(charge) = group.try_charge(len) {
            return Ok(Some(charge));
        }
        if !evict_own(core, group, exclude)? {
            group.failures.fetch_add(1, Ordering::Relaxed);
            let c = group.counters.lock();
            let (current, max) = (c.current, c.max.unwrap_or(u64::MAX));
            drop(c);
            return Err(GpuError::NoSpace {
                placement: Placement::Vram,
                msg: format!(
                    "dmem group {} in {}: {len:#x} bytes for buffer object {} would exceed \
                     dmem.max {max:#x} (dmem.current {current:#x}), and none of the group's \
                     own objects can be evicted",
                    group.name, group.region, bo.id
                ),
            });
        }
    }
}

/// Evicts the group's least recently used evictable VRAM object (idle ones first); `false` if
/// there is none.
fn evict_own(
    core: &Arc<GpuCore>,
    group: &Arc<DmemGroup>,
    exclude: &[u64],
) -> Result<bool, GpuError> {
    let candidates: Vec<Arc<BoInner>> = core
        .ttm
        .lru_objects(Placement::Vram)
        .into_iter()
        .filter(|b| !exclude.contains(&b.id))
        .filter(|b| b.dmem.get().is_some_and(|g| Arc::ptr_eq(g, group)))
        .collect();
    let mut evicted = false;
    'passes: for idle_pass in [true, false] {
        for bo in &candidates {
            if bo.state.lock().pins > 0 {
                continue;
            }
            let Ok(mut g) = bo.resv.try_lock() else {
                continue;
            };
            let here = bo.state.lock().res.as_ref().map(|r| r.placement);
            if here != Some(Placement::Vram) || bo.state.lock().pins > 0 {
                continue;
            }
            if idle_pass && !bo.resv.test_signaled(DmaResvUsage::Bookkeep) {
                continue;
            }
            match evict_locked(core, bo, &mut g, exclude) {
                Ok(_) => {
                    group.evictions.fetch_add(1, Ordering::Relaxed);
                    evicted = true;
                    break 'passes;
                }
                Err(GpuError::Busy(_) | GpuError::NoSpace { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    // Outside every lock of ours (rule 5 of the module doc of `gpu`).
    drop(candidates);
    Ok(evicted)
}

impl Gpu {
    /// A new dmem group in this GPU's VRAM region (`mkdir` of a cgroup with the dmem
    /// controller), without a limit.
    pub fn create_dmem_group(&self, name: &str) -> Arc<DmemGroup> {
        Arc::new(DmemGroup {
            name: name.to_string(),
            region: format!(
                "drm/{}/{}",
                self.0.cfg.device,
                self.0.cfg.vram_bank.as_deref().unwrap_or("none")
            ),
            gpu: Arc::downgrade(&self.0),
            counters: Mutex::new(Counters::default()),
            evictions: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// [`create_bo`](Self::create_bo) for a process of `group`: the object's VRAM is charged
    /// to it, under its limit (module rules 1-3).
    ///
    /// Errors: those of `create_bo`; `EINVAL` for a group of another GPU; `ENOMEM` for a
    /// VRAM-only object when the group is at its limit with nothing of its own to evict.
    pub fn create_bo_in(&self, desc: BoDesc, group: &Arc<DmemGroup>) -> Result<GpuBo, GpuError> {
        if !std::ptr::eq(group.gpu.as_ptr(), Arc::as_ptr(&self.0)) {
            return Err(GpuError::InvalidArgument(format!(
                "dmem group {} is in region {}, not of this GPU",
                group.name, group.region
            )));
        }
        super::bo::create_in(&self.0, desc, Some(group))
    }
}

impl GpuBo {
    /// The dmem group the object is charged to, if any.
    pub fn dmem_group(&self) -> Option<&Arc<DmemGroup>> {
        self.0.dmem.get()
    }
}
