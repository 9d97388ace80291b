//! Addresses and sizes: the vocabulary every layer of the SoC speaks.
//!
//! C headers: `include/linux/types.h` (`phys_addr_t`, `dma_addr_t`), `include/linux/dma-mapping.h`
//! (`DMA_BIT_MASK`), `include/asm-generic/page.h` (`PAGE_SIZE`).
//!
//! A physical address ([`PhysAddr`]) names a byte in the SoC's physical address space: what the
//! memory controller decodes. A DMA address ([`DmaAddr`]) names a byte as one device sees it: for a
//! device behind an IOMMU it is an I/O virtual address that only means something in that device's
//! IOMMU domain; for a direct-mapped device it equals the physical address. The two are different
//! types so that handing a physical address to a device (the classic bug on IOMMU systems) does not
//! compile.

use serde::{Deserialize, Serialize};
use std::fmt;

/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// The page size of the SoC, for the page allocator and IOMMU page tables: 4 KiB.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// The CPU cache line size, the granule of cache maintenance: 64 bytes.
pub const CACHE_LINE_SIZE: u64 = 64;

/// `DMA_BIT_MASK(bits)`: the mask of a device that drives `bits` address lines.
///
/// ```
/// assert_eq!(soc::dma_bit_mask(32), 0xffff_ffff);
/// assert_eq!(soc::dma_bit_mask(64), u64::MAX);
/// ```
pub const fn dma_bit_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Rounds `x` up to a multiple of `align` (a power of two), or `None` on overflow.
pub const fn align_up(x: u64, align: u64) -> Option<u64> {
    match x.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Rounds `x` down to a multiple of `align` (a power of two).
pub const fn align_down(x: u64, align: u64) -> u64 {
    x & !(align - 1)
}

/// Number of pages needed to hold `bytes` bytes, or `None` on overflow.
pub const fn pages_for(bytes: u64) -> Option<u64> {
    match align_up(bytes, PAGE_SIZE) {
        Some(v) => Some(v >> PAGE_SHIFT),
        None => None,
    }
}

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The address `bytes` further on, or `None` if that overflows 64 bits.
            pub const fn checked_add(self, bytes: u64) -> Option<$name> {
                match self.0.checked_add(bytes) {
                    Some(v) => Some($name(v)),
                    None => None,
                }
            }

            /// The address `bytes` further on. Panics on overflow; use only on values already
            /// bounds-checked (inside a bank, inside a mapping).
            #[inline]
            pub const fn add(self, bytes: u64) -> $name {
                $name(self.0 + bytes)
            }

            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }

            /// The page frame number (`address >> PAGE_SHIFT`).
            pub const fn pfn(self) -> u64 {
                self.0 >> PAGE_SHIFT
            }

            /// The offset inside its page.
            pub const fn page_offset(self) -> u64 {
                self.0 & (PAGE_SIZE - 1)
            }
        }

        /// `address + bytes`, as C's `dma_addr + offset`. Panics on overflow past 64 bits, as
        /// integer addition does; [`checked_add`](Self::checked_add) for untrusted offsets.
        impl std::ops::Add<u64> for $name {
            type Output = $name;
            #[inline]
            fn add(self, bytes: u64) -> $name {
                match self.0.checked_add(bytes) {
                    Some(v) => $name(v),
                    None => panic!("{} {:#x} + {:#x} overflows 64 bits", stringify!($name), self.0, bytes),
                }
            }
        }

        /// `address += bytes` (see the `Add<u64>` impl).
        impl std::ops::AddAssign<u64> for $name {
            #[inline]
            fn add_assign(&mut self, bytes: u64) {
                *self = *self + bytes;
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:#x})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// A physical address (`phys_addr_t`): a byte in the SoC's physical address space.
    PhysAddr
);
address_type!(
    /// A bus address as one device sees it (`dma_addr_t`): an IOVA behind an IOMMU, else equal
    /// to the physical address.
    DmaAddr
);

/// Formats a byte count the way people read sizes: `4 KiB`, `12.0 MiB`, `3 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >> (10 * (unit + 1)) > 0 {
        unit += 1;
    }
    let scale = 1u64 << (10 * unit);
    if bytes.is_multiple_of(scale) {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        format!("{:.1} {}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_bit_mask_matches_the_kernel_macro() {
        assert_eq!(dma_bit_mask(0), 0);
        assert_eq!(dma_bit_mask(30), 0x3fff_ffff);
        assert_eq!(dma_bit_mask(40), 0xff_ffff_ffff);
        assert_eq!(dma_bit_mask(64), u64::MAX);
        assert_eq!(dma_bit_mask(99), u64::MAX);
    }

    #[test]
    fn alignment_helpers_round_and_detect_overflow() {
        assert_eq!(align_up(1, PAGE_SIZE), Some(PAGE_SIZE));
        assert_eq!(align_up(PAGE_SIZE, PAGE_SIZE), Some(PAGE_SIZE));
        assert_eq!(align_up(u64::MAX, PAGE_SIZE), None);
        assert_eq!(align_down(PAGE_SIZE + 5, PAGE_SIZE), PAGE_SIZE);
        assert_eq!(pages_for(0), Some(0));
        assert_eq!(pages_for(12_441_600), Some(3038));
    }

    #[test]
    fn addresses_print_in_hex_and_know_their_page() {
        let pa = PhysAddr(0x4000_1234);
        assert_eq!(pa.to_string(), "0x40001234");
        assert_eq!(format!("{pa:?}"), "PhysAddr(0x40001234)");
        assert_eq!(pa.pfn(), 0x40001);
        assert_eq!(pa.page_offset(), 0x234);
        assert!(!pa.is_aligned(PAGE_SIZE));
        assert_eq!(DmaAddr(u64::MAX).checked_add(1), None);
    }

    #[test]
    fn addresses_add_offsets_with_plus() {
        let mut iova = DmaAddr(0xffff_0000) + PAGE_SIZE;
        assert_eq!(iova, DmaAddr(0xffff_1000));
        iova += 0x10;
        assert_eq!(iova, DmaAddr(0xffff_1010));
        assert_eq!(PhysAddr(0x4000_0000) + 0x234, PhysAddr(0x4000_0234));
    }

    #[test]
    #[should_panic(expected = "DmaAddr 0xffffffffffffffff + 0x1 overflows 64 bits")]
    fn address_plus_offset_overflow_panics_like_integer_addition() {
        let _ = DmaAddr(u64::MAX) + 1;
    }

    #[test]
    fn human_size_prints_exact_units_when_it_can() {
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(3 << 30), "3 GiB");
        assert_eq!(human_size(12_441_600), "11.9 MiB");
        assert_eq!(human_size(100), "100 B");
    }
}
