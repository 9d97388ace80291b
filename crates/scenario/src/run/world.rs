//! The run's state: the booted machine, one simulated process per scenario process, the nodes
//! with their queues, the links with their buffers, and how buffers are exported, shared by fd
//! and attached.

use crate::clock::{Engine, TimeModel, VirtualTime};
use crate::report::{Trace, TrackId};
use crate::schema::{DriverKind, HeapKind, LinkDesc, NodeDesc, PlaneLayout};
use crate::validate::Scenario;
use constraint::{ConstraintExporter, ImporterNeeds, MigrationLog};
use dma::DmaDirection;
use dmabuf::{Attachment, DmaBuf};
use drivers::dmaview::DmaView;
use kernel::{Fd, FileObject, Kernel, Process};
use soc::Device;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use uapi::AsErrno;

/// A frame travelling through the pipeline: who made it, when, and what its bytes hash to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameMeta {
    /// The source node.
    pub src: usize,
    /// The frame number at the source.
    pub frame: u64,
    /// Checksum of the buffer's bytes, as their producer computed it.
    pub checksum: u64,
}

/// Where a buffer is in its cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BufState {
    /// On the link's free list.
    Free,
    /// A producer's job is writing it.
    Writing,
    /// Holds a frame; `readers` have not released it yet.
    Ready {
        meta: FrameMeta,
        readers: BTreeSet<usize>,
    },
}

/// Which exporter made a buffer (for placement and map-cache reports).
pub(crate) enum ExporterHandle {
    Constraint(Arc<ConstraintExporter>),
    Heap(String),
    /// vb2's MMAP memory of the producer's capture queue, exported with `VIDIOC_EXPBUF`.
    Vb2,
    Gpu(drivers::gpu::GpuBo),
}

/// One buffer of a link.
pub(crate) struct BufRt {
    pub name: String,
    pub link: usize,
    pub buf: DmaBuf,
    /// `(offset, len)` of each plane in the buffer.
    pub planes: Vec<(u64, u64)>,
    pub exporter: ExporterHandle,
    /// The dynamic importer every device attaches with (a p2p GPU's buffers, [`super::gpu`]);
    /// `None`: static attachments.
    pub importer: Option<Arc<super::gpu::P2pImporter>>,
    /// Attachments by node index.
    pub atts: BTreeMap<usize, Attachment>,
    /// The GPU nodes' buffer objects of it, by node index: the GPU's own object if it exported
    /// the buffer (self-import), else its PRIME import (a dynamic attachment of the GPU).
    pub gpu_bos: BTreeMap<usize, drivers::gpu::GpuBo>,
    /// The fds the buffer has in processes, closed at teardown or when the process dies.
    pub fds: Vec<(Arc<Process>, Fd)>,
    pub state: BufState,
    /// End of the last job that touched it (virtual).
    pub busy_until: VirtualTime,
    /// Not usable before this (a migration holds it).
    pub available_at: VirtualTime,
    pub migrations: u32,
    /// Mapping-cache `(hits, misses)` of the constraint exporter's earlier backings: a
    /// migration gives the buffer a new backing with a fresh cache, the report keeps counting.
    pub maps_carried: (u64, u64),
    /// Removed from the link by `set_buffers`; dropped when next free.
    pub retired: bool,
    /// Explicit sync: per consumer node, the sync_file fd its process was sent with the frame.
    pub acquire: BTreeMap<usize, (Arc<Process>, Fd)>,
    /// A frame handed over before its producer's job ended (explicit sync from a GPU): when
    /// that job's out-fence signals on the virtual clock.
    pub fence_end: Option<VirtualTime>,
    /// Bytes of it the producer's last job wrote, when fewer than its planes (an encoder's
    /// bitstream, [`super::m2m`]): what a reader reads.
    pub used: Option<u64>,
}

/// A link at run time.
pub(crate) struct LinkRt {
    pub desc: LinkDesc,
    pub name: String,
    pub from: usize,
    pub to: Vec<usize>,
    pub bufs: Vec<usize>,
    pub free: VecDeque<usize>,
    pub format_planes: Vec<PlaneLayout>,
    pub next_index: u32,
    /// The swapchain a gpu->display link runs (mode, `max_in_flight`).
    pub swapchain: Option<(crate::schema::SwapchainMode, Option<u32>)>,
    /// That swapchain: the driver's object, which allocates the link's buffers
    /// ([`super::swapchain`]); made with the first buffer.
    pub chain: Option<drivers::swapchain::Chain>,
}

