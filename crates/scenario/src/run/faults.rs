//! Injected faults (`action = "fault"`): a node's driver leaves out something it owes for its
//! next jobs, and the run shows what hardware would: wrong bytes, found by the verification,
//! and the checker finding that names the cause.
//!
//! # The concept
//! The event arms the fault on the node for `for_frames` of its jobs; the driver's job carries
//! it ([`drivers::job::DeviceJob::fault`]) and the driver consults it where it would do what it
//! owes (module `drivers::fault`). The runner only keeps the virtual clock honest about what
//! follows: two jobs that now overlap on one buffer really overlap.
//!
//! - `skip_fence_wait` (a consumer of a `sync = "explicit"` link, whose frames arrive at the
//!   producer's job submission with its out-fence — a GPU's ring fence, a camera's or ISP's
//!   V4L2 out-fence): the consumer's job does not wait for the acquire fence, so it starts
//!   while the producer still writes. A camera's or ISP's job is held back while such a reader
//!   is armed and paused at the consumer's start, at the share of its bytes it wrote by then
//!   ([`DeviceJob::execute_paused`], as for `early_release` below): the consumer reads the
//!   half-written frame, its input judged against the checksum the producer reported, and the
//!   producer's unsignalled write fence is watched on the buffer (`fence-conflict`). For a GPU
//!   producer it starts while the GPU still writes. The GPU's ring job is held (not run) while such a
//!   consumer is armed; a consumer that starts before the GPU job's end on the virtual clock
//!   reads the buffer as it was before the GPU's job (the pre-completion state: last use's
//!   frame, old stamp), with the GPU's unsignalled write fence watched on that memory; then the
//!   ring runs the GPU's job. The consumer's input is judged afterwards against the checksum
//!   the GPU reported ([`drivers::job::Seen::verifies`]). (Jobs the runner runs itself, not a
//!   ring, are paused mid-way instead: [`DeviceJob::execute_paused`], as `early_release` does.)
//! - `early_release` (a camera or ISP): the producer takes for its next frame a buffer whose
//!   reader's job is still running instead of a free one. Readers of that producer's links are
//!   held back while it is armed; the producer's job runs in the reader's pause at the share
//!   of the reader's bytes read by the producer's start, so the reader gets part old frame,
//!   part new.
//! - `wrong_direction`: the driver maps the job's buffers with the opposite direction
//!   ([`DeviceJob::map_direction`]). A buffer its vb2 queue imported and mapped is re-mapped:
//!   vb2's right mapping is unmapped and the wrong one takes its place (`fault_view`), so the
//!   device's only live mapping is the wrong one — behind an IOMMU the access faults, without
//!   one the DMA-API checker reports `access-against-direction` (and a non-coherent device
//!   gets the cache maintenance of the other direction). The next job maps it back.
//! - `skip_cache_sync` (a thumbnailer): the CPU read goes without `DMA_BUF_IOCTL_SYNC`.
//!
//! Every job also tells the DMA-API checker which fences guard its buffers until its bytes
//! have moved (`dma::FenceWatch`): a device that touches them meanwhile is a `fence-conflict`.
//!
//! Lifetime: a deferred job's bytes move at the latest when its completion event, a barrier
//! (scenario event) or a job that overlaps it needs them. `--threads` runs do not defer (each
//! job moves on its engine's thread): the faults then change the schedule only.

use super::sched::Sched;
use super::world::BufState;
use crate::clock::VirtualTime;
use crate::schema::{DriverKind, FaultKind, SyncMode};
use dma::FenceWatch;
use drivers::fault::Fault;
use drivers::job::{DeviceJob, JobEffects};

/// A fault armed on a node.
#[derive(Debug)]
pub(crate) struct Armed {
    pub fault: Fault,
    /// Jobs it still touches.
    pub left: u64,
    /// Its entry in [`Sched::fault_log`].
    pub log: usize,
}

/// What one fault event did, for the report.
#[derive(Debug, Clone)]
pub(crate) struct FaultLog {
    pub node: usize,
    pub fault: FaultKind,
    pub at_frame: u64,
    /// Frames (of the first source) of the jobs it touched.
    pub frames: Vec<u64>,
}

