//! `cma_alloc`: isolating a CMA range and migrating its movable borrowers out.
//!
//! C side: `cma_alloc` in `mm/cma.c`, `alloc_contig_range` and `start_isolate_page_range` in
//! `mm/page_alloc.c` / `mm/page_isolation.c`, `migrate_pages` in `mm/migrate.c`.
//!
//! The steps, the rollback rule and the locking are described in [`crate::cma`]; this module is
//! their implementation. In short: pick a range and isolate it under the zone lock (claim its free
//! blocks, list its borrowers), drop the lock, move each borrower (allocate, copy, `migrate`),
//! and either commit the range or undo every move of the attempt and try the next range.

use crate::addr::{PhysAddr, PAGE_SHIFT};
use crate::cma::{CmaRegion, CMA_MAX_ALIGN_ORDER};
use crate::error::SocError;
use crate::page_alloc::{AllocRequest, MovableOwner, Page, PageAllocator};
use crate::zone::{Alloc, Isolation, Zone, ZoneState};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A borrower found in a range being isolated.
struct Borrower {
    page: Page,
    req: AllocRequest,
    owner: Arc<dyn MovableOwner>,
}

/// A borrower moved by the current attempt, with what it takes to undo the move.
struct Moved {
    old: Page,
    new: Page,
    owner: Arc<dyn MovableOwner>,
    record: Alloc,
}

/// The outcome of looking for a range to isolate.
enum Isolate {
    /// No candidate range is left.
    Exhausted,
    /// Isolated `[start, start + count)` under isolation `id`; these borrowers must move.
    Ready {
        id: u64,
        start: u64,
        borrowers: Vec<Borrower>,
    },
}

fn same_owner(a: &Arc<dyn MovableOwner>, b: &Arc<dyn MovableOwner>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

impl ZoneState {
    /// Steps 1 and 2 of `cma_alloc`: the first range at or after `pos` that can be isolated.
    fn isolate(&mut self, arena: usize, mut pos: u64, count: u64, align: u64, id: u64) -> Isolate {
        let region_end = self.cma[arena].end;
        'candidates: loop {
            let Some(start) = pos.checked_next_multiple_of(align) else {
                return Isolate::Exhausted;
            };
            let end = match start.checked_add(count) {
                Some(e) if e <= region_end => e,
                _ => return Isolate::Exhausted,
            };
            if let Some(hit) = self.cma[arena].first_set(start, end) {
                pos = hit + 1;
                continue;
            }
            if let Some(iso_end) = self.overlaps_isolation(start, end) {
                pos = iso_end;
                continue;
            }
            let (mut claims, mut borrowers) = (Vec::new(), Vec::new());
            let mut q = start;
            while q < end {
                if let Some((pfn, order)) = self.cma[arena].area.free_block_containing(q) {
                    claims.push((pfn, order));
                    q = pfn + (1 << order);
                } else if let Some((pfn, a)) = self.allocated_block_containing(q) {
                    let block_end = pfn + (1 << a.order);
                    match &a.owner {
                        Some(owner) if self.overlaps_isolation(pfn, block_end).is_none() => {
                            let page = Page {
                                addr: PhysAddr(pfn << PAGE_SHIFT),
                                order: a.order,
                            };
                            borrowers.push(Borrower {
                                page,
                                req: a.req,
                                owner: owner.clone(),
                            });
                        }
                        _ => {
                            pos = block_end;
                            continue 'candidates;
                        }
                    }
                    q = block_end;
                } else {
                    pos = q + 1;
                    continue 'candidates;
                }
            }
            for &(pfn, order) in &claims {
                self.cma[arena].area.take_block(pfn, order);
            }
            self.isolations.push(Isolation {
                id,
                start,
                end,
                held: claims,
            });
            return Isolate::Ready {
                id,
                start,
                borrowers,
            };
        }
    }
}

