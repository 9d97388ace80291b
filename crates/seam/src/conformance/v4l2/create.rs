//! The `v4l2` suite's CREATE_BUFS, PREPARE_BUF and REMOVE_BUFS cases (the last since Linux
//! 6.10): creating buffers of a given size beside REQBUFS's, preparing a buffer ahead of QBUF,
//! and removing dequeued buffers from the middle of the queue.

use super::super::*;
use super::{buffer, capture, querybuf, reqbufs, CAP};
use crate::v4l2::*;

fn create<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
    fd: Fd,
    count: u32,
    memory: u32,
    sizeimage: u32,
) -> Result<CreateBuffers, Errno> {
    let mut c = CreateBuffers {
        count,
        memory,
        type_: CAP,
        sizeimage,
        ..Default::default()
    };
    v.create_bufs(u, fd, &mut c).map(|()| c)
}

/// CREATE_BUFS: count 0 only reports (index = the buffer count, the memory capabilities),
/// even for another memory type than the queue's, but an unknown memory is `EINVAL`; buffers
/// come after the existing ones and may be larger than the format; a size below the format's,
/// a size of 0, another memory type than the queue's or the output type is `EINVAL`.
pub fn v4l2_create_bufs_sizes_and_errnos<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let size = ok("G_FMT", v.g_fmt(u, c, CAP))?.sizeimage;
        let zero = ok("CREATE_BUFS(0)", create(u, v, c, 0, MEMORY_MMAP, size))?;
        ensure(
            zero.index == 0
                && zero.capabilities & BUF_CAP_SUPPORTS_MEMORY == BUF_CAP_SUPPORTS_MEMORY,
            || format!("CREATE_BUFS(0) gave {zero:?}"),
        )?;
        let two = ok("CREATE_BUFS(2)", create(u, v, c, 2, MEMORY_MMAP, size))?;
        ensure(two.index == 0 && two.count == 2, || {
            format!("CREATE_BUFS(2) gave {two:?}")
        })?;
        let big = ok(
            "CREATE_BUFS(1, twice the size)",
            create(u, v, c, 1, MEMORY_MMAP, 2 * size),
        )?;
        ensure(big.index == 2 && big.count == 1, || {
            format!("CREATE_BUFS(1, big) gave {big:?}")
        })?;
        let b = querybuf(u, v, c, 2, MEMORY_MMAP)?;
        ensure(b.length >= 2 * size, || format!("big buffer {b:?}"))?;
        for (what, count, memory, s) in [
            ("size - 1", 1, MEMORY_MMAP, size - 1),
            ("size 0", 1, MEMORY_MMAP, 0),
            ("DMABUF on an MMAP queue", 1, MEMORY_DMABUF, size),
        ] {
            errno(
                &format!("CREATE_BUFS({what})"),
                Errno::EINVAL,
                create(u, v, c, count, memory, s).map(drop),
            )?;
        }
        let probe = ok(
            "CREATE_BUFS(0, DMABUF) on an MMAP queue",
            create(u, v, c, 0, MEMORY_DMABUF, size),
        )?;
        ensure(probe.index == 3, || {
            format!("CREATE_BUFS(0) gave {probe:?}")
        })?;
        errno(
            "CREATE_BUFS(0, memory 99)",
            Errno::EINVAL,
            create(u, v, c, 0, 99, size).map(drop),
        )?;
        let mut out = CreateBuffers {
            count: 1,
            memory: MEMORY_MMAP,
            type_: BUF_TYPE_VIDEO_OUTPUT,
            sizeimage: size,
            ..Default::default()
        };
        errno(
            "CREATE_BUFS(type output)",
            Errno::EINVAL,
            v.create_bufs(u, c, &mut out),
        )?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// PREPARE_BUF: a prepared buffer says PREPARED, cannot be prepared again (`EINVAL`), queues
