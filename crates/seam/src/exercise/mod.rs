//! Random sequences of UAPI calls, decoded from bytes: the engine of the proptest and the fuzz
//! target (`crates/kernel/fuzz`).
//!
//! # The concept
//!
//! [`decode`] turns any byte string into a list of [`Op`]s — every byte string is a valid
//! program, so a fuzzer's mutations never go to waste. [`Exerciser`] runs the ops on several
//! processes through [`Uapi`], good calls and bad ones alike (fds that are not open, flags the
//! kernel refuses, lengths of 0 or `u64::MAX`), remembering the fds and mappings the calls
//! returned. [`Exerciser::finish`] unmaps and closes everything. With the simulator, the
//! `kernel` crate's `exercise::check_sim` then checks the invariants the issue asks for.
//!
//! # Rules
//!
//! 1. No call may panic, whatever its arguments.
//! 2. No call may block: `poll` uses timeout 0, and `DMA_BUF_IOCTL_SYNC` (which waits for the
//!    buffer's fences without a timeout) is only issued on a buffer whose fences have all
//!    signaled.
//! 3. After [`Exerciser::finish`] and every process's exit, the machine's free memory is what it
//!    was at boot, and every exported buffer has been released exactly once (the registry's
//!    `exported == released`, no live buffer).

mod program;

pub use program::{decode, FdSel, Op};

use super::{Fd, Mapping, SyncFileInfo, Uapi, POLLIN, POLLOUT};
use program::{HEAPS, LENS, OFFSETS};
use std::fmt;

/// Runs [`Op`]s on a set of processes, remembering what they hold.
pub struct Exerciser<U: Uapi> {
    procs: Vec<U>,
    fds: Vec<Vec<Fd>>,
    maps: Vec<U::Map>,
    /// Calls made, and how many of them succeeded.
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
}

impl<U: Uapi> fmt::Debug for Exerciser<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exerciser")
            .field("fds", &self.fds)
            .field("maps", &self.maps.len())
            .field("calls", &self.calls)
            .finish()
    }
}

impl<U: Uapi> Exerciser<U> {
    /// An exerciser over `procs` (at least one).
    pub fn new(procs: Vec<U>) -> Exerciser<U> {
        let fds = procs.iter().map(|_| Vec::new()).collect();
        Exerciser {
            procs,
            fds,
            maps: Vec::new(),
            calls: 0,
            successes: 0,
        }
    }

    fn pick(&self, p: u8) -> usize {
        usize::from(p) % self.procs.len()
    }

    fn fd(&self, p: usize, sel: FdSel) -> Fd {
        match sel {
            FdSel::Raw(fd) => fd,
            FdSel::Held(i) => match self.fds[p].len() {
                0 => 1000,
                n => self.fds[p][usize::from(i) % n],
            },
        }
    }

    fn count<T>(&mut self, r: &Result<T, uapi::Errno>) {
        self.calls += 1;
        if r.is_ok() {
            self.successes += 1;
        }
    }

    fn got_fd(&mut self, p: usize, r: Result<Fd, uapi::Errno>) {
        self.count(&r);
        if let Ok(fd) = r {
            self.fds[p].push(fd);
        }
    }

    /// Whether every fence of the dma-buf (if it is one) has signaled, so SYNC cannot block.
    fn idle(&mut self, p: usize, fd: Fd) -> bool {
        let both = POLLIN | POLLOUT;
        self.procs[p].poll(fd, both, 0) == Ok(both)
    }

