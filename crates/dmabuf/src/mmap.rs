//! User-space CPU mappings of a buffer: mmap with lazy faults, zapped when the buffer moves.
//!
//! C side: `drivers/dma-buf/dma-buf.c` (`dma_buf_mmap_internal`, `dma_buf_mmap`), the exporters'
//! `vm_operations_struct.fault` (e.g. `drivers/dma-buf/heaps/cma_heap.c`), and
//! `unmap_mapping_range()` (what TTM does to user mappings of a moving buffer).
//!
//! # The concept
//! A [`CpuMapping`] is the VMA of an `mmap` of the buffer's fd: a page range of the buffer and a
//! page table that starts empty. The first touch of a page faults: the exporter's
//! [`mmap_fault`](crate::DmaBufOps::mmap_fault) hands out the page where the buffer lives *now*
//! (allocating storage on demand if it has none yet), and the access goes through the CPU cache
//! (uncached for memory without struct pages). When the exporter moves the buffer it zaps the
//! page tables ([`DmaBuf::zap_mappings`]), so the next touch faults again and lands on the new
//! storage — seed 000's "shooting down userspace mmapings on buffer movements", hidden from
//! drivers.
//!
//! # Rules
//! 1. Bounds (behaviour 81): no `MMAP` feature -> `EINVAL` (the buffer is not mmapable, seed 001);
//!    `pgoff + npages` overflowing -> `EOVERFLOW`; beyond `size >> PAGE_SHIFT` -> `EINVAL` (the
//!    partial last page of an unaligned size can never be mapped); a length of 0 -> `EINVAL`; a
//!    writable mapping of a buffer whose file is `O_RDONLY` -> `EACCES` (as `do_mmap` checks).
//!    Then the exporter's `mmap` may still refuse.
//! 2. Accesses are checked against the mapping (`EFAULT`, the process's SIGBUS); a write through a
//!    read-only mapping is `EFAULT` (its SIGSEGV).
//! 3. The mapping is incoherent with the devices unless bracketed by
//!    [`begin_cpu_access`](DmaBuf::begin_cpu_access)/[`end_cpu_access`](DmaBuf::end_cpu_access).
//! 4. Locking: each mapping's page table has a leaf lock, held during an access (so a zap waits
//!    for accesses in flight) but never while calling the exporter's fault hook; a fault whose
//!    page table was zapped meanwhile is retried.
//! 5. The mapping holds a buffer reference; dropping it is `munmap`.

use crate::buf::DmaBuf;
use crate::error::DmaBufError;
use crate::ops::{FaultPage, OpsFeatures};
use parking_lot::Mutex;
use soc::{PhysAddr, SocError, PAGE_SHIFT, PAGE_SIZE};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use uapi::ioctl::{O_ACCMODE, O_RDONLY};
use uapi::Errno;

pub(crate) struct Ptes {
    /// Present pages by index in the mapping (sparse: a mapping may be huge and barely touched).
    pages: HashMap<u64, FaultPage>,
    /// Bumped by every zap; a fault started before a zap does not install its page.
    gen: u64,
}

pub(crate) struct MmapInner {
    ptes: Mutex<Ptes>,
    faults: AtomicU64,
}

impl MmapInner {
    fn zap(&self) {
        let mut p = self.ptes.lock();
        p.pages.clear();
        p.gen += 1;
    }
}

/// A CPU mapping of pages `pgoff..pgoff + npages` of a buffer (module doc).
pub struct CpuMapping {
    buf: DmaBuf,
    inner: Arc<MmapInner>,
    pgoff: u64,
    npages: u64,
    writable: bool,
}

impl DmaBuf {
    /// `mmap` of the buffer's fd at page offset `pgoff` for `len` bytes (rounded up to pages),
    /// following rule 1; nothing is faulted in yet.
    ///
    /// ```
    /// use dmabuf::{testing::{mock_dma, MockExporter}, DmaBuf, ExportInfo};
    /// use uapi::{AsErrno, Errno};
    /// let buf = DmaBuf::export(&mock_dma(), ExportInfo::new("mock", 3 * 4096, MockExporter::new())).unwrap();
    /// let m = buf.mmap(1, 2 * 4096, true).unwrap();
    /// m.write(0, b"hello").unwrap();
    /// let mut got = [0u8; 5];
    /// m.read(0, &mut got).unwrap();
    /// assert_eq!(&got, b"hello");
    /// assert_eq!(buf.mmap(2, 2 * 4096, false).unwrap_err().errno(), Errno::EINVAL);
    /// assert_eq!(buf.mmap(u64::MAX, 4096, false).unwrap_err().errno(), Errno::EOVERFLOW);
    /// ```
    pub fn mmap(&self, pgoff: u64, len: u64, writable: bool) -> Result<CpuMapping, DmaBufError> {
        if !self.0.features.contains(OpsFeatures::MMAP) {
            return Err(DmaBufError::NotMmapable(self.0.exp_name.clone()));
        }
        if len == 0 {
            return Err(DmaBufError::InvalidArgument("mmap of length 0".into()));
        }
        let npages = len.div_ceil(PAGE_SIZE);
        let end = pgoff
            .checked_add(npages)
            .ok_or(DmaBufError::Overflow("mmap pgoff + npages"))?;
        let pages = self.0.size >> PAGE_SHIFT;
        if end > pages {
            return Err(DmaBufError::MmapOutOfBounds {
                pgoff,
                npages,
                pages,
            });
        }
        if writable && self.0.flags & O_ACCMODE == O_RDONLY {
            return Err(DmaBufError::exporter(
                Errno::EACCES,
                "writable mapping of a read-only dma-buf file",
            ));
        }
        self.0.ops.mmap(self, pgoff, npages, writable)?;
        let inner = Arc::new(MmapInner {
            ptes: Mutex::new(Ptes {
                pages: HashMap::new(),
                gen: 0,
            }),
            faults: AtomicU64::new(0),
        });
        {
            let mut maps = self.0.cpu_maps.lock();
            maps.retain(|w| w.strong_count() > 0);
            maps.push(Arc::downgrade(&inner));
        }
        Ok(CpuMapping {
            buf: self.clone(),
            inner,
            pgoff,
            npages,
            writable,
        })
    }

