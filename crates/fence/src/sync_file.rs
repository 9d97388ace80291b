//! sync_file: one fence, handed to user space as a file.
//!
//! C side: `drivers/dma-buf/sync_file.c`, `include/linux/sync_file.h`,
//! `include/uapi/linux/sync_file.h`.
//!
//! # The concept
//!
//! Implicit synchronisation hides fences inside buffers (`DmaResv`). *Explicit* synchronisation
//! hands them to user space instead: a driver wraps the fence of a job in a sync file, user space
//! passes its fd around (to a compositor, to another driver's queue), and whoever receives it
//! waits, polls, merges it with other sync files, or asks what it contains. A [`SyncFile`] is
//! that file: an immutable wrapper around exactly one [`DmaFence`] (which may be a container:
//! merging two sync files produces an array). The fd table belongs to a higher layer; this module
//! offers the typed operations, plus the ioctl argument structs ([`SyncMergeData`],
//! [`SyncFileInfo`], [`SyncSetDeadline`]) and their checks, so that layer only moves bytes and
//! fds.
//!
//! # Rules (kernel behaviours 51-56)
//!
//! 1. [`SyncFile::new`] takes its own reference to the fence; the caller keeps its own.
//! 2. [`SyncFile::merge`] makes a new file whose fence is the unwrap-merge of both inputs
//!    ([`crate::merge`], behaviour 36): signaled leaves dropped, one leaf per context (the
//!    latest), a single leaf returned as is, none left giving a signaled stub. Both inputs stay
//!    valid. The name is cut to 31 bytes (`char name[32]` with its NUL).
//! 3. The ioctl checks come first and in the kernel's order: `flags` or `pad` not zero is
//!    `EINVAL`; for MERGE, an `fd2` that is not a sync file is `ENOENT`.
//! 4. FILE_INFO with `num_fences == 0` reports the leaf count and the status of the whole fence
//!    and fills nothing; fewer slots than leaves is `EINVAL`; otherwise one [`SyncFenceInfo`] per
//!    leaf (unwrap order), and the file status is 1 if every leaf signaled, else the first leaf
//!    status `<= 0`.
//! 5. The name is the merge name if one was given, else `"<driver>-<timeline><context>-<seqno>"`
//!    of the fence (the seqno printed as a signed 64-bit number, as the kernel's `%lld` does).
//! 6. [`SyncFile::poll`] is readable (`EPOLLIN`) if and only if the fence has signaled. The first
//!    poll registers a fence callback, which enables signaling; it wakes every poller registered
//!    with [`SyncFile::poll_notify`]. Dropping the file removes that callback (`sync_file_release`).
//! 7. SET_DEADLINE with `pad != 0` is `EINVAL`; otherwise the hint goes to the fence, which
//!    passes it to its driver only while pending.
//!
//! # Example
//!
//! ```
//! use fence::sync_file::{PollEvents, SyncFile};
//! use fence::{context_alloc, SimpleFenceOps};
//!
//! let ctx = context_alloc(2).unwrap();
//! let a = SyncFile::new(&SimpleFenceOps::create("gpu", "ring", ctx, 1));
//! let b = SyncFile::new(&SimpleFenceOps::create("isp", "out", ctx + 1, 9));
//! let both = SyncFile::merge("frame", &a, &b).unwrap();
//! assert_eq!(both.name(), "frame");
//! assert_eq!(both.info(0).unwrap().num_fences, 2);
//! assert_eq!(both.poll(), PollEvents::empty());
//! a.fence().signal().unwrap();
//! b.fence().signal().unwrap();
//! assert_eq!(both.poll(), PollEvents::IN);
//! ```

use crate::fence::{CallbackId, DmaFence, FenceError, Interrupt};
use crate::sync::{Arc, Mutex};
use std::fmt;
use std::time::Duration;
pub use uapi::sync_file::{
    cut_name, name_from_c, name_to_c, SyncFenceInfo, SyncFileInfo, SyncMergeData, SyncSetDeadline,
    SYNC_NAME_LEN,
};
use uapi::{AsErrno, Errno};

