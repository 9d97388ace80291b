//! The dma-buf family of ioctls, one small function per call, over rustix's typed `ioctl`.
//!
//! C headers: `include/uapi/linux/dma-buf.h`, `include/uapi/linux/dma-heap.h`,
//! `include/uapi/linux/udmabuf.h`, `include/uapi/linux/sync_file.h`, and the driver-private
//! `drivers/dma-buf/sw_sync.c` (its ioctls are not in a UAPI header; their layout is copied from
//! the driver and from `tools/testing/selftests/sync/sw_sync.h`).
//!
//! # The concept
//!
//! An ioctl is a request number and a pointer. The request number packs a direction, the size
//! of the argument, a type byte and a command number (`_IOW('b', 0, struct dma_buf_sync)`);
//! here each number is computed by rustix's [`opcode`] helpers from the `#[repr(C)]` struct it
//! carries, so the size can never disagree with the struct, and the tests check every number
//! against the literal value the kernel headers produce and against [`uapi::ioctl`]. Each ioctl
//! is then issued through one of rustix's argument patterns — [`Setter`] (the kernel reads the
//! struct), [`Updater`] (reads and writes it back), [`IntegerSetter`] (the argument is the
//! pointer itself, as for `DMA_BUF_SET_NAME`) — or through `ReturnsFd`, for the udmabuf
//! ioctls whose new fd is the ioctl's return value.
//!
//! Every fd the kernel hands back is wrapped in an [`OwnedFd`] before anything else happens, so
//! no error path can leak it.
//!
//! # Why `unsafe` is allowed here
//!
//! `ioctl(2)` passes an untyped pointer: rustix makes every call `unsafe` and asks the caller to
//! vouch that the opcode matches the pointed-to type, and taking ownership of an fd number the
//! kernel returned is `unsafe` too (`OwnedFd::from_raw_fd`). Each block says why it holds.
#![allow(unsafe_code)]

use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::ioctl::{ioctl, opcode, IntegerSetter, Ioctl, IoctlOutput, Opcode, Setter, Updater};
use std::ffi::c_void;
use std::marker::PhantomData;
use uapi::Errno;

/// A rustix error as the shared [`Errno`].
pub(crate) fn errno(e: rustix::io::Errno) -> Errno {
    // rustix only reports failures, so the number is positive; EIO if it ever is not.
    Errno::from_raw(e.raw_os_error()).unwrap_or(Errno::EIO)
}

// --- argument structs, laid out as in the C headers ------------------------------------------

/// `struct dma_buf_sync { __u64 flags; }`.
#[repr(C)]
pub(crate) struct DmaBufSync {
    pub(crate) flags: u64,
}

/// `struct dma_buf_export_sync_file { __u32 flags; __s32 fd; }`.
#[repr(C)]
pub(crate) struct DmaBufExportSyncFile {
    pub(crate) flags: u32,
    pub(crate) fd: i32,
}

/// `struct dma_buf_import_sync_file { __u32 flags; __s32 fd; }`.
#[repr(C)]
pub(crate) struct DmaBufImportSyncFile {
    pub(crate) flags: u32,
    pub(crate) fd: i32,
}

/// `struct dma_heap_allocation_data { __u64 len; __u32 fd; __u32 fd_flags; __u64 heap_flags; }`.
#[repr(C)]
pub(crate) struct DmaHeapAllocationData {
    pub(crate) len: u64,
    pub(crate) fd: u32,
    pub(crate) fd_flags: u32,
    pub(crate) heap_flags: u64,
}

