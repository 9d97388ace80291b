//! Formats against drivers: every node's format is in the format table (the parser already
//! refused any other), its width and height are whole multiples of what the format packs, and
//! each driver produces and consumes only the formats it declares
//! ([`drivers::format::DRIVER_FORMATS`]).
//!
//! Runs after the pipeline checks, so every name a link gives exists.

use super::{Ctx, FieldPath};
use crate::error::ScenarioError;
use crate::schema::{IspTransform, ScenarioFile};

/// Checks every node's format and every link's formats.
pub(super) fn check(ctx: &Ctx<'_>, raw: &ScenarioFile) -> Result<(), ScenarioError> {
    let root = FieldPath::root();
    for (i, n) in raw.nodes.iter().enumerate() {
        let p = root.key("nodes").index(i);
        let info = n.format.info();
        for (field, v, multiple) in [
            ("width", n.width, info.width_multiple),
            ("height", n.height, info.height_multiple),
        ] {
            if !v.is_multiple_of(multiple) {
                return Err(ctx.err(
                    &p.key(field),
                    format!(
                        "{field} {v}: {} packs {multiple} pixels together, expected a multiple of {multiple}",
                        info.name
                    ),
                ));
            }
        }
        let Some(d) = drivers::format::driver_formats(n.driver.name()) else {
            continue;
        };
        let produces = raw.links.iter().any(|l| l.from == n.name);
        if produces && !d.produces.contains(&info.name) {
            return Err(ctx.err(
                &p.key("format"),
                format!(
                    "{} {} cannot produce {}: {}; expected one of {}",
                    article(d.driver),
                    d.driver,
                    info.name,
                    d.why,
                    d.produces.join(", ")
                ),
            ));
        }
    }
    for (i, l) in raw.links.iter().enumerate() {
        let Some(from) = raw.nodes.iter().find(|n| n.name == l.from) else {
            continue;
        };
        let fmt = from.format.info();
        for (j, to) in l.to.0.iter().enumerate() {
            let Some((k, consumer)) = raw.nodes.iter().enumerate().find(|(_, n)| &n.name == to)
            else {
                continue;
            };
            let Some(d) = drivers::format::driver_formats(consumer.driver.name()) else {
                continue;
            };
            let at = root.key("links").index(i).key("to");
            let at = if l.to.0.len() > 1 { at.index(j) } else { at };
            if !d.consumes.contains(&fmt.name) {
                return Err(ctx.err(
                    &at,
                    format!(
                        "`{}` ({} {}) cannot read the {} frames `{}` produces: {}; expected \
                         one of {}",
                        consumer.name,
                        article(d.driver),
                        d.driver,
                        fmt.name,
                        from.name,
                        d.why,
                        d.consumes.join(", ")
                    ),
                ));
            }
            let swap = consumer.params.transform == Some(IspTransform::SwapUv);
            let semi_planar_8bit = fmt.planes.len() == 2 && fmt.bits_per_sample == 8;
            if swap && !semi_planar_8bit {
                return Err(ctx.err(
                    &root.key("nodes").index(k).key("params").key("transform"),
                    format!(
                        "`swap_uv` swaps the bytes of interleaved 8-bit chroma pairs, and `{}` \
                         feeds {} frames: expected an input of NV12, NV21 or NV16 (or another \
                         transform)",
                        from.name, fmt.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// "a" or "an" before a driver name.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use crate::validate;

    /// camera (format `cam`) -> isp (format `isp`, params `params`) -> `sink` (a driver).
    fn scenario(cam: &str, isp: &str, params: &str, sink: &str) -> String {
        format!(
            "name = \"f\"\nframes = 2\n\n[[nodes]]\nname = \"cam\"\ndriver = \"camera\"\n\
             device = \"camera0\"\nformat = \"{cam}\"\nwidth = 64\nheight = 64\n\n[[nodes]]\n\
             name = \"isp\"\ndriver = \"isp\"\ndevice = \"isp0\"\nformat = \"{isp}\"\nwidth = 64\n\
             height = 64\nparams = {{ {params} }}\n\n[[nodes]]\nname = \"sink\"\n\
             driver = \"{sink}\"\ndevice = \"gpu0\"\nwidth = 64\nheight = 64\n\n[[links]]\n\
             from = \"cam\"\nto = \"isp\"\n\n[[links]]\nfrom = \"isp\"\nto = \"sink\"\n"
        )
    }

    #[test]
    fn every_table_format_is_accepted_and_sizes_follow_the_table() {
        for f in &drivers::format::FORMATS {
            let text = scenario(f.name, "NV12", "transform = \"copy\"", "encoder");
            let s = validate(&text, "f.toml").unwrap_or_else(|e| panic!("{}: {e}", f.name));
            let link = &s.links[0];
            assert_eq!(s.buffer_size(link), f.frame_size(64, 64), "{}", f.name);
        }
    }

    #[test]
    fn an_unknown_format_is_refused_at_its_value_with_the_table() {
        let e = validate(&scenario("NV99", "NV12", "", "encoder"), "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.toml:8:10: unknown format `NV99`"), "{e}");
        assert!(e.contains("NV12, NV21, NV16, P010, NV15"), "{e}");
        assert!(e.contains("SRGGB10P, SRGGB12"), "{e}");
    }

    #[test]
    fn a_format_the_producer_cannot_write_is_refused_at_the_node() {
        let e = validate(&scenario("SRGGB10P", "SRGGB12", "", "encoder"), "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.toml:16:10: `nodes[1].format`"), "{e}");
        assert!(e.contains("an isp cannot produce SRGGB12"), "{e}");
    }

    #[test]
    fn a_format_the_consumer_cannot_read_is_refused_at_the_link() {
        let text = scenario("SRGGB10P", "NV12", "", "encoder")
            .replace("to = \"isp\"", "to = [\"isp\", \"sink\"]");
        let e = validate(&text, "f.toml").unwrap_err().to_string();
        assert!(e.contains("`links[0].to[1]`"), "{e}");
        assert!(e.contains("cannot read the SRGGB10P frames"), "{e}");
        // The thumbnailer reads NV12 only.
        let e = validate(&scenario("NV12", "P010", "", "thumbnailer"), "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the P010 frames"), "{e}");
        assert!(validate(&scenario("NV12", "NV12", "", "thumbnailer"), "f.toml").is_ok());
    }

    #[test]
    fn packed_formats_need_their_width_multiple() {
        let text = scenario("NV15", "NV12", "", "encoder").replacen("width = 64", "width = 66", 1);
        let e = validate(&text, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains("`nodes[0].width`: width 66: NV15 packs 4 pixels"),
            "{e}"
        );
    }

    #[test]
    fn swap_uv_needs_8_bit_semi_planar_input() {
        let e = validate(
            &scenario("P010", "NV12", "transform = \"swap_uv\"", "encoder"),
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`nodes[1].params.transform`"), "{e}");
        assert!(validate(
            &scenario("NV21", "NV21", "transform = \"swap_uv\"", "encoder"),
            "f.toml"
        )
        .is_ok());
    }
}
