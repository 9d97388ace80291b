//! Device jobs (`drivers::job`): what a scheduler plans is what the devices do, byte for byte.

use dma::{DeviceNeeds, DmaAttrs, DmaBuffer};
use drivers::dmaview::DmaView;
use drivers::encoder::Codec;
use drivers::frame::{self, rle_decode};
use drivers::isp::IspTransform;
use drivers::job::{DeviceJob, JobInput, JobOutput, Op};
use drivers::pattern::TestPattern;

const W: u64 = 64;
const H: u64 = 32;
const LUMA: u64 = W * H;
const SIZE: u64 = LUMA * 3 / 2;

fn planes() -> Vec<(u64, u64)> {
    vec![(0, LUMA), (LUMA, LUMA / 2)]
}

pub(crate) fn view(buf: &DmaBuffer, dev: &std::sync::Arc<soc::Device>) -> DmaView {
    let segs = buf.handle(dev.name()).unwrap().sg_table().dma_segments();
    DmaView::from_segments(dev.clone(), segs)
}

pub(crate) fn shared(
    dma: &dma::DmaApi,
    devs: &[&std::sync::Arc<soc::Device>],
    size: u64,
) -> DmaBuffer {
    let needs: Vec<DeviceNeeds<'_>> = devs.iter().map(|d| DeviceNeeds::new(d)).collect();
    dma.alloc_attrs_for_devices(&needs, size, DmaAttrs::NONE)
        .unwrap()
}

fn capture(dma: &dma::DmaApi, buf: &DmaBuffer, cam: &std::sync::Arc<soc::Device>, n: u64) -> u64 {
    let job = DeviceJob::new(Op::Capture {
        pattern: TestPattern::Bars,
        seed: 0,
        frame: n,
    })
    .output(JobOutput {
        view: view(buf, cam),
        planes: planes(),
        bytes_per_line: vec![W, W],
    });
    let fx = job.execute(dma);
    assert!(fx.error.is_none(), "{:?}", fx.error);
    fx.out_sums[0]
}

#[test]
fn test_a_capture_job_writes_what_the_camera_driver_captures() {
    let dma = dmabuf::testing::mock_dma();
    let cam = dma.device("camera0").unwrap();
    let buf = shared(&dma, &[&cam], SIZE);
    let sum = capture(&dma, &buf, &cam, 5);
    let mut got = vec![0u8; SIZE as usize];
    buf.read(0, &mut got).unwrap();
    // The same bytes as the camera driver's own frame (one pattern, one stamp, one checksum).
    let fmt = frame::FrameFormat::new(W as u32, H as u32).unwrap();
    assert_eq!(got, frame::pattern(fmt, 5));
    assert_eq!(frame::verify_stamp(&got), Ok(5));
    assert_eq!(sum, frame::checksum(&got[frame::STAMP_LEN..]));
    dma.free_attrs(buf).unwrap();
}

#[test]
fn test_rle_job_bitstream_decodes_to_the_frame_and_a_stale_frame_fails() {
    let dma = dmabuf::testing::mock_dma();
    let cam = dma.device("camera0").unwrap();
    let enc = dma.device("encoder0").unwrap();
    let buf = shared(&dma, &[&cam, &enc], SIZE);
    let bs = dma
        .alloc_attrs(&enc, SIZE * 2 + 4096, DmaAttrs::NONE)
        .unwrap();
    let sum = capture(&dma, &buf, &cam, 3);
    let encode = |frame: u64, with_buffer: bool| {
        let mut job = DeviceJob::new(Op::Encode(Codec::Rle)).input(JobInput {
            view: view(&buf, &enc),
            planes: planes(),
            expected: sum,
            frame,
        });
        job.bitstream = with_buffer.then(|| view(&bs, &enc));
        job.execute(&dma)
    };
    let fx = encode(3, true);
    assert_eq!(fx.inputs_ok, [true]);
    assert!(fx.error.is_none(), "{:?}", fx.error);
    let b = fx.bitstream.expect("a bitstream");
    let mut stream = vec![0u8; b.len as usize];
    bs.read(0, &mut stream).unwrap();
    assert_eq!(b.checksum, frame::checksum(&stream));
    let mut raw = vec![0u8; SIZE as usize];
    buf.read(0, &mut raw).unwrap();
    assert_eq!(
        rle_decode(&stream).unwrap(),
        raw,
        "the bitstream decodes to the frame"
    );
    assert!(stream.len() < raw.len(), "bars compress");
    // The stamp names frame 3: a job told to expect frame 2 does not verify.
    assert_eq!(encode(2, true).inputs_ok, [false]);
    // No bitstream buffer: the job fails and says why.
    let fx = encode(3, false);
    assert!(fx.error.unwrap().contains("bitstream buffer"));
    dma.free_attrs(bs).unwrap();
    dma.free_attrs(buf).unwrap();
}

