//! Behaviours 1-18 and 21: REQBUFS, CREATE_BUFS, QUERYBUF, REMOVE_BUFS and ownership.

use crate::*;

fn create(r: &Rig, memory: u32, count: u32, sizes: &[u32]) -> Result<V4l2CreateBuffers, Vb2Error> {
    let mut cb = V4l2CreateBuffers {
        count,
        memory,
        format: V4l2Format {
            type_: r.t(),
            num_planes: sizes.len() as u32,
            sizes: sizes.to_vec(),
        },
        ..Default::default()
    };
    r.fh.create_bufs(&mut cb).map(|()| cb)
}

#[test]
fn b01_reqbufs_bad_memory_or_type_is_einval() {
    let r = Rig::capture();
    assert_eq!(errno(r.reqbufs(V4L2_MEMORY_OVERLAY, 2)), Errno::EINVAL);
    assert_eq!(errno(r.reqbufs(99, 2)), Errno::EINVAL);
    let mut req = V4l2RequestBuffers {
        count: 2,
        type_: V4L2_BUF_TYPE_VIDEO_OUTPUT,
        memory: V4L2_MEMORY_MMAP,
        ..Default::default()
    };
    assert_eq!(errno(r.fh.reqbufs(&mut req)), Errno::EINVAL);
}

#[test]
fn b02_reqbufs_unsupported_memory_is_einval() {
    let r = Rig::new(BufType::VideoCapture, "isp0", &[4096], |c| {
        c.io_modes = vec![Memory::Mmap]
    });
    assert_eq!(errno(r.reqbufs(V4L2_MEMORY_DMABUF, 2)), Errno::EINVAL);
    assert_eq!(errno(r.reqbufs(V4L2_MEMORY_USERPTR, 2)), Errno::EINVAL);
    let req = r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    assert_eq!(req.capabilities & V4L2_BUF_CAP_SUPPORTS_DMABUF, 0);
    assert_ne!(req.capabilities & V4L2_BUF_CAP_SUPPORTS_ORPHANED_BUFS, 0);
}

#[test]
fn b03_reqbufs_while_streaming_is_ebusy() {
    let r = Rig::capture();
    r.drv.auto.store(false, Ordering::Relaxed);
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    r.fh.streamon(r.t()).unwrap();
    assert_eq!(errno(r.reqbufs(V4L2_MEMORY_MMAP, 2)), Errno::EBUSY);
    assert_eq!(errno(r.reqbufs(V4L2_MEMORY_MMAP, 0)), Errno::EBUSY);
    r.fh.streamoff(r.t()).unwrap();
    r.reqbufs(V4L2_MEMORY_MMAP, 0).unwrap();
    r.balanced();
}

#[test]
fn b04_reqbufs_again_frees_old_buffers() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_DMABUF, 2).unwrap();
    let fd = r.heap_fd(8192);
    let mut b = r.dmabuf_buf(0, &[fd]);
    r.fh.qbuf(&mut b).unwrap();
    let before = r.q.counters().snapshot();
    assert_eq!((before.attach, before.map, before.detach), (1, 1, 0));
    r.reqbufs(V4L2_MEMORY_DMABUF, 3).unwrap();
    let after = r.q.counters().snapshot();
    assert_eq!((after.detach, after.unmap), (1, 1));
    assert_eq!(r.q.num_buffers(), 3);
    assert_eq!(r.q.buffer_state(0), Some(Vb2State::Dequeued));
    r.reqbufs(V4L2_MEMORY_DMABUF, 0).unwrap();
    r.balanced();
    r.checker_clean();
}

#[test]
fn b05_reqbufs_other_memory_switches_implicitly() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    r.reqbufs(V4L2_MEMORY_DMABUF, 2).unwrap();
    assert_eq!(r.q.memory(), Some(Memory::Dmabuf));
    r.reqbufs(V4L2_MEMORY_USERPTR, 1).unwrap();
    assert_eq!(r.q.memory(), Some(Memory::Userptr));
    r.reqbufs(V4L2_MEMORY_USERPTR, 0).unwrap();
    r.balanced();
}

