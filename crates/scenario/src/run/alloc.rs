//! Allocating a link's buffers: the exporter the link names, the fd passed to every consumer
//! process, and the attachment of every active user.
//!
//! [`World::alloc_buffer`] is where a buffer is born: from a dma-heap, the constraint exporter,
//! the GPU's TTM, a udmabuf of a sealed memfd, a USERPTR region or a vb2 MMAP queue exported with
//! `VIDIOC_EXPBUF`, as the link's `exporter` and `memory` say. The fd is installed in the
//! producer's process and sent with `send_fd` to each consumer's, the way a compositor or a camera
//! service hands buffers over. A step that fails once the buffer exists (an fd that cannot be
//! passed, an attach, the layout, the first QBUF) takes the buffer down whole before the error
//! goes on: its fds closed in every process, its attachments detached, its memory back, as the
//! kernel releases everything a failed call took. Called only from the run loop's thread,
//! which owns [`World`].

use super::world::*;
use crate::clock::VirtualTime;
use crate::schema::{ConstraintPolicy, DriverKind, Exporter, HeapKind, MemoryType};
use constraint::{ConstraintExporter, ExportSpec, KnownDevice, Layout, Policy};
use dmabuf::DmaBuf;
use kernel::{Fd, Process};
use std::collections::BTreeMap;
use std::sync::Arc;
use uapi::AsErrno;

