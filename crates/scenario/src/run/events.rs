//! Scenario events (attach, detach, pressure, kill, stream off/on, buffer count) and migrations.

use super::sched::{Ev, Sched};
use super::world::{BufState, ExporterHandle, RunFailure, World};
use crate::clock::VirtualTime;
use crate::report::MigrationReport;
use crate::schema::{At, Event, EventAction, QueueKind};

/// Memory someone else holds for a while (pressure events).
pub(crate) enum Hold {
    Bo(drivers::gpu::GpuBo),
    Pool {
        bank: soc::BankId,
        addr: soc::PhysAddr,
        size: u64,
    },
    Pages(Vec<soc::Page>),
    Released,
}

/// Removes a buffer: detach everything, close its fds, drop the last references.
pub(crate) fn drop_buffer(w: &mut World, bi: usize) {
    w.gpu_forget(bi);
    w.kms_forget(bi);
    let Some(mut b) = w.bufs[bi].take() else {
        return;
    };
    w.ports_forget(bi);
    for (_, att) in std::mem::take(&mut b.atts) {
        let _ = b.buf.detach(att);
    }
    for (_, (p, fd)) in std::mem::take(&mut b.acquire) {
        if p.is_alive() {
            let _ = p.close(fd);
        }
    }
    for (p, fd) in b.fds.drain(..) {
        if p.is_alive() {
            let _ = p.close(fd);
        }
    }
    let li = b.link;
    w.links[li].bufs.retain(|&x| x != bi);
    w.links[li].free.retain(|&x| x != bi);
    w.swap_forget(li, bi);
}

