//! A general-purpose range allocator for memory without `struct page`s.
//!
//! C side: `lib/genalloc.c` (`gen_pool_create`, `gen_pool_add`, `gen_pool_alloc_algo` with
//! `gen_pool_first_fit_align`, `gen_pool_free`, `gen_pool_avail`).
//!
//! Carveouts (`no-map` reserved memory) and device-local memory (VRAM) are not handed to the buddy
//! allocator: the kernel has no `struct page` for them. Their drivers manage them with a
//! `gen_pool`: a list of address ranges and a bitmap of used granules, searched **first fit**. A
//! [`GenPool`] does the same over one bank, at page granularity: sizes are rounded up to whole
//! pages, alignments to at least a page. [`GenPool::alloc_below`] adds an upper limit on the last
//! byte (a DMA mask), which `genalloc` expresses with a custom algorithm.
//!
//! Unlike `gen_pool_free`, which trusts its caller (and `BUG`s on some mistakes), [`GenPool::free`]
//! checks that `(addr, size)` is exactly one live allocation and refuses anything else, changing
//! nothing.
//!
//! # Locking
//! One mutex protects the free extents and the allocation record; it is a leaf lock (nothing is
//! called while holding it).
//!
//! # Invariants
//! - Free extents are page aligned, non-empty, disjoint, and never adjacent (adjacent extents are
//!   merged on free).
//! - Free extents and live allocations are disjoint and together cover the bank exactly.
//!
//! ```
//! use soc::{BankDesc, BankKind, ByteSize, GenPool, PhysMem};
//! let mem = PhysMem::new(&[BankDesc {
//!     name: "carveout0".into(), kind: BankKind::Carveout, base: ByteSize(0x8000_0000), size: ByteSize(16 << 20),
//! }]).unwrap();
//! let pool = GenPool::new(&mem.banks()[0]);
//! let a = pool.alloc(5000, 1 << 20).unwrap();
//! assert!(a.is_aligned(1 << 20));
//! assert_eq!(pool.avail(), (16 << 20) - 8192);
//! pool.free(a, 5000).unwrap();
//! assert!(pool.free(a, 5000).is_err(), "double free");
//! ```

use crate::addr::{align_up, PhysAddr, PAGE_SIZE};
use crate::error::SocError;
use crate::phys::{Bank, BankId};
use parking_lot::Mutex;
use std::collections::BTreeMap;

/// A first-fit range allocator over one bank (see the module documentation).
#[derive(Debug)]
pub struct GenPool {
    bank: BankId,
    name: String,
    base: u64,
    size: u64,
    /// Protects the free extents and the live allocations.
    state: Mutex<PoolState>,
}

#[derive(Debug)]
struct PoolState {
    /// Free extents: start -> length in bytes.
    free: BTreeMap<u64, u64>,
    /// Live allocations: start -> length in bytes (rounded to pages).
    allocated: BTreeMap<u64, u64>,
    avail: u64,
}

impl GenPool {
    /// A pool managing the whole of `bank`, all free (`gen_pool_create` + `gen_pool_add`).
    pub fn new(bank: &Bank) -> GenPool {
        GenPool {
            bank: bank.id(),
            name: bank.name().to_string(),
            base: bank.base().0,
            size: bank.size(),
            state: Mutex::new(PoolState {
                free: BTreeMap::from([(bank.base().0, bank.size())]),
                allocated: BTreeMap::new(),
                avail: bank.size(),
            }),
        }
    }

    /// The bank the pool manages.
    pub fn bank(&self) -> BankId {
        self.bank
    }

    /// Size of the pool in bytes (`gen_pool_size`).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Free bytes (`gen_pool_avail`).
    pub fn avail(&self) -> u64 {
        self.state.lock().avail
    }

    /// `gen_pool_alloc` with first-fit alignment: the lowest free range of `size` bytes (rounded up
    /// to pages) starting at a multiple of `align` (a power of two; below a page means a page).
    pub fn alloc(&self, size: u64, align: u64) -> Result<PhysAddr, SocError> {
        self.alloc_below(size, align, u64::MAX)
    }