/// Why a sync_file operation failed; [`AsErrno::errno`] gives the kernel's errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncFileError {
    /// An ioctl field that must be zero was not; the string names it (`EINVAL`).
    #[error("sync_file ioctl: `{0}` must be zero")]
    NonZero(&'static str),
    /// MERGE: `fd2` does not refer to a sync file (`ENOENT`).
    #[error("sync_file merge: fd2 is not a sync_file")]
    NotASyncFile,
    /// FILE_INFO: the caller's array has fewer slots than the file has fences (`EINVAL`).
    #[error("sync_file info: {given} slots for {needed} fences")]
    TooFewSlots {
        /// `num_fences` as passed in.
        given: u32,
        /// The number of leaf fences in the file.
        needed: u32,
    },
    /// The merged fence could not be built (`ENOMEM`, as the kernel reports any merge failure).
    #[error("sync_file merge failed: {0}")]
    MergeFailed(FenceError),
}

impl AsErrno for SyncFileError {
    fn errno(&self) -> Errno {
        match self {
            SyncFileError::NonZero(_) | SyncFileError::TooFewSlots { .. } => Errno::EINVAL,
            SyncFileError::NotASyncFile => Errno::ENOENT,
            SyncFileError::MergeFailed(_) => Errno::ENOMEM,
        }
    }
}

/// Poll events of a sync file (`__poll_t`); only `EPOLLIN` is ever reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PollEvents(u32);

impl PollEvents {
    /// `EPOLLIN` (0x001): the fence has signaled.
    pub const IN: PollEvents = PollEvents(0x001);

    /// No event: the fence is still pending.
    pub const fn empty() -> PollEvents {
        PollEvents(0)
    }

    /// The Linux bit mask.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether `EPOLLIN` is set.
    pub const fn is_readable(self) -> bool {
        self.0 & Self::IN.0 != 0
    }
}

/// Identifies a waker registered with [`SyncFile::poll_notify`], for
/// [`SyncFile::cancel_poll_notify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PollWaiterId(u64);

/// What [`SyncFile::poll_notify`] did with the waker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollRegistration {
    /// The file is already readable; the waker was dropped without being called.
    Ready,
    /// The waker is called exactly once, when the fence signals; if the signal raced with the
    /// registration it may already have run when this is returned.
    Registered(PollWaiterId),
}

type PollWaker = Box<dyn FnOnce() + Send + 'static>;

/// The file's wait queue (`sync_file->wq`, `POLL_ENABLED`, `sync_file->cb`).
#[derive(Default)]
struct PollQueue {
    /// `POLL_ENABLED`: the first poll has registered the fence callback.
    armed: bool,
    /// The fence callback, to remove on release; `None` if it could not be added.
    callback: Option<CallbackId>,
    /// The fence callback has run (or could not be added because the fence had signaled).
    woken: bool,
    /// Pollers to wake, in registration order.
    waiters: Vec<(u64, PollWaker)>,
    next_id: u64,
}

/// Wakes every registered poller (`wake_up_all`): collects them under the lock, calls them after.
fn wake_all(queue: &Mutex<PollQueue>) {
    let waiters = {
        let mut q = queue.lock();
        q.woken = true;
        std::mem::take(&mut q.waiters)
    };
    for (_, w) in waiters {
        w();
    }
}

/// A sync file (`struct sync_file`): one fence, plus an optional name and a poll wait queue.
///
/// Not `Clone`: one value is one open file. Share it with `Arc` the way fds share a `struct
/// file`; dropping the last owner is `sync_file_release`.
pub struct SyncFile {
    fence: DmaFence,
    /// `user_name`: the merge name, already cut to 31 bytes; empty means "derive from the fence".
    user_name: String,
    /// Shared with the fence callback, which holds the other reference.
    poll: Arc<Mutex<PollQueue>>,
}

impl SyncFile {
    /// Wraps `fence` in a new sync file, taking a reference of its own (`sync_file_create`).
    pub fn new(fence: &DmaFence) -> SyncFile {
        SyncFile::with_name(fence.clone(), String::new())
    }

    fn with_name(fence: DmaFence, user_name: String) -> SyncFile {
        SyncFile {
            fence,
            user_name,
            poll: Arc::new(Mutex::new(PollQueue::default())),
        }
    }

