//! Behaviours 32-46: importing dma-bufs (the DMABUF plane lifecycle).

use crate::*;
use dmabuf::{DmaBuf, ExportInfo};
use kernel::heap::buffer::{CpuSync, HeapBuffer, Storage};
use kernel::FileObject;
use soc::{AllocRequest, PhysChunk, PAGE_SIZE};

/// A dma-buf of `npages` pages that are never physically contiguous (descending addresses).
pub fn scattered_fd(r: &Rig, npages: usize) -> i32 {
    let mut pages: Vec<_> = (0..npages)
        .map(|_| {
            r.dma
                .soc()
                .pages()
                .alloc_pages(&AllocRequest::new(0))
                .unwrap()
        })
        .collect();
    pages.sort_by_key(|p| std::cmp::Reverse(p.addr));
    let ops = HeapBuffer::new(
        &r.dma,
        Storage::Chunks(pages.into_iter().map(PhysChunk::Pages).collect()),
        CpuSync::Attachments,
        false,
    );
    let buf = DmaBuf::export(
        &r.dma,
        ExportInfo::new("scatter", npages as u64 * PAGE_SIZE, ops),
    )
    .unwrap();
    r.process
        .install(FileObject::DmaBuf(buf), uapi::ioctl::O_RDWR)
        .unwrap()
}

fn dmabuf_rig(sizes: &[u32]) -> Rig {
    let t = if sizes.len() > 1 {
        BufType::VideoCaptureMplane
    } else {
        BufType::VideoCapture
    };
    let r = Rig::new(t, "isp0", sizes, |_| {});
    r.reqbufs(V4L2_MEMORY_DMABUF, 2).unwrap();
    r
}

fn snap(r: &Rig) -> CounterSnapshot {
    r.q.counters().snapshot()
}

#[test]
fn b32_qbuf_dmabuf_bad_fd_is_einval() {
    let r = dmabuf_rig(&[4096]);
    assert_eq!(errno(r.fh.qbuf(&mut r.dmabuf_buf(0, &[-1]))), Errno::EINVAL);
    assert_eq!(
        errno(r.fh.qbuf(&mut r.dmabuf_buf(0, &[0]))),
        Errno::EINVAL,
        "a tty"
    );
    assert_eq!(
        errno(r.fh.qbuf(&mut r.dmabuf_buf(0, &[77]))),
        Errno::EINVAL,
        "not open"
    );
    assert_eq!(r.q.buffer_state(0), Some(Vb2State::Dequeued));
}

#[test]
fn b33_qbuf_dmabuf_length_zero_uses_dmabuf_size() {
    let r = dmabuf_rig(&[4096]);
    let fd = r.heap_fd(3 * 4096);
    let b = {
        let mut b = r.dmabuf_buf(0, &[fd]);
        r.fh.qbuf(&mut b).unwrap();
        b
    };
    assert_eq!(b.length, 3 * 4096);
}

#[test]
fn b34_qbuf_dmabuf_below_min_length_is_einval() {
    let r = dmabuf_rig(&[8192]);
    let fd = r.heap_fd(4096);
    assert_eq!(errno(r.fh.qbuf(&mut r.dmabuf_buf(0, &[fd]))), Errno::EINVAL);
    let fd = r.heap_fd(16384);
    let mut b = r.dmabuf_buf(0, &[fd]);
    b.length = 4096;
    assert_eq!(errno(r.fh.qbuf(&mut b)), Errno::EINVAL);
    assert_eq!(snap(&r).attach, 0);
}

#[test]
fn b35_qbuf_dmabuf_length_above_dmabuf_size_is_efault() {
    let r = dmabuf_rig(&[4096]);
    let fd = r.heap_fd(4096);
    let mut b = r.dmabuf_buf(0, &[fd]);
    b.length = 8192;
    assert_eq!(errno(r.fh.qbuf(&mut b)), Errno::EFAULT);
    r.balanced();
}

