//! The program format: [`Op`]s, one UAPI call each, and [`decode`], which reads any byte string
//! as a program.
//!
//! Each op is an opcode byte, a process byte, then its arguments; bytes past the end read as 0.
//! Fds are chosen as "the n-th fd this process got back" or as raw numbers (not open, negative,
//! or the terminal fds 0-2); lengths and offsets come from small tables of good and bad values.

/// Lengths the ops draw from: good, unaligned, empty and absurd ones.
pub(super) const LENS: [u64; 12] = [
    0,
    1,
    4096,
    5000,
    8192,
    3 * 4096,
    65536,
    1 << 20,
    4095,
    u64::MAX,
    u64::MAX - 4094,
    64 << 20,
];
/// Offsets the ops draw from.
pub(super) const OFFSETS: [u64; 6] = [0, 4096, 2048, 8192, 1 << 20, u64::MAX - 4095];
/// Heap names, including ones that do not exist.
pub(super) const HEAPS: [&str; 5] = ["system", "cma0", "carveout-carveout0", "nope", ""];

/// Which fd a call gets: one the process holds (by index, modulo), or a raw number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdSel {
    /// The n-th fd the process got back (modulo how many it holds; a raw 1000 if none).
    Held(u8),
    /// A raw number, usually not open (`-1`, `1000`) or a terminal fd (0-2).
    Raw(i32),
}

/// One UAPI call with its arguments (`p` is the process index, modulo the process count).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are the call's arguments
pub enum Op {
    /// `open_heap` of a name from a table (some do not exist).
    OpenHeap { p: u8, heap: u8 },
    /// `heap_alloc`.
    HeapAlloc {
        p: u8,
        fd: FdSel,
        len: u8,
        fd_flags: u32,
        heap_flags: u64,
    },
    /// `memfd_create`.
    MemfdCreate { p: u8, flags: u32 },
    /// `ftruncate`.
    Ftruncate { p: u8, fd: FdSel, len: u8 },
    /// `pwrite` of `n % 9000` bytes.
    Pwrite { p: u8, fd: FdSel, off: u8, n: u16 },
    /// `pread` of `n % 9000` bytes.
    Pread { p: u8, fd: FdSel, off: u8, n: u16 },
    /// `add_seals`.
    AddSeals { p: u8, fd: FdSel, seals: u32 },
    /// `udmabuf_create`.
    UdmabufCreate {
        p: u8,
        fd: FdSel,
        off: u8,
        len: u8,
        flags: u32,
    },
    /// `udmabuf_create_list` of up to 4 items.
    UdmabufList { p: u8, items: Vec<(FdSel, u8, u8)> },
    /// `dma_buf_sync` (only on an idle fd: rule 2 of the parent module).
    Sync { p: u8, fd: FdSel, flags: u64 },
    /// `dma_buf_set_name` of `len` bytes.
    SetName { p: u8, fd: FdSel, len: u8 },
    /// `export_sync_file`.
    Export { p: u8, fd: FdSel, flags: u32 },
    /// `import_sync_file`.
    Import {
        p: u8,
        fd: FdSel,
        flags: u32,
        sync: FdSel,
    },
    /// `sync_merge_ioctl` (flags 0 or 1).
    Merge {
        p: u8,
        a: FdSel,
        b: FdSel,
        flags: u32,
    },
    /// `sync_file_info_ioctl` with `num` slots.
    Info { p: u8, fd: FdSel, num: u32 },
    /// `sw_sync_open`.
    Timeline { p: u8 },
    /// `sw_sync_create_fence`.
    Point { p: u8, fd: FdSel, value: u8 },
    /// `sw_sync_inc`.
    Inc { p: u8, fd: FdSel, n: u8 },
    /// `mmap`.
    Mmap {
        p: u8,
        fd: FdSel,
        off: u8,
        len: u8,
        prot: u32,
        shared: bool,
    },
    /// `read` from the m-th live mapping.
    MapRead { m: u8, off: u16, n: u16 },
    /// `write` to the m-th live mapping.
    MapWrite { m: u8, off: u16, n: u16 },
    /// Drops the m-th live mapping (`munmap`).
    Unmap { m: u8 },
    /// `lseek`.
    Lseek {
        p: u8,
        fd: FdSel,
        off: i64,
        whence: u32,
    },
    /// `poll` with timeout 0.
    Poll { p: u8, fd: FdSel, events: u16 },
    /// `dup`.
    Dup { p: u8, fd: FdSel },
    /// `close`.
    Close { p: u8, fd: FdSel },
    /// `fdinfo`.
    Fdinfo { p: u8, fd: FdSel },
    /// `send_fd` to process `to` (a `dup` if it is the same process).
    SendFd { p: u8, fd: FdSel, to: u8 },
}

