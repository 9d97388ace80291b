//! The DMA-API debug checker: CONFIG_DMA_API_DEBUG, plus what only a simulated bus can see.
//!
//! C side: `kernel/dma/debug.c`, `Documentation/core-api/dma-api.rst` ("Debug drivers use of the
//! DMA-API").
//!
//! # The concept
//! The kernel's dma-debug keeps a hash of every live mapping and checks each unmap and sync
//! against it: was this address mapped, with this size, this direction, this many entries? It
//! cannot see the bus, so it cannot tell whether a device touched memory it had no mapping for, or
//! whether the cache maintenance a driver skipped actually lost data. Our [`Checker`] keeps the same
//! record (every mapping made through [`DmaApi`](crate::DmaApi)) **and** is a
//! [`SocObserver`]: it sees every device access, every stale CPU read, every free and every IOMMU
//! fault, and checks those too.
//!
//! # What it reports ([`FindingKind`])
//! From `kernel/dma/debug.c` (numbers of `reference/kernel-semantics.md` §4):
//! 1. unmap of an address never mapped (1), with a different size (2), with another function
//!    (3), with a different sg nents (5), with another direction (6);
//! 2. sync of unmapped memory (8), beyond the mapping (9), in another direction (10), for the CPU
//!    of a mapping the device only reads (11), for the device of one it only writes (12) (an sg
//!    sync always passes the table's own nents, so 13 cannot happen);
//! 3. mapped segments longer than the device's max segment size (17) or crossing its segment
//!    boundary (18);
//! 4. overlapping active mappings of a cacheline (19): not for `TO_DEVICE` mappings, and not
//!    reported when the new mapping has `DMA_ATTR_SKIP_CPU_SYNC`;
//! 5. mappings left when a device is torn down (20), through [`Checker::check_leaks`].
//!
//! Beyond the kernel, from the bus ([`SocObserver`] events):
//! 6. a device access not covered by the device's live mappings, or against their direction;
//! 7. a non-coherent device reading CPU-dirty bytes nobody cleaned (`stale_cpu_bytes`);
//! 8. the CPU reading lines a non-coherent device wrote under (no sync for CPU);
//! 9. memory freed while a mapping still covers it;
//! 10. IOMMU faults, with the live mapping (if any) the address falls in;
//! 11. a device accessing memory while another device's conflicting fence on it is unsignalled
//!     (module `fences`, [`Checker::watch_fence`]): the dma-fence analogue of all the above.
//!
//! Items 7 of the kernel (`dma_mapping_error()` not called) and 14-16 (stack, rodata, vmalloc
//! addresses) cannot happen here: a map returns a `Result`, and there are no virtual addresses.
//!
//! # What it cannot see: a missing sync that happened to read the right bytes
//! Item 8 fires when the CPU *gets* stale data: a line the CPU cached before the device wrote
//! under it. If the line was not in the cache, a read without `dma_sync_*_for_cpu` fetches it
//! from memory, returns the device's bytes and raises nothing: the bug is latent, not caught.
//! The kernel's dma-debug does not catch it either (it checks syncs against mappings, not their
//! absence before a CPU access). On real hardware the same code fails the day a speculative
//! prefetch, or an earlier access in the same line, brings the line in first; in the simulator the
//! CPU cache only fills on an access, so a test that wants to see the bug must touch the line
//! before the device writes (as the second half of this example does):
//!
//! ```
//! use dma::{DmaApi, DmaAttrs, DmaDirection, FindingKind, SgTable, SegmentLimits};
//! use soc::{AllocRequest, Soc, SocDesc};
//!
//! let soc = Soc::new(SocDesc::default_soc())?;
//! let api = DmaApi::new(&soc);
//! let isp = api.device("isp0")?; // behind smmu0, not coherent
//! let page = soc.pages().alloc_pages(&AllocRequest::new(0))?;
//! let mut sgt = SgTable::from_pages(&[page], SegmentLimits::of_device(&isp)?)?;
//! api.map_sg(&isp, &mut sgt, DmaDirection::FromDevice, DmaAttrs::NONE)?;
//! let iova = sgt.dma_address().unwrap();
//!
//! // The line is not cached: no sync for the CPU, yet the right bytes and no finding.
//! api.device_write(&isp, iova, b"frame 1")?;
//! let mut got = [0u8; 7];
//! api.cpu_read(page.addr, &mut got)?;
//! assert_eq!(&got, b"frame 1");
//! assert_eq!(api.checker().count(FindingKind::CpuStaleRead), 0);
//!
//! // Now the line is cached (that read brought it in): the same mistake reads stale bytes,
//! // and the checker names the mapping.
//! api.device_write(&isp, iova, b"frame 2")?;
//! api.cpu_read(page.addr, &mut got)?;
//! assert_eq!(&got, b"frame 1");
//! assert_eq!(api.checker().count(FindingKind::CpuStaleRead), 1);
//!
//! // The sync drops the stale lines.
//! api.sync_sg_for_cpu(&isp, &sgt, DmaDirection::FromDevice)?;
//! api.cpu_read(page.addr, &mut got)?;
//! assert_eq!(&got, b"frame 2");
//! api.unmap_sg(&isp, &mut sgt, DmaDirection::FromDevice, DmaAttrs::NONE)?;
//! api.free_pages(page)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Findings and strict mode
//! Findings are values ([`Finding`]) kept in order: list them, count them per kind, clear them.
//! Pieces of work running on several host threads at once raise theirs in a batch
//! ([`Checker::open_batch`], [`FindingOrigin`]), committed in piece order when it closes: the
//! order, and the findings kept under the cap, are then those of one thread doing the work.
//! Kinds can be switched off ([`Checker::set_enabled`]). In **strict mode**
//! ([`Checker::set_strict`]) a finding also becomes an error: the API call that the checker sees
//! before it happens (unmap, sync, map, [`DmaApi::free_pages`](crate::DmaApi::free_pages)) is
//! refused with [`DmaError::Checker`] and changes nothing; a finding raised by the bus during a
//! checked access ([`DmaApi::device_read`](crate::DmaApi::device_read) and friends) is returned
//! by that call after the access.
//!
//! # Locking
//! One mutex guards the registry and the findings. It is taken for the length of one rule and
//! never held while calling into the SoC, so an observer callback (which the SoC makes with none of
//! its locks held) can always take it.

