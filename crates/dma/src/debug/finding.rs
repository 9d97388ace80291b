//! Findings: what the checker reports, as values.
//!
//! C side: every `err_printk()` of `kernel/dma/debug.c`. Where the kernel prints a warning with a
//! stack trace, we keep a [`Finding`]: its [`FindingKind`], the device, the address (a DMA address
//! or a physical one, [`FindingAddr`]), the size, and a context string that says what was expected
//! and what happened, in the kernel's words where it has them.

use serde::Serialize;
use soc::{DmaAddr, PhysAddr};
use std::fmt;

/// The class of a finding. The first group mirrors `kernel/dma/debug.c`; the second needs the
/// simulated bus and has no kernel counterpart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingKind {
    /// Unmap or free of an address that was never mapped ("tries to free DMA memory it has not
    /// allocated").
    UnmapUnknown,
    /// Unmap with a size different from the mapped one.
    UnmapWrongSize,
    /// Unmap with the wrong function (single, sg, resource, coherent).
    UnmapWrongType,
    /// Unmap of an sg list with a different nents than it was mapped with.
    UnmapWrongNents,
    /// Unmap with a direction different from the mapped one.
    UnmapWrongDirection,
    /// Sync of memory that is not mapped.
    SyncUnmapped,
    /// Sync outside the mapped range (offset + size beyond the mapping).
    SyncOutOfRange,
    /// Sync with a direction different from the mapping's (not reported for BIDIRECTIONAL).
    SyncWrongDirection,
    /// sync_for_cpu, for reading, of a mapping the device only reads (TO_DEVICE).
    SyncReadOnlyForCpu,
    /// sync_for_device, for the device to read, of a mapping the device only writes (FROM_DEVICE).
    SyncWriteOnlyForDevice,
    /// A mapped segment longer than the device's max segment size (CONFIG_DMA_API_DEBUG_SG).
    SegmentTooLong,
    /// A mapped segment crossing the device's segment boundary (CONFIG_DMA_API_DEBUG_SG).
    SegmentCrossesBoundary,
    /// Two active mappings share a cacheline ("cacheline tracking EEXIST").
    OverlappingMapping,
    /// Mappings still live when the device is torn down.
    Leak,
    /// A device accessed DMA addresses that none of its live mappings covers.
    AccessOutsideMapping,
    /// A device accessed a live mapping against its direction (wrote a TO_DEVICE mapping, read a
    /// FROM_DEVICE one); behind an IOMMU this is a fault instead.
    AccessAgainstDirection,
    /// A non-coherent device read bytes the CPU wrote and nobody cleaned: it got old data.
    StaleCpuData,
    /// The CPU read cache lines a non-coherent device wrote under: it got old data.
    CpuStaleRead,
    /// Memory was freed while a DMA mapping still covers it.
    FreeWhileMapped,
    /// An IOMMU refused a device access.
    IommuFault,
    /// A device accessed memory while another device's conflicting fence on it was unsignalled
    /// (a write under any fence, a read under a write fence): it did not wait
    /// ([`FenceWatch`](super::FenceWatch)).
    FenceConflict,
}

impl FindingKind {
    /// Every kind, in declaration order.
    pub const ALL: [FindingKind; 21] = [
        FindingKind::UnmapUnknown,
        FindingKind::UnmapWrongSize,
        FindingKind::UnmapWrongType,
        FindingKind::UnmapWrongNents,
        FindingKind::UnmapWrongDirection,
        FindingKind::SyncUnmapped,
        FindingKind::SyncOutOfRange,
        FindingKind::SyncWrongDirection,
        FindingKind::SyncReadOnlyForCpu,
        FindingKind::SyncWriteOnlyForDevice,
        FindingKind::SegmentTooLong,
        FindingKind::SegmentCrossesBoundary,
        FindingKind::OverlappingMapping,
        FindingKind::Leak,
        FindingKind::AccessOutsideMapping,
        FindingKind::AccessAgainstDirection,
        FindingKind::StaleCpuData,
        FindingKind::CpuStaleRead,
        FindingKind::FreeWhileMapped,
        FindingKind::IommuFault,
        FindingKind::FenceConflict,
    ];

    /// A short kebab-case name for reports (`"stale-cpu-data"`).
    pub const fn name(self) -> &'static str {
        match self {
            FindingKind::UnmapUnknown => "unmap-unknown",
            FindingKind::UnmapWrongSize => "unmap-wrong-size",
            FindingKind::UnmapWrongType => "unmap-wrong-type",
            FindingKind::UnmapWrongNents => "unmap-wrong-nents",
            FindingKind::UnmapWrongDirection => "unmap-wrong-direction",
            FindingKind::SyncUnmapped => "sync-unmapped",
            FindingKind::SyncOutOfRange => "sync-out-of-range",
            FindingKind::SyncWrongDirection => "sync-wrong-direction",
            FindingKind::SyncReadOnlyForCpu => "sync-read-only-for-cpu",
            FindingKind::SyncWriteOnlyForDevice => "sync-write-only-for-device",
            FindingKind::SegmentTooLong => "segment-too-long",
            FindingKind::SegmentCrossesBoundary => "segment-crosses-boundary",
            FindingKind::OverlappingMapping => "overlapping-mapping",
            FindingKind::Leak => "leak",
            FindingKind::AccessOutsideMapping => "access-outside-mapping",
            FindingKind::AccessAgainstDirection => "access-against-direction",
            FindingKind::StaleCpuData => "stale-cpu-data",
            FindingKind::CpuStaleRead => "cpu-stale-read",
            FindingKind::FreeWhileMapped => "free-while-mapped",
            FindingKind::IommuFault => "iommu-fault",
            FindingKind::FenceConflict => "fence-conflict",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The address a finding is about: as the device saw it, or as physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingAddr {
    /// A DMA address of the finding's device.
    Dma(DmaAddr),
    /// A physical address (CPU reads, frees).
    Phys(PhysAddr),
}

impl fmt::Display for FindingAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindingAddr::Dma(a) => write!(f, "dma {a}"),
            FindingAddr::Phys(a) => write!(f, "phys {a}"),
        }
    }
}

/// One report of the checker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What class of mistake.
    pub kind: FindingKind,
    /// The device concerned (`"cpu"` when no device could be named).
    pub device: String,
    /// Where.
    pub address: FindingAddr,
    /// How many bytes.
    pub size: u64,
    /// What was expected and what happened.
    pub context: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {}: {} +{:#x}: {}",
            self.kind, self.device, self.address, self.size, self.context
        )
    }
}
