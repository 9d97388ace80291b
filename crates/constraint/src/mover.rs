//! Movers: what copies a buffer's bytes from its old memory to its new memory.
//!
//! C side: TTM's `ttm_bo_move_memcpy` (the CPU) and a driver's `ttm_device_funcs.move` with a
//! copy engine (`amdgpu_copy_buffer`, `nouveau_bo_move_m2mf`).
//!
//! A [`Mover`] copies between two lists of physical runs. [`DmaEngineMover`] maps both sides for
//! a DMA-capable device with the DMA API (so the checker sees mapped, well-synced accesses) and
//! lets the device's engine copy ([`soc::Device::dma_copy`]); [`CpuMover`] copies with the CPU
//! after cleaning its cache, the fallback when no engine reaches both sides.

use super::explain::ConstraintError;
use super::negotiate::Piece;
use dma::{DmaApi, DmaAttrs, DmaDirection, SegmentLimits, SgBacking, SgTable};
use soc::{Device, DmaAddr, PhysAddr};
use std::fmt;
use std::sync::Arc;

/// One side of a copy: physical runs in order, and whether they have struct pages.
#[derive(Clone, Copy, Debug)]
pub struct CopySide<'a> {
    /// The runs.
    pub runs: &'a [(PhysAddr, u64)],
    /// Memory without struct pages (mapped as a resource).
    pub iomem: bool,
}

/// Copies buffer contents between two placements.
///
/// - Called by the migration ([`move_backing`](super::move_backing)) with the buffer's resv lock
///   held, after every access drained; may block; must not take the resv lock.
/// - Copies the first `len` bytes of `from` to `to`, leaving no stale CPU cache line over `to`.
/// - Returns the name of the engine that copied. On error no byte of `from` changed (`to` may
///   be partly written; the caller frees it).
pub trait Mover: Send + Sync + fmt::Debug {
    /// Copies `len` bytes (see the trait doc).
    fn copy(
        &self,
        dma: &DmaApi,
        from: CopySide<'_>,
        to: CopySide<'_>,
        len: u64,
    ) -> Result<String, ConstraintError>;

    /// Copies `pieces` (offsets into `from` and `to`, a layout conversion); returns the engine.
    /// The default copies piece by piece with [`copy`](Self::copy); an engine that maps its
    /// sides overrides it to map once.
    fn copy_pieces(
        &self,
        dma: &DmaApi,
        from: CopySide<'_>,
        to: CopySide<'_>,
        pieces: &[Piece],
    ) -> Result<String, ConstraintError> {
        let mut engine = String::from("cpu");
        for p in pieces {
            let src = slice_runs(from.runs, p.src, p.len)?;
            let dst = slice_runs(to.runs, p.dst, p.len)?;
            engine = self.copy(
                dma,
                CopySide {
                    runs: &src,
                    iomem: from.iomem,
                },
                CopySide {
                    runs: &dst,
                    iomem: to.iomem,
                },
                p.len,
            )?;
        }
        Ok(engine)
    }
}

/// The runs covering bytes `off..off + len` of `runs` (taken in order).
pub(crate) fn slice_runs(
    runs: &[(PhysAddr, u64)],
    off: u64,
    len: u64,
) -> Result<Vec<(PhysAddr, u64)>, ConstraintError> {
    let mut out = Vec::new();
    let (mut pos, mut left) = (0u64, len);
    for &(pa, n) in runs {
        if left == 0 {
            break;
        }
        let end = pos + n;
        if off + (len - left) < end {
            let start = off + (len - left) - pos;
            let take = (n - start).min(left);
            out.push((PhysAddr(pa.0 + start), take));
            left -= take;
        }
        pos = end;
    }
    if left > 0 {
        return Err(ConstraintError::NoMemory(format!(
            "a copy piece at {off:#x} (+{len:#x}) runs past the buffer's memory"
        )));
    }
    Ok(out)
}

