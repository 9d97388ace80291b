//! `[[groups]]` and `[[processes]]`: the per-process (or per-group) limits recent kernels put
//! on buffer memory, as a scenario writes them.
//!
//! A **group** is a cgroup: a limit on the dma-heap memory charged to its processes
//! (`memory.max` of the memory controller, [`kernel::memcg`]) and a limit on the VRAM its
//! processes' GPU buffers take in each GPU's VRAM region (`dmem.max` of the dmem controller,
//! [`drivers::gpu::dmem`]). A **process** entry puts one of the scenario's processes (a node's
//! `process`, or its name) in a group, and may name a process it allocates for (`charge_to`):
//! an allocator service whose heap buffers are billed to its client, as binder's
//! `BINDER_FD_FLAG_XFER_CHARGE` does for gralloc.

use serde::{Deserialize, Serialize};
use soc::ByteSize;

/// `[[groups]]`: one cgroup with its limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDesc {
    /// The group's name (a cgroup directory: no `/`).
    pub name: String,
    /// `memory.max`: dma-heap bytes its processes may have charged at once; an allocation
    /// past it fails with `ENOMEM`. Omitted: no limit (still accounted).
    #[serde(default)]
    pub heap_limit: Option<ByteSize>,
    /// `dmem.max` in each GPU's VRAM region: VRAM bytes its processes' GPU buffers may take;
    /// past it the group's own least recently used buffers are evicted. Omitted: no limit.
    /// Charged only for buffers its processes allocate from a `gpu`-exporter link (a GPU's
    /// import of another exporter's buffer stays in GTT, never charged), so a group with no
    /// such process is refused (`EINVAL`).
    #[serde(default)]
    pub vram_limit: Option<ByteSize>,
}

/// `[[processes]]`: a process of the scenario and the group it runs in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessDesc {
    /// The process: a node's `process` (or the name of a node without one).
    pub name: String,
    /// The `[[groups]]` entry it is in (`cgroup.procs`); omitted: the root group, never
    /// limited.
    #[serde(default)]
    pub group: Option<String>,
    /// The process it allocates for: every heap buffer it allocates has its charge handed to
    /// that process's group (`dma_buf_transfer_charge`).
    #[serde(default)]
    pub charge_to: Option<String>,
}
