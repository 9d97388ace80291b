//! Turning a finished run into its [`Report`]: frames and their causes, per-node figures,
//! buffers with their placements and map counts, queues, migrations, counters and findings.
//!
//! [`collect`] runs once, after the loop has drained and every job has settled; it reads the
//! [`Sched`] it is given by value and tears the world down in the order the kernel would (buffers
//! dropped, fds closed) so that leak findings appear in the report.

use super::{events, expect, reason, sched, world, RunOptions, RunOutput};
use crate::clock::VirtualTime;
use crate::report::{
    BufferReport, DeviceReport, Finding, FrameCounts, LatencyReport, MapCounts, Placement, Report,
    RunError, Trace,
};
use crate::schema::DriverKind;
use sched::Sched;
use world::{ExporterHandle, World};

fn bank_name(w: &World, pa: u64) -> String {
    w.kernel
        .soc()
        .mem()
        .bank_of(soc::PhysAddr(pa))
        .map_or_else(|| "?".into(), |b| b.name().to_string())
}

pub(super) fn placement(w: &World, b: &world::BufRt) -> Option<Placement> {
    match &b.exporter {
        ExporterHandle::Constraint(exp) => {
            let sum = exp.placement()?;
            let mut banks = Vec::new();
            for g in &sum.groups {
                for _ in 0..g.planes {
                    banks.push(bank_name(w, g.lowest));
                }
            }
            let segments: usize = sum.groups.iter().map(|g| g.runs).sum();
            let heap = sum
                .groups
                .iter()
                .map(|g| g.source.to_string())
                .collect::<Vec<_>>()
                .join(" + ");
            Some(Placement {
                exporter: "constraint".into(),
                heap,
                banks,
                contiguous: sum.groups.iter().all(|g| g.runs == 1),
                segments: segments as u32,
            })
        }
        ExporterHandle::Vb2 => {
            let exp = b.buf.exporter_ops::<vb2::Vb2Exporter>()?;
            // Scatterlist entries, merged where physically adjacent.
            let mut runs: Vec<(soc::PhysAddr, u64)> = Vec::new();
            for &(pa, len) in exp.mem().phys_runs() {
                match runs.last_mut() {
                    Some((a, n)) if a.0 + *n == pa.0 => *n += len,
                    _ => runs.push((pa, len)),
                }
            }
            let banks = b
                .planes
                .iter()
                .map(|&(off, _)| {
                    let mut at = 0;
                    for &(pa, len) in &runs {
                        if off < at + len {
                            return bank_name(w, pa.0 + (off - at));
                        }
                        at += len;
                    }
                    "?".to_string()
                })
                .collect();
            Some(Placement {
                exporter: "vb2".into(),
                heap: "mmap".into(),
                banks,
                contiguous: runs.len() == 1,
                segments: runs.len() as u32,
            })
        }
        ExporterHandle::Heap(h) => {
            let hb = b.buf.exporter_ops::<kernel::heap::buffer::HeapBuffer>()?;
            let runs = hb.runs();
            let mut banks: Vec<String> = Vec::new();
            for &(off, _) in &b.planes {
                let mut at = 0;
                let mut bank = "?".to_string();
                for &(pa, len) in runs {
                    if off < at + len {
                        bank = bank_name(w, pa.0 + (off - at));
                        break;
                    }
                    at += len;
                }
                banks.push(bank);
            }
            let (exporter, heap) = match (h.as_str(), w.links[b.link].desc.memory) {
                ("udmabuf", crate::schema::MemoryType::Userptr) => (
                    "userptr (memfd via udmabuf)".to_string(),
                    "memfd".to_string(),
                ),
                ("udmabuf", _) => ("udmabuf".to_string(), "memfd".to_string()),
                _ => (format!("heap:{h}"), h.clone()),
            };
            Some(Placement {
                exporter,
                heap,
                banks,
                contiguous: runs.len() == 1,
                segments: runs.len() as u32,
            })
        }
        ExporterHandle::Gpu(bo) => {
            let p = bo.placement()?;
            Some(Placement {
                exporter: "gpu".into(),
                heap: p.to_string(),
                banks: b.planes.iter().map(|_| p.to_string()).collect(),
                contiguous: bo.phys_runs() == Some(1),
                segments: bo.phys_runs().unwrap_or(0) as u32,
            })
        }
    }
}

fn map_counts(b: &world::BufRt) -> (u64, u64) {
    match &b.exporter {
        ExporterHandle::Constraint(exp) => {
            let (hits, misses) = exp.map_cache_stats();
            let (ch, cm) = b.maps_carried;
            (misses + cm, hits + ch)
        }
        ExporterHandle::Vb2 => b
            .buf
            .exporter_ops::<vb2::Vb2Exporter>()
            .map_or((0, 0), |e| (e.map_cache().misses(), e.map_cache().hits())),
        ExporterHandle::Heap(_) => b
            .buf
            .exporter_ops::<kernel::heap::buffer::HeapBuffer>()
            .map_or((0, 0), |h| (h.map_cache().misses(), h.map_cache().hits())),
        // The GPU exporter's mapping cache (`drivers::gpu::exporter` rule 5).
        ExporterHandle::Gpu(bo) => bo.map_cache_stats(),
    }
}

