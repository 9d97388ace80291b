//! The `v4l2` suite's import and streaming cases: an EXPBUF dma-buf of one queue imported into
//! another, udmabuf imports, STREAMOFF handing every buffer back, re-queueing the same fd, and
//! the errnos of a DMABUF plane of the wrong length, type, memory or index. As the rest of the
//! suite, each case passes on vivid under Linux 6.12 and on the simulator's vivid-like device.

use super::super::*;
use super::{buffer, capture, page_align, querybuf, reqbufs, CAP};
use crate::v4l2::*;
use crate::{F_SEAL_SHRINK, MFD_ALLOW_SEALING, UDMABUF_FLAGS_CLOEXEC};

const OUT: u32 = BUF_TYPE_VIDEO_OUTPUT;

fn reqbufs_type<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
    fd: Fd,
    type_: u32,
    count: u32,
    memory: u32,
) -> Step<u32> {
    let mut r = RequestBuffers {
        count,
        type_,
        memory,
        ..Default::default()
    };
    ok(
        &format!("REQBUFS({count}, type {type_}, memory {memory})"),
        v.reqbufs(u, fd, &mut r),
    )?;
    Ok(r.count)
}

fn dmabuf(index: u32, type_: u32, fd: Fd) -> Buffer {
    Buffer {
        index,
        type_,
        memory: MEMORY_DMABUF,
        m: fd as u32,
        ..Default::default()
    }
}

/// EXPBUF then import into another queue: the output node's MMAP planes (831488 bytes)
/// exported and queued as the capture node's DMABUF planes stream and come back with their
/// fds; a capture plane exported (462848 bytes) is too small for the output queue's 829440
/// (`EINVAL`).
pub fn v4l2_expbuf_imported_into_another_queue<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let o = open(fds, "open(output)", v.open_video(u, VideoNode::Output))?;
        reqbufs_type(u, v, o, OUT, 2, MEMORY_MMAP)?;
        let n = reqbufs(u, v, c, 2, MEMORY_DMABUF)?;
        let mut exported = Vec::new();
        for i in 0..n {
            let e = open(
                fds,
                &format!("EXPBUF(output {i})"),
                v.expbuf(u, o, OUT, i, crate::O_RDWR | crate::O_CLOEXEC),
            )?;
            ok(
                &format!("QBUF(capture {i}, exported fd)"),
                v.qbuf(u, c, &mut dmabuf(i, CAP, e)),
            )?;
            exported.push(e);
        }
        ok("STREAMON(capture)", v.streamon(u, c, CAP))?;
        let mut d = buffer(0, MEMORY_DMABUF);
        ok("DQBUF(capture)", v.dqbuf(u, c, &mut d))?;
        ensure(
            (d.index as usize) < exported.len() && d.m == exported[d.index as usize] as u32,
            || format!("dequeued {d:?} from fds {exported:?}"),
        )?;
        ok("STREAMOFF(capture)", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_DMABUF)?;
        reqbufs_type(u, v, o, OUT, 0, MEMORY_MMAP)?;

        reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        let small = open(
            fds,
            "EXPBUF(capture 0)",
            v.expbuf(u, c, CAP, 0, crate::O_RDWR | crate::O_CLOEXEC),
        )?;
        reqbufs_type(u, v, o, OUT, 2, MEMORY_DMABUF)?;
        errno(
            "QBUF(output, a capture plane)",
            Errno::EINVAL,
            v.qbuf(u, o, &mut dmabuf(0, OUT, small)),
        )?;
        reqbufs_type(u, v, o, OUT, 0, MEMORY_DMABUF)?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// The other way: capture planes created (CREATE_BUFS) large enough for an output frame,