    /// Zaps every CPU mapping of the buffer (`unmap_mapping_range`): the next access of each
    /// page faults to wherever the buffer is then. Waits for accesses in flight. For exporters,
    /// after they moved (or before they free) the storage.
    pub fn zap_mappings(&self) {
        let maps: Vec<Arc<MmapInner>> = self
            .0
            .cpu_maps
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for m in maps {
            m.zap();
        }
        self.0.zaps.fetch_add(1, Ordering::Relaxed);
    }

    /// Live CPU mappings of the buffer.
    pub fn mmap_count(&self) -> usize {
        self.0
            .cpu_maps
            .lock()
            .iter()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}

impl CpuMapping {
    /// Length in bytes (whole pages).
    pub fn len(&self) -> u64 {
        self.npages << PAGE_SHIFT
    }

    /// Whether the mapping is empty (never: a mapping has at least one page).
    pub fn is_empty(&self) -> bool {
        self.npages == 0
    }

    /// First page of the buffer mapped.
    pub fn pgoff(&self) -> u64 {
        self.pgoff
    }

    /// Whether writes are allowed.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The buffer.
    pub fn dmabuf(&self) -> &DmaBuf {
        &self.buf
    }

    /// Page faults taken so far (first touches, and touches after a zap).
    pub fn fault_count(&self) -> u64 {
        self.inner.faults.load(Ordering::Relaxed)
    }

    /// Pages currently present in the page table.
    pub fn resident_pages(&self) -> usize {
        self.inner.ptes.lock().pages.len()
    }

    /// A load of `out.len()` bytes at `offset` in the mapping (rule 2).
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), DmaBufError> {
        let cpu = self.buf.dma().soc().cpu();
        self.access(offset, out.len() as u64, |page, in_page, at, n| {
            let pa = page.phys.add(in_page);
            let dst = &mut out[at..at + n];
            if page.iomem {
                cpu.read_uncached(pa, dst)
            } else {
                cpu.read(pa, dst)
            }
        })
    }

    /// A store of `data` at `offset` in the mapping (rule 2).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), DmaBufError> {
        if !self.writable {
            return Err(DmaBufError::Fault(
                "write through a read-only mapping".into(),
            ));
        }
        let cpu = self.buf.dma().soc().cpu();
        self.access(offset, data.len() as u64, |page, in_page, at, n| {
            let pa = page.phys.add(in_page);
            let src = &data[at..at + n];
            if page.iomem {
                cpu.write_uncached(pa, src)
            } else {
                cpu.write(pa, src)
            }
        })
    }

    /// The physical page behind page `index` of the mapping, faulting it in (for tests and
    /// tools that want to know where the bytes live).
    pub fn page_phys(&self, index: u64) -> Result<PhysAddr, DmaBufError> {
        let mut got = None;
        self.access(index << PAGE_SHIFT, 1, |page, _, _, _| {
            got = Some(page.phys);
            Ok(())
        })?;
        got.ok_or_else(|| DmaBufError::Fault("no page".into()))
    }

    fn access(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(FaultPage, u64, usize, usize) -> Result<(), SocError>,
    ) -> Result<(), DmaBufError> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.len())
            .ok_or_else(|| {
                DmaBufError::Fault(format!(
                    "access {offset:#x}+{len:#x} beyond a mapping of {:#x}",
                    self.len()
                ))
            })?;
        let mut pos = offset;
        while pos < end {
            let index = pos >> PAGE_SHIFT;
            let in_page = pos & (PAGE_SIZE - 1);
            let n = (PAGE_SIZE - in_page).min(end - pos);
            loop {
                let ptes = self.inner.ptes.lock();
                if let Some(&page) = ptes.pages.get(&index) {
                    // Rule 4: the access runs under the page-table lock, so a zap waits for it.
                    f(page, in_page, (pos - offset) as usize, n as usize)?;
                    break;
                }
                let gen = ptes.gen;
                drop(ptes);
                let page = self.buf.0.ops.mmap_fault(&self.buf, self.pgoff + index)?;
                self.inner.faults.fetch_add(1, Ordering::Relaxed);
                let mut ptes = self.inner.ptes.lock();
                if ptes.gen == gen {
                    ptes.pages.insert(index, page);
                }
            }
            pos += n;
        }
        Ok(())
    }
}

impl fmt::Debug for CpuMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpuMapping")
            .field("buf", &self.buf.ino())
            .field("pgoff", &self.pgoff)
            .field("npages", &self.npages)
            .field("writable", &self.writable)
            .finish()
    }
}
