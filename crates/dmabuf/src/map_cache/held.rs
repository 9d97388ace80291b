//! The mapping cache's zombie protocol, on its own so loom can check every interleaving of it
//! (`tests/loom_map_cache.rs`).
//!
//! # The concept
//!
//! [`HeldTables`] keeps values handed out as `Arc`s under keys: *live* entries (a lookup hands
//! out a clone) and *zombies* (invalidated while some holder still had a clone). A value is
//! *free* — its owner may really tear it down, e.g. unmap the table — exactly once: when it is
//! invalidated and nobody holds it, or when the last holder gives a zombie back.
//!
//! # Rules
//!
//! 1. **One lock, one decision.** Whether an invalidated entry is held (so becomes a zombie) or
//!    free is decided under the same lock in which zombies are looked up by
//!    [`give_back`](HeldTables::give_back), which drops the holder's clone under that lock too.
//!    So a give-back either sees the zombie or happened before the decision (and the count the
//!    decision reads already lacks its clone): no zombie is ever left with no holder, and no
//!    value is freed twice.
//! 2. **Holders are `Arc` clones.** The holder count is the `Arc`'s strong count minus the
//!    cache's own reference; a holder gives its clone back through `give_back`, never by dropping
//!    it elsewhere (a clone dropped behind the cache's back keeps a zombie until the cache goes).
//! 3. **A failed teardown goes back in.** An owner that finds a freed value still shared (its
//!    `Arc::try_unwrap` failed) hands it to [`requeue`](HeldTables::requeue), which again
//!    decides under the lock.
//! 4. Locking: one leaf lock (from the `sync` facade, loom's under `--cfg loom`); no callback
//!    runs under it except [`for_each`](HeldTables::for_each)'s.

use std::sync::Arc;
use sync::Mutex;

struct Lists<K, T> {
    live: Vec<(K, Arc<T>)>,
    zombies: Vec<(K, Arc<T>)>,
}

/// Live and zombie entries, keyed by `K`, of values shared as `Arc<T>` (module rules).
pub struct HeldTables<K, T> {
    lists: Mutex<Lists<K, T>>,
}

impl<K, T> HeldTables<K, T> {
    /// No entries.
    pub fn new() -> HeldTables<K, T> {
        HeldTables {
            lists: Mutex::new(Lists {
                live: Vec::new(),
                zombies: Vec::new(),
            }),
        }
    }

    /// A clone of the live value whose key `matches` (the holder's reference), if any.
    pub fn get(&self, matches: impl Fn(&K) -> bool) -> Option<Arc<T>> {
        let l = self.lists.lock();
        l.live
            .iter()
            .find(|(k, _)| matches(k))
            .map(|(_, v)| v.clone())
    }

    /// Caches `value` under `key` unless a live entry `matches` already (then returns a clone
    /// of that one, and the caller tears its own `value` down).
    pub fn insert(&self, key: K, value: &Arc<T>, matches: impl Fn(&K) -> bool) -> Option<Arc<T>> {
        let mut l = self.lists.lock();
        if let Some((_, v)) = l.live.iter().find(|(k, _)| matches(k)) {
            return Some(v.clone());
        }
        l.live.push((key, value.clone()));
        None
    }

    /// A holder gives its clone back. Returns the entry if that made a zombie free (rule 1):
    /// the caller tears it down.
    pub fn give_back(&self, value: Arc<T>) -> Option<(K, Arc<T>)> {
        let mut l = self.lists.lock();
        let pos = l.zombies.iter().position(|(_, z)| Arc::ptr_eq(z, &value));
        drop(value);
        match pos {
            Some(i) if Arc::strong_count(&l.zombies[i].1) == 1 => Some(l.zombies.swap_remove(i)),
            _ => None,
        }
    }

    /// Invalidates every live entry `pred` accepts: the ones nobody holds are returned (free:
    /// the caller tears them down), the held ones become zombies — one decision, under the lock
    /// (rule 1).
    pub fn invalidate_where(&self, pred: impl Fn(&K) -> bool) -> Vec<(K, Arc<T>)> {
        let mut l = self.lists.lock();
        let (take, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut l.live)
            .into_iter()
            .partition(|(k, _)| pred(k));
        l.live = keep;
        let mut free = Vec::new();
        for (k, v) in take {
            if Arc::strong_count(&v) > 1 {
                l.zombies.push((k, v));
            } else {
                free.push((k, v));
            }
        }
        free
    }

    /// A freed value turned out still shared (rule 3): it is free again now if nobody else holds
    /// it (returned), else it becomes a zombie.
    pub fn requeue(&self, key: K, value: Arc<T>) -> Option<(K, Arc<T>)> {
        let mut l = self.lists.lock();
        if Arc::strong_count(&value) == 1 {
            return Some((key, value));
        }
        l.zombies.push((key, value));
        None
    }

    /// Live entries some holder has, plus zombies: while this is not 0, what the values refer
    /// to must not be freed.
    pub fn in_use(&self) -> usize {
        let l = self.lists.lock();
        l.live
            .iter()
            .filter(|(_, v)| Arc::strong_count(v) > 1)
            .count()
            + l.zombies.len()
    }

    /// [`in_use`](Self::in_use) of the entries whose key `pred` accepts.
    pub fn in_use_where(&self, pred: impl Fn(&K) -> bool) -> usize {
        let l = self.lists.lock();
        l.live
            .iter()
            .filter(|(k, v)| pred(k) && Arc::strong_count(v) > 1)
            .count()
            + l.zombies.iter().filter(|(k, _)| pred(k)).count()
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.lists.lock().live.len()
    }

    /// Whether there is no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Zombies (invalidated, still held).
    pub fn zombies(&self) -> usize {
        self.lists.lock().zombies.len()
    }

    /// Calls `f` on every live entry and zombie, under the lock, stopping at the first error.
    pub fn for_each<E>(&self, mut f: impl FnMut(&K, &T) -> Result<(), E>) -> Result<(), E> {
        let l = self.lists.lock();
        for (k, v) in l.live.iter().chain(l.zombies.iter()) {
            f(k, v)?;
        }
        Ok(())
    }
}

impl<K, T> Default for HeldTables<K, T> {
    fn default() -> Self {
        HeldTables::new()
    }
}

/// Tears `entry` down with `teardown` once it is really free (rule 3): if its `Arc` is still
/// shared, it goes back to `tables`, and is torn down here only if that made it free.
/// Returns `teardown`'s result, or `Ok` when the entry became a zombie.
pub fn release<K, T, E>(
    tables: &HeldTables<K, T>,
    entry: (K, Arc<T>),
    mut teardown: impl FnMut(K, T) -> Result<(), E>,
) -> Result<(), E> {
    let (mut key, mut value) = entry;
    loop {
        match Arc::try_unwrap(value) {
            Ok(v) => return teardown(key, v),
            Err(shared) => match tables.requeue(key, shared) {
                Some((k, v)) => (key, value) = (k, v),
                None => return Ok(()),
            },
        }
    }
}
