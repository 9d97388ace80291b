//! The bundled machines: descriptions of real SoCs a scenario picks by name (`soc = "rk3588"`).
//!
//! Each machine but `default` is a TOML file under `crates/soc/machines/`, embedded in the
//! binary, written as a scenario's `[soc]` table (`[soc]`, `[[soc.banks]]`, `[[soc.devices]]`,
//! ...) so that its text can be pasted into a scenario unchanged; every value carries a comment
//! citing where it comes from (the upstream device tree, the driver's DMA mask, the defconfig) or
//! saying that it is an estimate and why. `default` is [`SocDesc::default_soc`], printed in the
//! same form by [`machine_toml`].
//!
//! Plain data, no state: [`machine`] parses a file on each call (a few kilobytes).

use crate::SocDesc;
use serde::{Deserialize, Serialize};

/// The name of [`SocDesc::default_soc`] among the bundled machines.
pub const DEFAULT_MACHINE: &str = "default";

/// One bundled machine: its name, a one-line description, and its TOML (none for `default`,
/// which is built in code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine {
    /// The name a scenario gives in `soc = "..."`.
    pub name: &'static str,
    /// One line: what the machine is.
    pub description: &'static str,
    /// The machine's file, a `[soc]` table with its sources cited; `None` for `default`.
    pub text: Option<&'static str>,
}

static MACHINES: [Machine; 4] = [
    Machine {
        name: DEFAULT_MACHINE,
        description: "the simulator's reference media SoC: two DRAM banks, a carveout, 2 GiB of \
                      VRAM, one SMMU; camera, ISP, GPU, display and encoder",
        text: None,
    },
    Machine {
        name: "rk3588",
        description: "Rockchip RK3588, 8 GiB: VICAP and two ISPs, rkvenc and VOP2 behind their \
                      IOMMUs, RGA2 without one (32-bit), a UMA Mali-G610",
        text: Some(include_str!("../machines/rk3588.toml")),
    },
    Machine {
        name: "imx8mp",
        description: "NXP i.MX 8M Plus EVK, 6 GiB: no IOMMU, ISP/ISI/LCDIF/Hantro contiguous from \
                      a 960 MiB CMA area below 4 GiB",
        text: Some(include_str!("../machines/imx8mp.toml")),
    },
    Machine {
        name: "rpi5",
        description: "Raspberry Pi 5 (BCM2712 + RP1), 8 GiB: RP1 camera front end, PiSP back end \
                      behind an IOMMU, vc4 HVS scanout, software encoding",
        text: Some(include_str!("../machines/rpi5.toml")),
    },
];

/// Every bundled machine, [`DEFAULT_MACHINE`] first.
pub fn machines() -> &'static [Machine] {
    &MACHINES
}

/// The names of the bundled machines, comma-separated (for messages).
pub fn machine_names() -> String {
    MACHINES
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A scenario-shaped document holding only a `[soc]` table: what the machine files are.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SocTable {
    soc: SocDesc,
}

/// The bundled machine `name`, or `None` if there is none by that name.
///
/// ```
/// let rk = soc::bundled::machine("rk3588").unwrap();
/// assert!(rk.devices.iter().any(|d| d.name == "rga2" && d.iommu.is_none()));
/// assert!(soc::bundled::machine("rk9999").is_none());
/// ```
///
/// # Panics
/// Never for a name [`machines`] lists: every bundled file is parsed by the tests.
pub fn machine(name: &str) -> Option<SocDesc> {
    let m = MACHINES.iter().find(|m| m.name == name)?;
    Some(match m.text {
        None => SocDesc::default_soc(),
        Some(text) => parse(text).unwrap_or_else(|e| panic!("bundled machine {name}: {e}")),
    })
}

/// Parses a machine written as a `[soc]` table (a bundled file, or `dmabuf soc NAME`'s output).
///
/// # Errors
/// The TOML parser's message when the text is not a `[soc]` table of a [`SocDesc`].
pub fn parse(text: &str) -> Result<SocDesc, String> {
    toml::from_str::<SocTable>(text)
        .map(|t| t.soc)
        .map_err(|e| e.to_string())
}

/// The machine `name` as TOML that can be pasted into a scenario in place of `soc = "NAME"`:
/// the bundled file with its citations, or for `default` its serialized description.
pub fn machine_toml(name: &str) -> Option<String> {
    let m = MACHINES.iter().find(|m| m.name == name)?;
    Some(match m.text {
        Some(text) => text.to_string(),
        None => {
            let body = toml::to_string_pretty(&SocTable {
                soc: SocDesc::default_soc(),
            })
            .unwrap_or_else(|e| panic!("the default machine serializes: {e}"));
            format!(
                "# The simulator's reference machine (soc::SocDesc::default_soc): paste under a \
                 scenario's top level,\n# or write `soc = \"default\"` (or give no soc at \
                 all).\n\n{body}"
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_machine_parses_and_builds() {
        for m in machines() {
            let desc = machine(m.name).unwrap();
            crate::Soc::new(desc).unwrap_or_else(|e| panic!("{}: {e}", m.name));
        }
    }

    #[test]
    fn printed_toml_parses_back_to_the_same_machine() {
        for m in machines() {
            let text = machine_toml(m.name).unwrap();
            assert_eq!(
                parse(&text).unwrap(),
                machine(m.name).unwrap(),
                "{}",
                m.name
            );
            assert!(text.contains("[[soc.banks]]"), "{}: {text}", m.name);
            assert!(text.contains("[[soc.devices]]"), "{}", m.name);
        }
    }

    #[test]
    fn every_file_value_carries_a_comment() {
        // Each `key = value` line inside a table of a bundled file says where it comes from.
        for m in machines() {
            let Some(text) = m.text else { continue };
            for (i, line) in text.lines().enumerate() {
                let l = line.trim();
                if l.is_empty() || l.starts_with('#') || l.starts_with('[') {
                    continue;
                }
                let commented = l.contains('#');
                let named = l.starts_with("name =") || l.starts_with("kind =");
                let preceded = text
                    .lines()
                    .nth(i.wrapping_sub(1))
                    .is_some_and(|p| p.trim_start().starts_with('#'));
                assert!(
                    commented || named || preceded,
                    "{} line {}: `{l}` has no source comment",
                    m.name,
                    i + 1
                );
            }
        }
    }

    #[test]
    fn the_rk3588_has_no_vram_and_an_rga2_without_iommu() {
        let rk = machine("rk3588").unwrap();
        assert!(rk
            .banks
            .iter()
            .all(|b| b.kind != crate::BankKind::DeviceLocal));
        let rga = rk.devices.iter().find(|d| d.name == "rga2").unwrap();
        assert_eq!((rga.iommu.as_deref(), rga.dma_mask_bits), (None, 32));
    }

    #[test]
    fn unknown_names_are_none() {
        assert!(machine("nope").is_none());
        assert!(machine_toml("nope").is_none());
        assert!(machine_names().starts_with("default, rk3588"));
    }
}
