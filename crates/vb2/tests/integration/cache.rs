//! Cache hints and cache maintenance (reference section 1, "Cache sync"; behaviour 46 is in
//! `dmabuf_import`).

use crate::*;
use dma::FindingKind;
use uapi::ioctl::{PROT_READ, PROT_WRITE};

fn hinted(t: BufType, allow: bool) -> Rig {
    Rig::new(t, "isp0", &[8192], |c| c.allow_cache_hints = allow)
}

fn reqbufs_flags(r: &Rig, memory: u32, flags: u32) -> V4l2RequestBuffers {
    let mut req = V4l2RequestBuffers {
        count: 2,
        type_: r.t(),
        memory,
        flags,
        ..Default::default()
    };
    r.fh.reqbufs(&mut req).unwrap();
    req
}

#[test]
fn non_coherent_flag_kept_only_for_mmap_with_cache_hints() {
    let r = hinted(BufType::VideoCapture, true);
    let req = reqbufs_flags(&r, V4L2_MEMORY_MMAP, V4L2_MEMORY_FLAG_NON_COHERENT | 0x40);
    assert_eq!(
        req.flags, V4L2_MEMORY_FLAG_NON_COHERENT,
        "unknown bits cleared"
    );
    assert_ne!(req.capabilities & V4L2_BUF_CAP_SUPPORTS_MMAP_CACHE_HINTS, 0);
    assert_eq!(reqbufs_flags(&r, V4L2_MEMORY_USERPTR, 1).flags, 0);
    let r = hinted(BufType::VideoCapture, false);
    assert_eq!(reqbufs_flags(&r, V4L2_MEMORY_MMAP, 1).flags, 0);
}

#[test]
fn buffer_hints_echoed_only_when_honoured() {
    let hints = V4L2_BUF_FLAG_NO_CACHE_CLEAN | V4L2_BUF_FLAG_NO_CACHE_INVALIDATE;
    for (allow, memory, kept) in [
        (true, V4L2_MEMORY_MMAP, hints),
        (false, V4L2_MEMORY_MMAP, 0),
        (true, V4L2_MEMORY_USERPTR, 0),
    ] {
        let r = hinted(BufType::VideoCapture, allow);
        r.reqbufs(memory, 1).unwrap();
        let mut b = r.buf(memory, 0);
        b.m_userptr = r.user.mmap_anon(8192).unwrap();
        b.length = 8192;
        b.flags = hints;
        r.fh.prepare_buf(&mut b).unwrap();
        assert_eq!(b.flags & hints, kept, "allow {allow} memory {memory}");
    }
}

#[test]
fn create_bufs_with_other_coherency_is_einval_reqbufs_reallocates() {
    let r = hinted(BufType::VideoCapture, true);
    reqbufs_flags(&r, V4L2_MEMORY_MMAP, V4L2_MEMORY_FLAG_NON_COHERENT);
    let mut cb = V4l2CreateBuffers {
        count: 1,
        memory: V4L2_MEMORY_MMAP,
        format: V4l2Format {
            type_: r.t(),
            num_planes: 1,
            sizes: vec![8192],
        },
        ..Default::default()
    };
    assert_eq!(errno(r.fh.create_bufs(&mut cb)), Errno::EINVAL);
    cb.flags = V4L2_MEMORY_FLAG_NON_COHERENT;
    r.fh.create_bufs(&mut cb).unwrap();
    let before = r.q.counters().snapshot().alloc;
    reqbufs_flags(&r, V4L2_MEMORY_MMAP, 0);
    let s = r.q.counters().snapshot();
    assert_eq!(
        (s.alloc - before, s.put),
        (2, 3),
        "freed and reallocated coherent"
    );
}

/// Capture into a non-coherent MMAP buffer; while the device owns it the CPU pulls its lines
/// into the cache (as a speculative prefetch would). `hint` skips "finish".
fn capture_after_cpu_read(hint: u32) -> (Vec<u8>, Rig) {
    let r = hinted(BufType::VideoCapture, true);
    r.drv.auto.store(false, Ordering::Relaxed);
    reqbufs_flags(&r, V4L2_MEMORY_MMAP, V4L2_MEMORY_FLAG_NON_COHERENT);
    let map = r.fh.mmap(mmap_cookie(0, 0), 8192, PROT_READ, true).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    b.flags = hint;
    r.fh.qbuf(&mut b).unwrap();
    r.fh.streamon(r.t()).unwrap();
    let mut got = vec![0u8; 8192];
    map.read(0, &mut got).unwrap(); // the lines are now in the CPU cache
    r.drv.process_one(&r.q).unwrap();
    r.dqbuf(V4L2_MEMORY_MMAP).unwrap();
    map.read(0, &mut got).unwrap();
    (got, r)
}

#[test]
fn non_coherent_mmap_capture_is_invalidated_at_buffer_done() {
    let (got, r) = capture_after_cpu_read(0);
    assert_eq!(got, pattern(0, 0, 8192));
    let s = r.q.counters().snapshot();
    assert_eq!((s.mem_prepare, s.mem_finish), (1, 1));
    r.checker_clean();
}

#[test]
fn skipping_the_finish_shows_stale_bytes() {
    let (got, r) = capture_after_cpu_read(V4L2_BUF_FLAG_NO_CACHE_INVALIDATE);
    assert!(
        got != pattern(0, 0, 8192),
        "the CPU read its stale cache lines"
    );
    assert!(got.iter().all(|&x| x == 0));
    assert!(r.dma.checker().count(FindingKind::CpuStaleRead) > 0);
}

/// Output from a non-coherent MMAP buffer the CPU wrote through its cache; `hint` skips
/// "prepare" (the clean). Returns whether the device read the CPU's bytes.
fn output_after_cpu_write(hint: u32) -> bool {
    let r = hinted(BufType::VideoOutput, true);
    reqbufs_flags(&r, V4L2_MEMORY_MMAP, V4L2_MEMORY_FLAG_NON_COHERENT);
    let map =
        r.fh.mmap(mmap_cookie(0, 0), 8192, PROT_WRITE, true)
            .unwrap();
    let data = pattern(9, 0, 8192);
    map.write(0, &data).unwrap();
    let mut b = r.buf(V4L2_MEMORY_MMAP, 0);
    b.flags = hint;
    b.bytesused = 8192;
    r.fh.qbuf(&mut b).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.dqbuf(V4L2_MEMORY_MMAP).unwrap();
    let sums = r.drv.output_sums.lock().clone();
    sums == [checksum(&data)]
}

#[test]
fn non_coherent_mmap_output_is_cleaned_at_prepare() {
    assert!(output_after_cpu_write(0));
}

#[test]
fn skipping_the_clean_shows_wrong_bytes_to_the_device() {
    assert!(!output_after_cpu_write(V4L2_BUF_FLAG_NO_CACHE_CLEAN));
}

#[test]
fn coherent_mmap_needs_no_maintenance() {
    let r = Rig::capture();
    r.reqbufs(V4L2_MEMORY_MMAP, 1).unwrap();
    let map = r.fh.mmap(mmap_cookie(0, 0), 8192, PROT_READ, true).unwrap();
    let mut got = vec![0u8; 8192];
    map.read(0, &mut got).unwrap();
    r.qbuf(V4L2_MEMORY_MMAP, 0).unwrap();
    r.fh.streamon(r.t()).unwrap();
    r.dqbuf(V4L2_MEMORY_MMAP).unwrap();
    map.read(0, &mut got).unwrap();
    assert_eq!(got, pattern(0, 0, 8192));
    r.checker_clean();
}
