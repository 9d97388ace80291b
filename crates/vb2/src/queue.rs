//! The queue (`struct vb2_queue`), its driver callbacks and ownership, and buffer allocation
//! and freeing; the file handle ([`Vb2Fh`]) with EXPBUF and mmap is in `fh.rs`.
//!
//! C side: `videobuf2-core.c` (`vb2_core_reqbufs`, `vb2_core_create_bufs`,
//! `vb2_core_remove_bufs`, `__vb2_queue_alloc`, `__vb2_queue_free`, `vb2_core_expbuf`,
//! `vb2_mmap`), `videobuf2-v4l2.c` (`vb2_ioctl_*`: ownership by file handle).
//!
//! # Ownership rules
//! 1. The file handle whose REQBUFS(n>0) or CREATE_BUFS(n>0) succeeds owns the queue; REQBUFS(0)
//!    and the owner's close release it.
//! 2. Any buffer ioctl from another handle is `EBUSY`, except QUERYBUF, mmap, and CREATE_BUFS
//!    with count 0 (which answers 0).
//! 3. close() by a non-owner leaves the queue untouched.

use crate::buffer::{BufType, DriverBuffer, Memory, PlaneMem, Vb2Buffer, Vb2State};
use crate::cache;
use crate::counters::Counters;
pub use crate::fh::Vb2Fh;
use crate::ioctl::*;
use crate::mem_mmap::MmapMem;
use crate::policy::MapPolicy;
use crate::Vb2Error;
use dma::DmaApi;
use kernel::Process;
use parking_lot::{Condvar, Mutex};
use soc::Device;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use uapi::Errno;

pub(crate) fn einval(msg: impl Into<String>) -> Vb2Error {
    Vb2Error::new(Errno::EINVAL, msg)
}

pub(crate) fn ebusy(msg: impl Into<String>) -> Vb2Error {
    Vb2Error::new(Errno::EBUSY, msg)
}

/// The memory allocator of a queue (`q->mem_ops`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Allocator {
    /// `vb2_dma_contig_memops`: every plane must be DMA-contiguous for the device (imports and
    /// user pointers that are not are refused with `EFAULT`).
    #[default]
    DmaContig,
    /// `vb2_dma_sg_memops`: scatter-gather planes.
    DmaSg,
}

/// How a driver configures its queue (the fields of `struct vb2_queue` a driver sets).
#[derive(Clone, Debug)]
pub struct Vb2QueueConfig {
    /// `q->type`.
    pub buf_type: BufType,
    /// `q->io_modes`: the memory types accepted.
    pub io_modes: Vec<Memory>,
    /// `q->mem_ops`.
    pub allocator: Allocator,
    /// `q->dev`: the device that DMAs into the buffers.
    pub device: Arc<Device>,
    /// `q->min_queued_buffers`: buffers queued before `start_streaming` may run.
    pub min_queued_buffers: u32,
    /// `q->min_reqbufs_allocation`: REQBUFS rounds up to this.
    pub min_reqbufs_allocation: u32,
    /// `q->max_num_buffers` (default 32).
    pub max_num_buffers: u32,
    /// `q->allow_cache_hints`.
    pub allow_cache_hints: bool,
    /// `q->allow_zero_bytesused`.
    pub allow_zero_bytesused: bool,
    /// When imported dma-bufs are unmapped (seed 004).
    pub map_policy: MapPolicy,
}

impl Vb2QueueConfig {
    /// A queue of `buf_type` on `device` with every memory type, dma-contig, no minimum,
    /// 32 buffers at most, no cache hints, [`MapPolicy::KeepMapped`].
    pub fn new(buf_type: BufType, device: Arc<Device>) -> Vb2QueueConfig {
        Vb2QueueConfig {
            buf_type,
            io_modes: vec![Memory::Mmap, Memory::Userptr, Memory::Dmabuf],
            allocator: Allocator::DmaContig,
            device,
            min_queued_buffers: 0,
            min_reqbufs_allocation: 1,
            max_num_buffers: 32,
            allow_cache_hints: false,
            allow_zero_bytesused: false,
            map_policy: MapPolicy::KeepMapped,
        }
    }
}

/// The driver's callbacks (`struct vb2_ops`).
///
/// Locks on entry (crate doc, "Locking"): the ioctl lock is held for all of them except when a
/// driver thread calls [`Vb2Queue::buffer_done`]; the queue's state lock is held for
/// `buf_init`, `buf_prepare`, `buf_finish` and `buf_cleanup` (which must not call back into the
/// queue) and **not** held for `buf_queue`, `start_streaming` and `stop_streaming` (which may).
pub trait Vb2Ops: Send + Sync {
    /// `queue_setup`: the plane sizes of new buffers; mandatory.
    ///
    /// - Called by REQBUFS with `requested == None` (give the current format's sizes), and by
    ///   CREATE_BUFS with the application's sizes (check them: a plane count that differs or a
    ///   size below the format's is `EINVAL`). [`default_queue_setup`] does both.
    /// - `num_buffers` may be lowered or raised.
    fn queue_setup(
        &self,
        num_buffers: &mut u32,
        requested: Option<&[u32]>,
    ) -> Result<Vec<u32>, Errno>;

