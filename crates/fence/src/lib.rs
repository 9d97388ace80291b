//! Cross-device synchronisation: fences, reservation objects and sync files.
//!
//! C side: `drivers/dma-buf/dma-fence*.c`, `drivers/dma-buf/dma-resv.c`,
//! `drivers/dma-buf/sync_file.c`, `drivers/dma-buf/sw_sync.c`, `kernel/locking/ww_mutex.h`.
//!
//! # A five-minute tour
//!
//! A *fence* ([`DmaFence`]) is a one-shot event: a driver creates it when it queues work and
//! signals it when the work is done. Everyone else holds clones and asks "done yet?", waits, or
//! registers a callback. Fences live on *contexts* (timelines from [`context_alloc`]) and are
//! ordered on their context by *seqno*.
//!
//! ```
//! use fence::{context_alloc, merge, DmaFence, DmaFenceChain, FenceError, FenceStatus,
//!             Interrupt, SimpleFenceOps};
//! use std::time::Duration;
//! use uapi::{AsErrno, Errno};
//!
//! // A driver with one ring: one context, increasing seqnos.
//! let ring = context_alloc(1)?;
//! let job1 = SimpleFenceOps::create("gpu", "ring0", ring, 1);
//! let job2 = SimpleFenceOps::create("gpu", "ring0", ring, 2);
//! assert!(job2.is_later(&job1));
//!
//! // A consumer waits with a timeout; the work is not done yet.
//! assert_eq!(job1.wait_timeout(None, Some(Duration::ZERO)), Err(FenceError::Timeout));
//!
//! // Completion is reported from another thread; the waiter parks until then.
//! let waiter = {
//!     let j = job1.clone();
//!     std::thread::spawn(move || j.wait(None))
//! };
//! job1.signal()?;
//! assert_eq!(waiter.join().unwrap(), Ok(()));
//!
//! // A failed job: the error shows once the fence signals.
//! job2.set_error(Errno::EIO)?;
//! job2.signal()?;
//! assert_eq!(job2.status(), FenceStatus::Error(Errno::EIO));
//!
//! // Interruptible waits answer ERESTARTSYS when a "signal" is pending.
//! let cam = SimpleFenceOps::create("camera", "frames", context_alloc(1)?, 1);
//! let intr = Interrupt::new();
//! intr.raise();
//! assert_eq!(cam.wait(Some(&intr)).unwrap_err().errno(), Errno::ERESTARTSYS);
//!
//! // Containers: a timeline point (chain) and "all of these" (merge -> array).
//! let point = DmaFenceChain::new(None, cam.clone(), 1)?;
//! let display = SimpleFenceOps::create("display", "flip", context_alloc(1)?, 1);
//! let both = merge(&[point, display.clone()])?;
//! cam.signal()?;
//! assert!(!both.is_signaled());
//! display.signal()?;
//! assert!(both.is_signaled());
//! # Ok::<(), FenceError>(())
//! ```
//!
//! # Map of the crate
//!
//! * [`fence`]: the fence core, its ops trait, waits and the cross-driver contract.
//! * [`array`](mod@array), [`chain`], [`unwrap`]: containers and flattening/merging them.
//! * [`ww_mutex`], [`resv`]: wound/wait mutexes and reservation objects (a buffer's fences).
//! * [`sync_file`], [`sw_sync`]: fences passed through user space, and a software timeline.
//! * [`sync`]: the lock facade (`parking_lot`, or loom under `cfg(loom)`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod array;
pub mod chain;
pub mod fence;
/// The synchronisation facade (the `sync` crate), re-exported under its old path.
pub use ::sync;
pub mod unwrap;

pub use array::DmaFenceArray;
pub use chain::DmaFenceChain;
pub use fence::{
    context_alloc, wait_any_timeout, CallbackId, DmaFence, FenceError, FenceOps, FenceStatus,
    Interrupt, SimpleFenceOps,
};
pub use unwrap::{merge, unwrap_iter, DmaFenceUnwrap};
pub mod ww_mutex;
pub use ww_mutex::{WwAcquireCtx, WwClass, WwError, WwMutex, WwMutexGuard};
pub mod resv;
pub use resv::{DmaResv, DmaResvUsage, ResvError, ResvExec, ResvGuard};
pub mod sw_sync;
pub mod sync_file;
pub use sw_sync::{SwSyncError, SwSyncTimeline};
pub use sync_file::{PollEvents, SyncFenceInfo, SyncFile, SyncFileError, SyncFileInfo};
