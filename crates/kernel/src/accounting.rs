//! Per-process dma-buf accounting, as Android's dmabuf tools compute it.
//!
//! C side: none in the kernel proper. Android's `libdmabufinfo` (behind `dmabuf_dump` and the
//! memory reports of `dumpsys meminfo`) reads every process's dma-buf fds
//! (`/proc/<pid>/fdinfo`) and dma-buf mappings (`/proc/<pid>/maps`) and keys the buffers by
//! inode. This module does the same from the simulated processes.
//!
//! # The concept
//! A process *holds* a buffer when it has at least one fd on it or at least one mapping of it;
//! closing the fd after `mmap` keeps the buffer held (the mapping holds a reference). Then:
//! - **RSS** of a process: the sum of the sizes of the buffers it holds, each counted whole and
//!   once, however many fds (dups, received copies) and mappings it has on it.
//! - **PSS** of a process: the sum, over the buffers it holds, of the buffer's size divided by
//!   the number of processes holding it. The PSS of all processes adds up to the size of all
//!   held buffers; a buffer held by no process (only by a device or a driver) is in nobody's.
//!
//! PSS is kept in bytes as a fraction-free sum: [`ProcessDmaBufUsage::pss`] rounds down once,
//! at the end, so two processes sharing a 4097-byte buffer are not both short of a byte.
//!
//! # Lifetime and locking
//! A query takes each live process's table lock in turn (never two at once) and works on a
//! snapshot: buffers released meanwhile may still be counted, as a `/proc` walk would. The
//! snapshot's buffer references are dropped before the query returns.
//!
//! # Example
//! ```
//! use kernel::Kernel;
//! use uapi::ioctl::{O_CLOEXEC, O_RDWR};
//!
//! let kernel = Kernel::boot(soc::SocDesc::default_soc())?;
//! let (a, b) = (kernel.spawn(), kernel.spawn());
//! let heap = a.open_heap("system")?;
//! let fd = a.heap_alloc(heap, 8192, O_RDWR | O_CLOEXEC, 0)?;
//! a.send_fd(fd, &b)?;
//! let usage = kernel.dmabuf_usage_of(a.pid()).unwrap();
//! assert_eq!((usage.rss, usage.pss()), (8192, 4096));
//! # Ok::<(), dmabuf::DmaBufError>(())
//! ```

use crate::kernel::Kernel;
use std::collections::BTreeMap;

/// One buffer as one process holds it (a line of `dmabuf_dump <pid>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldBuffer {
    /// The buffer's inode number.
    pub ino: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its exporter's name (`exp_name`).
    pub exp_name: String,
    /// How many fds of this process refer to it.
    pub fds: usize,
    /// How many mappings of this process map it.
    pub maps: usize,
    /// How many processes hold it (this one included): the PSS divisor.
    pub holders: usize,
}

/// One process's dma-buf memory (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessDmaBufUsage {
    /// The process.
    pub pid: u32,
    /// Bytes of the buffers it holds, each whole and once.
    pub rss: u64,
    /// The buffers it holds, by ascending inode.
    pub buffers: Vec<HeldBuffer>,
}

impl ProcessDmaBufUsage {
    /// The proportional set size in bytes: each buffer's size divided by its holders, summed
    /// exactly and rounded down once.
    pub fn pss(&self) -> u64 {
        // Sizes summed per divisor first, then the fractions added exactly over a reduced
        // common denominator. Should that denominator ever overflow (dozens of distinct
        // holder counts), the remaining fractions are dropped: at most a byte per buffer.
        let mut by_holders: BTreeMap<u128, u128> = BTreeMap::new();
        for b in &self.buffers {
            *by_holders.entry(b.holders.max(1) as u128).or_default() += u128::from(b.size);
        }
        let mut whole: u128 = 0;
        let (mut num, mut den): (u128, u128) = (0, 1);
        for (holders, size) in by_holders {
            whole += size / holders;
            let rem = size % holders;
            if rem == 0 {
                continue;
            }
            // num/den + rem/holders
            let sum = num
                .checked_mul(holders)
                .zip(rem.checked_mul(den))
                .and_then(|(a, b)| a.checked_add(b))
                .zip(den.checked_mul(holders));
            if let Some((n, d)) = sum {
                let g = gcd(n, d);
                (num, den) = (n / g, d / g);
                whole += num / den;
                num %= den;
            }
        }
        u64::try_from(whole).unwrap_or(u64::MAX)
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl Kernel {
    /// The dma-buf RSS and PSS of every live process, by ascending pid (`dmabuf_dump -a`).
    pub fn dmabuf_usage(&self) -> Vec<ProcessDmaBufUsage> {
        let per_proc: Vec<_> = self
            .processes()
            .into_iter()
            .map(|p| (p.pid(), p.dma_buf_holdings()))
            .collect();
        let mut holders: BTreeMap<u64, usize> = BTreeMap::new();
        for (_, held) in &per_proc {
            for ino in held.keys() {
                *holders.entry(*ino).or_default() += 1;
            }
        }
        per_proc
            .into_iter()
            .map(|(pid, held)| {
                let buffers: Vec<HeldBuffer> = held
                    .into_iter()
                    .map(|(ino, h)| HeldBuffer {
                        ino,
                        size: h.buf.size(),
                        exp_name: h.buf.exp_name().to_string(),
                        fds: h.fds,
                        maps: h.maps,
                        holders: holders.get(&ino).copied().unwrap_or(1),
                    })
                    .collect();
                ProcessDmaBufUsage {
                    pid,
                    rss: buffers.iter().map(|b| b.size).sum(),
                    buffers,
                }
            })
            .collect()
    }

    /// The dma-buf usage of process `pid`, or `None` if no live process has that pid
    /// (`dmabuf_dump <pid>`). The PSS divisors count every live process.
    pub fn dmabuf_usage_of(&self, pid: u32) -> Option<ProcessDmaBufUsage> {
        self.dmabuf_usage().into_iter().find(|u| u.pid == pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(sizes_holders: &[(u64, usize)]) -> ProcessDmaBufUsage {
        ProcessDmaBufUsage {
            pid: 1,
            rss: sizes_holders.iter().map(|s| s.0).sum(),
            buffers: sizes_holders
                .iter()
                .enumerate()
                .map(|(i, &(size, holders))| HeldBuffer {
                    ino: i as u64,
                    size,
                    exp_name: "system".into(),
                    fds: 1,
                    maps: 0,
                    holders,
                })
                .collect(),
        }
    }

    #[test]
    fn pss_rounds_down_once_not_per_buffer() {
        // 4097/2 + 4097/2 = 4097 exactly; per-buffer rounding would give 4096.
        assert_eq!(usage(&[(4097, 2), (4097, 2)]).pss(), 4097);
        // 1/3 + 1/3 + 1/3 = 1.
        assert_eq!(usage(&[(1, 3), (1, 3), (1, 3)]).pss(), 1);
        assert_eq!(usage(&[(4096, 1), (8192, 4)]).pss(), 4096 + 2048);
        assert_eq!(usage(&[(1, 2), (1, 3), (1, 6)]).pss(), 1);
    }

    #[test]
    fn pss_of_many_distinct_holder_counts_does_not_overflow() {
        // lcm(1..=200) is far beyond u128: the sum stays within a byte per buffer of exact.
        let many: Vec<(u64, usize)> = (1..=200).map(|h| (4096 * h as u64 + 1, h)).collect();
        let pss = usage(&many).pss();
        assert!((200 * 4096..=200 * 4096 + 200).contains(&pss), "{pss}");
    }
}