    /// `buf_init`: once after MMAP allocation, or after USERPTR/DMABUF planes are (re)acquired.
    /// Optional. An error fails the allocation or the prepare.
    fn buf_init(&self, vb: &DriverBuffer) -> Result<(), Errno> {
        let _ = vb;
        Ok(())
    }

    /// `buf_prepare`: check and prepare a buffer before it is queued. Optional; an error fails
    /// PREPARE_BUF/QBUF.
    fn buf_prepare(&self, vb: &DriverBuffer) -> Result<(), Errno> {
        let _ = vb;
        Ok(())
    }

    /// `buf_finish`: the buffer returns to user space (DQBUF, cancel). Optional.
    fn buf_finish(&self, vb: &DriverBuffer) {
        let _ = vb;
    }

    /// `buf_cleanup`: undo `buf_init` before the memory goes. Optional.
    fn buf_cleanup(&self, vb: &DriverBuffer) {
        let _ = vb;
    }

    /// `buf_queue`: the buffer is the driver's now (ACTIVE); complete it later with
    /// [`Vb2Queue::buffer_done`] (possibly right away, from inside this call). Mandatory.
    fn buf_queue(&self, q: &Vb2Queue, vb: DriverBuffer);

    /// `start_streaming`: `count` buffers are already queued to the driver. On error, give every
    /// buffer back with `buffer_done(index, Vb2State::Queued)`. Optional.
    fn start_streaming(&self, q: &Vb2Queue, count: u32) -> Result<(), Errno> {
        let _ = (q, count);
        Ok(())
    }

    /// `stop_streaming`: stop DMA and complete every buffer the driver holds with
    /// `buffer_done(index, Vb2State::Error)`. Optional (vb2 reclaims what is left, warning).
    fn stop_streaming(&self, q: &Vb2Queue) {
        let _ = q;
    }
}

/// A `queue_setup` for a fixed format of `sizes`: REQBUFS gets `sizes`; CREATE_BUFS must ask
/// for as many planes, each at least as large (`EINVAL` otherwise), and gets what it asked.
///
/// ```
/// use vb2::default_queue_setup;
/// assert_eq!(default_queue_setup(&[4096], None).unwrap(), [4096]);
/// assert_eq!(default_queue_setup(&[4096], Some(&[8192])).unwrap(), [8192]);
/// assert_eq!(default_queue_setup(&[4096], Some(&[2048])).unwrap_err(), uapi::Errno::EINVAL);
/// ```
pub fn default_queue_setup(sizes: &[u32], requested: Option<&[u32]>) -> Result<Vec<u32>, Errno> {
    match requested {
        None => Ok(sizes.to_vec()),
        Some(req) if req.len() == sizes.len() && req.iter().zip(sizes).all(|(r, s)| r >= s) => {
            Ok(req.to_vec())
        }
        Some(_) => Err(Errno::EINVAL),
    }
}

/// Everything behind the state lock (crate doc, "Locking" rule 2).
pub(crate) struct QueueState {
    pub(crate) memory: Option<Memory>,
    pub(crate) non_coherent: bool,
    pub(crate) owner: Option<u64>,
    pub(crate) bufs: BTreeMap<u32, Vb2Buffer>,
    pub(crate) streaming: bool,
    pub(crate) start_streaming_called: bool,
    pub(crate) error: bool,
    pub(crate) last_buffer_dequeued: bool,
    pub(crate) waiting_in_dqbuf: bool,
    pub(crate) waiting_for_buffers: bool,
    pub(crate) queued_list: VecDeque<u32>,
    pub(crate) done_list: VecDeque<u32>,
    pub(crate) queued_count: u32,
    pub(crate) owned_by_drv_count: u32,
    pub(crate) sequence: u32,
    /// Bumped by cancel: wakes blocked DQBUFs.
    pub(crate) generation: u64,
}

