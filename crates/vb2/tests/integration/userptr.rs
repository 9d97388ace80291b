//! USERPTR (testUserPtr): pinning, bad pointers, data through real DMA, the guard check.

use crate::*;

const U: u32 = V4L2_MEMORY_USERPTR;

fn uptr(r: &Rig, index: u32, ptr: u64, len: u32) -> V4l2Buffer {
    let mut b = r.buf(U, index);
    b.m_userptr = ptr;
    b.length = len;
    b
}

#[test]
fn test_userptr_null_and_bad_pointers_fail_good_ones_work() {
    let r = Rig::capture();
    r.reqbufs(U, 2).unwrap();
    assert_eq!(
        errno(r.fh.prepare_buf(&mut uptr(&r, 0, 0, 8192))),
        Errno::EFAULT
    );
    assert_eq!(
        errno(r.fh.qbuf(&mut uptr(&r, 0, 0xdead_0000, 8192))),
        Errno::EFAULT
    );
    let small = r.user.mmap_anon(4096).unwrap();
    assert_eq!(
        errno(r.fh.qbuf(&mut uptr(&r, 0, small, 8192))),
        Errno::EFAULT,
        "past the end"
    );
    let ptr = r.user.mmap_anon(8192).unwrap();
    assert_eq!(
        errno(r.fh.qbuf(&mut uptr(&r, 0, ptr, 4096))),
        Errno::EINVAL,
        "below min"
    );
    r.fh.qbuf(&mut uptr(&r, 0, ptr, 8192)).unwrap();
    r.fh.close();
    r.balanced();
    r.checker_clean();
}

#[test]
fn test_userptr_capture_data_reaches_user_memory_within_bounds() {
    let r = Rig::capture();
    r.reqbufs(U, 1).unwrap();
    // The buffer sits 64 bytes into a mapping, with canaries around it.
    let base = r.user.mmap_anon(3 * 4096).unwrap();
    r.user.write(base, &[0x5a; 3 * 4096]).unwrap();
    let ptr = base + 64;
    r.fh.streamon(r.t()).unwrap();
    for frame in 0..3 {
        r.fh.qbuf(&mut uptr(&r, 0, ptr, 8192)).unwrap();
        r.dqbuf(U).unwrap();
        let mut got = vec![0u8; 8192];
        r.user.read(ptr, &mut got).unwrap();
        assert_eq!(got, pattern(frame, 0, 8192));
    }
    let mut canary = [0u8; 64];
    r.user.read(base, &mut canary).unwrap();
    assert_eq!(canary, [0x5a; 64]);
    r.user.read(ptr + 8192, &mut canary).unwrap();
    assert_eq!(canary, [0x5a; 64]);
    let s = r.q.counters().snapshot();
    assert_eq!(
        (s.get_userptr, s.alloc),
        (1, 0),
        "the same pointer and length are pinned once (vb2 allocates nothing)"
    );
    r.fh.close();
    r.balanced();
    r.checker_clean();
}

#[test]
fn test_userptr_driver_overrun_is_caught() {
    let r = Rig::capture();
    r.drv.auto.store(false, Ordering::Relaxed);
    r.reqbufs(U, 1).unwrap();
    let ptr = r.user.mmap_anon(8192).unwrap();
    r.fh.qbuf(&mut uptr(&r, 0, ptr, 8192)).unwrap();
    r.fh.streamon(r.t()).unwrap();
    let vb = r.drv.held.lock()[0].clone();
    let e = vb.dma_write(&r.dma, 0, 8190, &[1, 2, 3, 4]).unwrap_err();
    assert_eq!(e.errno(), Errno::EFAULT);
    vb.dma_write(&r.dma, 0, 8188, &[1, 2, 3, 4]).unwrap();
    r.fh.close();
    r.balanced();
}

#[test]
fn test_userptr_new_pointer_repins_with_cleanup_and_init() {
    let r = Rig::capture();
    r.reqbufs(U, 1).unwrap();
    let (a, b) = (
        r.user.mmap_anon(8192).unwrap(),
        r.user.mmap_anon(8192).unwrap(),
    );
    r.fh.prepare_buf(&mut uptr(&r, 0, a, 8192)).unwrap();
    r.fh.streamoff(r.t()).unwrap();
    r.fh.prepare_buf(&mut uptr(&r, 0, b, 8192)).unwrap();
    let s = r.q.counters().snapshot();
    assert_eq!(
        (s.get_userptr, s.put_userptr, s.buf_init, s.buf_cleanup),
        (2, 1, 2, 1)
    );
    // Pinned pages outlive an munmap by the application.
    r.user.munmap(b).unwrap();
    r.fh.streamon(r.t()).unwrap();
    let mut q = r.buf(U, 0);
    r.fh.qbuf(&mut q).unwrap();
    r.dqbuf(U).unwrap();
    r.fh.close();
    r.balanced();
    r.checker_clean();
}

/// A capture queue writing into a shared memfd mapping (the userptr a pipeline also exports as
/// a udmabuf): the device's bytes land in the memfd's page cache, the pages stay pinned while
/// queued (a write seal is `EBUSY`), and a pointer past the end of the file faults.
#[test]
fn test_userptr_into_a_memfd_mapping_reaches_the_file_and_pins_its_pages() {
    use uapi::ioctl::{F_SEAL_WRITE, MFD_ALLOW_SEALING};
    let r = Rig::capture();
    r.reqbufs(U, 1).unwrap();
    let memfd = kernel::Memfd::create(r.dma.soc(), "frames", MFD_ALLOW_SEALING).unwrap();
    memfd.ftruncate(8192).unwrap();
    let ptr = r.user.mmap_memfd(&memfd, 0, 8192).unwrap();
    // Past the end of the mapping: EFAULT, nothing pinned.
    assert_eq!(
        errno(r.fh.qbuf(&mut uptr(&r, 0, ptr + 4096, 8192))),
        Errno::EFAULT
    );
    r.fh.streamon(r.t()).unwrap();
    for frame in 0..2 {
        r.fh.qbuf(&mut uptr(&r, 0, ptr, 8192)).unwrap();
        r.dqbuf(U).unwrap();
        let got = memfd.pread(0, 8192).unwrap();
        assert_eq!(got, pattern(frame, 0, 8192), "frame {frame} in the file");
        let mut via_map = vec![0u8; 8192];
        r.user.read(ptr, &mut via_map).unwrap();
        assert_eq!(via_map, got);
    }
    // The application unmaps; vb2 still holds the pinned pages (until REQBUFS(0) or close),
    // so the write seal waits for pins: EBUSY.
    r.user.munmap(ptr).unwrap();
    let e = memfd.add_seals(F_SEAL_WRITE).unwrap_err();
    assert_eq!(uapi::AsErrno::errno(&e), Errno::EBUSY);
    r.fh.close();
    r.balanced();
    r.checker_clean();
    // Unpinned and unmapped: the seal is taken, and the bytes stay in the file.
    memfd.add_seals(F_SEAL_WRITE).unwrap();
    assert_eq!(memfd.pread(0, 8192).unwrap(), pattern(1, 0, 8192));
}
