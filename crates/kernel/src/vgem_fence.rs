//! The fence half of vgem: fences a process attaches to a dma-buf's reservation object and
//! signals when it likes — the simulator's answer to [`seam::Uapi::fence_attach`].
//!
//! C side: `drivers/gpu/drm/vgem/vgem_fence.c` (`vgem_fence_attach_ioctl`,
//! `vgem_fence_signal_ioctl`, `vgem_fence_close`).
//!
//! # Rules (as vgem in Linux 6.12)
//!
//! 1. Attach refuses with `EBUSY` when the buffer holds an unsignalled fence the new one would
//!    conflict with: any fence for a write fence, a write fence for a read fence
//!    (`dma_resv_test_signaled(resv, dma_resv_usage_rw(write))`).
//! 2. Each fence has a context of its own, seqno 1, driver `vgem`, timeline `unbound`; it is
//!    added with write usage for a write fence, read usage otherwise.
//! 3. Ids are per vgem file (here per [`FenceSource`], one per simulated process), from 1;
//!    signalling removes the id, so a second signal is `ENOENT`.
//! 4. Closing the file (dropping the source) signals every fence still pending. vgem's own
//!    10-second timeout is not modelled: nothing in the simulator waits on the wall clock.

use dmabuf::DmaBuf;
use fence::{DmaFence, DmaResvUsage, SimpleFenceOps};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use uapi::Errno;

/// The fences one process attached and has not signalled (its vgem file's `fence_idr`).
#[derive(Debug, Default)]
pub struct FenceSource {
    pending: Mutex<(u32, BTreeMap<u32, DmaFence>)>,
}

impl FenceSource {
    /// An empty source.
    pub fn new() -> FenceSource {
        FenceSource::default()
    }

    /// `VGEM_FENCE_ATTACH` (rules 1-3): a new pending fence in `buf`'s reservation object.
    ///
    /// Errors: `EBUSY` (rule 1), `ENOMEM`/`EDEADLK` from the reservation object.
    pub fn attach(&self, buf: &DmaBuf, write: bool) -> Result<u32, Errno> {
        let resv = buf.resv();
        if !resv.test_signaled(DmaResvUsage::rw(write)) {
            return Err(Errno::EBUSY);
        }
        // The fence lives on the buffer's machine: its context and its clock.
        let soc = buf.dma().soc();
        let context = soc.ids().fence_context_alloc(1).ok_or(Errno::ENOMEM)?;
        let f = DmaFence::new(
            SimpleFenceOps::on(soc.clock().clone(), "vgem", "unbound"),
            context,
            1,
        );
        let usage = if write {
            DmaResvUsage::Write
        } else {
            DmaResvUsage::Read
        };
        {
            let mut g = resv.lock(None).map_err(|_| Errno::EDEADLK)?;
            g.reserve_fences(1).map_err(|_| Errno::ENOMEM)?;
            g.add_fence(&f, usage).map_err(|_| Errno::ENOMEM)?;
        }
        let mut st = self.pending.lock();
        st.0 += 1;
        let id = st.0;
        st.1.insert(id, f);
        Ok(id)
    }

    /// `VGEM_FENCE_SIGNAL` (rule 3).
    ///
    /// Errors: `ENOENT` for an id that is not pending.
    pub fn signal(&self, id: u32) -> Result<(), Errno> {
        let f = self.pending.lock().1.remove(&id).ok_or(Errno::ENOENT)?;
        // A fence signalled by someone else meanwhile is still signalled: not an error here.
        let _ = f.signal();
        Ok(())
    }
}

impl Drop for FenceSource {
    /// Rule 4.
    fn drop(&mut self) {
        for f in std::mem::take(&mut self.pending.get_mut().1).into_values() {
            let _ = f.signal();
        }
    }
}
