//! The `v4l2` suite: vb2's buffer rules through the [`V4l2`] seam, modelled on
//! v4l2-compliance's buffer tests and the reference's vb2 behaviours — memory types, QUERYBUF,
//! EXPBUF and orphaned buffers, importing dma-heap buffers, streaming on and off, and the
//! errnos of wrong types, indices, fds and lengths — for vivid on Linux 6.12 and the
//! simulator's vivid-like device alike. Every case works on the capture node.

use super::*;
use crate::v4l2::*;
use crate::SEEK_END;

mod create;
mod import;
mod mmap;
mod owner;
pub use create::*;
pub use import::*;
pub use mmap::*;
pub use owner::*;

/// The signature of a V4L2 case.
pub type V4l2CaseFn<U, V> = fn(&mut U, &mut V) -> Result<Outcome, Failure>;

/// One case of the suite.
pub struct V4l2Case<U, V> {
    /// The case's function name.
    pub name: &'static str,
    /// The vb2 behaviours it covers.
    pub covers: &'static str,
    /// The case itself.
    pub run: V4l2CaseFn<U, V>,
}

const CAP: u32 = BUF_TYPE_VIDEO_CAPTURE;

fn capture<U: Uapi, V: V4l2<U>>(u: &mut U, v: &mut V, fds: &mut Vec<Fd>) -> Step<Fd> {
    match v.open_video(u, VideoNode::Capture) {
        Ok(fd) => {
            fds.push(fd);
            Ok(fd)
        }
        Err(e) => skip(format!("no video capture device ({e:?})")),
    }
}

fn reqbufs<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
    fd: Fd,
    count: u32,
    memory: u32,
) -> Step<u32> {
    let mut r = RequestBuffers {
        count,
        type_: CAP,
        memory,
        ..Default::default()
    };
    ok(
        &format!("REQBUFS({count}, memory {memory})"),
        v.reqbufs(u, fd, &mut r),
    )?;
    Ok(r.count)
}

fn buffer(index: u32, memory: u32) -> Buffer {
    Buffer {
        index,
        type_: CAP,
        memory,
        ..Default::default()
    }
}

fn querybuf<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
    fd: Fd,
    index: u32,
    memory: u32,
) -> Step<Buffer> {
    let mut b = buffer(index, memory);
    ok(&format!("QUERYBUF({index})"), v.querybuf(u, fd, &mut b))?;
    Ok(b)
}

fn page_align(n: u64) -> u64 {
    n.div_ceil(PAGE) * PAGE
}

/// QUERYCAP: the capture node is vivid's, with video capture and streaming; the output node
/// does video output.
pub fn v4l2_querycap_nodes<U: Uapi, V: V4l2<U>>(u: &mut U, v: &mut V) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let cap = ok("QUERYCAP(capture)", v.querycap(u, c))?;
        ensure(
            cap.driver == "vivid"
                && cap.device_caps & (CAP_VIDEO_CAPTURE | CAP_STREAMING)
                    == CAP_VIDEO_CAPTURE | CAP_STREAMING
                && cap.device_caps & CAP_VIDEO_OUTPUT == 0,
            || format!("capture node {cap:?}"),
        )?;
        let o = open(fds, "open(output)", v.open_video(u, VideoNode::Output))?;
        let out = ok("QUERYCAP(output)", v.querycap(u, o))?;
        ensure(
            out.device_caps & (CAP_VIDEO_OUTPUT | CAP_STREAMING)
                == CAP_VIDEO_OUTPUT | CAP_STREAMING,
            || format!("output node {out:?}"),
        )
    })
}

/// G_FMT: one plane of `bytesperline * height` bytes; another buffer type is `EINVAL`.
pub fn v4l2_g_fmt_sizeimage<U: Uapi, V: V4l2<U>>(u: &mut U, v: &mut V) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let f = ok("G_FMT(capture)", v.g_fmt(u, c, CAP))?;
        ensure(
            f.sizeimage > 0 && f.sizeimage == f.bytesperline * f.height && f.width > 0,
            || format!("format {f:?}"),
        )?;
        errno(
            "G_FMT(output) on capture",
            Errno::EINVAL,
            v.g_fmt(u, c, BUF_TYPE_VIDEO_OUTPUT).map(drop),
        )
    })
}

