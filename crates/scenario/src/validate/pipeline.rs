//! Stage 3: nodes and links against each other and the machine (events: [`super::events`]).

use super::machine::list;
use super::{Ctx, FieldPath, MAX_BUFFERS, MAX_DIMENSION, MAX_FPS};
use crate::error::ScenarioError;
use crate::schema::{
    DriverKind, Event, Exporter, HeapKind, LinkDesc, MemoryType, NodeDesc, ScenarioFile,
};
use soc::{BankKind, SocDesc};
use std::collections::HashSet;

/// Checks nodes, links, events and `[expect]`; returns the typed events.
pub(super) fn check(
    ctx: &Ctx<'_>,
    raw: &ScenarioFile,
    soc: &SocDesc,
) -> Result<Vec<Event>, ScenarioError> {
    let root = FieldPath::root();
    if raw.nodes.is_empty() {
        return Err(ctx.err(
            &root,
            "the scenario has no `[[nodes]]`: expected at least one node (a camera, say)",
        ));
    }
    let mut names = HashSet::new();
    for (i, n) in raw.nodes.iter().enumerate() {
        let p = root.key("nodes").index(i);
        check_name(ctx, &p.key("name"), "node", &n.name)?;
        if !names.insert(n.name.as_str()) {
            return Err(ctx.err(
                &p.key("name"),
                format!("a second node is named `{}`: expected unique names", n.name),
            ));
        }
        node(ctx, &p, n, raw, soc)?;
    }
    let mut link_names = HashSet::new();
    for (i, l) in raw.links.iter().enumerate() {
        let p = root.key("links").index(i);
        if let Some(name) = &l.name {
            check_name(ctx, &p.key("name"), "link", name)?;
        }
        link(ctx, &p, l, raw, soc)?;
        let name = l.link_name();
        if !link_names.insert(name.clone()) {
            return Err(ctx.err(
                &p,
                format!(
                    "a second link is named `{name}`: expected unique names (give one a `name`)"
                ),
            ));
        }
    }
    for (i, n) in raw.nodes.iter().enumerate() {
        let p = root.key("nodes").index(i);
        let has_in = raw.links.iter().any(|l| l.feeds(&n.name));
        let has_out = raw.links.iter().any(|l| l.from == n.name);
        if n.driver == DriverKind::Camera && !has_out {
            return Err(ctx.err(
                &p,
                format!(
                    "camera `{}` feeds no link: expected a `[[links]]` with `from = \"{}\"`",
                    n.name, n.name
                ),
            ));
        }
        if n.driver != DriverKind::Camera && !has_in {
            return Err(ctx.err(
                &p,
                format!(
                    "{} `{}` has no input: expected a `[[links]]` with `to = \"{}\"`",
                    n.driver, n.name, n.name
                ),
            ));
        }
    }
    super::swapchain::check(ctx, raw)?;
    super::events::check(ctx, raw, soc)
}

