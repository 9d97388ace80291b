//! A stateful encoder's drain: `VIDIOC_ENCODER_CMD` with `V4L2_ENC_CMD_STOP` and
//! `V4L2_ENC_CMD_START`, the `V4L2_BUF_FLAG_LAST` buffer, and what a job's end does to its two
//! buffers.
//!
//! C side: `drivers/media/v4l2-core/v4l2-mem2mem.c` (`v4l2_m2m_ioctl_try_encoder_cmd`,
//! `v4l2_m2m_encoder_cmd`, `v4l2_update_last_buf_state`, `v4l2_m2m_last_buffer_done`,
//! `v4l2_m2m_mark_stopped`, `v4l2_m2m_update_start_streaming_state`,
//! `v4l2_m2m_update_stop_streaming_state`, `v4l2_m2m_dst_buf_is_last`,
//! `v4l2_m2m_try_schedule`'s "device has stopped"), `drivers/media/test-drivers/vicodec/
//! vicodec-core.c` (`vicodec_encoder_cmd`, `device_run`, `vicodec_buf_queue`,
//! `vicodec_stop_streaming`), the H1 encoders' IRQ handlers (`hantro`: a frame that does not
//! fit the CAPTURE buffer completes both buffers `VB2_BUF_STATE_ERROR`); UAPI header
//! `include/uapi/linux/videodev2.h`; the procedure is `Documentation/userspace-api/media/v4l/
//! dev-encoder.rst` ("Drain").
//!
//! # The concept
//! An encoder is a V4L2 mem2mem device: raw frames go in through its OUTPUT queue, the coded
//! stream comes out through its CAPTURE queue, one OUTPUT and one CAPTURE buffer per job. At
//! the end of a stream the application cannot tell which CAPTURE buffer is the last one, so
//! it asks the encoder to *drain*: `V4L2_ENC_CMD_STOP`. The encoder finishes every OUTPUT buffer
//! queued before the command, flags the CAPTURE buffer of the last one `V4L2_BUF_FLAG_LAST`
//! (an empty one, `bytesused` 0, if nothing was queued), and stops: after DQBUF of that buffer,
//! DQBUF on the CAPTURE queue answers `EPIPE` (vb2's `last_buffer_dequeued`) until
//! `V4L2_ENC_CMD_START` or STREAMOFF/STREAMON of the CAPTURE queue.
//!
//! The command lives here, in the driver layer, where V4L2 has it (the mem2mem framework and
//! the codec driver); vb2 keeps only `last_buffer_dequeued` and its `EPIPE`
//! ([`vb2::Vb2Queue::clear_last_buffer_dequeued`]).
//!
//! # Rules (the state is `v4l2_m2m_ctx`'s `is_draining`, `has_stopped`, `last_src_buf`,
//! `next_buf_last`)
//! 1. `try`: a command other than `STOP` or `START` is `EINVAL`; `flags` are cleared (this
//!    encoder has no GOP to finish, `V4L2_ENC_CMD_STOP_AT_GOP_END` is ignored). While the
//!    OUTPUT queue is not streaming the command does nothing and succeeds (vicodec).
//! 2. `STOP` while draining is `EBUSY`; once stopped, a no-op. Otherwise the last OUTPUT buffer
//!    the driver holds (queued or in the running job) is the last one; draining starts. With
//!    none, the first CAPTURE buffer the driver holds is completed empty with `LAST` and the
//!    encoder stops; with none of those either, the next CAPTURE buffer queued is (its
//!    `buf_queue`).
//! 3. A job's end (`device_run`): the stream fits the CAPTURE buffer's plane: its payload is
//!    the stream's length, both buffers `DONE`; it does not (or a DMA failed): both `ERROR`,
//!    payload 0 (no errno: DQBUF returns them with `V4L2_BUF_FLAG_ERROR`). If its OUTPUT
//!    buffer is the last one of a drain, the CAPTURE buffer gets `LAST` and the encoder stops.
//! 4. A stopped encoder runs no job (`v4l2_m2m_try_schedule`).
//! 5. `START` while draining is `EBUSY`; on a stopped encoder it resumes: jobs run again and
//!    the CAPTURE queue's `last_buffer_dequeued` is cleared (`vb2_clear_last_buffer_dequeued`,
//!    what `vicodec_encoder_cmd` means to do; note that 6.12's vicodec checks `has_stopped`
//!    after `v4l2_m2m_encoder_cmd` cleared it, so there DQBUF stays `EPIPE` until a CAPTURE
//!    STREAMOFF/STREAMON, which the conformance suite shows).
//! 6. STREAMOFF of the OUTPUT queue while draining ends the drain at once (the next CAPTURE
//!    buffer is `LAST`); STREAMOFF of the CAPTURE queue clears the whole state; STREAMON of the
//!    OUTPUT queue forgets the last OUTPUT buffer.
//!
//! Locking: one mutex over the state, taken before the ready lists' and vb2's state lock,
//! never while vb2 holds its state lock (the ops below run without it). Callers serialise the
//! command with the queues' ioctls, as the m2m context's `q_lock` does.