/// A cursor over the input bytes; past the end every read is 0.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }
    /// Mostly small flag values, sometimes arbitrary bits.
    fn flags(&mut self) -> u32 {
        let b = self.u8();
        match b >> 6 {
            0..=2 => u32::from(b & 0x0f),
            _ => u32::from_le_bytes([self.u8(), self.u8(), self.u8(), b]),
        }
    }
    fn fd(&mut self) -> FdSel {
        let b = self.u8();
        match b >> 5 {
            0 => FdSel::Raw(i32::from(b & 0x1f) - 2),
            1 => FdSel::Raw(1000 + i32::from(b & 0x1f)),
            _ => FdSel::Held(b & 0x1f),
        }
    }
}

/// Decodes a program: one op per opcode byte and its arguments, until the bytes run out.
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut b = Bytes(data);
    let mut ops = Vec::new();
    while !b.0.is_empty() {
        let code = b.u8();
        let p = b.u8() % 4;
        let op = match code % 28 {
            0 => Op::OpenHeap { p, heap: b.u8() },
            1 => Op::HeapAlloc {
                p,
                fd: b.fd(),
                len: b.u8(),
                fd_flags: b.flags() | if b.bool() { 0x80002 } else { 0 },
                heap_flags: u64::from(b.flags() & 0x3),
            },
            2 => Op::MemfdCreate {
                p,
                flags: b.flags(),
            },
            3 => Op::Ftruncate {
                p,
                fd: b.fd(),
                len: b.u8(),
            },
            4 => Op::Pwrite {
                p,
                fd: b.fd(),
                off: b.u8(),
                n: b.u16(),
            },
            5 => Op::Pread {
                p,
                fd: b.fd(),
                off: b.u8(),
                n: b.u16(),
            },
            6 => Op::AddSeals {
                p,
                fd: b.fd(),
                seals: b.flags(),
            },
            7 => Op::UdmabufCreate {
                p,
                fd: b.fd(),
                off: b.u8(),
                len: b.u8(),
                flags: b.flags(),
            },
            8 => {
                let n = usize::from(b.u8() % 5);
                let items = (0..n).map(|_| (b.fd(), b.u8(), b.u8())).collect();
                Op::UdmabufList { p, items }
            }
            9 => Op::Sync {
                p,
                fd: b.fd(),
                flags: u64::from(b.flags()),
            },
            10 => Op::SetName {
                p,
                fd: b.fd(),
                len: b.u8() % 40,
            },
            11 => Op::Export {
                p,
                fd: b.fd(),
                flags: b.flags(),
            },
            12 => Op::Import {
                p,
                fd: b.fd(),
                flags: b.flags(),
                sync: b.fd(),
            },
            13 => Op::Merge {
                p,
                a: b.fd(),
                b: b.fd(),
                flags: b.flags() & 1,
            },
            14 => Op::Info {
                p,
                fd: b.fd(),
                num: u32::from(b.u8() % 4),
            },
            15 => Op::Timeline { p },
            16 => Op::Point {
                p,
                fd: b.fd(),
                value: b.u8() % 8,
            },
            17 => Op::Inc {
                p,
                fd: b.fd(),
                n: b.u8() % 4,
            },
            18 | 19 => Op::Mmap {
                p,
                fd: b.fd(),
                off: b.u8(),
                len: b.u8(),
                prot: b.flags() & 0x7,
                shared: !b.bool() || b.bool(),
            },
            20 => Op::MapRead {
                m: b.u8(),
                off: b.u16(),
                n: b.u16(),
            },
            21 => Op::MapWrite {
                m: b.u8(),
                off: b.u16(),
                n: b.u16(),
            },
            22 => Op::Unmap { m: b.u8() },
            23 => Op::Lseek {
                p,
                fd: b.fd(),
                off: i64::from(b.u8() as i8),
                whence: u32::from(b.u8() % 6),
            },
            24 => Op::Poll {
                p,
                fd: b.fd(),
                events: b.u16(),
            },
            25 => Op::Dup { p, fd: b.fd() },
            26 => Op::Close { p, fd: b.fd() },
            _ => {
                if b.bool() {
                    Op::Fdinfo { p, fd: b.fd() }
                } else {
                    Op::SendFd {
                        p,
                        fd: b.fd(),
                        to: b.u8(),
                    }
                }
            }
        };
        ops.push(op);
    }
    ops
}