#[test]
fn b36_qbuf_dmabuf_noncontiguous_on_dma_contig_is_efault() {
    let r = Rig::new(BufType::VideoCapture, "vdev0", &[8192], |_| {});
    r.reqbufs(V4L2_MEMORY_DMABUF, 1).unwrap();
    let fd = scattered_fd(&r, 2);
    assert_eq!(errno(r.fh.qbuf(&mut r.dmabuf_buf(0, &[fd]))), Errno::EFAULT);
    let s = snap(&r);
    assert_eq!((s.attach, s.detach, s.map, s.unmap), (1, 1, 1, 1));
    // The same buffer through an IOMMU is one DMA-contiguous range: accepted.
    let r2 = Rig::on(&r.kernel, BufType::VideoCapture, "isp0", &[8192], |_| {});
    r2.reqbufs(V4L2_MEMORY_DMABUF, 1).unwrap();
    let fd2 = r.process.send_fd(fd, &r2.process).unwrap();
    r2.fh.qbuf(&mut r2.dmabuf_buf(0, &[fd2])).unwrap();
    // And a dma-sg queue takes it without an IOMMU.
    let r3 = Rig::on(&r.kernel, BufType::VideoCapture, "vdev0", &[8192], |c| {
        c.allocator = Allocator::DmaSg
    });
    r3.reqbufs(V4L2_MEMORY_DMABUF, 1).unwrap();
    let fd3 = r.process.send_fd(fd, &r3.process).unwrap();
    r3.fh.qbuf(&mut r3.dmabuf_buf(0, &[fd3])).unwrap();
}

#[test]
fn b37_same_dmabuf_same_length_reuses_attachment_and_mapping() {
    let r = dmabuf_rig(&[8192]);
    let fd = r.heap_fd(8192);
    let dup = r.process.dup(fd).unwrap();
    r.fh.streamon(r.t()).unwrap();
    for f in [fd, dup, fd, dup] {
        r.fh.qbuf(&mut r.dmabuf_buf(0, &[f])).unwrap();
        r.dqbuf(V4L2_MEMORY_DMABUF).unwrap();
    }
    let s = snap(&r);
    assert_eq!((s.attach, s.map, s.detach, s.unmap), (1, 1, 0, 0));
    assert_eq!((s.buf_init, s.buf_cleanup), (1, 0));
    r.fh.close();
    r.balanced();
    r.checker_clean();
}

#[test]
fn b38_same_dmabuf_other_length_reattaches() {
    let r = dmabuf_rig(&[4096]);
    let fd = r.heap_fd(8192);
    r.fh.prepare_buf(&mut r.dmabuf_buf(0, &[fd])).unwrap();
    r.fh.streamoff(r.t()).unwrap();
    let mut b = r.dmabuf_buf(0, &[fd]);
    b.length = 4096;
    r.fh.prepare_buf(&mut b).unwrap();
    let s = snap(&r);
    assert_eq!((s.attach, s.detach, s.map, s.unmap), (2, 1, 2, 1));
    r.fh.close();
    r.balanced();
}

#[test]
fn b39_other_fd_releases_old_plane_with_one_cleanup_and_init() {
    let r = dmabuf_rig(&[4096, 4096]);
    let (a, b, c) = (r.heap_fd(4096), r.heap_fd(4096), r.heap_fd(4096));
    r.fh.streamon(r.t()).unwrap();
    r.fh.qbuf(&mut r.dmabuf_buf(0, &[a, b])).unwrap();
    r.dqbuf(V4L2_MEMORY_DMABUF).unwrap();
    let before = snap(&r);
    r.fh.qbuf(&mut r.dmabuf_buf(0, &[c, b])).unwrap();
    let s = snap(&r);
    assert_eq!(s.detach - before.detach, 1, "only the changed plane");
    assert_eq!(s.unmap - before.unmap, 1);
    assert_eq!(s.attach - before.attach, 1);
    assert_eq!(s.buf_cleanup - before.buf_cleanup, 1);
    assert_eq!(s.buf_init - before.buf_init, 1);
    r.fh.close();
    r.balanced();
}