use crate::media::{MediaError, ReadyList};
use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use uapi::Errno;
use vb2::{DriverBuffer, Vb2Error, Vb2Ops, Vb2Queue, Vb2State};

/// `V4L2_ENC_CMD_START`: resume a stopped encoder.
pub const V4L2_ENC_CMD_START: u32 = 0;
/// `V4L2_ENC_CMD_STOP`: drain and stop.
pub const V4L2_ENC_CMD_STOP: u32 = 1;
/// `V4L2_ENC_CMD_PAUSE` (not supported by mem2mem encoders: `EINVAL`).
pub const V4L2_ENC_CMD_PAUSE: u32 = 2;
/// `V4L2_ENC_CMD_RESUME` (not supported by mem2mem encoders: `EINVAL`).
pub const V4L2_ENC_CMD_RESUME: u32 = 3;
/// `V4L2_ENC_CMD_STOP_AT_GOP_END`: a `STOP` flag.
pub const V4L2_ENC_CMD_STOP_AT_GOP_END: u32 = 1 << 0;

/// `struct v4l2_encoder_cmd` (its `raw.data[8]` is unused by every command here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V4l2EncoderCmd {
    /// `V4L2_ENC_CMD_*`.
    pub cmd: u32,
    /// `V4L2_ENC_CMD_STOP_AT_GOP_END` or 0.
    pub flags: u32,
}

impl V4l2EncoderCmd {
    /// `V4L2_ENC_CMD_STOP`.
    pub fn stop() -> V4l2EncoderCmd {
        V4l2EncoderCmd {
            cmd: V4L2_ENC_CMD_STOP,
            flags: 0,
        }
    }

    /// `V4L2_ENC_CMD_START`.
    pub fn start() -> V4l2EncoderCmd {
        V4l2EncoderCmd {
            cmd: V4L2_ENC_CMD_START,
            flags: 0,
        }
    }
}

/// `VIDIOC_TRY_ENCODER_CMD` (`v4l2_m2m_ioctl_try_encoder_cmd`, rule 1).
pub fn try_encoder_cmd(ec: &mut V4l2EncoderCmd) -> Result<(), MediaError> {
    if ec.cmd != V4L2_ENC_CMD_STOP && ec.cmd != V4L2_ENC_CMD_START {
        return Err(MediaError::Invalid(format!(
            "encoder command {} is not STOP or START",
            ec.cmd
        )));
    }
    ec.flags = 0;
    Ok(())
}

/// The drain state (module rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainState {
    /// `STOP` came; the last OUTPUT buffer has not been encoded yet.
    pub is_draining: bool,
    /// The `LAST` buffer was completed: no job runs until `START`.
    pub has_stopped: bool,
    /// The OUTPUT buffer whose job ends the drain.
    pub last_src: Option<u32>,
    /// No CAPTURE buffer was there for `LAST`: the next one queued gets it.
    pub next_buf_last: bool,
}

