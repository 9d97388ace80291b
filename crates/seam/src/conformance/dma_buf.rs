//! Cases for the dma-buf file itself: `DMA_BUF_IOCTL_SYNC`, `DMA_BUF_SET_NAME`,
//! `EXPORT/IMPORT_SYNC_FILE`, `lseek`, `poll`, `mmap` and fdinfo (behaviours 79-87).
//!
//! Every case works on a system-heap buffer and is skipped without a `system` heap; the cases
//! that need fences the test controls take them from the fence source (vgem on Linux).

use super::*;
use crate::{
    fdinfo_field, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_START,
    DMA_BUF_SYNC_WRITE, O_CLOEXEC, O_RDONLY, POLLIN, POLLNVAL, POLLOUT, SEEK_CUR, SEEK_END,
    SEEK_SET,
};

const R: u32 = DMA_BUF_SYNC_READ as u32;
const W: u32 = DMA_BUF_SYNC_WRITE as u32;
const RW: u32 = DMA_BUF_SYNC_RW as u32;

/// 79-80: every START/END with READ, WRITE or both is accepted on a mapped buffer.
pub fn dma_buf_sync_valid_flags<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let _map = map_rw(u, buf, 0, PAGE)?;
        for dir in [DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW] {
            ok(
                &format!("sync START|{dir}"),
                u.dma_buf_sync(buf, DMA_BUF_SYNC_START | dir),
            )?;
            ok(
                &format!("sync END|{dir}"),
                u.dma_buf_sync(buf, DMA_BUF_SYNC_END | dir),
            )?;
        }
        Ok(())
    })
}

/// 79: flags with bits outside `RW | END` (0x7) are `EINVAL`.
pub fn dma_buf_sync_invalid_flags_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        for flags in [0x8, 0x9, 0x80 | DMA_BUF_SYNC_RW, 1 << 63, u64::MAX] {
            errno(
                &format!("sync({flags:#x})"),
                Errno::EINVAL,
                u.dma_buf_sync(buf, flags),
            )?;
        }
        Ok(())
    })
}

/// 80: neither READ nor WRITE (START alone is 0, END alone is 4) is `EINVAL`.
pub fn dma_buf_sync_no_direction_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        errno(
            "sync(START)",
            Errno::EINVAL,
            u.dma_buf_sync(buf, DMA_BUF_SYNC_START),
        )?;
        errno(
            "sync(END)",
            Errno::EINVAL,
            u.dma_buf_sync(buf, DMA_BUF_SYNC_END),
        )?;
        Ok(())
    })
}

/// 87: the ioctl on an fd that is not open is `EBADF`; on a file that is not a dma-buf (a
/// memfd, a sync file) it is an unknown ioctl there, `ENOTTY`.
///
/// Not on a heap fd: `dma_heap_ioctl` looks only at `_IOC_NR` (behaviour 90), so the real
/// kernel takes `DMA_BUF_IOCTL_SYNC` (nr 0) on a heap for a short `DMA_HEAP_IOCTL_ALLOC` with
/// `len = flags`, allocates, and copies no fd back — a leaked buffer, not an error.
pub fn dma_buf_sync_wrong_fd<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let sync = open(fds, "export_sync_file", u.export_sync_file(buf, R))?;
        let memfd = open(fds, "memfd_create", u.memfd_create("m", 0))?;
        let flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ;
        errno("sync(memfd)", Errno::ENOTTY, u.dma_buf_sync(memfd, flags))?;
        errno(
            "sync(sync file)",
            Errno::ENOTTY,
            u.dma_buf_sync(sync, flags),
        )?;
        let closed = closed_fd(u)?;
        errno(
            "sync(closed fd)",
            Errno::EBADF,
            u.dma_buf_sync(closed, flags),
        )
    })
}

