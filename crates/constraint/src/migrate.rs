//! Migration: moving a buffer's bytes to a placement that serves every device.
//!
//! C side: TTM's `ttm_bo_handle_move_mem` / `ttm_bo_move_accel_cleanup` (an evicting exporter),
//! and seed 000's "stall in get_scatterlist until all outstanding access has completed, move the
//! object around and let things continue merrily".
//!
//! This module holds the pieces any moving exporter reuses; the drain and the stall gate are the
//! [`ConstraintExporter`](super::ConstraintExporter)'s (its module doc has the full contract):
//! - [`wait_fences`]: the bounded, interruptible wait for every fence of the reservation object;
//! - [`move_backing`]: with the resv lock held and access drained, allocate the new placement,
//!   `move_notify` the dynamic importers, invalidate cached mappings, zap CPU mappings, copy the
//!   bytes with a [`Mover`]. On error nothing the importers can see changed;
//! - [`MigrationEvent`]/[`MigrationLog`]: every migration (and every refused one) as a record
//!   with from, to, bytes, stall time and cause.

use super::backing::{Backing, PlacementSummary};
use super::explain::ConstraintError;
use super::mover::{CopySide, Mover};
use super::negotiate::Piece;
use super::placement::PlacementPlan;
use clock::Clock;
use dma::DmaApi;
use dmabuf::buf::DmaBuf;
use dmabuf::error::DmaBufError;
use fence::{DmaResv, DmaResvUsage, FenceError, Interrupt, ResvError, ResvGuard};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uapi::AsErrno;

/// What started a migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum MigrationCause {
    /// A device attached that the placement did not serve.
    LateAttach {
        /// The device.
        device: String,
    },
    /// A map found the placement did not serve the attached devices.
    Map {
        /// The mapping device.
        device: String,
    },
    /// The exporter's owner asked (an eviction, a defragmentation).
    Requested {
        /// Why.
        reason: String,
    },
    /// A device detached whose needs had moved the buffer: it goes back to the cheaper
    /// placement the devices still attached are served by (CMA, a carveout or low memory
    /// given back).
    Detach {
        /// The device that left.
        device: String,
    },
}

impl std::fmt::Display for MigrationCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrationCause::LateAttach { device } => write!(f, "late attach of {device}"),
            MigrationCause::Map { device } => write!(f, "map by {device}"),
            MigrationCause::Requested { reason } => write!(f, "requested: {reason}"),
            MigrationCause::Detach { device } => {
                write!(f, "move back after the detach of {device}")
            }
        }
    }
}

/// One migration that happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationEvent {
    /// The buffer's number ([`DmaBuf::ino`]).
    pub buffer: u64,
    /// Where it was.
    pub from: PlacementSummary,
    /// Where it is now.
    pub to: PlacementSummary,
    /// Bytes copied.
    pub bytes: u64,
    /// Nanoseconds from the start of the drain to the end of the move (maps stalled meanwhile):
    /// the drain as the machine's clock saw it, and at least [`copy_ns`](Self::copy_ns).
    pub stall_ns: u64,
    /// Nanoseconds of the copy alone, on the machine's time model (the copying engine's latency
    /// and bandwidth, [`soc::timing::copy_ns`]): what a scheduler charges to that engine.
    pub copy_ns: u64,
    /// The engine that copied (a device name, or `"cpu"`).
    pub engine: String,
    /// Why.
    pub cause: MigrationCause,
    /// The layout change the copy made (`"modifier a -> b (...)"`, `"pitch [..] -> [..]"`),
    /// if the buffer was re-laid out on the way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relayout: Option<String>,
}

/// A migration that was refused or failed; the old placement stayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationFailure {
    /// The buffer's number.
    pub buffer: u64,
    /// Why it was attempted.
    pub cause: MigrationCause,
    /// The errno returned (`"EBUSY"`, `"ENOMEM"`, ...).
    pub errno: String,
    /// The explanation.
    pub reason: String,
    /// Nanoseconds spent before giving up.
    pub stall_ns: u64,
}

/// Migrations of one or more buffers, in order (share one `Arc` between exporters for a
/// machine-wide report).
#[derive(Debug, Default)]
pub struct MigrationLog {
    events: Mutex<Vec<MigrationEvent>>,
    failures: Mutex<Vec<MigrationFailure>>,
}

impl MigrationLog {
    /// An empty log.
    pub fn new() -> MigrationLog {
        MigrationLog::default()
    }

    /// Records a migration.
    pub fn push(&self, ev: MigrationEvent) {
        self.events.lock().push(ev);
    }

    /// Records a refused or failed migration.
    pub fn push_failure(&self, f: MigrationFailure) {
        self.failures.lock().push(f);
    }

    /// The migrations so far.
    pub fn events(&self) -> Vec<MigrationEvent> {
        self.events.lock().clone()
    }

    /// The refused or failed migrations so far.
    pub fn failures(&self) -> Vec<MigrationFailure> {
        self.failures.lock().clone()
    }
}

/// Nanoseconds since `t0` on `clock`, saturating.
pub(crate) fn ns_since(clock: &dyn Clock, t0: u64) -> u64 {
    clock.now_ns().saturating_sub(t0)
}

