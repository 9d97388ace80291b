//! A process's memory, for USERPTR: `mmap(MAP_ANONYMOUS)`, `mmap(MAP_SHARED)` of a memfd,
//! loads and stores, and `pin_user_pages`.
//!
//! C side: `mm/mmap.c` (anonymous mappings), `mm/shmem.c` (shared memfd mappings), `mm/gup.c`
//! (`pin_user_pages`), and `mm/frame_vector.c`, which vb2's USERPTR path
//! (`vb2_create_framevec`) uses.
//!
//! The `dmabuf` crate's [`Process`](kernel::Process) maps only dma-bufs and memfds, so the
//! application memory a USERPTR buffer points at is modelled here. A [`UserMemory`] is one
//! address space: each mapping is either anonymous (a run of zeroed single pages of system RAM)
//! or a shared mapping of a memfd (its page cache, [`UserMemory::mmap_memfd`]: what an
//! application that also hands the memory to other devices as a udmabuf maps), with an
//! unmapped guard page after it, so a pointer past the end of a mapping faults (`EFAULT`).
//!
//! # Rules
//! 1. Loads and stores go through the CPU cache, as user memory is cacheable; a device that
//!    writes the pages is seen only after the DMA API's sync for the CPU.
//! 2. [`UserMemory::pin_user_pages`] takes a reference on the mapping's pages: they stay
//!    allocated while pinned, even if the application unmaps the range (as pinned pages do).
//! 3. A range that is not entirely inside one mapping cannot be pinned (`EFAULT`); address 0 is
//!    never mapped.
//! 4. Pinning a shared memfd range pins the memfd's pages (allocating holes, as a write fault
//!    does): they outlive a truncation or the last fd while pinned, and `F_SEAL_WRITE` is
//!    refused with `EBUSY` meanwhile (`memfd_wait_for_pins`).

use crate::Vb2Error;
use dma::DmaApi;
use kernel::memfd::{Memfd, MemfdMapping, PinnedPage};
use parking_lot::Mutex;
use soc::{AllocRequest, Page, PhysAddr, PAGE_SIZE};
use std::collections::BTreeMap;
use std::sync::Arc;
use uapi::Errno;

const USER_BASE: u64 = 0x5555_0000_0000;

struct AnonVma {
    dma: Arc<DmaApi>,
    len: u64,
    pages: Vec<Page>,
    /// A shared memfd mapping instead of anonymous pages (rule 4): the mapping and its file
    /// offset.
    shared: Option<(MemfdMapping, u64)>,
}

impl Drop for AnonVma {
    fn drop(&mut self) {
        for p in self.pages.drain(..) {
            let _ = self.dma.soc().free_pages(p);
        }
    }
}

/// One simulated process address space of anonymous mappings (module doc).
pub struct UserMemory {
    dma: Arc<DmaApi>,
    state: Mutex<(BTreeMap<u64, Arc<AnonVma>>, u64)>,
}

impl std::fmt::Debug for UserMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserMemory")
            .field("mappings", &self.state.lock().0.len())
            .finish()
    }
}

/// Pages pinned for a range `[addr, addr + len)` (`struct frame_vector`): keeps them allocated.
pub struct PinnedUserPages {
    /// The anonymous mapping whose pages are pinned (they stay allocated after an munmap).
    vma: Option<Arc<AnonVma>>,
    /// The memfd pages pinned for a shared mapping (rule 4).
    _shmem: Vec<PinnedPage>,
    /// Physical ranges covering exactly the pinned byte range, in order.
    ranges: Vec<(PhysAddr, u64)>,
}

impl std::fmt::Debug for PinnedUserPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedUserPages")
            .field("ranges", &self.ranges)
            .field("vma_len", &self.vma.as_ref().map(|v| v.len))
            .finish()
    }
}

impl PinnedUserPages {
    /// The physical ranges of the pinned bytes, in order.
    pub fn ranges(&self) -> &[(PhysAddr, u64)] {
        &self.ranges
    }
}

impl UserMemory {
    /// An empty address space on the machine of `dma`.
    pub fn new(dma: &Arc<DmaApi>) -> Arc<UserMemory> {
        Arc::new(UserMemory {
            dma: dma.clone(),
            state: Mutex::new((BTreeMap::new(), USER_BASE)),
        })
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)`: zeroed memory;
    /// returns its address (page aligned).
    ///
    /// Errors: `EINVAL` for length 0, `ENOMEM`.
    pub fn mmap_anon(&self, len: u64) -> Result<u64, Vb2Error> {
        if len == 0 {
            return Err(Vb2Error::new(Errno::EINVAL, "mmap of length 0"));
        }
        let npages = len.div_ceil(PAGE_SIZE);
        let soc = self.dma.soc();
        let mut vma = AnonVma {
            dma: self.dma.clone(),
            len,
            pages: Vec::with_capacity(npages as usize),
            shared: None,
        };
        for _ in 0..npages {
            // Dropping `vma` on error frees what was allocated.
            let p = soc.pages().alloc_pages(&AllocRequest::new(0))?;
            vma.pages.push(p);
            soc.cpu().invalidate(p.addr, PAGE_SIZE)?;
            soc.mem().fill(p.addr, PAGE_SIZE, 0)?;
        }
        Ok(self.insert(vma, npages))
    }

    /// Places `vma` of `npages` pages at the next free address, a guard page after it.
    fn insert(&self, vma: AnonVma, npages: u64) -> u64 {
        let mut st = self.state.lock();
        let addr = st.1;
        // One unmapped guard page after each mapping.
        st.1 += (npages + 1) * PAGE_SIZE;
        st.0.insert(addr, Arc::new(vma));
        addr
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, memfd, offset)`: the memfd's page
    /// cache in this address space (rule 4); returns its address.
    ///
    /// Errors: what [`Memfd::mmap`] answers (`EINVAL` for a zero length or an unaligned offset,
    /// `EPERM` under a write seal).
    pub fn mmap_memfd(&self, memfd: &Arc<Memfd>, offset: u64, len: u64) -> Result<u64, Vb2Error> {
        let mapping = memfd.mmap(offset, len, true)?;
        let vma = AnonVma {
            dma: self.dma.clone(),
            len,
            pages: Vec::new(),
            shared: Some((mapping, offset)),
        };
        Ok(self.insert(vma, len.div_ceil(PAGE_SIZE)))
    }