#[test]
fn b06_reqbufs_zero_frees_and_releases_ownership() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    let other = r.other_fh();
    let mut req = V4l2RequestBuffers {
        count: 1,
        type_: r.t(),
        memory: V4L2_MEMORY_MMAP,
        ..Default::default()
    };
    assert_eq!(errno(other.reqbufs(&mut req)), Errno::EBUSY);
    assert_eq!(r.reqbufs(V4L2_MEMORY_MMAP, 0).unwrap().count, 0);
    assert_eq!((r.q.num_buffers(), r.q.memory()), (0, None));
    other.reqbufs(&mut req).unwrap();
    assert_eq!(errno(r.reqbufs(V4L2_MEMORY_MMAP, 1)), Errno::EBUSY);
    other.close();
    assert_eq!(r.q.num_buffers(), 0, "the owner's close frees");
    r.balanced();
}

#[test]
fn b07_reqbufs_zero_while_mmapped_or_exported_orphans() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    let map =
        r.fh.mmap(mmap_cookie(0, 0), 8192, uapi::ioctl::PROT_READ, true)
            .unwrap();
    let mut eb = V4l2ExportBuffer {
        type_: r.t(),
        index: 1,
        ..Default::default()
    };
    r.fh.expbuf(&mut eb).unwrap();
    r.reqbufs(V4L2_MEMORY_MMAP, 0).unwrap();
    // The orphaned memory still works through both.
    let mut x = [1u8; 4];
    map.read(0, &mut x).unwrap();
    assert_eq!(x, [0; 4]);
    let buf = r.process.get_dma_buf(eb.fd).unwrap();
    assert_eq!(buf.size(), 8192);
    drop(buf);
    drop(map);
    r.process.close(eb.fd).unwrap();
    r.balanced();
    r.checker_clean();
}

#[test]
fn b08_reqbufs_count_rounded_and_clamped() {
    let r = Rig::new(BufType::VideoCapture, "isp0", &[4096], |c| {
        c.min_reqbufs_allocation = 3;
        c.max_num_buffers = 5;
    });
    assert_eq!(r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap().count, 3);
    assert_eq!(r.reqbufs(V4L2_MEMORY_MMAP, 100).unwrap().count, 5);
    r.reqbufs(V4L2_MEMORY_MMAP, 0).unwrap();
    r.balanced();
}

#[test]
fn b09_reqbufs_allocation_failure_is_enomem() {
    let r = Rig::capture();
    r.drv.fail_buf_init.store(true, Ordering::Relaxed);
    assert_eq!(errno(r.reqbufs(V4L2_MEMORY_MMAP, 2)), Errno::ENOMEM);
    assert_eq!((r.q.num_buffers(), r.q.memory()), (0, None));
    r.balanced();
    r.checker_clean();
}

#[test]
fn b10_reqbufs_while_dqbuf_waits_is_ebusy() {
    let r = Rig::capture();
    r.drv.auto.store(false, Ordering::Relaxed);
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    r.qbuf(V4L2_MEMORY_MMAP, 0).unwrap();
    r.fh.streamon(r.t()).unwrap();
    let fh = Arc::new(r.fh);
    let waiter = {
        let fh = fh.clone();
        std::thread::spawn(move || {
            let mut b = V4l2Buffer::new(V4L2_BUF_TYPE_VIDEO_CAPTURE, V4L2_MEMORY_MMAP, 0);
            fh.dqbuf_timeout(&mut b, Some(std::time::Duration::from_secs(5)))
        })
    };
    while !r.q.is_streaming() || r.drv.held.lock().is_empty() {
        std::thread::yield_now();
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut cb = V4l2CreateBuffers {
        count: 1,
        memory: V4L2_MEMORY_MMAP,
        format: V4l2Format {
            type_: V4L2_BUF_TYPE_VIDEO_CAPTURE,
            num_planes: 1,
            sizes: vec![8192],
        },
        ..Default::default()
    };
    assert_eq!(errno(fh.create_bufs(&mut cb)), Errno::EBUSY);
    r.drv.process_one(&r.q).unwrap();
    assert!(waiter.join().unwrap().is_ok());
}

#[test]
fn b11_create_bufs_zero_returns_index_never_ebusy() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 3).unwrap();
    let other = r.other_fh();
    let mut cb = V4l2CreateBuffers {
        count: 0,
        memory: V4L2_MEMORY_MMAP,
        format: V4l2Format {
            type_: r.t(),
            num_planes: 1,
            sizes: vec![8192],
        },
        ..Default::default()
    };
    other.create_bufs(&mut cb).unwrap();
    assert_eq!(cb.index, 3);
    cb.memory = V4L2_MEMORY_OVERLAY;
    assert_eq!(errno(other.create_bufs(&mut cb)), Errno::EINVAL);
    cb.memory = V4L2_MEMORY_MMAP;
    cb.count = 1;
    assert_eq!(errno(other.create_bufs(&mut cb)), Errno::EBUSY);
}

