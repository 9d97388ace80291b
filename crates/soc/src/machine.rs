//! A whole machine: memory, allocators, the CPU, IOMMUs and devices, built from a [`SocDesc`].
//!
//! C side: what a device tree plus `setup_arch()` and the bus probes put together at boot. A
//! [`Soc`] value is one machine; there is no global state, so tests build their own and run in
//! parallel, and two machines never share a byte.
//!
//! # Building
//! [`Soc::new`] validates the whole description first and answers [`SocError::InvalidDesc`] naming
//! the offending field (`devices[3].dma_mask_bits`, `cma[0].bank`, ...) before building anything.
//! Building is cheap: memory is committed lazily (see [`crate::phys`]), so even the bundled
//! [`SocDesc::default_soc`] with 12 GiB of banks costs a few allocations.
//!
//! What gets built:
//! - the physical address space ([`PhysMem`]) from `banks`;
//! - a buddy page allocator over the system banks with the `cma` regions ([`PageAllocator`]);
//! - a range allocator ([`GenPool`]) per carveout and device-local bank;
//! - the CPU with its cache ([`Cpu`]) of `cpu_cache.size` bytes;
//! - each IOMMU ([`Iommu`]) and each device ([`Device`]); a device behind an IOMMU gets its own
//!   default domain.
//!
//! - the machine's id counters ([`Soc::ids`]: inode numbers, attachment ids, fence contexts);
//! - the machine's clock ([`Soc::clock`]): a [`clock::VirtualClock`] at boot unless the caller
//!   hands one in ([`Soc::with_clock`]); every layer above reads time from it.
//!
//! # Lifetimes and locking
//! Devices and IOMMUs are handed out as `Arc`s and stay valid as long as anyone holds them, even
//! past the `Soc`. The `Soc` itself holds no lock: its parts lock themselves (see each module),
//! and the observer list is copy-on-write.

use crate::addr::{PhysAddr, CACHE_LINE_SIZE, PAGE_SHIFT, PAGE_SIZE};
use crate::cache::Cpu;
use crate::desc::{BankKind, SocDesc};
use crate::device::Device;
use crate::error::SocError;
use crate::genpool::GenPool;
use crate::ids::MachineIds;
use crate::iommu::Iommu;
use crate::observer::{Observers, SocObserver};
use crate::page_alloc::{Page, PageAllocator};
use crate::phys::{BankId, PhysMem};
use clock::ClockRef;
use std::collections::HashSet;
use std::sync::Arc;

/// Largest CPU cache the model accepts (lines are allocated lazily, but a bound keeps a typo from
/// describing a machine whose cache never evicts).
pub const MAX_CACHE_SIZE: u64 = 1 << 30;

/// A simulated system-on-chip.
///
/// # Invariants
/// `pools[i]` is `Some` iff bank `i` is a carveout or device-local bank; every device's IOMMU (if
/// any) is in `iommus`; names are unique per kind.
pub struct Soc {
    desc: SocDesc,
    mem: Arc<PhysMem>,
    pages: PageAllocator,
    pools: Vec<Option<GenPool>>,
    cpu: Arc<Cpu>,
    iommus: Vec<Arc<Iommu>>,
    devices: Vec<Arc<Device>>,
    observers: Arc<Observers>,
    clock: ClockRef,
    ids: MachineIds,
}

