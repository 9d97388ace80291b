//! Stage 2: the `[soc]` table, or `soc = "NAME"` naming a bundled machine ([`soc::bundled`]).
//!
//! A name is resolved first (an unknown one is an error at the `soc` key listing the bundled
//! machines); a bundled machine is then checked like the default one. For a table, the scenario
//! checks what it can place precisely (names, bank layout, size limits, IOMMU
//! references), then asks [`soc::Soc::new`] to validate the rest; soc's messages name the field
//! (`devices[1].dma_mask_bits`), which is mapped back to its position under `soc`.

use super::{Ctx, FieldPath, MAX_BANK_SIZE, MAX_CMA_SIZE, MAX_TOTAL_MEMORY};
use crate::error::ScenarioError;
use crate::schema::SocChoice;
use soc::{human_size, BankKind, SocDesc, PAGE_SIZE};
use std::collections::HashSet;

/// The machine the scenario runs on, and whether the file described it itself (`[soc]`): the
/// bundled machine `soc = "NAME"` names, or the default one when there is no `soc` key.
pub(super) fn resolve(
    ctx: &Ctx<'_>,
    choice: Option<&SocChoice>,
) -> Result<(SocDesc, bool), ScenarioError> {
    match choice {
        None => Ok((SocDesc::default_soc(), false)),
        Some(SocChoice::Desc(d)) => Ok((d.clone(), true)),
        Some(SocChoice::Named(name)) => {
            soc::bundled::machine(name)
                .map(|d| (d, false))
                .ok_or_else(|| {
                    ctx.err(
                        &FieldPath::root().key("soc"),
                        format!(
                        "no bundled machine is named `{name}`: expected one of {} (`dmabuf soc` \
                         lists them), or a `[soc]` table",
                        soc::bundled::machine_names()
                    ),
                    )
                })
        }
    }
}

/// Checks `soc` (written in the file iff `given`).
pub(super) fn check(ctx: &Ctx<'_>, soc: &SocDesc, given: bool) -> Result<(), ScenarioError> {
    let at = FieldPath::root().key("soc");
    if !given {
        // The bundled machine is known good; building it is still cheap enough to prove it.
        return build(ctx, soc, &at);
    }
    if soc.banks.is_empty() {
        return Err(ctx.err(
            &at,
            "`[soc]` has no `[[soc.banks]]`: expected at least one system bank",
        ));
    }
    unique(
        ctx,
        &at.key("banks"),
        "bank",
        soc.banks.iter().map(|b| &b.name),
    )?;
    unique(
        ctx,
        &at.key("cma"),
        "CMA region",
        soc.cma.iter().map(|c| &c.name),
    )?;
    unique(
        ctx,
        &at.key("iommus"),
        "IOMMU",
        soc.iommus.iter().map(|m| &m.name),
    )?;
    unique(
        ctx,
        &at.key("devices"),
        "device",
        soc.devices.iter().map(|d| &d.name),
    )?;
    banks(ctx, soc, &at)?;
    memory_controllers(ctx, soc, &at)?;
    for (i, c) in soc.cma.iter().enumerate() {
        let p = at.key("cma").index(i);
        match soc.banks.iter().find(|b| b.name == c.bank) {
            None => {
                return Err(ctx.err(
                    &p.key("bank"),
                    format!(
                    "CMA region `{}` names bank `{}`, which is not in `[[soc.banks]]` (banks: {})",
                    c.name,
                    c.bank,
                    list(soc.banks.iter().map(|b| &b.name))
                ),
                ))
            }
            Some(b) if b.kind != BankKind::System => {
                return Err(ctx.err(
                    &p.key("bank"),
                    format!(
                        "CMA region `{}` is in bank `{}`, a {} bank: expected a system bank",
                        c.name, c.bank, b.kind
                    ),
                ))
            }
            Some(_) => {}
        }
        if c.size.bytes() > MAX_CMA_SIZE {
            return Err(ctx.err(
                &p.key("size"),
                format!(
                    "CMA region `{}` is {}: expected at most {}",
                    c.name,
                    c.size,
                    human_size(MAX_CMA_SIZE)
                ),
            ));
        }
    }
    for (i, d) in soc.devices.iter().enumerate() {
        if let Some(iommu) = &d.iommu {
            if !soc.iommus.iter().any(|m| &m.name == iommu) {
                return Err(ctx.err(
                    &at.key("devices").index(i).key("iommu"),
                    format!(
                        "device `{}` names IOMMU `{iommu}`, which is not in `[[soc.iommus]]` ({})",
                        d.name,
                        if soc.iommus.is_empty() {
                            "there is none; omit `iommu` for a direct-mapped device".to_string()
                        } else {
                            format!("IOMMUs: {}", list(soc.iommus.iter().map(|m| &m.name)))
                        }
                    ),
                ));
            }
        }
    }
    build(ctx, soc, &at)
}