/// 84, 87: a name set with SET_NAME shows in fdinfo; a new name replaces the old one; a NUL
/// ends the name.
pub fn dma_buf_set_name_shows_in_fdinfo<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        ok("set_name(cam0)", u.dma_buf_set_name(buf, b"cam0"))?;
        let info = ok("fdinfo", u.fdinfo(buf))?;
        ensure(fdinfo_field(&info, "name") == Some("cam0"), || {
            format!("fdinfo after set_name(cam0): {info:?}")
        })?;
        ok(
            "set_name(isp-out\\0junk)",
            u.dma_buf_set_name(buf, b"isp-out\0junk"),
        )?;
        let info = ok("fdinfo", u.fdinfo(buf))?;
        ensure(fdinfo_field(&info, "name") == Some("isp-out"), || {
            format!("fdinfo after the second set_name: {info:?}")
        })
    })
}

/// 84: a name of 31 bytes fits (32 with its NUL); 32 bytes or more is `EINVAL` and the old
/// name stays.
pub fn dma_buf_set_name_too_long_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let max = [b'n'; 31];
        ok("set_name(31 bytes)", u.dma_buf_set_name(buf, &max))?;
        errno(
            "set_name(32 bytes)",
            Errno::EINVAL,
            u.dma_buf_set_name(buf, &[b'x'; 32]),
        )?;
        errno(
            "set_name(100 bytes)",
            Errno::EINVAL,
            u.dma_buf_set_name(buf, &[b'y'; 100]),
        )?;
        let info = ok("fdinfo", u.fdinfo(buf))?;
        let want = String::from_utf8_lossy(&max).into_owned();
        ensure(fdinfo_field(&info, "name") == Some(want.as_str()), || {
            format!("the 31-byte name did not survive a refused set_name: {info:?}")
        })
    })
}

/// 84, 87: SET_NAME on a non-dma-buf is `ENOTTY`, on a closed fd `EBADF`.
pub fn dma_buf_set_name_wrong_fd<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let memfd = open(fds, "memfd_create", u.memfd_create("m", 0))?;
        errno(
            "set_name(memfd)",
            Errno::ENOTTY,
            u.dma_buf_set_name(memfd, b"x"),
        )?;
        let closed = closed_fd(u)?;
        errno(
            "set_name(closed)",
            Errno::EBADF,
            u.dma_buf_set_name(closed, b"x"),
        )
    })
}

/// 85: EXPORT_SYNC_FILE with flags 0 or bits outside RW is `EINVAL`.
pub fn export_sync_file_bad_flags_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        for flags in [0, 0x4, RW | 0x100, u32::MAX] {
            let r = u.export_sync_file(buf, flags);
            errno_fd(
                u,
                &format!("export_sync_file({flags:#x})"),
                Errno::EINVAL,
                r,
            )?;
        }
        Ok(())
    })
}

/// 85: a buffer without fences exports the signaled stub, for READ, WRITE and RW.
pub fn export_sync_file_idle_is_signaled<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        for flags in [R, W, RW] {
            let sync = open(fds, "export_sync_file", u.export_sync_file(buf, flags))?;
            let info = ok("sync_file_info", u.sync_file_info(sync))?;
            ensure(info.status == 1 && info.num_fences >= 1, || {
                format!("export({flags}) of an idle buffer: {info:?}, expected signaled")
            })?;
        }
        Ok(())
    })
}

