//! A TTM-like GPU driver: buffer objects that move between VRAM, GTT and system memory, per-process
//! GPU address spaces with cached mappings, dma-buf export/import (PRIME), and a ring of jobs that
//! wait on fences and signal fences.
//!
//! C side: `drivers/gpu/drm/ttm/ttm_bo.c` (placement, validation, eviction), `ttm_resource.c` (the
//! LRU lists), `ttm_bo_util.c` (moves and ghost objects), `drivers/gpu/drm/amd/amdgpu/amdgpu_vm.c`
//! (per-process VMs), `amdgpu_dma_buf.c` and `drivers/gpu/drm/drm_prime.c` (export, self-import,
//! peer-to-peer), `amdgpu_cs.c` and `drivers/gpu/drm/scheduler/sched_main.c` (jobs and fences).
//!
//! # The concept
//! Seed 003: a GPU "eats through data so fast that not caching mappings kills performance", and it
//! "can evict objects nilly-willy", with "sync objects à la ttm" telling everyone when a move is
//! done. A [`GpuBo`] is a buffer object with one **placement** at a time ([`Placement`]):
//! - **VRAM**: the device-local bank (`vram0`), carved by its [`soc::GenPool`]; the fastest, and
//!   scarce: an allocation that does not fit **evicts** the least recently used unpinned object;
//! - **GTT**: system pages bound into the GPU's MMU (its IOMMU domain), reachable by the GPU;
//! - **SYSTEM**: system pages the GPU cannot use until they are bound again (where evicted objects
//!   go when GTT is full).
//!
//! A process talks to the GPU through a [`GpuVm`], its GPU address space: mapping an object into
//! a VM once and reusing the mapping for every job (a *hit*), until the object moves (the mapping
//! is invalidated, and the next use is a *miss*). Jobs ([`Job`]) go to the GPU's ring through
//! [`Gpu::submit`], which locks every object's reservation object, makes the objects resident,
//! adds the job's fence to them (READ for sources, WRITE for destinations) and returns that fence;
//! the ring runs the job's DMA once every input fence (explicit, and implicit from the
//! reservation objects) has signaled.
//!
//! Objects leave the driver as dma-bufs ([`Gpu::export`], whose [`DmaBufOps`](dmabuf::DmaBufOps)
//! are in [`exporter`]) and come back either as themselves (self-import) or as imports of foreign
//! buffers ([`Gpu::import`]).
//!
//! # Map
//! * [`bo`]: [`GpuBo`], [`Placement`], [`Domains`], [`BoDesc`]; CPU access and pins.
//! * [`dmem`]: [`DmemGroup`], a VRAM limit per group that evicts the group's own objects.
//! * [`ttm`]: budgets, LRU lists, allocation with eviction ([`TtmStats`]); `moves.rs` moves an
//!   object; `storage.rs` is what backs it and how the GPU maps it.
//! * [`vm`]: [`GpuVm`], per-process address spaces with cached mappings ([`VmStats`]).
//! * [`exporter`]: [`BoExport`] (the dma-buf ops) and [`GpuImporter`] (PRIME).
//! * [`job`], [`ring`]: [`Job`]s, submission with implicit sync, the ring and its fences.
//!
//! # Eviction rules (`ttm_bo_evict`, `ttm_mem_evict_first`)
//! 1. The victim is the least recently used object of the full domain (VRAM, or GTT when a GTT
//!    budget is set). Use is a VM mapping, a job, a CPU access or a validation
//!    (`ttm_bo_move_to_lru_tail`).
//! 2. Pinned objects (kernel pins, static importers' maps, vmaps, dynamic importers' pins) are
//!    never evicted. Objects whose reservation lock someone else holds are skipped (TTM's
//!    `dma_resv_trylock`); so is the object being placed.
//! 3. Idle objects go first. Only if none can go, busy ones are waited for, at most
//!    [`GpuConfig::evict_timeout`] each.
//! 4. A VRAM victim goes to GTT if it may live there and GTT has room, else to SYSTEM; a GTT victim
//!    goes to SYSTEM (its pages stay, only the GPU binding goes).
//! 5. Nothing evictable: `ENOMEM` ([`GpuError::NoSpace`]) when only pinned objects are left, `EBUSY`
//!    ([`GpuError::Busy`]) when busy or locked ones could not be taken.
//!
//! # A move (`ttm_bo_handle_move_mem`), under the object's reservation lock
//! 1. Refuse a pinned object (`EBUSY`); wait (bounded) for every fence of the reservation object.
//! 2. Allocate the new storage (which may evict others, rule set above) and bind it for the GPU.
//! 3. Add a **move fence** to the reservation object with `KERNEL` usage: every later user waits
//!    for it (static importers' maps, CPU access, jobs through implicit sync).
//! 4. Tell everyone: `move_notify` to dynamic importers (with the resv lock held), invalidate the
//!    VM mappings, zap CPU mmaps.
//! 5. Copy the bytes with the GPU's DMA engine; on failure the fence signals with `EIO`, the new
//!    storage is freed and the object stays where it was.
//! 6. Switch to the new storage, free the old one — unless a dynamic importer still holds a table
//!    of it, in which case it lives on as a **ghost** (`ttm_buffer_object_transfer`) until that
//!    table is unmapped, so nobody ever reads freed memory.
//!
//! # Locking rules
//! 1. Order: reservation lock(s) of objects -> the TTM manager lock -> an object's state lock.
//!    A VM's table lock nests inside an object's reservation lock. The ring's queue lock is a
//!    leaf.
//! 2. An object's placement, pins and mappings change only with its reservation lock held; the
//!    state lock only makes the Rust borrow sound and is never held across a call out.
//! 3. Several objects are locked together with a ww acquire context ([`fence::ResvExec`]);
//!    eviction only ever *try*-locks victims, so it cannot deadlock with a caller holding locks.
//! 4. The ring never takes a reservation lock: it only waits on fences and signals its own (the
//!    fence cross-driver contract), so waiting for a job's fence with a resv lock held is safe.
//! 5. No lock of this module is held while a [`dmabuf::DmaBuf`] or a [`GpuBo`] is dropped
//!    (dropping may run `release` or free storage, which take these locks).

