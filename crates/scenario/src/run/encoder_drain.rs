//! An encoder's drain, played by the runner as the encoder's application would
//! (`Documentation/userspace-api/media/v4l/dev-encoder.rst`, "Drain"); what the driver does is
//! [`drivers::encoder::drain`]'s, through the encoder node's queues' ops ([`World::new_queue`]).
//!
//! # The concept
//! 1. **When.** A `stream_off` event on an encoder's OUTPUT queue, and the end of the run,
//!    stop the encoder with `V4L2_ENC_CMD_STOP` first: the frames already queued on its OUTPUT
//!    queue are encoded (its producers hand it no new one: the node stops reading its input
//!    link), not thrown away as STREAMOFF would. The report counts them
//!    (`encoders[].drained`) and the drains that ended (`encoders[].drains`).
//! 2. **The end.** Once the driver completed the `V4L2_BUF_FLAG_LAST` CAPTURE buffer (the last
//!    frame's bitstream, or an empty one) the application dequeues it (an empty one is queued
//!    again: it holds no frame), and a further DQBUF must answer `EPIPE`: anything else is a
//!    run error. An encoder writing into a buffer of its own has no CAPTURE queue: its drain
//!    ends with its last job.
//! 3. **Then.** What the event asked: STREAMOFF of the OUTPUT queue (and of the CAPTURE queue,
//!    if the event named both); `V4L2_ENC_CMD_START` when a `stream_on` came while it drained
//!    (or comes later, after STREAMON of the OUTPUT queue); nothing at the run's end.
//! 4. A CAPTURE STREAMOFF while draining ends the drain without a `LAST` buffer (the driver
//!    clears its state, `v4l2_m2m_clear_state`); the application goes on to step 3.
//!
//! Called from the scheduler's loop only (single-threaded).

use super::m2m::AfterDrain;
use super::sched::Sched;
use super::vb2io::vb2_fail;
use super::world::RunFailure;
use crate::clock::VirtualTime;
use crate::schema::DriverKind;
use drivers::encoder::V4l2EncoderCmd;
use uapi::Errno;
use vb2::ioctl::{V4l2Buffer, V4L2_BUF_FLAG_LAST};

