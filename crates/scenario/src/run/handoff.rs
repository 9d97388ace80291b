//! How a frame changes hands: a producer's output goes to its readers, readers release it, a
//! free buffer goes back to its producer.
//!
//! # The concept
//! A frame is handed over when its producer's job ends (implicit sync; a V4L2 producer's
//! DQBUF), or, on a `sync = "explicit"` link, when the producer's job is submitted, with a
//! sync_file of its out-fence: the consumer's job then waits on that fence on the virtual
//! clock, counted as the node's fence wait. A consumer that takes no sync_file (the
//! thumbnailer, a CPU reader) gets it into the buffer's reservation object instead
//! (`DMA_BUF_IOCTL_IMPORT_SYNC_FILE`), where its `DMA_BUF_IOCTL_SYNC` waits for it
//! ([`Sched::implicit_acquire`]). A buffer is free once its last reader released
//! it; the producer's process then queues it again (a V4L2 producer's CAPTURE queue). A
//! display takes at most one frame per vblank.
//!
//! Locking and lifetime: single-threaded (the runner's loop); a handed-over buffer is `Ready`
//! until its last reader releases it.

use super::sched::Sched;
use super::world::{BufState, FrameMeta};
use crate::clock::VirtualTime;

impl Sched<'_> {
    /// Hands the frame node `n` wrote into buffer `bi` of link `li` to the readers streaming
    /// now (explicit sync: with a sync_file of `fence`); freed at once if none reads.
    pub(crate) fn hand_over(
        &mut self,
        n: usize,
        frame: Option<(usize, u64)>,
        li: usize,
        bi: usize,
        checksum: u64,
        fence: Option<&fence::DmaFence>,
    ) {
        // A swapchain's frame is presented.
        if let Err(e) = self.w.swap_present(bi) {
            self.errors.push(e);
        }
        let readers = self.readers(li);
        // Consumers that take no frame now: the frame does not reach what lies past them.
        if let Some(key) = frame {
            for to in self.w.links[li].to.clone() {
                if let Some(cause) = self.refusal_cause(to).filter(|_| !readers.contains(&to)) {
                    self.lose_frame(key, to, cause);
                }
            }
        }
        let (src, frame) = frame.unwrap_or((n, 0));
        let meta = FrameMeta {
            src,
            frame,
            checksum,
        };
        if readers.is_empty() {
            self.w.buf_mut(bi).state = BufState::Free;
            self.free_buffer(bi);
            return;
        }
        self.w.buf_mut(bi).state = BufState::Ready {
            meta,
            readers: readers.clone(),
        };
        if self.w.links[li].desc.sync == crate::schema::SyncMode::Explicit {
            if let Some(f) = fence {
                self.send_sync_file(n, bi, f, &readers);
            }
        }
        for &r in &readers {
            // The consumer's process queues the fd it holds into its vb2 queue: its driver
            // holds the frame for a job then; else the application holds it (`Node::ready`).
            // A QBUF refused (vb2 could not attach or map it for the device) leaves it in the
            // application's hands, and the consumer stops: its job cannot start on it
            // (super::outcome, `fail_node`: the frame goes back to the producer).
            let (queued, refused) = match self.w.vb2_qbuf(r, li, bi) {
                Ok(q) => (q, None),
                Err(e) => (false, Some(e)),
            };
            if !queued {
                if let Some(q) = self.w.nodes[r].ready.get_mut(&li) {
                    q.push_back(bi);
                }
            }
            if let Some(e) = refused {
                self.fail_node(r, e, &[]);
            }
        }
    }

    /// Explicit sync from any producer: the frames of job `id`'s `sync = "explicit"` outputs go
    /// to their readers at submission with a sync_file of the job's out-fence, which signals
    /// at `end`; their jobs wait for it ([`BufRt::fence_end`](super::world::BufRt)), as a
    /// Wayland compositor does with a client's acquire fence. A GPU's is its ring's fence; a
    /// V4L2 producer's (camera, ISP) is its job's fence, returned when the application queued
    /// the buffer (the out-fence of V4L2's fence proposal, `V4L2_BUF_FLAG_OUT_FENCE`): the
    /// frame travels before DQBUF, which still comes at the job's end. The bytes must have
    /// moved (`--engine-threads`: the runner waits for the job on the host) so that the
    /// frame's checksum is known.
    pub(crate) fn hand_over_early(&mut self, id: u64, end: VirtualTime) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let n = job.node;
        let early: Vec<(usize, usize, usize)> = job
            .outputs
            .iter()
            .enumerate()
            .filter(|(_, &(li, _))| self.w.links[li].desc.sync == crate::schema::SyncMode::Explicit)
            .map(|(k, &(li, bi))| (k, li, bi))
            .collect();
        if early.is_empty() {
            return;
        }
        // A held-back job (module `faults`) hands over before its bytes move: the checksums
        // follow when they do.
        let deferred = job.deferred.is_some() || job.ring_held;
        if !deferred && !job.result.is_settled() {
            self.barrier_one(id);
        }
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let sums: Vec<u64> = if deferred {
            vec![0; early.len()]
        } else {
            let Some(res) = job.result.settled() else {
                return;
            };
            if res.error.is_some() {
                return;
            }
            early
                .iter()
                .map(|&(k, _, _)| res.out_sums.get(k).copied().unwrap_or(0))
                .collect()
        };
        let frame = job.frame;
        let fence = job.fence.as_ref().map(|f| f.fence.clone());
        for (&(_, li, bi), sum) in early.iter().zip(sums) {
            self.w.buf_mut(bi).fence_end = Some(end);
            self.hand_over(n, frame, li, bi, sum, fence.as_ref());
            if let Some(j) = self.jobs.get_mut(&id) {
                j.handed.push(bi);
            }
        }
    }

    /// Reader `n` is done with buffer `bi` (consumed or discarded).
    pub(crate) fn release(&mut self, bi: usize, n: usize) {
        // early_release: this reader's frame was overwritten; what the buffer holds now is the
        // producer's next frame, which the reader has not read yet (module `faults`).
        if let Some(k) = self.reused.iter().position(|&r| r == (bi, n)) {
            self.reused.remove(k);
            return;
        }
        let Some(b) = self.w.bufs[bi].as_mut() else {
            return;
        };
        // A sync_file the reader never waited on (a frame it let go) is closed with it.
        if let Some((p, fd)) = b.acquire.remove(&n) {
            if p.is_alive() {
                let _ = p.close(fd);
            }
        }
        let empty = match &mut b.state {
            BufState::Ready { readers, .. } => {
                readers.remove(&n);
                readers.is_empty()
            }
            _ => false,
        };
        if empty {
            b.state = BufState::Free;
            self.free_buffer(bi);
        }
    }

    /// Puts a free buffer back on its link's free list, or drops it if it was retired.
    pub(crate) fn free_buffer(&mut self, bi: usize) {
        let b = self.w.buf(bi);
        let li = b.link;
        if b.retired {
            super::events::drop_buffer(&mut self.w, bi);
            return;
        }
        self.w.buf_mut(bi).fence_end = None;
        if let Err(e) = self.w.swap_release(bi) {
            self.errors.push(e);
        }
        self.w.links[li].free.push_back(bi);
        // The producer's process queues the empty buffer into its CAPTURE queue again.
        let from = self.w.links[li].from;
        if let Err(e) = self.w.vb2_qbuf(from, li, bi) {
            self.errors.push(e);
        }
    }

    /// Retires a frame once no sink is pending ([`super::outcome`]).
    pub(crate) fn check_delivered(&mut self, key: (usize, u64), now: VirtualTime) {
        if self.frames.get(&key).is_some_and(|f| f.pending.is_empty()) {
            self.retire(key, now);
        }
    }

    /// The vblank display node `n` shows a frame ready at `ready` on: the first one at or after
    /// `ready` on its `fps` grid, after the last one that took a frame (one frame per vblank).
    pub(crate) fn vblank(&mut self, n: usize, ready: VirtualTime) -> VirtualTime {
        // Vblank N is at fps.tick(N), exactly (a fractional refresh such as 59.94 Hz too).
        let fps = self.w.nodes[n].desc.fps;
        if fps.num() == 0 {
            return ready;
        }
        let mut idx = fps.first_tick_at_or_after(ready);
        if let Some(last) = self.w.nodes[n].last_vblank {
            idx = idx.max(fps.first_tick_at_or_after(last).saturating_add(1));
        }
        let at = fps.tick(idx);
        self.w.nodes[n].last_vblank = Some(at);
        at
    }
}