/// 85-86: READ exports the WRITE-usage fences, WRITE/RW the READ-usage ones (which include
/// writers); IMPORT with WRITE adds a write fence, with READ a read fence; an export is a
/// snapshot that later imports do not change.
pub fn export_sync_file_snapshots_by_usage<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let writer = system_buffer(u, fds, PAGE)?;
        let reader = system_buffer(u, fds, PAGE)?;
        let before = open(fds, "export(W) idle", u.export_sync_file(writer, W))?;
        let p = pending(u, fds)?;
        let f = p.sync;
        ok("import(W)", u.import_sync_file(writer, W, f))?;
        ok("import(R)", u.import_sync_file(reader, R, f))?;
        let cases = [
            (writer, R, 0),
            (writer, W, 0),
            (writer, RW, 0),
            (reader, R, 1),
        ];
        let mut exported = Vec::new();
        for (buf, flags, want) in cases.into_iter().chain([(reader, W, 0)]) {
            let s = open(fds, "export_sync_file", u.export_sync_file(buf, flags))?;
            let got = status_of(u, s)?;
            ensure(got == want, || {
                format!("export({flags}) status {got}, expected {want} (fence imported with W on the writer, R on the reader)")
            })?;
            exported.push(s);
        }
        ensure(status_of(u, before)? == 1, || {
            "an export taken before the import changed".into()
        })?;
        signal(u, &p)?;
        for s in exported {
            ensure(status_of(u, s)? == 1, || {
                "an exported fence did not signal with its source".into()
            })?;
        }
        Ok(())
    })
}

/// 86: IMPORT_SYNC_FILE with flags 0 or bits outside RW is `EINVAL`.
pub fn import_sync_file_bad_flags_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let sync = open(fds, "export_sync_file", u.export_sync_file(buf, R))?;
        for flags in [0, 0x4, RW | 0x8, u32::MAX] {
            let r = u.import_sync_file(buf, flags, sync);
            errno(&format!("import_sync_file({flags:#x})"), Errno::EINVAL, r)?;
        }
        Ok(())
    })
}

/// 86: a `sync_fd` that is not a sync file — a memfd, a dma-buf, an fd that is not open — is
/// `EINVAL`, not `EBADF`.
pub fn import_sync_file_not_a_sync_file_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let memfd = open(fds, "memfd_create", u.memfd_create("m", 0))?;
        errno(
            "import(memfd)",
            Errno::EINVAL,
            u.import_sync_file(buf, W, memfd),
        )?;
        errno(
            "import(dma-buf)",
            Errno::EINVAL,
            u.import_sync_file(buf, W, buf),
        )?;
        let closed = closed_fd(u)?;
        errno(
            "import(closed)",
            Errno::EINVAL,
            u.import_sync_file(buf, W, closed),
        )?;
        errno("import(-1)", Errno::EINVAL, u.import_sync_file(buf, W, -1))
    })
}

/// 86-87: the sync ioctls on a file that is not a dma-buf are `ENOTTY`; on a closed fd `EBADF`.
pub fn import_sync_file_wrong_dma_buf_fd<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let sync = open(fds, "export_sync_file", u.export_sync_file(buf, R))?;
        let memfd = open(fds, "memfd_create", u.memfd_create("m", 0))?;
        errno(
            "import on memfd",
            Errno::ENOTTY,
            u.import_sync_file(memfd, W, sync),
        )?;
        let r = u.export_sync_file(memfd, R);
        errno_fd(u, "export on memfd", Errno::ENOTTY, r)?;
        let r = u.export_sync_file(sync, R);
        errno_fd(u, "export on a sync file", Errno::ENOTTY, r)?;
        let closed = closed_fd(u)?;
        errno(
            "import on closed",
            Errno::EBADF,
            u.import_sync_file(closed, W, sync),
        )
    })
}