/// A node at run time.
pub(crate) struct NodeRt {
    pub desc: NodeDesc,
    pub dev: Arc<Device>,
    pub process: Arc<Process>,
    pub track: TrackId,
    pub engine_name: String,
    pub active: bool,
    pub dead: bool,
    /// The output (input-side) queue streams.
    pub stream_in: bool,
    /// The capture (output-side) queue streams.
    pub stream_out: bool,
    pub busy: bool,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// Per input link, the ready frames the application holds itself, oldest first (a reader
    /// without a vb2 queue; frames a STREAMOFF or REQBUFS(0) gave back). What a vb2 queue's
    /// driver holds is the driver's: [`World::ready_bufs`] asks it.
    pub ready: BTreeMap<usize, VecDeque<usize>>,
    /// A source's next frame number.
    pub next_frame: u64,
    /// A display's last vblank that took a frame.
    pub last_vblank: Option<VirtualTime>,
    /// An RLE encoder's bitstream buffer.
    pub bitstream: Option<BitstreamBuf>,
    /// Virtual time its jobs waited on fences (the report's `nodes[].fence_wait_us`).
    pub fence_wait: VirtualTime,
    /// A GPU node's address space (its process's [`drivers::gpu::GpuVm`]), made on first use.
    pub vm: Option<drivers::gpu::GpuVm>,
    /// What an m2m driver holds beside its queues ([`super::m2m`]).
    pub m2m: super::m2m::M2mState,
}

/// The bitstream buffer an encoder owns (as a V4L2 encoder's CAPTURE buffer, allocated by its
/// driver: `dma_alloc_attrs` for its device), large enough for the worst case of its codec.
pub(crate) struct BitstreamBuf {
    pub dev: Arc<Device>,
    pub buf: dma::DmaBuffer,
    /// Bytes the encoder wrote into it over the run.
    pub written: u64,
    /// The bitstreams' checksums, folded in frame order.
    pub folded: u64,
}

impl BitstreamBuf {
    /// Allocates `size` bytes of coherent memory for node `n`'s device, owned by its driver
    /// (`dma_alloc_attrs`); `what` names it in the error.
    pub(crate) fn alloc(
        kernel: &Kernel,
        n: &NodeRt,
        size: u64,
        what: &str,
    ) -> Result<BitstreamBuf, RunFailure> {
        let buf = kernel
            .dma()
            .alloc_attrs(&n.dev, size, dma::DmaAttrs::NONE)
            .map_err(|e| RunFailure::new(&e, format!("{}: allocating {what}: {e}", n.desc.name)))?;
        Ok(BitstreamBuf {
            dev: n.dev.clone(),
            buf,
            written: 0,
            folded: 0,
        })
    }

    /// The encoder's view of the buffer for one job.
    pub(crate) fn view(&self) -> DmaView {
        let segs = self
            .buf
            .handle(self.dev.name())
            .map(|h| h.sg_table().dma_segments().to_vec())
            .unwrap_or_default();
        DmaView::from_segments(self.dev.clone(), &segs)
    }
}

/// The whole run state.
pub(crate) struct World {
    pub kernel: Arc<Kernel>,
    pub time: TimeModel,
    pub nodes: Vec<NodeRt>,
    pub links: Vec<LinkRt>,
    pub bufs: Vec<Option<BufRt>>,
    pub engines: BTreeMap<String, Engine>,
    pub trace: Trace,
    pub log: Arc<MigrationLog>,
    pub gpus: BTreeMap<String, drivers::gpu::Gpu>,
    /// The display nodes driven through KMS, by node ([`super::kms`]).
    pub kms: BTreeMap<usize, super::kms::Kms>,
    pub seed: u64,
    /// The consumers' vb2 queues ([`super::vb2io`]).
    pub ports: Vec<super::vb2io::Port>,
    /// `move_notify` calls the GPU exporters' dynamic importers got.
    pub move_notifies: std::sync::atomic::AtomicU64,
    /// Evicted GPU buffers the end of a VRAM pressure found pinned on screen: they go back to
    /// VRAM once the display releases them ([`super::gpu`] rule 3).
    pub vram_pending: std::collections::BTreeSet<usize>,
    /// Counters over time ([`super::counters`]).
    pub sampler: super::counters::Sampler,
    /// Shared memory bandwidth ([`super::bandwidth`]).
    pub bandwidth: super::bandwidth::Shared,
    /// `--engine-threads`: the GPU drivers' rings run on their own threads (else the runner starts
    /// each job at its start and retires it when it collects it, [`drivers::gpu::RingMode::Manual`]).
    pub threads: bool,
    /// The `[[groups]]` and `[[processes]]` ([`super::limits`]).
    pub limits: super::limits::Limits,
}

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Constraint,
    Gpu,
    Heap(HeapKind),
    Vb2,
    Udmabuf,
    /// A gpu->display link's swapchain allocates (`super::swapchain`).
    Swapchain,
}

pub(super) const RDWR: u32 = uapi::ioctl::O_RDWR | uapi::ioctl::O_CLOEXEC;

