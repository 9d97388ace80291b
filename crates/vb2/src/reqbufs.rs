//! REQBUFS, CREATE_BUFS, REMOVE_BUFS and QUERYBUF: creating and freeing buffers.
//!
//! C side: `videobuf2-core.c` (`vb2_core_reqbufs`, `vb2_core_create_bufs`,
//! `vb2_core_remove_bufs`), `videobuf2-v4l2.c` (`vb2_reqbufs`, `vb2_create_bufs`,
//! `vb2_ioctl_*` ownership checks). The rules are behaviours 1-18 of the reference: crate doc
//! rule 1 and [`queue`](crate::queue)'s ownership rules.

use crate::buffer::{Memory, Vb2State};
use crate::cache;
use crate::ioctl::*;
use crate::queue::{ebusy, einval, QueueState, Vb2Fh};
use crate::Vb2Error;
use uapi::Errno;

impl Vb2Fh {
    /// VIDIOC_REQBUFS.
    pub fn reqbufs(&self, req: &mut V4l2RequestBuffers) -> Result<(), Vb2Error> {
        let q = &*self.q;
        req.capabilities = q.capabilities();
        let memory = Memory::from_raw(req.memory);
        req.flags = memory.map_or(0, |m| {
            cache::memory_flags(q.cfg.allow_cache_hints, m, req.flags)
        });
        let mem = q.verify_memory_type(req.memory, req.type_)?;
        let non_coherent = req.flags & V4L2_MEMORY_FLAG_NON_COHERENT != 0;
        let _io = q.ioctl_lock.lock();
        {
            let st = q.state.lock();
            q.check_owner(&st, self.id)?;
            if st.streaming {
                return Err(ebusy("REQBUFS while streaming"));
            }
            if st.waiting_in_dqbuf && req.count > 0 {
                return Err(ebusy("REQBUFS while a DQBUF is waiting"));
            }
        }
        q.cancel();
        let mut st = q.state.lock();
        q.free_all(&mut st);
        if req.count == 0 {
            st.owner = None;
            return Ok(());
        }
        let mut n = req
            .count
            .max(q.cfg.min_reqbufs_allocation)
            .min(q.cfg.max_num_buffers);
        let sizes = q.ops.queue_setup(&mut n, None).map_err(Vb2Error::from)?;
        check_sizes(&sizes)?;
        st.memory = Some(mem);
        st.non_coherent = non_coherent;
        let n = n.min(q.cfg.max_num_buffers);
        let made = q.alloc_buffers(&mut st, 0, n, &sizes);
        if made == 0 || made < q.cfg.min_reqbufs_allocation.min(n) {
            q.free_all(&mut st);
            return Err(Vb2Error::new(
                Errno::ENOMEM,
                format!("allocated {made} of {n} buffers"),
            ));
        }
        req.count = made;
        st.owner = Some(self.id);
        Ok(())
    }

