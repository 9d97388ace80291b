//! The text summary `dmabuf run` prints.

use super::model::Report;
use super::svg::trim_float;
use crate::error::ExitCode;
use soc::human_size;
use std::fmt::Write;

/// Frames on each side of a migration that its stutter window covers.
pub const STUTTER_WINDOW: u64 = 3;

/// The worst latency in `[frame - STUTTER_WINDOW, frame + STUTTER_WINDOW]`, microseconds.
pub fn stutter_around(report: &Report, frame: u64) -> Option<f64> {
    let lo = frame.saturating_sub(STUTTER_WINDOW);
    let hi = frame.saturating_add(STUTTER_WINDOW);
    report
        .latency_us
        .per_frame
        .iter()
        .filter(|p| (lo..=hi).contains(&p.frame))
        .map(|p| p.us)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
}

fn ms(us: f64) -> String {
    format!("{} ms", trim_float(us / 1000.0))
}

/// The human summary of a report: verdict, frames, latency, buffers and their placement,
/// migrations with the stutter around each, mapping-cache hits, per-device traffic, findings
/// and errors.
///
/// ```
/// let r = scenario::report::Report::new("demo", 7);
/// let text = scenario::report::text_summary(&r);
/// assert!(text.starts_with("scenario demo (seed 7)"));
/// ```
pub fn text_summary(report: &Report) -> String {
    let mut r = report.clone();
    r.normalize();
    let mut s = String::new();
    let verdict = match r.exit_code() {
        ExitCode::Verified => "VERIFIED",
        _ if !r.errors.is_empty() => "FAILED",
        _ => "NOT VERIFIED",
    };
    let f = &r.frames;
    let _ = writeln!(s, "scenario {} (seed {}): {verdict}", r.scenario, r.seed);
    let _ = writeln!(
        s,
        "frames: {} produced, {} delivered, {} dropped, {} corrupted; {} of virtual time",
        f.produced,
        f.delivered,
        f.dropped,
        f.corrupted,
        ms(r.duration_us)
    );
    let l = &r.latency_us;
    let _ = writeln!(
        s,
        "latency: p50 {}, p99 {}, max {} ({} frames)",
        ms(l.p50),
        ms(l.p99),
        ms(l.max),
        f.delivered
    );
    if !r.buffers.is_empty() {
        let _ = writeln!(s, "buffers:");
        let w = r.buffers.iter().map(|b| b.name.len()).max().unwrap_or(0);
        for b in &r.buffers {
            let place = match &b.placement {
                None => "not allocated".to_string(),
                Some(p) => format!(
                    "{} from {} in {}, {}, {} segment{}",
                    p.exporter,
                    p.heap,
                    p.banks.join("+"),
                    if p.contiguous {
                        "contiguous"
                    } else {
                        "scattered"
                    },
                    p.segments,
                    if p.segments == 1 { "" } else { "s" }
                ),
            };
            let _ = writeln!(
                s,
                "  {:w$}  {:>10}  {place}{}",
                b.name,
                human_size(b.size),
                match b.migrations {
                    0 => String::new(),
                    n => format!("; migrated {n}x"),
                }
            );
            if let Some(d) = b.reason.as_ref().and_then(|r| r.decisions.last()) {
                let _ = writeln!(s, "  {:w$}  why: {}", "", d.summary());
            }
        }
    }
    if !r.migrations.is_empty() {
        let _ = writeln!(s, "migrations:");
        for m in &r.migrations {
            let _ = writeln!(
                s,
                "  frame {}: {} {} -> {}, {} copied, stalled {} ({})",
                m.frame,
                m.buffer,
                m.from,
                m.to,
                human_size(m.bytes),
                ms(m.stall_us),
                m.cause
            );
            if let Some(worst) = stutter_around(&r, m.frame) {
                let _ = writeln!(
                    s,
                    "    stutter: worst latency {} within {STUTTER_WINDOW} frames (p50 {})",
                    ms(worst),
                    ms(l.p50)
                );
            }
        }
    }
    let total = r.maps.first + r.maps.cached;
    let _ = writeln!(
        s,
        "maps: {} first, {} cached{}",
        r.maps.first,
        r.maps.cached,
        if total > 0 {
            format!(
                " ({}% served from the cache)",
                trim_float(r.maps.cached as f64 * 100.0 / total as f64)
            )
        } else {
            String::new()
        }
    );
    for q in &r.vb2_queues {
        let _ = writeln!(
            s,
            "  vb2 {} {} {} ({} {}, {}): {} maps, {} unmaps, {} QBUFs, {} STREAMOFFs, {} migration cycles",
            q.node,
            if q.queue_type == "capture" { "->" } else { "<-" },
            q.link,
            q.queue_type,
            q.memory,
            q.map_policy, q.maps, q.unmaps, q.qbufs, q.streamoffs, q.requeue_cycles
        );
    }
    for g in &r.gpus {
        let _ = writeln!(
            s,
            "gpu {}{}: {} evictions ({}), {} moves ({}), {} move_notifies",
            g.device,
            if g.p2p { " (p2p)" } else { "" },
            g.evictions,
            human_size(g.evicted_bytes),
            g.moves,
            human_size(g.moved_bytes),
            g.move_notifies
        );
    }
    for c in &r.swapchains {
        let _ = writeln!(
            s,
            "swapchain {} ({}, allocated by {}): {}..{} of {} buffers, grew {}x, shrank {}x, at most {} in flight{}, {} waits",
            c.link,
            c.mode,
            c.allocated_by,
            c.min,
            c.max,
            c.buffers,
            c.grown,
            c.shrunk,
            c.max_seen,
            c.max_in_flight
                .map_or(String::new(), |m| format!(" (bound {m})")),
            c.waits
        );
    }
    for e in &r.encoders {
        let _ = writeln!(
            s,
            "encoder {} ({}): {} frames, {} of bitstream",
            e.node,
            e.codec,
            e.frames,
            human_size(e.bitstream_bytes)
        );
    }
    if r.fences.created > 0 {
        let f = &r.fences;
        let _ = writeln!(
            s,
            "fences: {} contexts, {} created, {} signaled, {} implicit-sync checks, {} sync_files ({} waited on)",
            f.contexts, f.created, f.signaled, f.sync_checks, f.sync_files, f.sync_file_waits
        );
    }
    if !r.devices.is_empty() {
        let _ = writeln!(s, "devices:");
        let w = r.devices.iter().map(|d| d.name.len()).max().unwrap_or(0);
        for d in &r.devices {
            let _ = writeln!(
                s,
                "  {:w$}  read {:>10}  wrote {:>10}  {} jobs, busy {}, {} fault{}",
                d.name,
                human_size(d.bytes_read),
                human_size(d.bytes_written),
                d.jobs,
                ms(d.busy_us),
                d.faults,
                if d.faults == 1 { "" } else { "s" }
            );
        }
    }
    if r.checker.findings.is_empty() {
        let _ = writeln!(s, "checker: no findings");
    } else {
        let _ = writeln!(s, "checker: {} finding(s)", r.checker.findings.len());
        for f in &r.checker.findings {
            let _ = writeln!(
                s,
                "  [{}]{} {}",
                f.kind,
                if f.expected { " (expected)" } else { "" },
                f.message
            );
        }
    }
    // Where the frames that did not arrive went (docs/scenario.md, "Where every frame went").
    let drops: Vec<String> = r
        .nodes
        .iter()
        .flat_map(|n| {
            n.dropped
                .iter()
                .map(move |(cause, count)| format!("{} {cause} {count}", n.name))
        })
        .collect();
    if !drops.is_empty() {
        let _ = writeln!(s, "dropped by cause: {}", drops.join(", "));
    }
    for n in &r.nodes {
        if let Some(u) = &n.unexplained {
            let _ = writeln!(
                s,
                "unexplained: {} frame(s) never reached {}, the first frame {}",
                u.count, n.name, u.first_frame
            );
        }
    }
    for f in &r.faults {
        let _ = writeln!(
            s,
            "fault injected: {} on {} at frame {}, touched the jobs of frame(s) {:?}",
            f.fault, f.node, f.at_frame, f.frames
        );
    }
    for e in &r.errors {
        let _ = writeln!(
            s,
            "error{}: {}",
            if e.errno.is_empty() {
                String::new()
            } else {
                format!(" {}", e.errno)
            },
            e.message
        );
    }
    s
}
