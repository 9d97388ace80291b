//! A framebuffer's import of its buffer: a static attachment mapped once, or a dynamic one
//! (peer-to-peer allowed) pinned while the framebuffer is scanned out or about to be.
//!
//! C side: `drivers/gpu/drm/amd/display/amdgpu_dm/amdgpu_dm_plane.c`
//! (`amdgpu_dm_plane_helper_prepare_fb` reserves the object and pins it,
//! `amdgpu_dm_plane_helper_cleanup_fb` unpins it), `amdgpu_object.c` (`amdgpu_bo_pin` of an
//! imported object calls `dma_buf_pin` on its import attachment, `amdgpu_bo_unpin`
//! `dma_buf_unpin`), `drm_atomic_helper.c` (`drm_atomic_helper_prepare_planes` at the commit,
//! `drm_atomic_helper_cleanup_planes` on the old state once the new one is on screen),
//! `drivers/dma-buf/dma-buf.c` (`dma_buf_pin`/`dma_buf_unpin`: the exporter keeps a pinned
//! buffer where it is, so it never calls `move_notify` for it).
//!
//! # The concept
//! A scanout engine reads the DMA addresses its plane registers hold at every refresh; nothing
//! tells it when the exporter moves the buffer. A display that imports a peer-to-peer GPU's
//! buffer dynamically (so it may stay in VRAM) therefore **pins** it for as long as the
//! framebuffer is on screen or queued to be: [`FbImport::prepare`] at the commit (pin, then
//! map if a `move_notify` took the mapping since the last flip), [`FbImport::cleanup`] once the
//! flip that replaces it latched, or the flip was dropped. Memory pressure then evicts the
//! other buffers, never the one on screen; with nothing else evictable the pressure's
//! allocation fails (`ENOMEM`, [`crate::gpu`]).
//!
//! A `move_notify` (the buffer moved while not pinned) unmaps the framebuffer's table at once
//! ([`dmabuf::ImporterOps::move_notify`]'s first choice); the next `prepare` maps the new
//! storage. A flip holds the addresses it was committed with, as plane registers do: had the
//! buffer moved between commit and scanout (no pin), the scanout would read an unmapped
//! range, the fault the pin exists to prevent.
//!
//! A static attachment (any other exporter) is pinned by the dma-buf core around its mapping,
//! which `add_fb2` makes once for the framebuffer's life.
//!
//! # Locking
//! The resv lock, then [`FbMap`]'s own lock (the order `move_notify` runs in); never the
//! display's state lock inside either. [`FbImport::prepare`] and [`FbImport::cleanup`] take
//! the resv lock and are called without the display's state lock held.

use crate::media::MediaError;
use dma::{DmaDirection, DmaSegment};
use dmabuf::{AttachParams, Attachment, DmaBuf, ImporterOps, MappedSgTable};
use fence::ResvGuard;
use parking_lot::Mutex;
use soc::Device;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A framebuffer's mapping, shared with its dynamic importer's `move_notify`.
#[derive(Default)]
pub(super) struct FbMap {
    /// The table the scanout reads through; `None` once a `move_notify` unmapped it.
    /// Lock order: after the buffer's resv lock.
    sgt: Mutex<Option<MappedSgTable>>,
    /// `move_notify` calls.
    notifies: AtomicU64,
}

/// The display as a dynamic importer (`dma_buf_attach_ops` of a KMS driver that imports
/// peer-to-peer): allows VRAM, and drops its mapping when told the buffer moves.
struct ScanoutImporter {
    map: Arc<FbMap>,
}

impl ImporterOps for ScanoutImporter {
    /// Unmaps the framebuffer's table now (resv held); the next commit maps the new storage.
    fn move_notify(&self, att: &Attachment, resv: &mut ResvGuard<'_>) {
        self.map.notifies.fetch_add(1, Ordering::Relaxed);
        if let Some(sgt) = self.map.sgt.lock().take() {
            let _ = att.unmap(resv, sgt);
        }
    }

    fn allow_peer2peer(&self) -> bool {
        true
    }
}

