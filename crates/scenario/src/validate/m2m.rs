//! Memory-to-memory nodes against their input: a scaler has one OUTPUT queue, so one input
//! link, and it must be able to turn that link's frames into its own
//! ([`drivers::scaler::check`]: 8-bit formats, 1/16 to 16x per axis). The formats themselves
//! were checked against the driver's table already (module `formats`); this adds the size
//! ratio, at the scaler's `width` or `height`.
//!
//! Runs after the pipeline checks, so every name a link gives exists.

use super::{Ctx, FieldPath};
use crate::error::ScenarioError;
use crate::run::image_of;
use crate::schema::{DriverKind, ScenarioFile};

/// Checks every scaler node.
pub(super) fn check(ctx: &Ctx<'_>, raw: &ScenarioFile) -> Result<(), ScenarioError> {
    let root = FieldPath::root();
    for (i, n) in raw.nodes.iter().enumerate() {
        if n.driver != DriverKind::Scaler {
            continue;
        }
        let inputs: Vec<usize> = (0..raw.links.len())
            .filter(|&k| raw.links[k].feeds(&n.name))
            .collect();
        if let Some(&second) = inputs.get(1) {
            return Err(ctx.err(
                &root.key("links").index(second).key("to"),
                format!(
                    "scaler `{}` already reads `{}`: a mem2mem device has one OUTPUT queue, \
                     expected one input link (a gpu composites several)",
                    n.name, raw.links[inputs[0]].from
                ),
            ));
        }
        let Some(from) = inputs
            .first()
            .and_then(|&k| raw.nodes.iter().find(|m| m.name == raw.links[k].from))
        else {
            continue;
        };
        if let Err(e) = drivers::scaler::check(image_of(from), image_of(n)) {
            let field = if e.contains("scales height") {
                "height"
            } else if e.contains("scales width") {
                "width"
            } else {
                "format"
            };
            return Err(ctx.err(
                &root.key("nodes").index(i).key(field),
                format!("scaler `{}` reading `{}`: {e}", n.name, from.name),
            ));
        }
    }
    Ok(())
}
