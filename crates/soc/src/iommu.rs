//! IOMMUs: I/O virtual address spaces, their page tables and their allocators.
//!
//! C side: `include/linux/iommu.h` (`struct iommu_domain`, `iommu_map`, `iommu_unmap`,
//! `iommu_iova_to_phys`, `IOMMU_READ`/`IOMMU_WRITE`), `drivers/iommu/io-pgtable-arm.c` (the page
//! tables) and `drivers/iommu/iova.c` (the IOVA allocator of `dma-iommu`).
//!
//! # The concept
//! A device behind an IOMMU does not emit physical addresses: every address it drives is an I/O
//! virtual address (IOVA) that the IOMMU translates through the page tables of the device's
//! **domain**. That is what lets an IOMMU-capable device DMA into physically scattered pages as if
//! they were one buffer, and what keeps a device from touching memory nobody mapped for it.
//!
//! Each device behind an [`Iommu`] gets its own default domain ([`IommuDomain`]) when the SoC is
//! built, as Linux gives each IOMMU group a default DMA domain. A domain has:
//! - an **aperture**: IOVAs `[PAGE_SIZE, 2^aperture_bits)` (IOVA 0 is never handed out, as
//!   `iova.c`'s `start_pfn` of 1); the top page of a 64-bit space is also kept out so that
//!   ends never overflow;
//! - **page tables** at 4 KiB granularity: [`IommuDomain::map`] / [`IommuDomain::unmap`] of
//!   page-aligned ranges with read/write protection ([`IommuProt`]). A map that overlaps a live
//!   mapping is refused and changes nothing (`io-pgtable-arm`'s `-EEXIST`). Unmap stops at the
//!   first unmapped page and returns the bytes it unmapped, like `iommu_unmap`;
//! - an **IOVA allocator** ([`IommuDomain::alloc_iova`]): first fit **top-down** from the lower of
//!   the aperture's top and the caller's limit (the device's DMA mask), as `iova.c` allocates
//!   downwards from `limit_pfn`; sizes are rounded up to whole pages and the start is aligned to
//!   the requested alignment (at least a page). Unlike `alloc_iova(..., size_aligned = true)` the
//!   start is not aligned to the size: callers that want that pass it as `align`. The allocator
//!   and the page tables are independent, as in Linux: allocating an IOVA maps nothing, and a map
//!   need not lie in an allocated range.
//! - a **fault log**: every access refused by translation is recorded as an
//!   [`IommuFaultRecord`] (the device layer records it and notifies the observers).
//!
//! # Representation
//! The page tables are kept as a map of **extents** (IOVA range -> physical start, protection),
//! which is what a radix tree of PTEs says, compressed: a map of physically contiguous pages with
//! the same protection next to an existing extent is merged into it, and an unmap in the middle of
//! an extent splits it (`arm_lpae_split_blk_unmap`). Translating an access is one ordered lookup
//! plus a walk over the extents it spans, and yields coalesced physical runs: a 12 MiB access
//! through 3,000 scattered pages costs 3,000 steps, not 3 million.
//!
//! # Locking
//! The page tables sit behind a reader-writer lock (translations share it, map/unmap take it
//! exclusively); the IOVA allocator and the fault log each have their own mutex. No lock is held
//! on return and none is held while another is taken, so there is no ordering to respect.

use crate::addr::{align_down, align_up, DmaAddr, PhysAddr, PAGE_SIZE};
use crate::error::SocError;
use crate::observer::{FaultReason, IommuFaultRecord};
use crate::phys::PhysMem;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many fault records a domain keeps; older ones are dropped (and counted).
pub const FAULT_LOG_LEN: usize = 1024;

/// Protection of an IOMMU mapping (`IOMMU_READ`, `IOMMU_WRITE`). A device write through a mapping
/// without `write` is a fault, as is a read through one without `read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IommuProt {
    /// The device may read through the mapping (`IOMMU_READ`).
    pub read: bool,
    /// The device may write through the mapping (`IOMMU_WRITE`).
    pub write: bool,
}

