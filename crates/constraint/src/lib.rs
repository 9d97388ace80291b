//! The constraint-solving exporter: deferred allocation, placement for every attached device,
//! migration on late attach.
//!
//! C side: none upstream. This is the "default dma_buf exporter" seed 002 asks for (built on
//! `dma_alloc_attrs_for_devices`-style constraint combining), with the migration seed 000
//! describes; the move itself follows TTM (`drivers/gpu/drm/ttm/ttm_bo.c`) and the dma-buf rules
//! of `drivers/dma-buf/dma-buf.c` (`move_notify` under the resv lock, static importers pinned
//! while mapped).
//!
//! # The concept
//! Seed 000's order of events: an exporter creates the buffer *without storage*; importers
//! attach (each attachment is a [`ConstraintRecord`]: what the device can reach plus what the
//! importer needs for this buffer); the first map looks at every record, combines them
//! ([`CombinedRecord`]: masks AND, contiguity OR, alignments LCM, segment limits min, banks
//! intersected per plane), and places the buffer where everyone can reach it, cheapest first
//! ([`plan`], [`Source`]). When a device with stricter needs attaches later, the exporter waits
//! until nobody uses the buffer, moves it, and lets the pipeline go on: "the video pipe might
//! stutter a bit ... but it should Just Work". When it cannot, the caller gets `EBUSY` or
//! `ENOMEM`, explained ([`ConstraintError`], [`Conflict`]), and nothing is lost.
//!
//! Userspace can ask first: [`ConstraintExporter::what_if`] answers "what would the placement be
//! if device X attached now?" without allocating, and [`plan`] does it for a set of records
//! before any buffer exists.
//!
//! # The migration contract
//! 1. **Refuse what is certain at attach.** An attach whose record conflicts with the others
//!    (no bank left, a mask below every allowed bank, a bad alignment, ...) fails at attach with
//!    the explanation, under every [`Policy`]. A failure that depends on the memory's state
//!    (fragmentation, a busy CMA range) shows at map or at migration, as `ENOMEM`.
//! 2. **The gate.** A late attach the current placement does not serve closes the gate (phase
//!    *draining*): new maps and pins stall — they cannot wait with the resv lock held (the
//!    holders they would wait for need it to unmap), so a map finishes the move itself if
//!    everything drained, else fails at once with `EBUSY` ("map again after they unmap").
//! 3. **The drain, bounded and interruptible.** Without the resv lock, the attach waits for
//!    every fence of the reservation object (any usage), for static importers to unmap (seed
//!    000: `put_scatterlist` in finite time), for dynamic importers' pins and kernel vmaps to
//!    go, at most [`MigrationConfig::drain_timeout`]; then `EBUSY`, or `ERESTARTSYS` if
//!    [`MigrationConfig::interrupt`] is raised.
//! 4. **Whoever holds the resv lock when the drain completes moves.** The attach takes the resv
//!    lock, re-checks, and moves; a map that finds the drain complete moves in its place.
//! 5. **The move** ([`move_backing`]), resv held: allocate the new placement; `move_notify`
//!    dynamic importers; invalidate cached mappings; zap CPU mmaps (their next touch faults,
//!    and faults wait until the move ends); copy the bytes with a DMA engine ([`Mover`]); then
//!    switch, free the old storage (or keep it as a *ghost* until a dynamic importer that
//!    ignored `move_notify` unmaps it), record a [`MigrationEvent`], reopen the gate.
//! 6. **Nothing is lost.** If the new placement cannot be allocated, the copy fails, or access
//!    does not drain in time: the attach fails with `ENOMEM`/`EBUSY`, the old placement stays,
//!    every existing importer keeps working, no byte changes, and a [`MigrationFailure`] is
//!    logged.
//! 7. **Pinned means fixed.** Static importers are pinned while mapped, dynamic importers while
//!    they hold a pin; neither ever sees its memory move.
//!
//! Lock order: the buffer's **resv lock**, then the exporter's **state lock** (a leaf: never
//! held while calling the core, an importer or a [`Mover`]). The gate's waits sleep on the state
//! lock's condition variable with no other lock held. The deadlock rule 2 avoids, in three lines:
//! ```text
//! map():    resv.lock(); wait until drained            // holds resv, waits for isp0's unmap
//! isp0:     unmap_unlocked() -> resv.lock()            // waits for the mapper's resv
//! attach(): waits for the drain                        // nobody moves: all three stall
//! ```
//!
//! # Example: a late display forces a move to CMA
//! ```
//! use dma::DmaDirection;
//! use constraint::{ConstraintExporter, ExportSpec, Source};
//! use dmabuf::testing::mock_dma;
//!
//! let dma = mock_dma();
//! let (buf, exp) = ConstraintExporter::export(&dma, ExportSpec::new(1 << 20))?;
//! let isp = buf.attach(&dma.device("isp0")?)?;
//! let sgt = isp.map_unlocked(DmaDirection::Bidirectional)?;   // first map: scattered pages
//! dma.device_write(isp.device(), sgt.dma_address().unwrap(), b"frame 1")?;
//! isp.unmap_unlocked(sgt)?;
//!
//! let display = buf.attach(&dma.device("display0")?)?;        // no IOMMU, 30-bit: migrates
//! let place = exp.placement().unwrap();
//! assert!(matches!(place.groups[0].source, Source::Cma { .. }));
//! let sgt = display.map_unlocked(DmaDirection::ToDevice)?;
//! let mut got = [0u8; 7];
//! dma.device_read(display.device(), sgt.dma_address().unwrap(), &mut got)?;
//! assert_eq!(&got, b"frame 1");
//! display.unmap_unlocked(sgt)?;
//! assert_eq!(exp.log().events().len(), 1);
//! assert_eq!(dma.checker().total(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Map of the module
//! * `record`: [`ConstraintRecord`], [`ImporterNeeds`], [`BankRule`].
//! * `layout`: [`Layout`] (planes), [`Group`].
//! * `combine`: [`CombinedRecord`], [`Bound`].
//! * `placement`: [`plan`], [`PlacementPlan`], [`Source`].
//! * `backing`: [`Backing`] (allocated memory), [`PlacementSummary`].
//! * `explain`: [`ConstraintError`], [`Conflict`].
//! * `mover`, `migrate`: [`Mover`], [`DmaEngineMover`], [`CpuMover`], [`move_backing`],
//!   [`wait_fences`], [`MigrationEvent`], [`MigrationLog`] — reusable by any moving exporter.
//! * `negotiate`: [`negotiate`], [`Negotiation`], [`ImageLayouts`], [`Negotiated`]: the
//!   format modifier and pitch every attached device can use, and the re-layout of a late
//!   attach.
//! * `policy`: [`Policy`], [`MigrationConfig`].
//! * `exporter`, `ops`, `gate`: [`ConstraintExporter`] and its callbacks.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backing;
mod combine;
mod explain;
mod exporter;
mod gate;
mod layout;
mod migrate;
mod mover;
mod negotiate;
mod ops;
mod placement;
mod policy;
mod reason;
mod record;
mod spec;
mod whatif;

pub use backing::{Backing, GroupBacking, GroupSummary, PlacementSummary};
pub use combine::{lcm, record_conflicts, Bound, CombinedRecord};
pub use explain::{Conflict, ConstraintError};
pub use exporter::{ConstraintExporter, ExportSpec};
pub use layout::{Group, Layout, PlaneLayout};
pub use migrate::{
    move_backing, move_backing_pieces, wait_fences, MigrationCause, MigrationEvent,
    MigrationFailure, MigrationLog, Moved,
};
pub use mover::{CopySide, CpuMover, DmaEngineMover, Mover};
pub use negotiate::{
    negotiate, ImageLayouts, Negotiated, Negotiation, PassedOver, Piece, MOD_LINEAR,
};
pub use placement::{plan, GroupPlan, PlacementPlan, Source};
pub use policy::{KnownDevice, MigrationConfig, Policy};
pub use reason::{ConstraintLine, GroupReason, PlacementReason, REASON_MAX_RANGES};
pub use record::{BankRule, ConstraintRecord, ImporterNeeds};
pub use whatif::{WhatIf, WhatIfAction};
