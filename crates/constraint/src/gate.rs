//! The stall gate and the drain: the migration contract's rules 2-6 (module doc of
//! [`constraint`](super)).
//!
//! Two paths reach a move:
//! - **attach** (`late_attach_move`): no lock held. Closes the gate (phase `Draining`), waits
//!   for fences and for pins/vmaps to drain without the resv lock, then takes the resv lock and
//!   moves (`move_locked`).
//! - **map/pin** (`prepare`): the resv lock is held, so static importers cannot unmap now; the
//!   caller either finishes a drained migration itself or gets `EBUSY` at once. It never waits
//!   for an unmap while holding the resv lock (that wait could never end).

use super::explain::ConstraintError;
use super::exporter::{ConstraintExporter, Phase, State};
use super::migrate::{
    move_backing_pieces, ns_since, wait_fences, MigrationCause, MigrationEvent, MigrationFailure,
};
use super::placement::plan;
use super::reason::PlacementReason;
use clock::Clock;
use dmabuf::buf::DmaBuf;
use fence::{DmaResvUsage, ResvGuard};
use std::sync::Arc;
use std::time::Duration;
use sync::MutexGuard;
use uapi::AsErrno;

/// How often a drain wait looks at the interrupt.
const POLL: Duration = Duration::from_millis(5);

