//! The shared buffer object: `struct dma_buf`, its export, names and lifetime.
//!
//! C side: `drivers/dma-buf/dma-buf.c` (`dma_buf_export`, `dma_buf_release`,
//! `dma_buf_set_name`, `dma_buf_show_fdinfo`), `include/linux/dma-buf.h`.
//!
//! # The concept
//! An exporter wraps its storage in a [`DmaBuf`] with [`DmaBuf::export`]: a size, an exporter
//! name, file flags, the reservation object that carries the buffer's fences, and the exporter's
//! [`DmaBufOps`]. Seed 000's order of events follows: nothing is allocated yet; the buffer travels
//! as an fd; importers attach their devices ([`DmaBuf::attach`]) and map when they need the
//! memory ([`Attachment::map`](crate::Attachment::map)), which is when the exporter, knowing every
//! attached device, allocates.
//!
//! # Lifetime rules
//! 1. A [`DmaBuf`] value is one reference (`get_dma_buf`); `clone` takes another, drop puts it
//!    (`dma_buf_put`). An fd, a [`CpuMapping`](crate::CpuMapping), a [`VMap`](crate::VMap), an
//!    [`Attachment`](crate::Attachment) each hold one.
//! 2. [`DmaBufOps::release`] runs exactly once, when the last reference is dropped (behaviour 64).
//!    Because attachments and vmaps hold references, "release with attachments left" or "release
//!    while vmapped" cannot happen; a vmap leaked without `vunmap` is counted in
//!    [`BufRegistry`] warnings.
//! 3. A buffer exported into a [`BufRegistry`] is listed there until it is released.
//!
//! # Lock rules
//! 1. The attachment list changes only while the resv lock is held (attach/detach take it); a
//!    holder of the [`ResvGuard`](fence::ResvGuard) sees a stable list.
//! 2. `name` is protected by its own leaf lock (`name_lock`); so are the list of CPU mappings and
//!    the vmap state (whose changes additionally happen under the resv lock).
//! 3. No leaf lock is held while calling the exporter or an importer.

use crate::attach::AttachInner;
use crate::cpu_access::VmapState;
use crate::debugfs::BufRegistry;
use crate::error::DmaBufError;
use crate::mmap::MmapInner;
use crate::ops::{DmaBufOps, OpsFeatures, ReleaseInfo};
use dma::DmaApi;
use fence::DmaResv;
use parking_lot::Mutex;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use uapi::ioctl::{DMA_BUF_NAME_LEN, O_ACCMODE, O_NONBLOCK, O_RDWR};

/// What an exporter passes to [`DmaBuf::export`] (`struct dma_buf_export_info`).
pub struct ExportInfo {
    /// Exporter name, shown in fdinfo and bufinfo (`exp_name`; a heap's name for heap buffers).
    pub exp_name: String,
    /// Size in bytes; never changes. Not checked: 0 is accepted, as in Linux (behaviour 61).
    pub size: u64,
    /// File flags; only `O_ACCMODE | O_NONBLOCK` are kept (behaviour 62).
    pub flags: u32,
    /// A reservation object to share (e.g. the exporter's GEM object's), or `None` for a new one
    /// of the buffer's own (behaviour 61).
    pub resv: Option<Arc<DmaResv>>,
    /// The exporter's callbacks and private data.
    pub ops: Arc<dyn DmaBufOps>,
}

impl ExportInfo {
    /// `DEFINE_DMA_BUF_EXPORT_INFO`: `O_RDWR`, its own reservation object.
    ///
    /// ```
    /// # use dmabuf::testing::MockExporter;
    /// let info = dmabuf::ExportInfo::new("mock", 4096, MockExporter::new());
    /// assert_eq!(info.flags, uapi::ioctl::O_RDWR);
    /// ```
    pub fn new(exp_name: impl Into<String>, size: u64, ops: Arc<dyn DmaBufOps>) -> ExportInfo {
        ExportInfo {
            exp_name: exp_name.into(),
            size,
            flags: O_RDWR,
            resv: None,
            ops,
        }
    }
}

