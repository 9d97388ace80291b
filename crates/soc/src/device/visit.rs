//! A device's DMA without a bounce buffer: [`Device::dma_read_with`] and
//! [`Device::dma_write_with`].
//!
//! The same access as [`Device::dma_read`] / [`Device::dma_write`] (translation, mask and
//! IOMMU checks, fault recording, counters, cache effects, the observers' event) with the bytes
//! handed to the caller's code where they live instead of copied through its buffer
//! ([`PhysMem::read_runs_with`](crate::PhysMem::read_runs_with)): what a device that checks or
//! generates a frame on the fly does. A coherent device snoops the CPU's cache: a read that
//! meets dirty CPU lines goes through a buffer as [`Device::dma_read`] does; a write goes in
//! place, then any cached copies take the new bytes. (A CPU access racing the DMA sees memory
//! mid-transfer, as on hardware.) `f` runs under a memory chunk lock and must not touch
//! simulated memory.

use super::Device;
use crate::addr::DmaAddr;
use crate::error::SocError;
use std::sync::atomic::Ordering::Relaxed;

impl Device {
    /// The device reads `len` bytes at DMA address `addr`, handing them to `f` piece by piece
    /// in order (module doc). Errors as [`Device::dma_read`]; on error `f` never ran.
    pub fn dma_read_with(
        &self,
        addr: DmaAddr,
        len: u64,
        mut f: impl FnMut(&[u8]),
    ) -> Result<(), SocError> {
        if len == 0 {
            return Ok(());
        }
        let n = usize::try_from(len)
            .map_err(|_| SocError::InvalidArgument(format!("a read of {len:#x} bytes")))?;
        let runs = self.access_runs(addr, len, false)?;
        let mut stale = 0;
        if self.desc.coherent && self.cpu.lock().dirty_bytes_in(&runs) > 0 {
            // Dirty CPU lines are part of what a coherent device reads: through a buffer.
            let mut buf = vec![0u8; n];
            {
                let mut cache = self.cpu.lock();
                self.mem.read_runs(&runs, &mut buf)?;
                cache.snoop_read(&runs, &mut buf);
            }
            f(&buf);
        } else if self.desc.coherent {
            self.mem.read_runs_with(&runs, n, f)?;
        } else {
            self.mem.read_runs_with(&runs, n, f)?;
            if self.observers.any() {
                stale = self.cpu.lock().dirty_bytes_in(&runs);
            }
        }
        self.bytes_read.fetch_add(len, Relaxed);
        self.transfers.fetch_add(1, Relaxed);
        self.notify(addr, len, false, &runs, stale);
        Ok(())
    }

    /// The device writes `len` bytes at DMA address `addr`, `f` setting them piece by piece in
    /// order (module doc); every byte of a piece is `f`'s to set. Errors as
    /// [`Device::dma_write`]; on error no byte changed and `f` never ran.
    pub fn dma_write_with(
        &self,
        addr: DmaAddr,
        len: u64,
        f: impl FnMut(&mut [u8]),
    ) -> Result<(), SocError> {
        if len == 0 {
            return Ok(());
        }
        let n = usize::try_from(len)
            .map_err(|_| SocError::InvalidArgument(format!("a write of {len:#x} bytes")))?;
        let runs = self.access_runs(addr, len, true)?;
        if self.desc.coherent {
            // Written in place; then the CPU's cached copies (if any) take the new bytes.
            self.mem.write_runs_with(&runs, n, f)?;
            let mut cache = self.cpu.lock();
            if cache.caches_any(&runs) {
                let mut buf = vec![0u8; n];
                self.mem.read_runs(&runs, &mut buf)?;
                cache.snoop_write(&runs, &buf);
            }
        } else {
            self.mem.write_runs_with(&runs, n, f)?;
            self.cpu.lock().mark_stale(&runs);
        }
        self.bytes_written.fetch_add(len, Relaxed);
        self.transfers.fetch_add(1, Relaxed);
        self.notify(addr, len, true, &runs, 0);
        Ok(())
    }
}
