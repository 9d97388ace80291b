//! Buffer objects and their placements (`struct ttm_buffer_object`, `struct amdgpu_bo`).
//!
//! C side: `drivers/gpu/drm/ttm/ttm_bo.c`, `include/drm/ttm/ttm_placement.h` (`TTM_PL_VRAM`,
//! `TTM_PL_TT`, `TTM_PL_SYSTEM`), `drivers/gpu/drm/amd/amdgpu/amdgpu_object.c`
//! (`amdgpu_bo_create`, `amdgpu_bo_pin`, `amdgpu_bo_kmap`).
//!
//! # The concept
//! A [`GpuBo`] is memory the GPU owns, with one **placement** at a time ([`Placement`]) out of the
//! **domains** it may live in ([`Domains`]), like amdgpu's `preferred_domains` and
//! `allowed_domains`. Its storage is either a range of VRAM or a list of system page blocks; while
//! in VRAM or GTT it also has a **kernel GPU mapping** (the VRAM aperture mapped as a resource, or
//! the GTT binding of its pages), which the copy engine uses for moves.
//!
//! Each object carries its own reservation object ([`GpuBo::resv`]), shared with the dma-buf it is
//! exported as (a GEM object's `resv`), and a **generation** that every move bumps: a mapping made
//! at an older generation is stale.
//!
//! # Rules
//! 1. Objects are created resident and zeroed (`AMDGPU_GEM_CREATE_VRAM_CLEARED`), in the preferred
//!    placement if it has room (evicting on VRAM pressure), else in the next allowed one.
//! 2. A pinned object ([`GpuBo::pin`]) never moves; pins are counted.
//! 3. CPU access ([`GpuBo::read`], [`GpuBo::write`]) waits for the fences it must (a read waits
//!    for writers and moves, a write for everyone), then runs under the reservation lock so the
//!    object cannot move under it. VRAM is accessed uncached; pages through the cache, cleaned
//!    after a write and flushed before a read, so that devices that do not snoop (importers)
//!    and the CPU agree.
//! 4. The last handle frees the storage (and its ghosts, if any); an imported object detaches
//!    from its dma-buf.

pub(crate) use super::storage::{satisfies, GpuMap, Resident, Storage};
use super::ttm;
use super::vm::VmInner;
use super::{GpuCore, GpuError};
use dmabuf::{Attachment, MappedSgTable, WeakDmaBuf};
use fence::{DmaResv, DmaResvUsage, ResvGuard};
use parking_lot::Mutex;
use soc::{PhysAddr, PAGE_SIZE};
use std::fmt;
use std::ops::BitOr;
use std::sync::{Arc, OnceLock, Weak};

/// Where an object's storage is (`TTM_PL_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Placement {
    /// Device-local memory (`TTM_PL_VRAM`).
    Vram,
    /// System pages bound into the GPU's MMU (`TTM_PL_TT`).
    Gtt,
    /// System pages the GPU cannot reach until bound (`TTM_PL_SYSTEM`).
    System,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::Vram => "VRAM",
            Placement::Gtt => "GTT",
            Placement::System => "SYSTEM",
        })
    }
}

/// A set of placements (`AMDGPU_GEM_DOMAIN_VRAM | AMDGPU_GEM_DOMAIN_GTT | ...`).
///
/// ```
/// use drivers::gpu::{Domains, Placement};
/// let d = Domains::VRAM | Domains::GTT;
/// assert!(d.allows(Placement::Gtt) && !d.allows(Placement::System));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Domains(u8);

impl Domains {
    /// `AMDGPU_GEM_DOMAIN_VRAM`.
    pub const VRAM: Domains = Domains(1);
    /// `AMDGPU_GEM_DOMAIN_GTT`.
    pub const GTT: Domains = Domains(2);
    /// `AMDGPU_GEM_DOMAIN_CPU`.
    pub const SYSTEM: Domains = Domains(4);
    /// Every placement.
    pub const ALL: Domains = Domains(7);

    /// The domain of one placement.
    pub const fn of(p: Placement) -> Domains {
        match p {
            Placement::Vram => Domains::VRAM,
            Placement::Gtt => Domains::GTT,
            Placement::System => Domains::SYSTEM,
        }
    }

