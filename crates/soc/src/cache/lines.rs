//! The cache's lines and the state behind its lock: allocation in FIFO order, write-back of
//! dirty victims, per-byte staleness, and the range walks the CPU's accesses, the maintenance
//! operations and coherent devices' snoops are built on.
//!
//! # Locking
//! Everything here runs with the cache lock held (it is the lock's [`CacheState`]); a
//! write-back takes [`PhysMem`]'s chunk locks under it, never the other way round.

use super::{CacheStats, LINE, LINE_SHIFT};
use crate::addr::PhysAddr;
use crate::error::SocError;
use crate::phys::PhysMem;
use std::collections::BTreeMap;

/// One cache line.
///
/// # Invariants
/// The line's physical range lies inside one bank (banks are page aligned, so a line inside a
/// bank never straddles two); `fifo[seq] == index` of this line.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    pub(super) data: [u8; LINE as usize],
    pub(super) dirty: bool,
    /// Bit `i` set: byte `i` of `data` is older than memory (a non-coherent agent wrote memory).
    pub(super) stale: u64,
    pub(super) seq: u64,
}

/// The state behind the cache lock.
///
/// # Invariants
/// `lines.len() == fifo.len() <= capacity`, `capacity >= 1`.
#[derive(Debug)]
pub(crate) struct CacheState {
    pub(super) lines: BTreeMap<u64, Line>,
    pub(super) fifo: BTreeMap<u64, u64>,
    pub(super) next_seq: u64,
    pub(super) capacity: u64,
    pub(super) stats: CacheStats,
}

/// The mask of bytes `[from, to)` of a line (`0 <= from < to <= 64`).
#[inline]
pub(super) fn byte_mask(from: u64, to: u64) -> u64 {
    let hi = if to >= 64 { u64::MAX } else { (1u64 << to) - 1 };
    hi & !((1u64 << from) - 1)
}

/// The part of line `idx` inside `[start, end)`: offsets in the line and in the access.
#[inline]
pub(super) fn overlap(idx: u64, start: u64, end: u64) -> (usize, usize, usize) {
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
    pub(super) fn new(capacity: u64) -> CacheState {
        CacheState {
            lines: BTreeMap::new(),
            fifo: BTreeMap::new(),
            next_seq: 0,
            capacity: capacity.max(1),
            stats: CacheStats::default(),
        }
    }

    pub(super) fn remove(&mut self, idx: u64) -> Option<Line> {
        let line = self.lines.remove(&idx)?;
        self.fifo.remove(&line.seq);
        Some(line)
    }

    pub(super) fn write_back(
        &mut self,
        mem: &PhysMem,
        idx: u64,
        data: &[u8],
    ) -> Result<(), SocError> {
        self.stats.writebacks += 1;
        mem.write(PhysAddr(idx << LINE_SHIFT), data)
    }

    /// Allocates line `idx` (not cached) with `data`, evicting the oldest line if full.
    pub(super) fn insert(
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
    pub(super) fn visit_range(
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
    pub(super) fn visit_runs(
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
    pub(super) fn dirty_bytes(&self, pa: PhysAddr, len: u64) -> u64 {
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

    pub(super) fn keys_in(&self, first: u64, last: u64) -> Vec<u64> {
        self.lines.range(first..=last).map(|(&k, _)| k).collect()
    }
}
