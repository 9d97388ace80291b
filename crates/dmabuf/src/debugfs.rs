//! Introspection: the list of live buffers and its debugfs view (`/sys/kernel/debug/dma_buf/bufinfo`).
//!
//! C side: `drivers/dma-buf/dma-buf.c` (`db_list`, `dma_buf_debug_show`),
//! `drivers/dma-buf/dma-resv.c` (`dma_resv_describe`).
//!
//! # The concept
//! Linux keeps every dma-buf on one global list for debugfs. Here a [`BufRegistry`] is that list
//! for one machine (the `Kernel` of a simulated system embeds one; there is no global state):
//! [`DmaBuf::export_registered`] lists a buffer, its release unlists it. The registry holds weak
//! references, so listing never keeps a buffer alive.
//!
//! # Rules
//! 1. A registered buffer is listed from export until its release, exactly once.
//! 2. The registry's lock is a leaf lock; the listing takes buffer references (the `count` column
//!    counts them as the kernel counts procfs's), never the resv lock.

use crate::attach::AttachmentInfo;
use crate::buf::{BufInner, DmaBuf, ExportInfo};
use crate::error::DmaBufError;
use dma::DmaApi;
use fence::DmaResvUsage;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Weak};

/// The live buffers of one machine (`db_list`).
#[derive(Default)]
pub struct BufRegistry {
    bufs: Mutex<BTreeMap<u64, Weak<BufInner>>>,
    stats: Mutex<RegistryStats>,
}

/// Counters of a [`BufRegistry`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// Buffers exported into the registry.
    pub exported: u64,
    /// Buffers released.
    pub released: u64,
    /// Buffers released while still vmapped (a kernel BUG; a leaked [`VMap`](crate::VMap)).
    pub released_while_vmapped: u64,
}

/// One buffer in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufInfo {
    /// [`DmaBuf::ino`].
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// File flags.
    pub flags: u32,
    /// References (the file count).
    pub count: usize,
    /// Exporter name.
    pub exp_name: String,
    /// User-set name.
    pub name: Option<String>,
    /// Attached devices.
    pub attachments: Vec<AttachmentInfo>,
    /// The fences of usage up to READ (what `dma_resv_describe` lists), signaled ones included:
    /// usage, driver and timeline names, seqno, whether it has signaled.
    pub fences: Vec<(DmaResvUsage, String, String, u64, bool)>,
}

impl BufRegistry {
    /// An empty registry.
    pub fn new() -> Arc<BufRegistry> {
        Arc::new(BufRegistry::default())
    }

    /// [`DmaBuf::export_registered`] into this registry.
    pub fn export(
        self: &Arc<Self>,
        dma: &Arc<DmaApi>,
        info: ExportInfo,
    ) -> Result<DmaBuf, DmaBufError> {
        DmaBuf::export_registered(dma, info, self)
    }

    pub(crate) fn register(&self, buf: &DmaBuf) {
        self.bufs.lock().insert(buf.ino(), Arc::downgrade(&buf.0));
        self.stats.lock().exported += 1;
    }

    pub(crate) fn unregister(&self, ino: u64, leaked_vmaps: u32) {
        self.bufs.lock().remove(&ino);
        let mut s = self.stats.lock();
        s.released += 1;
        if leaked_vmaps > 0 {
            s.released_while_vmapped += 1;
        }
    }

    /// Live buffers, by ino.
    pub fn live(&self) -> Vec<DmaBuf> {
        self.bufs
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .map(DmaBuf)
            .collect()
    }

    /// The number of live buffers.
    pub fn len(&self) -> usize {
        self.bufs.lock().len()
    }

    /// Whether no buffer is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters.
    pub fn stats(&self) -> RegistryStats {
        self.stats.lock().clone()
    }

    /// A structured listing of every live buffer.
    pub fn infos(&self) -> Vec<BufInfo> {
        self.live().iter().map(buf_info).collect()
    }

    /// The text of `bufinfo` (`dma_buf_debug_show`), each buffer's count being its
    /// [`DmaBuf::ref_count`]; see [`bufinfo_with`](Self::bufinfo_with).
    pub fn bufinfo(&self) -> String {
        self.bufinfo_with(|b| b.ref_count().saturating_sub(1))
    }

