//! The dma-buf core (`drivers/dma-buf/dma-buf.c`) over the simulated SoC.
//!
//! C header: `include/linux/dma-buf.h`; C side: `drivers/dma-buf/dma-buf.c`.
//!
//! A driver *exports* its memory as a [`DmaBuf`] with its [`DmaBufOps`]; user space passes the
//! buffer around as an fd; every importing driver *attaches* its device ([`DmaBuf::attach`]) and
//! *maps* when it needs the memory ([`Attachment::map`]), getting an sg table with DMA addresses
//! for its own device. The CPU reaches the bytes through [`DmaBuf::mmap`] or [`DmaBuf::vmap`],
//! bracketed by [`DmaBuf::begin_cpu_access`]/[`DmaBuf::end_cpu_access`]. Fences in the buffer's
//! reservation object order the accesses ([`DmaBuf::export_sync_file`],
//! [`DmaBuf::import_sync_file`], [`DmaBuf::poll`]).
//!
//! # Tutorial: one buffer, two devices, the CPU
//! ```
//! use dma::DmaDirection;
//! use dmabuf::testing::{mock_dma, MockExporter};
//!
//! let dma = mock_dma();
//! let exporter = MockExporter::new();
//! let buf = exporter.export(&dma, 4 * 4096)?;         // no storage yet (seed 000)
//!
//! // The ISP attaches and maps: the exporter allocates where the ISP can reach.
//! let isp = buf.attach(&dma.device("isp0")?)?;
//! let sgt = isp.map_unlocked(DmaDirection::Bidirectional)?;
//! let iova = sgt.dma_address().unwrap();
//! dma.device_write(isp.device(), iova, b"frame")?;
//!
//! // The CPU reads it through an mmap, bracketed for coherence.
//! let m = buf.mmap(0, 4096, false)?;
//! buf.begin_cpu_access(DmaDirection::FromDevice)?;
//! let mut got = [0u8; 5];
//! m.read(0, &mut got)?;
//! buf.end_cpu_access(DmaDirection::FromDevice)?;
//! assert_eq!(&got, b"frame");
//!
//! isp.unmap_unlocked(sgt)?;
//! buf.detach(isp)?;
//! drop((m, buf));                                      // last reference: release runs once
//! assert_eq!(exporter.counters.release.load(std::sync::atomic::Ordering::SeqCst), 1);
//! assert_eq!(dma.checker().total(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Map of the core
//! * [`buf`]: [`DmaBuf`], [`ExportInfo`], export validation, names, fdinfo, lifetime.
//! * [`ops`]: [`DmaBufOps`] (exporter) and [`ImporterOps`] (dynamic importer), with the locking
//!   table.
//! * [`attach`]: [`Attachment`], map/unmap, pin/unpin, move_notify.
//! * [`map_cache`]: [`MapCache`], the exporter-side mapping cache (seed 003).
//! * [`cpu_access`], [`mmap`]: begin/end_cpu_access, [`VMap`], [`CpuMapping`] (lazy faults, zap).
//! * [`sync_bridge`]: sync files and poll.
//! * [`debugfs`]: [`BufRegistry`], bufinfo.
//! * [`testing`]: [`MockExporter`](testing::MockExporter) for tests and examples.
//!
//! # Beside the core
//! The simulated kernel around it (processes, fds, heaps, memfd, udmabuf) is the `kernel` crate;
//! the constraint-solving exporter is `constraint`; the UAPI seam and its conformance suites are
//! `seam`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod attach;
pub mod buf;
pub mod cpu_access;
pub mod debugfs;
pub mod error;
pub mod map_cache;
pub mod mmap;
pub mod ops;
pub mod sync_bridge;
pub mod testing;

pub use attach::{AttachParams, Attachment, AttachmentInfo, ImporterPriv, MappedSgTable};
pub use buf::{DmaBuf, ExportInfo, WeakDmaBuf};
pub use cpu_access::{cpu_access_usage, VMap};
pub use debugfs::{BufInfo, BufRegistry, RegistryStats};
pub use error::DmaBufError;
pub use map_cache::{MapCache, MapCacheOptions};
pub use mmap::CpuMapping;
pub use ops::{AsAny, DmaBufOps, FaultPage, ImporterOps, IosysMap, OpsFeatures, ReleaseInfo};
