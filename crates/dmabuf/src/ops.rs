//! The exporter's and the importer's callbacks: `struct dma_buf_ops` and
//! `struct dma_buf_attach_ops`.
//!
//! C header: `include/linux/dma-buf.h`.
//!
//! # The concept
//! The driver that allocates a buffer (the *exporter*) implements [`DmaBufOps`]; the core calls it
//! when importers attach, map, pin, when the CPU brackets an access, when user space maps the
//! buffer, and once at the end ([`DmaBufOps::release`]). A *dynamic importer* — one that can drop
//! its mappings whenever the exporter wants to move the buffer — implements [`ImporterOps`] and
//! attaches with [`DmaBuf::dynamic_attach`](crate::DmaBuf::dynamic_attach).
//!
//! # Mandatory and optional callbacks
//! 1. `map_dma_buf`, `unmap_dma_buf` and `release` are required trait methods: the kernel's
//!    "missing map/unmap/release -> `EINVAL`" check (behaviour 59) is a compile error here, and the
//!    ops object is the exporter's `priv`, so a missing `priv` cannot happen either.
//! 2. The optional callbacks that change what the core does declare themselves in
//!    [`DmaBufOps::features`] ([`OpsFeatures`]): `PIN` and `UNPIN` (an exporter with `pin` is
//!    *dynamic*), `MMAP`, `VMAP`. A callback not declared is never called, as if its C pointer were
//!    NULL. Declaring exactly one of `PIN`/`UNPIN` is refused at export (behaviour 60).
//! 3. The other optional callbacks (`attach`, `detach`, `begin_cpu_access`, `end_cpu_access`,
//!    `vunmap`) have defaults that do what the core does when the C pointer is NULL.
//!
//! # Locks on entry (section 1, "Locking, exporter callbacks")
//! | callback | buffer's resv lock |
//! |---|---|
//! | `attach`, `detach`, `release`, `begin_cpu_access`, `end_cpu_access`, `mmap`, `mmap_fault` | **not** held (the callback may take it) |
//! | `pin`, `unpin`, `map_dma_buf`, `unmap_dma_buf`, `vmap`, `vunmap` | held: the callback gets the `&mut ResvGuard` |
//! | [`ImporterOps::move_notify`] | held: the callback gets the `&mut ResvGuard` |
//!
//! Every callback may block (they are all process context in Linux) but must not wait on a fence
//! whose signaller needs the resv lock it was called with (the fence cross-driver contract).

use crate::attach::Attachment;
use crate::buf::DmaBuf;
use crate::error::DmaBufError;
use dma::{DmaDirection, SgTable};
use fence::ResvGuard;
use soc::PhysAddr;
use std::any::Any;
use std::fmt;
use std::ops::BitOr;
use std::sync::Arc;

/// The optional exporter callbacks whose presence changes what the core does (the non-NULL
/// pointers of `struct dma_buf_ops`).
///
/// ```
/// use dmabuf::OpsFeatures;
/// let f = OpsFeatures::PIN | OpsFeatures::UNPIN | OpsFeatures::MMAP;
/// assert!(f.contains(OpsFeatures::PIN));
/// assert!(!f.contains(OpsFeatures::VMAP));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OpsFeatures(u32);

impl OpsFeatures {
    /// No optional callback.
    pub const NONE: OpsFeatures = OpsFeatures(0);
    /// `ops->pin`: the exporter can pin (it is a dynamic exporter).
    pub const PIN: OpsFeatures = OpsFeatures(1 << 0);
    /// `ops->unpin`.
    pub const UNPIN: OpsFeatures = OpsFeatures(1 << 1);
    /// `ops->mmap`: user space may mmap the buffer (seed 001: without it the buffer is
    /// "not mmapable", and `mmap` is `EINVAL`).
    pub const MMAP: OpsFeatures = OpsFeatures(1 << 2);
    /// `ops->vmap`: the kernel may map the whole buffer for the CPU.
    pub const VMAP: OpsFeatures = OpsFeatures(1 << 3);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: OpsFeatures) -> bool {
        self.0 & other.0 == other.0
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl BitOr for OpsFeatures {
    type Output = OpsFeatures;
    fn bitor(self, rhs: OpsFeatures) -> OpsFeatures {
        OpsFeatures(self.0 | rhs.0)
    }
}

impl fmt::Debug for OpsFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (OpsFeatures::PIN, "PIN"),
            (OpsFeatures::UNPIN, "UNPIN"),
            (OpsFeatures::MMAP, "MMAP"),
            (OpsFeatures::VMAP, "VMAP"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(b, _)| self.contains(*b))
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            f.write_str("NONE")
        } else {
            f.write_str(&set.join("|"))
        }
    }
}

