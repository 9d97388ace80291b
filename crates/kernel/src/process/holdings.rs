//! What dma-bufs a process holds, read from its fd table and its mappings: the raw material of
//! [`crate::accounting`].
//!
//! C side: what Android's `libdmabufinfo` reads from `/proc/<pid>/fdinfo/*` (`ino:`, `size:`,
//! `exp_name:` of every dma-buf fd) and `/proc/<pid>/maps` (mappings of `/dmabuf:` files).
//!
//! # Locking
//! Takes the process's table lock once, clones the buffer references it finds, and drops them
//! after the lock is released (a clone may be the last reference by then).

use super::{Process, VmaBacking};
use dmabuf::buf::DmaBuf;
use std::collections::BTreeMap;

/// How one process holds one buffer.
pub(crate) struct Holding {
    /// The buffer.
    pub(crate) buf: DmaBuf,
    /// How many fds of the process refer to it (dups and received copies each count).
    pub(crate) fds: usize,
    /// How many mappings of the process map it.
    pub(crate) maps: usize,
}

impl Process {
    /// The dma-bufs this process holds by fd or by mapping, by inode, each once. Empty after
    /// exit.
    pub(crate) fn dma_buf_holdings(&self) -> BTreeMap<u64, Holding> {
        let mut out: BTreeMap<u64, Holding> = BTreeMap::new();
        let st = self.state.lock();
        let mut note = |buf: &DmaBuf, fd: bool| {
            let h = out.entry(buf.ino()).or_insert_with(|| Holding {
                buf: buf.clone(),
                fds: 0,
                maps: 0,
            });
            if fd {
                h.fds += 1;
            } else {
                h.maps += 1;
            }
        };
        for e in st.fds.values() {
            if let Some(buf) = e.file.as_dma_buf() {
                note(buf, true);
            }
        }
        for vma in st.vmas.values() {
            if let VmaBacking::DmaBuf(m) = &vma.backing {
                note(m.dmabuf(), false);
            }
        }
        drop(st);
        out
    }
}