pub(super) fn install(p: &Process, buf: &DmaBuf) -> Result<Fd, dmabuf::DmaBufError> {
    p.install(FileObject::DmaBuf(buf.clone()), RDWR)
}

/// A failure to set up or run, with the errno name Linux would give.
#[derive(Clone, Debug)]
pub(crate) struct RunFailure {
    pub errno: String,
    pub message: String,
}

impl RunFailure {
    pub(crate) fn new(e: &impl AsErrno, message: String) -> RunFailure {
        RunFailure {
            errno: format!("{:?}", e.errno()),
            message,
        }
    }
}

impl World {
    /// Boots the machine and builds nodes and processes; links get their buffers in
    /// [`World::alloc_link`].
    pub(crate) fn new(s: &Scenario) -> Result<World, RunFailure> {
        let kernel = Kernel::boot(s.soc.clone())
            .map_err(|e| RunFailure::new(&e, format!("booting the machine: {e}")))?;
        let mut trace = Trace::new(&s.name);
        let mut procs: BTreeMap<String, Arc<Process>> = BTreeMap::new();
        let mut nodes = Vec::new();
        for n in &s.nodes {
            let dev = kernel
                .dma()
                .device(&n.device)
                .map_err(|e| RunFailure::new(&e, format!("node {}: {e}", n.name)))?;
            let process = procs
                .entry(n.process_name().to_string())
                .or_insert_with(|| kernel.spawn())
                .clone();
            let engine_name = if n.driver == DriverKind::Thumbnailer {
                "cpu".to_string()
            } else {
                n.device.clone()
            };
            let track = trace.track(&engine_name);
            nodes.push(NodeRt {
                desc: n.clone(),
                dev,
                process,
                track,
                engine_name,
                active: n.attached,
                dead: false,
                stream_in: true,
                stream_out: true,
                busy: false,
                inputs: Vec::new(),
                outputs: Vec::new(),
                ready: BTreeMap::new(),
                next_frame: 0,
                last_vblank: None,
                fence_wait: VirtualTime::ZERO,
                bitstream: None,
                vm: None,
                m2m: Default::default(),
            });
        }
        let limits = super::limits::Limits::new(&kernel, s, &procs)?;
        let idx = |name: &str| s.nodes.iter().position(|n| n.name == name).unwrap_or(0);
        let mut links = Vec::new();
        for (li, l) in s.links.iter().enumerate() {
            let from = idx(&l.from);
            let to: Vec<usize> = l.to.0.iter().map(|t| idx(t)).collect();
            nodes[from].outputs.push(li);
            for &t in &to {
                nodes[t].inputs.push(li);
                nodes[t].ready.insert(li, VecDeque::new());
            }
            links.push(LinkRt {
                desc: l.clone(),
                name: l.link_name(),
                from,
                to,
                bufs: Vec::new(),
                free: VecDeque::new(),
                format_planes: super::m2m::link_planes(s, from),
                next_index: 0,
                swapchain: crate::validate::swapchain::of_link(&s.nodes, l),
                chain: None,
            });
        }
        // An RLE encoder's bitstream buffer: two bytes per byte of its largest input, plus a pair.
        for n in &mut nodes {
            // One that feeds a link writes its bitstream there (super::m2m).
            if n.desc.params.codec != Some(crate::schema::EncoderCodec::Rle)
                || !n.outputs.is_empty()
            {
                continue;
            }
            let worst = n
                .inputs
                .iter()
                .map(|&li| links[li].format_planes.iter().map(|p| p.size).sum::<u64>())
                .max()
                .unwrap_or(0);
            let size = (worst * 2 + 2).next_multiple_of(4096);
            let what = format!("its {size:#x}-byte bitstream buffer");
            n.bitstream = Some(BitstreamBuf::alloc(&kernel, n, size, &what)?);
        }
        super::m2m::alloc_references(&kernel, &mut nodes)?;
        Ok(World {
            time: TimeModel::from_desc(&s.soc),
            kernel,
            nodes,
            links,
            bufs: Vec::new(),
            engines: BTreeMap::new(),
            trace,
            log: Arc::new(MigrationLog::new()),
            gpus: BTreeMap::new(),
            kms: BTreeMap::new(),
            seed: s.seed,
            ports: Vec::new(),
            move_notifies: std::sync::atomic::AtomicU64::new(0),
            vram_pending: std::collections::BTreeSet::new(),
            sampler: super::counters::Sampler::new(s.frames),
            bandwidth: super::bandwidth::Shared::new(&s.soc),
            threads: false,
            limits,
        })
    }

