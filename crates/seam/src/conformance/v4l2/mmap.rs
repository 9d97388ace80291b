//! The `v4l2` suite's mmap, USERPTR and poll cases: MMAP planes mapped by their QUERYBUF offset cookie,
//! the frame the device wrote read through the mapping, REQBUFS(0) while a plane is still
//! mapped, the mmap errnos, USERPTR planes in the process's own memory, and poll's answer before, during and after streaming.

use super::super::*;
use super::{buffer, capture, page_align, querybuf, reqbufs, CAP};
use crate::v4l2::*;
use crate::{Mapping, POLLERR, POLLIN, PROT_READ, PROT_WRITE};

/// mmap by offset: each MMAP plane maps at its QUERYBUF `m.offset` for its page-aligned
/// length, the buffer is then MAPPED, and the frame the device wrote is read through the
/// mapping; a private mapping, a capture mapping without `PROT_READ`, a length a page past the
/// plane, or a cookie past the last buffer is `EINVAL`.
pub fn v4l2_mmap_by_offset_reads_the_frame<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let f = ok("G_FMT", v.g_fmt(u, c, CAP))?;
        let n = reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        let mut maps = Vec::new();
        for i in 0..n {
            let b = querybuf(u, v, c, i, MEMORY_MMAP)?;
            let len = page_align(u64::from(b.length));
            if i == 0 {
                for (what, prot, shared, l) in [
                    ("MAP_PRIVATE", PROT_READ, false, len),
                    ("PROT_WRITE only", PROT_WRITE, true, len),
                    ("a page past the plane", PROT_READ, true, len + PAGE),
                ] {
                    errno(
                        &format!("mmap({what})"),
                        Errno::EINVAL,
                        v.mmap_plane(u, c, b.m, l, prot, shared).map(drop),
                    )?;
                }
                let past = b.m + (n << 15);
                errno(
                    "mmap(cookie past the last buffer)",
                    Errno::EINVAL,
                    v.mmap_plane(u, c, past, len, PROT_READ, true).map(drop),
                )?;
            }
            let m = ok(
                &format!("mmap(buffer {i} at {:#x})", b.m),
                v.mmap_plane(u, c, b.m, len, PROT_READ | PROT_WRITE, true),
            )?;
            let q = querybuf(u, v, c, i, MEMORY_MMAP)?;
            ensure(q.flags & BUF_FLAG_MAPPED != 0, || {
                format!("mapped buffer {q:?}")
            })?;
            ok(
                "clear through the mapping",
                m.write(0, &vec![0; f.bytesperline as usize]),
            )?;
            maps.push(m);
            ok(
                &format!("QBUF({i})"),
                v.qbuf(u, c, &mut buffer(i, MEMORY_MMAP)),
            )?;
        }
        ok("STREAMON", v.streamon(u, c, CAP))?;
        let mut d = buffer(0, MEMORY_MMAP);
        ok("DQBUF", v.dqbuf(u, c, &mut d))?;
        ensure((d.index as usize) < maps.len(), || {
            format!("dequeued {d:?}")
        })?;
        let mut line = vec![0u8; f.bytesperline as usize];
        ok(
            "read the mapping",
            maps[d.index as usize].read(0, &mut line),
        )?;
        ensure(line.iter().any(|&b| b != 0), || {
            format!("the first line of the dequeued frame is all zero ({d:?})")
        })?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        drop(maps);
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// REQBUFS(0) while a plane is still mmapped succeeds (the buffer is orphaned: vb2 behaviour
/// 7): the mapping stays readable and writable, the queue is empty (QUERYBUF is `EINVAL`), and
/// new buffers can be requested; an mmap of a DMABUF queue is `EINVAL`.
pub fn v4l2_reqbufs0_with_a_plane_still_mapped<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        let b = querybuf(u, v, c, 1, MEMORY_MMAP)?;
        let len = page_align(u64::from(b.length));
        let m = ok(
            "mmap(buffer 1)",
            v.mmap_plane(u, c, b.m, len, PROT_READ | PROT_WRITE, true),
        )?;
        reqbufs(u, v, c, 0, MEMORY_MMAP)?;
        errno(
            "QUERYBUF(1) after REQBUFS(0)",
            Errno::EINVAL,
            v.querybuf(u, c, &mut buffer(1, MEMORY_MMAP)),
        )?;
        ok("write the orphaned plane", m.write(len - 4, b"vb2!"))?;
        let mut back = [0u8; 4];
        ok("read the orphaned plane", m.read(len - 4, &mut back))?;
        ensure(&back == b"vb2!", || format!("read back {back:?}"))?;
        reqbufs(u, v, c, 2, MEMORY_DMABUF)?;
        errno(
            "mmap of a DMABUF queue",
            Errno::EINVAL,
            v.mmap_plane(u, c, b.m, len, PROT_READ, true).map(drop),
        )?;
        drop(m);
        reqbufs(u, v, c, 0, MEMORY_DMABUF).map(drop)
    })
}