fn banks(ctx: &Ctx<'_>, soc: &SocDesc, at: &FieldPath) -> Result<(), ScenarioError> {
    let mut total: u64 = 0;
    for (i, b) in soc.banks.iter().enumerate() {
        let p = at.key("banks").index(i);
        let (base, size) = (b.base.bytes(), b.size.bytes());
        if size == 0 || size % PAGE_SIZE != 0 {
            return Err(ctx.err(
                &p.key("size"),
                format!(
                    "bank `{}` has size {size:#x}: expected a non-zero multiple of the page size ({PAGE_SIZE:#x})",
                    b.name
                ),
            ));
        }
        if size > MAX_BANK_SIZE {
            return Err(ctx.err(
                &p.key("size"),
                format!(
                    "bank `{}` is {}: expected at most {}",
                    b.name,
                    b.size,
                    human_size(MAX_BANK_SIZE)
                ),
            ));
        }
        if base % PAGE_SIZE != 0 {
            return Err(ctx.err(
                &p.key("base"),
                format!(
                    "bank `{}` starts at {base:#x}: expected a multiple of the page size ({PAGE_SIZE:#x})",
                    b.name
                ),
            ));
        }
        let Some(end) = base.checked_add(size) else {
            return Err(ctx.err(
                &p.key("base"),
                format!("bank `{}` runs past the 64-bit address space", b.name),
            ));
        };
        if let Some(o) = soc.banks[..i]
            .iter()
            .find(|o| base < o.base.bytes().saturating_add(o.size.bytes()) && o.base.bytes() < end)
        {
            return Err(ctx.err(
                &p.key("base"),
                format!(
                    "bank `{}` [{base:#x}, {end:#x}) overlaps bank `{}` [{:#x}, {:#x}): banks must not overlap",
                    b.name,
                    o.name,
                    o.base.bytes(),
                    o.base.bytes().saturating_add(o.size.bytes())
                ),
            ));
        }
        total = total.saturating_add(size);
        if total > MAX_TOTAL_MEMORY {
            return Err(ctx.err(
                &p.key("size"),
                format!(
                    "the banks add up to more than {}: expected at most that much memory",
                    human_size(MAX_TOTAL_MEMORY)
                ),
            ));
        }
    }
    if !soc.banks.iter().any(|b| b.kind == BankKind::System) {
        return Err(ctx.err(
            &at.key("banks"),
            "no bank has `kind = \"system\"`: expected at least one bank of system RAM",
        ));
    }
    Ok(())
}

/// Builds the machine with [`soc::Soc::new`] and maps its error to the field it names.
fn build(ctx: &Ctx<'_>, soc: &SocDesc, at: &FieldPath) -> Result<(), ScenarioError> {
    let Err(e) = soc::Soc::new(soc.clone()) else {
        return Ok(());
    };
    let full = e.to_string();
    let msg = full.trim_start_matches("invalid SoC description: ");
    let path = quoted(msg)
        .iter()
        .find_map(|q| FieldPath::parse(q).filter(|p| p.0.len() > 1))
        .map(|p| p.under(at))
        .or_else(|| {
            // "bank `x` ...", "CMA region `x`: ...": find the entry by name.
            let first = quoted(msg).into_iter().next()?;
            let find = |key: &str, names: Vec<&String>| {
                names
                    .iter()
                    .position(|n| n.as_str() == first)
                    .map(|i| at.key(key).index(i))
            };
            if msg.contains("CMA region") {
                find("cma", soc.cma.iter().map(|c| &c.name).collect())
            } else if msg.contains("bank") {
                find("banks", soc.banks.iter().map(|b| &b.name).collect())
            } else {
                None
            }
        })
        .unwrap_or_else(|| at.clone());
    Err(ctx.err(&path, format!("the machine does not build: {msg}")))
}

/// The back-quoted words of a message.
fn quoted(msg: &str) -> Vec<&str> {
    msg.split('`').skip(1).step_by(2).collect()
}

/// Checks that names are non-empty and unique in one list at `at`.
fn unique<'a>(
    ctx: &Ctx<'_>,
    at: &FieldPath,
    what: &str,
    names: impl Iterator<Item = &'a String>,
) -> Result<(), ScenarioError> {
    let mut seen = HashSet::new();
    for (i, n) in names.enumerate() {
        if n.trim().is_empty() {
            return Err(ctx.err(
                &at.index(i).key("name"),
                format!("the {what} name is empty: expected a name"),
            ));
        }
        if !seen.insert(n.as_str()) {
            return Err(ctx.err(
                &at.index(i).key("name"),
                format!("a second {what} is named `{n}`: expected unique names"),
            ));
        }
    }
    Ok(())
}

