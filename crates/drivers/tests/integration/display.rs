//! The display's contract: contiguous scanout without an IOMMU, flips that wait on fences,
//! every shown frame read and verified, busy framebuffers kept.

use crate::pipeline::{boot, boot_with, checker_clean, qvga, small};
use dma::DmaDirection;
use drivers::display::{Display, DisplayConfig, Expect};
use drivers::frame;
use drivers::media::MediaError;
use fence::SimpleFenceOps;
use kernel::UdmabufItem;
use uapi::{AsErrno, Errno};

/// A CMA-heap buffer holding `frame` of `fmt`, written by the CPU with the sync bracket.
fn cma_frame(
    kernel: &std::sync::Arc<kernel::Kernel>,
    fmt: drivers::frame::FrameFormat,
    n: u32,
) -> dmabuf::DmaBuf {
    let heap = kernel.heap("cma0").unwrap();
    let buf = heap
        .allocate(
            soc::align_up(fmt.size() as u64, 4096).unwrap(),
            uapi::ioctl::O_RDWR,
            0,
        )
        .unwrap();
    let m = buf.mmap(0, fmt.size() as u64, true).unwrap();
    buf.begin_cpu_access(DmaDirection::ToDevice).unwrap();
    m.write(0, &frame::pattern(fmt, n)).unwrap();
    buf.end_cpu_access(DmaDirection::ToDevice).unwrap();
    buf
}

#[test]
fn display_shows_and_verifies_frames_and_releases_the_replaced_one() {
    let kernel = boot();
    let fmt = small();
    let d = Display::new(kernel.dma(), DisplayConfig::new(fmt)).unwrap();
    let a = d.add_fb(&cma_frame(&kernel, fmt, 1)).unwrap();
    let b = d.add_fb(&cma_frame(&kernel, fmt, 2)).unwrap();
    d.page_flip(a, None, Expect::Frame(1)).unwrap();
    let v = d.vblank().unwrap();
    assert_eq!(
        (v.shown, v.verified, v.released.clone()),
        (Some(a), Some(true), vec![])
    );
    assert_eq!(d.rm_fb(a).unwrap_err().errno(), Errno::EBUSY);
    d.page_flip(b, None, Expect::Frame(7)).unwrap();
    let v = d.vblank().unwrap();
    assert_eq!(
        (v.shown, v.verified, v.released),
        (Some(b), Some(false), vec![a])
    );
    let v = d.vblank().unwrap();
    assert_eq!(v.shown, None, "nothing queued: the frame stays");
    let s = d.stats();
    assert_eq!((s.shown, s.verified, s.corrupted, s.vblanks), (2, 1, 1, 3));
    d.rm_fb(a).unwrap();
    checker_clean(&kernel);
}

#[test]
fn page_flip_waits_for_its_in_fence_and_drops_on_a_fence_error() {
    let kernel = boot();
    let fmt = small();
    let d = Display::new(kernel.dma(), DisplayConfig::new(fmt)).unwrap();
    let a = d.add_fb(&cma_frame(&kernel, fmt, 1)).unwrap();
    let b = d.add_fb(&cma_frame(&kernel, fmt, 2)).unwrap();
    let ctx = fence::context_alloc(1).unwrap();
    let f1 = SimpleFenceOps::create("test", "render", ctx, 1);
    let out = d.page_flip(a, Some(f1.clone()), Expect::Stamp).unwrap();
    assert_eq!(d.vblank().unwrap().shown, None);
    assert_eq!(d.stats().missed, 1);
    assert!(!out.is_signaled());
    f1.signal().unwrap();
    assert_eq!(d.vblank().unwrap().shown, Some(a));
    assert!(out.is_signaled());
    let f2 = SimpleFenceOps::create("test", "render", ctx, 2);
    f2.set_error(Errno::EIO).unwrap();
    f2.signal().unwrap();
    let out = d.page_flip(b, Some(f2), Expect::Stamp).unwrap();
    let v = d.vblank().unwrap();
    assert_eq!((v.shown, v.released), (None, vec![b]));
    assert_eq!(out.error(), Some(Errno::EIO));
    assert_eq!(d.stats().dropped, 1);
    assert_eq!(d.scanout(), Some(a));
    checker_clean(&kernel);
}