/// 90: a dma-buf ioctl sent to a dma-heap fd is a heap ioctl there: `dma_heap_ioctl` looks only
/// at `_IOC_NR`, and every number but 0 (ALLOC) is `EINVAL` — not `ENOTTY` — so SET_NAME (nr 1),
/// EXPORT_SYNC_FILE (nr 2) and IMPORT_SYNC_FILE (nr 3) on a heap fail with `EINVAL`.
///
/// `DMA_BUF_IOCTL_SYNC` (nr 0) on a heap is left out on purpose: the kernel takes it for a
/// short ALLOC with `len = flags`, allocates, and installs an fd it never reports back (seen on
/// Debian's 6.12 under `scripts/kernel-conformance`); the simulator models that and its own
/// test checks it, but a conformance case cannot clean up an fd it was never told about.
pub fn dma_buf_ioctls_on_a_heap_fd_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let heap = system_heap(u, fds)?;
        let buf = system_buffer(u, fds, PAGE)?;
        let sync = open(fds, "export_sync_file", u.export_sync_file(buf, R))?;
        errno(
            "set_name(heap)",
            Errno::EINVAL,
            u.dma_buf_set_name(heap, b"x"),
        )?;
        let r = u.export_sync_file(heap, R);
        errno_fd(u, "export_sync_file(heap)", Errno::EINVAL, r)?;
        errno(
            "import_sync_file(heap)",
            Errno::EINVAL,
            u.import_sync_file(heap, W, sync),
        )
    })
}

/// 82: `lseek(0, SEEK_END)` gives the size and `(0, SEEK_SET)` gives 0.
pub fn dma_buf_lseek_end_and_set<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, 3 * PAGE)?;
        let end = ok("lseek(0, END)", u.lseek(buf, 0, SEEK_END))?;
        ensure(end == 3 * PAGE, || {
            format!("lseek(0, END) = {end}, expected {}", 3 * PAGE)
        })?;
        let set = ok("lseek(0, SET)", u.lseek(buf, 0, SEEK_SET))?;
        ensure(set == 0, || format!("lseek(0, SET) = {set}"))
    })
}

/// 82: SEEK_CUR, any non-zero offset and any other whence are `EINVAL`.
pub fn dma_buf_lseek_invalid_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let bad = [
            (0, SEEK_CUR),
            (1, SEEK_END),
            (-1, SEEK_END),
            (4096, SEEK_SET),
            (0, 3),
            (0, 99),
        ];
        for (off, whence) in bad {
            let r = u.lseek(buf, off, whence);
            errno(&format!("lseek({off}, {whence})"), Errno::EINVAL, r)?;
        }
        Ok(())
    })
}

/// 83: `poll` asking for neither POLLIN nor POLLOUT reports nothing.
pub fn dma_buf_poll_no_events_is_zero<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let got = ok("poll(0)", u.poll(buf, 0, 0))?;
        ensure(got == 0, || format!("poll(events 0) = {got:#x}"))
    })
}

/// 83: a buffer without fences is readable and writable, reporting only what was asked.
pub fn dma_buf_poll_idle_is_ready<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        for ev in [POLLIN, POLLOUT, POLLIN | POLLOUT] {
            let got = ok("poll", u.poll(buf, ev, 0))?;
            ensure(got == ev, || {
                format!("poll({ev:#x}) on an idle buffer = {got:#x}")
            })?;
        }
        Ok(())
    })
}

/// 83: an unsignaled WRITE fence blocks POLLIN and POLLOUT until it signals.
pub fn dma_buf_poll_write_fence_blocks_in_and_out<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    poll_with_fence(u, W, 0)
}

/// 83: an unsignaled READ fence blocks POLLOUT only.
pub fn dma_buf_poll_read_fence_blocks_out_only<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    poll_with_fence(u, R, POLLIN)
}

fn poll_with_fence<U: Uapi>(u: &mut U, usage: u32, ready: u16) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let p = pending(u, fds)?;
        ok("import_sync_file", u.import_sync_file(buf, usage, p.sync))?;
        for _ in 0..2 {
            // Twice: the second poll finds the wake-up callback armed by the first.
            let got = ok("poll", u.poll(buf, POLLIN | POLLOUT, 0))?;
            ensure(got == ready, || {
                format!("poll(IN|OUT) with a pending fence of usage {usage} = {got:#x}, expected {ready:#x}")
            })?;
        }
        signal(u, &p)?;
        let got = ok("poll", u.poll(buf, POLLIN | POLLOUT, 0))?;
        ensure(got == POLLIN | POLLOUT, || {
            format!("poll(IN|OUT) after the fence signaled = {got:#x}")
        })
    })
}

