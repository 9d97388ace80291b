//! The exporter-side mapping cache: a re-map of an unchanged buffer costs a lookup (seed 003).
//!
//! C side: the `cache_sgt_mapping` path of older `drivers/dma-buf/dma-buf.c` (up to about 6.15),
//! moved out of the core into the exporter as mainline did (behaviour 71: the core never caches).
//!
//! # The concept
//! Seed 003: GPUs "eat through data so fast that not caching mappings kills performance". An
//! exporter that wants cached mappings keeps one [`MapCache`] per buffer and routes its
//! `map_dma_buf`/`unmap_dma_buf` through [`MapCache::map`]/[`MapCache::unmap`]: the first map of
//! an attachment in a direction builds the table and maps it for the device (a *miss*); later
//! maps hand out the same table (a *hit*) and unmaps only drop the importer's reference. The
//! real unmap happens when the cache is invalidated: the buffer moves
//! ([`MapCache::buffer_moved`]) or the attachment detaches ([`MapCache::detach`]).
//!
//! # Rules
//! 1. Key: (attachment id, direction). Different directions of one attachment are different
//!    entries (the old core returned `EBUSY` instead; an exporter may refuse in its own `map`).
//! 2. Invalidation unmaps every entry no importer holds; an entry still held (an importer that
//!    ignored `move_notify`, or a static importer of a buffer moved anyway) is unmapped when the
//!    importer gives it back. [`MapCache::in_use`] counts them: an exporter must not free the old
//!    storage while it is non-zero.
//! 3. Cache maintenance for CPU access covers every cached table, held or not
//!    ([`MapCache::sync_for_cpu`], [`MapCache::sync_for_device`]): a cached table is still a live
//!    DMA mapping.
//! 4. Locking: one leaf lock around the entries; the DMA API is called with it held only to sync
//!    (it takes only its own leaf locks); never the resv lock or an importer.
//! 5. **Epochs.** Every table is mapped at the cache's current epoch ([`MapCache::epoch`]);
//!    each [`invalidate`](MapCache::invalidate) starts a new one. An exporter that moves a
//!    buffer whose old tables importers may still hold (a TTM-style exporter keeping the old
//!    storage as a *ghost*) notes the epoch before the move and frees that storage once
//!    [`MapCache::in_use_at`] of it is 0 — not before, and without tracking tables itself.
//! 6. The zombie protocol of rule 2 is [`HeldTables`] (module `held`): whether an invalidated
//!    table is still held is decided under the same lock in which holders give tables back, so
//!    a table is unmapped exactly once and no zombie outlives its last holder. loom checks it
//!    (`tests/loom_map_cache.rs`).

use crate::attach::Attachment;
use crate::buf::DmaBuf;
use crate::error::DmaBufError;
use dma::{DmaApi, DmaAttrs, DmaDirection, SgTable};
use fence::ResvGuard;
use soc::Device;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod held;

pub use held::{release, HeldTables};

/// What a cached table is cached under, and what unmapping it needs.
struct Key {
    att_id: u64,
    dir: DmaDirection,
    dev: Arc<Device>,
    /// The epoch the table was mapped at (rule 5).
    epoch: u64,
}

impl Key {
    fn is(&self, att_id: u64, dir: DmaDirection) -> bool {
        self.att_id == att_id && self.dir == dir
    }
}

/// How a [`MapCache`] maps and unmaps its tables.
///
/// The default maps with no attributes and lets the DMA API do the cache maintenance of map and
/// unmap. A GPU-style exporter (`amdgpu_dma_buf_map`) maps with `DMA_ATTR_SKIP_CPU_SYNC` and syncs
/// explicitly instead:
///
/// ```
/// use dma::DmaAttrs;
/// use dmabuf::map_cache::MapCacheOptions;
/// let gpu_style = MapCacheOptions { attrs: DmaAttrs::SKIP_CPU_SYNC, explicit_sync: true };
/// assert_ne!(gpu_style, MapCacheOptions::default());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapCacheOptions {
    /// The DMA attributes of every real map and unmap (`dma_map_sgtable(..., attrs)`).
    pub attrs: DmaAttrs,
    /// After a real map, sync the table for a non-coherent device
    /// (`dma_sync_sgtable_for_device`); before a real unmap, sync it for the CPU unless the
    /// direction is `TO_DEVICE` (`dma_sync_sgtable_for_cpu`). What `attrs` with
    /// `DMA_ATTR_SKIP_CPU_SYNC` leaves out; harmless (a second maintenance) without it.
    pub explicit_sync: bool,
}

