//! Both sides of a link through real vb2 queues: consumers' OUTPUT queues and the V4L2
//! producers' (camera, ISP) CAPTURE queues.
//!
//! # The concept
//! Every node that reads a `memory = "dmabuf"` link (a thumbnailer excepted: it is a CPU
//! reader) has a [`vb2::Vb2Queue`] of type `VIDEO_OUTPUT`, memory `DMABUF`, on its device, opened
//! by its process: a [`Port`]. The runner plays both sides of it:
//!
//! 1. **Application**: when a producer's job completes, the runner QBUFs the buffer's fd (the fd
//!    the consumer's process holds) into the consumer's queue, at the slot (vb2 index) that
//!    buffer always uses, so that vb2 sees the same dma-buf at the same index again (rule 4 of
//!    [`vb2::mem_dmabuf`]: keep the attachment and, under `keep_mapped`, the mapping).
//! 2. **Driver** ([`drivers::media::ReadyList`], the media drivers' own vb2 side): `buf_queue`
//!    puts the [`vb2::DriverBuffer`] on the driver's ready list, in queue order
//!    (`v4l2_m2m_buf_queue`). The runner keeps no copy of that list: when the consumer can run,
//!    it asks the driver which buffer comes next ([`World::ready_front`]), the job takes it
//!    ([`World::vb2_take`], `v4l2_m2m_buf_remove_by_idx`) and its device reads the bytes through
//!    the DMA segments vb2 mapped (not through a mapping of the runner's own). When the job ends
//!    on the virtual clock, the driver completes it (`ReadyList::finish`, `buffer_done(DONE)`)
//!    and the application DQBUFs it back. What the application holds outside any queue (a
//!    reader without one, frames a STREAMOFF or REQBUFS(0) gave back) is `Node::ready`.
//! 3. The node's `map_policy` is the queue's [`vb2::MapPolicy`]: `keep_mapped` maps each buffer
//!    once, `unmap_on_dequeue` maps at every QBUF (the report's `vb2_queues` shows both).
//! 4. `stream_off`/`stream_on` events are STREAMOFF/STREAMON on the queue; `stop_streaming`
//!    hands every buffer the driver holds back with `buffer_done(ERROR)`.
//! 5. A late attach that may migrate a buffer (constraint exporter) first lets the queues on the
//!    affected links go: STREAMOFF + REQBUFS(0) unmaps and detaches what vb2 holds (a static
//!    importer's mapping the migration would otherwise wait for until `EBUSY`); after the
//!    attach, REQBUFS + STREAMON and the frames the consumer had queued are queued again. The
//!    cycle is counted per queue (`requeue_cycles`) and shown in the trace.
//! 6. At the end every queue is closed and its debug counters must balance; an imbalance is a
//!    run error.
//!
//! 7. **Producers** (a camera or ISP on a `memory = "dmabuf"` or `"mmap+expbuf"` link) have a
//!    CAPTURE [`Port`]: DMABUF importing the link's fds, or the MMAP queue `VIDIOC_CREATE_BUFS`
//!    made the buffers in (never REQBUFS(0)-ed while EXPBUF fds share them). The producer's
//!    process QBUFs every empty buffer (when made, and when its last reader released it); the
//!    job's device writes the one the driver holds first ([`World::capture_next`]) through
//!    vb2's mapping; at the job's end
//!    `buffer_done(DONE)` and DQBUF, then the frame goes to the consumers. `queue = "capture"`
//!    events STREAMOFF/STREAMON it (empty buffers are queued again after STREAMON).
//!
//! Slots: each queue has [`SLOTS`] vb2 buffers; a link buffer gets the lowest free slot the
//! first time it is queued and keeps it until the buffer is dropped (`set_buffers`) or the queue
//! is freed (REQBUFS(0)).

use super::world::{RunFailure, World};
use crate::schema::MapPolicy as NodeMapPolicy;
use drivers::dmaview::DmaView;
use drivers::media::ReadyList;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use uapi::Errno;
use vb2::ioctl::{V4l2Buffer, V4l2RequestBuffers};
use vb2::{CounterSnapshot, DriverBuffer, Memory, Vb2Error, Vb2Fh, Vb2Queue};