/// `a, b, c` (or `none`).
pub(super) fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// `[[soc.memory_controllers]]` ([`soc::bandwidth`]): unique names, a bandwidth above zero,
/// banks that exist, each bank served by at most one controller.
fn memory_controllers(ctx: &Ctx<'_>, soc: &SocDesc, at: &FieldPath) -> Result<(), ScenarioError> {
    let at = at.key("memory_controllers");
    unique(
        ctx,
        &at,
        "memory controller",
        soc.memory_controllers.iter().map(|m| &m.name),
    )?;
    let mut served: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (i, mc) in soc.memory_controllers.iter().enumerate() {
        let p = at.index(i);
        if mc.bandwidth_bps == 0 {
            return Err(ctx.err(
                &p.key("bandwidth_bps"),
                format!(
                    "memory controller `{}` has a bandwidth of 0: expected bytes per second above \
                     zero (e.g. 34_000_000_000 for LPDDR4x-4266 on a 64-bit bus)",
                    mc.name
                ),
            ));
        }
        if mc.banks.is_empty() {
            return Err(ctx.err(
                &p.key("banks"),
                format!(
                    "memory controller `{}` serves no bank: expected names from `[[soc.banks]]` \
                     ({})",
                    mc.name,
                    list(soc.banks.iter().map(|b| &b.name))
                ),
            ));
        }
        for (j, b) in mc.banks.iter().enumerate() {
            if !soc.banks.iter().any(|x| &x.name == b) {
                return Err(ctx.err(
                    &p.key("banks").index(j),
                    format!(
                        "memory controller `{}` names bank `{b}`, which is not in \
                         `[[soc.banks]]` (banks: {})",
                        mc.name,
                        list(soc.banks.iter().map(|b| &b.name))
                    ),
                ));
            }
            if let Some(other) = served.insert(b.as_str(), mc.name.as_str()) {
                return Err(ctx.err(
                    &p.key("banks").index(j),
                    format!(
                        "bank `{b}` is served by memory controller `{other}` already: expected \
                         each bank in at most one controller"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::validate;

    /// A scenario with `top` among its top-level keys (`soc = ...`) and `table` (a `[soc]` table)
    /// at its end, a camera on device `cam` feeding a display on device `screen`.
    fn scenario(top: &str, table: &str, cam: &str, screen: &str) -> String {
        format!(
            "name = \"m\"\nframes = 2\n{top}\n\n[[nodes]]\nname = \"cam\"\ndriver = \"camera\"\n\
             device = \"{cam}\"\nwidth = 64\nheight = 64\n\n[[nodes]]\nname = \"screen\"\n\
             driver = \"display\"\ndevice = \"{screen}\"\nwidth = 64\nheight = 64\n\n[[links]]\n\
             from = \"cam\"\nto = \"screen\"\n\n{table}\n"
        )
    }

    /// The two first devices of bundled machine `name`.
    fn two_devices(name: &str) -> (String, String) {
        let d = soc::bundled::machine(name).unwrap().devices;
        (d[0].name.clone(), d[1].name.clone())
    }

    #[test]
    fn a_bundled_machine_is_picked_by_name() {
        for m in soc::bundled::machines() {
            let (cam, screen) = two_devices(m.name);
            let text = scenario(&format!("soc = \"{}\"", m.name), "", &cam, &screen);
            let s = validate(&text, "m.toml").unwrap_or_else(|e| panic!("{}: {e}", m.name));
            assert_eq!(s.soc, soc::bundled::machine(m.name).unwrap(), "{}", m.name);
        }
    }

    #[test]
    fn printed_machines_paste_into_a_scenario_unchanged() {
        // `dmabuf soc NAME` prints soc::bundled::machine_toml(NAME): pasted as the scenario's
        // `[soc]`, it validates and is the bundled machine.
        for m in soc::bundled::machines() {
            let (cam, screen) = two_devices(m.name);
            let printed = soc::bundled::machine_toml(m.name).unwrap();
            let text = scenario("", &printed, &cam, &screen);
            let s = validate(&text, "pasted.toml").unwrap_or_else(|e| panic!("{}: {e}", m.name));
            assert_eq!(s.soc, soc::bundled::machine(m.name).unwrap(), "{}", m.name);
        }
    }

    #[test]
    fn an_unknown_machine_name_is_refused_at_the_soc_key_with_the_names() {
        let text = scenario("soc = \"rk9999\"", "", "camera0", "display0");
        let e = validate(&text, "m.toml").unwrap_err().to_string();
        assert!(
            e.starts_with("m.toml:3:7: `soc`: no bundled machine"),
            "{e}"
        );
        assert!(e.contains("default, rk3588, imx8mp, rpi5"), "{e}");
    }

    #[test]
    fn a_name_and_a_table_together_are_refused_at_the_table() {
        let text = scenario(
            "soc = \"rk3588\"",
            "[soc]\ncpu_cache = { size = \"1MiB\" }",
            "camera0",
            "display0",
        );
        let e = validate(&text, "m.toml").unwrap_err().to_string();
        assert!(e.starts_with("m.toml:23:"), "{e}");
    }

    #[test]
    fn a_soc_of_the_wrong_type_names_both_forms() {
        let text = scenario("soc = 3", "", "camera0", "display0");
        let e = validate(&text, "m.toml").unwrap_err().to_string();
        assert!(e.starts_with("m.toml:3:7"), "{e}");
        assert!(e.contains("name of a bundled machine"), "{e}");
    }

    #[test]
    fn unknown_keys_in_a_soc_table_are_still_named() {
        let text = scenario("", "[soc]\ncolour = 1", "camera0", "display0");
        let e = validate(&text, "m.toml").unwrap_err().to_string();
        assert!(e.starts_with("m.toml:24:1"), "{e}");
        assert!(e.contains("colour"), "{e}");
    }
}