#[test]
fn b40_failed_prepare_releases_every_plane() {
    let r = dmabuf_rig(&[4096, 4096]);
    let (a, b) = (r.heap_fd(4096), r.heap_fd(4096));
    r.fh.prepare_buf(&mut r.dmabuf_buf(0, &[a, b])).unwrap();
    r.fh.streamoff(r.t()).unwrap();
    assert_eq!(
        errno(r.fh.qbuf(&mut r.dmabuf_buf(0, &[a, -1]))),
        Errno::EINVAL
    );
    let s = snap(&r);
    assert_eq!((s.attach, s.detach, s.map, s.unmap), (2, 2, 2, 2));
    assert_eq!(r.q.buffer_state(0), Some(Vb2State::Dequeued));
    let mut q = r.buf(V4L2_MEMORY_DMABUF, 0);
    r.fh.querybuf(&mut q).unwrap();
    assert_eq!(q.flags & V4L2_BUF_FLAG_PREPARED, 0);
    // buf_prepare failing releases everything too; the next QBUF attaches again.
    r.drv.fail_buf_prepare.store(true, Ordering::Relaxed);
    assert_eq!(
        errno(r.fh.qbuf(&mut r.dmabuf_buf(0, &[a, b]))),
        Errno::EINVAL
    );
    r.drv.fail_buf_prepare.store(false, Ordering::Relaxed);
    r.fh.qbuf(&mut r.dmabuf_buf(0, &[a, b])).unwrap();
    let s = snap(&r);
    assert_eq!((s.attach, s.detach), (6, 4));
    r.fh.close();
    r.balanced();
}

#[test]
fn b41_dqbuf_keeps_planes_mapped_and_returns_the_fd() {
    let r = dmabuf_rig(&[4096]);
    let fd = r.heap_fd(4096);
    r.fh.streamon(r.t()).unwrap();
    r.fh.qbuf(&mut r.dmabuf_buf(1, &[fd])).unwrap();
    let fds_before = r.process.fds().len();
    let b = r.dqbuf(V4L2_MEMORY_DMABUF).unwrap();
    assert_eq!((b.index, b.m_fd), (1, fd));
    assert_eq!(r.process.fds().len(), fds_before, "no new fd");
    let s = snap(&r);
    assert_eq!((s.map, s.unmap, s.detach), (1, 0, 0));
}

#[test]
fn b42_closing_the_fd_after_qbuf_keeps_the_buffer_working() {
    let r = dmabuf_rig(&[4096]);
    let fd = r.heap_fd(4096);
    let buf = r.process.get_dma_buf(fd).unwrap();
    r.fh.qbuf(&mut r.dmabuf_buf(0, &[fd])).unwrap();
    r.process.close(fd).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.dqbuf(V4L2_MEMORY_DMABUF).unwrap();
    let m = buf.mmap(0, 4096, false).unwrap();
    buf.begin_cpu_access(dma::DmaDirection::FromDevice).unwrap();
    let mut got = vec![0u8; 4096];
    m.read(0, &mut got).unwrap();
    buf.end_cpu_access(dma::DmaDirection::FromDevice).unwrap();
    assert_eq!(got, pattern(0, 0, 4096));
    drop(m);
    r.fh.close();
    r.balanced();
    r.checker_clean();
}

#[test]
fn b43_streamoff_keeps_planes_mapped_and_requeue_costs_nothing() {
    let r = dmabuf_rig(&[4096]);
    r.drv.auto.store(false, Ordering::Relaxed);
    let fds = [r.heap_fd(4096), r.heap_fd(4096)];
    for (i, &fd) in fds.iter().enumerate() {
        r.fh.qbuf(&mut r.dmabuf_buf(i as u32, &[fd])).unwrap();
    }
    r.fh.streamon(r.t()).unwrap();
    r.fh.streamoff(r.t()).unwrap();
    assert_eq!(r.q.buffer_state(0), Some(Vb2State::Dequeued));
    let before = snap(&r);
    for (i, &fd) in fds.iter().enumerate() {
        r.fh.qbuf(&mut r.dmabuf_buf(i as u32, &[fd])).unwrap();
    }
    r.fh.streamon(r.t()).unwrap();
    let s = snap(&r);
    assert_eq!((s.map, s.attach, s.unmap), (before.map, before.attach, 0));
    assert_eq!(s.warnings, 0, "no 'dmabuf already pinned'");
    r.fh.close();
    r.balanced();
}