/// vb2 buffers per queue (`max_num_buffers`' default).
pub(crate) const SLOTS: u32 = 32;

/// One consumer's vb2 queue on one input link (module doc).
pub(crate) struct Port {
    /// The consumer node.
    pub node: usize,
    /// The link it reads.
    pub link: usize,
    /// The node's map policy.
    pub policy: NodeMapPolicy,
    /// A CAPTURE queue (the producer's device writes its buffers), else OUTPUT.
    pub capture: bool,
    /// `V4L2_MEMORY_DMABUF` (the link's fds imported) or `V4L2_MEMORY_MMAP` (vb2 allocates,
    /// `VIDIOC_EXPBUF` exports: a `mmap+expbuf` producer's queue, whose slots are its
    /// CREATE_BUFS indices and which is never REQBUFS(0)-ed while its buffers are shared).
    pub memory: Memory,
    pub(super) q: Arc<Vb2Queue>,
    pub(super) fh: Vb2Fh,
    pub(super) drv: Arc<ReadyList>,
    slots: BTreeMap<usize, u32>,
    free: BTreeSet<u32>,
    /// Slots the application queued and has not dequeued (vb2 owns them until DQBUF or
    /// STREAMOFF).
    pub(super) queued: BTreeSet<u32>,
    /// STREAMON is in effect.
    pub streaming: bool,
    /// REQBUFS(n > 0) is in effect.
    pub allocated: bool,
    /// Closed (the process died, or the run ended).
    pub closed: bool,
    /// Bumped whenever the queue takes buffers back (STREAMOFF, REQBUFS, close): a job that
    /// started before completes nothing.
    pub gen: u64,
    /// QBUFs that succeeded.
    pub qbufs: u64,
    /// STREAMOFFs.
    pub streamoffs: u64,
    /// STREAMOFF/REQBUFS cycles made to let a migration happen.
    pub requeue_cycles: u64,
    /// `V4L2_MEMORY_USERPTR`: each link buffer's address and length in the process's memory.
    userptrs: BTreeMap<usize, (u64, u32)>,
}

pub(crate) fn vb2_fail(what: &str, e: &Vb2Error) -> RunFailure {
    RunFailure {
        errno: format!("{:?}", e.errno()),
        message: format!("{what}: {e}"),
    }
}

impl Port {
    /// `node <- link`, for messages and the report.
    pub(crate) fn label(&self, w: &World) -> String {
        format!(
            "{} {} {}",
            w.nodes[self.node].desc.name,
            if self.capture { "->" } else { "<-" },
            w.links[self.link].name
        )
    }

    /// REQBUFS(`count`) (0 frees every buffer: unmap, detach).
    pub(crate) fn reqbufs(&mut self, count: u32) -> Result<(), Vb2Error> {
        let mut req = V4l2RequestBuffers {
            count,
            type_: self.type_raw(),
            memory: self.memory.raw(),
            ..Default::default()
        };
        self.gen += 1;
        self.slots.clear();
        self.free.clear();
        self.queued.clear();
        self.allocated = false;
        self.fh.reqbufs(&mut req)?;
        self.allocated = count > 0;
        if count > 0 {
            self.free = (0..req.count).collect();
        }
        Ok(())
    }

    /// STREAMON.
    pub(crate) fn stream_on(&mut self) -> Result<(), Vb2Error> {
        self.fh.streamon(self.type_raw())?;
        self.streaming = true;
        Ok(())
    }

    /// STREAMOFF: every queued buffer comes back (DEQUEUED).
    pub(crate) fn stream_off(&mut self) -> Result<(), Vb2Error> {
        self.gen += 1;
        self.streamoffs += 1;
        self.streaming = false;
        self.queued.clear();
        self.fh.streamoff(self.type_raw())
    }

