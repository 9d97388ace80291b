//! Access along physical runs without a bounce buffer: the caller's code sees the bytes where
//! they live.
//!
//! [`PhysMem::read_runs`] and [`PhysMem::write_runs`] copy between simulated memory and a
//! caller's buffer; a device that only checks what it reads (a CRC engine on a display's
//! scanout) or generates what it writes (a test-pattern generator) needs no such copy. These
//! calls check every run up front like those (so on error nothing moved and `f` never ran),
//! then hand `f` the bytes piece by piece, in run order.
//!
//! # Locking
//! `f` runs under the lock of the 2 MiB chunk the piece is in (a read lock to read, the write
//! lock to write), held for at most [`VISIT_SPAN`] bytes at a time so that two threads working
//! on neighbouring pieces of one chunk take turns rather than wait for each other's whole
//! piece. `f` must not touch simulated memory itself (it would wait on the lock it runs under).

use super::{Held, PhysMem, CHUNK_SHIFT, CHUNK_SIZE};
use crate::addr::PhysAddr;
use crate::error::SocError;
use std::sync::atomic::Ordering;

/// Bytes a visitor works on under one chunk lock before the lock is dropped and taken again.
pub const VISIT_SPAN: usize = 64 << 10;

/// What a never-written chunk reads as.
static ZEROS: [u8; 4096] = [0; 4096];

impl PhysMem {
    /// Hands `f` the `len` bytes of `runs`, in order, without copying them (module doc). The
    /// runs must cover exactly `len` bytes; a never-written chunk reads as zeros.
    pub fn read_runs_with(
        &self,
        runs: &[(PhysAddr, u64)],
        len: usize,
        mut f: impl FnMut(&[u8]),
    ) -> Result<(), SocError> {
        let banks = self.check_runs(runs, len)?;
        let mut held: Held<parking_lot::RwLockReadGuard<'_, Box<[u8]>>> = None;
        let mut under = 0usize;
        for (&(pa, rlen), bank) in runs.iter().zip(banks) {
            let bank = &self.banks[bank];
            let mut off = pa.0 - bank.base.0;
            let mut left = rlen as usize;
            while left > 0 {
                let index = (off >> CHUNK_SHIFT) as usize;
                let at = (off & (CHUNK_SIZE - 1)) as usize;
                let n = (CHUNK_SIZE as usize - at).min(left).min(VISIT_SPAN);
                match bank.chunks[index].get() {
                    None => {
                        held = None;
                        for z in (0..n).step_by(ZEROS.len()) {
                            f(&ZEROS[..(n - z).min(ZEROS.len())]);
                        }
                    }
                    Some(chunk) => {
                        let key = (bank.id.0, index);
                        if under >= VISIT_SPAN
                            || held.as_ref().is_none_or(|(b, i, _)| (*b, *i) != key)
                        {
                            drop(held.take()); // release before taking the next
                            under = 0;
                            held = Some((key.0, key.1, chunk.read()));
                        }
                        if let Some((_, _, c)) = held.as_ref() {
                            f(&c[at..at + n]);
                        }
                        under += n;
                    }
                }
                off += n as u64;
                left -= n;
            }
        }
        drop(held);
        self.bytes_read.fetch_add(len as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Hands `f` the `len` bytes of `runs`, in order, to write in place (module doc); every
    /// byte of each piece is `f`'s to set. The runs must cover exactly `len` bytes.
    pub fn write_runs_with(
        &self,
        runs: &[(PhysAddr, u64)],
        len: usize,
        mut f: impl FnMut(&mut [u8]),
    ) -> Result<(), SocError> {
        let banks = self.check_runs(runs, len)?;
        let mut held: Held<parking_lot::RwLockWriteGuard<'_, Box<[u8]>>> = None;
        let mut under = 0usize;
        for (&(pa, rlen), bank) in runs.iter().zip(banks) {
            let bank = &self.banks[bank];
            let mut off = pa.0 - bank.base.0;
            let mut left = rlen as usize;
            while left > 0 {
                let index = (off >> CHUNK_SHIFT) as usize;
                let at = (off & (CHUNK_SIZE - 1)) as usize;
                let n = (CHUNK_SIZE as usize - at).min(left).min(VISIT_SPAN);
                let key = (bank.id.0, index);
                if under >= VISIT_SPAN || held.as_ref().is_none_or(|(b, i, _)| (*b, *i) != key) {
                    drop(held.take()); // release before taking the next
                    under = 0;
                    held = Some((key.0, key.1, bank.chunk_for_write(index).write()));
                }
                if let Some((_, _, c)) = held.as_mut() {
                    f(&mut c[at..at + n]);
                }
                under += n;
                off += n as u64;
                left -= n;
            }
        }
        drop(held);
        self.bytes_written.fetch_add(len as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{BankDesc, BankKind, ByteSize, PhysAddr, PhysMem};

    #[test]
    fn visitors_see_and_set_the_bytes_copies_would() {
        let mem = PhysMem::new(&[BankDesc {
            name: "dram0".into(),
            kind: BankKind::System,
            base: ByteSize(0x4000_0000),
            size: ByteSize(16 << 20),
        }])
        .unwrap();
        // Three runs across a 2 MiB chunk boundary, one in a never-written chunk.
        let runs = [
            (PhysAddr(0x4000_0000 + (2 << 20) - 5000), 9000u64),
            (PhysAddr(0x4000_0000 + (8 << 20)), 300_000),
            (PhysAddr(0x4000_1000), 100),
        ];
        let len = 9000 + 300_000 + 100;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let mut at = 0;
        mem.write_runs_with(&runs, len, |piece| {
            piece.copy_from_slice(&data[at..at + piece.len()]);
            at += piece.len();
        })
        .unwrap();
        assert_eq!(at, len);
        let mut back = vec![0u8; len];
        mem.read_runs(&runs, &mut back).unwrap();
        assert_eq!(back, data);
        let mut seen = Vec::new();
        mem.read_runs_with(&runs, len, |p| seen.extend_from_slice(p))
            .unwrap();
        assert_eq!(seen, data);
        // Never written: zeros, without committing memory.
        let mut zeros = Vec::new();
        let hole = [(PhysAddr(0x4000_0000 + (12 << 20)), 10_000u64)];
        mem.read_runs_with(&hole, 10_000, |p| zeros.extend_from_slice(p))
            .unwrap();
        assert_eq!(zeros, vec![0u8; 10_000]);
        // Runs that do not add up: an error before `f` runs.
        let mut ran = false;
        assert!(mem.write_runs_with(&runs, len + 1, |_| ran = true).is_err());
        assert!(!ran);
    }
}
