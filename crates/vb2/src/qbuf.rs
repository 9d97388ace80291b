//! PREPARE_BUF, QBUF, DQBUF and poll; the buffer preparation itself is in `prepare.rs`.
//!
//! C side: `videobuf2-v4l2.c` (`vb2_queue_or_prepare_buf`,
//! `__verify_planes_array`, `__fill_v4l2_buffer`, `vb2_dqbuf`),
//! `videobuf2-core.c` (`vb2_core_qbuf`, `__vb2_wait_for_done_vb`, `vb2_core_dqbuf`,
//! `vb2_core_poll`).

use crate::buffer::{Memory, PlaneMem, Vb2Buffer, Vb2State};
use crate::cache;
use crate::counters::Counters;
use crate::ioctl::*;
use crate::policy::MapPolicy;
use crate::queue::{ebusy, einval, QueueState, Vb2Fh, Vb2Queue};
use crate::streaming::queue_in_error;
use crate::Vb2Error;
use std::sync::atomic::Ordering;
use std::time::Duration;
use uapi::Errno;

/// `__verify_planes_array`.
pub(crate) fn verify_planes_array(
    q: &Vb2Queue,
    vb: &Vb2Buffer,
    b: &V4l2Buffer,
) -> Result<(), Vb2Error> {
    if !q.cfg.buf_type.is_multiplanar() {
        return Ok(());
    }
    let n = vb.planes.len();
    match &b.planes {
        None => Err(einval("multi-planar buffer without a planes array")),
        Some(p) if (b.length as usize) < n || b.length > VIDEO_MAX_PLANES || p.len() < n => Err(
            einval(format!("planes array of {} for {n} planes", b.length)),
        ),
        Some(_) => Ok(()),
    }
}

/// `__fill_v4l2_buffer`: reports `vb` into `b`.
pub(crate) fn fill_v4l2_buffer(q: &Vb2Queue, st: &QueueState, vb: &Vb2Buffer, b: &mut V4l2Buffer) {
    let memory = st.memory.map_or(0, Memory::raw);
    b.index = vb.index;
    b.type_ = q.cfg.buf_type.raw();
    b.memory = memory;
    b.field = vb.field;
    b.timestamp_ns = vb.timestamp_ns;
    b.sequence = vb.sequence;
    let mut flags = vb.flags | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
    match vb.state {
        Vb2State::Queued | Vb2State::Active => flags |= V4L2_BUF_FLAG_QUEUED,
        Vb2State::InRequest => flags |= V4L2_BUF_FLAG_IN_REQUEST,
        Vb2State::Error => flags |= V4L2_BUF_FLAG_ERROR | V4L2_BUF_FLAG_DONE,
        Vb2State::Done => flags |= V4L2_BUF_FLAG_DONE,
        Vb2State::Dequeued | Vb2State::Preparing => {}
    }
    if vb.prepared {
        flags |= V4L2_BUF_FLAG_PREPARED;
    }
    if vb.planes.iter().any(|p| p.in_use()) {
        flags |= V4L2_BUF_FLAG_MAPPED;
    }
    b.flags = flags;
    let cookie = |i: usize| mmap_cookie(vb.index, i as u32);
    if q.cfg.buf_type.is_multiplanar() {
        b.length = vb.planes.len() as u32;
        if let Some(planes) = b.planes.as_mut() {
            for (i, (up, p)) in planes.iter_mut().zip(&vb.planes).enumerate() {
                up.bytesused = p.bytesused;
                up.length = p.length;
                up.data_offset = p.data_offset;
                match st.memory {
                    Some(Memory::Mmap) => up.m_offset = cookie(i),
                    Some(Memory::Userptr) => up.m_userptr = p.m_userptr,
                    Some(Memory::Dmabuf) => up.m_fd = p.m_fd,
                    None => {}
                }
            }
        }
    } else if let Some(p) = vb.planes.first() {
        b.length = p.length;
        b.bytesused = p.bytesused;
        match st.memory {
            Some(Memory::Mmap) => b.m_offset = cookie(0),
            Some(Memory::Userptr) => b.m_userptr = p.m_userptr,
            Some(Memory::Dmabuf) => b.m_fd = p.m_fd,
            None => {}
        }
    }
}

