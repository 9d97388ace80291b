//! GPU jobs: a ring that waits on input fences, moves bytes with the GPU's DMA engine, and
//! signals an output fence.
//!
//! C side: `drivers/gpu/drm/amd/amdgpu/amdgpu_cs.c` (`amdgpu_cs_parser_bos`,
//! `amdgpu_cs_sync_rings`, `amdgpu_cs_submit`), `drivers/gpu/drm/scheduler/sched_main.c` and
//! `sched_entity.c` (dependencies, in-order execution, error propagation), `drm_exec.c`.
//!
//! # The concept
//! A [`Job`] is a small command stream: copy, blit, fill, invert or blend whole objects (a frame
//! in NV12 or any other layout; the operations work on bytes). [`Gpu::submit`](super::Gpu::submit)
//! turns it into work on the ring and returns its **output fence**, a [`DmaFence`] on the ring's
//! context with increasing seqnos.
//!
//! # Submission, step by step (`amdgpu_cs_ioctl`)
//! 1. Every object must belong to this GPU (or be imported into it); sizes and offsets are
//!    checked, and a read-only import is never written (`EINVAL`).
//! 2. Lock every object's reservation object together (ww acquire context, `drm_exec`).
//! 3. Make each object GPU-resident and map it in the VM (hits and misses counted), never evicting
//!    another object of the same job.
//! 4. Implicit sync: a source waits for the WRITE fences of its reservation object (writers and
//!    moves), a destination for the READ fences (everyone); plus the job's explicit input fences.
//! 5. Create the output fence and add it to every object: READ usage for sources, WRITE for
//!    destinations. Queue the job, unlock.
//!
//! A [`Job::device`] job carries a whole [`DeviceJob`] (the compositor's
//! composite of a camera frame): submission maps its objects in the VM as any job's, hands the
//! device job the VM's DMA segments as its views, and the ring executes it (every byte through
//! the GPU's DMA engine, outputs stamped, inputs verified), sending its
//! [`JobEffects`] back before the job's fence signals.
//!
//! The ring that runs the jobs and its contract are in [`ring`](super::ring).

use super::bo::GpuBo;
use super::ring::{PendingJob, Segs, Work};
use super::vm::GpuVm;
use super::{GpuCore, GpuError};
use crate::dmaview::DmaView;
use crate::job::{DeviceJob, JobEffects};
use fence::{DmaFence, DmaResvUsage, ResvExec};
use parking_lot::Mutex;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use uapi::Errno;

/// A [`DeviceJob`] on its way to the ring, and where its effects go (taken at submission).
pub type DeviceSlot = Arc<Mutex<Option<(DeviceJob, Sender<JobEffects>)>>>;

/// What a job does. Lengths are whole objects unless said otherwise.
#[derive(Clone, Debug)]
pub enum JobOp {
    /// `dst[dst_off..][..len] = src[src_off..][..len]` (a blit).
    Blit {
        /// Source object.
        src: GpuBo,
        /// First source byte.
        src_off: u64,
        /// Destination object.
        dst: GpuBo,
        /// First destination byte.
        dst_off: u64,
        /// Bytes.
        len: u64,
    },
    /// Every byte of `dst` becomes `value`.
    Fill {
        /// Destination object.
        dst: GpuBo,
        /// The byte.
        value: u8,
    },
    /// `dst = !src`, over the smaller of the two.
    Invert {
        /// Source object.
        src: GpuBo,
        /// Destination object.
        dst: GpuBo,
    },
    /// `dst = (a * (255 - alpha) + b * alpha) / 255` per byte (a cross-fade of two frames; for
    /// NV12 the chroma blends linearly as the luma does), over the smallest of the three.
    Blend {
        /// First source.
        a: GpuBo,
        /// Second source.
        b: GpuBo,
        /// Destination.
        dst: GpuBo,
        /// Weight of `b`, 0..=255.
        alpha: u8,
    },
    /// A driver's [`DeviceJob`] run by the GPU (a composite): `reads[k]` is the job's input `k`,
    /// `writes[k]` its output `k`, each seen through the VM's mapping.
    Device {
        /// The objects read, in the job's input order.
        reads: Vec<GpuBo>,
        /// The objects written, in the job's output order.
        writes: Vec<GpuBo>,
        /// The job and its effects' channel.
        job: DeviceSlot,
    },
}

/// A job: an operation, its explicit input fences, and whether implicit sync applies.
#[derive(Clone, Debug)]
pub struct Job {
    /// What to do.
    pub op: JobOp,
    /// Fences that must signal first (a sync file's, another device's).
    pub in_fences: Vec<DmaFence>,
    /// Wait for the objects' reservation fences too (step 4). Default `true`.
    pub implicit_sync: bool,
}

impl Job {
    fn new(op: JobOp) -> Job {
        Job {
            op,
            in_fences: Vec::new(),
            implicit_sync: true,
        }
    }

    /// Copies the whole of `src` into `dst` (the smaller size).
    pub fn copy(src: &GpuBo, dst: &GpuBo) -> Job {
        let len = src.size().min(dst.size());
        Job::blit(src, 0, dst, 0, len)
    }

