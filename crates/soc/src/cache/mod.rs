//! The CPU's view of memory: a write-back data cache with 64-byte lines.
//!
//! C side: `arch/arm64/mm/cache.S` (`dcache_clean_poc`, `dcache_inval_poc`,
//! `dcache_clean_inval_poc`)
//! and the `arch_sync_dma_for_device` / `arch_sync_dma_for_cpu` hooks of `kernel/dma/direct.c`.
//!
//! # Why it exists
//! On most SoCs a DMA master does not look into the CPU's caches. When the CPU writes a buffer, the
//! bytes sit in dirty cache lines until something writes them back; a **non-coherent** device
//! that reads the buffer before a *clean* reads the old bytes from memory. When a device writes a
//! buffer the CPU had cached, the CPU keeps hitting its old lines until it *invalidates* them. The
//! DMA API's sync calls exist for exactly this, and forgetting one corrupts data silently on real
//! hardware. Here it corrupts data just as visibly, and the CPU side also tells the observers.
//!
//! # The model
//! - Lines of [`CACHE_LINE_SIZE`] bytes, write-back, write-allocate, read-allocate.
//! - Bounded capacity ([`CacheDesc::size`](crate::CacheDesc::size)). When a line must be
//!   allocated in a full cache, the **oldest** line (the one filled first) is evicted; a dirty
//!   victim is written back to memory. Hits do not refresh a line's age (FIFO), which keeps the
//!   order of eviction a pure function of the order of fills: deterministic.
//! - An access larger than the cache *streams*: of the lines it touches only the last `capacity`
//!   stay allocated, and the earlier ones behave as if filled and immediately evicted (for a
//!   write: written through to memory). Data-wise this is the line-by-line behaviour, computed in
//!   bulk.
//! - A **non-coherent agent** (a non-coherent device, or [`Cpu::write_uncached`]) writing memory
//!   under a cached line leaves the line *stale* for those bytes (tracked per byte). A later CPU
//!   hit returns the old bytes and reports
//!   [`SocObserver::cpu_stale_read`](crate::SocObserver::cpu_stale_read). Write-back of a dirty
//!   stale line overwrites what the device wrote, line-granular, as on hardware.
//! - A **coherent device** snoops: its reads see dirty lines, its writes update cached lines.
//!
//! Cache maintenance, as the arm64 routines do it:
//! - [`Cpu::clean`] writes back dirty lines overlapping the range (`dc cvac`); lines stay cached.
//! - [`Cpu::invalidate`] discards the lines overlapping the range (`dc ivac`): dirty data in them
//!   is lost. A line only partly inside the range is cleaned and invalidated (`dc civac`) instead,
//!   exactly as `dcache_inval_poc` treats an unaligned start or end, so that the bytes around a
//!   buffer that shares a line survive.
//! - [`Cpu::flush`] cleans and invalidates (`dc civac`).
//!
//! # Locking
//! One mutex protects the whole cache (the lines and their age order). It may be held while
//! taking [`PhysMem`]'s chunk locks (write-backs and fills), never the other way round, and it is
//! never held while observers run. Coherent device accesses hold it for the whole access, which
//! makes a snoop atomic with respect to CPU accesses and evictions.
//!
//! ```
//! use soc::{PhysAddr, Soc, SocDesc};
//! let soc = Soc::new(SocDesc::default_soc()).unwrap();
//! let cpu = soc.cpu();
//! cpu.write(PhysAddr(0x1000), b"dirty").unwrap();
//! assert_eq!(cpu.dirty_bytes(PhysAddr(0x1000), 5), 5);
//! let mut raw = [0u8; 5];
//! soc.mem().read(PhysAddr(0x1000), &mut raw).unwrap();
//! assert_eq!(raw, [0; 5], "not in memory until cleaned");
//! cpu.clean(PhysAddr(0x1000), 5).unwrap();
//! soc.mem().read(PhysAddr(0x1000), &mut raw).unwrap();
//! assert_eq!(&raw, b"dirty");
//! ```

