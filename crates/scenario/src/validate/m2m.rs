//! Memory-to-memory nodes against their input: a scaler or a decoder has one OUTPUT queue, so
//! one input link.
//! - A scaler must be able to turn that link's frames into its own
//!   ([`drivers::scaler::check`]: 8-bit formats, 1/16 to 16x per axis). The formats themselves
//!   were checked against the driver's table already (module `formats`); this adds the size
//!   ratio, at the scaler's `width` or `height`.
//! - A decoder reads the bitstream of an encoder with `codec = "rle"`, and gives back the
//!   frames that encoder read: its `format`, `width` and `height` are theirs.
//! - An encoder feeds a link only with `codec = "rle"`, and only decoders read it (a
//!   bitstream is no picture).
//!
//! Runs after the pipeline checks, so every name a link gives exists.

use super::{Ctx, FieldPath};
use crate::error::ScenarioError;
use crate::run::image_of;
use crate::schema::{DriverKind, EncoderCodec, NodeDesc, ScenarioFile};

/// Checks every scaler node.
pub(super) fn check(ctx: &Ctx<'_>, raw: &ScenarioFile) -> Result<(), ScenarioError> {
    let root = FieldPath::root();
    encoder_links(ctx, raw)?;
    for (i, n) in raw.nodes.iter().enumerate() {
        if !matches!(n.driver, DriverKind::Scaler | DriverKind::Decoder) {
            continue;
        }
        let inputs: Vec<usize> = (0..raw.links.len())
            .filter(|&k| raw.links[k].feeds(&n.name))
            .collect();
        if let Some(&second) = inputs.get(1) {
            return Err(ctx.err(
                &root.key("links").index(second).key("to"),
                format!(
                    "{} `{}` already reads `{}`: a mem2mem device has one OUTPUT queue, \
                     expected one input link (a gpu composites several)",
                    n.driver, n.name, raw.links[inputs[0]].from
                ),
            ));
        }
        let Some(from) = inputs
            .first()
            .and_then(|&k| raw.nodes.iter().find(|m| m.name == raw.links[k].from))
        else {
            continue;
        };
        if n.driver == DriverKind::Decoder {
            decoder(ctx, raw, i, from, inputs[0])?;
            continue;
        }
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

/// An encoder feeds a link only as an RLE encoder, and only into decoders.
fn encoder_links(ctx: &Ctx<'_>, raw: &ScenarioFile) -> Result<(), ScenarioError> {
    let root = FieldPath::root();
    for (k, l) in raw.links.iter().enumerate() {
        let Some(from) = raw.nodes.iter().find(|n| n.name == l.from) else {
            continue;
        };
        if from.driver != DriverKind::Encoder {
            continue;
        }
        if from.params.codec != Some(EncoderCodec::Rle) {
            return Err(ctx.err(
                &root.key("links").index(k).key("from"),
                format!(
                    "encoder `{}` writes no bitstream (its codec is `checksum`): expected \
                     `params.codec = \"rle\"` on it to feed a decoder",
                    from.name
                ),
            ));
        }
        for (j, to) in l.to.0.iter().enumerate() {
            let Some(c) = raw.nodes.iter().find(|n| &n.name == to) else {
                continue;
            };
            if c.driver != DriverKind::Decoder {
                let at = root.key("links").index(k).key("to");
                let at = if l.to.0.len() > 1 { at.index(j) } else { at };
                return Err(ctx.err(
                    &at,
                    format!(
                        "`{}` ({} {}) cannot read the bitstream encoder `{}` writes: expected a \
                         decoder",
                        c.name,
                        if c.driver.name().starts_with(['a', 'e', 'i', 'o', 'u']) {
                            "an"
                        } else {
                            "a"
                        },
                        c.driver,
                        from.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Decoder `raw.nodes[i]` reading link `li` from `from`.
fn decoder(
    ctx: &Ctx<'_>,
    raw: &ScenarioFile,
    i: usize,
    from: &NodeDesc,
    li: usize,
) -> Result<(), ScenarioError> {
    let root = FieldPath::root();
    let n = &raw.nodes[i];
    if from.driver != DriverKind::Encoder {
        return Err(ctx.err(
            &root.key("links").index(li).key("from"),
            format!(
                "decoder `{}` reads `{}`, {} {}: expected an encoder with `codec = \"rle\"` \
                 (a decoder reads a bitstream)",
                n.name,
                from.name,
                if from.driver.name().starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                },
                from.driver
            ),
        ));
    }
    // The frames the encoder read: its first input's producer's.
    let Some(src) = raw
        .links
        .iter()
        .find(|l| l.feeds(&from.name))
        .and_then(|l| raw.nodes.iter().find(|m| m.name == l.from))
    else {
        return Ok(());
    };
    let p = root.key("nodes").index(i);
    for (field, differs, want) in [
        (
            "format",
            n.format != src.format,
            src.format.name().to_string(),
        ),
        ("width", n.width != src.width, src.width.to_string()),
        ("height", n.height != src.height, src.height.to_string()),
    ] {
        if differs {
            return Err(ctx.err(
                &p.key(field),
                format!(
                    "decoder `{}` gives back the frames encoder `{}` read from `{}`: expected \
                     `{field} = {want}` (a scaler after it changes their size or format)",
                    n.name, from.name, src.name
                ),
            ));
        }
    }
    Ok(())
}