    /// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off`.
    pub fn blit(src: &GpuBo, src_off: u64, dst: &GpuBo, dst_off: u64, len: u64) -> Job {
        Job::new(JobOp::Blit {
            src: src.clone(),
            src_off,
            dst: dst.clone(),
            dst_off,
            len,
        })
    }

    /// Fills `dst` with `value`.
    pub fn fill(dst: &GpuBo, value: u8) -> Job {
        Job::new(JobOp::Fill {
            dst: dst.clone(),
            value,
        })
    }

    /// `dst = !src`.
    pub fn invert(src: &GpuBo, dst: &GpuBo) -> Job {
        Job::new(JobOp::Invert {
            src: src.clone(),
            dst: dst.clone(),
        })
    }

    /// Blends `a` and `b` into `dst` with weight `alpha` for `b`.
    pub fn blend(a: &GpuBo, b: &GpuBo, dst: &GpuBo, alpha: u8) -> Job {
        Job::new(JobOp::Blend {
            a: a.clone(),
            b: b.clone(),
            dst: dst.clone(),
            alpha,
        })
    }

    /// A job that runs `job` (its views are replaced by the VM's mappings of `reads` and
    /// `writes` at submission) and the channel its [`JobEffects`] come back on once the ring
    /// ran it (nothing comes if the job is cancelled).
    pub fn device(
        job: DeviceJob,
        reads: &[GpuBo],
        writes: &[GpuBo],
    ) -> (Job, Receiver<JobEffects>) {
        let (tx, rx) = channel();
        let op = JobOp::Device {
            reads: reads.to_vec(),
            writes: writes.to_vec(),
            job: Arc::new(Mutex::new(Some((job, tx)))),
        };
        (Job::new(op), rx)
    }

    /// Adds an explicit input fence.
    pub fn after(mut self, fence: DmaFence) -> Job {
        self.in_fences.push(fence);
        self
    }

    /// Turns implicit sync off (the caller orders everything with explicit fences).
    pub fn without_implicit_sync(mut self) -> Job {
        self.implicit_sync = false;
        self
    }

    /// The objects and whether each is written, deduplicated (written wins).
    fn objects(&self) -> Vec<(GpuBo, bool)> {
        let list: Vec<(&GpuBo, bool)> = match &self.op {
            JobOp::Blit { src, dst, .. } | JobOp::Invert { src, dst } => {
                vec![(src, false), (dst, true)]
            }
            JobOp::Fill { dst, .. } => vec![(dst, true)],
            JobOp::Blend { a, b, dst, .. } => vec![(a, false), (b, false), (dst, true)],
            JobOp::Device { reads, writes, .. } => reads
                .iter()
                .map(|b| (b, false))
                .chain(writes.iter().map(|b| (b, true)))
                .collect(),
        };
        let mut out: Vec<(GpuBo, bool)> = Vec::new();
        for (bo, w) in list {
            match out.iter_mut().find(|(b, _)| b.ptr_eq(bo)) {
                Some(e) => e.1 |= w,
                None => out.push((bo.clone(), w)),
            }
        }
        out
    }
}

fn range_ok(bo: &GpuBo, off: u64, len: u64) -> Result<(), GpuError> {
    match off.checked_add(len) {
        Some(e) if e <= bo.size() && len > 0 => Ok(()),
        _ => Err(GpuError::InvalidArgument(format!(
            "{len:#x} bytes at {off:#x} do not fit buffer object {} of {:#x} bytes",
            bo.id(),
            bo.size()
        ))),
    }
}

