//! Buffer preparation: what PREPARE_BUF and QBUF do to a buffer before it may be queued.
//!
//! C side: `videobuf2-core.c` (`__buf_prepare`, `__prepare_mmap`, `__prepare_userptr`,
//! `__prepare_dmabuf`), `videobuf2-v4l2.c` (`vb2_fill_vb2_v4l2_buffer`, `__verify_length`).
//!
//! # The concept
//! Preparing a buffer checks the planes user space passed against the queue's plane sizes
//! (for OUTPUT queues `bytesused` and `data_offset` too), then acquires the memory behind each
//! plane as the queue's memory type says: nothing for MMAP (the queue allocated it), a pin of
//! the user's pages for USERPTR, an attachment mapped for the queue's DMA direction for DMABUF.
//! A plane whose user pointer or fd (or length) changed since the last preparation releases
//! the old memory first, with `buf_cleanup` before and `buf_init` after (a *reacquire*); a plane
//! that did not change keeps what it holds. Then the driver's `buf_prepare` runs and the caches
//! are synced for the device. A failure releases every plane, so the buffer never holds half
//! of its memory.
//!
//! # Locking and lifetime
//! Called with the queue's state lock held (the ioctl holds it from lookup to the state
//! change). The memory a prepared buffer holds lives until it is prepared again with other
//! memory, its queue frees it (REQBUFS 0, close), or the queue goes.

use crate::buffer::{Memory, PlaneMem, Vb2Buffer, Vb2State};
use crate::cache;
use crate::counters::Counters;
use crate::ioctl::*;
use crate::mem_dmabuf::{bad_fd, DmabufPlane};
use crate::mem_userptr::UserptrPlane;
use crate::queue::{einval, QueueState, Vb2Fh, Vb2Queue};
use crate::Vb2Error;
use uapi::Errno;

/// What user space passed for one plane (`vbuf->planes[]` after `vb2_fill_vb2_v4l2_buffer`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserPlane {
    bytesused: u32,
    length: u32,
    m_userptr: u64,
    m_fd: i32,
    data_offset: u32,
}

impl Vb2Queue {
    /// `vb2_fill_vb2_v4l2_buffer` + `__verify_length`: what user space passed, checked.
    pub(crate) fn user_planes(
        &self,
        memory: Memory,
        vb: &Vb2Buffer,
        b: &V4l2Buffer,
    ) -> Result<Vec<UserPlane>, Vb2Error> {
        let output = self.cfg.buf_type.is_output();
        let mut planes: Vec<UserPlane> = if self.cfg.buf_type.is_multiplanar() {
            let arr = b.planes.as_deref().unwrap_or_default();
            arr.iter()
                .take(vb.planes.len())
                .map(|p| UserPlane {
                    bytesused: p.bytesused,
                    length: p.length,
                    m_userptr: p.m_userptr,
                    m_fd: p.m_fd,
                    data_offset: if output { p.data_offset } else { 0 },
                })
                .collect()
        } else {
            vec![UserPlane {
                bytesused: b.bytesused,
                length: b.length,
                m_userptr: b.m_userptr,
                m_fd: b.m_fd,
                data_offset: 0,
            }]
        };
        if output && b.field == V4L2_FIELD_ALTERNATE {
            return Err(einval("field ALTERNATE on an output buffer"));
        }
        for (up, p) in planes.iter_mut().zip(&vb.planes) {
            if memory == Memory::Mmap {
                up.length = p.length;
            }
            if !output {
                continue;
            }
            if up.bytesused == 0 && !self.cfg.allow_zero_bytesused {
                up.bytesused = up.length; // the deprecated "0 means all"
            }
            // A DMABUF length of 0 is the dma-buf's size, known only at prepare.
            let unknown = memory == Memory::Dmabuf && up.length == 0;
            if !unknown && up.bytesused > up.length {
                return Err(einval(format!(
                    "bytesused {} > length {}",
                    up.bytesused, up.length
                )));
            }
            if up.data_offset > 0 && up.data_offset >= up.bytesused {
                return Err(einval(format!(
                    "data_offset {} >= bytesused {}",
                    up.data_offset, up.bytesused
                )));
            }
        }
        Ok(planes)
    }

