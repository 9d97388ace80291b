//! The physical address space: banks of memory, backed lazily by host memory.
//!
//! C side: the memblock/`struct resource` view of RAM (`mm/memblock.c`, `/proc/iomem`).
//!
//! A SoC's physical address space is a set of non-overlapping **banks** ([`Bank`]) with holes
//! between them. Each bank has a [`BankKind`]: system RAM (with `struct page`s, served by the page
//! allocator), a carveout (reserved, no `struct page`s) or device-local memory (VRAM). An access
//! must lie wholly inside one bank; one that touches a hole or runs past a bank is answered with
//! [`SocError::OutOfRange`] and touches nothing.
//!
//! # Backing
//! A bank is backed by host memory in 2 MiB chunks that are allocated on the first write
//! (zero-filled allocations the host kernel itself commits page by page), so a machine with 64 GiB
//! of banks costs only what it touches. A read of a chunk that was never written returns zeros
//! without allocating it.
//!
//! # Locking
//! Each chunk sits behind its own reader-writer lock: accesses to different chunks run in
//! parallel, and a read never observes a torn write of a single `write` call within one chunk.
//! Concurrent device accesses to the same bytes are therefore well defined (one of them wins), as
//! on a real memory controller; whether the pipeline *should* have raced is the DMA checker's
//! business, not this module's. No lock is held across chunks (but for a copy's source and
//! destination, see `runs.rs`), and none is held on return.

use crate::addr::{PhysAddr, PAGE_SIZE};
use crate::desc::{BankDesc, BankKind};
use crate::error::SocError;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

mod runs;
mod visit;

pub(crate) use runs::runs_overlap;
pub use visit::VISIT_SPAN;

const CHUNK_SHIFT: u32 = 21;

/// One chunk of host memory backing a bank: allocated on first write, then locked per access.
type Chunk = OnceLock<RwLock<Box<[u8]>>>;

/// The chunk lock a batched access holds: (bank index, chunk index, guard).
type Held<G> = Option<(usize, usize, G)>;
/// Host memory is committed to a bank in chunks of this many bytes (2 MiB).
pub const CHUNK_SIZE: u64 = 1 << CHUNK_SHIFT;

/// Identifies a bank within its [`PhysMem`]: the index in [`PhysMem::banks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BankId(pub usize);

/// One bank of memory.
///
/// # Invariants
/// `base` and `size` are page aligned, `size > 0`, and `base + size` does not overflow.
pub struct Bank {
    id: BankId,
    name: String,
    kind: BankKind,
    base: PhysAddr,
    size: u64,
    chunks: Box<[Chunk]>,
}

impl Bank {
    /// The bank's identifier in its machine.
    pub fn id(&self) -> BankId {
        self.id
    }

    /// The bank's name (`"dram0"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What kind of memory the bank is.
    pub fn kind(&self) -> BankKind {
        self.kind
    }

    /// First physical address of the bank.
    pub fn base(&self) -> PhysAddr {
        self.base
    }

    /// Size of the bank in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// One past the last physical address of the bank.
    pub fn end(&self) -> PhysAddr {
        self.base.add(self.size)
    }

    /// Whether `[addr, addr + len)` lies wholly inside this bank (`len` may be zero).
    pub fn contains(&self, addr: PhysAddr, len: u64) -> bool {
        addr >= self.base
            && addr
                .0
                .checked_add(len)
                .is_some_and(|end| end <= self.end().0)
            && addr < self.end()
    }

    /// Bytes of host memory committed to this bank so far.
    pub fn committed_bytes(&self) -> u64 {
        self.chunks.iter().filter(|c| c.get().is_some()).count() as u64 * CHUNK_SIZE
    }

    fn chunk_len(&self, index: usize) -> usize {
        let start = (index as u64) << CHUNK_SHIFT;
        (self.size - start).min(CHUNK_SIZE) as usize
    }

    fn chunk_for_write(&self, index: usize) -> &RwLock<Box<[u8]>> {
        self.chunks[index]
            .get_or_init(|| RwLock::new(vec![0u8; self.chunk_len(index)].into_boxed_slice()))
    }

