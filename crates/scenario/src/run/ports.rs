//! Which vb2 queues a run opens ([`super::vb2io`] is how they work).
//!
//! # The concept
//! - every consumer of a `memory = "dmabuf"`, `"mmap+expbuf"` or `"userptr"` link (a camera,
//!   thumbnailer or GPU excepted — a GPU imports its buffers into its driver — and a p2p GPU's
//!   links, read through dynamic attachments) gets an
//!   OUTPUT queue, memory DMABUF: whatever the link's memory, it hands out dma-buf fds;
//! - a camera or ISP producer of a `"dmabuf"` link gets a CAPTURE queue, memory DMABUF, and
//!   of a `"mmap+expbuf"` link the MMAP CAPTURE queue its buffers were made in
//!   (`VIDIOC_CREATE_BUFS`, [`World::mmap_create_buf`]), and of a `"userptr"` link a USERPTR
//!   CAPTURE queue ([`World::link_udmabuf`]).
//!
//! # `memory = "userptr"`
//! The buffers are the producer process's own memory: a sealed memfd (`F_SEAL_SHRINK`, so the
//! pages a device holds never go away under it) mapped shared into the process's address space
//! ([`vb2::UserMemory::mmap_memfd`]). A V4L2 producer (camera, ISP, scaler, decoder, or an
//! encoder's bitstream) QBUFs that address as
//! `V4L2_MEMORY_USERPTR` into its CAPTURE queue: vb2 pins the pages (`get_userptr`), maps them
//! for the device, re-pins only when the pointer or length changes, and unpins at REQBUFS(0) or
//! close (`put_userptr`). The consumers get the same pages the way a real pipeline passes user
//! memory to another device: a udmabuf of the memfd (`UDMABUF_CREATE`), passed by fd. A copy
//! would be the other choice, but it would add a CPU pass per frame that no zero-copy pipeline
//! makes, and the consumer would not read what the producer's device wrote. Other producers (a
//! GPU, which is not a V4L2 device) write through their import of the udmabuf.
//!
//! Locking and lifetime: single-threaded (the runner's loop); the queues live in
//! [`World::ports`] until the run closes them.

use super::vb2io::{vb2_fail, Port, SLOTS};
use super::world::{RunFailure, World};
use crate::schema::{DriverKind, MapPolicy as NodeMapPolicy, MemoryType};
use drivers::media::ReadyList;
use vb2::{Allocator, BufType, MapPolicy, Memory, Vb2Error, Vb2Fh, Vb2QueueConfig};

impl World {
    /// The queue configuration of a DMABUF port of node `n`: `capture` or output, its map policy.
    fn dmabuf_queue_config(&self, n: usize, capture: bool) -> Vb2QueueConfig {
        let node = &self.nodes[n];
        let t = if capture {
            BufType::VideoCapture
        } else {
            BufType::VideoOutput
        };
        let mut cfg = Vb2QueueConfig::new(t, node.dev.clone());
        cfg.io_modes = vec![Memory::Dmabuf];
        cfg.allocator = Allocator::DmaSg;
        cfg.max_num_buffers = SLOTS;
        cfg.map_policy = match node.desc.map_policy {
            NodeMapPolicy::KeepMapped => MapPolicy::KeepMapped,
            NodeMapPolicy::UnmapOnDequeue => MapPolicy::UnmapOnDequeue,
        };
        cfg
    }

    /// Opens node `n`'s DMABUF queue on link `li` (`capture` or output) in the node's process,
    /// non-blocking, with [`SLOTS`] buffers requested; streaming is the caller's to start.
    fn open_dmabuf_port(
        &self,
        _dma: &std::sync::Arc<dma::DmaApi>,
        n: usize,
        li: usize,
        capture: bool,
    ) -> Result<Port, RunFailure> {
        let size = self.link_plane_size(li)?;
        let cfg = self.dmabuf_queue_config(n, capture);
        let drv = ReadyList::new(&[size]);
        let q = self.new_queue(n, capture, cfg, drv.clone());
        // What the link needs of its buffers goes with every attach of the queue.
        q.set_importer_priv(Some(std::sync::Arc::new(self.link_needs(li))));
        let node = &self.nodes[n];
        let fh = q.open(&node.process);
        fh.set_nonblocking(true);
        let mut port = Port::new(n, li, node.desc.map_policy, q, fh, drv);
        let label = port.label(self);
        port.reqbufs(SLOTS)
            .map_err(|e| vb2_fail(&format!("{label}: REQBUFS"), &e))?;
        Ok(port)
    }