pub(super) fn collect(mut s: Sched<'_>, mut report: Report, opts: &RunOptions) -> RunOutput {
    // Frames.
    let mut fc = FrameCounts {
        produced: s.counts.produced,
        ..FrameCounts::default()
    };
    // Frames never captured (no free buffer, nobody streaming) are dropped at the source; of
    // the rest, each was corrupted, delivered, or lost on the way (module `outcome`).
    s.settle_leftovers();
    s.check_unexplained();
    let o = &s.outcomes;
    fc.dropped = s.counts.dropped_at_source + o.dropped;
    fc.corrupted = s.counts.corrupted_untracked + o.corrupted;
    fc.delivered = o.delivered;
    fc.merged = o.merged;
    for &(src, frame) in &o.corrupted_frames {
        report.corrupted_frames.push(crate::report::CorruptedFrame {
            source: s.w.nodes[src].desc.name.clone(),
            frame,
        });
    }
    let accounted = s.counts.dropped_at_source + o.captured;
    if accounted != fc.produced {
        s.errors.push(world::RunFailure {
            errno: "EFAULT".into(),
            message: format!(
                "frame accounting: {} produced, but {} dropped at the source and {} captured",
                fc.produced, s.counts.dropped_at_source, o.captured
            ),
        });
    }
    report.frames = fc;
    for l in &s.fault_log {
        report.faults.push(crate::report::FaultReport {
            node: s.w.nodes[l.node].desc.name.clone(),
            fault: l.fault.name().to_string(),
            at_frame: l.at_frame,
            frames: l.frames.clone(),
        });
    }
    report.latency_us = LatencyReport::from_summary(&s.outcomes.latency, &s.outcomes.per_frame);
    // Per source, when there are several (one camera's is the whole run's).
    let sources =
        s.w.nodes
            .iter()
            .filter(|n| n.desc.driver == DriverKind::Camera)
            .count();
    if sources > 1 {
        for (&n, (summary, sample)) in &s.outcomes.per_source {
            let l = LatencyReport::from_summary(summary, sample);
            report
                .latency_us
                .per_source
                .push(crate::report::SourceLatency::new(
                    &s.w.nodes[n].desc.name,
                    l,
                ));
        }
    }
    report.duration_us = s.q.now().as_us_f64();
    report.migrations = std::mem::take(&mut s.migrations);
    // Counters: a last sample at the end, then into the report and the trace.
    let end = s.q.now();
    let frame = s.current_frame();
    s.w.sample_counters(frame, end, true);
    let mut sampler = std::mem::take(&mut s.w.sampler);
    // The open fds are recorded on to the teardown (module `fds`).
    s.w.sampler.fds = std::mem::take(&mut sampler.fds);
    let owners = sampler.owners().clone();
    let counters = sampler.finish();
    counters.to_trace_owned(&mut s.w.trace, &owners);
    report.counters = Some(counters);
    // Buffers, placements, map counts.
    let mut maps = MapCounts::default();
    for b in s.w.bufs.iter().flatten() {
        let (first, cached) = map_counts(b);
        maps.first += first;
        maps.cached += cached;
        report.buffers.push(BufferReport {
            name: b.name.clone(),
            link: s.w.links[b.link].name.clone(),
            size: b.buf.size(),
            placement: placement(&s.w, b),
            migrations: b.migrations,
            reason: reason::buffer_reason(&s.w, b, &report.migrations),
        });
    }
    report.maps = maps;
    // Teardown starts with the vb2 queues (close: cancel and free); their counters must balance.
    let port_errors = s.w.close_ports();
    s.errors.extend(port_errors);
    for p in &s.w.ports {
        let c = p.counters();
        let (memory, queue_type) = p.uapi_path();
        report.vb2_queues.push(crate::report::Vb2QueueReport {
            memory: memory.into(),
            queue_type: queue_type.into(),
            node: s.w.nodes[p.node].desc.name.clone(),
            link: s.w.links[p.link].name.clone(),
            map_policy: match p.policy {
                crate::schema::MapPolicy::KeepMapped => "keep_mapped".into(),
                crate::schema::MapPolicy::UnmapOnDequeue => "unmap_on_dequeue".into(),
            },
            // A USERPTR plane's pin maps it for the device: vb2's `get_userptr`/`put_userptr`.
            maps: c.map + c.get_userptr,
            unmaps: c.unmap + c.put_userptr,
            attaches: c.attach,
            qbufs: p.qbufs,
            streamoffs: p.streamoffs,
            requeue_cycles: p.requeue_cycles,
        });
    }
    // Devices.
    for d in s.w.kernel.soc().devices() {
        let st = d.stats();
        let busy =
            s.w.engines
                .get(d.name())
                .map_or(VirtualTime::ZERO, |e| e.busy_total());
        report.devices.push(DeviceReport {
            name: d.name().to_string(),
            bytes_read: st.bytes_read,
            bytes_written: st.bytes_written,
            faults: st.faults,
            jobs: s.counts.jobs.get(d.name()).copied().unwrap_or(0),
            busy_us: busy.as_us_f64(),
        });
    }
    // Swapchains: each chain's counters.
    report.swapchains = s.w.swapchain_reports();
    // Nodes: their fence waits.
    s.check_sinks();
    for (n, node) in s.w.nodes.iter().enumerate() {
        let st = s.node_stats.remove(&n).unwrap_or_default();
        let lat = st.latencies.stats();
        report.nodes.push(crate::report::NodeReport {
            name: node.desc.name.clone(),
            fence_wait_us: node.fence_wait.as_us_f64(),
            produced: st.produced,
            consumed: st.consumed,
            delivered: st.delivered,
            dropped: st
                .dropped
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            corrupted: st.corrupted,
            failed_jobs: st.failed_jobs,
            unexplained: s
                .outcomes
                .unexplained
                .get(&n)
                .map(|&(count, first_frame)| crate::report::Unexplained { count, first_frame }),
            latency_us: (st.latencies.count() > 0).then(|| crate::report::NodeLatency {
                p50: lat.p50.as_us_f64(),
                p99: lat.p99.as_us_f64(),
                max: lat.max.as_us_f64(),
            }),
            reference_buffers: node.m2m.references.len() as u32,
            reference_bytes: node.m2m.references.iter().map(|b| b.buf.size()).sum(),
        });
    }
    // Encoders.
    for (n, node) in s.w.nodes.iter().enumerate() {
        if node.desc.driver != DriverKind::Encoder {
            continue;
        }
        let codec = node.desc.params.codec.unwrap_or_default();
        report.encoders.push(crate::report::EncoderReport {
            node: node.desc.name.clone(),
            codec: match codec {
                crate::schema::EncoderCodec::Checksum => "checksum".into(),
                crate::schema::EncoderCodec::Rle => "rle".into(),
            },
            frames: s.counts.encoded.get(&n).copied().unwrap_or(0),
            bitstream_bytes: s.w.bitstream_totals(n).0,
            bitstream_checksum: s.w.bitstream_totals(n).1,
            drained: node.m2m.drain.stats().drained,
            drains: node.m2m.drains,
        });
    }
    // Teardown: everything goes; what stays is a leak. The GPU nodes' address spaces first
    // (they hold their objects' mappings).
    for node in &mut s.w.nodes {
        node.vm = None;
    }
    // The displays go off and remove their framebuffers (super::kms); what they did is in
    // the report with those counted.
    report.displays = s.w.kms_close();
    for bi in 0..s.w.bufs.len() {
        events::drop_buffer(&mut s.w, bi);
    }
    // The producers' MMAP capture queues go once their exported buffers are closed.
    s.w.close_mmap_ports();
    for h in 0..s.holds.len() {
        s.release_hold(h, s.q.now());
    }
    for p in s.w.kernel.processes() {
        p.exit();
    }
    s.w.note_fds(s.q.now());
    let dma = s.w.kernel.dma().clone();
    for node in &mut s.w.nodes {
        if let Some(b) = node.bitstream.take() {
            if let Err(e) = dma.free_attrs(b.buf) {
                s.errors.push(world::RunFailure::new(
                    &e,
                    format!("{}: freeing its bitstream buffer: {e}", node.desc.name),
                ));
            }
        }
    }
    let freed = s.w.free_references();
    s.errors.extend(freed);
    s.drain_findings(false);
    let kept = std::mem::take(&mut s.findings);
    for f in kept {
        report.checker.findings.push(Finding {
            kind: f.kind.name().to_string(),
            message: format!("{} +{:#x}: {}", f.address, f.size, f.context),
            device: Some(f.device.clone()),
            buffer: None,
            expected: false,
        });
    }
    for m in dma.checker().live_mappings(None) {
        report.checker.findings.push(Finding {
            kind: "map-leak".into(),
            message: format!("a DMA mapping outlived the run: {m:?}"),
            device: None,
            buffer: None,
            expected: false,
        });
    }
    report.gpus = s.w.gpu_reports();
    report.groups = s.w.limits.reports();
    report.fences = s.fences.counts.clone();
    s.w.gpus.clear();
    let live = s.w.kernel.registry().len();
    if live > 0 {
        report.checker.findings.push(Finding {
            kind: "dmabuf-leak".into(),
            message: format!("{live} dma-buf(s) outlived every fd and attachment"),
            device: None,
            buffer: None,
            expected: false,
        });
    }
    for e in &s.errors {
        report.errors.push(RunError {
            errno: e.errno.clone(),
            message: e.message.clone(),
        });
    }
    report.apply_expect(&s.s.expect);
    expect::check_expected_error(&mut report, &s.s.expect);
    let mut trace = std::mem::replace(&mut s.w.trace, Trace::new(""));
    trace.finish_stream();
    RunOutput {
        report,
        trace,
        thumbnail: s.thumbnail.take(),
        bufinfo: std::mem::take(&mut s.bufinfo),
        deterministic: !opts.engine_threads,
        collect_waits: std::mem::take(&mut s.waits),
    }
}
