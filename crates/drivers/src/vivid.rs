//! A vivid-like video device: vivid's video capture and video output nodes (the virtual video
//! test driver of `drivers/media/test-drivers/vivid/`) over vb2, seen through the V4L2 seam
//! ([`seam::v4l2::V4l2`]) by simulated processes. The real kernel's answer is vivid itself
//! (`linux::Vivid`); the `v4l2` conformance suite holds both to the same errnos.
//!
//! # What it models (vivid in Linux 6.12, as found in qemu)
//!
//! 1. Two nodes, `vid-cap` and `vid-out`; `QUERYCAP` says driver `vivid`, device caps
//!    `0x05230001` (capture) and `0x05220002` (output).
//! 2. Default formats: capture 640x360 YUYV (1280 bytes a line, 460800 a frame), output 720x576
//!    YUYV (1440, 829440). `G_FMT` of the other node's type is `EINVAL`.
//! 3. Each node is one vb2 queue taking MMAP, USERPTR and DMABUF, scatter-gather memory (vivid
//!    allocates with vmalloc: no contiguity asked), at most 32 buffers. Both queues start as
//!    soon as they stream with a buffer queued: vivid supports requests by default, and then
//!    its queues have `min_queued_buffers` 0 (found in qemu: the simulator said 2 and 1).
//! 4. The capture side fills every buffer it gets with a test-pattern line and completes it;
//!    the output side consumes every buffer it gets and completes it. vivid does this on a
//!    thread at the frame rate; here it happens in `buf_queue`, so a frame is ready as soon as
//!    the queue runs (nothing in the simulator waits on the wall clock).
//!
//! # Locking and lifetime
//! A node's open file holds a [`Vb2Fh`]; closing the file closes the handle (the owner's close
//! frees the buffers, as vb2's release does). The queues live as long as the device or any
//! open file.

use kernel::file::{DeviceFile, FileObject};
use kernel::sim::SimProcess;
use seam::v4l2::*;
use seam::{Errno, Fd};
use std::sync::Arc;
use uapi::ioctl::{O_CLOEXEC, O_RDWR};
use vb2::ioctl::{
    V4l2Buffer, V4l2CreateBuffers, V4l2ExportBuffer, V4l2Format, V4l2RemoveBuffers,
    V4l2RequestBuffers,
};
use vb2::userptr::UserMemory;
use vb2::{Allocator, BufType, DriverBuffer, Vb2Fh, Vb2Ops, Vb2Queue, Vb2QueueConfig, Vb2State};

/// A node's default format (rule 2).
#[derive(Debug, Clone, Copy)]
struct Format {
    width: u32,
    height: u32,
    bytesperline: u32,
}

impl Format {
    fn sizeimage(&self) -> u32 {
        self.bytesperline * self.height
    }
}

const CAPTURE_FORMAT: Format = Format {
    width: 640,
    height: 360,
    bytesperline: 1280,
};
const OUTPUT_FORMAT: Format = Format {
    width: 720,
    height: 576,
    bytesperline: 1440,
};
/// `V4L2_PIX_FMT_YUYV`.
const YUYV: u32 = u32::from_le_bytes(*b"YUYV");

/// The driver side of one node (rule 4).
struct Node {
    capture: bool,
    format: Format,
    dma: Arc<dma::DmaApi>,
}

impl Vb2Ops for Node {
    fn queue_setup(&self, _n: &mut u32, requested: Option<&[u32]>) -> Result<Vec<u32>, Errno> {
        vb2::default_queue_setup(&[self.format.sizeimage()], requested)
    }

    fn buf_queue(&self, q: &Vb2Queue, vb: DriverBuffer) {
        if self.capture {
            // A test-pattern line: the first line of 75% colour bars' luma/chroma pairs.
            let line: Vec<u8> = (0..self.format.bytesperline)
                .map(|i| if i % 2 == 0 { 0xb4 } else { 0x80 })
                .collect();
            let state = match vb.dma_write(&self.dma, 0, 0, &line) {
                Ok(()) => Vb2State::Done,
                Err(_) => Vb2State::Error,
            };
            let _ = q.set_plane_payload(vb.index, 0, self.format.sizeimage());
            let _ = q.buffer_done(vb.index, state);
        } else {
            let _ = q.buffer_done(vb.index, Vb2State::Done);
        }
    }
}