/// The CPU copies: clean its cache over `from`, copy in memory, drop its lines over `to`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuMover;

impl Mover for CpuMover {
    fn copy(
        &self,
        dma: &DmaApi,
        from: CopySide<'_>,
        to: CopySide<'_>,
        len: u64,
    ) -> Result<String, ConstraintError> {
        let soc = dma.soc();
        for &(pa, n) in from.runs {
            soc.cpu().clean(pa, n)?;
        }
        for &(pa, n) in to.runs {
            soc.cpu().invalidate(pa, n)?;
        }
        walk_pairs(from.runs, to.runs, len, |s, d, n| {
            soc.mem().copy(PhysAddr(s), PhysAddr(d), n)?;
            Ok(())
        })?;
        Ok("cpu".to_string())
    }
}

/// A device's DMA engine copies (seed 000: "copy over the data from the old buffer to the new
/// one"), both sides mapped for it through the DMA API.
///
/// With `device: None` the first device (in SoC order) behind an IOMMU whose DMA mask spans the
/// buffer is used, else the first direct-mapped one whose mask covers both sides. If none can
/// reach both sides and `cpu_fallback` is set, the CPU copies.
#[derive(Clone, Debug, Default)]
pub struct DmaEngineMover {
    /// The copy engine's device name (`None`: choose).
    pub device: Option<String>,
    /// Copy with the CPU when no engine reaches both sides.
    pub cpu_fallback: bool,
}

impl DmaEngineMover {
    /// Chooses an engine; with a CPU fallback.
    pub fn auto() -> DmaEngineMover {
        DmaEngineMover {
            device: None,
            cpu_fallback: true,
        }
    }

    /// The engine of `device` only.
    pub fn device(device: &str) -> DmaEngineMover {
        DmaEngineMover {
            device: Some(device.to_string()),
            cpu_fallback: false,
        }
    }

    fn reaches(dev: &Device, len: u64, sides: [&[(PhysAddr, u64)]; 2]) -> bool {
        if dev.needs_contiguous() && sides.iter().any(|s| s.len() > 1) {
            return false;
        }
        if dev.iommu_domain().is_some() {
            // Both sides mapped at once below the mask.
            return dev.dma_mask() / 2 >= len;
        }
        sides
            .iter()
            .flat_map(|s| s.iter())
            .all(|&(pa, n)| pa.0 + (n - 1) <= dev.dma_mask())
    }

    fn choose(
        &self,
        dma: &DmaApi,
        len: u64,
        sides: [&[(PhysAddr, u64)]; 2],
    ) -> Option<Arc<Device>> {
        let devices = dma.soc().devices();
        if let Some(name) = &self.device {
            return devices.iter().find(|d| d.name() == name).cloned();
        }
        let mmu = devices
            .iter()
            .find(|d| d.iommu_domain().is_some() && Self::reaches(d, len, sides));
        mmu.or_else(|| devices.iter().find(|d| Self::reaches(d, len, sides)))
            .cloned()
    }
}

fn table(side: CopySide<'_>, len: u64, dev: &Device) -> Result<SgTable, ConstraintError> {
    let mut runs = Vec::new();
    let mut left = len;
    for &(pa, n) in side.runs {
        if left == 0 {
            break;
        }
        let n = n.min(left);
        runs.push((pa, n));
        left -= n;
    }
    let backing = if side.iomem {
        SgBacking::Resource
    } else {
        SgBacking::Pages
    };
    Ok(SgTable::from_ranges(
        &runs,
        backing,
        SegmentLimits::of_device(dev)?,
    )?)
}

impl Mover for DmaEngineMover {
    /// A plain copy is one piece: both sides mapped once, the engine walks them together.
    fn copy(
        &self,
        dma: &DmaApi,
        from: CopySide<'_>,
        to: CopySide<'_>,
        len: u64,
    ) -> Result<String, ConstraintError> {
        self.copy_pieces(
            dma,
            from,
            to,
            &[Piece {
                src: 0,
                dst: 0,
                len,
            }],
        )
    }