use crate::addr::{PhysAddr, CACHE_LINE_SIZE};
use crate::error::SocError;
use crate::observer::Observers;
use crate::phys::PhysMem;
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;

mod lines;

pub(crate) use lines::CacheState;
use lines::{byte_mask, overlap};

const LINE: u64 = CACHE_LINE_SIZE;
const LINE_SHIFT: u32 = CACHE_LINE_SIZE.trailing_zeros();

/// Counters of the CPU cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Line lookups that found the line cached.
    pub hits: u64,
    /// Line lookups that had to fill (or, streaming, bypass) the line.
    pub misses: u64,
    /// Lines evicted to make room (or streamed past).
    pub evictions: u64,
    /// Dirty lines written back to memory (by eviction or maintenance).
    pub writebacks: u64,
    /// Dirty lines discarded by an invalidate: CPU writes that never reached memory.
    pub discarded_dirty: u64,
    /// CPU reads that returned stale bytes.
    pub stale_reads: u64,
}

/// The CPU, as far as memory is concerned: loads and stores through its data cache, and the cache
/// maintenance operations of the DMA API.
///
/// Every method checks that its range lies wholly inside one bank and answers
/// [`SocError::OutOfRange`] otherwise, touching nothing. An empty range is accepted (its address
/// must still be inside a bank) and does nothing.
///
/// # Invariants
/// Every cached line lies inside a bank of `mem`.
pub struct Cpu {
    mem: Arc<PhysMem>,
    state: Mutex<CacheState>,
    observers: Arc<Observers>,
}

impl std::fmt::Debug for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Cpu")
            .field("cached_lines", &st.lines.len())
            .field("capacity_lines", &st.capacity)
            .field("stats", &st.stats)
            .finish()
    }
}

impl Cpu {
    /// A CPU with a cache of `cache_bytes` (rounded down to whole lines, at least one line).
    pub(crate) fn new(mem: Arc<PhysMem>, cache_bytes: u64, observers: Arc<Observers>) -> Cpu {
        Cpu {
            mem,
            state: Mutex::new(CacheState::new(cache_bytes >> LINE_SHIFT)),
            observers,
        }
    }