    /// VIDIOC_CREATE_BUFS.
    pub fn create_bufs(&self, cb: &mut V4l2CreateBuffers) -> Result<(), Vb2Error> {
        let q = &*self.q;
        cb.capabilities = q.capabilities();
        cb.max_num_buffers = q.cfg.max_num_buffers;
        let memory = Memory::from_raw(cb.memory);
        cb.flags = memory.map_or(0, |m| {
            cache::memory_flags(q.cfg.allow_cache_hints, m, cb.flags)
        });
        let mem = q.verify_memory_type(cb.memory, cb.format.type_)?;
        let non_coherent = cb.flags & V4L2_MEMORY_FLAG_NON_COHERENT != 0;
        let _io = q.ioctl_lock.lock();
        let mut st = q.state.lock();
        cb.index = st.bufs.len() as u32;
        if cb.count == 0 {
            return Ok(());
        }
        q.check_owner(&st, self.id)?;
        if st.waiting_in_dqbuf {
            return Err(ebusy("CREATE_BUFS while a DQBUF is waiting"));
        }
        let sizes: Vec<u32> = if q.cfg.buf_type.is_multiplanar() {
            let np = cb.format.num_planes;
            if np == 0 || np > VIDEO_MAX_PLANES || cb.format.sizes.len() < np as usize {
                return Err(einval(format!("num_planes {np}")));
            }
            cb.format.sizes[..np as usize].to_vec()
        } else {
            cb.format.sizes.first().copied().into_iter().collect()
        };
        if sizes.is_empty() || sizes.contains(&0) {
            return Err(einval("a plane sizeimage of 0"));
        }
        if !st.bufs.is_empty() {
            if st.memory != Some(mem) {
                return Err(einval("CREATE_BUFS with another memory type"));
            }
            if st.non_coherent != non_coherent {
                return Err(einval("CREATE_BUFS with another coherency mode"));
            }
        }
        let space = q.cfg.max_num_buffers - st.bufs.len() as u32;
        if space == 0 {
            return Err(Vb2Error::new(
                enobufs(),
                format!(
                    "the queue holds max_num_buffers ({})",
                    q.cfg.max_num_buffers
                ),
            ));
        }
        let mut n = cb.count.min(space);
        let sizes = q
            .ops
            .queue_setup(&mut n, Some(&sizes))
            .map_err(|e| Vb2Error::new(e, "queue_setup refused the sizes"))?;
        check_sizes(&sizes)?;
        let n = n.min(space);
        let fresh = st.bufs.is_empty();
        if fresh {
            st.memory = Some(mem);
            st.non_coherent = non_coherent;
        }
        let mut want = n;
        let first = loop {
            match first_free(&st, want, q.cfg.max_num_buffers) {
                Some(f) => break f,
                None if want > 1 => want -= 1,
                None => return Err(Vb2Error::new(enobufs(), "no free slot")),
            }
        };
        let made = q.alloc_buffers(&mut st, first, want, &sizes);
        if made == 0 {
            if fresh {
                st.memory = None;
                st.non_coherent = false;
            }
            return Err(Vb2Error::new(Errno::ENOMEM, "no buffer could be allocated"));
        }
        cb.index = first;
        cb.count = made;
        st.owner = Some(self.id);
        Ok(())
    }

    /// VIDIOC_REMOVE_BUFS (v6.10+). The type is checked first, even for count 0: 6.12's
    /// `vb2_ioctl_remove_bufs` answers a wrong type with `EINVAL` before it returns 0 for
    /// count 0 (found in qemu with vivid).
    pub fn remove_bufs(&self, rb: &V4l2RemoveBuffers) -> Result<(), Vb2Error> {
        let q = &*self.q;
        q.check_type(rb.type_)?;
        if rb.count == 0 {
            return Ok(());
        }
        let _io = q.ioctl_lock.lock();
        let mut st = q.state.lock();
        q.check_owner(&st, self.id)?;
        let end = rb
            .index
            .checked_add(rb.count)
            .filter(|&e| e <= q.cfg.max_num_buffers)
            .ok_or_else(|| einval("range past max_num_buffers"))?;
        for i in rb.index..end {
            match st.bufs.get(&i) {
                None => return Err(einval(format!("buffer {i} does not exist"))),
                Some(vb) if vb.state != Vb2State::Dequeued => {
                    return Err(ebusy(format!("buffer {i} is {:?}", vb.state)))
                }
                Some(_) => {}
            }
        }
        for i in rb.index..end {
            if let Some(vb) = st.bufs.remove(&i) {
                q.free_buffer(vb);
            }
        }
        if st.bufs.is_empty() {
            st.memory = None;
            st.non_coherent = false;
        }
        Ok(())
    }

    /// VIDIOC_QUERYBUF (no ownership check).
    pub fn querybuf(&self, b: &mut V4l2Buffer) -> Result<(), Vb2Error> {
        let q = &*self.q;
        q.check_type(b.type_)?;
        let _io = q.ioctl_lock.lock();
        let st = q.state.lock();
        let vb = st
            .bufs
            .get(&b.index)
            .ok_or_else(|| einval(format!("no buffer {}", b.index)))?;
        crate::qbuf::verify_planes_array(q, vb, b)?;
        crate::qbuf::fill_v4l2_buffer(q, &st, vb, b);
        Ok(())
    }
}

fn check_sizes(sizes: &[u32]) -> Result<(), Vb2Error> {
    if sizes.is_empty() || sizes.len() > VIDEO_MAX_PLANES as usize || sizes.contains(&0) {
        return Err(einval(format!("queue_setup gave plane sizes {sizes:?}")));
    }
    Ok(())
}

/// The first index of `count` consecutive free slots below `max`.
fn first_free(st: &QueueState, count: u32, max: u32) -> Option<u32> {
    let mut run_start = 0;
    let mut run = 0;
    for i in 0..max {
        if st.bufs.contains_key(&i) {
            run = 0;
            run_start = i + 1;
        } else {
            run += 1;
            if run == count {
                return Some(run_start);
            }
        }
    }
    None
}