impl fmt::Debug for ExportInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportInfo")
            .field("exp_name", &self.exp_name)
            .field("size", &self.size)
            .field("flags", &self.flags)
            .field("shared_resv", &self.resv.is_some())
            .field("features", &self.ops.features())
            .finish()
    }
}

pub(crate) struct BufInner {
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) exp_name: String,
    pub(crate) flags: u32,
    pub(crate) resv: Arc<DmaResv>,
    pub(crate) ops: Arc<dyn DmaBufOps>,
    pub(crate) features: OpsFeatures,
    pub(crate) dma: Arc<DmaApi>,
    /// `name_lock`.
    pub(crate) name: Mutex<Option<String>>,
    /// Changed only with the resv lock held (lock rule 1).
    pub(crate) attachments: Mutex<Vec<Arc<AttachInner>>>,
    pub(crate) vmap: Mutex<VmapState>,
    pub(crate) cpu_maps: Mutex<Vec<Weak<MmapInner>>>,
    pub(crate) zaps: AtomicU64,
    pub(crate) registry: Option<Weak<BufRegistry>>,
}

impl Drop for BufInner {
    fn drop(&mut self) {
        let leaked_vmaps = self.vmap.get_mut().count;
        if let Some(reg) = self.registry.as_ref().and_then(Weak::upgrade) {
            reg.unregister(self.ino, leaked_vmaps);
        }
        // Rule 2: the last reference; release exactly once.
        self.ops.release(&ReleaseInfo {
            ino: self.ino,
            size: self.size,
            exp_name: std::mem::take(&mut self.exp_name),
        });
    }
}

/// A shared buffer (`struct dma_buf`); the value is one reference to it (module rule 1).
///
/// `Send + Sync`; `clone` is `get_dma_buf`, drop is `dma_buf_put`.
#[derive(Clone)]
pub struct DmaBuf(pub(crate) Arc<BufInner>);

/// A weak handle to a [`DmaBuf`]: it does not keep the buffer alive, and
/// [`upgrade`](Self::upgrade)s to a reference only while someone else still holds one (an
/// exporter that must find its own buffer, as a GEM object's `dma_buf` pointer, without keeping
/// it from being released).
///
/// ```
/// use dmabuf::testing::{mock_dma, MockExporter};
/// let dma = mock_dma();
/// let buf = MockExporter::new().export(&dma, 4096)?;
/// let weak = buf.downgrade();
/// assert!(weak.upgrade().is_some_and(|b| b.ptr_eq(&buf)));
/// drop(buf); // the last reference: released
/// assert!(weak.upgrade().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct WeakDmaBuf(Weak<BufInner>);

impl WeakDmaBuf {
    /// A reference to the buffer if it has not been released (`get_dma_buf` on a live one).
    pub fn upgrade(&self) -> Option<DmaBuf> {
        self.0.upgrade().map(DmaBuf)
    }
}

impl fmt::Debug for WeakDmaBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakDmaBuf")
            .field("alive", &(self.0.strong_count() > 0))
            .finish()
    }
}

impl DmaBuf {
    /// A weak handle to this buffer ([`WeakDmaBuf`]).
    pub fn downgrade(&self) -> WeakDmaBuf {
        WeakDmaBuf(Arc::downgrade(&self.0))
    }