    /// The cache lock, for coherent device accesses (see the module's locking rules).
    pub(crate) fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock()
    }

    fn check(&self, pa: PhysAddr, len: u64) -> Result<(), SocError> {
        self.mem.check_range(pa, len).map(|_| ())
    }

    /// A cached load: reads `buf.len()` bytes at `pa`. Lines that are cached are returned as
    /// cached, **even if a non-coherent device has written memory under them since** (the stale
    /// bytes are reported to
    /// [`SocObserver::cpu_stale_read`](crate::SocObserver::cpu_stale_read)); missing lines are
    /// filled.
    pub fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), SocError> {
        let len = buf.len() as u64;
        self.check(pa, len)?;
        if len == 0 {
            return Ok(());
        }
        let (start, end) = (pa.0, pa.0 + len);
        let (first, last) = (start >> LINE_SHIFT, (end - 1) >> LINE_SHIFT);
        let mut stale_ranges: Vec<(u64, u64)> = Vec::new();
        {
            let mut st = self.state.lock();
            self.mem.read(pa, buf)?;
            let mut hits = 0u64;
            for (&idx, line) in st.lines.range(first..=last) {
                hits += 1;
                let (from, to, at) = overlap(idx, start, end);
                buf[at..at + (to - from)].copy_from_slice(&line.data[from..to]);
                let mut stale = line.stale & byte_mask(from as u64, to as u64);
                while stale != 0 {
                    let lo = stale.trailing_zeros() as u64;
                    let run = (!(stale >> lo)).trailing_zeros() as u64;
                    let a = (idx << LINE_SHIFT) + lo;
                    match stale_ranges.last_mut() {
                        Some((s, l)) if *s + *l == a => *l += run,
                        _ => stale_ranges.push((a, run)),
                    }
                    stale &= !byte_mask(lo, lo + run);
                }
            }
            let lines = last - first + 1;
            st.stats.hits += hits;
            st.stats.misses += lines - hits;
            if !stale_ranges.is_empty() {
                st.stats.stale_reads += 1;
            }
            // Streaming: only the last `capacity` lines of the access stay allocated.
            let alloc_from = if lines > st.capacity {
                last + 1 - st.capacity
            } else {
                first
            };
            st.stats.evictions +=
                alloc_from - first - st.lines.range(first..alloc_from).count() as u64;
            for idx in alloc_from..=last {
                if st.lines.contains_key(&idx) {
                    continue;
                }
                let mut data = [0u8; LINE as usize];
                let base = idx << LINE_SHIFT;
                if base >= start && base + LINE <= end {
                    let at = (base - start) as usize;
                    data.copy_from_slice(&buf[at..at + LINE as usize]);
                } else {
                    self.mem.read(PhysAddr(base), &mut data)?;
                }
                st.insert(&self.mem, idx, data, false)?;
            }
        }
        if !stale_ranges.is_empty() {
            if let Some(obs) = self.observers.active() {
                for &(a, l) in &stale_ranges {
                    obs.iter().for_each(|o| o.cpu_stale_read(PhysAddr(a), l));
                }
            }
        }
        Ok(())
    }

    /// A cached store: writes `data` at `pa` into the cache, leaving the lines dirty. Memory sees
    /// the bytes only when the lines are cleaned or evicted.
    pub fn write(&self, pa: PhysAddr, data: &[u8]) -> Result<(), SocError> {
        let len = data.len() as u64;
        self.check(pa, len)?;
        if len == 0 {
            return Ok(());
        }
        let (start, end) = (pa.0, pa.0 + len);
        let (first, last) = (start >> LINE_SHIFT, (end - 1) >> LINE_SHIFT);
        let mut st = self.state.lock();
        let lines = last - first + 1;
        let tail = if lines > st.capacity {
            last + 1 - st.capacity
        } else {
            first
        };
        if tail > first {
            // Streaming head: fill, merge and evict at once = write through. A line already
            // cached there takes the bytes and, dirty now, is written back whole (old bytes of a
            // partly covered stale line included, as the line-by-line eviction would).
            let head_end = (tail << LINE_SHIFT).min(end);
            self.mem.write(pa, &data[..(head_end - start) as usize])?;
            let mut cached = 0u64;
            for idx in st.keys_in(first, tail - 1) {
                cached += 1;
                if let Some(mut line) = st.remove(idx) {
                    let (from, to, at) = overlap(idx, start, end);
                    line.data[from..to].copy_from_slice(&data[at..at + (to - from)]);
                    st.write_back(&self.mem, idx, &line.data)?;
                }
            }
            st.stats.hits += cached;
            st.stats.misses += (tail - first) - cached;
            st.stats.evictions += tail - first;
        }
        for idx in tail.max(first)..=last {
            let (from, to, at) = overlap(idx, start, end);
            let bytes = &data[at..at + (to - from)];
            if let Some(line) = st.lines.get_mut(&idx) {
                line.data[from..to].copy_from_slice(bytes);
                line.dirty = true;
                line.stale &= !byte_mask(from as u64, to as u64);
                st.stats.hits += 1;
                continue;
            }
            st.stats.misses += 1;
            let mut line = [0u8; LINE as usize];
            if to - from < LINE as usize {
                self.mem.read(PhysAddr(idx << LINE_SHIFT), &mut line)?;
            }
            line[from..to].copy_from_slice(bytes);
            st.insert(&self.mem, idx, line, true)?;
        }
        Ok(())
    }

    /// An uncached load (a write-combine or `dma_alloc_coherent` mapping on a non-coherent SoC):
    /// reads memory directly, not seeing dirty lines.
    pub fn read_uncached(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), SocError> {
        self.mem.read(pa, buf)
    }

    /// An uncached store: writes memory directly. Lines cached for the same bytes (through a
    /// cacheable alias) become stale, as under a non-coherent device write.
    pub fn write_uncached(&self, pa: PhysAddr, data: &[u8]) -> Result<(), SocError> {
        self.mem.write(pa, data)?;
        self.state.lock().mark_stale(&[(pa, data.len() as u64)]);
        Ok(())
    }

    /// Checks the range and returns its first and last line, or `None` for an empty range.
    fn line_span(&self, pa: PhysAddr, len: u64) -> Result<Option<(u64, u64)>, SocError> {
        self.check(pa, len)?;
        Ok((len > 0).then(|| (pa.0 >> LINE_SHIFT, (pa.0 + len - 1) >> LINE_SHIFT)))
    }

    /// Cleans `[pa, pa + len)` to memory (`dcache_clean_poc`; `dma_sync_*_for_device` with
    /// `DMA_TO_DEVICE`): dirty lines overlapping the range are written back and stay cached, clean.
    pub fn clean(&self, pa: PhysAddr, len: u64) -> Result<(), SocError> {
        let Some((first, last)) = self.line_span(pa, len)? else {
            return Ok(());
        };
        let mut st = self.state.lock();
        let mut writebacks = 0;
        for (&idx, line) in st.lines.range_mut(first..=last) {
            if line.dirty {
                self.mem.write(PhysAddr(idx << LINE_SHIFT), &line.data)?;
                line.dirty = false;
                line.stale = 0;
                writebacks += 1;
            }
        }
        st.stats.writebacks += writebacks;
        Ok(())
    }

    /// Invalidates `[pa, pa + len)` (`dcache_inval_poc`; `dma_sync_*_for_cpu` with
    /// `DMA_FROM_DEVICE`): lines wholly inside the range are discarded, **dirty data included**;
    /// a line only partly inside is cleaned first, as arm64 does for an unaligned start or end.
    pub fn invalidate(&self, pa: PhysAddr, len: u64) -> Result<(), SocError> {
        let Some((first, last)) = self.line_span(pa, len)? else {
            return Ok(());
        };
        let end = pa.0 + len;
        let mut st = self.state.lock();
        for idx in st.keys_in(first, last) {
            let Some(line) = st.remove(idx) else { continue };
            let partial = (idx << LINE_SHIFT) < pa.0 || (idx << LINE_SHIFT) + LINE > end;
            if line.dirty {
                if partial {
                    st.write_back(&self.mem, idx, &line.data)?;
                } else {
                    st.stats.discarded_dirty += 1;
                }
            }
        }
        Ok(())
    }

    /// Cleans and invalidates `[pa, pa + len)` (`dcache_clean_inval_poc`, `DMA_BIDIRECTIONAL`).
    pub fn flush(&self, pa: PhysAddr, len: u64) -> Result<(), SocError> {
        let Some((first, last)) = self.line_span(pa, len)? else {
            return Ok(());
        };
        let mut st = self.state.lock();
        for idx in st.keys_in(first, last) {
            if let Some(line) = st.remove(idx) {
                if line.dirty {
                    st.write_back(&self.mem, idx, &line.data)?;
                }
            }
        }
        Ok(())
    }

    /// Bytes inside `[pa, pa + len)` held in dirty lines: CPU writes memory has not seen yet.
    pub fn dirty_bytes(&self, pa: PhysAddr, len: u64) -> u64 {
        self.state.lock().dirty_bytes(pa, len)
    }

    /// Bytes inside `[pa, pa + len)` held in cached lines (dirty or not).
    pub fn cached_bytes(&self, pa: PhysAddr, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let (start, end) = (pa.0, pa.0.saturating_add(len));
        let st = self.state.lock();
        st.lines
            .range(start >> LINE_SHIFT..=(end - 1) >> LINE_SHIFT)
            .map(|(&idx, _)| {
                let (from, to, _) = overlap(idx, start, end);
                (to - from) as u64
            })
            .sum()
    }

    /// Capacity of the cache in bytes.
    pub fn cache_size(&self) -> u64 {
        self.state.lock().capacity << LINE_SHIFT
    }

    /// The cache's counters.
    pub fn stats(&self) -> CacheStats {
        self.state.lock().stats
    }
}
