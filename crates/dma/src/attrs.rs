//! Directions and attributes of a DMA mapping.
//!
//! C header: `include/linux/dma-direction.h` (`enum dma_data_direction`),
//! `include/linux/dma-mapping.h` (`DMA_ATTR_*`).
//!
//! The direction says who moves the bytes, and so which cache maintenance a non-coherent device
//! needs (see [`crate::mapping`]): the device reads the buffer ([`DmaDirection::ToDevice`]), writes
//! it ([`DmaDirection::FromDevice`]), or both ([`DmaDirection::Bidirectional`]). Behind an IOMMU the
//! direction also becomes the page protection: a device writing into a `ToDevice` mapping faults.
//!
//! Attributes ([`DmaAttrs`]) are typed flags that carry the kernel names in their docs; they combine
//! with `|`.

use soc::IommuProt;
use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// `enum dma_data_direction`: which way the data of a mapping flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DmaDirection {
    /// `DMA_BIDIRECTIONAL`: the device may read and write.
    Bidirectional,
    /// `DMA_TO_DEVICE`: the device only reads (the CPU produced the data).
    ToDevice,
    /// `DMA_FROM_DEVICE`: the device only writes (the CPU consumes the data).
    FromDevice,
}

impl DmaDirection {
    /// The kernel's name (`"DMA_TO_DEVICE"`), as dma-debug prints it.
    ///
    /// ```
    /// assert_eq!(dma::DmaDirection::FromDevice.c_name(), "DMA_FROM_DEVICE");
    /// ```
    pub const fn c_name(self) -> &'static str {
        match self {
            DmaDirection::Bidirectional => "DMA_BIDIRECTIONAL",
            DmaDirection::ToDevice => "DMA_TO_DEVICE",
            DmaDirection::FromDevice => "DMA_FROM_DEVICE",
        }
    }

    /// Whether the device may read a mapping made in this direction.
    pub const fn device_reads(self) -> bool {
        !matches!(self, DmaDirection::FromDevice)
    }

    /// Whether the device may write a mapping made in this direction.
    pub const fn device_writes(self) -> bool {
        !matches!(self, DmaDirection::ToDevice)
    }

    /// The IOMMU page protection for this direction (`dma_info_to_prot()` in
    /// `drivers/iommu/dma-iommu.c`).
    pub const fn prot(self) -> IommuProt {
        IommuProt {
            read: self.device_reads(),
            write: self.device_writes(),
        }
    }
}

impl fmt::Display for DmaDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.c_name())
    }
}

/// `unsigned long attrs`: flags that change how a mapping or allocation is made.
///
/// ```
/// use dma::DmaAttrs;
/// let a = DmaAttrs::SKIP_CPU_SYNC | DmaAttrs::WEAK_ORDERING;
/// assert!(a.contains(DmaAttrs::SKIP_CPU_SYNC));
/// assert!(!a.contains(DmaAttrs::NO_KERNEL_MAPPING));
/// assert_eq!(a.to_string(), "DMA_ATTR_WEAK_ORDERING|DMA_ATTR_SKIP_CPU_SYNC");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DmaAttrs(u32);

