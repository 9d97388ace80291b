//! A display's framebuffers: `ADDFB`/`ADDFB2` of an imported buffer (attach, map once, keep
//! the mapping for the framebuffer's life), the re-map a fault injection asks for, and `RMFB`.
//!
//! C side: `drivers/gpu/drm/drm_framebuffer.c` (`drm_mode_addfb2`, `drm_mode_rmfb`),
//! `drm_gem_dma_helper.c` (`drm_gem_dma_prime_import_sg_table`: a controller without an IOMMU
//! refuses a buffer that is not one contiguous run).
//!
//! Rules 1, 2, 6 and 8 of the [parent module](super) are kept here: contiguity without an
//! IOMMU, the frame's size, a busy framebuffer's `EBUSY`, and `framebuffer_check`.
//!
//! Locking and lifetime: the display's state lock is taken for the table's changes only, never
//! across an attach, map, unmap or detach; a framebuffer holds its attachment and mapping until
//! `rm_fb` (or the display's drop) gives them back.

use super::import::FbImport;
use super::*;

/// Takes framebuffer `id` out of the table to remove or re-map it: `EBUSY` while it is scanned
/// out or queued for a flip, `ENOENT` for an unknown id.
fn take_idle_fb(st: &mut State, id: FbId) -> Result<Framebuffer, MediaError> {
    if st.planes.contains(&Some(id)) || st.queue.iter().any(|f| f.names(id)) {
        return Err(MediaError::Busy(format!(
            "framebuffer {id} is scanned out or queued for a flip"
        )));
    }
    st.fbs
        .remove(&id)
        .ok_or_else(|| MediaError::NotFound(format!("no framebuffer {id}")))
}

impl Display {
    /// `ADDFB2` of an imported buffer in the display's mode: an NV12 frame of
    /// [`DisplayConfig::format`], packed ([`FbCmd2::packed`]); see [`Self::add_fb2`].
    pub fn add_fb(&self, buf: &DmaBuf) -> Result<FbId, MediaError> {
        let f = self.cfg.format;
        self.add_fb2(buf, &FbCmd2::packed("NV12", f.width, f.height)?)
    }

    /// `DRM_IOCTL_MODE_ADDFB2` of an imported buffer (the GEM object of a PRIME fd) holding
    /// every plane: `cmd` checked as the kernel does ([`FbCmd2::check`], errnos there; the
    /// device's `modifiers` are the plane's), then the display attaches its device
    /// (statically), maps the buffer once for the framebuffer's life and checks rule 1 over
    /// the planes' extent.
    pub fn add_fb2(&self, buf: &DmaBuf, cmd: &FbCmd2) -> Result<FbId, MediaError> {
        self.add_fb2_import(buf, cmd, false)
    }

    /// [`Self::add_fb2`] of a buffer the display imports **dynamically**, peer-to-peer
    /// allowed (a p2p GPU's export, which may then stay in VRAM): each flip of it pins it
    /// until the flip that replaces it latched (rule 9); a `move_notify` between flips drops
    /// its mapping and the next flip maps the new storage.
    pub fn add_fb2_dynamic(&self, buf: &DmaBuf, cmd: &FbCmd2) -> Result<FbId, MediaError> {
        self.add_fb2_import(buf, cmd, true)
    }

    fn add_fb2_import(
        &self,
        buf: &DmaBuf,
        cmd: &FbCmd2,
        dynamic: bool,
    ) -> Result<FbId, MediaError> {
        let planes = cmd.check(buf.size(), &self.dev.desc().modifiers)?;
        let need = planes.iter().map(|p| p.0 + p.1).max().unwrap_or(0);
        let import = FbImport::new(buf, &self.dev, dynamic, DmaDirection::ToDevice)?;
        let segs = import.segments();
        let first_len = segs.first().map_or(0, |s| s.len);
        if !import.is_dma_contiguous() && first_len < need {
            let segments = segs.len();
            let _ = import.release();
            return Err(MediaError::NotContiguous {
                device: self.dev.name().to_string(),
                segments,
                need,
            });
        }
        let mut st = self.state.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.stats.fbs_created += 1;
        st.fbs.insert(
            id,
            Framebuffer {
                import: Arc::new(import),
                planes,
                size: (cmd.width, cmd.height),
            },
        );
        Ok(id)
    }

    /// `move_notify` calls framebuffer `id`'s dynamic import got (0 for a static one, which
    /// the core pins); `ENOENT` for an unknown id.
    pub fn fb_move_notifies(&self, id: FbId) -> Result<u64, MediaError> {
        self.state
            .lock()
            .fbs
            .get(&id)
            .map(|f| f.import.notifies())
            .ok_or_else(|| MediaError::NotFound(format!("no framebuffer {id}")))
    }

    /// Maps framebuffer `id` for `dir` instead of the direction it is mapped for: unmap and
    /// detach, then attach and map again (no overlap between the two). A scanout reads, so `DmaDirection::ToDevice` is
    /// right; another direction is the bug of a driver that maps for the wrong one (the
    /// `wrong_direction` fault: a non-coherent display then reads lines the map invalidated
    /// rather than cleaned, and the DMA-API checker sees a read through a mapping that does not
    /// allow it). A no-op when already mapped for `dir`; `ENOENT` for an unknown id, `EBUSY`
    /// while it is scanned out or queued for a flip.
    pub fn remap_fb(&self, id: FbId, dir: DmaDirection) -> Result<(), MediaError> {
        let fb = {
            let mut st = self.state.lock();
            match st.fbs.get(&id) {
                None => return Err(MediaError::NotFound(format!("no framebuffer {id}"))),
                Some(fb) if fb.import.dir == dir => return Ok(()),
                Some(_) => {}
            }
            take_idle_fb(&mut st, id)?
        };
        let Framebuffer {
            import,
            planes,
            size,
        } = fb;
        let import = match Arc::try_unwrap(import) {
            Ok(i) => i,
            Err(import) => {
                // A flip being prepared holds it: busy, as the kernel's fb reference is.
                self.state.lock().fbs.insert(
                    id,
                    Framebuffer {
                        import,
                        planes,
                        size,
                    },
                );
                return Err(MediaError::Busy(format!(
                    "framebuffer {id} is being committed"
                )));
            }
        };
        let (buf, dynamic) = (import.buf.clone(), import.dynamic);
        // Unmap and detach, then attach again: an exporter that caches its mappings keeps an
        // unmapped table live until the attachment goes, and the old direction's mapping must
        // not outlive the new one's start.
        import.release()?;
        let import = FbImport::new(&buf, &self.dev, dynamic, dir)?;
        self.state.lock().fbs.insert(
            id,
            Framebuffer {
                import: Arc::new(import),
                planes,
                size,
            },
        );
        Ok(())
    }

    /// `RMFB`: unmaps and detaches. `EBUSY` if scanned out or queued (rule 6), `ENOENT` for an
    /// unknown id.
    pub fn rm_fb(&self, id: FbId) -> Result<(), MediaError> {
        let fb = {
            let mut st = self.state.lock();
            take_idle_fb(&mut st, id)?
        };
        let import = match Arc::try_unwrap(fb.import) {
            Ok(i) => i,
            Err(import) => {
                self.state.lock().fbs.insert(
                    id,
                    Framebuffer {
                        import,
                        planes: fb.planes,
                        size: fb.size,
                    },
                );
                return Err(MediaError::Busy(format!(
                    "framebuffer {id} is being committed"
                )));
            }
        };
        self.state.lock().stats.fbs_removed += 1;
        import.release()
    }
}
