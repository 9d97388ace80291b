//! The constraint-solving exporter: its state and its public API.
//!
//! The contract it follows (allocation at first use, migration on late attach, the stall gate,
//! lock order) is in the [module doc](super); what an export asks for is in `spec.rs`, the
//! callbacks in `ops.rs`, the drain and move in `gate.rs`.

use super::backing::{Backing, PlacementSummary};
use super::combine::CombinedRecord;
use super::explain::{Conflict, ConstraintError};
use super::layout::Layout;
use super::migrate::{MigrationCause, MigrationLog};
use super::negotiate::{negotiate, Negotiated, Negotiation};
use super::placement::plan;
use super::policy::{MigrationConfig, Policy};
use super::reason::PlacementReason;
use super::record::{ConstraintRecord, ImporterNeeds};
pub use super::spec::ExportSpec;
use dma::DmaApi;
use dmabuf::attach::{AttachParams, Attachment};
use dmabuf::buf::{DmaBuf, ExportInfo};
use dmabuf::debugfs::BufRegistry;
use dmabuf::error::DmaBufError;
use dmabuf::map_cache::MapCache;
use dmabuf::ops::ImporterOps;
use soc::{Device, PhysAddr};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use sync::{Condvar, Mutex};

/// One placement generation: memory and the mappings made of it.
pub(super) struct Gen {
    pub(super) id: u64,
    pub(super) backing: Backing,
    pub(super) cache: MapCache,
}

/// Where the migration state machine is (module doc, rule 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Nothing moving.
    Idle,
    /// A late attach waits for access to drain; new maps stall (the gate is closed).
    Draining,
    /// The move runs (resv held); CPU faults wait.
    Moving,
}

/// Protected by `ConstraintExporter::state` (lock order: resv, then state).
pub(super) struct State {
    /// Records of the attached devices (and the one attaching), by attachment id.
    pub(super) records: Vec<(u64, ConstraintRecord)>,
    /// Records of the devices an up-front buffer was allocated for.
    pub(super) known: Vec<ConstraintRecord>,
    pub(super) current: Option<Arc<Gen>>,
    /// Old generations some importer still maps; freed at their last unmap.
    pub(super) ghosts: Vec<Arc<Gen>>,
    pub(super) next_gen: u64,
    /// Pins per attachment (static maps and dynamic pins): (device, count).
    pub(super) pins: HashMap<u64, (String, u32)>,
    pub(super) vmaps: u32,
    pub(super) phase: Phase,
    /// The migration in progress: cause, start, and the attachment whose attach started it
    /// (its record goes if the migration fails).
    pub(super) pending: Option<(MigrationCause, u64, Option<u64>)>,
    /// Bumped whenever `records` change.
    pub(super) version: u64,
    /// The `version` the current placement was last found to serve.
    pub(super) checked: u64,
    /// The result of the last move, for a drainer whose move was finished by a mapper.
    pub(super) outcome: Option<Result<(), ConstraintError>>,
    /// Table (by address) -> generation id.
    pub(super) tables: HashMap<usize, u64>,
    pub(super) released: bool,
    /// One record per placement decision (the first allocation, every migration).
    pub(super) reasons: Vec<PlacementReason>,
    /// The layout of the current placement (the export's until a negotiation changes it).
    pub(super) layout: Layout,
    /// The negotiated modifier and pitch of the current placement.
    pub(super) negotiated: Option<Negotiated>,
}

impl State {
    pub(super) fn all_records(&self) -> Vec<ConstraintRecord> {
        self.known
            .iter()
            .cloned()
            .chain(self.records.iter().map(|(_, r)| r.clone()))
            .collect()
    }