    /// Whether `p` is in the set.
    pub const fn allows(self, p: Placement) -> bool {
        self.0 & Domains::of(p).0 != 0
    }
}

impl BitOr for Domains {
    type Output = Domains;
    fn bitor(self, rhs: Domains) -> Domains {
        Domains(self.0 | rhs.0)
    }
}

impl fmt::Debug for Domains {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = [Placement::Vram, Placement::Gtt, Placement::System]
            .iter()
            .filter(|p| self.allows(**p))
            .map(|p| p.to_string())
            .collect();
        f.write_str(&names.join("|"))
    }
}

/// What [`Gpu::create_bo`](super::Gpu::create_bo) is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoDesc {
    /// A name for listings.
    pub name: String,
    /// Size in bytes (rounded up to pages).
    pub size: u64,
    /// Where it may live.
    pub domains: Domains,
    /// Where it should live (must be in `domains`).
    pub preferred: Placement,
}

impl BoDesc {
    /// Preferably in VRAM, allowed in GTT (amdgpu's usual render target).
    pub fn vram(name: &str, size: u64) -> BoDesc {
        BoDesc {
            name: name.into(),
            size,
            domains: Domains::VRAM | Domains::GTT,
            preferred: Placement::Vram,
        }
    }

    /// VRAM only (creation fails rather than fall back).
    pub fn vram_only(name: &str, size: u64) -> BoDesc {
        BoDesc {
            domains: Domains::VRAM,
            ..BoDesc::vram(name, size)
        }
    }

    /// In GTT (a staging buffer).
    pub fn gtt(name: &str, size: u64) -> BoDesc {
        BoDesc {
            name: name.into(),
            size,
            domains: Domains::GTT,
            preferred: Placement::Gtt,
        }
    }
}

/// The dma-buf an object is exported as (`obj->dma_buf`): a weak handle, so the export does not
/// keep itself alive through its own object, and the inode its release names.
pub(crate) struct ExportLink {
    pub(crate) ino: u64,
    pub(crate) buf: WeakDmaBuf,
    /// The export's mapping cache (exporter rule 5), invalidated by every move.
    pub(crate) cache: Arc<dmabuf::MapCache>,
}

/// What one importer of an exported object needs of its storage.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ImporterNeeds {
    pub(crate) att_id: u64,
    /// It may be handed VRAM.
    pub(crate) p2p_ok: bool,
    /// Highest physical address it reaches (direct-mapped devices), inclusive.
    pub(crate) limit: u64,
    /// It needs one physically contiguous run.
    pub(crate) contiguous: bool,
}

/// Everything that changes about an object; changed only under its reservation lock (module rule
/// 2 of [`super`]).
pub(crate) struct BoState {
    pub(crate) res: Option<Resident>,
    pub(crate) gen: u64,
    pub(crate) pins: u32,
    pub(crate) importers: Vec<ImporterNeeds>,
    pub(crate) vms: Vec<Weak<VmInner>>,
    pub(crate) export: Option<ExportLink>,
    /// Old storage still mapped by importers' tables: (the export's mapping-cache epoch
    /// those tables were mapped at, storage).
    pub(crate) ghosts: Vec<(u64, Resident)>,
    pub(crate) moves: u64,
    /// The last move's record ([`super::ttm::TtmMove`]).
    pub(crate) last_move: Option<super::ttm::TtmMove>,
    pub(crate) evictions: u64,
    /// `map_dma_buf` calls its exporter answered (each maps the storage for the importer).
    pub(crate) dma_buf_maps: u64,
    /// An import's device mapping of its attachment, shared by every VM (vm rule 3).
    pub(crate) import_map: Option<MappedSgTable>,
}

/// A foreign dma-buf imported by the GPU.
pub(crate) struct ImportLink {
    pub(crate) att: Attachment,
    /// How the import is mapped: `DMA_BIDIRECTIONAL`, or `DMA_TO_DEVICE` for a read-only one
    /// ([`Gpu::import_read_only`](super::Gpu::import_read_only)).
    pub(crate) dir: dma::DmaDirection,
}