impl IommuProt {
    /// `IOMMU_READ`: the device may only read (a `DMA_TO_DEVICE` mapping).
    pub const READ: IommuProt = IommuProt {
        read: true,
        write: false,
    };
    /// `IOMMU_WRITE`: the device may only write (a `DMA_FROM_DEVICE` mapping).
    pub const WRITE: IommuProt = IommuProt {
        read: false,
        write: true,
    };
    /// `IOMMU_READ | IOMMU_WRITE` (a `DMA_BIDIRECTIONAL` mapping).
    pub const READ_WRITE: IommuProt = IommuProt {
        read: true,
        write: true,
    };

    fn allows(self, write: bool) -> Result<(), FaultReason> {
        match (write, self.read, self.write) {
            (true, _, false) => Err(FaultReason::NotWritable),
            (false, false, _) => Err(FaultReason::NotReadable),
            _ => Ok(()),
        }
    }
}

/// An IOMMU: a name, an address width, and the domains of the devices behind it.
///
/// # Invariants
/// `domains` holds the default domain of every device behind this IOMMU, in device order, and
/// only those; `PAGE_SHIFT < aperture_bits <= 64`.
#[derive(Debug)]
pub struct Iommu {
    name: String,
    aperture_bits: u32,
    domains: Mutex<Vec<Arc<IommuDomain>>>,
}

impl Iommu {
    /// An IOMMU translating `aperture_bits`-bit IOVAs (validated by [`Soc::new`](crate::Soc::new)).
    pub(crate) fn new(name: &str, aperture_bits: u32) -> Iommu {
        Iommu {
            name: name.to_string(),
            aperture_bits,
            domains: Mutex::new(Vec::new()),
        }
    }

    /// The IOMMU's name (`"smmu0"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Width of the I/O virtual addresses it translates.
    pub fn aperture_bits(&self) -> u32 {
        self.aperture_bits
    }

    /// Creates the default domain of `device`.
    pub(crate) fn new_domain(&self, device: &str, mem: Arc<PhysMem>) -> Arc<IommuDomain> {
        let end = if self.aperture_bits >= 64 {
            u64::MAX - PAGE_SIZE + 1
        } else {
            (1u64 << self.aperture_bits).min(u64::MAX - PAGE_SIZE + 1)
        };
        let domain = Arc::new(IommuDomain {
            iommu: self.name.clone(),
            device: device.to_string(),
            aperture_end: end,
            mem,
            table: RwLock::new(PageTable::default()),
            iovas: Mutex::new(BTreeMap::new()),
            faults: Mutex::new(FaultLog::default()),
        });
        self.domains.lock().push(domain.clone());
        domain
    }

    /// The domains of the devices behind this IOMMU, in device order.
    pub fn domains(&self) -> Vec<Arc<IommuDomain>> {
        self.domains.lock().clone()
    }

    /// The recorded faults of all its domains (each domain's log in order, domains in device
    /// order).
    pub fn faults(&self) -> Vec<IommuFaultRecord> {
        self.domains().iter().flat_map(|d| d.faults()).collect()
    }
}

/// One mapped extent: `len` bytes at the IOVA that keys it, to `pa`.
#[derive(Clone, Copy, Debug)]
struct Extent {
    pa: u64,
    len: u64,
    prot: IommuProt,
}

/// The page tables of a domain.
///
/// # Invariants
/// Extents are non-empty, page aligned, pairwise disjoint, and inside the aperture; `mapped` is
/// the sum of their lengths.
#[derive(Debug, Default)]
struct PageTable {
    extents: BTreeMap<u64, Extent>,
    mapped: u64,
    /// Successful `map` calls since the domain was made.
    maps: u64,
    /// `unmap` calls that unmapped something.
    unmaps: u64,
}

impl PageTable {
    /// The extent containing `iova`, if any.
    fn containing(&self, iova: u64) -> Option<(u64, Extent)> {
        let (&start, &e) = self.extents.range(..=iova).next_back()?;
        (iova - start < e.len).then_some((start, e))
    }
}

#[derive(Debug, Default)]
struct FaultLog {
    records: std::collections::VecDeque<IommuFaultRecord>,
    total: u64,
}