    /// Like [`GenPool::alloc`], but no byte of the range may lie above `limit` (inclusive).
    ///
    /// Errors: zero size, an alignment that is not a power of two (`EINVAL`); no free range fits
    /// ([`SocError::NoMemory`] naming the pool, size, alignment and limit).
    pub fn alloc_below(&self, size: u64, align: u64, limit: u64) -> Result<PhysAddr, SocError> {
        if size == 0 {
            return Err(SocError::ZeroSize("gen_pool_alloc size"));
        }
        if !align.is_power_of_two() {
            return Err(SocError::InvalidArgument(format!(
                "gen_pool_alloc alignment {align:#x} is not a power of two"
            )));
        }
        let no_memory = || {
            SocError::NoMemory(format!(
                "pool `{}`: no free range of {size:#x} bytes aligned to {align:#x} ending at or below {limit:#x}",
                self.name
            ))
        };
        let len = align_up(size, PAGE_SIZE).ok_or_else(no_memory)?;
        let align = align.max(PAGE_SIZE);
        let mut st = self.state.lock();
        let (ext_start, ext_len, start) = st
            .free
            .iter()
            .find_map(|(&s, &l)| {
                let start = align_up(s, align)?;
                let end = start.checked_add(len)?;
                (end <= s + l && end - 1 <= limit).then_some((s, l, start))
            })
            .ok_or_else(no_memory)?;
        st.free.remove(&ext_start);
        if start > ext_start {
            st.free.insert(ext_start, start - ext_start);
        }
        let (end, ext_end) = (start + len, ext_start + ext_len);
        if end < ext_end {
            st.free.insert(end, ext_end - end);
        }
        st.allocated.insert(start, len);
        st.avail -= len;
        Ok(PhysAddr(start))
    }

    /// `gen_pool_free`: gives back a range returned by `alloc`, with the size it was asked with
    /// (rounded to pages the same way). Anything else is [`SocError::NotAllocated`] and nothing
    /// changes.
    pub fn free(&self, addr: PhysAddr, size: u64) -> Result<(), SocError> {
        let refuse = || SocError::NotAllocated {
            what: "gen_pool_free",
            addr,
            len: size,
        };
        let len = align_up(size, PAGE_SIZE)
            .filter(|&l| l > 0)
            .ok_or_else(refuse)?;
        let mut st = self.state.lock();
        if st.allocated.get(&addr.0) != Some(&len) {
            return Err(refuse());
        }
        st.allocated.remove(&addr.0);
        st.avail += len;
        let (mut start, mut end) = (addr.0, addr.0 + len);
        if let Some((&ps, &pl)) = st.free.range(..start).next_back() {
            if ps + pl == start {
                st.free.remove(&ps);
                start = ps;
            }
        }
        if let Some(nl) = st.free.remove(&end) {
            end += nl;
        }
        st.free.insert(start, end - start);
        Ok(())
    }

    /// Whether `[addr, addr + len)` lies inside the pool's bank.
    pub fn contains(&self, addr: PhysAddr, len: u64) -> bool {
        addr.0 >= self.base
            && addr
                .0
                .checked_add(len)
                .is_some_and(|e| e <= self.base + self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desc::{BankDesc, BankKind, ByteSize};
    use crate::phys::PhysMem;

    #[test]
    fn free_merges_neighbours_back_into_one_extent() {
        let mem = PhysMem::new(&[BankDesc {
            name: "c".into(),
            kind: BankKind::Carveout,
            base: ByteSize(1 << 20),
            size: ByteSize(1 << 20),
        }])
        .unwrap();
        let pool = GenPool::new(&mem.banks()[0]);
        let a = pool.alloc(4096, 4096).unwrap();
        let b = pool.alloc(8192, 4096).unwrap();
        let c = pool.alloc(4096, 4096).unwrap();
        pool.free(b, 8192).unwrap();
        pool.free(a, 4096).unwrap();
        pool.free(c, 4096).unwrap();
        let st = pool.state.lock();
        assert_eq!(st.free.len(), 1);
        assert_eq!(st.avail, 1 << 20);
    }
}
