//! Behaviours 19 and 22-31: PREPARE_BUF and QBUF validation.

use crate::*;

fn output() -> Rig {
    Rig::new(BufType::VideoOutputMplane, "isp0", &[4096], |_| {})
}

#[test]
fn b19_qbuf_bad_index_type_or_memory_is_einval() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    assert_eq!(errno(r.qbuf(V4L2_MEMORY_MMAP, 2)), Errno::EINVAL);
    assert_eq!(errno(r.qbuf(V4L2_MEMORY_MMAP, 32 + 2)), Errno::EINVAL);
    assert_eq!(errno(r.qbuf(V4L2_MEMORY_DMABUF, 0)), Errno::EINVAL);
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    b.type_ = V4L2_BUF_TYPE_VIDEO_OUTPUT;
    assert_eq!(errno(r.fh.qbuf(&mut b)), Errno::EINVAL);
    assert_eq!(errno(r.fh.prepare_buf(&mut b)), Errno::EINVAL);
}

#[test]
fn b22_prepare_buf_twice_or_not_dequeued_is_einval() {
    let r = Rig::capture();
    r.drv.auto.store(false, Ordering::Relaxed);
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    r.fh.prepare_buf(&mut b).unwrap();
    assert_ne!(b.flags & V4L2_BUF_FLAG_PREPARED, 0);
    assert_eq!(errno(r.fh.prepare_buf(&mut b)), Errno::EINVAL);
    let mut b1 = r.qbuf(V4L2_MEMORY_MMAP, 1).unwrap();
    assert_eq!(errno(r.fh.prepare_buf(&mut b1)), Errno::EINVAL);
    r.fh.close();
    r.balanced();
}

#[test]
fn b23_prepare_buf_with_request_fd_is_einval() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    b.flags = V4L2_BUF_FLAG_REQUEST_FD;
    b.request_fd = 3;
    assert_eq!(errno(r.fh.prepare_buf(&mut b)), Errno::EINVAL);
}

#[test]
fn b24_qbuf_of_queued_active_or_done_buffer_is_einval() {
    let r = Rig::capture();
    r.drv.auto.store(false, Ordering::Relaxed);
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    r.qbuf(V4L2_MEMORY_MMAP, 0).unwrap();
    assert_eq!(errno(r.qbuf(V4L2_MEMORY_MMAP, 0)), Errno::EINVAL, "QUEUED");
    r.fh.streamon(r.t()).unwrap();
    assert_eq!(r.q.buffer_state(0), Some(Vb2State::Active));
    assert_eq!(errno(r.qbuf(V4L2_MEMORY_MMAP, 0)), Errno::EINVAL, "ACTIVE");
    r.drv.complete_all(&r.q, Vb2State::Done);
    assert_eq!(errno(r.qbuf(V4L2_MEMORY_MMAP, 0)), Errno::EINVAL, "DONE");
    r.fh.close();
    r.balanced();
}

#[test]
fn b25_qbuf_of_prepared_buffer_ignores_new_fields() {
    let r = output();
    r.drv.auto.store(false, Ordering::Relaxed);
    r.reqbufs(V4L2_MEMORY_DMABUF, 1).unwrap();
    let fd = r.heap_fd(4096);
    let mut b = r.dmabuf_buf(0, &[fd]);
    b.planes.as_mut().unwrap()[0].bytesused = 100;
    r.fh.prepare_buf(&mut b).unwrap();
    let mut again = r.dmabuf_buf(0, &[-1]);
    again.planes.as_mut().unwrap()[0].bytesused = 9999;
    r.fh.qbuf(&mut again).unwrap();
    let p = again.planes.unwrap()[0];
    assert_eq!((p.m_fd, p.bytesused, p.length), (fd, 100, 4096));
    assert_eq!(r.q.counters().snapshot().attach, 1);
    r.fh.close();
    r.balanced();
}

#[test]
fn b26_output_bytesused_over_length_or_bad_data_offset_is_einval() {
    let r = output();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    b.planes.as_mut().unwrap()[0].bytesused = 4097;
    assert_eq!(errno(r.fh.qbuf(&mut b)), Errno::EINVAL);
    b.planes.as_mut().unwrap()[0].bytesused = 100;
    b.planes.as_mut().unwrap()[0].data_offset = 100;
    assert_eq!(errno(r.fh.qbuf(&mut b)), Errno::EINVAL);
    b.planes.as_mut().unwrap()[0].data_offset = 99;
    r.fh.qbuf(&mut b).unwrap();
    r.fh.close();
    r.balanced();
}

#[test]
fn b27_output_zero_bytesused_becomes_length_unless_allowed() {
    let r = output();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let b = r.qbuf(V4L2_MEMORY_MMAP, 0).unwrap();
    assert_eq!(b.planes.unwrap()[0].bytesused, 4096);
    let r = Rig::new(BufType::VideoOutputMplane, "isp0", &[4096], |c| {
        c.allow_zero_bytesused = true
    });
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let b = r.qbuf(V4L2_MEMORY_MMAP, 0).unwrap();
    assert_eq!(b.planes.unwrap()[0].bytesused, 0);
}

#[test]
fn b28_output_field_alternate_is_einval() {
    let r = output();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    b.field = V4L2_FIELD_ALTERNATE;
    assert_eq!(errno(r.fh.qbuf(&mut b)), Errno::EINVAL);
}

#[test]
fn b29_qbuf_and_prepare_after_queue_error_is_eio() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    r.q.queue_error();
    assert_eq!(errno(r.qbuf(V4L2_MEMORY_MMAP, 0)), Errno::EIO);
    let mut b = r.buf(V4L2_MEMORY_MMAP, 1);
    assert_eq!(errno(r.fh.prepare_buf(&mut b)), Errno::EIO);
    r.fh.streamoff(r.t()).unwrap();
    r.qbuf(V4L2_MEMORY_MMAP, 0).unwrap();
}

#[test]
fn b30_qbuf_with_request_on_queue_without_requests_is_ebadr() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    b.flags = V4L2_BUF_FLAG_REQUEST_FD;
    assert_eq!(errno(r.fh.qbuf(&mut b)), Errno::EBADR);
}

#[test]
fn b31_qbuf_sets_queued_clears_done_and_mapped() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    let _map =
        r.fh.mmap(mmap_cookie(0, 0), 8192, uapi::ioctl::PROT_READ, true)
            .unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    b.flags = V4L2_BUF_FLAG_DONE;
    r.fh.qbuf(&mut b).unwrap();
    assert_eq!(
        b.flags & (V4L2_BUF_FLAG_QUEUED | V4L2_BUF_FLAG_DONE),
        V4L2_BUF_FLAG_QUEUED
    );
    assert_ne!(
        b.flags & V4L2_BUF_FLAG_MAPPED,
        0,
        "MMAP keeps MAPPED while mmapped"
    );
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_DMABUF, 1).unwrap();
    let fd = r.heap_fd(8192);
    let mut b = r.dmabuf_buf(0, &[fd]);
    b.flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_DONE;
    r.fh.qbuf(&mut b).unwrap();
    assert_eq!(b.flags & (V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_DONE), 0);
    assert_ne!(b.flags & V4L2_BUF_FLAG_QUEUED, 0);
}
