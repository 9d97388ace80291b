//! CPU access to a shared buffer: the begin/end bracket and kernel vmaps.
//!
//! C side: `drivers/dma-buf/dma-buf.c` (`dma_buf_begin_cpu_access`, `dma_buf_end_cpu_access`,
//! `dma_buf_vmap`, `dma_buf_vunmap`), `drivers/dma-buf/heaps/system_heap.c` (the exporter side:
//! sync every mapped attachment).
//!
//! # The concept
//! Devices and the CPU see the same bytes only if someone does the cache maintenance and waits
//! for the devices to finish (seed 001). The CPU therefore brackets its access:
//! [`DmaBuf::begin_cpu_access`] (the exporter syncs every non-coherent device's mapping for the
//! CPU, then the core waits for the fences the access conflicts with) and
//! [`DmaBuf::end_cpu_access`] (the exporter writes the CPU's data back for the devices).
//! User space does the same with `DMA_BUF_IOCTL_SYNC` START/END around mmap accesses.
//!
//! # Rules
//! 1. `begin_cpu_access(dir)` calls the exporter first; its error is returned without waiting.
//!    Then it waits, interruptibly: `ToDevice`/`Bidirectional` (the CPU writes) wait for READ
//!    usage (every reader and writer); `FromDevice` (the CPU reads) waits for WRITE usage;
//!    BOOKKEEP fences are never waited for (behaviour 77).
//! 2. `end_cpu_access` only calls the exporter (behaviour 78). Pairing is not tracked.
//! 3. Neither takes the resv lock; do not hold it (the exporter may take it).
//! 4. `vmap`/`vunmap` need the resv lock; the first vmap calls the exporter and later ones share
//!    its map, the last vunmap calls the exporter's `vunmap` (behaviours 75-76). An exporter error
//!    leaves the count at 0; a vunmap of a foreign map is an error, not a crash.

use crate::buf::DmaBuf;
use crate::error::DmaBufError;
use crate::ops::{IosysMap, OpsFeatures};
use dma::{DmaDirection, SgTable};
use fence::{DmaResvUsage, Interrupt, ResvGuard};
use std::fmt;
use std::sync::Arc;

/// The vmap refcount (`vmapping_counter`, `vmap_ptr`).
#[derive(Default)]
pub(crate) struct VmapState {
    pub(crate) count: u32,
    pub(crate) map: Option<Arc<IosysMap>>,
}

/// A kernel CPU mapping of the whole buffer (`struct iosys_map` from `dma_buf_vmap`).
///
/// Holds a buffer reference. Give it back with [`DmaBuf::vunmap`]; a dropped `VMap` keeps the
/// count raised (the kernel's leak), and is reported by the [`BufRegistry`](crate::BufRegistry)
/// at release.
pub struct VMap {
    buf: DmaBuf,
    map: Arc<IosysMap>,
}

impl VMap {
    /// The memory covered (`iosys_map`).
    pub fn iosys_map(&self) -> &IosysMap {
        &self.map
    }

    /// The buffer.
    pub fn dmabuf(&self) -> &DmaBuf {
        &self.buf
    }

    /// Bytes covered by the map.
    pub fn len(&self) -> u64 {
        self.map.ranges.iter().map(|r| r.1).sum()
    }

    /// Whether the map covers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `out.len()` bytes at `offset`, through the CPU cache (uncached for I/O memory).
    /// Outside the map: [`DmaBufError::Fault`].
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), DmaBufError> {
        let cpu = self.buf.dma().soc().cpu();
        self.walk(offset, out.len() as u64, |pa, at, n| {
            let dst = &mut out[at..at + n];
            if self.map.is_iomem {
                cpu.read_uncached(pa, dst)
            } else {
                cpu.read(pa, dst)
            }
        })
    }

    /// Writes `data` at `offset` (see [`read`](Self::read)).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), DmaBufError> {
        let cpu = self.buf.dma().soc().cpu();
        self.walk(offset, data.len() as u64, |pa, at, n| {
            let src = &data[at..at + n];
            if self.map.is_iomem {
                cpu.write_uncached(pa, src)
            } else {
                cpu.write(pa, src)
            }
        })
    }

    fn walk(
        &self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(soc::PhysAddr, usize, usize) -> Result<(), soc::SocError>,
    ) -> Result<(), DmaBufError> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.len())
            .ok_or_else(|| {
                DmaBufError::Fault(format!(
                    "vmap access {offset:#x}+{len:#x} beyond {:#x}",
                    self.len()
                ))
            })?;
        let (mut pos, mut base) = (offset, 0u64);
        for &(pa, rlen) in &self.map.ranges {
            if pos >= end {
                break;
            }
            if pos < base + rlen {
                let n = (base + rlen).min(end) - pos;
                f(pa.add(pos - base), (pos - offset) as usize, n as usize)?;
                pos += n;
            }
            base += rlen;
        }
        Ok(())
    }
}

impl fmt::Debug for VMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VMap")
            .field("buf", &self.buf.ino())
            .field("len", &self.len())
            .field("iomem", &self.map.is_iomem)
            .finish()
    }
}

impl DmaBuf {
    /// `dma_buf_begin_cpu_access` (rule 1): the exporter's hook, then an uninterruptible wait.
    ///
    /// ```
    /// use dma::DmaDirection;
    /// use dmabuf::{testing::{mock_dma, MockExporter}, DmaBuf, ExportInfo};
    /// let buf = DmaBuf::export(&mock_dma(), ExportInfo::new("mock", 4096, MockExporter::new())).unwrap();
    /// buf.begin_cpu_access(DmaDirection::FromDevice).unwrap();
    /// buf.end_cpu_access(DmaDirection::FromDevice).unwrap();
    /// ```
    pub fn begin_cpu_access(&self, dir: DmaDirection) -> Result<(), DmaBufError> {
        self.begin_cpu_access_interruptible(dir, None)
    }