impl Sched<'_> {
    /// `VIDIOC_ENCODER_CMD(cmd)` on encoder node `n`; a failure is a run error.
    fn encoder_cmd(&mut self, n: usize, mut ec: V4l2EncoderCmd) -> bool {
        let drain = self.w.nodes[n].m2m.drain.clone();
        match drain.encoder_cmd(&mut ec) {
            Ok(()) => true,
            Err(e) => {
                let name = &self.w.nodes[n].desc.name;
                self.errors.push(RunFailure::new(
                    &e,
                    format!("{name}: VIDIOC_ENCODER_CMD({}): {e}", ec.cmd),
                ));
                false
            }
        }
    }

    /// Encoder node `n`'s OUTPUT queue is to stop (a `stream_off` event; `capture_too`: its
    /// CAPTURE queue as well): `V4L2_ENC_CMD_STOP` first (module rule 1). `false` if there is
    /// nothing to drain (no streaming OUTPUT queue, or the command failed): the caller stops
    /// the queues at once.
    pub(crate) fn drain_on_stream_off(
        &mut self,
        n: usize,
        capture_too: bool,
        now: VirtualTime,
    ) -> bool {
        let streaming = self
            .w
            .ports
            .iter()
            .any(|p| p.node == n && !p.capture && p.streaming && !p.closed);
        if self.w.nodes[n].desc.driver != DriverKind::Encoder || !streaming {
            return false;
        }
        if self.w.nodes[n].m2m.after_drain.is_some() {
            // Draining already (an earlier stream_off): the STREAMOFF comes when it is over.
            self.w.nodes[n].m2m.after_drain = Some(AfterDrain::StreamOff(capture_too));
            return true;
        }
        if !self.encoder_cmd(n, V4l2EncoderCmd::stop()) {
            return false;
        }
        self.w.nodes[n].stream_in = false;
        self.w.nodes[n].m2m.after_drain = Some(AfterDrain::StreamOff(capture_too));
        let track = self.w.nodes[n].track;
        let label = format!("ENC_CMD_STOP {}", self.w.nodes[n].desc.name);
        self.w.trace.instant(track, &label, now);
        self.poll_drains(now);
        true
    }

    /// Encoder node `n`'s OUTPUT queue streams again (a `stream_on` event, after its
    /// STREAMON): a stopped encoder resumes with `V4L2_ENC_CMD_START`; one still draining
    /// resumes when the drain is over (module rule 3).
    pub(crate) fn restart_after_drain(&mut self, n: usize, now: VirtualTime) {
        if self.w.nodes[n].desc.driver != DriverKind::Encoder {
            return;
        }
        if self.w.nodes[n].m2m.after_drain.is_some() {
            self.w.nodes[n].m2m.after_drain = Some(AfterDrain::Restart);
            return;
        }
        if self.w.nodes[n].m2m.drain.state().has_stopped {
            self.encoder_cmd(n, V4l2EncoderCmd::start());
            let track = self.w.nodes[n].track;
            let label = format!("ENC_CMD_START {}", self.w.nodes[n].desc.name);
            self.w.trace.instant(track, &label, now);
        }
    }

    /// The run's end: every encoder whose OUTPUT queue streams is drained (module rule 1).
    pub(crate) fn drain_encoders_at_end(&mut self, now: VirtualTime) {
        for n in 0..self.w.nodes.len() {
            let node = &self.w.nodes[n];
            if node.desc.driver != DriverKind::Encoder
                || node.m2m.after_drain.is_some()
                || !node.active
                || node.dead
            {
                continue;
            }
            let streaming = self
                .w
                .ports
                .iter()
                .any(|p| p.node == n && !p.capture && p.streaming && !p.closed);
            if streaming && self.encoder_cmd(n, V4l2EncoderCmd::stop()) {
                self.w.nodes[n].m2m.after_drain = Some(AfterDrain::Stop);
            }
        }
        self.poll_drains(now);
    }

    /// Ends every drain that is over (module rules 2-4); called after each event of the loop.
    pub(crate) fn poll_drains(&mut self, now: VirtualTime) {
        for n in 0..self.w.nodes.len() {
            let Some(after) = self.w.nodes[n].m2m.after_drain else {
                continue;
            };
            let st = self.w.nodes[n].m2m.drain.state();
            let cancelled = !st.is_draining && !st.has_stopped;
            if !st.has_stopped && !cancelled {
                continue;
            }
            if !cancelled && !self.take_last_buffer(n) {
                continue;
            }
            self.w.nodes[n].m2m.after_drain = None;
            if !cancelled {
                self.w.nodes[n].m2m.drains += 1;
            }
            let name = self.w.nodes[n].desc.name.clone();
            let track = self.w.nodes[n].track;
            self.w.trace.instant(track, &format!("drained {name}"), now);
            match after {
                AfterDrain::Stop => {}
                AfterDrain::Restart => {
                    self.w.nodes[n].stream_in = true;
                    self.encoder_cmd(n, V4l2EncoderCmd::start());
                }
                AfterDrain::StreamOff(capture_too) => {
                    let errs = self.w.ports_stream(n, false, false);
                    self.errors.extend(errs);
                    self.discard_ready(n, super::outcome::STREAM_OFF);
                    if capture_too {
                        self.w.nodes[n].stream_out = false;
                        let errs = self.w.ports_stream(n, false, true);
                        self.errors.extend(errs);
                    }
                }
            }
        }
    }

    /// The application's side of the `LAST` buffer of encoder node `n` (module rule 2):
    /// `true` once it was dequeued and DQBUF answered `EPIPE`; `false` while it is not done
    /// yet (the driver waits for a CAPTURE buffer).
    fn take_last_buffer(&mut self, n: usize) -> bool {
        let Some(p) = self
            .w
            .ports
            .iter()
            .position(|p| p.node == n && p.capture && !p.closed && p.streaming)
        else {
            // No CAPTURE queue: the drain ended with the last job.
            return true;
        };
        let (type_, memory) = (self.w.ports[p].type_raw(), self.w.ports[p].memory.raw());
        let label = self.w.ports[p].label(&self.w);
        if !self.w.ports[p].q.last_buffer_dequeued() {
            // The empty LAST buffer the driver completed on its own (a job's LAST buffer was
            // dequeued at the job's end).
            let mut b = V4l2Buffer::new(type_, memory, 0);
            match self.w.ports[p].fh.dqbuf(&mut b) {
                Ok(()) => {
                    self.w.ports[p].queued.remove(&b.index);
                    if b.flags & V4L2_BUF_FLAG_LAST == 0 {
                        self.errors.push(RunFailure {
                            errno: "EINVAL".into(),
                            message: format!(
                                "{label}: the drain's DQBUF gave buffer {} without V4L2_BUF_FLAG_LAST",
                                b.index
                            ),
                        });
                    }
                    // It holds no frame: back into the queue for the next stream.
                    let li = self.w.ports[p].link;
                    if let Some(bi) = self.w.ports[p].buffer_at(b.index) {
                        if let Err(e) = self.w.vb2_qbuf(n, li, bi) {
                            self.errors.push(e);
                        }
                    }
                }
                Err(e) if e.errno() == Errno::EAGAIN => return false,
                Err(e) => {
                    self.errors
                        .push(vb2_fail(&format!("{label}: DQBUF of the LAST buffer"), &e));
                    return true;
                }
            }
        }
        // The drain is over for the application when DQBUF says EPIPE.
        let mut b = V4l2Buffer::new(type_, memory, 0);
        match self.w.ports[p].fh.dqbuf(&mut b) {
            Err(e) if e.errno() == Errno::EPIPE => {}
            other => self.errors.push(RunFailure {
                errno: "EINVAL".into(),
                message: format!(
                    "{label}: DQBUF after the LAST buffer answered {:?}, not EPIPE",
                    other.map(|()| b.index)
                ),
            }),
        }
        true
    }
}