#[test]
fn b12_create_bufs_other_memory_is_einval() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    assert_eq!(
        errno(create(&r, V4L2_MEMORY_DMABUF, 1, &[8192])),
        Errno::EINVAL
    );
}

#[test]
fn b13_create_bufs_at_max_is_enobufs_and_count_clamped() {
    let r = Rig::new(BufType::VideoCapture, "isp0", &[4096], |c| {
        c.max_num_buffers = 4
    });
    let cb = create(&r, V4L2_MEMORY_MMAP, 10, &[4096]).unwrap();
    assert_eq!((cb.index, cb.count, cb.max_num_buffers), (0, 4, 4));
    assert_eq!(
        errno(create(&r, V4L2_MEMORY_MMAP, 1, &[4096])),
        Errno::ENOBUFS
    );
    r.reqbufs(V4L2_MEMORY_MMAP, 0).unwrap();
    r.balanced();
}

#[test]
fn b14_create_bufs_bad_planes_or_sizes_is_einval() {
    let r = Rig::new(BufType::VideoCaptureMplane, "isp0", &[4096, 2048], |_| {});
    assert_eq!(errno(create(&r, V4L2_MEMORY_MMAP, 1, &[])), Errno::EINVAL);
    assert_eq!(
        errno(create(&r, V4L2_MEMORY_MMAP, 1, &[4096; 9])),
        Errno::EINVAL
    );
    assert_eq!(
        errno(create(&r, V4L2_MEMORY_MMAP, 1, &[4096, 0])),
        Errno::EINVAL
    );
    assert_eq!(
        errno(create(&r, V4L2_MEMORY_MMAP, 1, &[4096])),
        Errno::EINVAL,
        "too few"
    );
    assert_eq!(
        errno(create(&r, V4L2_MEMORY_MMAP, 1, &[2048, 1024])),
        Errno::EINVAL,
        "halved"
    );
    let cb = create(&r, V4L2_MEMORY_MMAP, 1, &[8192, 4096]).unwrap();
    assert_eq!(cb.count, 1, "larger sizes are accepted");
    r.fh.close();
}

#[test]
fn b15_create_bufs_appends_and_keeps_states() {
    let r = Rig::capture();
    r.drv.auto.store(false, Ordering::Relaxed);
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    r.qbuf(V4L2_MEMORY_MMAP, 1).unwrap();
    let cb = create(&r, V4L2_MEMORY_MMAP, 2, &[16384]).unwrap();
    assert_eq!((cb.index, cb.count), (2, 2));
    assert_eq!(r.q.buffer_state(1), Some(Vb2State::Queued));
    let mut b = r.buf(V4L2_MEMORY_MMAP, 3);
    r.fh.querybuf(&mut b).unwrap();
    assert!(b.length >= 16384);
    r.fh.close();
    r.balanced();
}

#[test]
fn b16_querybuf_bad_index_type_or_planes_is_einval() {
    let r = Rig::new(BufType::VideoCaptureMplane, "isp0", &[4096, 2048], |_| {});
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 2);
    assert_eq!(errno(r.fh.querybuf(&mut b)), Errno::EINVAL);
    b.index = 0;
    b.type_ = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    assert_eq!(errno(r.fh.querybuf(&mut b)), Errno::EINVAL);
    b.type_ = r.t();
    b.planes = None;
    assert_eq!(errno(r.fh.querybuf(&mut b)), Errno::EINVAL);
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    b.length = 1;
    assert_eq!(errno(r.fh.querybuf(&mut b)), Errno::EINVAL);
    b.length = 9;
    assert_eq!(errno(r.fh.querybuf(&mut b)), Errno::EINVAL);
    b.length = 2;
    r.fh.querybuf(&mut b).unwrap();
}

