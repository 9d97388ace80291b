//! Cases for udmabuf (behaviours 95-101) and the port of the kernel selftest
//! `tools/testing/selftests/drivers/dma-buf/udmabuf.c` (ksft version, tests 1-7).
//!
//! The selftest writes the memfd through an mmap of it; here test-5 uses `pwrite`, which
//! reaches the same shmem pages. Tests 6 and 7 need hugetlb memfds (which do not support
//! `pwrite`) and map the memfd instead; they are skipped where `MFD_HUGETLB` is refused or no
//! huge pages are reserved. Every case is skipped without `/dev/udmabuf`.

use super::*;
use crate::{
    DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START, F_SEAL_FUTURE_WRITE, F_SEAL_SHRINK,
    F_SEAL_WRITE, MFD_ALLOW_SEALING, MFD_HUGETLB, UDMABUF_FLAGS_CLOEXEC, UDMABUF_LIST_LIMIT,
};

const NUM_PAGES: u64 = 4;
const NUM_ENTRIES: u64 = 4;
const MEMFD_SIZE: u64 = 1024; // in pages
const HPAGE: u64 = 2 << 20;

fn need_udmabuf<U: Uapi>(u: &mut U) -> Step<()> {
    if u.has_udmabuf() {
        Ok(())
    } else {
        skip("no /dev/udmabuf")
    }
}

/// A memfd of `size` bytes sealed with `seals` (the selftest's `create_memfd_with_seals`).
fn sealed_memfd<U: Uapi>(u: &mut U, fds: &mut Vec<Fd>, size: u64, seals: u32) -> Step<Fd> {
    let m = open(
        fds,
        "memfd_create",
        u.memfd_create("udmabuf-test", MFD_ALLOW_SEALING),
    )?;
    ok("ftruncate", u.ftruncate(m, size))?;
    if seals != 0 {
        ok("add_seals", u.add_seals(m, seals))?;
    }
    Ok(m)
}

/// Writes `chr` into the first byte of every page of a memfd (the selftest's
/// `write_to_memfd`).
fn write_pages<U: Uapi>(u: &mut U, memfd: Fd, size: u64, chr: u8) -> Step<()> {
    for page in 0..size / PAGE {
        ok("pwrite", u.pwrite(memfd, page * PAGE, &[chr]))?;
    }
    Ok(())
}

/// udmabuf test-1: an offset that is not page-aligned is refused (`EINVAL`).
pub fn udmabuf_test_1_unaligned_offset<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, NUM_PAGES * PAGE, F_SEAL_SHRINK)?;
        let r = u.udmabuf_create(m, PAGE / 2, PAGE, 0);
        errno_fd(u, "udmabuf_create(offset page/2)", Errno::EINVAL, r)
    })
}

/// udmabuf test-2: a size that is not a multiple of the page size is refused (`EINVAL`).
pub fn udmabuf_test_2_unaligned_size<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, NUM_PAGES * PAGE, F_SEAL_SHRINK)?;
        let r = u.udmabuf_create(m, 0, PAGE / 2, 0);
        errno_fd(u, "udmabuf_create(size page/2)", Errno::EINVAL, r)
    })
}

/// udmabuf test-3: a file that is not a memfd is refused (`EBADFD`). The selftest passes
/// stdin; here a udmabuf's own fd, which is open and not shmem (module rule 3).
pub fn udmabuf_test_3_not_memfd<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, NUM_PAGES * PAGE, F_SEAL_SHRINK)?;
        let ubuf = open(fds, "udmabuf_create", u.udmabuf_create(m, 0, PAGE, 0))?;
        let r = u.udmabuf_create(ubuf, 0, PAGE, 0);
        errno_fd(u, "udmabuf_create(memfd = a dma-buf)", Errno::EBADFD, r)
    })
}

