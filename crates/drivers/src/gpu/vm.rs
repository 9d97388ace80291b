//! Per-process GPU address spaces with cached mappings (`struct amdgpu_vm`, `struct
//! amdgpu_bo_va`).
//!
//! C side: `drivers/gpu/drm/amd/amdgpu/amdgpu_vm.c` (`amdgpu_vm_bo_add`, `amdgpu_vm_bo_map`,
//! `amdgpu_vm_bo_invalidate`, `amdgpu_vm_handle_moved`), `amdgpu_gem.c` (`amdgpu_gem_va_ioctl`).
//!
//! # The concept
//! Seed 003: "desktop gpus already have (or will get) support for per-process gpu address spaces",
//! and GPUs "eat through data so fast that not caching mappings kills performance". A [`GpuVm`]
//! is one process's view of GPU memory: the first use of an object maps it (a **miss**: page
//! tables are written), every later use finds the mapping (a **hit**: nothing to do), until the
//! object moves and the mapping is invalidated (`amdgpu_vm_bo_invalidate`): the next use misses
//! again and maps the new storage.
//!
//! The SoC gives each device one IOMMU domain, so the GPU addresses of all VMs are IOVAs of the
//! GPU's domain, allocated through the DMA API (which keeps the DMA checker informed). Isolation
//! is bookkeeping: a job may only touch objects mapped in the VM it was submitted in
//! ([`Gpu::submit`](super::Gpu::submit) maps them, and counts the hits).
//!
//! # Rules
//! 1. A mapping is made and dropped with the object's reservation lock held; the VM's table lock
//!    nests inside it and is never held while calling the dma-buf core.
//! 2. A mapping records the object's generation; a move invalidates it at once (unmapping it
//!    before the old storage is freed), so no GPU access can reach freed memory.
//! 3. An imported object has one device mapping of its dma-buf attachment, shared by every VM;
//!    the exporter's `move_notify` drops it and bumps the generation, and VMs re-map lazily.
//! 4. [`GpuVm::unmap`] waits (bounded) for the object's fences: a queued job still uses the
//!    mapping. Dropping the VM unmaps everything once no job holds it.

use super::bo::{BoInner, GpuBo, GpuMap};
use super::{Gpu, GpuCore, GpuError};
use fence::{DmaResvUsage, FenceError, ResvGuard};
use parking_lot::Mutex;
use soc::DmaAddr;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters of one VM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmStats {
    /// Uses that found a valid mapping.
    pub hits: u64,
    /// Uses that had to map.
    pub misses: u64,
    /// Mappings dropped because their object moved.
    pub invalidations: u64,
    /// Objects mapped now (valid or not).
    pub mapped: usize,
}

/// A mapping in a VM.
enum VmMap {
    /// The VM's own mapping of a native object.
    Own(GpuMap),
    /// The shared attachment mapping of an imported object (rule 3).
    Shared,
}

struct VmEntry {
    bo: Arc<BoInner>,
    map: Option<VmMap>,
    gen: u64,
}

pub(crate) struct VmInner {
    id: u64,
    name: String,
    pub(crate) gpu: Arc<GpuCore>,
    /// The table: object id -> mapping. Lock rule 1.
    entries: Mutex<HashMap<u64, VmEntry>>,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

/// One process's GPU address space. Not `Clone`: it is the process's handle; queued jobs keep
/// the address space alive until they complete.
pub struct GpuVm(pub(crate) Arc<VmInner>);

impl GpuVm {
    /// `amdgpu_vm_init`: an empty address space on `gpu`, named for listings (a process name).
    pub fn new(gpu: &Gpu, name: &str) -> GpuVm {
        GpuVm(Arc::new(VmInner {
            id: gpu.0.next_id(),
            name: name.into(),
            gpu: gpu.0.clone(),
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }))
    }