/// poll: `POLLERR` while the capture queue has buffers but is not streaming; `POLLIN` once
/// streaming has a frame done; `POLLERR` again after STREAMOFF.
pub fn v4l2_poll_follows_streaming<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let n = reqbufs(u, v, c, 2, MEMORY_MMAP)?;
        let r = ok("poll not streaming", v.poll_video(u, c, POLLIN, 0))?;
        ensure(r & POLLERR != 0, || {
            format!("poll before STREAMON gave {r:#x}")
        })?;
        for i in 0..n {
            ok(
                &format!("QBUF({i})"),
                v.qbuf(u, c, &mut buffer(i, MEMORY_MMAP)),
            )?;
        }
        ok("STREAMON", v.streamon(u, c, CAP))?;
        let r = ok("poll streaming", v.poll_video(u, c, POLLIN, 5000))?;
        ensure(r & POLLIN != 0 && r & POLLERR == 0, || {
            format!("poll while streaming gave {r:#x}")
        })?;
        ok("DQBUF", v.dqbuf(u, c, &mut buffer(0, MEMORY_MMAP)))?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        let r = ok("poll after STREAMOFF", v.poll_video(u, c, POLLIN, 0))?;
        ensure(r & POLLERR != 0, || {
            format!("poll after STREAMOFF gave {r:#x}")
        })?;
        reqbufs(u, v, c, 0, MEMORY_MMAP).map(drop)
    })
}

/// USERPTR: the process's own memory queued by address streams; the dequeued buffer gives its
/// address back and the frame is in that memory. A length below the format's size is `EINVAL`
/// and a USERPTR queue cannot export (`EINVAL`).
pub fn v4l2_userptr_streams_into_user_memory<U: Uapi, V: V4l2<U>>(
    u: &mut U,
    v: &mut V,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = capture(u, v, fds)?;
        let f = ok("G_FMT", v.g_fmt(u, c, CAP))?;
        let size = page_align(u64::from(f.sizeimage));
        let n = reqbufs(u, v, c, 2, MEMORY_USERPTR)?;
        let mut mems = Vec::new();
        for i in 0..n {
            let (mem, addr) = ok("user memory", v.user_memory(u, size))?;
            let mut b = buffer(i, MEMORY_USERPTR);
            b.userptr = addr;
            if i == 0 {
                b.length = f.sizeimage - 1;
                errno(
                    "QBUF(USERPTR, length sizeimage - 1)",
                    Errno::EINVAL,
                    v.qbuf(u, c, &mut b),
                )?;
            }
            b.length = size as u32;
            ok(&format!("QBUF({i}, USERPTR)"), v.qbuf(u, c, &mut b))?;
            mems.push((mem, addr));
        }
        let r = v.expbuf(u, c, CAP, 0, crate::O_CLOEXEC);
        errno_fd(u, "EXPBUF on a USERPTR queue", Errno::EINVAL, r)?;
        ok("STREAMON", v.streamon(u, c, CAP))?;
        let mut d = buffer(0, MEMORY_USERPTR);
        ok("DQBUF", v.dqbuf(u, c, &mut d))?;
        let i = d.index as usize;
        ensure(i < mems.len() && d.userptr == mems[i].1, || {
            format!(
                "dequeued {d:?}, queued at {:x?}",
                mems.iter().map(|m| m.1).collect::<Vec<_>>()
            )
        })?;
        let mut line = vec![0u8; f.bytesperline as usize];
        ok("read the user memory", mems[i].0.read(0, &mut line))?;
        ensure(line.iter().any(|&b| b != 0), || {
            format!("the first line of the frame in user memory is all zero ({d:?})")
        })?;
        ok("STREAMOFF", v.streamoff(u, c, CAP))?;
        reqbufs(u, v, c, 0, MEMORY_USERPTR)?;
        drop(mems);
        Ok(())
    })
}