/// 1-2, 7: REQBUFS accepts MMAP, USERPTR and DMABUF and reports the memory types and
/// orphaned-buffer support in `capabilities`; OVERLAY, 0 and a wrong type are `EINVAL`.
pub fn v4l2_reqbufs_memory_types<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        for memory in [MEMORY_MMAP, MEMORY_USERPTR, MEMORY_DMABUF] {
            let mut r = RequestBuffers {
                count: 2,
                type_: CAP,
                memory,
                ..Default::default()
            };
            ok(&format!("REQBUFS(2, {memory})"), v.reqbufs(u, c, &mut r))?;
            let want = BUF_CAP_SUPPORTS_MEMORY | BUF_CAP_SUPPORTS_ORPHANED_BUFS;
            ensure(r.count >= 2 && r.capabilities & want == want, || {
                format!("REQBUFS(2, {memory}) gave {r:?}")
            })?;
            reqbufs(u, v, c, 0, memory)?;
        }
        for memory in [MEMORY_OVERLAY, 0, 99] {
            let mut r = RequestBuffers {
                count: 2,
                type_: CAP,
                memory,
                ..Default::default()
            };
            errno(
                &format!("REQBUFS(memory {memory})"),
                Errno::EINVAL,
                v.reqbufs(u, c, &mut r),
            )?;
        }
        let mut r = RequestBuffers {
            count: 2,
            type_: BUF_TYPE_VIDEO_OUTPUT,
            memory: MEMORY_MMAP,
            ..Default::default()
        };
        errno(
            "REQBUFS(type output) on capture",
            Errno::EINVAL,
            v.reqbufs(u, c, &mut r),
        )
    })
}

/// 16-17: a fresh MMAP buffer has a plane at least `sizeimage` long and none of QUEUED, DONE;
/// an index past the count or a wrong type is `EINVAL`.
pub fn v4l2_querybuf_fresh_and_out_of_range<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let f = ok("G_FMT", v.g_fmt(u, c, CAP))?;
        let n = reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        let b = querybuf(u, v, c, 0, MEMORY_MMAP)?;
        ensure(
            b.length >= f.sizeimage
                && b.flags & (BUF_FLAG_QUEUED | BUF_FLAG_DONE) == 0
                && b.memory == MEMORY_MMAP,
            || format!("fresh buffer {b:?} for {f:?}"),
        )?;
        let mut past = buffer(n, MEMORY_MMAP);
        errno(
            "QUERYBUF(count)",
            Errno::EINVAL,
            v.querybuf(u, c, &mut past),
        )?;
        let mut wrong = buffer(0, MEMORY_MMAP);
        wrong.type_ = BUF_TYPE_VIDEO_OUTPUT;
        errno(
            "QUERYBUF(type output)",
            Errno::EINVAL,
            v.querybuf(u, c, &mut wrong),
        )?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// 47, 49-51: EXPBUF of an MMAP plane gives a dma-buf of the page-aligned plane size and marks
/// the buffer MAPPED; bad flags or index are `EINVAL`; a queue whose memory is not MMAP cannot
/// export.
pub fn v4l2_expbuf_exports_the_mmap_plane<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        let len = querybuf(u, v, c, 0, MEMORY_MMAP)?.length;
        let buf = open(
            fds,
            "EXPBUF(0)",
            v.expbuf(u, c, CAP, 0, crate::O_CLOEXEC | crate::O_RDWR),
        )?;
        let size = ok("lseek(SEEK_END)", u.lseek(buf, 0, SEEK_END))?;
        ensure(size == page_align(u64::from(len)), || {
            format!("exported {size} bytes for a plane of {len}")
        })?;
        let b = querybuf(u, v, c, 0, MEMORY_MMAP)?;
        ensure(b.flags & BUF_FLAG_MAPPED != 0, || {
            format!("exported buffer {b:?} not MAPPED")
        })?;
        let r = v.expbuf(u, c, CAP, 7, crate::O_CLOEXEC);
        errno_fd(u, "EXPBUF(index 7)", Errno::EINVAL, r)?;
        let r = v.expbuf(u, c, CAP, 0, 0x1234);
        errno_fd(u, "EXPBUF(flags 0x1234)", Errno::EINVAL, r)?;
        close_now(u, fds, buf)?;
        reqbufs(u, v, c, 0, MEMORY_MMAP)?;
        reqbufs(u, v, c, 1, MEMORY_DMABUF)?;
        let r = v.expbuf(u, c, CAP, 0, crate::O_CLOEXEC);
        errno_fd(u, "EXPBUF on a DMABUF queue", Errno::EINVAL, r)?;
        reqbufs(u, v, c, 0, MEMORY_DMABUF).map(drop)
    })
}