    /// Pins and vmaps other than `exclude` pins of attachment `who`.
    pub(super) fn holders(&self, who: Option<(u64, u32)>) -> Vec<String> {
        let mut out: Vec<String> = self
            .pins
            .iter()
            .filter_map(|(id, (dev, n))| {
                let n = match who {
                    Some((w, ex)) if w == *id => n.saturating_sub(ex),
                    _ => *n,
                };
                (n > 0).then(|| format!("{dev} ({n} pin{})", if n == 1 { "" } else { "s" }))
            })
            .collect();
        if self.vmaps > 0 {
            out.push(format!("{} kernel vmap(s)", self.vmaps));
        }
        out.sort();
        out
    }
}

/// The constraint-solving exporter of one buffer (module doc of [`constraint`](super)).
pub struct ConstraintExporter {
    pub(super) dma: Arc<DmaApi>,
    /// The export's layout (its plane count never changes).
    pub(super) layout: Layout,
    /// The dma-buf's size (fixed).
    pub(super) size: u64,
    pub(super) negotiation: Option<Negotiation>,
    pub(super) policy: Policy,
    pub(super) config: MigrationConfig,
    pub(super) cache_mappings: bool,
    pub(super) log: Arc<MigrationLog>,
    pub(super) ino: AtomicU64,
    pub(super) state: Mutex<State>,
    /// Signalled on every unpin, vunmap, detach and end of a move.
    pub(super) cond: Condvar,
    pub(super) last_error: Mutex<Option<ConstraintError>>,
}

impl fmt::Debug for ConstraintExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConstraintExporter")
            .field("ino", &self.ino.load(Ordering::Relaxed))
            .field("policy", &self.policy.name())
            .field("placement", &self.placement())
            .finish()
    }
}

impl ConstraintExporter {
    /// Exports a buffer whose storage this exporter places (see [`ExportSpec`]). With
    /// [`Policy::UpFront`] the storage is allocated now, for the devices listed.
    ///
    /// Errors: a bad layout (`EINVAL`); for up-front, unknown devices (`ENODEV`), the explained
    /// conflict or `ENOMEM`.
    pub fn export(
        dma: &Arc<DmaApi>,
        spec: ExportSpec,
    ) -> Result<(DmaBuf, Arc<ConstraintExporter>), DmaBufError> {
        Self::export_inner(dma, spec, None)
    }

    /// [`export`](Self::export) into a registry (bufinfo).
    pub fn export_registered(
        dma: &Arc<DmaApi>,
        spec: ExportSpec,
        registry: &Arc<BufRegistry>,
    ) -> Result<(DmaBuf, Arc<ConstraintExporter>), DmaBufError> {
        Self::export_inner(dma, spec, Some(registry))
    }

    fn export_inner(
        dma: &Arc<DmaApi>,
        spec: ExportSpec,
        registry: Option<&Arc<BufRegistry>>,
    ) -> Result<(DmaBuf, Arc<ConstraintExporter>), DmaBufError> {
        spec.layout.validate()?;
        let mut known = Vec::new();
        if let Policy::UpFront { devices } = &spec.policy {
            for k in devices {
                let dev = dma.device(&k.device)?;
                known.push(
                    ConstraintRecord::of_device(&dev)
                        .with_needs(k.needs.clone())
                        .peer2peer(k.peer2peer),
                );
            }
        }
        let size = spec.layout.size.max(spec.reserve);
        let exp = Arc::new(ConstraintExporter {
            dma: dma.clone(),
            layout: spec.layout.clone(),
            size,
            negotiation: spec.negotiation.clone(),
            policy: spec.policy.clone(),
            config: spec.config.clone(),
            cache_mappings: spec.cache_mappings,
            log: spec.log.unwrap_or_default(),
            ino: AtomicU64::new(0),
            state: Mutex::new(State {
                records: Vec::new(),
                known,
                current: None,
                ghosts: Vec::new(),
                next_gen: 1,
                pins: HashMap::new(),
                vmaps: 0,
                phase: Phase::Idle,
                pending: None,
                version: 0,
                checked: u64::MAX,
                outcome: None,
                tables: HashMap::new(),
                released: false,
                reasons: Vec::new(),
                layout: spec.layout.clone(),
                negotiated: None,
            }),
            cond: Condvar::new(),
            last_error: Mutex::new(None),
        });
        if matches!(spec.policy, Policy::UpFront { .. }) {
            let mut st = exp.state.lock();
            exp.allocate_initial(&mut st)?;
        }
        let info = ExportInfo::new(spec.exp_name, size, exp.clone());
        let buf = match registry {
            Some(r) => DmaBuf::export_registered(dma, info, r)?,
            None => DmaBuf::export(dma, info)?,
        };
        exp.ino.store(buf.ino(), Ordering::Relaxed);
        Ok((buf, exp))
    }

