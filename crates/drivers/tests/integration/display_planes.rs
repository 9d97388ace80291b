//! A CRTC with several planes: one atomic commit flips every plane it names at one vblank (all
//! or none), each plane's old framebuffer released at the vblank that latches its replacement.

use crate::pipeline::{boot, checker_clean, small};
use drivers::display::{AtomicCommit, Display, DisplayConfig, Expect, FbId, PlaneSet};
use drivers::frame;
use fence::SimpleFenceOps;
use uapi::{AsErrno, Errno};

/// A CMA-heap buffer holding frame `n` of the small format, written by the CPU.
fn frame_buf(kernel: &std::sync::Arc<kernel::Kernel>, n: u32) -> dmabuf::DmaBuf {
    let fmt = small();
    let heap = kernel.heap("cma0").unwrap();
    let buf = heap
        .allocate(
            soc::align_up(fmt.size() as u64, 4096).unwrap(),
            uapi::ioctl::O_RDWR,
            0,
        )
        .unwrap();
    let m = buf.mmap(0, fmt.size() as u64, true).unwrap();
    buf.begin_cpu_access(dma::DmaDirection::ToDevice).unwrap();
    m.write(0, &frame::pattern(fmt, n)).unwrap();
    buf.end_cpu_access(dma::DmaDirection::ToDevice).unwrap();
    buf
}

fn two_planes(kernel: &std::sync::Arc<kernel::Kernel>) -> (Display, Vec<FbId>) {
    let cfg = DisplayConfig {
        planes: 2,
        ..DisplayConfig::new(small())
    };
    let d = Display::new(kernel.dma(), cfg).unwrap();
    let fbs = (0..4)
        .map(|i| d.add_fb(&frame_buf(kernel, i)).unwrap())
        .collect();
    (d, fbs)
}

#[test]
fn one_commit_flips_both_planes_at_one_vblank_and_releases_each_old_frame_then() {
    let kernel = boot();
    let (d, fb) = two_planes(&kernel);
    assert_eq!(d.planes(), 2);
    let mut c = AtomicCommit::default();
    c.set(0, fb[0], Expect::Frame(0))
        .set(1, fb[1], Expect::Frame(1));
    let out = d.atomic_commit(&c, None).unwrap();
    let l = d.latch().unwrap();
    let planes: Vec<_> = l.scanouts.iter().map(|s| (s.plane, s.fb)).collect();
    assert_eq!(
        planes,
        vec![(0, fb[0]), (1, fb[1])],
        "one scanout per plane"
    );
    assert!(
        out.is_signaled(),
        "one out-fence for the commit, at its vblank"
    );
    for s in l.scanouts {
        let fx = s.job.execute(kernel.dma());
        assert_eq!(d.scanned(s.expect, &fx), Some(true));
    }
    // The overlay alone: the primary keeps its frame, the overlay's old one is released.
    let mut c = AtomicCommit::default();
    c.set(1, fb[2], Expect::Frame(2));
    d.atomic_commit(&c, None).unwrap();
    assert_eq!(d.plane_fb(1), Some(fb[1]), "not before the vblank");
    let v = d.vblank().unwrap();
    assert_eq!((v.shown, v.verified), (Some(fb[2]), Some(true)));
    assert_eq!(v.released, vec![fb[1]]);
    assert_eq!((d.plane_fb(0), d.plane_fb(1)), (Some(fb[0]), Some(fb[2])));
    // A legacy page flip moves the primary plane only.
    d.page_flip(fb[3], None, Expect::Frame(3)).unwrap();
    let v = d.vblank().unwrap();
    assert_eq!(v.released, vec![fb[0]]);
    assert_eq!((d.plane_fb(0), d.plane_fb(1)), (Some(fb[3]), Some(fb[2])));
    d.disable();
    for f in fb {
        d.rm_fb(f).unwrap();
    }
    checker_clean(&kernel);
}

#[test]
fn a_commit_waits_for_every_planes_fence_and_flips_none_before() {
    let kernel = boot();
    let (d, fb) = two_planes(&kernel);
    let mut c = AtomicCommit::default();
    c.set(0, fb[0], Expect::Frame(0));
    d.atomic_commit(&c, None).unwrap();
    d.vblank().unwrap();
    // fb[1]'s writer has not signaled: the commit of both planes waits whole.
    let ctx = fence::context_alloc(1).unwrap();
    let writer = SimpleFenceOps::create("test", "render", ctx, 1);
    let overlay_buf = frame_buf(&kernel, 1);
    let ov = d.add_fb(&overlay_buf).unwrap();
    {
        let mut g = overlay_buf.resv().lock(None).unwrap();
        g.reserve_fences(1).unwrap();
        g.add_fence(&writer, fence::DmaResvUsage::Write).unwrap();
    }
    let mut c = AtomicCommit::default();
    c.set(0, fb[2], Expect::Frame(2))
        .set(1, ov, Expect::Frame(1));
    let out = d.atomic_commit(&c, None).unwrap();
    let v = d.vblank().unwrap();
    assert_eq!(v.shown, None, "neither plane flips");
    assert_eq!((d.plane_fb(0), d.plane_fb(1)), (Some(fb[0]), None));
    assert!(!out.is_signaled());
    writer.signal().unwrap();
    let v = d.vblank().unwrap();
    assert_eq!(v.verified, Some(true));
    assert_eq!(v.released, vec![fb[0]]);
    assert_eq!((d.plane_fb(0), d.plane_fb(1)), (Some(fb[2]), Some(ov)));
    assert!(out.is_signaled());
    d.disable();
    checker_clean(&kernel);
}

#[test]
fn bad_commits_get_the_kernels_errno_and_a_plane_named_twice_takes_its_last_entry() {
    let kernel = boot();
    let (d, fb) = two_planes(&kernel);
    let errno = |c: &AtomicCommit| d.atomic_commit(c, None).unwrap_err().errno();
    let mut c = AtomicCommit::default();
    c.set(2, fb[0], Expect::Stamp);
    assert_eq!(errno(&c), Errno::ENOENT, "no plane 2");
    let mut c = AtomicCommit::default();
    c.set(0, 999, Expect::Stamp);
    assert_eq!(errno(&c), Errno::ENOENT, "no framebuffer 999");
    let c = AtomicCommit {
        planes: vec![PlaneSet {
            plane: 1,
            fb: fb[0],
            src: Some((65, 48)),
            expect: Expect::Stamp,
        }],
    };
    assert_eq!(
        errno(&c),
        Errno::ENOSPC,
        "a source wider than the framebuffer"
    );
    assert_eq!(d.stats().flips, 0, "nothing queued");
    // drm_mode_atomic_ioctl sets a property given twice twice: the last value counts.
    let mut c = AtomicCommit::default();
    c.set(0, fb[0], Expect::Frame(0))
        .set(0, fb[1], Expect::Frame(1));
    d.atomic_commit(&c, None).unwrap();
    let v = d.vblank().unwrap();
    assert_eq!((v.shown, v.verified), (Some(fb[1]), Some(true)));
    assert_eq!(d.plane_fb(0), Some(fb[1]));
    // One commit pending at a time.
    let mut c = AtomicCommit::default();
    c.set(1, fb[2], Expect::Frame(2));
    d.atomic_commit(&c, None).unwrap();
    assert_eq!(errno(&c), Errno::EBUSY);
    d.disable();
    checker_clean(&kernel);
}