impl std::fmt::Debug for Soc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Soc")
            .field("banks", &self.mem.banks())
            .field(
                "iommus",
                &self.iommus.iter().map(|i| i.name()).collect::<Vec<_>>(),
            )
            .field(
                "devices",
                &self.devices.iter().map(|d| d.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn invalid(msg: String) -> SocError {
    SocError::InvalidDesc(msg)
}

/// Checks that names are non-empty and unique within one list (`what` is the field, `banks`).
fn check_names<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> Result<(), SocError> {
    let mut seen = HashSet::new();
    for (i, name) in names.enumerate() {
        if name.is_empty() {
            return Err(invalid(format!("`{what}[{i}].name` is empty")));
        }
        if !seen.insert(name) {
            return Err(invalid(format!(
                "`{what}[{i}].name`: two {what} are named `{name}`"
            )));
        }
    }
    Ok(())
}

fn check_mask_bits(field: String, dev: &str, bits: u32) -> Result<(), SocError> {
    if !(PAGE_SHIFT..=64).contains(&bits) {
        return Err(invalid(format!(
            "`{field}` of device `{dev}` is {bits}: a DMA mask is {PAGE_SHIFT} to 64 bits wide"
        )));
    }
    Ok(())
}

/// Validates everything [`PhysMem::new`] and [`PageAllocator::new`] do not.
fn validate(desc: &SocDesc) -> Result<(), SocError> {
    let cache = desc.cpu_cache.size.bytes();
    if cache == 0 || cache & (CACHE_LINE_SIZE - 1) != 0 || cache > MAX_CACHE_SIZE {
        return Err(invalid(format!(
            "`cpu_cache.size` is {cache:#x}: it must be a non-zero multiple of the {CACHE_LINE_SIZE}-byte \
             cache line, at most {MAX_CACHE_SIZE:#x}"
        )));
    }
    check_names("cma", desc.cma.iter().map(|c| c.name.as_str()))?;
    check_names("iommus", desc.iommus.iter().map(|c| c.name.as_str()))?;
    check_names("devices", desc.devices.iter().map(|c| c.name.as_str()))?;
    for (i, c) in desc.cma.iter().enumerate() {
        match desc.banks.iter().find(|b| b.name == c.bank) {
            None => {
                return Err(invalid(format!(
                    "`cma[{i}].bank` of CMA region `{}` names bank `{}`, which does not exist",
                    c.name, c.bank
                )))
            }
            Some(b) if b.kind != BankKind::System => {
                return Err(invalid(format!(
                    "`cma[{i}].bank` of CMA region `{}` names bank `{}`, a {} bank: CMA needs system RAM",
                    c.name, c.bank, b.kind
                )))
            }
            Some(_) => {}
        }
    }
    for (i, m) in desc.iommus.iter().enumerate() {
        if !(PAGE_SHIFT + 1..=64).contains(&m.aperture_bits) {
            return Err(invalid(format!(
                "`iommus[{i}].aperture_bits` of IOMMU `{}` is {}: it must be {} to 64",
                m.name,
                m.aperture_bits,
                PAGE_SHIFT + 1
            )));
        }
    }
    for (i, d) in desc.devices.iter().enumerate() {
        let n = d.name.as_str();
        check_mask_bits(format!("devices[{i}].dma_mask_bits"), n, d.dma_mask_bits)?;
        if let Some(bits) = d.coherent_dma_mask_bits {
            check_mask_bits(format!("devices[{i}].coherent_dma_mask_bits"), n, bits)?;
        }
        let seg = d.max_segment_size.bytes();
        if seg < PAGE_SIZE {
            return Err(invalid(format!(
                "`devices[{i}].max_segment_size` of device `{n}` is {seg:#x}: it must be at least a page ({PAGE_SIZE:#x})"
            )));
        }
        let boundary = d.segment_boundary_mask.bytes();
        if boundary < PAGE_SIZE - 1 || boundary.wrapping_add(1) & boundary != 0 {
            return Err(invalid(format!(
                "`devices[{i}].segment_boundary_mask` of device `{n}` is {boundary:#x}: it must be of the form \
                 2^n - 1 with 2^n at least a page"
            )));
        }
        if d.max_segments == 0 {
            return Err(invalid(format!(
                "`devices[{i}].max_segments` of device `{n}` is 0"
            )));
        }
        if d.bandwidth_bps == 0 {
            return Err(invalid(format!(
                "`devices[{i}].bandwidth_bps` of device `{n}` is 0"
            )));
        }
        if let Some(iommu) = &d.iommu {
            if !desc.iommus.iter().any(|m| &m.name == iommu) {
                return Err(invalid(format!(
                    "`devices[{i}].iommu` of device `{n}` names IOMMU `{iommu}`, which does not exist"
                )));
            }
        }
    }
    if let Some(m) = &desc.migrate_with {
        if m != "cpu" && !desc.devices.iter().any(|d| &d.name == m) {
            return Err(invalid(format!(
                "`migrate_with` names `{m}`, which is neither `cpu` nor a device (devices: {})",
                desc.devices
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

impl Soc {
    /// Builds a machine from its description, validating it whole first.
    ///
    /// Errors: [`SocError::InvalidDesc`] naming the offending field (bank layout errors come from
    /// [`PhysMem::new`], CMA placement errors from [`PageAllocator::new`]).
    ///
    /// ```
    /// use soc::{Soc, SocDesc};
    /// let soc = Soc::new(SocDesc::default_soc()).unwrap();
    /// assert_eq!(soc.devices().len(), 5);
    /// assert!(soc.device("gpu0").unwrap().is_coherent());
    ///
    /// let mut bad = SocDesc::default_soc();
    /// bad.devices[1].dma_mask_bits = 99;
    /// let err = Soc::new(bad).unwrap_err().to_string();
    /// assert!(err.contains("devices[1].dma_mask_bits") && err.contains("isp0"), "{err}");
    /// ```
    pub fn new(desc: SocDesc) -> Result<Arc<Soc>, SocError> {
        Soc::with_clock(desc, clock::VirtualClock::shared())
    }

    /// Like [`Soc::new`], on the given clock: a runner's virtual clock, or a real one.
    ///
    /// ```
    /// use clock::{Clock, VirtualClock};
    /// use soc::{Soc, SocDesc};
    /// let t = VirtualClock::shared();
    /// let soc = Soc::with_clock(SocDesc::default_soc(), t.clone()).unwrap();
    /// t.advance(std::time::Duration::from_millis(3));
    /// assert_eq!(soc.clock().now_ns(), t.now_ns());
    /// ```
    pub fn with_clock(desc: SocDesc, clock: ClockRef) -> Result<Arc<Soc>, SocError> {
        validate(&desc)?;
        let mem = Arc::new(PhysMem::new(&desc.banks)?);
        let pages = PageAllocator::new(mem.clone(), &desc.cma)?;
        let pools = mem
            .banks()
            .iter()
            .map(|b| (b.kind() != BankKind::System).then(|| GenPool::new(b)))
            .collect();
        let observers = Arc::new(Observers::new());
        let cpu = Arc::new(Cpu::new(
            mem.clone(),
            desc.cpu_cache.size.bytes(),
            observers.clone(),
        ));
        let iommus: Vec<Arc<Iommu>> = desc
            .iommus
            .iter()
            .map(|m| Arc::new(Iommu::new(&m.name, m.aperture_bits)))
            .collect();
        let devices = desc
            .devices
            .iter()
            .map(|d| {
                let domain = d.iommu.as_ref().and_then(|name| {
                    let iommu = iommus.iter().find(|m| m.name() == name)?;
                    Some(iommu.new_domain(&d.name, mem.clone()))
                });
                Arc::new(Device::new(
                    d.clone(),
                    domain,
                    mem.clone(),
                    cpu.clone(),
                    observers.clone(),
                ))
            })
            .collect();
        // INVARIANT: `validate` checked names and IOMMU references; pools follow bank kinds.
        Ok(Arc::new(Soc {
            desc,
            mem,
            pages,
            pools,
            cpu,
            iommus,
            devices,
            observers,
            clock,
            ids: MachineIds::new(),
        }))
    }

    /// The machine's id counters: inode numbers, attachment ids, fence contexts.
    pub fn ids(&self) -> &MachineIds {
        &self.ids
    }

    /// The machine's monotonic clock (`ktime_get`): what every layer above reads time from.
    pub fn clock(&self) -> &ClockRef {
        &self.clock
    }

    /// The description the machine was built from.
    pub fn desc(&self) -> &SocDesc {
        &self.desc
    }

    /// The physical address space (raw memory-controller access, no cache).
    pub fn mem(&self) -> &Arc<PhysMem> {
        &self.mem
    }

    /// The page allocator of the system banks, with the CMA regions.
    pub fn pages(&self) -> &PageAllocator {
        &self.pages
    }

    /// Frees pages from [`pages`](Self::pages), first telling the observers
    /// ([`SocObserver::pages_freed`]) so that a checker sees the free before anyone can reuse the
    /// memory. Errors are the allocator's (a double free changes nothing).
    pub fn free_pages(&self, page: Page) -> Result<(), SocError> {
        self.notify_freed(page.addr, page.size());
        self.pages.free_pages(page)
    }

    /// Tells the observers that `len` bytes at `pa` are being freed
    /// ([`SocObserver::pages_freed`]).
    pub(crate) fn notify_freed(&self, pa: PhysAddr, len: u64) {
        if let Some(obs) = self.observers.active() {
            obs.iter().for_each(|o| o.pages_freed(pa, len));
        }
    }

    /// The range allocator of a carveout or device-local bank, or `None` for a system bank or an
    /// unknown id.
    pub fn pool(&self, bank: BankId) -> Option<&GenPool> {
        self.pools.get(bank.0).and_then(Option::as_ref)
    }

    /// Frees `size` bytes at `addr` to the pool of `bank`, first telling the observers
    /// ([`SocObserver::pages_freed`]).
    ///
    /// Errors: [`SocError::UnknownBank`] if `bank` has no pool, else the pool's.
    pub fn free_pool(&self, bank: BankId, addr: PhysAddr, size: u64) -> Result<(), SocError> {
        let pool = self.pool(bank).ok_or_else(|| {
            SocError::UnknownBank(format!("#{} (no carveout or device-local pool)", bank.0))
        })?;
        self.notify_freed(addr, size);
        pool.free(addr, size)
    }

    /// The CPU and its cache.
    pub fn cpu(&self) -> &Cpu {
        &self.cpu
    }

    /// The device with this name, or [`SocError::UnknownDevice`].
    pub fn device(&self, name: &str) -> Result<Arc<Device>, SocError> {
        self.devices
            .iter()
            .find(|d| d.name() == name)
            .cloned()
            .ok_or_else(|| SocError::UnknownDevice(name.to_string()))
    }

    /// All devices, in description order.
    pub fn devices(&self) -> &[Arc<Device>] {
        &self.devices
    }

    /// The IOMMU with this name, or [`SocError::UnknownIommu`].
    pub fn iommu(&self, name: &str) -> Result<Arc<Iommu>, SocError> {
        self.iommus
            .iter()
            .find(|m| m.name() == name)
            .cloned()
            .ok_or_else(|| SocError::UnknownIommu(name.to_string()))
    }

    /// All IOMMUs, in description order.
    pub fn iommus(&self) -> &[Arc<Iommu>] {
        &self.iommus
    }

    /// Registers an observer of the hardware (see [`crate::observer`] for when it is called).
    pub fn add_observer(&self, obs: Arc<dyn SocObserver>) {
        self.observers.add(obs);
    }
}
