//! The CMA heap: physically contiguous buffers from a CMA region.
//!
//! C side: `drivers/dma-buf/heaps/cma_heap.c` (`cma_heap_allocate`, `cma_heap_mmap`), and
//! `mm/cma.c` underneath.
//!
//! # Rules
//! 1. One heap per CMA region, named after the region.
//! 2. A buffer of `n` pages is one `cma_alloc(region, n, align)` with `align` the order of the
//!    size, capped at 8 (`CONFIG_CMA_ALIGNMENT`); borrowed movable pages in the range are
//!    migrated out by the allocator. If no range can be emptied, `ENOMEM` (Linux's
//!    `cma_alloc` returns NULL whether the range was busy or the region full).
//! 3. The range is zero-filled before export (behaviour 94).
//! 4. `mmap` without `MAP_SHARED` is `EINVAL`; access past the buffer is `SIGBUS`.
//! 5. Release gives the range back with `cma_release`.

use super::buffer::{CpuSync, HeapBuffer, Storage};
use super::system::zero_fill;
use super::DmaHeap;
use dma::DmaApi;
use dmabuf::buf::{DmaBuf, ExportInfo};
use dmabuf::debugfs::BufRegistry;
use dmabuf::error::DmaBufError;
use soc::{PhysAddr, PhysChunk, PAGE_SIZE};
use std::sync::Arc;

/// `CONFIG_CMA_ALIGNMENT`: the largest alignment order a CMA heap asks for.
pub const CMA_ALIGNMENT: u32 = 8;

/// A CMA heap (rule 1).
pub struct CmaHeap {
    dma: Arc<DmaApi>,
    region: String,
    registry: Option<Arc<BufRegistry>>,
}

impl CmaHeap {
    /// The heap of the CMA region `region`; buffers are listed in `registry` if given.
    pub fn new(dma: &Arc<DmaApi>, region: &str, registry: Option<Arc<BufRegistry>>) -> CmaHeap {
        CmaHeap {
            dma: dma.clone(),
            region: region.to_string(),
            registry,
        }
    }

    /// Allocates and clears `len` bytes (rules 2-3); returns the first page.
    pub fn alloc_range(&self, len: u64) -> Result<PhysAddr, DmaBufError> {
        let count = len.div_ceil(PAGE_SIZE);
        let align = (count.next_power_of_two().trailing_zeros()).min(CMA_ALIGNMENT);
        let soc = self.dma.soc();
        let addr = soc
            .pages()
            .cma_alloc(&self.region, count, align)
            .map_err(|e| {
                DmaBufError::NoMemory(format!(
                    "CMA heap {}: {count} contiguous pages: {e}",
                    self.region
                ))
            })?;
        if let Err(e) = zero_fill(soc, addr, count * PAGE_SIZE) {
            let _ = soc.pages().cma_release(&self.region, addr, count);
            return Err(e);
        }
        Ok(addr)
    }
}

impl DmaHeap for CmaHeap {
    fn name(&self) -> &str {
        &self.region
    }

    fn allocate(&self, len: u64, fd_flags: u32, _heap_flags: u64) -> Result<DmaBuf, DmaBufError> {
        let addr = self.alloc_range(len)?;
        let storage = Storage::Chunks(vec![PhysChunk::Cma {
            region: self.region.clone(),
            addr,
            count: len.div_ceil(PAGE_SIZE),
        }]);
        let ops = HeapBuffer::new(&self.dma, storage, CpuSync::Attachments, true);
        let mut info = ExportInfo::new(self.name(), len, ops);
        info.flags = fd_flags;
        super::export(&self.dma, info, self.registry.as_ref())
    }
}