/// udmabuf test-4: a 4-page memfd sealed with `F_SEAL_SHRINK`, offset 0, is accepted.
pub fn udmabuf_test_4_create<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let size = NUM_PAGES * PAGE;
        let m = sealed_memfd(u, fds, size, F_SEAL_SHRINK)?;
        write_pages(u, m, size, b'a')?;
        let ubuf = open(fds, "udmabuf_create", u.udmabuf_create(m, 0, size, 0))?;
        let got = size_of(u, ubuf)?;
        ensure(got == size, || {
            format!("udmabuf size {got}, expected {size}")
        })
    })
}

/// udmabuf test-5: CREATE_LIST with 4 items of 4 pages, spread over a 1024-page memfd; after
/// rewriting the memfd, the udmabuf mapping shows the new bytes (the pages are shared, not
/// copied).
pub fn udmabuf_test_5_create_list_sees_memfd_writes<U: Uapi>(
    u: &mut U,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let size = MEMFD_SIZE * PAGE;
        let m = sealed_memfd(u, fds, size, F_SEAL_SHRINK)?;
        write_pages(u, m, size, b'a')?;
        let items: Vec<(Fd, u64, u64)> = (0..NUM_ENTRIES)
            .map(|i| (m, i * (size / NUM_ENTRIES), NUM_PAGES * PAGE))
            .collect();
        let ubuf = open(
            fds,
            "udmabuf_create_list",
            u.udmabuf_create_list(UDMABUF_FLAGS_CLOEXEC, &items),
        )?;
        let map = map_rw(u, ubuf, 0, NUM_ENTRIES * NUM_PAGES * PAGE)?;
        write_pages(u, m, size, b'b')?;
        compare_chunks(
            u,
            ubuf,
            &map,
            |u, off| {
                let b = ok("pread", u.pread(m, off, 1))?;
                Ok(b.first().copied().unwrap_or(0))
            },
            PAGE,
            size,
        )
    })
}

/// The selftest's `compare_chunks`: page `j` of item `i` in the udmabuf equals the memfd page at
/// `i * memfd_size / 4 + j`.
fn compare_chunks<U: Uapi>(
    u: &mut U,
    ubuf: Fd,
    map: &U::Map,
    mut memfd_byte: impl FnMut(&mut U, u64) -> Step<u8>,
    page: u64,
    memfd_size: u64,
) -> Step<()> {
    let sync = DMA_BUF_SYNC_READ;
    ok(
        "sync START",
        u.dma_buf_sync(ubuf, DMA_BUF_SYNC_START | sync),
    )?;
    let mut k = 0;
    for i in 0..NUM_ENTRIES {
        let off = i * (memfd_size / NUM_ENTRIES);
        for j in 0..NUM_PAGES {
            let want = memfd_byte(u, off + j * page)?;
            let got = read_map(map, k * page, 1)?[0];
            ensure(want == got, || {
                format!("udmabuf page {k} holds {got:#x}, the memfd {want:#x}")
            })?;
            k += 1;
        }
    }
    ok("sync END", u.dma_buf_sync(ubuf, DMA_BUF_SYNC_END | sync))
}

/// udmabuf test-6: as test-5 with a hugetlb memfd (2 MiB pages). The selftest's memfd has 1024
/// huge pages (2 GiB); this one has the 16 the items need at the selftest's spacing
/// (4 x 4 pages, one item per quarter).
pub fn udmabuf_test_6_hugetlb<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    hugetlb_case(u, false)
}

/// udmabuf test-7: as test-6, but the udmabuf is created (pinning the pages) before the memfd
/// is written.
pub fn udmabuf_test_7_hugetlb_pin_first<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    hugetlb_case(u, true)
}

