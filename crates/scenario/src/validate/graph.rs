//! Stage 3, last: the pipeline as a graph, checked for what would only fail (or silently
//! deliver nothing) at run time, so `dmabuf check` refuses everything `dmabuf run` would:
//!
//! - **cycles**: a link that leads back to a node upstream of it (frames would circle forever
//!   and no sink would ever be reached);
//! - **sinks never attached**: a node with `attached = false` that no `attach` event brings in
//!   (every frame it should receive would be dropped);
//! - **frames that do not fit**: a consumer that takes frames as they are (an encoder, a
//!   display) and states another format or size than its producer's, or an ISP another size
//!   (one that leaves them out takes the producer's; an ISP converts formats, a GPU composites
//!   and converts, a thumbnailer scales: they are exempt there);
//! - **a GPU's VRAM**: a gpu node's driver starts on the VRAM bank it names, the machine's only
//!   `device_local` bank, or `vram0`; with several and none of them `vram0`, the node must name
//!   one (with none at all it is an integrated GPU, its objects in system memory).
//!
//! Each error names the field by path, so it carries the file's line and column.

use super::{Ctx, FieldPath};
use crate::error::ScenarioError;
use crate::schema::{DriverKind, Event, EventAction, ScenarioFile};
use soc::{BankKind, SocDesc};

/// Checks the graph of `raw` (already valid node by node and link by link).
pub(super) fn check(
    ctx: &Ctx<'_>,
    raw: &ScenarioFile,
    soc: &SocDesc,
    events: &[Event],
) -> Result<(), ScenarioError> {
    let root = FieldPath::root();
    cycles(ctx, raw)?;
    for (i, n) in raw.nodes.iter().enumerate() {
        if n.attached {
            continue;
        }
        let attached_later = events
            .iter()
            .any(|e| matches!(&e.action, EventAction::Attach { node } if node == &n.name));
        if !attached_later {
            return Err(ctx.err(
                &root.key("nodes").index(i).key("attached"),
                format!(
                    "`{}` starts detached and no event attaches it (nothing would ever reach \
                     it): expected an `attach` event naming it, or `attached = true`",
                    n.name
                ),
            ));
        }
    }
    let local: Vec<&str> = soc
        .banks
        .iter()
        .filter(|b| b.kind == BankKind::DeviceLocal)
        .map(|b| b.name.as_str())
        .collect();
    // A GPU driver's VRAM: `params.vram` (checked with the node), else the only device_local
    // bank, else one named `vram0`; with none at all it is an integrated GPU (objects in GTT).
    for (i, n) in raw.nodes.iter().enumerate() {
        if n.driver != DriverKind::Gpu
            || n.params.vram.is_some()
            || local.len() <= 1
            || local.contains(&"vram0")
        {
            continue;
        }
        let p = root.key("nodes").index(i);
        let message = format!(
            "gpu `{}` does not say which VRAM it has and the machine has {} device_local \
             banks ({}): expected `params.vram` naming one",
            n.name,
            local.len(),
            local.join(", ")
        );
        return Err(ctx.err(&p, message));
    }
    for (i, l) in raw.links.iter().enumerate() {
        let p = root.key("links").index(i);
        let Some(from) = raw.nodes.iter().find(|n| n.name == l.from) else {
            continue;
        };
        for (k, to) in l.to.0.iter().enumerate() {
            let Some(c) = raw.nodes.iter().find(|n| &n.name == to) else {
                continue;
            };
            if !matches!(
                c.driver,
                DriverKind::Isp | DriverKind::Encoder | DriverKind::Display
            ) {
                continue;
            }
            let at = if l.to.0.len() == 1 {
                p.key("to")
            } else {
                p.key("to").index(k)
            };
            // A consumer that leaves its format or size out takes its producer's.
            let ci = raw.nodes.iter().position(|n| n.name == c.name).unwrap_or(0);
            let cp = root.key("nodes").index(ci);
            let says = |field: &str| ctx.written(&cp.key(field));
            // An ISP converts (its `format` is what it writes); encoders and displays take
            // frames as they are.
            if says("format") && c.driver != DriverKind::Isp && c.format != from.format {
                return Err(ctx.err(
                    &at,
                    format!(
                        "{} `{}` takes {} frames and `{}` produces {}: expected the same format \
                         at both ends (only an isp or a gpu converts)",
                        c.driver,
                        c.name,
                        c.format.name(),
                        from.name,
                        from.format.name()
                    ),
                ));
            }
            if (says("width") || says("height")) && (c.width, c.height) != (from.width, from.height)
            {
                return Err(ctx.err(
                    &at,
                    format!(
                        "{} `{}` takes {}x{} frames and `{}` produces {}x{}: expected the same \
                         size at both ends (only a gpu scales)",
                        c.driver, c.name, c.width, c.height, from.name, from.width, from.height
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A link that closes a loop (depth-first over the links in file order).
fn cycles(ctx: &Ctx<'_>, raw: &ScenarioFile) -> Result<(), ScenarioError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let idx = |name: &str| raw.nodes.iter().position(|n| n.name == name);
    let mut mark = vec![Mark::New; raw.nodes.len()];
    for start in 0..raw.nodes.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // (node, links of it still to follow), and the path that led there.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Open;
        while let Some(&mut (n, ref mut next)) = stack.last_mut() {
            let out: Vec<(usize, &String)> = raw
                .links
                .iter()
                .enumerate()
                .filter(|(_, l)| l.from == raw.nodes[n].name)
                .flat_map(|(li, l)| l.to.0.iter().map(move |t| (li, t)))
                .collect();
            let Some(&(li, to)) = out.get(*next) else {
                mark[n] = Mark::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            let Some(t) = idx(to) else { continue };
            match mark[t] {
                Mark::Open => {
                    let from = stack.iter().position(|&(x, _)| x == t).unwrap_or(0);
                    let path: Vec<&str> = stack[from..]
                        .iter()
                        .map(|&(x, _)| raw.nodes[x].name.as_str())
                        .chain([raw.nodes[t].name.as_str()])
                        .collect();
                    return Err(ctx.err(
                        &FieldPath::root().key("links").index(li),
                        format!(
                            "the links form a cycle ({}): expected a pipeline without loops, \
                             from sources to sinks",
                            path.join(" -> ")
                        ),
                    ));
                }
                Mark::New => {
                    mark[t] = Mark::Open;
                    stack.push((t, 0));
                }
                Mark::Done => {}
            }
        }
    }
    Ok(())
}
