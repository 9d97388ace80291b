//! Cases for dma-heaps (behaviours 88-94) and the port of the kernel selftest
//! `tools/testing/selftests/dmabuf-heaps/dmabuf-heap.c`, plus the memfd calls udmabuf needs.
//!
//! The selftest runs its cases on every heap in `/dev/dma_heap`; so do the `test_*` cases
//! here, naming the heap in a failure.

use super::*;
use crate::{
    fdinfo_field, DMA_BUF_SYNC_END, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_START, F_SEAL_GROW, F_SEAL_SEAL,
    F_SEAL_SHRINK, F_SEAL_WRITE, MFD_ALLOW_SEALING, O_ACCMODE, O_CLOEXEC, O_NONBLOCK, O_RDWR,
    SEEK_END,
};

const ONE_MEG: u64 = 1 << 20;
const RW_CLOEXEC: u32 = O_RDWR | O_CLOEXEC;

/// The heaps to run a selftest case on, or a skip if there are none.
fn heaps<U: Uapi>(u: &mut U) -> Step<Vec<String>> {
    match u.heap_names() {
        Ok(names) if !names.is_empty() => Ok(names),
        Ok(_) => skip("no heap under /dev/dma_heap"),
        Err(e) => skip(format!("no /dev/dma_heap ({e:?})")),
    }
}

/// Runs `body` once per heap with that heap open.
fn each_heap<U: Uapi>(
    u: &mut U,
    fds: &mut Vec<Fd>,
    mut body: impl FnMut(&mut U, &mut Vec<Fd>, &str, Fd) -> Step<()>,
) -> Step<()> {
    for name in heaps(u)? {
        let heap = open(fds, &format!("open_heap({name})"), u.open_heap(&name))?;
        body(u, fds, &name, heap).map_err(|h| match h {
            Halt::Fail(f) => Halt::Fail(Failure::new(format!("heap {name}: {f}"))),
            skip => skip,
        })?;
        close_now(u, fds, heap)?;
    }
    Ok(())
}

/// 91: opening a heap name that does not exist is `ENOENT` (the path lookup of
/// `/dev/dma_heap/<name>` fails; a stale device node would give `ENODEV`, which the seam
/// cannot express).
pub fn heap_open_unknown_enoent<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, _| {
        for name in ["no-such-heap", "", "..", "system/x"] {
            let r = u.open_heap(name);
            errno_fd(u, &format!("open_heap({name:?})"), Errno::ENOENT, r)?;
        }
        Ok(())
    })
}

/// 89: `len` is rounded up to whole pages; the exporter name is the heap name.
pub fn heap_alloc_rounds_up_to_pages<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        each_heap(u, fds, |u, fds, name, heap| {
            for (len, want) in [(1, PAGE), (PAGE, PAGE), (PAGE + 1, 2 * PAGE)] {
                let buf = open(fds, "heap_alloc", u.heap_alloc(heap, len, RW_CLOEXEC, 0))?;
                let size = size_of(u, buf)?;
                ensure(size == want, || {
                    format!("alloc({len}) has size {size}, expected {want}")
                })?;
                let info = ok("fdinfo", u.fdinfo(buf))?;
                ensure(fdinfo_field(&info, "exp_name") == Some(name), || {
                    format!("exp_name is not the heap name: {info:?}")
                })?;
                close_now(u, fds, buf)?;
            }
            Ok(())
        })
    })
}

/// 89: `len` 0, or a `len` that wraps to 0 when page-aligned, is `EINVAL`.
pub fn heap_alloc_zero_len_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let heap = system_heap(u, fds)?;
        for len in [0, u64::MAX, u64::MAX - PAGE + 2] {
            let r = u.heap_alloc(heap, len, RW_CLOEXEC, 0);
            errno_fd(u, &format!("heap_alloc(len {len:#x})"), Errno::EINVAL, r)?;
        }
        Ok(())
    })
}

