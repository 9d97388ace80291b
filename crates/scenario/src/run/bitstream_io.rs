//! A stateful encoder's bitstream through vb2 on both sides of its output link, as a V4L2
//! mem2mem encoder has it (`v4l2-mem2mem.c`; `vicodec`, `hantro`): raw frames go in through its
//! OUTPUT queue, the coded stream comes out through its CAPTURE queue.
//!
//! # The concept
//! 1. An RLE encoder that feeds a link gets a CAPTURE [`Port`] on it like any V4L2 producer
//!    ([`World::open_ports`]): memory DMABUF importing the link's fds, or, on a
//!    `memory = "mmap+expbuf"` link, the MMAP queue `VIDIOC_CREATE_BUFS` made the buffers in,
//!    exported with `VIDIOC_EXPBUF`. Each buffer's one plane is the coded format's `sizeimage`:
//!    the codec's worst case for the largest frame it reads ([`super::m2m::link_planes`]).
//! 2. Its job writes the stream into the empty buffer its driver holds first, through vb2's
//!    mapping. At the job's end the driver sets the plane's payload to the stream's length
//!    (`vb2_set_plane_payload`, as `hantro_h1_jpeg_enc_done` and vicodec's `device_process` do),
//!    completes it (`buffer_done(DONE)`) and the application DQBUFs it: DQBUF's `bytesused` is
//!    the stream's length, and that is what travels with the frame
//!    ([`super::world::BufRt::used`]).
//! 3. The consumer's process QBUFs the fd into its OUTPUT queue with that `bytesused` (an
//!    OUTPUT queue's payload is the application's to say; 0 would mean the whole plane), and
//!    the consumer's job (a decoder) reads exactly the plane's `bytesused` its driver got
//!    ([`World::vb2_take_payload`]): a stream read past its end fails the decoder's check.
//!
//! 4. An encoder's job ends through its driver, not here: [`drivers::encoder::Drain::job_done`]
//!    sets the payload (or completes both buffers ERROR when the stream does not fit, and sets
//!    `V4L2_BUF_FLAG_LAST` at the end of a drain), the same code as the drivers crate's own
//!    `Encoder`; the runner's part is the application's DQBUFs. Its drain is
//!    [`super::encoder_drain`]'s.
//!
//! Locking and lifetime: single-threaded (the runner's loop), as [`super::vb2io`].

use super::sched::Sched;
use super::vb2io::{vb2_fail, Port};
use super::world::World;
use crate::schema::DriverKind;
use drivers::dmaview::DmaView;
use uapi::Errno;
use vb2::ioctl::V4l2Buffer;
use vb2::{Vb2Error, Vb2State};

impl Port {
    /// The job on vb2 buffer `slot` ended: with a `payload` (a CAPTURE buffer the device wrote a
    /// stream of that many bytes into) `vb2_set_plane_payload` first, then `buffer_done(DONE)`
    /// and DQBUF. Returns DQBUF's `bytesused`, or `None` if the queue took its buffers back
    /// since (`gen` tells) and there was nothing to complete.
    pub(crate) fn complete_payload(
        &mut self,
        slot: u32,
        gen: u64,
        payload: Option<u32>,
    ) -> Result<Option<u32>, Vb2Error> {
        if gen != self.gen || self.closed {
            return Ok(None);
        }
        // While the buffer is still the driver's (ACTIVE): after buffer_done it is not.
        let set = payload.map(|bytes| self.q.set_plane_payload(slot, 0, bytes));
        if !self.drv.finish(&self.q, slot, Vb2State::Done)? {
            return Ok(None);
        }
        if let Some(set) = set {
            set?;
        }
        Ok(self.dqbuf_slot(slot, gen)?.map(|b| b.bytesused))
    }
}

impl World {
    /// [`World::vb2_take`], with the `bytesused` of the buffer's first plane as the driver got
    /// it (an OUTPUT buffer's payload, as the application queued it).
    pub(crate) fn vb2_take_payload(
        &self,
        n: usize,
        li: usize,
        bi: usize,
    ) -> Option<(usize, u32, u64, DmaView, u32)> {
        let p = self.driven_port(n, li)?;
        let port = &self.ports[p];
        let slot = port
            .driver_queue()
            .find_map(|(s, b)| (b == bi).then_some(s))?;
        // An encoder's job begins (`device_run`): a stopped encoder runs none.
        let n_enc = !port.capture && self.nodes[n].desc.driver == DriverKind::Encoder;
        if n_enc && !self.nodes[n].m2m.drain.job_started(slot) {
            return None;
        }
        let vb = port.take(slot)?;
        let plane = vb.planes.first()?;
        let view = DmaView::from_segments(self.nodes[n].dev.clone(), &plane.segments);
        Some((p, slot, port.gen, view, plane.bytesused))
    }
}