/// A videobuf2 queue (crate documentation).
pub struct Vb2Queue {
    pub(crate) me: Weak<Vb2Queue>,
    pub(crate) cfg: Vb2QueueConfig,
    pub(crate) ops: Arc<dyn Vb2Ops>,
    pub(crate) dma: Arc<DmaApi>,
    pub(crate) ioctl_lock: Mutex<()>,
    pub(crate) state: Mutex<QueueState>,
    pub(crate) done_wq: Condvar,
    pub(crate) counters: Counters,
    next_fh: AtomicU64,
    /// What the driver tells the exporter with every dma-buf it attaches
    /// ([`Vb2Queue::set_importer_priv`]).
    pub(crate) importer_priv: Mutex<Option<dmabuf::ImporterPriv>>,
}

impl std::fmt::Debug for Vb2Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vb2Queue")
            .field("type", &self.cfg.buf_type)
            .field("device", &self.cfg.device.name())
            .field("buffers", &self.num_buffers())
            .finish()
    }
}

impl Vb2Queue {
    /// `vb2_queue_init`: a queue with `cfg` and the driver's `ops`.
    pub fn new(dma: &Arc<DmaApi>, cfg: Vb2QueueConfig, ops: Arc<dyn Vb2Ops>) -> Arc<Vb2Queue> {
        Arc::new_cyclic(|me| Vb2Queue {
            me: me.clone(),
            cfg,
            ops,
            dma: dma.clone(),
            ioctl_lock: Mutex::new(()),
            state: Mutex::new(QueueState {
                memory: None,
                non_coherent: false,
                owner: None,
                bufs: BTreeMap::new(),
                streaming: false,
                start_streaming_called: false,
                error: false,
                last_buffer_dequeued: false,
                waiting_in_dqbuf: false,
                waiting_for_buffers: false,
                queued_list: VecDeque::new(),
                done_list: VecDeque::new(),
                queued_count: 0,
                owned_by_drv_count: 0,
                sequence: 0,
                generation: 0,
            }),
            done_wq: Condvar::new(),
            counters: Counters::default(),
            next_fh: AtomicU64::new(1),
            importer_priv: Mutex::new(None),
        })
    }

    /// The driver's data for every dma-buf the queue attaches from now on
    /// (`dma_buf_attach`'s importer data, [`dmabuf::DmaBuf::attach_with`]): what its device
    /// needs of a buffer, for an exporter that reads it (the constraint exporter's
    /// `ImporterNeeds`). Planes attached already keep what they were attached with.
    pub fn set_importer_priv(&self, importer_priv: Option<dmabuf::ImporterPriv>) {
        *self.importer_priv.lock() = importer_priv;
    }

