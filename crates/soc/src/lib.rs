//! A simulated system-on-chip whose devices really move bytes.
//!
//! The bottom layer of `dmabuf`: the hardware that Linux's DMA API, dma-buf and videobuf2 run on,
//! modelled closely enough that a missing cache clean, a wrong DMA mask or a forgotten IOMMU map
//! shows up as wrong bytes and a typed error, never as silence.
//!
//! A [`Soc`] is one whole machine, built from a plain-data [`SocDesc`]:
//! - [`PhysMem`]: banks of physical memory (system RAM, carveouts, device-local VRAM), lazily
//!   backed by host memory;
//! - [`PageAllocator`] (buddy + CMA) over the system banks, [`GenPool`] over the others;
//! - [`Cpu`]: loads and stores through a write-back cache, and the cache maintenance the DMA API
//!   does ([`Cpu::clean`], [`Cpu::invalidate`]);
//! - [`Iommu`]s with a default [`IommuDomain`] per device: IOVA allocator, page tables, faults;
//! - [`Device`]s whose DMA engines read, write and copy at DMA addresses, translated on every
//!   access;
//! - [`SocObserver`]s that watch every access, fault, stale CPU read and free.
//!
//! # Tutorial: one page through an IOMMU
//! Build the bundled machine, give the ISP (behind `smmu0`, not cache-coherent) a page through its
//! IOMMU, let it DMA into the page, and read the result on the CPU:
//!
//! ```
//! use soc::{AllocRequest, DmaAddr, IommuProt, Soc, SocDesc, SocError, PAGE_SIZE};
//!
//! # fn main() -> Result<(), soc::SocError> {
//! let soc = Soc::new(SocDesc::default_soc())?;
//! let isp = soc.device("isp0")?;
//!
//! // A physical page, and an I/O virtual address for it in the ISP's domain.
//! let page = soc.pages().alloc_pages(&AllocRequest::new(0))?;
//! let domain = isp.iommu_domain().expect("isp0 sits behind smmu0");
//! let iova = domain.alloc_iova(PAGE_SIZE, PAGE_SIZE, isp.dma_mask())?;
//! domain.map(iova, page.addr, PAGE_SIZE, IommuProt::READ_WRITE)?;
//!
//! // The device writes through its IOMMU; an unmapped IOVA faults and moves nothing.
//! isp.dma_write(iova, b"hello from the ISP")?;
//! let fault = isp.dma_write(DmaAddr(0x10_0000), b"x").unwrap_err();
//! assert!(matches!(fault, SocError::IommuFault { .. }));
//!
//! // isp0 does not snoop: the CPU invalidates its cache before reading
//! // (what dma_sync_single_for_cpu(DMA_FROM_DEVICE) does), then reads the device's bytes.
//! soc.cpu().invalidate(page.addr, PAGE_SIZE)?;
//! let mut buf = [0u8; 18];
//! soc.cpu().read(page.addr, &mut buf)?;
//! assert_eq!(&buf, b"hello from the ISP");
//!
//! domain.unmap(iova, PAGE_SIZE)?;
//! domain.free_iova(iova, PAGE_SIZE)?;
//! soc.free_pages(page)?;
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod buddy;
pub mod bundled;
pub mod cache;
pub mod chunk;
pub mod cma;
pub mod desc;
pub mod device;
pub mod error;
pub mod genpool;
pub mod ids;
pub mod iommu;
mod migrate;
pub mod observer;
pub mod page_alloc;
pub mod phys;
pub mod timing;
mod zone;
// The `Soc` type lives in `machine.rs`: a public `soc::soc` module would make `use soc::*`
// ambiguous.
pub mod machine;

pub use addr::{
    align_down, align_up, dma_bit_mask, human_size, pages_for, DmaAddr, PhysAddr, CACHE_LINE_SIZE,
    PAGE_SHIFT, PAGE_SIZE,
};
pub use buddy::{MAX_ORDER, NR_ORDERS};
pub use cache::{CacheStats, Cpu};
pub use chunk::PhysChunk;
pub use cma::{CmaInfo, CMA_MAX_ALIGN_ORDER};
pub use desc::{BankDesc, BankKind, ByteSize, CacheDesc, CmaDesc, DeviceDesc, IommuDesc, SocDesc};
pub use device::{CacheMaintenance, CacheOp, Device, DeviceStats, COPY_BURST};
pub use error::SocError;
pub use genpool::GenPool;
pub use ids::MachineIds;
pub use iommu::{Iommu, IommuDomain, IommuProt, FAULT_LOG_LEN};
pub use machine::{Soc, MAX_CACHE_SIZE};
pub use observer::{DmaAccess, FaultReason, IommuFaultRecord, SocObserver};
pub use page_alloc::{AllocRequest, MovableOwner, Page, PageAllocStats, PageAllocator, ZoneStats};
pub use phys::{Bank, BankId, PhysMem, CHUNK_SIZE};