#[test]
fn display_without_iommu_refuses_scattered_memory_and_accepts_it_behind_an_iommu() {
    for with_iommu in [false, true] {
        let kernel = if with_iommu {
            boot_with("display0", |d| d.iommu = Some("smmu0".into()))
        } else {
            // A 32-bit mask, so that the memfd's pages are reachable and only the layout is
            // wrong.
            boot_with("display0", |d| d.dma_mask_bits = 32)
        };
        let dma = kernel.dma();
        let fmt = qvga();
        // A udmabuf of the first and last thirds of a memfd: two physical runs with a hole
        // between them, whatever the page allocator did.
        let p = kernel.spawn();
        let mfd = p
            .memfd_create("frames", uapi::ioctl::MFD_ALLOW_SEALING)
            .unwrap();
        let half = 16 * 4096;
        p.ftruncate(mfd, 3 * half).unwrap();
        p.add_seals(mfd, uapi::ioctl::F_SEAL_SHRINK).unwrap();
        // Fault the thirds in with another allocation in between.
        p.pwrite(mfd, 0, &vec![1u8; half as usize]).unwrap();
        let spacer = drivers::media::heap_fd(&p, "system", half).unwrap();
        p.pwrite(mfd, 2 * half, &vec![2u8; half as usize]).unwrap();
        let items = [
            UdmabufItem {
                memfd: mfd,
                offset: 0,
                size: half,
            },
            UdmabufItem {
                memfd: mfd,
                offset: 2 * half,
                size: half,
            },
        ];
        let fd = p.udmabuf_create_list(0, &items).unwrap();
        let buf = p.get_dma_buf(fd).unwrap();
        let d = Display::new(dma, DisplayConfig::new(fmt)).unwrap();
        let r = d.add_fb(&buf);
        if with_iommu {
            r.unwrap();
        } else {
            let e = r.unwrap_err();
            assert!(matches!(e, MediaError::NotContiguous { .. }), "{e}");
            assert_eq!(e.errno(), Errno::EINVAL);
            assert!(e.to_string().contains("display0"), "{e}");
            assert!(buf.attachments().is_empty(), "the display detached");
        }
        drop(d);
        p.close(spacer).unwrap();
    }
}

#[test]
fn display_refuses_a_buffer_smaller_than_a_frame() {
    let kernel = boot();
    let d = Display::new(kernel.dma(), DisplayConfig::new(qvga())).unwrap();
    let buf = cma_frame(&kernel, small(), 0);
    assert_eq!(d.add_fb(&buf).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        d.page_flip(99, None, Expect::Stamp).unwrap_err().errno(),
        Errno::ENOENT
    );
    assert_eq!(d.rm_fb(99).unwrap_err().errno(), Errno::ENOENT);
}

/// A kernel on the default SoC whose clock is `t`.
fn boot_on(t: &std::sync::Arc<clock::VirtualClock>) -> std::sync::Arc<kernel::Kernel> {
    let soc = soc::Soc::with_clock(soc::SocDesc::default_soc(), t.clone()).unwrap();
    kernel::Kernel::new(std::sync::Arc::new(dma::DmaApi::new(&soc)))
}

#[test]
fn flip_fences_are_numbered_and_stamped_by_their_own_machine() {
    let (t1, t2) = (clock::VirtualClock::shared(), clock::VirtualClock::shared());
    let (k1, k2) = (boot_on(&t1), boot_on(&t2));
    let fmt = small();
    let (d1, d2) = (
        Display::new(k1.dma(), DisplayConfig::new(fmt)).unwrap(),
        Display::new(k2.dma(), DisplayConfig::new(fmt)).unwrap(),
    );
    let fb1 = d1.add_fb(&cma_frame(&k1, fmt, 1)).unwrap();
    let fb2 = d2.add_fb(&cma_frame(&k2, fmt, 1)).unwrap();
    let f1 = d1.page_flip(fb1, None, Expect::Frame(1)).unwrap();
    let f2 = d2.page_flip(fb2, None, Expect::Frame(1)).unwrap();
    // Each machine hands out its own contexts: the same display on two fresh machines gets the
    // same number (a process-wide counter would give the second one a later context).
    assert_eq!(f1.context(), f2.context());
    assert_eq!(f1.context(), 1, "the first timeline of a fresh machine");
    // Signalled at a vblank, each fence carries its own machine's time.
    t1.advance(std::time::Duration::from_millis(5));
    t2.advance(std::time::Duration::from_millis(9));
    d1.vblank().unwrap();
    d2.vblank().unwrap();
    use clock::Clock;
    assert_eq!(f1.timestamp_ns(), Some(t1.now_ns()));
    assert_eq!(f2.timestamp_ns(), Some(t2.now_ns()));
    assert_eq!(
        t2.now_ns() - t1.now_ns(),
        4_000_000,
        "two clocks, four milliseconds apart"
    );
}

