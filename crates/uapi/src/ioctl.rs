//! ioctl request numbers and the flag values of the dma-buf family of UAPIs.
//!
//! C headers: `include/uapi/asm-generic/ioctl.h`, `include/uapi/linux/dma-buf.h`,
//! `include/uapi/linux/dma-heap.h`, `include/uapi/linux/udmabuf.h`,
//! `include/uapi/linux/sync_file.h`, `include/uapi/asm-generic/fcntl.h`,
//! `include/uapi/linux/memfd.h`, `include/uapi/asm-generic/poll.h`.
//!
//! An ioctl request number packs four fields: direction (2 bits: write = user to kernel,
//! read = kernel to user), argument size (14 bits), a type byte, and a command number. The
//! simulator and the real-kernel `linux` crate both take their numbers from here, and the tests
//! below check the packed values against the numbers the kernel headers produce.
//!
//! ```
//! use uapi::ioctl::*;
//! assert_eq!(DMA_BUF_IOCTL_SYNC, 0x4008_6200);
//! assert_eq!(ioc_nr(DMA_HEAP_IOCTL_ALLOC), 0);
//! assert_eq!(ioc_size(SYNC_IOC_MERGE), 48);
//! ```

/// No data transfer (`_IOC_NONE`).
pub const IOC_NONE: u32 = 0;
/// User space writes the argument (`_IOC_WRITE`).
pub const IOC_WRITE: u32 = 1;
/// User space reads the argument (`_IOC_READ`).
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    (dir << 30) | ((size as u32 & 0x3fff) << 16) | ((ty as u32) << 8) | nr as u32
}

/// `_IOW(type, nr, T)` for an argument of `size` bytes.
pub const fn iow(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}

/// `_IOWR(type, nr, T)` for an argument of `size` bytes.
pub const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}

/// `_IOC_NR(request)`: the command number.
pub const fn ioc_nr(request: u32) -> u8 {
    (request & 0xff) as u8
}

/// `_IOC_TYPE(request)`: the type byte.
pub const fn ioc_type(request: u32) -> u8 {
    ((request >> 8) & 0xff) as u8
}

/// `_IOC_SIZE(request)`: the argument size in bytes.
pub const fn ioc_size(request: u32) -> usize {
    ((request >> 16) & 0x3fff) as usize
}

/// `_IOC_DIR(request)`: the direction bits.
pub const fn ioc_dir(request: u32) -> u32 {
    request >> 30
}

// --- include/uapi/linux/dma-buf.h -------------------------------------------------------------

