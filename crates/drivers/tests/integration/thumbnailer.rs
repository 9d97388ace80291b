//! Seed 001's software thumbnail path: mmap + DMA_BUF_IOCTL_SYNC around the read, a real JPEG
//! file; and what skipping the sync shows on a non-coherent path.

use crate::pipeline::{boot, checker_clean, small};
use dma::FindingKind;
use drivers::camera::{Camera, CameraConfig};
use drivers::frame::FrameFormat;
use drivers::media::{dqbuf, heap_fd, qbuf_dmabuf, reqbufs};
use drivers::thumbnailer::{jpeg_dimensions, thumbnail, CpuSync, ThumbnailConfig};
use uapi::{AsErrno, Errno};
use vb2::ioctl::*;

/// A camera capturing into one CMA-heap dma-buf (cached CPU mappings, camera0 not coherent).
struct Rig {
    camera: Camera,
    fh: vb2::Vb2Fh,
    fd: i32,
    buf: dmabuf::DmaBuf,
}

impl Rig {
    fn new(kernel: &std::sync::Arc<kernel::Kernel>, fmt: FrameFormat) -> Rig {
        let camera = Camera::new(kernel.dma(), CameraConfig::new(fmt)).unwrap();
        let p = kernel.spawn();
        let fh = camera.open(&p);
        reqbufs(&fh, V4L2_MEMORY_DMABUF, 1).unwrap();
        let fd = heap_fd(&p, "cma0", fmt.size() as u64).unwrap();
        let buf = p.get_dma_buf(fd).unwrap();
        qbuf_dmabuf(&fh, 0, fd, 0).unwrap();
        fh.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
        Rig {
            camera,
            fh,
            fd,
            buf,
        }
    }

    fn capture(&self) -> u32 {
        let f = self.camera.capture().unwrap().unwrap().frame;
        dqbuf(&self.fh).unwrap().unwrap();
        f
    }

    fn requeue(&self) {
        qbuf_dmabuf(&self.fh, 0, self.fd, 0).unwrap();
    }
}