fn hugetlb_case<U: Uapi>(u: &mut U, pin_first: bool) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let size = NUM_ENTRIES * NUM_PAGES * HPAGE;
        let m = match u.memfd_create("udmabuf-test", MFD_ALLOW_SEALING | MFD_HUGETLB) {
            Ok(fd) => {
                fds.push(fd);
                fd
            }
            Err(e) => return skip(format!("no hugetlb memfd (memfd_create: {e:?})")),
        };
        ok("add_seals", u.add_seals(m, F_SEAL_SHRINK))?;
        if let Err(e) = u.ftruncate(m, size) {
            return skip(format!("no huge pages (ftruncate: {e:?})"));
        }
        let items: Vec<(Fd, u64, u64)> = (0..NUM_ENTRIES)
            .map(|i| (m, i * (size / NUM_ENTRIES), NUM_PAGES * HPAGE))
            .collect();
        let mut ubuf = None;
        if pin_first {
            ubuf = Some(open(
                fds,
                "udmabuf_create_list",
                u.udmabuf_create_list(0, &items),
            )?);
        }
        let mem = match u.mmap(m, 0, size, PROT_READ | PROT_WRITE, true) {
            Ok(map) => map,
            Err(e) => return skip(format!("no huge pages (mmap of the memfd: {e:?})")),
        };
        let mark = |map: &U::Map, chr: u8| -> Step<()> {
            for p in 0..size / HPAGE {
                ok("write memfd", map.write(p * HPAGE, &[chr]))?;
            }
            Ok(())
        };
        mark(&mem, b'a')?;
        let ubuf = match ubuf {
            Some(fd) => fd,
            None => open(fds, "udmabuf_create_list", u.udmabuf_create_list(0, &items))?,
        };
        let map = map_rw(u, ubuf, 0, NUM_ENTRIES * NUM_PAGES * HPAGE)?;
        mark(&mem, b'b')?;
        compare_chunks(
            u,
            ubuf,
            &map,
            |_, off| Ok(read_map(&mem, off, 1)?[0]),
            HPAGE,
            size,
        )
    })
}

/// 95: a total size of 0 is `EINVAL`, for CREATE and for an empty CREATE_LIST.
pub fn udmabuf_zero_size_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, PAGE, F_SEAL_SHRINK)?;
        let r = u.udmabuf_create(m, 0, 0, 0);
        errno_fd(u, "udmabuf_create(size 0)", Errno::EINVAL, r)?;
        let r = u.udmabuf_create_list(0, &[]);
        errno_fd(u, "udmabuf_create_list([])", Errno::EINVAL, r)?;
        let r = u.udmabuf_create_list(0, &[(m, 0, 0), (m, 0, 0)]);
        errno_fd(u, "udmabuf_create_list(two empty items)", Errno::EINVAL, r)
    })
}

/// 95: more than `size_limit_mb` (64 MiB by default) in one udmabuf is `EINVAL`, checked before
/// any page is pinned.
pub fn udmabuf_size_limit_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, PAGE, F_SEAL_SHRINK)?;
        let limit = crate::UDMABUF_SIZE_LIMIT_DEFAULT;
        let r = u.udmabuf_create(m, 0, limit + PAGE, 0);
        errno_fd(u, "udmabuf_create(64 MiB + 1 page)", Errno::EINVAL, r)?;
        let r = u.udmabuf_create(m, 0, !(PAGE - 1), 0);
        errno_fd(u, "udmabuf_create(huge size)", Errno::EINVAL, r)?;
        let half = limit / 2;
        let r = u.udmabuf_create_list(0, &[(m, 0, half), (m, 0, half), (m, 0, PAGE)]);
        errno_fd(
            u,
            "udmabuf_create_list(items summing past the limit)",
            Errno::EINVAL,
            r,
        )
    })
}

/// 96: a `memfd` that is not an open fd is `EBADFD`.
pub fn udmabuf_closed_memfd_ebadfd<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, _| {
        need_udmabuf(u)?;
        let closed = closed_fd(u)?;
        let r = u.udmabuf_create(closed, 0, PAGE, 0);
        errno_fd(u, "udmabuf_create(closed fd)", Errno::EBADFD, r)?;
        let r = u.udmabuf_create(-1, 0, PAGE, 0);
        errno_fd(u, "udmabuf_create(-1)", Errno::EBADFD, r)
    })
}

