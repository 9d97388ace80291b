//! Integration tests of vb2: one test per behaviour of `reference/vb2-semantics.md` section 2
//! (named `bNN_...` after it), v4l2-compliance-style sequences, the map policies, cache handling
//! and an end-to-end EXPBUF -> DMABUF pipeline through real DMA.

mod cache;
mod compliance;
mod dmabuf_import;
mod e2e;
mod expbuf_mmap;
mod policy;
mod qbuf;
mod reqbufs;
mod streaming;
mod userptr;

use dma::DmaApi;
use kernel::{Kernel, Process};
use parking_lot::Mutex;
use soc::{DeviceDesc, SocDesc};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use uapi::Errno;
use vb2::ioctl::*;
use vb2::*;

/// The errno of a call that must fail.
pub fn errno<T: std::fmt::Debug>(r: Result<T, Vb2Error>) -> Errno {
    r.expect_err("the call must fail").errno()
}

/// Bytes a capture driver writes into `plane` of frame `frame`.
pub fn pattern(frame: u32, plane: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(31)
                .wrapping_add(frame * 7 + plane as u32 * 13) as u8
        })
        .collect()
}

/// FNV-1a.
pub fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A tiny driver: in `Auto` mode a capture buffer gets `pattern()` by DMA and is completed at
/// once; an output buffer is read by DMA and its checksum recorded. In hold mode buffers wait in
/// `held` until the test completes them.
pub struct TestDriver {
    pub dma: Arc<DmaApi>,
    pub sizes: Vec<u32>,
    pub auto: AtomicBool,
    pub held: Mutex<Vec<DriverBuffer>>,
    pub frame: AtomicU32,
    pub fail_start: Mutex<Option<Errno>>,
    pub return_on_failed_start: AtomicBool,
    pub return_on_stop: AtomicBool,
    pub fail_buf_init: AtomicBool,
    pub fail_buf_prepare: AtomicBool,
    pub output_sums: Mutex<Vec<u64>>,
    pub last_start_count: AtomicU32,
}

impl TestDriver {
    pub fn new(dma: &Arc<DmaApi>, sizes: &[u32]) -> Arc<TestDriver> {
        Arc::new(TestDriver {
            dma: dma.clone(),
            sizes: sizes.to_vec(),
            auto: AtomicBool::new(true),
            held: Mutex::new(Vec::new()),
            frame: AtomicU32::new(0),
            fail_start: Mutex::new(None),
            return_on_failed_start: AtomicBool::new(true),
            return_on_stop: AtomicBool::new(true),
            fail_buf_init: AtomicBool::new(false),
            fail_buf_prepare: AtomicBool::new(false),
            output_sums: Mutex::new(Vec::new()),
            last_start_count: AtomicU32::new(0),
        })
    }

    /// Runs one held buffer (the oldest) as in auto mode; returns its index.
    pub fn process_one(&self, q: &Vb2Queue) -> Option<u32> {
        let vb = {
            let mut h = self.held.lock();
            if h.is_empty() {
                return None;
            }
            h.remove(0)
        };
        let i = vb.index;
        self.run(q, vb);
        Some(i)
    }

    /// Completes every held buffer with `state`, without DMA.
    pub fn complete_all(&self, q: &Vb2Queue, state: Vb2State) {
        let held: Vec<DriverBuffer> = std::mem::take(&mut *self.held.lock());
        for vb in held {
            // A buffer the test completed by hand meanwhile is not ACTIVE any more: ignored.
            let _ = q.buffer_done(vb.index, state);
        }
    }

    fn run(&self, q: &Vb2Queue, vb: DriverBuffer) {
        let frame = self.frame.fetch_add(1, Ordering::Relaxed);
        if q.config().buf_type.is_output() {
            let mut all = Vec::new();
            for (p, plane) in vb.planes.iter().enumerate() {
                let mut data = vec![0u8; plane.bytesused as usize];
                vb.dma_read(&self.dma, p, 0, &mut data).unwrap();
                all.extend_from_slice(&data);
            }
            self.output_sums.lock().push(checksum(&all));
        } else {
            for (p, plane) in vb.planes.iter().enumerate() {
                let data = pattern(frame, p, plane.length as usize);
                vb.dma_write(&self.dma, p, 0, &data).unwrap();
                q.set_plane_payload(vb.index, p, plane.length).unwrap();
            }
        }
        q.buffer_done(vb.index, Vb2State::Done).unwrap();
    }
}

impl Vb2Ops for TestDriver {
    fn queue_setup(&self, _n: &mut u32, req: Option<&[u32]>) -> Result<Vec<u32>, Errno> {
        default_queue_setup(&self.sizes, req)
    }

