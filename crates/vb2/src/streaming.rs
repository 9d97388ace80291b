//! STREAMON, STREAMOFF and the driver side: `buf_queue`, `vb2_buffer_done`, start and stop.
//!
//! C side: `videobuf2-core.c` (`vb2_core_streamon`, `vb2_core_streamoff`, `vb2_start_streaming`,
//! `__enqueue_in_driver`, `vb2_buffer_done`, `__vb2_queue_cancel`, `vb2_queue_error`).
//!
//! See the crate doc for the state machine (rules 3-8) and the locking rules: the driver
//! callbacks `buf_queue`, `start_streaming` and `stop_streaming` run without the state lock, so a
//! driver may call [`Vb2Queue::buffer_done`] from inside them.

use crate::buffer::{DriverBuffer, Memory, PlaneMem, Vb2State};
use crate::cache;
use crate::counters::Counters;
use crate::ioctl::V4L2_BUF_FLAG_LAST;
use crate::policy::MapPolicy;
use crate::queue::{einval, QueueState, Vb2Fh, Vb2Queue};
use crate::Vb2Error;
use uapi::Errno;

impl Vb2Queue {
    /// QUEUED -> ACTIVE for every queued buffer not yet given to the driver; returns their views
    /// for `buf_queue` (call it without the state lock).
    pub(crate) fn take_for_driver(&self, st: &mut QueueState) -> Vec<DriverBuffer> {
        let mut out = Vec::new();
        let ids: Vec<u32> = st.queued_list.iter().copied().collect();
        for i in ids {
            if let Some(vb) = st.bufs.get_mut(&i) {
                if vb.state == Vb2State::Queued {
                    vb.state = Vb2State::Active;
                    out.push(vb.driver_view(&self.cfg.device));
                }
            }
        }
        st.owned_by_drv_count += out.len() as u32;
        out
    }

    /// `__enqueue_in_driver` for each buffer (state lock not held).
    pub(crate) fn enqueue_in_driver(&self, bufs: Vec<DriverBuffer>) {
        for vb in bufs {
            Counters::inc(&self.counters.buf_queue);
            self.ops.buf_queue(self, vb);
        }
    }

    /// `vb2_start_streaming` (crate doc rule 4); the ioctl lock is held, the state lock not.
    pub(crate) fn start_streaming(&self) -> Result<(), Vb2Error> {
        let (bufs, count) = {
            let mut st = self.state.lock();
            let b = self.take_for_driver(&mut st);
            st.start_streaming_called = true;
            (b, st.queued_count)
        };
        self.enqueue_in_driver(bufs);
        match self.ops.start_streaming(self, count) {
            Ok(()) => {
                Counters::inc(&self.counters.start_streaming);
                Ok(())
            }
            Err(e) => {
                let mut st = self.state.lock();
                st.start_streaming_called = false;
                // Buffers the driver did not give back: reclaim them (WARN in the kernel).
                let stuck: Vec<u32> = st
                    .bufs
                    .values()
                    .filter(|b| b.state == Vb2State::Active)
                    .map(|b| b.index)
                    .collect();
                for i in stuck {
                    Counters::inc(&self.counters.warnings);
                    Counters::inc(&self.counters.buf_done);
                    if let Some(vb) = st.bufs.get_mut(&i) {
                        vb.state = Vb2State::Queued;
                    }
                    st.owned_by_drv_count -= 1;
                }
                Err(Vb2Error::new(e, "start_streaming failed"))
            }
        }
    }

    /// `__vb2_queue_cancel` (crate doc rule 7); the ioctl lock is held, the state lock not.
    pub(crate) fn cancel(&self) {
        let started = self.state.lock().start_streaming_called;
        if started {
            self.ops.stop_streaming(self);
            Counters::inc(&self.counters.stop_streaming);
        }
        let mut st = self.state.lock();
        let stuck: Vec<u32> = st
            .bufs
            .values()
            .filter(|b| b.state == Vb2State::Active)
            .map(|b| b.index)
            .collect();
        for i in stuck {
            // The driver kept it after stop_streaming: forced to ERROR, with a WARN.
            Counters::inc(&self.counters.warnings);
            Counters::inc(&self.counters.buf_done);
            if let Some(vb) = st.bufs.get_mut(&i) {
                cache::mem_finish(vb, &self.counters);
                vb.state = Vb2State::Error;
            }
        }
        st.streaming = false;
        st.start_streaming_called = false;
        st.queued_count = 0;
        st.owned_by_drv_count = 0;
        st.error = false;
        st.last_buffer_dequeued = false;
        st.waiting_for_buffers = false;
        st.queued_list.clear();
        st.done_list.clear();
        st.generation += 1;
        let unmap =
            self.cfg.map_policy == MapPolicy::UnmapOnDequeue && st.memory == Some(Memory::Dmabuf);
        for vb in st.bufs.values_mut() {
            cache::mem_finish(vb, &self.counters);
            if vb.prepared {
                self.ops.buf_finish(&vb.driver_view(&self.cfg.device));
                Counters::inc(&self.counters.buf_finish);
                vb.prepared = false;
            }
            vb.state = Vb2State::Dequeued;
            vb.flags &= !V4L2_BUF_FLAG_LAST;
            if unmap {
                for p in &mut vb.planes {
                    if let PlaneMem::Dmabuf(d) = &mut p.mem {
                        d.unmap(&self.counters);
                    }
                }
            }
        }
        drop(st);
        self.done_wq.notify_all();
    }