impl Sched<'_> {
    /// Arms `fault` on node `name` for `jobs` jobs (the event).
    pub(crate) fn arm_fault(&mut self, name: &str, fault: FaultKind, jobs: u64, now: VirtualTime) {
        let Some(n) = self.w.nodes.iter().position(|x| x.desc.name == name) else {
            return;
        };
        self.fault_log.push(FaultLog {
            node: n,
            fault,
            at_frame: self.current_frame(),
            frames: Vec::new(),
        });
        self.armed.insert(
            n,
            Armed {
                fault: fault.driver_fault(),
                left: jobs,
                log: self.fault_log.len() - 1,
            },
        );
        let track = self.w.trace.track("events");
        self.w
            .trace
            .instant(track, &format!("fault {} on {name}", fault.name()), now);
    }

    /// The fault node `n`'s next job commits, if one is armed.
    pub(crate) fn fault_of(&self, n: usize) -> Option<Fault> {
        self.armed.get(&n).filter(|a| a.left > 0).map(|a| a.fault)
    }

    /// Node `n` committed its armed fault in a job of `frame`.
    pub(crate) fn fault_used(&mut self, n: usize, frame: Option<(usize, u64)>) {
        let Some(a) = self.armed.get_mut(&n) else {
            return;
        };
        a.left = a.left.saturating_sub(1);
        let log = a.log;
        if a.left == 0 {
            self.armed.remove(&n);
        }
        if let Some(l) = self.fault_log.get_mut(log) {
            l.frames.push(frame.map_or(0, |f| f.1));
        }
    }

    /// Whether node `n`'s job must hold its bytes back: a reader of its frames is armed to skip
    /// the fence wait, or the producer of its input is armed to release early (module doc).
    pub(crate) fn defers(&self, n: usize) -> bool {
        if self.workers.is_some() {
            return false;
        }
        let node = &self.w.nodes[n];
        // Any producer kind: a GPU's ring job is held, a camera's or ISP's job paused.
        let skip_reader = node.outputs.iter().any(|&li| {
            self.w.links[li].desc.sync == SyncMode::Explicit
                && self.w.links[li]
                    .to
                    .iter()
                    .any(|&r| self.fault_of(r) == Some(Fault::SkipFenceWait))
        });
        // A GPU's ring job cannot pause: early_release cannot race it.
        let early_writer = node.desc.driver != DriverKind::Gpu
            && node
                .inputs
                .iter()
                .any(|&li| self.fault_of(self.w.links[li].from) == Some(Fault::EarlyRelease));
        skip_reader || early_writer
    }

    /// `early_release`: a buffer of link `li` a held-back reader's job is still reading.
    pub(crate) fn reusable(&self, li: usize) -> Option<usize> {
        self.jobs.values().find_map(|j| {
            j.deferred.as_ref()?;
            j.inputs
                .iter()
                .find(|&&(l, bi)| l == li && matches!(self.w.buf(bi).state, BufState::Ready { .. }))
                .map(|&(_, bi)| bi)
        })
    }

    /// `early_release` took buffer `bi` from the held-back readers reading it.
    pub(crate) fn note_reused(&mut self, bi: usize) {
        let readers: Vec<usize> = self
            .jobs
            .values()
            .filter(|j| j.deferred.is_some() && j.inputs.iter().any(|i| i.1 == bi))
            .map(|j| j.node)
            .collect();
        self.reused.extend(readers.into_iter().map(|r| (bi, r)));
    }

    /// The held-back job a job on `inputs` and `outputs` overlaps: the producer of an input
    /// (skip_fence_wait) or a reader of an output (early_release).
    pub(crate) fn overlaps(
        &self,
        inputs: &[(usize, usize)],
        outputs: &[(usize, usize)],
    ) -> Option<u64> {
        self.jobs.iter().find_map(|(&id, j)| {
            if j.deferred.is_none() && !j.ring_held {
                return None;
            }
            let hit = inputs.iter().any(|i| j.outputs.iter().any(|o| o.1 == i.1))
                || outputs.iter().any(|o| j.inputs.iter().any(|i| i.1 == o.1));
            hit.then_some(id)
        })
    }

    /// The fences guarding job `io`'s buffers until its bytes have moved (module doc).
    pub(crate) fn watch_job(
        &self,
        io: &DeviceJob,
        label: &str,
        fence: Option<&fence::DmaFence>,
    ) -> Vec<u64> {
        let Some(fence) = fence else {
            return Vec::new();
        };
        let checker = self.w.kernel.dma().checker();
        let views = io
            .inputs
            .iter()
            .map(|i| (&i.view, false))
            .chain(io.outputs.iter().map(|o| (&o.view, true)));
        let mut ids = Vec::new();
        for (view, write) in views {
            let Some(addr) = view.dma_addr() else {
                continue;
            };
            let owner = view.device().name().to_string();
            let phys = checker.mapping_phys(&owner, addr);
            if phys.is_empty() {
                continue;
            }
            let f = fence.clone();
            ids.push(checker.watch_fence(FenceWatch {
                owner,
                write,
                label: label.to_string(),
                phys,
                signaled: Box::new(move || f.is_signaled()),
            }));
        }
        ids
    }

    /// Moves the bytes of held-back job `id` now, whole (nothing overlaps it any more).
    pub(crate) fn run_deferred(&mut self, id: u64) {
        self.release_ring(id);
        let Some(io) = self.jobs.get_mut(&id).and_then(|j| j.deferred.take()) else {
            return;
        };
        let dma = self.w.kernel.dma().clone();
        let fx = io.execute(&dma);
        self.deferred_done(id, fx);
    }

    /// A held GPU ring job runs now; its result comes back on its channel.
    fn release_ring(&mut self, id: u64) {
        let Some(j) = self.jobs.get_mut(&id).filter(|j| j.ring_held) else {
            return;
        };
        j.ring_held = false;
        let n = j.node;
        match self.w.gpu_node(n) {
            Ok(gpu) => {
                gpu.run_pending();
            }
            Err(e) => self.errors.push(e),
        }
    }

    /// A held-back job's effects are in: its frames handed over early get their checksum.
    fn deferred_done(&mut self, id: u64, fx: JobEffects) {
        let Some(j) = self.jobs.get_mut(&id) else {
            return;
        };
        let handed: Vec<(usize, u64)> = j
            .outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| j.handed.contains(&o.1))
            .map(|(k, o)| (o.1, fx.out_sums.get(k).copied().unwrap_or(0)))
            .collect();
        j.result = super::workers::Pending::ready(fx);
        for (bi, sum) in handed {
            if let BufState::Ready { meta, .. } = &mut self.w.buf_mut(bi).state {
                meta.checksum = sum;
            }
        }
    }

    /// Runs `io` (starting at `start`, reading buffers `in_bis`) against held-back job
    /// `other`: `other` moves the share of its bytes it moved by `start`, `io` runs, `other`
    /// carries on (module doc). Returns `io`'s effects, its inputs written by `other` judged
    /// against what `other` wrote.
    pub(crate) fn run_overlapped(
        &mut self,
        other: u64,
        io: DeviceJob,
        in_bis: &[usize],
        start: VirtualTime,
    ) -> JobEffects {
        let dma = self.w.kernel.dma().clone();
        if self.jobs.get(&other).is_some_and(|j| j.ring_held) {
            return self.run_before_ring(other, io, in_bis);
        }
        let Some(oio) = self.jobs.get_mut(&other).and_then(|j| j.deferred.take()) else {
            return io.execute(&dma);
        };
        let j = &self.jobs[&other];
        let span = j.end.saturating_sub(j.start).as_ns().max(1);
        let into = start.saturating_sub(j.start).as_ns().min(span);
        let written: Vec<usize> = j.outputs.iter().map(|o| o.1).collect();
        let frames: Vec<u64> = io.inputs.iter().map(|i| i.frame).collect();
        let mut io = Some(io);
        let mut fx = None;
        let ofx = oio.execute_paused(&dma, (into, span), &mut || {
            if let Some(io) = io.take() {
                fx = Some(io.execute(&dma));
            }
        });
        let sums: Vec<(usize, u64)> = written
            .iter()
            .enumerate()
            .map(|(k, &bi)| (bi, ofx.out_sums.get(k).copied().unwrap_or(0)))
            .collect();
        self.deferred_done(other, ofx);
        // `execute_paused` always runs the pause's work; were it not, the job runs now.
        let mut fx = match (fx, io.take()) {
            (Some(fx), _) => fx,
            (None, Some(io)) => io.execute(&dma),
            (None, None) => return JobEffects::failed("the job was lost in a pause"),
        };
        // Rule 6 of drivers::job: an input the held-back job wrote is judged by its checksum.
        judge_held_inputs(&mut fx, in_bis, &sums, &frames);
        fx
    }
}