/// 97: the memfd must be sealed with `F_SEAL_SHRINK` and must not be sealed with
/// `F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE` (`EINVAL`); a memfd made without
/// `MFD_ALLOW_SEALING` (only `F_SEAL_SEAL`) lacks SHRINK.
pub fn udmabuf_seals_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let unsealed = sealed_memfd(u, fds, PAGE, 0)?;
        let plain = open(fds, "memfd_create(0)", u.memfd_create("plain", 0))?;
        ok("ftruncate", u.ftruncate(plain, PAGE))?;
        let write = sealed_memfd(u, fds, PAGE, F_SEAL_SHRINK | F_SEAL_WRITE)?;
        let future = sealed_memfd(u, fds, PAGE, F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE)?;
        for (m, what) in [
            (unsealed, "no seals"),
            (plain, "no MFD_ALLOW_SEALING"),
            (write, "SHRINK|WRITE"),
            (future, "SHRINK|FUTURE_WRITE"),
        ] {
            let r = u.udmabuf_create(m, 0, PAGE, 0);
            errno_fd(u, &format!("udmabuf_create({what})"), Errno::EINVAL, r)?;
        }
        Ok(())
    })
}

/// `udmabuf_pin_folios`: a range reaching past the end of the memfd is `EINVAL` (shmem does
/// not allocate pages beyond `i_size`).
pub fn udmabuf_range_past_memfd_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, 4 * PAGE, F_SEAL_SHRINK)?;
        for (off, size) in [(4 * PAGE, PAGE), (2 * PAGE, 3 * PAGE)] {
            let r = u.udmabuf_create(m, off, size, 0);
            errno_fd(
                u,
                &format!("udmabuf_create(off {off}, size {size})"),
                Errno::EINVAL,
                r,
            )?;
        }
        Ok(())
    })
}

/// `udmabuf_pin_folios` (Linux 6.11+, where pinning goes through `memfd_pin_folios`): an item
/// of size 0 in a list with a non-zero total is `EINVAL` (its page range `start..start-1` is
/// refused); before 6.11 such an item pinned nothing and was accepted.
pub fn udmabuf_empty_item_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, 2 * PAGE, F_SEAL_SHRINK)?;
        let r = u.udmabuf_create_list(0, &[(m, 0, PAGE), (m, PAGE, 0)]);
        errno_fd(
            u,
            "udmabuf_create_list with an empty item",
            Errno::EINVAL,
            r,
        )
    })
}

/// 98: CREATE_LIST with more than `list_limit` (1024) items is `EINVAL`.
pub fn udmabuf_list_limit_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, PAGE, F_SEAL_SHRINK)?;
        let items = vec![(m, 0, PAGE); UDMABUF_LIST_LIMIT as usize + 1];
        let r = u.udmabuf_create_list(0, &items);
        errno_fd(u, "udmabuf_create_list(1025 items)", Errno::EINVAL, r)
    })
}

/// 98: the items of CREATE_LIST are concatenated in order; the same memfd page may appear
/// twice; items of different memfds mix.
pub fn udmabuf_list_concatenates_in_order<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let a = sealed_memfd(u, fds, 4 * PAGE, F_SEAL_SHRINK)?;
        let b = sealed_memfd(u, fds, 2 * PAGE, F_SEAL_SHRINK)?;
        for p in 0..4 {
            ok("pwrite", u.pwrite(a, p * PAGE, &[b'a' + p as u8]))?;
        }
        ok("pwrite", u.pwrite(b, PAGE, b"B"))?;
        let items = [
            (a, 2 * PAGE, PAGE),
            (b, PAGE, PAGE),
            (a, 0, 2 * PAGE),
            (a, 2 * PAGE, PAGE),
        ];
        let ubuf = open(fds, "udmabuf_create_list", u.udmabuf_create_list(0, &items))?;
        let got = size_of(u, ubuf)?;
        ensure(got == 5 * PAGE, || format!("size {got}"))?;
        let map = map_rw(u, ubuf, 0, 5 * PAGE)?;
        let mut firsts = Vec::new();
        for p in 0..5 {
            firsts.push(read_map(&map, p * PAGE, 1)?[0]);
        }
        ensure(firsts == b"cBabc", || {
            format!(
                "first bytes of the pages: {:?}",
                String::from_utf8_lossy(&firsts)
            )
        })
    })
}