    /// `vb2_buffer_done`: the driver completes buffer `index` (crate doc rule 5).
    ///
    /// `state` is `Done`, `Error`, or `Queued` (meant for a failing `start_streaming`: the
    /// buffer goes back to QUEUED without the cache "finish"); anything else counts as `Error`. Takes only the state lock: callable from `buf_queue`,
    /// `start_streaming`, `stop_streaming` or any driver thread.
    ///
    /// Errors: `EINVAL` (and a warning counted, nothing changed) if the buffer is not ACTIVE.
    pub fn buffer_done(&self, index: u32, state: Vb2State) -> Result<(), Vb2Error> {
        let mut st = self.state.lock();
        let seq = st.sequence;
        let Some(vb) = st
            .bufs
            .get_mut(&index)
            .filter(|b| b.state == Vb2State::Active)
        else {
            Counters::inc(&self.counters.warnings);
            return Err(einval(format!("buffer_done on buffer {index}, not ACTIVE")));
        };
        Counters::inc(&self.counters.buf_done);
        let state = match state {
            Vb2State::Done | Vb2State::Error => state,
            Vb2State::Queued => Vb2State::Queued,
            _ => Vb2State::Error,
        };
        if state == Vb2State::Queued {
            // A failed start hands buffers back without the cache "finish".
            vb.state = Vb2State::Queued;
        } else {
            cache::mem_finish(vb, &self.counters);
            vb.state = state;
            vb.sequence = seq;
            st.sequence = seq.wrapping_add(1);
            st.done_list.push_back(index);
        }
        st.owned_by_drv_count -= 1;
        drop(st);
        self.done_wq.notify_all();
        Ok(())
    }

    /// `vb2_set_plane_payload`: the driver sets `bytesused` of an ACTIVE buffer's plane.
    pub fn set_plane_payload(&self, index: u32, plane: usize, bytes: u32) -> Result<(), Vb2Error> {
        let mut st = self.state.lock();
        let p = st
            .bufs
            .get_mut(&index)
            .filter(|b| b.state == Vb2State::Active)
            .and_then(|b| b.planes.get_mut(plane))
            .ok_or_else(|| einval(format!("no active plane {plane} of buffer {index}")))?;
        if bytes > p.length {
            return Err(einval(format!("payload {bytes} > length {}", p.length)));
        }
        p.bytesused = bytes;
        Ok(())
    }

    /// Marks an ACTIVE buffer as the last of the stream (`V4L2_BUF_FLAG_LAST`).
    pub fn mark_last(&self, index: u32) -> Result<(), Vb2Error> {
        let mut st = self.state.lock();
        let vb = st
            .bufs
            .get_mut(&index)
            .filter(|b| b.state == Vb2State::Active)
            .ok_or_else(|| einval(format!("buffer {index} is not ACTIVE")))?;
        vb.flags |= V4L2_BUF_FLAG_LAST;
        Ok(())
    }

    /// `vb2_clear_last_buffer_dequeued`: DQBUF stops answering `EPIPE` after the `LAST`
    /// buffer; a codec driver calls it when `V4L2_ENC_CMD_START` (or `V4L2_DEC_CMD_START`)
    /// resumes a stopped stream (STREAMOFF clears it too, crate doc rule 7).
    pub fn clear_last_buffer_dequeued(&self) {
        self.state.lock().last_buffer_dequeued = false;
    }

    /// Whether the `LAST` buffer was dequeued (DQBUF answers `EPIPE` until STREAMOFF or
    /// [`Vb2Queue::clear_last_buffer_dequeued`]).
    pub fn last_buffer_dequeued(&self) -> bool {
        self.state.lock().last_buffer_dequeued
    }

    /// `vb2_queue_error` (crate doc rule 8).
    pub fn queue_error(&self) {
        self.state.lock().error = true;
        self.done_wq.notify_all();
    }
}

impl Vb2Fh {
    /// VIDIOC_STREAMON.
    pub fn streamon(&self, type_: u32) -> Result<(), Vb2Error> {
        let q = &*self.q;
        q.check_type(type_)?;
        let _io = q.ioctl_lock.lock();
        {
            let mut st = q.state.lock();
            q.check_owner(&st, self.id)?;
            if st.streaming {
                return Ok(());
            }
            if st.bufs.is_empty() {
                return Err(einval("STREAMON with no buffers"));
            }
            if (st.bufs.len() as u32) < q.cfg.min_queued_buffers {
                return Err(einval(format!(
                    "{} buffers allocated, {} needed",
                    st.bufs.len(),
                    q.cfg.min_queued_buffers
                )));
            }
            if st.queued_count < q.cfg.min_queued_buffers {
                st.streaming = true;
                st.waiting_for_buffers = !q.cfg.buf_type.is_output();
                return Ok(());
            }
        }
        q.start_streaming()?;
        let mut st = q.state.lock();
        st.streaming = true;
        st.waiting_for_buffers = !q.cfg.buf_type.is_output() && st.queued_count == 0;
        Ok(())
    }

    /// VIDIOC_STREAMOFF: cancel (crate doc rule 7); 0 even when not streaming.
    pub fn streamoff(&self, type_: u32) -> Result<(), Vb2Error> {
        let q = &*self.q;
        q.check_type(type_)?;
        let _io = q.ioctl_lock.lock();
        q.check_owner(&q.state.lock(), self.id)?;
        q.cancel();
        q.state.lock().waiting_for_buffers = !q.cfg.buf_type.is_output();
        Ok(())
    }
}

/// The errno of a queue in the error state.
pub(crate) fn queue_in_error() -> Vb2Error {
    Vb2Error::new(Errno::EIO, "the queue is in the error state")
}