    /// Allocates (and zeroes) the first placement for the records in `st`.
    pub(super) fn allocate_initial(&self, st: &mut State) -> Result<(), ConstraintError> {
        let records = st.all_records();
        let (layout, negotiated) = self.layout_for(&records).map_err(|e| self.remember(e))?;
        let p = plan(&records, &layout, self.dma.soc()).map_err(|e| self.remember(e))?;
        let backing = Backing::allocate(&self.dma, &p).map_err(|e| self.remember(e))?;
        if let Err(e) = backing.zero(&self.dma) {
            backing.free(&self.dma);
            return Err(self.remember(e));
        }
        let gen = self.new_gen(st, backing);
        let reason = PlacementReason::new(gen.id, None, self.now_ns(), &p, &gen.backing)
            .with_negotiated(negotiated.clone());
        st.reasons.push(reason);
        st.layout = layout;
        st.negotiated = negotiated;
        st.current = Some(gen);
        st.checked = st.version;
        Ok(())
    }

    /// Why the buffer is where it is: one [`PlacementReason`] per placement decision, oldest
    /// first (the first allocation, then every migration); empty before the first allocation.
    pub fn placement_reasons(&self) -> Vec<PlacementReason> {
        self.state.lock().reasons.clone()
    }

    pub(super) fn new_gen(&self, st: &mut State, backing: Backing) -> Arc<Gen> {
        let id = st.next_gen;
        st.next_gen += 1;
        Arc::new(Gen {
            id,
            backing,
            cache: MapCache::new(&self.dma),
        })
    }

    /// Keeps `e` as the last error (structured) and returns it.
    pub(super) fn remember(&self, e: ConstraintError) -> ConstraintError {
        *self.last_error.lock() = Some(e.clone());
        e
    }

    /// The needs of attachment `att`: its own (the `ImporterNeeds` the importer passed as
    /// `importer_priv` to [`DmaBuf::attach_with`]), else the up-front policy's for its device,
    /// else none. Nothing is kept per device: two attaches of one device each bring their own.
    pub(super) fn needs_for(&self, att: &Attachment) -> ImporterNeeds {
        if let Some(n) = att.importer_priv_as::<ImporterNeeds>() {
            return n.clone();
        }
        let device = att.device().name();
        if let Policy::UpFront { devices } = &self.policy {
            if let Some(k) = devices.iter().find(|k| k.device == device) {
                return k.needs.clone();
            }
        }
        ImporterNeeds::default()
    }

    /// Attaches `dev` as a static importer that needs `needs` of this buffer.
    ///
    /// Errors: those of [`DmaBuf::attach`], among them this exporter's explained refusals
    /// ([`last_error`](Self::last_error) has the structured one).
    pub fn attach_with(
        &self,
        buf: &DmaBuf,
        dev: &Arc<Device>,
        needs: ImporterNeeds,
    ) -> Result<Attachment, DmaBufError> {
        let params = AttachParams {
            importer_ops: None,
            importer_priv: Some(Arc::new(needs)),
        };
        buf.attach_with(dev, params)
    }

