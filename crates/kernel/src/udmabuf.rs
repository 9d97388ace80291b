//! udmabuf: a dma-buf made of memfd pages.
//!
//! C side: `drivers/dma-buf/udmabuf.c` (`udmabuf_create`, `udmabuf_ioctl_create_list`,
//! `check_memfd_seals`), `include/uapi/linux/udmabuf.h`;
//! `tools/testing/selftests/drivers/dma-buf/udmabuf.c`.
//!
//! A process that filled a memfd (a virtual GPU's guest memory, a software decoder's output) can
//! hand those very pages to devices without a copy: `UDMABUF_CREATE` pins the memfd's pages and
//! wraps them in a dma-buf. Later writes through the memfd land on the same pages, so they show
//! through the udmabuf's mmap and, after the usual cache maintenance, to a device's DMA.
//!
//! # Rules of `UDMABUF_CREATE` / `UDMABUF_CREATE_LIST` (behaviours 95-101), in check order
//! 1. `CREATE_LIST` with more items than `list_limit` (default 1024): `EINVAL`.
//! 2. For every item: an offset or size not page aligned, or a running total above
//!    `size_limit_mb` (default 64 MiB): `EINVAL`. Then a total of 0 pages: `EINVAL`.
//! 3. For every item, in order: `memfd` not an open fd: `EBADFD` (not `EBADF`); a file that is
//!    not a memfd (neither shmem nor hugetlbfs, e.g. stdin): `EBADFD`; seals lacking
//!    `F_SEAL_SHRINK`, or including `F_SEAL_WRITE`/`F_SEAL_FUTURE_WRITE`: `EINVAL`; a range past
//!    the end of the memfd: `EINVAL`. The item's pages are pinned (holes are allocated,
//!    zero-filled), and the items are concatenated in order.
//! 4. The buffer is exported `O_RDWR` with `exp_name` `"udmabuf"`, size = pages * `PAGE_SIZE`,
//!    and installed at the lowest free fd, `O_CLOEXEC` with `UDMABUF_FLAGS_CLOEXEC`. The fd is
//!    the ioctl's return value.
//! 5. Unknown `flags` bits are ignored, as mainline does (a posted patch, with the selftest case
//!    `test-unknown-flags`, would make them `EINVAL`); [`UdmabufLimits`] has no switch for it,
//!    [`UDMABUF_FLAGS_VALID`] names the known bits for callers that want to check.
//! 6. A failed create leaks nothing: the pins taken so far are dropped (and with them any page
//!    that only the pin held), no fd is installed.
//! 7. The buffer's `mmap` needs `MAP_SHARED` (`EINVAL`), an access past it is `SIGBUS`;
//!    `DMA_BUF_IOCTL_SYNC` END before any START is `EINVAL` (behaviour 101).
//!
//! # Lifetime
//! The pins keep the memfd's pages alive after its last fd is closed (and `F_SEAL_SHRINK`
//! keeps them in the memfd while it lives); releasing the udmabuf drops the pins.

use crate::file::{Fd, FileObject};
use crate::heap::buffer::{CpuSync, HeapBuffer, Storage};
use crate::kernel::{errno, UdmabufLimits};
use crate::process::Process;
use dmabuf::buf::{DmaBuf, ExportInfo};
use dmabuf::error::DmaBufError;
use soc::PAGE_SIZE;
use uapi::ioctl::{
    F_SEAL_FUTURE_WRITE, F_SEAL_SHRINK, F_SEAL_WRITE, O_CLOEXEC, O_RDWR, UDMABUF_FLAGS_CLOEXEC,
};
use uapi::Errno;

/// The `flags` bits udmabuf knows.
pub const UDMABUF_FLAGS_VALID: u32 = UDMABUF_FLAGS_CLOEXEC;
/// The seals a memfd must have (`SEALS_WANTED`).
pub const SEALS_WANTED: u32 = F_SEAL_SHRINK;
/// The seals a memfd must not have (`SEALS_DENIED`).
pub const SEALS_DENIED: u32 = F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
/// The exporter name of udmabufs (`KBUILD_MODNAME`).
pub const UDMABUF_EXP_NAME: &str = "udmabuf";

/// `struct udmabuf_create_item`: `size` bytes of `memfd` from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdmabufItem {
    /// The memfd.
    pub memfd: Fd,
    /// Offset in the memfd (page aligned).
    pub offset: u64,
    /// Bytes (page aligned).
    pub size: u64,
}