impl Sched<'_> {
    /// `wrong_direction` on a buffer whose mapping is not vb2's to replace (vb2's own MMAP or
    /// USERPTR memory, a KMS framebuffer's): the driver maps buffer `bi` itself with the wrong
    /// direction beside the live mapping `view`. Otherwise `view`.
    pub(crate) fn fault_view_beside(
        &mut self,
        io: &DeviceJob,
        bi: usize,
        n: usize,
        output: bool,
        view: drivers::dmaview::DmaView,
    ) -> drivers::dmaview::DmaView {
        if io.fault != Some(Fault::WrongDirection) {
            return view;
        }
        match self.w.map(bi, n, io.map_direction(output)) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                view
            }
        }
    }

    /// `wrong_direction` on a buffer the job takes from its vb2 queue (port `p`, `slot`): the
    /// driver replaces vb2's mapping with one for the wrong direction
    /// (`Vb2Queue::remap_dmabuf`), so the device's only live mapping of the buffer is the wrong
    /// one; the next job without the fault maps it back the right way. Memory that is not an
    /// imported dma-buf (vb2's own MMAP/USERPTR) is mapped beside vb2's instead. Otherwise
    /// `view`.
    pub(crate) fn fault_view(
        &mut self,
        io: &DeviceJob,
        (p, slot): (usize, u32),
        bi: usize,
        n: usize,
        output: bool,
        view: drivers::dmaview::DmaView,
    ) -> drivers::dmaview::DmaView {
        let wrong = io.fault == Some(Fault::WrongDirection);
        let dir = io.map_direction(output);
        if self.w.ports[p].memory != vb2::Memory::Dmabuf {
            return self.fault_view_beside(io, bi, n, output, view);
        }
        // A slot a faulted job re-mapped is mapped back the right way by the next job.
        if !wrong && !self.wrong_mapped.remove(&(p, slot)) {
            return view;
        }
        if wrong {
            self.wrong_mapped.insert((p, slot));
        }
        match self.w.vb2_remap(p, slot, dir) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                view
            }
        }
    }
}