/// `struct udmabuf_create { __u32 memfd; __u32 flags; __u64 offset; __u64 size; }`.
#[repr(C)]
pub(crate) struct UdmabufCreate {
    pub(crate) memfd: u32,
    pub(crate) flags: u32,
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

/// The fixed part of `struct udmabuf_create_list { __u32 flags; __u32 count; items[]; }`.
#[repr(C)]
pub(crate) struct UdmabufCreateList {
    pub(crate) flags: u32,
    pub(crate) count: u32,
}

/// `struct udmabuf_create_item { __u32 memfd; __u32 __pad; __u64 offset; __u64 size; }`.
#[repr(C)]
pub(crate) struct UdmabufCreateItem {
    pub(crate) memfd: u32,
    pub(crate) pad: u32,
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

/// `struct sync_merge_data { char name[32]; __s32 fd2; __s32 fence; __u32 flags; __u32 pad; }`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct SyncMergeDataC {
    pub(crate) name: [u8; 32],
    pub(crate) fd2: i32,
    pub(crate) fence: i32,
    pub(crate) flags: u32,
    pub(crate) pad: u32,
}

/// `struct sync_fence_info { char obj_name[32]; char driver_name[32]; __s32 status;
/// __u32 flags; __u64 timestamp_ns; }`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct SyncFenceInfoC {
    pub(crate) obj_name: [u8; 32],
    pub(crate) driver_name: [u8; 32],
    pub(crate) status: i32,
    pub(crate) flags: u32,
    pub(crate) timestamp_ns: u64,
}

/// `struct sync_file_info { char name[32]; __s32 status; __u32 flags; __u32 num_fences;
/// __u32 pad; __u64 sync_fence_info; }` (the last field is a user pointer).
#[repr(C)]
pub(crate) struct SyncFileInfoC {
    pub(crate) name: [u8; 32],
    pub(crate) status: i32,
    pub(crate) flags: u32,
    pub(crate) num_fences: u32,
    pub(crate) pad: u32,
    pub(crate) sync_fence_info: u64,
}

/// `struct sw_sync_create_fence_data { __u32 value; char name[32]; __s32 fence; }`.
#[repr(C)]
pub(crate) struct SwSyncCreateFenceData {
    pub(crate) value: u32,
    pub(crate) name: [u8; 32],
    pub(crate) fence: i32,
}

// --- request numbers ----------------------------------------------------------------------

/// `DMA_BUF_IOCTL_SYNC`: `_IOW('b', 0, struct dma_buf_sync)`.
pub const DMA_BUF_IOCTL_SYNC: Opcode = opcode::write::<DmaBufSync>(b'b', 0);
/// `DMA_BUF_SET_NAME_B`: `_IOW('b', 1, __u64)`; the argument is the name's address.
pub const DMA_BUF_SET_NAME_B: Opcode = opcode::write::<u64>(b'b', 1);
/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`: `_IOWR('b', 2, struct dma_buf_export_sync_file)`.
pub const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: Opcode =
    opcode::read_write::<DmaBufExportSyncFile>(b'b', 2);
/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: `_IOW('b', 3, struct dma_buf_import_sync_file)`.
pub const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: Opcode = opcode::write::<DmaBufImportSyncFile>(b'b', 3);
/// `DMA_HEAP_IOCTL_ALLOC`: `_IOWR('H', 0, struct dma_heap_allocation_data)`.
pub const DMA_HEAP_IOCTL_ALLOC: Opcode = opcode::read_write::<DmaHeapAllocationData>(b'H', 0);
/// `UDMABUF_CREATE`: `_IOW('u', 0x42, struct udmabuf_create)`.
pub const UDMABUF_CREATE: Opcode = opcode::write::<UdmabufCreate>(b'u', 0x42);
/// `UDMABUF_CREATE_LIST`: `_IOW('u', 0x43, struct udmabuf_create_list)`.
pub const UDMABUF_CREATE_LIST: Opcode = opcode::write::<UdmabufCreateList>(b'u', 0x43);
/// `SYNC_IOC_MERGE`: `_IOWR('>', 3, struct sync_merge_data)`.
pub const SYNC_IOC_MERGE: Opcode = opcode::read_write::<SyncMergeDataC>(b'>', 3);
/// `SYNC_IOC_FILE_INFO`: `_IOWR('>', 4, struct sync_file_info)`.
pub const SYNC_IOC_FILE_INFO: Opcode = opcode::read_write::<SyncFileInfoC>(b'>', 4);
/// `SW_SYNC_IOC_CREATE_FENCE`: `_IOWR('W', 0, struct sw_sync_create_fence_data)`.
pub const SW_SYNC_IOC_CREATE_FENCE: Opcode = opcode::read_write::<SwSyncCreateFenceData>(b'W', 0);
/// `SW_SYNC_IOC_INC`: `_IOW('W', 1, __u32)`.
pub const SW_SYNC_IOC_INC: Opcode = opcode::write::<u32>(b'W', 1);

// --- an ioctl whose return value is a new fd ------------------------------------------------

/// The udmabuf pattern: the kernel reads the argument and returns the new fd as the ioctl's
/// value (there is no out field).
pub(crate) struct ReturnsFd<'a, const OPCODE: Opcode> {
    arg: *mut c_void,
    _arg: PhantomData<&'a mut ()>,
}

impl<'a, const OPCODE: Opcode> ReturnsFd<'a, OPCODE> {
    /// # Safety
    /// `OPCODE` must be an ioctl that reads `*arg` (as many bytes as the driver expects, which
    /// may be more than `size_of::<T>()` for a flexible array) and returns a new fd on success.
    unsafe fn new<T: ?Sized>(arg: &'a mut T) -> Self {
        ReturnsFd {
            arg: arg as *mut T as *mut c_void,
            _arg: PhantomData,
        }
    }
}

// SAFETY: `new`'s contract makes the opcode and the pointed-to argument agree; the argument is
// borrowed for `'a`, so it outlives the call; the output is taken from the return value only.
unsafe impl<const OPCODE: Opcode> Ioctl for ReturnsFd<'_, OPCODE> {
    type Output = OwnedFd;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        OPCODE
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<OwnedFd> {
        // SAFETY: on success these ioctls return a newly installed fd that nothing else owns
        // (`new`'s contract); rustix has already turned a negative return into an error.
        Ok(unsafe { OwnedFd::from_raw_fd(out) })
    }
}