    /// The fence this file wraps (`sync_file->fence`); clone it to keep a reference
    /// (`sync_file_get_fence`).
    pub fn fence(&self) -> &DmaFence {
        &self.fence
    }

    /// The file's name (`sync_file_get_name`, rule 5): the merge name, or
    /// `"<driver>-<timeline><context>-<seqno>"` of the fence. Not cut; FILE_INFO cuts it.
    pub fn name(&self) -> String {
        if !self.user_name.is_empty() {
            return self.user_name.clone();
        }
        let f = &self.fence;
        // The kernel prints the seqno with %lld: a u64 above i64::MAX shows as negative.
        format!(
            "{}-{}{}-{}",
            f.driver_name(),
            f.timeline_name(),
            f.context(),
            f.seqno() as i64
        )
    }

    /// Merges two sync files into a new one (`sync_file_merge`, rule 2).
    ///
    /// `name` is cut to 31 bytes; an empty name makes the new file derive its name from its
    /// fence. Fails only if the merged fence cannot be built ([`SyncFileError::MergeFailed`],
    /// `ENOMEM`).
    ///
    /// ```
    /// use fence::sync_file::SyncFile;
    /// use fence::{context_alloc, SimpleFenceOps};
    /// let ctx = context_alloc(1).unwrap();
    /// let old = SyncFile::new(&SimpleFenceOps::create("d", "t", ctx, 1));
    /// let new = SyncFile::new(&SimpleFenceOps::create("d", "t", ctx, 2));
    /// let m = SyncFile::merge("a-name-much-longer-than-thirty-one-bytes", &old, &new).unwrap();
    /// assert!(m.fence().ptr_eq(new.fence())); // same context: only the latest is kept
    /// assert_eq!(m.name(), "a-name-much-longer-than-thirty-");
    /// ```
    pub fn merge(name: &str, a: &SyncFile, b: &SyncFile) -> Result<SyncFile, SyncFileError> {
        let fence = crate::unwrap::merge(&[a.fence.clone(), b.fence.clone()])
            .map_err(SyncFileError::MergeFailed)?;
        Ok(SyncFile::with_name(fence, cut_name(name)))
    }

