//! The scaler's device job (`drivers::job::Op::Scale`): its DMA engine reads a stamped camera
//! frame, writes the scaled, converted frame, stamps it, and a consumer verifies it.

use dma::{DeviceNeeds, DmaAttrs, DmaBuffer};
use drivers::dmaview::DmaView;
use drivers::format::FormatInfo;
use drivers::frame::{self, STAMP_LEN};
use drivers::job::{DeviceJob, JobInput, JobOutput, Op};
use drivers::pattern::TestPattern;
use drivers::scaler::{scale_frame, Image, Scale};
use std::sync::Arc;

fn view(buf: &DmaBuffer, dev: &Arc<soc::Device>) -> DmaView {
    let segs = buf.handle(dev.name()).unwrap().sg_table().dma_segments();
    DmaView::from_segments(dev.clone(), segs)
}

fn shared(dma: &dma::DmaApi, devs: &[&Arc<soc::Device>], size: u64) -> DmaBuffer {
    let needs: Vec<DeviceNeeds<'_>> = devs.iter().map(|d| DeviceNeeds::new(d)).collect();
    dma.alloc_attrs_for_devices(&needs, size, DmaAttrs::NONE)
        .unwrap()
}

/// `(offset, len)` of each plane of `img`, one after another.
fn planes(img: Image) -> Vec<(u64, u64)> {
    let mut off = 0;
    img.format
        .layout(img.width, img.height)
        .iter()
        .map(|l| {
            let p = (off, l.size);
            off += l.size;
            p
        })
        .collect()
}

fn img(f: &str, width: u32, height: u32) -> Image {
    Image {
        format: FormatInfo::by_name(f).unwrap(),
        width,
        height,
    }
}

#[test]
fn test_a_scaler_job_writes_the_scaled_frame_and_the_display_verifies_its_stamp() {
    let dma = dmabuf::testing::mock_dma();
    let cam = dma.device("camera0").unwrap();
    let sc = dma.device("isp0").unwrap();
    let disp = dma.device("display0").unwrap();
    for (dst, frame) in [(img("XRGB8888", 64, 32), 7u64), (img("NV12", 32, 16), 8)] {
        let src = img("NV12", 128, 64);
        let (sp, dp) = (planes(src), planes(dst));
        let a = shared(&dma, &[&cam, &sc], src.format.frame_size(128, 64));
        let b = shared(
            &dma,
            &[&sc, &disp],
            dst.format.frame_size(dst.width, dst.height),
        );
        let cap = DeviceJob::new(Op::Capture {
            pattern: TestPattern::Bars,
            seed: 0,
            frame,
        })
        .output(JobOutput {
            view: view(&a, &cam),
            planes: sp.clone(),
            bytes_per_line: vec![128, 128],
        })
        .execute(&dma);
        let s = Scale { src, dst };
        let fx = DeviceJob::new(Op::Scale(s))
            .input(JobInput {
                view: view(&a, &sc),
                planes: sp.clone(),
                expected: cap.out_sums[0],
                frame,
            })
            .output(JobOutput {
                view: view(&b, &sc),
                planes: dp.clone(),
                bytes_per_line: vec![],
            })
            .execute(&dma);
        assert!(fx.error.is_none(), "{:?}", fx.error);
        assert_eq!(
            fx.inputs_ok,
            [true],
            "the scaler verifies the camera's frame"
        );
        // The bytes are the transform of what was read (stamp included), then stamped.
        let mut src_bytes = vec![0u8; src.format.frame_size(128, 64) as usize];
        a.read(0, &mut src_bytes).unwrap();
        let refs: Vec<&[u8]> = sp
            .iter()
            .map(|&(o, l)| &src_bytes[o as usize..(o + l) as usize])
            .collect();
        let layout = |i: Image| -> Vec<usize> {
            i.format
                .layout(i.width, i.height)
                .iter()
                .map(|l| l.bytes_per_line as usize)
                .collect()
        };
        let want: Vec<u8> = scale_frame(s, &refs, &layout(src), &layout(dst)).concat();
        let mut got = vec![0u8; want.len()];
        b.read(0, &mut got).unwrap();
        assert_eq!(got[STAMP_LEN..], want[STAMP_LEN..]);
        assert_eq!(frame::verify_stamp(&got), Ok(frame as u32));
        assert_eq!(fx.out_sums[0], frame::checksum(&got[STAMP_LEN..]));
        // A display verifies what the scaler reported; not as another frame, nor with the
        // camera's checksum.
        let scan = |expected, f| {
            DeviceJob::new(Op::Scanout)
                .input(JobInput {
                    view: view(&b, &disp),
                    planes: dp.clone(),
                    expected,
                    frame: f,
                })
                .execute(&dma)
                .inputs_ok
        };
        assert_eq!(scan(fx.out_sums[0], frame), [true]);
        assert_eq!(scan(fx.out_sums[0], frame + 1), [false]);
        assert_eq!(scan(cap.out_sums[0], frame), [false]);
        dma.free_attrs(a).unwrap();
        dma.free_attrs(b).unwrap();
    }
}

#[test]
fn test_a_scaler_job_on_a_torn_input_does_not_verify_it() {
    let dma = dmabuf::testing::mock_dma();
    let cam = dma.device("camera0").unwrap();
    let sc = dma.device("isp0").unwrap();
    let src = img("YUYV", 64, 32);
    let a = shared(&dma, &[&cam, &sc], 64 * 32 * 2);
    let b = shared(&dma, &[&sc], 32 * 16 * 3 / 2);
    let sum = DeviceJob::new(Op::Capture {
        pattern: TestPattern::Ramp,
        seed: 0,
        frame: 1,
    })
    .output(JobOutput {
        view: view(&a, &cam),
        planes: planes(src),
        bytes_per_line: vec![128],
    })
    .execute(&dma)
    .out_sums[0];
    a.write(1000, &[0xAA; 8]).unwrap();
    let fx = DeviceJob::new(Op::Scale(Scale {
        src,
        dst: img("NV12", 32, 16),
    }))
    .input(JobInput {
        view: view(&a, &sc),
        planes: planes(src),
        expected: sum,
        frame: 1,
    })
    .output(JobOutput {
        view: view(&b, &sc),
        planes: planes(img("NV12", 32, 16)),
        bytes_per_line: vec![],
    })
    .execute(&dma);
    assert!(fx.error.is_none());
    assert_eq!(fx.inputs_ok, [false]);
    dma.free_attrs(a).unwrap();
    dma.free_attrs(b).unwrap();
}
