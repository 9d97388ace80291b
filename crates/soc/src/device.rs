//! DMA-capable devices and their DMA engines.
//!
//! C side: `struct device`'s DMA fields (`dma_mask`, `coherent_dma_mask`, `dma_parms` with
//! `max_segment_size` and `segment_boundary_mask`, `dma_coherent`) in `include/linux/device.h`,
//! and what `kernel/dma/direct.c` assumes about a device without an IOMMU.
//!
//! # The concept
//! A [`Device`] is a bus master with a DMA engine. Every address it drives is a **DMA address**
//! ([`DmaAddr`]) in its own view of memory:
//! - behind an IOMMU, the DMA address is an IOVA in the device's default [`IommuDomain`], and
//!   every access is translated through the domain's page tables;
//! - without one (direct mapping), the DMA address *is* the physical address, and the device
//!   reaches only addresses at or below its DMA mask (a 32-bit device cannot see memory above
//!   4 GiB: the reason `dma_set_mask` and bounce buffers exist).
//!
//! # An access, step by step
//! 1. The whole access is checked against the device's DMA mask and translated **before any byte
//!    moves**: an unmapped IOVA, a write through a read-only mapping, an address above the mask of
//!    a direct-mapped device or a physical hole refuses the whole access and touches nothing. An
//!    IOMMU fault is recorded in the domain's fault log and reported to the observers
//!    ([`SocObserver::iommu_fault`](crate::SocObserver::iommu_fault)).
//! 2. Translation yields physical runs (contiguous pages coalesced, split at bank boundaries);
//!    the bytes move with one memory operation per run.
//! 3. Caches: a **coherent** device snoops the CPU cache (its reads see dirty lines, its writes
//!    update cached lines); a **non-coherent** one goes straight to memory, so its reads miss
//!    dirty CPU lines and its writes leave cached CPU lines stale (see [`crate::cache`]).
//! 4. Counters are updated and each observer gets one
//!    [`DmaAccess`] event for the access.
//!
//! # Locking
//! A device has no lock of its own; counters are relaxed atomics (statistics, not
//! synchronisation). An access takes the domain's page-table lock for reading during
//! translation (released before bytes move), then memory's chunk locks per run. A coherent
//! device also holds the CPU cache lock for the whole data movement; a non-coherent one takes it
//! once after moving bytes, to mark stale lines. Observers run with no lock held. Concurrent
//! accesses by several devices (or threads) are allowed; overlapping ones race as on real
//! hardware, with one of them winning per chunk.

use crate::addr::{DmaAddr, PhysAddr};
use crate::cache::{CacheState, Cpu};
use crate::desc::DeviceDesc;
use crate::error::SocError;
use crate::iommu::IommuDomain;
use crate::observer::{DmaAccess, FaultReason, IommuFaultRecord, Observers};
use crate::phys::PhysMem;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

mod traffic;
mod visit;

pub use traffic::{CacheMaintenance, CacheOp};

/// Largest burst of a [`Device::dma_copy`]: the engine reads this much, then writes it.
pub const COPY_BURST: usize = 1 << 20;

/// Counters of one device's DMA engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Bytes read by successful accesses.
    pub bytes_read: u64,
    /// Bytes written by successful accesses.
    pub bytes_written: u64,
    /// Successful transfers (a `dma_copy` counts once).
    pub transfers: u64,
    /// Refused accesses: IOMMU faults, addresses above the mask, physical holes.
    pub faults: u64,
}

/// A DMA-capable device: its description's properties, its IOMMU domain (if any), and a DMA
/// engine that moves bytes at device DMA addresses.
///
/// # Invariants
/// `domain` is `Some` iff the description names an IOMMU, and it is this device's default domain;
/// the description was validated by [`Soc::new`](crate::Soc::new) (mask widths 12..=64).
pub struct Device {
    desc: DeviceDesc,
    domain: Option<Arc<IommuDomain>>,
    mem: Arc<PhysMem>,
    cpu: Arc<Cpu>,
    observers: Arc<Observers>,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    transfers: AtomicU64,
    faults: AtomicU64,
    traffic: traffic::Traffic,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("name", &self.desc.name)
            .field("dma_mask", &format_args!("{:#x}", self.dma_mask()))
            .field("coherent", &self.desc.coherent)
            .field("iommu", &self.desc.iommu)
            .finish()
    }
}