    /// The number of leaf fences ([`crate::unwrap_iter`]) in this file.
    pub fn num_fences(&self) -> u32 {
        let n = self.fence.unwrap_iter().count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// SYNC_IOC_FILE_INFO with `flags` and `pad` zero: the name, status and, unless
    /// `num_fences` is 0, one [`SyncFenceInfo`] per leaf (rule 4).
    ///
    /// ```
    /// use fence::sync_file::SyncFile;
    /// use fence::{context_alloc, SimpleFenceOps};
    /// let f = SimpleFenceOps::create("drv", "tl", context_alloc(1).unwrap(), 3);
    /// let file = SyncFile::new(&f);
    /// let count = file.info(0).unwrap();
    /// assert_eq!((count.num_fences, count.status), (1, 0));
    /// f.signal().unwrap();
    /// let full = file.info(count.num_fences).unwrap();
    /// assert_eq!((full.status, full.sync_fence_info[0].status), (1, 1));
    /// ```
    pub fn info(&self, num_fences: u32) -> Result<SyncFileInfo, SyncFileError> {
        let mut info = SyncFileInfo {
            num_fences,
            ..SyncFileInfo::default()
        };
        self.ioctl_file_info(&mut info)?;
        Ok(info)
    }

    /// SYNC_IOC_FILE_INFO on an argument copied from user space (rules 3 and 4).
    ///
    /// Reads `flags`, `pad` and `num_fences`; on success writes `name`, `status`, `num_fences`
    /// (the leaf count) and, if `num_fences` was not 0, `sync_fence_info` (exactly one entry per
    /// leaf; the caller copies them to the user array). On error nothing is written.
    pub fn ioctl_file_info(&self, info: &mut SyncFileInfo) -> Result<(), SyncFileError> {
        if info.flags != 0 {
            return Err(SyncFileError::NonZero("flags"));
        }
        if info.pad != 0 {
            return Err(SyncFileError::NonZero("pad"));
        }
        let leaves: Vec<DmaFence> = self.fence.unwrap_iter().collect();
        let needed = u32::try_from(leaves.len()).unwrap_or(u32::MAX);
        if info.num_fences == 0 {
            info.status = self.fence.get_status();
        } else {
            if info.num_fences < needed {
                return Err(SyncFileError::TooFewSlots {
                    given: info.num_fences,
                    needed,
                });
            }
            let mut status = 1;
            let mut entries = Vec::with_capacity(leaves.len());
            for leaf in &leaves {
                let entry = fence_info(leaf);
                if status > 0 {
                    status = entry.status;
                }
                entries.push(entry);
            }
            info.status = status;
            info.sync_fence_info = entries;
        }
        info.name = cut_name(&self.name());
        info.num_fences = needed;
        Ok(())
    }

    /// SYNC_IOC_MERGE on an argument copied from user space (rules 2 and 3).
    ///
    /// `fd2` is what the caller found behind `data.fd2`: `None` if that fd is not a sync file.
    /// Returns the new file; the caller installs it in a new `O_CLOEXEC` fd and writes that into
    /// `data.fence`.
    pub fn ioctl_merge(
        &self,
        data: &SyncMergeData,
        fd2: Option<&SyncFile>,
    ) -> Result<SyncFile, SyncFileError> {
        if let Some(field) = data.nonzero_field() {
            return Err(SyncFileError::NonZero(field));
        }
        let other = fd2.ok_or(SyncFileError::NotASyncFile)?;
        SyncFile::merge(&name_from_c(&data.name), self, other)
    }

    /// Passes a deadline hint (on the fence's [`clock`](crate::FenceOps::clock)) to the fence
    /// (`dma_fence_set_deadline`, rule 7).
    pub fn set_deadline(&self, deadline_ns: u64) {
        self.fence.set_deadline(deadline_ns);
    }

    /// SYNC_IOC_SET_DEADLINE on an argument copied from user space: `pad != 0` is `EINVAL`.
    pub fn ioctl_set_deadline(&self, data: &SyncSetDeadline) -> Result<(), SyncFileError> {
        if data.pad != 0 {
            return Err(SyncFileError::NonZero("pad"));
        }
        self.set_deadline(data.deadline_ns);
        Ok(())
    }

    /// Registers the file's fence callback on the first call (`POLL_ENABLED`).
    fn arm(&self) {
        {
            let mut q = self.poll.lock();
            if q.armed {
                return;
            }
            q.armed = true;
        }
        // No lock of ours is held across the fence calls: the callback takes it.
        let queue = self.poll.clone();
        match self.fence.add_callback(move |_| wake_all(&queue)) {
            Ok(id) => self.poll.lock().callback = Some(id),
            Err(_) => wake_all(&self.poll),
        }
    }

    /// `poll()` on the file (`sync_file_poll`, rule 6): [`PollEvents::IN`] if and only if the
    /// fence has signaled. The first call enables signaling through the file's callback.
    pub fn poll(&self) -> PollEvents {
        self.arm();
        if self.fence.is_signaled() {
            PollEvents::IN
        } else {
            PollEvents::empty()
        }
    }

    /// `poll()` with a wait-queue entry (`poll_wait`): if the file is not readable yet, `waker`
    /// is called once, on the signalling thread, when the fence signals.
    ///
    /// Like [`poll`](Self::poll), the first call enables signaling. The waker runs outside every
    /// lock but must be quick (fence contract rule 3); like a kernel wake-up it means "poll
    /// again". Wakers not yet called are dropped with the file.
    ///
    /// ```
    /// use fence::sync_file::{PollRegistration, SyncFile};
    /// use fence::{context_alloc, SimpleFenceOps};
    /// use std::sync::{atomic::{AtomicBool, Ordering}, Arc};
    /// let f = SimpleFenceOps::create("d", "t", context_alloc(1).unwrap(), 1);
    /// let file = SyncFile::new(&f);
    /// let woke = Arc::new(AtomicBool::new(false));
    /// let w = woke.clone();
    /// let reg = file.poll_notify(move || w.store(true, Ordering::SeqCst));
    /// assert!(matches!(reg, PollRegistration::Registered(_)));
    /// f.signal().unwrap();
    /// assert!(woke.load(Ordering::SeqCst));
    /// assert_eq!(file.poll_notify(|| ()), PollRegistration::Ready);
    /// ```
    pub fn poll_notify(&self, waker: impl FnOnce() + Send + 'static) -> PollRegistration {
        self.arm();
        let id = {
            let mut q = self.poll.lock();
            if q.woken {
                return PollRegistration::Ready;
            }
            let id = PollWaiterId(q.next_id);
            q.next_id += 1;
            q.waiters.push((id.0, Box::new(waker)));
            id
        };
        // Readable after all: take the waker back unless the wake-up already took it.
        if self.fence.is_signaled() && self.cancel_poll_notify(id) {
            return PollRegistration::Ready;
        }
        PollRegistration::Registered(id)
    }

    /// Removes a waker registered with [`poll_notify`](Self::poll_notify) (`poll_freewait`):
    /// `true` if it was still registered and now never runs.
    pub fn cancel_poll_notify(&self, id: PollWaiterId) -> bool {
        let removed = {
            let mut q = self.poll.lock();
            let pos = q.waiters.iter().position(|(i, _)| *i == id.0);
            pos.map(|p| q.waiters.remove(p))
        };
        removed.is_some()
    }

    /// Blocks until the file is readable, like `poll()` with a timeout on the fd (the selftests'
    /// `sync_wait`): `Ok(remaining)` once the fence signaled, [`FenceError::Timeout`] or
    /// [`FenceError::Interrupted`]. `None` waits forever; `Some(ZERO)` only checks.
    pub fn wait_timeout(
        &self,
        intr: Option<&Interrupt>,
        timeout: Option<Duration>,
    ) -> Result<Duration, FenceError> {
        self.arm();
        self.fence.wait_timeout(intr, timeout)
    }
}

impl Drop for SyncFile {
    fn drop(&mut self) {
        // sync_file_release: take the poll callback off the fence before dropping our reference.
        let id = self.poll.lock().callback.take();
        if let Some(id) = id {
            self.fence.remove_callback(id);
        }
    }
}

impl fmt::Debug for SyncFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncFile")
            .field("name", &self.name())
            .field("fence", &self.fence)
            .finish()
    }
}