    /// `dma_buf_export`: wraps the exporter's storage in a new buffer (not listed anywhere; see
    /// [`export_registered`](Self::export_registered)).
    ///
    /// Validation (behaviours 59-62): the mandatory callbacks and `priv` are enforced by the
    /// [`DmaBufOps`] trait; exactly one of `PIN`/`UNPIN` in [`DmaBufOps::features`] is
    /// [`DmaBufError::PinWithoutUnpin`] (`EINVAL`); the size is not checked; `flags` keep only
    /// `O_ACCMODE | O_NONBLOCK`; without `resv` the buffer gets its own. On error nothing is
    /// created and `release` is not called.
    ///
    /// ```
    /// use dmabuf::{testing::{mock_dma, MockExporter}, DmaBuf, ExportInfo};
    /// let dma = mock_dma();
    /// let mut info = ExportInfo::new("mock", 8192, MockExporter::new());
    /// info.flags = uapi::ioctl::O_RDWR | uapi::ioctl::O_CLOEXEC;
    /// let buf = DmaBuf::export(&dma, info).unwrap();
    /// assert_eq!((buf.size(), buf.exp_name()), (8192, "mock"));
    /// assert_eq!(buf.file_flags(), uapi::ioctl::O_RDWR, "O_CLOEXEC belongs to the fd");
    /// ```
    pub fn export(dma: &Arc<DmaApi>, info: ExportInfo) -> Result<DmaBuf, DmaBufError> {
        Self::export_inner(dma, info, None)
    }

    /// [`export`](Self::export), and list the buffer in `registry` (the global `db_list` of
    /// Linux, one per machine here) until it is released.
    pub fn export_registered(
        dma: &Arc<DmaApi>,
        info: ExportInfo,
        registry: &Arc<BufRegistry>,
    ) -> Result<DmaBuf, DmaBufError> {
        Self::export_inner(dma, info, Some(registry))
    }

    fn export_inner(
        dma: &Arc<DmaApi>,
        info: ExportInfo,
        registry: Option<&Arc<BufRegistry>>,
    ) -> Result<DmaBuf, DmaBufError> {
        let features = info.ops.features();
        if features.contains(OpsFeatures::PIN) != features.contains(OpsFeatures::UNPIN) {
            return Err(DmaBufError::PinWithoutUnpin(info.exp_name));
        }
        let buf = DmaBuf(Arc::new(BufInner {
            // The buffer file's inode number: the machine's dma-buf counter (`dmabuf_inode` in
            // `dma_buf_getfile`), from 1 and shared by every exporter of the machine.
            ino: dma.soc().ids().next_dmabuf_ino(),
            size: info.size,
            exp_name: info.exp_name,
            flags: info.flags & (O_ACCMODE | O_NONBLOCK),
            resv: info.resv.unwrap_or_else(|| Arc::new(DmaResv::new())),
            ops: info.ops,
            features,
            dma: dma.clone(),
            name: Mutex::new(None),
            attachments: Mutex::new(Vec::new()),
            vmap: Mutex::new(VmapState::default()),
            cpu_maps: Mutex::new(Vec::new()),
            zaps: AtomicU64::new(0),
            registry: registry.map(Arc::downgrade),
        }));
        if let Some(reg) = registry {
            reg.register(&buf);
        }
        Ok(buf)
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.0.size
    }

    /// The exporter name (`exp_name`).
    pub fn exp_name(&self) -> &str {
        &self.0.exp_name
    }

    /// The inode number of the buffer's file (`file_inode(dmabuf->file)->i_ino`), as user space
    /// sees it (`fstat`, fdinfo, bufinfo): counted per machine from 1 by the dma-buf
    /// filesystem's own counter, as a booted kernel counts them. Unique within the machine, so
    /// drivers may key their tables by it.
    pub fn ino(&self) -> u64 {
        self.0.ino
    }

    /// The file flags kept at export: `O_ACCMODE | O_NONBLOCK` of `ExportInfo::flags`.
    pub fn file_flags(&self) -> u32 {
        self.0.flags
    }

    /// The reservation object carrying the buffer's fences.
    pub fn resv(&self) -> &Arc<DmaResv> {
        &self.0.resv
    }

    /// The exporter's callbacks.
    pub fn ops(&self) -> &Arc<dyn DmaBufOps> {
        &self.0.ops
    }

    /// The optional callbacks the exporter declared at export.
    pub fn features(&self) -> OpsFeatures {
        self.0.features
    }

    /// Whether the exporter provides `pin` (a *dynamic* exporter, `dma_buf_is_dynamic`).
    pub fn is_dynamic(&self) -> bool {
        self.0.features.contains(OpsFeatures::PIN)
    }

    /// The DMA API of the machine the buffer lives on.
    pub fn dma(&self) -> &Arc<DmaApi> {
        &self.0.dma
    }

