//! The scenario's `[[groups]]` and `[[processes]]` in a run: memory cgroups with a heap limit
//! ([`kernel::memcg`]) and, in each GPU's VRAM region, dmem groups with a VRAM limit
//! ([`drivers::gpu::dmem`]).
//!
//! # The concept
//! 1. At boot each `[[groups]]` entry becomes a memory cgroup (`mkdir`, `memory.max` =
//!    `heap_limit`) and each `[[processes]]` entry moves its process into its group
//!    (`cgroup.procs`) before anything is allocated. The kernel then charges every dma-heap
//!    buffer a process of the group allocates, whole, and refuses the one past the limit with
//!    `ENOMEM`: the run fails at that allocation (`[expect] error = "ENOMEM"`).
//! 2. A process with `charge_to` is an allocator service: right after each heap buffer it
//!    allocates, it hands the buffer's charge to its client's group
//!    (`dma_buf_transfer_charge`; `ENOMEM` if the client's group cannot take it, and then the
//!    run fails too). Only heap buffers are charged (module rule 1 of [`kernel::memcg`]).
//! 3. A GPU buffer (a link with `exporter = "gpu"`) is created in the dmem group of its
//!    allocating process's group, in that GPU's VRAM region (made on first use, `dmem.max` =
//!    `vram_limit`): past the limit the group's own least recently used buffers are evicted,
//!    never another group's. A process in no group allocates ungrouped (the root cgroup).
//!    A GPU's import of a buffer another exporter made (`Gpu::import`) stays on that
//!    exporter's pages in GTT and is charged nothing, as in the kernel (TTM charges only a VRAM
//!    placement, to its allocating task): validation refuses a `vram_limit` on a group that
//!    allocates no GPU buffer, since it could never act.
//! 4. The report's `groups` lists every group at the end of the run: heap `current` (what is
//!    still charged after teardown: 0 unless a buffer leaked), `max`, `peak` and `failcnt`,
//!    and per GPU the VRAM `current`, `max`, `peak`, evictions and refusals. The counters
//!    sample `group NAME heap` and `group NAME vram` over time.
//!
//! # Lifetime
//! [`Limits`] lives in the run's [`World`](super::world::World) and is dropped with it; the
//! groups it holds are the kernel's and the GPU drivers' own objects.

use super::world::RunFailure;
use crate::report::{GroupReport, GroupVram};
use crate::Scenario;
use drivers::gpu::{DmemGroup, Gpu};
use kernel::{Fd, Kernel, MemCgroup, Process};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One `[[groups]]` entry at run time.
struct GroupRt {
    name: String,
    memcg: Arc<MemCgroup>,
    vram_limit: Option<u64>,
    /// Its dmem group per GPU device, made on first use.
    dmem: BTreeMap<String, Arc<DmemGroup>>,
    processes: Vec<String>,
}

/// The run's groups and who is in which (module doc).
#[derive(Default)]
pub(crate) struct Limits {
    groups: Vec<GroupRt>,
    /// Process name -> index in `groups`.
    member: BTreeMap<String, usize>,
    /// Process name -> the process its heap charges go to.
    charge_to: BTreeMap<String, Arc<Process>>,
}

impl Limits {
    /// Creates the groups and moves the processes into them (module rule 1). `procs`: every
    /// process of the run by name.
    pub(crate) fn new(
        kernel: &Kernel,
        s: &Scenario,
        procs: &BTreeMap<String, Arc<Process>>,
    ) -> Result<Limits, RunFailure> {
        let mut limits = Limits::default();
        for g in &s.groups {
            let memcg = kernel
                .create_memcg(&g.name)
                .map_err(|e| RunFailure::new(&e, format!("group {}: {e}", g.name)))?;
            memcg
                .set_max(g.heap_limit.map(|l| l.0))
                .map_err(|e| RunFailure::new(&e, format!("group {}: {e}", g.name)))?;
            limits.groups.push(GroupRt {
                name: g.name.clone(),
                memcg,
                vram_limit: g.vram_limit.map(|l| l.0),
                dmem: BTreeMap::new(),
                processes: Vec::new(),
            });
        }
        for pd in &s.processes {
            let Some(p) = procs.get(&pd.name) else {
                continue;
            };
            if let Some(gi) = pd
                .group
                .as_ref()
                .and_then(|g| limits.groups.iter().position(|r| &r.name == g))
            {
                let g = &mut limits.groups[gi];
                g.memcg.attach(p).map_err(|e| {
                    RunFailure::new(
                        &e,
                        format!("process {} into group {}: {e}", pd.name, g.name),
                    )
                })?;
                g.processes.push(pd.name.clone());
                limits.member.insert(pd.name.clone(), gi);
            }
            if let Some(to) = pd.charge_to.as_ref().and_then(|t| procs.get(t)) {
                limits.charge_to.insert(pd.name.clone(), to.clone());
            }
        }
        Ok(limits)
    }

    /// After `process` (named `name`) allocated the heap buffer `fd`: hands its charge to the
    /// client's group if the process allocates for one (module rule 2).
    pub(crate) fn after_heap_alloc(
        &self,
        name: &str,
        process: &Process,
        fd: Fd,
    ) -> Result<(), dmabuf::DmaBufError> {
        match self.charge_to.get(name) {
            Some(client) => process.transfer_charge(fd, &client.memcg()),
            None => Ok(()),
        }
    }

    /// The dmem group a GPU buffer allocated by process `name` on `gpu` (device `device`) is
    /// charged to, `None` for a process in no group (module rule 3).
    pub(crate) fn dmem_group(
        &mut self,
        name: &str,
        device: &str,
        gpu: &Gpu,
    ) -> Option<Arc<DmemGroup>> {
        let g = &mut self.groups[*self.member.get(name)?];
        let limit = g.vram_limit;
        let group_name = g.name.clone();
        Some(
            g.dmem
                .entry(device.to_string())
                .or_insert_with(|| {
                    let d = gpu.create_dmem_group(&group_name);
                    d.set_max(limit);
                    d
                })
                .clone(),
        )
    }

    /// `(series name, value)` for the counters: each group's heap charge and VRAM charge.
    pub(crate) fn samples(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for g in &self.groups {
            out.push((format!("group {} heap", g.name), g.memcg.current() as f64));
            if g.vram_limit.is_some() || !g.dmem.is_empty() {
                let vram: u64 = g.dmem.values().map(|d| d.current()).sum();
                out.push((format!("group {} vram", g.name), vram as f64));
            }
        }
        out
    }

    /// The report's `groups` (module rule 4).
    pub(crate) fn reports(&self) -> Vec<GroupReport> {
        self.groups
            .iter()
            .map(|g| GroupReport {
                name: g.name.clone(),
                processes: g.processes.clone(),
                heap_current: g.memcg.current(),
                heap_max: g.memcg.max(),
                heap_peak: g.memcg.peak(),
                heap_failcnt: g.memcg.failcnt(),
                vram: g
                    .dmem
                    .iter()
                    .map(|(device, d)| GroupVram {
                        device: device.clone(),
                        region: d.region().to_string(),
                        current: d.current(),
                        max: d.max(),
                        peak: d.peak(),
                        evictions: d.limit_evictions(),
                        failures: d.limit_failures(),
                    })
                    .collect(),
            })
            .collect()
    }
}