    fn buf_init(&self, _vb: &DriverBuffer) -> Result<(), Errno> {
        if self.fail_buf_init.load(Ordering::Relaxed) {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    fn buf_prepare(&self, _vb: &DriverBuffer) -> Result<(), Errno> {
        if self.fail_buf_prepare.load(Ordering::Relaxed) {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    fn buf_queue(&self, q: &Vb2Queue, vb: DriverBuffer) {
        if self.auto.load(Ordering::Relaxed) && q.is_started() {
            self.run(q, vb);
        } else {
            self.held.lock().push(vb);
        }
    }

    fn start_streaming(&self, q: &Vb2Queue, count: u32) -> Result<(), Errno> {
        self.last_start_count.store(count, Ordering::Relaxed);
        if let Some(e) = *self.fail_start.lock() {
            if self.return_on_failed_start.load(Ordering::Relaxed) {
                self.complete_all(q, Vb2State::Queued);
            }
            return Err(e);
        }
        if self.auto.load(Ordering::Relaxed) {
            while self.process_one(q).is_some() {}
        }
        Ok(())
    }

    fn stop_streaming(&self, q: &Vb2Queue) {
        if self.return_on_stop.load(Ordering::Relaxed) {
            self.complete_all(q, Vb2State::Error);
        } else {
            self.held.lock().clear();
        }
    }
}

/// The default SoC plus `vdev0`: no IOMMU, 32-bit mask, not coherent, not contiguous-only.
pub fn soc_desc() -> SocDesc {
    let mut d = SocDesc::default_soc();
    d.devices.push(DeviceDesc::new("vdev0"));
    d
}

/// A queue with its driver, a process and the owner's file handle.
pub struct Rig {
    pub kernel: Arc<Kernel>,
    pub dma: Arc<DmaApi>,
    pub process: Arc<Process>,
    pub drv: Arc<TestDriver>,
    pub q: Arc<Vb2Queue>,
    pub fh: Vb2Fh,
    pub user: Arc<UserMemory>,
}

impl Rig {
    /// A capture queue of one 8 KiB plane on `isp0`.
    pub fn capture() -> Rig {
        Rig::new(BufType::VideoCapture, "isp0", &[8192], |_| {})
    }

    pub fn new(t: BufType, dev: &str, sizes: &[u32], f: impl FnOnce(&mut Vb2QueueConfig)) -> Rig {
        let kernel = Kernel::boot(soc_desc()).unwrap();
        Rig::on(&kernel, t, dev, sizes, f)
    }

    /// A rig on an existing kernel (for two queues on one machine).
    pub fn on(
        kernel: &Arc<Kernel>,
        t: BufType,
        dev: &str,
        sizes: &[u32],
        f: impl FnOnce(&mut Vb2QueueConfig),
    ) -> Rig {
        let dma = kernel.dma().clone();
        let mut cfg = Vb2QueueConfig::new(t, dma.device(dev).unwrap());
        f(&mut cfg);
        let drv = TestDriver::new(&dma, sizes);
        let q = Vb2Queue::new(&dma, cfg, drv.clone());
        let process = kernel.spawn();
        let user = UserMemory::new(&dma);
        let fh = q.open(&process).with_user_memory(user.clone());
        Rig {
            kernel: kernel.clone(),
            dma,
            process,
            drv,
            q,
            fh,
            user,
        }
    }

    pub fn t(&self) -> u32 {
        self.q.config().buf_type.raw()
    }

    /// Another file handle in the same process.
    pub fn other_fh(&self) -> Vb2Fh {
        self.q.open(&self.process)
    }

    pub fn reqbufs(&self, memory: u32, count: u32) -> Result<V4l2RequestBuffers, Vb2Error> {
        let mut r = V4l2RequestBuffers {
            count,
            type_: self.t(),
            memory,
            ..Default::default()
        };
        self.fh.reqbufs(&mut r).map(|()| r)
    }

    pub fn buf(&self, memory: u32, index: u32) -> V4l2Buffer {
        V4l2Buffer::new(self.t(), memory, index)
    }

    /// A `V4l2Buffer` for a DMABUF QBUF of `fds` (one per plane), lengths 0.
    pub fn dmabuf_buf(&self, index: u32, fds: &[i32]) -> V4l2Buffer {
        let mut b = self.buf(V4L2_MEMORY_DMABUF, index);
        if let Some(planes) = b.planes.as_mut() {
            for (p, &fd) in planes.iter_mut().zip(fds) {
                p.m_fd = fd;
            }
        } else {
            b.m_fd = fds[0];
        }
        b
    }

    /// A new system-heap dma-buf fd of `len` bytes in the rig's process.
    pub fn heap_fd(&self, len: u64) -> i32 {
        let heap = self.process.open_heap("system").unwrap();
        let fd = self
            .process
            .heap_alloc(heap, len, uapi::ioctl::O_RDWR | uapi::ioctl::O_CLOEXEC, 0)
            .unwrap();
        self.process.close(heap).unwrap();
        fd
    }

    pub fn qbuf(&self, memory: u32, index: u32) -> Result<V4l2Buffer, Vb2Error> {
        let mut b = self.buf(memory, index);
        self.fh.qbuf(&mut b).map(|()| b)
    }

    pub fn dqbuf(&self, memory: u32) -> Result<V4l2Buffer, Vb2Error> {
        let mut b = self.buf(memory, 0);
        self.fh
            .dqbuf_timeout(&mut b, Some(std::time::Duration::from_secs(5)))
            .map(|()| b)
    }

    pub fn balanced(&self) {
        let s = self.q.counters().snapshot();
        s.check_balanced().unwrap_or_else(|e| panic!("{e}: {s:?}"));
    }

    pub fn checker_clean(&self) {
        let c = self.dma.checker();
        assert_eq!(c.total(), 0, "{:#?}", c.findings());
    }
}