    /// Runs one op.
    pub fn apply(&mut self, op: &Op) {
        let p = match op {
            Op::MapRead { .. } | Op::MapWrite { .. } | Op::Unmap { .. } => 0,
            Op::OpenHeap { p, .. }
            | Op::HeapAlloc { p, .. }
            | Op::MemfdCreate { p, .. }
            | Op::Ftruncate { p, .. }
            | Op::Pwrite { p, .. }
            | Op::Pread { p, .. }
            | Op::AddSeals { p, .. }
            | Op::UdmabufCreate { p, .. }
            | Op::UdmabufList { p, .. }
            | Op::Sync { p, .. }
            | Op::SetName { p, .. }
            | Op::Export { p, .. }
            | Op::Import { p, .. }
            | Op::Merge { p, .. }
            | Op::Info { p, .. }
            | Op::Timeline { p }
            | Op::Point { p, .. }
            | Op::Inc { p, .. }
            | Op::Mmap { p, .. }
            | Op::Lseek { p, .. }
            | Op::Poll { p, .. }
            | Op::Dup { p, .. }
            | Op::Close { p, .. }
            | Op::Fdinfo { p, .. }
            | Op::SendFd { p, .. } => self.pick(*p),
        };
        match op {
            Op::OpenHeap { heap, .. } => {
                let r = self.procs[p].open_heap(HEAPS[usize::from(*heap) % HEAPS.len()]);
                self.got_fd(p, r);
            }
            Op::HeapAlloc {
                fd,
                len,
                fd_flags,
                heap_flags,
                ..
            } => {
                let (fd, len) = (self.fd(p, *fd), LENS[usize::from(*len) % LENS.len()]);
                let r = self.procs[p].heap_alloc(fd, len, *fd_flags, *heap_flags);
                self.got_fd(p, r);
            }
            Op::MemfdCreate { flags, .. } => {
                let r = self.procs[p].memfd_create("fuzz", *flags);
                self.got_fd(p, r);
            }
            Op::Ftruncate { fd, len, .. } => {
                let (fd, len) = (self.fd(p, *fd), LENS[usize::from(*len) % LENS.len()]);
                let r = self.procs[p].ftruncate(fd, len);
                self.count(&r);
            }
            Op::Pwrite { fd, off, n, .. } => {
                let (fd, off) = (self.fd(p, *fd), OFFSETS[usize::from(*off) % OFFSETS.len()]);
                let data = vec![0x5a; usize::from(*n) % 9000];
                let r = self.procs[p].pwrite(fd, off, &data);
                self.count(&r);
            }
            Op::Pread { fd, off, n, .. } => {
                let (fd, off) = (self.fd(p, *fd), OFFSETS[usize::from(*off) % OFFSETS.len()]);
                let r = self.procs[p].pread(fd, off, usize::from(*n) % 9000);
                self.count(&r);
            }
            Op::AddSeals { fd, seals, .. } => {
                let fd = self.fd(p, *fd);
                let r = self.procs[p].add_seals(fd, *seals);
                self.count(&r);
            }
            Op::UdmabufCreate {
                fd,
                off,
                len,
                flags,
                ..
            } => {
                let fd = self.fd(p, *fd);
                let (off, len) = (
                    OFFSETS[usize::from(*off) % OFFSETS.len()],
                    LENS[usize::from(*len) % LENS.len()],
                );
                let r = self.procs[p].udmabuf_create(fd, off, len, *flags);
                self.got_fd(p, r);
            }
            Op::UdmabufList { items, .. } => {
                let items: Vec<(Fd, u64, u64)> = items
                    .iter()
                    .map(|&(fd, off, len)| {
                        let off = OFFSETS[usize::from(off) % OFFSETS.len()];
                        (self.fd(p, fd), off, LENS[usize::from(len) % LENS.len()])
                    })
                    .collect();
                let r = self.procs[p].udmabuf_create_list(0, &items);
                self.got_fd(p, r);
            }
            Op::Sync { fd, flags, .. } => {
                let fd = self.fd(p, *fd);
                if self.idle(p, fd) {
                    let r = self.procs[p].dma_buf_sync(fd, *flags);
                    self.count(&r);
                }
            }
            Op::SetName { fd, len, .. } => {
                let fd = self.fd(p, *fd);
                let r = self.procs[p].dma_buf_set_name(fd, &vec![b'n'; usize::from(*len)]);
                self.count(&r);
            }
            Op::Export { fd, flags, .. } => {
                let fd = self.fd(p, *fd);
                let r = self.procs[p].export_sync_file(fd, *flags);
                self.got_fd(p, r);
            }
            Op::Import {
                fd, flags, sync, ..
            } => {
                let (fd, sync) = (self.fd(p, *fd), self.fd(p, *sync));
                let r = self.procs[p].import_sync_file(fd, *flags, sync);
                self.count(&r);
            }
            Op::Merge { a, b, flags, .. } => {
                let (a, b) = (self.fd(p, *a), self.fd(p, *b));
                let mut data = super::SyncMergeData::new("fuzz", b);
                data.flags = *flags;
                let r = self.procs[p].sync_merge_ioctl(a, &mut data);
                self.got_fd(p, r);
            }
            Op::Info { fd, num, .. } => {
                let fd = self.fd(p, *fd);
                let mut info = SyncFileInfo {
                    num_fences: *num,
                    ..SyncFileInfo::default()
                };
                let r = self.procs[p].sync_file_info_ioctl(fd, &mut info);
                self.count(&r);
            }
            Op::Timeline { .. } => {
                let r = self.procs[p].sw_sync_open();
                self.got_fd(p, r);
            }
            Op::Point { fd, value, .. } => {
                let fd = self.fd(p, *fd);
                let r = self.procs[p].sw_sync_create_fence(fd, u32::from(*value));
                self.got_fd(p, r);
            }
            Op::Inc { fd, n, .. } => {
                let fd = self.fd(p, *fd);
                let r = self.procs[p].sw_sync_inc(fd, u32::from(*n));
                self.count(&r);
            }
            Op::Mmap {
                fd,
                off,
                len,
                prot,
                shared,
                ..
            } => {
                let fd = self.fd(p, *fd);
                let (off, len) = (
                    OFFSETS[usize::from(*off) % OFFSETS.len()],
                    LENS[usize::from(*len) % LENS.len()],
                );
                let r = self.procs[p].mmap(fd, off, len, *prot, *shared);
                self.count(&r);
                if let Ok(m) = r {
                    self.maps.push(m);
                }
            }
            Op::MapRead { m, off, n } => {
                if let Some(map) = pick_map(&self.maps, *m) {
                    let mut buf = vec![0u8; usize::from(*n) % 9000];
                    let r = map.read(u64::from(*off) * 3, &mut buf);
                    self.count(&r);
                }
            }
            Op::MapWrite { m, off, n } => {
                if let Some(map) = pick_map(&self.maps, *m) {
                    let r = map.write(u64::from(*off) * 3, &vec![0xa5; usize::from(*n) % 9000]);
                    self.count(&r);
                }
            }
            Op::Unmap { m } => {
                if !self.maps.is_empty() {
                    let i = usize::from(*m) % self.maps.len();
                    drop(self.maps.swap_remove(i));
                }
            }
            Op::Lseek {
                fd, off, whence, ..
            } => {
                let fd = self.fd(p, *fd);
                let r = self.procs[p].lseek(fd, *off, *whence);
                self.count(&r);
            }
            Op::Poll { fd, events, .. } => {
                let fd = self.fd(p, *fd);
                let r = self.procs[p].poll(fd, *events, 0);
                self.count(&r);
            }
            Op::Dup { fd, .. } => {
                let fd = self.fd(p, *fd);
                let r = self.procs[p].dup(fd);
                self.got_fd(p, r);
            }
            Op::Close { fd, .. } => {
                let fd = self.fd(p, *fd);
                let r = self.procs[p].close(fd);
                self.count(&r);
                if r.is_ok() {
                    self.fds[p].retain(|&f| f != fd);
                }
            }
            Op::Fdinfo { fd, .. } => {
                let fd = self.fd(p, *fd);
                let r = self.procs[p].fdinfo(fd);
                self.count(&r);
            }
            Op::SendFd { fd, to, .. } => {
                let fd = self.fd(p, *fd);
                let to = self.pick(*to);
                let r = if to == p {
                    self.procs[p].dup(fd)
                } else {
                    let (a, b) = two_mut(&mut self.procs, p, to);
                    a.send_fd(fd, b)
                };
                self.got_fd(to, r);
            }
        }
    }

    /// Unmaps every mapping and closes every fd the ops got, and returns the processes.
    pub fn finish(mut self) -> Vec<U> {
        self.maps.clear();
        for (p, fds) in self.fds.iter().enumerate() {
            for &fd in fds.iter().rev() {
                let _ = self.procs[p].close(fd);
            }
        }
        self.procs
    }
}

fn pick_map<M>(maps: &[M], m: u8) -> Option<&M> {
    (!maps.is_empty()).then(|| &maps[usize::from(m) % maps.len()])
}

/// Mutable references to two different elements.
fn two_mut<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    debug_assert_ne!(a, b);
    if a < b {
        let (lo, hi) = v.split_at_mut(b);
        (&mut lo[a], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(a);
        (&mut hi[0], &mut lo[b])
    }
}
