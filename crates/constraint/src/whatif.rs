//! The what-if query: what would happen to a buffer if a device attached now.
//!
//! [`ConstraintExporter::what_if`] combines the buffer's current records with the candidate
//! device's, plans the placement that would serve everyone, and says whether the buffer would be
//! allocated at first map, stay, migrate or be refused (with the error attach would return). It
//! takes the exporter's state lock only to copy the records and the current placement, and
//! allocates nothing: tools (`dmabuf explain`, a compositor deciding whether to scan out
//! directly) may call it at any time.

use super::backing::PlacementSummary;
use super::combine::CombinedRecord;
use super::explain::ConstraintError;
use super::exporter::ConstraintExporter;
use super::placement::{plan, PlacementPlan};
use super::record::{ConstraintRecord, ImporterNeeds};
use serde::{Deserialize, Serialize};
use soc::Device;

/// What would happen if a device attached now (the what-if query).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum WhatIfAction {
    /// No storage yet: the first map would allocate the plan.
    AllocateAtFirstMap,
    /// The current placement serves the device too.
    Stays,
    /// The buffer would migrate to the plan.
    Migrates,
    /// The attach would be refused.
    Refused {
        /// Why (the error attach would return).
        error: ConstraintError,
    },
}

/// The answer of [`ConstraintExporter::what_if`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatIf {
    /// The device asked about.
    pub device: String,
    /// The combined record with it.
    pub combined: CombinedRecord,
    /// The placement the buffer would have (the cheapest that serves everyone).
    pub plan: Option<PlacementPlan>,
    /// Where the buffer is now.
    pub current: Option<PlacementSummary>,
    /// What the current placement does not meet.
    pub unmet: Vec<String>,
    /// What would happen.
    pub action: WhatIfAction,
}

impl ConstraintExporter {
    /// The what-if query: what placement would the buffer have if `dev` attached now with
    /// `needs`, and would it stay, migrate or be refused? Allocates nothing.
    pub fn what_if(&self, dev: &Device, needs: ImporterNeeds) -> WhatIf {
        let rec = ConstraintRecord::of_device(dev).with_needs(needs);
        let st = self.state.lock();
        let mut records = st.all_records();
        records.push(rec);
        let combined = CombinedRecord::combine(&records, self.layout.planes.len());
        let current = st.current.as_ref().map(|g| g.backing.summary());
        let unmet_now = self.unmet_for(&st, &records);
        let has_storage = st.current.is_some();
        drop(st);
        let (unmet, planned) = match unmet_now {
            Ok((unmet, layout, _)) => (unmet, plan(&records, &layout, self.dma.soc())),
            Err(e) => (Vec::new(), Err(e)),
        };
        let action = match (&planned, has_storage, unmet.is_empty()) {
            (Err(e), _, _) => WhatIfAction::Refused { error: e.clone() },
            (Ok(_), false, _) => WhatIfAction::AllocateAtFirstMap,
            (Ok(_), true, true) => WhatIfAction::Stays,
            (Ok(_), true, false) if self.policy.may_migrate() => WhatIfAction::Migrates,
            (Ok(_), true, false) => WhatIfAction::Refused {
                error: self.fixed(dev.name(), unmet.clone()),
            },
        };
        WhatIf {
            device: dev.name().to_string(),
            combined,
            plan: planned.ok(),
            current,
            unmet,
            action,
        }
    }
}
