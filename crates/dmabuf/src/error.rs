//! Errors of the dma-buf framework, each with the errno Linux gives for the same mistake.
//!
//! C side: the negative returns of `drivers/dma-buf/dma-buf.c` (`-EINVAL`, `-EBUSY`, `-ENOMEM`,
//! `-EOVERFLOW`, `-ERESTARTSYS`, ...). Every variant says what was wrong; [`AsErrno::errno`] gives
//! the number the kernel would return, so the UAPI layer can answer with it unchanged.
//!
//! Other helpers may add variants (append only); keep the errno mapping exhaustive.

use dma::DmaError;
use fence::{FenceError, ResvError, SyncFileError, WwError};
use soc::SocError;
use thiserror::Error;
use uapi::{AsErrno, Errno};

/// What went wrong in a dma-buf call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DmaBufError {
    /// A bad argument; the message names it (`EINVAL`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `export` with `pin` but not `unpin`, or the reverse (behaviour 60, `EINVAL`).
    #[error("exporter {0:?} implements only one of pin/unpin")]
    PinWithoutUnpin(String),
    /// The attachment is not (or no longer) attached to this buffer (behaviour 67, `EINVAL`).
    #[error("attachment is not attached to this dma-buf")]
    NotAttached,
    /// The [`ResvGuard`](fence::ResvGuard) passed in locks another reservation object than the
    /// buffer's (`dma_resv_assert_held` would fire; `EINVAL`).
    #[error("the reservation lock held is not this dma-buf's")]
    WrongResv,
    /// `pin`/`unpin` on a static attachment (behaviour 74: a kernel WARN; here `EINVAL`).
    #[error("pin/unpin is only for dynamic importers")]
    StaticPin,
    /// The exporter has no `mmap` (behaviour 81, `EINVAL`): the buffer is not mmapable.
    #[error("dma-buf {0:?} is not mmapable")]
    NotMmapable(String),
    /// `pgoff + npages` beyond the buffer (behaviour 81, `EINVAL`).
    #[error("mmap of pages {pgoff}..{pgoff}+{npages} beyond a buffer of {pages} pages")]
    MmapOutOfBounds {
        /// First page asked for.
        pgoff: u64,
        /// Pages asked for.
        npages: u64,
        /// Whole pages in the buffer (`size >> PAGE_SHIFT`).
        pages: u64,
    },
    /// An offset computation overflowed (`EOVERFLOW`).
    #[error("offset overflow: {0}")]
    Overflow(&'static str),
    /// A CPU access outside a mapping, or a write through a read-only one (the SIGBUS/SIGSEGV of
    /// a real process; `EFAULT`).
    #[error("bad CPU access: {0}")]
    Fault(String),
    /// The exporter has no `vmap` (behaviour 75, `EINVAL`).
    #[error("dma-buf {0:?} does not support vmap")]
    NoVmap(String),
    /// `vunmap` of a map that is not the buffer's current vmap (behaviour 76: a kernel BUG;
    /// here `EINVAL`).
    #[error("vunmap of a mapping that is not this buffer's vmap")]
    VunmapMismatch,
    /// `set_name` with a name of 32 bytes or more (behaviour 84, `EINVAL`).
    #[error("dma-buf name is {0} bytes; at most 31 fit")]
    NameTooLong(usize),
    /// Sync-file flags outside `DMA_BUF_SYNC_RW`, or none of them (behaviours 85-86, `EINVAL`).
    #[error("bad dma-buf sync-file flags {0:#x}")]
    BadSyncFlags(u64),
    /// The buffer is in use and the call cannot proceed now (`EBUSY`).
    #[error("busy: {0}")]
    Busy(String),
    /// No memory meets the request (`ENOMEM`).
    #[error("out of memory: {0}")]
    NoMemory(String),
    /// An exporter-specific failure with its errno.
    #[error("exporter error {errno:?}: {msg}")]
    Exporter {
        /// The errno to report.
        errno: Errno,
        /// What went wrong.
        msg: String,
    },
    /// The DMA API failed.
    #[error(transparent)]
    Dma(#[from] DmaError),
    /// The SoC model failed.
    #[error(transparent)]
    Soc(#[from] SocError),
    /// A fence operation failed (`ERESTARTSYS` for an interrupted wait, `ETIME`, ...).
    #[error(transparent)]
    Fence(#[from] FenceError),
    /// A reservation-object operation failed.
    #[error(transparent)]
    Resv(#[from] ResvError),
    /// A sync-file operation failed.
    #[error(transparent)]
    SyncFile(#[from] SyncFileError),
}

impl DmaBufError {
    /// An exporter-specific error with `errno`.
    pub fn exporter(errno: Errno, msg: impl Into<String>) -> DmaBufError {
        DmaBufError::Exporter {
            errno,
            msg: msg.into(),
        }
    }

    /// Whether this is an interrupted wait (`ERESTARTSYS`).
    pub fn is_interrupted(&self) -> bool {
        self.errno() == Errno::ERESTARTSYS
    }
}

impl From<WwError> for DmaBufError {
    fn from(e: WwError) -> DmaBufError {
        DmaBufError::Resv(ResvError::Lock(e))
    }
}

impl AsErrno for DmaBufError {
    fn errno(&self) -> Errno {
        match self {
            DmaBufError::InvalidArgument(_)
            | DmaBufError::PinWithoutUnpin(_)
            | DmaBufError::NotAttached
            | DmaBufError::WrongResv
            | DmaBufError::StaticPin
            | DmaBufError::NotMmapable(_)
            | DmaBufError::MmapOutOfBounds { .. }
            | DmaBufError::NoVmap(_)
            | DmaBufError::VunmapMismatch
            | DmaBufError::NameTooLong(_)
            | DmaBufError::BadSyncFlags(_) => Errno::EINVAL,
            DmaBufError::Overflow(_) => Errno::EOVERFLOW,
            DmaBufError::Fault(_) => Errno::EFAULT,
            DmaBufError::Busy(_) => Errno::EBUSY,
            DmaBufError::NoMemory(_) => Errno::ENOMEM,
            DmaBufError::Exporter { errno, .. } => *errno,
            DmaBufError::Dma(e) => e.errno(),
            DmaBufError::Soc(e) => e.errno(),
            DmaBufError::Fence(e) => e.errno(),
            DmaBufError::Resv(e) => e.errno(),
            DmaBufError::SyncFile(e) => e.errno(),
        }
    }
}

impl From<DmaBufError> for Errno {
    fn from(e: DmaBufError) -> Errno {
        e.errno()
    }
}