/// One page of a CPU mapping, as the exporter's fault hook hands it out (`vmf_insert_pfn` /
/// `vm_insert_page`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultPage {
    /// Physical address of the page (page aligned).
    pub phys: PhysAddr,
    /// Memory without struct pages (a carveout, device memory): accessed uncached, as a
    /// `VM_PFNMAP | VM_IO` mapping with `pgprot_writecombine` is.
    pub iomem: bool,
}

impl FaultPage {
    /// A page of system RAM, accessed through the CPU cache.
    pub fn ram(phys: PhysAddr) -> FaultPage {
        FaultPage { phys, iomem: false }
    }

    /// A page without struct page, accessed uncached.
    pub fn iomem(phys: PhysAddr) -> FaultPage {
        FaultPage { phys, iomem: true }
    }
}

/// The memory a `vmap` covers (`struct iosys_map`): physical runs in buffer order, and whether
/// they are I/O memory (accessed uncached).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IosysMap {
    /// Physically contiguous runs that together cover the buffer, in order.
    pub ranges: Vec<(PhysAddr, u64)>,
    /// `is_iomem`: accessed uncached.
    pub is_iomem: bool,
}

/// What [`DmaBufOps::release`] is told about the buffer that is going away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// The buffer's unique number.
    pub ino: u64,
    /// Its size.
    pub size: u64,
    /// The exporter name it was exported with.
    pub exp_name: String,
}

/// Lets the core and drivers recover the concrete type behind `dyn DmaBufOps` (self-import,
/// seed 003). Implemented for every `'static + Send + Sync` type; nothing to write.
pub trait AsAny: Any + Send + Sync {
    /// `self` as `&dyn Any`.
    fn as_any(&self) -> &dyn Any;
    /// `self` as `Arc<dyn Any>`, for a downcast that keeps a reference.
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: Any + Send + Sync> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// The exporter's callbacks (`struct dma_buf_ops`). See the module doc for which are mandatory
/// and which locks are held on entry.
///
/// The ops object is the exporter's private data: one object per buffer (or shared, keyed by
/// [`DmaBuf::ino`](crate::DmaBuf::ino)). It must not hold a [`DmaBuf`] or an [`Attachment`] of
/// its own buffer (that reference would keep the buffer alive forever); key per-attachment state
/// by [`Attachment::id`].
///
/// An exporter without `map_dma_buf`, `unmap_dma_buf` or `release` does not compile
/// (behaviour 59):
///
/// ```compile_fail,E0046
/// struct NoRelease;
/// impl dmabuf::DmaBufOps for NoRelease {
///     fn map_dma_buf(&self, _: &dmabuf::Attachment, _: dma::DmaDirection, _: &mut fence::ResvGuard<'_>)
///         -> Result<std::sync::Arc<dma::SgTable>, dmabuf::DmaBufError> {
///         Err(dmabuf::DmaBufError::exporter(uapi::Errno::ENOMEM, "no storage"))
///     }
///     fn unmap_dma_buf(&self, _: &dmabuf::Attachment, _: std::sync::Arc<dma::SgTable>, _: dma::DmaDirection,
///         _: &mut fence::ResvGuard<'_>) -> Result<(), dmabuf::DmaBufError> { Ok(()) }
/// }
/// ```
pub trait DmaBufOps: AsAny {
    /// The optional callbacks this exporter implements. Read once, at export.
    ///
    /// Default: none.
    fn features(&self) -> OpsFeatures {
        OpsFeatures::NONE
    }

    /// `attach`: a device joins the buffer (seed 000: the bookkeeping that lets the exporter
    /// choose storage every attached device can reach).
    ///
    /// - Called by [`DmaBuf::attach`](crate::DmaBuf::attach) and `dynamic_attach`, before the
    ///   attachment is listed; optional.
    /// - Lock: the resv is **not** held. May block.
    /// - Errors: anything; returned to the importer unchanged and nothing is listed
    ///   (behaviour 65). `EBUSY`/`ENOMEM` when the storage cannot serve the device.
    fn attach(&self, buf: &DmaBuf, att: &Attachment) -> Result<(), DmaBufError> {
        let _ = (buf, att);
        Ok(())
    }