/// 88: `fd_flags` outside `O_CLOEXEC | O_ACCMODE` are `EINVAL`.
pub fn heap_alloc_bad_fd_flags_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let heap = system_heap(u, fds)?;
        for flags in [O_NONBLOCK | O_RDWR, 0x1000, !(O_RDWR | O_CLOEXEC), u32::MAX] {
            let r = u.heap_alloc(heap, PAGE, flags, 0);
            errno_fd(
                u,
                &format!("heap_alloc(fd_flags {flags:#x})"),
                Errno::EINVAL,
                r,
            )?;
        }
        for flags in [0, O_ACCMODE, O_CLOEXEC, RW_CLOEXEC] {
            let fd = open(
                fds,
                "heap_alloc(valid fd_flags)",
                u.heap_alloc(heap, PAGE, flags, 0),
            )?;
            close_now(u, fds, fd)?;
        }
        Ok(())
    })
}

/// 88: every `heap_flags` value but 0 is `EINVAL` (no heap flags exist).
pub fn heap_alloc_bad_heap_flags_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let heap = system_heap(u, fds)?;
        for flags in [1, 0x111111, 1 << 63] {
            let r = u.heap_alloc(heap, PAGE, RW_CLOEXEC, flags);
            errno_fd(
                u,
                &format!("heap_alloc(heap_flags {flags:#x})"),
                Errno::EINVAL,
                r,
            )?;
        }
        Ok(())
    })
}

/// 90: the ALLOC ioctl on a file that is not a heap is an unknown ioctl there (`ENOTTY`); on a
/// closed fd it is `EBADF`.
pub fn heap_alloc_wrong_fd<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let memfd = open(fds, "memfd_create", u.memfd_create("m", 0))?;
        let r = u.heap_alloc(memfd, PAGE, RW_CLOEXEC, 0);
        errno_fd(u, "heap_alloc(memfd)", Errno::ENOTTY, r)?;
        let buf = system_buffer(u, fds, PAGE)?;
        let r = u.heap_alloc(buf, PAGE, RW_CLOEXEC, 0);
        errno_fd(u, "heap_alloc(dma-buf)", Errno::ENOTTY, r)?;
        let closed = closed_fd(u)?;
        let r = u.heap_alloc(closed, PAGE, RW_CLOEXEC, 0);
        errno_fd(u, "heap_alloc(closed)", Errno::EBADF, r)
    })
}

/// Issue 4, "a failed call changes nothing": failed allocations leave no fd behind (the
/// lowest free fd stays the same).
pub fn heap_alloc_failure_leaks_no_fd<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let heap = system_heap(u, fds)?;
        let probe = ok("dup", u.dup(heap))?;
        ok("close", u.close(probe))?;
        let _ = u.heap_alloc(heap, 0, RW_CLOEXEC, 0);
        let _ = u.heap_alloc(heap, PAGE, RW_CLOEXEC, 1);
        let _ = u.heap_alloc(heap, PAGE, u32::MAX, 0);
        let again = open(fds, "dup", u.dup(heap))?;
        ensure(again == probe, || {
            format!("lowest free fd moved from {probe} to {again}: a failed alloc kept an fd")
        })
    })
}

/// Selftest `test_alloc_and_import` without the vgem import: allocate 1 MiB, map it, fill it
/// between SYNC START and END, and a second START/END bracket must succeed too.
pub fn test_alloc_and_import<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        each_heap(u, fds, |u, fds, _, heap| {
            let buf = open(
                fds,
                "heap_alloc(1 MiB)",
                u.heap_alloc(heap, ONE_MEG, RW_CLOEXEC, 0),
            )?;
            let m = map_rw(u, buf, 0, ONE_MEG)?;
            ok(
                "sync START",
                u.dma_buf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW),
            )?;
            ok("memset 0xff", m.write(0, &vec![0xff; ONE_MEG as usize]))?;
            ok(
                "sync END",
                u.dma_buf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW),
            )?;
            ok(
                "sync START (2)",
                u.dma_buf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW),
            )?;
            let back = read_map(&m, ONE_MEG - 8, 8)?;
            ok(
                "sync END (2)",
                u.dma_buf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW),
            )?;
            ensure(back == [0xff; 8], || format!("read back {back:?}"))?;
            drop(m);
            close_now(u, fds, buf)
        })
    })
}

/// Selftest `test_alloc_zeroed` with 4 KiB buffers.
pub fn test_alloc_zeroed_4k<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    alloc_zeroed(u, PAGE)
}

