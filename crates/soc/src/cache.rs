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
use std::collections::BTreeMap;
use std::sync::Arc;

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

/// One cache line.
///
/// # Invariants
/// The line's physical range lies inside one bank (banks are page aligned, so a line inside a
/// bank never straddles two); `fifo[seq] == index` of this line.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    data: [u8; LINE as usize],
    dirty: bool,
    /// Bit `i` set: byte `i` of `data` is older than memory (a non-coherent agent wrote memory).
    stale: u64,
    seq: u64,
}

/// The state behind the cache lock.
///
/// # Invariants
/// `lines.len() == fifo.len() <= capacity`, `capacity >= 1`.
#[derive(Debug)]
pub(crate) struct CacheState {
    lines: BTreeMap<u64, Line>,
    fifo: BTreeMap<u64, u64>,
    next_seq: u64,
    capacity: u64,
    stats: CacheStats,
}

/// The mask of bytes `[from, to)` of a line (`0 <= from < to <= 64`).
#[inline]
fn byte_mask(from: u64, to: u64) -> u64 {
    let hi = if to >= 64 { u64::MAX } else { (1u64 << to) - 1 };
    hi & !((1u64 << from) - 1)
}

/// The part of line `idx` inside `[start, end)`: offsets in the line and in the access.
#[inline]
fn overlap(idx: u64, start: u64, end: u64) -> (usize, usize, usize) {
    let base = idx << LINE_SHIFT;
    let from = start.max(base);
    let to = end.min(base + LINE);
    (
        (from - base) as usize,
        (to - base) as usize,
        (from - start) as usize,
    )
}

impl CacheState {
    fn new(capacity: u64) -> CacheState {
        CacheState {
            lines: BTreeMap::new(),
            fifo: BTreeMap::new(),
            next_seq: 0,
            capacity: capacity.max(1),
            stats: CacheStats::default(),
        }
    }

    fn remove(&mut self, idx: u64) -> Option<Line> {
        let line = self.lines.remove(&idx)?;
        self.fifo.remove(&line.seq);
        Some(line)
    }

    fn write_back(&mut self, mem: &PhysMem, idx: u64, data: &[u8]) -> Result<(), SocError> {
        self.stats.writebacks += 1;
        mem.write(PhysAddr(idx << LINE_SHIFT), data)
    }