/// Cached mapped tables of one buffer, per attachment and direction (module doc).
pub struct MapCache {
    dma: Arc<DmaApi>,
    options: MapCacheOptions,
    tables: HeldTables<Key, SgTable>,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    epoch: AtomicU64,
}

impl MapCache {
    /// An empty cache whose tables are mapped through `dma`.
    pub fn new(dma: &Arc<DmaApi>) -> MapCache {
        MapCache::with_options(dma, MapCacheOptions::default())
    }

    /// An empty cache that maps and unmaps its tables as `options` say.
    pub fn with_options(dma: &Arc<DmaApi>, options: MapCacheOptions) -> MapCache {
        MapCache {
            dma: dma.clone(),
            options,
            tables: HeldTables::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    /// For `map_dma_buf`: the cached table of (`att`, `dir`), or on a miss `build()` (an unmapped
    /// table of the current storage) mapped for `att.device()` and cached.
    ///
    /// Errors: `build`'s, and the DMA API's (nothing is cached then).
    #[inline]
    pub fn map(
        &self,
        att: &Attachment,
        dir: DmaDirection,
        build: impl FnOnce() -> Result<SgTable, DmaBufError>,
    ) -> Result<Arc<SgTable>, DmaBufError> {
        let id = att.id();
        if let Some(hit) = self.tables.get(|k| k.is(id, dir)) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        self.map_slow(att, dir, build)
    }

    #[cold]
    fn map_slow(
        &self,
        att: &Attachment,
        dir: DmaDirection,
        build: impl FnOnce() -> Result<SgTable, DmaBufError>,
    ) -> Result<Arc<SgTable>, DmaBufError> {
        let mut sgt = build()?;
        let dev = att.device().clone();
        self.dma.map_sg(&dev, &mut sgt, dir, self.options.attrs)?;
        if self.options.explicit_sync && !dev.is_coherent() {
            if let Err(e) = self.dma.sync_sg_for_device(&dev, &sgt, dir) {
                self.dma.unmap_sg(&dev, &mut sgt, dir, self.options.attrs)?;
                return Err(e.into());
            }
        }
        let table = Arc::new(sgt);
        let id = att.id();
        // Map calls run under the buffer's resv lock, so no other miss for this key can have
        // raced us; keep the first anyway if one did.
        let epoch = self.epoch();
        let key = Key {
            att_id: id,
            dir,
            dev,
            epoch,
        };
        if let Some(first) = self.tables.insert(key, &table, |k| k.is(id, dir)) {
            let dev = att.device().clone();
            self.unmap_now((
                Key {
                    att_id: id,
                    dir,
                    dev,
                    epoch,
                },
                table,
            ))?;
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(first);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Ok(table)
    }

    /// For `unmap_dma_buf`: drops the importer's reference. A table that is not cached any more
    /// is really unmapped once no importer holds it (rule 2).
    pub fn unmap(&self, sgt: Arc<SgTable>) -> Result<(), DmaBufError> {
        match self.tables.give_back(sgt) {
            Some(z) => self.unmap_now(z),
            None => Ok(()),
        }
    }

    /// For the exporter's `detach`: really unmaps every table of `att` (rule 2 for held ones).
    pub fn detach(&self, att: &Attachment) -> Result<(), DmaBufError> {
        self.invalidate_where(|k| k.att_id == att.id())
    }

    /// Drops every cached table (the storage is about to change): unmaps those no importer
    /// holds, keeps the others as zombies (rule 2), and starts a new epoch (rule 5).
    pub fn invalidate(&self) -> Result<(), DmaBufError> {
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        let r = self.invalidate_where(|_| true);
        self.epoch.fetch_add(1, Ordering::Relaxed);
        r
    }

    /// The epoch tables mapped now belong to (rule 5): 0 for a new cache, one more after each
    /// [`invalidate`](Self::invalidate). Read it with the buffer's resv lock held, before the
    /// move, to know which tables refer to the old storage.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Tables mapped at `epoch` that some importer still holds (cached and held, or zombies):
    /// while it is not 0, the storage they map must not be freed (rule 5).
    pub fn in_use_at(&self, epoch: u64) -> usize {
        self.tables.in_use_where(|k| k.epoch == epoch)
    }

    fn invalidate_where(&self, pred: impl Fn(&Key) -> bool) -> Result<(), DmaBufError> {
        let mut first_err = Ok(());
        for v in self.tables.invalidate_where(pred) {
            if let Err(err) = self.unmap_now(v) {
                if first_err.is_ok() {
                    first_err = Err(err);
                }
            }
        }
        first_err
    }

    /// The exporter's move helper: [`DmaBuf::move_notify`] (dynamic importers drop their
    /// mappings), [`invalidate`](Self::invalidate), and [`DmaBuf::zap_mappings`] (CPU mappings
    /// fault to the new storage). Call it with the resv lock held, before freeing the old
    /// storage, and check [`in_use`](Self::in_use) is 0 first if the old storage is to be freed.
    pub fn buffer_moved(&self, buf: &DmaBuf, resv: &mut ResvGuard<'_>) -> Result<(), DmaBufError> {
        buf.move_notify(resv)?;
        self.invalidate()?;
        buf.zap_mappings();
        Ok(())
    }

    /// Really unmaps a free table; one a holder still shares goes back to the zombies.
    fn unmap_now(&self, entry: (Key, Arc<SgTable>)) -> Result<(), DmaBufError> {
        let opts = self.options;
        release(&self.tables, entry, |key, mut sgt| {
            if opts.explicit_sync && !key.dev.is_coherent() && key.dir != DmaDirection::ToDevice {
                self.dma.sync_sg_for_cpu(&key.dev, &sgt, key.dir)?;
            }
            self.dma.unmap_sg(&key.dev, &mut sgt, key.dir, opts.attrs)?;
            Ok(())
        })
    }

    /// Cached or invalidated tables some importer still holds.
    pub fn in_use(&self) -> usize {
        self.tables.in_use()
    }

    /// Cached tables (mapped for their devices).
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maps served from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Maps that built and mapped a table.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Calls of [`invalidate`](Self::invalidate) (buffer moves).
    pub fn invalidations(&self) -> u64 {
        self.invalidations.load(Ordering::Relaxed)
    }

    /// For `begin_cpu_access`: syncs every cached table of a non-coherent device for the CPU,
    /// with its own direction (rule 3).
    pub fn sync_for_cpu(&self) -> Result<(), DmaBufError> {
        self.sync(true)
    }

    /// For `end_cpu_access`: syncs every cached table of a non-coherent device for its device.
    pub fn sync_for_device(&self) -> Result<(), DmaBufError> {
        self.sync(false)
    }

    fn sync(&self, for_cpu: bool) -> Result<(), DmaBufError> {
        self.tables.for_each(|k, table| {
            if k.dev.is_coherent() {
                return Ok(());
            }
            if for_cpu {
                self.dma.sync_sg_for_cpu(&k.dev, table, k.dir)?;
            } else {
                self.dma.sync_sg_for_device(&k.dev, table, k.dir)?;
            }
            Ok(())
        })
    }
}

impl Drop for MapCache {
    fn drop(&mut self) {
        // The exporter is going away: unmap what is still mapped (held tables cannot be).
        let _ = self.invalidate_where(|_| true);
    }
}

impl fmt::Debug for MapCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapCache")
            .field("cached", &self.len())
            .field("in_use", &self.in_use())
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}
