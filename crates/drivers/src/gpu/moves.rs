//! Moving an object between placements (`ttm_bo_handle_move_mem`, `amdgpu_bo_move`).
//!
//! C side: `drivers/gpu/drm/ttm/ttm_bo.c` (`ttm_bo_handle_move_mem`), `ttm_bo_util.c`
//! (`ttm_bo_move_accel_cleanup`, `ttm_buffer_object_transfer`: ghost objects),
//! `drivers/gpu/drm/amd/amdgpu/amdgpu_ttm.c` (`amdgpu_bo_move`, `amdgpu_move_blit` with the copy
//! engine), `amdgpu_object.c` (`amdgpu_bo_move_notify`).
//!
//! The steps of a move are numbered in the [module doc](super) ("A move"); [`move_locked`]
//! follows them. A move between GTT and SYSTEM that can keep its pages only changes the GPU
//! binding (`rebind`): no copy, and importers' tables stay valid.
//!
//! Every move is recorded on the object ([`TtmMove`], read with
//! [`GpuBo::last_move`](super::GpuBo::last_move)) with the copy's cost on the machine's time
//! model ([`soc::timing::copy_ns`] for the GPU's engine; 0 for a rebind), and the total in
//! [`TtmStats::move_ns`](super::TtmStats::move_ns), as the constraint exporter records its
//! migrations' `copy_ns`.

use super::bo::{satisfies, BoInner, GpuMap, Placement, Resident};
use super::ttm::{alloc_resident, evict_one, free_resident, Target, TtmMove};
use super::{GpuCore, GpuError};
use dmabuf::DmaBuf;
use fence::{DmaResvUsage, FenceError, ResvGuard};
use std::sync::Arc;
use uapi::Errno;

/// The dma-buf `bo` is exported as, if it is alive.
pub(crate) fn exported_buf(bo: &BoInner) -> Option<DmaBuf> {
    bo.state.lock().export.as_ref()?.buf.upgrade()
}

/// Copies `len` bytes from `src` to `dst` with the GPU's copy engine, mapping SYSTEM storage for
/// the copy only.
fn copy(core: &GpuCore, src: &Resident, dst: &Resident, len: u64) -> Result<(), GpuError> {
    let tmp_src = match &src.kmap {
        Some(_) => None,
        None => Some(GpuMap::new(core, &src.storage)?),
    };
    let tmp_dst = match &dst.kmap {
        Some(_) => None,
        None => match GpuMap::new(core, &dst.storage) {
            Ok(m) => Some(m),
            Err(e) => {
                if let Some(m) = tmp_src {
                    let _ = m.unmap(core);
                }
                return Err(e);
            }
        },
    };
    let s = src.kmap.as_ref().or(tmp_src.as_ref()).map(GpuMap::segments);
    let d = dst.kmap.as_ref().or(tmp_dst.as_ref()).map(GpuMap::segments);
    let res = match (s, d) {
        (Some(s), Some(d)) => super::ring::walk_pairs(&s, &d, len, |a, b, n| {
            core.dev.dma_copy(a, b, n).map_err(GpuError::from)
        }),
        _ => Err(GpuError::InvalidArgument("unmapped copy side".into())),
    };
    for m in [tmp_src, tmp_dst].into_iter().flatten() {
        m.unmap(core)?;
    }
    res
}