    /// The name it was made with.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// A unique number.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Maps `bo` (making it GPU-resident first) and returns its GPU address; reuses a valid
    /// mapping (a hit). Takes the object's reservation lock.
    pub fn map(&self, bo: &GpuBo) -> Result<DmaAddr, GpuError> {
        if !Arc::ptr_eq(&bo.0.gpu, &self.0.gpu) {
            return Err(GpuError::ForeignBo(bo.id()));
        }
        let mut g = bo.0.resv.lock(None)?;
        let segs = self.0.map_locked(&bo.0, &mut g, &[])?;
        Ok(segs[0].0)
    }

    /// The GPU address of `bo` if it has a valid mapping (no counter changes).
    pub fn lookup(&self, bo: &GpuBo) -> Option<DmaAddr> {
        let gen = bo.0.state.lock().gen;
        let e = self.0.entries.lock();
        let entry = e.get(&bo.id()).filter(|x| x.gen == gen)?;
        match &entry.map {
            Some(VmMap::Own(m)) => m.segments().first().map(|s| s.0),
            Some(VmMap::Shared) => {
                let st = bo.0.state.lock();
                st.import_map.as_ref().and_then(|t| t.dma_address())
            }
            None => None,
        }
    }

    /// `amdgpu_gem_va_ioctl(UNMAP)`: drops the mapping of `bo` after its fences signal (rule 4).
    ///
    /// Errors: `ENOENT` if it is not mapped, `EBUSY` if a job still uses it after the GPU's
    /// eviction timeout.
    pub fn unmap(&self, bo: &GpuBo) -> Result<(), GpuError> {
        let core = &self.0.gpu;
        let _g = bo.0.resv.lock(None)?;
        if !self.0.entries.lock().contains_key(&bo.id()) {
            return Err(GpuError::NotMapped {
                bo: bo.id(),
                vm: self.0.name.clone(),
            });
        }
        match bo
            .0
            .resv
            .wait_timeout(DmaResvUsage::Bookkeep, None, Some(core.cfg.evict_timeout))
        {
            Ok(_) => {}
            Err(fence::ResvError::Fence(FenceError::Timeout)) => {
                return Err(GpuError::Busy(format!(
                    "buffer object {} is still used by a job",
                    bo.id()
                )))
            }
            Err(e) => return Err(e.into()),
        }
        let entry = self.0.entries.lock().remove(&bo.id());
        bo.0.state
            .lock()
            .vms
            .retain(|w| w.upgrade().is_some_and(|v| !Arc::ptr_eq(&v, &self.0)));
        if let Some(VmEntry {
            map: Some(VmMap::Own(m)),
            ..
        }) = entry
        {
            m.unmap(core)?;
        }
        Ok(())
    }