/// An I/O virtual address space: the default domain of one device.
///
/// # Invariants
/// `PAGE_SIZE < aperture_end`, `aperture_end` is page aligned, and every mapping and IOVA
/// allocation lies in `[PAGE_SIZE, aperture_end)`. Allocated IOVA ranges are pairwise disjoint.
pub struct IommuDomain {
    iommu: String,
    device: String,
    aperture_end: u64,
    mem: Arc<PhysMem>,
    /// Page tables; read-locked by translations, write-locked by map/unmap.
    table: RwLock<PageTable>,
    /// Allocated IOVA ranges: start -> size.
    iovas: Mutex<BTreeMap<u64, u64>>,
    /// Faults, newest last, at most [`FAULT_LOG_LEN`].
    faults: Mutex<FaultLog>,
}

impl std::fmt::Debug for IommuDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IommuDomain")
            .field("iommu", &self.iommu)
            .field("device", &self.device)
            .field("aperture_end", &format_args!("{:#x}", self.aperture_end))
            .field("mapped_bytes", &self.mapped_bytes())
            .finish()
    }
}

impl IommuDomain {
    /// The IOMMU this domain belongs to.
    pub fn iommu_name(&self) -> &str {
        &self.iommu
    }

    /// The device whose default domain this is.
    pub fn device_name(&self) -> &str {
        &self.device
    }

    /// The usable IOVA range `[start, end)`: `[PAGE_SIZE, 2^aperture_bits)`.
    pub fn aperture(&self) -> (DmaAddr, DmaAddr) {
        (DmaAddr(PAGE_SIZE), DmaAddr(self.aperture_end))
    }

    /// Allocates `size` bytes of IOVA space (rounded up to pages), aligned to `align` (a power of
    /// two, at least a page), wholly at or below `limit` (inclusive: the device's DMA mask).
    /// First fit, top-down (`iova.c`'s `alloc_iova`).
    ///
    /// Errors: [`SocError::ZeroSize`], [`SocError::InvalidArgument`] for an alignment that is not
    /// a power of two, [`SocError::NoMemory`] when no hole is large enough below the limit.
    pub fn alloc_iova(&self, size: u64, align: u64, limit: u64) -> Result<DmaAddr, SocError> {
        if size == 0 {
            return Err(SocError::ZeroSize("alloc_iova"));
        }
        if align != 0 && !align.is_power_of_two() {
            return Err(SocError::InvalidArgument(format!(
                "alloc_iova: alignment {align:#x} is not a power of two"
            )));
        }
        let align = align.max(PAGE_SIZE);
        let no_space = || {
            SocError::NoMemory(format!(
                "no {size:#x}-byte IOVA hole aligned to {align:#x} below {limit:#x} in the domain of {}",
                self.device
            ))
        };
        let size = align_up(size, PAGE_SIZE).ok_or_else(no_space)?;
        // Exclusive top of the search window.
        let mut top = limit.saturating_add(1).min(self.aperture_end);
        let iovas = &mut *self.iovas.lock();
        loop {
            if top < size {
                return Err(no_space());
            }
            let start = align_down(top - size, align);
            if start < PAGE_SIZE {
                return Err(no_space());
            }
            // The allocated range starting highest below our end: if it reaches into us, move
            // the window below it and retry.
            match iovas.range(..start + size).next_back() {
                Some((&s, &len)) if s + len > start => top = s,
                _ => {
                    iovas.insert(start, size);
                    return Ok(DmaAddr(start));
                }
            }
        }
    }

    /// Frees an IOVA range returned by [`alloc_iova`](Self::alloc_iova); `size` must be the size
    /// it was allocated with (rounded to pages, as the allocator did). Does not unmap anything.
    pub fn free_iova(&self, iova: DmaAddr, size: u64) -> Result<(), SocError> {
        let mut iovas = self.iovas.lock();
        match iovas.get(&iova.0) {
            Some(&len) if Some(len) == align_up(size, PAGE_SIZE) => {
                iovas.remove(&iova.0);
                Ok(())
            }
            Some(&len) => Err(SocError::InvalidArgument(format!(
                "free_iova({iova}, {size:#x}): the range was allocated with size {len:#x}"
            ))),
            None => Err(SocError::InvalidArgument(format!(
                "free_iova({iova}, {size:#x}): no IOVA range was allocated at that address"
            ))),
        }
    }

    /// Bytes of IOVA space currently allocated.
    pub fn allocated_iova_bytes(&self) -> u64 {
        self.iovas.lock().values().sum()
    }

    fn check_aligned(what: &'static str, value: u64) -> Result<(), SocError> {
        if value & (PAGE_SIZE - 1) != 0 {
            return Err(SocError::Misaligned {
                what,
                value,
                align: PAGE_SIZE,
            });
        }
        Ok(())
    }