/// `DMA_BUF_BASE`: the dma-buf ioctl type byte.
pub const DMA_BUF_BASE: u8 = b'b';
/// The CPU is about to read the buffer (or has finished reading, with END).
pub const DMA_BUF_SYNC_READ: u64 = 1; // 1 << 0
/// The CPU is about to write the buffer (or has finished writing, with END).
pub const DMA_BUF_SYNC_WRITE: u64 = 2; // 2 << 0
/// Read and write.
pub const DMA_BUF_SYNC_RW: u64 = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE;
/// Start of a CPU access (the value 0).
pub const DMA_BUF_SYNC_START: u64 = 0; // 0 << 2
/// End of a CPU access.
pub const DMA_BUF_SYNC_END: u64 = 1 << 2;
/// Every valid bit of `struct dma_buf_sync.flags`.
pub const DMA_BUF_SYNC_VALID_FLAGS_MASK: u64 = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END;
/// Longest dma-buf name, including the terminating NUL.
pub const DMA_BUF_NAME_LEN: usize = 32;
/// `DMA_BUF_IOCTL_SYNC`: `_IOW('b', 0, struct dma_buf_sync { __u64 flags; })`.
pub const DMA_BUF_IOCTL_SYNC: u32 = iow(DMA_BUF_BASE, 0, 8);
/// `DMA_BUF_SET_NAME_A`: `_IOW('b', 1, __u32)` (32-bit user pointer).
pub const DMA_BUF_SET_NAME_A: u32 = iow(DMA_BUF_BASE, 1, 4);
/// `DMA_BUF_SET_NAME_B`: `_IOW('b', 1, __u64)` (64-bit user pointer).
pub const DMA_BUF_SET_NAME_B: u32 = iow(DMA_BUF_BASE, 1, 8);
/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`: `_IOWR('b', 2, struct dma_buf_export_sync_file { __u32 flags; __s32 fd; })`.
pub const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: u32 = iowr(DMA_BUF_BASE, 2, 8);
/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: `_IOW('b', 3, struct dma_buf_import_sync_file { __u32 flags; __s32 fd; })`.
pub const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: u32 = iow(DMA_BUF_BASE, 3, 8);

// --- include/uapi/linux/dma-heap.h ------------------------------------------------------------

/// The dma-heap ioctl type byte.
pub const DMA_HEAP_IOC_MAGIC: u8 = b'H';
/// Size of `struct dma_heap_allocation_data { __u64 len; __u32 fd; __u32 fd_flags; __u64 heap_flags; }`.
pub const DMA_HEAP_ALLOCATION_DATA_SIZE: usize = 24;
/// `DMA_HEAP_IOCTL_ALLOC`: `_IOWR('H', 0, struct dma_heap_allocation_data)`.
pub const DMA_HEAP_IOCTL_ALLOC: u32 = iowr(DMA_HEAP_IOC_MAGIC, 0, DMA_HEAP_ALLOCATION_DATA_SIZE);
/// The fd flags an allocation may ask for (`O_CLOEXEC | O_ACCMODE`).
pub const DMA_HEAP_VALID_FD_FLAGS: u32 = O_CLOEXEC | O_ACCMODE;
/// The heap flags an allocation may ask for: none are defined.
pub const DMA_HEAP_VALID_HEAP_FLAGS: u64 = 0;

// --- include/uapi/linux/udmabuf.h -------------------------------------------------------------

/// The udmabuf fd is created close-on-exec.
pub const UDMABUF_FLAGS_CLOEXEC: u32 = 0x01;
/// Size of `struct udmabuf_create { __u32 memfd; __u32 flags; __u64 offset; __u64 size; }`.
pub const UDMABUF_CREATE_SIZE: usize = 24;
/// Size of the fixed part of `struct udmabuf_create_list { __u32 flags; __u32 count; items[] }`.
pub const UDMABUF_CREATE_LIST_SIZE: usize = 8;
/// `UDMABUF_CREATE`: `_IOW('u', 0x42, struct udmabuf_create)`.
pub const UDMABUF_CREATE: u32 = iow(b'u', 0x42, UDMABUF_CREATE_SIZE);
/// `UDMABUF_CREATE_LIST`: `_IOW('u', 0x43, struct udmabuf_create_list)`.
pub const UDMABUF_CREATE_LIST: u32 = iow(b'u', 0x43, UDMABUF_CREATE_LIST_SIZE);
/// The kernel's default `size_limit_mb` module parameter: 64 MiB per udmabuf.
pub const UDMABUF_SIZE_LIMIT_DEFAULT: u64 = 64 << 20;
/// The kernel's `list_limit` module parameter: at most 1024 items per CREATE_LIST.
pub const UDMABUF_LIST_LIMIT: u32 = 1024;

// --- include/uapi/linux/sync_file.h -----------------------------------------------------------

/// The sync_file ioctl type byte.
pub const SYNC_IOC_MAGIC: u8 = b'>';
/// Size of `struct sync_merge_data { char name[32]; __s32 fd2; __s32 fence; __u32 flags; __u32 pad; }`.
pub const SYNC_MERGE_DATA_SIZE: usize = 48;
/// Size of `struct sync_fence_info { char obj_name[32]; char driver_name[32]; __s32 status; __u32 flags; __u64 timestamp_ns; }`.
pub const SYNC_FENCE_INFO_SIZE: usize = 80;
/// Size of `struct sync_file_info { char name[32]; __s32 status; __u32 flags; __u32 num_fences; __u32 pad; __u64 sync_fence_info; }`.
pub const SYNC_FILE_INFO_SIZE: usize = 56;
/// `SYNC_IOC_MERGE`: `_IOWR('>', 3, struct sync_merge_data)`.
pub const SYNC_IOC_MERGE: u32 = iowr(SYNC_IOC_MAGIC, 3, SYNC_MERGE_DATA_SIZE);
/// `SYNC_IOC_FILE_INFO`: `_IOWR('>', 4, struct sync_file_info)`.
pub const SYNC_IOC_FILE_INFO: u32 = iowr(SYNC_IOC_MAGIC, 4, SYNC_FILE_INFO_SIZE);
/// `SYNC_IOC_SET_DEADLINE`: `_IOW('>', 5, struct sync_set_deadline { __u64 deadline_ns; __u64 pad; })`.
pub const SYNC_IOC_SET_DEADLINE: u32 = iow(SYNC_IOC_MAGIC, 5, 16);

// --- fcntl.h, memfd.h, mman.h, poll.h ---------------------------------------------------------

/// Open for reading only.
pub const O_RDONLY: u32 = 0o0;
/// Open for writing only.
pub const O_WRONLY: u32 = 0o1;
/// Open for reading and writing.
pub const O_RDWR: u32 = 0o2;
/// The access-mode bits of open flags.
pub const O_ACCMODE: u32 = 0o3;
/// Non-blocking file.
pub const O_NONBLOCK: u32 = 0o4000;
/// Close the fd on exec.
pub const O_CLOEXEC: u32 = 0o2000000;
/// `memfd_create`: close-on-exec.
pub const MFD_CLOEXEC: u32 = 0x1;
/// `memfd_create`: allow sealing.
pub const MFD_ALLOW_SEALING: u32 = 0x2;
/// `memfd_create`: back with huge pages.
pub const MFD_HUGETLB: u32 = 0x4;
/// Seal: no more seals may be added.
pub const F_SEAL_SEAL: u32 = 0x0001;
/// Seal: the file may not shrink.
pub const F_SEAL_SHRINK: u32 = 0x0002;
/// Seal: the file may not grow.
pub const F_SEAL_GROW: u32 = 0x0004;
/// Seal: the contents may not be written.
pub const F_SEAL_WRITE: u32 = 0x0008;
/// Seal: no new writable mappings.
pub const F_SEAL_FUTURE_WRITE: u32 = 0x0010;
/// Pages may be read.
pub const PROT_READ: u32 = 0x1;
/// Pages may be written.
pub const PROT_WRITE: u32 = 0x2;
/// There is data to read.
pub const POLLIN: u16 = 0x0001;
/// Writing is possible.
pub const POLLOUT: u16 = 0x0004;
/// An error condition.
pub const POLLERR: u16 = 0x0008;
/// `lseek` from the start.
pub const SEEK_SET: u32 = 0;
/// `lseek` from the current position.
pub const SEEK_CUR: u32 = 1;
/// `lseek` from the end.
pub const SEEK_END: u32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed numbers, as the C preprocessor computes them from the kernel headers on
    /// x86_64 and arm64 (generic ioctl layout).
    #[test]
    fn request_numbers_match_the_kernel_headers() {
        assert_eq!(DMA_BUF_IOCTL_SYNC, 0x4008_6200);
        assert_eq!(DMA_BUF_SET_NAME_A, 0x4004_6201);
        assert_eq!(DMA_BUF_SET_NAME_B, 0x4008_6201);
        assert_eq!(DMA_BUF_IOCTL_EXPORT_SYNC_FILE, 0xc008_6202);
        assert_eq!(DMA_BUF_IOCTL_IMPORT_SYNC_FILE, 0x4008_6203);
        assert_eq!(DMA_HEAP_IOCTL_ALLOC, 0xc018_4800);
        assert_eq!(UDMABUF_CREATE, 0x4018_7542);
        assert_eq!(UDMABUF_CREATE_LIST, 0x4008_7543);
        assert_eq!(SYNC_IOC_MERGE, 0xc030_3e03);
        assert_eq!(SYNC_IOC_FILE_INFO, 0xc038_3e04);
        assert_eq!(SYNC_IOC_SET_DEADLINE, 0x4010_3e05);
    }

    #[test]
    fn fields_unpack_from_a_request() {
        assert_eq!(ioc_type(DMA_BUF_IOCTL_SYNC), b'b');
        assert_eq!(ioc_nr(UDMABUF_CREATE_LIST), 0x43);
        assert_eq!(ioc_size(DMA_HEAP_IOCTL_ALLOC), 24);
        assert_eq!(ioc_dir(SYNC_IOC_FILE_INFO), IOC_READ | IOC_WRITE);
        assert_eq!(ioc_dir(ioc(IOC_NONE, b'x', 1, 0)), IOC_NONE);
    }

    #[test]
    fn flag_values_match_the_kernel_headers() {
        assert_eq!(DMA_BUF_SYNC_VALID_FLAGS_MASK, 0x7);
        assert_eq!(O_CLOEXEC, 0x80000);
        assert_eq!(O_NONBLOCK, 0x800);
        assert_eq!(DMA_HEAP_VALID_FD_FLAGS, 0x80003);
    }
}