    /// Whether both values refer to the same buffer.
    pub fn ptr_eq(&self, other: &DmaBuf) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// References to the buffer that exist right now (the file count): fds, mappings,
    /// attachments, clones, this one included.
    pub fn ref_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// The exporter's ops as `T`, if this buffer was exported with ops of type `T` — the
    /// self-import check of seed 003 (`dma_buf->ops == &my_ops` in `drm_gem_prime_import`): a
    /// driver importing a buffer it exported gets its own object back instead of attaching.
    ///
    /// ```
    /// use dmabuf::{testing::{mock_dma, MockExporter}, DmaBuf, ExportInfo};
    /// let dma = mock_dma();
    /// let ops = MockExporter::new();
    /// let buf = DmaBuf::export(&dma, ExportInfo::new("mock", 4096, ops.clone())).unwrap();
    /// let mine = buf.exporter_ops::<MockExporter>().expect("exported by MockExporter");
    /// assert!(std::sync::Arc::ptr_eq(&mine, &ops));
    /// ```
    pub fn exporter_ops<T: DmaBufOps>(&self) -> Option<Arc<T>> {
        self.0.ops.clone().as_any_arc().downcast::<T>().ok()
    }

    /// The user-set name (`DMA_BUF_SET_NAME`), if any.
    pub fn name(&self) -> Option<String> {
        self.0.name.lock().clone()
    }

    /// `dma_buf_set_name` (behaviour 84): the name is `name` up to its first NUL (or all of it);
    /// 32 bytes or more without a NUL in the first 32 is [`DmaBufError::NameTooLong`] (`EINVAL`).
    /// A new name replaces the old one; attachments do not matter (recent mainline).
    /// Bytes that are not UTF-8 are kept as U+FFFD.
    ///
    /// ```
    /// use dmabuf::{testing::{mock_dma, MockExporter}, DmaBuf, ExportInfo};
    /// let buf = DmaBuf::export(&mock_dma(), ExportInfo::new("mock", 4096, MockExporter::new())).unwrap();
    /// buf.set_name(b"camera-frame\0junk").unwrap();
    /// assert_eq!(buf.name().as_deref(), Some("camera-frame"));
    /// assert!(buf.set_name(&[b'x'; 32]).is_err());
    /// assert!(buf.set_name(&[b'x'; 31]).is_ok());
    /// ```
    pub fn set_name(&self, name: &[u8]) -> Result<(), DmaBufError> {
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        if len >= DMA_BUF_NAME_LEN {
            return Err(DmaBufError::NameTooLong(len));
        }
        let s = String::from_utf8_lossy(&name[..len]).into_owned();
        *self.0.name.lock() = Some(s);
        Ok(())
    }

    /// The fdinfo text of the buffer's file (behaviour 87, `dma_buf_show_fdinfo`):
    ///
    /// ```text
    /// size:\t<bytes>
    /// count:\t<references>
    /// exp_name:\t<exporter>
    /// name:\t<name>          (only if a name was set)
    /// ```
    ///
    /// `count` is [`ref_count`](Self::ref_count): call it on a reference that the caller holds
    /// anyway (the fd's), not on a temporary clone, or the clone is counted (Linux subtracts the
    /// temporary reference procfs takes).
    pub fn fdinfo(&self) -> String {
        let mut s = format!(
            "size:\t{}\ncount:\t{}\nexp_name:\t{}\n",
            self.0.size,
            self.ref_count(),
            self.0.exp_name
        );
        if let Some(name) = self.name() {
            s.push_str(&format!("name:\t{name}\n"));
        }
        s
    }

    /// How many times the CPU mappings of the buffer were zapped (buffer moves).
    pub fn zap_count(&self) -> u64 {
        self.0.zaps.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for DmaBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaBuf")
            .field("ino", &self.0.ino)
            .field("size", &self.0.size)
            .field("exp_name", &self.0.exp_name)
            .field("name", &self.name())
            .field("features", &self.0.features)
            .finish()
    }
}
