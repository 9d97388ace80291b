//! Starting a device job: the node's free output buffers, its inputs, their mappings and the
//! driver's plan, put on the virtual clock.
//!
//! [`Sched::start_job`] is the one place a job is born. It takes a free buffer on every output
//! link someone reads (stepping a gpu->display link's swapchain first), the newest ready frame of
//! each input, maps each through the node's attachment or vb2 queue, asks the node's driver for
//! its [`DeviceJob`], and schedules the completion event at the job's end. A job that cannot be
//! planned goes through [`Sched::fail_job`], which gives the mappings back. Nothing here runs
//! concurrently with the loop: the loop owns [`Sched`] and calls in on its own thread.

use super::sched::{Ev, InFlight, MappedViews, Sched};
use super::workers::Pending;
use super::world::{BufState, RunFailure};
use crate::clock::VirtualTime;
use crate::report::JobCategory;
use crate::schema::DriverKind;
use drivers::dmaview::DmaView;
use drivers::job::{DeviceJob, JobInput, JobOutput, Op};

impl Sched<'_> {
    /// Starts node `n`'s job if it has a free buffer on every output link someone reads.
    pub(super) fn start_job(
        &mut self,
        n: usize,
        now: VirtualTime,
        frame: Option<(usize, u64)>,
    ) -> bool {
        for li in self.w.nodes[n].outputs.clone() {
            if self.w.links[li].swapchain.is_some() && !self.readers(li).is_empty() {
                self.swapchain_step(li, now);
            }
        }
        // A stopped encoder runs no job until V4L2_ENC_CMD_START (super::encoder_drain).
        if !self.w.nodes[n].m2m.drain.job_ready() {
            return false;
        }
        let node = &self.w.nodes[n];
        let fault = self.fault_of(n);
        let mut outputs = Vec::new();
        let mut reused = Vec::new();
        for &li in &node.outputs {
            if self.readers(li).is_empty() {
                continue;
            }
            if !node.stream_out {
                return false;
            }
            // early_release: the driver takes a buffer a reader still reads (module faults).
            let early = match fault {
                Some(drivers::fault::Fault::EarlyRelease) => self.reusable(li),
                _ => None,
            };
            reused.extend(early);
            // A V4L2 producer fills the empty buffer its CAPTURE queue's driver holds first; a
            // swapchain's producer takes what its chain gives (or waits: super::swapchain).
            let mut bi = early.or_else(|| self.w.capture_next(n, li));
            if bi.is_none() {
                bi = super::swapchain::pick(&mut self.w.links[li], now)
                    .unwrap_or_else(|| self.w.links[li].free.front().copied());
            }
            let Some(bi) = bi else {
                return false;
            };
            outputs.push((li, bi));
        }
        let inputs: Vec<(usize, usize)> = node
            .inputs
            .iter()
            .filter_map(|&li| Some((li, self.w.ready_front(n, li)?)))
            .collect();
        // Jobs it must not run beside are collected before it maps anything (super::inflight).
        let concurrent = self.runs_concurrently(n, fault, &inputs, &outputs);
        self.make_room(n, concurrent, &inputs, &outputs);
        let node = &self.w.nodes[n];
        // The node's driver decides what the device does with the bytes.
        let p = &node.desc.params;
        let op = match node.desc.driver {
            DriverKind::Camera => Op::Capture {
                pattern: p.pattern.unwrap_or_default().into(),
                seed: self.w.seed,
                frame: frame.map_or(0, |f| f.1),
            },
            DriverKind::Isp => Op::Process(p.transform.unwrap_or_default().into()),
            DriverKind::Gpu => Op::Composite,
            DriverKind::Encoder => Op::Encode(p.codec.unwrap_or_default().into()),
            DriverKind::Display | DriverKind::Thumbnailer => Op::Scanout,
            DriverKind::Scaler | DriverKind::Decoder => self.w.m2m_op(n),
        };
        // Map everything for the device (get_scatterlist); a failure is a run error.
        let mut io = DeviceJob::new(op).with_fault(fault);
        io.bitstream = self.w.own_buffer(n, frame.map_or(0, |f| f.1));
        let mut ready_at = self.kms_ready_from(n, now);
        // Input links whose buffer the node's queue's driver gave the job.
        let mut from_driver = Vec::new();
        // Which buffer each of `io`'s views is of, for giving them back if the job fails.
        let mut mapped = MappedViews::default();
        let gpu = node.desc.driver == DriverKind::Gpu;
        for &(_, bi) in &inputs {
            self.wait_sync_file(n, bi);
        }
        let mut kms_planes = Vec::new();
        for &(li, bi) in &inputs {
            let b = self.w.buf(bi);
            ready_at = ready_at.max(b.available_at);
            let (expected, in_frame) = match &b.state {
                BufState::Ready { meta, .. } => (meta.checksum, meta.frame),
                _ => (0, 0),
            };
            let mut planes = b.planes.clone();
            // A bitstream is read as far as its encoder wrote it (super::m2m): through a vb2
            // queue, the payload its driver got (super::bitstream_io).
            let stream = b.used.is_some();
            if let Some(used) = b.used {
                planes.truncate(1);
                if let Some(p) = planes.first_mut() {
                    p.1 = p.1.min(used);
                }
            }
            // A GPU's buffers are mapped by its driver in its VM at submission.
            if gpu {
                mapped.inputs.push(bi);
                io.inputs.push(JobInput {
                    view: DmaView::from_segments(self.w.nodes[n].dev.clone(), &[]),
                    planes,
                    expected,
                    frame: in_frame,
                });
                continue;
            }
            // A display through KMS: a framebuffer per buffer, and one atomic commit of every
            // input's plane after this loop.
            if self.w.is_kms(n) {
                let dir = io.map_direction(false);
                if let Err(e) = self.w.kms_remap(n, bi, dir) {
                    return self.fail_job(n, io, &mapped, e);
                }
                kms_planes.push(super::kms::PlaneFrame {
                    link: li,
                    buf: bi,
                    expected,
                    frame: in_frame,
                    planes,
                });
                continue;
            }
            // Through the node's vb2 queue (the driver takes the buffer vb2 queued and mapped),
            // else the runner maps it.
            if let Some((p, slot, gen, map, used)) = self.w.vb2_take_payload(n, li, bi) {
                if let (true, Some(p)) = (stream, planes.first_mut()) {
                    p.1 = u64::from(used);
                }
                mapped.vb2.push((p, slot, gen));
                from_driver.push(li);
                let map = self.fault_view(&io, (p, slot), bi, n, false, map);
                mapped.inputs.push(bi);
                io.inputs.push(JobInput {
                    view: map,
                    planes,
                    expected,
                    frame: in_frame,
                });
                continue;
            }
            match self.w.map(bi, n, io.map_direction(false)) {
                Ok(map) => {
                    mapped.inputs.push(bi);
                    io.inputs.push(JobInput {
                        view: map,
                        planes,
                        expected,
                        frame: in_frame,
                    })
                }
                Err(e) => return self.fail_job(n, io, &mapped, e),
            }
        }
        if !kms_planes.is_empty() {
            match self.kms_commit(n, &kms_planes, self.next_job) {
                Ok(scanned) => {
                    // The scanout reads the planes as their producer laid them out (a tiled
                    // layout's header and padding included): what it verifies.
                    for (mut input, p) in scanned.into_iter().zip(kms_planes) {
                        input.planes = p.planes;
                        mapped.inputs.push(p.buf);
                        io.inputs.push(input);
                    }
                }
                // The node stops with its commit: the frames it was to show (and any other it
                // holds) go back to their producers, lost as job_failed (fail_node).
                Err(e) => return self.fail_job(n, io, &mapped, e),
            }
        }
        for &(li, bi) in &outputs {
            let b = self.w.buf(bi);
            ready_at = ready_at.max(b.available_at);
            let planes = b.planes.clone();
            let bytes_per_line = self.w.links[li]
                .format_planes
                .iter()
                .map(|p| p.bytes_per_line)
                .collect();
            if gpu {
                mapped.outputs.push(bi);
                io.outputs.push(JobOutput {
                    view: DmaView::from_segments(self.w.nodes[n].dev.clone(), &[]),
                    planes,
                    bytes_per_line,
                });
                continue;
            }
            // A V4L2 producer's device writes the empty buffer its CAPTURE queue's driver holds
            // (vb2 mapped it at QBUF); others map it themselves.
            if let Some((p, slot, gen, map)) = self.w.vb2_take(n, li, bi) {
                mapped.vb2.push((p, slot, gen));
                let map = self.fault_view(&io, (p, slot), bi, n, true, map);
                mapped.outputs.push(bi);
                io.outputs.push(JobOutput {
                    view: map,
                    planes,
                    bytes_per_line,
                });
                continue;
            }
            match self.w.map(bi, n, io.map_direction(true)) {
                Ok(map) => {
                    mapped.outputs.push(bi);
                    io.outputs.push(JobOutput {
                        view: map,
                        planes,
                        bytes_per_line,
                    })
                }
                Err(e) => return self.fail_job(n, io, &mapped, e),
            }
        }
        // Take the buffers.
        for &bi in &reused {
            self.note_reused(bi);
        }
        for &(li, bi) in &outputs {
            if !reused.contains(&bi) {
                let free = &mut self.w.links[li].free;
                if let Some(k) = free.iter().position(|&x| x == bi) {
                    free.remove(k);
                }
            }
            self.w.buf_mut(bi).state = BufState::Writing;
            if !reused.contains(&bi) {
                if let Err(e) = self.w.swap_take(li, bi, now) {
                    self.errors.push(e);
                }
            }
        }
        // What the application held itself leaves its hands (a driver's buffer left its list).
        for &(li, bi) in &inputs {
            if !from_driver.contains(&li) {
                self.w.ready_remove(n, li, bi);
            }
        }
        self.merge_secondary_inputs(n, &inputs);
        // Explicit sync: an input handed over before its producer's job ended waits on that
        // job's out-fence (its acquire fence); the wait is the node's fence wait.
        let fence_end = inputs
            .iter()
            .filter_map(|&(_, bi)| self.w.buf(bi).fence_end)
            .max();
        // skip_fence_wait: the driver starts without waiting (module faults).
        if let Some(fe) = fence_end.filter(|_| io.waits_for_fences()) {
            let wait = fe.saturating_sub(ready_at);
            self.w.nodes[n].fence_wait = self.w.nodes[n].fence_wait + wait;
            if wait > VirtualTime::ZERO {
                // A slice on the node's process: the job waiting for its fences.
                let node = &self.w.nodes[n].desc;
                let (process, name) = (node.process_name().to_string(), node.name.clone());
                let track = self
                    .w
                    .trace
                    .process_track(&process, &format!("{name} fences"));
                let label = format!("{name} waits for fences");
                let f = frame.map(|f| f.1);
                self.w.trace.job(
                    track,
                    &label,
                    ready_at,
                    fe,
                    None,
                    0,
                    f,
                    JobCategory::FenceWait,
                );
            }
            ready_at = ready_at.max(fe);
        }
        let (unrounded, vblank_before) = (ready_at, self.w.nodes[n].last_vblank);
        if self.w.nodes[n].desc.driver == DriverKind::Display {
            ready_at = self.vblank(n, ready_at);
        }
        let (r, wr) = io.bytes();
        let node = &self.w.nodes[n];
        // The driver's time model for the job (drivers::media::dma_cost).
        let duration = VirtualTime::from_duration(io.cost(&node.dev));
        let touched: Vec<usize> = inputs.iter().chain(&outputs).map(|x| x.1).collect();
        let duration = self.contended(n, self.next_job, &touched, ready_at, duration);
        let node = &self.w.nodes[n];
        let engine_name = node.engine_name.clone();
        let engine = self.w.engines.entry(engine_name.clone()).or_default();
        let (start, end) = engine.submit(ready_at, duration);
        *self.counts.jobs.entry(engine_name.clone()).or_default() += 1;
        let label = match frame {
            Some((_, f)) => format!("{} frame {f}", node.desc.name),
            None => node.desc.name.clone(),
        };
        let buffer = outputs
            .first()
            .or(inputs.first())
            .map(|&(_, bi)| self.w.buf(bi).name.clone());
        let track = node.track;
        self.kms_started(n, start);
        self.w.trace.job(
            track,
            &label,
            start,
            end,
            buffer.as_deref(),
            r + wr,
            frame.map(|f| f.1),
            JobCategory::Dma,
        );
        // What a migration's copy on this lane cost this job (super::migcost).
        let lane_job = super::migcost::LaneJob {
            id: self.next_job,
            node: n,
            frame,
            engine: &engine_name,
            ready: unrounded,
            vblank_before,
            submitted: ready_at,
            start,
            end,
            inputs: &inputs,
            outputs: &outputs,
        };
        self.cost_job(lane_job, now);
        for &(_, bi) in inputs.iter().chain(&outputs) {
            let b = self.w.buf_mut(bi);
            b.busy_until = b.busy_until.max(end);
        }
        let in_bis: Vec<usize> = inputs.iter().map(|x| x.1).collect();
        let out_bis: Vec<usize> = outputs.iter().map(|x| x.1).collect();
        let mut deferred = None;
        let mut ring_held = false;
        let mut watches = Vec::new();
        let (result, fence) = if gpu {
            // The GPU driver's ring job (super::gpu), its bytes on the pool too; a manual ring
            // runs it now, so the findings are sorted as below; held while a reader skips its
            // fence wait (module `faults`).
            let hold = self.workers.is_none() && self.defers(n);
            let io = match self.workers {
                None => io.on_pool(self.pool.clone(), self.w.kernel.dma().clone()),
                Some(_) => io,
            };
            // One on the pool leaves the findings to its collection (super::inflight).
            if !concurrent {
                self.drain_findings(false);
            }
            let job = self.gpu_job(n, io, (&in_bis, &out_bis), end, &label, concurrent);
            if !concurrent {
                self.drain_findings(self.workers.is_none());
            }
            if job.1.is_some() {
                ring_held = hold;
            }
            job
        } else {
            let fence = self.fence_job(n, &in_bis, &out_bis, end, &label);
            watches = self.watch_job(&io, &label, fence.as_ref().map(|f| &f.fence));
            let dma = self.w.kernel.dma().clone();
            let result = match &self.workers {
                Some(wk) => wk.submit(&engine_name, io, dma),
                None if concurrent => self.spawn_job(n, io),
                None if self.defers(n) => {
                    deferred = Some(io);
                    Pending::later()
                }
                None => match self.overlaps(&inputs, &outputs) {
                    Some(other) => {
                        self.drain_findings(false);
                        let fx = self.run_overlapped(other, io, &in_bis, start);
                        self.drain_findings(true);
                        Pending::ready(fx)
                    }
                    None => {
                        // What the checker saw before the job stays in its order; what the
                        // job's pieces raised (on any host thread) is sorted.
                        self.drain_findings(false);
                        let fx = io.execute_on(&dma, &self.pool);
                        self.drain_findings(true);
                        Pending::ready(fx)
                    }
                },
            };
            (result, fence)
        };
        // A fault touches this job (early_release: only if a reader's buffer was taken).
        if fault.is_some()
            && (fault != Some(drivers::fault::Fault::EarlyRelease) || !reused.is_empty())
        {
            self.fault_used(n, frame);
        }
        let id = self.next_job;
        self.next_job += 1;
        self.jobs.insert(
            id,
            InFlight {
                node: n,
                frame,
                inputs,
                outputs,
                vb2: std::mem::take(&mut mapped.vb2),
                result,
                fence,
                handed: Vec::new(),
                deferred,
                ring_held,
                start,
                end,
                watches,
            },
        );
        self.w.nodes[n].busy = true;
        // Deterministic mode: the bytes moved already; give the mappings back now so that a
        // migration never waits on a job that is over in host terms.
        self.settle(id);
        self.hand_over_early(id, end);
        let _ = self.q.push(end, Ev::Done(id));
        true
    }

    /// A job that could not be planned: the mappings made for it go back
    /// (`dma_buf_unmap_attachment`; views through vb2's own mapping are vb2's and are not
    /// unmapped here), then the node stops and gives back every frame it holds
    /// ([`Sched::fail_node`]: the error counted once).
    pub(super) fn fail_job(
        &mut self,
        n: usize,
        io: DeviceJob,
        mapped: &MappedViews,
        e: RunFailure,
    ) -> bool {
        let views = io
            .inputs
            .into_iter()
            .map(|i| i.view)
            .zip(&mapped.inputs)
            .chain(io.outputs.into_iter().map(|o| o.view).zip(&mapped.outputs));
        let mut unmapped = Vec::new();
        for (view, &bi) in views {
            if let Err(e) = self.w.unmap(bi, n, view) {
                unmapped.push(e);
            }
        }
        self.fail_node(n, e, &mapped.vb2);
        self.errors.extend(unmapped);
        false
    }
}