mod batch;
mod fences;
mod finding;
mod registry;
pub(crate) mod rules;

pub use batch::FindingOrigin;
pub use fences::FenceWatch;
pub use finding::{Finding, FindingAddr, FindingKind};
pub use registry::{MappingInfo, MappingKind, PhysRun};

use crate::error::DmaError;
use crate::sg::SegmentLimits;
use parking_lot::Mutex;
use registry::Registry;
use rules::{SyncRequest, UnmapRequest};
use soc::{DmaAccess, IommuFaultRecord, PhysAddr, SocObserver};
use std::collections::{BTreeMap, HashSet};
use std::thread::{self, ThreadId};

/// How many findings are kept; later ones are counted but dropped (the kernel's `num_errors`).
/// "Later" is in the checker's commit order, which work running on several host threads keeps
/// fixed with batches (module `batch`): which findings are kept never depends on the host.
pub const MAX_KEPT_FINDINGS: usize = 10_000;

/// A recorded finding, with the order and thread that raised it.
#[derive(Debug)]
struct Recorded {
    seq: u64,
    thread: ThreadId,
    finding: Finding,
}

/// Everything behind the checker's lock.
#[derive(Default, Debug)]
pub(crate) struct State {
    pub(crate) reg: Registry,
    kept: Vec<Recorded>,
    counts: BTreeMap<FindingKind, u64>,
    seq: u64,
    dropped: u64,
    strict: bool,
    disabled: HashSet<FindingKind>,
    watches: fences::Watches,
    /// Findings of open batches, held aside until [`Checker::close_batch`] (module `batch`).
    batches: BTreeMap<u64, Vec<batch::Held>>,
}

impl State {
    /// Records the enabled findings; returns the first of them in strict mode. Raised by a
    /// piece of an open batch (outside strict mode), they are held aside for the batch's close
    /// instead (module `batch`).
    fn commit(&mut self, findings: Vec<Finding>) -> Result<(), DmaError> {
        if let Some((b, piece)) = batch::origin().filter(|_| !self.strict) {
            if self.batches.contains_key(&b) {
                for f in findings
                    .into_iter()
                    .filter(|f| !self.disabled.contains(&f.kind))
                {
                    self.seq += 1;
                    let seq = self.seq;
                    if let Some(held) = self.batches.get_mut(&b) {
                        held.push((piece, seq, f));
                    }
                }
                return Ok(());
            }
        }
        self.commit_now(findings)
    }

    /// Records the enabled findings now, in their order (counted; kept up to the cap).
    fn commit_now(&mut self, findings: Vec<Finding>) -> Result<(), DmaError> {
        let mut first = None;
        let thread = thread::current().id();
        for f in findings
            .into_iter()
            .filter(|f| !self.disabled.contains(&f.kind))
        {
            self.seq += 1;
            *self.counts.entry(f.kind).or_default() += 1;
            if first.is_none() && self.strict {
                first = Some(f.clone());
            }
            if self.kept.len() < MAX_KEPT_FINDINGS {
                self.kept.push(Recorded {
                    seq: self.seq,
                    thread,
                    finding: f,
                });
            } else {
                self.dropped += 1;
            }
        }
        match first {
            Some(f) => Err(f.into()),
            None => Ok(()),
        }
    }
}