/// The simulated vivid instance of one machine (rules 1-3), and the address space USERPTR
/// planes come from.
#[derive(Clone)]
pub struct VividDevice {
    capture: Arc<Vb2Queue>,
    output: Arc<Vb2Queue>,
    user: Arc<UserMemory>,
}

/// Anonymous memory of the simulated process, for USERPTR: unmapped when dropped.
pub struct VividUserMem {
    user: Arc<UserMemory>,
    addr: u64,
    len: u64,
}

impl std::fmt::Debug for VividUserMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VividUserMem({:#x}, len {:#x})", self.addr, self.len)
    }
}

impl Drop for VividUserMem {
    fn drop(&mut self) {
        let _ = self.user.munmap(self.addr);
    }
}

impl seam::Mapping for VividUserMem {
    fn len(&self) -> u64 {
        self.len
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(Errno::EFAULT);
        }
        self.user.read(self.addr + offset, buf).map_err(err)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(Errno::EFAULT);
        }
        self.user.write(self.addr + offset, data).map_err(err)
    }
}

impl std::fmt::Debug for VividDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VividDevice").finish_non_exhaustive()
    }
}

/// An open node: the vb2 file handle (closed with the file).
struct VividFile {
    fh: Vb2Fh,
    capture: bool,
}

impl std::fmt::Debug for VividFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VividFile(capture: {})", self.capture)
    }
}

impl Drop for VividFile {
    fn drop(&mut self) {
        self.fh.close();
    }
}

impl DeviceFile for VividFile {
    fn path(&self) -> String {
        if self.capture {
            "/dev/video0"
        } else {
            "/dev/video1"
        }
        .into()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn err(e: vb2::Vb2Error) -> Errno {
    e.errno()
}

impl VividDevice {
    /// The two nodes on `dma`'s machine, doing their DMA as `device` (vivid has no hardware;
    /// any device of the SoC serves).
    ///
    /// Errors: `ENODEV` if the SoC has no such device.
    pub fn new(dma: &Arc<dma::DmaApi>, device: &str) -> Result<VividDevice, Errno> {
        let dev = dma.device(device).map_err(|_| Errno::ENODEV)?;
        let queue = |capture: bool| {
            // vivid asks for 2 (capture) and 1 (output) queued buffers, but it supports
            // requests by default, and then vivid_create_queue sets min_queued_buffers to 0.
            let (ty, format, min) = if capture {
                (BufType::VideoCapture, CAPTURE_FORMAT, 0)
            } else {
                (BufType::VideoOutput, OUTPUT_FORMAT, 0)
            };
            let mut cfg = Vb2QueueConfig::new(ty, dev.clone());
            cfg.allocator = Allocator::DmaSg;
            cfg.min_queued_buffers = min;
            cfg.min_reqbufs_allocation = 2;
            let node = Node {
                capture,
                format,
                dma: dma.clone(),
            };
            Vb2Queue::new(dma, cfg, Arc::new(node))
        };
        Ok(VividDevice {
            capture: queue(true),
            output: queue(false),
            user: UserMemory::new(dma),
        })
    }

    fn file(u: &SimProcess, fd: Fd) -> Result<Arc<kernel::file::File>, Errno> {
        use uapi::AsErrno;
        let file = u.process().file(fd).map_err(|e| e.errno().to_user())?;
        match file.object() {
            FileObject::Device(d) if d.as_any().is::<VividFile>() => Ok(file.clone()),
            _ => Err(Errno::ENOTTY),
        }
    }

    fn with<T>(
        u: &SimProcess,
        fd: Fd,
        f: impl FnOnce(&VividFile) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let file = Self::file(u, fd)?;
        let FileObject::Device(d) = file.object() else {
            return Err(Errno::ENOTTY);
        };
        let vf = d
            .as_any()
            .downcast_ref::<VividFile>()
            .ok_or(Errno::ENOTTY)?;
        f(vf)
    }
}

fn to_vb2(b: &Buffer) -> V4l2Buffer {
    let mut v = V4l2Buffer::new(b.type_, b.memory, b.index);
    v.bytesused = b.bytesused;
    v.flags = b.flags;
    v.length = b.length;
    v.m_offset = b.m;
    v.m_fd = b.m as i32;
    v.m_userptr = b.userptr;
    v
}

fn from_vb2(v: &V4l2Buffer, b: &mut Buffer) {
    b.index = v.index;
    b.type_ = v.type_;
    b.bytesused = v.bytesused;
    b.flags = v.flags;
    b.memory = v.memory;
    b.length = v.length;
    b.userptr = v.m_userptr;
    b.m = if v.memory == MEMORY_DMABUF {
        v.m_fd as u32
    } else {
        v.m_offset
    };
}

/// A CPU mapping of an MMAP plane of a simulated vivid queue (holds the plane's memory).
pub struct VividPlane {
    map: vb2::Vb2Mapping,
    prot: u32,
}

impl std::fmt::Debug for VividPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VividPlane(len {:#x}, prot {:#x})",
            self.map.len(),
            self.prot
        )
    }
}

impl seam::Mapping for VividPlane {
    fn len(&self) -> u64 {
        self.map.len()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if self.prot & (seam::PROT_READ | seam::PROT_WRITE) == 0 {
            return Err(Errno::EACCES);
        }
        self.map.read(offset, buf).map_err(err)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        if self.prot & seam::PROT_WRITE == 0 {
            return Err(Errno::EACCES);
        }
        self.map.write(offset, data).map_err(err)
    }
}

impl V4l2<SimProcess> for VividDevice {
    type Plane = VividPlane;
    type UserMem = VividUserMem;