impl ConstraintExporter {
    fn ino(&self) -> u64 {
        self.ino.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether nothing but `exclude` pins of one attachment holds the storage in place.
    pub(super) fn drained(st: &State, exclude: Option<(u64, u32)>) -> bool {
        st.holders(exclude).is_empty()
    }

    fn interrupted(&self) -> bool {
        self.config
            .interrupt
            .as_ref()
            .is_some_and(|i| i.is_raised())
    }

    /// The machine's clock (`Soc::clock`): drains, stalls and copies are timed on it.
    pub(super) fn clock(&self) -> &dyn Clock {
        &**self.dma.soc().clock()
    }

    /// Now on the machine's clock.
    pub(super) fn now_ns(&self) -> u64 {
        self.clock().now_ns()
    }

    /// When a drain that starts at `t0` gives up ([`MigrationConfig::drain_timeout`](
    /// super::MigrationConfig::drain_timeout) later).
    pub(super) fn drain_deadline(&self, t0: u64) -> u64 {
        let t = u64::try_from(self.config.drain_timeout.as_nanos()).unwrap_or(u64::MAX);
        t0.saturating_add(t)
    }

    /// Sleeps on the gate's condition variable (state lock released meanwhile) for at most
    /// [`POLL`] and at most until `deadline` on the machine clock. Returns `true`, without
    /// sleeping, once the deadline has passed. A slice that times out tells the clock (a
    /// virtual clock moves forward by the slice: the thread spent it waiting).
    fn sleep_until(&self, st: &mut MutexGuard<'_, State>, deadline: u64) -> bool {
        let clock = self.clock();
        let now = clock.now_ns();
        if now >= deadline {
            return true;
        }
        let slice = Duration::from_nanos(deadline - now).min(POLL);
        if self.cond.wait_for(st, slice).timed_out() {
            let slept = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
            clock.timed_out(now.saturating_add(slept));
        }
        false
    }

    /// Waits (state lock held, released while sleeping) until `Idle`, or fails with `EBUSY` at
    /// `deadline`.
    pub(super) fn wait_idle(
        &self,
        st: &mut MutexGuard<'_, State>,
        deadline: u64,
    ) -> Result<(), ConstraintError> {
        while st.phase != Phase::Idle {
            if self.interrupted() {
                return Err(ConstraintError::Interrupted(
                    "waiting for another migration of the buffer".into(),
                ));
            }
            if self.sleep_until(st, deadline) {
                let cause = st.pending.as_ref().map(|(c, _, _)| c.to_string());
                return Err(ConstraintError::Busy(format!(
                    "another migration ({}) is still in progress",
                    cause.unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    /// Rule 3 for a late attach (no lock held; the caller set `Draining` and registered the
    /// new record). On failure the caller removes the record.
    pub(super) fn late_attach_move(
        &self,
        buf: &DmaBuf,
        cause: MigrationCause,
    ) -> Result<(), ConstraintError> {
        let t0 = self.now_ns();
        let deadline = self.drain_deadline(t0);
        let intr = self.config.interrupt.as_ref();
        let r: Result<(), ConstraintError> = loop {
            if let Err(e) = wait_fences(self.clock(), buf.resv(), deadline, intr) {
                break Err(e);
            }
            {
                let mut st = self.state.lock();
                while st.phase == Phase::Draining && !Self::drained(&st, None) {
                    if self.interrupted() {
                        break;
                    }
                    if self.sleep_until(&mut st, deadline) {
                        break;
                    }
                }
                if st.phase != Phase::Draining {
                    // A mapper finished the move for us (rule 4).
                    return st.outcome.clone().unwrap_or(Ok(()));
                }
                if self.interrupted() {
                    break Err(ConstraintError::Interrupted(format!(
                        "waiting to move the buffer for {cause}"
                    )));
                }
                if !Self::drained(&st, None) {
                    break Err(ConstraintError::Busy(format!(
                        "{} still hold the buffer after {:?}; it stays where it is",
                        st.holders(None).join(", "),
                        self.config.drain_timeout
                    )));
                }
            }
            let mut g = match buf.resv().lock(None) {
                Ok(g) => g,
                Err(e) => break Err(dmabuf::error::DmaBufError::from(e).into()),
            };
            let ready = {
                let st = self.state.lock();
                if st.phase != Phase::Draining {
                    return st.outcome.clone().unwrap_or(Ok(()));
                }
                Self::drained(&st, None) && buf.resv().test_signaled(DmaResvUsage::Bookkeep)
            };
            if ready {
                return self.move_locked(buf, &mut g, cause, t0);
            }
            // Someone mapped or fenced between the drain and the lock: wait again.
            drop(g);
        };
        let e = r
            .err()
            .unwrap_or_else(|| ConstraintError::Busy("drain ended".into()));
        self.fail_pending(&cause, &e, t0);
        Err(self.remember(e))
    }

    /// Ends a migration that will not happen: log it, reopen the gate.
    fn fail_pending(&self, cause: &MigrationCause, e: &ConstraintError, t0: u64) {
        self.log.push_failure(MigrationFailure {
            buffer: self.ino(),
            cause: cause.clone(),
            errno: e.errno().name().unwrap_or("?").to_string(),
            reason: e.to_string(),
            stall_ns: ns_since(self.clock(), t0),
        });
        let mut st = self.state.lock();
        if let Some((_, _, Some(att))) = st.pending.take() {
            st.records.retain(|(id, _)| *id != att);
            st.version += 1;
        }
        st.phase = Phase::Idle;
        st.outcome = Some(Err(e.clone()));
        drop(st);
        self.cond.notify_all();
    }

    /// Rules 4-6 for a map or pin with the resv lock held: make the storage exist and serve the
    /// attached devices, or fail. `who` is the caller's attachment and how many of its pins are
    /// the caller's own in-flight one (not to be waited for).
    pub(super) fn prepare(
        &self,
        buf: &DmaBuf,
        resv: &mut ResvGuard<'_>,
        who: Option<(u64, u32)>,
        device: &str,
    ) -> Result<(), ConstraintError> {
        let mut st = self.state.lock();
        if st.released {
            return Err(ConstraintError::Busy("buffer released".into()));
        }
        match st.phase {
            Phase::Moving => Err(ConstraintError::Busy("buffer is moving".into())),
            Phase::Draining => {
                let Some((cause, t0, _)) = st.pending.clone() else {
                    return Err(ConstraintError::Busy("a migration is starting".into()));
                };
                if Self::drained(&st, who) && buf.resv().test_signaled(DmaResvUsage::Bookkeep) {
                    drop(st);
                    return self.move_locked(buf, resv, cause, t0);
                }
                Err(ConstraintError::Busy(format!(
                    "the buffer waits to move for {cause}; {} still hold it: map again after \
                     they unmap",
                    st.holders(who).join(", ")
                )))
            }
            Phase::Idle if st.current.is_none() => self.allocate_initial(&mut st),
            Phase::Idle if st.checked == st.version => Ok(()),
            Phase::Idle => {
                let records = st.all_records();
                let (unmet, _, _) = self
                    .unmet_for(&st, &records)
                    .map_err(|e| self.remember(e))?;
                if unmet.is_empty() {
                    st.checked = st.version;
                    return Ok(());
                }
                if !self.policy.may_migrate() {
                    return Err(self.remember(self.fixed(device, unmet)));
                }
                if !Self::drained(&st, who) {
                    return Err(self.remember(ConstraintError::Busy(format!(
                        "the placement does not serve {device} ({}) and {} hold it",
                        unmet.join("; "),
                        st.holders(who).join(", ")
                    ))));
                }
                let cause = MigrationCause::Map {
                    device: device.to_string(),
                };
                let t0 = self.now_ns();
                st.phase = Phase::Draining;
                st.pending = Some((cause.clone(), t0, None));
                drop(st);
                let deadline = self.drain_deadline(t0);
                let intr = self.config.interrupt.as_ref();
                if let Err(e) = wait_fences(self.clock(), buf.resv(), deadline, intr) {
                    self.fail_pending(&cause, &e, t0);
                    return Err(self.remember(e));
                }
                self.move_locked(buf, resv, cause, t0)
            }
        }
    }

    /// Rule 5: the move itself, resv held, access drained, phase `Draining`.
    pub(super) fn move_locked(
        &self,
        buf: &DmaBuf,
        resv: &mut ResvGuard<'_>,
        cause: MigrationCause,
        t0: u64,
    ) -> Result<(), ConstraintError> {
        let (old, planned, now_neg) = {
            let mut st = self.state.lock();
            let records = st.all_records();
            let planned = self.layout_for(&records).and_then(|(layout, neg)| {
                Ok((plan(&records, &layout, self.dma.soc())?, layout, neg))
            });
            if planned.is_ok() {
                st.phase = Phase::Moving;
            }
            (st.current.clone(), planned, st.negotiated.clone())
        };
        let (planned, layout, negotiated) = match planned {
            Ok(p) => p,
            Err(e) => {
                self.fail_pending(&cause, &e, t0);
                return Err(self.remember(e));
            }
        };
        let Some(old) = old else {
            let mut st = self.state.lock();
            let r = self.allocate_initial(&mut st);
            st.phase = Phase::Idle;
            st.pending = None;
            st.outcome = Some(r.clone());
            drop(st);
            self.cond.notify_all();
            return r;
        };
        // A changed modifier or pitch converts the image on the way (negotiate.rs, rule 5).
        let relayout = match (&now_neg, &negotiated, &self.negotiation) {
            (Some(from), Some(to), Some(neg)) if !from.changes(to).is_empty() => {
                Some((from.changes(to).join("; "), neg.image.convert(from, to)))
            }
            _ => None,
        };
        let moved = move_backing_pieces(
            &self.dma,
            buf,
            resv,
            &old.backing,
            &planned,
            &*self.config.mover,
            &mut || old.cache.invalidate(),
            relayout.as_ref().map(|(_, p)| p.as_slice()),
        );
        let moved = match moved {
            Ok(m) => m,
            Err(e) => {
                self.fail_pending(&cause, &e, t0);
                return Err(self.remember(e));
            }
        };
        let to = moved.backing.summary();
        let mut st = self.state.lock();
        let gen = self.new_gen(&mut st, moved.backing);
        let reason = PlacementReason::new(
            gen.id,
            Some(cause.clone()),
            self.now_ns(),
            &planned,
            &gen.backing,
        )
        .with_negotiated(negotiated.clone());
        st.reasons.push(reason);
        st.layout = layout;
        st.negotiated = negotiated;
        st.current = Some(gen);
        st.checked = st.version;
        if old.cache.in_use() == 0 {
            let _ = old.cache.invalidate();
            old.backing.free(&self.dma);
        } else {
            st.ghosts.push(old.clone());
        }
        st.phase = Phase::Idle;
        st.pending = None;
        st.outcome = Some(Ok(()));
        drop(st);
        self.cond.notify_all();
        let copy_ns = u64::try_from(moved.copy.as_nanos()).unwrap_or(u64::MAX);
        self.log.push(MigrationEvent {
            buffer: self.ino(),
            from: old.backing.summary(),
            to,
            bytes: moved.bytes,
            // The drain as the clock saw it, and at least the modelled copy inside it.
            stall_ns: ns_since(self.clock(), t0).max(copy_ns),
            copy_ns,
            engine: moved.engine,
            cause,
            relayout: relayout.map(|(what, _)| what),
        });
        Ok(())
    }

    /// Frees ghosts no importer maps any more (after an unmap or a detach).
    pub(super) fn reap_ghosts(&self) {
        let dead: Vec<Arc<super::exporter::Gen>> = {
            let mut st = self.state.lock();
            let (dead, live) = std::mem::take(&mut st.ghosts)
                .into_iter()
                .partition(|g| g.cache.in_use() == 0);
            st.ghosts = live;
            dead
        };
        for g in dead {
            let _ = g.cache.invalidate();
            g.backing.free(&self.dma);
        }
    }
}