/// Why an access was refused, before it becomes an error.
enum Refusal {
    Fault(DmaAddr, FaultReason),
    Other(SocError),
}

/// Walks a list of physical runs piece by piece.
struct RunCursor<'a> {
    runs: &'a [(PhysAddr, u64)],
    idx: usize,
    off: u64,
}

impl RunCursor<'_> {
    /// The next piece of at most `max` bytes.
    fn next(&mut self, max: u64) -> Option<(PhysAddr, u64)> {
        let &(pa, len) = self.runs.get(self.idx)?;
        let n = (len - self.off).min(max);
        let piece = (pa.add(self.off), n);
        self.off += n;
        if self.off == len {
            self.idx += 1;
            self.off = 0;
        }
        Some(piece)
    }
}

impl Device {
    pub(crate) fn new(
        desc: DeviceDesc,
        domain: Option<Arc<IommuDomain>>,
        mem: Arc<PhysMem>,
        cpu: Arc<Cpu>,
        observers: Arc<Observers>,
    ) -> Device {
        Device {
            desc,
            domain,
            cpu,
            observers,
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            transfers: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            traffic: traffic::Traffic::new(mem.banks().len()),
            mem,
        }
    }

    /// Bytes the device's DMA engine moved (read and written) in each bank of the machine,
    /// in the order of [`PhysMem::banks`], since boot.
    pub fn bank_bytes(&self) -> Vec<u64> {
        self.traffic.bank_bytes()
    }

    /// Counts CPU cache maintenance of `bytes` done for this device (the DMA layer's syncs).
    pub fn note_cache_maintenance(&self, op: CacheOp, bytes: u64) {
        self.traffic.note(op, bytes);
    }

    /// The CPU cache maintenance done for this device since boot.
    pub fn cache_maintenance(&self) -> CacheMaintenance {
        self.traffic.cache()
    }

    /// The device's name (`"isp0"`).
    pub fn name(&self) -> &str {
        &self.desc.name
    }

    /// The description the device was built from.
    pub fn desc(&self) -> &DeviceDesc {
        &self.desc
    }

    /// The streaming DMA mask (`dma_get_mask`): the highest DMA address the device can drive.
    pub fn dma_mask(&self) -> u64 {
        self.desc.dma_mask()
    }

    /// The mask for coherent allocations (`dev->coherent_dma_mask`).
    pub fn coherent_dma_mask(&self) -> u64 {
        self.desc.coherent_dma_mask()
    }

    /// Whether the device snoops the CPU caches (`dev_is_dma_coherent`).
    pub fn is_coherent(&self) -> bool {
        self.desc.coherent
    }

    /// Largest scatter-gather segment (`dma_get_max_seg_size`).
    pub fn max_segment_size(&self) -> u64 {
        self.desc.max_segment_size.bytes()
    }

    /// Segment boundary mask (`dma_get_seg_boundary`): no segment crosses a multiple of
    /// `mask + 1`.
    pub fn segment_boundary_mask(&self) -> u64 {
        self.desc.segment_boundary_mask.bytes()
    }

    /// Most segments one mapping may have.
    pub fn max_segments(&self) -> u32 {
        self.desc.max_segments
    }

    /// Whether the device needs physically contiguous memory even behind an IOMMU.
    pub fn needs_contiguous(&self) -> bool {
        self.desc.needs_contiguous
    }

    /// The device's default IOMMU domain, or `None` for a direct-mapped device.
    pub fn iommu_domain(&self) -> Option<&Arc<IommuDomain>> {
        self.domain.as_ref()
    }

