//! The V4L2 seam: a process's view of a video device's buffer queue — `QUERYCAP`, `G_FMT`,
//! `REQBUFS`, `CREATE_BUFS`, `QUERYBUF`, `PREPARE_BUF`, `QBUF`, `DQBUF`, `EXPBUF`, `STREAMON`/`STREAMOFF`, `REMOVE_BUFS` — answered by vivid
//! on Linux (`linux::Vivid`) and by the simulator's vivid-like device over vb2
//! (`drivers::vivid::VividDevice`).
//!
//! C header: `include/uapi/linux/videodev2.h` (single-planar structures only).
//!
//! # Rules of the seam
//!
//! As for [`crate::prime`]: [`V4l2`] is implemented beside a [`Uapi`] and every call takes the
//! process, so the video node's fd and the dma-bufs `EXPBUF` returns live in the process's fd
//! table. Structures keep the C fields as raw integers so a case can pass what the kernel must
//! refuse; the errnos are Linux 6.12's vb2 (found in qemu with vivid).

use crate::{Errno, Fd, Mapping, Uapi};

/// `V4L2_BUF_TYPE_VIDEO_CAPTURE`.
pub const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
/// `V4L2_BUF_TYPE_VIDEO_OUTPUT`.
pub const BUF_TYPE_VIDEO_OUTPUT: u32 = 2;
/// `V4L2_MEMORY_MMAP`.
pub const MEMORY_MMAP: u32 = 1;
/// `V4L2_MEMORY_USERPTR`.
pub const MEMORY_USERPTR: u32 = 2;
/// `V4L2_MEMORY_OVERLAY` (never supported by vb2).
pub const MEMORY_OVERLAY: u32 = 3;
/// `V4L2_MEMORY_DMABUF`.
pub const MEMORY_DMABUF: u32 = 4;
/// `V4L2_CAP_VIDEO_CAPTURE` (device_caps).
pub const CAP_VIDEO_CAPTURE: u32 = 0x1;
/// `V4L2_CAP_VIDEO_OUTPUT`.
pub const CAP_VIDEO_OUTPUT: u32 = 0x2;
/// `V4L2_CAP_STREAMING`.
pub const CAP_STREAMING: u32 = 0x0400_0000;
/// `V4L2_BUF_CAP_SUPPORTS_MMAP | USERPTR | DMABUF`.
pub const BUF_CAP_SUPPORTS_MEMORY: u32 = 0x7;
/// `V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS`.
pub const BUF_CAP_SUPPORTS_ORPHANED_BUFS: u32 = 0x10;
/// `V4L2_BUF_FLAG_MAPPED`.
pub const BUF_FLAG_MAPPED: u32 = 0x1;
/// `V4L2_BUF_FLAG_QUEUED`.
pub const BUF_FLAG_QUEUED: u32 = 0x2;
/// `V4L2_BUF_FLAG_DONE`.
pub const BUF_FLAG_DONE: u32 = 0x4;
/// `V4L2_BUF_FLAG_PREPARED`.
pub const BUF_FLAG_PREPARED: u32 = 0x400;
/// `V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS` (Linux 6.10 and later).
pub const BUF_CAP_SUPPORTS_REMOVE_BUFS: u32 = 0x100;

/// Which node of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoNode {
    /// The video capture node (vivid's `vid-cap`).
    Capture,
    /// The video output node (vivid's `vid-out`).
    Output,
}

/// What `VIDIOC_QUERYCAP` reports (the fields the suite compares).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capability {
    /// `driver`.
    pub driver: String,
    /// `device_caps`: what this node does.
    pub device_caps: u32,
}

/// `struct v4l2_pix_format` (single-planar), the fields the suite compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PixFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in lines.
    pub height: u32,
    /// The fourcc.
    pub pixelformat: u32,
    /// Bytes per line.
    pub bytesperline: u32,
    /// Bytes per frame: the minimum plane length.
    pub sizeimage: u32,
}

/// `struct v4l2_requestbuffers`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestBuffers {
    /// In: wanted; out: allocated.
    pub count: u32,
    /// `enum v4l2_buf_type`.
    pub type_: u32,
    /// `enum v4l2_memory`.
    pub memory: u32,
    /// Out: `V4L2_BUF_CAP_*`.
    pub capabilities: u32,
}

/// `struct v4l2_create_buffers` (single-planar), the fields the suite sets and reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreateBuffers {
    /// Out: the index of the first buffer created (the queue's count when `count` is 0).
    pub index: u32,
    /// In: wanted; out: created.
    pub count: u32,
    /// `enum v4l2_memory`.
    pub memory: u32,
    /// `format.type`.
    pub type_: u32,
    /// `format.fmt.pix.sizeimage`: the plane size the buffers must hold (the rest of the
    /// format is the node's current one).
    pub sizeimage: u32,
    /// Out: `V4L2_BUF_CAP_*`.
    pub capabilities: u32,
}

