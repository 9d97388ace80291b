//! The kernel of one simulated machine: the registries the dma-buf UAPI needs.
//!
//! C side: the global state of `drivers/dma-buf/dma-heap.c` (`heap_list`, the `dma_heap` class
//! and its minors), the `module_param`s of `drivers/dma-buf/udmabuf.c` (`size_limit_mb`,
//! `list_limit`), `kernel/pid.c` (pid allocation).
//!
//! Linux keeps these as globals; here a [`Kernel`] value holds them, one per [`DmaApi`] (and so
//! per [`Soc`]), so that several machines, and tests, run side by side in one host process.
//!
//! # What a kernel boots with ([`Kernel::new`])
//! 1. The heap `"system"` ([`SystemHeap`]).
//! 2. One CMA heap per CMA region of the machine, named after the region (Linux names the
//!    default CMA heap after its reserved-memory node, e.g. `"reserved"` or `"linux,cma"`).
//! 3. One carveout heap `"carveout-<bank>"` per carveout bank (memory without struct pages).
//! 4. The udmabuf limits at their defaults: 64 MiB per buffer, 1024 items per list.
//!
//! # Locking
//! The heap registry is a read-write lock (many opens, rare adds); the process registry and the
//! udmabuf limits each have a mutex. All are leaf locks: no callback runs while one is held.

use crate::heap::carveout::CarveoutHeap;
use crate::heap::cma::CmaHeap;
use crate::heap::system::SystemHeap;
use crate::heap::{DmaHeap, DMA_HEAP_MAX_HEAPS};
use crate::process::Process;
use dma::DmaApi;
use dmabuf::debugfs::BufRegistry;
use dmabuf::error::DmaBufError;
use parking_lot::{Mutex, RwLock};
use soc::{BankKind, Soc, SocDesc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use uapi::ioctl::{UDMABUF_LIST_LIMIT, UDMABUF_SIZE_LIMIT_DEFAULT};
use uapi::Errno;

/// An error carrying a Linux errno and a message saying what was wrong.
pub(crate) fn errno(errno: Errno, msg: impl Into<String>) -> DmaBufError {
    DmaBufError::exporter(errno, msg)
}

/// The udmabuf module parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdmabufLimits {
    /// `size_limit_mb`, in bytes: the largest udmabuf (default 64 MiB).
    pub size_limit: u64,
    /// `list_limit`: the most items of one `UDMABUF_CREATE_LIST` (default 1024).
    pub list_limit: u32,
}

impl Default for UdmabufLimits {
    fn default() -> UdmabufLimits {
        UdmabufLimits {
            size_limit: UDMABUF_SIZE_LIMIT_DEFAULT,
            list_limit: UDMABUF_LIST_LIMIT,
        }
    }
}

/// The kernel of one machine (see the module documentation).
pub struct Kernel {
    dma: Arc<DmaApi>,
    /// Every live heap buffer and udmabuf (`db_list`).
    registry: Arc<BufRegistry>,
    /// Registered heaps, in registration order (`heap_list`).
    heaps: RwLock<Vec<Arc<dyn DmaHeap>>>,
    /// The udmabuf module parameters.
    udmabuf: Mutex<UdmabufLimits>,
    next_pid: AtomicU32,
    /// Live processes by pid.
    procs: Mutex<BTreeMap<u32, Weak<Process>>>,
    /// The memory cgroups and their members.
    memcgs: crate::memcg::Memcgs,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("heaps", &self.heap_names())
            .field("processes", &self.procs.lock().len())
            .finish()
    }
}

impl Kernel {
    /// Boots a kernel over `dma` with the default heaps (module doc, "What a kernel boots
    /// with"). A default heap that cannot be registered is left out.
    ///
    /// ```
    /// use kernel::kernel::Kernel;
    /// let k = Kernel::boot(soc::SocDesc::default_soc()).unwrap();
    /// assert_eq!(k.heap_names(), ["system", "cma0", "carveout-carveout0"]);
    /// ```
    pub fn new(dma: Arc<DmaApi>) -> Arc<Kernel> {
        let registry = BufRegistry::new();
        let k = Arc::new(Kernel {
            dma: dma.clone(),
            registry: registry.clone(),
            heaps: RwLock::new(Vec::new()),
            udmabuf: Mutex::new(UdmabufLimits::default()),
            next_pid: AtomicU32::new(1),
            procs: Mutex::new(BTreeMap::new()),
            memcgs: crate::memcg::Memcgs::default(),
        });
        let mut heaps: Vec<Arc<dyn DmaHeap>> =
            vec![Arc::new(SystemHeap::new(&dma, Some(registry.clone())))];
        for region in dma.soc().pages().cma_regions() {
            heaps.push(Arc::new(CmaHeap::new(
                &dma,
                &region.name,
                Some(registry.clone()),
            )));
        }
        for bank in dma.soc().mem().banks() {
            if bank.kind() == BankKind::Carveout {
                heaps.push(Arc::new(CarveoutHeap::new(
                    &dma,
                    bank.id(),
                    Some(registry.clone()),
                )));
            }
        }
        for h in heaps {
            let _ = k.add_heap(h);
        }
        k
    }

