//! v4l2-compliance-style sequences (`v4l2-test-buffers.cpp`): testReqBufs, testExpBuf,
//! testMmap, testDmaBuf, testUserPtr (more of the latter in `userptr`).

use crate::*;
use uapi::ioctl::{O_RDWR, PROT_READ};

#[test]
fn test_reqbufs() {
    let r = Rig::capture();
    for m in [V4L2_MEMORY_MMAP, V4L2_MEMORY_USERPTR, V4L2_MEMORY_DMABUF] {
        let req = r.reqbufs(m, 0).unwrap();
        assert_eq!((req.count, req.type_, req.memory), (0, r.t(), m));
        let req = r.reqbufs(m, 2).unwrap();
        assert_eq!(req.count, 2);
        let mut b = r.buf(m, 0);
        r.fh.querybuf(&mut b).unwrap();
        assert_eq!(
            b.flags & (V4L2_BUF_FLAG_QUEUED | V4L2_BUF_FLAG_DONE),
            0,
            "Unqueued"
        );
        b.index = 2;
        assert_eq!(errno(r.fh.querybuf(&mut b)), Errno::EINVAL);
        let other = r.other_fh();
        let mut req2 = V4l2RequestBuffers {
            count: 1,
            type_: r.t(),
            memory: m,
            ..Default::default()
        };
        assert_eq!(errno(other.reqbufs(&mut req2)), Errno::EBUSY);
        r.reqbufs(m, 0).unwrap();
        other.reqbufs(&mut req2).unwrap();
        req2.count = 0;
        other.reqbufs(&mut req2).unwrap();
    }
    r.balanced();
}

#[test]
fn test_expbuf() {
    let r = Rig::new(BufType::VideoCaptureMplane, "isp0", &[4096, 4096], |_| {});
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    let mut fds = Vec::new();
    for i in 0..2 {
        for p in 0..2 {
            let mut eb = V4l2ExportBuffer {
                type_: r.t(),
                index: i,
                plane: p,
                flags: O_RDWR,
                fd: -1,
            };
            r.fh.expbuf(&mut eb).unwrap();
            fds.push(eb.fd);
        }
    }
    for fd in fds {
        r.process.close(fd).unwrap();
    }
    r.reqbufs(V4L2_MEMORY_MMAP, 0).unwrap();
    r.balanced();
    r.checker_clean();
}

#[test]
fn test_mmap() {
    let r = Rig::capture();
    assert_eq!(errno(r.fh.streamon(r.t())), Errno::EINVAL);
    r.reqbufs(V4L2_MEMORY_MMAP, 3).unwrap();
    assert_eq!(
        errno(r.fh.mmap(mmap_cookie(5, 0), 8192, PROT_READ, true)),
        Errno::EINVAL
    );
    assert_eq!(errno(r.dqbuf(V4L2_MEMORY_MMAP)), Errno::EINVAL);
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    r.fh.prepare_buf(&mut b).unwrap();
    assert_ne!(b.flags & V4L2_BUF_FLAG_PREPARED, 0);
    assert_eq!(errno(r.fh.prepare_buf(&mut b)), Errno::EINVAL);
    r.fh.qbuf(&mut b).unwrap();
    assert_eq!(errno(r.fh.qbuf(&mut b)), Errno::EINVAL);
    assert_eq!(errno(r.qbuf(V4L2_MEMORY_MMAP, 3 + 32)), Errno::EINVAL);
    let maps: Vec<Vb2Mapping> = (0..3)
        .map(|i| r.fh.mmap(mmap_cookie(i, 0), 8192, PROT_READ, true).unwrap())
        .collect();
    for i in 1..3 {
        r.qbuf(V4L2_MEMORY_MMAP, i).unwrap();
    }
    r.fh.streamoff(r.t()).unwrap();
    for i in 0..3 {
        r.qbuf(V4L2_MEMORY_MMAP, i).unwrap();
    }
    r.fh.streamon(r.t()).unwrap();
    for frame in 0..6u32 {
        let b = r.dqbuf(V4L2_MEMORY_MMAP).unwrap();
        assert_eq!(b.sequence, frame);
        let mut got = vec![0u8; 8192];
        maps[b.index as usize].read(0, &mut got).unwrap();
        assert_eq!(got, pattern(frame, 0, 8192));
        r.qbuf(V4L2_MEMORY_MMAP, b.index).unwrap();
    }
    r.fh.streamoff(r.t()).unwrap();
    r.reqbufs(V4L2_MEMORY_MMAP, 0).unwrap(); // orphaned: still mmapped
    let mut got = [0u8; 8];
    maps[0].read(0, &mut got).unwrap();
    drop(maps);
    r.balanced();
    r.checker_clean();
}

#[test]
fn test_dmabuf() {
    let kernel = Kernel::boot(soc_desc()).unwrap();
    let exp = Rig::on(&kernel, BufType::VideoCapture, "gpu0", &[8192], |_| {});
    let r = Rig::on(&kernel, BufType::VideoCapture, "isp0", &[8192], |_| {});
    exp.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    r.reqbufs(V4L2_MEMORY_DMABUF, 2).unwrap();
    let small = Rig::on(&kernel, BufType::VideoCapture, "gpu0", &[4096], |_| {});
    small.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let export = |rig: &Rig, i: u32| {
        let mut eb = V4l2ExportBuffer {
            type_: rig.t(),
            index: i,
            flags: O_RDWR,
            ..Default::default()
        };
        rig.fh.expbuf(&mut eb).unwrap();
        rig.process.send_fd(eb.fd, &r.process).unwrap()
    };
    let small_fd = export(&small, 0);
    assert_eq!(
        errno(r.fh.qbuf(&mut r.dmabuf_buf(0, &[small_fd]))),
        Errno::EINVAL,
        "too small"
    );
    assert_eq!(errno(r.fh.mmap(0, 8192, PROT_READ, true)), Errno::EINVAL);
    let fds = [export(&exp, 0), export(&exp, 1)];
    let bad = 0xdead_beefu32 as i32 + fds[0];
    assert_eq!(
        errno(r.fh.prepare_buf(&mut r.dmabuf_buf(0, &[bad]))),
        Errno::EINVAL
    );
    let mut b = r.dmabuf_buf(0, &[fds[0]]);
    b.flags = V4L2_BUF_FLAG_NO_CACHE_CLEAN;
    r.fh.prepare_buf(&mut b).unwrap();
    assert_eq!(b.flags & vb2::cache::CACHE_HINT_FLAGS, 0);
    let mut again = r.dmabuf_buf(0, &[-1]);
    r.fh.qbuf(&mut again).unwrap();
    r.fh.qbuf(&mut r.dmabuf_buf(1, &[fds[1]])).unwrap();
    r.fh.streamon(r.t()).unwrap();
    for _ in 0..4 {
        let b = r.dqbuf(V4L2_MEMORY_DMABUF).unwrap();
        r.fh.qbuf(&mut r.dmabuf_buf(b.index, &[fds[b.index as usize]]))
            .unwrap();
    }
    r.fh.streamoff(r.t()).unwrap();
    // REQBUFS(0) on the exporter while the importer still holds the fds: orphaned.
    exp.reqbufs(V4L2_MEMORY_MMAP, 0).unwrap();
    r.reqbufs(V4L2_MEMORY_DMABUF, 0).unwrap();
    for fd in fds {
        r.process.close(fd).unwrap();
    }
    r.balanced();
    exp.balanced();
    let c = kernel.dma().checker();
    assert_eq!(c.total(), 0, "{:#?}", c.findings());
}