/// Takes ownership of an fd number the kernel just wrote into an ioctl's out field.
///
/// # Safety
/// `raw` must be a newly installed fd that nothing else owns.
unsafe fn adopt(raw: i32) -> Result<OwnedFd, Errno> {
    if raw < 0 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

// --- the calls ------------------------------------------------------------------------------

/// `ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &{ len, fd: 0, fd_flags, heap_flags })`; the new dma-buf.
pub(crate) fn heap_alloc(
    heap: BorrowedFd<'_>,
    len: u64,
    fd_flags: u32,
    heap_flags: u64,
) -> Result<OwnedFd, Errno> {
    let mut data = DmaHeapAllocationData {
        len,
        fd: 0,
        fd_flags,
        heap_flags,
    };
    // SAFETY: DMA_HEAP_IOCTL_ALLOC reads and writes a `dma_heap_allocation_data`, which `data` is.
    unsafe { ioctl(heap, Updater::<DMA_HEAP_IOCTL_ALLOC, _>::new(&mut data)) }.map_err(errno)?;
    // SAFETY: on success the heap wrote the new dma-buf fd into `data.fd`, owned by nobody yet.
    unsafe { adopt(data.fd as i32) }
}

/// `ioctl(dev, UDMABUF_CREATE, &{ memfd, flags, offset, size })`; the new dma-buf.
pub(crate) fn udmabuf_create(
    dev: BorrowedFd<'_>,
    memfd: i32,
    offset: u64,
    size: u64,
    flags: u32,
) -> Result<OwnedFd, Errno> {
    let mut arg = UdmabufCreate {
        memfd: memfd as u32,
        flags,
        offset,
        size,
    };
    // SAFETY: UDMABUF_CREATE reads a `udmabuf_create` and returns the new fd.
    let call = unsafe { ReturnsFd::<UDMABUF_CREATE>::new(&mut arg) };
    // SAFETY: see above; `arg` lives across the call.
    unsafe { ioctl(dev, call) }.map_err(errno)
}

/// `ioctl(dev, UDMABUF_CREATE_LIST, &{ flags, count, list[] })`; the new dma-buf.
///
/// The argument is built in a `u64` buffer so that the items (which hold `__u64`s) are aligned:
/// 8 bytes of header, then 24 bytes per item, fields in native byte order.
pub(crate) fn udmabuf_create_list(
    dev: BorrowedFd<'_>,
    flags: u32,
    items: &[(i32, u64, u64)],
) -> Result<OwnedFd, Errno> {
    let pair = |lo: u32, hi: u32| {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&lo.to_ne_bytes());
        b[4..].copy_from_slice(&hi.to_ne_bytes());
        u64::from_ne_bytes(b)
    };
    let count = u32::try_from(items.len()).map_err(|_| Errno::EINVAL)?;
    let mut arg = Vec::with_capacity(1 + 3 * items.len());
    arg.push(pair(flags, count));
    for &(memfd, offset, size) in items {
        arg.extend([pair(memfd as u32, 0), offset, size]);
    }
    debug_assert_eq!(std::mem::size_of::<UdmabufCreateList>(), 8);
    debug_assert_eq!(std::mem::size_of::<UdmabufCreateItem>(), 24);
    // SAFETY: UDMABUF_CREATE_LIST reads the header and then `count` items, which is exactly the
    // layout of `arg` (module doc); it returns the new fd.
    let call = unsafe { ReturnsFd::<UDMABUF_CREATE_LIST>::new(arg.as_mut_slice()) };
    // SAFETY: see above; `arg` lives across the call.
    unsafe { ioctl(dev, call) }.map_err(errno)
}