    /// A new machine from `desc`, its DMA API, and a kernel over them.
    pub fn boot(desc: SocDesc) -> Result<Arc<Kernel>, DmaBufError> {
        let soc = Soc::new(desc)?;
        Ok(Kernel::new(Arc::new(DmaApi::new(&soc))))
    }

    /// The DMA API (and through it the machine).
    pub fn dma(&self) -> &Arc<DmaApi> {
        &self.dma
    }

    /// The list of live buffers exported by the kernel's heaps and udmabuf (debugfs
    /// `bufinfo`).
    pub fn registry(&self) -> &Arc<BufRegistry> {
        &self.registry
    }

    /// The machine.
    pub fn soc(&self) -> &Arc<Soc> {
        self.dma.soc()
    }

    /// `fork` of init: a new process with fds 0-2 open on a terminal.
    pub fn spawn(self: &Arc<Self>) -> Arc<Process> {
        // Relaxed: a unique-id counter.
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        let p = Arc::new(Process::new(self.clone(), pid));
        self.procs.lock().insert(pid, Arc::downgrade(&p));
        p
    }

    /// The live processes, by ascending pid.
    pub fn processes(&self) -> Vec<Arc<Process>> {
        self.procs
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Forgets an exited process.
    pub(crate) fn reap(&self, pid: u32) {
        self.procs.lock().remove(&pid);
        self.memcgs.forget(pid);
    }

    /// The memory cgroups (`crate::memcg`).
    pub fn memcgs(&self) -> &crate::memcg::Memcgs {
        &self.memcgs
    }

    /// `dma_heap_add`: registers `heap` as `/dev/dma_heap/<name>`.
    ///
    /// Errors (behaviour 92): `EINVAL` for an empty name (or one with a `/`, which could not be
    /// a device node) or a name already registered; `EBUSY` for a 129th heap (`xa_alloc` finds
    /// no free minor among `NUM_HEAP_MINORS`). A failed add registers nothing.
    pub fn add_heap(&self, heap: Arc<dyn DmaHeap>) -> Result<(), DmaBufError> {
        let name = heap.name().to_string();
        if name.is_empty() {
            return Err(errno(Errno::EINVAL, "dma_heap_add: the heap has no name"));
        }
        if name.contains('/') {
            return Err(errno(
                Errno::EINVAL,
                format!("dma_heap_add: {name:?} is not a file name"),
            ));
        }
        let mut heaps = self.heaps.write();
        if heaps.iter().any(|h| h.name() == name) {
            return Err(errno(
                Errno::EINVAL,
                format!("dma_heap_add: a heap named {name:?} already exists"),
            ));
        }
        if heaps.len() >= DMA_HEAP_MAX_HEAPS {
            return Err(errno(
                Errno::EBUSY,
                format!("dma_heap_add: {DMA_HEAP_MAX_HEAPS} heaps are registered, no minor left for {name:?}"),
            ));
        }
        heaps.push(heap);
        Ok(())
    }

    /// The heap registered as `name`.
    pub fn heap(&self, name: &str) -> Option<Arc<dyn DmaHeap>> {
        self.heaps.read().iter().find(|h| h.name() == name).cloned()
    }

    /// The names of the registered heaps, in registration order (`ls /dev/dma_heap`).
    pub fn heap_names(&self) -> Vec<String> {
        self.heaps
            .read()
            .iter()
            .map(|h| h.name().to_string())
            .collect()
    }

    /// The udmabuf module parameters.
    pub fn udmabuf_limits(&self) -> UdmabufLimits {
        *self.udmabuf.lock()
    }

    /// Sets the udmabuf module parameters (`/sys/module/udmabuf/parameters/*`).
    pub fn set_udmabuf_limits(&self, limits: UdmabufLimits) {
        *self.udmabuf.lock() = limits;
    }
}