/// 99: `UDMABUF_FLAGS_CLOEXEC` is accepted; mainline (through 6.16) ignores unknown flag bits
/// (a posted patch, "test-unknown-flags", would refuse them with `EINVAL`).
pub fn udmabuf_flags<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, PAGE, F_SEAL_SHRINK)?;
        for flags in [0, UDMABUF_FLAGS_CLOEXEC, UDMABUF_FLAGS_CLOEXEC | 0x2] {
            let fd = open(
                fds,
                &format!("udmabuf_create(flags {flags:#x})"),
                u.udmabuf_create(m, 0, PAGE, flags),
            )?;
            close_now(u, fds, fd)?;
        }
        Ok(())
    })
}

/// 100: the udmabuf is `pages * PAGE_SIZE` long and open read-write: it maps shared with
/// `PROT_WRITE`, and its bytes are the memfd's in both directions.
pub fn udmabuf_is_rdwr_and_page_sized<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, 3 * PAGE, F_SEAL_SHRINK)?;
        let ubuf = open(
            fds,
            "udmabuf_create",
            u.udmabuf_create(m, PAGE, 2 * PAGE, 0),
        )?;
        let size = size_of(u, ubuf)?;
        ensure(size == 2 * PAGE, || format!("size {size}"))?;
        let map = map_rw(u, ubuf, 0, 2 * PAGE)?;
        ok("write", map.write(10, b"via-udmabuf"))?;
        let got = ok("pread", u.pread(m, PAGE + 10, 11))?;
        ensure(got == b"via-udmabuf", || format!("memfd holds {got:?}"))?;
        ok("pwrite", u.pwrite(m, 2 * PAGE, b"via-memfd"))?;
        let got = read_map(&map, PAGE, 9)?;
        ensure(got == b"via-memfd", || format!("udmabuf holds {got:?}"))
    })
}

/// 101: a private mapping of a udmabuf is `EINVAL`.
pub fn udmabuf_mmap_private_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, PAGE, F_SEAL_SHRINK)?;
        let ubuf = open(fds, "udmabuf_create", u.udmabuf_create(m, 0, PAGE, 0))?;
        let r = u.mmap(ubuf, 0, PAGE, PROT_READ, false).map(|_| ());
        errno("mmap(private)", Errno::EINVAL, r)
    })
}

/// 101: `DMA_BUF_IOCTL_SYNC` END before any START is `EINVAL` (there is no sg table yet);
/// after a START, END works.
pub fn udmabuf_sync_end_before_start_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, PAGE, F_SEAL_SHRINK)?;
        let ubuf = open(fds, "udmabuf_create", u.udmabuf_create(m, 0, PAGE, 0))?;
        let end = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
        errno("sync END first", Errno::EINVAL, u.dma_buf_sync(ubuf, end))?;
        ok(
            "sync START",
            u.dma_buf_sync(ubuf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ),
        )?;
        ok("sync END", u.dma_buf_sync(ubuf, end))
    })
}

/// 100: the udmabuf keeps its pages after the memfd's fd is closed.
pub fn udmabuf_outlives_memfd_fd<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        need_udmabuf(u)?;
        let m = sealed_memfd(u, fds, 2 * PAGE, F_SEAL_SHRINK)?;
        ok("pwrite", u.pwrite(m, PAGE, b"pinned"))?;
        let ubuf = open(fds, "udmabuf_create", u.udmabuf_create(m, 0, 2 * PAGE, 0))?;
        close_now(u, fds, m)?;
        let map = map_rw(u, ubuf, 0, 2 * PAGE)?;
        let got = read_map(&map, PAGE, 6)?;
        ensure(got == b"pinned", || format!("read {got:?}"))
    })
}
