//! Errors of the DMA mapping API.
//!
//! Every failure is a [`DmaError`] that names the offending value (the device, the segment, the
//! address, the constraint) and maps to the errno Linux gives for the same mistake
//! ([`AsErrno`]): `EINVAL` for bad arguments, `EIO` for a mapping the device cannot reach
//! (`dma_map_sgtable()` returns `-EIO` when dma-direct refuses an address above the mask),
//! `ENOMEM` for an allocation whose constraints no memory meets.

use crate::debug::Finding;
use soc::{DmaAddr, PhysAddr, SocError};
use thiserror::Error;
use uapi::{AsErrno, Errno};

/// What went wrong in a DMA API call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DmaError {
    /// The hardware model refused (unknown device or bank, out-of-range address, no memory...).
    #[error(transparent)]
    Soc(#[from] SocError),
    /// A size of zero where a size is required; names what was empty.
    #[error("{0}: size must not be zero")]
    ZeroSize(&'static str),
    /// A value that must be aligned is not.
    #[error("{what} {value:#x} is not aligned to {align:#x}")]
    Misaligned {
        /// What the value is (`"segment boundary"`, `"alignment"`).
        what: &'static str,
        /// The offending value.
        value: u64,
        /// The alignment it needed.
        align: u64,
    },
    /// An argument outside what the call accepts; the message names it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Direct mapping (no IOMMU) of a segment the device cannot address.
    #[error("{device}: sg entry {index} ({addr}+{len:#x}) is above the DMA mask {mask:#x}")]
    AboveMask {
        /// The device.
        device: String,
        /// Index of the offending sg entry (or 0 for a single mapping).
        index: usize,
        /// Its physical address.
        addr: PhysAddr,
        /// Its length.
        len: u64,
        /// The device's DMA mask.
        mask: u64,
    },
    /// An allocation for a set of devices could not meet one device's constraint.
    #[error("{device}: {constraint} cannot be met: {reason}")]
    ConstraintNotMet {
        /// The device whose constraint failed.
        device: String,
        /// The constraint (`"DMA mask 0x3fffffff"`, `"contiguous memory"`).
        constraint: String,
        /// Why (`"no memory below it in bank dram1"`).
        reason: String,
    },
    /// An sg entry marked page-backed lies outside every system bank, or a resource entry
    /// outside every bank.
    #[error("sg entry {index} ({addr}+{len:#x}): {reason}")]
    BadEntry {
        /// Index of the entry.
        index: usize,
        /// Its physical address.
        addr: PhysAddr,
        /// Its length.
        len: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The sg table is already mapped (for the named device); one table holds one mapping, as
    /// in Linux. Map a [`dup`](crate::SgTable::dup) of it instead.
    #[error("the sg table is already mapped for {0}")]
    AlreadyMapped(String),
    /// The sg table is not mapped.
    #[error("the sg table is not mapped")]
    TableNotMapped,
    /// No live mapping of this device starts at this address.
    #[error("{device}: no live DMA mapping at {addr}")]
    NotMapped {
        /// The device the call named.
        device: String,
        /// The DMA address the call named.
        addr: DmaAddr,
    },
    /// A device that needs physically contiguous memory was given a scattered sg table.
    #[error("{device} needs physically contiguous memory, the sg table has {runs} physical runs")]
    NotContiguous {
        /// The device.
        device: String,
        /// Physically contiguous runs in the table.
        runs: usize,
    },
    /// The mapping would have more segments than the device accepts.
    #[error("{device}: {nents} DMA segments exceed its max_segments {max}")]
    TooManySegments {
        /// The device.
        device: String,
        /// Segments the mapping needs.
        nents: usize,
        /// The device's limit.
        max: u32,
    },
    /// Strict mode: the DMA-API checker found a problem with this call, which was not carried out
    /// (for calls the checker sees before they happen) or whose finding is returned after it.
    #[error("DMA-API checker: {0}")]
    Checker(Box<Finding>),
    /// CPU access to an allocation made with `DMA_ATTR_NO_KERNEL_MAPPING`.
    #[error("the buffer was allocated with DMA_ATTR_NO_KERNEL_MAPPING: it has no CPU mapping")]
    NoKernelMapping,
    /// A range outside a buffer.
    #[error("{offset:#x}+{len:#x} is outside the buffer of {size:#x} bytes")]
    OutOfBounds {
        /// Offset of the access.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Size of the buffer.
        size: u64,
    },
}

impl From<Finding> for DmaError {
    fn from(f: Finding) -> DmaError {
        DmaError::Checker(Box::new(f))
    }
}

impl AsErrno for DmaError {
    fn errno(&self) -> Errno {
        match self {
            DmaError::Soc(e) => e.errno(),
            DmaError::AboveMask { .. } => Errno::EIO,
            DmaError::ConstraintNotMet { .. } => Errno::ENOMEM,
            DmaError::NoKernelMapping => Errno::EFAULT,
            DmaError::ZeroSize(_)
            | DmaError::Misaligned { .. }
            | DmaError::InvalidArgument(_)
            | DmaError::BadEntry { .. }
            | DmaError::AlreadyMapped(_)
            | DmaError::TableNotMapped
            | DmaError::NotMapped { .. }
            | DmaError::NotContiguous { .. }
            | DmaError::TooManySegments { .. }
            | DmaError::Checker(_)
            | DmaError::OutOfBounds { .. } => Errno::EINVAL,
        }
    }
}
