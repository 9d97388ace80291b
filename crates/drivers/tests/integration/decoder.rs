//! The decoder's device job (`drivers::job::Op::Decode`): the encoder's RLE bitstream, written
//! into a buffer a decoder reads, decodes through the decoder's reference frame into a frame
//! bit-exact with the camera's; a corrupted bitstream gives a corrupted frame.

use dma::{DeviceNeeds, DmaAttrs, DmaBuffer};
use drivers::dmaview::DmaView;
use drivers::encoder::Codec;
use drivers::job::{DeviceJob, JobEffects, JobInput, JobOutput, Op};
use drivers::pattern::TestPattern;
use std::sync::Arc;

const W: u64 = 64;
const H: u64 = 32;
const SIZE: u64 = W * H * 3 / 2;

fn planes() -> Vec<(u64, u64)> {
    vec![(0, W * H), (W * H, W * H / 2)]
}

fn view(buf: &DmaBuffer, dev: &Arc<soc::Device>) -> DmaView {
    let segs = buf.handle(dev.name()).unwrap().sg_table().dma_segments();
    DmaView::from_segments(dev.clone(), segs)
}

fn shared(dma: &dma::DmaApi, devs: &[&Arc<soc::Device>], size: u64) -> DmaBuffer {
    let needs: Vec<DeviceNeeds<'_>> = devs.iter().map(|d| DeviceNeeds::new(d)).collect();
    dma.alloc_attrs_for_devices(&needs, size, DmaAttrs::NONE)
        .unwrap()
}

fn bytes(buf: &DmaBuffer, len: u64) -> Vec<u8> {
    let mut v = vec![0u8; len as usize];
    buf.read(0, &mut v).unwrap();
    v
}

#[test]
fn test_a_decoded_frame_is_bit_exact_with_the_camera_and_a_corrupted_stream_is_not() {
    let dma = dmabuf::testing::mock_dma();
    let cam = dma.device("camera0").unwrap();
    let enc = dma.device("encoder0").unwrap();
    let dec = dma.device("isp0").unwrap();
    let raw = shared(&dma, &[&cam, &enc], SIZE);
    let stream = shared(&dma, &[&enc, &dec], SIZE * 2 + 4096);
    let reference = dma.alloc_attrs(&dec, SIZE, DmaAttrs::NONE).unwrap();
    let out = shared(&dma, &[&dec], SIZE);
    for (frame, pattern) in [(3u64, TestPattern::Bars), (4, TestPattern::Noise)] {
        let cap = DeviceJob::new(Op::Capture {
            pattern,
            seed: 9,
            frame,
        })
        .output(JobOutput {
            view: view(&raw, &cam),
            planes: planes(),
            bytes_per_line: vec![W, W],
        })
        .execute(&dma);
        // The encoder writes its bitstream into the buffer it hands on.
        let fx = DeviceJob::new(Op::Encode(Codec::Rle))
            .input(JobInput {
                view: view(&raw, &enc),
                planes: planes(),
                expected: cap.out_sums[0],
                frame,
            })
            .output(JobOutput {
                view: view(&stream, &enc),
                planes: vec![(0, SIZE * 2 + 4096)],
                bytes_per_line: vec![],
            })
            .execute(&dma);
        assert!(fx.error.is_none(), "{:?}", fx.error);
        let bs = fx.bitstream.unwrap();
        assert_eq!(
            fx.out_sums,
            [bs.checksum],
            "the link carries the bitstream's checksum"
        );
        let decode = || -> JobEffects {
            let mut job = DeviceJob::new(Op::Decode)
                .input(JobInput {
                    view: view(&stream, &dec),
                    planes: vec![(0, bs.len)],
                    expected: bs.checksum,
                    frame,
                })
                .output(JobOutput {
                    view: view(&out, &dec),
                    planes: planes(),
                    bytes_per_line: vec![W, W],
                });
            job.bitstream = Some(view(&reference, &dec));
            assert_eq!(
                job.bytes(),
                (bs.len + SIZE, SIZE * 2),
                "stream + reference read back"
            );
            job.execute(&dma)
        };
        let fx = decode();
        assert!(fx.error.is_none(), "{:?}", fx.error);
        assert_eq!(fx.inputs_ok, [true]);
        // Bit-exact: the same bytes, stamp included, and the same checksum downstream.
        assert_eq!(bytes(&out, SIZE), bytes(&raw, SIZE), "frame {frame}");
        assert_eq!(fx.out_sums, cap.out_sums);
        assert_eq!(
            bytes(&reference, SIZE),
            bytes(&raw, SIZE),
            "the reference holds it"
        );
        // One byte of the bitstream flipped (a count: the frame shifts).
        let mut b = [0u8; 1];
        stream.read(40, &mut b).unwrap();
        stream.write(40, &[b[0] ^ 0x01]).unwrap();
        let fx = decode();
        assert!(fx.error.is_none(), "a damaged stream is judged, not failed");
        assert_eq!(fx.inputs_ok, [false]);
        assert_ne!(fx.out_sums, cap.out_sums);
        assert_ne!(bytes(&out, SIZE), bytes(&raw, SIZE));
        stream.write(40, &b).unwrap();
    }
    dma.free_attrs(raw).unwrap();
    dma.free_attrs(stream).unwrap();
    dma.free_attrs(reference).unwrap();
    dma.free_attrs(out).unwrap();
}

#[test]
fn test_a_decoder_checks_the_decoded_stamp_not_only_the_stream_checksum() {
    // A stream that hashes to what the "encoder" reported but decodes to a frame whose stamp
    // does not match its body: the decoder does not verify it.
    let dma = dmabuf::testing::mock_dma();
    let dec = dma.device("isp0").unwrap();
    let frame_bytes = vec![7u8; SIZE as usize]; // no stamp at all
    let rle = drivers::frame::rle_encode(&frame_bytes);
    let stream = shared(&dma, &[&dec], 4096);
    stream.write(0, &rle).unwrap();
    let reference = dma.alloc_attrs(&dec, SIZE, DmaAttrs::NONE).unwrap();
    let out = shared(&dma, &[&dec], SIZE);
    let mut job = DeviceJob::new(Op::Decode)
        .input(JobInput {
            view: view(&stream, &dec),
            planes: vec![(0, rle.len() as u64)],
            expected: drivers::frame::checksum(&rle),
            frame: 0,
        })
        .output(JobOutput {
            view: view(&out, &dec),
            planes: planes(),
            bytes_per_line: vec![W, W],
        });
    job.bitstream = Some(view(&reference, &dec));
    let fx = job.execute(&dma);
    assert!(fx.error.is_none());
    assert_eq!(fx.inputs_ok, [false]);
    dma.free_attrs(stream).unwrap();
    dma.free_attrs(reference).unwrap();
    dma.free_attrs(out).unwrap();
}