/// Names are printed in reports and file names: no spaces, quotes or control characters.
pub(super) fn check_name(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    what: &str,
    name: &str,
) -> Result<(), ScenarioError> {
    if name.is_empty() || name.len() > 64 {
        return Err(ctx.err(
            at,
            format!("the {what} name `{name}` is empty or too long: expected 1 to 64 characters"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '`' | '[' | ']'))
    {
        return Err(ctx.err(
            at,
            format!(
                "the {what} name `{}` contains {c:?}: expected letters, digits and punctuation \
                 other than quotes and brackets",
                name.escape_debug()
            ),
        ));
    }
    Ok(())
}

fn node(
    ctx: &Ctx<'_>,
    p: &FieldPath,
    n: &NodeDesc,
    raw: &ScenarioFile,
    soc: &SocDesc,
) -> Result<(), ScenarioError> {
    if !soc.devices.iter().any(|d| d.name == n.device) {
        return Err(ctx.err(
            &p.key("device"),
            format!(
                "{} `{}` is bound to device `{}`, which is not in `[[soc.devices]]` (devices: {})",
                n.driver,
                n.name,
                n.device,
                list(soc.devices.iter().map(|d| &d.name))
            ),
        ));
    }
    if let Some(proc) = &n.process {
        check_name(ctx, &p.key("process"), "process", proc)?;
    }
    for (field, v) in [("width", n.width), ("height", n.height)] {
        if v == 0 || v > MAX_DIMENSION {
            return Err(ctx.err(
                &p.key(field),
                format!("{field} {v}: expected 1 to {MAX_DIMENSION} pixels"),
            ));
        }
    }
    if n.format.needs_even_width() && !n.width.is_multiple_of(2) {
        return Err(ctx.err(
            &p.key("width"),
            format!(
                "width {} is odd: {} subsamples chroma horizontally, expected an even width",
                n.width,
                n.format.name()
            ),
        ));
    }
    if n.format.needs_even_height() && !n.height.is_multiple_of(2) {
        return Err(ctx.err(
            &p.key("height"),
            format!(
                "height {} is odd: {} subsamples chroma vertically, expected an even height",
                n.height,
                n.format.name()
            ),
        ));
    }
    if !n.fps.within(1, MAX_FPS.into()) {
        return Err(ctx.err(
            &p.key("fps"),
            format!("fps {}: expected 1 to {MAX_FPS}", n.fps),
        ));
    }
    // A display is driven through KMS (run::kms, a plane per input link): it has no vb2 queue
    // whose mappings `map_policy` would rule.
    if n.driver == DriverKind::Display && n.map_policy != crate::schema::MapPolicy::default() {
        let ins = raw
            .links
            .iter()
            .filter(|l| l.to.0.contains(&n.name))
            .count();
        if ins > 0 {
            return Err(ctx.err(
                &p.key("map_policy"),
                format!(
                    "display `{}` is driven through KMS (a framebuffer per buffer, page flips): it has no vb2 queue for `map_policy` to rule; expected no `map_policy`",
                    n.name
                ),
            ));
        }
    }
    let pp = p.key("params");
    for (param, kinds) in n.params.set() {
        if !kinds.contains(&n.driver) {
            let k: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            return Err(ctx.err(
                &pp.key(param),
                format!(
                    "`{param}` is a parameter of {} nodes; `{}` is a {} node",
                    k.join(" and "),
                    n.name,
                    n.driver
                ),
            ));
        }
    }
    let range = |field: &str, v: u64, lo: u64, hi: u64| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(ctx.err(&pp.key(field), format!("{v}: expected {lo} to {hi}")))
        }
    };
    if let Some(v) = n.params.max_in_flight {
        range("max_in_flight", v.into(), 1, MAX_BUFFERS.into())?;
    }
    if let Some(v) = n.params.scale {
        range("scale", v.into(), 1, 64)?;
    }
    if let Some(v) = n.params.quality {
        range("quality", v.into(), 1, 100)?;
    }
    if let Some(v) = n.params.frame {
        range("frame", v, 0, raw.frames - 1)?;
    }
    if n.params.p2p == Some(true) && !soc.banks.iter().any(|b| b.kind == BankKind::DeviceLocal) {
        return Err(ctx.err(
            &pp.key("p2p"),
            "p2p = true: expected a device_local bank in `[[soc.banks]]` for the GPU's VRAM"
                .to_string(),
        ));
    }
    if let Some(bank) = &n.params.vram {
        match soc.banks.iter().find(|b| &b.name == bank) {
            Some(b) if b.kind == BankKind::DeviceLocal => {}
            found => {
                let what = found.map_or("not in `[[soc.banks]]`".to_string(), |b| {
                    format!("a {} bank", b.kind)
                });
                return Err(ctx.err(
                    &pp.key("vram"),
                    format!(
                        "bank `{bank}` is {what}: expected a device_local bank ({})",
                        list(
                            soc.banks
                                .iter()
                                .filter(|b| b.kind == BankKind::DeviceLocal)
                                .map(|b| &b.name)
                        )
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn link(
    ctx: &Ctx<'_>,
    p: &FieldPath,
    l: &LinkDesc,
    raw: &ScenarioFile,
    soc: &SocDesc,
) -> Result<(), ScenarioError> {
    let find = |at: &FieldPath, name: &str| {
        raw.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            ctx.err(
                at,
                format!(
                    "no node is named `{name}` (nodes: {})",
                    list(raw.nodes.iter().map(|n| &n.name))
                ),
            )
        })
    };
    let from = find(&p.key("from"), &l.from)?;
    if !from.driver.produces() {
        return Err(ctx.err(
            &p.key("from"),
            format!(
                "`{}` is a {} node, which produces no buffers: expected a camera, isp or gpu",
                from.name, from.driver
            ),
        ));
    }
    if l.to.0.is_empty() {
        return Err(ctx.err(
            &p.key("to"),
            "an empty list: expected a node name or an array of node names",
        ));
    }
    let many = l.to.0.len() > 1;
    let mut tos = Vec::new();
    for (j, name) in l.to.0.iter().enumerate() {
        let at = if many {
            p.key("to").index(j)
        } else {
            p.key("to")
        };
        let to = find(&at, name)?;
        if l.from == *name {
            return Err(ctx.err(
                &at,
                format!("the link goes from `{name}` to itself: expected two different nodes"),
            ));
        }
        if l.to.0[..j].contains(name) {
            return Err(ctx.err(&at, format!("`{name}` is named twice in `to`")));
        }
        if !to.driver.consumes() {
            return Err(ctx.err(
                &at,
                format!(
                    "`{}` is a {} node, which consumes no buffers",
                    to.name, to.driver
                ),
            ));
        }
        tos.push(to);
    }
    if l.buffers == 0 || l.buffers > MAX_BUFFERS {
        return Err(ctx.err(
            &p.key("buffers"),
            format!("{} buffers: expected 1 to {MAX_BUFFERS}", l.buffers),
        ));
    }
    if l.memory != MemoryType::Dmabuf {
        for (field, set) in [
            ("exporter", l.exporter.is_some()),
            ("region", l.region.is_some()),
            ("planes", !l.planes.is_empty()),
        ] {
            if set {
                return Err(ctx.err(
                    &p.key(field),
                    format!(
                        "`{field}` applies to `memory = \"dmabuf\"` links; with `{}` the buffers \
                         come from {}",
                        l.memory.name(),
                        if l.memory == MemoryType::Userptr {
                            "the producer's process memory"
                        } else {
                            "the producer's vb2 queue"
                        }
                    ),
                ));
            }
        }
    }
    let exporter = l.effective_exporter();
    if l.policy.is_some() && exporter != Some(Exporter::Constraint) {
        return Err(ctx.err(
            &p.key("policy"),
            format!(
                "`policy` applies to the `constraint` exporter; this link's exporter is `{}`",
                exporter.map_or(l.memory.name(), Exporter::name)
            ),
        ));
    }
    if exporter == Some(Exporter::Gpu)
        && from.driver != DriverKind::Gpu
        && !tos.iter().any(|t| t.driver == DriverKind::Gpu)
    {
        return Err(ctx.err(
            &p.key("exporter"),
            "exporter `gpu` needs a gpu node at one end of the link",
        ));
    }
    let region_bank = region(ctx, p, l, exporter, soc)?;
    planes(ctx, p, l, from, exporter, region_bank.as_deref(), soc)
}

/// Checks `region` for heap exporters; returns the bank the heap allocates from, if it is one
/// bank.
fn region(
    ctx: &Ctx<'_>,
    p: &FieldPath,
    l: &LinkDesc,
    exporter: Option<Exporter>,
    soc: &SocDesc,
) -> Result<Option<String>, ScenarioError> {
    let at = p.key("region");
    match exporter {
        Some(Exporter::Heap(HeapKind::Cma)) => {
            let names: Vec<&String> = soc.cma.iter().map(|c| &c.name).collect();
            let chosen = match (&l.region, soc.cma.as_slice()) {
                (Some(r), _) => soc.cma.iter().find(|c| &c.name == r).ok_or_else(|| {
                    ctx.err(
                        &at,
                        format!(
                            "no CMA region is named `{r}` (regions: {})",
                            list(names.iter().copied())
                        ),
                    )
                })?,
                (None, [only]) => only,
                (None, []) => {
                    return Err(ctx.err(
                        &p.key("exporter"),
                        "exporter `heap:cma` but the machine has no `[[soc.cma]]` region",
                    ))
                }
                (None, _) => {
                    return Err(ctx.err(
                        &p.key("exporter"),
                        format!(
                            "the machine has several CMA regions ({}): expected `region` naming one",
                            list(names.iter().copied())
                        ),
                    ))
                }
            };
            Ok(Some(chosen.bank.clone()))
        }
        Some(Exporter::Heap(HeapKind::Carveout)) => {
            let carveouts: Vec<&String> = soc
                .banks
                .iter()
                .filter(|b| b.kind == BankKind::Carveout)
                .map(|b| &b.name)
                .collect();
            match (&l.region, carveouts.as_slice()) {
                (Some(r), _) if carveouts.contains(&r) => Ok(Some(r.clone())),
                (Some(r), _) => Err(ctx.err(
                    &at,
                    format!(
                        "`{r}` is not a carveout bank: expected one of {}",
                        list(carveouts.iter().copied())
                    ),
                )),
                (None, [only]) => Ok(Some((*only).clone())),
                (None, []) => Err(ctx.err(
                    &p.key("exporter"),
                    "exporter `heap:carveout` but the machine has no bank with `kind = \"carveout\"`",
                )),
                (None, _) => Err(ctx.err(
                    &p.key("exporter"),
                    format!(
                        "the machine has several carveout banks ({}): expected `region` naming one",
                        list(carveouts.iter().copied())
                    ),
                )),
            }
        }
        _ if l.region.is_some() => Err(ctx.err(
            &at,
            format!(
                "`region` applies to the `heap:cma` and `heap:carveout` exporters; this link's is `{}`",
                exporter.map_or(l.memory.name(), Exporter::name)
            ),
        )),
        _ => Ok(None),
    }
}

fn planes(
    ctx: &Ctx<'_>,
    p: &FieldPath,
    l: &LinkDesc,
    from: &NodeDesc,
    exporter: Option<Exporter>,
    region_bank: Option<&str>,
    soc: &SocDesc,
) -> Result<(), ScenarioError> {
    if l.planes.is_empty() {
        return Ok(());
    }
    let fmt = from.format;
    if l.planes.len() != fmt.num_planes() {
        return Err(ctx.err(
            &p.key("planes"),
            format!(
                "{} {}, but `{}` produces {} with {} plane(s) ({}): expected one entry per plane",
                l.planes.len(),
                if l.planes.len() == 1 {
                    "entry"
                } else {
                    "entries"
                },
                from.name,
                fmt.name(),
                fmt.num_planes(),
                fmt.plane_names().join(", ")
            ),
        ));
    }
    for (i, plane) in l.planes.iter().enumerate() {
        let Some(bank) = &plane.bank else { continue };
        let at = p.key("planes").index(i).key("bank");
        let Some(b) = soc.banks.iter().find(|b| &b.name == bank) else {
            return Err(ctx.err(
                &at,
                format!(
                    "no bank is named `{bank}` (banks: {})",
                    list(soc.banks.iter().map(|b| &b.name))
                ),
            ));
        };
        let fits = match exporter {
            Some(Exporter::Heap(HeapKind::System) | Exporter::Udmabuf) => {
                b.kind == BankKind::System
            }
            Some(Exporter::Heap(_)) => Some(bank.as_str()) == region_bank,
            _ => true,
        };
        if !fits {
            return Err(ctx.err(
                &at,
                format!(
                    "{} plane in bank `{bank}` ({}), but exporter `{}` allocates {}",
                    fmt.plane_names().get(i).copied().unwrap_or("this"),
                    b.kind,
                    exporter.map_or("none", Exporter::name),
                    match region_bank {
                        Some(r) => format!("from bank `{r}` only"),
                        None => "from system banks only".to_string(),
                    }
                ),
            ));
        }
    }
    Ok(())
}
