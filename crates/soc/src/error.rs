//! Errors of the simulated hardware.
//!
//! Every failure is a [`SocError`] value that names what was wrong (the address, the device, the
//! field) and maps to the errno Linux would give for the same mistake ([`AsErrno`]). Nothing
//! reachable from the public API panics on bad input.

use crate::addr::{DmaAddr, PhysAddr};
use thiserror::Error;
use uapi::{AsErrno, Errno};

/// What went wrong in the hardware model.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SocError {
    /// A machine description is inconsistent; the message names the field.
    #[error("invalid SoC description: {0}")]
    InvalidDesc(String),
    /// No bank has this name.
    #[error("no bank named `{0}`")]
    UnknownBank(String),
    /// No device has this name.
    #[error("no device named `{0}`")]
    UnknownDevice(String),
    /// No IOMMU has this name.
    #[error("no IOMMU named `{0}`")]
    UnknownIommu(String),
    /// A physical access that is not wholly inside one bank (a hole, or past the end).
    #[error("physical access {addr}+{len:#x} is outside every bank")]
    OutOfRange {
        /// First byte of the access.
        addr: PhysAddr,
        /// Length of the access.
        len: u64,
    },
    /// A size of zero where a size is required.
    #[error("{0}: size must not be zero")]
    ZeroSize(&'static str),
    /// A value that must be aligned is not.
    #[error("{what} {value:#x} is not aligned to {align:#x}")]
    Misaligned {
        /// What the value is (`"bank base"`, `"CMA size"`).
        what: &'static str,
        /// The offending value.
        value: u64,
        /// The required alignment.
        align: u64,
    },
    /// An argument outside what the call accepts; the message names it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Memory that satisfies the request is not available.
    #[error("out of memory: {0}")]
    NoMemory(String),
    /// The resource is in use (pinned pages block a CMA migration, a domain still has mappings).
    #[error("busy: {0}")]
    Busy(String),
    /// A device touched an I/O virtual address its IOMMU domain does not map. No byte was
    /// read or written.
    #[error("IOMMU fault: {device} {} at {iova} (+{len:#x}) is not mapped for that access", if *.write { "write" } else { "read" })]
    IommuFault {
        /// The device that faulted.
        device: String,
        /// First unmapped I/O virtual address of the access.
        iova: DmaAddr,
        /// Length of the whole access.
        len: u64,
        /// Whether the access was a write.
        write: bool,
    },
    /// A direct-mapped device addressed memory above its DMA mask. No byte was touched.
    #[error("{device} cannot reach {addr}+{len:#x}: above its DMA mask {mask:#x}")]
    AboveDmaMask {
        /// The device.
        device: String,
        /// First byte of the access.
        addr: DmaAddr,
        /// Length of the access.
        len: u64,
        /// The device's mask.
        mask: u64,
    },
    /// No CMA region has this name.
    #[error("no CMA region named `{0}`")]
    UnknownCma(String),
    /// A free or release of memory that is not currently allocated as described (a double free,
    /// a wild address, or a range that was never handed out). Nothing changed.
    #[error("{what}: {addr}+{len:#x} is not allocated (double free or wild address)")]
    NotAllocated {
        /// Which allocator refused (`"free_pages"`, `"cma_release"`, `"gen_pool_free"`).
        what: &'static str,
        /// First byte of the range the caller gave.
        addr: PhysAddr,
        /// Length of the range the caller gave.
        len: u64,
    },
    /// `free_pages` with an order other than the one the block was allocated with. Nothing changed.
    #[error("free_pages({addr}, order {given}): the block was allocated with order {allocated}")]
    WrongOrder {
        /// The block's address.
        addr: PhysAddr,
        /// The order the caller passed.
        given: u32,
        /// The order the block was allocated with.
        allocated: u32,
    },
    /// An IOMMU map would overlap a live mapping of the domain (the page-table code's `-EEXIST`).
    /// Nothing was mapped.
    #[error("IOMMU map of {iova}+{len:#x} overlaps the live mapping at {existing}")]
    IommuMapExists {
        /// First I/O virtual address of the refused map.
        iova: DmaAddr,
        /// Length of the refused map.
        len: u64,
        /// Start of a live mapping it overlaps.
        existing: DmaAddr,
    },
}

impl AsErrno for SocError {
    fn errno(&self) -> Errno {
        match self {
            SocError::InvalidDesc(_)
            | SocError::ZeroSize(_)
            | SocError::Misaligned { .. }
            | SocError::InvalidArgument(_)
            | SocError::UnknownBank(_)
            | SocError::UnknownIommu(_) => Errno::EINVAL,
            SocError::UnknownCma(_)
            | SocError::NotAllocated { .. }
            | SocError::WrongOrder { .. } => Errno::EINVAL,
            SocError::UnknownDevice(_) => Errno::ENODEV,
            SocError::OutOfRange { .. } => Errno::EFAULT,
            SocError::NoMemory(_) => Errno::ENOMEM,
            SocError::Busy(_) => Errno::EBUSY,
            SocError::IommuFault { .. } | SocError::AboveDmaMask { .. } => Errno::EIO,
            SocError::IommuMapExists { .. } => Errno::EEXIST,
        }
    }
}