#[test]
fn thumbnail_of_a_camera_frame_is_a_jpeg_file_of_the_right_size() {
    let kernel = boot();
    let fmt = FrameFormat::new(320, 240).unwrap();
    let rig = Rig::new(&kernel, fmt);
    assert_eq!(rig.capture(), 0);
    let dir = std::env::temp_dir().join(format!("dmabuf-thumb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("frame0.jpg");
    let t = thumbnail(&rig.buf, &ThumbnailConfig::new(fmt), Some(&path)).unwrap();
    assert_eq!((t.width, t.height, t.frame), (80, 60, Some(0)));
    let file = std::fs::read(&path).unwrap();
    assert_eq!(file, t.jpeg);
    assert_eq!(&file[..2], &[0xff, 0xd8], "SOI");
    assert_eq!(&file[file.len() - 2..], &[0xff, 0xd9], "EOI");
    assert_eq!(jpeg_dimensions(&file), Some((80, 60, 3)));
    std::fs::remove_dir_all(&dir).unwrap();
    checker_clean(&kernel);
}

#[test]
fn thumbnail_without_sync_on_a_non_coherent_path_shows_a_stale_frame() {
    let kernel = boot();
    let fmt = small();
    let rig = Rig::new(&kernel, fmt);
    let mut cfg = ThumbnailConfig::new(fmt);
    cfg.sync = CpuSync::Skip;
    // No sync at all: the first look works by luck (nothing of the buffer was cached yet)...
    assert_eq!(rig.capture(), 0);
    let first = thumbnail(&rig.buf, &cfg, None).unwrap();
    assert_eq!(first.frame, Some(0));
    // ...but now the CPU cache holds frame 0's lines, and the camera writes frame 1 behind it.
    rig.requeue();
    assert_eq!(rig.capture(), 1);
    let stale = thumbnail(&rig.buf, &cfg, None).unwrap();
    assert_ne!(
        stale.frame,
        Some(1),
        "without the sync the CPU cannot see frame 1"
    );
    assert_eq!(
        stale.raw_checksum, first.raw_checksum,
        "it sees frame 0 again"
    );
    assert!(kernel.dma().checker().count(FindingKind::CpuStaleRead) > 0);
    cfg.sync = CpuSync::Bracketed;
    let good = thumbnail(&rig.buf, &cfg, None).unwrap();
    assert_eq!(good.frame, Some(1));
    assert_ne!(good.jpeg, first.jpeg);
}

#[test]
fn thumbnailer_answers_bad_arguments_with_errors() {
    let kernel = boot();
    let fmt = small();
    let rig = Rig::new(&kernel, fmt);
    let mut cfg = ThumbnailConfig::new(fmt);
    cfg.factor = 3;
    assert_eq!(
        thumbnail(&rig.buf, &cfg, None).unwrap_err().errno(),
        Errno::EINVAL
    );
    cfg.factor = 2;
    cfg.quality = 0;
    assert_eq!(
        thumbnail(&rig.buf, &cfg, None).unwrap_err().errno(),
        Errno::EINVAL
    );
    let big = ThumbnailConfig::new(FrameFormat::new(640, 480).unwrap());
    assert_eq!(
        thumbnail(&rig.buf, &big, None).unwrap_err().errno(),
        Errno::EINVAL
    );
    let cfg = ThumbnailConfig::new(fmt);
    let bad = std::path::Path::new("/nonexistent-dir/x.jpg");
    assert_eq!(
        thumbnail(&rig.buf, &cfg, Some(bad)).unwrap_err().errno(),
        Errno::EIO
    );
}

/// The thumbnailer's job (what a runner schedules on a CPU lane): it verifies the frame it
/// read against the stamp and the checksum its producer reported, and with the sync left out
/// on a non-coherent path it reads the stale frame and says so; its cost is the read at the
/// CPU's copy rate, then the encode at the CPU's JPEG rate.
#[test]
fn thumbnail_job_verifies_what_it_read_and_costs_the_read_and_the_encode() {
    use drivers::thumbnailer::ThumbnailJob;
    let kernel = boot();
    let fmt = small();
    let rig = Rig::new(&kernel, fmt);
    let luma = u64::from(fmt.width) * u64::from(fmt.height);
    let job = |frame: u64, expected: u64, sync: CpuSync| ThumbnailJob {
        buf: rig.buf.clone(),
        planes: vec![(0, luma), (luma, luma / 2)],
        width: fmt.width,
        height: fmt.height,
        scale: 4,
        quality: 85,
        sync,
        frame,
        expected,
    };
    let body = |raw: &[u8]| drivers::frame::checksum(&raw[drivers::frame::STAMP_LEN..]);
    assert_eq!(rig.capture(), 0);
    let raw0 = drivers::thumbnailer::read_planes(
        &rig.buf,
        &job(0, 0, CpuSync::Skip).planes,
        CpuSync::Skip,
    )
    .unwrap();
    let sum0 = body(&raw0);
    let ok = job(0, sum0, CpuSync::Skip).execute().unwrap();
    assert!(ok.verified);
    assert_eq!(ok.bytes, luma * 3 / 2);
    assert_eq!(jpeg_dimensions(&ok.jpeg).map(|d| d.2), Some(3));
    // Frame 1 written behind the CPU's cached lines of frame 0.
    rig.requeue();
    assert_eq!(rig.capture(), 1);
    let stale = job(1, 0, CpuSync::Skip).execute().unwrap();
    assert!(!stale.verified, "the stale read is caught");
    let right = drivers::thumbnailer::read_planes(
        &rig.buf,
        &job(1, 0, CpuSync::Bracketed).planes,
        CpuSync::Bracketed,
    )
    .unwrap();
    let good = job(1, body(&right), CpuSync::Bracketed).execute().unwrap();
    assert!(good.verified);
    // The read at the CPU's copy rate (the default machine has no device named `cpu`), then
    // the encode of the thumbnail's pixels at the CPU's JPEG rate.
    let j = job(1, 0, CpuSync::Bracketed);
    let ns = u128::from(luma * 3 / 2) * 1_000_000_000 / u128::from(soc::timing::CPU_COPY_BPS);
    assert_eq!(j.read_cost(kernel.soc()).as_nanos(), ns);
    let (tw, th) = (fmt.width / 4, fmt.height / 4);
    assert_eq!(j.thumbnail_size(), (tw, th));
    let px = u128::from(tw * th);
    let enc =
        (px * 1_000_000_000).div_ceil(u128::from(drivers::thumbnailer::CPU_JPEG_PIXELS_PER_S));
    assert!(enc > 0);
    assert_eq!(j.encode_cost().as_nanos(), enc);
    assert_eq!(j.cost(kernel.soc()).as_nanos(), ns + enc);
    // A larger scale makes a smaller thumbnail: a cheaper encode, the same read.
    let small = ThumbnailJob {
        scale: 8,
        ..j.clone()
    };
    assert!(small.encode_cost() < j.encode_cost());
    assert_eq!(small.read_cost(kernel.soc()), j.read_cost(kernel.soc()));
}
