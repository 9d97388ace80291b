//! The V4L2 seam ([`seam::v4l2::V4l2`]) answered by vivid, the virtual video test driver:
//! [`Vivid`]. The structures are encoded by hand in the 64-bit layout of
//! `include/uapi/linux/videodev2.h` and passed through [`crate::raw::ioctl_bytes`]:
//! `v4l2_capability` (104 bytes), `v4l2_format` (208; the union at offset 8),
//! `v4l2_requestbuffers` (20), `v4l2_buffer` (88: `timestamp` at 24, `memory` at 60, `m` at 64,
//! `length` at 72), `v4l2_exportbuffer` (64), `v4l2_create_buffers` (256: the format at 16, `capabilities`
//! at 224), `v4l2_remove_buffers` (64).
//!
//! The nodes are found by name (`/sys/class/video4linux/videoN/name`: `vivid-000-vid-cap`,
//! `vivid-000-vid-out`), so the module's other nodes, if any, do not matter.

use crate::RealLinux;
use seam::v4l2::*;
use seam::{Errno, Fd};
use uapi::ioctl::{ioc, iow, iowr, IOC_READ};

/// V4L2 on vivid.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vivid;

const QUERYCAP: u32 = ioc(IOC_READ, b'V', 0, 104);
const G_FMT: u32 = iowr(b'V', 4, 208);
const REQBUFS: u32 = iowr(b'V', 8, 20);
const QUERYBUF: u32 = iowr(b'V', 9, 88);
const QBUF: u32 = iowr(b'V', 15, 88);
const EXPBUF: u32 = iowr(b'V', 16, 64);
const DQBUF: u32 = iowr(b'V', 17, 88);
const STREAMON: u32 = iow(b'V', 18, 4);
const STREAMOFF: u32 = iow(b'V', 19, 4);
const CREATE_BUFS: u32 = iowr(b'V', 92, 256);
const PREPARE_BUF: u32 = iowr(b'V', 93, 88);
const REMOVE_BUFS: u32 = iowr(b'V', 104, 64);

