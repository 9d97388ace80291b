//! The simulated kernel around dma-buf: what a process sees of `fs/`, `mm/` and the dma-buf
//! exporters that live in the kernel proper.
//!
//! C side: `fs/file.c` and `fs/file_table.c` (fd tables, files), `drivers/dma-buf/dma-heap.c`
//! and `drivers/dma-buf/heaps/` (the system, CMA and carveout heaps), `mm/memfd.c` (memfds and
//! seals), `drivers/dma-buf/udmabuf.c`, and the system-call layer user space crosses
//! (`drivers/dma-buf/dma-buf.c`'s ioctl dispatchers, `fs/read_write.c`, `fs/select.c`).
//!
//! # The concept
//!
//! A [`Kernel`] is one booted machine: a simulated SoC with its DMA API, the machine's buffer
//! registry (debugfs `bufinfo`), its heaps, and the processes spawned on it. A [`Process`] holds
//! an fd table of [`File`]s (dma-bufs, heaps, memfds, sync files, `/dev/udmabuf`) and its
//! mappings; the heaps, memfd and udmabuf add their calls to it. [`sim::SimProcess`] answers the
//! `seam` crate's `Uapi` trait with all of that, errno for errno, so the conformance suites that
//! judge a real kernel judge this one too.
//!
//! The dma-buf core itself (buffers, attachments, CPU access) is the `dmabuf` crate; this crate
//! only exports into it and imports from it.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod accounting;
pub mod exercise;
pub mod file;
pub mod heap;
pub mod kernel;
pub mod memcg;
pub mod memfd;
pub mod process;
pub mod sim;
mod sim_fops;
mod sim_vfs;
pub mod udmabuf;
pub mod vgem_fence;

pub use accounting::{HeldBuffer, ProcessDmaBufUsage};
pub use file::{Fd, File, FileObject};
pub use heap::DmaHeap;
pub use kernel::{Kernel, UdmabufLimits};
pub use memcg::{MemCgroup, MemcgCharge};
pub use memfd::Memfd;
pub use process::{Process, UserMapping};
pub use udmabuf::UdmabufItem;
