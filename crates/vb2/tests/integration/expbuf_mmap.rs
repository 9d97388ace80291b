//! Behaviours 47-55: EXPBUF, mmap and vb2 as an exporter.

use crate::*;
use uapi::ioctl::{O_CLOEXEC, O_NONBLOCK, O_RDWR, PROT_READ, PROT_WRITE};

fn exp(r: &Rig, index: u32, plane: u32, flags: u32) -> Result<i32, Vb2Error> {
    let mut eb = V4l2ExportBuffer {
        type_: r.t(),
        index,
        plane,
        flags,
        fd: -1,
    };
    r.fh.expbuf(&mut eb).map(|()| eb.fd)
}

#[test]
fn b47_expbuf_on_non_mmap_queue_is_einval() {
    let r = Rig::capture();
    assert_eq!(errno(exp(&r, 0, 0, 0)), Errno::EINVAL, "no buffers");
    r.reqbufs(V4L2_MEMORY_DMABUF, 1).unwrap();
    assert_eq!(errno(exp(&r, 0, 0, 0)), Errno::EINVAL);
    r.reqbufs(V4L2_MEMORY_USERPTR, 1).unwrap();
    assert_eq!(errno(exp(&r, 0, 0, 0)), Errno::EINVAL);
}

#[test]
fn b49_expbuf_bad_flags_type_index_or_plane_is_einval() {
    let r = Rig::new(BufType::VideoCaptureMplane, "isp0", &[4096, 4096], |_| {});
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    assert_eq!(errno(exp(&r, 0, 0, O_NONBLOCK)), Errno::EINVAL);
    assert_eq!(errno(exp(&r, 2, 0, 0)), Errno::EINVAL);
    assert_eq!(errno(exp(&r, 0, 2, 0)), Errno::EINVAL);
    let mut eb = V4l2ExportBuffer {
        type_: V4L2_BUF_TYPE_VIDEO_CAPTURE,
        ..Default::default()
    };
    assert_eq!(errno(r.fh.expbuf(&mut eb)), Errno::EINVAL);
    let fd = exp(&r, 1, 1, O_CLOEXEC | O_RDWR).unwrap();
    assert!(r.process.cloexec(fd).unwrap());
}

#[test]
fn b50_expbuf_exports_a_new_dmabuf_each_call() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let a = exp(&r, 0, 0, O_RDWR).unwrap();
    let b = exp(&r, 0, 0, O_RDWR).unwrap();
    assert_ne!(a, b);
    let (ba, bb) = (
        r.process.get_dma_buf(a).unwrap(),
        r.process.get_dma_buf(b).unwrap(),
    );
    assert!(!ba.ptr_eq(&bb));
    assert_eq!((ba.size(), ba.exp_name()), (8192, "vb2"));
}

#[test]
fn b51_exported_fd_sets_mapped_and_survives_reqbufs_zero() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let fd = exp(&r, 0, 0, O_RDWR).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    r.fh.querybuf(&mut b).unwrap();
    assert_ne!(b.flags & V4L2_BUF_FLAG_MAPPED, 0);
    // Data written by the device before REQBUFS(0) is still there afterwards.
    r.fh.streamon(r.t()).unwrap();
    r.qbuf(V4L2_MEMORY_MMAP, 0).unwrap();
    r.dqbuf(V4L2_MEMORY_MMAP).unwrap();
    r.fh.streamoff(r.t()).unwrap();
    r.reqbufs(V4L2_MEMORY_MMAP, 0).unwrap();
    let buf = r.process.get_dma_buf(fd).unwrap();
    let m = buf.mmap(0, 8192, false).unwrap();
    let mut got = vec![0u8; 8192];
    buf.begin_cpu_access(dma::DmaDirection::FromDevice).unwrap();
    m.read(0, &mut got).unwrap();
    buf.end_cpu_access(dma::DmaDirection::FromDevice).unwrap();
    assert_eq!(got, pattern(0, 0, 8192));
    drop((m, buf));
    r.process.close(fd).unwrap();
    r.balanced();
    r.checker_clean();
}

#[test]
fn b52_exporter_maps_once_per_attachment_and_unmaps_at_detach() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let fd = exp(&r, 0, 0, O_RDWR).unwrap();
    let buf = r.process.get_dma_buf(fd).unwrap();
    let gpu = r.dma.device("gpu0").unwrap();
    let att = buf.attach(&gpu).unwrap();
    for _ in 0..3 {
        let sgt = att.map_unlocked(dma::DmaDirection::ToDevice).unwrap();
        att.unmap_unlocked(sgt).unwrap();
    }
    let ops = buf.exporter_ops::<Vb2Exporter>().unwrap();
    assert_eq!((ops.map_cache().misses(), ops.map_cache().hits()), (1, 2));
    assert_eq!(r.dma.checker().live_mappings(Some("gpu0")).len(), 1);
    buf.detach(att).unwrap();
    assert_eq!(r.dma.checker().live_mappings(Some("gpu0")).len(), 0);
    r.checker_clean();
}

#[test]
fn b53_mmap_needs_shared_and_the_right_protection() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let c = mmap_cookie(0, 0);
    assert_eq!(errno(r.fh.mmap(c, 8192, PROT_READ, false)), Errno::EINVAL);
    assert_eq!(errno(r.fh.mmap(c, 8192, PROT_WRITE, true)), Errno::EINVAL);
    r.fh.mmap(c, 8192, PROT_READ, true).unwrap();
    let o = Rig::new(BufType::VideoOutput, "isp0", &[4096], |_| {});
    o.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    assert_eq!(errno(o.fh.mmap(c, 4096, PROT_READ, true)), Errno::EINVAL);
    let m = o.fh.mmap(c, 4096, PROT_WRITE | PROT_READ, true).unwrap();
    m.write(0, b"out").unwrap();
}

#[test]
fn b54_mmap_of_other_memory_bad_cookie_or_too_long_is_einval() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_DMABUF, 1).unwrap();
    assert_eq!(errno(r.fh.mmap(0, 4096, PROT_READ, true)), Errno::EINVAL);
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    assert_eq!(
        errno(r.fh.mmap(mmap_cookie(2, 0), 4096, PROT_READ, true)),
        Errno::EINVAL
    );
    assert_eq!(
        errno(r.fh.mmap(mmap_cookie(0, 1), 4096, PROT_READ, true)),
        Errno::EINVAL
    );
    assert_eq!(errno(r.fh.mmap(100, 4096, PROT_READ, true)), Errno::EINVAL);
    assert_eq!(
        errno(r.fh.mmap(0, 8192 + 4096, PROT_READ, true)),
        Errno::EINVAL
    );
}

#[test]
fn b55_mmap_cookie_addresses_index_and_plane() {
    let r = Rig::new(BufType::VideoCaptureMplane, "isp0", &[4096, 8192], |_| {});
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 1);
    r.fh.querybuf(&mut b).unwrap();
    let p = b.planes.unwrap();
    assert_eq!(p[0].m_offset, (1 << 15));
    assert_eq!(p[1].m_offset, (1 << 15) | (1 << 12));
    let m = r.fh.mmap(p[1].m_offset, 8192, PROT_READ, true).unwrap();
    assert_eq!(m.len(), 8192);
}
