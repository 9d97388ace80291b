//! `[[groups]]` and `[[processes]]` against the nodes and the machine: unique names that a
//! cgroup directory can have, limits within the machine's memory, a VRAM limit only where a
//! GPU has VRAM and a process of the group allocates GPU buffers there, processes that some
//! node runs in, groups and `charge_to` targets that exist.

use super::pipeline::check_name;
use super::{Ctx, FieldPath, MAX_TOTAL_MEMORY};
use crate::error::ScenarioError;
use crate::schema::{DriverKind, Exporter, ScenarioFile};
use soc::{BankKind, SocDesc};
use std::collections::BTreeSet;

/// Checks the groups and processes of `raw`.
pub(super) fn check(ctx: &Ctx<'_>, raw: &ScenarioFile, soc: &SocDesc) -> Result<(), ScenarioError> {
    let root = FieldPath::root();
    let mut groups = BTreeSet::new();
    let has_vram = soc.banks.iter().any(|b| b.kind == BankKind::DeviceLocal)
        && raw.nodes.iter().any(|n| n.driver == DriverKind::Gpu);
    for (i, g) in raw.groups.iter().enumerate() {
        let p = root.key("groups").index(i);
        check_name(ctx, &p.key("name"), "group", &g.name)?;
        if g.name.contains('/') || g.name == "." || g.name == ".." {
            return Err(ctx.err(
                &p.key("name"),
                format!(
                    "the group name `{}` is not a cgroup directory name: expected no `/`",
                    g.name
                ),
            ));
        }
        if !groups.insert(g.name.as_str()) {
            return Err(ctx.err(
                &p.key("name"),
                format!(
                    "a second group is named `{}`: expected unique names",
                    g.name
                ),
            ));
        }
        for (key, limit) in [("heap_limit", g.heap_limit), ("vram_limit", g.vram_limit)] {
            if let Some(l) = limit {
                if l.0 > MAX_TOTAL_MEMORY {
                    return Err(ctx.err(
                        &p.key(key),
                        format!(
                            "{}: expected at most {}",
                            soc::human_size(l.0),
                            soc::human_size(MAX_TOTAL_MEMORY)
                        ),
                    ));
                }
            }
        }
        if g.vram_limit.is_some() && !has_vram {
            return Err(ctx.err(
                &p.key("vram_limit"),
                "a VRAM limit needs a gpu node and a device-local bank for its VRAM: this \
                 scenario has no GPU VRAM to limit",
            ));
        }
        if g.vram_limit.is_some() {
            check_vram_limit_acts(ctx, raw, &p, &g.name)?;
        }
    }
    let procs: BTreeSet<&str> = raw.nodes.iter().map(|n| n.process_name()).collect();
    let mut seen = BTreeSet::new();
    for (i, pd) in raw.processes.iter().enumerate() {
        let p = root.key("processes").index(i);
        if !procs.contains(pd.name.as_str()) {
            return Err(ctx.err(
                &p.key("name"),
                format!(
                    "no node runs in a process `{}`: expected one of {}",
                    pd.name,
                    procs.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if !seen.insert(pd.name.as_str()) {
            return Err(ctx.err(
                &p.key("name"),
                format!(
                    "process `{}` is listed twice: expected one entry per process",
                    pd.name
                ),
            ));
        }
        if let Some(g) = &pd.group {
            if !groups.contains(g.as_str()) {
                return Err(ctx.err(
                    &p.key("group"),
                    format!(
                        "no `[[groups]]` entry is named `{g}`: expected one of {}",
                        super::machine::list(raw.groups.iter().map(|g| &g.name))
                    ),
                ));
            }
        }
        if let Some(to) = &pd.charge_to {
            if to == &pd.name {
                return Err(ctx.err(
                    &p.key("charge_to"),
                    format!("process `{to}` cannot hand its charges to itself"),
                ));
            }
            if !procs.contains(to.as_str()) {
                return Err(ctx.err(
                    &p.key("charge_to"),
                    format!(
                        "no node runs in a process `{to}`: expected one of {}",
                        procs.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A group's `vram_limit` acts only on GPU buffers its processes allocate: the kernel charges
/// `dmem.max` when TTM allocates VRAM for an object (`ttm_resource_alloc` ->
/// `dmem_cgroup_try_charge`, to the allocating task's cgroup), and a GPU's PRIME import of a
/// buffer another exporter made is a GTT object backed by the exporter's pages
/// (`amdgpu_dma_buf_create_obj`: allowed and preferred domains GTT; asking an import for VRAM
/// is `EINVAL`), never moved into VRAM, never charged. So a limit on a group none of whose
/// processes allocates from a `gpu`-exporter link could never act: refused with `EINVAL`.
fn check_vram_limit_acts(
    ctx: &Ctx<'_>,
    raw: &ScenarioFile,
    p: &FieldPath,
    group: &str,
) -> Result<(), ScenarioError> {
    let node_process = |name: &str| {
        raw.nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.process_name().to_string())
    };
    // The processes that allocate GPU objects: a `gpu`-exporter link's producer (a dri2
    // swapchain, whose display side allocates, takes heap buffers only).
    let allocators: BTreeSet<String> = raw
        .links
        .iter()
        .filter(|l| l.effective_exporter() == Some(Exporter::Gpu))
        .filter_map(|l| node_process(&l.from))
        .collect();
    let members: Vec<&str> = raw
        .processes
        .iter()
        .filter(|pd| pd.group.as_deref() == Some(group))
        .map(|pd| pd.name.as_str())
        .collect();
    if members.iter().any(|m| allocators.contains(*m)) {
        return Ok(());
    }
    let who = if members.is_empty() {
        format!("group `{group}` has no process")
    } else {
        format!(
            "no process of group `{group}` ({}) allocates a GPU buffer",
            members.join(", ")
        )
    };
    let expected = if allocators.is_empty() {
        "a link with `exporter = \"gpu\"` whose producer runs in the group".to_string()
    } else {
        format!(
            "a group with a process that allocates from a `gpu`-exporter link: {}",
            allocators.iter().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    Err(ctx.err(
        &p.key("vram_limit"),
        format!(
            "EINVAL: {who}, so the limit could never act: the kernel charges VRAM to the \
             allocating process's cgroup when TTM places an object in VRAM, and a GPU's import \
             of another exporter's buffer stays in GTT on the exporter's pages, never in VRAM, \
             never charged; expected {expected}"
        ),
    ))
}