/// `ioctl(buf, DMA_BUF_IOCTL_SYNC, &{ flags })`.
pub(crate) fn dma_buf_sync(buf: BorrowedFd<'_>, flags: u64) -> Result<(), Errno> {
    // SAFETY: DMA_BUF_IOCTL_SYNC reads a `dma_buf_sync`.
    unsafe {
        ioctl(
            buf,
            Setter::<DMA_BUF_IOCTL_SYNC, _>::new(DmaBufSync { flags }),
        )
    }
    .map_err(errno)
}

/// `ioctl(buf, DMA_BUF_SET_NAME_B, name)`: `name` must end with a NUL.
pub(crate) fn dma_buf_set_name(buf: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    assert_eq!(name.last(), Some(&0), "the name must be NUL-terminated");
    let ptr = name.as_ptr() as *mut c_void;
    // SAFETY: DMA_BUF_SET_NAME_B takes the address of a NUL-terminated string and only reads
    // it (`strndup_user`, at most 32 bytes, stopping at the NUL `name` ends with).
    unsafe { ioctl(buf, IntegerSetter::<DMA_BUF_SET_NAME_B>::new_pointer(ptr)) }.map_err(errno)
}

/// `ioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &{ flags, fd })`; the new sync file.
pub(crate) fn export_sync_file(buf: BorrowedFd<'_>, flags: u32) -> Result<OwnedFd, Errno> {
    let mut arg = DmaBufExportSyncFile { flags, fd: -1 };
    // SAFETY: the ioctl reads and writes a `dma_buf_export_sync_file`, which `arg` is.
    unsafe {
        ioctl(
            buf,
            Updater::<DMA_BUF_IOCTL_EXPORT_SYNC_FILE, _>::new(&mut arg),
        )
    }
    .map_err(errno)?;
    // SAFETY: on success the kernel wrote a new sync-file fd into `arg.fd`.
    unsafe { adopt(arg.fd) }
}

/// `ioctl(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &{ flags, fd: sync_fd })`.
pub(crate) fn import_sync_file(buf: BorrowedFd<'_>, flags: u32, sync_fd: i32) -> Result<(), Errno> {
    let arg = DmaBufImportSyncFile { flags, fd: sync_fd };
    // SAFETY: the ioctl reads a `dma_buf_import_sync_file`; `sync_fd` is only a number to it.
    unsafe { ioctl(buf, Setter::<DMA_BUF_IOCTL_IMPORT_SYNC_FILE, _>::new(arg)) }.map_err(errno)
}

/// `ioctl(fd, SYNC_IOC_MERGE, data)`; on success the merged sync file (also in `data.fence`).
pub(crate) fn sync_merge(fd: BorrowedFd<'_>, data: &mut SyncMergeDataC) -> Result<OwnedFd, Errno> {
    // SAFETY: SYNC_IOC_MERGE reads and writes a `sync_merge_data`, which `data` is.
    unsafe { ioctl(fd, Updater::<SYNC_IOC_MERGE, _>::new(data)) }.map_err(errno)?;
    // SAFETY: on success the kernel wrote the new sync-file fd into `data.fence`.
    unsafe { adopt(data.fence) }
}

