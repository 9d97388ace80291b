//! Helpers shared by the `core_*` behaviour tests (mock ops, fences, a recording importer).

use dmabuf::testing::{mock_dma, MockExporter};
use dmabuf::{Attachment, DmaBuf, ImporterOps, OpsFeatures};
use fence::{context_alloc, DmaFence, DmaResvUsage, ResvGuard, SimpleFenceOps};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use dma::{DmaApi, DmaDirection};

/// A machine, a mock exporter with `features` (cached mappings if `cached`), and a buffer.
pub fn setup(
    features: OpsFeatures,
    cached: bool,
    size: u64,
) -> (Arc<DmaApi>, Arc<MockExporter>, DmaBuf) {
    let dma = mock_dma();
    let ops = MockExporter::with(features, cached);
    let buf = ops.export(&dma, size).unwrap();
    (dma, ops, buf)
}

/// A static exporter with mmap and vmap, uncached, 4 pages.
pub fn setup_default() -> (Arc<DmaApi>, Arc<MockExporter>, DmaBuf) {
    setup(OpsFeatures::MMAP | OpsFeatures::VMAP, false, 4 * 4096)
}

/// Every optional callback.
pub fn all_features() -> OpsFeatures {
    OpsFeatures::PIN | OpsFeatures::UNPIN | OpsFeatures::MMAP | OpsFeatures::VMAP
}

/// A pending fence on a new context.
pub fn fence(name: &str) -> DmaFence {
    SimpleFenceOps::create("test", name, context_alloc(1).unwrap(), 1)
}

/// Adds `f` to `buf`'s reservation object with `usage`.
pub fn add_fence(buf: &DmaBuf, f: &DmaFence, usage: DmaResvUsage) {
    let mut g = buf.resv().lock(None).unwrap();
    g.reserve_fences(1).unwrap();
    g.add_fence(f, usage).unwrap();
}

/// Reads a mock counter.
pub fn count(c: &AtomicU64) -> u64 {
    c.load(Ordering::SeqCst)
}

/// A dynamic importer that counts `move_notify` calls and may allow peer2peer.
#[derive(Default)]
pub struct Recorder {
    /// `move_notify` calls.
    pub notified: AtomicU64,
    /// What `allow_peer2peer` answers.
    pub p2p: bool,
}

impl ImporterOps for Recorder {
    fn move_notify(&self, _att: &Attachment, _resv: &mut ResvGuard<'_>) {
        self.notified.fetch_add(1, Ordering::SeqCst);
    }
    fn allow_peer2peer(&self) -> bool {
        self.p2p
    }
}