impl Sched<'_> {
    /// Applies one scenario event at `now` (in-flight jobs have settled: see `barrier`).
    pub(crate) fn scenario_event(&mut self, e: &Event, now: VirtualTime) {
        let node_idx =
            |s: &Sched<'_>, name: &str| s.w.nodes.iter().position(|n| n.desc.name == name);
        match &e.action {
            EventAction::Attach { node } => {
                if let Some(n) = node_idx(self, node) {
                    self.attach_node(n, now);
                }
            }
            EventAction::Detach { node } => {
                if let Some(n) = node_idx(self, node) {
                    self.deactivate(n, now, false);
                }
            }
            EventAction::Kill { process } => {
                let ns: Vec<usize> = (0..self.w.nodes.len())
                    .filter(|&n| self.w.nodes[n].desc.process_name() == process)
                    .collect();
                let mut proc_ = None;
                for &n in &ns {
                    proc_ = Some(self.w.nodes[n].process.clone());
                    self.deactivate(n, now, true);
                }
                if let Some(p) = proc_ {
                    p.exit();
                    for b in self.w.bufs.iter_mut().flatten() {
                        b.fds.retain(|(q, _)| q.pid() != p.pid());
                    }
                    let track = self.w.trace.track("events");
                    self.w.trace.instant(track, &format!("kill {process}"), now);
                }
            }
            EventAction::StreamOff { node, queues } | EventAction::StreamOn { node, queues } => {
                let on = matches!(e.action, EventAction::StreamOn { .. });
                if let Some(n) = node_idx(self, node) {
                    // An encoder drains before its OUTPUT queue stops (super::encoder_drain).
                    let both = queues.contains(&QueueKind::Capture);
                    let drains = !on
                        && queues.contains(&QueueKind::Output)
                        && self.drain_on_stream_off(n, both, now);
                    for q in queues {
                        if drains {
                            break;
                        }
                        match q {
                            QueueKind::Output => {
                                self.w.nodes[n].stream_in = on;
                                // STREAMOFF first: vb2 hands every queued buffer back, then
                                // the application lets them (and their frames) go.
                                let errs = self.w.ports_stream(n, on, false);
                                self.errors.extend(errs);
                                if !on {
                                    self.discard_ready(n, super::outcome::STREAM_OFF);
                                    self.kms_off(n, false);
                                } else {
                                    // V4L2_ENC_CMD_START resumes a drained encoder.
                                    self.restart_after_drain(n, now);
                                }
                            }
                            QueueKind::Capture => {
                                self.w.nodes[n].stream_out = on;
                                let errs = self.w.ports_stream(n, on, true);
                                self.errors.extend(errs);
                            }
                        }
                    }
                    let track = self.w.nodes[n].track;
                    let label = format!("{} {node}", if on { "STREAMON" } else { "STREAMOFF" });
                    self.w.trace.instant(track, &label, now);
                }
            }
            EventAction::Fault { node, fault, jobs } => {
                self.arm_fault(node, *fault, *jobs, now);
            }
            EventAction::Bufinfo => {
                // What `cat /sys/kernel/debug/dma_buf/bufinfo` prints on the simulated kernel now.
                let frame = self.current_frame();
                let text = self.w.kernel.registry().bufinfo();
                self.bufinfo.push((frame, text));
                let track = self.w.trace.track("events");
                self.w
                    .trace
                    .instant(track, &format!("bufinfo frame {frame}"), now);
            }
            EventAction::SetBuffers { link, count } => {
                if let Some(li) = self.w.links.iter().position(|l| &l.name == link) {
                    let live: Vec<usize> = self.w.links[li]
                        .bufs
                        .iter()
                        .copied()
                        .filter(|&b| !self.w.buf(b).retired)
                        .collect();
                    let have = live.len() as u32;
                    if *count > have {
                        for _ in have..*count {
                            if let Err(e) = self.w.alloc_buffer(li) {
                                self.errors.push(e);
                                break;
                            }
                        }
                    } else {
                        for &bi in live.iter().rev().take((have - count) as usize) {
                            self.w.buf_mut(bi).retired = true;
                            if self.w.buf(bi).state == BufState::Free {
                                drop_buffer(&mut self.w, bi);
                            }
                        }
                    }
                }
            }
            EventAction::VramPressure {
                bank,
                bytes,
                for_frames,
            }
            | EventAction::MemoryPressure {
                bank,
                bytes,
                for_frames,
            } => {
                self.pressure(bank, *bytes, *for_frames, now);
            }
        }
    }

    /// Stops node `n`: what it holds goes back, its attachments go; `dead` for a kill.
    fn deactivate(&mut self, n: usize, now: VirtualTime, dead: bool) {
        // A display's CRTC goes off and its framebuffers go (super::kms).
        self.kms_off(n, true);
        // Its vb2 queues let go of every buffer (STREAMOFF, REQBUFS(0)); a dead process's
        // file handles close.
        let mine: Vec<usize> = (0..self.w.ports.len())
            .filter(|&p| self.w.ports[p].node == n)
            .collect();
        self.w.ports_release(&mine, dead);
        let cause = match dead {
            true => super::outcome::KILLED,
            false => super::outcome::DETACHED,
        };
        self.discard_ready(n, cause);
        self.w.nodes[n].active = false;
        self.w.nodes[n].dead |= dead;
        let bis: Vec<usize> = (0..self.w.bufs.len())
            .filter(|&b| self.w.bufs[b].is_some())
            .collect();
        for bi in bis {
            self.w.detach(bi, n);
        }
        // Frames waiting for this node as a sink no longer do.
        let keys: Vec<(usize, u64)> = self
            .frames
            .iter()
            .filter(|(_, f)| f.pending.contains(&n))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.lose_frame(k, n, cause);
            self.check_delivered(k, now);
        }
        let track = self.w.nodes[n].track;
        let label = format!(
            "{} {}",
            if dead { "killed" } else { "detach" },
            self.w.nodes[n].desc.name
        );
        self.w.trace.instant(track, &label, now);
    }

    /// Node `n` lets go of every buffer waiting in its input queues; their frames are lost for
    /// `cause`.
    pub(crate) fn discard_ready(&mut self, n: usize, cause: &'static str) {
        let held: Vec<usize> = self.w.nodes[n]
            .ready
            .values_mut()
            .flat_map(|q| q.drain(..))
            .collect();
        for bi in held {
            if let BufState::Ready { meta, .. } = &self.w.buf(bi).state {
                let key = (meta.src, meta.frame);
                self.lose_frame(key, n, cause);
            }
            self.release(bi, n);
        }
    }

    /// Node `n` joins: attaches to every buffer it uses; migrations the exporters make are
    /// charged on the virtual clock.
    fn attach_node(&mut self, n: usize, now: VirtualTime) {
        if self.w.nodes[n].active || self.w.nodes[n].dead {
            return;
        }
        self.w.nodes[n].active = true;
        let before = self.w.log.events().len();
        let links: Vec<usize> = self.w.nodes[n]
            .inputs
            .iter()
            .chain(&self.w.nodes[n].outputs)
            .copied()
            .collect();
        // The vb2 queues of other consumers of links whose buffers may migrate hold static
        // mappings (keep_mapped, or queued buffers): let them go first, as a real pipeline
        // would (STREAMOFF, REQBUFS(0)); they stream again after the attach.
        let quiesce: Vec<usize> = (0..self.w.ports.len())
            .filter(|&p| {
                let port = &self.w.ports[p];
                port.node != n
                    && port.allocated
                    && links.contains(&port.link)
                    && self.w.links[port.link]
                        .bufs
                        .iter()
                        .any(|&bi| matches!(self.w.buf(bi).exporter, ExporterHandle::Constraint(_)))
            })
            .collect();
        let released = self.w.ports_release(&quiesce, false);
        for &(p, _) in &released {
            self.w.ports[p].requeue_cycles += 1;
            let pn = self.w.ports[p].node;
            let label = format!(
                "STREAMOFF+REQBUFS(0) {} for {}'s attach",
                self.w.ports[p].label(&self.w),
                self.w.nodes[n].desc.name
            );
            let t = self.w.nodes[pn].track;
            self.w.trace.instant(t, &label, now);
        }
        // So do displays driven through KMS: their framebuffers go (super::kms).
        for d in self.w.kms_quiesce(n, &links) {
            self.kms_off(d, true);
            let label = format!(
                "RMFB {} for {}'s attach",
                self.w.nodes[d].desc.name, self.w.nodes[n].desc.name
            );
            let t = self.w.nodes[d].track;
            self.w.trace.instant(t, &label, now);
        }
        // The constraint exporters' mapping-cache counts before a migration renews the cache.
        let snap: std::collections::BTreeMap<usize, (u64, u64)> = (0..self.w.bufs.len())
            .filter_map(|bi| match &self.w.bufs[bi].as_ref()?.exporter {
                ExporterHandle::Constraint(exp) => Some((bi, exp.map_cache_stats())),
                _ => None,
            })
            .collect();
        let failed = self.attach_links(n, &links, now);
        for (p, was) in released {
            let errs = self.w.port_restart(p, was);
            self.errors.extend(errs);
        }
        if failed {
            return;
        }
        // Its own queues, if a detach let them go.
        let mine: Vec<usize> = (0..self.w.ports.len())
            .filter(|&p| self.w.ports[p].node == n)
            .collect();
        let stream = self.w.nodes[n].stream_in;
        for p in mine {
            let errs = self.w.port_restart(p, stream);
            self.errors.extend(errs);
        }
        self.record_attach_migrations(before, now, &snap);
    }

    /// Attaches node `n` to every buffer of `links`; `true` if an attach failed (the node is
    /// deactivated then).
    fn attach_links(&mut self, n: usize, links: &[usize], now: VirtualTime) -> bool {
        let track = self.w.nodes[n].track;
        for &li in links {
            let bis = self.w.links[li].bufs.clone();
            for bi in bis {
                match self.w.attach(bi, n) {
                    Ok(()) => {
                        let name = self.w.buf(bi).name.clone();
                        self.w.trace.attach(track, &name, now);
                    }
                    Err(e) => {
                        self.errors.push(e);
                        self.deactivate(n, now, false);
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Charges the migrations the exporters logged since `before`.
    fn record_attach_migrations(
        &mut self,
        before: usize,
        now: VirtualTime,
        snap: &std::collections::BTreeMap<usize, (u64, u64)>,
    ) {
        let events = self.w.log.events();
        let mut carried = std::collections::BTreeSet::new();
        for ev in events.into_iter().skip(before) {
            let Some(bi) = (0..self.w.bufs.len()).find(|&b| {
                self.w.bufs[b]
                    .as_ref()
                    .is_some_and(|x| x.buf.ino() == ev.buffer)
            }) else {
                continue;
            };
            // What the exporter recorded the copy costs on the machine's time model.
            let copy = VirtualTime(ev.copy_ns);
            if carried.insert(bi) {
                if let Some(&(h, m)) = snap.get(&bi) {
                    let b = self.w.buf_mut(bi);
                    b.maps_carried = (b.maps_carried.0 + h, b.maps_carried.1 + m);
                }
            }
            let cause = match &ev.relayout {
                // A re-layout: the buffer's planes are the new layout's from now on.
                Some(what) => {
                    self.w.refresh_planes(bi);
                    format!(
                        "{} (copied by {}; re-laid out: {what})",
                        ev.cause, ev.engine
                    )
                }
                None => format!("{} (copied by {})", ev.cause, ev.engine),
            };
            self.record_migration(
                bi,
                now,
                &ev.from.to_string(),
                &ev.to.to_string(),
                ev.bytes,
                copy,
                &cause,
                &ev.engine,
            );
        }
    }

    /// Charges a migration of buffer `bi` that copies for `copy`: it starts when the buffer is
    /// idle and holds it until the copy ends.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_migration(
        &mut self,
        bi: usize,
        now: VirtualTime,
        from: &str,
        to: &str,
        bytes: u64,
        copy: VirtualTime,
        cause: &str,
        engine: &str,
    ) {
        let frame = self.current_frame();
        // The copy runs on the engine that moves the bytes, after the buffer goes idle and after
        // whatever that engine was doing: migrations of several buffers queue up.
        let idle = now.max(self.w.buf(bi).busy_until);
        let lane = self.w.engines.entry(engine.to_string()).or_default();
        let before = lane.busy_until();
        let (start, end) = lane.submit(idle, copy);
        // The copy never takes a device's slot silently: what it costs the nodes of its lane
        // is measured as they run (super::migcost).
        let cost_us = self.copy_cost(engine, start, end);
        let b = self.w.buf_mut(bi);
        b.available_at = end;
        b.busy_until = end;
        b.migrations += 1;
        let name = b.name.clone();
        let stall = end.saturating_sub(now);
        self.w
            .trace
            .migration_copy(&name, start, from, to, bytes, stall, Some(end - start));
        self.migrations.push(MigrationReport {
            buffer: name,
            frame,
            from: from.to_string(),
            to: to.to_string(),
            bytes,
            stall_us: stall.as_us_f64(),
            cause: cause.to_string(),
            engine: engine.to_string(),
            cost: None,
            cost_us,
            ..MigrationReport::default()
        });
        let mig = self.migrations.len() - 1;
        self.cost_copy(mig, engine, now, idle, before, start, end);
    }

    fn pressure(&mut self, bank: &str, bytes: u64, for_frames: Option<u64>, now: VirtualTime) {
        let soc = self.w.kernel.soc().clone();
        let track = self.w.trace.track("events");
        self.w.trace.instant(
            track,
            &format!("pressure {} on {bank}", soc::human_size(bytes)),
            now,
        );
        let is_vram = soc
            .desc()
            .banks
            .iter()
            .any(|b| b.name == bank && b.kind == soc::BankKind::DeviceLocal);
        let gpu = self.w.gpus.values().next().cloned();
        let hold = if let (true, Some(gpu)) = (is_vram, gpu) {
            match self.vram_pressure(&gpu, bank, bytes, now) {
                Some(bo) => Hold::Bo(bo),
                None => Hold::Released,
            }
        } else {
            let what = format!("{} pressure on {bank}", soc::human_size(bytes));
            match soc.mem().bank_by_name(bank).ok().map(|b| b.id()) {
                Some(id) if soc.pool(id).is_some() => {
                    match soc.pool(id).map(|p| p.alloc(bytes, soc::PAGE_SIZE)) {
                        Some(Ok(addr)) => Hold::Pool {
                            bank: id,
                            addr,
                            size: bytes,
                        },
                        Some(Err(e)) => {
                            self.errors
                                .push(RunFailure::new(&e, format!("{what}: {e}")));
                            Hold::Released
                        }
                        None => Hold::Released,
                    }
                }
                Some(id) => {
                    let mut pages = Vec::new();
                    let mut left = bytes;
                    while left > 0 {
                        let order = if left >= (2 << 20) { 9 } else { 0 };
                        match soc
                            .pages()
                            .alloc_pages(&soc::AllocRequest::new(order).in_bank(id))
                        {
                            Ok(p) => {
                                left = left.saturating_sub(soc::PAGE_SIZE << order);
                                pages.push(p);
                            }
                            Err(e) => {
                                // The other client keeps what it got; the shortfall is an
                                // error, never a silent no-op.
                                self.errors.push(RunFailure::new(
                                    &e,
                                    format!(
                                        "{what}: {e} after {} of it",
                                        soc::human_size(bytes - left)
                                    ),
                                ));
                                break;
                            }
                        }
                    }
                    Hold::Pages(pages)
                }
                None => {
                    self.errors.push(RunFailure {
                        errno: "EINVAL".into(),
                        message: format!("{what}: the machine has no bank `{bank}`"),
                    });
                    Hold::Released
                }
            }
        };
        let h = self.holds.len();
        self.holds.push(hold);
        if let Some(f) = for_frames {
            let at = At::Frame(self.current_frame().saturating_add(f))
                .at_rate(self.period)
                .max(now);
            let _ = self.q.push(at, Ev::PressureEnd(h));
        }
    }

    /// Gives pressure memory back.
    pub(crate) fn release_hold(&mut self, h: usize, now: VirtualTime) {
        let Some(hold) = self.holds.get_mut(h) else {
            return;
        };
        match std::mem::replace(hold, Hold::Released) {
            Hold::Bo(bo) => {
                drop(bo);
                let track = self.w.trace.track("events");
                self.w.trace.instant(track, "pressure released", now);
                self.vram_restore(now);
                return;
            }
            Hold::Pool { bank, addr, size } => {
                let _ = self.w.kernel.soc().free_pool(bank, addr, size);
            }
            Hold::Pages(pages) => {
                for p in pages {
                    let _ = self.w.kernel.soc().free_pages(p);
                }
            }
            Hold::Released => return,
        }
        let track = self.w.trace.track("events");
        self.w.trace.instant(track, "pressure released", now);
    }
}
