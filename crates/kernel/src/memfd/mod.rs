//! memfd: anonymous shared-memory files whose pages udmabuf can pin.
//!
//! C side: `mm/memfd.c` (`memfd_create`, `memfd_add_seals`, `memfd_wait_for_pins`),
//! `mm/shmem.c` (the page cache of a tmpfs inode, `shmem_read_mapping_page`),
//! `fs/hugetlbfs/inode.c` (`MFD_HUGETLB`).
//!
//! A [`Memfd`] is the inode of a `memfd_create(2)` file: a size, a set of seals, and a page
//! cache of real simulated pages from the SoC's page allocator. Pages are allocated on first
//! touch (a write, a pin, a touch through a mapping) and are zero-filled, exactly like shmem; a
//! hole reads as zeros without allocating anything. Reads and writes go through the CPU cache
//! ([`soc::Cpu`]), as `copy_{to,from}_user` does, so a device that maps the pages later sees the
//! bytes once the DMA API has cleaned the lines.
//!
//! # Seals (rules of `memfd_add_seals` and the shmem write paths)
//! 1. Without `MFD_ALLOW_SEALING` the file starts with `F_SEAL_SEAL`: every `add_seals` is
//!    `EPERM`. Once `F_SEAL_SEAL` is set, likewise `EPERM`. Unknown seal bits are `EINVAL`.
//! 2. `F_SEAL_WRITE` is refused with `EBUSY` while a writable shared mapping exists or while a
//!    page is pinned by someone else (a udmabuf: `memfd_wait_for_pins`).
//! 3. `F_SEAL_SHRINK`: `ftruncate` to a smaller size is `EPERM`. `F_SEAL_GROW`: `ftruncate` to
//!    a larger size, or a write past the end, is `EPERM`.
//! 4. `F_SEAL_WRITE` and `F_SEAL_FUTURE_WRITE`: `pwrite` is `EPERM`, a new writable shared
//!    mapping is `EPERM` (existing ones keep working under `F_SEAL_FUTURE_WRITE`).
//! 5. The file-mode checks (adding seals needs a writable fd, `EPERM`; `ftruncate` on a
//!    read-only fd is `EINVAL`; `pwrite`/`pread` need the matching mode, `EBADF`) are the
//!    [`Process`](crate::process::Process)'s, which owns the open file.
//!
//! # Hugetlb
//! With `MFD_HUGETLB` the page cache holds 2 MiB blocks (order 9). As on hugetlbfs, `ftruncate`
//! must be a multiple of 2 MiB (`EINVAL`), `write(2)` is not supported (`EINVAL`; fill it through a
//! mapping), and mappings start at a huge-page-aligned offset.
//!
//! # Lifetime
//! Each block is an `Arc<ShmemBlock>` that frees its pages when the last holder drops it: the page
//! cache holds one reference, a udmabuf pin ([`PinnedPage`]) another. So a udmabuf outlives the
//! memfd's last fd, and truncation never frees a page a device may still reach.
//!
//! # Locking
//! One mutex per memfd protects size, seals, page cache and the writable-mapping count. It is
//! held while allocating pages and while calling into the CPU cache model (both leaf locks in
//! `soc`); it is never held while anything of the dma-buf layer runs.

use crate::kernel::errno;
use dmabuf::error::DmaBufError;
use parking_lot::Mutex;
use soc::{AllocRequest, Page, PhysAddr, Soc, PAGE_SIZE};
use std::collections::BTreeMap;
use std::sync::Arc;
use uapi::ioctl::{
    F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE, MFD_ALLOW_SEALING,
    MFD_CLOEXEC, MFD_HUGETLB,
};
use uapi::Errno;

mod mapping;
mod syscalls;

pub use mapping::MemfdMapping;