impl Vb2Queue {
    /// The checks common to QBUF and PREPARE_BUF (`vb2_queue_or_prepare_buf`); returns the
    /// memory type. The ioctl lock is held.
    pub(crate) fn check_qbuf(
        &self,
        st: &QueueState,
        fh: &Vb2Fh,
        b: &V4l2Buffer,
        prepare: bool,
    ) -> Result<(), Vb2Error> {
        self.check_owner(st, fh.id)?;
        self.check_type(b.type_)?;
        let vb = st
            .bufs
            .get(&b.index)
            .ok_or_else(|| einval(format!("no buffer {}", b.index)))?;
        if Some(b.memory) != st.memory.map(Memory::raw) {
            return Err(einval(format!("memory {} is not the queue's", b.memory)));
        }
        verify_planes_array(self, vb, b)?;
        if b.flags & V4L2_BUF_FLAG_REQUEST_FD != 0 {
            if prepare {
                return Err(einval("PREPARE_BUF with a request"));
            }
            return Err(Vb2Error::new(
                ebadr(),
                "the queue does not support requests",
            ));
        }
        if st.error {
            return Err(queue_in_error());
        }
        match vb.state {
            Vb2State::Dequeued if prepare && vb.prepared => Err(einval("buffer already prepared")),
            Vb2State::Dequeued => Ok(()),
            Vb2State::Preparing => Err(einval("buffer still being prepared")),
            s => Err(einval(format!("buffer {} is {s:?}", b.index))),
        }
    }

    /// Fills, hints and prepares a DEQUEUED buffer that is not prepared yet.
    pub(crate) fn fill_and_prepare(
        &self,
        st: &mut QueueState,
        fh: &Vb2Fh,
        b: &mut V4l2Buffer,
    ) -> Result<(), Vb2Error> {
        let memory = st.memory.ok_or_else(|| einval("no buffers"))?;
        let vb = st
            .bufs
            .get_mut(&b.index)
            .ok_or_else(|| einval("no buffer"))?;
        if vb.prepared {
            return Ok(()); // behaviour 25: the values given at PREPARE_BUF stand
        }
        let planes = self.user_planes(memory, vb, b)?;
        let kept = cache::set_hints(vb, self.cfg.allow_cache_hints, memory, b.flags);
        vb.flags = (vb.flags & !cache::CACHE_HINT_FLAGS) | (kept & cache::CACHE_HINT_FLAGS);
        vb.field = b.field;
        if self.cfg.buf_type.is_output() {
            vb.timestamp_ns = b.timestamp_ns;
        }
        self.buf_prepare(st, fh, b.index, &planes)
    }
}

impl Vb2Fh {
    /// VIDIOC_PREPARE_BUF.
    pub fn prepare_buf(&self, b: &mut V4l2Buffer) -> Result<(), Vb2Error> {
        let q = &*self.q;
        let _io = q.ioctl_lock.lock();
        let mut st = q.state.lock();
        q.check_qbuf(&st, self, b, true)?;
        q.fill_and_prepare(&mut st, self, b)?;
        let vb = &st.bufs[&b.index];
        fill_v4l2_buffer(q, &st, vb, b);
        Ok(())
    }