    /// Samples the counters at frame `frame` of the first source if it is due
    /// ([`super::counters`]); `force`: whatever the frame (the end of the run).
    pub(crate) fn sample_counters(&mut self, frame: u64, now: VirtualTime, force: bool) {
        if force || self.sampler.due(frame) {
            let mut sampler = std::mem::take(&mut self.sampler);
            sampler.sample(self, frame, now);
            self.sampler = sampler;
            self.bandwidth.ledger.prune(now.as_ns());
        }
    }

    /// The nodes attached to `link`'s buffers now: its producer and its active consumers.
    pub(crate) fn link_users(&self, li: usize) -> Vec<usize> {
        let l = &self.links[li];
        std::iter::once(l.from)
            .chain(l.to.iter().copied())
            .filter(|&n| self.nodes[n].active)
            .collect()
    }

    /// The plane bank/contiguity requirements of a link, as importer needs.
    pub(crate) fn link_needs(&self, li: usize) -> ImporterNeeds {
        let l = &self.links[li].desc;
        let mut needs = ImporterNeeds::new();
        for p in &l.planes {
            let mut rule = constraint::BankRule::default();
            if let Some(b) = &p.bank {
                rule.only.push(b.clone());
            }
            needs.plane_banks.push(rule);
            if p.contiguous {
                needs.contiguous = true;
            }
        }
        needs
    }

    /// Attaches node `n`'s device to buffer `bi` (a no-op if attached); a GPU node imports it
    /// into its driver instead ([`World::gpu_import`]).
    pub(crate) fn attach(&mut self, bi: usize, n: usize) -> Result<(), RunFailure> {
        if self.nodes[n].desc.driver == DriverKind::Gpu {
            return self.gpu_import(bi, n);
        }
        let dev = self.nodes[n].dev.clone();
        let Some(li) = self.bufs[bi].as_ref().map(|b| b.link) else {
            return Ok(());
        };
        let needs = self.link_needs(li);
        let Some(b) = self.bufs[bi].as_mut() else {
            return Ok(());
        };
        if b.atts.contains_key(&n) {
            return Ok(());
        }
        // What the link needs of its buffers travels with the attach (`importer_priv`).
        let params = dmabuf::AttachParams {
            importer_ops: b
                .importer
                .clone()
                .map(|imp| imp as Arc<dyn dmabuf::ImporterOps>),
            importer_priv: Some(Arc::new(needs)),
        };
        let att = b.buf.attach_with(&dev, params);
        let att = att.map_err(|e| {
            RunFailure::new(&e, format!("{} attaching {}: {e}", dev.name(), b.name))
        })?;
        b.atts.insert(n, att);
        Ok(())
    }

    /// Detaches node `n` from buffer `bi`.
    pub(crate) fn detach(&mut self, bi: usize, n: usize) {
        self.gpu_release(bi, n);
        if let Some(b) = self.bufs[bi].as_mut() {
            if let Some(att) = b.atts.remove(&n) {
                let _ = b.buf.detach(att);
            }
        }
    }

    /// Maps buffer `bi` for node `n`, in `dir`; the caller gives it back with [`World::unmap`].
    pub(crate) fn map(
        &self,
        bi: usize,
        n: usize,
        dir: DmaDirection,
    ) -> Result<DmaView, RunFailure> {
        let b = self.bufs[bi].as_ref().ok_or_else(|| RunFailure {
            errno: "EBADF".into(),
            message: format!("buffer {bi} is gone"),
        })?;
        let att = b.atts.get(&n).ok_or_else(|| RunFailure {
            errno: "EINVAL".into(),
            message: format!("{} is not attached to {}", self.nodes[n].desc.name, b.name),
        })?;
        let sgt = att.map_unlocked(dir).map_err(|e| {
            RunFailure::new(
                &e,
                format!("{} mapping {}: {e}", self.nodes[n].dev.name(), b.name),
            )
        })?;
        Ok(DmaView::new(self.nodes[n].dev.clone(), sgt))
    }

    /// Gives a mapping of buffer `bi` by node `n` back (`dma_buf_unmap_attachment`).
    pub(crate) fn unmap(&self, bi: usize, n: usize, m: DmaView) -> Result<(), RunFailure> {
        let b = self.buf(bi);
        let (Some(att), Some(sgt)) = (b.atts.get(&n), m.into_sgt()) else {
            return Ok(());
        };
        att.unmap_unlocked(sgt).map_err(|e| {
            RunFailure::new(
                &e,
                format!("{} unmapping {}: {e}", self.nodes[n].dev.name(), b.name),
            )
        })
    }

    /// The buffer `bi`.
    pub(crate) fn buf(&self, bi: usize) -> &BufRt {
        self.bufs[bi].as_ref().expect("live buffer")
    }

    /// The buffer `bi`, mutably.
    pub(crate) fn buf_mut(&mut self, bi: usize) -> &mut BufRt {
        self.bufs[bi].as_mut().expect("live buffer")
    }
}