    /// QBUF of link buffer `bi`, by `fd` in the consumer's process; `bytesused` is an OUTPUT
    /// buffer's payload (0: the whole plane; a CAPTURE queue ignores it).
    fn qbuf(&mut self, bi: usize, fd: kernel::Fd, bytesused: u32) -> Result<(), Vb2Error> {
        let slot = match self.slots.get(&bi) {
            // Queued already (and not dequeued since): the application does not queue it twice.
            Some(s) if self.queued.contains(s) => return Ok(()),
            Some(&s) => s,
            None => {
                let s = self.free.pop_first().ok_or_else(|| {
                    Vb2Error::new(
                        vb2::ioctl::enobufs(),
                        format!("all {SLOTS} vb2 buffers are in use"),
                    )
                })?;
                self.slots.insert(bi, s);
                s
            }
        };
        let mut b = V4l2Buffer::new(self.type_raw(), self.memory.raw(), slot);
        if !self.capture {
            b.bytesused = bytesused;
        }
        match self.memory {
            Memory::Dmabuf => {
                b.m_fd = fd;
                b.length = 0;
            }
            Memory::Userptr => {
                let &(ptr, len) = self.userptrs.get(&bi).ok_or_else(|| {
                    Vb2Error::new(Errno::EFAULT, "no user memory for this buffer")
                })?;
                b.m_userptr = ptr;
                b.length = len;
            }
            Memory::Mmap => {}
        }
        self.fh.qbuf(&mut b)?;
        self.queued.insert(slot);
        self.qbufs += 1;
        Ok(())
    }

    /// The link buffer in vb2 buffer `slot`, if one is.
    pub(super) fn buffer_at(&self, slot: u32) -> Option<usize> {
        self.slots
            .iter()
            .find(|(_, &s)| s == slot)
            .map(|(&bi, _)| bi)
    }

    /// What the driver holds for its next jobs, in the order it takes them: `(slot, link
    /// buffer)` (a slot whose buffer the application dropped is skipped: it never comes back).
    pub(super) fn driver_queue(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        self.drv
            .indices()
            .into_iter()
            .filter_map(|s| Some((s, self.buffer_at(s)?)))
    }

    /// The driver takes vb2 buffer `slot` off its ready list for a job.
    pub(super) fn take(&self, slot: u32) -> Option<DriverBuffer> {
        self.drv.take(slot)
    }

    /// The job reading `slot` ended: `buffer_done(DONE)`, then DQBUF (a no-op if the queue took
    /// its buffers back since, `gen` tells); [`Port::complete_payload`] without a payload.
    pub(crate) fn complete(&mut self, slot: u32, gen: u64) -> Result<(), Vb2Error> {
        self.complete_payload(slot, gen, None).map(|_| ())
    }

    /// Closes the file handle (cancel and free, as REQBUFS(0)).
    pub(crate) fn close(&mut self) {
        if !self.closed {
            self.gen += 1;
            self.fh.close();
            self.queued.clear();
            self.closed = true;
            self.streaming = false;
            self.allocated = false;
        }
    }

    /// The queue's `V4L2_BUF_TYPE_*`.
    pub(super) fn type_raw(&self) -> u32 {
        self.q.config().buf_type.raw()
    }

    /// The UAPI path the queue takes: `(memory, type)` as the report names them, from the
    /// queue's own configuration and the memory its buffers are queued with.
    pub(crate) fn uapi_path(&self) -> (&'static str, &'static str) {
        let memory = match self.memory {
            Memory::Mmap => "mmap",
            Memory::Userptr => "userptr",
            Memory::Dmabuf => "dmabuf",
        };
        let kind = if self.q.config().buf_type.is_output() {
            "output"
        } else {
            "capture"
        };
        (memory, kind)
    }

    /// The file handle.
    pub(crate) fn fh(&self) -> &Vb2Fh {
        &self.fh
    }

    /// `VIDIOC_CREATE_BUFS` of one MMAP buffer of `bytes`, the slot of link buffer `bi`: its
    /// vb2 index.
    pub(crate) fn create_mmap_buf(&mut self, bi: usize, bytes: u32) -> Result<u32, Vb2Error> {
        use vb2::ioctl::{V4l2CreateBuffers, V4l2Format};
        let mut cb = V4l2CreateBuffers {
            count: 1,
            memory: Memory::Mmap.raw(),
            format: V4l2Format {
                type_: self.type_raw(),
                num_planes: 1,
                sizes: vec![bytes],
            },
            ..Default::default()
        };
        self.fh.create_bufs(&mut cb)?;
        self.slots.insert(bi, cb.index);
        Ok(cb.index)
    }

    /// The process memory USERPTR pointers of this queue refer to.
    pub(crate) fn user_memory(&self) -> Option<&Arc<vb2::UserMemory>> {
        self.fh.user_memory()
    }

