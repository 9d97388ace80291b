//! Stage 3, continued: `[[events]]` (flat tables into typed [`Event`]s) and `[expect]`.

use super::machine::list;
use super::{Ctx, FieldPath, MAX_BUFFERS, MAX_EVENT_US};
use crate::clock::VirtualTime;
use crate::error::ScenarioError;
use crate::schema::{
    ActionKind, At, DriverKind, Event, EventAction, EventDesc, FaultKind, NodeDesc, QueueKind,
    ScenarioFile, SyncMode,
};
use soc::{BankKind, SocDesc};

/// The optional fields of an event, with whether each is set.
fn fields(e: &EventDesc) -> [(&'static str, bool); 9] {
    [
        ("node", e.node.is_some()),
        ("process", e.process.is_some()),
        ("link", e.link.is_some()),
        ("bank", e.bank.is_some()),
        ("bytes", e.bytes.is_some()),
        ("for_frames", e.for_frames.is_some()),
        ("count", e.count.is_some()),
        ("queue", e.queue.is_some()),
        ("fault", e.fault.is_some()),
    ]
}

/// The fields each action requires and the ones it also accepts.
fn shape(a: ActionKind) -> (&'static [&'static str], &'static [&'static str]) {
    match a {
        ActionKind::Attach | ActionKind::Detach => (&["node"], &[]),
        ActionKind::VramPressure => (&["bytes"], &["bank", "for_frames"]),
        ActionKind::MemoryPressure => (&["bank", "bytes"], &["for_frames"]),
        ActionKind::Kill => (&["process"], &[]),
        ActionKind::StreamOff | ActionKind::StreamOn => (&["node"], &["queue"]),
        ActionKind::SetBuffers => (&["link", "count"], &[]),
        ActionKind::Fault => (&["node", "fault"], &["for_frames"]),
        ActionKind::Bufinfo => (&[], &[]),
    }
}

