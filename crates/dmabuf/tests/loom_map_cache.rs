//! loom models of the mapping cache's zombie protocol (`dmabuf::map_cache::HeldTables`): every
//! interleaving of a holder giving a table back against the exporter invalidating the cache.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dmabuf --test loom_map_cache --release`.
//! Property of every model: each cached value is torn down exactly once, and when everyone is
//! done no zombie is left and nothing is in use.
#![cfg(loom)]

use dmabuf::map_cache::{release, HeldTables};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use std::sync::Arc;

/// Tears an entry down, counting teardowns.
fn free(tables: &HeldTables<u32, u32>, entry: (u32, Arc<u32>), freed: &AtomicUsize) {
    release(tables, entry, |_, _| {
        freed.fetch_add(1, Ordering::SeqCst);
        Ok::<(), ()>(())
    })
    .unwrap();
}

/// The end state every model must reach.
fn settled(tables: &HeldTables<u32, u32>, freed: &AtomicUsize, cached: usize) {
    assert_eq!(
        freed.load(Ordering::SeqCst),
        cached,
        "each table torn down exactly once"
    );
    assert_eq!(tables.zombies(), 0, "no zombie outlives its last holder");
    assert_eq!(tables.in_use(), 0);
}

/// An importer unmaps (gives its table back) while the exporter moves the buffer (invalidates):
/// whichever runs first, the table is unmapped exactly once, by one of them.
#[test]
fn give_back_races_invalidate() {
    loom::model(|| {
        let tables = loom::sync::Arc::new(HeldTables::<u32, u32>::new());
        let freed = loom::sync::Arc::new(AtomicUsize::new(0));
        assert!(tables.insert(1, &Arc::new(10), |k| *k == 1).is_none());
        let held = tables.get(|k| *k == 1).unwrap();
        let importer = {
            let (tables, freed) = (tables.clone(), freed.clone());
            thread::spawn(move || {
                if let Some(z) = tables.give_back(held) {
                    free(&tables, z, &freed);
                }
            })
        };
        for v in tables.invalidate_where(|_| true) {
            free(&tables, v, &freed);
        }
        importer.join().unwrap();
        settled(&tables, &freed, 1);
    });
}

/// Two holders of one table (two maps of one attachment and direction) give it back while it is
/// invalidated: only the last give-back of a zombie unmaps it.
#[test]
fn two_holders_and_an_invalidate() {
    loom::model(|| {
        let tables = loom::sync::Arc::new(HeldTables::<u32, u32>::new());
        let freed = loom::sync::Arc::new(AtomicUsize::new(0));
        assert!(tables.insert(1, &Arc::new(10), |k| *k == 1).is_none());
        let a = tables.get(|k| *k == 1).unwrap();
        let b = tables.get(|k| *k == 1).unwrap();
        let importer = {
            let (tables, freed) = (tables.clone(), freed.clone());
            thread::spawn(move || {
                for held in [a, b] {
                    if let Some(z) = tables.give_back(held) {
                        free(&tables, z, &freed);
                    }
                }
            })
        };
        for v in tables.invalidate_where(|_| true) {
            free(&tables, v, &freed);
        }
        importer.join().unwrap();
        settled(&tables, &freed, 1);
    });
}

/// A map that hits the cache races the invalidate: the importer either got the table before it
/// was invalidated (and unmaps a zombie) or misses; never a table that was already unmapped.
#[test]
fn lookup_races_invalidate() {
    loom::model(|| {
        let tables = loom::sync::Arc::new(HeldTables::<u32, u32>::new());
        let freed = loom::sync::Arc::new(AtomicUsize::new(0));
        assert!(tables.insert(1, &Arc::new(10), |k| *k == 1).is_none());
        let importer = {
            let (tables, freed) = (tables.clone(), freed.clone());
            thread::spawn(move || {
                if let Some(held) = tables.get(|k| *k == 1) {
                    assert_eq!(
                        freed.load(Ordering::SeqCst),
                        0,
                        "a hit on an unmapped table"
                    );
                    if let Some(z) = tables.give_back(held) {
                        free(&tables, z, &freed);
                    }
                }
            })
        };
        for v in tables.invalidate_where(|_| true) {
            free(&tables, v, &freed);
        }
        importer.join().unwrap();
        settled(&tables, &freed, 1);
    });
}
