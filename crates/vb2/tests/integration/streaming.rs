//! Behaviours 56-78: STREAMON, STREAMOFF, DQBUF, buffer_done, poll, close and the counters.

use crate::*;
use std::time::Duration;

const M: u32 = V4L2_MEMORY_MMAP;

fn held() -> Rig {
    let r = Rig::capture();
    r.drv.auto.store(false, Ordering::Relaxed);
    r
}

#[test]
fn b56_streamon_wrong_type_is_einval() {
    let r = Rig::capture();
    r.reqbufs(M, 1).unwrap();
    assert_eq!(
        errno(r.fh.streamon(V4L2_BUF_TYPE_VIDEO_OUTPUT)),
        Errno::EINVAL
    );
}

#[test]
fn b57_streamon_without_buffers_is_einval() {
    let r = Rig::capture();
    assert_eq!(errno(r.fh.streamon(r.t())), Errno::EINVAL);
}

#[test]
fn b58_streamon_with_fewer_buffers_than_min_queued_is_einval() {
    let r = Rig::new(BufType::VideoCapture, "isp0", &[4096], |c| {
        c.min_queued_buffers = 3
    });
    r.reqbufs(M, 2).unwrap();
    assert_eq!(errno(r.fh.streamon(r.t())), Errno::EINVAL);
}

#[test]
fn b59_streamon_twice_is_a_noop() {
    let r = held();
    r.reqbufs(M, 1).unwrap();
    r.qbuf(M, 0).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.fh.streamon(r.t()).unwrap();
    assert_eq!(r.q.counters().snapshot().start_streaming, 1);
    r.fh.close();
    r.balanced();
}

#[test]
fn b60_start_deferred_until_min_queued_and_failure_dequeues_that_buffer() {
    let r = Rig::new(BufType::VideoCapture, "isp0", &[4096], |c| {
        c.min_queued_buffers = 2
    });
    r.drv.auto.store(false, Ordering::Relaxed);
    r.reqbufs(M, 3).unwrap();
    r.fh.streamon(r.t()).unwrap();
    assert!(r.q.is_streaming() && !r.q.is_started());
    r.qbuf(M, 0).unwrap();
    assert!(!r.q.is_started());
    *r.drv.fail_start.lock() = Some(Errno::EIO);
    assert_eq!(errno(r.qbuf(M, 1)), Errno::EIO);
    assert_eq!(r.q.buffer_state(1), Some(Vb2State::Dequeued));
    assert_eq!(r.q.buffer_state(0), Some(Vb2State::Queued));
    let mut b = r.buf(M, 1);
    r.fh.querybuf(&mut b).unwrap();
    assert_ne!(b.flags & V4L2_BUF_FLAG_PREPARED, 0, "still prepared");
    *r.drv.fail_start.lock() = None;
    r.fh.qbuf(&mut b).unwrap();
    assert!(r.q.is_started());
    assert_eq!(r.drv.last_start_count.load(Ordering::Relaxed), 2);
    r.fh.close();
    r.balanced();
}

#[test]
fn b61_start_streaming_error_leaves_buffers_queued() {
    for give_back in [true, false] {
        let r = held();
        r.drv
            .return_on_failed_start
            .store(give_back, Ordering::Relaxed);
        r.reqbufs(M, 2).unwrap();
        r.qbuf(M, 0).unwrap();
        r.qbuf(M, 1).unwrap();
        *r.drv.fail_start.lock() = Some(Errno::ENOSPC);
        assert_eq!(errno(r.fh.streamon(r.t())), Errno::ENOSPC);
        assert!(!r.q.is_streaming());
        assert_eq!(r.q.buffer_state(0), Some(Vb2State::Queued));
        assert_eq!(r.q.buffer_state(1), Some(Vb2State::Queued));
        let warned = r.q.counters().snapshot().warnings;
        assert_eq!(warned, if give_back { 0 } else { 2 });
        r.drv.held.lock().clear();
        r.fh.close();
        r.balanced();
    }
}

