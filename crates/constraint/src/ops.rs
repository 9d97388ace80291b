//! The exporter callbacks of [`ConstraintExporter`]: where the contract's rules meet the core.
//!
//! | callback | resv | what it does here |
//! |---|---|---|
//! | `attach` | not held | records the device; refuses certain conflicts; migrates if needed (rule 3) |
//! | `detach` | not held | forgets the record, unmaps the attachment's cached tables, frees unmapped ghosts |
//! | `pin` | held | the gate for static maps and dynamic pins (rule 4), then counts the pin |
//! | `unpin` | held | uncounts the pin, wakes a draining migration |
//! | `map_dma_buf` | held | the gate (dynamic importers), first allocation, cached table of the current placement |
//! | `unmap_dma_buf` | held | gives the table back to its placement's cache; frees a ghost at its last unmap |
//! | `mmap_fault` | not held | waits while a move runs, then the page where the buffer is now |
//! | `vmap`/`vunmap` | held | a vmap holds the placement like a pin |

use super::exporter::{ConstraintExporter, Gen, Phase};
use super::migrate::MigrationCause;
use super::placement::plan;
use super::record::ConstraintRecord;
use dma::{DmaDirection, SegmentLimits, SgTable};
use dmabuf::attach::Attachment;
use dmabuf::buf::DmaBuf;
use dmabuf::error::DmaBufError;
use dmabuf::ops::{DmaBufOps, FaultPage, IosysMap, OpsFeatures, ReleaseInfo};
use fence::ResvGuard;
use std::sync::Arc;

impl ConstraintExporter {
    fn gens(&self) -> Vec<Arc<Gen>> {
        let st = self.state.lock();
        st.current.iter().chain(st.ghosts.iter()).cloned().collect()
    }
}

fn table_key(t: &Arc<SgTable>) -> usize {
    Arc::as_ptr(t) as usize
}

impl DmaBufOps for ConstraintExporter {
    fn features(&self) -> OpsFeatures {
        OpsFeatures::PIN | OpsFeatures::UNPIN | OpsFeatures::MMAP | OpsFeatures::VMAP
    }

    fn attach(&self, buf: &DmaBuf, att: &Attachment) -> Result<(), DmaBufError> {
        let needs = self.needs_for(att);
        let rec = ConstraintRecord::of_attachment(att, needs);
        let device = rec.device.clone();
        let deadline = self.drain_deadline(self.now_ns());
        let mut st = self.state.lock();
        self.wait_idle(&mut st, deadline)
            .map_err(|e| self.remember(e))?;
        let mut records = st.all_records();
        records.push(rec.clone());
        // Rule 1: a conflict among the records is certain now (among them no common format
        // modifier, or a negotiated layout the buffer cannot hold); refuse the attach.
        let (unmet, layout, _) = self
            .unmet_for(&st, &records)
            .map_err(|e| self.remember(e))?;
        plan(&records, &layout, self.dma.soc()).map_err(|e| self.remember(e))?;
        if !unmet.is_empty() && !self.policy.may_migrate() {
            return Err(self.remember(self.fixed(&device, unmet)).into());
        }
        st.records.push((att.id(), rec));
        st.version += 1;
        if unmet.is_empty() {
            if st.current.is_some() {
                st.checked = st.version;
            }
            return Ok(());
        }
        let cause = MigrationCause::LateAttach { device };
        st.phase = Phase::Draining;
        st.pending = Some((cause.clone(), self.now_ns(), Some(att.id())));
        st.outcome = None;
        drop(st);
        self.late_attach_move(buf, cause)?;
        Ok(())
    }

    fn detach(&self, buf: &DmaBuf, att: &Attachment) {
        {
            let mut st = self.state.lock();
            st.records.retain(|(id, _)| *id != att.id());
            st.pins.remove(&att.id());
            st.version += 1;
        }
        for g in self.gens() {
            // Unmaps what this attachment left cached; a table it still holds (a leak) stays a
            // zombie until given back.
            let _ = g.cache.detach(att);
        }
        self.reap_ghosts();
        self.cond.notify_all();
        self.move_back_after_detach(buf, att.device().name());
    }

    fn pin(&self, att: &Attachment, resv: &mut ResvGuard<'_>) -> Result<(), DmaBufError> {
        let dev = att.device().name();
        self.prepare(att.dmabuf(), resv, Some((att.id(), 0)), dev)?;
        let mut st = self.state.lock();
        st.pins
            .entry(att.id())
            .or_insert_with(|| (dev.to_string(), 0))
            .1 += 1;
        Ok(())
    }