impl DmaAttrs {
    /// No attribute.
    pub const NONE: DmaAttrs = DmaAttrs(0);
    /// `DMA_ATTR_WEAK_ORDERING`: accepted and recorded; the simulated bus is always ordered.
    pub const WEAK_ORDERING: DmaAttrs = DmaAttrs(1 << 1);
    /// `DMA_ATTR_WRITE_COMBINE`: the CPU mapping of an allocation is write-combined (the
    /// simulated CPU then uses its uncached path for the buffer).
    pub const WRITE_COMBINE: DmaAttrs = DmaAttrs(1 << 2);
    /// `DMA_ATTR_NO_KERNEL_MAPPING`: an allocation gets no CPU mapping; its CPU accessors refuse.
    pub const NO_KERNEL_MAPPING: DmaAttrs = DmaAttrs(1 << 4);
    /// `DMA_ATTR_SKIP_CPU_SYNC`: map and unmap do no cache maintenance; the caller syncs
    /// explicitly. Also exempts the mapping from dma-debug's overlapping-cacheline check.
    pub const SKIP_CPU_SYNC: DmaAttrs = DmaAttrs(1 << 5);
    /// `DMA_ATTR_FORCE_CONTIGUOUS`: an allocation is physically contiguous even when every
    /// device sits behind an IOMMU.
    pub const FORCE_CONTIGUOUS: DmaAttrs = DmaAttrs(1 << 6);
    /// `DMA_ATTR_ALLOC_SINGLE_PAGES`: an IOMMU allocation is built from order-0 pages only.
    pub const ALLOC_SINGLE_PAGES: DmaAttrs = DmaAttrs(1 << 7);
    /// `DMA_ATTR_NO_WARN`: failures are returned without a log line (we never log; recorded).
    pub const NO_WARN: DmaAttrs = DmaAttrs(1 << 8);
    /// `DMA_ATTR_PRIVILEGED`: accepted and recorded; the simulated IOMMU has no privilege levels.
    pub const PRIVILEGED: DmaAttrs = DmaAttrs(1 << 9);

    const NAMES: [(DmaAttrs, &'static str); 8] = [
        (DmaAttrs::WEAK_ORDERING, "DMA_ATTR_WEAK_ORDERING"),
        (DmaAttrs::WRITE_COMBINE, "DMA_ATTR_WRITE_COMBINE"),
        (DmaAttrs::NO_KERNEL_MAPPING, "DMA_ATTR_NO_KERNEL_MAPPING"),
        (DmaAttrs::SKIP_CPU_SYNC, "DMA_ATTR_SKIP_CPU_SYNC"),
        (DmaAttrs::FORCE_CONTIGUOUS, "DMA_ATTR_FORCE_CONTIGUOUS"),
        (DmaAttrs::ALLOC_SINGLE_PAGES, "DMA_ATTR_ALLOC_SINGLE_PAGES"),
        (DmaAttrs::NO_WARN, "DMA_ATTR_NO_WARN"),
        (DmaAttrs::PRIVILEGED, "DMA_ATTR_PRIVILEGED"),
    ];

    /// The raw bits, with the kernel's values.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: DmaAttrs) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for DmaAttrs {
    type Output = DmaAttrs;
    fn bitor(self, rhs: DmaAttrs) -> DmaAttrs {
        DmaAttrs(self.0 | rhs.0)
    }
}

impl BitOrAssign for DmaAttrs {
    fn bitor_assign(&mut self, rhs: DmaAttrs) {
        self.0 |= rhs.0;
    }
}

impl fmt::Display for DmaAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("0");
        }
        let mut first = true;
        for (flag, name) in DmaAttrs::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for DmaAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DmaAttrs({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_have_the_kernel_bit_values() {
        assert_eq!(DmaAttrs::WEAK_ORDERING.bits(), 1 << 1);
        assert_eq!(DmaAttrs::WRITE_COMBINE.bits(), 1 << 2);
        assert_eq!(DmaAttrs::NO_KERNEL_MAPPING.bits(), 1 << 4);
        assert_eq!(DmaAttrs::SKIP_CPU_SYNC.bits(), 1 << 5);
        assert_eq!(DmaAttrs::FORCE_CONTIGUOUS.bits(), 1 << 6);
        assert_eq!(DmaAttrs::ALLOC_SINGLE_PAGES.bits(), 1 << 7);
        assert_eq!(DmaAttrs::NO_WARN.bits(), 1 << 8);
        assert_eq!(DmaAttrs::PRIVILEGED.bits(), 1 << 9);
        assert_eq!(DmaAttrs::NONE.to_string(), "0");
    }

    #[test]
    fn direction_becomes_iommu_protection() {
        assert_eq!(
            DmaDirection::ToDevice.prot(),
            IommuProt {
                read: true,
                write: false
            }
        );
        assert_eq!(
            DmaDirection::FromDevice.prot(),
            IommuProt {
                read: false,
                write: true
            }
        );
        assert_eq!(
            DmaDirection::Bidirectional.prot(),
            IommuProt {
                read: true,
                write: true
            }
        );
    }
}