/// `MFD_NOEXEC_SEAL`: not executable, and sealed against becoming so (implies sealing allowed).
pub const MFD_NOEXEC_SEAL: u32 = 0x8;
/// `MFD_EXEC`: executable.
pub const MFD_EXEC: u32 = 0x10;
/// `MFD_HUGE_SHIFT`: where a hugetlb page-size code sits in the flags.
pub const MFD_HUGE_SHIFT: u32 = 26;
/// `MFD_HUGE_2MB`: the one huge page size the model offers.
pub const MFD_HUGE_2MB: u32 = 21 << MFD_HUGE_SHIFT;
/// `F_SEAL_EXEC`: the mode's exec bits cannot change.
pub const F_SEAL_EXEC: u32 = 0x20;
/// Every seal `add_seals` knows (`F_ALL_SEALS`).
pub const F_ALL_SEALS: u32 =
    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;
/// `MFD_NAME_MAX_LEN`: `NAME_MAX` minus the `"memfd:"` prefix.
pub const MFD_NAME_MAX_LEN: usize = 255 - 6;
/// The size of a hugetlb memfd's pages (2 MiB).
pub const HPAGE_SIZE: u64 = 2 << 20;
const HPAGE_ORDER: u32 = 9;

/// One block of a memfd's page cache (`struct folio`): freed to the page allocator when the last
/// holder (the page cache, or a udmabuf pin) drops it.
pub struct ShmemBlock {
    soc: Arc<Soc>,
    page: Page,
}

impl ShmemBlock {
    /// The block's pages.
    pub fn page(&self) -> Page {
        self.page
    }
}

impl std::fmt::Debug for ShmemBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShmemBlock({:?})", self.page)
    }
}

impl Drop for ShmemBlock {
    fn drop(&mut self) {
        // The block came from this allocator with this order and is freed exactly once (this is
        // the only owner of `page`), so the free cannot be refused; observers still hear of it.
        let _ = self.soc.free_pages(self.page);
    }
}

/// A `PAGE_SIZE` page of a memfd held by someone outside the page cache (`pin_user_pages`):
/// the block stays allocated while the pin lives.
#[derive(Clone, Debug)]
pub struct PinnedPage {
    block: Arc<ShmemBlock>,
    offset: u64,
}

impl PinnedPage {
    /// The physical address of the pinned page.
    pub fn phys(&self) -> PhysAddr {
        self.block.page.addr.add(self.offset)
    }
}

/// A memfd inode (see the module documentation).
pub struct Memfd {
    ino: u64,
    name: String,
    flags: u32,
    soc: Arc<Soc>,
    block_size: u64,
    /// Size, seals, page cache, writable mappings (the module's one lock).
    state: Mutex<MemfdState>,
}

struct MemfdState {
    size: u64,
    seals: u32,
    blocks: BTreeMap<u64, Arc<ShmemBlock>>,
    writable_mappings: usize,
}

impl std::fmt::Debug for Memfd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Memfd")
            .field("name", &self.name)
            .field("size", &st.size)
            .field("seals", &st.seals)
            .field("blocks", &st.blocks.len())
            .finish()
    }
}

impl Memfd {
    /// `memfd_create(name, flags)`: a new, empty memfd whose pages come from `soc`.
    ///
    /// Errors: `EINVAL` for unknown flags, a huge page size without `MFD_HUGETLB` or other than
    /// 2 MiB, `MFD_EXEC` with `MFD_NOEXEC_SEAL`, or a name longer than [`MFD_NAME_MAX_LEN`].
    pub fn create(soc: &Arc<Soc>, name: &str, flags: u32) -> Result<Arc<Memfd>, DmaBufError> {
        let known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
        let huge_code = flags & !known;
        if huge_code != 0 && (flags & MFD_HUGETLB == 0 || huge_code != MFD_HUGE_2MB) {
            return Err(errno(
                Errno::EINVAL,
                format!("memfd_create: unknown flags {flags:#x}"),
            ));
        }
        if flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0 {
            return Err(errno(
                Errno::EINVAL,
                "memfd_create: MFD_EXEC with MFD_NOEXEC_SEAL",
            ));
        }
        if name.len() > MFD_NAME_MAX_LEN {
            return Err(errno(
                Errno::EINVAL,
                format!(
                    "memfd_create: name of {} bytes is longer than {MFD_NAME_MAX_LEN}",
                    name.len()
                ),
            ));
        }
        let mut seals = if flags & (MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL) != 0 {
            0
        } else {
            F_SEAL_SEAL
        };
        if flags & MFD_NOEXEC_SEAL != 0 {
            seals |= F_SEAL_EXEC;
        }
        Ok(Arc::new(Memfd {
            // The machine's `get_next_ino` (shmem's inode); dma-bufs count on their own.
            ino: soc.ids().next_ino(),
            name: format!("memfd:{name}"),
            flags,
            soc: soc.clone(),
            block_size: if flags & MFD_HUGETLB != 0 {
                HPAGE_SIZE
            } else {
                PAGE_SIZE
            },
            state: Mutex::new(MemfdState {
                size: 0,
                seals,
                blocks: BTreeMap::new(),
                writable_mappings: 0,
            }),
        }))
    }