    fn user_memory(&mut self, _u: &mut SimProcess, len: u64) -> Result<(VividUserMem, u64), Errno> {
        let addr = self.user.mmap_anon(len).map_err(err)?;
        let mem = VividUserMem {
            user: self.user.clone(),
            addr,
            len,
        };
        Ok((mem, addr))
    }

    fn mmap_plane(
        &mut self,
        u: &mut SimProcess,
        fd: Fd,
        offset: u32,
        len: u64,
        prot: u32,
        shared: bool,
    ) -> Result<VividPlane, Errno> {
        Self::with(u, fd, |vf| {
            let map = vf.fh.mmap(offset, len, prot, shared).map_err(err)?;
            Ok(VividPlane { map, prot })
        })
    }

    fn poll_video(
        &mut self,
        u: &mut SimProcess,
        fd: Fd,
        events: u16,
        _timeout_ms: i32,
    ) -> Result<u16, Errno> {
        // Frames complete as soon as the queue runs (rule 4): nothing is left to wait for.
        Self::with(u, fd, |vf| Ok(vf.fh.poll(events)))
    }

    fn open_video(&mut self, u: &mut SimProcess, node: VideoNode) -> Result<Fd, Errno> {
        use uapi::AsErrno;
        let (q, capture) = match node {
            VideoNode::Capture => (&self.capture, true),
            VideoNode::Output => (&self.output, false),
        };
        let vf = VividFile {
            fh: q.open(u.process()).with_user_memory(self.user.clone()),
            capture,
        };
        u.process()
            .install(FileObject::Device(Arc::new(vf)), O_RDWR | O_CLOEXEC)
            .map_err(|e| e.errno().to_user())
    }

    fn querycap(&mut self, u: &mut SimProcess, fd: Fd) -> Result<Capability, Errno> {
        Self::with(u, fd, |vf| {
            Ok(Capability {
                driver: "vivid".into(),
                device_caps: if vf.capture { 0x0523_0001 } else { 0x0522_0002 },
            })
        })
    }

    fn g_fmt(&mut self, u: &mut SimProcess, fd: Fd, type_: u32) -> Result<PixFormat, Errno> {
        Self::with(u, fd, |vf| {
            let (ty, f) = if vf.capture {
                (BUF_TYPE_VIDEO_CAPTURE, CAPTURE_FORMAT)
            } else {
                (BUF_TYPE_VIDEO_OUTPUT, OUTPUT_FORMAT)
            };
            if type_ != ty {
                return Err(Errno::EINVAL);
            }
            Ok(PixFormat {
                width: f.width,
                height: f.height,
                pixelformat: YUYV,
                bytesperline: f.bytesperline,
                sizeimage: f.sizeimage(),
            })
        })
    }