    /// `memory = "userptr"`: link buffer `bi` is `len` bytes at `ptr` of the process's memory.
    pub(crate) fn set_userptr(&mut self, bi: usize, ptr: u64, len: u32) {
        self.userptrs.insert(bi, (ptr, len));
    }

    /// The queue's debug counters.
    pub(crate) fn counters(&self) -> CounterSnapshot {
        self.q.counters().snapshot()
    }
}

impl Port {
    /// A port on queue `q`, opened (`fh`) by node `node`'s process for link `link`.
    pub(crate) fn new(
        node: usize,
        link: usize,
        policy: NodeMapPolicy,
        q: Arc<Vb2Queue>,
        fh: Vb2Fh,
        drv: Arc<ReadyList>,
    ) -> Port {
        let capture = !q.config().buf_type.is_output();
        let memory = q
            .config()
            .io_modes
            .first()
            .copied()
            .unwrap_or(Memory::Dmabuf);
        Port {
            node,
            link,
            policy,
            capture,
            memory,
            q,
            fh,
            drv,
            slots: BTreeMap::new(),
            free: BTreeSet::new(),
            queued: BTreeSet::new(),
            streaming: false,
            allocated: false,
            closed: false,
            gen: 0,
            qbufs: 0,
            streamoffs: 0,
            requeue_cycles: 0,
            userptrs: BTreeMap::new(),
        }
    }
}

impl World {
    /// The port of node `n` on link `li`, if it has one.
    pub(crate) fn port_of(&self, n: usize, li: usize) -> Option<usize> {
        self.ports.iter().position(|p| p.node == n && p.link == li)
    }

    /// QBUFs buffer `bi` into node `n`'s queue on link `li` (if it has a streaming one).
    /// `Ok(true)` if the queue's driver now holds it for a job (it is on the driver's ready
    /// list); `Ok(false)` if it stays in the application's hands (no queue, a queue not
    /// streaming, or the buffer is queued already and in a job).
    pub(crate) fn vb2_qbuf(&mut self, n: usize, li: usize, bi: usize) -> Result<bool, RunFailure> {
        let Some(p) = self.port_of(n, li) else {
            return Ok(false);
        };
        if self.ports[p].closed || !self.ports[p].allocated {
            return Ok(false);
        }
        let pid = self.nodes[n].process.pid();
        let b = self.buf(bi);
        let Some(fd) = b.fds.iter().find(|(q, _)| q.pid() == pid).map(|x| x.1) else {
            return Ok(false);
        };
        let what = format!("{}: QBUF {}", self.ports[p].label(self), b.name);
        // A bitstream's payload (super::bitstream_io); 0 (the whole plane) for a frame.
        let used = b.used.map_or(0, |u| u32::try_from(u).unwrap_or(u32::MAX));
        self.ports[p]
            .qbuf(bi, fd, used)
            .map_err(|e| vb2_fail(&what, &e))?;
        let port = &self.ports[p];
        Ok(port.streaming && port.driver_queue().any(|(_, b)| b == bi))
    }

    /// Node `n`'s port on link `li` if vb2 drives it now (open, with buffers, streaming).
    pub(super) fn driven_port(&self, n: usize, li: usize) -> Option<usize> {
        let p = self.port_of(n, li)?;
        let port = &self.ports[p];
        (!port.closed && port.allocated && port.streaming).then_some(p)
    }

    /// The frames node `n`'s next jobs read on input link `li`, oldest first: what its vb2
    /// queue's driver holds (the driver's ready list, asked, not copied), then what the
    /// application holds itself (`Node::ready`: a reader without a vb2 queue, frames a
    /// STREAMOFF or REQBUFS(0) gave back, a frame its queue could not take).
    pub(crate) fn ready_bufs(&self, n: usize, li: usize) -> Vec<usize> {
        let mut v: Vec<usize> = match self.driven_port(n, li) {
            Some(p) => self.ports[p].driver_queue().map(|(_, bi)| bi).collect(),
            None => Vec::new(),
        };
        if let Some(q) = self.nodes[n].ready.get(&li) {
            v.extend(q.iter().copied());
        }
        v
    }