    /// The counters.
    pub fn stats(&self) -> VmStats {
        VmStats {
            hits: self.0.hits.load(Ordering::Relaxed),
            misses: self.0.misses.load(Ordering::Relaxed),
            invalidations: self.0.invalidations.load(Ordering::Relaxed),
            mapped: self.0.entries.lock().len(),
        }
    }
}

impl VmInner {
    /// Maps `bo` (locked by `g`) and returns its DMA segments (rules 1-3). Objects in `exclude`
    /// are not evicted to make room.
    pub(crate) fn map_locked(
        self: &Arc<Self>,
        bo: &Arc<BoInner>,
        g: &mut ResvGuard<'_>,
        exclude: &[u64],
    ) -> Result<Vec<(DmaAddr, u64)>, GpuError> {
        let core = &self.gpu;
        if let Some(link) = bo.import.get() {
            let gen = bo.state.lock().gen;
            if bo.state.lock().import_map.is_none() {
                let t = link.att.map(g, link.dir)?;
                bo.state.lock().import_map = Some(t);
            }
            let segs: Vec<(DmaAddr, u64)> = {
                let st = bo.state.lock();
                let t = st.import_map.as_ref().expect("mapped above");
                t.dma_segments().iter().map(|s| (s.addr, s.len)).collect()
            };
            let mut e = self.entries.lock();
            let hit = e
                .get(&bo.id)
                .is_some_and(|x| x.gen == gen && x.map.is_some());
            self.count(hit, e.get(&bo.id).is_some_and(|x| x.gen != gen));
            e.insert(
                bo.id,
                VmEntry {
                    bo: bo.clone(),
                    map: Some(VmMap::Shared),
                    gen,
                },
            );
            drop(e);
            self.register(bo);
            return Ok(segs);
        }
        super::ttm::make_gpu_resident(core, bo, g, exclude)?;
        let gen = bo.state.lock().gen;
        {
            let e = self.entries.lock();
            if let Some(VmEntry {
                map: Some(VmMap::Own(m)),
                gen: mgen,
                ..
            }) = e.get(&bo.id)
            {
                if *mgen == gen {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    core.ttm.touch(bo.id);
                    return Ok(m.segments());
                }
            }
        }
        // A miss: write the page tables for the current storage.
        let map = {
            let st = bo.state.lock();
            let res = st.res.as_ref().ok_or_else(|| {
                GpuError::InvalidArgument(format!("buffer object {} has no storage", bo.id))
            })?;
            GpuMap::new(core, &res.storage)?
        };
        let segs = map.segments();
        let old = {
            let mut e = self.entries.lock();
            self.misses.fetch_add(1, Ordering::Relaxed);
            e.insert(
                bo.id,
                VmEntry {
                    bo: bo.clone(),
                    map: Some(VmMap::Own(map)),
                    gen,
                },
            )
        };
        if let Some(VmEntry {
            map: Some(VmMap::Own(m)),
            ..
        }) = old
        {
            m.unmap(core)?;
        }
        self.register(bo);
        core.ttm.touch(bo.id);
        Ok(segs)
    }

    fn count(&self, hit: bool, stale: bool) {
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        if stale {
            self.invalidations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lists this VM in the object, so that a move finds it.
    fn register(self: &Arc<Self>, bo: &BoInner) {
        let mut st = bo.state.lock();
        st.vms.retain(|w| w.strong_count() > 0);
        if !st
            .vms
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(self)))
        {
            st.vms.push(Arc::downgrade(self));
        }
    }
}

/// `amdgpu_vm_bo_invalidate`: drops every VM mapping of `bo` (rule 2). Called by moves, with the
/// object's reservation lock held (`_g`).
pub(crate) fn invalidate_bo(core: &GpuCore, bo: &BoInner, _g: &mut ResvGuard<'_>) {
    let vms: Vec<Arc<VmInner>> = bo
        .state
        .lock()
        .vms
        .iter()
        .filter_map(|w| w.upgrade())
        .collect();
    for vm in &vms {
        let old = {
            let mut e = vm.entries.lock();
            e.get_mut(&bo.id).and_then(|x| x.map.take())
        };
        if let Some(VmMap::Own(m)) = old {
            vm.invalidations.fetch_add(1, Ordering::Relaxed);
            // The storage is still there: an unmap error is a bookkeeping bug the checker shows.
            let _ = m.unmap(core);
        }
    }
    // Our references are dropped here, after every VM lock was released; a VM whose last handle
    // went meanwhile tears down without needing `bo`'s reservation lock (it only holds own maps).
    drop(vms);
}

impl Drop for VmInner {
    fn drop(&mut self) {
        let entries: Vec<VmEntry> = self.entries.get_mut().drain().map(|(_, v)| v).collect();
        let mut bos = Vec::with_capacity(entries.len());
        for e in entries {
            if let Some(VmMap::Own(m)) = e.map {
                let _ = m.unmap(&self.gpu);
            }
            bos.push(e.bo);
        }
        drop(bos); // may free objects: no lock of ours is held
    }
}

impl fmt::Debug for GpuVm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuVm")
            .field("id", &self.0.id)
            .field("name", &self.0.name)
            .field("stats", &self.stats())
            .finish()
    }
}
