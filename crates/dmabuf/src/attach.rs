//! Attachments: who shares a buffer, and their mappings (`struct dma_buf_attachment`).
//!
//! C side: `drivers/dma-buf/dma-buf.c` (`dma_buf_attach`, `dma_buf_dynamic_attach`,
//! `dma_buf_detach`, `dma_buf_map_attachment`, `dma_buf_unmap_attachment`, `dma_buf_pin`,
//! `dma_buf_unpin`, `dma_buf_move_notify`).
//!
//! # The concept
//! Seed 000: "an attachment is just list bookkeeping for all the devices that take part in a
//! buffer sharing". Each importing device attaches once; the exporter reads the list
//! ([`DmaBuf::attachments`]) to choose storage every device can reach, and each attachment maps
//! the buffer for its own device ([`Attachment::map`]).
//!
//! Two kinds of importers:
//! - **static** ([`DmaBuf::attach`]): cannot drop its mappings on demand. The core pins the
//!   buffer at map time if the exporter can pin, and unpins at unmap; the map waits for the
//!   buffer's KERNEL fences (a move in flight) before returning (behaviour 70).
//! - **dynamic** ([`DmaBuf::dynamic_attach`], with [`ImporterOps`]): maps under the resv lock,
//!   honours the fences itself, may [`pin`](Attachment::pin)/[`unpin`](Attachment::unpin), and is
//!   told by [`DmaBuf::move_notify`] when the exporter moves the buffer.
//!
//! # Rules
//! 1. Attach and detach take the resv lock themselves: do not hold it (behaviour 65-67).
//! 2. Map, unmap, pin, unpin and move_notify need the resv lock: they take `&mut ResvGuard` of
//!    the buffer's [`DmaResv`](fence::DmaResv) (a guard of another object is
//!    [`DmaBufError::WrongResv`]). The `_unlocked` variants lock it themselves.
//! 3. Every [`MappedSgTable`] goes back through [`Attachment::unmap`]; detach does not unmap.
//! 4. The [`Attachment`] returned by attach is the importer's handle; dropping it detaches.
//!    Views handed to the exporter (callbacks, [`DmaBuf::attachments`]) do not detach when
//!    dropped, but hold a buffer reference: do not store them.

use crate::buf::DmaBuf;
use crate::error::DmaBufError;
use crate::ops::{ImporterOps, OpsFeatures};
use dma::{DmaDirection, SgTable};
use fence::{DmaResvUsage, Interrupt, ResvGuard};
use parking_lot::Mutex;
use soc::Device;
use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The importer's private data of an attachment (`attach->importer_priv`).
pub type ImporterPriv = Arc<dyn Any + Send + Sync>;

/// What an importer passes to [`DmaBuf::attach_with`] (the arguments of
/// `dma_buf_dynamic_attach(dmabuf, dev, importer_ops, importer_priv)`).
///
/// The exporter reads both back through the attachment in its `attach` callback and later
/// ([`Attachment::importer_priv`]): importer data travels with the attachment it belongs to,
/// never through a side channel keyed by device name.
#[derive(Clone, Default)]
pub struct AttachParams {
    /// `Some` for a dynamic importer ([`DmaBuf::dynamic_attach`]), `None` for a static one.
    pub importer_ops: Option<Arc<dyn ImporterOps>>,
    /// The importer's data for this attachment: anything the exporter understands (the
    /// constraint exporter reads its `ImporterNeeds` from here).
    pub importer_priv: Option<ImporterPriv>,
}

impl fmt::Debug for AttachParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachParams")
            .field("dynamic", &self.importer_ops.is_some())
            .field("importer_priv", &self.importer_priv.is_some())
            .finish()
    }
}

#[derive(Default)]
pub(crate) struct AttachState {
    /// Tables handed out and not unmapped yet, with their directions.
    pub(crate) maps: Vec<(DmaDirection, Arc<SgTable>)>,
    /// Pins taken by a dynamic importer through [`Attachment::pin`].
    pub(crate) pins: u32,
}

pub(crate) struct AttachInner {
    pub(crate) id: u64,
    pub(crate) buf: DmaBuf,
    pub(crate) dev: Arc<Device>,
    pub(crate) importer: Option<Arc<dyn ImporterOps>>,
    pub(crate) importer_priv: Option<ImporterPriv>,
    pub(crate) peer2peer: bool,
    /// On the buffer's list; changed only under the resv lock, read without it.
    pub(crate) attached: AtomicBool,
    pub(crate) state: Mutex<AttachState>,
}