    /// Maps `len` bytes at `iova` to physical `pa` with `prot` (`iommu_map`).
    ///
    /// `iova`, `pa` and `len` must be page aligned, the IOVA range inside the aperture, the
    /// physical range inside memory (it may span adjacent banks), and `prot` must grant some
    /// access. A map overlapping a live mapping is refused with [`SocError::IommuMapExists`].
    /// On any error nothing is mapped.
    pub fn map(
        &self,
        iova: DmaAddr,
        pa: PhysAddr,
        len: u64,
        prot: IommuProt,
    ) -> Result<(), SocError> {
        if len == 0 {
            return Err(SocError::ZeroSize("iommu map"));
        }
        Self::check_aligned("IOMMU map IOVA", iova.0)?;
        Self::check_aligned("IOMMU map physical address", pa.0)?;
        Self::check_aligned("IOMMU map length", len)?;
        if !prot.read && !prot.write {
            return Err(SocError::InvalidArgument(format!(
                "iommu map of {iova}+{len:#x}: protection grants neither read nor write"
            )));
        }
        let end = match iova.0.checked_add(len) {
            Some(end) if iova.0 >= PAGE_SIZE && end <= self.aperture_end => end,
            _ => {
                return Err(SocError::InvalidArgument(format!(
                    "iommu map of {iova}+{len:#x} is outside the aperture [{:#x}, {:#x}) of {}'s domain",
                    PAGE_SIZE, self.aperture_end, self.device
                )))
            }
        };
        // Every physical byte must be memory (possibly across adjacent banks).
        let pa_end =
            pa.0.checked_add(len)
                .ok_or(SocError::OutOfRange { addr: pa, len })?;
        let mut at = pa.0;
        while at < pa_end {
            let bank = self
                .mem
                .bank_of(PhysAddr(at))
                .ok_or(SocError::OutOfRange { addr: pa, len })?;
            at = bank.end().0.min(pa_end);
        }
        let mut table = self.table.write();
        let clash = table
            .containing(iova.0)
            .map(|(s, _)| s)
            .or_else(|| table.extents.range(iova.0..end).next().map(|(&s, _)| s));
        if let Some(existing) = clash {
            return Err(SocError::IommuMapExists {
                iova,
                len,
                existing: DmaAddr(existing),
            });
        }
        let mut ext = Extent {
            pa: pa.0,
            len,
            prot,
        };
        let mut start = iova.0;
        // Merge with the neighbours when physically contiguous with the same protection.
        if let Some((&ps, &pe)) = table.extents.range(..start).next_back() {
            if ps + pe.len == start && pe.pa + pe.len == ext.pa && pe.prot == prot {
                table.extents.remove(&ps);
                ext = Extent {
                    pa: pe.pa,
                    len: pe.len + ext.len,
                    prot,
                };
                start = ps;
            }
        }
        if let Some(&ne) = table.extents.get(&end) {
            if ext.pa + ext.len == ne.pa && ne.prot == prot {
                table.extents.remove(&end);
                ext.len += ne.len;
            }
        }
        // INVARIANT: checked disjoint and inside the aperture above.
        table.extents.insert(start, ext);
        table.mapped += len;
        table.maps += 1;
        Ok(())
    }

    /// Unmaps `[iova, iova + len)` (`iommu_unmap`), both page aligned. Like the kernel's, it stops
    /// at the first page that is not mapped and returns the bytes unmapped until then (0 if
    /// `iova` itself is not mapped). Unmapping part of a mapping splits it.
    pub fn unmap(&self, iova: DmaAddr, len: u64) -> Result<u64, SocError> {
        if len == 0 {
            return Err(SocError::ZeroSize("iommu unmap"));
        }
        Self::check_aligned("IOMMU unmap IOVA", iova.0)?;
        Self::check_aligned("IOMMU unmap length", len)?;
        let end = iova.0.saturating_add(len);
        let mut table = self.table.write();
        let mut cur = iova.0;
        while cur < end {
            let Some((s, e)) = table.containing(cur) else {
                break;
            };
            let e_end = s + e.len;
            let upto = e_end.min(end);
            table.extents.remove(&s);
            if s < cur {
                table.extents.insert(s, Extent { len: cur - s, ..e });
            }
            if upto < e_end {
                let off = upto - s;
                table.extents.insert(
                    upto,
                    Extent {
                        pa: e.pa + off,
                        len: e_end - upto,
                        prot: e.prot,
                    },
                );
            }
            table.mapped -= upto - cur;
            cur = upto;
        }
        if cur > iova.0 {
            table.unmaps += 1;
        }
        Ok(cur - iova.0)
    }