    /// The inode number (unique per memfd).
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The dentry name, `"memfd:<name>"` as `/proc/self/fd` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `memfd_create` flags.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether this is a hugetlbfs memfd (`MFD_HUGETLB`).
    pub fn is_hugetlb(&self) -> bool {
        self.block_size == HPAGE_SIZE
    }

    /// The size of one page-cache block: `PAGE_SIZE`, or [`HPAGE_SIZE`] for hugetlb.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// `i_size`.
    pub fn size(&self) -> u64 {
        self.state.lock().size
    }

    /// `F_GET_SEALS`.
    pub fn seals(&self) -> u32 {
        self.state.lock().seals
    }

    /// Bytes of the page cache that are allocated (holes excluded).
    pub fn resident_bytes(&self) -> u64 {
        self.state.lock().blocks.len() as u64 * self.block_size
    }

    /// `ftruncate(fd, len)` on the inode (the fd's mode is checked by the caller).
    ///
    /// Errors: `EINVAL` for a length above `i64::MAX` or, for hugetlb, not a multiple of 2 MiB;
    /// `EPERM` when `F_SEAL_SHRINK`/`F_SEAL_GROW` forbid the change. Shrinking drops the pages
    /// past the end (pinned ones live on with their pinner) and zeroes the tail of the last page.
    pub fn ftruncate(&self, len: u64) -> Result<(), DmaBufError> {
        if len > i64::MAX as u64 {
            return Err(errno(
                Errno::EINVAL,
                format!("ftruncate: length {len:#x} is negative"),
            ));
        }
        if !len.is_multiple_of(self.block_size) && self.is_hugetlb() {
            return Err(errno(
                Errno::EINVAL,
                format!("ftruncate: {len:#x} is not a multiple of the 2 MiB huge page size"),
            ));
        }
        let dropped;
        {
            let mut st = self.state.lock();
            if len < st.size && st.seals & F_SEAL_SHRINK != 0 {
                return Err(errno(
                    Errno::EPERM,
                    "ftruncate: the memfd is sealed against shrinking",
                ));
            }
            if len > st.size && st.seals & F_SEAL_GROW != 0 {
                return Err(errno(
                    Errno::EPERM,
                    "ftruncate: the memfd is sealed against growing",
                ));
            }
            if len < st.size {
                let first_gone = len.div_ceil(self.block_size);
                dropped = st.blocks.split_off(&first_gone);
                // The partial block at the new end keeps its head; its tail reads as zeros again.
                if !len.is_multiple_of(self.block_size) {
                    if let Some(b) = st.blocks.get(&(len / self.block_size)) {
                        let at = b.page.addr.add(len % self.block_size);
                        let tail = self.block_size - len % self.block_size;
                        self.soc.cpu().write(at, &vec![0u8; tail as usize])?;
                    }
                }
            } else {
                dropped = BTreeMap::new();
            }
            st.size = len;
        }
        drop(dropped);
        Ok(())
    }

