//! The `v4l2` suite's queue-ownership and busy cases: the file handle that allocated the
//! buffers owns the queue, another open of the same node may look (QUERYBUF) but not touch
//! (`EBUSY`), the queue is free again once the owner closes, REQBUFS while streaming is
//! `EBUSY`; a non-blocking DQBUF with nothing queued is `EAGAIN`, and one queued buffer is
//! enough to start vivid's capture.

use super::super::*;
use super::{buffer, capture, querybuf, reqbufs, CAP};
use crate::v4l2::*;
use crate::POLLIN;

/// Ownership: after REQBUFS on one open of the capture node, a second open's REQBUFS, QBUF
/// and STREAMON are `EBUSY` while its QUERYBUF works; closing the owner frees the queue for
/// the second. REQBUFS, even REQBUFS(0), while streaming is `EBUSY`.
pub fn v4l2_second_open_is_not_the_owner<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let first = capture(u, v, fds)?;
        let second = capture(u, v, fds)?;
        let n = reqbufs(u, v, first, 2, MEMORY_MMAP)?;
        let mut r = RequestBuffers {
            count: 2,
            type_: CAP,
            memory: MEMORY_MMAP,
            ..Default::default()
        };
        errno(
            "REQBUFS from a second open",
            Errno::EBUSY,
            v.reqbufs(u, second, &mut r),
        )?;
        querybuf(u, v, second, 0, MEMORY_MMAP)?;
        errno(
            "QBUF from a second open",
            Errno::EBUSY,
            v.qbuf(u, second, &mut buffer(0, MEMORY_MMAP)),
        )?;
        errno(
            "STREAMON from a second open",
            Errno::EBUSY,
            v.streamon(u, second, CAP),
        )?;
        for i in 0..n {
            ok(
                &format!("QBUF({i})"),
                v.qbuf(u, first, &mut buffer(i, MEMORY_MMAP)),
            )?;
        }
        ok("STREAMON", v.streamon(u, first, CAP))?;
        for count in [0, 2] {
            let mut r = RequestBuffers {
                count,
                type_: CAP,
                memory: MEMORY_MMAP,
                ..Default::default()
            };
            errno(
                &format!("REQBUFS({count}) while streaming"),
                Errno::EBUSY,
                v.reqbufs(u, first, &mut r),
            )?;
        }
        close_now(u, fds, first)?;
        let again = reqbufs(u, v, second, 2, MEMORY_MMAP)?;
        ensure(again >= 2, || {
            format!("REQBUFS after the owner closed gave {again}")
        })?;
        reqbufs(u, v, second, 0, MEMORY_MMAP).map(drop)
    })
}

/// Non-blocking DQBUF: streaming with no buffer queued has nothing to give, so a
/// non-blocking DQBUF is `EAGAIN`; once a buffer is queued a blocking DQBUF gets it back.
pub fn v4l2_nonblocking_dqbuf_with_nothing_queued<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        ok("STREAMON with nothing queued", v.streamon(u, c, CAP))?;
        ok("O_NONBLOCK", v.set_nonblocking(u, c, true))?;
        errno(
            "non-blocking DQBUF, nothing queued",
            Errno::EAGAIN,
            v.dqbuf(u, c, &mut buffer(0, MEMORY_MMAP)),
        )?;
        ok("QBUF(1)", v.qbuf(u, c, &mut buffer(1, MEMORY_MMAP)))?;
        ok("blocking again", v.set_nonblocking(u, c, false))?;
        let mut d = buffer(0, MEMORY_MMAP);
        ok("DQBUF", v.dqbuf(u, c, &mut d))?;
        ensure(d.index == 1, || format!("dequeued {d:?}"))?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// vivid supports requests, so its queues have `min_queued_buffers` 0: one queued buffer
/// after STREAMON starts the capture, and the frame arrives (poll says `POLLIN`).
pub fn v4l2_one_queued_buffer_starts_the_capture<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        ok("QBUF(0)", v.qbuf(u, c, &mut buffer(0, MEMORY_MMAP)))?;
        ok("STREAMON with one buffer", v.streamon(u, c, CAP))?;
        let r = ok("poll", v.poll_video(u, c, POLLIN, 5000))?;
        ensure(r & POLLIN != 0, || {
            format!("poll with one buffer queued gave {r:#x}: the capture did not start")
        })?;
        let mut d = buffer(0, MEMORY_MMAP);
        ok("DQBUF", v.dqbuf(u, c, &mut d))?;
        ensure(d.index == 0, || format!("dequeued {d:?}"))?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}