/// A framebuffer's buffer, attachment and mapping (module doc).
pub(super) struct FbImport {
    pub(super) buf: DmaBuf,
    pub(super) att: Attachment,
    /// Attached dynamically (pinned per flip) rather than statically.
    pub(super) dynamic: bool,
    pub(super) dir: DmaDirection,
    map: Arc<FbMap>,
}

impl FbImport {
    /// Attaches `dev` to `buf` (dynamically if `dynamic`) and maps it for `dir`.
    pub(super) fn new(
        buf: &DmaBuf,
        dev: &Arc<Device>,
        dynamic: bool,
        dir: DmaDirection,
    ) -> Result<FbImport, MediaError> {
        let map = Arc::new(FbMap::default());
        let att = if dynamic {
            let ops: Arc<dyn ImporterOps> = Arc::new(ScanoutImporter { map: map.clone() });
            buf.attach_with(
                dev,
                AttachParams {
                    importer_ops: Some(ops),
                    importer_priv: None,
                },
            )?
        } else {
            buf.attach(dev)?
        };
        match att.map_unlocked(dir) {
            Ok(s) => *map.sgt.lock() = Some(s),
            Err(e) => {
                let _ = buf.detach(att);
                return Err(e.into());
            }
        }
        Ok(FbImport {
            buf: buf.clone(),
            att,
            dynamic,
            dir,
            map,
        })
    }

    /// The DMA segments of the current mapping (empty once a `move_notify` took it).
    pub(super) fn segments(&self) -> Vec<DmaSegment> {
        self.map
            .sgt
            .lock()
            .as_ref()
            .map(|s| s.dma_segments().to_vec())
            .unwrap_or_default()
    }

    /// Whether the mapping is one DMA-contiguous run.
    pub(super) fn is_dma_contiguous(&self) -> bool {
        self.map
            .sgt
            .lock()
            .as_ref()
            .is_some_and(|s| s.is_dma_contiguous())
    }

    /// `move_notify` calls the framebuffer got.
    pub(super) fn notifies(&self) -> u64 {
        self.map.notifies.load(Ordering::Relaxed)
    }

    /// `prepare_fb`: a dynamic import is pinned (`dma_buf_pin`; the exporter's errno, e.g.
    /// `EBUSY`/`ENOMEM` from a move it needed, on failure) and mapped again if a `move_notify`
    /// took its table. Returns the addresses the plane is programmed with. Takes the resv lock.
    pub(super) fn prepare(&self) -> Result<Vec<DmaSegment>, MediaError> {
        if !self.dynamic {
            return Ok(self.segments());
        }
        let mut g = self
            .buf
            .resv()
            .lock(None)
            .map_err(dmabuf::DmaBufError::from)?;
        self.att.pin(&mut g)?;
        let mut slot = self.map.sgt.lock();
        if slot.is_none() {
            match self.att.map(&mut g, self.dir) {
                Ok(s) => *slot = Some(s),
                Err(e) => {
                    drop(slot);
                    let _ = self.att.unpin(&mut g);
                    return Err(e.into());
                }
            }
        }
        Ok(slot
            .as_ref()
            .map(|s| s.dma_segments().to_vec())
            .unwrap_or_default())
    }

    /// `cleanup_fb`: undoes one [`prepare`](Self::prepare)'s pin. Takes the resv lock.
    pub(super) fn cleanup(&self) {
        if !self.dynamic {
            return;
        }
        if let Ok(mut g) = self.buf.resv().lock(None) {
            let _ = self.att.unpin(&mut g);
        }
    }

    /// Unmaps and detaches (`RMFB`, a re-map).
    pub(super) fn release(self) -> Result<(), MediaError> {
        let sgt = self.map.sgt.lock().take();
        if let Some(sgt) = sgt {
            if let Err(e) = self.att.unmap_unlocked(sgt) {
                let _ = self.buf.detach(self.att);
                return Err(e.into());
            }
        }
        self.buf.detach(self.att)?;
        Ok(())
    }
}