    /// [`begin_cpu_access`](Self::begin_cpu_access) whose wait ends with `ERESTARTSYS` when
    /// `intr` is raised (what `DMA_BUF_IOCTL_SYNC` does; user space sees `EINTR` and retries).
    pub fn begin_cpu_access_interruptible(
        &self,
        dir: DmaDirection,
        intr: Option<&Interrupt>,
    ) -> Result<(), DmaBufError> {
        self.0.ops.begin_cpu_access(self, dir)?;
        let usage = cpu_access_usage(dir);
        self.0.resv.wait_timeout(usage, intr, None)?;
        Ok(())
    }

    /// `dma_buf_end_cpu_access` (rule 2): the exporter's hook only.
    pub fn end_cpu_access(&self, dir: DmaDirection) -> Result<(), DmaBufError> {
        self.0.ops.end_cpu_access(self, dir)
    }

    /// For exporters' `begin_cpu_access`: syncs every table mapped by a non-coherent attached
    /// device for the CPU, each with the direction it was mapped with (so the DMA checker sees
    /// matching directions), as the system heap does for its attachment list.
    ///
    /// Tables an exporter keeps mapped behind the importers' backs (a
    /// [`MapCache`](crate::MapCache)) are not seen here: use
    /// [`MapCache::sync_for_cpu`](crate::MapCache::sync_for_cpu) instead.
    pub fn sync_for_cpu_all_attachments(&self, dir: DmaDirection) -> Result<(), DmaBufError> {
        let _ = dir;
        self.sync_all(true)
    }

    /// For exporters' `end_cpu_access`: the device-side counterpart of
    /// [`sync_for_cpu_all_attachments`](Self::sync_for_cpu_all_attachments).
    pub fn sync_for_device_all_attachments(&self, dir: DmaDirection) -> Result<(), DmaBufError> {
        let _ = dir;
        self.sync_all(false)
    }

    fn sync_all(&self, for_cpu: bool) -> Result<(), DmaBufError> {
        let dma = self.dma();
        let mut seen: Vec<Arc<SgTable>> = Vec::new();
        for att in self.attachments() {
            if att.device().is_coherent() {
                continue;
            }
            for (dir, table) in att.mapped_tables() {
                if seen.iter().any(|t| Arc::ptr_eq(t, &table)) {
                    continue;
                }
                if for_cpu {
                    dma.sync_sg_for_cpu(att.device(), &table, dir)?;
                } else {
                    dma.sync_sg_for_device(att.device(), &table, dir)?;
                }
                seen.push(table);
            }
        }
        Ok(())
    }

    /// `dma_buf_vmap` (rule 4, behaviour 75). Needs the resv lock.
    ///
    /// No `VMAP` in the exporter's features: [`DmaBufError::NoVmap`] (`EINVAL`).
    pub fn vmap(&self, resv: &mut ResvGuard<'_>) -> Result<VMap, DmaBufError> {
        self.check_resv(resv)?;
        if !self.0.features.contains(OpsFeatures::VMAP) {
            return Err(DmaBufError::NoVmap(self.0.exp_name.clone()));
        }
        {
            let mut st = self.0.vmap.lock();
            if let Some(map) = &st.map {
                let map = map.clone();
                st.count += 1;
                return Ok(VMap {
                    buf: self.clone(),
                    map,
                });
            }
        }
        // Changes happen under the resv lock (held), so no other vmap can race this one.
        let map = Arc::new(self.0.ops.vmap(self, resv)?);
        let mut st = self.0.vmap.lock();
        st.count = 1;
        st.map = Some(map.clone());
        Ok(VMap {
            buf: self.clone(),
            map,
        })
    }

    /// [`vmap`](Self::vmap) taking the resv lock itself (`dma_buf_vmap_unlocked`).
    pub fn vmap_unlocked(&self) -> Result<VMap, DmaBufError> {
        let mut g = self.0.resv.lock(None)?;
        self.vmap(&mut g)
    }

    /// `dma_buf_vunmap` (rule 4, behaviour 76). Needs the resv lock. A map of another buffer,
    /// or one that is not the current vmap, is [`DmaBufError::VunmapMismatch`] (a kernel BUG).
    pub fn vunmap(&self, resv: &mut ResvGuard<'_>, map: VMap) -> Result<(), DmaBufError> {
        self.check_resv(resv)?;
        if !map.buf.ptr_eq(self) {
            return Err(DmaBufError::VunmapMismatch);
        }
        let last = {
            let mut st = self.0.vmap.lock();
            match &st.map {
                Some(cur) if Arc::ptr_eq(cur, &map.map) && st.count > 0 => {}
                _ => return Err(DmaBufError::VunmapMismatch),
            }
            st.count -= 1;
            if st.count == 0 {
                st.map.take()
            } else {
                None
            }
        };
        if let Some(last) = last {
            self.0.ops.vunmap(self, &last, resv);
        }
        Ok(())
    }

    /// [`vunmap`](Self::vunmap) taking the resv lock itself.
    pub fn vunmap_unlocked(&self, map: VMap) -> Result<(), DmaBufError> {
        let mut g = self.0.resv.lock(None)?;
        self.vunmap(&mut g, map)
    }

    /// The current vmap count (`vmapping_counter`).
    pub fn vmap_count(&self) -> u32 {
        self.0.vmap.lock().count
    }
}

/// The usage a CPU access in direction `dir` must wait for (rule 1).
pub fn cpu_access_usage(dir: DmaDirection) -> DmaResvUsage {
    DmaResvUsage::rw(matches!(
        dir,
        DmaDirection::ToDevice | DmaDirection::Bidirectional
    ))
}