#[test]
fn b62_streamoff_while_not_streaming_unprepares() {
    let r = held();
    r.reqbufs(M, 2).unwrap();
    r.qbuf(M, 0).unwrap();
    r.fh.prepare_buf(&mut r.buf(M, 1)).unwrap();
    r.fh.streamoff(r.t()).unwrap();
    for i in 0..2 {
        let mut b = r.buf(M, i);
        r.fh.querybuf(&mut b).unwrap();
        assert_eq!(b.flags & (V4L2_BUF_FLAG_QUEUED | V4L2_BUF_FLAG_PREPARED), 0);
    }
    r.fh.close();
    r.balanced();
}

#[test]
fn b63_streamoff_wrong_type_is_einval() {
    let r = Rig::capture();
    assert_eq!(
        errno(r.fh.streamoff(V4L2_BUF_TYPE_VIDEO_OUTPUT)),
        Errno::EINVAL
    );
}

#[test]
fn b64_streamoff_stops_once_reclaims_and_finishes() {
    let r = held();
    r.drv.return_on_stop.store(false, Ordering::Relaxed);
    r.reqbufs(M, 3).unwrap();
    for i in 0..3 {
        r.qbuf(M, i).unwrap();
    }
    r.fh.streamon(r.t()).unwrap();
    r.drv.process_one(&r.q).unwrap(); // buffer 0 done, not dequeued
    r.fh.streamoff(r.t()).unwrap();
    let s = r.q.counters().snapshot();
    assert_eq!((s.stop_streaming, s.warnings), (1, 2), "two left ACTIVE");
    assert_eq!(s.buf_finish, 3);
    for i in 0..3 {
        assert_eq!(r.q.buffer_state(i), Some(Vb2State::Dequeued));
    }
    r.fh.streamoff(r.t()).unwrap();
    assert_eq!(r.q.counters().snapshot().stop_streaming, 1);
    r.fh.close();
    r.balanced();
}

#[test]
fn b65_every_buffer_can_be_requeued_after_streamoff() {
    let r = Rig::capture();
    r.reqbufs(M, 4).unwrap();
    for _ in 0..3 {
        for i in 0..4 {
            r.qbuf(M, i).unwrap();
        }
        r.fh.streamon(r.t()).unwrap();
        r.dqbuf(M).unwrap();
        r.fh.streamoff(r.t()).unwrap();
    }
    r.fh.close();
    r.balanced();
    r.checker_clean();
}

#[test]
fn b66_dqbuf_while_not_streaming_is_einval() {
    let r = Rig::capture();
    r.reqbufs(M, 1).unwrap();
    assert_eq!(errno(r.dqbuf(M)), Errno::EINVAL);
}

#[test]
fn b67_nonblocking_dqbuf_on_empty_done_list_is_eagain() {
    let r = held();
    r.reqbufs(M, 1).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.fh.set_nonblocking(true);
    assert_eq!(errno(r.dqbuf(M)), Errno::EAGAIN);
}

