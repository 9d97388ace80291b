//! What a device's traffic cost the machine, counted where it happens: the bytes its DMA
//! engine moved per memory bank, and the CPU cache maintenance done on its behalf (the
//! `dma_sync_*` and map/unmap syncs of a non-coherent device).
//!
//! The bank counts are added by every successful access of the engine (each physical run
//! attributed to the bank(s) it lies in); the cache counts by the DMA layer each time it cleans
//! or invalidates for this device (`Device::note_cache_maintenance`). Counters only grow;
//! readers take differences. Relaxed atomics: no lock, no ordering with the bytes themselves.

use crate::addr::PhysAddr;
use crate::phys::PhysMem;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Which cache maintenance a sync did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOp {
    /// Dirty lines written back (`dcache_clean_poc`; for the device, `DMA_TO_DEVICE`).
    Clean,
    /// Lines discarded (`dcache_inval_poc`; for the CPU, `DMA_FROM_DEVICE`).
    Invalidate,
    /// Both (`dcache_clean_inval_poc`): counted as a clean and an invalidate.
    Flush,
}

/// Cache maintenance done for one device, since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheMaintenance {
    /// Clean (or flush) operations.
    pub clean_ops: u64,
    /// Bytes cleaned (the range asked for, whole).
    pub clean_bytes: u64,
    /// Invalidate (or flush) operations.
    pub invalidate_ops: u64,
    /// Bytes invalidated.
    pub invalidate_bytes: u64,
}

/// The counters (module doc).
#[derive(Debug)]
pub(crate) struct Traffic {
    bank_bytes: Vec<AtomicU64>,
    clean_ops: AtomicU64,
    clean_bytes: AtomicU64,
    invalidate_ops: AtomicU64,
    invalidate_bytes: AtomicU64,
}

impl Traffic {
    pub(crate) fn new(banks: usize) -> Traffic {
        Traffic {
            bank_bytes: (0..banks).map(|_| AtomicU64::new(0)).collect(),
            clean_ops: AtomicU64::new(0),
            clean_bytes: AtomicU64::new(0),
            invalidate_ops: AtomicU64::new(0),
            invalidate_bytes: AtomicU64::new(0),
        }
    }

    /// Counts an access's physical runs against their banks.
    pub(crate) fn moved(&self, mem: &PhysMem, runs: &[(PhysAddr, u64)]) {
        for &(pa, len) in runs {
            let (mut at, end) = (pa.0, pa.0.saturating_add(len));
            while at < end {
                let Some(i) = mem.banks().iter().position(|b| b.contains(PhysAddr(at), 1)) else {
                    break;
                };
                let upto = mem.banks()[i].end().0.min(end);
                self.bank_bytes[i].fetch_add(upto - at, Relaxed);
                at = upto;
            }
        }
    }

    pub(crate) fn bank_bytes(&self) -> Vec<u64> {
        self.bank_bytes.iter().map(|b| b.load(Relaxed)).collect()
    }

    pub(crate) fn note(&self, op: CacheOp, bytes: u64) {
        if matches!(op, CacheOp::Clean | CacheOp::Flush) {
            self.clean_ops.fetch_add(1, Relaxed);
            self.clean_bytes.fetch_add(bytes, Relaxed);
        }
        if matches!(op, CacheOp::Invalidate | CacheOp::Flush) {
            self.invalidate_ops.fetch_add(1, Relaxed);
            self.invalidate_bytes.fetch_add(bytes, Relaxed);
        }
    }

    pub(crate) fn cache(&self) -> CacheMaintenance {
        CacheMaintenance {
            clean_ops: self.clean_ops.load(Relaxed),
            clean_bytes: self.clean_bytes.load(Relaxed),
            invalidate_ops: self.invalidate_ops.load(Relaxed),
            invalidate_bytes: self.invalidate_bytes.load(Relaxed),
        }
    }
}
