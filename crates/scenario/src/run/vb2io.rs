//! The consumer side of `memory = "dmabuf"` links, through real vb2 queues.
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
//! 2. **Driver** ([`PortDriver`]): `buf_queue` puts the [`vb2::DriverBuffer`] on the driver's
//!    list; the consumer's job takes it from there and its device reads the bytes through the
//!    DMA segments vb2 mapped (not through a mapping of the runner's own). When the job ends on
//!    the virtual clock, the runner calls `buffer_done(DONE)` and DQBUFs it back.
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
//! Slots: each queue has [`SLOTS`] vb2 buffers; a link buffer gets the lowest free slot the
//! first time it is queued and keeps it until the buffer is dropped (`set_buffers`) or the queue
//! is freed (REQBUFS(0)).

use super::world::{RunFailure, World};
use crate::schema::{DriverKind, MapPolicy as NodeMapPolicy, MemoryType};
use drivers::dmaview::DmaView;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use uapi::Errno;
use vb2::ioctl::{V4l2Buffer, V4l2RequestBuffers, V4L2_BUF_TYPE_VIDEO_OUTPUT, V4L2_MEMORY_DMABUF};
use vb2::{
    Allocator, BufType, CounterSnapshot, DriverBuffer, MapPolicy, Memory, Vb2Error, Vb2Fh, Vb2Ops,
    Vb2Queue, Vb2QueueConfig, Vb2State,
};

/// vb2 buffers per queue (`max_num_buffers`' default).
pub(crate) const SLOTS: u32 = 32;

const TYPE: u32 = V4L2_BUF_TYPE_VIDEO_OUTPUT;

#[derive(Default)]
struct DriverState {
    /// ACTIVE buffers waiting for a job, by index.
    queued: BTreeMap<u32, DriverBuffer>,
    /// ACTIVE buffers a job is reading.
    running: BTreeSet<u32>,
}

/// The simulated driver behind a port's queue: it keeps what `buf_queue` gives it until the
/// runner's job takes it and completes it.
pub(crate) struct PortDriver {
    size: u32,
    st: Mutex<DriverState>,
}

impl Vb2Ops for PortDriver {
    fn queue_setup(&self, _n: &mut u32, req: Option<&[u32]>) -> Result<Vec<u32>, Errno> {
        vb2::default_queue_setup(&[self.size], req)
    }

    fn buf_queue(&self, _q: &Vb2Queue, vb: DriverBuffer) {
        self.st.lock().queued.insert(vb.index, vb);
    }

    fn stop_streaming(&self, q: &Vb2Queue) {
        let held: Vec<u32> = {
            let mut st = self.st.lock();
            let mut v: Vec<u32> = st.queued.keys().copied().collect();
            v.extend(st.running.iter().copied());
            st.queued.clear();
            st.running.clear();
            v
        };
        for i in held {
            let _ = q.buffer_done(i, Vb2State::Error);
        }
    }
}

/// One consumer's vb2 queue on one input link (module doc).
pub(crate) struct Port {
    /// The consumer node.
    pub node: usize,
    /// The link it reads.
    pub link: usize,
    /// The node's map policy.
    pub policy: NodeMapPolicy,
    q: Arc<Vb2Queue>,
    fh: Vb2Fh,
    drv: Arc<PortDriver>,
    slots: BTreeMap<usize, u32>,
    free: BTreeSet<u32>,
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
}

fn vb2_fail(what: &str, e: &Vb2Error) -> RunFailure {
    RunFailure {
        errno: format!("{:?}", e.errno()),
        message: format!("{what}: {e}"),
    }
}

impl Port {
    /// `node <- link`, for messages and the report.
    pub(crate) fn label(&self, w: &World) -> String {
        format!(
            "{} <- {}",
            w.nodes[self.node].desc.name, w.links[self.link].name
        )
    }

    /// REQBUFS(`count`) (0 frees every buffer: unmap, detach).
    pub(crate) fn reqbufs(&mut self, count: u32) -> Result<(), Vb2Error> {
        let mut req = V4l2RequestBuffers {
            count,
            type_: TYPE,
            memory: V4L2_MEMORY_DMABUF,
            ..Default::default()
        };
        self.gen += 1;
        self.slots.clear();
        self.free.clear();
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
        self.fh.streamon(TYPE)?;
        self.streaming = true;
        Ok(())
    }

    /// STREAMOFF: every queued buffer comes back (DEQUEUED).
    pub(crate) fn stream_off(&mut self) -> Result<(), Vb2Error> {
        self.gen += 1;
        self.streamoffs += 1;
        self.streaming = false;
        self.fh.streamoff(TYPE)
    }