impl Sched<'_> {
    /// `skip_fence_wait` against a GPU ring job not run yet: the consumer reads the buffer in
    /// the state before the GPU's job (its fence unsignalled, and watched on the memory the
    /// consumer reads), then the ring runs the GPU's job; the consumer's inputs are judged
    /// against the checksum the GPU reported.
    fn run_before_ring(&mut self, other: u64, io: DeviceJob, in_bis: &[usize]) -> JobEffects {
        let dma = self.w.kernel.dma().clone();
        let (owner, fence, written, label) = {
            let j = &self.jobs[&other];
            let owner = self.w.nodes[j.node].dev.name().to_string();
            let fence = j.fence.as_ref().map(|f| (f.fence.clone(), f.label.clone()));
            let written: Vec<usize> = j.outputs.iter().map(|o| o.1).collect();
            (
                owner,
                fence.clone().map(|f| f.0),
                written,
                fence.map(|f| f.1),
            )
        };
        // The GPU's write fence guards what it is about to write: watched on the consumer's
        // view of it.
        let mut ids = Vec::new();
        if let Some(fence) = &fence {
            let checker = self.w.kernel.dma().checker();
            for (k, bi) in in_bis.iter().enumerate() {
                let Some(view) = io.inputs.get(k).map(|i| &i.view) else {
                    continue;
                };
                if !written.contains(bi) {
                    continue;
                }
                let Some(addr) = view.dma_addr() else {
                    continue;
                };
                let phys = checker.mapping_phys(view.device().name(), addr);
                let f = fence.clone();
                ids.push(checker.watch_fence(FenceWatch {
                    owner: owner.clone(),
                    write: true,
                    label: label.clone().unwrap_or_default(),
                    phys,
                    signaled: Box::new(move || f.is_signaled()),
                }));
            }
        }
        let frames: Vec<u64> = io.inputs.iter().map(|i| i.frame).collect();
        let mut fx = io.execute(&dma);
        for id in ids {
            self.w.kernel.dma().checker().unwatch_fence(id);
        }
        self.release_ring(other);
        self.barrier_one(other);
        let sums: Vec<(usize, u64)> = match self.jobs.get(&other).and_then(|j| j.result.settled()) {
            Some(res) => written
                .iter()
                .enumerate()
                .map(|(k, &bi)| (bi, res.out_sums.get(k).copied().unwrap_or(0)))
                .collect(),
            None => Vec::new(),
        };
        for &(bi, sum) in &sums {
            if let BufState::Ready { meta, .. } = &mut self.w.buf_mut(bi).state {
                meta.checksum = sum;
            }
        }
        judge_held_inputs(&mut fx, in_bis, &sums, &frames);
        fx
    }
}

/// Rule 6 of `drivers::job`: an input buffer `in_bis[k]` that a held-back job wrote (its
/// `(buffer, checksum)` in `sums`) is judged by that job's checksum, not by the one the
/// consumer's job was planned with.
fn judge_held_inputs(fx: &mut JobEffects, in_bis: &[usize], sums: &[(usize, u64)], frames: &[u64]) {
    for (k, bi) in in_bis.iter().enumerate() {
        let Some(&(_, sum)) = sums.iter().find(|s| s.0 == *bi) else {
            continue;
        };
        let ok = fx
            .inputs_seen
            .get(k)
            .copied()
            .flatten()
            .is_some_and(|seen| seen.verifies(sum, frames.get(k).copied().unwrap_or(0)))
            && fx.error.is_none();
        if let Some(slot) = fx.inputs_ok.get_mut(k) {
            *slot = ok;
        }
    }
}