/// Checks every event and `[expect]`; returns the typed events in file order.
pub(super) fn check(
    ctx: &Ctx<'_>,
    raw: &ScenarioFile,
    soc: &SocDesc,
) -> Result<Vec<Event>, ScenarioError> {
    let events = raw
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            event(
                ctx,
                &FieldPath::root().key("events").index(i),
                i,
                e,
                raw,
                soc,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    expect(ctx, raw)?;
    Ok(events)
}

fn event(
    ctx: &Ctx<'_>,
    p: &FieldPath,
    index: usize,
    e: &EventDesc,
    raw: &ScenarioFile,
    soc: &SocDesc,
) -> Result<Event, ScenarioError> {
    let at = match (e.at_frame, e.at_us) {
        (Some(_), Some(_)) => {
            return Err(ctx.err(
                &p.key("at_us"),
                "both `at_frame` and `at_us`: expected exactly one of them",
            ))
        }
        (None, None) => {
            return Err(ctx.err(
                p,
                format!(
                    "`{}` event has no time: expected `at_frame = N` or `at_us = N`",
                    e.action.name()
                ),
            ))
        }
        (Some(f), None) if f >= raw.frames => {
            return Err(ctx.err(
                &p.key("at_frame"),
                format!(
                    "frame {f} is past the end: the scenario runs frames 0 to {}",
                    raw.frames - 1
                ),
            ))
        }
        (Some(f), None) => At::Frame(f),
        (None, Some(us)) if us > MAX_EVENT_US => {
            return Err(ctx.err(
                &p.key("at_us"),
                format!("{us} us: expected at most {MAX_EVENT_US} (one day)"),
            ))
        }
        (None, Some(us)) => At::Time(VirtualTime::from_us(us)),
    };
    let (required, optional) = shape(e.action);
    for (field, set) in fields(e) {
        if required.contains(&field) && !set {
            return Err(ctx.err(
                p,
                format!(
                    "`{}` event without `{field}`: expected {}",
                    e.action.name(),
                    required
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            ));
        }
        if set && !required.contains(&field) && !optional.contains(&field) {
            let mut takes: Vec<String> = required.iter().map(|f| format!("`{f}`")).collect();
            takes.extend(optional.iter().map(|f| format!("`{f}` (optional)")));
            if takes.is_empty() {
                takes.push("no field besides `at_frame` and `action`".into());
            }
            return Err(ctx.err(
                &p.key(field),
                format!(
                    "`{}` events do not take `{field}`: expected {}",
                    e.action.name(),
                    takes.join(", ")
                ),
            ));
        }
    }
    let node_names = || list(raw.nodes.iter().map(|n| &n.name));
    let node = |field: &str| {
        let name = e.node.as_deref().unwrap_or_default();
        raw.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            ctx.err(
                &p.key(field),
                format!("no node is named `{name}` (nodes: {})", node_names()),
            )
        })
    };
    let action = match e.action {
        ActionKind::Attach => EventAction::Attach {
            node: node("node")?.name.clone(),
        },
        ActionKind::Detach => EventAction::Detach {
            node: node("node")?.name.clone(),
        },
        ActionKind::StreamOff | ActionKind::StreamOn => {
            let n = node("node")?;
            let mut has = n.driver.queues().to_vec();
            // An encoder that feeds no link writes its bitstream into a buffer of its own: no
            // CAPTURE queue.
            if n.driver == DriverKind::Encoder && !raw.links.iter().any(|l| l.from == n.name) {
                has.retain(|&q| q != QueueKind::Capture);
            }
            if has.is_empty() {
                return Err(ctx.err(
                    &p.key("node"),
                    format!(
                        "`{}` is a {} node, which has no vb2 queue to stream on or off",
                        n.name, n.driver
                    ),
                ));
            }
            let queues = match e.queue {
                Some(QueueKind::Capture) if n.driver == DriverKind::Encoder && has.len() == 1 => {
                    return Err(ctx.err(
                        &p.key("queue"),
                        format!(
                            "encoder `{}` feeds no link: it writes its bitstream into a buffer of \
                             its own and has no capture queue: expected output",
                            n.name
                        ),
                    ))
                }
                Some(q) if !has.contains(&q) => {
                    return Err(ctx.err(
                        &p.key("queue"),
                        format!(
                            "a {} node has no {} queue: expected {}",
                            n.driver,
                            q.name(),
                            has.iter()
                                .map(|q| q.name())
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    ))
                }
                Some(q) => vec![q],
                None => has,
            };
            let node = n.name.clone();
            if e.action == ActionKind::StreamOff {
                EventAction::StreamOff { node, queues }
            } else {
                EventAction::StreamOn { node, queues }
            }
        }
        ActionKind::Kill => {
            let proc = e.process.clone().unwrap_or_default();
            if !raw.nodes.iter().any(|n| n.process_name() == proc) {
                let mut procs: Vec<String> = raw
                    .nodes
                    .iter()
                    .map(|n| n.process_name().to_string())
                    .collect();
                procs.sort();
                procs.dedup();
                return Err(ctx.err(
                    &p.key("process"),
                    format!(
                        "no node runs in process `{proc}` (processes: {})",
                        list(procs.iter())
                    ),
                ));
            }
            EventAction::Kill { process: proc }
        }
        ActionKind::SetBuffers => {
            let link = e.link.clone().unwrap_or_default();
            if !raw.links.iter().any(|l| l.link_name() == link) {
                let names: Vec<String> = raw.links.iter().map(|l| l.link_name()).collect();
                return Err(ctx.err(
                    &p.key("link"),
                    format!("no link is named `{link}` (links: {})", list(names.iter())),
                ));
            }
            let count = e.count.unwrap_or_default();
            if count == 0 || count > MAX_BUFFERS {
                return Err(ctx.err(
                    &p.key("count"),
                    format!("{count} buffers: expected 1 to {MAX_BUFFERS}"),
                ));
            }
            EventAction::SetBuffers { link, count }
        }
        ActionKind::VramPressure | ActionKind::MemoryPressure => pressure(ctx, p, e, soc)?,
        ActionKind::Bufinfo => EventAction::Bufinfo,
        ActionKind::Fault => {
            let n = node("node")?;
            let fault = e.fault.unwrap_or(FaultKind::SkipFenceWait);
            if let Some(why) = fault_cannot_apply(raw, n, fault) {
                return Err(ctx.err(
                    &p.key("node"),
                    format!(
                        "`{}` is a {} node, where `{}` cannot apply: {why}",
                        n.name,
                        n.driver,
                        fault.name()
                    ),
                ));
            }
            let jobs = e.for_frames.unwrap_or(1);
            if jobs == 0 {
                return Err(ctx.err(
                    &p.key("for_frames"),
                    "0 frames: expected at least 1 (default 1)",
                ));
            }
            EventAction::Fault {
                node: n.name.clone(),
                fault,
                jobs,
            }
        }
    };
    Ok(Event { index, at, action })
}

/// Why `fault` cannot apply to node `n`, if it cannot (the runner could not inject it).
fn fault_cannot_apply(raw: &ScenarioFile, n: &NodeDesc, fault: FaultKind) -> Option<String> {
    let reads = raw.links.iter().any(|l| l.feeds(&n.name));
    let writes = raw.links.iter().any(|l| l.from == n.name);
    match fault {
        FaultKind::SkipCacheSync if n.driver != DriverKind::Thumbnailer => Some(
            "the only CPU access to a frame is a thumbnailer's read (devices need no CPU cache \
             maintenance between them): expected a thumbnailer node"
                .into(),
        ),
        FaultKind::SkipFenceWait => {
            // A GPU, camera or ISP producer hands an explicit link's frame over at its job's
            // submission, with the job's out-fence.
            let early = raw.links.iter().any(|l| {
                l.feeds(&n.name)
                    && l.sync == SyncMode::Explicit
                    && raw.nodes.iter().any(|p| {
                        p.name == l.from
                            && matches!(
                                p.driver,
                                DriverKind::Gpu | DriverKind::Camera | DriverKind::Isp
                            )
                    })
            });
            (!early || n.driver == DriverKind::Thumbnailer).then(|| {
                "a frame reaches it only once its producer's job is over, so there is no fence \
                 to skip: expected a device node reading a `sync = \"explicit\"` link from a \
                 gpu, camera or isp node (its frames arrive at the producer job's submission, \
                 with its out-fence)"
                    .into()
            })
        }
        FaultKind::EarlyRelease if !writes || n.driver == DriverKind::Gpu => Some(
            "expected a camera or ISP node writing a link (a V4L2 producer re-queuing a buffer)"
                .into(),
        ),
        FaultKind::WrongDirection if n.driver == DriverKind::Thumbnailer || !(reads || writes) => {
            Some("expected a device node with a link (the CPU maps nothing)".into())
        }
        _ => None,
    }
}

fn pressure(
    ctx: &Ctx<'_>,
    p: &FieldPath,
    e: &EventDesc,
    soc: &SocDesc,
) -> Result<EventAction, ScenarioError> {
    let vram = e.action == ActionKind::VramPressure;
    let want = if vram {
        BankKind::DeviceLocal
    } else {
        BankKind::System
    };
    let of_kind: Vec<&String> = soc
        .banks
        .iter()
        .filter(|b| b.kind == want)
        .map(|b| &b.name)
        .collect();
    let bank = match (&e.bank, of_kind.as_slice()) {
        (Some(b), _) => b.clone(),
        (None, [only]) => (*only).clone(),
        (None, _) => {
            return Err(ctx.err(
                p,
                format!(
                "`vram_pressure` without `bank`, and the machine has {} device_local banks ({}): \
                     expected `bank` naming one",
                of_kind.len(),
                list(of_kind.iter().copied())
            ),
            ))
        }
    };
    let Some(b) = soc.banks.iter().find(|b| b.name == bank) else {
        return Err(ctx.err(
            &p.key("bank"),
            format!(
                "no bank is named `{bank}` (banks: {})",
                list(soc.banks.iter().map(|b| &b.name))
            ),
        ));
    };
    if b.kind != want {
        let kind = if vram { "device_local" } else { "system" };
        return Err(ctx.err(
            &p.key("bank"),
            format!(
                "bank `{bank}` is a {} bank: `{}` expects a {kind} bank ({})",
                b.kind,
                e.action.name(),
                list(of_kind.iter().copied())
            ),
        ));
    }
    let bytes = e.bytes.map_or(0, |b| b.bytes());
    if bytes == 0 || bytes > b.size.bytes() {
        return Err(ctx.err(
            &p.key("bytes"),
            format!(
                "{bytes:#x} bytes: expected more than 0 and at most the bank's size ({})",
                b.size
            ),
        ));
    }
    if e.for_frames == Some(0) {
        return Err(ctx.err(
            &p.key("for_frames"),
            "0 frames: expected at least 1 (omit it to keep the pressure to the end)",
        ));
    }
    Ok(if vram {
        EventAction::VramPressure {
            bank,
            bytes,
            for_frames: e.for_frames,
        }
    } else {
        EventAction::MemoryPressure {
            bank,
            bytes,
            for_frames: e.for_frames,
        }
    })
}

fn expect(ctx: &Ctx<'_>, raw: &ScenarioFile) -> Result<(), ScenarioError> {
    let p = FieldPath::root().key("expect");
    for (i, f) in raw.expect.findings.iter().enumerate() {
        if f.trim().is_empty() {
            return Err(ctx.err(
                &p.key("findings").index(i),
                "an empty finding kind: expected a checker finding kind",
            ));
        }
    }
    if let Some(name) = &raw.expect.error {
        let known = (1..=600)
            .any(|n| uapi::Errno::from_raw(n).and_then(uapi::Errno::name) == Some(name.as_str()));
        if !known {
            return Err(ctx.err(
                &p.key("error"),
                format!("`{name}` is not an errno name: expected one like `ENOMEM` or `EBUSY`"),
            ));
        }
    }
    if let Some(code) = raw.expect.exit {
        if code > 2 {
            return Err(ctx.err(
                &p.key("exit"),
                format!("exit code {code}: expected 0, 1 or 2"),
            ));
        }
        // What the rest of `[expect]` says the run does decides the exit code: a scenario
        // that fails on purpose never exits 0, and one that validates never exits 2.
        let fails = raw.expect.error.is_some()
            || raw.expect.corrupted == crate::schema::CorruptedExpect::Some;
        if code == 2 || (code == 0 && fails) {
            return Err(ctx.err(
                &p.key("exit"),
                format!(
                    "exit code {code} contradicts the scenario: {}",
                    if code == 2 {
                        "a scenario that validates never exits 2 (that is `dmabuf check`'s \
                         answer to an invalid one)"
                    } else {
                        "with `error` or `corrupted = \"some\"` the run fails (exit 1)"
                    }
                ),
            ));
        }
    }
    Ok(())
}