    /// Translates a device access of `len` bytes at `iova` into physical runs (physically
    /// contiguous pages coalesced), checking every page is mapped with the access's permission.
    /// Nothing is recorded: see [`Device::translate`](crate::Device::translate) for accesses.
    ///
    /// An empty access translates to no runs. An unmapped page, a write through a read-only
    /// mapping or a read through a write-only one is [`SocError::IommuFault`] naming the first
    /// offending IOVA.
    pub fn translate(
        &self,
        iova: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Vec<(PhysAddr, u64)>, SocError> {
        self.translate_reason(iova, len, write)
            .map_err(|(at, _)| self.fault_error(at, len, write))
    }

    /// The error for an access of `len` bytes that faulted at `at`.
    pub(crate) fn fault_error(&self, at: DmaAddr, len: u64, write: bool) -> SocError {
        SocError::IommuFault {
            device: self.device.clone(),
            iova: at,
            len,
            write,
        }
    }

    /// [`translate`](Self::translate), with the fault's address and reason on failure.
    pub(crate) fn translate_reason(
        &self,
        iova: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Vec<(PhysAddr, u64)>, (DmaAddr, FaultReason)> {
        let mut runs: Vec<(PhysAddr, u64)> = Vec::new();
        if len == 0 {
            return Ok(runs);
        }
        let table = self.table.read();
        let Some(end) = iova.0.checked_add(len) else {
            return Err((iova, FaultReason::NotMapped));
        };
        let Some((first, _)) = table.containing(iova.0) else {
            return Err((iova, FaultReason::NotMapped));
        };
        let mut cur = iova.0;
        for (&s, e) in table.extents.range(first..) {
            if s > cur {
                break; // a hole at `cur`
            }
            e.prot.allows(write).map_err(|r| (DmaAddr(cur), r))?;
            let pa = e.pa + (cur - s);
            let n = (s + e.len).min(end) - cur;
            match runs.last_mut() {
                Some((rpa, rlen)) if rpa.0 + *rlen == pa => *rlen += n,
                _ => runs.push((PhysAddr(pa), n)),
            }
            cur += n;
            if cur == end {
                return Ok(runs);
            }
        }
        Err((DmaAddr(cur), FaultReason::NotMapped))
    }

    /// The physical address `iova` maps to, if mapped (`iommu_iova_to_phys`).
    pub fn iova_to_phys(&self, iova: DmaAddr) -> Option<PhysAddr> {
        let (s, e) = self.table.read().containing(iova.0)?;
        Some(PhysAddr(e.pa + (iova.0 - s)))
    }

    /// Bytes currently mapped.
    pub fn mapped_bytes(&self) -> u64 {
        self.table.read().mapped
    }

    /// Successful `iommu_map` and `iommu_unmap` calls (an unmap counts when it unmapped
    /// something) since the domain was made.
    pub fn map_unmap_counts(&self) -> (u64, u64) {
        let t = self.table.read();
        (t.maps, t.unmaps)
    }

    /// Number of extents the page tables hold (physically contiguous runs with one protection).
    pub fn mapping_count(&self) -> usize {
        self.table.read().extents.len()
    }

    /// Records a fault (called by the device layer on a refused access).
    pub(crate) fn record_fault(&self, rec: IommuFaultRecord) {
        let mut log = self.faults.lock();
        if log.records.len() == FAULT_LOG_LEN {
            log.records.pop_front();
        }
        log.records.push_back(rec);
        log.total += 1;
    }

    /// The most recent faults (at most [`FAULT_LOG_LEN`]), oldest first.
    pub fn faults(&self) -> Vec<IommuFaultRecord> {
        self.faults.lock().records.iter().cloned().collect()
    }

    /// Faults recorded since the domain was created, including those dropped from the log.
    pub fn fault_count(&self) -> u64 {
        self.faults.lock().total
    }
}