    /// `detach`: the device leaves; free per-attachment state (an exporter with a
    /// [`MapCache`](crate::MapCache) calls [`MapCache::detach`](crate::MapCache::detach) here).
    ///
    /// - Called by [`DmaBuf::detach`](crate::DmaBuf::detach) (or when the last handle of a
    ///   never-detached attachment drops), after the attachment left the list; optional.
    /// - Lock: the resv is **not** held. May block. Cannot fail.
    fn detach(&self, buf: &DmaBuf, att: &Attachment) {
        let _ = (buf, att);
    }

    /// `pin`: keep the storage where it is until `unpin` (a pinned buffer is never moved).
    ///
    /// - Called by [`Attachment::pin`] for a dynamic importer, and by the core before mapping
    ///   for a static importer; only if [`OpsFeatures::PIN`] is declared.
    /// - Lock: resv held (`resv`). May block (it may have to move the buffer first).
    /// - Errors: `EBUSY` if the buffer cannot be pinned where the device can reach it, `ENOMEM`.
    fn pin(&self, att: &Attachment, resv: &mut ResvGuard<'_>) -> Result<(), DmaBufError> {
        let _ = (att, resv);
        Ok(())
    }

    /// `unpin`: undo one `pin`.
    ///
    /// - Called by [`Attachment::unpin`], and by the core after unmapping for a static importer;
    ///   only if [`OpsFeatures::UNPIN`] is declared.
    /// - Lock: resv held. May block. Cannot fail.
    fn unpin(&self, att: &Attachment, resv: &mut ResvGuard<'_>) {
        let _ = (att, resv);
    }

    /// `map_dma_buf`: the buffer as an sg table mapped for `att.device()` (through its IOMMU or
    /// direct), for `dir`. Seed 000: the first map is where the exporter allocates backing storage
    /// every attached device can reach.
    ///
    /// - Called by [`Attachment::map`]; mandatory.
    /// - Lock: resv held. May block (allocation, waiting for a move).
    /// - Returns a table already mapped with [`DmaApi::map_sg`](dma::DmaApi::map_sg). An exporter
    ///   without a cache returns a new table each time (behaviour 71); one with a
    ///   [`MapCache`](crate::MapCache) may return the same `Arc` again.
    /// - Errors: `ENOMEM` (no storage meets every attached device), `EBUSY`, DMA errors (`EIO`
    ///   for a device that cannot reach the storage).
    fn map_dma_buf(
        &self,
        att: &Attachment,
        dir: DmaDirection,
        resv: &mut ResvGuard<'_>,
    ) -> Result<Arc<SgTable>, DmaBufError>;

    /// `unmap_dma_buf`: the importer is done with `sgt` (a table this exporter returned for
    /// `att` and `dir`).
    ///
    /// - Called by [`Attachment::unmap`], and by the core when a static map is interrupted
    ///   (behaviour 70); mandatory.
    /// - Lock: resv held. May block.
    /// - `sgt` is the importer's reference: without a cache, `Arc::try_unwrap` gives the table
    ///   back for [`DmaApi::unmap_sg`](dma::DmaApi::unmap_sg).
    /// - Errors: DMA errors of the real unmap; the core reports them to the importer.
    fn unmap_dma_buf(
        &self,
        att: &Attachment,
        sgt: Arc<SgTable>,
        dir: DmaDirection,
        resv: &mut ResvGuard<'_>,
    ) -> Result<(), DmaBufError>;

    /// `release`: the last reference is gone; free the storage.
    ///
    /// - Called exactly once, when the last fd, mapping, attachment and clone of the buffer are
    ///   gone (behaviour 64); mandatory.
    /// - Lock: none. May block. Cannot fail.
    fn release(&self, info: &ReleaseInfo);

    /// `begin_cpu_access`: make the buffer coherent for the CPU in direction `dir` (for every
    /// attached non-coherent device, sync its mappings for the CPU:
    /// [`DmaBuf::sync_for_cpu_all_attachments`](crate::DmaBuf::sync_for_cpu_all_attachments) or
    /// [`MapCache::sync_for_cpu`](crate::MapCache::sync_for_cpu)).
    ///
    /// - Called by [`DmaBuf::begin_cpu_access`](crate::DmaBuf::begin_cpu_access) before it waits
    ///   for fences; optional (default: nothing to do).
    /// - Lock: resv **not** held. May block.
    /// - Errors: returned to the caller, and then the core does not wait (behaviour 77).
    fn begin_cpu_access(&self, buf: &DmaBuf, dir: DmaDirection) -> Result<(), DmaBufError> {
        let _ = (buf, dir);
        Ok(())
    }

