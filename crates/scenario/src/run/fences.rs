//! Every DMA job fenced the way Linux pipelines are: out-fences in the buffers' reservation
//! objects, implicit sync, signals on the virtual clock.
//!
//! # The concept
//! Each device engine gets a fence context (the machine's, `soc::MachineIds::fence_context_alloc`) the first time it runs a
//! job; each job gets the next seqno of it. Before a job's bytes move, the runner
//! 1. checks implicit sync: every input's reservation object has no pending `WRITE` (or
//!    `KERNEL`) fence, every output's none pending at all up to `READ` — the loop only starts a
//!    job on buffers whose previous users are over, so a pending fence there is a runner bug and
//!    becomes a run error;
//! 2. creates the job's out-fence and adds it to each buffer's reservation object
//!    (`reserve_fences` then `add_fence` under the resv lock): `WRITE` for outputs, `READ` for
//!    inputs.
//!
//! At the job's completion event the fence is signaled with `signal_timestamp(end in ns)` and a
//! `fence_signal` instant goes to the engine's track.
//!
//! # Rules
//! 1. Before a scenario event or the end of a pressure (which may migrate or evict buffers, and
//!    the exporters then wait for every fence of the buffer), every job in flight has moved its
//!    bytes already (the loop's barrier); its fence is signaled then, stamped with the job's
//!    end on the virtual clock, so the move waits for nothing in host time, and its copy is
//!    dated after that end (`busy_until`) — the migration is delayed on the virtual clock.
//! 2. A fence is signaled once; its completion event finds it signaled and only forgets it.

use super::sched::Sched;
use super::world::RunFailure;
use crate::clock::VirtualTime;
use crate::report::{FenceCounts, TrackId};
use fence::{DmaFence, DmaResvUsage, SimpleFenceOps};
use std::collections::BTreeMap;

/// The fence timelines of the device engines and what they counted.
#[derive(Debug, Default)]
pub(crate) struct Fences {
    /// Per engine: its fence context and last seqno.
    timelines: BTreeMap<String, (u64, u64)>,
    /// The counts for the report.
    pub counts: FenceCounts,
    /// CPU readers waiting for a frame's sync_file to signal: `(node, buffer)` and since when
    /// ([`Sched::implicit_acquire`]).
    cpu_waits: BTreeMap<(usize, usize), VirtualTime>,
}

/// A job's out-fence, to be signaled at the job's end.
#[derive(Debug)]
pub(crate) struct JobFence {
    pub fence: DmaFence,
    pub track: TrackId,
    pub end: VirtualTime,
    pub label: String,
    /// The driver's own fence (a GPU ring's): the driver signals it, the runner waits for it.
    pub driver: bool,
    /// Signaled and counted.
    pub done: bool,
}

impl Fences {
    /// The next fence on `engine`'s timeline: its context from the machine's allocator
    /// (`dma_fence_context_alloc` of this machine, not of the process), stamped and timed on the
    /// machine's clock.
    fn create(&mut self, soc: &soc::Soc, engine: &str) -> Result<DmaFence, RunFailure> {
        let (ctx, seqno) = match self.timelines.get_mut(engine) {
            Some(t) => t,
            None => {
                let ctx = soc.ids().fence_context_alloc(1).ok_or_else(|| RunFailure {
                    errno: "ENOSPC".into(),
                    message: format!("fence context for {engine}: the machine's contexts ran out"),
                })?;
                self.counts.contexts += 1;
                self.timelines.entry(engine.to_string()).or_insert((ctx, 0))
            }
        };
        *seqno += 1;
        self.counts.created += 1;
        let ops = SimpleFenceOps::on(soc.clock().clone(), "dmabuf-sim", engine);
        Ok(DmaFence::new(ops, *ctx, *seqno))
    }
}

impl Fences {
    /// A driver's fence (a GPU ring's) as a job's out-fence: counted as created, its context
    /// the engine's timeline.
    pub(crate) fn adopt(&mut self, engine: &str, f: &DmaFence) {
        if !self.timelines.contains_key(engine) {
            self.counts.contexts += 1;
        }
        self.timelines
            .insert(engine.to_string(), (f.context(), f.seqno()));
        self.counts.created += 1;
    }
}