/// `amdgpu_cs_ioctl` (the steps of the module doc).
pub(crate) fn submit(core: &Arc<GpuCore>, vm: &GpuVm, job: Job) -> Result<DmaFence, GpuError> {
    // Step 1.
    if !Arc::ptr_eq(&vm.0.gpu, core) {
        return Err(GpuError::InvalidArgument(
            "the VM belongs to another GPU".into(),
        ));
    }
    let objs = job.objects();
    for (bo, write) in &objs {
        if !Arc::ptr_eq(&bo.0.gpu, core) {
            return Err(GpuError::ForeignBo(bo.id()));
        }
        if *write
            && bo
                .0
                .import
                .get()
                .is_some_and(|l| l.dir == dma::DmaDirection::ToDevice)
        {
            return Err(GpuError::InvalidArgument(format!(
                "buffer object {} is a read-only import",
                bo.id()
            )));
        }
    }
    match &job.op {
        JobOp::Blit {
            src,
            src_off,
            dst,
            dst_off,
            len,
        } => {
            range_ok(src, *src_off, *len)?;
            range_ok(dst, *dst_off, *len)?;
        }
        JobOp::Fill { dst, .. } => range_ok(dst, 0, dst.size())?,
        JobOp::Invert { src, dst } => range_ok(dst, 0, src.size().min(dst.size()))?,
        JobOp::Blend { a, b, dst, .. } => range_ok(dst, 0, a.size().min(b.size()).min(dst.size()))?,
        JobOp::Device { reads, writes, job } => {
            let slot = job.lock();
            let (dj, _) = slot
                .as_ref()
                .ok_or_else(|| GpuError::InvalidArgument("the device job was submitted".into()))?;
            if dj.inputs.len() != reads.len() || dj.outputs.len() != writes.len() {
                return Err(GpuError::InvalidArgument(format!(
                    "a device job of {} inputs and {} outputs on {} and {} objects",
                    dj.inputs.len(),
                    dj.outputs.len(),
                    reads.len(),
                    writes.len()
                )));
            }
            let planes = dj
                .inputs
                .iter()
                .map(|i| &i.planes)
                .zip(reads)
                .chain(dj.outputs.iter().map(|o| &o.planes).zip(writes));
            for (ps, bo) in planes {
                for &(off, len) in ps {
                    range_ok(bo, off, len)?;
                }
            }
        }
    }
    // Step 2.
    let resvs: Vec<&fence::DmaResv> = objs.iter().map(|(b, _)| &**b.resv()).collect();
    let mut exec = ResvExec::lock_all(&resvs, None)?;
    let ids: Vec<u64> = objs.iter().map(|(b, _)| b.id()).collect();
    // Steps 3-4.
    let mut segs: Vec<Segs> = Vec::with_capacity(objs.len());
    let mut deps = job.in_fences.clone();
    for (bo, write) in &objs {
        let g = exec
            .guard_of(bo.resv())
            .ok_or_else(|| GpuError::InvalidArgument("object not locked".into()))?;
        segs.push(vm.0.map_locked(&bo.0, g, &ids)?);
        if job.implicit_sync {
            let usage = if *write {
                DmaResvUsage::Read
            } else {
                DmaResvUsage::Write
            };
            deps.extend(bo.resv().get_fences(usage));
        }
    }
    let seg = |bo: &GpuBo| {
        let i = objs.iter().position(|(b, _)| b.ptr_eq(bo)).expect("listed");
        segs[i].clone()
    };
    let work = match &job.op {
        JobOp::Blit {
            src,
            src_off,
            dst,
            dst_off,
            len,
        } => Work::Blit {
            src: seg(src),
            so: *src_off,
            dst: seg(dst),
            d_o: *dst_off,
            len: *len,
        },
        JobOp::Fill { dst, value } => Work::Fill {
            dst: seg(dst),
            len: dst.size(),
            value: *value,
        },
        JobOp::Invert { src, dst } => Work::Invert {
            src: seg(src),
            dst: seg(dst),
            len: src.size().min(dst.size()),
        },
        JobOp::Blend { a, b, dst, alpha } => Work::Blend {
            a: seg(a),
            b: seg(b),
            dst: seg(dst),
            len: a.size().min(b.size()).min(dst.size()),
            alpha: *alpha,
        },
        JobOp::Device { reads, writes, job } => {
            let (mut dj, done) = job
                .lock()
                .take()
                .ok_or_else(|| GpuError::InvalidArgument("the device job was submitted".into()))?;
            let view = |bo: &GpuBo| {
                let segs: Vec<dma::DmaSegment> = seg(bo)
                    .into_iter()
                    .map(|(addr, len)| dma::DmaSegment { addr, len })
                    .collect();
                DmaView::from_segments(core.dev.clone(), &segs)
            };
            for (i, bo) in dj.inputs.iter_mut().zip(reads) {
                i.view = view(bo);
            }
            for (o, bo) in dj.outputs.iter_mut().zip(writes) {
                o.view = view(bo);
            }
            Work::Device(Mutex::new(Some((dj, done, core.dma.clone()))))
        }
    };
    // Step 5, under the queue lock so seqnos follow queue order.
    for (bo, _) in &objs {
        let g = exec.guard_of(bo.resv()).expect("locked above");
        g.reserve_fences(1)?;
    }
    let ring = &core.ring;
    let mut q = ring.shared.q.lock();
    q.next_seqno += 1;
    let fence = DmaFence::new(ring.ops.clone(), ring.ctx, q.next_seqno);
    for (bo, write) in &objs {
        let g = exec.guard_of(bo.resv()).expect("locked above");
        let usage = if *write {
            DmaResvUsage::Write
        } else {
            DmaResvUsage::Read
        };
        if let Err(e) = g.add_fence(&fence, usage) {
            // Slots were reserved, so this is a bug; never leave an unsignaled fence behind.
            let _ = fence.set_error(Errno::EINVAL);
            let _ = fence.signal();
            return Err(e.into());
        }
    }
    q.stats.submitted += 1;
    q.jobs.push_back(PendingJob {
        fence: fence.clone(),
        deps,
        work,
        dev: core.dev.clone(),
        _vm: vm.0.clone(),
        _bos: objs.iter().map(|(b, _)| b.0.clone()).collect(),
    });
    drop(q);
    ring.shared.cv.notify_one();
    drop(exec);
    Ok(fence)
}