    /// The text of `bufinfo` as Linux 6.12 prints it (found in qemu), with `count(buf)` as the
    /// count column (`file_count(dmabuf->file)`: who holds the buffer's file, which only the
    /// layer owning files knows):
    ///
    /// ```text
    ///
    /// Dma-buf Objects:
    /// size    \tflags   \tmode    \tcount   \texp_name\tino     \tname
    /// 00004096\t00000002\t00080007\t00000001\tsystem\t00000005\t<none>
    /// \twrite fence:vgem unbound seq 1 unsignalled
    /// \tAttached Devices:
    /// \tvgem
    /// Total 1 devices attached
    ///
    ///
    /// Total 1 objects, 4096 bytes
    /// ```
    ///
    /// Buffers newest first (`db_list` is added to at the head); `flags` is the file's
    /// `f_flags`, `mode` its `f_mode` (`FMODE_OPENED | FMODE_LSEEK`, plus `FMODE_READ`/`WRITE`
    /// by access mode); the name column is `<none>` until a name is set (then the name, even
    /// empty); fences of usage up to READ, signalled or not, in the reservation object's order.
    pub fn bufinfo_with(&self, count: impl Fn(&DmaBuf) -> usize) -> String {
        let live = self.live();
        let mut s = String::from("\nDma-buf Objects:\n");
        s.push_str("size    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n");
        let mut total = 0u64;
        for buf in live.iter().rev() {
            let b = buf_info(buf);
            let _ = writeln!(
                s,
                "{:08}\t{:08x}\t{:08x}\t{:08}\t{}\t{:08}\t{}",
                b.size,
                b.flags,
                f_mode(b.flags),
                count(buf),
                b.exp_name,
                buf.ino(),
                b.name.as_deref().unwrap_or("<none>")
            );
            for (usage, driver, timeline, seqno, signaled) in &b.fences {
                let _ = writeln!(
                    s,
                    "\t{} fence:{driver} {timeline} seq {seqno} {}signalled",
                    usage_name(*usage),
                    if *signaled { "" } else { "un" }
                );
            }
            s.push_str("\tAttached Devices:\n");
            for a in &b.attachments {
                let _ = writeln!(s, "\t{}", a.device);
            }
            let _ = writeln!(s, "Total {} devices attached\n", b.attachments.len());
            total += b.size;
        }
        let _ = writeln!(s, "\nTotal {} objects, {} bytes", live.len(), total);
        s
    }
}

/// `FMODE_OPENED | FMODE_LSEEK` and the access mode's `FMODE_READ`/`FMODE_WRITE`.
fn f_mode(flags: u32) -> u32 {
    const FMODE_READ: u32 = 0x1;
    const FMODE_WRITE: u32 = 0x2;
    const FMODE_LSEEK: u32 = 0x4;
    const FMODE_OPENED: u32 = 0x80000;
    let acc = (flags + 1) & uapi::ioctl::O_ACCMODE;
    FMODE_OPENED
        | FMODE_LSEEK
        | if acc & 1 != 0 { FMODE_READ } else { 0 }
        | if acc & 2 != 0 { FMODE_WRITE } else { 0 }
}

fn usage_name(u: DmaResvUsage) -> &'static str {
    match u {
        DmaResvUsage::Kernel => "kernel",
        DmaResvUsage::Write => "write",
        DmaResvUsage::Read => "read",
        DmaResvUsage::Bookkeep => "bookkeep",
    }
}

/// The listing entry of one buffer.
pub fn buf_info(b: &DmaBuf) -> BufInfo {
    BufInfo {
        ino: b.ino(),
        size: b.size(),
        flags: b.file_flags(),
        count: b.ref_count(),
        exp_name: b.exp_name().to_string(),
        name: b.name(),
        attachments: b.attachment_infos(),
        fences: match b.resv().lock(None) {
            Ok(g) => g
                .iter(DmaResvUsage::Read)
                .map(|f| {
                    (
                        f.usage,
                        f.fence.driver_name(),
                        f.fence.timeline_name(),
                        f.fence.seqno(),
                        f.fence.is_signaled(),
                    )
                })
                .collect(),
            // The lock is only refused to a wounded acquire context, which this is not.
            Err(_) => Vec::new(),
        },
    }
}

impl std::fmt::Debug for BufRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufRegistry")
            .field("live", &self.len())
            .field("stats", &self.stats())
            .finish()
    }
}