    /// `end_cpu_access`: the CPU is done; write its data back for the devices.
    ///
    /// - Called by [`DmaBuf::end_cpu_access`](crate::DmaBuf::end_cpu_access); optional.
    /// - Lock: resv **not** held. May block.
    /// - Errors: returned unchanged (behaviour 78).
    fn end_cpu_access(&self, buf: &DmaBuf, dir: DmaDirection) -> Result<(), DmaBufError> {
        let _ = (buf, dir);
        Ok(())
    }

    /// `mmap`: user space maps pages `pgoff..pgoff + npages` (bounds already checked by the core,
    /// behaviour 81). Refuse here what the exporter cannot map (e.g. storage the CPU cannot
    /// reach). Pages are then faulted in lazily through [`mmap_fault`](Self::mmap_fault).
    ///
    /// - Called by [`DmaBuf::mmap`](crate::DmaBuf::mmap), only if [`OpsFeatures::MMAP`] is
    ///   declared.
    /// - Lock: resv **not** held. May block.
    /// - Errors: returned to the caller; no mapping is made.
    fn mmap(
        &self,
        buf: &DmaBuf,
        pgoff: u64,
        npages: u64,
        writable: bool,
    ) -> Result<(), DmaBufError> {
        let _ = (buf, pgoff, npages, writable);
        Ok(())
    }

    /// The page fault handler of a CPU mapping (`vm_operations_struct.fault`): the page at page
    /// offset `pgoff` of the buffer (allocating storage if there is none yet).
    ///
    /// - Called by a [`CpuMapping`](crate::CpuMapping) access that touches a page not faulted in
    ///   yet (or zapped since); only for exporters declaring [`OpsFeatures::MMAP`].
    /// - Lock: resv **not** held. May block. No lock of the mapping is held either, so the
    ///   exporter may zap mappings concurrently.
    /// - Errors: the access fails with it (the SIGBUS of a real process).
    fn mmap_fault(&self, buf: &DmaBuf, pgoff: u64) -> Result<FaultPage, DmaBufError> {
        let _ = (buf, pgoff);
        Err(DmaBufError::Fault("exporter has no fault handler".into()))
    }

    /// `vmap`: the whole buffer for the kernel's CPU access.
    ///
    /// - Called by [`DmaBuf::vmap`](crate::DmaBuf::vmap) for the first vmap only (the core
    ///   refcounts, behaviour 75); only if [`OpsFeatures::VMAP`] is declared.
    /// - Lock: resv held. May block.
    /// - Errors: returned; the counter stays 0.
    fn vmap(&self, buf: &DmaBuf, resv: &mut ResvGuard<'_>) -> Result<IosysMap, DmaBufError> {
        let _ = (buf, resv);
        Err(DmaBufError::NoVmap(buf.exp_name().to_string()))
    }

    /// `vunmap`: the last vmap is gone (behaviour 76); optional.
    ///
    /// - Lock: resv held. May block. Cannot fail.
    fn vunmap(&self, buf: &DmaBuf, map: &IosysMap, resv: &mut ResvGuard<'_>) {
        let _ = (buf, map, resv);
    }
}

/// A dynamic importer's callbacks (`struct dma_buf_attach_ops`).
///
/// Implementing this trait *is* providing `move_notify`: the kernel's "importer ops without
/// `move_notify` -> `EINVAL`" (behaviour 65) cannot be written here:
///
/// ```compile_fail,E0046
/// struct NoNotify;
/// impl dmabuf::ImporterOps for NoNotify {} // missing `move_notify`
/// ```
pub trait ImporterOps: Send + Sync {
    /// `move_notify`: the exporter is about to move the buffer. Tear down the mappings of `att`
    /// (unmap them now with `resv`, or mark them invalid and re-map before the next use, waiting
    /// for the buffer's KERNEL fences).
    ///
    /// - Called by [`DmaBuf::move_notify`](crate::DmaBuf::move_notify), on every dynamic
    ///   attachment and never on static ones (behaviour 73); mandatory.
    /// - Lock: resv held (`resv`). Must not block on the exporter.
    fn move_notify(&self, att: &Attachment, resv: &mut ResvGuard<'_>);

    /// `allow_peer2peer`: the importer can use memory without struct pages (device memory
    /// through a PCI BAR). Copied to [`Attachment::peer2peer`] at attach (behaviour 66).
    fn allow_peer2peer(&self) -> bool {
        false
    }
}