/// Waits until every fence of `resv` (any usage: a move conflicts with every access) has
/// signaled, or `deadline` passes, or `intr` is raised. Needs no lock; may be called with the
/// resv lock held (the fence contract forbids signallers to need it).
///
/// Errors: [`ConstraintError::Busy`] naming the pending fences at the deadline;
/// [`ConstraintError::Interrupted`].
pub fn wait_fences(
    clock: &dyn Clock,
    resv: &DmaResv,
    deadline: u64,
    intr: Option<&Interrupt>,
) -> Result<(), ConstraintError> {
    let left = clock::remaining(clock, deadline);
    match resv.wait_timeout(DmaResvUsage::Bookkeep, intr, Some(left)) {
        Ok(_) => Ok(()),
        Err(ResvError::Fence(FenceError::Interrupted)) => Err(ConstraintError::Interrupted(
            "waiting for the buffer's fences before moving it".into(),
        )),
        Err(ResvError::Fence(FenceError::Timeout)) => {
            let pending: Vec<String> = resv
                .get_fences(DmaResvUsage::Bookkeep)
                .iter()
                .map(|f| format!("{}:{}#{}", f.driver_name(), f.timeline_name(), f.seqno()))
                .collect();
            Err(ConstraintError::Busy(format!(
                "fences still pending when the drain timed out: {}",
                pending.join(", ")
            )))
        }
        Err(e) => Err(ConstraintError::Lower {
            errno: e.errno().raw(),
            msg: e.to_string(),
        }),
    }
}

/// The result of [`move_backing`].
#[derive(Debug)]
pub struct Moved {
    /// The new memory, holding the buffer's bytes.
    pub backing: Backing,
    /// The engine that copied.
    pub engine: String,
    /// How long the copy takes on the machine's time model ([`soc::timing::copy_ns`] for the
    /// engine that copied), or what the machine's clock saw pass if that was longer.
    pub copy: Duration,
    /// Bytes copied.
    pub bytes: u64,
}

/// Moves a buffer's bytes from `old` to a new allocation of `plan`. The caller holds the
/// buffer's resv lock (`resv`), has drained every access it must not lose (fences, static
/// importers, pins), and blocks its own CPU fault path while this runs.
///
/// Steps, in order:
/// 1. allocate `plan` ([`Backing::allocate`]); failure: `ENOMEM`, nothing happened;
/// 2. [`DmaBuf::move_notify`]: dynamic importers drop their mappings;
/// 3. `invalidate()`: the caller drops its cached mappings of `old`;
/// 4. [`DmaBuf::zap_mappings`]: CPU mappings fault again on their next touch;
/// 5. copy `min(old, new)` bytes with `mover`, zero the rest of the new memory; failure: the
///    new memory is freed and the error returned (importers re-map `old`, unchanged).
///
/// The caller then switches to the new backing and frees `old` once no table maps it.
pub fn move_backing(
    dma: &DmaApi,
    buf: &DmaBuf,
    resv: &mut ResvGuard<'_>,
    old: &Backing,
    plan: &PlacementPlan,
    mover: &dyn Mover,
    invalidate: &mut dyn FnMut() -> Result<(), DmaBufError>,
) -> Result<Moved, ConstraintError> {
    move_backing_pieces(dma, buf, resv, old, plan, mover, invalidate, None)
}

/// [`move_backing`] that copies only `pieces` (a layout conversion, [`Piece`]) when given,
/// and zeroes the new memory first; `None` copies the bytes as they are.
#[allow(clippy::too_many_arguments)]
pub fn move_backing_pieces(
    dma: &DmaApi,
    buf: &DmaBuf,
    resv: &mut ResvGuard<'_>,
    old: &Backing,
    plan: &PlacementPlan,
    mover: &dyn Mover,
    invalidate: &mut dyn FnMut() -> Result<(), DmaBufError>,
    pieces: Option<&[Piece]>,
) -> Result<Moved, ConstraintError> {
    let new = Backing::allocate(dma, plan)?;
    let undo = |e: ConstraintError| {
        new.free(dma);
        e
    };
    buf.move_notify(resv).map_err(|e| undo(e.into()))?;
    invalidate().map_err(|e| undo(e.into()))?;
    buf.zap_mappings();
    let clock = &**dma.soc().clock();
    let t0 = clock.now_ns();
    let old_runs = old.runs();
    let new_runs = new.runs();
    let from = CopySide {
        runs: &old_runs,
        iomem: old.is_iomem(),
    };
    let to = CopySide {
        runs: &new_runs,
        iomem: new.is_iomem(),
    };
    let (engine, bytes) = match pieces {
        None => {
            let bytes = old.mapped_len().min(new.mapped_len());
            (mover.copy(dma, from, to, bytes).map_err(undo)?, bytes)
        }
        Some(pieces) => {
            // Padding and tile remainders of the new layout read as zeroes.
            new.zero_from(dma, 0).map_err(undo)?;
            let bytes = pieces.iter().map(|p| p.len).sum();
            (
                mover.copy_pieces(dma, from, to, pieces).map_err(undo)?,
                bytes,
            )
        }
    };
    let zero_from = if pieces.is_some() { u64::MAX } else { bytes };
    // What the copy costs on the machine's time model (the engine's latency and bandwidth, or
    // the CPU's), recorded for whoever schedules the stall; at least what the clock saw pass.
    let modelled = soc::timing::copy_ns(dma.soc(), &engine, bytes);
    let copy = Duration::from_nanos(modelled.max(ns_since(clock, t0)));
    if new.mapped_len() > zero_from {
        new.zero_from(dma, zero_from).map_err(undo)?;
    }
    Ok(Moved {
        backing: new,
        engine,
        copy,
        bytes,
    })
}
