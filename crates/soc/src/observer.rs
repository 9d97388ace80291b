//! Observers: how software above the hardware model watches what the hardware does.
//!
//! C side: there is no single one. The kernel's CONFIG_DMA_API_DEBUG (`kernel/dma/debug.c`) sees
//! only the DMA API calls, never the bus; IOMMU drivers report faults through
//! `report_iommu_fault()` (`include/linux/iommu.h`). Our simulated bus can do better: every device
//! access, every IOMMU fault, every stale CPU cache hit and every page free is reported to the
//! [`SocObserver`]s registered with [`Soc::add_observer`](crate::Soc::add_observer). The DMA-debug
//! checker of the `dma` crate (a higher layer) is one; a scenario's tracer is another.
//!
//! # Calling rules
//! 1. Observers are called synchronously, on the thread that did the access, **after** the access
//!    (a fault: after it was refused), with no lock of the SoC held: an observer may call back into
//!    the SoC (read memory, translate an address, even add another observer).
//! 2. One call per access, whatever its size: a 12 MiB device write through 3,000 scattered pages
//!    is one [`SocObserver::dma_access`] call whose event lists the physical runs.
//! 3. With no observer registered, the hardware pays one atomic load per access and
//!    computes nothing for observers (for instance, not the dirty-line overlap of a device read).
//! 4. An observer added while an access is in flight may or may not see that access.
//! 5. Observers are called in registration order.

use crate::addr::{DmaAddr, PhysAddr};
use parking_lot::RwLock;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A successful device access, as one [`SocObserver::dma_access`] event.
///
/// The event borrows from the access: copy out what you need to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaAccess<'a> {
    /// The device that did the access.
    pub device: &'a str,
    /// First DMA address of the access (an IOVA behind an IOMMU, else a physical address).
    pub addr: DmaAddr,
    /// Length of the access in bytes.
    pub len: u64,
    /// Whether the device wrote (true) or read (false).
    pub write: bool,
    /// Whether the device snoops the CPU caches.
    pub coherent: bool,
    /// The physical runs the access touched, in DMA-address order; physically contiguous pages
    /// are coalesced into one run, and no run crosses a bank boundary.
    pub runs: &'a [(PhysAddr, u64)],
    /// For a read by a **non-coherent** device: bytes of dirty CPU cache lines inside the access
    /// that the device did not see (the CPU wrote them and nobody cleaned them). Zero for writes
    /// and for coherent devices (they snoop).
    pub stale_cpu_bytes: u64,
}

/// Why an IOMMU refused an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultReason {
    /// No mapping covers the address (`IOMMU_FAULT_READ`/`WRITE` on an empty PTE).
    NotMapped,
    /// A write through a mapping without `IOMMU_WRITE`.
    NotWritable,
    /// A read through a mapping without `IOMMU_READ`.
    NotReadable,
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultReason::NotMapped => "not mapped",
            FaultReason::NotWritable => "mapped read-only",
            FaultReason::NotReadable => "mapped write-only",
        })
    }
}

/// One IOMMU fault: what [`report_iommu_fault()`] would tell a driver.
///
/// [`report_iommu_fault()`]: https://elixir.bootlin.com/linux/latest/source/include/linux/iommu.h
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IommuFaultRecord {
    /// The device whose access faulted.
    pub device: String,
    /// The IOMMU that refused it.
    pub iommu: String,
    /// The first I/O virtual address of the access that could not be translated.
    pub iova: DmaAddr,
    /// Length of the whole access.
    pub len: u64,
    /// Whether the access was a write.
    pub write: bool,
    /// Why the access was refused.
    pub reason: FaultReason,
}

/// Watches the hardware. Every method has a no-op default; implement the ones you need.
///
/// Implementations must be `Send + Sync`: devices may run on their own threads (the scenario
/// runner's stress mode), and each calls the observers from its own thread. See the module doc
/// for when and how observers are called.
pub trait SocObserver: Send + Sync {
    /// A device access completed. Called once per [`Device::dma_read`](crate::Device::dma_read),
    /// [`dma_write`](crate::Device::dma_write), and twice per
    /// [`dma_copy`](crate::Device::dma_copy) (its read, then its write).
    fn dma_access(&self, _ev: &DmaAccess<'_>) {}

    /// The CPU read `len` bytes at `pa` from cache lines that a non-coherent agent (a device, or an
    /// uncached CPU write) had written under: the CPU got old data. Called once per contiguous
    /// stale range of a [`Cpu::read`](crate::Cpu::read).
    fn cpu_stale_read(&self, _pa: PhysAddr, _len: u64) {}

    /// Memory is about to be returned to its allocator through [`Soc::free_pages`] or
    /// [`Soc::free_pool`]; anything still mapping it is a use-after-free waiting to happen.
    ///
    /// [`Soc::free_pages`]: crate::Soc::free_pages
    /// [`Soc::free_pool`]: crate::Soc::free_pool
    fn pages_freed(&self, _pa: PhysAddr, _len: u64) {}

    /// An IOMMU refused a device access; no byte was moved.
    fn iommu_fault(&self, _rec: &IommuFaultRecord) {}
}

/// The observers of one SoC, shared by its CPU, devices and glue.
///
/// # Invariants
/// `any` is true iff `list` is non-empty (it only ever goes from false to true).
#[derive(Default)]
pub(crate) struct Observers {
    any: AtomicBool,
    list: RwLock<Arc<[Arc<dyn SocObserver>]>>,
}

impl Observers {
    pub(crate) fn new() -> Observers {
        Observers {
            any: AtomicBool::new(false),
            list: RwLock::new(Arc::from(Vec::new())),
        }
    }

    /// Adds an observer; copy-on-write so that readers never wait for a notification.
    pub(crate) fn add(&self, obs: Arc<dyn SocObserver>) {
        let mut list = self.list.write();
        let mut v: Vec<Arc<dyn SocObserver>> = list.iter().cloned().collect();
        v.push(obs);
        *list = Arc::from(v);
        // Release pairs with the Acquire in `active`: whoever sees `true` also sees the list.
        self.any.store(true, Ordering::Release);
    }

    /// The current observers, or `None` (one atomic load) when there are none.
    #[inline]
    pub(crate) fn active(&self) -> Option<Arc<[Arc<dyn SocObserver>]>> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        Some(self.list.read().clone())
    }

    /// Whether any observer is registered.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observers")
            .field("count", &self.list.read().len())
            .finish()
    }
}