/// One device's attachment to a buffer (`struct dma_buf_attachment`).
///
/// The value returned by [`DmaBuf::attach`]/[`DmaBuf::dynamic_attach`] is the importer's handle:
/// dropping it detaches (rule 4). Exporters get views of the same attachment.
pub struct Attachment {
    pub(crate) inner: Arc<AttachInner>,
    owner: bool,
}

/// A table mapped for an attachment's device (what `dma_buf_map_attachment` returns).
///
/// Read the DMA addresses through `Deref<Target = SgTable>`
/// ([`SgTable::dma_segments`](dma::SgTable::dma_segments)). Give it back with
/// [`Attachment::unmap`]; dropping it instead leaks the mapping (the DMA checker reports it).
pub struct MappedSgTable {
    sgt: Arc<SgTable>,
    dir: DmaDirection,
    att_id: u64,
    core_pinned: bool,
}

impl MappedSgTable {
    /// The direction it was mapped for.
    pub fn dir(&self) -> DmaDirection {
        self.dir
    }

    /// The table.
    pub fn sgt(&self) -> &SgTable {
        &self.sgt
    }

    /// Whether `self` and `other` are the same table (a cached mapping handed out twice).
    pub fn same_table(&self, other: &MappedSgTable) -> bool {
        Arc::ptr_eq(&self.sgt, &other.sgt)
    }
}

impl Deref for MappedSgTable {
    type Target = SgTable;
    fn deref(&self) -> &SgTable {
        &self.sgt
    }
}

impl fmt::Debug for MappedSgTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedSgTable")
            .field("dir", &self.dir)
            .field("attachment", &self.att_id)
            .field("segments", &self.sgt.dma_segments())
            .finish()
    }
}

/// A snapshot of one attachment for listings (bufinfo, the exporter's placement decisions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// [`Attachment::id`].
    pub id: u64,
    /// The device's name.
    pub device: String,
    /// A dynamic importer.
    pub dynamic: bool,
    /// [`Attachment::peer2peer`].
    pub peer2peer: bool,
    /// Tables mapped and not unmapped.
    pub mapped: usize,
    /// Pins held by a dynamic importer.
    pub pins: u32,
}

impl DmaBuf {
    /// `dma_buf_attach`: a **static** importer attaches `dev` (behaviours 65-66).
    ///
    /// Calls the exporter's `attach` (without the resv lock); an error there is returned
    /// unchanged and nothing is listed. Then lists the attachment under the resv lock. Do not hold
    /// the resv lock when calling this.
    ///
    /// ```
    /// use dmabuf::{testing::{mock_dma, MockExporter}, DmaBuf, ExportInfo};
    /// let dma = mock_dma();
    /// let buf = DmaBuf::export(&dma, ExportInfo::new("mock", 4096, MockExporter::new())).unwrap();
    /// let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    /// assert!(!att.is_dynamic() && !att.peer2peer());
    /// assert_eq!(buf.attachment_infos()[0].device, "isp0");
    /// buf.detach(att).unwrap();
    /// assert!(buf.attachment_infos().is_empty());
    /// ```
    pub fn attach(&self, dev: &Arc<Device>) -> Result<Attachment, DmaBufError> {
        self.attach_with(dev, AttachParams::default())
    }

    /// `dma_buf_dynamic_attach`: a **dynamic** importer attaches `dev` with its
    /// [`ImporterOps`]; `peer2peer` is copied from [`ImporterOps::allow_peer2peer`].
    ///
    /// The kernel's "`importer_ops` without `move_notify`" (`EINVAL`) cannot be expressed:
    /// `move_notify` is a required method of [`ImporterOps`].
    pub fn dynamic_attach(
        &self,
        dev: &Arc<Device>,
        importer: Arc<dyn ImporterOps>,
    ) -> Result<Attachment, DmaBufError> {
        self.attach_with(
            dev,
            AttachParams {
                importer_ops: Some(importer),
                importer_priv: None,
            },
        )
    }