/// Moves a locked object to `t` (the move steps of [`super`]). A no-op if it is already there.
pub(crate) fn move_locked(
    core: &Arc<GpuCore>,
    bo: &Arc<BoInner>,
    g: &mut ResvGuard<'_>,
    t: Target,
    exclude: &[u64],
) -> Result<(), GpuError> {
    {
        let st = bo.state.lock();
        let Some(res) = st.res.as_ref() else {
            return Err(GpuError::InvalidArgument(format!(
                "buffer object {} has no storage of its own",
                bo.id
            )));
        };
        if satisfies(res, &t) {
            return Ok(());
        }
        if st.pins > 0 {
            return Err(GpuError::Busy(format!(
                "buffer object {} is pinned in {}",
                bo.id, res.placement
            )));
        }
    }
    // Step 1: wait for every user.
    match bo
        .resv
        .wait_timeout(DmaResvUsage::Bookkeep, None, Some(core.cfg.evict_timeout))
    {
        Ok(_) => {}
        Err(fence::ResvError::Fence(FenceError::Timeout)) => {
            return Err(GpuError::Busy(format!(
                "buffer object {} still busy after {:?}",
                bo.id, core.cfg.evict_timeout
            )))
        }
        Err(e) => return Err(e.into()),
    }
    let (old_placement, pages_stay) = {
        let st = bo.state.lock();
        let res = st.res.as_ref().expect("checked above");
        let fits = res.storage.fits(t.limit, t.contiguous);
        (res.placement, fits && t.placement != Placement::Vram)
    };
    if pages_stay {
        return rebind(core, bo, g, old_placement, t.placement, exclude);
    }
    // Step 2: new storage.
    let new = alloc_resident(core, bo, t, exclude)?;
    // Steps 3-5: fence, notifications, copy; the fence signals whatever happens.
    let fence = core.move_fence();
    let buf = exported_buf(bo);
    let cache = bo.state.lock().export.as_ref().map(|e| e.cache.clone());
    // Importers' tables of the old storage belong to this epoch of the export's cache.
    let old_epoch = cache.as_ref().map(|c| c.epoch());
    let moved = (|| -> Result<(), GpuError> {
        g.reserve_fences(1)?;
        g.add_fence(&fence, DmaResvUsage::Kernel)?;
        match (&buf, &cache) {
            // move_notify, drop the cached tables, zap CPU mmaps (`dmabuf::MapCache`).
            (Some(b), Some(c)) => c.buffer_moved(b, g)?,
            (Some(b), None) => {
                b.move_notify(g)?;
                b.zap_mappings();
            }
            _ => {}
        }
        super::vm::invalidate_bo(core, bo, g);
        let st = bo.state.lock();
        copy(core, st.res.as_ref().expect("resident"), &new, bo.size)
    })();
    if let Err(e) = moved {
        let _ = fence.set_error(Errno::EIO);
        let _ = fence.signal();
        let _ = free_resident(core, new);
        drop(buf);
        return Err(e);
    }
    let _ = fence.signal();
    // Step 6: switch, free or keep the old storage as a ghost; record the move and its cost.
    let new_placement = new.placement;
    let copy_ns = soc::timing::copy_ns(core.dma.soc(), core.dev.name(), bo.size);
    let to_free = {
        let mut st = bo.state.lock();
        let old = st.res.replace(new).expect("resident");
        st.gen += 1;
        st.moves += 1;
        st.last_move = Some(TtmMove {
            seq: st.moves,
            from: old.placement,
            to: new_placement,
            bytes: bo.size,
            copy_ns,
            engine: core.dev.name().to_string(),
        });
        let held = cache
            .as_ref()
            .zip(old_epoch)
            .is_some_and(|(c, e)| c.in_use_at(e) > 0);
        if held {
            st.ghosts.push((old_epoch.unwrap_or_default(), old));
            None
        } else {
            Some(old)
        }
    };
    core.ttm.lru_insert(bo, new_placement);
    let len = bo.size;
    core.ttm.count(|s| {
        s.moves += 1;
        s.moved_bytes += len;
        s.move_ns = s.move_ns.saturating_add(copy_ns);
        s.ghosts += u64::from(to_free.is_none());
    });
    if let Some(old) = to_free {
        free_resident(core, old)?;
    }
    drop(buf); // rule 5: the last reference may release; no lock of ours is held
    Ok(())
}

/// GTT <-> SYSTEM with the same pages: only the GPU binding changes.
fn rebind(
    core: &Arc<GpuCore>,
    bo: &Arc<BoInner>,
    g: &mut ResvGuard<'_>,
    from: Placement,
    to: Placement,
    exclude: &[u64],
) -> Result<(), GpuError> {
    let len = bo.size;
    if to == Placement::Gtt {
        let mut excl = exclude.to_vec();
        excl.push(bo.id);
        while !core.ttm.charge(Placement::Gtt, len) {
            evict_one(core, Placement::Gtt, &excl)?;
        }
        let mapped = {
            let st = bo.state.lock();
            GpuMap::new(core, &st.res.as_ref().expect("resident").storage)
        };
        let m = match mapped {
            Ok(m) => m,
            Err(e) => {
                core.ttm.uncharge(Placement::Gtt, len);
                return Err(e);
            }
        };
        let mut st = bo.state.lock();
        let res = st.res.as_mut().expect("resident");
        res.kmap = Some(m);
        res.placement = Placement::Gtt;
    } else {
        // Leaving GTT: the GPU's VM mappings of these pages go with the binding.
        super::vm::invalidate_bo(core, bo, g);
        let old = {
            let mut st = bo.state.lock();
            let res = st.res.as_mut().expect("resident");
            res.placement = to;
            res.kmap.take()
        };
        if let Some(m) = old {
            m.unmap(core)?;
        }
        if from == Placement::Gtt {
            core.ttm.uncharge(Placement::Gtt, len);
        }
    }
    {
        let mut st = bo.state.lock();
        st.moves += 1;
        st.last_move = Some(TtmMove {
            seq: st.moves,
            from,
            to,
            bytes: 0,
            copy_ns: 0,
            engine: core.dev.name().to_string(),
        });
    }
    core.ttm.lru_insert(bo, to);
    core.ttm.count(|s| s.moves += 1);
    Ok(())
}