/// exported, and queued on the output node's DMABUF queue with a full frame's `bytesused`:
/// the output consumes them and gives them back with their fds.
pub fn v4l2_capture_export_feeds_the_output_queue<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let o = open(fds, "open(output)", v.open_video(u, VideoNode::Output))?;
        let of = ok("G_FMT(output)", v.g_fmt(u, o, OUT))?;
        let mut cb = CreateBuffers {
            count: 2,
            memory: MEMORY_MMAP,
            type_: CAP,
            sizeimage: of.sizeimage,
            ..Default::default()
        };
        ok(
            "CREATE_BUFS(capture, output-sized)",
            v.create_bufs(u, c, &mut cb),
        )?;
        let n = reqbufs_type(u, v, o, OUT, cb.count, MEMORY_DMABUF)?.min(cb.count);
        let mut exported = Vec::new();
        for i in 0..n {
            let e = open(
                fds,
                &format!("EXPBUF(capture {})", cb.index + i),
                v.expbuf(u, c, CAP, cb.index + i, crate::O_RDWR | crate::O_CLOEXEC),
            )?;
            let mut b = dmabuf(i, OUT, e);
            b.bytesused = of.sizeimage;
            ok(
                &format!("QBUF(output {i}, exported fd)"),
                v.qbuf(u, o, &mut b),
            )?;
            exported.push(e);
        }
        ok("STREAMON(output)", v.streamon(u, o, OUT))?;
        let mut d = buffer(0, MEMORY_DMABUF);
        d.type_ = OUT;
        ok("DQBUF(output)", v.dqbuf(u, o, &mut d))?;
        ensure(
            (d.index as usize) < exported.len() && d.m == exported[d.index as usize] as u32,
            || format!("dequeued {d:?} from fds {exported:?}"),
        )?;
        ok("STREAMOFF(output)", v.streamoff(u, o, OUT))?;
        reqbufs_type(u, v, o, OUT, 0, MEMORY_DMABUF)?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// udmabufs over a sealed memfd import into the capture queue: they stream, and the frame the
/// device wrote is in the memfd's pages.
pub fn v4l2_dmabuf_import_udmabuf_and_stream<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        if !u.has_udmabuf() {
            return skip("no /dev/udmabuf");
        }
        let c = capture(u, v, fds)?;
        let f = ok("G_FMT", v.g_fmt(u, c, CAP))?;
        let size = page_align(u64::from(f.sizeimage));
        let n = reqbufs(u, v, c, 2, MEMORY_DMABUF)?;
        let mut memfds = Vec::new();
        for i in 0..n {
            let m = open(
                fds,
                "memfd_create",
                u.memfd_create("vivid", MFD_ALLOW_SEALING),
            )?;
            ok("ftruncate", u.ftruncate(m, size))?;
            ok("add_seals(SHRINK)", u.add_seals(m, F_SEAL_SHRINK))?;
            let d = open(
                fds,
                "UDMABUF_CREATE",
                u.udmabuf_create(m, 0, size, UDMABUF_FLAGS_CLOEXEC),
            )?;
            ok(
                &format!("QBUF({i}, udmabuf)"),
                v.qbuf(u, c, &mut dmabuf(i, CAP, d)),
            )?;
            memfds.push(m);
        }
        ok("STREAMON", v.streamon(u, c, CAP))?;
        let mut d = buffer(0, MEMORY_DMABUF);
        ok("DQBUF", v.dqbuf(u, c, &mut d))?;
        ensure((d.index as usize) < memfds.len(), || {
            format!("dequeued {d:?}")
        })?;
        let line = ok(
            "pread(memfd)",
            u.pread(memfds[d.index as usize], 0, f.bytesperline as usize),
        )?;
        ensure(line.iter().any(|&b| b != 0), || {
            format!("the first line of the frame in the memfd is all zero ({d:?})")
        })?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_DMABUF).map(drop)
    })
}