    /// QBUF of link buffer `bi`, by `fd` in the consumer's process.
    fn qbuf(&mut self, bi: usize, fd: kernel::Fd) -> Result<(), Vb2Error> {
        let slot = match self.slots.get(&bi) {
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
        let mut b = V4l2Buffer::new(TYPE, V4L2_MEMORY_DMABUF, slot);
        b.m_fd = fd;
        b.length = 0;
        self.fh.qbuf(&mut b)?;
        self.qbufs += 1;
        Ok(())
    }

    /// The driver takes link buffer `bi` for a job: its slot and DMA view.
    fn take(&self, bi: usize) -> Option<(u32, DriverBuffer)> {
        let slot = *self.slots.get(&bi)?;
        let mut st = self.drv.st.lock();
        let vb = st.queued.remove(&slot)?;
        st.running.insert(slot);
        Some((slot, vb))
    }

    /// The job reading `slot` ended: `buffer_done(DONE)`, then DQBUF (a no-op if the queue took
    /// its buffers back since, `gen` tells).
    pub(crate) fn complete(&mut self, slot: u32, gen: u64) -> Result<(), Vb2Error> {
        if gen != self.gen || self.closed || !self.drv.st.lock().running.remove(&slot) {
            return Ok(());
        }
        self.q.buffer_done(slot, Vb2State::Done)?;
        let mut b = V4l2Buffer::new(TYPE, V4L2_MEMORY_DMABUF, 0);
        self.fh.dqbuf(&mut b)?;
        if b.index != slot {
            return Err(Vb2Error::new(
                Errno::EINVAL,
                format!("DQBUF gave buffer {}, expected {slot}", b.index),
            ));
        }
        Ok(())
    }

    /// Closes the file handle (cancel and free, as REQBUFS(0)).
    pub(crate) fn close(&mut self) {
        if !self.closed {
            self.gen += 1;
            self.fh.close();
            self.closed = true;
            self.streaming = false;
            self.allocated = false;
        }
    }

    /// The queue's debug counters.
    /// The UAPI path the queue takes: `(memory, type)` as the report names them, from the
    /// queue's own configuration and the memory its REQBUFS asks for.
    pub(crate) fn uapi_path(&self) -> (&'static str, &'static str) {
        let memory = match Memory::from_raw(V4L2_MEMORY_DMABUF) {
            Some(Memory::Mmap) => "mmap",
            Some(Memory::Userptr) => "userptr",
            Some(Memory::Dmabuf) => "dmabuf",
            None => "?",
        };
        let kind = if self.q.config().buf_type.is_output() {
            "output"
        } else {
            "capture"
        };
        (memory, kind)
    }

    pub(crate) fn counters(&self) -> CounterSnapshot {
        self.q.counters().snapshot()
    }
}

impl World {
    /// Opens a [`Port`] for every consumer of a `memory = "dmabuf"` or `"mmap+expbuf"` link:
    /// REQBUFS and STREAMON.
    pub(crate) fn open_ports(&mut self) -> Result<(), RunFailure> {
        let dma = self.kernel.dma().clone();
        for n in 0..self.nodes.len() {
            let node = &self.nodes[n];
            if matches!(
                node.desc.driver,
                DriverKind::Thumbnailer | DriverKind::Camera
            ) {
                continue;
            }
            for &li in &node.inputs {
                let l = &self.links[li];
                // A p2p GPU's buffers are read through a dynamic attachment (a DRM/KMS
                // importer), not a vb2 queue, whose static attachment would keep them out of
                // VRAM ([`super::gpu`]).
                // An EXPBUF fd is a dma-buf like any other: consumers import it the same way.
                if !matches!(
                    l.desc.memory,
                    MemoryType::Dmabuf | MemoryType::MmapExpbuf | MemoryType::Userptr
                ) || self.link_is_p2p(li)
                {
                    continue;
                }
                let total: u64 = l.format_planes.iter().map(|p| p.size).sum();
                let size = u32::try_from(total).map_err(|_| RunFailure {
                    errno: "EINVAL".into(),
                    message: format!("{}: buffers over 4 GiB do not fit a vb2 plane", l.name),
                })?;
                let policy = node.desc.map_policy;
                let mut cfg = Vb2QueueConfig::new(BufType::VideoOutput, node.dev.clone());
                cfg.io_modes = vec![Memory::Dmabuf];
                cfg.allocator = Allocator::DmaSg;
                cfg.max_num_buffers = SLOTS;
                cfg.map_policy = match policy {
                    NodeMapPolicy::KeepMapped => MapPolicy::KeepMapped,
                    NodeMapPolicy::UnmapOnDequeue => MapPolicy::UnmapOnDequeue,
                };
                let drv = Arc::new(PortDriver {
                    size,
                    st: Mutex::new(DriverState::default()),
                });
                let q = Vb2Queue::new(&dma, cfg, drv.clone());
                let fh = q.open(&node.process);
                fh.set_nonblocking(true);
                let mut port = Port {
                    node: n,
                    link: li,
                    policy,
                    q,
                    fh,
                    drv,
                    slots: BTreeMap::new(),
                    free: BTreeSet::new(),
                    streaming: false,
                    allocated: false,
                    closed: false,
                    gen: 0,
                    qbufs: 0,
                    streamoffs: 0,
                    requeue_cycles: 0,
                };
                let label = port.label(self);
                port.reqbufs(SLOTS)
                    .map_err(|e| vb2_fail(&format!("{label}: REQBUFS"), &e))?;
                port.stream_on()
                    .map_err(|e| vb2_fail(&format!("{label}: STREAMON"), &e))?;
                self.ports.push(port);
            }
        }
        Ok(())
    }