    /// `munmap` of the mapping at `addr`. Pinned pages stay allocated until unpinned (rule 2).
    pub fn munmap(&self, addr: u64) -> Result<(), Vb2Error> {
        let vma = self.state.lock().0.remove(&addr);
        vma.map(drop)
            .ok_or_else(|| Vb2Error::new(Errno::EINVAL, format!("nothing mapped at {addr:#x}")))
    }

    /// The mapping containing `[addr, addr + len)`, and the offset of `addr` in it.
    fn find(&self, addr: u64, len: u64) -> Result<(Arc<AnonVma>, u64), Vb2Error> {
        let st = self.state.lock();
        let fault = || {
            Vb2Error::new(
                Errno::EFAULT,
                format!("{addr:#x}+{len:#x} is not inside one mapping"),
            )
        };
        let (&start, vma) = st.0.range(..=addr).next_back().ok_or_else(fault)?;
        let off = addr - start;
        if off.checked_add(len).is_none_or(|e| e > vma.len) || len == 0 {
            return Err(fault());
        }
        Ok((vma.clone(), off))
    }

    fn runs(vma: &AnonVma, off: u64, len: u64) -> Vec<(PhysAddr, u64)> {
        let mut out = Vec::new();
        let mut pos = off;
        while pos < off + len {
            let page = vma.pages[(pos / PAGE_SIZE) as usize];
            let in_page = pos % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(off + len - pos);
            out.push((page.addr.add(in_page), n));
            pos += n;
        }
        out
    }

    /// A CPU store at `addr` (rule 1). Errors: `EFAULT` outside a mapping.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), Vb2Error> {
        let (vma, off) = self.find(addr, data.len() as u64)?;
        if let Some((m, _)) = &vma.shared {
            return Ok(m.write(off, data)?);
        }
        let mut at = 0usize;
        for (pa, n) in Self::runs(&vma, off, data.len() as u64) {
            self.dma.soc().cpu().write(pa, &data[at..at + n as usize])?;
            at += n as usize;
        }
        Ok(())
    }

    /// A CPU load at `addr` (rule 1). Errors: `EFAULT` outside a mapping.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Vb2Error> {
        let (vma, off) = self.find(addr, buf.len() as u64)?;
        if let Some((m, _)) = &vma.shared {
            return Ok(m.read(off, buf)?);
        }
        let mut at = 0usize;
        for (pa, n) in Self::runs(&vma, off, buf.len() as u64) {
            self.dma
                .soc()
                .cpu()
                .read(pa, &mut buf[at..at + n as usize])?;
            at += n as usize;
        }
        Ok(())
    }

    /// `pin_user_pages(addr, len)` (rules 2-4). Errors: `EFAULT`; for a shared memfd
    /// mapping what pinning its pages answers (`EFAULT` past the end of the file, `ENOMEM`).
    pub fn pin_user_pages(&self, addr: u64, len: u64) -> Result<PinnedUserPages, Vb2Error> {
        let (vma, off) = self.find(addr, len)?;
        let Some((m, file_off)) = &vma.shared else {
            let ranges = Self::runs(&vma, off, len);
            return Ok(PinnedUserPages {
                vma: Some(vma),
                _shmem: Vec::new(),
                ranges,
            });
        };
        // The whole pages under [off, off + len) of the file.
        let first = (file_off + off) / PAGE_SIZE * PAGE_SIZE;
        let end = (file_off + off + len).next_multiple_of(PAGE_SIZE);
        if end > m.memfd().size().next_multiple_of(PAGE_SIZE) {
            return Err(Vb2Error::new(
                Errno::EFAULT,
                format!("{addr:#x}+{len:#x} is past the end of the mapped file"),
            ));
        }
        let pins = m.memfd().pin_pages(first, end - first)?;
        let mut ranges: Vec<(PhysAddr, u64)> = Vec::new();
        let mut pos = file_off + off;
        while pos < file_off + off + len {
            let page = &pins[((pos - first) / PAGE_SIZE) as usize];
            let in_page = pos % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(file_off + off + len - pos);
            ranges.push((page.phys().add(in_page), n));
            pos += n;
        }
        // The pins, not the mapping, keep the pages: an munmap drops the mapping (and its
        // writable-mapping count) while they stay pinned.
        Ok(PinnedUserPages {
            vma: None,
            _shmem: pins,
            ranges,
        })
    }
}