impl World {
    /// Exports one more buffer for link `li`, shares it with the consumers' processes by fd and
    /// attaches every active user.
    pub(crate) fn alloc_buffer(&mut self, li: usize) -> Result<usize, RunFailure> {
        let index = self.links[li].next_index;
        self.links[li].next_index += 1;
        let l = &self.links[li];
        let name = l.desc.buffer_name(index);
        let from = l.from;
        let fmt_planes = l.format_planes.clone();
        let size: u64 = fmt_planes.iter().map(|p| p.size).sum();
        // A dri2 swapchain's buffers are the display side's: its process allocates them and
        // passes them to the client (seed 000's "give me the next buffer to draw into").
        let allocator = match l.swapchain {
            Some((crate::schema::SwapchainMode::Dri2, _)) => {
                l.to.iter()
                    .copied()
                    .find(|&t| self.nodes[t].desc.driver == DriverKind::Display)
                    .unwrap_or(from)
            }
            _ => from,
        };
        let producer = self.nodes[allocator].process.clone();
        let dma = self.kernel.dma().clone();
        let fail = |e: &dyn Fn() -> String, err: &dyn AsErrno| RunFailure {
            errno: format!("{:?}", err.errno()),
            message: e(),
        };
        let seq_planes = || {
            let mut off = 0;
            fmt_planes
                .iter()
                .map(|p| {
                    let r = (off, p.size);
                    off += p.size;
                    r
                })
                .collect::<Vec<_>>()
        };
        let kind = match (l.desc.memory, l.desc.effective_exporter()) {
            // A swapchain's buffers are the swapchain driver's (super::swapchain).
            _ if l.swapchain.is_some() => Kind::Swapchain,
            (MemoryType::Dmabuf, Some(Exporter::Constraint) | None) => Kind::Constraint,
            (MemoryType::Dmabuf, Some(Exporter::Gpu)) => Kind::Gpu,
            (MemoryType::Dmabuf, Some(Exporter::Heap(k))) => Kind::Heap(k),
            (MemoryType::Dmabuf, Some(Exporter::Udmabuf)) | (MemoryType::Userptr, _) => {
                Kind::Udmabuf
            }
            (MemoryType::MmapExpbuf, _) => Kind::Vb2,
        };
        let mut importer = None;
        let (buf, planes, exporter, fd) = match kind {
            Kind::Constraint => {
                let layout = if fmt_planes.len() > 1 {
                    // The format table's planes, each from a page boundary (NV12 gives
                    // Layout::nv12's layout).
                    let mut planes = Vec::with_capacity(fmt_planes.len());
                    let mut off = 0;
                    for p in &fmt_planes {
                        off = soc::align_up(off, soc::PAGE_SIZE).unwrap_or(off);
                        planes.push(constraint::PlaneLayout {
                            offset: off,
                            len: p.size,
                            pitch: p.bytes_per_line,
                        });
                        off += p.size;
                    }
                    Layout { size: off, planes }
                } else {
                    Layout::single(size)
                };
                let planes = layout.planes.iter().map(|p| (p.offset, p.len)).collect();
                let needs = self.link_needs(li);
                let policy = match l.desc.effective_policy().unwrap_or_default() {
                    ConstraintPolicy::Deferred => Policy::Deferred,
                    ConstraintPolicy::NoMigrate => Policy::NoMigrate,
                    ConstraintPolicy::UpFront => Policy::UpFront {
                        devices: self
                            .link_users(li)
                            .into_iter()
                            .map(|n| {
                                KnownDevice::new(&self.nodes[n].desc.device)
                                    .with_needs(needs.clone())
                            })
                            .collect(),
                    },
                };
                let mut spec = ExportSpec::with_layout(layout)
                    .policy(policy)
                    .config(self.migration_config(li))
                    .log(self.log.clone());
                // Modifier and pitch negotiation (run/layouts.rs), when a device asks for it.
                if let Some((neg, reserve)) = self.link_negotiation(li) {
                    spec = spec.negotiate(neg).reserve(reserve);
                }
                let (buf, exp) =
                    ConstraintExporter::export_registered(&dma, spec, self.kernel.registry())
                        .map_err(|e| fail(&|| format!("exporting {name}: {e}"), &e))?;
                let fd =
                    install(&producer, &buf).map_err(|e| fail(&|| format!("{name}: {e}"), &e))?;
                (buf, planes, ExporterHandle::Constraint(exp), fd)
            }
            Kind::Gpu => {
                // The GPU whose driver exports: the producer if it is one, else the GPU that
                // reads the link (a camera writing into the GPU's objects, PRIME-imported).
                let gpu_node = if self.nodes[from].desc.driver == DriverKind::Gpu {
                    from
                } else {
                    self.links[li]
                        .to
                        .iter()
                        .copied()
                        .find(|&t| self.nodes[t].desc.driver == DriverKind::Gpu)
                        .unwrap_or(from)
                };
                let node = self.nodes[gpu_node].desc.clone();
                let gpu = self.gpu_for(&node)?;
                let desc = drivers::gpu::BoDesc::vram(&name, size);
                // Charged to the allocating process's dmem group, if it is in one.
                let group = self.nodes[allocator].desc.process_name().to_string();
                let bo = match self.limits.dmem_group(&group, &node.device, &gpu) {
                    Some(g) => gpu.create_bo_in(desc, &g),
                    None => gpu.create_bo(desc),
                };
                let bo = bo.map_err(|e| {
                    fail(&|| format!("allocating {name} on {}: {e}", node.device), &e)
                })?;
                let buf = gpu
                    .export_into(&bo, self.kernel.registry())
                    .map_err(|e| fail(&|| format!("exporting {name}: {e}"), &e))?;
                let fd =
                    install(&producer, &buf).map_err(|e| fail(&|| format!("{name}: {e}"), &e))?;
                if gpu.config().p2p {
                    importer = Some(Arc::new(super::gpu::P2pImporter::default()));
                }
                (buf, seq_planes(), ExporterHandle::Gpu(bo), fd)
            }
            Kind::Udmabuf => {
                let bi = self.bufs.len();
                let fd = self
                    .link_udmabuf(li, bi, &producer, &name, size)
                    .map_err(|e| fail(&|| format!("{name}: {e}"), &e))?;
                let buf = producer
                    .get_dma_buf(fd)
                    .map_err(|e| fail(&|| format!("{name}: {e}"), &e))?;
                (
                    buf,
                    seq_planes(),
                    ExporterHandle::Heap("udmabuf".into()),
                    fd,
                )
            }
            Kind::Swapchain => {
                let bi = self.bufs.len();
                let (buf, exporter, fd, imp) = self.swap_alloc(li, bi, &name, size, allocator)?;
                importer = imp;
                (buf, seq_planes(), exporter, fd)
            }
            Kind::Vb2 => {
                let (buf, fd) = self
                    .expbuf(li, size, &producer)
                    .map_err(|e| fail(&|| format!("{name}: {e}"), &e))?;
                (buf, seq_planes(), ExporterHandle::Vb2, fd)
            }
            Kind::Heap(k) => {
                let heap = self.heap_name(k, l.desc.region.as_deref());
                let h = producer.open_heap(&heap).map_err(|e| {
                    fail(
                        &|| format!("opening /dev/dma_heap/{heap} for {name}: {e}"),
                        &e,
                    )
                })?;
                let fd = producer.heap_alloc(h, size, RDWR, 0);
                let _ = producer.close(h);
                // An allocator service hands the charge to its client (run/limits.rs).
                let allocator_name = self.nodes[allocator].desc.process_name().to_string();
                let fd = fd.and_then(|fd| {
                    self.limits
                        .after_heap_alloc(&allocator_name, &producer, fd)
                        .map(|()| fd)
                        .inspect_err(|_| {
                            let _ = producer.close(fd);
                        })
                });
                let fd = fd.map_err(|e| {
                    fail(
                        &|| {
                            format!(
                                "allocating {name} ({}) from heap {heap}: {e}",
                                soc::human_size(size)
                            )
                        },
                        &e,
                    )
                })?;
                let buf = producer
                    .get_dma_buf(fd)
                    .map_err(|e| fail(&|| format!("{name}: {e}"), &e))?;
                (buf, seq_planes(), ExporterHandle::Heap(heap), fd)
            }
        };
        // From here the buffer is the World's: whatever fails later takes it down whole (its
        // fds in every process closed, its attachments detached, its memory back), as the
        // kernel releases all a failed call took, and the error goes on.
        let bi = self.bufs.len();
        self.bufs.push(Some(BufRt {
            name,
            link: li,
            buf,
            planes,
            exporter,
            importer,
            atts: BTreeMap::new(),
            gpu_bos: BTreeMap::new(),
            fds: vec![(producer.clone(), fd)],
            state: BufState::Free,
            busy_until: VirtualTime::ZERO,
            available_at: VirtualTime::ZERO,
            migrations: 0,
            maps_carried: (0, 0),
            retired: false,
            acquire: BTreeMap::new(),
            fence_end: None,
            used: None,
        }));
        if let Err(e) = self.share_buffer(li, bi, &producer, fd) {
            super::events::drop_buffer(self, bi);
            return Err(e);
        }
        Ok(bi)
    }