    /// Attaches `dev` as a dynamic importer that needs `needs`.
    pub fn dynamic_attach_with(
        &self,
        buf: &DmaBuf,
        dev: &Arc<Device>,
        importer: Arc<dyn ImporterOps>,
        needs: ImporterNeeds,
    ) -> Result<Attachment, DmaBufError> {
        let params = AttachParams {
            importer_ops: Some(importer),
            importer_priv: Some(Arc::new(needs)),
        };
        buf.attach_with(dev, params)
    }

    /// The record of attachment `att` (`None` if it is not attached to this buffer).
    pub fn record(&self, att: &Attachment) -> Option<ConstraintRecord> {
        let st = self.state.lock();
        st.records
            .iter()
            .find(|(id, _)| *id == att.id())
            .map(|(_, r)| r.clone())
    }

    /// The records of the attached devices (and up-front ones), in attach order.
    pub fn records(&self) -> Vec<ConstraintRecord> {
        self.state.lock().all_records()
    }

    /// The combined record of the attached devices.
    pub fn combined(&self) -> CombinedRecord {
        CombinedRecord::combine(&self.records(), self.layout.planes.len())
    }

    /// The buffer's layout now (negotiated exporters change it when they re-lay out).
    pub fn layout(&self) -> Layout {
        self.state.lock().layout.clone()
    }

    /// The negotiated modifier and pitch of the current placement (`None`: not negotiated, or
    /// nothing allocated yet).
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.state.lock().negotiated.clone()
    }

    /// Before the first allocation: negotiates the layout for the devices attached now and
    /// makes it the buffer's (what [`layout`](Self::layout) answers), so that an owner can
    /// tell its devices the planes before the first map. After it: nothing changes. Returns
    /// the layout.
    ///
    /// Errors: the negotiation's (no common modifier, a layout larger than the buffer).
    pub fn settle_layout(&self) -> Result<Layout, ConstraintError> {
        let mut st = self.state.lock();
        if st.current.is_none() {
            let (layout, negotiated) = self.layout_for(&st.all_records())?;
            st.layout = layout;
            st.negotiated = negotiated;
        }
        Ok(st.layout.clone())
    }

    /// The layout `records` call for: the negotiated one, else the export's.
    ///
    /// Errors: the negotiation's (no common modifier, a layout larger than the buffer).
    pub(super) fn layout_for(
        &self,
        records: &[ConstraintRecord],
    ) -> Result<(Layout, Option<Negotiated>), ConstraintError> {
        match &self.negotiation {
            None => Ok((self.layout.clone(), None)),
            Some(neg) => {
                let n = negotiate(records, neg, Some(self.size))?;
                Ok((n.layout.clone(), Some(n)))
            }
        }
    }

    /// What the current placement does not meet for `records`, the layout they call for and
    /// its negotiation (module doc of `negotiate`: a changed modifier or pitch is unmet too).
    pub(super) fn unmet_for(
        &self,
        st: &State,
        records: &[ConstraintRecord],
    ) -> Result<(Vec<String>, Layout, Option<Negotiated>), ConstraintError> {
        let (layout, negotiated) = self.layout_for(records)?;
        let Some(g) = st.current.as_ref() else {
            return Ok((Vec::new(), layout, negotiated));
        };
        let c = CombinedRecord::combine(records, self.layout.planes.len());
        let mut unmet = g.backing.unmet(&c, &layout);
        if let (Some(now), Some(want)) = (&st.negotiated, &negotiated) {
            unmet.extend(
                now.changes(want)
                    .into_iter()
                    .map(|c| format!("re-layout: {c}")),
            );
        }
        Ok((unmet, layout, negotiated))
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Where the buffer lives now (`None`: no storage yet).
    pub fn placement(&self) -> Option<PlacementSummary> {
        self.state
            .lock()
            .current
            .as_ref()
            .map(|g| g.backing.summary())
    }

    /// The physical address of byte `offset` of the buffer, if it has storage.
    pub fn phys_at(&self, offset: u64) -> Option<PhysAddr> {
        self.state.lock().current.as_ref()?.backing.phys_at(offset)
    }

    /// How many placements the buffer had (1 after the first allocation, +1 per migration).
    pub fn generation(&self) -> u64 {
        self.state.lock().next_gen - 1
    }

    /// Whether a migration is waiting for access to drain or moving right now (the gate is
    /// closed).
    pub fn migration_pending(&self) -> bool {
        self.state.lock().phase != Phase::Idle
    }

    /// Old placements still mapped by an importer that ignored `move_notify`.
    pub fn ghost_count(&self) -> usize {
        self.state.lock().ghosts.len()
    }

    /// The migration log.
    pub fn log(&self) -> &Arc<MigrationLog> {
        &self.log
    }

    /// The last refusal or failure, structured (conflicts naming devices).
    pub fn last_error(&self) -> Option<ConstraintError> {
        self.last_error.lock().clone()
    }

    /// Map-cache hits and misses of the current placement.
    pub fn map_cache_stats(&self) -> (u64, u64) {
        let st = self.state.lock();
        st.current
            .as_ref()
            .map_or((0, 0), |g| (g.cache.hits(), g.cache.misses()))
    }

    /// The refusal of a policy that does not move.
    pub(super) fn fixed(&self, device: &str, unmet: Vec<String>) -> ConstraintError {
        ConstraintError::conflict(
            vec![device.to_string()],
            vec![Conflict::Fixed {
                why: format!("policy {}", self.policy.name()),
                device: device.to_string(),
                unmet,
            }],
        )
    }
}

