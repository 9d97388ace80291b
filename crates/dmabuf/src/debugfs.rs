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
    /// Unsignaled fences, with their usage, driver and timeline names and seqno.
    pub fences: Vec<(DmaResvUsage, String, String, u64)>,
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

    /// The text of `bufinfo` (`dma_buf_debug_show`): one line per buffer (size, flags, count,
    /// exporter, ino, name), its unsignaled fences, its attached devices, and the totals.
    pub fn bufinfo(&self) -> String {
        let infos = self.infos();
        let mut s = String::from("\nDma-buf Objects:\n");
        let _ = writeln!(
            s,
            "{:<8}\t{:<8}\t{:<8}\texp_name\t{:<8}\tname",
            "size", "flags", "count", "ino"
        );
        let mut total = 0u64;
        for b in &infos {
            // The listing's own reference is not counted.
            let _ = writeln!(
                s,
                "{:08}\t{:08x}\t{:08}\t{}\t{:08}\t{}",
                b.size,
                b.flags,
                b.count.saturating_sub(1),
                b.exp_name,
                b.ino,
                b.name.as_deref().unwrap_or("<none>")
            );
            for (usage, driver, timeline, seqno) in &b.fences {
                let _ = writeln!(
                    s,
                    "\t{} fence: {driver} {timeline} seq {seqno} unsignalled",
                    usage_name(*usage)
                );
            }
            let _ = writeln!(s, "\tFences: {}", b.fences.len());
            s.push_str("\tAttached Devices:\n");
            for a in &b.attachments {
                let _ = writeln!(
                    s,
                    "\t{}{}",
                    a.device,
                    if a.dynamic { " (dynamic)" } else { "" }
                );
            }
            let _ = writeln!(s, "Total {} devices attached\n", b.attachments.len());
            total += b.size;
        }
        let _ = writeln!(s, "\nTotal {} objects, {} bytes", infos.len(), total);
        s
    }
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
        fences: b
            .resv()
            .iter_unlocked(DmaResvUsage::Bookkeep)
            .restartable_collect(|f| {
                (
                    f.usage,
                    f.fence.driver_name(),
                    f.fence.timeline_name(),
                    f.fence.seqno(),
                )
            }),
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