/// Selftest `test_alloc_zeroed` with 1 MiB buffers.
pub fn test_alloc_zeroed_1m<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    alloc_zeroed(u, ONE_MEG)
}

/// 32 buffers filled with 0xff and freed, then 32 new ones that must read all zero (93-94).
fn alloc_zeroed<U: Uapi>(u: &mut U, size: u64) -> Result<Outcome, Failure> {
    const COUNT: usize = 32;
    scoped(u, |u, fds| {
        each_heap(u, fds, |u, fds, _, heap| {
            let dirty = vec![0xff; size as usize];
            let mut bufs = Vec::new();
            for _ in 0..COUNT {
                let buf = open(fds, "heap_alloc", u.heap_alloc(heap, size, RW_CLOEXEC, 0))?;
                let m = map_rw(u, buf, 0, size)?;
                ok(
                    "sync START",
                    u.dma_buf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW),
                )?;
                ok("fill 0xff", m.write(0, &dirty))?;
                ok(
                    "sync END",
                    u.dma_buf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW),
                )?;
                bufs.push(buf);
            }
            for buf in bufs.drain(..) {
                close_now(u, fds, buf)?;
            }
            for i in 0..COUNT {
                let buf = open(fds, "heap_alloc", u.heap_alloc(heap, size, RW_CLOEXEC, 0))?;
                let m = map_rw(u, buf, 0, size)?;
                ok(
                    "sync START",
                    u.dma_buf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW),
                )?;
                let got = read_map(&m, 0, size as usize)?;
                ok(
                    "sync END",
                    u.dma_buf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW),
                )?;
                if let Some(at) = got.iter().position(|&b| b != 0) {
                    return fail(format!(
                        "buffer {i} of {size} bytes: byte {at} is {:#x}",
                        got[at]
                    ));
                }
                bufs.push(buf);
            }
            for buf in bufs {
                close_now(u, fds, buf)?;
            }
            Ok(())
        })
    })
}

/// Selftest `test_alloc_compat`, as far as the seam can express it.
///
/// The selftest issues ALLOC with an older, smaller struct (no `heap_flags`) and with a newer,
/// larger one (extra fields); the kernel zero-fills missing fields and ignores extra ones
/// (behaviour 90). [`Uapi::heap_alloc`] always passes the exact 24-byte struct, so the struct
/// size cannot vary here; what remains checkable is the meaning of the old struct — an
/// allocation whose `heap_flags` are zero, as the kernel zero-fills them — and that it gives a
/// usable buffer. The size variants belong to the real-kernel crate's own tests.
pub fn test_alloc_compat<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        each_heap(u, fds, |u, fds, _, heap| {
            let buf = open(
                fds,
                "heap_alloc(old struct)",
                u.heap_alloc(heap, ONE_MEG, RW_CLOEXEC, 0),
            )?;
            let size = size_of(u, buf)?;
            ensure(size == ONE_MEG, || format!("size {size}"))?;
            close_now(u, fds, buf)
        })
    })
}

/// Selftest `test_alloc_errors`: ALLOC fails on an fd that is not the heap (the selftest uses
/// fd 0, stdin; here a memfd, `ENOTTY` — rule 3), with heap_flags 0x111111, and with fd_flags
/// `~(O_RDWR | O_CLOEXEC)` (both `EINVAL`).
pub fn test_alloc_errors<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let memfd = open(fds, "memfd_create", u.memfd_create("not-a-heap", 0))?;
        each_heap(u, fds, |u, _, _, heap| {
            let r = u.heap_alloc(memfd, ONE_MEG, 0, 0);
            errno_fd(u, "alloc on a non-heap fd", Errno::ENOTTY, r)?;
            let r = u.heap_alloc(heap, ONE_MEG, 0, 0x111111);
            errno_fd(u, "heap_flags 0x111111", Errno::EINVAL, r)?;
            let r = u.heap_alloc(heap, ONE_MEG, !(O_RDWR | O_CLOEXEC), 0);
            errno_fd(u, "fd_flags ~(O_RDWR|O_CLOEXEC)", Errno::EINVAL, r)
        })
    })
}

