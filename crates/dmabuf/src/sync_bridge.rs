//! The bridge between implicit sync (fences in the buffer's reservation object) and explicit
//! sync (sync files), and poll readiness.
//!
//! C side: `drivers/dma-buf/dma-buf.c` (`dma_buf_export_sync_file`, `dma_buf_import_sync_file`,
//! `dma_buf_poll`).
//!
//! # Rules
//! 1. Flags are `DMA_BUF_SYNC_READ`/`WRITE`; any other bit, or none of them, is `EINVAL`
//!    (behaviours 85-86).
//! 2. Export: `READ` (the caller will read) snapshots the WRITE-usage fences; `WRITE` or `RW`
//!    snapshots the READ-usage fences (readers and writers). No fence gives the signaled stub;
//!    several give one array fence.
//! 3. Import: `WRITE` or `RW` adds with WRITE usage, `READ` with READ usage. Containers are
//!    unwrapped and every leaf is added (recent kernels). Takes the resv lock: do not hold it.
//! 4. Poll (behaviour 83): `POLLIN` is ready when no KERNEL/WRITE fence is pending, `POLLOUT` when
//!    no KERNEL/WRITE/READ fence is; BOOKKEEP fences never matter; no event asked, nothing
//!    reported. Unlike Linux, no wake-up callback is armed by [`DmaBuf::poll`] (waiting is
//!    [`DmaBuf::poll_wait`]), so an event is never hidden because a callback is already armed.

use crate::buf::DmaBuf;
use crate::error::DmaBufError;
use fence::{unwrap_iter, DmaFence, DmaResvUsage, Interrupt, SyncFile};
use std::time::Duration;
use uapi::ioctl::{DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_WRITE, POLLIN, POLLOUT};
use uapi::AsErrno as _;

fn check_flags(flags: u32) -> Result<(), DmaBufError> {
    let f = u64::from(flags);
    if f & !DMA_BUF_SYNC_RW != 0 || f & DMA_BUF_SYNC_RW == 0 {
        return Err(DmaBufError::BadSyncFlags(f));
    }
    Ok(())
}

impl DmaBuf {
    /// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` (rules 1-2): a sync file whose fence signals when the
    /// access `flags` describes may start.
    ///
    /// ```
    /// use dmabuf::{testing::{mock_dma, MockExporter}, DmaBuf, ExportInfo};
    /// use uapi::ioctl::DMA_BUF_SYNC_READ;
    /// let buf = DmaBuf::export(&mock_dma(), ExportInfo::new("mock", 4096, MockExporter::new())).unwrap();
    /// let sf = buf.export_sync_file(DMA_BUF_SYNC_READ as u32).unwrap();
    /// assert!(sf.fence().is_signaled(), "no fences: the signaled stub");
    /// assert!(buf.export_sync_file(0).is_err());
    /// ```
    pub fn export_sync_file(&self, flags: u32) -> Result<SyncFile, DmaBufError> {
        check_flags(flags)?;
        let write = u64::from(flags) & DMA_BUF_SYNC_WRITE != 0;
        let usage = DmaResvUsage::rw(write);
        let fence = self
            .0
            .resv
            .get_singleton(usage)?
            .unwrap_or_else(DmaFence::stub);
        Ok(SyncFile::new(&fence))
    }

    /// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` (rules 1 and 3): adds the sync file's fences to the
    /// buffer's reservation object so implicit-sync users wait for them.
    pub fn import_sync_file(&self, flags: u32, sync: &SyncFile) -> Result<(), DmaBufError> {
        check_flags(flags)?;
        let usage = if u64::from(flags) & DMA_BUF_SYNC_WRITE != 0 {
            DmaResvUsage::Write
        } else {
            DmaResvUsage::Read
        };
        debug_assert!(u64::from(flags) & (DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE) != 0);
        let leaves: Vec<DmaFence> = unwrap_iter(sync.fence()).collect();
        let mut g = self.0.resv.lock(None)?;
        g.reserve_fences(leaves.len().max(1))?;
        for f in &leaves {
            g.add_fence(f, usage)?;
        }
        Ok(())
    }

    /// `poll()` on the buffer's fd (rule 4): the subset of `events` (`POLLIN`, `POLLOUT`) ready
    /// now.
    ///
    /// ```
    /// use dmabuf::{testing::{mock_dma, MockExporter}, DmaBuf, ExportInfo};
    /// use uapi::ioctl::{POLLIN, POLLOUT};
    /// let buf = DmaBuf::export(&mock_dma(), ExportInfo::new("mock", 4096, MockExporter::new())).unwrap();
    /// assert_eq!(buf.poll(POLLIN | POLLOUT), POLLIN | POLLOUT);
    /// assert_eq!(buf.poll(0), 0);
    /// ```
    pub fn poll(&self, events: u16) -> u16 {
        let mut ready = 0;
        if events & POLLIN != 0 && self.0.resv.test_signaled(DmaResvUsage::Write) {
            ready |= POLLIN;
        }
        if events & POLLOUT != 0 && self.0.resv.test_signaled(DmaResvUsage::Read) {
            ready |= POLLOUT;
        }
        ready
    }

    /// `poll()` with a timeout: waits until one of `events` is ready, `timeout` passes (`None`:
    /// forever; `Some(ZERO)`: just check) or `intr` is raised (`ERESTARTSYS`). Returns the ready
    /// events (0 on timeout).
    pub fn poll_wait(
        &self,
        events: u16,
        timeout: Option<Duration>,
        intr: Option<&Interrupt>,
    ) -> Result<u16, DmaBufError> {
        let events = events & (POLLIN | POLLOUT);
        loop {
            let ready = self.poll(events);
            if ready != 0 || events == 0 || timeout == Some(Duration::ZERO) {
                return Ok(ready);
            }
            // POLLIN needs a subset of POLLOUT's fences: it is ready first.
            let usage = if events & POLLIN != 0 {
                DmaResvUsage::Write
            } else {
                DmaResvUsage::Read
            };
            match self.0.resv.wait_timeout(usage, intr, timeout) {
                Ok(_) => {
                    if timeout.is_some() {
                        // A fence added during the wait would need a new budget; report what
                        // is ready now instead of waiting again.
                        return Ok(self.poll(events));
                    }
                }
                Err(e) if e.errno() == uapi::Errno::ETIME => return Ok(0),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