/// Counters of the drains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// `STOP` commands that started a drain.
    pub stops: u64,
    /// Jobs that ended while draining (frames the drain encoded).
    pub drained: u64,
    /// `LAST` buffers completed (drains that ended).
    pub lasts: u64,
    /// `START` commands that resumed a stopped encoder.
    pub starts: u64,
}

/// One queue's two halves: vb2's queue (weakly: the queue owns its ops, which own this) and
/// the driver's ready list.
#[derive(Default)]
struct Side {
    q: Option<Weak<Vb2Queue>>,
    ready: Option<Arc<ReadyList>>,
}

impl Side {
    fn get(&self) -> Option<(Arc<Vb2Queue>, Arc<ReadyList>)> {
        Some((self.q.as_ref()?.upgrade()?, self.ready.clone()?))
    }
}

#[derive(Default)]
struct Inner {
    st: DrainState,
    stats: DrainStats,
    /// The OUTPUT buffer of the job that is running, if one is.
    running: Option<u32>,
    output: Side,
    capture: Side,
}

/// An encoder's drain state and its command (module doc); shared by its two queues' ops
/// ([`OutputOps`], [`CaptureOps`]) and the code that runs its jobs.
#[derive(Default)]
pub struct Drain {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Drain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.lock();
        f.debug_struct("Drain")
            .field("state", &i.st)
            .field("stats", &i.stats)
            .finish()
    }
}

/// What a job's end did with its CAPTURE buffer (rule 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobEnd {
    /// `DONE`, or `ERROR` (stream too long for the buffer, or a DMA failure).
    pub state: Vb2State,
    /// The payload set (`vb2_set_plane_payload`): the stream's length, 0 on `ERROR`.
    pub bytesused: u32,
    /// The buffer is flagged `V4L2_BUF_FLAG_LAST`: the drain is over.
    pub last: bool,
}

impl Drain {
    /// A drain state for one encoder, its queues not known yet.
    pub fn new() -> Arc<Drain> {
        Arc::new(Drain::default())
    }

    /// The encoder's OUTPUT queue and its driver's ready list.
    pub fn set_output(&self, q: &Arc<Vb2Queue>, ready: Arc<ReadyList>) {
        let mut i = self.inner.lock();
        i.output = Side {
            q: Some(Arc::downgrade(q)),
            ready: Some(ready),
        };
    }

    /// The encoder's CAPTURE queue and its driver's ready list (an encoder writing into a
    /// buffer of its own has none: its drain ends with its last job, with no `LAST` buffer).
    pub fn set_capture(&self, q: &Arc<Vb2Queue>, ready: Arc<ReadyList>) {
        let mut i = self.inner.lock();
        i.capture = Side {
            q: Some(Arc::downgrade(q)),
            ready: Some(ready),
        };
    }

    /// The state now.
    pub fn state(&self) -> DrainState {
        self.inner.lock().st
    }

    /// The counters.
    pub fn stats(&self) -> DrainStats {
        self.inner.lock().stats
    }

    /// Whether a job may run (rule 4).
    pub fn job_ready(&self) -> bool {
        !self.inner.lock().st.has_stopped
    }

    /// `VIDIOC_ENCODER_CMD` (rules 1, 2, 5): `EINVAL` for another command, `EBUSY` while a
    /// drain is under way.
    pub fn encoder_cmd(&self, ec: &mut V4l2EncoderCmd) -> Result<(), MediaError> {
        try_encoder_cmd(ec)?;
        let mut i = self.inner.lock();
        let out = i.output.get();
        if !out.as_ref().is_some_and(|(q, _)| q.is_streaming()) {
            return Ok(());
        }
        if ec.cmd == V4L2_ENC_CMD_STOP {
            if i.st.is_draining {
                return Err(MediaError::Busy("the encoder is draining already".into()));
            }
            if i.st.has_stopped {
                return Ok(());
            }
            let queued = out.and_then(|(_, r)| r.indices().last().copied());
            i.st.last_src = queued.or(i.running);
            i.st.is_draining = true;
            i.stats.stops += 1;
            if i.st.last_src.is_none() {
                Self::last_to_next_dst(&mut i)?;
            }
            return Ok(());
        }
        if i.st.is_draining {
            return Err(MediaError::Busy("the encoder is draining".into()));
        }
        if i.st.has_stopped {
            i.st.has_stopped = false;
            i.stats.starts += 1;
            if let Some((q, _)) = i.capture.get() {
                q.clear_last_buffer_dequeued();
            }
        }
        Ok(())
    }

