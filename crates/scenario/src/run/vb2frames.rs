//! The per-frame half of the runner's vb2 queues ([`super::vb2io`] sets them up): the
//! application's QBUF of a frame (or of an empty buffer, on a producer's CAPTURE queue), the
//! driver's ready list the next job takes its buffer from, and the job's end (`buffer_done`,
//! DQBUF, with [`Port::complete_payload`] in [`super::bitstream_io`]).
//!
//! # The concept
//! A link buffer always goes to the same vb2 index of a queue (its *slot*, given the first time
//! it is queued; [`super::vb2io`]'s module doc, rule 1), so vb2 sees the same dma-buf at the
//! same index again and keeps its attachment and mapping. What a consumer's next job reads is
//! what its driver holds first ([`World::ready_front`]), asked of the driver each time, then
//! what the application holds itself (`Node::ready`).
//!
//! Locking and lifetime: single-threaded (the runner's loop), as [`super::vb2io`].

use super::vb2io::{vb2_fail, Port, SLOTS};
use super::world::{RunFailure, World};
use drivers::dmaview::DmaView;
use uapi::Errno;
use vb2::ioctl::V4l2Buffer;
use vb2::{DriverBuffer, Memory, Vb2Error, Vb2State};

impl Port {
    /// QBUF of link buffer `bi`, by `fd` in the consumer's process; `bytesused` is an OUTPUT
    /// buffer's payload (0: the whole plane; a CAPTURE queue ignores it).
    pub(super) fn qbuf(
        &mut self,
        bi: usize,
        fd: kernel::Fd,
        bytesused: u32,
    ) -> Result<(), Vb2Error> {
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

    /// The job that took vb2 buffer `slot` failed before its device touched it: the driver
    /// gives it back in error (`buffer_done(ERROR)`, as an m2m driver's `device_run` does with
    /// a buffer it cannot process) and the application dequeues it (`V4L2_BUF_FLAG_ERROR`).
    /// `Ok(false)` if the queue took its buffers back since (`gen` tells): nothing to give.
    pub(crate) fn complete_error(&mut self, slot: u32, gen: u64) -> Result<bool, Vb2Error> {
        if gen != self.gen || self.closed || !self.drv.finish(&self.q, slot, Vb2State::Error)? {
            return Ok(false);
        }
        let mut b = V4l2Buffer::new(self.type_raw(), self.memory.raw(), 0);
        self.fh.dqbuf(&mut b)?;
        self.queued.remove(&b.index);
        if b.index != slot || b.flags & vb2::ioctl::V4L2_BUF_FLAG_ERROR == 0 {
            return Err(Vb2Error::new(
                Errno::EINVAL,
                format!(
                    "DQBUF gave buffer {} (flags {:#x}), expected {slot} in error",
                    b.index, b.flags
                ),
            ));
        }
        Ok(true)
    }

    /// The job reading `slot` ended: `buffer_done(DONE)`, then DQBUF (a no-op if the queue took
    /// its buffers back since, `gen` tells); [`Port::complete_payload`] without a payload.
    pub(crate) fn complete(&mut self, slot: u32, gen: u64) -> Result<(), Vb2Error> {
        self.complete_payload(slot, gen, None).map(|_| ())
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
}
