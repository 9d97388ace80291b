//! The DMA mapping API (kernel/dma) over the simulated SoC.
//!
//! C header: `include/linux/dma-mapping.h`; C side: `kernel/dma/` (`mapping.c`, `direct.c`,
//! `debug.c`), `drivers/iommu/dma-iommu.c`, `lib/scatterlist.c`.
//!
//! A device never sees a CPU pointer: it sees **DMA addresses**, which are physical addresses for
//! a device without an IOMMU and I/O virtual addresses for one behind an IOMMU. This crate is the
//! layer that turns memory into DMA addresses for one device and keeps the CPU caches honest
//! around it:
//!
//! - [`SgTable`] describes a buffer as physically contiguous runs ([`sg`]);
//! - [`DmaApi`] maps and unmaps it for a device and syncs it between CPU and device
//!   ([`mapping`]), with a [`DmaDirection`] and [`DmaAttrs`];
//! - [`DmaApi::alloc_attrs_for_devices`] allocates one buffer that several devices can all use
//!   (seed 002's `dma_alloc_attrs_for_devices`, [`alloc`]);
//! - the [`Checker`] is CONFIG_DMA_API_DEBUG, and more: it also watches the simulated bus and
//!   reports devices touching unmapped memory, stale cache lines and frees of mapped memory
//!   ([`debug`]).
//!
//! # Tutorial: a buffer through a non-coherent device and back
//! The ISP of the default SoC sits behind an IOMMU and does not snoop the CPU caches. The CPU
//! fills a buffer, the ISP reads it and writes its answer, and the CPU reads the answer: every
//! hand-over needs its cache maintenance, which `map`/`sync`/`unmap` do.
//!
//! ```
//! use dma::{DmaApi, DmaAttrs, DmaDirection, FindingKind, SgTable, SegmentLimits};
//! use soc::{AllocRequest, Soc, SocDesc};
//!
//! let soc = Soc::new(SocDesc::default_soc())?;
//! let api = DmaApi::new(&soc);
//! let isp = api.device("isp0")?;
//!
//! // Two scattered pages of system RAM, as one sg table.
//! let pages = [soc.pages().alloc_pages(&AllocRequest::new(0))?, soc.pages().alloc_pages(&AllocRequest::new(0))?];
//! let mut sgt = SgTable::from_pages(&pages, SegmentLimits::of_device(&isp)?)?;
//!
//! // The CPU writes through its cache; mapping TO the device cleans the lines to memory.
//! soc.cpu().write(pages[0].addr, b"hello")?;
//! api.map_sg(&isp, &mut sgt, DmaDirection::Bidirectional, DmaAttrs::NONE)?;
//! let iova = sgt.dma_address().unwrap();
//! assert!(sgt.is_dma_contiguous(), "the IOMMU made the two pages one IOVA range");
//!
//! // The device reads what the CPU wrote, then writes its answer.
//! let mut got = [0u8; 5];
//! api.device_read(&isp, iova, &mut got)?;
//! assert_eq!(&got, b"hello");
//! api.device_write(&isp, iova, b"HELLO")?;
//!
//! // Sync for the CPU drops the stale lines; the CPU now reads the device's bytes.
//! api.sync_sg_for_cpu(&isp, &sgt, DmaDirection::Bidirectional)?;
//! let mut back = [0u8; 5];
//! api.cpu_read(pages[0].addr, &mut back)?;
//! assert_eq!(&back, b"HELLO");
//!
//! api.unmap_sg(&isp, &mut sgt, DmaDirection::Bidirectional, DmaAttrs::NONE)?;
//! for p in pages {
//!     api.free_pages(p)?;
//! }
//! assert_eq!(api.checker().total(), 0, "{:?}", api.checker().findings());
//! assert_eq!(api.checker().count(FindingKind::StaleCpuData), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Leave out the `sync_sg_for_cpu` and the CPU reads `hello` from its stale cache lines, and the
//! checker reports a [`FindingKind::CpuStaleRead`] naming `isp0` and its mapping.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod alloc;
pub mod attrs;
pub mod debug;
pub mod error;
mod iova;
pub mod mapping;
pub mod sg;

pub use alloc::{DeviceNeeds, DmaBuffer, DmaHandle};
pub use attrs::{DmaAttrs, DmaDirection};
pub use debug::{
    Checker, FenceWatch, Finding, FindingAddr, FindingKind, MappingInfo, MappingKind, PhysRun,
};
pub use error::DmaError;
pub use mapping::DmaApi;
pub use sg::{DmaSegment, SegmentLimits, SgBacking, SgEntry, SgMapping, SgTable};