/// 94: the CMA heap refuses private mappings (`EINVAL`); shared ones work.
pub fn cma_heap_mmap_private_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let names: Vec<String> = heaps(u)?
            .into_iter()
            .filter(|n| is_cma_heap_name(n))
            .collect();
        if names.is_empty() {
            return skip("no CMA heap");
        }
        for name in names {
            let heap = open(fds, "open_heap", u.open_heap(&name))?;
            let buf = open(
                fds,
                "heap_alloc",
                u.heap_alloc(heap, 2 * PAGE, RW_CLOEXEC, 0),
            )?;
            let r = u.mmap(buf, 0, 2 * PAGE, PROT_READ, false).map(|_| ());
            errno(&format!("{name}: private mmap"), Errno::EINVAL, r)?;
            ok(
                "shared mmap",
                u.mmap(buf, 0, 2 * PAGE, PROT_READ, true).map(|_| ()),
            )?;
        }
        Ok(())
    })
}

/// memfd: bytes written with pwrite read back with pread; reads stop at the end of the file;
/// `ftruncate` sets the size `lseek(SEEK_END)` reports.
pub fn memfd_pwrite_pread<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let m = open(
            fds,
            "memfd_create",
            u.memfd_create("data", MFD_ALLOW_SEALING),
        )?;
        ok("ftruncate", u.ftruncate(m, 2 * PAGE))?;
        let n = ok("pwrite", u.pwrite(m, PAGE - 3, b"across"))?;
        ensure(n == 6, || format!("pwrite wrote {n}"))?;
        let got = ok("pread", u.pread(m, PAGE - 3, 6))?;
        ensure(got == b"across", || format!("pread {got:?}"))?;
        let tail = ok("pread at the end", u.pread(m, 2 * PAGE - 2, 10))?;
        ensure(tail == [0, 0], || {
            format!("pread past the end gave {tail:?}")
        })?;
        let end = ok("lseek", u.lseek(m, 0, SEEK_END))?;
        ensure(end == 2 * PAGE, || format!("lseek(END) = {end}"))
    })
}

/// memfd_create(2): unknown flag bits are `EINVAL`.
pub fn memfd_bad_flags_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, _| {
        for flags in [0x100, 0x8000_0000] {
            let r = u.memfd_create("bad", flags);
            errno_fd(u, &format!("memfd_create({flags:#x})"), Errno::EINVAL, r)?;
        }
        Ok(())
    })
}

/// fcntl(2) seals: a memfd made without `MFD_ALLOW_SEALING` refuses seals (`EPERM`); SHRINK,
/// GROW and WRITE forbid what they name (`EPERM`); after `F_SEAL_SEAL` no seal can be added.
pub fn memfd_seal_rules<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let plain = open(fds, "memfd_create(0)", u.memfd_create("plain", 0))?;
        errno(
            "add_seals on a non-sealing memfd",
            Errno::EPERM,
            u.add_seals(plain, F_SEAL_SHRINK),
        )?;
        let m = open(
            fds,
            "memfd_create",
            u.memfd_create("sealed", MFD_ALLOW_SEALING),
        )?;
        ok("ftruncate", u.ftruncate(m, 2 * PAGE))?;
        ok(
            "add_seals(SHRINK|GROW)",
            u.add_seals(m, F_SEAL_SHRINK | F_SEAL_GROW),
        )?;
        errno("shrink", Errno::EPERM, u.ftruncate(m, PAGE))?;
        errno("grow", Errno::EPERM, u.ftruncate(m, 3 * PAGE))?;
        ok("same size", u.ftruncate(m, 2 * PAGE))?;
        errno(
            "pwrite past the end",
            Errno::EPERM,
            u.pwrite(m, 2 * PAGE, b"x"),
        )?;
        ok("pwrite inside", u.pwrite(m, 0, b"x"))?;
        ok("add_seals(WRITE)", u.add_seals(m, F_SEAL_WRITE))?;
        errno(
            "pwrite after F_SEAL_WRITE",
            Errno::EPERM,
            u.pwrite(m, 0, b"y"),
        )?;
        ok("add_seals(SEAL)", u.add_seals(m, F_SEAL_SEAL))?;
        errno(
            "add_seals after F_SEAL_SEAL",
            Errno::EPERM,
            u.add_seals(m, F_SEAL_GROW),
        )
    })
}