pub(crate) struct BoInner {
    pub(crate) id: u64,
    pub(crate) size: u64,
    pub(crate) name: String,
    pub(crate) domains: Domains,
    pub(crate) preferred: Placement,
    pub(crate) gpu: Arc<GpuCore>,
    pub(crate) resv: Arc<DmaResv>,
    /// Set once for an imported object.
    pub(crate) import: OnceLock<ImportLink>,
    /// The dmem group charged for its VRAM, set once at creation ([`super::dmem`]).
    pub(crate) dmem: OnceLock<Arc<super::dmem::DmemGroup>>,
    pub(crate) state: Mutex<BoState>,
}

impl BoInner {
    pub(crate) fn new(
        gpu: &Arc<GpuCore>,
        name: &str,
        size: u64,
        domains: Domains,
        preferred: Placement,
        resv: Arc<DmaResv>,
    ) -> BoInner {
        BoInner {
            id: gpu.next_id(),
            size,
            name: name.into(),
            domains,
            preferred,
            gpu: gpu.clone(),
            resv,
            import: OnceLock::new(),
            dmem: OnceLock::new(),
            state: Mutex::new(BoState {
                res: None,
                gen: 0,
                pins: 0,
                importers: Vec::new(),
                vms: Vec::new(),
                export: None,
                ghosts: Vec::new(),
                moves: 0,
                last_move: None,
                evictions: 0,
                dma_buf_maps: 0,
                import_map: None,
            }),
        }
    }

    /// The combined needs of the importers: (VRAM allowed, limit, contiguous).
    pub(crate) fn importer_needs(&self) -> (bool, u64, bool) {
        let st = self.state.lock();
        st.importers
            .iter()
            .fold((true, u64::MAX, false), |(p, l, c), n| {
                (p && n.p2p_ok, l.min(n.limit), c || n.contiguous)
            })
    }
}

impl Drop for BoInner {
    fn drop(&mut self) {
        if let (Some(t), Some(link)) = (self.state.get_mut().import_map.take(), self.import.get()) {
            // Nobody else can hold this object, so its reservation lock is free of us.
            if let Ok(mut g) = self.resv.lock(None) {
                let _ = link.att.unmap(&mut g, t);
            }
        }
        let st = self.state.get_mut();
        let res = st.res.take();
        let ghosts: Vec<Resident> = st.ghosts.drain(..).map(|(_, r)| r).collect();
        for r in res.into_iter().chain(ghosts) {
            let _ = ttm::free_resident(&self.gpu, r);
        }
        self.gpu.ttm.lru_remove(self.id);
    }
}

/// A GPU buffer object (`struct amdgpu_bo`); the value is one reference (a GEM handle).
#[derive(Clone)]
pub struct GpuBo(pub(crate) Arc<BoInner>);

/// Creates a native object (rule 1).
pub(crate) fn create(core: &Arc<GpuCore>, desc: BoDesc) -> Result<GpuBo, GpuError> {
    create_in(core, desc, None)
}

/// Creates a native object charged to `group` (rule 1, [`super::dmem`]).
pub(crate) fn create_in(
    core: &Arc<GpuCore>,
    desc: BoDesc,
    group: Option<&Arc<super::dmem::DmemGroup>>,
) -> Result<GpuBo, GpuError> {
    if desc.size == 0 {
        return Err(GpuError::InvalidArgument("buffer object of 0 bytes".into()));
    }
    if !desc.domains.allows(desc.preferred) {
        return Err(GpuError::InvalidArgument(format!(
            "preferred placement {} is not in the allowed domains {:?}",
            desc.preferred, desc.domains
        )));
    }
    let size = soc::align_up(desc.size, PAGE_SIZE)
        .ok_or_else(|| GpuError::InvalidArgument(format!("size {:#x} overflows", desc.size)))?;
    let inner = Arc::new(BoInner::new(
        core,
        &desc.name,
        size,
        desc.domains,
        desc.preferred,
        Arc::new(DmaResv::new()),
    ));
    if let Some(group) = group {
        let _ = inner.dmem.set(group.clone());
    }
    {
        let mut g = inner.resv.lock(None)?;
        ttm::populate(core, &inner, &mut g)?;
    }
    Ok(GpuBo(inner))
}