    /// `__buf_prepare`: DEQUEUED -> PREPARING -> DEQUEUED with `prepared` (crate doc rule 2).
    pub(crate) fn buf_prepare(
        &self,
        st: &mut QueueState,
        fh: &Vb2Fh,
        index: u32,
        planes: &[UserPlane],
    ) -> Result<(), Vb2Error> {
        let memory = st.memory.ok_or_else(|| einval("no buffers"))?;
        let vb = st.bufs.get_mut(&index).ok_or_else(|| einval("no buffer"))?;
        let orig = vb.state;
        vb.state = Vb2State::Preparing;
        let res = match memory {
            Memory::Mmap => self.prepare_mmap(vb, planes),
            Memory::Userptr => self.prepare_userptr(vb, fh, planes),
            Memory::Dmabuf => self.prepare_dmabuf(vb, fh, planes),
        };
        let res = res.and_then(|()| cache::mem_prepare(vb, &self.counters));
        vb.state = orig;
        res?;
        vb.prepared = true;
        Ok(())
    }

    pub(crate) fn call_buf_prepare(&self, vb: &mut Vb2Buffer) -> Result<(), Vb2Error> {
        self.ops
            .buf_prepare(&vb.driver_view(&self.cfg.device))
            .map_err(|e| Vb2Error::new(e, "buf_prepare failed"))?;
        Counters::inc(&self.counters.buf_prepare);
        Ok(())
    }

    pub(crate) fn prepare_mmap(
        &self,
        vb: &mut Vb2Buffer,
        planes: &[UserPlane],
    ) -> Result<(), Vb2Error> {
        for (p, up) in vb.planes.iter_mut().zip(planes) {
            p.bytesused = up.bytesused;
            p.data_offset = up.data_offset;
        }
        self.call_buf_prepare(vb)
    }

    /// After a failed USERPTR/DMABUF prepare: release every plane (rule 8 of
    /// [`mem_dmabuf`](crate::mem_dmabuf)), and undo `buf_init` so the pair stays balanced.
    pub(crate) fn release_all_planes(&self, vb: &mut Vb2Buffer) {
        if vb.inited {
            self.ops.buf_cleanup(&vb.driver_view(&self.cfg.device));
            Counters::inc(&self.counters.buf_cleanup);
            vb.inited = false;
        }
        for p in &mut vb.planes {
            self.release_plane(&mut p.mem);
            p.length = p.min_length;
            p.bytesused = 0;
            p.data_offset = 0;
        }
    }

    /// Calls `buf_init` after a reacquire, then `buf_prepare`.
    pub(crate) fn init_and_prepare(
        &self,
        vb: &mut Vb2Buffer,
        reacquired: bool,
    ) -> Result<(), Vb2Error> {
        if reacquired {
            self.ops
                .buf_init(&vb.driver_view(&self.cfg.device))
                .map_err(|e| Vb2Error::new(e, "buf_init failed"))?;
            Counters::inc(&self.counters.buf_init);
            vb.inited = true;
        }
        self.call_buf_prepare(vb)
    }

    /// Drops the buffer's `buf_init` before its planes change (once per prepare).
    pub(crate) fn cleanup_for_reacquire(&self, vb: &mut Vb2Buffer, reacquired: &mut bool) {
        if !*reacquired {
            *reacquired = true;
            if vb.inited {
                self.ops.buf_cleanup(&vb.driver_view(&self.cfg.device));
                Counters::inc(&self.counters.buf_cleanup);
                vb.inited = false;
            }
        }
    }

    pub(crate) fn prepare_userptr(
        &self,
        vb: &mut Vb2Buffer,
        fh: &Vb2Fh,
        planes: &[UserPlane],
    ) -> Result<(), Vb2Error> {
        let res = self.prepare_userptr_inner(vb, fh, planes);
        if res.is_err() {
            self.release_all_planes(vb);
        }
        res
    }