    fn unpin(&self, att: &Attachment, _resv: &mut ResvGuard<'_>) {
        {
            let mut st = self.state.lock();
            if let Some(e) = st.pins.get_mut(&att.id()) {
                e.1 = e.1.saturating_sub(1);
                if e.1 == 0 {
                    st.pins.remove(&att.id());
                }
            }
        }
        self.cond.notify_all();
    }

    fn map_dma_buf(
        &self,
        att: &Attachment,
        dir: DmaDirection,
        resv: &mut ResvGuard<'_>,
    ) -> Result<Arc<SgTable>, DmaBufError> {
        // A static importer's pin for this very map is already counted: do not wait for it.
        let own = u32::from(!att.is_dynamic());
        self.prepare(
            att.dmabuf(),
            resv,
            Some((att.id(), own)),
            att.device().name(),
        )?;
        let gen = self
            .state
            .lock()
            .current
            .clone()
            .ok_or_else(|| DmaBufError::Busy("no storage after placement".into()))?;
        let limits = SegmentLimits::of_device(att.device())?;
        let table = gen
            .cache
            .map(att, dir, || Ok(gen.backing.sg_table(limits)?))?;
        self.state.lock().tables.insert(table_key(&table), gen.id);
        Ok(table)
    }

    fn unmap_dma_buf(
        &self,
        att: &Attachment,
        sgt: Arc<SgTable>,
        _dir: DmaDirection,
        _resv: &mut ResvGuard<'_>,
    ) -> Result<(), DmaBufError> {
        let gen = {
            let st = self.state.lock();
            let id = st.tables.get(&table_key(&sgt)).copied();
            st.current
                .iter()
                .chain(st.ghosts.iter())
                .find(|g| Some(g.id) == id)
                .cloned()
        };
        let r = match gen {
            Some(g) if self.cache_mappings => g.cache.unmap(sgt),
            // Uncached: give the reference back, then drop the attachment's idle entries.
            Some(g) => g.cache.unmap(sgt).and_then(|()| g.cache.detach(att)),
            None => Err(DmaBufError::InvalidArgument(
                "unmap of a table this exporter did not hand out".into(),
            )),
        };
        self.reap_ghosts();
        r
    }

    fn release(&self, _info: &ReleaseInfo) {
        let gens = {
            let mut st = self.state.lock();
            st.released = true;
            let mut g: Vec<Arc<Gen>> = st.current.take().into_iter().collect();
            g.append(&mut st.ghosts);
            g
        };
        for g in gens {
            let _ = g.cache.invalidate();
            g.backing.free(&self.dma);
        }
    }

    fn begin_cpu_access(&self, _buf: &DmaBuf, _dir: DmaDirection) -> Result<(), DmaBufError> {
        for g in self.gens() {
            g.cache.sync_for_cpu()?;
        }
        Ok(())
    }

    fn end_cpu_access(&self, _buf: &DmaBuf, _dir: DmaDirection) -> Result<(), DmaBufError> {
        for g in self.gens() {
            g.cache.sync_for_device()?;
        }
        Ok(())
    }

    fn mmap(&self, _buf: &DmaBuf, _pgoff: u64, _n: u64, _w: bool) -> Result<(), DmaBufError> {
        Ok(())
    }

    fn mmap_fault(&self, _buf: &DmaBuf, pgoff: u64) -> Result<FaultPage, DmaBufError> {
        let mut st = self.state.lock();
        // Rule 5: a fault during a move waits for the new placement.
        while st.phase == Phase::Moving {
            self.cond.wait(&mut st);
        }
        if st.released {
            return Err(DmaBufError::Fault("buffer released".into()));
        }
        if st.current.is_none() {
            self.allocate_initial(&mut st)?;
        }
        st.current
            .as_ref()
            .and_then(|g| g.backing.page_at(pgoff))
            .ok_or_else(|| DmaBufError::Fault(format!("page {pgoff} beyond the buffer")))
    }

    fn vmap(&self, buf: &DmaBuf, resv: &mut ResvGuard<'_>) -> Result<IosysMap, DmaBufError> {
        self.prepare(buf, resv, None, "vmap")?;
        let mut st = self.state.lock();
        let map = st
            .current
            .as_ref()
            .map(|g| g.backing.iosys_map(self.size))
            .ok_or_else(|| DmaBufError::Busy("no storage after placement".into()))?;
        st.vmaps += 1;
        Ok(map)
    }

    fn vunmap(&self, _buf: &DmaBuf, _map: &IosysMap, _resv: &mut ResvGuard<'_>) {
        {
            let mut st = self.state.lock();
            st.vmaps = st.vmaps.saturating_sub(1);
        }
        self.cond.notify_all();
    }
}
