//! The report's `groups`: each `[[groups]]` entry's heap and VRAM accounting at the end of
//! the run (the runner's `limits` module says where each figure comes from).

use serde::{Deserialize, Serialize};

/// One group of processes and what was charged to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The group's name.
    pub name: String,
    /// The processes in it, in scenario order.
    pub processes: Vec<String>,
    /// `memory.current` at the end: dma-heap bytes still charged (0 after a clean teardown).
    pub heap_current: u64,
    /// `memory.max`: the heap limit, absent for none.
    pub heap_max: Option<u64>,
    /// `memory.peak`: the most heap bytes charged at once.
    pub heap_peak: u64,
    /// The `max` line of `memory.events`: allocations (or charge transfers) the limit refused.
    pub heap_failcnt: u64,
    /// The group's VRAM in each GPU its processes allocated on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vram: Vec<GroupVram>,
}

/// A group's VRAM in one GPU's region (`dmem.*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupVram {
    /// The GPU's device.
    pub device: String,
    /// The dmem region (`drm/gpu0/vram0`).
    pub region: String,
    /// `dmem.current` at the end.
    pub current: u64,
    /// `dmem.max`: the VRAM limit, absent for none.
    pub max: Option<u64>,
    /// The most VRAM bytes charged at once.
    pub peak: u64,
    /// The group's own buffers evicted because it hit its limit.
    pub evictions: u64,
    /// VRAM charges refused with nothing of its own left to evict (the buffer went to GTT,
    /// or a VRAM-only one failed).
    pub failures: u64,
}