/// and streams; a queued buffer or an index past the count cannot be prepared (`EINVAL`).
pub fn v4l2_prepare_buf_then_qbuf<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let n = reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        ok(
            "PREPARE_BUF(0)",
            v.prepare_buf(u, c, &mut buffer(0, MEMORY_MMAP)),
        )?;
        let b = querybuf(u, v, c, 0, MEMORY_MMAP)?;
        ensure(
            b.flags & BUF_FLAG_PREPARED != 0 && b.flags & BUF_FLAG_QUEUED == 0,
            || format!("prepared buffer {b:?}"),
        )?;
        errno(
            "PREPARE_BUF(0) again",
            Errno::EINVAL,
            v.prepare_buf(u, c, &mut buffer(0, MEMORY_MMAP)),
        )?;
        errno(
            "PREPARE_BUF(index past the count)",
            Errno::EINVAL,
            v.prepare_buf(u, c, &mut buffer(n, MEMORY_MMAP)),
        )?;
        for i in 0..n {
            ok(
                &format!("QBUF({i})"),
                v.qbuf(u, c, &mut buffer(i, MEMORY_MMAP)),
            )?;
        }
        errno(
            "PREPARE_BUF(a queued buffer)",
            Errno::EINVAL,
            v.prepare_buf(u, c, &mut buffer(1, MEMORY_MMAP)),
        )?;
        ok("STREAMON", v.streamon(u, c, CAP))?;
        ok("DQBUF", v.dqbuf(u, c, &mut buffer(0, MEMORY_MMAP)))?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// REMOVE_BUFS: the capabilities say it is supported; a range holding a queued buffer is
/// `EBUSY`; a dequeued buffer goes (QUERYBUF of it is then `EINVAL`, removing it again is
/// `EINVAL`) and CREATE_BUFS fills the hole; count 0 does nothing whatever the index; the
/// output type, even with count 0 (6.12 checks the type first; the simulator did not), or a
/// range past `max_num_buffers` is `EINVAL`.
pub fn v4l2_remove_bufs_from_the_middle<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let size = ok("G_FMT", v.g_fmt(u, c, CAP))?.sizeimage;
        let four = ok("CREATE_BUFS(4)", create(u, v, c, 4, MEMORY_MMAP, size))?;
        ensure(
            four.count == 4 && four.capabilities & BUF_CAP_SUPPORTS_REMOVE_BUFS != 0,
            || format!("CREATE_BUFS(4) gave {four:?}"),
        )?;
        ok("QBUF(2)", v.qbuf(u, c, &mut buffer(2, MEMORY_MMAP)))?;
        errno(
            "REMOVE_BUFS(1..3) with 2 queued",
            Errno::EBUSY,
            v.remove_bufs(u, c, CAP, 1, 2),
        )?;
        ok("REMOVE_BUFS(1, 1)", v.remove_bufs(u, c, CAP, 1, 1))?;
        errno(
            "QUERYBUF(removed 1)",
            Errno::EINVAL,
            v.querybuf(u, c, &mut buffer(1, MEMORY_MMAP)),
        )?;
        errno(
            "REMOVE_BUFS(1, 1) again",
            Errno::EINVAL,
            v.remove_bufs(u, c, CAP, 1, 1),
        )?;
        ok("REMOVE_BUFS(count 0)", v.remove_bufs(u, c, CAP, 0, 0))?;
        ok(
            "REMOVE_BUFS(index 9, count 0)",
            v.remove_bufs(u, c, CAP, 9, 0),
        )?;
        errno(
            "REMOVE_BUFS(count 0, type output)",
            Errno::EINVAL,
            v.remove_bufs(u, c, BUF_TYPE_VIDEO_OUTPUT, 9, 0),
        )?;
        errno(
            "REMOVE_BUFS(0, 1, type output)",
            Errno::EINVAL,
            v.remove_bufs(u, c, BUF_TYPE_VIDEO_OUTPUT, 0, 1),
        )?;
        errno(
            "REMOVE_BUFS(past max_num_buffers)",
            Errno::EINVAL,
            v.remove_bufs(u, c, CAP, 1000, 1),
        )?;
        querybuf(u, v, c, 3, MEMORY_MMAP)?;
        let one = ok("CREATE_BUFS(1)", create(u, v, c, 1, MEMORY_MMAP, size))?;
        ensure(one.index == 1 && one.count == 1, || {
            format!("CREATE_BUFS(1) after removing 1 gave {one:?}")
        })?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}
