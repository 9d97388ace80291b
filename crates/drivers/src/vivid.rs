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
//!    allocates with vmalloc: no contiguity asked), at most 32 buffers; the capture queue
//!    starts once 2 buffers are queued (`min_queued_buffers`), the output queue once 1 is.
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
use vb2::ioctl::{V4l2Buffer, V4l2ExportBuffer, V4l2RequestBuffers};
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

/// The simulated vivid instance of one machine (rules 1-3).
#[derive(Clone)]
pub struct VividDevice {
    capture: Arc<Vb2Queue>,
    output: Arc<Vb2Queue>,
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
            let (ty, format, min) = if capture {
                (BufType::VideoCapture, CAPTURE_FORMAT, 2)
            } else {
                (BufType::VideoOutput, OUTPUT_FORMAT, 1)
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
    v
}

fn from_vb2(v: &V4l2Buffer, b: &mut Buffer) {
    b.index = v.index;
    b.type_ = v.type_;
    b.bytesused = v.bytesused;
    b.flags = v.flags;
    b.memory = v.memory;
    b.length = v.length;
    b.m = if v.memory == MEMORY_DMABUF {
        v.m_fd as u32
    } else {
        v.m_offset
    };
}

impl V4l2<SimProcess> for VividDevice {
    fn open_video(&mut self, u: &mut SimProcess, node: VideoNode) -> Result<Fd, Errno> {
        use uapi::AsErrno;
        let (q, capture) = match node {
            VideoNode::Capture => (&self.capture, true),
            VideoNode::Output => (&self.output, false),
        };
        let vf = VividFile {
            fh: q.open(u.process()),
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

    fn qbuf(&mut self, u: &mut SimProcess, fd: Fd, b: &mut Buffer) -> Result<(), Errno> {
        Self::with(u, fd, |vf| {
            let mut v = to_vb2(b);
            vf.fh.qbuf(&mut v).map_err(err)?;
            from_vb2(&v, b);
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