    fn reqbufs(&mut self, u: &mut SimProcess, fd: Fd, r: &mut RequestBuffers) -> Result<(), Errno> {
        Self::with(u, fd, |vf| {
            let mut req = V4l2RequestBuffers {
                count: r.count,
                type_: r.type_,
                memory: r.memory,
                ..Default::default()
            };
            vf.fh.reqbufs(&mut req).map_err(err)?;
            r.count = req.count;
            r.capabilities = req.capabilities;
            Ok(())
        })
    }

    fn querybuf(&mut self, u: &mut SimProcess, fd: Fd, b: &mut Buffer) -> Result<(), Errno> {
        Self::with(u, fd, |vf| {
            let mut v = to_vb2(b);
            vf.fh.querybuf(&mut v).map_err(err)?;
            from_vb2(&v, b);
            Ok(())
        })
    }

    fn create_bufs(
        &mut self,
        u: &mut SimProcess,
        fd: Fd,
        c: &mut CreateBuffers,
    ) -> Result<(), Errno> {
        Self::with(u, fd, |vf| {
            let mut cb = V4l2CreateBuffers {
                count: c.count,
                memory: c.memory,
                format: V4l2Format {
                    type_: c.type_,
                    num_planes: 1,
                    sizes: vec![c.sizeimage],
                },
                ..Default::default()
            };
            vf.fh.create_bufs(&mut cb).map_err(err)?;
            c.index = cb.index;
            c.capabilities = cb.capabilities;
            c.count = cb.count;
            Ok(())
        })
    }

    fn prepare_buf(&mut self, u: &mut SimProcess, fd: Fd, b: &mut Buffer) -> Result<(), Errno> {
        Self::with(u, fd, |vf| {
            let mut v = to_vb2(b);
            vf.fh.prepare_buf(&mut v).map_err(err)?;
            from_vb2(&v, b);
            Ok(())
        })
    }

    fn remove_bufs(
        &mut self,
        u: &mut SimProcess,
        fd: Fd,
        type_: u32,
        index: u32,
        count: u32,
    ) -> Result<(), Errno> {
        Self::with(u, fd, |vf| {
            let rb = V4l2RemoveBuffers {
                index,
                count,
                type_,
            };
            vf.fh.remove_bufs(&rb).map_err(err)
        })
    }

    fn qbuf(&mut self, u: &mut SimProcess, fd: Fd, b: &mut Buffer) -> Result<(), Errno> {
        Self::with(u, fd, |vf| {
            let mut v = to_vb2(b);
            vf.fh.qbuf(&mut v).map_err(err)?;
            from_vb2(&v, b);
            Ok(())
        })
    }

    fn set_nonblocking(&mut self, u: &mut SimProcess, fd: Fd, on: bool) -> Result<(), Errno> {
        // The file's own flags (F_GETFL) are not changed: only vb2's DQBUF mode is modelled.
        Self::with(u, fd, |vf| {
            vf.fh.set_nonblocking(on);
            Ok(())
        })
    }

    fn dqbuf(&mut self, u: &mut SimProcess, fd: Fd, b: &mut Buffer) -> Result<(), Errno> {
        Self::with(u, fd, |vf| {
            let mut v = to_vb2(b);
            vf.fh.dqbuf(&mut v).map_err(err)?;
            from_vb2(&v, b);
            Ok(())
        })
    }

    fn expbuf(
        &mut self,
        u: &mut SimProcess,
        fd: Fd,
        type_: u32,
        index: u32,
        flags: u32,
    ) -> Result<Fd, Errno> {
        Self::with(u, fd, |vf| {
            let mut eb = V4l2ExportBuffer {
                type_,
                index,
                plane: 0,
                flags,
                fd: -1,
            };
            vf.fh.expbuf(&mut eb).map_err(err)?;
            Ok(eb.fd)
        })
    }

    fn streamon(&mut self, u: &mut SimProcess, fd: Fd, type_: u32) -> Result<(), Errno> {
        Self::with(u, fd, |vf| vf.fh.streamon(type_).map_err(err))
    }

    fn streamoff(&mut self, u: &mut SimProcess, fd: Fd, type_: u32) -> Result<(), Errno> {
        Self::with(u, fd, |vf| vf.fh.streamoff(type_).map_err(err))
    }
}