/// poll(2): an fd that is not open is reported as `POLLNVAL`, not as an error.
pub fn poll_closed_fd_is_pollnval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, _| {
        let closed = closed_fd(u)?;
        let got = ok("poll(closed)", u.poll(closed, POLLIN, 0))?;
        ensure(got == POLLNVAL, || format!("poll(closed fd) = {got:#x}"))
    })
}

/// 81, 93: the whole buffer maps shared read-write; bytes written read back, and a second
/// mapping sees them.
pub fn dma_buf_mmap_read_write<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, 2 * PAGE)?;
        let a = map_rw(u, buf, 0, 2 * PAGE)?;
        ensure(a.len() == 2 * PAGE, || format!("mapping len {}", a.len()))?;
        let rw = DMA_BUF_SYNC_RW;
        ok("sync START", u.dma_buf_sync(buf, DMA_BUF_SYNC_START | rw))?;
        ok("write", a.write(PAGE - 2, b"span"))?;
        ok("sync END", u.dma_buf_sync(buf, DMA_BUF_SYNC_END | rw))?;
        let b = map_rw(u, buf, 0, 2 * PAGE)?;
        ok("sync START", u.dma_buf_sync(buf, DMA_BUF_SYNC_START | rw))?;
        let got = read_map(&b, PAGE - 2, 4)?;
        ok("sync END", u.dma_buf_sync(buf, DMA_BUF_SYNC_END | rw))?;
        ensure(got == b"span", || format!("second mapping read {got:?}"))?;
        let mut past = [0u8; 2];
        errno(
            "read past the mapping",
            Errno::EFAULT,
            a.read(2 * PAGE - 1, &mut past),
        )
    })
}

/// 81: a page range past the buffer's last page is `EINVAL`.
pub fn dma_buf_mmap_past_end_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, 2 * PAGE)?;
        let prot = PROT_READ | PROT_WRITE;
        for (off, len) in [
            (0, 3 * PAGE),
            (0, 2 * PAGE + 1),
            (PAGE, 2 * PAGE),
            (2 * PAGE, PAGE),
        ] {
            let r = u.mmap(buf, off, len, prot, true).map(|_| ());
            errno(&format!("mmap(off {off}, len {len})"), Errno::EINVAL, r)?;
        }
        Ok(())
    })
}

/// 81: a mapping at a page offset sees the buffer from that page on.
pub fn dma_buf_mmap_offset_inside<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, 3 * PAGE)?;
        let whole = map_rw(u, buf, 0, 3 * PAGE)?;
        ok("write", whole.write(2 * PAGE + 7, b"tail"))?;
        let part = map_rw(u, buf, 2 * PAGE, PAGE)?;
        let got = read_map(&part, 7, 4)?;
        ensure(got == b"tail", || format!("mapping at page 2 read {got:?}"))?;
        let odd = map_rw(u, buf, PAGE, PAGE + 100)?;
        ensure(odd.len() == PAGE + 100, || format!("len {}", odd.len()))?;
        Ok(())
    })
}

/// mmap(2), 81: length 0 and an offset that is not page-aligned are `EINVAL`; a sync file
/// cannot be mapped (`ENODEV`, after the mode check: `EACCES` for a shared writable mapping of
/// the read-only file); a closed fd is `EBADF`.
pub fn dma_buf_mmap_bad_len_or_offset_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, 2 * PAGE)?;
        let prot = PROT_READ | PROT_WRITE;
        errno(
            "mmap(len 0)",
            Errno::EINVAL,
            u.mmap(buf, 0, 0, prot, true).map(|_| ()),
        )?;
        let r = u.mmap(buf, 100, PAGE, prot, true).map(|_| ());
        errno("mmap(offset 100)", Errno::EINVAL, r)?;
        let sync = open(fds, "export_sync_file", u.export_sync_file(buf, R))?;
        // do_mmap checks the file mode before asking for an mmap method: a sync file is open
        // read-only, so a shared writable mapping is EACCES and a read-only one ENODEV.
        let r = u.mmap(sync, 0, PAGE, prot, true).map(|_| ());
        errno("mmap(sync file, RW)", Errno::EACCES, r)?;
        let r = u.mmap(sync, 0, PAGE, PROT_READ, true).map(|_| ());
        errno("mmap(sync file, R)", Errno::ENODEV, r)?;
        let closed = closed_fd(u)?;
        errno(
            "mmap(closed)",
            Errno::EBADF,
            u.mmap(closed, 0, PAGE, prot, true).map(|_| ()),
        )
    })
}