    /// Opens the vb2 queues of every node (REQBUFS and STREAMON), module doc:
    /// - an OUTPUT queue (memory DMABUF) for every consumer of a `memory = "dmabuf"`,
    ///   `"mmap+expbuf"` or `"userptr"` link (what it imports is a dma-buf fd in each case);
    /// - a CAPTURE queue for a camera's or an ISP's `memory = "dmabuf"` output link (memory
    ///   DMABUF, the link's fds) (and a scaler's, also mem2mem), and for its `"mmap+expbuf"` link the MMAP queue the buffers
    ///   were allocated from ([`World::alloc_buffer`]); the producer QBUFs every free buffer.
    pub(crate) fn open_ports(&mut self) -> Result<(), RunFailure> {
        let dma = self.kernel.dma().clone();
        for n in 0..self.nodes.len() {
            let node = &self.nodes[n];
            // A GPU is no V4L2 device: it imports its inputs as GEM objects (super::gpu).
            if matches!(
                node.desc.driver,
                DriverKind::Thumbnailer | DriverKind::Camera | DriverKind::Gpu
            ) || self.is_kms(n)
            {
                continue;
            }
            // A display driven through KMS imports its buffers itself (super::kms).
            for li in node.inputs.clone() {
                let l = &self.links[li];
                // A p2p GPU's buffers are read through a dynamic attachment (as a DRM/KMS
                // importer reads them), not a vb2 queue, whose static attachment would keep
                // them out of VRAM ([`super::gpu`]).
                // An EXPBUF fd is a dma-buf like any other: consumers import it the same way.
                if !matches!(
                    l.desc.memory,
                    MemoryType::Dmabuf | MemoryType::MmapExpbuf | MemoryType::Userptr
                ) || self.link_is_p2p(li)
                {
                    continue;
                }
                let mut port = self.open_dmabuf_port(&dma, n, li, false)?;
                let label = port.label(self);
                port.stream_on()
                    .map_err(|e| vb2_fail(&format!("{label}: STREAMON"), &e))?;
                self.ports.push(port);
            }
        }
        // The producers' CAPTURE queues.
        for li in 0..self.links.len() {
            let n = self.links[li].from;
            // An encoder's bitstream goes out through its CAPTURE queue (super::bitstream_io).
            if !matches!(
                self.nodes[n].desc.driver,
                DriverKind::Camera
                    | DriverKind::Isp
                    | DriverKind::Scaler
                    | DriverKind::Decoder
                    | DriverKind::Encoder
            ) || self.link_is_p2p(li)
            {
                continue;
            }
            let p = match self.links[li].desc.memory {
                MemoryType::Dmabuf => {
                    let port = self.open_dmabuf_port(&dma, n, li, true)?;
                    self.ports.push(port);
                    self.ports.len() - 1
                }
                // The queues the buffers were made with (MMAP: CREATE_BUFS; USERPTR: the
                // producer's memory, [`World::link_udmabuf`]).
                MemoryType::MmapExpbuf | MemoryType::Userptr => match self.port_of(n, li) {
                    Some(p) => p,
                    None => continue,
                },
            };
            let label = self.ports[p].label(self);
            if self.nodes[n].stream_out {
                self.ports[p]
                    .stream_on()
                    .map_err(|e| vb2_fail(&format!("{label}: STREAMON"), &e))?;
            }
            // MMAP and USERPTR buffers were queued as they were created
            // ([`World::alloc_buffer`]).
            if self.ports[p].memory == Memory::Dmabuf {
                let free: Vec<usize> = self.links[li].free.iter().copied().collect();
                for bi in free {
                    self.vb2_qbuf(n, li, bi)?;
                }
            }
        }
        Ok(())
    }

    /// The one plane's size of link `li`'s buffers, as a vb2 plane length.
    fn link_plane_size(&self, li: usize) -> Result<u32, RunFailure> {
        let l = &self.links[li];
        let total: u64 = l.format_planes.iter().map(|p| p.size).sum();
        u32::try_from(total).map_err(|_| RunFailure {
            errno: "EINVAL".into(),
            message: format!("{}: buffers over 4 GiB do not fit a vb2 plane", l.name),
        })
    }

    /// `memory = "mmap+expbuf"`: the producer's MMAP CAPTURE queue on link `li` (a port, opened
    /// on first use): `VIDIOC_CREATE_BUFS` makes one more buffer of `bytes`, recorded as the
    /// slot of link buffer `bi`. Returns the port and the new buffer's index.
    pub(crate) fn mmap_create_buf(
        &mut self,
        li: usize,
        bi: usize,
        bytes: u32,
    ) -> Result<(usize, u32), Vb2Error> {
        let from = self.links[li].from;
        let p = match self.port_of(from, li) {
            Some(p) => p,
            None => {
                let node = &self.nodes[from];
                let dev = node.dev.clone();
                let mut qc = Vb2QueueConfig::new(BufType::VideoCapture, dev.clone());
                qc.io_modes = vec![Memory::Mmap];
                qc.max_num_buffers = SLOTS;
                qc.allocator = if dev.iommu_domain().is_none() {
                    Allocator::DmaContig
                } else {
                    Allocator::DmaSg
                };
                let drv = ReadyList::new(&[bytes]);
                let q = self.new_queue(from, true, qc, drv.clone());
                let fh = q.open(&node.process);
                fh.set_nonblocking(true);
                // vb2 allocates MMAP buffers once; they stay however the queue streams.
                let mut port = Port::new(from, li, node.desc.map_policy, q, fh, drv);
                port.allocated = true;
                self.ports.push(port);
                self.ports.len() - 1
            }
        };
        let index = self.ports[p].create_mmap_buf(bi, bytes)?;
        Ok((p, index))
    }