/// Rules 1-2: the checks that need no fd. Returns the total page count.
pub fn check_items(items: &[UdmabufItem], limits: UdmabufLimits) -> Result<u64, DmaBufError> {
    if items.len() as u64 > u64::from(limits.list_limit) {
        return Err(errno(
            Errno::EINVAL,
            format!(
                "UDMABUF_CREATE_LIST: {} items, the limit is {}",
                items.len(),
                limits.list_limit
            ),
        ));
    }
    let pglimit = limits.size_limit / PAGE_SIZE;
    let mut pages = 0u64;
    for (i, it) in items.iter().enumerate() {
        if !it.offset.is_multiple_of(PAGE_SIZE) || !it.size.is_multiple_of(PAGE_SIZE) {
            return Err(errno(
                Errno::EINVAL,
                format!(
                    "udmabuf item {i}: offset {:#x} or size {:#x} is not page aligned",
                    it.offset, it.size
                ),
            ));
        }
        pages += it.size / PAGE_SIZE;
        if pages > pglimit {
            return Err(errno(
                Errno::EINVAL,
                format!(
                    "udmabuf: {pages} pages exceed the size limit of {:#x} bytes",
                    limits.size_limit
                ),
            ));
        }
    }
    if pages == 0 {
        return Err(errno(Errno::EINVAL, "udmabuf: total size is 0"));
    }
    Ok(pages)
}

impl Process {
    /// `open("/dev/udmabuf", O_RDWR)`.
    pub fn open_udmabuf(&self) -> Result<Fd, DmaBufError> {
        self.install(FileObject::Udmabuf, O_RDWR)
    }

    /// `UDMABUF_CREATE`: one item (module rules). Returns the new dma-buf fd.
    pub fn udmabuf_create(
        &self,
        memfd: Fd,
        offset: u64,
        size: u64,
        flags: u32,
    ) -> Result<Fd, DmaBufError> {
        self.udmabuf_create_list(
            flags,
            &[UdmabufItem {
                memfd,
                offset,
                size,
            }],
        )
    }

    /// `UDMABUF_CREATE_LIST`: the items concatenated in order (module rules). Returns the new
    /// dma-buf fd.
    ///
    /// Errors: `EINVAL` (rules 1-3), `EBADFD` (rule 3), `ENOMEM`, `EMFILE`.
    pub fn udmabuf_create_list(
        &self,
        flags: u32,
        items: &[UdmabufItem],
    ) -> Result<Fd, DmaBufError> {
        let kernel = self.kernel();
        let pages = check_items(items, kernel.udmabuf_limits())?;
        // Rule 6: `pins` drops (unpinning) on every early return.
        let mut pins = Vec::with_capacity(pages as usize);
        for (i, it) in items.iter().enumerate() {
            let file = self.file(it.memfd).map_err(|_| {
                errno(
                    Errno::EBADFD,
                    format!("udmabuf item {i}: fd {} is not open", it.memfd),
                )
            })?;
            let m = file.as_memfd().ok_or_else(|| {
                errno(
                    Errno::EBADFD,
                    format!(
                        "udmabuf item {i}: fd {} is a {}, not a memfd",
                        it.memfd,
                        file.object().kind()
                    ),
                )
            })?;
            let seals = m.seals();
            if seals & SEALS_WANTED != SEALS_WANTED || seals & SEALS_DENIED != 0 {
                return Err(errno(
                    Errno::EINVAL,
                    format!(
                        "udmabuf item {i}: {} has seals {seals:#x}; F_SEAL_SHRINK is needed, F_SEAL_WRITE/FUTURE_WRITE refused",
                        m.name()
                    ),
                ));
            }
            if it.size == 0 {
                // memfd_pin_folios(start, end = start + size - 1) refuses an empty range
                // (Linux 6.11+), so one empty item fails the whole list.
                return Err(errno(
                    Errno::EINVAL,
                    format!("udmabuf item {i}: size 0 (an empty range cannot be pinned)"),
                ));
            }
            pins.extend(m.pin_pages(it.offset, it.size)?);
        }
        let dma = kernel.dma();
        let ops = HeapBuffer::new(dma, Storage::Pinned(pins), CpuSync::MiscDevice, true);
        let info = ExportInfo::new(UDMABUF_EXP_NAME, pages * PAGE_SIZE, ops);
        let buf: DmaBuf = crate::heap::export(dma, info, Some(kernel.registry()))?;
        let fd_flags = if flags & UDMABUF_FLAGS_CLOEXEC != 0 {
            O_RDWR | O_CLOEXEC
        } else {
            O_RDWR
        };
        self.install(FileObject::DmaBuf(buf), fd_flags)
    }
}
