//! System pages for a buffer object's GTT or SYSTEM storage (`ttm_pool`), and clearing new
//! storage.
//!
//! C side: `drivers/gpu/drm/ttm/ttm_pool.c` (`ttm_pool_alloc`: the largest page blocks first;
//! with `dma_alloc_contiguous` behind it for a device that needs one run), `mm/cma.c`
//! (`cma_alloc` and `CONFIG_CMA_ALIGNMENT`).
//!
//! No locking of its own: the page allocator and CMA regions lock themselves; callers hold the
//! object's reservation lock ([`super::ttm`]).

use super::bo::Storage;
use super::{GpuCore, GpuError, Placement};
use soc::{AllocRequest, PhysChunk, SocError, MAX_ORDER, PAGE_SHIFT};

/// `CONFIG_CMA_ALIGNMENT`: the largest alignment order a contiguous allocation asks CMA for.
const CMA_ALIGNMENT: u32 = 8;

/// System memory for `len` bytes below `limit` (inclusive): scattered buddy blocks (largest
/// first, as the system heap allocates), or, `contiguous`, one run (`ttm_pool` with
/// `dma_alloc_contiguous` behind it): a CMA region wholly or partly below `limit` first (the
/// exact page count, aligned to the size's order up to `CONFIG_CMA_ALIGNMENT`), else one buddy
/// block if the size fits `MAX_ORDER`. `ENOMEM` says what was tried.
pub(crate) fn alloc_chunks(
    core: &GpuCore,
    len: u64,
    limit: u64,
    contiguous: bool,
) -> Result<Vec<PhysChunk>, GpuError> {
    let soc = core.dma.soc();
    let pages = soc.pages();
    let npages = len >> PAGE_SHIFT;
    let req = |order: u32| {
        let r = AllocRequest::new(order);
        if limit == u64::MAX {
            r
        } else {
            r.below(limit)
        }
    };
    let below = if limit == u64::MAX {
        String::new()
    } else {
        format!(" below {limit:#x}")
    };
    if contiguous {
        // Order of the smallest block holding it (`get_order`).
        let order = u64::BITS - (npages.max(1) - 1).leading_zeros();
        let mut tried = Vec::new();
        for r in pages.cma_regions() {
            if r.base.0 > limit {
                tried.push(format!("{} starts above the limit", r.name));
                continue;
            }
            match pages.cma_alloc(&r.name, npages, order.min(CMA_ALIGNMENT)) {
                Ok(addr) if addr.0 + (len - 1) <= limit => {
                    return Ok(vec![PhysChunk::Cma {
                        region: r.name,
                        addr,
                        count: npages,
                    }]);
                }
                Ok(addr) => {
                    let _ = pages.cma_release(&r.name, addr, npages);
                    tried.push(format!(
                        "{}: the free range at {addr:#x} is above it",
                        r.name
                    ));
                }
                Err(e) => tried.push(format!("{}: {e}", r.name)),
            }
        }
        if order <= MAX_ORDER {
            match pages.alloc_pages(&req(order)) {
                Ok(p) => return Ok(vec![PhysChunk::Pages(p)]),
                Err(e) => tried.push(format!("a page block of order {order}: {e}")),
            }
        } else {
            tried.push(format!(
                "a page block: order {order} is above MAX_ORDER ({MAX_ORDER})"
            ));
        }
        if tried.is_empty() {
            tried.push("no CMA region".into());
        }
        return Err(GpuError::NoSpace {
            placement: Placement::System,
            msg: format!(
                "{} contiguous{below}: {}",
                soc::human_size(len),
                tried.join("; ")
            ),
        });
    }
    let no_space = |e: SocError| GpuError::NoSpace {
        placement: Placement::System,
        msg: format!("{len:#x} bytes of pages{below}: {e}"),
    };
    let mut out: Vec<PhysChunk> = Vec::new();
    let mut left = npages;
    let mut order = MAX_ORDER.min(63 - npages.leading_zeros());
    while left > 0 {
        while (1u64 << order) > left {
            order -= 1;
        }
        match pages.alloc_pages(&req(order)) {
            Ok(p) => {
                left -= p.pages();
                out.push(PhysChunk::Pages(p));
            }
            Err(e) if order == 0 => {
                for c in out {
                    let _ = core.dma.free_chunk(c);
                }
                return Err(no_space(e));
            }
            Err(_) => order -= 1,
        }
    }
    Ok(out)
}

/// Zeroes new storage in memory, and drops whatever the CPU cache still holds of its previous
/// owner.
pub(crate) fn clear(core: &GpuCore, storage: &Storage) -> Result<(), GpuError> {
    let soc = core.dma.soc();
    for (pa, n) in storage.runs() {
        soc.mem().fill(pa, n, 0)?;
        if !storage.is_iomem() {
            soc.cpu().invalidate(pa, n)?;
        }
    }
    Ok(())
}
