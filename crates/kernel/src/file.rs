//! Open files: what an fd refers to, and its access mode.
//!
//! C side: `include/linux/fs.h` (`struct file`, `f_mode`, `f_flags`), `fs/open.c`
//! (`OPEN_FMODE`), `fs/anon_inodes.c` (the anonymous files of dma-bufs and sync files).
//!
//! A [`File`] is an *open file description*: the object (a dma-buf, a sync file, a memfd, a heap
//! device node...) plus the status flags given when it was opened. File descriptors in a
//! [`Process`](crate::process::Process) table point at an `Arc<File>`; `dup` and `send_fd` share
//! the `File` (and so its mode), as `dup(2)` and `SCM_RIGHTS` share a `struct file`.
//!
//! # Rules
//! 1. The access mode is `flags & O_ACCMODE`, decoded like `OPEN_FMODE`: `O_RDONLY` reads,
//!    `O_WRONLY` writes, `O_RDWR` both, and the value 3 neither.
//! 2. A dma-buf's file is the buffer itself: its flags are the ones fixed at export
//!    ([`DmaBuf::file_flags`]: `O_ACCMODE | O_NONBLOCK`, behaviour 62), whatever the installer
//!    passed. `O_CLOEXEC` is never a file flag: it belongs to the fd.
//! 3. Dropping the last `Arc<File>` is the last `fput`: the object's own reference goes with it
//!    (a dma-buf reference, a sync file, a memfd's page cache...).
//! 4. `O_NONBLOCK` can change after open (`FIONBIO`, shared by every fd of the file, as
//!    `f_flags` is); the access mode never does. The file position (`f_pos`) is shared the same
//!    way; only files with `read`/`write` (memfds) move it.

use crate::heap::DmaHeap;
use crate::memfd::Memfd;
use dmabuf::buf::DmaBuf;
use fence::{SwSyncTimeline, SyncFile};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use uapi::ioctl::{O_ACCMODE, O_NONBLOCK};

/// A file descriptor number, as Linux's `int fd`.
pub type Fd = i32;

/// What an open file is.
pub enum FileObject {
    /// A dma-buf (`anon_inode:dmabuf`); holds one buffer reference.
    DmaBuf(DmaBuf),
    /// A sync file (`anon_inode:sync_file`).
    SyncFile(Arc<SyncFile>),
    /// An sw_sync timeline (`<debugfs>/sync/sw_sync`); closing the last fd signals its pending
    /// fences with `ENOENT`.
    SwSync(Arc<SwSyncTimeline>),
    /// A memfd (`/memfd:<name>`).
    Memfd(Arc<Memfd>),
    /// A dma-heap device node (`/dev/dma_heap/<name>`).
    Heap(Arc<dyn DmaHeap>),
    /// The udmabuf misc device (`/dev/udmabuf`).
    Udmabuf,
    /// A terminal: the stdin, stdout and stderr every process starts with. Not a memfd, not a
    /// dma-buf, not a heap: the "fd 0" of the selftests' error cases.
    Tty,
    /// A character device of a driver above this crate (a DRM card of `drivers`), opened by
    /// that driver; the kernel knows only its path, the driver its state.
    Device(Arc<dyn DeviceFile>),
}

/// The open-file state of a driver's character device ([`FileObject::Device`]).
pub trait DeviceFile: Send + Sync + std::fmt::Debug {
    /// The node's path (`/dev/dri/card0`), as `/proc/self/fd` shows it.
    fn path(&self) -> String;
    /// The state, for the driver to downcast.
    fn as_any(&self) -> &dyn std::any::Any;
}

impl std::fmt::Debug for FileObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileObject::DmaBuf(b) => write!(f, "DmaBuf(ino {}, {})", b.ino(), b.exp_name()),
            FileObject::SyncFile(s) => write!(f, "SyncFile({})", s.name()),
            FileObject::SwSync(_) => write!(f, "SwSync"),
            FileObject::Memfd(m) => write!(f, "Memfd({})", m.name()),
            FileObject::Heap(h) => write!(f, "Heap({})", h.name()),
            FileObject::Udmabuf => write!(f, "Udmabuf"),
            FileObject::Tty => write!(f, "Tty"),
            FileObject::Device(d) => write!(f, "Device({})", d.path()),
        }
    }
}

