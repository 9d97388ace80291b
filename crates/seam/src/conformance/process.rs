//! Cases for file descriptors and processes: close/dup errors, lowest-free numbering, a dup
//! sharing the open file, isolation between processes, and passing an fd (`SCM_RIGHTS`).
//!
//! The multi-process cases need [`Uapi::spawn_process`] and [`Uapi::send_fd`] and are skipped
//! where the implementation answers `EOPNOTSUPP`.

use super::*;
use crate::{fdinfo_field, DMA_BUF_SYNC_END, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_START};

fn count_of<U: Uapi>(u: &mut U, fd: Fd) -> Step<u64> {
    let info = ok("fdinfo", u.fdinfo(fd))?;
    match fdinfo_field(&info, "count").and_then(|c| c.parse().ok()) {
        Some(c) => Ok(c),
        None => fail(format!("no count line in fdinfo {info:?}")),
    }
}

/// close(2), dup(2), fdinfo: an fd that is not open is `EBADF`, including negative ones and a
/// second close.
pub fn fd_close_and_dup_ebadf<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, _| {
        let closed = closed_fd(u)?;
        errno("close(closed)", Errno::EBADF, u.close(closed))?;
        errno("close(-1)", Errno::EBADF, u.close(-1))?;
        let r = u.dup(closed);
        errno_fd(u, "dup(closed)", Errno::EBADF, r)?;
        let r = u.dup(-5);
        errno_fd(u, "dup(-5)", Errno::EBADF, r)?;
        errno("fdinfo(closed)", Errno::EBADF, u.fdinfo(closed))
    })
}

/// The fd table hands out the lowest free number.
pub fn fd_lowest_free_number<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let a = open(fds, "memfd a", u.memfd_create("a", 0))?;
        let b = open(fds, "memfd b", u.memfd_create("b", 0))?;
        let c = open(fds, "memfd c", u.memfd_create("c", 0))?;
        ensure(a < b && b < c, || {
            format!("fds {a}, {b}, {c} not increasing")
        })?;
        close_now(u, fds, b)?;
        let d = open(fds, "dup", u.dup(c))?;
        ensure(d == b, || format!("dup after closing {b} gave {d}"))
    })
}

/// 87, fd table: a dup is the same open file: fdinfo's count grows by one, and what is written
/// through a mapping of one fd is read through a mapping of the other; closing one leaves the
/// other working.
pub fn fd_dup_shares_the_buffer<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let before = count_of(u, buf)?;
        let dup = open(fds, "dup", u.dup(buf))?;
        let after = count_of(u, buf)?;
        ensure(after == before + 1, || {
            format!("count {before} -> {after} after dup")
        })?;
        let size = size_of(u, dup)?;
        ensure(size == PAGE, || format!("dup size {size}"))?;
        let a = map_rw(u, buf, 0, PAGE)?;
        ok("write", a.write(0, b"shared"))?;
        drop(a);
        close_now(u, fds, buf)?;
        let b = map_rw(u, dup, 0, PAGE)?;
        let got = read_map(&b, 0, 6)?;
        ensure(got == b"shared", || {
            format!("read through the dup: {got:?}")
        })
    })
}

/// Isolation: fd numbers mean nothing in another process; a fresh process has none open.
pub fn fd_numbers_are_per_process<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let mut other = match u.spawn_process() {
            Ok(p) => p,
            Err(e) => return skip(format!("no second process ({e:?})")),
        };
        let r = other.lseek(buf, 0, crate::SEEK_END);
        errno(
            "lseek of the first process's fd in the second",
            Errno::EBADF,
            r,
        )?;
        errno("close of it", Errno::EBADF, other.close(buf))?;
        size_of(u, buf).map(|_| ())
    })
}

/// SCM_RIGHTS, 64: a buffer sent to another process is the same memory there; it stays alive
/// when the sender closes its fd, and the receiver's fd works until it closes it.
pub fn fd_send_shares_buffer_between_processes<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, 2 * PAGE)?;
        let mut other = match u.spawn_process() {
            Ok(p) => p,
            Err(e) => return skip(format!("no second process ({e:?})")),
        };
        let theirs = match u.send_fd(buf, &mut other) {
            Ok(fd) => fd,
            Err(Errno::EOPNOTSUPP) => return skip("no fd passing (send_fd: EOPNOTSUPP)"),
            Err(e) => return fail(format!("send_fd: {e:?}")),
        };
        let map = map_rw(u, buf, 0, 2 * PAGE)?;
        ok(
            "sync START",
            u.dma_buf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW),
        )?;
        ok("write", map.write(PAGE, b"frame-1"))?;
        ok(
            "sync END",
            u.dma_buf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW),
        )?;
        drop(map);
        close_now(u, fds, buf)?;
        let theirs_map = map_rw(&mut other, theirs, 0, 2 * PAGE)?;
        ok(
            "sync START",
            other.dma_buf_sync(theirs, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW),
        )?;
        let got = read_map(&theirs_map, PAGE, 7)?;
        ok(
            "sync END",
            other.dma_buf_sync(theirs, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW),
        )?;
        ensure(got == b"frame-1", || format!("the receiver read {got:?}"))?;
        drop(theirs_map);
        ok("close in the receiver", other.close(theirs))
    })
}