impl Port {
    /// The application's DQBUF of `slot`, which the driver completed: the buffer as DQBUF
    /// reports it, or `None` if the queue took its buffers back since (`gen` tells).
    fn dqbuf_slot(&mut self, slot: u32, gen: u64) -> Result<Option<V4l2Buffer>, Vb2Error> {
        if gen != self.gen || self.closed {
            return Ok(None);
        }
        let mut b = V4l2Buffer::new(self.type_raw(), self.memory.raw(), 0);
        self.fh.dqbuf(&mut b)?;
        self.queued.remove(&b.index);
        if b.index != slot {
            return Err(Vb2Error::new(
                Errno::EINVAL,
                format!("DQBUF gave buffer {}, expected {slot}", b.index),
            ));
        }
        Ok(Some(b))
    }
}

impl Sched<'_> {
    /// A job's vb2 buffers `(port, slot, generation)` are over: each is completed and dequeued
    /// ([`Port::complete_payload`]); a CAPTURE buffer of a job that wrote a bitstream of
    /// `stream` bytes gets that payload, and DQBUF's `bytesused` is what its readers read
    /// (module doc). An encoder's job ends through its driver ([`Sched::encoder_job_done`]).
    pub(crate) fn complete_vb2(&mut self, vb2: &[(usize, u32, u64)], stream: Option<u64>) {
        let encoder = vb2.iter().find(|&&(p, _, _)| {
            let port = &self.w.ports[p];
            !port.capture && self.w.nodes[port.node].desc.driver == DriverKind::Encoder
        });
        if let Some(&src) = encoder {
            self.encoder_job_done(src, vb2, stream);
            return;
        }
        for &(p, slot, gen) in vb2 {
            let payload = if self.w.ports[p].capture {
                stream.map(|len| u32::try_from(len).unwrap_or(u32::MAX))
            } else {
                None
            };
            match self.w.ports[p].complete_payload(slot, gen, payload) {
                Ok(Some(used)) if payload.is_some() => self.note_payload(p, slot, used),
                Ok(_) => {}
                Err(e) => {
                    let label = self.w.ports[p].label(&self.w);
                    let what = format!("{label}: buffer_done/DQBUF of buffer {slot}");
                    self.errors.push(vb2_fail(&what, &e));
                }
            }
        }
    }

    /// DQBUF's `bytesused` of the CAPTURE buffer in `slot` of port `p` travels with its frame.
    fn note_payload(&mut self, p: usize, slot: u32, used: u32) {
        if let Some(bi) = self.w.ports[p].buffer_at(slot) {
            if self.w.bufs[bi].is_some() {
                self.w.buf_mut(bi).used = Some(u64::from(used));
            }
        }
    }

    /// An encoder's job ended (`src`: its OUTPUT buffer; the CAPTURE one, if it writes into a
    /// link, among `vb2`): the driver ends it ([`drivers::encoder::Drain::job_done`]: payload or
    /// ERROR, `LAST` at the end of a drain, both buffers completed), then the application
    /// dequeues both. A job with no CAPTURE buffer (a bitstream in the encoder's own buffer,
    /// or the checksum codec) that ran to its end completes DONE.
    fn encoder_job_done(
        &mut self,
        src: (usize, u32, u64),
        vb2: &[(usize, u32, u64)],
        stream: Option<u64>,
    ) {
        let (op, oslot, ogen) = src;
        let n = self.w.ports[op].node;
        let cap = vb2
            .iter()
            .copied()
            .find(|&(p, _, _)| self.w.ports[p].capture && self.w.ports[p].node == n);
        // A CAPTURE buffer vb2 took back (and maybe queued again) since is not the job's.
        let dst = cap.filter(|&(p, _, g)| g == self.w.ports[p].gen && !self.w.ports[p].closed);
        let stream = if cap.is_none() {
            stream.or(Some(0))
        } else {
            stream
        };
        let drain = self.w.nodes[n].m2m.drain.clone();
        let label = self.w.ports[op].label(&self.w);
        if let Err(e) = drain.job_done(oslot, dst.map(|d| d.1), stream) {
            self.errors
                .push(vb2_fail(&format!("{label}: the job's end"), &e));
        }
        if let Err(e) = self.w.ports[op].dqbuf_slot(oslot, ogen) {
            self.errors
                .push(vb2_fail(&format!("{label}: DQBUF of buffer {oslot}"), &e));
        }
        let Some((cp, cslot, cgen)) = dst else {
            return;
        };
        match self.w.ports[cp].dqbuf_slot(cslot, cgen) {
            Ok(Some(b)) => self.note_payload(cp, cslot, b.bytesused),
            Ok(None) => {}
            Err(e) => {
                let label = self.w.ports[cp].label(&self.w);
                let what = format!("{label}: DQBUF of buffer {cslot}");
                self.errors.push(vb2_fail(&what, &e));
            }
        }
    }
}