/// `ioctl(fd, SYNC_IOC_FILE_INFO, info)` with `info.sync_fence_info` pointing at `slots`
/// (`info.num_fences` is set to `slots.len()`, or 0 for an empty slice).
pub(crate) fn sync_file_info(
    fd: BorrowedFd<'_>,
    info: &mut SyncFileInfoC,
    slots: &mut [SyncFenceInfoC],
) -> Result<(), Errno> {
    info.num_fences = u32::try_from(slots.len()).map_err(|_| Errno::EINVAL)?;
    info.sync_fence_info = if slots.is_empty() {
        0
    } else {
        slots.as_mut_ptr() as u64
    };
    // SAFETY: SYNC_IOC_FILE_INFO reads and writes a `sync_file_info`; when `num_fences` is not
    // 0 it writes at most `num_fences` `sync_fence_info` entries at the address in the struct,
    // which is `slots`, borrowed mutably across the call.
    unsafe { ioctl(fd, Updater::<SYNC_IOC_FILE_INFO, _>::new(info)) }.map_err(errno)
}

/// `ioctl(timeline, SW_SYNC_IOC_CREATE_FENCE, &{ value, name, fence })`; the new sync file.
pub(crate) fn sw_sync_create_fence(timeline: BorrowedFd<'_>, value: u32) -> Result<OwnedFd, Errno> {
    let mut name = [0u8; 32];
    name[..4].copy_from_slice(b"conf");
    let mut arg = SwSyncCreateFenceData {
        value,
        name,
        fence: -1,
    };
    // SAFETY: the ioctl reads and writes a `sw_sync_create_fence_data`, which `arg` is.
    unsafe {
        ioctl(
            timeline,
            Updater::<SW_SYNC_IOC_CREATE_FENCE, _>::new(&mut arg),
        )
    }
    .map_err(errno)?;
    // SAFETY: on success the driver wrote the new sync-file fd into `arg.fence`.
    unsafe { adopt(arg.fence) }
}

/// `ioctl(timeline, SW_SYNC_IOC_INC, &n)`.
pub(crate) fn sw_sync_inc(timeline: BorrowedFd<'_>, n: u32) -> Result<(), Errno> {
    // SAFETY: SW_SYNC_IOC_INC reads a `__u32`.
    unsafe { ioctl(timeline, Setter::<SW_SYNC_IOC_INC, u32>::new(n)) }.map_err(errno)
}