#[test]
fn b17_querybuf_fresh_buffer_flags() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    r.fh.querybuf(&mut b).unwrap();
    let state_flags = V4L2_BUF_FLAG_QUEUED
        | V4L2_BUF_FLAG_DONE
        | V4L2_BUF_FLAG_ERROR
        | V4L2_BUF_FLAG_PREPARED
        | V4L2_BUF_FLAG_MAPPED;
    assert_eq!(b.flags & state_flags, 0);
    assert_eq!((b.length, b.m_offset), (8192, mmap_cookie(0, 0)));
    let map =
        r.fh.mmap(b.m_offset, 8192, uapi::ioctl::PROT_READ, true)
            .unwrap();
    r.fh.querybuf(&mut b).unwrap();
    assert_ne!(b.flags & V4L2_BUF_FLAG_MAPPED, 0);
    drop(map);
    r.fh.querybuf(&mut b).unwrap();
    assert_eq!(b.flags & V4L2_BUF_FLAG_MAPPED, 0);
}

#[test]
fn b18_remove_bufs_rules() {
    let r = Rig::capture();
    r.drv.auto.store(false, Ordering::Relaxed);
    let rm = |index, count, type_| V4l2RemoveBuffers {
        index,
        count,
        type_,
    };
    // Count 0 is 0 for any index, but the type is checked first (as 6.12 does).
    r.fh.remove_bufs(&rm(100, 0, r.t())).unwrap();
    assert_eq!(errno(r.fh.remove_bufs(&rm(100, 0, 99))), Errno::EINVAL);
    r.reqbufs(V4L2_MEMORY_MMAP, 4).unwrap();
    assert_eq!(errno(r.fh.remove_bufs(&rm(0, 1, 99))), Errno::EINVAL);
    assert_eq!(errno(r.fh.remove_bufs(&rm(3, 2, r.t()))), Errno::EINVAL);
    assert_eq!(
        errno(r.fh.remove_bufs(&rm(u32::MAX, 2, r.t()))),
        Errno::EINVAL
    );
    r.qbuf(V4L2_MEMORY_MMAP, 2).unwrap();
    assert_eq!(errno(r.fh.remove_bufs(&rm(1, 2, r.t()))), Errno::EBUSY);
    r.fh.remove_bufs(&rm(0, 2, r.t())).unwrap();
    assert_eq!(r.q.num_buffers(), 2);
    let mut b = r.buf(V4L2_MEMORY_MMAP, 1);
    assert_eq!(
        errno(r.fh.querybuf(&mut b)),
        Errno::EINVAL,
        "a removed slot"
    );
    let cb = create(&r, V4L2_MEMORY_MMAP, 2, &[8192]).unwrap();
    assert_eq!(cb.index, 0, "freed slots are reused");
    r.fh.streamoff(r.t()).unwrap();
    r.fh.close();
    r.balanced();
}

#[test]
fn b21_non_owner_gets_ebusy_except_querybuf() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 2).unwrap();
    let other = r.other_fh();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    other.querybuf(&mut b).unwrap();
    assert_eq!(errno(other.qbuf(&mut b)), Errno::EBUSY);
    assert_eq!(errno(other.prepare_buf(&mut b)), Errno::EBUSY);
    assert_eq!(errno(other.dqbuf(&mut b)), Errno::EBUSY);
    assert_eq!(errno(other.streamon(r.t())), Errno::EBUSY);
    assert_eq!(errno(other.streamoff(r.t())), Errno::EBUSY);
    let mut eb = V4l2ExportBuffer {
        type_: r.t(),
        ..Default::default()
    };
    assert_eq!(errno(other.expbuf(&mut eb)), Errno::EBUSY);
    let rm = V4l2RemoveBuffers {
        index: 0,
        count: 1,
        type_: r.t(),
    };
    assert_eq!(errno(other.remove_bufs(&rm)), Errno::EBUSY);
}