impl GpuBo {
    /// A unique number (the GEM handle, GPU-wide).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Size in bytes (a whole number of pages for native objects).
    pub fn size(&self) -> u64 {
        self.0.size
    }

    /// The name it was created with.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Where it may live.
    pub fn domains(&self) -> Domains {
        self.0.domains
    }

    /// Where it should live.
    pub fn preferred(&self) -> Placement {
        self.0.preferred
    }

    /// Where it is now; `None` for an import (its exporter decides).
    pub fn placement(&self) -> Option<Placement> {
        self.0.state.lock().res.as_ref().map(|r| r.placement)
    }

    /// Physical runs of its current storage (1 for a VRAM range; the page runs of GTT or
    /// SYSTEM storage); `None` without storage of its own (an import).
    pub fn phys_runs(&self) -> Option<usize> {
        self.0
            .state
            .lock()
            .res
            .as_ref()
            .map(|r| r.storage.runs().len())
    }

    /// The physical `(address, length)` runs of its current storage, in buffer order (what
    /// [`phys_runs`](Self::phys_runs) counts): where its bytes are, so a caller can tell which
    /// bank — and which memory controller — a job on it loads. `None` for an import.
    pub fn phys_ranges(&self) -> Option<Vec<(PhysAddr, u64)>> {
        self.0.state.lock().res.as_ref().map(|r| r.storage.runs())
    }

    /// How many times its dma-buf's importers had it mapped (`map_dma_buf` calls the exporter
    /// answered; the first of each attachment and direction after a move maps the storage, the
    /// others are served by the export's mapping cache, [`map_cache_stats`](Self::map_cache_stats)).
    pub fn dma_buf_maps(&self) -> u64 {
        self.0.state.lock().dma_buf_maps
    }

    /// The export's mapping cache: (misses, hits) — real maps, and maps served from the cache
    /// (exporter rule 5); (0, 0) if it is not exported.
    pub fn map_cache_stats(&self) -> (u64, u64) {
        let st = self.0.state.lock();
        st.export
            .as_ref()
            .map_or((0, 0), |e| (e.cache.misses(), e.cache.hits()))
    }

    /// The reservation object (shared with its dma-buf).
    pub fn resv(&self) -> &Arc<DmaResv> {
        &self.0.resv
    }

    /// Whether it wraps a foreign dma-buf.
    pub fn is_imported(&self) -> bool {
        self.0.import.get().is_some()
    }

    /// Pins held.
    pub fn pin_count(&self) -> u32 {
        self.0.state.lock().pins
    }

    /// Moves so far (each bumps the generation).
    pub fn generation(&self) -> u64 {
        self.0.state.lock().gen
    }

    /// Its last move as the driver recorded it, with the copy's modelled cost; `None` if it
    /// never moved.
    pub fn last_move(&self) -> Option<super::ttm::TtmMove> {
        self.0.state.lock().last_move.clone()
    }

    /// Times it was evicted.
    pub fn evictions(&self) -> u64 {
        self.0.state.lock().evictions
    }

    /// Old storage kept alive for importers that have not unmapped it yet (module rule 6 of
    /// [`super`]).
    pub fn ghosts(&self) -> usize {
        self.0.state.lock().ghosts.len()
    }

    /// Whether both values are the same object.
    pub fn ptr_eq(&self, other: &GpuBo) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// `amdgpu_bo_pin`: keeps the object where it is until [`unpin`](Self::unpin) (rule 2).
    pub fn pin(&self) -> Result<(), GpuError> {
        let _g = self.0.resv.lock(None)?;
        self.0.state.lock().pins += 1;
        Ok(())
    }

