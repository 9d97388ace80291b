//! The ISP's contract: a job needs a source and a destination, DMA-reads the source, writes the
//! 2x downscale a test recomputes, and fails cleanly on a bad source.

use crate::pipeline::{boot, checker_clean, qvga};
use drivers::frame;
use drivers::isp::Isp;
use drivers::media::{dqbuf, qbuf_mmap, reqbufs, MediaError};
use vb2::ioctl::*;

fn rig(kernel: &std::sync::Arc<kernel::Kernel>) -> (Isp, vb2::Vb2Fh, vb2::Vb2Fh) {
    let isp = Isp::new(kernel.dma(), "isp0", qvga()).unwrap();
    let p = kernel.spawn();
    let (src, dst) = (isp.open_output(&p), isp.open_capture(&p));
    reqbufs(&src, V4L2_MEMORY_MMAP, 2).unwrap();
    reqbufs(&dst, V4L2_MEMORY_MMAP, 2).unwrap();
    src.streamon(V4L2_BUF_TYPE_VIDEO_OUTPUT).unwrap();
    dst.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
    (isp, src, dst)
}

#[test]
fn isp_output_equals_the_cpu_reference_downscale() {
    let kernel = boot();
    let (isp, src, dst) = rig(&kernel);
    let fmt = isp.input_format();
    let smap = src
        .mmap(
            mmap_cookie(0, 0),
            fmt.size() as u64,
            uapi::ioctl::PROT_READ | uapi::ioctl::PROT_WRITE,
            true,
        )
        .unwrap();
    let out_len = isp.output_format().size();
    let dmap = dst
        .mmap(
            mmap_cookie(1, 0),
            out_len as u64,
            uapi::ioctl::PROT_READ,
            true,
        )
        .unwrap();
    let input = frame::pattern(fmt, 41);
    smap.write(0, &input).unwrap();
    qbuf_mmap(&src, 0, fmt.size() as u32).unwrap();
    assert_eq!(isp.process().unwrap(), None, "no destination yet");
    qbuf_mmap(&dst, 1, 0).unwrap();
    let job = isp.process().unwrap().unwrap();
    assert_eq!((job.src_index, job.dst_index, job.frame), (0, 1, 41));
    let d = dqbuf(&dst).unwrap().unwrap();
    assert_eq!(d.bytesused as usize, out_len);
    let mut got = vec![0u8; out_len];
    dmap.read(0, &mut got).unwrap();
    assert_eq!(got, isp.transform(&input).unwrap());
    assert_eq!(frame::verify_stamp(&got), Ok(41));
    assert_eq!(frame::checksum(&got), job.checksum);
    drop((smap, dmap));
    src.close();
    dst.close();
    checker_clean(&kernel);
}

#[test]
fn isp_fails_a_job_whose_source_is_short_and_errors_both_buffers() {
    let kernel = boot();
    let (isp, src, dst) = rig(&kernel);
    qbuf_mmap(&src, 0, 100).unwrap();
    qbuf_mmap(&dst, 0, 0).unwrap();
    let e = isp.process().unwrap_err();
    assert!(matches!(e, MediaError::Invalid(_)), "{e}");
    for fh in [&src, &dst] {
        let b = dqbuf(fh).unwrap().unwrap();
        assert_ne!(b.flags & V4L2_BUF_FLAG_ERROR, 0);
    }
    assert_eq!(isp.stats().failed, 1);
    checker_clean(&kernel);
}

#[test]
fn isp_refuses_a_format_that_does_not_halve() {
    let kernel = boot();
    let fmt = drivers::frame::FrameFormat::new(34, 16).unwrap();
    assert!(Isp::new(kernel.dma(), "isp0", fmt).is_err());
    assert!(Isp::new(kernel.dma(), "nope0", qvga()).is_err());
}