/// mmap(2): a length that overflows when rounded up to pages, or that no address space can
/// hold, is `ENOMEM`, before the buffer's bounds are looked at.
pub fn dma_buf_mmap_huge_len_enomem<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        for len in [u64::MAX, u64::MAX - PAGE + 2, 1 << 60] {
            let r = u.mmap(buf, 0, len, PROT_READ, true).map(|_| ());
            errno(&format!("mmap(len {len:#x})"), Errno::ENOMEM, r)?;
        }
        Ok(())
    })
}

/// mmap(2), 89: a buffer allocated with `fd_flags` O_RDONLY maps for reading, but a shared
/// writable mapping is `EACCES`.
pub fn dma_buf_mmap_access_mode_eacces<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let heap = system_heap(u, fds)?;
        let ro = open(
            fds,
            "heap_alloc(O_RDONLY)",
            u.heap_alloc(heap, PAGE, O_RDONLY | O_CLOEXEC, 0),
        )?;
        let r = u
            .mmap(ro, 0, PAGE, PROT_READ | PROT_WRITE, true)
            .map(|_| ());
        errno("mmap(RW, shared) of an O_RDONLY fd", Errno::EACCES, r)?;
        let m = ok(
            "mmap(R) of an O_RDONLY fd",
            u.mmap(ro, 0, PAGE, PROT_READ, true),
        )?;
        read_map(&m, 0, 16).map(|_| ())
    })
}

/// Mapping rule 2: a `PROT_READ` mapping refuses writes with `EACCES`.
pub fn dma_buf_mmap_prot_read_refuses_write<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let m = ok("mmap(R)", u.mmap(buf, 0, PAGE, PROT_READ, true))?;
        errno(
            "write to a PROT_READ mapping",
            Errno::EACCES,
            m.write(0, b"x"),
        )
    })
}

/// 64: a mapping holds its own reference; the buffer outlives the fd while it is mapped.
pub fn dma_buf_mmap_outlives_fd<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let m = map_rw(u, buf, 0, PAGE)?;
        ok("write", m.write(0, b"kept"))?;
        close_now(u, fds, buf)?;
        let got = read_map(&m, 0, 4)?;
        ensure(got == b"kept", || format!("read after close: {got:?}"))?;
        ok("write after close", m.write(4, b"!"))
    })
}

/// 87: fdinfo shows the size, a reference count and the exporter's name (the heap's).
pub fn dma_buf_fdinfo_size_count_exp_name<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, 5 * PAGE)?;
        let info = ok("fdinfo", u.fdinfo(buf))?;
        ensure(fdinfo_field(&info, "size") == Some("20480"), || {
            format!("size line: {info:?}")
        })?;
        ensure(fdinfo_field(&info, "exp_name") == Some("system"), || {
            format!("exp_name line: {info:?}")
        })?;
        let count = fdinfo_field(&info, "count").and_then(|c| c.parse::<u64>().ok());
        ensure(count.is_some_and(|c| c >= 1), || {
            format!("count line: {info:?}")
        })?;
        ensure(fdinfo_field(&info, "name").is_none(), || {
            format!("a name line before SET_NAME: {info:?}")
        })
    })
}