pub mod bo;
pub mod dmem;
pub mod exporter;
pub mod job;
mod moves;
mod pages;
pub mod prime_seam;
pub mod ring;
mod storage;
pub mod ttm;
pub mod vm;

pub use bo::{BoDesc, Domains, GpuBo, Placement};
pub use dmem::DmemGroup;
pub use exporter::{BoExport, GpuImporter};
pub use job::{Job, JobOp};
pub use ring::{checksum, luma_to_xrgb, RingMode, RingStats};
pub use ttm::{TtmMove, TtmStats};
pub use vm::{GpuVm, VmStats};

use bo::BoInner;
use dma::{DmaApi, DmaError};
use dmabuf::{BufRegistry, DmaBuf, DmaBufError};
use fence::{DmaFence, FenceError, ResvError, SimpleFenceOps, WwError};
use parking_lot::Mutex;
use soc::{BankId, BankKind, Device, SocError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use uapi::{AsErrno, Errno};

/// How a [`Gpu`] is set up.
#[derive(Clone, Debug)]
pub struct GpuConfig {
    /// The GPU's device name in the SoC (default `gpu0`).
    pub device: String,
    /// The device-local bank used as VRAM (default `vram0`); `None` for an integrated GPU with
    /// no memory of its own: its objects live in GTT (system pages it binds), and an object
    /// that may only live in VRAM cannot be placed (`ENOMEM`).
    pub vram_bank: Option<String>,
    /// VRAM the TTM manager may hand out; `None` is the whole bank (a small budget makes pressure
    /// easy to provoke).
    pub vram_budget: Option<u64>,
    /// Bytes that may be bound in GTT at once; `None` is unlimited.
    pub gtt_budget: Option<u64>,
    /// Whether the exporter hands out VRAM to importers that allow peer-to-peer
    /// (`amdgpu_dma_buf_attach`'s `pci_p2pdma_distance` check, here a switch).
    pub p2p: bool,
    /// How long an eviction or an explicit move waits for a busy object's fences.
    pub evict_timeout: Duration,
    /// Whether jobs run on their own thread or when [`Gpu::run_pending`] is called.
    pub ring: RingMode,
}

impl Default for GpuConfig {
    fn default() -> GpuConfig {
        GpuConfig {
            device: "gpu0".into(),
            vram_bank: Some("vram0".into()),
            vram_budget: None,
            gtt_budget: None,
            p2p: true,
            evict_timeout: Duration::from_secs(2),
            ring: RingMode::Thread,
        }
    }
}

/// What went wrong in the GPU driver; [`AsErrno::errno`] gives the errno amdgpu would return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// A bad argument; the message names it (`EINVAL`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No room in a placement and nothing evictable (`ENOMEM`).
    #[error("no space in {placement}: {msg}")]
    NoSpace {
        /// The placement that was full.
        placement: Placement,
        /// What was asked for and why it failed.
        msg: String,
    },
    /// The object (or every eviction victim) is pinned, locked or busy (`EBUSY`).
    #[error("busy: {0}")]
    Busy(String),
    /// The object is not mapped in this VM (`ENOENT`).
    #[error("buffer object {bo} is not mapped in VM {vm:?}")]
    NotMapped {
        /// The object's id.
        bo: u64,
        /// The VM's name.
        vm: String,
    },
    /// The object belongs to another GPU (`EINVAL`, as a foreign GEM handle).
    #[error("buffer object {0} belongs to another GPU")]
    ForeignBo(u64),
    /// A dma-buf call failed.
    #[error(transparent)]
    DmaBuf(#[from] DmaBufError),
    /// The DMA API failed.
    #[error(transparent)]
    Dma(#[from] DmaError),
    /// The SoC model failed (an IOMMU fault, no memory in a pool).
    #[error(transparent)]
    Soc(#[from] SocError),
    /// A fence operation failed (a timeout, an interrupted wait).
    #[error(transparent)]
    Fence(#[from] FenceError),
    /// A reservation-object operation failed.
    #[error(transparent)]
    Resv(#[from] ResvError),
}

impl From<WwError> for GpuError {
    fn from(e: WwError) -> GpuError {
        GpuError::Resv(ResvError::Lock(e))
    }
}

impl AsErrno for GpuError {
    fn errno(&self) -> Errno {
        match self {
            GpuError::InvalidArgument(_) | GpuError::ForeignBo(_) => Errno::EINVAL,
            GpuError::NoSpace { .. } => Errno::ENOMEM,
            GpuError::Busy(_) => Errno::EBUSY,
            GpuError::NotMapped { .. } => Errno::ENOENT,
            GpuError::DmaBuf(e) => e.errno(),
            GpuError::Dma(e) => e.errno(),
            GpuError::Soc(e) => e.errno(),
            GpuError::Fence(e) => e.errno(),
            GpuError::Resv(e) => e.errno(),
        }
    }
}

impl From<GpuError> for DmaBufError {
    fn from(e: GpuError) -> DmaBufError {
        match e {
            GpuError::DmaBuf(e) => e,
            GpuError::Dma(e) => DmaBufError::Dma(e),
            GpuError::Soc(e) => DmaBufError::Soc(e),
            GpuError::Fence(e) => DmaBufError::Fence(e),
            GpuError::Resv(e) => DmaBufError::Resv(e),
            GpuError::NoSpace { .. } => DmaBufError::NoMemory(e.to_string()),
            GpuError::Busy(_) => DmaBufError::Busy(e.to_string()),
            other => DmaBufError::exporter(other.errno(), other.to_string()),
        }
    }
}

/// The shared state of one GPU; [`Gpu`] is a handle to it, objects and VMs hold it too.
pub(crate) struct GpuCore {
    pub(crate) cfg: GpuConfig,
    pub(crate) dma: Arc<DmaApi>,
    pub(crate) dev: Arc<Device>,
    /// The VRAM bank (`None`: an integrated GPU).
    pub(crate) vram_bank: Option<BankId>,
    /// First and one-past-last physical byte of VRAM (empty without VRAM).
    pub(crate) vram_range: (u64, u64),
    pub(crate) ttm: ttm::Ttm,
    pub(crate) ring: ring::Ring,
    move_ops: Arc<SimpleFenceOps>,
    move_ctx: u64,
    move_seq: AtomicU64,
    /// Where exports are listed unless the caller gives another registry.
    pub(crate) registry: Arc<BufRegistry>,
    /// Foreign buffers imported, by ino (`drm_prime_lookup_buf_handle`).
    imports: Mutex<HashMap<u64, Weak<BoInner>>>,
    next_id: AtomicU64,
}

impl GpuCore {
    /// A fresh id for an object or a VM.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A new fence on the TTM move timeline.
    pub(crate) fn move_fence(&self) -> DmaFence {
        let seq = self.move_seq.fetch_add(1, Ordering::Relaxed) + 1;
        DmaFence::new(self.move_ops.clone(), self.move_ctx, seq)
    }

    /// Whether `dev` can reach VRAM at all (through its IOMMU, or by its DMA mask).
    pub(crate) fn reaches_vram(&self, dev: &Device) -> bool {
        self.vram_bank.is_some()
            && (dev.iommu_domain().is_some() || self.vram_range.1 - 1 <= dev.dma_mask())
    }
}

impl Drop for GpuCore {
    fn drop(&mut self) {
        self.ring.shutdown();
    }
}

/// One GPU: its memory manager, ring and exports. Cheap to clone (a handle); `Send + Sync`.
#[derive(Clone)]
pub struct Gpu(pub(crate) Arc<GpuCore>);

impl Gpu {
    /// Binds the driver to `cfg.device`, with `cfg.vram_bank` as VRAM.
    ///
    /// Errors: an unknown device (`ENODEV`); a bank that is not device-local, a VRAM budget of 0
    /// or larger than the bank (`EINVAL`).
    pub fn new(dma: &Arc<DmaApi>, cfg: GpuConfig) -> Result<Gpu, GpuError> {
        let soc = dma.soc();
        let dev = soc.device(&cfg.device)?;
        let (vram_bank, vram_range, vram_size) = match &cfg.vram_bank {
            None => (None, (0, 0), 0),
            Some(name) => {
                let bank = soc.mem().bank_by_name(name)?;
                if bank.kind() != BankKind::DeviceLocal || soc.pool(bank.id()).is_none() {
                    return Err(GpuError::InvalidArgument(format!(
                        "bank {name:?} is not device-local memory"
                    )));
                }
                let size = match cfg.vram_budget {
                    Some(0) => {
                        return Err(GpuError::InvalidArgument("vram_budget of 0 bytes".into()));
                    }
                    Some(b) if b > bank.size() => {
                        return Err(GpuError::InvalidArgument(format!(
                            "vram_budget {b:#x} is larger than bank {name:?} ({:#x})",
                            bank.size()
                        )));
                    }
                    Some(b) => b,
                    None => bank.size(),
                };
                (Some(bank.id()), (bank.base().0, bank.end().0), size)
            }
        };
        // The ring's and the mover's timelines, on the machine's ids and clock.
        let clock = dma.soc().clock().clone();
        let ring = ring::Ring::new(
            &cfg.device,
            cfg.ring,
            crate::machine_fence_context(dma)?,
            clock.clone(),
        )?;
        let core = GpuCore {
            vram_bank,
            vram_range,
            ttm: ttm::Ttm::new(vram_size, cfg.gtt_budget),
            ring,
            move_ops: SimpleFenceOps::on(clock, &cfg.device, "ttm-move"),
            move_ctx: crate::machine_fence_context(dma)?,
            move_seq: AtomicU64::new(0),
            registry: BufRegistry::new(),
            imports: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            dma: dma.clone(),
            dev,
            cfg,
        };
        Ok(Gpu(Arc::new(core)))
    }

    /// The GPU's device.
    pub fn device(&self) -> &Arc<Device> {
        &self.0.dev
    }

    /// The DMA API of the machine.
    pub fn dma(&self) -> &Arc<DmaApi> {
        &self.0.dma
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &GpuConfig {
        &self.0.cfg
    }

    /// The registry exports are listed in by default ([`export`](Self::export)).
    pub fn registry(&self) -> &Arc<BufRegistry> {
        &self.0.registry
    }

    /// Whether both handles are the same GPU.
    pub fn ptr_eq(&self, other: &Gpu) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// `amdgpu_gem_create`: a new object of `desc.size` bytes (rounded up to pages), zeroed, in
    /// its preferred placement, else the next allowed one (evicting on VRAM pressure, rules
    /// 1-5 of the module doc).
    ///
    /// Errors: `EINVAL` for a zero size or a preferred placement outside the allowed domains;
    /// `ENOMEM`/`EBUSY` when no allowed placement has room.
    pub fn create_bo(&self, desc: BoDesc) -> Result<GpuBo, GpuError> {
        bo::create(&self.0, desc)
    }

    /// `ttm_bo_validate` into `placement`: moves `bo` there (evicting others if needed). A no-op
    /// if it is already there.
    ///
    /// Errors: `EINVAL` for an import or a placement outside the object's domains, `EBUSY` for a
    /// pinned object, `ENOMEM`.
    pub fn validate(&self, bo: &GpuBo, placement: Placement) -> Result<(), GpuError> {
        self.check_own(bo)?;
        let mut g = bo.0.resv.lock(None)?;
        ttm::validate_to(&self.0, &bo.0, &mut g, placement)
    }

    /// Evicts `bo` as memory pressure would (`amdgpu_evict_vram` for one object): VRAM goes to
    /// GTT or SYSTEM, GTT to SYSTEM. Returns the new placement.
    ///
    /// Errors: `EBUSY` for a pinned or busy object, `EINVAL` for an object already in SYSTEM or an
    /// import.
    pub fn evict(&self, bo: &GpuBo) -> Result<Placement, GpuError> {
        self.check_own(bo)?;
        let mut g = bo.0.resv.lock(None)?;
        ttm::evict_locked(&self.0, &bo.0, &mut g, &[])
    }

    /// Memory-manager counters: usage per placement, evictions, moves.
    pub fn ttm_stats(&self) -> TtmStats {
        self.0.ttm.stats()
    }

    /// Objects in `placement`, least recently used first (the LRU list).
    pub fn lru(&self, placement: Placement) -> Vec<u64> {
        self.0.ttm.lru_ids(placement)
    }

    /// `drm_gem_prime_export`: `bo` as a dma-buf listed in [`registry`](Self::registry). Exporting
    /// again while the dma-buf lives returns the same buffer (`obj->dma_buf`).
    pub fn export(&self, bo: &GpuBo) -> Result<DmaBuf, GpuError> {
        let reg = self.0.registry.clone();
        self.export_into(bo, &reg)
    }

    /// [`export`](Self::export) into another registry (e.g. the [`kernel::Kernel`]'s, so the
    /// buffer shows in its bufinfo).
    pub fn export_into(&self, bo: &GpuBo, registry: &Arc<BufRegistry>) -> Result<DmaBuf, GpuError> {
        exporter::export(&self.0, &bo.0, registry)
    }

    /// `drm_gem_prime_import`: a buffer this GPU exported comes back as the same object
    /// (seed 003's self-import, through [`DmaBuf::exporter_ops`]); a foreign buffer is attached
    /// dynamically for the GPU and wrapped in an imported object (importing it twice gives the
    /// same object).
    pub fn import(&self, buf: &DmaBuf) -> Result<GpuBo, GpuError> {
        self.import_with(buf, false, None)
    }

    /// [`import`](Self::import) of a buffer the GPU only reads (a compositor's client buffer):
    /// a foreign buffer's attachment is mapped `DMA_TO_DEVICE`, so it never overlaps a writer's
    /// mapping in the DMA-API checker's cacheline tracking, and a job that writes the object is
    /// refused (`EINVAL`). A buffer imported before keeps the import it has.
    pub fn import_read_only(&self, buf: &DmaBuf) -> Result<GpuBo, GpuError> {
        self.import_with(buf, true, None)
    }

    /// [`import`](Self::import) (or, `read_only`, [`import_read_only`](Self::import_read_only))
    /// whose attachment of a foreign buffer carries `importer_priv` to its exporter
    /// ([`DmaBuf::attach_with`]: what the GPU needs of this buffer, e.g. the constraint
    /// exporter's `ImporterNeeds`).
    pub fn import_with(
        &self,
        buf: &DmaBuf,
        read_only: bool,
        importer_priv: Option<dmabuf::ImporterPriv>,
    ) -> Result<GpuBo, GpuError> {
        let dir = if read_only {
            dma::DmaDirection::ToDevice
        } else {
            dma::DmaDirection::Bidirectional
        };
        if let Some(exp) = buf.exporter_ops::<BoExport>() {
            if Arc::ptr_eq(&exp.bo().gpu, &self.0) {
                return Ok(GpuBo(exp.bo().clone()));
            }
        }
        let ino = buf.ino();
        if let Some(bo) = self.0.imports.lock().get(&ino).and_then(Weak::upgrade) {
            return Ok(GpuBo(bo));
        }
        let bo = exporter::import_foreign(&self.0, buf, dir, importer_priv)?;
        self.0.imports.lock().insert(ino, Arc::downgrade(&bo.0));
        Ok(bo)
    }

    /// `amdgpu_cs_ioctl`: submits `job` in `vm` and returns its fence (see [`job`] for the steps).
    pub fn submit(&self, vm: &GpuVm, job: Job) -> Result<DmaFence, GpuError> {
        job::submit(&self.0, vm, job)
    }

    /// Manual ring ([`RingMode::Manual`]): runs queued jobs in order while the head job's inputs
    /// have signaled; returns how many ran. With a threaded ring it does nothing and returns 0.
    pub fn run_pending(&self) -> usize {
        self.0.ring.run_ready()
    }

    /// Manual ring: *starts* queued jobs in order while the head job's inputs have signaled
    /// (ring rule 7): a device job's bytes go out on the host threads it was given
    /// ([`crate::job::DeviceJob::on_pool`]) and the caller goes on; each job completes, and its
    /// fence signals, only at [`retire`](Self::retire) (or the next [`run_pending`](Self::run_pending)).
    /// Returns how many started; with a threaded ring it does nothing and returns 0.
    pub fn start_pending(&self) -> usize {
        self.0.ring.start_ready()
    }

    /// Manual ring: the fence interrupt for `fence` (ring rule 7, `amdgpu_fence_process`):
    /// the started jobs up to and including `fence`'s complete in order — each one's bytes are
    /// waited for, its effects sent, its fence signaled stamped `at_ns` (the completion time on
    /// the caller's clock). Returns how many; 0 if `fence` is not a started job's (never
    /// started, or retired already).
    pub fn retire(&self, fence: &DmaFence, at_ns: u64) -> usize {
        self.0.ring.retire(fence, at_ns)
    }

    /// Manual ring: jobs started ([`start_pending`](Self::start_pending)) and not retired yet.
    pub fn started(&self) -> usize {
        self.0.ring.started()
    }

    /// Waits for `fence`, running the ring meanwhile if it is manual. Returns the fence's error,
    /// if it signaled with one, as [`GpuError::Fence`] with [`FenceError::Driver`].
    pub fn wait_idle(&self, fence: &DmaFence) -> Result<(), GpuError> {
        if self.0.cfg.ring == RingMode::Manual {
            while !fence.is_signaled() {
                if self.run_pending() == 0 {
                    break;
                }
            }
        }
        fence.wait(None)?;
        match fence.error() {
            Some(e) => Err(GpuError::Fence(FenceError::Driver(e))),
            None => Ok(()),
        }
    }

    /// Ring counters.
    pub fn ring_stats(&self) -> RingStats {
        self.0.ring.stats()
    }

    fn check_own(&self, bo: &GpuBo) -> Result<(), GpuError> {
        if !Arc::ptr_eq(&bo.0.gpu, &self.0) {
            return Err(GpuError::ForeignBo(bo.id()));
        }
        if bo.is_imported() {
            return Err(GpuError::InvalidArgument(format!(
                "buffer object {} is an import; its exporter places it",
                bo.id()
            )));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("device", &self.0.cfg.device)
            .field("ttm", &self.0.ttm.stats())
            .finish()
    }
}
