//! Batched access along physical runs: what a DMA engine does after translation.
//!
//! A device access through an IOMMU becomes a list of physical runs (often thousands of 4 KiB
//! pages). Moving each run with [`PhysMem::write`] would re-find its bank, take and drop a chunk
//! lock and bump the traffic counters every 4 KiB; these calls check every run once up front
//! (so on error nothing moved), then walk the runs holding one chunk lock for as long as the
//! runs stay inside that 2 MiB chunk.
//!
//! # Locking
//! 1. `write_runs`/`read_runs` hold at most one chunk lock at a time.
//! 2. `copy_runs` holds at most two — source and destination — taken in (bank, chunk) order, so
//!    two copies in opposite directions cannot deadlock; none is held between pieces.

use super::{Held, PhysMem, CHUNK_SHIFT, CHUNK_SIZE};
use crate::addr::PhysAddr;
use crate::error::SocError;
use std::sync::atomic::Ordering;

impl PhysMem {
    /// Writes `data` across physical runs, in order: `runs[0]` gets the first `runs[0].1` bytes,
    /// and so on (a DMA engine's scatter list after translation). The runs must cover exactly
    /// `data.len()` bytes. Every run is checked before any byte moves, so on error nothing
    /// changed. Consecutive runs in the same 2 MiB chunk share one lock acquisition, which is
    /// what keeps a write through thousands of scattered pages close to a plain copy.
    pub fn write_runs(&self, runs: &[(PhysAddr, u64)], data: &[u8]) -> Result<(), SocError> {
        let banks = self.check_runs(runs, data.len())?;
        let mut held: Held<parking_lot::RwLockWriteGuard<'_, Box<[u8]>>> = None;
        let mut done = 0usize;
        for (&(pa, len), bank) in runs.iter().zip(banks) {
            let bank = &self.banks[bank];
            bank.for_each_piece(pa.0 - bank.base.0, len as usize, |index, at, pos, n| {
                let key = (bank.id.0, index);
                if held.as_ref().is_none_or(|(b, i, _)| (*b, *i) != key) {
                    held = None; // release the previous chunk before taking the next
                    held = Some((key.0, key.1, bank.chunk_for_write(index).write()));
                }
                if let Some((_, _, chunk)) = held.as_mut() {
                    chunk[at..at + n].copy_from_slice(&data[done + pos..done + pos + n]);
                }
            });
            done += len as usize;
        }
        drop(held);
        self.bytes_written
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Reads into `buf` from physical runs, in order (the counterpart of
    /// [`write_runs`](Self::write_runs)). On error `buf` is unchanged.
    pub fn read_runs(&self, runs: &[(PhysAddr, u64)], buf: &mut [u8]) -> Result<(), SocError> {
        let banks = self.check_runs(runs, buf.len())?;
        let mut held: Held<parking_lot::RwLockReadGuard<'_, Box<[u8]>>> = None;
        let mut done = 0usize;
        for (&(pa, len), bank) in runs.iter().zip(banks) {
            let bank = &self.banks[bank];
            bank.for_each_piece(pa.0 - bank.base.0, len as usize, |index, at, pos, n| {
                let dst = &mut buf[done + pos..done + pos + n];
                let Some(chunk) = bank.chunks[index].get() else {
                    dst.fill(0);
                    return;
                };
                let key = (bank.id.0, index);
                if held.as_ref().is_none_or(|(b, i, _)| (*b, *i) != key) {
                    held = None;
                    held = Some((key.0, key.1, chunk.read()));
                }
                if let Some((_, _, chunk)) = held.as_ref() {
                    dst.copy_from_slice(&chunk[at..at + n]);
                }
            });
            done += len as usize;
        }
        drop(held);
        self.bytes_read
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Copies bytes from `src` runs to `dst` runs (both in order, covering the same number of
    /// bytes) directly chunk to chunk, without a bounce buffer: what a memory-to-memory DMA
    /// engine does. The two sets of runs must not overlap (answered with
    /// [`SocError::InvalidArgument`] before anything moves; use [`copy`](Self::copy) for
    /// memmove semantics). Every run is checked first, so on error nothing changed.
    ///
    /// # Locking
    /// A piece whose source and destination are in different chunks holds both chunk locks,
    /// taken in (bank, chunk) order, so two copies in opposite directions cannot deadlock; no
    /// lock is held between pieces.
    pub fn copy_runs(
        &self,
        src: &[(PhysAddr, u64)],
        dst: &[(PhysAddr, u64)],
    ) -> Result<(), SocError> {
        let total = src.iter().try_fold(0u64, |a, r| a.checked_add(r.1));
        let total =
            total.ok_or_else(|| SocError::InvalidArgument("source runs overflow".into()))?;
        let total = usize::try_from(total)
            .map_err(|_| SocError::InvalidArgument(format!("copy of {total:#x} bytes")))?;
        let sbanks = self.check_runs(src, total)?;
        let dbanks = self.check_runs(dst, total)?;
        if runs_overlap(src, dst) {
            return Err(SocError::InvalidArgument(
                "copy_runs: source and destination overlap".to_string(),
            ));
        }
        let (mut si, mut soff, mut di, mut doff) = (0usize, 0u64, 0usize, 0u64);
        while si < src.len() && di < dst.len() {
            let (sb, db) = (&self.banks[sbanks[si]], &self.banks[dbanks[di]]);
            let spos = src[si].0 .0 - sb.base.0 + soff;
            let dpos = dst[di].0 .0 - db.base.0 + doff;
            let (sidx, sat) = (
                (spos >> CHUNK_SHIFT) as usize,
                (spos & (CHUNK_SIZE - 1)) as usize,
            );
            let (didx, dat) = (
                (dpos >> CHUNK_SHIFT) as usize,
                (dpos & (CHUNK_SIZE - 1)) as usize,
            );
            let n = (src[si].1 - soff)
                .min(dst[di].1 - doff)
                .min(CHUNK_SIZE - sat as u64)
                .min(CHUNK_SIZE - dat as u64) as usize;
            match sb.chunks[sidx].get() {
                // Never written: the source reads as zeros.
                None => {
                    if db.chunks[didx].get().is_some() {
                        db.chunk_for_write(didx).write()[dat..dat + n].fill(0);
                    }
                }
                Some(schunk) if (sb.id, sidx) == (db.id, didx) => {
                    schunk.write().copy_within(sat..sat + n, dat);
                }
                Some(schunk) => {
                    let dchunk = db.chunk_for_write(didx);
                    if (sb.id, sidx) < (db.id, didx) {
                        let s = schunk.read();
                        dchunk.write()[dat..dat + n].copy_from_slice(&s[sat..sat + n]);
                    } else {
                        let mut d = dchunk.write();
                        d[dat..dat + n].copy_from_slice(&schunk.read()[sat..sat + n]);
                    }
                }
            }
            soff += n as u64;
            doff += n as u64;
            if soff == src[si].1 {
                (si, soff) = (si + 1, 0);
            }
            if doff == dst[di].1 {
                (di, doff) = (di + 1, 0);
            }
        }
        self.bytes_read.fetch_add(total as u64, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(total as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Checks that every run lies in one bank and that they add up to `total` bytes; answers
    /// the bank index of each run.
    pub(super) fn check_runs(
        &self,
        runs: &[(PhysAddr, u64)],
        total: usize,
    ) -> Result<Vec<usize>, SocError> {
        let mut sum = 0u64;
        let mut banks = Vec::with_capacity(runs.len());
        let mut last = 0usize;
        for &(pa, len) in runs {
            // Runs of one access are usually in one bank: try the previous run's bank first.
            let idx = if self
                .banks
                .get(last)
                .is_some_and(|b| b.contains(pa, len.max(1)))
            {
                last
            } else {
                self.check_range(pa, len)?.id.0
            };
            last = idx;
            banks.push(idx);
            sum = sum
                .checked_add(len)
                .ok_or(SocError::OutOfRange { addr: pa, len })?;
        }
        if sum != total as u64 {
            return Err(SocError::InvalidArgument(format!(
                "physical runs cover {sum:#x} bytes but the transfer is {total:#x} bytes"
            )));
        }
        Ok(banks)
    }
}

/// Whether any byte of `a`'s runs is also in `b`'s runs (sorted sweep, O((n + m) log(n + m))).
pub(crate) fn runs_overlap(a: &[(PhysAddr, u64)], b: &[(PhysAddr, u64)]) -> bool {
    let mut all: Vec<(u64, u64, bool)> = a
        .iter()
        .map(|r| (r.0 .0, r.1, false))
        .chain(b.iter().map(|r| (r.0 .0, r.1, true)))
        .filter(|r| r.1 > 0)
        .collect();
    all.sort_unstable();
    // The furthest end seen so far on each side.
    let (mut end_a, mut end_b) = (0u64, 0u64);
    for (start, len, from_b) in all {
        let end = start + len;
        if from_b {
            if start < end_a {
                return true;
            }
            end_b = end_b.max(end);
        } else {
            if start < end_b {
                return true;
            }
            end_a = end_a.max(end);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phys::tests::two_banks;

    #[test]
    fn scattered_runs_write_and_read_back_in_order_across_banks() {
        let mem = two_banks();
        let runs = [
            (PhysAddr(9 << 20), 4096),
            (PhysAddr(8192), 100),
            (PhysAddr(CHUNK_SIZE - 50), 4000),
            (PhysAddr(8 << 20), 4),
        ];
        let total: u64 = runs.iter().map(|r| r.1).sum();
        let data: Vec<u8> = (0..total as usize).map(|i| (i % 241) as u8).collect();
        mem.write_runs(&runs, &data).unwrap();
        let mut back = vec![0u8; data.len()];
        mem.read_runs(&runs, &mut back).unwrap();
        assert_eq!(back, data);
        let mut one = [0u8; 4];
        mem.read(PhysAddr(8 << 20), &mut one).unwrap();
        assert_eq!(&one, &data[data.len() - 4..]);
    }

    #[test]
    fn runs_with_a_hole_or_wrong_total_change_nothing() {
        let mem = two_banks();
        let bad = [(PhysAddr(0), 8), (PhysAddr(7 << 20), 8)];
        assert!(matches!(
            mem.write_runs(&bad, &[1; 16]),
            Err(SocError::OutOfRange { .. })
        ));
        let mut b = [9u8; 8];
        mem.read(PhysAddr(0), &mut b).unwrap();
        assert_eq!(b, [0; 8], "the valid first run was not written either");
        let short = [(PhysAddr(0), 8)];
        assert!(matches!(
            mem.write_runs(&short, &[1; 9]),
            Err(SocError::InvalidArgument(_))
        ));
        let mut buf = [7u8; 9];
        assert!(mem.read_runs(&short, &mut buf).is_err());
        assert_eq!(buf, [7; 9]);
    }

    #[test]
    fn copy_runs_moves_scattered_bytes_across_chunks_and_banks() {
        let mem = two_banks();
        let src = [
            (PhysAddr(CHUNK_SIZE - 4096), 8192),
            (PhysAddr(9 << 20), 100),
        ];
        let dst = [(PhysAddr(8 << 20), 100), (PhysAddr(4096), 8192)];
        let data: Vec<u8> = (0..8292u32).map(|i| (i % 239) as u8).collect();
        mem.write_runs(&src, &data).unwrap();
        mem.copy_runs(&src, &dst).unwrap();
        let mut back = vec![0u8; data.len()];
        mem.read_runs(&dst, &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn copy_runs_from_untouched_memory_writes_zeros_and_refuses_overlap() {
        let mem = two_banks();
        mem.write(PhysAddr(3 << 20), &[7; 64]).unwrap();
        mem.copy_runs(&[(PhysAddr(5 << 20), 64)], &[(PhysAddr(3 << 20), 64)])
            .unwrap();
        let mut b = [1u8; 64];
        mem.read(PhysAddr(3 << 20), &mut b).unwrap();
        assert_eq!(b, [0; 64]);
        let overlap = mem.copy_runs(&[(PhysAddr(0), 8192)], &[(PhysAddr(4096), 8192)]);
        assert!(matches!(overlap, Err(SocError::InvalidArgument(_))));
        assert!(!runs_overlap(
            &[(PhysAddr(0), 4096)],
            &[(PhysAddr(4096), 4096)]
        ));
        assert!(runs_overlap(
            &[(PhysAddr(0), 4097)],
            &[(PhysAddr(4096), 4096)]
        ));
    }
}