    /// No OUTPUT buffer is left to drain: the first CAPTURE buffer the driver holds is the
    /// empty `LAST` one, or the next one queued (rule 2); without a CAPTURE queue the encoder
    /// just stops.
    fn last_to_next_dst(i: &mut Inner) -> Result<(), Vb2Error> {
        i.st.last_src = None;
        let Some((q, ready)) = i.capture.get() else {
            Self::mark_stopped(i);
            return Ok(());
        };
        match ready.next().and_then(|d| ready.take(d)) {
            Some(vb) => {
                Self::mark_stopped(i);
                last_buffer_done(&q, &ready, vb.index)
            }
            None => {
                i.st.next_buf_last = true;
                Ok(())
            }
        }
    }

    /// `v4l2_m2m_mark_stopped`.
    fn mark_stopped(i: &mut Inner) {
        i.st.is_draining = false;
        i.st.has_stopped = true;
        i.st.next_buf_last = false;
        i.stats.lasts += 1;
    }

    /// A job takes OUTPUT buffer `src` (`device_run` begins): `false` if the encoder has
    /// stopped and must not run one (rule 4).
    pub fn job_started(&self, src: u32) -> bool {
        let mut i = self.inner.lock();
        if i.st.has_stopped {
            return false;
        }
        i.running = Some(src);
        true
    }

    /// The job on OUTPUT buffer `src` (and CAPTURE buffer `dst`, if the encoder has a CAPTURE
    /// queue) ended, having written a stream of `stream` bytes (`None`: it failed). Rule 3:
    /// sets the payload or `ERROR`, `LAST` at the end of a drain, and completes both buffers
    /// through their ready lists (`v4l2_m2m_buf_done`); a buffer vb2 took back since (a
    /// STREAMOFF) is not completed. Returns what became of `dst`.
    pub fn job_done(
        &self,
        src: u32,
        dst: Option<u32>,
        stream: Option<u64>,
    ) -> Result<JobEnd, Vb2Error> {
        let mut i = self.inner.lock();
        if i.running == Some(src) {
            i.running = None;
        }
        let cap = i.capture.get();
        let length = match (&cap, dst) {
            (Some((q, _)), Some(d)) => q.plane_size(d, 0),
            _ => None,
        };
        let bytes = match (stream, length) {
            (Some(len), Some(max)) if len <= u64::from(max) => Some(len as u32),
            (Some(len), None) => Some(u32::try_from(len).unwrap_or(u32::MAX)),
            _ => None,
        };
        let state = if bytes.is_some() {
            Vb2State::Done
        } else {
            Vb2State::Error
        };
        let mut last = false;
        if i.st.is_draining {
            i.stats.drained += 1;
            if i.st.last_src == Some(src) {
                last = true;
                i.st.last_src = None;
                Self::mark_stopped(&mut i);
            }
        }
        if let (Some((q, _)), Some(d)) = (&cap, dst) {
            // While the buffer is still the driver's: after buffer_done it is not.
            if q.buffer_state(d) == Some(Vb2State::Active) {
                q.set_plane_payload(d, 0, bytes.unwrap_or(0))?;
                if last {
                    q.mark_last(d)?;
                }
            }
        }
        if let Some((q, ready)) = i.output.get() {
            ready.finish(&q, src, state)?;
        }
        if let (Some((q, ready)), Some(d)) = (cap, dst) {
            ready.finish(&q, d, state)?;
        }
        Ok(JobEnd {
            state,
            bytesused: bytes.unwrap_or(0),
            last,
        })
    }