    /// `dma_buf_dynamic_attach(dmabuf, dev, importer_ops, importer_priv)`: attaches `dev` with
    /// the importer's ops (dynamic if `Some`) and private data, both readable through the
    /// attachment from the exporter's `attach` callback on ([`Attachment::importer_priv`]).
    /// Same rules and errors as [`attach`](Self::attach).
    ///
    /// ```
    /// use dmabuf::testing::{mock_dma, MockExporter};
    /// use dmabuf::AttachParams;
    /// use std::sync::Arc;
    ///
    /// let dma = mock_dma();
    /// let buf = MockExporter::new().export(&dma, 4096)?;
    /// let params = AttachParams { importer_priv: Some(Arc::new(42u32)), ..Default::default() };
    /// let att = buf.attach_with(&dma.device("isp0")?, params)?;
    /// assert_eq!(att.importer_priv_as::<u32>(), Some(&42));
    /// buf.detach(att)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attach_with(
        &self,
        dev: &Arc<Device>,
        params: AttachParams,
    ) -> Result<Attachment, DmaBufError> {
        let AttachParams {
            importer_ops: importer,
            importer_priv,
        } = params;
        let peer2peer = importer.as_ref().is_some_and(|i| i.allow_peer2peer());
        let inner = Arc::new(AttachInner {
            id: self.0.dma.soc().ids().next_attachment_id(),
            buf: self.clone(),
            dev: dev.clone(),
            importer,
            importer_priv,
            peer2peer,
            attached: AtomicBool::new(false),
            state: Mutex::new(AttachState::default()),
        });
        let view = Attachment::view(inner.clone());
        self.0.ops.attach(self, &view)?;
        {
            let _resv = self.0.resv.lock(None)?;
            inner.attached.store(true, Ordering::Release);
            self.0.attachments.lock().push(inner.clone());
        }
        Ok(Attachment { inner, owner: true })
    }

    /// `dma_buf_detach`: unlists `att` under the resv lock, then calls the exporter's `detach`
    /// (behaviour 67). Tables still mapped stay mapped (rule 3).
    ///
    /// An attachment of another buffer is [`DmaBufError::NotAttached`] (the kernel WARNs and does
    /// nothing); since the handle is consumed, it is detached from its own buffer, as a dropped
    /// handle is. Do not hold the resv lock.
    pub fn detach(&self, mut att: Attachment) -> Result<(), DmaBufError> {
        if !self.ptr_eq(&att.inner.buf) {
            // The kernel WARNs and leaves it attached. The handle is consumed here, and a handle
            // dropped detaches (rule 4), so it leaves its own buffer rather than leak it.
            drop(att);
            return Err(DmaBufError::NotAttached);
        }
        att.owner = false;
        detach_inner(&att.inner)
    }

    /// The attachments, as exporter views (rule 4), in attach order.
    pub fn attachments(&self) -> Vec<Attachment> {
        self.0
            .attachments
            .lock()
            .iter()
            .map(|a| Attachment::view(a.clone()))
            .collect()
    }

    /// A snapshot of the attachment list (device, dynamic, peer2peer, mapped count).
    pub fn attachment_infos(&self) -> Vec<AttachmentInfo> {
        let list: Vec<Arc<AttachInner>> = self.0.attachments.lock().clone();
        list.iter()
            .map(|a| Attachment::view(a.clone()).info())
            .collect()
    }

    /// `dma_buf_move_notify` (behaviour 73): the exporter is moving the buffer; every dynamic
    /// attachment's [`ImporterOps::move_notify`] runs, with the resv lock held; static ones are
    /// pinned and never told.
    ///
    /// The exporter must also zap CPU mappings ([`DmaBuf::zap_mappings`]) and drop cached
    /// mappings; [`MapCache::buffer_moved`](crate::MapCache::buffer_moved) does all three.
    pub fn move_notify(&self, resv: &mut ResvGuard<'_>) -> Result<(), DmaBufError> {
        self.check_resv(resv)?;
        let dynamic: Vec<Arc<AttachInner>> = self
            .0
            .attachments
            .lock()
            .iter()
            .filter(|a| a.importer.is_some())
            .cloned()
            .collect();
        for a in dynamic {
            let view = Attachment::view(a.clone());
            if let Some(importer) = &a.importer {
                importer.move_notify(&view, resv);
            }
        }
        Ok(())
    }

    /// Checks that `resv` locks this buffer's reservation object (`dma_resv_assert_held`).
    #[inline]
    pub(crate) fn check_resv(&self, resv: &ResvGuard<'_>) -> Result<(), DmaBufError> {
        if std::ptr::eq(resv.resv(), &*self.0.resv) {
            Ok(())
        } else {
            Err(DmaBufError::WrongResv)
        }
    }
}

/// Unlists and calls the exporter's detach; idempotent.
fn detach_inner(inner: &Arc<AttachInner>) -> Result<(), DmaBufError> {
    let buf = &inner.buf;
    {
        let _resv = buf.0.resv.lock(None)?;
        // The resv lock serialises attach/detach; the flag is also read without it.
        if !inner.attached.swap(false, Ordering::AcqRel) {
            return Err(DmaBufError::NotAttached);
        }
        buf.0.attachments.lock().retain(|a| !Arc::ptr_eq(a, inner));
    }
    let view = Attachment::view(inner.clone());
    buf.0.ops.detach(buf, &view);
    Ok(())
}

