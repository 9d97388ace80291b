//! The system heap: scattered pages from the buddy allocator, largest blocks first.
//!
//! C side: `drivers/dma-buf/heaps/system_heap.c` (`system_heap_allocate`,
//! `alloc_largest_available`, `orders[] = {8, 4, 0}`).
//!
//! # Allocation, as Linux does it
//! 1. While bytes remain, take the largest order of [`ORDERS`] (1 MiB, 64 KiB, 4 KiB blocks)
//!    that is not larger than what remains and not larger than the last order that succeeded;
//!    a failed large order falls through to the next smaller one (Linux's `HIGH_ORDER_GFP`:
//!    no retry, no reclaim).
//! 2. If even an order-0 page fails, every block taken so far is freed and the allocation is
//!    `ENOMEM`: nothing leaks.
//! 3. Every block is zero-filled before the buffer is exported (behaviour 93): stale cache lines
//!    of a previous owner are written back and dropped first, so neither memory nor cache holds
//!    old data.
//! 4. The blocks are unmovable (pinned for DMA), so they never come from a CMA region.

use super::buffer::{CpuSync, HeapBuffer, Storage};
use super::DmaHeap;
use dma::DmaApi;
use dmabuf::buf::{DmaBuf, ExportInfo};
use dmabuf::debugfs::BufRegistry;
use dmabuf::error::DmaBufError;
use soc::{AllocRequest, Page, PhysChunk, Soc, PAGE_SIZE};
use std::sync::Arc;

/// The block orders tried, largest first (`orders[]`).
pub const ORDERS: [u32; 3] = [8, 4, 0];

/// Clears a freshly allocated range (rule 3).
pub(crate) fn zero_fill(soc: &Soc, addr: soc::PhysAddr, len: u64) -> Result<(), DmaBufError> {
    soc.cpu().flush(addr, len)?;
    soc.mem().fill(addr, len, 0)?;
    Ok(())
}

/// The `"system"` heap.
pub struct SystemHeap {
    dma: Arc<DmaApi>,
    registry: Option<Arc<BufRegistry>>,
}

impl SystemHeap {
    /// The system heap of `dma`'s machine; buffers are listed in `registry` if given.
    pub fn new(dma: &Arc<DmaApi>, registry: Option<Arc<BufRegistry>>) -> SystemHeap {
        SystemHeap {
            dma: dma.clone(),
            registry,
        }
    }

    /// Allocates the blocks of a `len`-byte buffer (rules 1-2), zero-filled.
    pub fn alloc_pages(&self, len: u64) -> Result<Vec<Page>, DmaBufError> {
        let soc = self.dma.soc();
        let mut pages: Vec<Page> = Vec::new();
        let free_all = |pages: Vec<Page>| {
            for p in pages {
                let _ = soc.free_pages(p);
            }
        };
        let mut remaining = len;
        let mut max_order = ORDERS[0];
        while remaining > 0 {
            let mut got = None;
            for &order in &ORDERS {
                if order > max_order || remaining < PAGE_SIZE << order {
                    continue;
                }
                if let Ok(p) = soc.pages().alloc_pages(&AllocRequest::new(order)) {
                    got = Some(p);
                    break;
                }
            }
            let Some(page) = got else {
                free_all(pages);
                return Err(DmaBufError::NoMemory(format!(
                    "system heap: no page left for {} of {} bytes",
                    remaining, len
                )));
            };
            max_order = page.order;
            remaining -= page.size();
            pages.push(page);
        }
        for p in &pages {
            if let Err(e) = zero_fill(soc, p.addr, p.size()) {
                free_all(pages);
                return Err(e);
            }
        }
        Ok(pages)
    }
}

impl DmaHeap for SystemHeap {
    fn name(&self) -> &str {
        "system"
    }

    fn allocate(&self, len: u64, fd_flags: u32, _heap_flags: u64) -> Result<DmaBuf, DmaBufError> {
        let pages = self.alloc_pages(len)?;
        let ops = HeapBuffer::new(
            &self.dma,
            Storage::Chunks(pages.into_iter().map(PhysChunk::Pages).collect()),
            CpuSync::Attachments,
            false,
        );
        let mut info = ExportInfo::new(self.name(), len, ops);
        info.flags = fd_flags;
        // On an export error `info.ops` is dropped without release; free through the ops.
        super::export(&self.dma, info, self.registry.as_ref())
    }
}