impl Sched<'_> {
    /// Implicit sync checks for a job of `node` (module doc, step 1): a pending fence where the
    /// loop starts a job is a runner bug, a run error.
    pub(crate) fn fence_check(&mut self, node: usize, inputs: &[usize], outputs: &[usize]) {
        let who = self.w.nodes[node].desc.name.clone();
        for (bi, wait_for, _) in self.implicit_deps(inputs, outputs) {
            self.fences.counts.sync_checks += 1;
            let b = self.w.buf(bi);
            // early_release: the driver did not wait for the readers (module `faults`).
            let skipped = self.fault_of(node) == Some(drivers::fault::Fault::EarlyRelease);
            if !skipped && !b.buf.resv().test_signaled(wait_for) {
                self.errors.push(RunFailure {
                    errno: "EBUSY".into(),
                    message: format!(
                        "runner bug: {who} started on {} with a {wait_for:?} fence pending",
                        b.name
                    ),
                });
            }
        }
    }

    /// The buffers of a job that take part in implicit sync: `(buffer, usage it waits for,
    /// usage its fence gets)`.
    fn implicit_deps(
        &self,
        inputs: &[usize],
        outputs: &[usize],
    ) -> Vec<(usize, DmaResvUsage, DmaResvUsage)> {
        // Buffers of `sync = "explicit"` links carry no implicit fences (module `explicit`).
        let implicit = |w: &super::world::World, b: usize| {
            w.links[w.buf(b).link].desc.sync == crate::schema::SyncMode::Implicit
        };
        inputs
            .iter()
            .filter(|&&b| implicit(&self.w, b))
            .map(|&b| (b, DmaResvUsage::Write, DmaResvUsage::Read))
            .chain(
                outputs
                    .iter()
                    .filter(|&&b| implicit(&self.w, b))
                    .map(|&b| (b, DmaResvUsage::Read, DmaResvUsage::Write)),
            )
            .collect()
    }

    /// Implicit sync for a job of `node` on `inputs` and `outputs` (buffer indices), then its
    /// out-fence in every buffer's reservation object (module doc). `None` on a failure, which
    /// is a run error.
    pub(crate) fn fence_job(
        &mut self,
        node: usize,
        inputs: &[usize],
        outputs: &[usize],
        end: VirtualTime,
        label: &str,
    ) -> Option<JobFence> {
        let who = self.w.nodes[node].desc.name.clone();
        self.fence_check(node, inputs, outputs);
        let deps = self.implicit_deps(inputs, outputs);
        let engine = self.w.nodes[node].engine_name.clone();
        let soc = self.w.kernel.soc().clone();
        let fence = match self.fences.create(&soc, &engine) {
            Ok(f) => f,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        for &(bi, _, usage) in &deps {
            let b = self.w.buf(bi);
            let added = b
                .buf
                .resv()
                .lock(None)
                .map_err(|e| e.to_string())
                .and_then(|mut g| {
                    g.reserve_fences(1).map_err(|e| e.to_string())?;
                    g.add_fence(&fence, usage).map_err(|e| e.to_string())
                });
            if let Err(e) = added {
                let name = b.name.clone();
                self.errors.push(RunFailure {
                    errno: "EINVAL".into(),
                    message: format!("{who}: adding its fence to {name}: {e}"),
                });
            }
        }
        Some(JobFence {
            fence,
            track: self.w.nodes[node].track,
            end,
            label: label.to_string(),
            driver: false,
            done: false,
        })
    }

    /// Signals a job's fence (if not yet) at its end on the virtual clock; a driver's fence is
    /// waited for instead (its driver signals it once the job ran; the bytes have moved when
    /// this is called).
    pub(crate) fn fence_signal(&mut self, f: &mut JobFence) {
        if f.done {
            return;
        }
        f.done = true;
        if f.driver {
            if let Err(e) = f.fence.wait(None) {
                self.errors.push(RunFailure::new(
                    &e,
                    format!("waiting for the fence of {}: {e}", f.label),
                ));
                return;
            }
        } else if let Err(e) = f.fence.signal_timestamp(f.end.as_ns()) {
            self.errors.push(RunFailure::new(
                &e,
                format!("signaling the fence of {}: {e}", f.label),
            ));
            return;
        }
        self.fences.counts.signaled += 1;
        self.w
            .trace
            .fence_signal(f.track, &format!("fence {} signaled", f.label), f.end);
    }

    /// Explicit sync, producer side: the frame in buffer `bi` (written by `producer`'s job,
    /// out-fence `fence`) goes to `readers` with a sync_file of that fence, made in the
    /// producer's process and passed to each reader's with `send_fd`.
    pub(crate) fn send_sync_file(
        &mut self,
        producer: usize,
        bi: usize,
        fence: &DmaFence,
        readers: &std::collections::BTreeSet<usize>,
    ) {
        let from = self.w.nodes[producer].process.clone();
        let sf = fence::SyncFile::new(fence);
        let fd = match from.install(
            kernel::FileObject::SyncFile(std::sync::Arc::new(sf)),
            uapi::ioctl::O_RDONLY | uapi::ioctl::O_CLOEXEC,
        ) {
            Ok(fd) => fd,
            Err(e) => {
                self.errors
                    .push(RunFailure::new(&e, format!("sync_file: {e}")));
                return;
            }
        };
        self.fences.counts.sync_files += 1;
        for &r in readers {
            let to = self.w.nodes[r].process.clone();
            match from.send_fd(fd, &to) {
                Ok(rfd) => {
                    if let Some((p, old)) = self.w.buf_mut(bi).acquire.insert(r, (to, rfd)) {
                        let _ = p.close(old);
                    }
                }
                Err(e) => {
                    let name = self.w.buf(bi).name.clone();
                    self.errors.push(RunFailure::new(
                        &e,
                        format!("passing the sync_file of {name}: {e}"),
                    ));
                }
            }
        }
        let _ = from.close(fd);
    }

    /// Explicit sync, consumer side: node `n`'s job waits on the sync_file it was sent with
    /// buffer `bi` and closes it. Its fence signals at the producer's job end: either the frame
    /// was handed over at that end (the fence is signaled), or at the producer's submission
    /// (a GPU's: the buffer's `fence_end`), and the job is placed after `fence_end` on the
    /// virtual clock; any other pending fence is a runner bug (a run error).
    pub(crate) fn wait_sync_file(&mut self, n: usize, bi: usize) {
        let waits_on_clock = self.w.buf(bi).fence_end.is_some();
        let Some((p, fd)) = self.w.buf_mut(bi).acquire.remove(&n) else {
            return;
        };
        let fence = p
            .file(fd)
            .ok()
            .and_then(|f| f.as_sync_file().map(|s| s.fence().clone()));
        let _ = p.close(fd);
        let who = self.w.nodes[n].desc.name.clone();
        match fence {
            Some(f) if f.is_signaled() || waits_on_clock => self.fences.counts.sync_file_waits += 1,
            Some(_) => self.errors.push(RunFailure {
                errno: "EBUSY".into(),
                message: format!("runner bug: {who} started with its sync_file pending"),
            }),
            None => self.errors.push(RunFailure {
                errno: "EBADF".into(),
                message: format!("{who}: its sync_file fd is not a sync_file"),
            }),
        }
    }

    /// Explicit sync into implicit sync, for a consumer that takes no sync_file (a CPU reader:
    /// the thumbnailer): before node `n` reads buffer `bi` at `now`, the sync_file it was sent
    /// goes into the buffer's reservation object with `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` (as a
    /// write fence), so that its `DMA_BUF_IOCTL_SYNC` (begin_cpu_access) waits for it. While
    /// the producer's fence has not signaled on the virtual clock the reader waits (returns
    /// `false`; the loop asks again at the next event) and the wait counts as its fence wait.
    /// A buffer without a sync_file for `n` (implicit sync) is readable at once.
    pub(crate) fn implicit_acquire(&mut self, n: usize, bi: usize, now: VirtualTime) -> bool {
        let b = self.w.buf(bi);
        let Some((p, fd)) = b.acquire.get(&n).cloned() else {
            return true;
        };
        let sf = p.file(fd).ok().and_then(|f| f.as_sync_file().cloned());
        let Some(sf) = sf else {
            let who = self.w.nodes[n].desc.name.clone();
            self.errors.push(RunFailure {
                errno: "EBADF".into(),
                message: format!("{who}: its sync_file fd is not a sync_file"),
            });
            return true;
        };
        let pending = b.fence_end.is_some_and(|fe| fe > now) || !sf.fence().is_signaled();
        if pending {
            self.fences.cpu_waits.entry((n, bi)).or_insert(now);
            return false;
        }
        if let Some(since) = self.fences.cpu_waits.remove(&(n, bi)) {
            let wait = now.saturating_sub(since);
            self.w.nodes[n].fence_wait = self.w.nodes[n].fence_wait + wait;
        }
        let b = self.w.buf(bi);
        let flags = uapi::ioctl::DMA_BUF_SYNC_WRITE as u32;
        if let Err(e) = b.buf.import_sync_file(flags, &sf) {
            let name = b.name.clone();
            self.errors.push(RunFailure::new(
                &e,
                format!("IMPORT_SYNC_FILE into {name}: {e}"),
            ));
        }
        self.w.buf_mut(bi).acquire.remove(&n);
        let _ = p.close(fd);
        self.fences.counts.sync_file_waits += 1;
        true
    }

    /// Rule 1: signals the fence of every job in flight (their bytes have moved).
    pub(crate) fn fence_flush(&mut self) {
        let ids: Vec<u64> = self.jobs.keys().copied().collect();
        for id in ids {
            if let Some(mut f) = self.jobs.get_mut(&id).and_then(|j| j.fence.take()) {
                self.fence_signal(&mut f);
                if let Some(j) = self.jobs.get_mut(&id) {
                    j.fence = Some(f);
                }
            }
        }
    }
}