#[test]
fn b44_reqbufs_remove_bufs_and_close_release_every_plane() {
    let r = dmabuf_rig(&[4096]);
    let fds = [r.heap_fd(4096), r.heap_fd(4096)];
    for (i, &fd) in fds.iter().enumerate() {
        r.fh.prepare_buf(&mut r.dmabuf_buf(i as u32, &[fd]))
            .unwrap();
    }
    r.fh.remove_bufs(&V4l2RemoveBuffers {
        index: 1,
        count: 1,
        type_: r.t(),
    })
    .unwrap();
    assert_eq!(snap(&r).detach, 1);
    r.reqbufs(V4L2_MEMORY_DMABUF, 2).unwrap();
    assert_eq!(snap(&r).detach, 2);
    r.fh.prepare_buf(&mut r.dmabuf_buf(0, &[fds[0]])).unwrap();
    r.fh.close();
    let s = r.q.counters().snapshot();
    assert_eq!((s.attach, s.detach, s.map, s.unmap), (3, 3, 3, 3));
    r.balanced();
    r.checker_clean();
}

#[test]
fn b46_no_importer_cache_maintenance_and_hints_stripped() {
    let r = Rig::new(BufType::VideoCapture, "isp0", &[4096], |c| {
        c.allow_cache_hints = true
    });
    let mut req = V4l2RequestBuffers {
        count: 1,
        type_: r.t(),
        memory: V4L2_MEMORY_DMABUF,
        flags: V4L2_MEMORY_FLAG_NON_COHERENT | 0x80,
        ..Default::default()
    };
    r.fh.reqbufs(&mut req).unwrap();
    assert_eq!(req.flags, 0);
    let fd = r.heap_fd(4096);
    let mut b = r.dmabuf_buf(0, &[fd]);
    b.flags = V4L2_BUF_FLAG_NO_CACHE_CLEAN | V4L2_BUF_FLAG_NO_CACHE_INVALIDATE;
    r.fh.qbuf(&mut b).unwrap();
    assert_eq!(b.flags & vb2::cache::CACHE_HINT_FLAGS, 0);
    r.fh.streamon(r.t()).unwrap();
    let b = r.dqbuf(V4L2_MEMORY_DMABUF).unwrap();
    assert_eq!(b.flags & vb2::cache::CACHE_HINT_FLAGS, 0);
    let s = snap(&r);
    assert_eq!((s.mem_prepare, s.mem_finish), (0, 0));
}

#[test]
fn qbuf_dmabuf_attaches_with_the_queues_importer_priv() {
    let r = dmabuf_rig(&[4096]);
    let fd = r.heap_fd(4096);
    let other = r.heap_fd(4096);
    let buf_of = |fd| r.process.get_dma_buf(fd).unwrap();
    // Before the driver says anything, an attach carries nothing.
    r.fh.qbuf(&mut r.dmabuf_buf(0, &[fd])).unwrap();
    let atts = buf_of(fd).attachments();
    assert_eq!(atts.len(), 1);
    assert!(atts[0].importer_priv_as::<&str>().is_none());
    // From now on every attach of the queue tells the exporter what the device needs.
    r.q.set_importer_priv(Some(std::sync::Arc::new("needs of isp0")));
    r.fh.qbuf(&mut r.dmabuf_buf(1, &[other])).unwrap();
    let atts = buf_of(other).attachments();
    assert_eq!(atts[0].importer_priv_as::<&str>(), Some(&"needs of isp0"));
}
