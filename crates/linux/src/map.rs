//! CPU mappings of real files: `mmap(2)` on the way in, `munmap(2)` on drop.
//!
//! C side: `mm/mmap.c` (`do_mmap`), and the `mmap` file operation of each file kind —
//! `dma_buf_mmap_internal` (`drivers/dma-buf/dma-buf.c`), `mmap_udmabuf`
//! (`drivers/dma-buf/udmabuf.c`), `shmem_mmap` for memfds.
//!
//! # The concept
//!
//! A [`RealMapping`] is one VMA of the calling process. Like the VMA it stands for, it holds
//! its own reference to the file, so the fd may be closed while the mapping lives (the seam's
//! rule 4). [`Mapping::read`] and [`Mapping::write`] are `memcpy`s into and out of it, checked
//! first against the mapping's length and protection: an access the hardware would answer
//! with SIGSEGV or SIGBUS is refused with `EFAULT` or `EACCES` and touches nothing.
//!
//! A mapping made by a [spawned process](seam::Uapi::spawn_process) lives in the same
//! address space (see [`crate::process`]) and may be used and dropped from any thread.
//!
//! # Why `unsafe` is allowed here
//!
//! `mmap` hands back a raw address; reading and writing through it, and unmapping it, are
//! `unsafe` in Rust. The invariant below is what makes each access sound.
#![allow(unsafe_code)]

use crate::sys::errno;
use rustix::fd::BorrowedFd;
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};
use seam::{Mapping, PROT_READ, PROT_WRITE};
use std::ffi::c_void;
use uapi::Errno;

/// One `mmap` of a file, unmapped when dropped.
///
/// # Invariants
/// `addr..addr + len` is a mapping this value created with `mmap` and nothing else unmaps; it
/// stays mapped until `drop`.
#[derive(Debug)]
pub struct RealMapping {
    addr: usize,
    len: usize,
    prot: u32,
}

impl RealMapping {
    /// The address the mapping starts at (a USERPTR plane's `m.userptr`).
    pub fn addr(&self) -> u64 {
        self.addr as u64
    }

    /// `mmap(NULL, len, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd, offset)`; see `mmap(2)`.
    ///
    /// The kernel checks everything (length 0, alignment, the exporter's page range, access
    /// modes); only lengths and offsets the C types cannot hold are refused here, with the
    /// kernel's `EINVAL`/`EOVERFLOW`.
    pub(crate) fn map(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: u64,
        prot: u32,
        shared: bool,
    ) -> Result<RealMapping, Errno> {
        let len_usize = usize::try_from(len).map_err(|_| Errno::ENOMEM)?;
        if i64::try_from(offset).is_err() {
            return Err(Errno::EOVERFLOW);
        }
        let flags = if shared {
            MapFlags::SHARED
        } else {
            MapFlags::PRIVATE
        };
        let prot_flags = ProtFlags::from_bits_retain(prot);
        // SAFETY: a NULL hint lets the kernel choose a fresh range, so no existing Rust object
        // is replaced; the result is owned by the returned value (the type's invariant).
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len_usize,
                prot_flags,
                flags,
                fd,
                offset,
            )
        }
        .map_err(errno)?;
        // INVARIANT: `ptr..ptr + len` was just mapped and belongs to this value alone.
        Ok(RealMapping {
            addr: ptr as usize,
            len: len_usize,
            prot,
        })
    }

    /// The address the kernel chose (for users who want a slice; the seam never needs it).
    pub fn as_ptr(&self) -> *const u8 {
        self.addr as *const u8
    }

    /// Checks an access of `n` bytes at `offset` against the length and `need` protection.
    fn check(&self, offset: u64, n: usize, need: u32) -> Result<usize, Errno> {
        let start = usize::try_from(offset).map_err(|_| Errno::EFAULT)?;
        let end = start.checked_add(n).ok_or(Errno::EFAULT)?;
        if end > self.len {
            return Err(Errno::EFAULT);
        }
        if self.prot & need == 0 {
            return Err(Errno::EACCES);
        }
        Ok(start)
    }
}

impl Mapping for RealMapping {
    fn len(&self) -> u64 {
        self.len as u64
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let start = self.check(offset, buf.len(), PROT_READ)?;
        // SAFETY: `start..start + buf.len()` lies inside the mapping (checked above), which is
        // readable (PROT_READ checked) and mapped until drop (invariant). Other mappings of the
        // same file may change the bytes concurrently, as in C; the copy reads plain bytes, for
        // which any value is valid, and `buf` cannot overlap a mapping this value owns.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (self.addr + start) as *const u8,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let start = self.check(offset, data.len(), PROT_WRITE)?;
        // SAFETY: inside the mapping (checked), writable (PROT_WRITE checked), mapped until drop
        // (invariant); no Rust reference into the mapping exists, so no aliasing rule is broken.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), (self.addr + start) as *mut u8, data.len())
        };
        Ok(())
    }
}

impl Drop for RealMapping {
    fn drop(&mut self) {
        // SAFETY: the range is this value's own mapping (invariant) and is not used again.
        let _ = unsafe { munmap(self.addr as *mut c_void, self.len) };
    }
}