    /// VIDIOC_QBUF (crate doc rule 3).
    pub fn qbuf(&self, b: &mut V4l2Buffer) -> Result<(), Vb2Error> {
        let q = &*self.q;
        let _io = q.ioctl_lock.lock();
        let mut st = q.state.lock();
        q.check_qbuf(&st, self, b, false)?;
        q.fill_and_prepare(&mut st, self, b)?;
        let index = b.index;
        if let Some(vb) = st.bufs.get_mut(&index) {
            vb.state = Vb2State::Queued;
        }
        st.queued_list.push_back(index);
        st.queued_count += 1;
        st.waiting_for_buffers = false;
        if st.start_streaming_called {
            let mut one = Vec::new();
            if let Some(vb) = st.bufs.get_mut(&index) {
                vb.state = Vb2State::Active;
                one.push(vb.driver_view(&q.cfg.device));
            }
            st.owned_by_drv_count += 1;
            fill_v4l2_buffer(q, &st, &st.bufs[&index], b);
            drop(st);
            q.enqueue_in_driver(one);
            return Ok(());
        }
        fill_v4l2_buffer(q, &st, &st.bufs[&index], b);
        let start = st.streaming && st.queued_count >= q.cfg.min_queued_buffers;
        drop(st);
        if start {
            if let Err(e) = q.start_streaming() {
                // Behaviour 60: this buffer goes back to DEQUEUED (still prepared).
                let mut st = q.state.lock();
                st.queued_list.retain(|&i| i != index);
                st.queued_count -= 1;
                if let Some(vb) = st.bufs.get_mut(&index) {
                    vb.state = Vb2State::Dequeued;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// VIDIOC_DQBUF: blocking unless the handle is non-blocking (crate doc rule 6).
    pub fn dqbuf(&self, b: &mut V4l2Buffer) -> Result<(), Vb2Error> {
        self.dqbuf_timeout(b, None)
    }

    /// DQBUF that sleeps at most `timeout` (`ETIMEDOUT` then); `None` sleeps until a buffer is
    /// done, STREAMOFF (`EINVAL`) or a queue error (`EIO`).
    pub fn dqbuf_timeout(
        &self,
        b: &mut V4l2Buffer,
        timeout: Option<Duration>,
    ) -> Result<(), Vb2Error> {
        let q = &*self.q;
        q.check_type(b.type_)?;
        let clock = &**q.dma.soc().clock();
        let deadline = clock::deadline_after(clock, timeout);
        let mut io = q.ioctl_lock.lock();
        let mut st = q.state.lock();
        q.check_owner(&st, self.id)?;
        loop {
            if st.waiting_in_dqbuf {
                return Err(ebusy("another DQBUF is waiting"));
            }
            if !st.streaming {
                return Err(einval("DQBUF while not streaming"));
            }
            if st.error {
                return Err(queue_in_error());
            }
            if st.last_buffer_dequeued {
                return Err(Vb2Error::new(epipe(), "the last buffer was dequeued"));
            }
            if !st.done_list.is_empty() {
                break;
            }
            if self.nonblock.load(Ordering::Relaxed) {
                return Err(Vb2Error::new(Errno::EAGAIN, "no buffer is done"));
            }
            // Sleep with the ioctl lock released (wait_prepare / wait_finish).
            st.waiting_in_dqbuf = true;
            let generation = st.generation;
            drop(io);
            let mut timed_out = false;
            while st.done_list.is_empty()
                && st.streaming
                && !st.error
                && st.generation == generation
            {
                match deadline {
                    Some(d) => {
                        let left = clock::remaining(clock, d);
                        if left.is_zero() || q.done_wq.wait_for(&mut st, left).timed_out() {
                            // Slept the time out: a virtual machine clock moves to the deadline.
                            clock.timed_out(d);
                            timed_out = true;
                            break;
                        }
                    }
                    None => q.done_wq.wait(&mut st),
                }
            }
            st.waiting_in_dqbuf = false;
            drop(st);
            if timed_out {
                return Err(Vb2Error::new(Errno::ETIMEDOUT, "DQBUF timed out"));
            }
            io = q.ioctl_lock.lock();
            st = q.state.lock();
        }
        let index = *st.done_list.front().expect("checked non-empty");
        // CVE-2016-4568: check the planes array before taking the buffer off the list.
        verify_planes_array(q, &st.bufs[&index], b)?;
        st.done_list.pop_front();
        st.queued_list.retain(|&i| i != index);
        st.queued_count -= 1;
        let unmap = q.cfg.map_policy == MapPolicy::UnmapOnDequeue;
        let vb = st.bufs.get_mut(&index).expect("done buffers exist");
        if vb.prepared {
            q.ops.buf_finish(&vb.driver_view(&q.cfg.device));
            Counters::inc(&q.counters.buf_finish);
            vb.prepared = false;
        }
        // Reported as DONE/ERROR, not prepared, then DEQUEUED (`vb2_core_dqbuf`'s order).
        fill_v4l2_buffer(q, &st, &st.bufs[&index], b);
        b.flags &= !V4L2_BUF_FLAG_DONE;
        let vb = st.bufs.get_mut(&index).expect("done buffers exist");
        vb.state = Vb2State::Dequeued;
        if unmap {
            for p in &mut vb.planes {
                if let PlaneMem::Dmabuf(d) = &mut p.mem {
                    d.unmap(&q.counters);
                }
            }
        }
        let last = vb.flags & V4L2_BUF_FLAG_LAST != 0;
        vb.flags &= !V4L2_BUF_FLAG_LAST;
        if last && !q.cfg.buf_type.is_output() {
            st.last_buffer_dequeued = true;
        }
        drop(io);
        Ok(())
    }

    /// poll(): `EPOLLERR`, `EPOLLIN|EPOLLRDNORM` (capture) or `EPOLLOUT|EPOLLWRNORM` (output),
    /// or 0, for the `events` asked (`vb2_core_poll`).
    pub fn poll(&self, events: u16) -> u16 {
        let q = &*self.q;
        let output = q.cfg.buf_type.is_output();
        let (ready, wanted) = if output {
            (EPOLLOUT | EPOLLWRNORM, EPOLLOUT | EPOLLWRNORM)
        } else {
            (EPOLLIN | EPOLLRDNORM, EPOLLIN | EPOLLRDNORM)
        };
        if events & wanted == 0 {
            return 0;
        }
        let st = q.state.lock();
        if !st.streaming || st.error {
            return EPOLLERR;
        }
        if !output && st.waiting_for_buffers {
            return EPOLLERR;
        }
        if !output && st.last_buffer_dequeued {
            return ready;
        }
        if st.done_list.is_empty() {
            0
        } else {
            ready
        }
    }
}