impl PageAllocator {
    /// `cma_alloc`: `count` physically contiguous pages of region `region`, the first aligned to
    /// `2^align_order` pages, migrating movable borrowers out of the way (see the module
    /// documentation for the steps and what happens on failure).
    ///
    /// Errors: unknown region, `count == 0`, `align_order` above [`CMA_MAX_ALIGN_ORDER`] (`EINVAL`);
    /// every candidate range blocked by a pinned borrower ([`SocError::Busy`]); otherwise
    /// [`SocError::NoMemory`].
    pub fn cma_alloc(
        &self,
        region: &str,
        count: u64,
        align_order: u32,
    ) -> Result<PhysAddr, SocError> {
        let r = self.region(region)?;
        if count == 0 {
            return Err(SocError::ZeroSize("cma_alloc page count"));
        }
        if align_order > CMA_MAX_ALIGN_ORDER {
            return Err(SocError::InvalidArgument(format!(
                "cma_alloc align_order {align_order} is above {CMA_MAX_ALIGN_ORDER}"
            )));
        }
        let result = self.cma_alloc_ranges(r, count, 1u64 << align_order);
        // Relaxed: statistics counters, each independent, read only for reporting.
        let counter = if result.is_ok() {
            &self.cma_allocs
        } else {
            &self.cma_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn cma_alloc_ranges(
        &self,
        r: &CmaRegion,
        count: u64,
        align: u64,
    ) -> Result<PhysAddr, SocError> {
        let zone = &self.zones[r.zone];
        let mut pos = r.start;
        let mut refusal: Option<SocError> = None;
        loop {
            let id = self.next_isolation.fetch_add(1, Ordering::Relaxed);
            let isolated = zone.state.lock().isolate(r.arena, pos, count, align, id);
            let Isolate::Ready {
                id,
                start,
                borrowers,
            } = isolated
            else {
                break;
            };
            match self.migrate_all(zone, borrowers) {
                Ok(moved) => {
                    self.commit(zone, r.arena, id, moved);
                    return Ok(PhysAddr(start << PAGE_SHIFT));
                }
                Err((blocker, err)) => {
                    let mut st = zone.state.lock();
                    if let Some(iso) = st.take_isolation(id) {
                        for (pfn, order) in iso.held {
                            st.cma[r.arena].area.free(pfn, order);
                        }
                    }
                    drop(st);
                    pos = (start + 1).max(blocker.pfn() + blocker.pages());
                    if matches!(err, SocError::Busy(_)) || refusal.is_none() {
                        refusal = Some(err);
                    }
                }
            }
        }
        let what = format!(
            "CMA region `{}`: no range of {count} pages aligned to {align} pages",
            r.name
        );
        Err(match refusal {
            Some(SocError::Busy(why)) => {
                SocError::Busy(format!("{what} is free of pinned pages ({why})"))
            }
            Some(e) => SocError::NoMemory(format!("{what} could be emptied ({e})")),
            None => SocError::NoMemory(format!("{what} is free")),
        })
    }

    /// Step 3: moves every borrower out; on the first failure undoes the moves (step 4) and returns
    /// the block that could not move with the reason.
    fn migrate_all(
        &self,
        zone: &Zone,
        borrowers: Vec<Borrower>,
    ) -> Result<Vec<Moved>, (Page, SocError)> {
        let mut moved: Vec<Moved> = Vec::with_capacity(borrowers.len());
        for b in borrowers {
            match self.migrate_one(zone, &b) {
                Ok(Some(m)) => moved.push(m),
                Ok(None) => {}
                Err(e) => {
                    for m in moved.into_iter().rev() {
                        self.undo_move(zone, m);
                    }
                    return Err((b.page, e));
                }
            }
        }
        Ok(moved)
    }

    /// Moves one borrower; `Ok(None)` if its owner freed it meanwhile.
    fn migrate_one(&self, zone: &Zone, b: &Borrower) -> Result<Option<Moved>, SocError> {
        let old = b.page;
        let new = self.alloc_inner(&b.req, Some(b.owner.clone()))?;
        let migrated = self
            .mem
            .copy(old.addr, new.addr, old.size())
            .and_then(|()| b.owner.migrate(old, new));
        let mut st = zone.state.lock();
        let still_ours = st.allocated.get(&old.pfn()).is_some_and(|a| {
            a.order == old.order && a.owner.as_ref().is_some_and(|o| same_owner(o, &b.owner))
        });
        let record = match migrated {
            Ok(()) if still_ours => st.allocated.remove(&old.pfn()),
            _ => None,
        };
        match (migrated, record) {
            (Ok(()), Some(record)) => {
                st.account_free(old.pfn(), &record);
                st.release_block(old.pfn(), old.order);
                Ok(Some(Moved {
                    old,
                    new,
                    owner: b.owner.clone(),
                    record,
                }))
            }
            // The owner freed `old` meanwhile (it went to the isolation) and now owns `new`.
            (Ok(()), None) => Ok(None),
            (Err(e), _) => {
                drop(st);
                // The owner stayed on `old` and never saw `new`: the block is ours to free, and a
                // failure here would mean a double free by the owner, which `free_pages` refuses.
                let _ = self.free_pages(new);
                if still_ours {
                    Err(e)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Step 4 for one moved borrower: move it back onto its old pages if it still owns the
    /// replacement and agrees; otherwise it stays on the replacement (data intact).
    fn undo_move(&self, zone: &Zone, m: Moved) {
        let owns_new = self.zone_holding(m.new).is_some_and(|z| {
            z.state.lock().allocated.get(&m.new.pfn()).is_some_and(|a| {
                a.order == m.new.order && a.owner.as_ref().is_some_and(|o| same_owner(o, &m.owner))
            })
        });
        let back = owns_new
            && self.mem.copy(m.new.addr, m.old.addr, m.old.size()).is_ok()
            && m.owner.migrate(m.new, m.old).is_ok();
        if !back {
            // Relaxed: statistics counter.
            self.migrations.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut st = zone.state.lock();
        let (pfn, order) = (m.old.pfn(), m.old.order);
        // The old block joined this attempt's isolation when it was migrated, and the isolation
        // is only released after every undo.
        let held = st
            .isolations
            .iter_mut()
            .find(|i| i.held.contains(&(pfn, order)));
        debug_assert!(held.is_some(), "undone block {pfn:#x} is not held");
        if let Some(iso) = held {
            iso.held.retain(|&h| h != (pfn, order));
        }
        st.account_alloc(pfn, &m.record);
        st.allocated.insert(pfn, m.record);
        drop(st);
        let _ = self.free_pages(m.new);
        self.rollbacks.fetch_add(1, Ordering::Relaxed);
    }

    fn zone_holding(&self, page: Page) -> Option<&Zone> {
        self.zones
            .iter()
            .find(|z| (z.start..z.end).contains(&page.pfn()))
    }

    /// Step 5: the range is empty; hand it out.
    fn commit(&self, zone: &Zone, arena: usize, id: u64, moved: Vec<Moved>) {
        let mut st = zone.state.lock();
        let Some(iso) = st.take_isolation(id) else {
            return;
        };
        let c = &mut st.cma[arena];
        for (pfn, order) in iso.held {
            let end = pfn + (1 << order);
            c.area.free_range(pfn, pfn.max(iso.start).min(end));
            c.area.free_range(end.min(iso.end).max(pfn), end);
        }
        c.set_range(iso.start, iso.end, true);
        c.used += iso.end - iso.start;
        self.migrations
            .fetch_add(moved.len() as u64, Ordering::Relaxed);
    }
}