    /// The frame node `n`'s next job reads on input link `li` ([`World::ready_bufs`]' first).
    pub(crate) fn ready_front(&self, n: usize, li: usize) -> Option<usize> {
        if let Some(p) = self.driven_port(n, li) {
            if let Some((_, bi)) = self.ports[p].driver_queue().next() {
                return Some(bi);
            }
        }
        self.nodes[n].ready.get(&li)?.front().copied()
    }

    /// Takes buffer `bi` out of the frames the application holds for node `n` on link `li`.
    pub(crate) fn ready_remove(&mut self, n: usize, li: usize, bi: usize) {
        if let Some(q) = self.nodes[n].ready.get_mut(&li) {
            if let Some(k) = q.iter().position(|&b| b == bi) {
                q.remove(k);
            }
        }
    }

    /// The empty buffer a V4L2 producer `n`'s next job fills on output link `li`: the one its
    /// CAPTURE queue's driver holds first, if it has a streaming queue.
    pub(crate) fn capture_next(&self, n: usize, li: usize) -> Option<usize> {
        let p = self.driven_port(n, li)?;
        self.ports[p].driver_queue().next().map(|(_, bi)| bi)
    }

    /// Node `n`'s job takes buffer `bi` of link `li` from its queue's driver: `(port, slot,
    /// generation, the device's view through vb2's mapping)`, or `None` if the driver does
    /// not hold it (the job maps it itself then).
    pub(crate) fn vb2_take(
        &self,
        n: usize,
        li: usize,
        bi: usize,
    ) -> Option<(usize, u32, u64, DmaView)> {
        let (p, slot, gen, view, _) = self.vb2_take_payload(n, li, bi)?;
        Some((p, slot, gen, view))
    }

    /// The driver of port `p` re-maps the buffer in `slot` it owns for `dir`, replacing vb2's
    /// mapping (`Vb2Queue::remap_dmabuf`; the `wrong_direction` fault, module `faults`): the
    /// device's view through the new mapping.
    pub(crate) fn vb2_remap(
        &self,
        p: usize,
        slot: u32,
        dir: dma::DmaDirection,
    ) -> Result<DmaView, RunFailure> {
        let port = &self.ports[p];
        let segs = port.q.remap_dmabuf(slot, dir).map_err(|e| {
            RunFailure::new(
                &e,
                format!("{}: re-mapping buffer {slot}: {e}", port.label(self)),
            )
        })?;
        let first = segs.into_iter().next().unwrap_or_default();
        Ok(DmaView::from_segments(
            self.nodes[port.node].dev.clone(),
            &first,
        ))
    }

    /// Before output port `p`'s queue takes its buffers back (STREAMOFF, REQBUFS(0), close):
    /// the frames its driver held are the application's again, ahead of what it held already.
    fn port_reclaim(&mut self, p: usize) {
        let port = &self.ports[p];
        if port.capture || port.closed || !port.streaming {
            return;
        }
        let held: Vec<usize> = port.driver_queue().map(|(_, bi)| bi).collect();
        let (n, li) = (port.node, port.link);
        if let Some(q) = self.nodes[n].ready.get_mut(&li) {
            for bi in held.into_iter().rev() {
                q.push_front(bi);
            }
        }
    }

    /// Buffer `bi` is gone: its slots become free for other buffers.
    pub(crate) fn ports_forget(&mut self, bi: usize) {
        for p in &mut self.ports {
            if p.memory == Memory::Mmap {
                // vb2's own buffer: it stays in the queue until the queue is freed.
                continue;
            }
            // The application unmaps a dropped buffer's memory; vb2 keeps the pages pinned
            // until the slot is queued with another pointer or freed.
            if let Some((ptr, _)) = p.userptrs.remove(&bi) {
                if let Some(u) = p.fh.user_memory() {
                    let _ = u.munmap(ptr);
                }
            }
            if let Some(s) = p.slots.remove(&bi) {
                // A slot the driver still holds (a producer's queued empty buffer) stays
                // taken: only STREAMOFF gives it back, and the queue is not stopped for this.
                if !p.queued.contains(&s) {
                    p.free.insert(s);
                }
            }
        }
    }