/// The FILE_INFO entry for one leaf fence (`sync_fill_fence_info`).
fn fence_info(fence: &DmaFence) -> SyncFenceInfo {
    let status = fence.get_status();
    SyncFenceInfo {
        obj_name: cut_name(&fence.timeline_name()),
        driver_name: cut_name(&fence.driver_name()),
        status,
        flags: 0,
        timestamp_ns: if fence.is_signaled() {
            fence.timestamp_ns().unwrap_or(0)
        } else {
            0
        },
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn cut_name_never_splits_a_character() {
        let s = "é".repeat(20); // 40 bytes
        let cut = cut_name(&s);
        assert_eq!(cut.len(), 30);
        assert_eq!(cut_name("short"), "short");
    }

    #[test]
    fn c_names_round_trip_and_stop_at_nul_or_byte_31() {
        assert_eq!(name_from_c(&name_to_c("abc")), "abc");
        let full = [b'x'; SYNC_NAME_LEN];
        assert_eq!(name_from_c(&full).len(), 31);
        let mut bad = [0u8; SYNC_NAME_LEN];
        bad[0] = 0xff;
        assert_eq!(name_from_c(&bad), "\u{fffd}");
    }

    #[test]
    fn errors_carry_linux_errnos() {
        assert_eq!(SyncFileError::NonZero("pad").errno(), Errno::EINVAL);
        assert_eq!(
            SyncFileError::TooFewSlots {
                given: 1,
                needed: 2
            }
            .errno(),
            Errno::EINVAL
        );
        assert_eq!(SyncFileError::NotASyncFile.errno(), Errno::ENOENT);
        let merge = SyncFileError::MergeFailed(FenceError::InvalidArgument("x"));
        assert_eq!(merge.errno(), Errno::ENOMEM);
    }
}