    /// One buffer of link `li` (to be link buffer `bi`) as a udmabuf of a sealed memfd in the
    /// `producer`'s process; for a `memory = "userptr"` link whose producer is a V4L2 device
    /// (camera, ISP), the memfd is also mapped into the process's memory and that address is
    /// what its USERPTR CAPTURE queue gets for the buffer (module doc). Returns the udmabuf's
    /// fd in `producer`.
    pub(crate) fn link_udmabuf(
        &mut self,
        li: usize,
        bi: usize,
        producer: &std::sync::Arc<kernel::Process>,
        name: &str,
        size: u64,
    ) -> Result<kernel::Fd, Vb2Error> {
        use uapi::ioctl::{F_SEAL_SHRINK, MFD_ALLOW_SEALING, MFD_CLOEXEC, UDMABUF_FLAGS_CLOEXEC};
        let len = size.next_multiple_of(soc::PAGE_SIZE);
        let from = self.links[li].from;
        let queued = self.links[li].desc.memory == MemoryType::Userptr
            && matches!(
                self.nodes[from].desc.driver,
                DriverKind::Camera
                    | DriverKind::Isp
                    | DriverKind::Scaler
                    | DriverKind::Decoder
                    | DriverKind::Encoder
            )
            && self.nodes[from].process.pid() == producer.pid();
        let memfd = producer.memfd_create(name, MFD_ALLOW_SEALING | MFD_CLOEXEC)?;
        let r = (|| -> Result<kernel::Fd, Vb2Error> {
            producer.ftruncate(memfd, len)?;
            producer.add_seals(memfd, F_SEAL_SHRINK)?;
            let dev = producer.open_udmabuf()?;
            let fd = producer.udmabuf_create(memfd, 0, len, UDMABUF_FLAGS_CLOEXEC);
            let _ = producer.close(dev);
            let fd = fd?;
            if queued {
                let file = producer.file(memfd)?;
                let Some(m) = file.as_memfd() else {
                    return Err(Vb2Error::new(uapi::Errno::EBADF, "not a memfd"));
                };
                let p = self.userptr_port(li)?;
                let user = self.ports[p].user_memory().cloned().ok_or_else(|| {
                    Vb2Error::new(uapi::Errno::EFAULT, "no user memory in this process")
                })?;
                let addr = user.mmap_memfd(m, 0, len)?;
                let length = u32::try_from(size).map_err(|_| {
                    Vb2Error::new(uapi::Errno::EINVAL, "buffers over 4 GiB do not fit a plane")
                })?;
                self.ports[p].set_userptr(bi, addr, length);
            }
            Ok(fd)
        })();
        let _ = producer.close(memfd);
        r
    }

    /// The producer's USERPTR CAPTURE queue on link `li` (opened and REQBUFS-ed on first use),
    /// its file handle bound to the process's memory (one [`vb2::UserMemory`] per process).
    fn userptr_port(&mut self, li: usize) -> Result<usize, Vb2Error> {
        let from = self.links[li].from;
        if let Some(p) = self.port_of(from, li) {
            return Ok(p);
        }
        let size = self
            .link_plane_size(li)
            .map_err(|e| Vb2Error::new(uapi::Errno::EINVAL, e.message))?;
        let node = &self.nodes[from];
        let pid = node.process.pid();
        let user = self
            .ports
            .iter()
            .filter(|p| self.nodes[p.node].process.pid() == pid)
            .find_map(|p| p.user_memory().cloned())
            .unwrap_or_else(|| vb2::UserMemory::new(self.kernel.dma()));
        let dev = node.dev.clone();
        let mut qc = Vb2QueueConfig::new(BufType::VideoCapture, dev.clone());
        qc.io_modes = vec![Memory::Userptr];
        qc.max_num_buffers = SLOTS;
        // vb2-dma-contig for a device without an IOMMU: the pinned pages must be contiguous
        // after mapping (`EFAULT` otherwise), as `vb2_dc_get_userptr` requires.
        qc.allocator = if dev.iommu_domain().is_none() {
            Allocator::DmaContig
        } else {
            Allocator::DmaSg
        };
        let drv = ReadyList::new(&[size]);
        let q = self.new_queue(from, true, qc, drv.clone());
        let fh = q.open(&node.process).with_user_memory(user);
        fh.set_nonblocking(true);
        let mut port = Port::new(from, li, node.desc.map_policy, q, fh, drv);
        port.reqbufs(SLOTS)?;
        self.ports.push(port);
        Ok(self.ports.len() - 1)
    }

    /// The file handle of port `p` (for `VIDIOC_EXPBUF`).
    pub(crate) fn port_fh(&self, p: usize) -> &Vb2Fh {
        self.ports[p].fh()
    }
}