impl Attachment {
    fn view(inner: Arc<AttachInner>) -> Attachment {
        Attachment {
            inner,
            owner: false,
        }
    }

    /// A unique number for this attachment (key exporter state by it).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The importer's private data (`attach->importer_priv`), as passed to
    /// [`DmaBuf::attach_with`].
    pub fn importer_priv(&self) -> Option<&ImporterPriv> {
        self.inner.importer_priv.as_ref()
    }

    /// The importer's private data if it is a `T`.
    pub fn importer_priv_as<T: Any>(&self) -> Option<&T> {
        self.inner.importer_priv.as_deref()?.downcast_ref::<T>()
    }

    /// The buffer (`attach->dmabuf`).
    pub fn dmabuf(&self) -> &DmaBuf {
        &self.inner.buf
    }

    /// The importing device (`attach->dev`).
    pub fn device(&self) -> &Arc<Device> {
        &self.inner.dev
    }

    /// A dynamic importer (`dma_buf_attachment_is_dynamic`).
    pub fn is_dynamic(&self) -> bool {
        self.inner.importer.is_some()
    }

    /// The importer's callbacks, for a dynamic importer.
    pub fn importer_ops(&self) -> Option<&Arc<dyn ImporterOps>> {
        self.inner.importer.as_ref()
    }

    /// `attach->peer2peer`: the importer accepts memory without struct pages; always `false`
    /// for static importers. If `false`, the exporter must hand out only page-backed memory.
    pub fn peer2peer(&self) -> bool {
        self.inner.peer2peer
    }

    /// Whether the attachment is still on its buffer's list.
    pub fn is_attached(&self) -> bool {
        self.inner.attached.load(Ordering::Acquire)
    }

    /// Tables mapped and not yet unmapped.
    pub fn mapped_count(&self) -> usize {
        self.inner.state.lock().maps.len()
    }

    /// Pins held through [`pin`](Self::pin).
    pub fn pin_count(&self) -> u32 {
        self.inner.state.lock().pins
    }

    /// Whether both values are the same attachment.
    pub fn ptr_eq(&self, other: &Attachment) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A snapshot for listings.
    pub fn info(&self) -> AttachmentInfo {
        let st = self.inner.state.lock();
        AttachmentInfo {
            id: self.inner.id,
            device: self.inner.dev.name().to_string(),
            dynamic: self.is_dynamic(),
            peer2peer: self.inner.peer2peer,
            mapped: st.maps.len(),
            pins: st.pins,
        }
    }

    /// The tables currently mapped, with their directions (for exporters' cache maintenance).
    pub fn mapped_tables(&self) -> Vec<(DmaDirection, Arc<SgTable>)> {
        self.inner.state.lock().maps.clone()
    }

    fn check(&self, resv: &ResvGuard<'_>) -> Result<(), DmaBufError> {
        self.inner.buf.check_resv(resv)?;
        if !self.inner.attached.load(Ordering::Acquire) {
            return Err(DmaBufError::NotAttached);
        }
        Ok(())
    }

    /// `dma_buf_map_attachment` (behaviours 68-71): the buffer as a table mapped for this
    /// attachment's device, for `dir`. Needs the resv lock (rule 2).
    ///
    /// Static importers: pin first if the exporter can pin (a pin failure is returned), then the
    /// exporter maps, then the call waits for the KERNEL fences (uninterruptibly here; see
    /// [`map_interruptible`](Self::map_interruptible)). Dynamic importers: the exporter maps,
    /// nothing is waited for. A failed map after a pin unpins.
    pub fn map(
        &self,
        resv: &mut ResvGuard<'_>,
        dir: DmaDirection,
    ) -> Result<MappedSgTable, DmaBufError> {
        self.map_interruptible(resv, dir, None)
    }