    pub(crate) fn prepare_userptr_inner(
        &self,
        vb: &mut Vb2Buffer,
        fh: &Vb2Fh,
        planes: &[UserPlane],
    ) -> Result<(), Vb2Error> {
        let mut reacquired = matches!(vb.planes[0].mem, PlaneMem::None);
        for (i, up) in planes.iter().enumerate() {
            if up.length < vb.planes[i].min_length {
                return Err(einval(format!(
                    "plane {i}: length {} < {}",
                    up.length, vb.planes[i].min_length
                )));
            }
            if let PlaneMem::Userptr(u) = &vb.planes[i].mem {
                if u.userptr == up.m_userptr && u.length == up.length {
                    continue;
                }
            }
            self.cleanup_for_reacquire(vb, &mut reacquired);
            self.release_plane(&mut vb.planes[i].mem);
            let mem = fh
                .user_mem
                .as_ref()
                .ok_or_else(|| Vb2Error::new(Errno::EFAULT, "no user memory in this process"))?;
            let u = UserptrPlane::get(
                &self.dma,
                &self.cfg.device,
                self.cfg.buf_type.dma_dir(),
                mem,
                up.m_userptr,
                up.length,
                self.contiguous(),
            )?;
            Counters::inc(&self.counters.get_userptr);
            vb.planes[i].mem = PlaneMem::Userptr(u);
        }
        for (p, up) in vb.planes.iter_mut().zip(planes) {
            p.length = up.length;
            p.bytesused = up.bytesused;
            p.data_offset = up.data_offset;
            p.m_userptr = up.m_userptr;
        }
        self.init_and_prepare(vb, reacquired)
    }

    pub(crate) fn prepare_dmabuf(
        &self,
        vb: &mut Vb2Buffer,
        fh: &Vb2Fh,
        planes: &[UserPlane],
    ) -> Result<(), Vb2Error> {
        let res = self.prepare_dmabuf_inner(vb, fh, planes);
        if res.is_err() {
            self.release_all_planes(vb);
        }
        res
    }

    /// `__prepare_dmabuf`, rules 1-7 of [`mem_dmabuf`](crate::mem_dmabuf).
    pub(crate) fn prepare_dmabuf_inner(
        &self,
        vb: &mut Vb2Buffer,
        fh: &Vb2Fh,
        planes: &[UserPlane],
    ) -> Result<(), Vb2Error> {
        let mut reacquired = matches!(vb.planes[0].mem, PlaneMem::None);
        let mut lengths = Vec::with_capacity(planes.len());
        for (i, up) in planes.iter().enumerate() {
            let dbuf = fh
                .process
                .get_dma_buf(up.m_fd)
                .map_err(|e| bad_fd(up.m_fd, &e))?;
            let len = if up.length == 0 {
                u32::try_from(dbuf.size()).unwrap_or(u32::MAX)
            } else {
                up.length
            };
            lengths.push(len);
            if len < vb.planes[i].min_length {
                return Err(einval(format!(
                    "plane {i}: length {len} < {}",
                    vb.planes[i].min_length
                )));
            }
            if let PlaneMem::Dmabuf(d) = &vb.planes[i].mem {
                if d.dbuf.ptr_eq(&dbuf) && d.length == len {
                    continue; // rule 4: reuse, drop the extra reference
                }
            }
            self.cleanup_for_reacquire(vb, &mut reacquired);
            self.release_plane(&mut vb.planes[i].mem);
            let importer_priv = self.importer_priv.lock().clone();
            let d =
                DmabufPlane::attach(dbuf, &self.cfg.device, importer_priv, len, &self.counters)?;
            vb.planes[i].mem = PlaneMem::Dmabuf(d);
        }
        let dir = self.cfg.buf_type.dma_dir();
        for p in &mut vb.planes {
            if let PlaneMem::Dmabuf(d) = &mut p.mem {
                if !d.is_mapped() {
                    d.map(dir, self.contiguous(), &self.counters)?;
                }
            }
        }
        let output = self.cfg.buf_type.is_output();
        for ((p, up), len) in vb.planes.iter_mut().zip(planes).zip(lengths) {
            p.length = len;
            p.bytesused = if output && up.bytesused == 0 && !self.cfg.allow_zero_bytesused {
                len
            } else {
                up.bytesused
            };
            p.data_offset = up.data_offset;
            p.m_fd = up.m_fd;
        }
        self.init_and_prepare(vb, reacquired)
    }
}