    fn copy_pieces(
        &self,
        dma: &DmaApi,
        from: CopySide<'_>,
        to: CopySide<'_>,
        pieces: &[Piece],
    ) -> Result<String, ConstraintError> {
        let src_len = pieces.iter().map(|p| p.src + p.len).max().unwrap_or(0);
        let dst_len = pieces.iter().map(|p| p.dst + p.len).max().unwrap_or(0);
        let len = src_len.max(dst_len);
        let Some(dev) = self.choose(dma, len, [from.runs, to.runs]) else {
            if self.cpu_fallback {
                return CpuMover.copy_pieces(dma, from, to, pieces);
            }
            return Err(ConstraintError::NoMemory(format!(
                "no DMA engine reaches both the old and the new memory ({:?})",
                self.device
            )));
        };
        let mut src = table(from, src_len, &dev)?;
        let mut dst = table(to, dst_len, &dev)?;
        // Mapping TO_DEVICE cleans the CPU's dirty lines over the source; FROM_DEVICE cleans and
        // invalidates the destination, and its unmap invalidates again: no stale line survives.
        dma.map_sg(&dev, &mut src, DmaDirection::ToDevice, DmaAttrs::NONE)?;
        if let Err(e) = dma.map_sg(&dev, &mut dst, DmaDirection::FromDevice, DmaAttrs::NONE) {
            let _ = dma.unmap_sg(&dev, &mut src, DmaDirection::ToDevice, DmaAttrs::NONE);
            if self.cpu_fallback {
                return CpuMover.copy_pieces(dma, from, to, pieces);
            }
            return Err(e.into());
        }
        let seg = |t: &SgTable| -> Vec<(PhysAddr, u64)> {
            t.dma_segments()
                .iter()
                .map(|s| (PhysAddr(s.addr.0), s.len))
                .collect()
        };
        let (s_segs, d_segs) = (seg(&src), seg(&dst));
        // One mapping of each side; every piece is a run of device addresses in it.
        let copied = pieces.iter().try_for_each(|p| {
            let a = slice_runs(&s_segs, p.src, p.len)?;
            let b = slice_runs(&d_segs, p.dst, p.len)?;
            walk_pairs(&a, &b, p.len, |s, d, n| {
                dev.dma_copy(DmaAddr(s), DmaAddr(d), n)?;
                Ok(())
            })
        });
        let u1 = dma.unmap_sg(&dev, &mut src, DmaDirection::ToDevice, DmaAttrs::NONE);
        let u2 = dma.unmap_sg(&dev, &mut dst, DmaDirection::FromDevice, DmaAttrs::NONE);
        copied?;
        u1?;
        u2?;
        Ok(dev.name().to_string())
    }
}

/// Calls `f(src, dst, n)` over matching pieces of two run lists, for the first `len` bytes.
fn walk_pairs(
    a: &[(PhysAddr, u64)],
    b: &[(PhysAddr, u64)],
    len: u64,
    mut f: impl FnMut(u64, u64, u64) -> Result<(), ConstraintError>,
) -> Result<(), ConstraintError> {
    let (mut i, mut j, mut oi, mut oj, mut done) = (0, 0, 0u64, 0u64, 0u64);
    while done < len {
        let (Some(&(sa, la)), Some(&(sb, lb))) = (a.get(i), b.get(j)) else {
            return Err(ConstraintError::NoMemory(format!(
                "copy of {len:#x} bytes ran out of runs at {done:#x}"
            )));
        };
        let n = (la - oi).min(lb - oj).min(len - done);
        f(sa.0 + oi, sb.0 + oj, n)?;
        done += n;
        oi += n;
        oj += n;
        if oi == la {
            i += 1;
            oi = 0;
        }
        if oj == lb {
            j += 1;
            oj = 0;
        }
    }
    Ok(())
}
