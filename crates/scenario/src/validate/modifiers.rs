//! Format modifiers and migration engines: what `dmabuf check` knows before anything runs.
//!
//! - every modifier a `[soc]` device lists is in the table (`drivers::modifier`);
//! - `[soc] migrate_with` and a link's `migrate_with` name `cpu` or a device of the machine;
//! - every link's devices (producer and every consumer, late ones too) share a modifier: the
//!   constraint exporter's preference is the producer device's list, any other exporter's
//!   buffers are linear. An empty intersection is the runtime's `EINVAL`
//!   (`Conflict::NoCommonModifier`), refused here with each device's list.
//!
//! Runs after the pipeline checks (every name a link gives exists).

use super::{Ctx, FieldPath};
use crate::error::ScenarioError;
use crate::schema::{Exporter, ScenarioFile};
use constraint::{Conflict, ImageLayouts, MOD_LINEAR};
use drivers::modifier::{modifier_names, ImageSpec, ModifierInfo};
use soc::SocDesc;

/// Checks the machine's modifier lists and `migrate_with` (`given`: the file wrote `[soc]`).
pub(super) fn check_machine(
    ctx: &Ctx<'_>,
    soc: &SocDesc,
    given: bool,
) -> Result<(), ScenarioError> {
    let at = FieldPath::root().key("soc");
    for (i, d) in soc.devices.iter().enumerate() {
        for (j, m) in d.modifiers.iter().enumerate() {
            if ModifierInfo::by_name(m).is_none() {
                let p = at.key("devices").index(i).key("modifiers").index(j);
                let p = if given {
                    p
                } else {
                    FieldPath::root().key("soc")
                };
                return Err(ctx.err(
                    &p,
                    format!(
                        "EINVAL: device `{}` lists modifier `{m}`, which is not in the table: \
                         expected one of {}",
                        d.name,
                        modifier_names()
                    ),
                ));
            }
        }
    }
    if let Some(m) = &soc.migrate_with {
        engine(ctx, soc, &at.key("migrate_with"), m)?;
    }
    Ok(())
}

fn engine(ctx: &Ctx<'_>, soc: &SocDesc, at: &FieldPath, name: &str) -> Result<(), ScenarioError> {
    if name == "cpu" || soc.devices.iter().any(|d| d.name == name) {
        return Ok(());
    }
    Err(ctx.err(
        at,
        format!(
            "ENODEV: migrate_with `{name}` is neither `cpu` nor a device: expected `cpu` or one of {}",
            soc.devices
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// Checks every link's `migrate_with` and modifier intersection.
pub(super) fn check_links(
    ctx: &Ctx<'_>,
    raw: &ScenarioFile,
    soc: &SocDesc,
) -> Result<(), ScenarioError> {
    let root = FieldPath::root();
    for (i, l) in raw.links.iter().enumerate() {
        let p = root.key("links").index(i);
        if let Some(m) = &l.migrate_with {
            engine(ctx, soc, &p.key("migrate_with"), m)?;
        }
        let Some(producer) = raw.nodes.iter().find(|n| n.name == l.from) else {
            continue;
        };
        let users: Vec<&str> = std::iter::once(producer.device.as_str())
            .chain(
                l.to.0
                    .iter()
                    .filter_map(|t| raw.nodes.iter().find(|n| &n.name == t))
                    .map(|n| n.device.as_str()),
            )
            .collect();
        let lists: Vec<(String, Vec<String>)> = users
            .iter()
            .filter_map(|u| soc.devices.iter().find(|d| d.name == *u))
            .map(|d| (d.name.clone(), d.modifiers.clone()))
            .collect();
        let negotiates = l.effective_exporter() == Some(Exporter::Constraint);
        let preference: Vec<String> = match lists.first() {
            Some((_, m)) if negotiates && !m.is_empty() => m.clone(),
            _ => vec![MOD_LINEAR.to_string()],
        };
        let supports = |list: &[String], m: &str| {
            if list.is_empty() {
                m == MOD_LINEAR
            } else {
                list.iter().any(|x| x == m)
            }
        };
        let image = ImageSpec {
            format: producer.format.info(),
            width: producer.width,
            height: producer.height,
        };
        let mut passed_over = Vec::new();
        let found = preference.iter().any(|m| {
            if !lists.iter().all(|(_, list)| supports(list, m)) {
                return false;
            }
            match image.layout(m, 1) {
                Ok(_) => true,
                Err(why) => {
                    passed_over.push((m.clone(), why));
                    false
                }
            }
        });
        if !found {
            let devices = lists
                .into_iter()
                .map(|(d, m)| {
                    let m = if m.is_empty() {
                        vec![format!("{MOD_LINEAR} (lists none)")]
                    } else {
                        m
                    };
                    (d, m)
                })
                .collect();
            let c = Conflict::NoCommonModifier {
                preference,
                devices,
                passed_over,
            };
            let exporter = if negotiates {
                "the constraint exporter negotiates among the producer's modifiers"
            } else {
                "this exporter's buffers are linear"
            };
            return Err(ctx.err(&p.key("to"), format!("EINVAL: {c} ({exporter})")));
        }
    }
    Ok(())
}
