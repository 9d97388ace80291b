//! Latency per source: `latency_us.per_source` of a run with several cameras, each camera's
//! delivered frames alone (the run's `latency_us` mixes them), and the series `latency.svg`
//! draws one line each.

use super::model::{FrameLatency, LatencyReport};
use serde::{Deserialize, Serialize};

/// One source's latency (as [`LatencyReport`], for its frames only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceLatency {
    /// The source (camera) node.
    pub source: String,
    /// Median, virtual microseconds.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Its delivered frames, by frame number (sampled as the run's `per_frame` is).
    pub per_frame: Vec<FrameLatency>,
    /// The sampling stride of `per_frame` (absent while 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub per_frame_every: u64,
}

fn one() -> u64 {
    1
}

fn is_one(v: &u64) -> bool {
    *v == 1
}

impl SourceLatency {
    /// Source `source`'s entry from the report of its frames alone.
    pub fn new(source: &str, l: LatencyReport) -> SourceLatency {
        SourceLatency {
            source: source.to_string(),
            p50: l.p50,
            p99: l.p99,
            max: l.max,
            per_frame: l.per_frame,
            per_frame_every: l.per_frame_every,
        }
    }
}

/// The latency series `latency.svg` draws: `(source, points)`, one per source when the report
/// has them, else one for the whole run (named `""`).
pub(crate) fn latency_series(l: &LatencyReport) -> Vec<(&str, &[FrameLatency])> {
    if l.per_source.is_empty() {
        vec![("", &l.per_frame[..])]
    } else {
        l.per_source
            .iter()
            .map(|s| (s.source.as_str(), &s.per_frame[..]))
            .collect()
    }
}