    /// The port of node `n` on link `li`, if it has one.
    pub(crate) fn port_of(&self, n: usize, li: usize) -> Option<usize> {
        self.ports.iter().position(|p| p.node == n && p.link == li)
    }

    /// QBUFs buffer `bi` into node `n`'s queue on link `li` (if it has a streaming one).
    pub(crate) fn vb2_qbuf(&mut self, n: usize, li: usize, bi: usize) -> Result<(), RunFailure> {
        let Some(p) = self.port_of(n, li) else {
            return Ok(());
        };
        if self.ports[p].closed || !self.ports[p].allocated {
            return Ok(());
        }
        let pid = self.nodes[n].process.pid();
        let b = self.buf(bi);
        let Some(fd) = b.fds.iter().find(|(q, _)| q.pid() == pid).map(|x| x.1) else {
            return Ok(());
        };
        let what = format!("{}: QBUF {}", self.ports[p].label(self), b.name);
        self.ports[p].qbuf(bi, fd).map_err(|e| vb2_fail(&what, &e))
    }

    /// Node `n`'s job takes buffer `bi` of link `li` from its queue's driver: `(port, slot,
    /// generation, the device's view through vb2's mapping)`, or `None` if it did not go
    /// through a queue (the job maps it itself then).
    pub(crate) fn vb2_take(
        &self,
        n: usize,
        li: usize,
        bi: usize,
    ) -> Option<(usize, u32, u64, DmaView)> {
        let p = self.port_of(n, li)?;
        let port = &self.ports[p];
        if port.closed || !port.streaming {
            return None;
        }
        let (slot, vb) = port.take(bi)?;
        let segs = vb.planes.first()?.segments.clone();
        Some((
            p,
            slot,
            port.gen,
            DmaView::from_segments(self.nodes[n].dev.clone(), &segs),
        ))
    }

    /// Buffer `bi` is gone: its slots become free for other buffers.
    pub(crate) fn ports_forget(&mut self, bi: usize) {
        for p in &mut self.ports {
            if let Some(s) = p.slots.remove(&bi) {
                p.free.insert(s);
            }
        }
    }

    /// STREAMON/STREAMOFF on node `n`'s queues.
    pub(crate) fn ports_stream(&mut self, n: usize, on: bool) -> Vec<RunFailure> {
        let mut errs = Vec::new();
        for p in 0..self.ports.len() {
            if self.ports[p].node != n || self.ports[p].closed || !self.ports[p].allocated {
                continue;
            }
            let label = self.ports[p].label(self);
            let r = if on {
                self.ports[p].stream_on()
            } else {
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
                let _ = port.reqbufs(0);
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
            let held: Vec<usize> = self.nodes[n]
                .ready
                .get(&li)
                .map(|q| q.iter().copied().collect())
                .unwrap_or_default();
            for bi in held {
                if let Err(e) = self.vb2_qbuf(n, li, bi) {
                    errs.push(e);
                }
            }
        }
        errs
    }

    /// Closes every queue and checks its counters balance; an imbalance is an error.
    pub(crate) fn close_ports(&mut self) -> Vec<RunFailure> {
        let mut errs = Vec::new();
        for p in 0..self.ports.len() {
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
}