    /// `pwrite(fd, data, offset)` on the inode: writes through the CPU cache, allocating
    /// zero-filled pages for holes and growing the file. Returns the bytes written.
    ///
    /// Errors: `EINVAL` on hugetlb (no `write` on hugetlbfs) or for an offset past `i64::MAX`;
    /// `EPERM` under `F_SEAL_WRITE`/`F_SEAL_FUTURE_WRITE`, or under `F_SEAL_GROW` past the end;
    /// `ENOMEM` if pages run out (then nothing is written and no page stays allocated).
    pub fn pwrite(&self, offset: u64, data: &[u8]) -> Result<usize, DmaBufError> {
        if self.is_hugetlb() {
            return Err(errno(
                Errno::EINVAL,
                "pwrite: hugetlbfs files cannot be written with write(2)",
            ));
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or_else(|| {
                errno(
                    Errno::EINVAL,
                    format!("pwrite: offset {offset:#x} is out of range"),
                )
            })?;
        let mut st = self.state.lock();
        if st.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(errno(
                Errno::EPERM,
                "pwrite: the memfd is sealed against writing",
            ));
        }
        if end > st.size && st.seals & F_SEAL_GROW != 0 {
            return Err(errno(
                Errno::EPERM,
                "pwrite: writing past the end of a memfd sealed against growing",
            ));
        }
        if data.is_empty() {
            return Ok(0);
        }
        self.populate(
            &mut st,
            offset / self.block_size,
            (end - 1) / self.block_size,
        )?;
        self.copy(&st, offset, data.len(), |pa, at, n| {
            self.soc.cpu().write(pa, &data[at..at + n])
        })?;
        st.size = st.size.max(end);
        Ok(data.len())
    }