/// `struct v4l2_buffer` (single-planar), the fields the suite sets and reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Buffer {
    /// Index.
    pub index: u32,
    /// `enum v4l2_buf_type`.
    pub type_: u32,
    /// Bytes of data.
    pub bytesused: u32,
    /// `V4L2_BUF_FLAG_*`.
    pub flags: u32,
    /// `enum v4l2_memory`.
    pub memory: u32,
    /// `m.offset` (MMAP) or `m.fd` (DMABUF), as the C union's first 32 bits.
    pub m: u32,
    /// `m.userptr` (USERPTR): the whole 64 bits of the union, used instead of `m` when
    /// `memory` is USERPTR.
    pub userptr: u64,
    /// Plane length.
    pub length: u32,
}

/// V4L2 on one video device, for the process `U` (see the [module doc](self)).
pub trait V4l2<U: Uapi> {
    /// A CPU mapping of an MMAP plane (see [`mmap_plane`](V4l2::mmap_plane)).
    type Plane: Mapping;
    /// Memory of the process's own, for USERPTR (see [`user_memory`](V4l2::user_memory)).
    type UserMem: Mapping;

    /// `len` bytes of zeroed read-write memory in the process's address space, and its
    /// (page-aligned) address, to queue as a USERPTR plane; unmapped when dropped.
    ///
    /// Errors: `EINVAL` for length 0, `ENOMEM`.
    fn user_memory(&mut self, u: &mut U, len: u64) -> Result<(Self::UserMem, u64), Errno>;

    /// Opens the node (`O_RDWR | O_CLOEXEC`).
    ///
    /// Errors: `ENOENT` without the device.
    fn open_video(&mut self, u: &mut U, node: VideoNode) -> Result<Fd, Errno>;
    /// `VIDIOC_QUERYCAP`.
    fn querycap(&mut self, u: &mut U, fd: Fd) -> Result<Capability, Errno>;
    /// `VIDIOC_G_FMT` for `type_`.
    fn g_fmt(&mut self, u: &mut U, fd: Fd, type_: u32) -> Result<PixFormat, Errno>;
    /// `VIDIOC_REQBUFS`.
    fn reqbufs(&mut self, u: &mut U, fd: Fd, r: &mut RequestBuffers) -> Result<(), Errno>;
    /// `VIDIOC_QUERYBUF`.
    fn querybuf(&mut self, u: &mut U, fd: Fd, b: &mut Buffer) -> Result<(), Errno>;
    /// `VIDIOC_CREATE_BUFS`.
    fn create_bufs(&mut self, u: &mut U, fd: Fd, c: &mut CreateBuffers) -> Result<(), Errno>;
    /// `VIDIOC_PREPARE_BUF`.
    fn prepare_buf(&mut self, u: &mut U, fd: Fd, b: &mut Buffer) -> Result<(), Errno>;
    /// `VIDIOC_REMOVE_BUFS` of `count` buffers from `index` (Linux 6.10 and later).
    fn remove_bufs(
        &mut self,
        u: &mut U,
        fd: Fd,
        type_: u32,
        index: u32,
        count: u32,
    ) -> Result<(), Errno>;
    /// `VIDIOC_QBUF`.
    fn qbuf(&mut self, u: &mut U, fd: Fd, b: &mut Buffer) -> Result<(), Errno>;
    /// `fcntl(fd, F_SETFL, on ? O_NONBLOCK : 0)` on the video node: whether DQBUF waits.
    fn set_nonblocking(&mut self, u: &mut U, fd: Fd, on: bool) -> Result<(), Errno>;
    /// `VIDIOC_DQBUF` (blocking unless [`set_nonblocking`](V4l2::set_nonblocking)).
    fn dqbuf(&mut self, u: &mut U, fd: Fd, b: &mut Buffer) -> Result<(), Errno>;
    /// `VIDIOC_EXPBUF` of plane 0 of buffer `index`; the new dma-buf fd.
    fn expbuf(
        &mut self,
        u: &mut U,
        fd: Fd,
        type_: u32,
        index: u32,
        flags: u32,
    ) -> Result<Fd, Errno>;
    /// `mmap(NULL, len, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd, offset)` of the video node:
    /// the MMAP plane whose `m.offset` cookie (from `QUERYBUF`) is `offset`. The mapping keeps
    /// the plane's memory alive (the buffer is MAPPED) until it is dropped.
    ///
    /// Errors (vb2's): `EINVAL` for a private mapping, a capture mapping without `PROT_READ`, an
    /// output one without `PROT_WRITE`, a queue whose memory is not MMAP, an unknown cookie, or a
    /// length past the page-aligned plane.
    fn mmap_plane(
        &mut self,
        u: &mut U,
        fd: Fd,
        offset: u32,
        len: u64,
        prot: u32,
        shared: bool,
    ) -> Result<Self::Plane, Errno>;
    /// `poll(2)` of the video node for `events`, waiting at most `timeout_ms`: the `revents`.
    /// vb2 says `POLLERR` while the queue is not streaming, `POLLIN` (capture) once a buffer is
    /// done. (With no buffers at all, vivid's capture would start read() emulation: the suite
    /// does not poll then.)
    fn poll_video(&mut self, u: &mut U, fd: Fd, events: u16, timeout_ms: i32)
        -> Result<u16, Errno>;
    /// `VIDIOC_STREAMON`.
    fn streamon(&mut self, u: &mut U, fd: Fd, type_: u32) -> Result<(), Errno>;
    /// `VIDIOC_STREAMOFF`.
    fn streamoff(&mut self, u: &mut U, fd: Fd, type_: u32) -> Result<(), Errno>;
}
