//! An open file handle of a video device (`struct v4l2_fh`) and the ioctls that act on the
//! queue's memory through it: EXPBUF and mmap; `close()`.
//!
//! C side: `v4l2-fh.c` (`v4l2_fh_open`, `v4l2_fh_release`), `videobuf2-v4l2.c`
//! (`vb2_fop_release`, `vb2_ioctl_expbuf`, `vb2_fop_mmap`), `videobuf2-core.c`
//! (`vb2_core_expbuf`, `vb2_mmap`).
//!
//! # The concept
//! A queue belongs to no handle until one allocates buffers; from then on that handle owns it
//! ([`queue`](crate::queue) module rules 1-3) and its `close()` cancels streaming and frees
//! every buffer. A handle lives in one process: fds it installs (EXPBUF) and USERPTR pointers
//! it passes are that process's.
//!
//! # Locking and lifetime
//! Every ioctl takes the queue's ioctl lock, then its state lock. A handle holds its queue
//! alive; dropping the handle is its last `close()`. A dma-buf EXPBUF made holds the plane's
//! memory alive after the buffers are freed, as the kernel's exported MMAP buffer does.

use crate::buffer::{Memory, PlaneMem};
use crate::ioctl::*;
use crate::mem_mmap::{Vb2Exporter, Vb2Mapping};
use crate::queue::{einval, Vb2Queue};
use crate::userptr::UserMemory;
use crate::Vb2Error;
use dmabuf::{DmaBuf, ExportInfo};
use kernel::{FileObject, Process};
use soc::{PAGE_SHIFT, PAGE_SIZE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use uapi::ioctl::{O_ACCMODE, O_CLOEXEC, PROT_READ, PROT_WRITE};

/// An open file handle of the video device (`struct v4l2_fh`): the ioctls are its methods.
///
/// `Send + Sync`: share it (`Arc<Vb2Fh>`) to call from several threads, as a `dup()`ed fd.
/// Dropping it is the last `close()` (`queue` module rule 3 for non-owners; crate doc rule 9
/// for the owner).
pub struct Vb2Fh {
    pub(crate) q: Arc<Vb2Queue>,
    pub(crate) id: u64,
    pub(crate) process: Arc<Process>,
    pub(crate) user_mem: Option<Arc<UserMemory>>,
    pub(crate) nonblock: AtomicBool,
    pub(crate) closed: AtomicBool,
}

impl std::fmt::Debug for Vb2Fh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vb2Fh").field("id", &self.id).finish()
    }
}

impl Vb2Fh {
    /// The application memory USERPTR pointers refer to.
    pub fn with_user_memory(mut self, mem: Arc<UserMemory>) -> Vb2Fh {
        self.user_mem = Some(mem);
        self
    }

    /// The application memory USERPTR pointers refer to, if bound.
    pub fn user_memory(&self) -> Option<&Arc<UserMemory>> {
        self.user_mem.as_ref()
    }

    /// `O_NONBLOCK`: DQBUF answers `EAGAIN` instead of sleeping.
    pub fn set_nonblocking(&self, on: bool) {
        self.nonblock.store(on, Ordering::Relaxed);
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<Vb2Queue> {
        &self.q
    }

    /// The process the handle was opened in.
    pub fn process(&self) -> &Arc<Process> {
        &self.process
    }

    /// `close()`: the owner's close cancels and frees everything; another handle's does nothing.
    /// Idempotent; dropping the handle closes it too. Do not call ioctls on a closed handle.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        let q = &*self.q;
        let _io = q.ioctl_lock.lock();
        if q.state.lock().owner != Some(self.id) {
            return;
        }
        q.cancel();
        let mut st = q.state.lock();
        q.free_all(&mut st);
        st.owner = None;
    }

    /// VIDIOC_EXPBUF: a new dma-buf of one MMAP plane, installed in this handle's process.
    pub fn expbuf(&self, eb: &mut V4l2ExportBuffer) -> Result<(), Vb2Error> {
        let q = &*self.q;
        let _io = q.ioctl_lock.lock();
        let mem = {
            let st = q.state.lock();
            q.check_owner(&st, self.id)?;
            if st.memory != Some(Memory::Mmap) {
                return Err(einval("EXPBUF on a queue whose memory is not MMAP"));
            }
            if eb.flags & !(O_CLOEXEC | O_ACCMODE) != 0 {
                return Err(einval(format!("EXPBUF flags {:#x}", eb.flags)));
            }
            q.check_type(eb.type_)?;
            let vb = st
                .bufs
                .get(&eb.index)
                .ok_or_else(|| einval(format!("no buffer {}", eb.index)))?;
            let p = vb
                .planes
                .get(eb.plane as usize)
                .ok_or_else(|| einval(format!("no plane {}", eb.plane)))?;
            match &p.mem {
                PlaneMem::Mmap(m) => m.clone(),
                _ => return Err(einval("plane without memory")),
            }
        };
        let size = mem.size();
        let mut info = ExportInfo::new("vb2", size, Vb2Exporter::new(mem));
        info.flags = eb.flags & O_ACCMODE;
        // Listed in the machine's registry like every dma-buf (`db_list`): debugfs shows it and
        // its inode number is the machine's next one.
        let buf = DmaBuf::export_registered(&q.dma, info, self.process.kernel().registry())?;
        eb.fd = self.process.install(FileObject::DmaBuf(buf), eb.flags)?;
        Ok(())
    }

    /// `mmap(NULL, len, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd, offset)` of an MMAP plane
    /// by its offset cookie ([`mmap_cookie`]); the mapping starts at the beginning of the plane.
    pub fn mmap(
        &self,
        offset: u32,
        len: u64,
        prot: u32,
        shared: bool,
    ) -> Result<Vb2Mapping, Vb2Error> {
        let q = &*self.q;
        let _io = q.ioctl_lock.lock();
        let st = q.state.lock();
        if st.memory != Some(Memory::Mmap) {
            return Err(einval("mmap of a queue whose memory is not MMAP"));
        }
        if !shared {
            return Err(einval("mmap without MAP_SHARED"));
        }
        let need = if q.cfg.buf_type.is_output() {
            PROT_WRITE
        } else {
            PROT_READ
        };
        if prot & need == 0 {
            return Err(einval("mmap without the protection the direction needs"));
        }
        if u64::from(offset) % PAGE_SIZE != 0 || len == 0 {
            return Err(einval(format!("mmap offset {offset:#x} length {len:#x}")));
        }
        let index = offset >> (PAGE_SHIFT + 3);
        let plane = (offset >> PAGE_SHIFT) & 7;
        let p = st
            .bufs
            .get(&index)
            .and_then(|vb| vb.planes.get(plane as usize))
            .ok_or_else(|| einval(format!("no plane behind offset {offset:#x}")))?;
        let PlaneMem::Mmap(m) = &p.mem else {
            return Err(einval("plane without memory"));
        };
        if len > u64::from(p.length).div_ceil(PAGE_SIZE) * PAGE_SIZE {
            return Err(einval(format!(
                "mmap of {len:#x} bytes, plane is {:#x}",
                p.length
            )));
        }
        Ok(Vb2Mapping::new(m.clone(), len, prot & PROT_WRITE != 0))
    }
}

impl Drop for Vb2Fh {
    fn drop(&mut self) {
        self.close();
    }
}