#[test]
fn scanout_is_a_job_the_caller_runs_in_pieces_and_the_display_judges() {
    let kernel = boot();
    let fmt = small();
    let d = Display::new(kernel.dma(), DisplayConfig::new(fmt)).unwrap();
    let good = cma_frame(&kernel, fmt, 3);
    let a = d.add_fb(&good).unwrap();
    let want = frame::pattern(fmt, 3);
    let sum = frame::checksum(&want[frame::STAMP_LEN..]);
    let pool = drivers::job::Pool::new(2);
    let dma = kernel.dma().clone();
    // Exact: frame 3 with its producer's checksum verifies; the wrong number does not.
    for (expect, ok) in [
        (
            Expect::Exact {
                frame: 3,
                checksum: sum,
            },
            true,
        ),
        (
            Expect::Exact {
                frame: 4,
                checksum: sum,
            },
            false,
        ),
        (Expect::Checksum(sum), true),
        (Expect::Checksum(sum ^ 1), false),
        (Expect::Frame(3), true),
        (Expect::Stamp, true),
    ] {
        d.page_flip(a, None, expect).unwrap();
        let l = d.latch().unwrap();
        assert_eq!(l.vblank.shown, Some(a));
        assert_eq!(l.vblank.verified, None, "judged after the job");
        let s = l.scanouts.into_iter().next().expect("a flip latched");
        assert_eq!(s.job.bytes(), (fmt.size() as u64, 0));
        assert_eq!(s.job.cost(d.device()), l.vblank.cost);
        let fx = s.job.execute_on(&dma, &pool);
        assert_eq!(d.scanned(s.expect, &fx), Some(ok), "{expect:?}");
    }
    // One byte of the body changed behind the stamp's back: every kind of check fires.
    let m = good.mmap(0, fmt.size() as u64, true).unwrap();
    good.begin_cpu_access(DmaDirection::ToDevice).unwrap();
    m.write(fmt.size() as u64 - 1, &[want[fmt.size() - 1] ^ 0x5a])
        .unwrap();
    good.end_cpu_access(DmaDirection::ToDevice).unwrap();
    for expect in [
        Expect::Exact {
            frame: 3,
            checksum: sum,
        },
        Expect::Checksum(sum),
        Expect::Frame(3),
        Expect::Stamp,
    ] {
        d.page_flip(a, None, expect).unwrap();
        let s = d.latch().unwrap().scanouts.into_iter().next().unwrap();
        let fx = s.job.execute_on(&dma, &pool);
        assert_eq!(d.scanned(s.expect, &fx), Some(false), "{expect:?}");
    }
    let st = d.stats();
    assert_eq!((st.shown, st.verified, st.corrupted), (10, 4, 6));
    assert_eq!(st.bytes_read, 10 * fmt.size() as u64);
    drop(m);
    drop(d);
    checker_clean(&kernel);
}

#[test]
fn a_second_flip_while_one_is_pending_is_ebusy_and_framebuffers_are_counted() {
    let kernel = boot();
    let fmt = small();
    let d = Display::new(kernel.dma(), DisplayConfig::new(fmt)).unwrap();
    let a = d.add_fb(&cma_frame(&kernel, fmt, 1)).unwrap();
    let b = d.add_fb(&cma_frame(&kernel, fmt, 2)).unwrap();
    d.page_flip(a, None, Expect::Frame(1)).unwrap();
    let e = d.page_flip(b, None, Expect::Frame(2)).unwrap_err();
    assert_eq!(e.errno(), Errno::EBUSY, "{e}");
    assert_eq!(d.stats().flips, 1, "the refused flip is not queued");
    assert_eq!(d.vblank().unwrap().shown, Some(a));
    // Latched: the next flip is accepted.
    d.page_flip(b, None, Expect::Frame(2)).unwrap();
    assert_eq!(d.vblank().unwrap().released, vec![a]);
    d.rm_fb(a).unwrap();
    let s = d.stats();
    assert_eq!((s.fbs_created, s.fbs_removed, s.verified), (2, 1, 2));
    drop(d);
    checker_clean(&kernel);
}