fn put(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn get(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn encode(b: &Buffer) -> [u8; 88] {
    let mut a = [0u8; 88];
    put(&mut a, 0, b.index);
    put(&mut a, 4, b.type_);
    put(&mut a, 8, b.bytesused);
    put(&mut a, 12, b.flags);
    put(&mut a, 60, b.memory);
    if b.memory == MEMORY_USERPTR {
        a[64..72].copy_from_slice(&b.userptr.to_ne_bytes());
    } else {
        put(&mut a, 64, b.m);
    }
    put(&mut a, 72, b.length);
    a
}

fn decode(a: &[u8], b: &mut Buffer) {
    b.index = get(a, 0);
    b.type_ = get(a, 4);
    b.bytesused = get(a, 8);
    b.flags = get(a, 12);
    b.memory = get(a, 60);
    b.m = get(a, 64);
    b.userptr = u64::from_ne_bytes(a[64..72].try_into().expect("8 bytes"));
    b.length = get(a, 72);
}

impl Vivid {
    fn call(u: &mut RealLinux, fd: Fd, request: u32, mut arg: Vec<u8>) -> Result<Vec<u8>, Errno> {
        u.exec().run(move |files| {
            files.with(fd, |fd| {
                crate::raw::ioctl_bytes(fd, request, Some(&mut arg))
            })?;
            Ok(arg)
        })
    }

    fn buffer_call(u: &mut RealLinux, fd: Fd, request: u32, b: &mut Buffer) -> Result<(), Errno> {
        let out = Self::call(u, fd, request, encode(b).to_vec())?;
        decode(&out, b);
        Ok(())
    }
}

impl seam::v4l2::V4l2<RealLinux> for Vivid {
    type Plane = crate::RealMapping;
    type UserMem = crate::RealMapping;

    fn user_memory(
        &mut self,
        u: &mut RealLinux,
        len: u64,
    ) -> Result<(crate::RealMapping, u64), Errno> {
        // A shared mapping of a memfd (shmem pages vb2 may pin for long); the mapping holds
        // the file, so the fd is closed at once.
        use seam::Uapi;
        let m = u.memfd_create("userptr", 0)?;
        let r = u
            .ftruncate(m, len)
            .and_then(|()| u.mmap(m, 0, len, seam::PROT_READ | seam::PROT_WRITE, true));
        u.close(m)?;
        let map = r?;
        let addr = map.addr();
        Ok((map, addr))
    }

    fn mmap_plane(
        &mut self,
        u: &mut RealLinux,
        fd: Fd,
        offset: u32,
        len: u64,
        prot: u32,
        shared: bool,
    ) -> Result<crate::RealMapping, Errno> {
        seam::Uapi::mmap(u, fd, u64::from(offset), len, prot, shared)
    }

    fn poll_video(
        &mut self,
        u: &mut RealLinux,
        fd: Fd,
        events: u16,
        timeout_ms: i32,
    ) -> Result<u16, Errno> {
        seam::Uapi::poll(u, fd, events, timeout_ms)
    }

    fn open_video(&mut self, u: &mut RealLinux, node: VideoNode) -> Result<Fd, Errno> {
        let want = match node {
            VideoNode::Capture => "vid-cap",
            VideoNode::Output => "vid-out",
        };
        let n = (0..64)
            .find(|n| {
                std::fs::read_to_string(format!("/sys/class/video4linux/video{n}/name"))
                    .map(|s| s.trim().starts_with("vivid-") && s.trim().ends_with(want))
                    .unwrap_or(false)
            })
            .ok_or(Errno::ENOENT)?;
        u.exec().run(move |files| {
            use rustix::fs::{Mode, OFlags};
            let path = format!("/dev/video{n}");
            let fd = rustix::fs::open(path.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
                .map_err(crate::sys::errno)?;
            Ok(files.insert(fd))
        })
    }

    fn querycap(&mut self, u: &mut RealLinux, fd: Fd) -> Result<Capability, Errno> {
        let c = Self::call(u, fd, QUERYCAP, vec![0; 104])?;
        Ok(Capability {
            driver: text(&c[..16]),
            device_caps: get(&c, 88),
        })
    }

    fn g_fmt(&mut self, u: &mut RealLinux, fd: Fd, type_: u32) -> Result<PixFormat, Errno> {
        let mut f = vec![0u8; 208];
        put(&mut f, 0, type_);
        let f = Self::call(u, fd, G_FMT, f)?;
        Ok(PixFormat {
            width: get(&f, 8),
            height: get(&f, 12),
            pixelformat: get(&f, 16),
            bytesperline: get(&f, 24),
            sizeimage: get(&f, 28),
        })
    }

    fn reqbufs(&mut self, u: &mut RealLinux, fd: Fd, r: &mut RequestBuffers) -> Result<(), Errno> {
        let mut a = vec![0u8; 20];
        put(&mut a, 0, r.count);
        put(&mut a, 4, r.type_);
        put(&mut a, 8, r.memory);
        let a = Self::call(u, fd, REQBUFS, a)?;
        r.count = get(&a, 0);
        r.capabilities = get(&a, 12);
        Ok(())
    }

    fn querybuf(&mut self, u: &mut RealLinux, fd: Fd, b: &mut Buffer) -> Result<(), Errno> {
        Self::buffer_call(u, fd, QUERYBUF, b)
    }

    fn create_bufs(
        &mut self,
        u: &mut RealLinux,
        fd: Fd,
        c: &mut CreateBuffers,
    ) -> Result<(), Errno> {
        // The node's current format (a zeroed one of the type if G_FMT refuses), with the
        // asked-for sizeimage.
        let mut f = vec![0u8; 208];
        put(&mut f, 0, c.type_);
        let f = Self::call(u, fd, G_FMT, f.clone()).unwrap_or(f);
        let mut a = vec![0u8; 256];
        put(&mut a, 4, c.count);
        put(&mut a, 8, c.memory);
        a[16..224].copy_from_slice(&f);
        put(&mut a, 16 + 28, c.sizeimage);
        let a = Self::call(u, fd, CREATE_BUFS, a)?;
        c.index = get(&a, 0);
        c.count = get(&a, 4);
        c.capabilities = get(&a, 224);
        Ok(())
    }

    fn prepare_buf(&mut self, u: &mut RealLinux, fd: Fd, b: &mut Buffer) -> Result<(), Errno> {
        Self::buffer_call(u, fd, PREPARE_BUF, b)
    }

    fn remove_bufs(
        &mut self,
        u: &mut RealLinux,
        fd: Fd,
        type_: u32,
        index: u32,
        count: u32,
    ) -> Result<(), Errno> {
        let mut a = vec![0u8; 64];
        put(&mut a, 0, index);
        put(&mut a, 4, count);
        put(&mut a, 8, type_);
        Self::call(u, fd, REMOVE_BUFS, a).map(drop)
    }

    fn qbuf(&mut self, u: &mut RealLinux, fd: Fd, b: &mut Buffer) -> Result<(), Errno> {
        Self::buffer_call(u, fd, QBUF, b)
    }

    fn set_nonblocking(&mut self, u: &mut RealLinux, fd: Fd, on: bool) -> Result<(), Errno> {
        use rustix::fs::OFlags;
        let flags = if on {
            OFlags::NONBLOCK
        } else {
            OFlags::empty()
        };
        u.exec().run(move |files| {
            files.with(fd, |fd| {
                rustix::fs::fcntl_setfl(fd, flags).map_err(crate::sys::errno)
            })
        })
    }

    fn dqbuf(&mut self, u: &mut RealLinux, fd: Fd, b: &mut Buffer) -> Result<(), Errno> {
        Self::buffer_call(u, fd, DQBUF, b)
    }

    fn expbuf(
        &mut self,
        u: &mut RealLinux,
        fd: Fd,
        type_: u32,
        index: u32,
        flags: u32,
    ) -> Result<Fd, Errno> {
        let mut a = vec![0u8; 64];
        put(&mut a, 0, type_);
        put(&mut a, 4, index);
        put(&mut a, 12, flags);
        // The raw call adopts the fd the kernel installs (rule of `Uapi::ioctl`), so the
        // exported buffer is the process's like any other.
        use seam::Uapi;
        u.ioctl(fd, EXPBUF, Some(&mut a))?;
        Ok(get(&a, 16) as i32)
    }

    fn streamon(&mut self, u: &mut RealLinux, fd: Fd, type_: u32) -> Result<(), Errno> {
        Self::call(u, fd, STREAMON, type_.to_ne_bytes().to_vec()).map(drop)
    }

    fn streamoff(&mut self, u: &mut RealLinux, fd: Fd, type_: u32) -> Result<(), Errno> {
        Self::call(u, fd, STREAMOFF, type_.to_ne_bytes().to_vec()).map(drop)
    }
}