    /// Visits `[off, off + len)` of the bank chunk by chunk: `f(chunk index, offset in chunk,
    /// offset in the caller's buffer, length)`.
    fn for_each_piece(&self, off: u64, len: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
        let mut done = 0usize;
        while done < len {
            let pos = off + done as u64;
            let index = (pos >> CHUNK_SHIFT) as usize;
            let in_chunk = (pos & (CHUNK_SIZE - 1)) as usize;
            let n = (CHUNK_SIZE as usize - in_chunk).min(len - done);
            f(index, in_chunk, done, n);
            done += n;
        }
    }
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base", &self.base)
            .field("size", &self.size)
            .finish()
    }
}

/// The physical address space of one machine.
pub struct PhysMem {
    banks: Vec<Bank>,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

impl PhysMem {
    /// Builds the address space from bank descriptions, checking that every bank has a unique
    /// non-empty name, a page-aligned base, a non-zero page-multiple size, and overlaps no other.
    ///
    /// ```
    /// use soc::{BankDesc, BankKind, ByteSize, PhysAddr, PhysMem};
    /// let mem = PhysMem::new(&[BankDesc {
    ///     name: "dram0".into(), kind: BankKind::System,
    ///     base: ByteSize(0x4000_0000), size: ByteSize(16 << 30),
    /// }]).unwrap();
    /// mem.write(PhysAddr(0x4000_1000), b"hello").unwrap();
    /// let mut buf = [0u8; 5];
    /// mem.read(PhysAddr(0x4000_1000), &mut buf).unwrap();
    /// assert_eq!(&buf, b"hello");
    /// assert!(mem.committed_bytes() < 16 << 30);
    /// ```
    pub fn new(descs: &[BankDesc]) -> Result<PhysMem, SocError> {
        let mut banks: Vec<Bank> = Vec::with_capacity(descs.len());
        for (i, d) in descs.iter().enumerate() {
            if d.name.is_empty() {
                return Err(SocError::InvalidDesc(format!(
                    "bank #{i} has an empty name"
                )));
            }
            if banks.iter().any(|b| b.name == d.name) {
                return Err(SocError::InvalidDesc(format!(
                    "two banks are named `{}`",
                    d.name
                )));
            }
            let (base, size) = (d.base.bytes(), d.size.bytes());
            if size == 0 {
                return Err(SocError::InvalidDesc(format!(
                    "bank `{}` has size 0",
                    d.name
                )));
            }
            if base % PAGE_SIZE != 0 || size % PAGE_SIZE != 0 {
                return Err(SocError::InvalidDesc(format!(
                    "bank `{}` ({base:#x}+{size:#x}) is not page aligned",
                    d.name
                )));
            }
            if base.checked_add(size).is_none() {
                return Err(SocError::InvalidDesc(format!(
                    "bank `{}` runs past the 64-bit address space",
                    d.name
                )));
            }
            if let Some(other) = banks
                .iter()
                .find(|b| base < b.end().0 && b.base.0 < base + size)
            {
                return Err(SocError::InvalidDesc(format!(
                    "bank `{}` ({base:#x}+{size:#x}) overlaps bank `{}`",
                    d.name, other.name
                )));
            }
            let nchunks = size.div_ceil(CHUNK_SIZE) as usize;
            banks.push(Bank {
                id: BankId(i),
                name: d.name.clone(),
                kind: d.kind,
                base: PhysAddr(base),
                size,
                chunks: (0..nchunks).map(|_| OnceLock::new()).collect(),
            });
        }
        Ok(PhysMem {
            banks,
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        })
    }

    /// All banks, in the order they were described ([`BankId`] is the index).
    pub fn banks(&self) -> &[Bank] {
        &self.banks
    }

    /// The bank with this id.
    pub fn bank(&self, id: BankId) -> Result<&Bank, SocError> {
        self.banks
            .get(id.0)
            .ok_or_else(|| SocError::UnknownBank(format!("#{}", id.0)))
    }