    /// The device's counters.
    pub fn stats(&self) -> DeviceStats {
        DeviceStats {
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            transfers: self.transfers.load(Relaxed),
            faults: self.faults.load(Relaxed),
        }
    }

    /// Translates an access without recording anything.
    fn resolve(
        &self,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Vec<(PhysAddr, u64)>, Refusal> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let mask = self.dma_mask();
        let above = match addr.0.checked_add(len - 1) {
            Some(last) => last > mask,
            None => true,
        };
        if above {
            return Err(Refusal::Other(SocError::AboveDmaMask {
                device: self.desc.name.clone(),
                addr,
                len,
                mask,
            }));
        }
        let runs = match &self.domain {
            Some(domain) => domain
                .translate_reason(addr, len, write)
                .map_err(|(at, r)| Refusal::Fault(at, r))?,
            None => vec![(PhysAddr(addr.0), len)],
        };
        split_at_banks(&self.mem, runs).map_err(Refusal::Other)
    }

    /// Translates an access of `len` bytes at `addr` into the physical runs it would touch (in
    /// DMA-address order, contiguous pages coalesced, no run crossing a bank), checking the DMA
    /// mask, the IOMMU mapping and its permission for a read or a `write`. Moves no data and
    /// records no fault. An empty access has no runs.
    ///
    /// Errors: [`SocError::AboveDmaMask`], [`SocError::IommuFault`], [`SocError::OutOfRange`]
    /// (a direct-mapped access to a physical hole).
    pub fn translate(
        &self,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Vec<(PhysAddr, u64)>, SocError> {
        self.resolve(addr, len, write).map_err(|r| match r {
            Refusal::Fault(at, _) => self.fault_error(at, len, write),
            Refusal::Other(e) => e,
        })
    }

    /// The error of an access of `len` bytes that faulted at `at`.
    fn fault_error(&self, at: DmaAddr, len: u64, write: bool) -> SocError {
        SocError::IommuFault {
            device: self.desc.name.clone(),
            iova: at,
            len,
            write,
        }
    }

    /// Translates an access for real: a refusal is counted, and an IOMMU fault recorded and
    /// reported.
    fn access_runs(
        &self,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Vec<(PhysAddr, u64)>, SocError> {
        match self.resolve(addr, len, write) {
            Ok(runs) => Ok(runs),
            Err(refusal) => Err(self.refused(refusal, len, write)),
        }
    }

    #[cold]
    fn refused(&self, refusal: Refusal, len: u64, write: bool) -> SocError {
        self.faults.fetch_add(1, Relaxed);
        let (at, reason) = match refusal {
            Refusal::Other(e) => return e,
            Refusal::Fault(at, reason) => (at, reason),
        };
        let rec = IommuFaultRecord {
            device: self.desc.name.clone(),
            iommu: self
                .domain
                .as_ref()
                .map_or_else(String::new, |d| d.iommu_name().to_string()),
            iova: at,
            len,
            write,
            reason,
        };
        if let Some(d) = &self.domain {
            d.record_fault(rec.clone());
        }
        if let Some(obs) = self.observers.active() {
            obs.iter().for_each(|o| o.iommu_fault(&rec));
        }
        self.fault_error(at, len, write)
    }

    fn notify(
        &self,
        addr: DmaAddr,
        len: u64,
        write: bool,
        runs: &[(PhysAddr, u64)],
        stale_cpu_bytes: u64,
    ) {
        self.traffic.moved(&self.mem, runs);
        if let Some(obs) = self.observers.active() {
            let ev = DmaAccess {
                device: &self.desc.name,
                addr,
                len,
                write,
                coherent: self.desc.coherent,
                runs,
                stale_cpu_bytes,
            };
            obs.iter().for_each(|o| o.dma_access(&ev));
        }
    }

    /// Reads `buf.len()` bytes from the next pieces of `cur` into `buf`, snooping each piece in
    /// `snoop` (a coherent device's held cache lock).
    fn read_pieces(
        &self,
        cur: &mut RunCursor<'_>,
        buf: &mut [u8],
        mut snoop: Option<&mut CacheState>,
    ) -> Result<(), SocError> {
        let mut done = 0usize;
        while done < buf.len() {
            let Some((pa, n)) = cur.next((buf.len() - done) as u64) else {
                break;
            };
            let piece = &mut buf[done..done + n as usize];
            self.mem.read(pa, piece)?;
            if let Some(cache) = snoop.as_deref_mut() {
                cache.snoop_read(&[(pa, n)], piece);
            }
            done += n as usize;
        }
        Ok(())
    }

    /// Writes `data` to the next pieces of `cur`, snooping each piece in `snoop`.
    fn write_pieces(
        &self,
        cur: &mut RunCursor<'_>,
        data: &[u8],
        mut snoop: Option<&mut CacheState>,
    ) -> Result<(), SocError> {
        let mut done = 0usize;
        while done < data.len() {
            let Some((pa, n)) = cur.next((data.len() - done) as u64) else {
                break;
            };
            let piece = &data[done..done + n as usize];
            self.mem.write(pa, piece)?;
            if let Some(cache) = snoop.as_deref_mut() {
                cache.snoop_write(&[(pa, n)], piece);
            }
            done += n as usize;
        }
        Ok(())
    }

    /// The device reads `buf.len()` bytes at DMA address `addr` (the engine's memory-to-device
    /// direction). On any error nothing was read and `buf` is unchanged.
    pub fn dma_read(&self, addr: DmaAddr, buf: &mut [u8]) -> Result<(), SocError> {
        let len = buf.len() as u64;
        if len == 0 {
            return Ok(());
        }
        let runs = self.access_runs(addr, len, false)?;
        let mut stale = 0;
        if self.desc.coherent {
            let mut cache = self.cpu.lock();
            self.mem.read_runs(&runs, buf)?;
            cache.snoop_read(&runs, buf);
        } else {
            self.mem.read_runs(&runs, buf)?;
            if self.observers.any() {
                stale = self.cpu.lock().dirty_bytes_in(&runs);
            }
        }
        self.bytes_read.fetch_add(len, Relaxed);
        self.transfers.fetch_add(1, Relaxed);
        self.notify(addr, len, false, &runs, stale);
        Ok(())
    }

    /// The device writes `data` at DMA address `addr` (device-to-memory). On any error no byte
    /// of memory changed.
    pub fn dma_write(&self, addr: DmaAddr, data: &[u8]) -> Result<(), SocError> {
        let len = data.len() as u64;
        if len == 0 {
            return Ok(());
        }
        let runs = self.access_runs(addr, len, true)?;
        if self.desc.coherent {
            let mut cache = self.cpu.lock();
            self.mem.write_runs(&runs, data)?;
            cache.snoop_write(&runs, data);
        } else {
            self.mem.write_runs(&runs, data)?;
            self.cpu.lock().mark_stale(&runs);
        }
        self.bytes_written.fetch_add(len, Relaxed);
        self.transfers.fetch_add(1, Relaxed);
        self.notify(addr, len, true, &runs, 0);
        Ok(())
    }

    /// The device copies `len` bytes from DMA address `src` to `dst` (a memory-to-memory
    /// engine). Disjoint ranges on a non-coherent device are copied chunk to chunk with no
    /// bounce buffer; otherwise in bursts of [`COPY_BURST`] bytes through a bounce buffer, front
    /// to back (overlapping ranges give what such an engine gives; a coherent engine snoops). Both ranges are translated before anything moves; on any error no
    /// byte of memory changed. Observers see a read of `src`, then a write of `dst`.
    pub fn dma_copy(&self, src: DmaAddr, dst: DmaAddr, len: u64) -> Result<(), SocError> {
        if len == 0 {
            return Ok(());
        }
        if usize::try_from(len).is_err() {
            return Err(SocError::InvalidArgument(format!(
                "dma_copy of {len:#x} bytes is larger than the host's address space"
            )));
        }
        let src_runs = self.access_runs(src, len, false)?;
        let dst_runs = self.access_runs(dst, len, true)?;
        if !self.desc.coherent && !crate::phys::runs_overlap(&src_runs, &dst_runs) {
            return self.copy_direct(src, dst, len, &src_runs, &dst_runs);
        }
        let mut bounce = vec![0u8; (len as usize).min(COPY_BURST)];
        let mut rd = RunCursor {
            runs: &src_runs,
            idx: 0,
            off: 0,
        };
        let mut wr = RunCursor {
            runs: &dst_runs,
            idx: 0,
            off: 0,
        };
        let mut stale = 0;
        let observed = self.observers.any();
        let mut done = 0u64;
        let mut cache = self.desc.coherent.then(|| self.cpu.lock());
        if !self.desc.coherent && observed {
            stale = self.cpu.lock().dirty_bytes_in(&src_runs);
        }
        while done < len {
            let n = (len - done).min(COPY_BURST as u64) as usize;
            self.read_pieces(&mut rd, &mut bounce[..n], cache.as_deref_mut())?;
            self.write_pieces(&mut wr, &bounce[..n], cache.as_deref_mut())?;
            done += n as u64;
        }
        drop(cache);
        if !self.desc.coherent {
            self.cpu.lock().mark_stale(&dst_runs);
        }
        self.bytes_read.fetch_add(len, Relaxed);
        self.bytes_written.fetch_add(len, Relaxed);
        self.transfers.fetch_add(1, Relaxed);
        self.notify(src, len, false, &src_runs, stale);
        self.notify(dst, len, true, &dst_runs, 0);
        Ok(())
    }
}

impl Device {
    /// The non-coherent engine's copy between disjoint ranges: chunk to chunk, no bounce
    /// buffer ([`PhysMem::copy_runs`]); the CPU cache is not snooped, so dirty CPU lines over
    /// the source are not seen (counted for observers) and cached lines over the destination
    /// go stale.
    fn copy_direct(
        &self,
        src: DmaAddr,
        dst: DmaAddr,
        len: u64,
        src_runs: &[(PhysAddr, u64)],
        dst_runs: &[(PhysAddr, u64)],
    ) -> Result<(), SocError> {
        let stale = if self.observers.any() {
            self.cpu.lock().dirty_bytes_in(src_runs)
        } else {
            0
        };
        self.mem.copy_runs(src_runs, dst_runs)?;
        self.cpu.lock().mark_stale(dst_runs);
        self.bytes_read.fetch_add(len, Relaxed);
        self.bytes_written.fetch_add(len, Relaxed);
        self.transfers.fetch_add(1, Relaxed);
        self.notify(src, len, false, src_runs, stale);
        self.notify(dst, len, true, dst_runs, 0);
        Ok(())
    }
}

/// Splits runs at bank boundaries (a mapping may span adjacent banks; memory operations may
/// not), refusing a run that touches a hole with [`SocError::OutOfRange`]. The common case (every
/// run inside one bank) returns the vector as it is.
fn split_at_banks(
    mem: &PhysMem,
    runs: Vec<(PhysAddr, u64)>,
) -> Result<Vec<(PhysAddr, u64)>, SocError> {
    if runs.iter().all(|&(pa, n)| mem.check_range(pa, n).is_ok()) {
        return Ok(runs);
    }
    let mut out = Vec::with_capacity(runs.len() + 1);
    for (pa, len) in runs {
        let end =
            pa.0.checked_add(len)
                .ok_or(SocError::OutOfRange { addr: pa, len })?;
        let mut at = pa.0;
        while at < end {
            let bank = mem
                .bank_of(PhysAddr(at))
                .ok_or(SocError::OutOfRange { addr: pa, len })?;
            let upto = bank.end().0.min(end);
            out.push((PhysAddr(at), upto - at));
            at = upto;
        }
    }
    Ok(out)
}
