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
//! This file sets the queues up and takes them down (REQBUFS, CREATE_BUFS, STREAMON/OFF,
//! close, the requeue cycle of rule 5); each frame's QBUF, the driver's ready list and the
//! job's take are in [`super::vb2frames`], the job's end in [`super::bitstream_io`].
//!
//! Slots: each queue has [`SLOTS`] vb2 buffers; a link buffer gets the lowest free slot the
//! first time it is queued and keeps it until the buffer is dropped (`set_buffers`) or the queue
//! is freed (REQBUFS(0)).

use super::world::{RunFailure, World};
use crate::schema::MapPolicy as NodeMapPolicy;
use drivers::media::ReadyList;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use vb2::ioctl::V4l2RequestBuffers;
use vb2::{CounterSnapshot, Memory, Vb2Error, Vb2Fh, Vb2Queue};

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
    pub(super) slots: BTreeMap<usize, u32>,
    pub(super) free: BTreeSet<u32>,
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
    pub(super) userptrs: BTreeMap<usize, (u64, u32)>,
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