/// 7, 51: REQBUFS(0) with an exported fd alive succeeds (the buffer is orphaned); the fd keeps
/// its buffer.
pub fn v4l2_reqbufs0_orphans_an_exported_buffer<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        let buf = open(fds, "EXPBUF(1)", v.expbuf(u, c, CAP, 1, crate::O_CLOEXEC))?;
        let size = ok("lseek", u.lseek(buf, 0, SEEK_END))?;
        reqbufs(u, v, c, 0, MEMORY_MMAP)?;
        let after = ok("lseek after REQBUFS(0)", u.lseek(buf, 0, SEEK_END))?;
        ensure(after == size, || format!("size {size} then {after}"))
    })
}

/// 32-34: DMABUF QBUF of an fd that is not a dma-buf (a memfd, a closed fd) or of a dma-buf
/// smaller than the plane is `EINVAL`.
pub fn v4l2_dmabuf_qbuf_bad_fds_einval<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        reqbufs(u, v, c, 1, MEMORY_DMABUF)?;
        let small = system_buffer(u, fds, PAGE)?;
        let m = open(fds, "memfd_create", u.memfd_create("v4l2", 0))?;
        let closed = closed_fd(u)?;
        for (what, fd) in [("one page", small), ("a memfd", m), ("a closed fd", closed)] {
            let mut b = buffer(0, MEMORY_DMABUF);
            b.m = fd as u32;
            errno(
                &format!("QBUF(DMABUF {what})"),
                Errno::EINVAL,
                v.qbuf(u, c, &mut b),
            )?;
        }
        reqbufs(u, v, c, 0, MEMORY_DMABUF).map(drop)
    })
}

/// 33, 41, 43: dma-heap buffers imported into the capture queue stream: QBUF, STREAMON, DQBUF
/// gives a buffer back with the fd it was queued with; STREAMOFF returns the rest.
pub fn v4l2_dmabuf_import_heap_buffers_and_stream<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let f = ok("G_FMT", v.g_fmt(u, c, CAP))?;
        let n = reqbufs(u, v, c, 2, MEMORY_DMABUF)?;
        let mut bufs = Vec::new();
        for i in 0..n {
            let fd = system_buffer(u, fds, page_align(u64::from(f.sizeimage)))?;
            let mut b = buffer(i, MEMORY_DMABUF);
            b.m = fd as u32;
            ok(&format!("QBUF({i})"), v.qbuf(u, c, &mut b))?;
            bufs.push(fd);
        }
        let q = querybuf(u, v, c, 0, MEMORY_DMABUF)?;
        ensure(q.flags & BUF_FLAG_QUEUED != 0, || {
            format!("queued buffer {q:?}")
        })?;
        ok("STREAMON", v.streamon(u, c, CAP))?;
        let mut d = buffer(0, MEMORY_DMABUF);
        ok("DQBUF", v.dqbuf(u, c, &mut d))?;
        ensure(
            (d.index as usize) < bufs.len()
                && d.m == bufs[d.index as usize] as u32
                && d.flags & BUF_FLAG_DONE == 0,
            || format!("dequeued {d:?} from fds {bufs:?}"),
        )?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        for i in 0..n {
            let b = querybuf(u, v, c, i, MEMORY_DMABUF)?;
            ensure(b.flags & BUF_FLAG_QUEUED == 0, || {
                format!("after STREAMOFF {b:?}")
            })?;
        }
        reqbufs(u, v, c, 0, MEMORY_DMABUF).map(drop)
    })
}

/// 57, 56: STREAMON with no buffers, or with another type, is `EINVAL`.
pub fn v4l2_streamon_without_buffers_einval<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        errno(
            "STREAMON without buffers",
            Errno::EINVAL,
            v.streamon(u, c, CAP),
        )?;
        reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        errno(
            "STREAMON(output)",
            Errno::EINVAL,
            v.streamon(u, c, BUF_TYPE_VIDEO_OUTPUT),
        )?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// 24, 62, 66: QBUF of a queued buffer is `EINVAL`; DQBUF while not streaming is `EINVAL`;
/// STREAMOFF while not streaming returns the queued buffer.
pub fn v4l2_qbuf_twice_and_streamoff_not_streaming<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        ok("QBUF(0)", v.qbuf(u, c, &mut buffer(0, MEMORY_MMAP)))?;
        errno(
            "QBUF(0) again",
            Errno::EINVAL,
            v.qbuf(u, c, &mut buffer(0, MEMORY_MMAP)),
        )?;
        errno(
            "DQBUF not streaming",
            Errno::EINVAL,
            v.dqbuf(u, c, &mut buffer(0, MEMORY_MMAP)),
        )?;
        let q = querybuf(u, v, c, 0, MEMORY_MMAP)?;
        ensure(q.flags & BUF_FLAG_QUEUED != 0, || format!("queued {q:?}"))?;
        ok("STREAMOFF not streaming", v.streamoff(u, c, CAP))?;
        let q = querybuf(u, v, c, 0, MEMORY_MMAP)?;
        ensure(q.flags & BUF_FLAG_QUEUED == 0, || {
            format!("after STREAMOFF {q:?}")
        })?;
        ok(
            "QBUF(0) after STREAMOFF",
            v.qbuf(u, c, &mut buffer(0, MEMORY_MMAP)),
        )?;
        errno(
            "QBUF(index 9)",
            Errno::EINVAL,
            v.qbuf(u, c, &mut buffer(9, MEMORY_MMAP)),
        )?;
        errno(
            "QBUF(memory DMABUF) on MMAP",
            Errno::EINVAL,
            v.qbuf(u, c, &mut buffer(1, MEMORY_DMABUF)),
        )?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// An EXPBUF dma-buf is a dma-buf like any other: debugfs `bufinfo` lists it (by its inode
