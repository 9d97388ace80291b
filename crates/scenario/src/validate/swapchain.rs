//! Stage 3, swapchains: the `swapchain` and `max_in_flight` parameters of gpu and display nodes
//! against the gpu->display links they describe.
//!
//! Rules (each broken one is an error at the parameter, exit 2):
//! 1. A gpu or display node that names `swapchain` or `max_in_flight` is an end of a
//!    gpu->display link: a swapchain between anything else is refused.
//! 2. The two ends of a link do not name different modes.
//! 3. The mode matches who allocates (seed 000): `wayland` ("here is the next buffer I drew") is
//!    the client's GPU objects, `exporter = "gpu"`; `dri2` ("give me the next buffer to draw
//!    into") is the display side's, a dma-heap exporter (`heap:...`).
//! 4. `max_in_flight` is below the link's `buffers`: a bound at or above it bounds nothing.

use super::{Ctx, FieldPath};
use crate::error::ScenarioError;
use crate::schema::{DriverKind, Exporter, LinkDesc, NodeDesc, ScenarioFile, SwapchainMode};

/// The swapchain a gpu->display link runs: its mode and bound, from either end's parameters.
pub(crate) fn of_link(
    raw_nodes: &[NodeDesc],
    l: &LinkDesc,
) -> Option<(SwapchainMode, Option<u32>)> {
    let from = raw_nodes.iter().find(|n| n.name == l.from)?;
    if from.driver != DriverKind::Gpu {
        return None;
    }
    let to: Vec<&NodeDesc> = raw_nodes
        .iter()
        .filter(|n| l.feeds(&n.name) && n.driver == DriverKind::Display)
        .collect();
    if to.is_empty() {
        return None;
    }
    let ends = std::iter::once(from).chain(to.iter().copied());
    let mut mode = None;
    let mut bound: Option<u32> = None;
    for n in ends {
        mode = mode.or(n.params.swapchain);
        if let Some(m) = n.params.max_in_flight {
            bound = Some(bound.map_or(m, |b| b.min(m)));
        }
    }
    (mode.is_some() || bound.is_some()).then(|| (mode.unwrap_or_default(), bound))
}

pub(super) fn check(ctx: &Ctx<'_>, raw: &ScenarioFile) -> Result<(), ScenarioError> {
    let root = FieldPath::root();
    let is_gpu_display = |l: &LinkDesc| {
        let node = |name: &str| raw.nodes.iter().find(|n| n.name == name);
        node(&l.from).is_some_and(|n| n.driver == DriverKind::Gpu)
            && l.to
                .0
                .iter()
                .any(|t| node(t).is_some_and(|n| n.driver == DriverKind::Display))
    };
    for (i, n) in raw.nodes.iter().enumerate() {
        let pp = root.key("nodes").index(i).key("params");
        let set = [
            ("swapchain", n.params.swapchain.is_some()),
            ("max_in_flight", n.params.max_in_flight.is_some()),
        ];
        for (param, on) in set {
            if !on {
                continue;
            }
            let mine: Vec<&LinkDesc> = raw
                .links
                .iter()
                .filter(|l| (l.from == n.name || l.feeds(&n.name)) && is_gpu_display(l))
                .collect();
            if mine.is_empty() {
                return Err(ctx.err(
                    &pp.key(param),
                    format!(
                        "`{param}` describes a gpu->display swapchain; `{}` is an end of no \
                         link from a gpu node to a display node",
                        n.name
                    ),
                ));
            }
            for l in mine {
                let link = l.link_name();
                let other = raw
                    .nodes
                    .iter()
                    .find(|o| o.name != n.name && (o.name == l.from || l.feeds(&o.name)));
                if let (Some(a), Some(o)) = (n.params.swapchain, other) {
                    if o.params.swapchain.is_some_and(|b| b != a) {
                        return Err(ctx.err(
                            &pp.key("swapchain"),
                            format!(
                                "link {link}: `{}` says {a:?} and `{}` says {:?}: expected one \
                                 mode on both ends",
                                n.name,
                                o.name,
                                o.params.swapchain.unwrap_or_default()
                            ),
                        ));
                    }
                }
                if let Some(mode) = n.params.swapchain {
                    let exporter = l.effective_exporter();
                    let ok = match mode {
                        SwapchainMode::Wayland => exporter == Some(Exporter::Gpu),
                        SwapchainMode::Dri2 => matches!(exporter, Some(Exporter::Heap(_))),
                    };
                    if !ok {
                        let want = match mode {
                            SwapchainMode::Wayland => {
                                "wayland: the client allocates, expected `exporter = \"gpu\"`"
                            }
                            SwapchainMode::Dri2 => {
                                "dri2: the display side allocates, expected a dma-heap \
                                 exporter (`exporter = \"heap:cma\"`, say)"
                            }
                        };
                        return Err(ctx.err(
                            &pp.key("swapchain"),
                            format!(
                                "link {link} (memory {:?}, exporter {}): {want}",
                                l.memory,
                                exporter.map_or("none", Exporter::name)
                            ),
                        ));
                    }
                }
                if let Some(m) = n.params.max_in_flight {
                    if m >= l.buffers {
                        return Err(ctx.err(
                            &pp.key("max_in_flight"),
                            format!(
                                "{m}: link {link} has {} buffers, a bound at or above that \
                                 bounds nothing: expected 1 to {}",
                                l.buffers,
                                l.buffers.saturating_sub(1)
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}