    /// A CAPTURE buffer is being queued to the driver (`buf_queue`): `true` if it is the
    /// `LAST` one a drain was waiting for (`v4l2_m2m_dst_buf_is_last`, rule 2).
    fn take_next_buf_last(&self) -> bool {
        let mut i = self.inner.lock();
        if i.st.is_draining && i.st.next_buf_last {
            Self::mark_stopped(&mut i);
            return true;
        }
        false
    }

    /// `v4l2_m2m_update_start_streaming_state` for the OUTPUT queue (rule 6).
    fn output_started(&self) {
        self.inner.lock().st.last_src = None;
    }

    /// `v4l2_m2m_update_stop_streaming_state` (rule 6).
    fn stopped_streaming(&self, output: bool) {
        let mut i = self.inner.lock();
        if output {
            if i.st.is_draining {
                let _ = Self::last_to_next_dst(&mut i);
            }
        } else {
            // v4l2_m2m_clear_state.
            i.st = DrainState::default();
        }
    }
}

/// `v4l2_m2m_last_buffer_done`: CAPTURE buffer `index`, which the driver holds, completed
/// empty, `LAST` and `DONE`.
fn last_buffer_done(q: &Vb2Queue, ready: &ReadyList, index: u32) -> Result<(), Vb2Error> {
    q.set_plane_payload(index, 0, 0)?;
    q.mark_last(index)?;
    if !ready.finish(q, index, Vb2State::Done)? {
        return Err(Vb2Error::new(
            Errno::EINVAL,
            format!("CAPTURE buffer {index} is not the driver's"),
        ));
    }
    Ok(())
}

/// The vb2 ops of an encoder's OUTPUT queue: its ready list, and the drain's updates at
/// STREAMON and STREAMOFF (rule 6).
pub struct OutputOps {
    /// The driver's ready list.
    pub ready: Arc<ReadyList>,
    /// The encoder's drain.
    pub drain: Arc<Drain>,
}

impl Vb2Ops for OutputOps {
    fn queue_setup(&self, n: &mut u32, req: Option<&[u32]>) -> Result<Vec<u32>, Errno> {
        self.ready.queue_setup(n, req)
    }

    fn buf_queue(&self, q: &Vb2Queue, vb: DriverBuffer) {
        self.ready.buf_queue(q, vb);
    }

    fn start_streaming(&self, _q: &Vb2Queue, _count: u32) -> Result<(), Errno> {
        self.drain.output_started();
        Ok(())
    }

    fn stop_streaming(&self, q: &Vb2Queue) {
        self.ready.stop_streaming(q);
        self.drain.stopped_streaming(true);
    }
}

/// The vb2 ops of an encoder's CAPTURE queue: its ready list; a buffer queued while a drain
/// waits for one is completed empty with `LAST` (`vicodec_buf_queue`); STREAMOFF clears the
/// drain state (rule 6).
pub struct CaptureOps {
    /// The driver's ready list.
    pub ready: Arc<ReadyList>,
    /// The encoder's drain.
    pub drain: Arc<Drain>,
}

impl Vb2Ops for CaptureOps {
    fn queue_setup(&self, n: &mut u32, req: Option<&[u32]>) -> Result<Vec<u32>, Errno> {
        self.ready.queue_setup(n, req)
    }

    fn buf_queue(&self, q: &Vb2Queue, vb: DriverBuffer) {
        if q.is_streaming() && self.drain.take_next_buf_last() {
            let index = vb.index;
            // The driver's for a moment (as v4l2_m2m_last_buffer_done has it): on the list,
            // taken and completed at once.
            self.ready.buf_queue(q, vb);
            if self.ready.take(index).is_some() {
                let _ = last_buffer_done(q, &self.ready, index);
            }
            return;
        }
        self.ready.buf_queue(q, vb);
    }

    fn stop_streaming(&self, q: &Vb2Queue) {
        self.ready.stop_streaming(q);
        self.drain.stopped_streaming(false);
    }
}
