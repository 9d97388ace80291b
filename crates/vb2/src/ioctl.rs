//! The V4L2 buffer UAPI in Rust form: `struct v4l2_buffer`, `v4l2_plane`, `v4l2_requestbuffers`,
//! `v4l2_create_buffers`, `v4l2_exportbuffer`, `v4l2_remove_buffers`, and their constants.
//!
//! C header: `include/uapi/linux/videodev2.h`.
//!
//! The structures keep the C fields as raw integers (`type_`, `memory`, `flags`), so a test can
//! pass the values a buggy or hostile application would pass and check the errno that comes back.
//! The `union m` of the C structures is three plain fields here (`m_offset`, `m_userptr`,
//! `m_fd`); vb2 reads and writes only the one that belongs to the queue's memory type.

use uapi::Errno;

/// `VIDEO_MAX_PLANES`: planes of a multi-planar buffer.
pub const VIDEO_MAX_PLANES: u32 = 8;

/// `V4L2_BUF_TYPE_VIDEO_CAPTURE`.
pub const V4L2_BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
/// `V4L2_BUF_TYPE_VIDEO_OUTPUT`.
pub const V4L2_BUF_TYPE_VIDEO_OUTPUT: u32 = 2;
/// `V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE`.
pub const V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 = 9;
/// `V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE`.
pub const V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE: u32 = 10;

/// `V4L2_MEMORY_MMAP`.
pub const V4L2_MEMORY_MMAP: u32 = 1;
/// `V4L2_MEMORY_USERPTR`.
pub const V4L2_MEMORY_USERPTR: u32 = 2;
/// `V4L2_MEMORY_OVERLAY` (never supported by vb2).
pub const V4L2_MEMORY_OVERLAY: u32 = 3;
/// `V4L2_MEMORY_DMABUF`.
pub const V4L2_MEMORY_DMABUF: u32 = 4;

/// `V4L2_MEMORY_FLAG_NON_COHERENT`: MMAP buffers with cacheable CPU mappings (REQBUFS and
/// CREATE_BUFS `flags`).
pub const V4L2_MEMORY_FLAG_NON_COHERENT: u32 = 1 << 0;

/// `V4L2_BUF_FLAG_MAPPED`: the plane memory has another user (an mmap or an exported fd).
pub const V4L2_BUF_FLAG_MAPPED: u32 = 0x0000_0001;
/// `V4L2_BUF_FLAG_QUEUED`.
pub const V4L2_BUF_FLAG_QUEUED: u32 = 0x0000_0002;
/// `V4L2_BUF_FLAG_DONE`.
pub const V4L2_BUF_FLAG_DONE: u32 = 0x0000_0004;
/// `V4L2_BUF_FLAG_KEYFRAME`.
pub const V4L2_BUF_FLAG_KEYFRAME: u32 = 0x0000_0008;
/// `V4L2_BUF_FLAG_ERROR`.
pub const V4L2_BUF_FLAG_ERROR: u32 = 0x0000_0040;
/// `V4L2_BUF_FLAG_IN_REQUEST`.
pub const V4L2_BUF_FLAG_IN_REQUEST: u32 = 0x0000_0080;
/// `V4L2_BUF_FLAG_PREPARED`.
pub const V4L2_BUF_FLAG_PREPARED: u32 = 0x0000_0400;
/// `V4L2_BUF_FLAG_NO_CACHE_INVALIDATE`: skip the cache "finish" (MMAP with cache hints only).
pub const V4L2_BUF_FLAG_NO_CACHE_INVALIDATE: u32 = 0x0000_0800;
/// `V4L2_BUF_FLAG_NO_CACHE_CLEAN`: skip the cache "prepare" (MMAP with cache hints only).
pub const V4L2_BUF_FLAG_NO_CACHE_CLEAN: u32 = 0x0000_1000;
/// `V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC`.
pub const V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC: u32 = 0x0000_2000;
/// `V4L2_BUF_FLAG_LAST`: the last buffer of a capture stream.
pub const V4L2_BUF_FLAG_LAST: u32 = 0x0010_0000;
/// `V4L2_BUF_FLAG_REQUEST_FD`: `request_fd` is valid.
pub const V4L2_BUF_FLAG_REQUEST_FD: u32 = 0x0080_0000;