    /// The bank with this name.
    pub fn bank_by_name(&self, name: &str) -> Result<&Bank, SocError> {
        self.banks
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| SocError::UnknownBank(name.to_string()))
    }

    /// The bank that holds `addr`, if any.
    pub fn bank_of(&self, addr: PhysAddr) -> Option<&Bank> {
        self.banks.iter().find(|b| b.contains(addr, 1))
    }

    /// The bank that wholly holds `[addr, addr + len)`, or [`SocError::OutOfRange`].
    pub fn check_range(&self, addr: PhysAddr, len: u64) -> Result<&Bank, SocError> {
        self.banks
            .iter()
            .find(|b| b.contains(addr, len.max(1)))
            .ok_or(SocError::OutOfRange { addr, len })
    }

    /// Reads `buf.len()` bytes at `addr`, as a memory controller would (no CPU cache involved).
    pub fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), SocError> {
        let bank = self.check_range(addr, buf.len() as u64)?;
        let off = addr.0 - bank.base.0;
        bank.for_each_piece(off, buf.len(), |index, at, pos, n| {
            match bank.chunks[index].get() {
                Some(chunk) => buf[pos..pos + n].copy_from_slice(&chunk.read()[at..at + n]),
                None => buf[pos..pos + n].fill(0),
            }
        });
        self.bytes_read
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Writes `data` at `addr`, committing host memory for the chunks it touches.
    pub fn write(&self, addr: PhysAddr, data: &[u8]) -> Result<(), SocError> {
        let bank = self.check_range(addr, data.len() as u64)?;
        let off = addr.0 - bank.base.0;
        bank.for_each_piece(off, data.len(), |index, at, pos, n| {
            bank.chunk_for_write(index).write()[at..at + n].copy_from_slice(&data[pos..pos + n]);
        });
        self.bytes_written
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Sets `len` bytes at `addr` to `byte`. Filling never-written chunks with zero commits
    /// nothing.
    pub fn fill(&self, addr: PhysAddr, len: u64, byte: u8) -> Result<(), SocError> {
        let bank = self.check_range(addr, len)?;
        let off = addr.0 - bank.base.0;
        let len = usize::try_from(len).map_err(|_| SocError::OutOfRange { addr, len })?;
        bank.for_each_piece(off, len, |index, at, _pos, n| {
            if byte == 0 && bank.chunks[index].get().is_none() {
                return;
            }
            bank.chunk_for_write(index).write()[at..at + n].fill(byte);
        });
        self.bytes_written.fetch_add(len as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Copies `len` bytes from `src` to `dst` (the ranges may be in different banks; overlapping
    /// ranges copy as `memmove`).
    pub fn copy(&self, src: PhysAddr, dst: PhysAddr, len: u64) -> Result<(), SocError> {
        self.check_range(src, len)?;
        self.check_range(dst, len)?;
        const STEP: u64 = 64 << 10;
        let mut buf = vec![0u8; STEP.min(len) as usize];
        // Walk backwards when dst overlaps src from above, so overlapping copies act as memmove.
        let backwards = dst > src && dst.0 < src.0 + len;
        let mut done = 0;
        while done < len {
            let n = STEP.min(len - done);
            let at = if backwards { len - done - n } else { done };
            self.read(src.add(at), &mut buf[..n as usize])?;
            self.write(dst.add(at), &buf[..n as usize])?;
            done += n;
        }
        Ok(())
    }

    /// Bytes of host memory committed to the whole address space so far.
    pub fn committed_bytes(&self) -> u64 {
        self.banks.iter().map(Bank::committed_bytes).sum()
    }

    /// Total bytes read and written through this address space (all agents).
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.bytes_read.load(Ordering::Relaxed),
            self.bytes_written.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::desc::ByteSize;

    fn bank(name: &str, base: u64, size: u64) -> BankDesc {
        BankDesc {
            name: name.into(),
            kind: BankKind::System,
            base: ByteSize(base),
            size: ByteSize(size),
        }
    }

    pub(super) fn two_banks() -> PhysMem {
        PhysMem::new(&[bank("lo", 0, 6 << 20), bank("hi", 8 << 20, 4 << 20)]).unwrap()
    }

    #[test]
    fn a_64_gib_address_space_commits_only_what_is_touched() {
        let mem = PhysMem::new(&[bank("big", 1 << 30, 64 << 30)]).unwrap();
        mem.write(PhysAddr((1 << 30) + (63 << 30)), &[1, 2, 3])
            .unwrap();
        mem.write(PhysAddr(1 << 30), &[9]).unwrap();
        assert_eq!(mem.committed_bytes(), 2 * CHUNK_SIZE);
        let mut b = [0xffu8; 4];
        mem.read(PhysAddr((1 << 30) + (32 << 30)), &mut b).unwrap();
        assert_eq!(b, [0; 4], "untouched memory reads as zero");
        assert_eq!(
            mem.committed_bytes(),
            2 * CHUNK_SIZE,
            "reads commit nothing"
        );
    }

    #[test]
    fn access_across_a_bank_hole_is_out_of_range_and_touches_nothing() {
        let mem = two_banks();
        let e = mem
            .write(PhysAddr((6 << 20) - 2), &[1, 2, 3, 4])
            .unwrap_err();
        assert_eq!(
            e,
            SocError::OutOfRange {
                addr: PhysAddr((6 << 20) - 2),
                len: 4
            }
        );
        let mut b = [0u8; 2];
        mem.read(PhysAddr((6 << 20) - 2), &mut b).unwrap();
        assert_eq!(b, [0, 0]);
        assert!(
            mem.read(PhysAddr(7 << 20), &mut b).is_err(),
            "inside the hole"
        );
        assert!(
            mem.read(PhysAddr(u64::MAX - 1), &mut b).is_err(),
            "wrapping end"
        );
    }

    #[test]
    fn writes_spanning_chunks_read_back_intact() {
        let mem = two_banks();
        let data: Vec<u8> = (0..(3 * CHUNK_SIZE / 2) as usize)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let at = PhysAddr(CHUNK_SIZE / 2 + 3);
        mem.write(at, &data).unwrap();
        let mut back = vec![0; data.len()];
        mem.read(at, &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn copy_between_banks_and_overlapping_acts_as_memmove() {
        let mem = two_banks();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        mem.write(PhysAddr(4096), &data).unwrap();
        mem.copy(PhysAddr(4096), PhysAddr(8 << 20), data.len() as u64)
            .unwrap();
        let mut back = vec![0; data.len()];
        mem.read(PhysAddr(8 << 20), &mut back).unwrap();
        assert_eq!(back, data);
        mem.copy(PhysAddr(4096), PhysAddr(4096 + 100), data.len() as u64)
            .unwrap();
        mem.read(PhysAddr(4096 + 100), &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn bad_bank_descriptions_are_named() {
        let e = |d: &[BankDesc]| PhysMem::new(d).err().unwrap().to_string();
        assert!(e(&[bank("a", 0, 0)]).contains("size 0"));
        assert!(e(&[bank("a", 100, 4096)]).contains("not page aligned"));
        assert!(e(&[bank("a", 0, 8192), bank("b", 4096, 4096)]).contains("overlaps bank `a`"));
        assert!(e(&[bank("a", 0, 4096), bank("a", 8192, 4096)]).contains("two banks"));
        assert!(e(&[bank("", 0, 4096)]).contains("empty name"));
        assert!(e(&[bank("a", u64::MAX - 4095, 8192)]).contains("64-bit"));
    }

    #[test]
    fn lookup_by_name_and_address() {
        let mem = two_banks();
        assert_eq!(mem.bank_by_name("hi").unwrap().base(), PhysAddr(8 << 20));
        assert_eq!(mem.bank_of(PhysAddr(9 << 20)).unwrap().name(), "hi");
        assert!(mem.bank_of(PhysAddr(7 << 20)).is_none());
        assert_eq!(
            mem.bank_by_name("nope").unwrap_err(),
            SocError::UnknownBank("nope".into())
        );
    }
}