impl FileObject {
    /// A short name of the kind of object (`"dmabuf"`, `"sync_file"`, `"memfd"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            FileObject::DmaBuf(_) => "dmabuf",
            FileObject::SyncFile(_) => "sync_file",
            FileObject::SwSync(_) => "sw_sync",
            FileObject::Memfd(_) => "memfd",
            FileObject::Heap(_) => "dma_heap",
            FileObject::Udmabuf => "udmabuf",
            FileObject::Tty => "tty",
            FileObject::Device(_) => "device",
        }
    }
}

/// An open file description (see the module documentation).
///
/// # Invariants
/// `flags` holds only `O_ACCMODE | O_NONBLOCK` bits.
#[derive(Debug)]
pub struct File {
    obj: FileObject,
    flags: AtomicU32,
    pos: AtomicU64,
}

impl File {
    /// Opens `obj` with `flags` (only the access mode and `O_NONBLOCK` are kept; a dma-buf
    /// keeps its export flags instead, rule 2).
    pub fn new(obj: FileObject, flags: u32) -> File {
        let flags = match &obj {
            FileObject::DmaBuf(b) => b.file_flags(),
            _ => flags,
        } & (O_ACCMODE | O_NONBLOCK);
        // INVARIANT: masked just above.
        File {
            obj,
            flags: AtomicU32::new(flags),
            pos: AtomicU64::new(0),
        }
    }

    /// The object.
    pub fn object(&self) -> &FileObject {
        &self.obj
    }

    /// The status flags (`O_ACCMODE | O_NONBLOCK` bits; `fcntl(F_GETFL)`).
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// `FIONBIO` (rule 4): sets or clears `O_NONBLOCK`.
    pub fn set_nonblock(&self, on: bool) {
        if on {
            self.flags.fetch_or(O_NONBLOCK, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!O_NONBLOCK, Ordering::Relaxed);
        }
    }

    /// The file position (`f_pos`, rule 4).
    pub fn pos(&self) -> u64 {
        self.pos.load(Ordering::Relaxed)
    }

    /// Moves the file position.
    pub fn set_pos(&self, pos: u64) {
        self.pos.store(pos, Ordering::Relaxed);
    }

    /// `FMODE_READ`: opened `O_RDONLY` or `O_RDWR`.
    pub fn readable(&self) -> bool {
        (self.flags() + 1) & O_ACCMODE & 1 != 0
    }

    /// `FMODE_WRITE`: opened `O_WRONLY` or `O_RDWR`.
    pub fn writable(&self) -> bool {
        (self.flags() + 1) & O_ACCMODE & 2 != 0
    }

    /// The dma-buf, if this is one.
    pub fn as_dma_buf(&self) -> Option<&DmaBuf> {
        match &self.obj {
            FileObject::DmaBuf(b) => Some(b),
            _ => None,
        }
    }

    /// The memfd, if this is one.
    pub fn as_memfd(&self) -> Option<&Arc<Memfd>> {
        match &self.obj {
            FileObject::Memfd(m) => Some(m),
            _ => None,
        }
    }

    /// The sync file, if this is one.
    pub fn as_sync_file(&self) -> Option<&Arc<SyncFile>> {
        match &self.obj {
            FileObject::SyncFile(s) => Some(s),
            _ => None,
        }
    }

    /// The heap, if this is a heap device node.
    pub fn as_heap(&self) -> Option<&Arc<dyn DmaHeap>> {
        match &self.obj {
            FileObject::Heap(h) => Some(h),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uapi::ioctl::{O_RDONLY, O_RDWR, O_WRONLY};

    #[test]
    fn access_mode_decodes_like_open_fmode() {
        let f = |flags| File::new(FileObject::Tty, flags);
        assert!(f(O_RDONLY).readable() && !f(O_RDONLY).writable());
        assert!(!f(O_WRONLY).readable() && f(O_WRONLY).writable());
        assert!(f(O_RDWR).readable() && f(O_RDWR).writable());
        assert!(!f(O_ACCMODE).readable() && !f(O_ACCMODE).writable());
    }
}