/// `V4L2_BUF_CAP_SUPPORTS_MMAP`.
pub const V4L2_BUF_CAP_SUPPORTS_MMAP: u32 = 1 << 0;
/// `V4L2_BUF_CAP_SUPPORTS_USERPTR`.
pub const V4L2_BUF_CAP_SUPPORTS_USERPTR: u32 = 1 << 1;
/// `V4L2_BUF_CAP_SUPPORTS_DMABUF`.
pub const V4L2_BUF_CAP_SUPPORTS_DMABUF: u32 = 1 << 2;
/// `V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS`: REQBUFS(0) succeeds while buffers are mapped.
pub const V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS: u32 = 1 << 4;
/// `V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS`.
pub const V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS: u32 = 1 << 6;
/// `V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS`.
pub const V4L2_BUF_CAP_SUPPORTS_MAX_NUM_BUFFERS: u32 = 1 << 7;
/// `V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS`.
pub const V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS: u32 = 1 << 8;

/// `V4L2_FIELD_ANY`.
pub const V4L2_FIELD_ANY: u32 = 0;
/// `V4L2_FIELD_NONE`.
pub const V4L2_FIELD_NONE: u32 = 1;
/// `V4L2_FIELD_ALTERNATE`: refused on output queues.
pub const V4L2_FIELD_ALTERNATE: u32 = 7;

/// `EPOLLIN`.
pub const EPOLLIN: u16 = 0x0001;
/// `EPOLLOUT`.
pub const EPOLLOUT: u16 = 0x0004;
/// `EPOLLERR`.
pub const EPOLLERR: u16 = 0x0008;
/// `EPOLLRDNORM`.
pub const EPOLLRDNORM: u16 = 0x0040;
/// `EPOLLWRNORM`.
pub const EPOLLWRNORM: u16 = 0x0100;

/// `EPIPE` (32): DQBUF after the LAST buffer.
pub const EPIPE: i32 = 32;
/// `EBADR` (53): a request where none is supported, or none where one is required.
pub const EBADR: i32 = 53;
/// `ENOBUFS` (105): CREATE_BUFS on a full queue.
pub const ENOBUFS: i32 = 105;

/// [`EPIPE`] as an [`Errno`].
pub fn epipe() -> Errno {
    Errno::EPIPE
}

/// [`EBADR`] as an [`Errno`].
pub fn ebadr() -> Errno {
    Errno::EBADR
}

/// [`ENOBUFS`] as an [`Errno`].
pub fn enobufs() -> Errno {
    Errno::ENOBUFS
}

/// The mmap offset cookie of `plane` of buffer `index` (v6.8+):
/// `(index << (PAGE_SHIFT + 3)) | (plane << PAGE_SHIFT)`.
///
/// ```
/// assert_eq!(vb2::ioctl::mmap_cookie(1, 2), (1 << 15) | (2 << 12));
/// ```
pub fn mmap_cookie(index: u32, plane: u32) -> u32 {
    (index << (soc::PAGE_SHIFT + 3)) | (plane << soc::PAGE_SHIFT)
}

/// `struct v4l2_plane`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V4l2Plane {
    /// Bytes of data (output: set by the application; capture: by the driver).
    pub bytesused: u32,
    /// Size of the plane memory (DMABUF: 0 means "the dma-buf's size").
    pub length: u32,
    /// `m.mem_offset`: the mmap cookie (MMAP).
    pub m_offset: u32,
    /// `m.userptr` (USERPTR).
    pub m_userptr: u64,
    /// `m.fd` (DMABUF).
    pub m_fd: i32,
    /// Offset of the data in the plane (output mplane).
    pub data_offset: u32,
}