    /// `pread(fd, len, offset)` on the inode: up to `len` bytes, fewer at the end of the file,
    /// none past it. Holes read as zeros and stay holes.
    pub fn pread(&self, offset: u64, len: usize) -> Result<Vec<u8>, DmaBufError> {
        let st = self.state.lock();
        let end = offset.saturating_add(len as u64).min(st.size);
        if end <= offset {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let len = out.len();
        self.copy(&st, offset, len, |pa, at, n| {
            self.soc.cpu().read(pa, &mut out[at..at + n])
        })?;
        Ok(out)
    }

    /// `F_ADD_SEALS` on the inode (the fd's mode is checked by the caller).
    ///
    /// Errors: `EINVAL` for unknown bits; `EPERM` when sealing is not allowed or `F_SEAL_SEAL`
    /// is set; `EBUSY` for `F_SEAL_WRITE` while a writable shared mapping exists or a page is
    /// pinned (by a udmabuf).
    pub fn add_seals(&self, seals: u32) -> Result<(), DmaBufError> {
        if seals & !F_ALL_SEALS != 0 {
            return Err(errno(
                Errno::EINVAL,
                format!("F_ADD_SEALS: unknown seals {seals:#x}"),
            ));
        }
        let mut st = self.state.lock();
        if st.seals & F_SEAL_SEAL != 0 {
            return Err(errno(
                Errno::EPERM,
                "F_ADD_SEALS: the memfd is sealed with F_SEAL_SEAL (or was created without MFD_ALLOW_SEALING)",
            ));
        }
        if seals & F_SEAL_WRITE != 0 && st.seals & F_SEAL_WRITE == 0 {
            if st.writable_mappings > 0 {
                return Err(errno(
                    Errno::EBUSY,
                    format!(
                        "F_SEAL_WRITE: {} writable shared mapping(s) exist",
                        st.writable_mappings
                    ),
                ));
            }
            if let Some((idx, _)) = st.blocks.iter().find(|(_, b)| Arc::strong_count(b) > 1) {
                return Err(errno(
                    Errno::EBUSY,
                    format!(
                        "F_SEAL_WRITE: page at offset {:#x} is pinned",
                        idx * self.block_size
                    ),
                ));
            }
        }
        st.seals |= seals;
        Ok(())
    }

    /// Pins the `PAGE_SIZE` pages of `[offset, offset + len)` (`shmem_read_mapping_page` /
    /// `memfd_pin_folios`), allocating holes. `offset` and `len` must be page aligned.
    ///
    /// Errors: `EINVAL` for a misaligned or empty range or one past the end of the file;
    /// `ENOMEM` if pages run out (then nothing stays pinned or allocated).
    pub fn pin_pages(&self, offset: u64, len: u64) -> Result<Vec<PinnedPage>, DmaBufError> {
        if !offset.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(errno(
                Errno::EINVAL,
                "pin: offset and size must be non-zero page multiples",
            ));
        }
        let mut st = self.state.lock();
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= st.size)
            .ok_or_else(|| {
                errno(
                    Errno::EINVAL,
                    format!(
                        "pin: {offset:#x}+{len:#x} is past the end of {} ({:#x})",
                        self.name, st.size
                    ),
                )
            })?;
        self.populate(
            &mut st,
            offset / self.block_size,
            (end - 1) / self.block_size,
        )?;
        Ok((offset / PAGE_SIZE..end / PAGE_SIZE)
            .map(|pg| {
                let off = pg * PAGE_SIZE;
                PinnedPage {
                    block: st.blocks[&(off / self.block_size)].clone(),
                    offset: off % self.block_size,
                }
            })
            .collect())
    }

    /// Allocates every missing block of `first..=last`, zero-filled; all or nothing.
    fn populate(&self, st: &mut MemfdState, first: u64, last: u64) -> Result<(), DmaBufError> {
        let order = if self.is_hugetlb() { HPAGE_ORDER } else { 0 };
        let mut new = Vec::new();
        for idx in first..=last {
            if st.blocks.contains_key(&idx) {
                continue;
            }
            // On failure `new` is dropped, which frees every block allocated so far.
            let page = self.soc.pages().alloc_pages(&AllocRequest::new(order))?;
            let block = Arc::new(ShmemBlock {
                soc: self.soc.clone(),
                page,
            });
            // shmem pages are cleared before use: drop whatever the previous owner left in the
            // cache (written back, then overwritten), then zero memory.
            self.soc.cpu().flush(page.addr, page.size())?;
            self.soc.mem().fill(page.addr, page.size(), 0)?;
            new.push((idx, block));
        }
        st.blocks.extend(new);
        Ok(())
    }

    /// Walks `[offset, offset + len)` over resident blocks (holes are skipped: reads leave
    /// zeros, writes have populated them first), calling `f(phys, buf_offset, n)` per piece.
    fn copy(
        &self,
        st: &MemfdState,
        offset: u64,
        len: usize,
        mut f: impl FnMut(PhysAddr, usize, usize) -> Result<(), soc::SocError>,
    ) -> Result<(), DmaBufError> {
        let mut done = 0usize;
        while done < len {
            let pos = offset + done as u64;
            let in_block = pos % self.block_size;
            let n = ((self.block_size - in_block) as usize).min(len - done);
            if let Some(b) = st.blocks.get(&(pos / self.block_size)) {
                f(b.page.addr.add(in_block), done, n)?;
            }
            done += n;
        }
        Ok(())
    }

    /// `mmap(MAP_SHARED)` of `[offset, offset + len)`: a mapping whose accesses go through the
    /// CPU cache to the page cache, allocating holes on touch.
    ///
    /// Errors: `EINVAL` for an empty length or an offset not aligned to [`block_size`](Self::block_size);
    /// `EPERM` for a writable mapping under `F_SEAL_WRITE`/`F_SEAL_FUTURE_WRITE`.
    pub fn mmap(
        self: &Arc<Self>,
        offset: u64,
        len: u64,
        writable: bool,
    ) -> Result<MemfdMapping, DmaBufError> {
        if len == 0 || !offset.is_multiple_of(self.block_size) || offset.checked_add(len).is_none()
        {
            return Err(errno(
                Errno::EINVAL,
                format!("mmap: bad range {offset:#x}+{len:#x}"),
            ));
        }
        let mut st = self.state.lock();
        if writable {
            if st.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
                return Err(errno(
                    Errno::EPERM,
                    "mmap: writable shared mapping of a write-sealed memfd",
                ));
            }
            st.writable_mappings += 1;
        }
        Ok(MemfdMapping {
            memfd: self.clone(),
            offset,
            len,
            writable,
        })
    }
}
