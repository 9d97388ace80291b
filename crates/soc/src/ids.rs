//! Per-machine id counters: inode numbers, attachment ids, fence contexts.
//!
//! C side: `dmabuf_inode` (`drivers/dma-buf/dma-buf.c`: `dma_buf_getfile` numbers every
//! dma-buf's file from its own counter, shared by all exporters), `get_next_ino()` (`fs/inode.c`:
//! the inode number of other pseudo files, a memfd's shmem inode), `dma_fence_context_alloc()` (`drivers/dma-buf/dma-fence.c`), and the attachment
//! bookkeeping of `drivers/dma-buf/dma-buf.c`.
//!
//! # The concept
//!
//! In the kernel these counters are global, which on a real machine means *per machine*. Here a
//! process can hold several simulated machines, so the counters live in the machine
//! ([`Soc::ids`](crate::Soc::ids)): two machines in one test number their buffers
//! independently, and a fresh machine's first buffer is inode 1, as on a booted kernel's first
//! `get_next_ino()`.
//!
//! # Rules
//!
//! 1. Every counter starts at 1 (0 stays free to mean "none", as fence context 0 is the stub's).
//! 2. Numbers are unique within their machine and never reused; they say nothing about order
//!    across threads (Relaxed counters, like the kernel's).
//! 3. Exhaustion is refused, never wrapped: [`MachineIds::fence_context_alloc`] answers `None`.
//!
//! ```
//! use soc::{Soc, SocDesc};
//! let a = Soc::new(SocDesc::default_soc()).unwrap();
//! let b = Soc::new(SocDesc::default_soc()).unwrap();
//! assert_eq!(a.ids().next_ino(), 1);
//! assert_eq!(a.ids().next_ino(), 2);
//! assert_eq!(b.ids().next_ino(), 1); // the other machine counts on its own
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

/// The id counters of one machine.
#[derive(Debug)]
pub struct MachineIds {
    ino: AtomicU64,
    dmabuf_ino: AtomicU64,
    attachment: AtomicU64,
    fence_context: AtomicU64,
}

impl MachineIds {
    /// Fresh counters, each at 1 (rule 1).
    pub fn new() -> MachineIds {
        MachineIds {
            ino: AtomicU64::new(1),
            dmabuf_ino: AtomicU64::new(1),
            attachment: AtomicU64::new(1),
            fence_context: AtomicU64::new(1),
        }
    }

    /// The next inode number (`get_next_ino`) of a pseudo file that is not a dma-buf (a memfd).
    pub fn next_ino(&self) -> u64 {
        // Relaxed: only uniqueness matters (rule 2).
        self.ino.fetch_add(1, Ordering::Relaxed)
    }

    /// The next dma-buf inode number (`dmabuf_inode` in `dma_buf_getfile`): the dma-buf
    /// filesystem's own counter, so a machine's first dma-buf is inode 1 whatever else it created.
    pub fn next_dmabuf_ino(&self) -> u64 {
        self.dmabuf_ino.fetch_add(1, Ordering::Relaxed)
    }

    /// The next attachment id.
    pub fn next_attachment_id(&self) -> u64 {
        self.attachment.fetch_add(1, Ordering::Relaxed)
    }

    /// Allocates `num` consecutive fence contexts and returns the first
    /// (`dma_fence_context_alloc`); `None` for `num == 0` or when the space is exhausted.
    pub fn fence_context_alloc(&self, num: u64) -> Option<u64> {
        if num == 0 {
            return None;
        }
        self.fence_context
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(num))
            .ok()
    }
}

impl Default for MachineIds {
    fn default() -> Self {
        MachineIds::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_contexts_come_in_blocks_and_zero_is_refused() {
        let ids = MachineIds::new();
        assert_eq!(ids.fence_context_alloc(3), Some(1));
        assert_eq!(ids.fence_context_alloc(1), Some(4));
        assert_eq!(ids.fence_context_alloc(0), None);
        assert_eq!(ids.fence_context_alloc(u64::MAX), None);
        assert_eq!(ids.next_attachment_id(), 1);
    }
}
