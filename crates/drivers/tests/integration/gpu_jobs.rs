//! Jobs: input fences, output fences, implicit sync, real bytes.

use super::*;
use drivers::gpu::{checksum, BoDesc, GpuConfig, GpuError, GpuVm, Job};
use fence::{context_alloc, FenceStatus, SimpleFenceOps};
use uapi::{AsErrno, Errno};

/// An NV12 frame: `w * h` luma bytes, then `w * h / 2` interleaved chroma bytes.
fn nv12(w: usize, h: usize, seed: u64) -> Vec<u8> {
    let mut f = pattern(seed, w * h * 3 / 2);
    for (i, b) in f[..w * h].iter_mut().enumerate() {
        *b = (*b / 2).wrapping_add((i % w) as u8 / 2); // a luma ramp with noise
    }
    f
}

const W: usize = 320;
const H: usize = 240;
const FRAME: u64 = (W * H * 3 / 2) as u64;

fn gate() -> fence::DmaFence {
    SimpleFenceOps::create("camera", "frames", context_alloc(1).unwrap(), 1)
}

#[test]
fn a_job_waits_on_its_input_fence_and_signals_its_output_fence_verified_by_checksum() {
    let (dma, gpu) = setup(8, RingMode::Thread);
    let vm = GpuVm::new(&gpu, "compositor");
    let src = gpu.create_bo(BoDesc::vram("camera-frame", FRAME)).unwrap();
    let dst = gpu.create_bo(BoDesc::vram("inverted", FRAME)).unwrap();
    let frame = nv12(W, H, 1);
    src.write(0, &frame).unwrap();

    let input = gate();
    let out = gpu
        .submit(&vm, Job::invert(&src, &dst).after(input.clone()))
        .unwrap();
    assert_eq!(out.driver_name(), "gpu0");
    std::thread::sleep(Duration::from_millis(20));
    assert!(!out.is_signaled(), "the job waits for its input fence");
    input.signal().unwrap();
    out.wait(None).unwrap();
    assert_eq!(out.status(), FenceStatus::Signaled);

    let mut got = vec![0u8; FRAME as usize];
    dst.read(0, &mut got).unwrap();
    let want: Vec<u8> = frame.iter().map(|b| !b).collect();
    assert_eq!(checksum(&got[..FRAME as usize]), checksum(&want));
    assert_eq!(gpu.ring_stats().completed, 1);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_manual_ring_runs_a_job_only_once_its_input_has_signaled() {
    let (dma, gpu) = setup(8, RingMode::Manual);
    let vm = GpuVm::new(&gpu, "p");
    let a = gpu.create_bo(BoDesc::vram("a", FRAME)).unwrap();
    let input = gate();
    let f1 = gpu
        .submit(&vm, Job::fill(&a, 0x11).after(input.clone()))
        .unwrap();
    let f2 = gpu.submit(&vm, Job::fill(&a, 0x22)).unwrap();
    assert!(f2.is_later(&f1), "one timeline, increasing seqnos");
    assert_eq!(
        gpu.run_pending(),
        0,
        "the head job is blocked, and the ring is in order"
    );
    input.signal().unwrap();
    assert_eq!(gpu.run_pending(), 2);
    assert!(f1.is_signaled() && f2.is_signaled());
    let mut got = vec![0u8; 64];
    a.read(0, &mut got).unwrap();
    assert!(got.iter().all(|&b| b == 0x22));
    assert_eq!(dma.checker().total(), 0);
}

#[test]
fn implicit_sync_orders_a_reader_after_the_writer_through_the_resv() {
    let (dma, gpu) = setup(8, RingMode::Thread);
    let vm = GpuVm::new(&gpu, "p");
    let (a, b, c) = (
        gpu.create_bo(BoDesc::vram("a", FRAME)).unwrap(),
        gpu.create_bo(BoDesc::vram("b", FRAME)).unwrap(),
        gpu.create_bo(BoDesc::gtt("c", FRAME)).unwrap(),
    );
    let frame = nv12(W, H, 2);
    a.write(0, &frame).unwrap();
    let input = gate();
    // Writer of b waits on the gate; the reader of b has no explicit fence at all.
    let w = gpu
        .submit(&vm, Job::copy(&a, &b).after(input.clone()))
        .unwrap();
    assert!(!b.resv().test_signaled(DmaResvUsage::Write));
    let r = gpu.submit(&vm, Job::copy(&b, &c)).unwrap();
    input.signal().unwrap();
    r.wait(None).unwrap();
    assert!(w.is_signaled());
    let mut got = vec![0u8; FRAME as usize];
    c.read(0, &mut got).unwrap();
    assert_eq!(checksum(&got), checksum(&frame), "c saw the writer's bytes");
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_failed_input_fence_cancels_the_job_and_its_fence_carries_the_error() {
    let (dma, gpu) = setup(8, RingMode::Thread);
    let vm = GpuVm::new(&gpu, "p");
    let dst = gpu.create_bo(BoDesc::vram("dst", BO)).unwrap();
    let input = gate();
    input.set_error(Errno::EIO).unwrap();
    input.signal().unwrap();
    let f = gpu.submit(&vm, Job::fill(&dst, 0xff).after(input)).unwrap();
    let err = gpu.wait_idle(&f).unwrap_err();
    assert_eq!(err.errno(), Errno::ECANCELED);
    assert_eq!(f.status(), FenceStatus::Error(Errno::ECANCELED));
    let mut got = vec![1u8; 64];
    dst.read(0, &mut got).unwrap();
    assert!(got.iter().all(|&b| b == 0), "bytes untouched");
    assert_eq!(gpu.ring_stats().failed, 1);
    assert_eq!(dma.checker().total(), 0);
}

#[test]
fn blend_composites_two_nv12_frames_as_the_cpu_would() {
    let (dma, gpu) = setup(8, RingMode::Manual);
    let vm = GpuVm::new(&gpu, "compositor");
    let (a, b, out) = (
        gpu.create_bo(BoDesc::vram("a", FRAME)).unwrap(),
        gpu.create_bo(BoDesc::gtt("b", FRAME)).unwrap(),
        gpu.create_bo(BoDesc::vram("out", FRAME)).unwrap(),
    );
    let (fa, fb) = (nv12(W, H, 3), nv12(W, H, 4));
    a.write(0, &fa).unwrap();
    b.write(0, &fb).unwrap();
    let f = gpu.submit(&vm, Job::blend(&a, &b, &out, 64)).unwrap();
    gpu.wait_idle(&f).unwrap();
    let want: Vec<u8> = fa
        .iter()
        .zip(&fb)
        .map(|(&x, &y)| ((u32::from(x) * 191 + u32::from(y) * 64 + 127) / 255) as u8)
        .collect();
    let mut got = vec![0u8; FRAME as usize];
    out.read(0, &mut got).unwrap();
    assert_eq!(checksum(&got), checksum(&want));
    // A partial blit: the second half of the luma of `a` into the start of `out`.
    let half = (W * H / 2) as u64;
    let f = gpu.submit(&vm, Job::blit(&a, half, &out, 0, half)).unwrap();
    gpu.wait_idle(&f).unwrap();
    out.read(0, &mut got).unwrap();
    assert_eq!(&got[..half as usize], &fa[half as usize..2 * half as usize]);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn bad_jobs_are_refused_with_einval() {
    let (dma, gpu) = setup(8, RingMode::Thread);
    let vm = GpuVm::new(&gpu, "p");
    let a = gpu.create_bo(BoDesc::vram("a", BO)).unwrap();
    let b = gpu.create_bo(BoDesc::vram("b", BO)).unwrap();
    let e = gpu
        .submit(&vm, Job::blit(&a, BO - 8, &b, 0, 16))
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL, "{e}");
    let e = gpu
        .submit(&vm, Job::blit(&a, u64::MAX, &b, 0, 16))
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL, "{e}");
    let other = Gpu::new(&dma, GpuConfig::default()).unwrap();
    let theirs = other.create_bo(BoDesc::vram("theirs", BO)).unwrap();
    assert!(matches!(
        gpu.submit(&vm, Job::copy(&a, &theirs)),
        Err(GpuError::ForeignBo(_))
    ));
    let their_vm = GpuVm::new(&other, "q");
    assert_eq!(
        gpu.submit(&their_vm, Job::fill(&a, 1)).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(
        gpu.create_bo(BoDesc::vram("zero", 0)).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(gpu.ring_stats().submitted, 0);
    assert_eq!(dma.checker().total(), 0);
}

/// A device job's placeholder view: the ring replaces it with the VM's mapping.
fn unmapped(gpu: &drivers::gpu::Gpu) -> drivers::dmaview::DmaView {
    drivers::dmaview::DmaView::from_segments(gpu.device().clone(), &[])
}

#[test]
fn a_device_job_runs_on_the_ring_through_the_vm_and_verifies_what_it_reads() {
    use drivers::job::{DeviceJob, JobInput, JobOutput, Op};
    use drivers::pattern::TestPattern;
    let (dma, gpu) = setup(8, RingMode::Manual);
    let vm = GpuVm::new(&gpu, "compositor");
    let luma = (W * H) as u64;
    let nv12_planes = vec![(0, luma), (luma, luma / 2)];
    let src = gpu.create_bo(BoDesc::vram("frame", FRAME)).unwrap();
    let dst = gpu.create_bo(BoDesc::vram("xrgb", luma * 4)).unwrap();
    // Frame 7 of the bars, drawn by the GPU into `src`...
    let capture = DeviceJob::new(Op::Capture {
        pattern: TestPattern::Bars,
        seed: 1,
        frame: 7,
    })
    .output(JobOutput {
        view: unmapped(&gpu),
        planes: nv12_planes.clone(),
        bytes_per_line: vec![W as u64, W as u64],
    });
    let (job, rx) = Job::device(capture, &[], std::slice::from_ref(&src));
    let f = gpu.submit(&vm, job).unwrap();
    assert!(rx.try_recv().is_err(), "a manual ring has not run it yet");
    assert_eq!(gpu.run_pending(), 1);
    assert!(f.is_signaled());
    let fx = rx.recv().unwrap();
    assert!(fx.error.is_none(), "{:?}", fx.error);
    let sum = fx.out_sums[0];
    // ...then composited into XRGB pixels: the input verifies only as frame 7 with that sum.
    let composite = |frame: u64| {
        let dj = DeviceJob::new(Op::Composite)
            .input(JobInput {
                view: unmapped(&gpu),
                planes: nv12_planes.clone(),
                expected: sum,
                frame,
            })
            .output(JobOutput {
                view: unmapped(&gpu),
                planes: vec![(0, luma * 4)],
                bytes_per_line: vec![W as u64 * 4],
            });
        let (job, rx) = Job::device(dj, std::slice::from_ref(&src), std::slice::from_ref(&dst));
        gpu.submit(&vm, job).unwrap();
        gpu.run_pending();
        rx.recv().unwrap()
    };
    let ok = composite(7);
    assert_eq!(ok.inputs_ok, [true]);
    assert_ne!(ok.out_sums[0], 0);
    assert_eq!(composite(6).inputs_ok, [false], "the stamp names frame 7");
    // Every use after the first found the VM's mappings.
    assert!(vm.stats().hits >= 3, "{:?}", vm.stats());
    // A job whose objects do not match its buffers is refused.
    let dj = DeviceJob::new(Op::Composite).output(JobOutput {
        view: unmapped(&gpu),
        planes: vec![(0, luma * 4)],
        bytes_per_line: vec![W as u64 * 4],
    });
    let (job, _rx) = Job::device(dj, std::slice::from_ref(&src), std::slice::from_ref(&dst));
    assert_eq!(gpu.submit(&vm, job).unwrap_err().errno(), Errno::EINVAL);
    drop(vm);
    drop((src, dst));
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn an_integrated_gpu_without_vram_places_its_objects_in_gtt_and_runs_jobs() {
    let dma = mock_dma();
    let cfg = GpuConfig {
        vram_bank: None,
        ring: RingMode::Manual,
        ..GpuConfig::default()
    };
    let gpu = drivers::gpu::Gpu::new(&dma, cfg).unwrap();
    let vm = GpuVm::new(&gpu, "client");
    let err = gpu.create_bo(BoDesc::vram_only("vram", FRAME)).unwrap_err();
    assert_eq!(err.errno(), Errno::ENOMEM, "{err}");
    let src = gpu.create_bo(BoDesc::vram("a", FRAME)).unwrap();
    let dst = gpu.create_bo(BoDesc::vram("b", FRAME)).unwrap();
    src.write(0, &nv12(W, H, 3)).unwrap();
    let f = gpu.submit(&vm, Job::copy(&src, &dst)).unwrap();
    gpu.wait_idle(&f).unwrap();
    assert_eq!(src.placement(), Some(drivers::gpu::Placement::Gtt));
    let mut got = vec![0u8; FRAME as usize];
    dst.read(0, &mut got).unwrap();
    assert_eq!(checksum(&got), checksum(&nv12(W, H, 3)));
}

#[test]
fn a_started_device_job_completes_only_when_retired_in_order_with_the_given_timestamp() {
    use drivers::job::{DeviceJob, JobOutput, Op, Pool};
    use drivers::pattern::TestPattern;
    let (dma, gpu) = setup(8, RingMode::Manual);
    let vm = GpuVm::new(&gpu, "compositor");
    let pool = Arc::new(Pool::new(2));
    let luma = (W * H) as u64;
    let src = gpu.create_bo(BoDesc::vram("frame", FRAME)).unwrap();
    let dst = gpu.create_bo(BoDesc::vram("other", FRAME)).unwrap();
    let capture = DeviceJob::new(Op::Capture {
        pattern: TestPattern::Bars,
        seed: 1,
        frame: 3,
    })
    .output(JobOutput {
        view: unmapped(&gpu),
        planes: vec![(0, luma), (luma, luma / 2)],
        bytes_per_line: vec![W as u64, W as u64],
    })
    .on_pool(pool.clone(), dma.clone());
    let (job, rx) = Job::device(capture, &[], std::slice::from_ref(&src));
    let f1 = gpu.submit(&vm, job).unwrap();
    let f2 = gpu.submit(&vm, Job::fill(&dst, 0x5a)).unwrap();
    assert_eq!(gpu.start_pending(), 2, "both inputs signaled: both start");
    assert_eq!(gpu.started(), 2);
    assert!(
        !f1.is_signaled() && !f2.is_signaled(),
        "on the hardware until retired"
    );
    assert!(rx.try_recv().is_err(), "the effects come at retirement");
    assert!(
        !src.resv().test_signaled(DmaResvUsage::Write),
        "the writer's fence guards it"
    );
    // Retiring the second retires the first before it: one timeline, in order.
    assert_eq!(gpu.retire(&f2, 1_234), 2);
    assert_eq!(gpu.started(), 0);
    assert_eq!(
        (f1.timestamp_ns(), f2.timestamp_ns()),
        (Some(1_234), Some(1_234))
    );
    let fx = rx.try_recv().expect("sent before the fence signalled");
    assert!(fx.error.is_none(), "{:?}", fx.error);
    assert_ne!(fx.out_sums[0], 0);
    assert_eq!(gpu.retire(&f1, 5_678), 0, "retired already");
    let mut got = vec![0u8; 64];
    dst.read(0, &mut got).unwrap();
    assert!(got.iter().all(|&b| b == 0x5a));
    assert_eq!(gpu.ring_stats().completed, 2);
    // A started job is retired before run_pending runs another: fences never signal out of
    // order.
    let f3 = gpu.submit(&vm, Job::fill(&dst, 1)).unwrap();
    assert_eq!(gpu.start_pending(), 1);
    let f4 = gpu.submit(&vm, Job::fill(&dst, 2)).unwrap();
    assert_eq!(gpu.run_pending(), 2);
    assert!(f3.is_signaled() && f4.is_signaled());
    assert!(f3.timestamp_ns() <= f4.timestamp_ns());
    drop(vm);
    drop((src, dst));
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}
