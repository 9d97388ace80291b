//! The carveout heap: memory without struct pages (seed 002).
//!
//! C side: no mainline heap (Android's and vendors' carveout heaps; `drivers/dma-buf/heaps/`
//! in older trees), built on `lib/genalloc.c` and `dma_map_resource`.
//!
//! A carveout bank is reserved (`no-map`) memory the page allocator never sees: there is no
//! `struct page` to hand an importer, only physical ranges. Seed 002's point is that the
//! exporter must still give each importer an sg list mapped for its device.
//!
//! # Rules
//! 1. A buffer is one range of the bank's [`GenPool`](soc::GenPool), page aligned,
//!    zero-filled; an exhausted pool is `ENOMEM`.
//! 2. Importers get DMA addresses of [`SgBacking::Resource`](dma::SgBacking::Resource) runs,
//!    mapped like `dma_map_resource` (no cache maintenance), never pages.
//! 3. A device that cannot reach the range (a direct-mapped device whose DMA mask ends below
//!    it) fails the map cleanly: `EIO`, with the device named, and nothing stays mapped.
//! 4. CPU mappings are PFN mappings, uncached (write-combine): no `begin/end_cpu_access` cache
//!    maintenance is needed, and none is done.
//! 5. Release gives the range back to the pool.

use super::buffer::{CpuSync, HeapBuffer, Storage};
use super::system::zero_fill;
use super::DmaHeap;
use dma::DmaApi;
use dmabuf::buf::{DmaBuf, ExportInfo};
use dmabuf::debugfs::BufRegistry;
use dmabuf::error::DmaBufError;
use soc::{BankId, PhysChunk, PAGE_SIZE};
use std::sync::Arc;

/// A carveout heap over one bank.
pub struct CarveoutHeap {
    dma: Arc<DmaApi>,
    bank: BankId,
    name: String,
    registry: Option<Arc<BufRegistry>>,
}

impl CarveoutHeap {
    /// The heap `"carveout-<bank name>"` over the carveout bank `bank`.
    pub fn new(
        dma: &Arc<DmaApi>,
        bank: BankId,
        registry: Option<Arc<BufRegistry>>,
    ) -> CarveoutHeap {
        let bank_name = dma
            .soc()
            .mem()
            .bank(bank)
            .map(|b| b.name().to_string())
            .unwrap_or_default();
        CarveoutHeap {
            dma: dma.clone(),
            bank,
            name: format!("carveout-{bank_name}"),
            registry,
        }
    }

    /// The bank served.
    pub fn bank(&self) -> BankId {
        self.bank
    }
}

impl DmaHeap for CarveoutHeap {
    fn name(&self) -> &str {
        &self.name
    }

    fn allocate(&self, len: u64, fd_flags: u32, _heap_flags: u64) -> Result<DmaBuf, DmaBufError> {
        let soc = self.dma.soc();
        let pool = soc
            .pool(self.bank)
            .ok_or_else(|| DmaBufError::NoMemory(format!("{}: the bank has no pool", self.name)))?;
        let addr = pool
            .alloc(len, PAGE_SIZE)
            .map_err(|e| DmaBufError::NoMemory(format!("{}: {len:#x} bytes: {e}", self.name)))?;
        if let Err(e) = zero_fill(soc, addr, len) {
            let _ = soc.free_pool(self.bank, addr, len);
            return Err(e);
        }
        let storage = Storage::Chunks(vec![PhysChunk::Pool {
            bank: self.bank,
            addr,
            size: len,
        }]);
        let ops = HeapBuffer::new(&self.dma, storage, CpuSync::Attachments, false);
        let mut info = ExportInfo::new(self.name(), len, ops);
        info.flags = fd_flags;
        super::export(&self.dma, info, self.registry.as_ref())
    }
}
