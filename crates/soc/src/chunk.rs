//! Physical chunks: one piece of memory as one of the machine's three allocators handed it out.
//!
//! C side: what `alloc_pages()` (the buddy allocator), `cma_alloc()` and `gen_pool_alloc()`
//! return, each given back with its own call (`__free_pages()`, `cma_release()`,
//! `gen_pool_free()`).
//!
//! # The concept
//! An exporter that allocates memory itself — a dma-heap, the constraint exporter — keeps, for
//! every buffer, the list of pieces it got and from where, because the way back differs per
//! allocator: a buddy block is freed by its order, a CMA range by its region and page count, a
//! carveout or device-local range by its pool and size. [`PhysChunk`] is that record, shared
//! by every exporter so that the storage a buffer holds is written down once, and
//! [`Soc::free_chunk`] gives any chunk back the right way.
//!
//! # Lifetime
//! A chunk is owned: it is not `Clone`, and [`Soc::free_chunk`] consumes it, so one chunk is
//! freed at most once. Every free first tells the machine's observers
//! ([`SocObserver::pages_freed`](crate::SocObserver::pages_freed)), so a checker sees it before
//! the memory can be handed out again. Dropping a chunk without freeing it leaks the memory, as
//! forgetting the free does in a driver.

use crate::addr::{PhysAddr, PAGE_SIZE};
use crate::error::SocError;
use crate::machine::Soc;
use crate::page_alloc::Page;
use crate::phys::BankId;

/// One piece of physical memory, and the allocator it goes back to.
#[derive(Debug, PartialEq, Eq)]
pub enum PhysChunk {
    /// A buddy-allocator block (system banks).
    Pages(Page),
    /// A range `cma_alloc` handed out from a CMA region.
    Cma {
        /// The CMA region's name.
        region: String,
        /// First page.
        addr: PhysAddr,
        /// Pages.
        count: u64,
    },
    /// A range of a carveout or device-local bank's pool.
    Pool {
        /// The bank.
        bank: BankId,
        /// First byte.
        addr: PhysAddr,
        /// Bytes.
        size: u64,
    },
}

impl PhysChunk {
    /// The physical range the chunk covers: first byte and length.
    pub fn run(&self) -> (PhysAddr, u64) {
        match self {
            PhysChunk::Pages(p) => (p.addr, p.size()),
            PhysChunk::Cma { addr, count, .. } => (*addr, count.saturating_mul(PAGE_SIZE)),
            PhysChunk::Pool { addr, size, .. } => (*addr, *size),
        }
    }

    /// True for memory without `struct page`s (a carveout or device-local pool): a mapping of
    /// it is a resource mapping (`dma_map_resource`), and the CPU sees it as I/O memory.
    pub fn is_iomem(&self) -> bool {
        matches!(self, PhysChunk::Pool { .. })
    }
}

impl Soc {
    /// Gives `chunk` back to the allocator it came from, first telling the observers
    /// ([`SocObserver::pages_freed`](crate::SocObserver::pages_freed)).
    ///
    /// Errors are the allocator's: a double or foreign free changes nothing and is refused
    /// ([`SocError`]); [`SocError::UnknownBank`] for a pool chunk of a bank without a pool.
    pub fn free_chunk(&self, chunk: PhysChunk) -> Result<(), SocError> {
        match chunk {
            PhysChunk::Pages(p) => self.free_pages(p),
            PhysChunk::Cma {
                region,
                addr,
                count,
            } => {
                self.notify_freed(addr, count.saturating_mul(PAGE_SIZE));
                self.pages().cma_release(&region, addr, count)
            }
            PhysChunk::Pool { bank, addr, size } => self.free_pool(bank, addr, size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AllocRequest, SocDesc};

    #[test]
    fn free_chunk_returns_each_kind_to_its_allocator_once() {
        let soc = Soc::new(SocDesc::default_soc()).unwrap();
        let page = soc.pages().alloc_pages(&AllocRequest::new(2)).unwrap();
        let chunk = PhysChunk::Pages(page);
        assert_eq!(chunk.run(), (page.addr, 4 * PAGE_SIZE));
        soc.free_chunk(chunk).unwrap();
        assert!(
            soc.free_chunk(PhysChunk::Pages(page)).is_err(),
            "double free"
        );

        let region = soc.pages().cma_regions()[0].name.clone();
        let used = |soc: &Soc| soc.pages().cma_regions()[0].used;
        let addr = soc.pages().cma_alloc(&region, 8, 0).unwrap();
        assert_eq!(used(&soc), 8 * PAGE_SIZE);
        let cma = PhysChunk::Cma {
            region: region.clone(),
            addr,
            count: 8,
        };
        assert!(!cma.is_iomem());
        soc.free_chunk(cma).unwrap();
        assert_eq!(used(&soc), 0);
        let again = PhysChunk::Cma {
            region,
            addr,
            count: 8,
        };
        assert!(soc.free_chunk(again).is_err(), "double release");
    }
}
