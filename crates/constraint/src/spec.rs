//! What an export asks the constraint-solving exporter for: an [`ExportSpec`].
//!
//! # The concept
//! A buffer is described once, at export, by what its user knows then: its size and planes
//! (a [`Layout`]), when to allocate and whether it may move ([`Policy`]), how a migration
//! waits and copies ([`MigrationConfig`]), and, when the image's layout is not fixed, the
//! [`Negotiation`] of format modifier and pitch with every device that attaches. What the
//! devices need is not part of the spec: it arrives with their attachments.
//!
//! # Locking and lifetime
//! A plain value, consumed by [`ConstraintExporter::export`](super::ConstraintExporter::export);
//! the shared [`MigrationLog`] it may carry outlives the buffer.

use super::layout::Layout;
use super::migrate::MigrationLog;
use super::negotiate::Negotiation;
use super::policy::{MigrationConfig, Policy};
use std::sync::Arc;

/// What [`ConstraintExporter::export`](super::ConstraintExporter::export) is asked for.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    /// Exporter name (`exp_name`).
    pub exp_name: String,
    /// Size and planes.
    pub layout: Layout,
    /// When to allocate, whether to move.
    pub policy: Policy,
    /// How migrations wait and copy.
    pub config: MigrationConfig,
    /// Where migrations are recorded (a new log if `None`).
    pub log: Option<Arc<MigrationLog>>,
    /// Keep importers' mappings after they unmap (seed 003: a re-map costs a lookup); they are
    /// really unmapped when the buffer moves or the attachment detaches. A cached writable
    /// mapping is still a live DMA mapping: two devices writing the buffer at different times
    /// then overlap in the DMA checker's eyes, so exporters shared by several writers turn
    /// this off.
    pub cache_mappings: bool,
    /// The image whose layout (format modifier, pitch) the exporter negotiates with every
    /// attached device ([`Negotiation`]); `None`: `layout` is fixed and pitches are only
    /// checked.
    pub negotiation: Option<Negotiation>,
    /// The buffer's size is at least this (a dma-buf never grows: room for a layout a late
    /// device may need, a larger pitch say); 0: the layout's size.
    pub reserve: u64,
}

impl ExportSpec {
    /// A single-plane buffer of `size` bytes, [`Policy::Deferred`], default migration settings.
    pub fn new(size: u64) -> ExportSpec {
        ExportSpec::with_layout(Layout::single(size))
    }

    /// A buffer with `layout`.
    pub fn with_layout(layout: Layout) -> ExportSpec {
        ExportSpec {
            exp_name: "constraint".into(),
            layout,
            policy: Policy::Deferred,
            config: MigrationConfig::default(),
            log: None,
            cache_mappings: true,
            negotiation: None,
            reserve: 0,
        }
    }

    /// Negotiating the image's layout ([`Negotiation`]).
    pub fn negotiate(mut self, negotiation: Negotiation) -> ExportSpec {
        self.negotiation = Some(negotiation);
        self
    }

    /// With the buffer's size at least `bytes`.
    pub fn reserve(mut self, bytes: u64) -> ExportSpec {
        self.reserve = bytes;
        self
    }

    /// With a policy.
    pub fn policy(mut self, policy: Policy) -> ExportSpec {
        self.policy = policy;
        self
    }

    /// With migration settings.
    pub fn config(mut self, config: MigrationConfig) -> ExportSpec {
        self.config = config;
        self
    }

    /// With or without the mapping cache.
    pub fn cache_mappings(mut self, on: bool) -> ExportSpec {
        self.cache_mappings = on;
        self
    }

    /// Recording into `log`.
    pub fn log(mut self, log: Arc<MigrationLog>) -> ExportSpec {
        self.log = Some(log);
        self
    }
}