impl ConstraintExporter {
    /// The "move back" of a detach: when the device that left was what held the buffer in its
    /// current placement (the cheapest placement for the devices still attached is another
    /// source: scattered pages instead of CMA, say), the buffer moves back there and the
    /// dearer memory is freed — so a late attach that failed part-way, whose caller detaches
    /// the device again, leaves no buffer half-migrated.
    ///
    /// It moves only when it can at once without waiting: nothing maps or pins the buffer, no
    /// fence is pending, the reservation lock is free (`try_lock`) and no migration is under
    /// way; otherwise the buffer stays where it is (it still serves everyone, it only costs
    /// more). A failed move back is logged as a migration failure and changes nothing.
    pub(super) fn move_back_after_detach(&self, buf: &DmaBuf, device: &str) {
        if !self.policy.may_migrate() {
            return;
        }
        let wanted = {
            let st = self.state.lock();
            if st.released || st.phase != Phase::Idle || !Self::drained(&st, None) {
                return;
            }
            let Some(cur) = st.current.as_ref() else {
                return;
            };
            let records = st.all_records();
            if records.is_empty() {
                return;
            }
            let Ok((layout, negotiated)) = self.layout_for(&records) else {
                return;
            };
            if let (Some(now), Some(want)) = (&st.negotiated, &negotiated) {
                if !now.changes(want).is_empty() {
                    return; // a re-layout is not a move back: the layout stays
                }
            }
            let Ok(planned) = plan(&records, &layout, self.dma.soc()) else {
                return;
            };
            let firsts = planned.first_choice();
            let here = cur.backing.summary();
            let cheapest = here.groups.len() == firsts.len()
                && here
                    .groups
                    .iter()
                    .zip(&firsts)
                    .all(|(g, s)| &g.source == *s);
            !cheapest
        };
        if !wanted || !buf.resv().test_signaled(fence::DmaResvUsage::Bookkeep) {
            return;
        }
        let Ok(mut g) = buf.resv().try_lock() else {
            return;
        };
        let cause = MigrationCause::Detach {
            device: device.to_string(),
        };
        let t0 = self.now_ns();
        {
            let mut st = self.state.lock();
            // Re-checked under the resv lock (lock order: resv, then state).
            if st.phase != Phase::Idle || !Self::drained(&st, None) {
                return;
            }
            st.phase = Phase::Draining;
            st.pending = Some((cause.clone(), t0, None));
            st.outcome = None;
        }
        let _ = self.move_locked(buf, &mut g, cause, t0);
    }
}
