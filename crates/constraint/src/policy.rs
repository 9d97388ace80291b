//! Placement policies and migration settings.
//!
//! Seed 002 argues both sides: "reallocate this memory when a new device shows up; if that is not
//! possible, you'll simply get an error" against V4L2's rule that memory is allocated up front so
//! that failure shows early ("you know immediately if you can get the memory or not"). Both are
//! offered:
//!
//! | policy | allocates | a late attach the placement does not serve |
//! |---|---|---|
//! | [`Policy::Deferred`] (default) | at the first map / CPU fault | migrates (or `EBUSY`/`ENOMEM`, nothing lost) |
//! | [`Policy::UpFront`] | at export, for the devices listed | refused, `EBUSY`, naming what is unmet |
//! | [`Policy::NoMigrate`] | at the first map / CPU fault | refused, `EBUSY`, naming what is unmet |
//!
//! A conflict among the records themselves is refused at attach under every policy.

use super::mover::{DmaEngineMover, Mover};
use super::record::ImporterNeeds;
use fence::Interrupt;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A device expected to use an [`UpFront`](Policy::UpFront) buffer, with its needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDevice {
    /// The device's name.
    pub device: String,
    /// What its importer adds.
    #[serde(default)]
    pub needs: ImporterNeeds,
    /// Whether its importer accepts device memory (`peer2peer`).
    #[serde(default)]
    pub peer2peer: bool,
}

impl KnownDevice {
    /// A device with no extra needs.
    pub fn new(device: &str) -> KnownDevice {
        KnownDevice {
            device: device.to_string(),
            needs: ImporterNeeds::default(),
            peer2peer: false,
        }
    }

    /// With needs.
    pub fn with_needs(mut self, needs: ImporterNeeds) -> KnownDevice {
        self.needs = needs;
        self
    }
}

/// When storage is allocated and whether it may move (module table).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum Policy {
    /// Allocate at first use; migrate on a late attach.
    #[default]
    Deferred,
    /// Allocate at export for these devices; refuse attaches the placement does not serve.
    UpFront {
        /// The devices known at export.
        devices: Vec<KnownDevice>,
    },
    /// Allocate at first use; never move.
    NoMigrate,
}

impl Policy {
    /// Whether a late attach may move the buffer.
    pub fn may_migrate(&self) -> bool {
        matches!(self, Policy::Deferred)
    }

    /// The policy's name (`"deferred"`, `"up-front"`, `"no-migrate"`).
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Deferred => "deferred",
            Policy::UpFront { .. } => "up-front",
            Policy::NoMigrate => "no-migrate",
        }
    }
}

/// How a migration waits and copies.
#[derive(Clone)]
pub struct MigrationConfig {
    /// How long a migration waits for fences, static importers' unmaps and pins to drain before
    /// giving up with `EBUSY` (seed 000: "put_scatterlist in a finite time").
    pub drain_timeout: Duration,
    /// Raised, it interrupts the wait (`ERESTARTSYS`).
    pub interrupt: Option<Interrupt>,
    /// What copies the bytes.
    pub mover: Arc<dyn Mover>,
}

impl Default for MigrationConfig {
    /// 100 ms to drain, not interruptible, a DMA engine chosen per move (CPU fallback).
    fn default() -> Self {
        MigrationConfig {
            drain_timeout: Duration::from_millis(100),
            interrupt: None,
            mover: Arc::new(DmaEngineMover::auto()),
        }
    }
}

impl fmt::Debug for MigrationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrationConfig")
            .field("drain_timeout", &self.drain_timeout)
            .field("interruptible", &self.interrupt.is_some())
            .field("mover", &self.mover)
            .finish()
    }
}