    /// `amdgpu_bo_unpin`. Without a pin held: `EINVAL`.
    pub fn unpin(&self) -> Result<(), GpuError> {
        let _g = self.0.resv.lock(None)?;
        let mut st = self.0.state.lock();
        if st.pins == 0 {
            return Err(GpuError::InvalidArgument(format!(
                "unpin of buffer object {} without a pin",
                self.0.id
            )));
        }
        st.pins -= 1;
        Ok(())
    }

    /// The CPU writes `data` at `offset` (`amdgpu_bo_kmap` + memcpy), after waiting for every
    /// fence of the object (rule 3).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), GpuError> {
        let len = data.len() as u64;
        self.cpu_access(
            offset,
            len,
            DmaResvUsage::Read,
            |core, pa, piece, at, iomem| {
                let cpu = core.dma.soc().cpu();
                let chunk = &data[at..at + piece as usize];
                if iomem {
                    cpu.write_uncached(pa, chunk)?;
                } else {
                    // Clean at once: importers that do not snoop may read it next.
                    cpu.write(pa, chunk)?;
                    cpu.clean(pa, piece)?;
                }
                Ok(())
            },
        )
    }

    /// The CPU reads `out.len()` bytes at `offset`, after waiting for writers and moves (rule 3).
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), GpuError> {
        let len = out.len() as u64;
        self.cpu_access(
            offset,
            len,
            DmaResvUsage::Write,
            |core, pa, piece, at, iomem| {
                let cpu = core.dma.soc().cpu();
                let chunk = &mut out[at..at + piece as usize];
                if iomem {
                    cpu.read_uncached(pa, chunk)?;
                } else {
                    // Write back our own lines, drop the rest: a non-snooping device may have
                    // written under them.
                    cpu.flush(pa, piece)?;
                    cpu.read(pa, chunk)?;
                }
                Ok(())
            },
        )
    }

    /// Walks the physical runs of `[offset, offset + len)` under the reservation lock, calling
    /// `f(core, phys, len, offset in the access, iomem)` for each piece.
    fn cpu_access(
        &self,
        offset: u64,
        len: u64,
        wait: DmaResvUsage,
        mut f: impl FnMut(&GpuCore, PhysAddr, u64, usize, bool) -> Result<(), GpuError>,
    ) -> Result<(), GpuError> {
        if self.is_imported() {
            return Err(GpuError::InvalidArgument(
                "CPU access to an import goes through its dma-buf".into(),
            ));
        }
        if offset.checked_add(len).is_none_or(|e| e > self.0.size) {
            return Err(GpuError::InvalidArgument(format!(
                "CPU access of {len:#x} bytes at {offset:#x} beyond a buffer object of {:#x}",
                self.0.size
            )));
        }
        self.0.resv.wait_timeout(wait, None, None)?;
        let g = self.0.resv.lock(None)?;
        let (runs, iomem) = {
            let st = self.0.state.lock();
            let res = st.res.as_ref().ok_or_else(|| {
                GpuError::InvalidArgument(format!("buffer object {} has no storage", self.0.id))
            })?;
            (res.storage.runs(), res.storage.is_iomem())
        };
        let (mut pos, mut done) = (0u64, 0u64);
        for (pa, n) in runs {
            let (s, e) = (pos, pos + n);
            pos = e;
            let at = offset + done;
            if done == len || at >= e {
                continue;
            }
            let piece = (e - at).min(len - done);
            f(&self.0.gpu, pa.add(at - s), piece, done as usize, iomem)?;
            done += piece;
        }
        self.0.gpu.ttm.touch(self.0.id);
        drop(g);
        Ok(())
    }
}

impl fmt::Debug for GpuBo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuBo")
            .field("id", &self.0.id)
            .field("name", &self.0.name)
            .field("size", &self.0.size)
            .field("placement", &self.placement())
            .field("imported", &self.is_imported())
            .finish()
    }
}

/// Helper for exporters: the guard must lock this object's reservation object.
pub(crate) fn check_guard(bo: &BoInner, g: &ResvGuard<'_>) -> Result<(), GpuError> {
    if std::ptr::eq(g.resv(), &*bo.resv) {
        Ok(())
    } else {
        Err(GpuError::InvalidArgument(
            "the reservation lock held is not this buffer object's".into(),
        ))
    }
}
