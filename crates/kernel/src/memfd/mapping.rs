//! Shared mappings of a memfd (`shmem_mmap`, `shmem_fault`): accesses go through the CPU cache
//! to the page cache, holes are faulted in, pages past the end of the file are `SIGBUS`.

use super::{Memfd, MemfdState};
use crate::kernel::errno;
use dmabuf::error::DmaBufError;
use soc::PAGE_SIZE;
use std::sync::Arc;
use uapi::Errno;

/// A shared mapping of a memfd (see [`Memfd::mmap`]). Accesses past the end of the file fault
/// (`SIGBUS`, reported as `EFAULT`); dropping it is `munmap`.
pub struct MemfdMapping {
    pub(super) memfd: Arc<Memfd>,
    pub(super) offset: u64,
    pub(super) len: u64,
    pub(super) writable: bool,
}

impl std::fmt::Debug for MemfdMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MemfdMapping({} +{:#x} len {:#x})",
            self.memfd.name, self.offset, self.len
        )
    }
}

impl MemfdMapping {
    /// Length of the mapping in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the mapping is empty (never: `mmap` refuses a zero length).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memfd mapped.
    pub fn memfd(&self) -> &Arc<Memfd> {
        &self.memfd
    }

    fn check(&self, at: u64, n: usize, st: &MemfdState) -> Result<u64, DmaBufError> {
        let end = at
            .checked_add(n as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| {
                errno(
                    Errno::EFAULT,
                    format!(
                        "access {at:#x}+{n:#x} outside a mapping of {:#x} bytes",
                        self.len
                    ),
                )
            })?;
        let file_end = self.offset + end;
        // A page wholly past i_size is SIGBUS; the part of the last page past i_size is zeros.
        if file_end > st.size.next_multiple_of(PAGE_SIZE) {
            return Err(errno(
                Errno::EFAULT,
                format!(
                    "SIGBUS: access at file offset {:#x} is past the end of {}",
                    file_end - 1,
                    self.memfd.name
                ),
            ));
        }
        Ok(self.offset + at)
    }

    /// Loads `buf.len()` bytes at `at` in the mapping (faulting holes in, as a read fault does).
    pub fn read(&self, at: u64, buf: &mut [u8]) -> Result<(), DmaBufError> {
        let m = &self.memfd;
        let mut st = m.state.lock();
        let pos = self.check(at, buf.len(), &st)?;
        if buf.is_empty() {
            return Ok(());
        }
        m.populate(
            &mut st,
            pos / m.block_size,
            (pos + buf.len() as u64 - 1) / m.block_size,
        )?;
        m.copy(&st, pos, buf.len(), |pa, o, n| {
            m.soc.cpu().read(pa, &mut buf[o..o + n])
        })
    }

    /// Stores `data` at `at` in the mapping. Errors: `EFAULT` for a read-only mapping or an
    /// access outside it.
    pub fn write(&self, at: u64, data: &[u8]) -> Result<(), DmaBufError> {
        if !self.writable {
            return Err(errno(
                Errno::EFAULT,
                "SIGSEGV: write to a read-only mapping",
            ));
        }
        let m = &self.memfd;
        let mut st = m.state.lock();
        let pos = self.check(at, data.len(), &st)?;
        if data.is_empty() {
            return Ok(());
        }
        m.populate(
            &mut st,
            pos / m.block_size,
            (pos + data.len() as u64 - 1) / m.block_size,
        )?;
        m.copy(&st, pos, data.len(), |pa, o, n| {
            m.soc.cpu().write(pa, &data[o..o + n])
        })
    }
}

impl Drop for MemfdMapping {
    fn drop(&mut self) {
        if self.writable {
            self.memfd.state.lock().writable_mappings -= 1;
        }
    }
}