/// Borrows an fd the caller passed as a plain number, for the duration of one call.
///
/// This is the C view the seam exposes (its rule 1: fds are plain `int`s): the number may be
/// closed, or never opened, and then the kernel itself answers (`EBADF`, or `POLLNVAL`). Only
/// negative numbers are answered here (`EBADF`), because `BorrowedFd` cannot hold `-1`.
pub(crate) fn borrow_number<R>(
    raw: i32,
    f: impl FnOnce(BorrowedFd<'_>) -> Result<R, Errno>,
) -> Result<R, Errno> {
    if raw < 0 {
        return Err(Errno::EBADF);
    }
    // SAFETY: the borrow does not outlive `f`, which makes one system call with it and never
    // closes it. If the number is not open the kernel answers that call with EBADF; if it is
    // open, the call is what a C program passing that number would make (the seam's contract).
    let fd = unsafe { BorrowedFd::borrow_raw(raw) };
    f(fd.as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request number, computed by rustix from the struct it carries, against the literal
    /// value `_IOW`/`_IOWR` give in the kernel headers (x86_64, arm64: the generic layout).
    #[test]
    fn opcodes_match_the_kernel_headers() {
        assert_eq!(DMA_BUF_IOCTL_SYNC, 0x4008_6200);
        assert_eq!(DMA_BUF_SET_NAME_B, 0x4008_6201);
        assert_eq!(DMA_BUF_IOCTL_EXPORT_SYNC_FILE, 0xc008_6202);
        assert_eq!(DMA_BUF_IOCTL_IMPORT_SYNC_FILE, 0x4008_6203);
        assert_eq!(DMA_HEAP_IOCTL_ALLOC, 0xc018_4800);
        assert_eq!(UDMABUF_CREATE, 0x4018_7542);
        assert_eq!(UDMABUF_CREATE_LIST, 0x4008_7543);
        assert_eq!(SYNC_IOC_MERGE, 0xc030_3e03);
        assert_eq!(SYNC_IOC_FILE_INFO, 0xc038_3e04);
        assert_eq!(SW_SYNC_IOC_CREATE_FENCE, 0xc028_5700);
        assert_eq!(SW_SYNC_IOC_INC, 0x4004_5701);
    }

    /// The same numbers as the shared `uapi::ioctl` table, which the simulator decodes.
    #[test]
    fn opcodes_match_the_shared_uapi_table() {
        use uapi::ioctl as u;
        assert_eq!(DMA_BUF_IOCTL_SYNC, u::DMA_BUF_IOCTL_SYNC);
        assert_eq!(DMA_BUF_SET_NAME_B, u::DMA_BUF_SET_NAME_B);
        assert_eq!(
            DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
            u::DMA_BUF_IOCTL_EXPORT_SYNC_FILE
        );
        assert_eq!(
            DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
            u::DMA_BUF_IOCTL_IMPORT_SYNC_FILE
        );
        assert_eq!(DMA_HEAP_IOCTL_ALLOC, u::DMA_HEAP_IOCTL_ALLOC);
        assert_eq!(UDMABUF_CREATE, u::UDMABUF_CREATE);
        assert_eq!(UDMABUF_CREATE_LIST, u::UDMABUF_CREATE_LIST);
        assert_eq!(SYNC_IOC_MERGE, u::SYNC_IOC_MERGE);
        assert_eq!(SYNC_IOC_FILE_INFO, u::SYNC_IOC_FILE_INFO);
    }

    /// The encodings rebuilt field by field with rustix's `_IOC` (direction, type, number,
    /// size), and the struct sizes the header comments give.
    #[test]
    fn opcodes_decompose_into_their_fields() {
        use rustix::ioctl::{opcode::from_components, Direction};
        use std::mem::size_of;
        assert_eq!(size_of::<DmaHeapAllocationData>(), 24);
        assert_eq!(size_of::<UdmabufCreate>(), 24);
        assert_eq!(size_of::<UdmabufCreateItem>(), 24);
        assert_eq!(size_of::<SyncMergeDataC>(), 48);
        assert_eq!(size_of::<SyncFenceInfoC>(), 80);
        assert_eq!(size_of::<SyncFileInfoC>(), 56);
        assert_eq!(size_of::<SwSyncCreateFenceData>(), 40);
        let table = [
            (DMA_BUF_IOCTL_SYNC, Direction::Write, b'b', 0, 8),
            (DMA_BUF_SET_NAME_B, Direction::Write, b'b', 1, 8),
            (
                DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
                Direction::ReadWrite,
                b'b',
                2,
                8,
            ),
            (DMA_BUF_IOCTL_IMPORT_SYNC_FILE, Direction::Write, b'b', 3, 8),
            (DMA_HEAP_IOCTL_ALLOC, Direction::ReadWrite, b'H', 0, 24),
            (UDMABUF_CREATE, Direction::Write, b'u', 0x42, 24),
            (UDMABUF_CREATE_LIST, Direction::Write, b'u', 0x43, 8),
            (SYNC_IOC_MERGE, Direction::ReadWrite, b'>', 3, 48),
            (SYNC_IOC_FILE_INFO, Direction::ReadWrite, b'>', 4, 56),
            (SW_SYNC_IOC_CREATE_FENCE, Direction::ReadWrite, b'W', 0, 40),
            (SW_SYNC_IOC_INC, Direction::Write, b'W', 1, 4),
        ];
        for (op, dir, ty, nr, size) in table {
            assert_eq!(op, from_components(dir, ty, nr, size), "{op:#x}");
            assert_eq!(uapi::ioctl::ioc_type(op), ty);
            assert_eq!(uapi::ioctl::ioc_nr(op), nr);
            assert_eq!(uapi::ioctl::ioc_size(op), size);
        }
    }

    #[test]
    fn negative_numbers_are_ebadf_without_a_call() {
        assert_eq!(borrow_number(-1, |_| Ok(())), Err(Errno::EBADF));
    }
}