    /// STREAMON/STREAMOFF on node `n`'s OUTPUT queues (`capture`: its CAPTURE queues, which
    /// the producer QBUFs its free buffers into again after STREAMON).
    pub(crate) fn ports_stream(&mut self, n: usize, on: bool, capture: bool) -> Vec<RunFailure> {
        let mut errs = Vec::new();
        for p in 0..self.ports.len() {
            let port = &self.ports[p];
            if port.node != n || port.capture != capture || port.closed || !port.allocated {
                continue;
            }
            if capture && on {
                errs.extend(self.port_restart(p, true));
                continue;
            }
            let label = self.ports[p].label(self);
            let r = if on {
                self.ports[p].stream_on()
            } else {
                self.port_reclaim(p);
                self.ports[p].stream_off()
            };
            if let Err(e) = r {
                let what = if on { "STREAMON" } else { "STREAMOFF" };
                errs.push(vb2_fail(&format!("{label}: {what}"), &e));
            }
        }
        errs
    }

    /// Lets the queues of `ports` go (STREAMOFF, REQBUFS(0)); `close` closes them for good.
    /// Returns which were streaming.
    pub(crate) fn ports_release(&mut self, ports: &[usize], close: bool) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        for &p in ports {
            self.port_reclaim(p);
            let port = &mut self.ports[p];
            if port.closed {
                continue;
            }
            let was = port.streaming;
            if close {
                port.close();
            } else if port.allocated {
                if was {
                    let _ = port.stream_off();
                }
                // vb2's MMAP buffers are shared (EXPBUF): the queue keeps them.
                if port.memory != Memory::Mmap {
                    let _ = port.reqbufs(0);
                }
            }
            out.push((p, was));
        }
        out
    }

    /// REQBUFS and (if `stream`) STREAMON again on port `p`, then QBUFs what node's runner
    /// queue still holds for it.
    pub(crate) fn port_restart(&mut self, p: usize, stream: bool) -> Vec<RunFailure> {
        let mut errs = Vec::new();
        if self.ports[p].closed {
            return errs;
        }
        let label = self.ports[p].label(self);
        if !self.ports[p].allocated {
            if let Err(e) = self.ports[p].reqbufs(SLOTS) {
                errs.push(vb2_fail(&format!("{label}: REQBUFS"), &e));
                return errs;
            }
        }
        if stream && !self.ports[p].streaming {
            if let Err(e) = self.ports[p].stream_on() {
                errs.push(vb2_fail(&format!("{label}: STREAMON"), &e));
                return errs;
            }
        }
        let (n, li) = (self.ports[p].node, self.ports[p].link);
        if self.ports[p].streaming {
            // A producer queues its empty buffers, a consumer the frames it holds.
            let held: Vec<usize> = if self.ports[p].capture {
                self.links[li].free.iter().copied().collect()
            } else {
                self.nodes[n]
                    .ready
                    .get(&li)
                    .map(|q| q.iter().copied().collect())
                    .unwrap_or_default()
            };
            let capture = self.ports[p].capture;
            for bi in held {
                match self.vb2_qbuf(n, li, bi) {
                    // The driver holds the frame now, not the application.
                    Ok(true) if !capture => self.ready_remove(n, li, bi),
                    Ok(_) => {}
                    Err(e) => errs.push(e),
                }
            }
        }
        errs
    }

    /// Closes every queue and checks its counters balance; an imbalance is an error. A MMAP
    /// queue stays until its exported buffers are closed ([`World::close_mmap_ports`]).
    pub(crate) fn close_ports(&mut self) -> Vec<RunFailure> {
        let mut errs = Vec::new();
        for p in 0..self.ports.len() {
            if self.ports[p].memory == Memory::Mmap {
                continue;
            }
            self.port_reclaim(p);
            self.ports[p].close();
            if let Err(e) = self.ports[p].counters().check_balanced() {
                errs.push(RunFailure {
                    errno: "EINVAL".into(),
                    message: format!(
                        "vb2 queue {}: counters do not balance: {e}",
                        self.ports[p].label(self)
                    ),
                });
            }
        }
        errs
    }

    /// Closes the MMAP queues (after their exported buffers went).
    pub(crate) fn close_mmap_ports(&mut self) {
        for p in &mut self.ports {
            if p.memory == Memory::Mmap {
                p.close();
            }
        }
    }
}
