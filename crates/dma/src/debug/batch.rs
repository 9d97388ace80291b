//! Findings of work that runs on several host threads at once, committed in a fixed order.
//!
//! # The concept
//! A device job's pieces run on a pool of host threads (`drivers::job`): a finding a piece
//! raises (a device access against its mapping's direction, say) reaches the checker at a
//! moment the host picks. Committed as it comes, the checker's order, and once
//! [`MAX_KEPT_FINDINGS`](super::MAX_KEPT_FINDINGS) are kept *which* findings are kept at all,
//! would depend on the host's interleaving; sorting what was kept cannot repair that.
//!
//! So work that runs its pieces concurrently opens a *batch* ([`Checker::open_batch`]), and each
//! piece runs under a [`FindingOrigin`] naming the batch and the piece's index. The checker
//! holds what a tagged piece raises aside, per batch, and [`Checker::close_batch`] (called
//! when every piece ran) commits it in (piece, order raised within the piece) order: the order
//! one thread running the pieces one after the other raises them. Counts, the cap and the
//! kept list are applied then, so they depend only on the order the caller closes batches in.
//!
//! # Rules
//! 1. A piece runs on one thread from start to end: what it raises is in its own order.
//! 2. A finding tagged with a batch that is not open (closed already, or another checker's)
//!    is committed at once, as an untagged one.
//! 3. Strict mode commits at once: its error must come back from the call that raised it.
//! 4. Closing a batch twice, or one never opened, does nothing.
//!
//! Locking: the batches live behind the checker's one mutex, with the findings; the tag is a
//! thread-local set and restored by the guard, never shared.

use super::{Checker, Finding};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Batch ids, unique in the process (rule 2: a tag never names another checker's batch).
static NEXT_BATCH: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The batch and piece the current thread's work belongs to, if any.
    static ORIGIN: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// Tags what the current thread raises as piece `piece` of batch `batch` until dropped (module
/// doc); the previous tag comes back then.
#[derive(Debug)]
#[must_use = "the tag holds only while the guard lives"]
pub struct FindingOrigin {
    prev: Option<(u64, u64)>,
}

impl FindingOrigin {
    /// Tags the current thread's findings as piece `piece` of `batch`.
    pub fn enter(batch: u64, piece: u64) -> FindingOrigin {
        let prev = ORIGIN.with(|o| o.replace(Some((batch, piece))));
        FindingOrigin { prev }
    }
}

impl Drop for FindingOrigin {
    fn drop(&mut self) {
        ORIGIN.with(|o| o.set(self.prev));
    }
}

/// The current thread's tag.
pub(super) fn origin() -> Option<(u64, u64)> {
    ORIGIN.with(Cell::get)
}

/// A new batch id.
pub(super) fn next_batch() -> u64 {
    NEXT_BATCH.fetch_add(1, Ordering::Relaxed)
}

/// One finding held aside: `(piece, order raised, finding)`.
pub(super) type Held = (u64, u64, Finding);

impl Checker {
    /// Opens a batch of concurrently running pieces (module doc); returns its id, for
    /// [`FindingOrigin::enter`] and [`Checker::close_batch`].
    pub fn open_batch(&self) -> u64 {
        let id = next_batch();
        self.state.lock().batches.insert(id, Vec::new());
        id
    }

    /// Every piece of `batch` ran: what they raised is committed in piece order (module doc).
    pub fn close_batch(&self, batch: u64) {
        let mut st = self.state.lock();
        let Some(mut held) = st.batches.remove(&batch) else {
            return;
        };
        held.sort_by_key(|h| (h.0, h.1));
        let _ = st.commit_now(held.into_iter().map(|h| h.2).collect());
    }
}