#[test]
fn add_fb2_scans_out_exactly_the_planes_its_pitches_and_offsets_name() {
    use drivers::display::FbCmd2;
    let kernel = boot();
    let fmt = small();
    let d = Display::new(kernel.dma(), DisplayConfig::new(fmt)).unwrap();
    // The frame at offset 4096 of a bigger buffer: the packed layout at offset 0 reads the
    // wrong bytes, the one with the planes' real offsets verifies.
    let heap = kernel.heap("cma0").unwrap();
    let size = soc::align_up(fmt.size() as u64 + 8192, 4096).unwrap();
    let buf = heap.allocate(size, uapi::ioctl::O_RDWR, 0).unwrap();
    let m = buf.mmap(0, size, true).unwrap();
    buf.begin_cpu_access(DmaDirection::ToDevice).unwrap();
    m.write(4096, &frame::pattern(fmt, 5)).unwrap();
    buf.end_cpu_access(DmaDirection::ToDevice).unwrap();
    let packed = FbCmd2::packed("NV12", fmt.width, fmt.height).unwrap();
    let mut moved = packed;
    moved.offsets[0] += 4096;
    moved.offsets[1] += 4096;
    for (cmd, ok) in [(packed, false), (moved, true)] {
        let fb = d.add_fb2(&buf, &cmd).unwrap();
        d.page_flip(fb, None, Expect::Frame(5)).unwrap();
        assert_eq!(d.vblank().unwrap().verified, Some(ok), "{cmd:?}");
    }
    // A pitch below the width is the kernel's EINVAL, nothing attached for it.
    let mut bad = packed;
    bad.pitches[0] = fmt.width - 2;
    let atts = buf.attachments().len();
    assert_eq!(d.add_fb2(&buf, &bad).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(buf.attachments().len(), atts);
    drop(m);
    drop(d);
    checker_clean(&kernel);
}

#[test]
fn an_explicit_in_fence_overrules_the_buffers_implicit_write_fence() {
    let kernel = boot();
    let fmt = small();
    let d = Display::new(kernel.dma(), DisplayConfig::new(fmt)).unwrap();
    let buf = cma_frame(&kernel, fmt, 1);
    let a = d.add_fb(&buf).unwrap();
    let ctx = fence::context_alloc(2).unwrap();
    // A writer's fence in the reservation object that never signals (implicit sync).
    let writer = SimpleFenceOps::create("test", "render", ctx, 1);
    {
        let mut g = buf.resv().lock(None).unwrap();
        g.reserve_fences(1).unwrap();
        g.add_fence(&writer, fence::DmaResvUsage::Write).unwrap();
    }
    // Implicit: the flip waits for it.
    d.page_flip(a, None, Expect::Frame(1)).unwrap();
    assert_eq!(d.vblank().unwrap().shown, None);
    assert_eq!(d.stats().missed, 1);
    assert_eq!(d.disable(), vec![a], "the pending flip dropped");
    // Explicit (IN_FENCE_FD): only its in-fence and KERNEL fences count.
    let acquire = SimpleFenceOps::create("test", "acquire", ctx + 1, 1);
    acquire.signal().unwrap();
    d.page_flip(a, Some(acquire), Expect::Frame(1)).unwrap();
    let v = d.vblank().unwrap();
    assert_eq!((v.shown, v.verified), (Some(a), Some(true)));
    writer.signal().unwrap();
    drop(d);
    checker_clean(&kernel);
}

#[test]
fn a_cancelled_flip_leaves_the_frame_on_screen_until_the_next_latch_releases_it() {
    let kernel = boot();
    let fmt = small();
    let d = Display::new(kernel.dma(), DisplayConfig::new(fmt)).unwrap();
    let (buf_a, buf_b) = (cma_frame(&kernel, fmt, 1), cma_frame(&kernel, fmt, 2));
    let (a, b) = (d.add_fb(&buf_a).unwrap(), d.add_fb(&buf_b).unwrap());
    d.page_flip(a, None, Expect::Frame(1)).unwrap();
    assert_eq!(d.vblank().unwrap().shown, Some(a));
    // B's writer never signals in time: its flip misses the vblank and is cancelled.
    let ctx = fence::context_alloc(1).unwrap();
    let writer = SimpleFenceOps::create("test", "render", ctx, 1);
    {
        let mut g = buf_b.resv().lock(None).unwrap();
        g.reserve_fences(1).unwrap();
        g.add_fence(&writer, fence::DmaResvUsage::Write).unwrap();
    }
    let out = d.page_flip(b, None, Expect::Frame(2)).unwrap();
    assert_eq!(d.vblank().unwrap().shown, None);
    assert_eq!(d.cancel_flips(), vec![b], "the pending flip dropped");
    assert_eq!(out.error(), Some(Errno::ECANCELED));
    assert_eq!(d.scanout(), Some(a), "the old frame stays on screen");
    assert_eq!(d.queued_flips(), 0);
    // The next flip that latches releases it.
    writer.signal().unwrap();
    d.page_flip(b, None, Expect::Frame(2)).unwrap();
    let v = d.vblank().unwrap();
    assert_eq!((v.shown, v.released), (Some(b), vec![a]));
    drop(d);
    checker_clean(&kernel);
}