/// The checker of one machine. Made by [`DmaApi::new`](crate::DmaApi::new), which registers it as
/// an observer of the SoC; reach it with [`DmaApi::checker`](crate::DmaApi::checker).
#[derive(Debug, Default)]
pub struct Checker {
    /// The registry, findings and settings; see the module's locking section.
    state: Mutex<State>,
}

impl Checker {
    /// A checker with no mapping, no finding, every kind enabled, strict mode off.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Turns strict mode on or off (see the module doc).
    pub fn set_strict(&self, strict: bool) {
        self.state.lock().strict = strict;
    }

    /// Whether strict mode is on.
    pub fn is_strict(&self) -> bool {
        self.state.lock().strict
    }

    /// Enables or disables reporting of one kind (the registry is kept either way).
    pub fn set_enabled(&self, kind: FindingKind, enabled: bool) {
        let mut st = self.state.lock();
        if enabled {
            st.disabled.remove(&kind);
        } else {
            st.disabled.insert(kind);
        }
    }

    /// The kept findings, oldest first.
    pub fn findings(&self) -> Vec<Finding> {
        self.state
            .lock()
            .kept
            .iter()
            .map(|r| r.finding.clone())
            .collect()
    }

    /// The kept findings of one kind, oldest first.
    pub fn findings_of(&self, kind: FindingKind) -> Vec<Finding> {
        let st = self.state.lock();
        st.kept
            .iter()
            .filter(|r| r.finding.kind == kind)
            .map(|r| r.finding.clone())
            .collect()
    }

    /// How many findings of `kind` were reported (including dropped ones) since the last clear.
    pub fn count(&self, kind: FindingKind) -> u64 {
        self.state.lock().counts.get(&kind).copied().unwrap_or(0)
    }

    /// Counts per kind, for kinds reported at least once.
    pub fn counts(&self) -> BTreeMap<FindingKind, u64> {
        self.state.lock().counts.clone()
    }

    /// Total findings reported since the last clear (dma-debug's `error_count`).
    pub fn total(&self) -> u64 {
        self.state.lock().counts.values().sum()
    }

    /// Findings reported but not kept because [`MAX_KEPT_FINDINGS`] were already kept.
    pub fn dropped(&self) -> u64 {
        self.state.lock().dropped
    }

    /// Forgets every finding and count (live mappings are kept).
    pub fn clear(&self) {
        let mut st = self.state.lock();
        st.kept.clear();
        st.counts.clear();
        st.dropped = 0;
    }

    /// Returns the kept findings and clears them and the counts.
    pub fn take(&self) -> Vec<Finding> {
        let mut st = self.state.lock();
        st.counts.clear();
        st.dropped = 0;
        std::mem::take(&mut st.kept)
            .into_iter()
            .map(|r| r.finding)
            .collect()
    }