#[test]
fn test_transform_jobs_match_the_isp_drivers_cpu_reference() {
    let dma = dmabuf::testing::mock_dma();
    let cam = dma.device("camera0").unwrap();
    let isp = dma.device("isp0").unwrap();
    let src = shared(&dma, &[&cam, &isp], SIZE);
    let dst = shared(&dma, &[&isp], SIZE);
    let sum = capture(&dma, &src, &cam, 9);
    let fmt = frame::FrameFormat::new(W as u32, H as u32).unwrap();
    for t in [
        IspTransform::Copy,
        IspTransform::Invert,
        IspTransform::SwapUv,
    ] {
        let fx = DeviceJob::new(Op::Process(t))
            .input(JobInput {
                view: view(&src, &isp),
                planes: planes(),
                expected: sum,
                frame: 9,
            })
            .output(JobOutput {
                view: view(&dst, &isp),
                planes: planes(),
                bytes_per_line: vec![W, W],
            })
            .execute(&dma);
        assert_eq!(fx.inputs_ok, [true], "{t:?}");
        let mut got = vec![0u8; SIZE as usize];
        dst.read(0, &mut got).unwrap();
        let drv = drivers::isp::Isp::with_transform(&dma, "isp0", fmt, t).unwrap();
        assert_eq!(
            got,
            drv.transform(&frame::pattern(fmt, 9)).unwrap(),
            "{t:?}"
        );
        assert_eq!(fx.out_sums[0], frame::checksum(&got[frame::STAMP_LEN..]));
    }
    // A downscale needs whole frames: the job refuses it instead of writing something else.
    let fx = DeviceJob::new(Op::Process(IspTransform::Downscale))
        .input(JobInput {
            view: view(&src, &isp),
            planes: planes(),
            expected: sum,
            frame: 9,
        })
        .execute(&dma);
    assert!(fx.error.is_some());
    dma.free_attrs(src).unwrap();
    dma.free_attrs(dst).unwrap();
}

#[test]
fn test_a_job_on_a_pool_of_threads_moves_the_same_bytes_and_effects_as_on_one() {
    // 2048x1040 NV12: planes of several pieces each, the last ones short.
    let (w, h) = (2048u64, 1040u64);
    let luma = w * h;
    let size = luma * 3 / 2;
    let pl = vec![(0, luma), (luma, luma / 2)];
    let dma = dmabuf::testing::mock_dma();
    let cam = dma.device("camera0").unwrap();
    let isp = dma.device("isp0").unwrap();
    let disp = dma.device("display0").unwrap();
    let pool = drivers::job::Pool::new(3);
    let src = shared(&dma, &[&cam, &isp, &disp], size);
    let cap = DeviceJob::new(Op::Capture {
        pattern: TestPattern::Noise,
        seed: 4,
        frame: 9,
    })
    .output(JobOutput {
        view: view(&src, &cam),
        planes: pl.clone(),
        bytes_per_line: vec![w, w],
    });
    let fx = cap.execute_on(&dma, &pool);
    assert!(fx.error.is_none(), "{:?}", fx.error);
    let mut frame_bytes = vec![0u8; size as usize];
    src.read(0, &mut frame_bytes).unwrap();
    assert_eq!(frame::verify_stamp(&frame_bytes), Ok(9));
    assert_eq!(
        fx.out_sums[0],
        frame::checksum(&frame_bytes[frame::STAMP_LEN..])
    );
    // The ISP inverts it on one thread and on three: the same bytes, the same effects.
    let mut outs = Vec::new();
    for threads in [1, 3] {
        let dst = shared(&dma, &[&isp, &disp], size);
        let job = DeviceJob::new(Op::Process(IspTransform::Invert))
            .input(JobInput {
                view: view(&src, &isp),
                planes: pl.clone(),
                expected: fx.out_sums[0],
                frame: 9,
            })
            .output(JobOutput {
                view: view(&dst, &isp),
                planes: pl.clone(),
                bytes_per_line: vec![w, w],
            });
        let got = if threads == 1 {
            job.execute(&dma)
        } else {
            job.execute_on(&dma, &pool)
        };
        assert!(got.error.is_none(), "{:?}", got.error);
        assert_eq!(got.inputs_ok, [true]);
        let mut bytes = vec![0u8; size as usize];
        dst.read(0, &mut bytes).unwrap();
        // A scanout on the pool verifies the output.
        let scan = DeviceJob::new(Op::Scanout)
            .input(JobInput {
                view: view(&dst, &disp),
                planes: pl.clone(),
                expected: got.out_sums[0],
                frame: 9,
            })
            .execute_on(&dma, &pool);
        assert_eq!(scan.inputs_ok, [true]);
        outs.push((got.out_sums.clone(), bytes));
        dma.free_attrs(dst).unwrap();
    }
    assert_eq!(outs[0], outs[1]);
    let inverted: Vec<u8> = frame_bytes[frame::STAMP_LEN..].iter().map(|b| !b).collect();
    assert_eq!(&outs[0].1[frame::STAMP_LEN..], &inverted[..]);
    assert_eq!(outs[0].0[0], frame::checksum(&inverted));
    // A scanout told the wrong checksum fails, on the pool too.
    let scan = DeviceJob::new(Op::Scanout)
        .input(JobInput {
            view: view(&src, &disp),
            planes: pl.clone(),
            expected: fx.out_sums[0] ^ 1,
            frame: 9,
        })
        .execute_on(&dma, &pool);
    assert_eq!(scan.inputs_ok, [false]);
    dma.free_attrs(src).unwrap();
}
