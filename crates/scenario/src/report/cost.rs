//! What a migration's copy cost the pipeline, as the report gives it (`migrations[].delayed`,
//! `migrations[].frames_cost`): the jobs it delayed on its engine's lane, each measured on the
//! virtual clock, and the frames that delay made late or dropped. The runner's side, and how
//! "would have started without the copy" is computed, is `run::migcost`.

use serde::{Deserialize, Serialize};

/// A job a migration's copy delayed on the engine's lane they share.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DelayedJob {
    /// The node whose job it was.
    pub node: String,
    /// The source (camera) of the frame the job worked on, if it worked on a captured frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// That frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
    /// When the job would have started without this copy on the lane, virtual µs.
    pub would_start_us: f64,
    /// When it started.
    pub started_us: f64,
    /// `started_us - would_start_us`: what the copy cost it.
    pub delay_us: f64,
}

/// A frame a migration's copy made late or dropped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameCost {
    /// The source (camera) of the frame.
    pub source: String,
    /// The frame.
    pub frame: u64,
    /// The node where it happened: the display that showed it late, or the source that
    /// dropped it.
    pub node: String,
    /// `"missed_vblank"` (shown a refresh or more after the vblank it would have made) or
    /// `"dropped"` (with the node's drop cause in `cause`).
    pub what: String,
    /// The drop cause at `node` (`"queue_full"`), for a dropped frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Why, with the virtual times that show it.
    pub why: String,
}

/// The most entries `delayed` and `frames_cost` list per migration (the lowest in time);
/// `cost_us` always sums every delayed job.
pub const COST_ENTRIES: usize = 64;