    /// The live mappings of `device` (or of every device), oldest first.
    pub fn live_mappings(&self, device: Option<&str>) -> Vec<MappingInfo> {
        self.state
            .lock()
            .reg
            .list(device)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Teardown check (`dma_debug_device_change()` at driver unbind): reports a
    /// [`FindingKind::Leak`] if `device` still has live mappings, and returns how many it has.
    /// The mappings stay recorded. In strict mode a leak is an error.
    pub fn check_leaks(&self, device: &str) -> Result<usize, DmaError> {
        let mut st = self.state.lock();
        let n = st.reg.list(Some(device)).len();
        let f = rules::check_leaks(&st.reg, device);
        st.commit(f.into_iter().collect())?;
        Ok(n)
    }

    /// Sequence number of the latest finding, to pass to [`result_since`](Self::result_since).
    pub(crate) fn mark(&self) -> u64 {
        self.state.lock().seq
    }

    /// In strict mode, the first finding this thread raised after `mark`, as an error.
    pub(crate) fn result_since(&self, mark: u64) -> Result<(), DmaError> {
        let st = self.state.lock();
        if !st.strict {
            return Ok(());
        }
        let me = thread::current().id();
        match st.kept.iter().find(|r| r.seq > mark && r.thread == me) {
            Some(r) => Err(r.finding.clone().into()),
            None => Ok(()),
        }
    }

    /// Records a new mapping after the map rules; in strict mode a finding refuses it.
    /// `build` gets the mapping's id.
    pub(crate) fn add_mapping(
        &self,
        limits: SegmentLimits,
        build: impl FnOnce(u64) -> MappingInfo,
    ) -> Result<u64, DmaError> {
        let mut st = self.state.lock();
        let id = st.reg.next_id();
        let info = build(id);
        let findings = rules::check_map(&st.reg, &info, limits);
        st.commit(findings)?;
        st.reg.insert(info);
        Ok(id)
    }

    /// Checks an unmap and, unless strict mode refuses it, removes and returns the mapping.
    pub(crate) fn remove_mapping(&self, req: &UnmapRequest<'_>) -> Result<MappingInfo, DmaError> {
        let mut st = self.state.lock();
        let (id, findings) = rules::check_unmap(&st.reg, req);
        st.commit(findings)?;
        id.and_then(|id| st.reg.remove(id))
            .ok_or_else(|| DmaError::NotMapped {
                device: req.device.to_string(),
                addr: req.addr,
            })
    }

    /// Checks a sync; returns the kind of the synced mapping (`None`: not mapped).
    pub(crate) fn check_sync(
        &self,
        req: &SyncRequest<'_>,
    ) -> Result<Option<MappingKind>, DmaError> {
        let mut st = self.state.lock();
        let (id, findings) = rules::check_sync(&st.reg, req);
        st.commit(findings)?;
        let Some(m) = id.and_then(|id| st.reg.maps.get_mut(&id)) else {
            return Ok(None);
        };
        if req.to_cpu {
            m.syncs_for_cpu += 1;
        } else {
            m.syncs_for_device += 1;
        }
        Ok(Some(m.kind))
    }

    /// Starts watching a fence on memory (module `fences`); returns the watch's id for
    /// [`unwatch_fence`](Self::unwatch_fence). Watches of fences that signaled are forgotten.
    pub fn watch_fence(&self, w: FenceWatch) -> u64 {
        self.state.lock().watches.add(w)
    }

    /// Stops watching a fence: its job's bytes have all moved.
    pub fn unwatch_fence(&self, id: u64) {
        self.state.lock().watches.remove(id);
    }

    /// How many fences are watched (signaled ones may still count until the next watch).
    pub fn watched_fences(&self) -> usize {
        self.state.lock().watches.len()
    }

    /// The physical runs of `device`'s live mapping(s) covering DMA address `addr`: the memory
    /// a device's job reaches through that mapping, to name in a [`FenceWatch`].
    pub fn mapping_phys(&self, device: &str, addr: soc::DmaAddr) -> Vec<(PhysAddr, u64)> {
        let st = self.state.lock();
        let mut runs: Vec<(PhysAddr, u64)> = st
            .reg
            .containing(device, addr)
            .into_iter()
            .flat_map(|m| m.phys.iter().map(|r| (r.addr, r.len)))
            .collect();
        runs.sort_unstable_by_key(|r| r.0 .0);
        runs.dedup();
        runs
    }

    /// Strict-mode pre-check of a free: refuses to free memory that is still mapped.
    pub(crate) fn check_free_strict(&self, pa: PhysAddr, len: u64) -> Result<(), DmaError> {
        let mut st = self.state.lock();
        if !st.strict {
            return Ok(());
        }
        let findings = rules::check_free(&st.reg, pa, len);
        st.commit(findings)
    }

    /// Reports a free of `[pa, pa + len)` that bypassed [`Soc::free_pages`](soc::Soc::free_pages).
    pub(crate) fn report_free(&self, pa: PhysAddr, len: u64) {
        let mut st = self.state.lock();
        let findings = rules::check_free(&st.reg, pa, len);
        let _ = st.commit(findings);
    }
}

impl SocObserver for Checker {
    fn dma_access(&self, ev: &DmaAccess<'_>) {
        let mut st = self.state.lock();
        let mut findings = rules::check_access(&st.reg, ev);
        findings.extend(st.watches.check(ev));
        // Strict mode surfaces these through `result_since`; the observer cannot fail the access.
        let _ = st.commit(findings);
    }

    fn cpu_stale_read(&self, pa: PhysAddr, len: u64) {
        let mut st = self.state.lock();
        let f = rules::check_cpu_stale(&st.reg, pa, len);
        let _ = st.commit(vec![f]);
    }

    fn pages_freed(&self, pa: PhysAddr, len: u64) {
        self.report_free(pa, len);
    }

    fn iommu_fault(&self, rec: &IommuFaultRecord) {
        let mut st = self.state.lock();
        let f = rules::check_fault(&st.reg, rec);
        let _ = st.commit(vec![f]);
    }
}
