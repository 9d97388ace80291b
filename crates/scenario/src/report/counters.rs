//! Counters over time: `report.json`'s `counters` and the trace's counter tracks.
//!
//! The runner samples the machine every `every_frames` frames of the first source (bounded:
//! at most 128 samples and a last one at the end of the run, whatever its length; the series
//! and where each comes from are in the runner's `counters` module, listed in
//! [`model`](super::model)). The report keeps them by column: one `frames` and one `t_us`
//! array, then one `values` array per series, aligned with them (a series that appears later,
//! a process started mid-run, is 0 before).

use super::trace::Trace;
use crate::clock::VirtualTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One counter's values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterSeries {
    /// `"bank dram0 used"`, `"process camera dma-buf pss"`, `"queue isp <- camera->isp"`...
    pub name: String,
    /// `"bytes"`, `"buffers"` or `"bytes/s"`.
    pub unit: String,
    /// One value per sample.
    pub values: Vec<f64>,
}

/// Every counter's samples (module doc).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CountersReport {
    /// Frames of the first source between samples.
    pub every_frames: u64,
    /// The frame of each sample.
    pub frames: Vec<u64>,
    /// The virtual time of each sample, microseconds.
    pub t_us: Vec<f64>,
    /// The series, by name.
    pub series: Vec<CounterSeries>,
}

impl CountersReport {
    /// The series named `name`.
    pub fn series(&self, name: &str) -> Option<&CounterSeries> {
        self.series.iter().find(|s| s.name == name)
    }

    /// Records every sample as a counter event of `trace` (one counter track per series), on
    /// the run's own Perfetto process.
    pub fn to_trace(&self, trace: &mut Trace) {
        self.to_trace_owned(trace, &BTreeMap::new());
    }

    /// [`to_trace`](Self::to_trace), each series named in `owners` on that Perfetto process
    /// (`"process camera-service"`), the others on the run's own.
    pub fn to_trace_owned(&self, trace: &mut Trace, owners: &BTreeMap<String, String>) {
        for s in &self.series {
            let name = format!("{} ({})", s.name, s.unit);
            for (&t, &v) in self.t_us.iter().zip(&s.values) {
                let at = VirtualTime::from_ns((t * 1000.0).round() as u64);
                match owners.get(&s.name) {
                    Some(p) => trace.counter_in(p, &name, at, v),
                    None => trace.counter(&name, at, v),
                }
            }
        }
    }
}