    /// [`map`](Self::map) whose fence wait (static importers) is interruptible: if `intr` is
    /// raised during it, the exporter unmaps, the pin is dropped, and the call fails with
    /// `ERESTARTSYS` (behaviour 70).
    pub fn map_interruptible(
        &self,
        resv: &mut ResvGuard<'_>,
        dir: DmaDirection,
        intr: Option<&Interrupt>,
    ) -> Result<MappedSgTable, DmaBufError> {
        self.check(resv)?;
        let buf = &self.inner.buf;
        let ops = &buf.0.ops;
        let pin_on_map = !self.is_dynamic() && buf.0.features.contains(OpsFeatures::PIN);
        if pin_on_map {
            ops.pin(self, resv)?;
        }
        let sgt = match ops.map_dma_buf(self, dir, resv) {
            Ok(sgt) => sgt,
            Err(e) => {
                if pin_on_map {
                    ops.unpin(self, resv);
                }
                return Err(e);
            }
        };
        if !self.is_dynamic() {
            if let Err(e) = buf.0.resv.wait_timeout(DmaResvUsage::Kernel, intr, None) {
                let _ = ops.unmap_dma_buf(self, sgt, dir, resv);
                if pin_on_map {
                    ops.unpin(self, resv);
                }
                return Err(e.into());
            }
        }
        self.inner.state.lock().maps.push((dir, sgt.clone()));
        Ok(MappedSgTable {
            sgt,
            dir,
            att_id: self.inner.id,
            core_pinned: pin_on_map,
        })
    }

    /// [`map`](Self::map) taking the resv lock itself (`dma_buf_map_attachment_unlocked`).
    pub fn map_unlocked(&self, dir: DmaDirection) -> Result<MappedSgTable, DmaBufError> {
        let mut g = self.inner.buf.0.resv.lock(None)?;
        self.map(&mut g, dir)
    }

    /// `dma_buf_unmap_attachment`: gives `sgt` back to the exporter, then unpins if the map
    /// pinned (behaviour 71). Needs the resv lock (rule 2). A table of another attachment is
    /// [`DmaBufError::InvalidArgument`] and is dropped (its mapping leaks, as the kernel's would).
    pub fn unmap(&self, resv: &mut ResvGuard<'_>, sgt: MappedSgTable) -> Result<(), DmaBufError> {
        self.inner.buf.check_resv(resv)?;
        if sgt.att_id != self.inner.id {
            return Err(DmaBufError::InvalidArgument(format!(
                "unmap of a table of attachment {} through attachment {}",
                sgt.att_id, self.inner.id
            )));
        }
        {
            let mut st = self.inner.state.lock();
            if let Some(i) = st
                .maps
                .iter()
                .position(|(d, t)| *d == sgt.dir && Arc::ptr_eq(t, &sgt.sgt))
            {
                st.maps.swap_remove(i);
            }
        }
        let ops = &self.inner.buf.0.ops;
        let res = ops.unmap_dma_buf(self, sgt.sgt, sgt.dir, resv);
        if sgt.core_pinned {
            ops.unpin(self, resv);
        }
        res
    }

    /// [`unmap`](Self::unmap) taking the resv lock itself.
    pub fn unmap_unlocked(&self, sgt: MappedSgTable) -> Result<(), DmaBufError> {
        let mut g = self.inner.buf.0.resv.lock(None)?;
        self.unmap(&mut g, sgt)
    }

    /// `dma_buf_pin` (behaviour 74): a dynamic importer keeps the buffer where it is until
    /// [`unpin`](Self::unpin). Needs the resv lock. A static attachment is
    /// [`DmaBufError::StaticPin`] (the kernel WARNs); an exporter without pin succeeds doing
    /// nothing.
    pub fn pin(&self, resv: &mut ResvGuard<'_>) -> Result<(), DmaBufError> {
        self.check(resv)?;
        if !self.is_dynamic() {
            return Err(DmaBufError::StaticPin);
        }
        let buf = &self.inner.buf;
        if buf.0.features.contains(OpsFeatures::PIN) {
            buf.0.ops.pin(self, resv)?;
        }
        self.inner.state.lock().pins += 1;
        Ok(())
    }

    /// `dma_buf_unpin`: undoes one [`pin`](Self::pin). Needs the resv lock. Without a pin held
    /// it is [`DmaBufError::InvalidArgument`].
    pub fn unpin(&self, resv: &mut ResvGuard<'_>) -> Result<(), DmaBufError> {
        self.inner.buf.check_resv(resv)?;
        if !self.is_dynamic() {
            return Err(DmaBufError::StaticPin);
        }
        {
            let mut st = self.inner.state.lock();
            if st.pins == 0 {
                return Err(DmaBufError::InvalidArgument("unpin without pin".into()));
            }
            st.pins -= 1;
        }
        let buf = &self.inner.buf;
        if buf.0.features.contains(OpsFeatures::UNPIN) {
            buf.0.ops.unpin(self, resv);
        }
        Ok(())
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if self.owner {
            // Rule 4: the importer's handle detaches; an already detached one is fine.
            let _ = detach_inner(&self.inner);
        }
    }
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("id", &self.inner.id)
            .field("buf", &self.inner.buf.ino())
            .field("device", &self.inner.dev.name())
            .field("dynamic", &self.is_dynamic())
            .finish()
    }
}