/// `struct v4l2_buffer`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V4l2Buffer {
    /// Buffer index.
    pub index: u32,
    /// `enum v4l2_buf_type`, raw.
    pub type_: u32,
    /// Single-planar: bytes of data.
    pub bytesused: u32,
    /// `V4L2_BUF_FLAG_*`, raw.
    pub flags: u32,
    /// `enum v4l2_field`, raw.
    pub field: u32,
    /// Timestamp in nanoseconds.
    pub timestamp_ns: u64,
    /// Frame sequence number (set at buffer_done).
    pub sequence: u32,
    /// `enum v4l2_memory`, raw.
    pub memory: u32,
    /// Single-planar `m.offset` (MMAP cookie).
    pub m_offset: u32,
    /// Single-planar `m.userptr`.
    pub m_userptr: u64,
    /// Single-planar `m.fd`.
    pub m_fd: i32,
    /// Single-planar: plane size; multi-planar: number of entries in `planes`.
    pub length: u32,
    /// Multi-planar: the planes array (`None` is the NULL pointer). Its `len()` is the array
    /// the application passed; `length` is what it claims.
    pub planes: Option<Vec<V4l2Plane>>,
    /// `request_fd`, used only with `V4L2_BUF_FLAG_REQUEST_FD`.
    pub request_fd: i32,
}

impl V4l2Buffer {
    /// A buffer argument for `index` of a queue of `type_` with `memory`; multi-planar types
    /// get a zeroed planes array of `VIDEO_MAX_PLANES` entries.
    pub fn new(type_: u32, memory: u32, index: u32) -> V4l2Buffer {
        let mplane = matches!(
            type_,
            V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE | V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE
        );
        V4l2Buffer {
            index,
            type_,
            memory,
            length: if mplane { VIDEO_MAX_PLANES } else { 0 },
            planes: mplane.then(|| vec![V4l2Plane::default(); VIDEO_MAX_PLANES as usize]),
            ..V4l2Buffer::default()
        }
    }
}

/// `struct v4l2_requestbuffers` (VIDIOC_REQBUFS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V4l2RequestBuffers {
    /// Buffers wanted; on return, allocated.
    pub count: u32,
    /// Buffer type, raw.
    pub type_: u32,
    /// Memory type, raw.
    pub memory: u32,
    /// Returned: `V4L2_BUF_CAP_*`.
    pub capabilities: u32,
    /// `V4L2_MEMORY_FLAG_*`; on return, the flags honoured.
    pub flags: u32,
}

/// The format part of `struct v4l2_create_buffers` that vb2 reads: the type and per-plane
/// `sizeimage`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V4l2Format {
    /// Buffer type, raw.
    pub type_: u32,
    /// Multi-planar: `pix_mp.num_planes` (single-planar: ignored, one plane).
    pub num_planes: u32,
    /// `sizeimage` of each plane (single-planar: `sizes[0]` is `pix.sizeimage`).
    pub sizes: Vec<u32>,
}

/// `struct v4l2_create_buffers` (VIDIOC_CREATE_BUFS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V4l2CreateBuffers {
    /// Returned: index of the first created buffer.
    pub index: u32,
    /// Buffers wanted; on return, created.
    pub count: u32,
    /// Memory type, raw.
    pub memory: u32,
    /// The format the buffers must fit.
    pub format: V4l2Format,
    /// Returned: `V4L2_BUF_CAP_*`.
    pub capabilities: u32,
    /// `V4L2_MEMORY_FLAG_*`; on return, the flags honoured.
    pub flags: u32,
    /// Returned: the queue's `max_num_buffers`.
    pub max_num_buffers: u32,
}

/// `struct v4l2_exportbuffer` (VIDIOC_EXPBUF).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V4l2ExportBuffer {
    /// Buffer type, raw.
    pub type_: u32,
    /// Buffer index.
    pub index: u32,
    /// Plane.
    pub plane: u32,
    /// `O_CLOEXEC` and `O_ACCMODE` bits for the new fd.
    pub flags: u32,
    /// Returned: the dma-buf fd.
    pub fd: i32,
}

/// `struct v4l2_remove_buffers` (VIDIOC_REMOVE_BUFS, v6.10+).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V4l2RemoveBuffers {
    /// First buffer.
    pub index: u32,
    /// Number of buffers.
    pub count: u32,
    /// Buffer type, raw.
    pub type_: u32,
}