/// STREAMOFF while streaming hands every buffer back: none is QUEUED or DONE, DQBUF is
/// `EINVAL`, and every buffer can be queued and streamed again.
pub fn v4l2_streamoff_returns_all_buffers<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let n = reqbufs(u, v, c, 4, MEMORY_MMAP)?;
        for round in 0..2 {
            for i in 0..n {
                ok(
                    &format!("QBUF({i}) round {round}"),
                    v.qbuf(u, c, &mut buffer(i, MEMORY_MMAP)),
                )?;
            }
            ok("STREAMON", v.streamon(u, c, CAP))?;
            let mut d = buffer(0, MEMORY_MMAP);
            ok("DQBUF", v.dqbuf(u, c, &mut d))?;
            ok("STREAMOFF", v.streamoff(u, c, CAP))?;
            for i in 0..n {
                let b = querybuf(u, v, c, i, MEMORY_MMAP)?;
                ensure(b.flags & (BUF_FLAG_QUEUED | BUF_FLAG_DONE) == 0, || {
                    format!("after STREAMOFF (round {round}) {b:?}")
                })?;
            }
            errno(
                "DQBUF after STREAMOFF",
                Errno::EINVAL,
                v.dqbuf(u, c, &mut buffer(0, MEMORY_MMAP)),
            )?;
        }
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// Re-queueing: a dequeued DMABUF buffer queued again with the same fd streams again and comes
/// back with it; the same buffer index queued with another dma-buf comes back with that one.
pub fn v4l2_dmabuf_requeue_same_fd<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let f = ok("G_FMT", v.g_fmt(u, c, CAP))?;
        let size = page_align(u64::from(f.sizeimage));
        let n = reqbufs(u, v, c, 2, MEMORY_DMABUF)?;
        let mut bufs = Vec::new();
        for i in 0..n {
            let fd = system_buffer(u, fds, size)?;
            ok(&format!("QBUF({i})"), v.qbuf(u, c, &mut dmabuf(i, CAP, fd)))?;
            bufs.push(fd);
        }
        let spare = system_buffer(u, fds, size)?;
        ok("STREAMON", v.streamon(u, c, CAP))?;
        for round in 0..3 {
            let mut d = buffer(0, MEMORY_DMABUF);
            ok(&format!("DQBUF round {round}"), v.dqbuf(u, c, &mut d))?;
            let i = d.index as usize;
            ensure(i < bufs.len() && d.m == bufs[i] as u32, || {
                format!("round {round}: dequeued {d:?} from fds {bufs:?}")
            })?;
            if round == 1 {
                bufs[i] = spare;
            }
            ok(
                &format!("QBUF({i}) again, round {round}"),
                v.qbuf(u, c, &mut dmabuf(d.index, CAP, bufs[i])),
            )?;
        }
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_DMABUF).map(drop)
    })
}

/// One dma-buf queued as two buffers at once: both QBUFs succeed and the buffers stream,
/// each coming back with the same fd.
pub fn v4l2_dmabuf_one_buffer_at_two_indices<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let f = ok("G_FMT", v.g_fmt(u, c, CAP))?;
        let fd = system_buffer(u, fds, page_align(u64::from(f.sizeimage)))?;
        reqbufs(u, v, c, 2, MEMORY_DMABUF)?;
        for i in 0..2 {
            ok(
                &format!("QBUF({i}, one fd)"),
                v.qbuf(u, c, &mut dmabuf(i, CAP, fd)),
            )?;
        }
        ok("STREAMON", v.streamon(u, c, CAP))?;
        for round in 0..2 {
            let mut d = buffer(0, MEMORY_DMABUF);
            ok(&format!("DQBUF {round}"), v.dqbuf(u, c, &mut d))?;
            ensure(d.m == fd as u32, || {
                format!("dequeued {d:?}, queued fd {fd}")
            })?;
        }
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_DMABUF).map(drop)
    })
}

/// DMABUF QBUF argument errors: a plane length below the format's size is `EINVAL`, one above
/// the dma-buf's size is `EFAULT` (the memory allocator refuses to attach); the output type,
/// MMAP memory or an index past the count on a capture DMABUF queue is `EINVAL`. The exact
/// length is accepted.
pub fn v4l2_dmabuf_qbuf_wrong_arguments<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let f = ok("G_FMT", v.g_fmt(u, c, CAP))?;
        let size = page_align(u64::from(f.sizeimage));
        let n = reqbufs(u, v, c, 2, MEMORY_DMABUF)?;
        let fd = system_buffer(u, fds, size)?;
        let mut short = dmabuf(0, CAP, fd);
        short.length = f.sizeimage - 1;
        errno(
            "QBUF(length sizeimage - 1)",
            Errno::EINVAL,
            v.qbuf(u, c, &mut short),
        )?;
        let mut long = dmabuf(0, CAP, fd);
        long.length = size as u32 + PAGE as u32;
        errno(
            "QBUF(length past the dma-buf)",
            Errno::EFAULT,
            v.qbuf(u, c, &mut long),
        )?;
        errno(
            "QBUF(type output)",
            Errno::EINVAL,
            v.qbuf(u, c, &mut dmabuf(0, OUT, fd)),
        )?;
        let mut mmap = dmabuf(0, CAP, fd);
        mmap.memory = MEMORY_MMAP;
        errno(
            "QBUF(memory MMAP) on DMABUF",
            Errno::EINVAL,
            v.qbuf(u, c, &mut mmap),
        )?;
        errno(
            "QBUF(index past the count)",
            Errno::EINVAL,
            v.qbuf(u, c, &mut dmabuf(n, CAP, fd)),
        )?;
        let mut exact = dmabuf(0, CAP, fd);
        exact.length = size as u32;
        ok("QBUF(length of the dma-buf)", v.qbuf(u, c, &mut exact))?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_DMABUF).map(drop)
    })
}