    /// Allocates line `idx` (not cached) with `data`, evicting the oldest line if full.
    fn insert(
        &mut self,
        mem: &PhysMem,
        idx: u64,
        data: [u8; LINE as usize],
        dirty: bool,
    ) -> Result<(), SocError> {
        while self.lines.len() as u64 >= self.capacity {
            let Some((_, victim)) = self.fifo.pop_first() else {
                break;
            };
            if let Some(line) = self.lines.remove(&victim) {
                self.stats.evictions += 1;
                if line.dirty {
                    self.write_back(mem, victim, &line.data)?;
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.fifo.insert(seq, idx);
        // INVARIANT: `idx` was not cached, so `lines` and `fifo` grow together.
        self.lines.insert(
            idx,
            Line {
                data,
                dirty,
                stale: 0,
                seq,
            },
        );
        Ok(())
    }

    /// Calls `f(line, from, to, at)` for every cached line overlapping `[start, start + len)`:
    /// bytes `from..to` of the line are bytes `at..` of the caller's access, where the range
    /// begins at access offset `off`.
    fn visit_range(
        &mut self,
        start: u64,
        len: u64,
        off: usize,
        f: &mut impl FnMut(&mut Line, usize, usize, usize),
    ) {
        if len == 0 {
            return;
        }
        let end = start + len;
        for (&idx, line) in self
            .lines
            .range_mut(start >> LINE_SHIFT..=(end - 1) >> LINE_SHIFT)
        {
            let (from, to, at) = overlap(idx, start, end);
            f(line, from, to, off + at);
        }
    }

    /// [`visit_range`](Self::visit_range) over the physical runs of one device access (in
    /// access order). Cheap in the common cases: an empty cache costs nothing, a cache with no
    /// line in the runs' span costs one lookup, and a few lines in the span are matched against
    /// the sorted runs instead of looking up every run.
    fn visit_runs(
        &mut self,
        runs: &[(PhysAddr, u64)],
        mut f: impl FnMut(&mut Line, usize, usize, usize),
    ) {
        if self.lines.is_empty() || runs.is_empty() {
            return;
        }
        if runs.len() > 8 {
            let lo = runs.iter().map(|r| r.0 .0).min().unwrap_or(0);
            let hi = runs.iter().map(|r| r.0 .0 + r.1).max().unwrap_or(0);
            let (first, last) = (lo >> LINE_SHIFT, (hi.max(lo + 1) - 1) >> LINE_SHIFT);
            let in_span = self.lines.range(first..=last).take(runs.len()).count();
            if in_span == 0 {
                return;
            }
            if in_span < runs.len() {
                let mut off = 0u64;
                let mut sorted: Vec<(u64, u64, u64)> = runs
                    .iter()
                    .map(|&(pa, n)| {
                        off += n;
                        (pa.0, n, off - n)
                    })
                    .collect();
                sorted.sort_unstable_by_key(|r| r.0);
                // Aliased runs (two IOVA pages on one physical page) take the general path.
                if sorted.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0) {
                    for (&idx, line) in self.lines.range_mut(first..=last) {
                        let (ls, le) = (idx << LINE_SHIFT, (idx << LINE_SHIFT) + LINE);
                        let mut j = sorted.partition_point(|r| r.0 < le);
                        while j > 0 && sorted[j - 1].0 + sorted[j - 1].1 > ls {
                            let (start, n, off) = sorted[j - 1];
                            let (from, to, at) = overlap(idx, start, start + n);
                            f(line, from, to, off as usize + at);
                            j -= 1;
                        }
                    }
                    return;
                }
            }
        }
        let mut off = 0usize;
        for &(pa, n) in runs {
            self.visit_range(pa.0, n, off, &mut f);
            off += n as usize;
        }
    }

    /// A coherent device read `buf` from `runs` in memory: overlays the dirty lines on it.
    pub(crate) fn snoop_read(&mut self, runs: &[(PhysAddr, u64)], buf: &mut [u8]) {
        self.visit_runs(runs, |line, from, to, at| {
            if line.dirty {
                buf[at..at + (to - from)].copy_from_slice(&line.data[from..to]);
            }
        });
    }

    /// A coherent device wrote `data` to `runs` (memory already updated): cached copies take
    /// the new bytes, which are then fresh.
    pub(crate) fn snoop_write(&mut self, runs: &[(PhysAddr, u64)], data: &[u8]) {
        self.visit_runs(runs, |line, from, to, at| {
            line.data[from..to].copy_from_slice(&data[at..at + (to - from)]);
            line.stale &= !byte_mask(from as u64, to as u64);
        });
    }

    /// Whether any line of `runs` is cached.
    pub(crate) fn caches_any(&mut self, runs: &[(PhysAddr, u64)]) -> bool {
        let mut any = false;
        self.visit_runs(runs, |_, _, _, _| any = true);
        any
    }

    /// A non-coherent agent wrote `runs` in memory: cached copies of those bytes are now stale.
    pub(crate) fn mark_stale(&mut self, runs: &[(PhysAddr, u64)]) {
        self.visit_runs(runs, |line, from, to, _| {
            line.stale |= byte_mask(from as u64, to as u64)
        });
    }

    /// Bytes of dirty lines inside `runs`.
    pub(crate) fn dirty_bytes_in(&mut self, runs: &[(PhysAddr, u64)]) -> u64 {
        let mut sum = 0;
        self.visit_runs(runs, |line, from, to, _| {
            if line.dirty {
                sum += (to - from) as u64;
            }
        });
        sum
    }

    /// Bytes of dirty lines inside `[pa, pa + len)`.
    fn dirty_bytes(&self, pa: PhysAddr, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let (start, end) = (pa.0, pa.0.saturating_add(len));
        self.lines
            .range(start >> LINE_SHIFT..=(end - 1) >> LINE_SHIFT)
            .filter(|(_, l)| l.dirty)
            .map(|(&idx, _)| {
                let (from, to, _) = overlap(idx, start, end);
                (to - from) as u64
            })
            .sum()
    }

    fn keys_in(&self, first: u64, last: u64) -> Vec<u64> {
        self.lines.range(first..=last).map(|(&k, _)| k).collect()
    }
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