#[test]
fn b68_blocking_dqbuf_is_woken_by_streamoff_with_einval() {
    let r = held();
    r.reqbufs(M, 1).unwrap();
    r.fh.streamon(r.t()).unwrap();
    let fh = Arc::new(r.fh);
    let t = {
        let fh = fh.clone();
        std::thread::spawn(move || {
            let mut b = V4l2Buffer::new(V4L2_BUF_TYPE_VIDEO_CAPTURE, M, 0);
            fh.dqbuf_timeout(&mut b, Some(Duration::from_secs(10)))
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    // The waiter released the ioctl lock: other ioctls run.
    let mut b = V4l2Buffer::new(V4L2_BUF_TYPE_VIDEO_CAPTURE, M, 0);
    fh.querybuf(&mut b).unwrap();
    fh.streamoff(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
    assert_eq!(errno(t.join().unwrap()), Errno::EINVAL);
}

#[test]
fn b69_second_dqbuf_waiter_is_ebusy() {
    let r = held();
    r.reqbufs(M, 1).unwrap();
    r.fh.streamon(r.t()).unwrap();
    let fh = Arc::new(r.fh);
    let t = {
        let fh = fh.clone();
        std::thread::spawn(move || {
            let mut b = V4l2Buffer::new(V4L2_BUF_TYPE_VIDEO_CAPTURE, M, 0);
            fh.dqbuf_timeout(&mut b, Some(Duration::from_secs(10)))
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let mut b = V4l2Buffer::new(V4L2_BUF_TYPE_VIDEO_CAPTURE, M, 0);
    assert_eq!(errno(fh.dqbuf(&mut b)), Errno::EBUSY);
    r.q.queue_error();
    assert_eq!(errno(t.join().unwrap()), Errno::EIO);
}

#[test]
fn b70_dqbuf_after_queue_error_is_eio() {
    let r = Rig::capture();
    r.reqbufs(M, 1).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.qbuf(M, 0).unwrap();
    r.q.queue_error();
    assert_eq!(errno(r.dqbuf(M)), Errno::EIO);
    assert_eq!(r.fh.poll(EPOLLIN), EPOLLERR);
    r.fh.streamoff(r.t()).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.qbuf(M, 0).unwrap();
    r.dqbuf(M).unwrap();
}

#[test]
fn b71_dqbuf_after_last_is_epipe_until_streamoff() {
    let r = held();
    r.reqbufs(M, 2).unwrap();
    r.qbuf(M, 0).unwrap();
    r.qbuf(M, 1).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.q.mark_last(0).unwrap();
    r.q.buffer_done(0, Vb2State::Done).unwrap();
    let b = r.dqbuf(M).unwrap();
    assert_ne!(b.flags & V4L2_BUF_FLAG_LAST, 0);
    assert_eq!(errno(r.dqbuf(M)), Errno::EPIPE);
    assert_eq!(r.fh.poll(EPOLLIN), EPOLLIN | EPOLLRDNORM);
    r.fh.streamoff(r.t()).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.fh.set_nonblocking(true);
    assert_eq!(errno(r.dqbuf(M)), Errno::EAGAIN);
}

#[test]
fn b72_dqbuf_with_short_planes_array_keeps_the_buffer() {
    let r = Rig::new(BufType::VideoCaptureMplane, "isp0", &[4096, 4096], |_| {});
    r.reqbufs(M, 1).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.qbuf(M, 0).unwrap();
    let mut b = r.buf(M, 0);
    b.length = 1;
    assert_eq!(errno(r.fh.dqbuf(&mut b)), Errno::EINVAL);
    assert_eq!(r.q.buffer_state(0), Some(Vb2State::Done));
    let b = r.dqbuf(M).unwrap();
    assert_eq!(b.planes.unwrap()[1].bytesused, 4096);
}

#[test]
fn b73_error_completion_reports_error_and_never_done() {
    let r = held();
    r.reqbufs(M, 1).unwrap();
    r.qbuf(M, 0).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.drv.complete_all(&r.q, Vb2State::Error);
    let b = r.dqbuf(M).unwrap();
    assert_eq!(
        b.flags & (V4L2_BUF_FLAG_ERROR | V4L2_BUF_FLAG_DONE),
        V4L2_BUF_FLAG_ERROR
    );
}

#[test]
fn b74_done_buffers_come_back_in_completion_order() {
    let r = held();
    r.reqbufs(M, 3).unwrap();
    for i in 0..3 {
        r.qbuf(M, i).unwrap();
    }
    r.fh.streamon(r.t()).unwrap();
    for i in [2, 0, 1] {
        r.q.buffer_done(i, Vb2State::Done).unwrap();
    }
    r.drv.held.lock().clear();
    let order: Vec<u32> = (0..3).map(|_| r.dqbuf(M).unwrap().index).collect();
    assert_eq!(order, [2, 0, 1]);
    let seqs: Vec<u32> = (0..3)
        .map(|i| {
            let mut b = r.buf(M, i);
            r.fh.querybuf(&mut b).unwrap();
            b.sequence
        })
        .collect();
    assert_eq!(seqs, [1, 2, 0]);
}

#[test]
fn b75_buffer_done_on_inactive_buffer_is_ignored() {
    let r = held();
    r.reqbufs(M, 2).unwrap();
    r.qbuf(M, 0).unwrap();
    assert_eq!(
        errno(r.q.buffer_done(0, Vb2State::Done)),
        Errno::EINVAL,
        "QUEUED"
    );
    assert_eq!(
        errno(r.q.buffer_done(1, Vb2State::Done)),
        Errno::EINVAL,
        "DEQUEUED"
    );
    assert_eq!(r.q.buffer_state(0), Some(Vb2State::Queued));
    r.fh.streamon(r.t()).unwrap();
    r.q.buffer_done(0, Vb2State::Active).unwrap();
    assert_eq!(
        r.q.buffer_state(0),
        Some(Vb2State::Error),
        "other states count as ERROR"
    );
    assert_eq!(r.q.counters().snapshot().warnings, 2);
}

#[test]
fn b76_poll() {
    let r = held();
    assert_eq!(r.fh.poll(EPOLLIN), EPOLLERR, "not streaming");
    r.reqbufs(M, 1).unwrap();
    r.fh.streamon(r.t()).unwrap();
    assert_eq!(r.fh.poll(EPOLLIN), EPOLLERR, "capture never queued");
    assert_eq!(r.fh.poll(EPOLLOUT), 0, "not asked");
    r.qbuf(M, 0).unwrap();
    assert_eq!(r.fh.poll(EPOLLIN), 0);
    r.drv.complete_all(&r.q, Vb2State::Done);
    assert_eq!(r.fh.poll(EPOLLIN), EPOLLIN | EPOLLRDNORM);
    let o = Rig::new(BufType::VideoOutput, "isp0", &[4096], |_| {});
    o.reqbufs(M, 1).unwrap();
    o.fh.streamon(o.t()).unwrap();
    o.qbuf(M, 0).unwrap();
    assert_eq!(o.fh.poll(EPOLLOUT), EPOLLOUT | EPOLLWRNORM);
}

#[test]
fn b77_close_by_owner_frees_close_by_other_does_nothing() {
    let r = held();
    r.reqbufs(M, 2).unwrap();
    r.qbuf(M, 0).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.other_fh().close();
    assert!(r.q.is_streaming());
    assert_eq!(r.q.num_buffers(), 2);
    r.fh.close();
    assert!(!r.q.is_streaming());
    assert_eq!((r.q.num_buffers(), r.q.memory()), (0, None));
    let s = r.q.counters().snapshot();
    assert_eq!((s.stop_streaming, s.put), (1, 2));
}

#[test]
fn b78_counters_balance_after_every_sequence() {
    for memory in [V4L2_MEMORY_MMAP, V4L2_MEMORY_DMABUF, V4L2_MEMORY_USERPTR] {
        let r = Rig::new(BufType::VideoCaptureMplane, "isp0", &[4096, 8192], |_| {});
        r.reqbufs(memory, 3).unwrap();
        let fds: Vec<i32> = (0..6).map(|_| r.heap_fd(8192)).collect();
        let ptrs: Vec<u64> = (0..6).map(|_| r.user.mmap_anon(8192).unwrap()).collect();
        let q = |i: u32| {
            let mut b = r.buf(memory, i);
            for (p, pl) in b.planes.as_mut().unwrap().iter_mut().take(2).enumerate() {
                let k = i as usize * 2 + p;
                pl.m_fd = fds[k];
                pl.m_userptr = ptrs[k];
                pl.length = if memory == V4L2_MEMORY_USERPTR {
                    8192
                } else {
                    0
                };
            }
            r.fh.qbuf(&mut b)
        };
        q(0).unwrap();
        q(1).unwrap();
        r.fh.streamon(r.t()).unwrap();
        r.dqbuf(memory).unwrap();
        q(0).unwrap();
        q(2).unwrap();
        r.fh.streamoff(r.t()).unwrap();
        q(1).unwrap();
        r.reqbufs(memory, 0).unwrap();
        r.balanced();
        r.checker_clean();
    }
}

#[test]
fn clear_last_buffer_dequeued_lets_dqbuf_wait_again_after_the_last_buffer() {
    // A codec's V4L2_ENC_CMD_START resumes a drained stream: vb2_clear_last_buffer_dequeued.
    let r = held();
    r.reqbufs(M, 2).unwrap();
    r.qbuf(M, 0).unwrap();
    r.qbuf(M, 1).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.q.mark_last(0).unwrap();
    r.q.buffer_done(0, Vb2State::Done).unwrap();
    r.dqbuf(M).unwrap();
    assert!(r.q.last_buffer_dequeued());
    assert_eq!(errno(r.dqbuf(M)), Errno::EPIPE);
    r.q.clear_last_buffer_dequeued();
    assert!(!r.q.last_buffer_dequeued());
    r.q.buffer_done(1, Vb2State::Done).unwrap();
    assert_eq!(r.dqbuf(M).unwrap().index, 1, "DQBUF works again, no EPIPE");
}