/// number) with the exported size and one reference, the fd's.
pub fn v4l2_expbuf_is_listed_in_bufinfo<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        let buf = open(fds, "EXPBUF(0)", v.expbuf(u, c, CAP, 0, crate::O_CLOEXEC))?;
        let st = ok("fstat", u.fstat(buf))?;
        let text = match u.bufinfo() {
            Ok(t) => t,
            Err(e) => return skip(format!("no debugfs bufinfo ({e:?})")),
        };
        let col = format!("{:08}", st.ino);
        let line = text
            .lines()
            .find(|l| l.split('\t').nth(5) == Some(col.as_str()))
            .unwrap_or("");
        let fields: Vec<&str> = line.split('\t').collect();
        ensure(
            fields.len() == 7 && fields[0] == format!("{:08}", st.size) && fields[3] == "00000001",
            || format!("bufinfo line {line:?} for the export ({st:?})"),
        )?;
        close_now(u, fds, buf)?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// Every case of the suite, in a stable order.
pub fn cases<U: Uapi, V: V4l2<U>>() -> Vec<V4l2Case<U, V>> {
    macro_rules! list {
        ($($name:ident => $covers:expr,)*) => {
            vec![$(V4l2Case { name: stringify!($name), covers: $covers, run: $name::<U, V> },)*]
        };
    }
    list! {
        v4l2_querycap_nodes => "QUERYCAP",
        v4l2_g_fmt_sizeimage => "G_FMT",
        v4l2_reqbufs_memory_types => "vb2 1-2, 7",
        v4l2_querybuf_fresh_and_out_of_range => "vb2 16-17",
        v4l2_expbuf_exports_the_mmap_plane => "vb2 47, 49-51",
        v4l2_reqbufs0_orphans_an_exported_buffer => "vb2 7, 51",
        v4l2_expbuf_is_listed_in_bufinfo => "vb2 50, dma_buf_debug_show",
        v4l2_dmabuf_qbuf_bad_fds_einval => "vb2 32-34",
        v4l2_dmabuf_import_heap_buffers_and_stream => "vb2 33, 41, 43",
        v4l2_streamon_without_buffers_einval => "vb2 56-57",
        v4l2_qbuf_twice_and_streamoff_not_streaming => "vb2 19, 24, 62, 66",
        v4l2_expbuf_imported_into_another_queue => "vb2 32-34, 50",
        v4l2_capture_export_feeds_the_output_queue => "vb2 15, 27, 33, 50",
        v4l2_dmabuf_import_udmabuf_and_stream => "vb2 33, 41",
        v4l2_streamoff_returns_all_buffers => "vb2 62, 64-66",
        v4l2_dmabuf_requeue_same_fd => "vb2 37, 39, 41",
        v4l2_dmabuf_one_buffer_at_two_indices => "vb2 33, 41",
        v4l2_dmabuf_qbuf_wrong_arguments => "vb2 19, 34-35",
        v4l2_create_bufs_sizes_and_errnos => "vb2 11-12, 14-15",
        v4l2_prepare_buf_then_qbuf => "vb2 17, 19, 22",
        v4l2_remove_bufs_from_the_middle => "vb2 15-16, 18",
        v4l2_mmap_by_offset_reads_the_frame => "vb2 17, 53-55",
        v4l2_reqbufs0_with_a_plane_still_mapped => "vb2 7, 54",
        v4l2_poll_follows_streaming => "vb2 poll, 62",
        v4l2_userptr_streams_into_user_memory => "vb2 19, 47, USERPTR",
        v4l2_second_open_is_not_the_owner => "vb2 3, 6, 16, 21",
        v4l2_nonblocking_dqbuf_with_nothing_queued => "vb2 60, 67",
        v4l2_one_queued_buffer_starts_the_capture => "vb2 58, 60",
    }
}