    /// Opens the video device: a new file handle in `process` (dma-buf fds of DQBUF/EXPBUF live
    /// in its fd table).
    pub fn open(&self, process: &Arc<Process>) -> Vb2Fh {
        Vb2Fh {
            q: self.me.upgrade().expect("a queue is always in its Arc"),
            id: self.next_fh.fetch_add(1, Ordering::Relaxed),
            process: process.clone(),
            user_mem: None,
            nonblock: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Another reference to this queue (for a driver thread that completes buffers later).
    pub fn handle(&self) -> Arc<Vb2Queue> {
        self.me.upgrade().expect("a queue is always in its Arc")
    }

    /// The configuration.
    pub fn config(&self) -> &Vb2QueueConfig {
        &self.cfg
    }

    /// The DMA API the queue maps through.
    pub fn dma(&self) -> &Arc<DmaApi> {
        &self.dma
    }

    /// The debug counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Buffers allocated (`vb2_get_num_buffers`).
    pub fn num_buffers(&self) -> u32 {
        self.state.lock().bufs.len() as u32
    }

    /// The state of buffer `index`, if it exists.
    pub fn buffer_state(&self, index: u32) -> Option<Vb2State> {
        self.state.lock().bufs.get(&index).map(|b| b.state)
    }

    /// `vb2_plane_size`: the length of `plane` of buffer `index`, if both exist (a codec
    /// driver's bound for what it writes, e.g. an encoder's stream).
    pub fn plane_size(&self, index: u32, plane: usize) -> Option<u32> {
        let st = self.state.lock();
        st.bufs.get(&index)?.planes.get(plane).map(|p| p.length)
    }

    /// Whether STREAMON succeeded (and no STREAMOFF since).
    pub fn is_streaming(&self) -> bool {
        self.state.lock().streaming
    }

    /// Whether the driver has been started (`start_streaming_called`).
    pub fn is_started(&self) -> bool {
        self.state.lock().start_streaming_called
    }

    /// The current memory type (`None`: UNKNOWN, no buffers).
    pub fn memory(&self) -> Option<Memory> {
        self.state.lock().memory
    }

    pub(crate) fn check_type(&self, type_: u32) -> Result<(), Vb2Error> {
        if type_ != self.cfg.buf_type.raw() {
            return Err(einval(format!(
                "type {type_} is not the queue's {}",
                self.cfg.buf_type.raw()
            )));
        }
        Ok(())
    }

    /// `vb2_verify_memory_type` (without the owner check).
    pub(crate) fn verify_memory_type(&self, memory: u32, type_: u32) -> Result<Memory, Vb2Error> {
        let mem = Memory::from_raw(memory)
            .ok_or_else(|| einval(format!("memory {memory} is not MMAP, USERPTR or DMABUF")))?;
        self.check_type(type_)?;
        if !self.cfg.io_modes.contains(&mem) {
            return Err(einval(format!("the queue does not support {mem:?}")));
        }
        Ok(mem)
    }

    pub(crate) fn capabilities(&self) -> u32 {
        let mut caps = V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS
            | V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS
            | V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS;
        for m in &self.cfg.io_modes {
            caps |= match m {
                Memory::Mmap => V4L2_BUF_CAP_SUPPORTS_MMAP,
                Memory::Userptr => V4L2_BUF_CAP_SUPPORTS_USERPTR,
                Memory::Dmabuf => V4L2_BUF_CAP_SUPPORTS_DMABUF,
            };
        }
        if self.cfg.allow_cache_hints {
            caps |= V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS;
        }
        caps
    }

    pub(crate) fn check_owner(&self, st: &QueueState, fh: u64) -> Result<(), Vb2Error> {
        match st.owner {
            Some(o) if o != fh => Err(ebusy("the queue is owned by another file handle")),
            _ => Ok(()),
        }
    }

    pub(crate) fn contiguous(&self) -> bool {
        self.cfg.allocator == Allocator::DmaContig
    }

    /// `__vb2_queue_alloc`: up to `count` buffers with `sizes` from index `first`; returns how
    /// many were created.
    pub(crate) fn alloc_buffers(
        &self,
        st: &mut QueueState,
        first: u32,
        count: u32,
        sizes: &[u32],
    ) -> u32 {
        let dev = &self.cfg.device;
        let mut made = 0;
        for index in first..first + count {
            let mut vb = Vb2Buffer::new(index, sizes);
            if st.memory == Some(Memory::Mmap) {
                let mut ok = true;
                for p in &mut vb.planes {
                    match MmapMem::alloc(
                        &self.dma,
                        dev,
                        self.cfg.buf_type.dma_dir(),
                        u64::from(p.length),
                        st.non_coherent,
                        self.contiguous(),
                    ) {
                        Ok(m) => {
                            Counters::inc(&self.counters.alloc);
                            p.mem = PlaneMem::Mmap(Arc::new(m));
                        }
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                }
                if ok {
                    ok = self.ops.buf_init(&vb.driver_view(dev)).is_ok();
                    if ok {
                        Counters::inc(&self.counters.buf_init);
                        vb.inited = true;
                    }
                }
                if !ok {
                    self.free_buffer(vb);
                    break;
                }
            }
            st.bufs.insert(index, vb);
            made += 1;
        }
        made
    }

    /// `__vb2_free_mem` + `buf_cleanup` for one buffer.
    ///
    /// A buffer freed while prepared (PREPARE_BUF then REMOVE_BUFS) first gets its cache
    /// "finish" and `buf_finish`, so every pair of the counters stays balanced.
    pub(crate) fn free_buffer(&self, mut vb: Vb2Buffer) {
        cache::mem_finish(&mut vb, &self.counters);
        if vb.prepared {
            self.ops.buf_finish(&vb.driver_view(&self.cfg.device));
            Counters::inc(&self.counters.buf_finish);
            vb.prepared = false;
        }
        if vb.inited {
            self.ops.buf_cleanup(&vb.driver_view(&self.cfg.device));
            Counters::inc(&self.counters.buf_cleanup);
            vb.inited = false;
        }
        for p in &mut vb.planes {
            self.release_plane(&mut p.mem);
        }
    }

    /// Releases one plane's memory (MMAP: the queue's reference; USERPTR: unpin; DMABUF: unmap,
    /// detach, put).
    pub(crate) fn release_plane(&self, mem: &mut PlaneMem) {
        match std::mem::replace(mem, PlaneMem::None) {
            PlaneMem::None => {}
            PlaneMem::Mmap(m) => {
                drop(m);
                Counters::inc(&self.counters.put);
            }
            PlaneMem::Userptr(u) => {
                drop(u);
                Counters::inc(&self.counters.put_userptr);
            }
            PlaneMem::Dmabuf(d) => d.release(&self.counters),
        }
    }

    /// `__vb2_queue_free` of every buffer.
    pub(crate) fn free_all(&self, st: &mut QueueState) {
        for (_, vb) in std::mem::take(&mut st.bufs) {
            self.free_buffer(vb);
        }
        st.memory = None;
        st.non_coherent = false;
    }
}