    /// The rest of [`Self::alloc_buffer`] once buffer `bi` exists (fd `fd` in `producer`): its
    /// fd sent to each other process of the link, every active user attached, the layout
    /// settled, the buffer on its link and queued into the producer's CAPTURE queue.
    fn share_buffer(
        &mut self,
        li: usize,
        bi: usize,
        producer: &Arc<Process>,
        fd: Fd,
    ) -> Result<(), RunFailure> {
        let from = self.links[li].from;
        let mut seen = vec![producer.pid()];
        let sharers: Vec<usize> = std::iter::once(from)
            .chain(self.links[li].to.iter().copied())
            .collect();
        for t in sharers {
            let p = self.nodes[t].process.clone();
            if seen.contains(&p.pid()) {
                continue;
            }
            seen.push(p.pid());
            let nfd = producer.send_fd(fd, &p).map_err(|e| {
                let what = format!(
                    "passing {} to {}",
                    self.buf(bi).name,
                    self.nodes[t].desc.name
                );
                RunFailure::new(&e, format!("{what}: {e}"))
            })?;
            self.buf_mut(bi).fds.push((p, nfd));
        }
        for n in self.link_users(li) {
            self.attach(bi, n)?;
        }
        self.settle_layout(bi)?;
        self.links[li].bufs.push(bi);
        self.links[li].free.push_back(bi);
        // A new empty buffer: the producer queues it into its CAPTURE queue, if it has one.
        self.vb2_qbuf(from, li, bi)?;
        Ok(())
    }

    /// The dma-heap a `heap:<kind>` exporter allocates from: `system`, the link's `region`, or
    /// the machine's first heap of that kind.
    pub(super) fn heap_name(&self, k: HeapKind, region: Option<&str>) -> String {
        let names = self.kernel.heap_names();
        match (k, region) {
            (HeapKind::System, _) => "system".to_string(),
            (HeapKind::Cma, Some(r)) => r.to_string(),
            (HeapKind::Carveout, Some(r)) => format!("carveout-{r}"),
            (HeapKind::Cma, None) => names
                .iter()
                .find(|h| *h != "system" && !h.starts_with("carveout-"))
                .cloned()
                .unwrap_or_else(|| "cma".into()),
            (HeapKind::Carveout, None) => names
                .iter()
                .find(|h| h.starts_with("carveout-"))
                .cloned()
                .unwrap_or_else(|| "carveout".into()),
        }
    }

    /// `memory = "mmap+expbuf"`: one more MMAP buffer on the producer's CAPTURE queue
    /// (`VIDIOC_CREATE_BUFS`, vb2's allocator: dma-contig for a device without an IOMMU,
    /// scatter-gather behind one) exported as a dma-buf fd in the producer's process
    /// (`VIDIOC_EXPBUF`), as a V4L2 capture application does before sharing its buffers. The
    /// queue is the producer's port on the link ([`super::vb2io`]): the same buffer index cycles
    /// through it (QBUF empty, the device fills it, DQBUF).
    pub(super) fn expbuf(
        &mut self,
        li: usize,
        size: u64,
        producer: &Arc<Process>,
    ) -> Result<(DmaBuf, Fd), drivers::media::MediaError> {
        let bytes = u32::try_from(size).map_err(|_| {
            drivers::media::MediaError::Invalid(format!("a {size:#x}-byte plane is too large"))
        })?;
        let bi = self.bufs.len();
        let (p, index) = self.mmap_create_buf(li, bi, bytes)?;
        let fd = drivers::media::expbuf(self.port_fh(p), index)?;
        let buf = producer.get_dma_buf(fd)?;
        Ok((buf, fd))
    }
}
