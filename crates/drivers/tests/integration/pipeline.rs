//! Media pipelines end to end, and the helpers the media tests share: a camera's EXPBUF imported
//! by the ISP and the display with every frame verified by checksum through real DMA.

use drivers::camera::{Camera, CameraConfig};
use drivers::display::{Display, DisplayConfig, Expect};
use drivers::frame::{self, FrameFormat};
use drivers::isp::Isp;
use drivers::media::{self, dqbuf, expbuf, qbuf_dmabuf, qbuf_mmap, reqbufs};
use kernel::{Kernel, Process};
use soc::{DeviceDesc, SocDesc};
use std::sync::Arc;
use vb2::ioctl::*;
use vb2::Vb2Fh;

/// 64x48 NV12: 4608 bytes, small enough for the CPU cache to hold a whole frame.
pub fn small() -> FrameFormat {
    FrameFormat::new(64, 48).unwrap()
}

/// 320x240 NV12: 115200 bytes, 29 pages.
pub fn qvga() -> FrameFormat {
    FrameFormat::new(320, 240).unwrap()
}

/// The default SoC.
pub fn boot() -> Arc<Kernel> {
    Kernel::boot(SocDesc::default_soc()).unwrap()
}

/// The default SoC with `f` applied to device `name`.
pub fn boot_with(name: &str, f: impl FnOnce(&mut DeviceDesc)) -> Arc<Kernel> {
    let mut d = SocDesc::default_soc();
    f(d.devices.iter_mut().find(|x| x.name == name).unwrap());
    Kernel::boot(d).unwrap()
}

/// Asserts the DMA checker saw nothing.
pub fn checker_clean(kernel: &Kernel) {
    let c = kernel.dma().checker();
    assert_eq!(c.total(), 0, "{:#?}", c.findings());
}

/// A camera streaming into `n` MMAP buffers, all queued.
pub struct CamRig {
    pub camera: Camera,
    pub process: Arc<Process>,
    pub fh: Vb2Fh,
}

impl CamRig {
    pub fn new(kernel: &Arc<Kernel>, fmt: FrameFormat, n: u32) -> CamRig {
        let camera = Camera::new(kernel.dma(), CameraConfig::new(fmt)).unwrap();
        let process = kernel.spawn();
        let fh = camera.open(&process);
        assert_eq!(reqbufs(&fh, V4L2_MEMORY_MMAP, n).unwrap(), n);
        CamRig {
            camera,
            process,
            fh,
        }
    }

    pub fn queue_all(&self, n: u32) {
        for i in 0..n {
            qbuf_mmap(&self.fh, i, 0).unwrap();
        }
        self.fh.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
    }

    /// EXPBUF of buffer `i`, sent to `to`.
    pub fn export_to(&self, i: u32, to: &Process) -> i32 {
        let fd = expbuf(&self.fh, i).unwrap();
        let sent = self.process.send_fd(fd, to).unwrap();
        self.process.close(fd).unwrap();
        sent
    }
}

#[test]
fn expbuf_from_camera_imported_by_isp_and_display_verified_end_to_end() {
    const N: u32 = 3;
    let kernel = boot();
    let fmt = qvga();
    let cam = CamRig::new(&kernel, fmt, N);
    let isp = Isp::new(kernel.dma(), "isp0", fmt).unwrap();
    let isp_proc = kernel.spawn();
    let src = isp.open_output(&isp_proc);
    let dst = isp.open_capture(&isp_proc);
    let display = Display::new(kernel.dma(), DisplayConfig::new(fmt)).unwrap();
    let disp_proc = kernel.spawn();

    reqbufs(&src, V4L2_MEMORY_DMABUF, N).unwrap();
    reqbufs(&dst, V4L2_MEMORY_MMAP, N).unwrap();
    let mut isp_fds = Vec::new();
    let mut fbs = Vec::new();
    for i in 0..N {
        isp_fds.push(cam.export_to(i, &isp_proc));
        let fd = cam.export_to(i, &disp_proc);
        fbs.push(display.add_fb(&disp_proc.get_dma_buf(fd).unwrap()).unwrap());
        qbuf_mmap(&dst, i, 0).unwrap();
    }
    src.streamon(V4L2_BUF_TYPE_VIDEO_OUTPUT).unwrap();
    dst.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
    cam.queue_all(N);

    let maps = dst.queue().num_buffers();
    assert_eq!(maps, N);
    for n in 0..12u32 {
        let shot = cam.camera.capture().unwrap().expect("a buffer is queued");
        assert_eq!(shot.frame, n);
        let b = dqbuf(&cam.fh).unwrap().unwrap();
        assert_eq!((b.index, b.sequence), (shot.index, n));
        // The display shows the camera's buffer itself...
        display
            .page_flip(fbs[b.index as usize], None, Expect::Frame(n))
            .unwrap();
        display.vblank().unwrap();
        // ...and the ISP downscales it.
        qbuf_dmabuf(&src, b.index, isp_fds[b.index as usize], b.bytesused).unwrap();
        let job = isp.process().unwrap().expect("both queues hold a buffer");
        let want = frame::downscale_nv12(fmt, &frame::pattern(fmt, n)).unwrap();
        assert_eq!(job.checksum, frame::checksum(&want));
        assert_eq!(job.frame, n);
        let s = dqbuf(&src).unwrap().unwrap();
        let d = dqbuf(&dst).unwrap().unwrap();
        assert_eq!(d.bytesused as usize, want.len());
        qbuf_mmap(&dst, d.index, 0).unwrap();
        assert_eq!(s.index, b.index);
        // The display keeps showing it until the next flip: requeue the one it let go.
        qbuf_mmap(&cam.fh, b.index, 0).unwrap();
    }
    let ds = display.stats();
    assert_eq!((ds.shown, ds.verified, ds.corrupted), (12, 12, 0));
    let s = src.queue().counters().snapshot();
    assert_eq!(
        (s.attach, s.map),
        (u64::from(N), u64::from(N)),
        "imported once each"
    );
    drop(display);
    for fh in [&src, &dst, &cam.fh] {
        fh.close();
        fh.queue().counters().snapshot().check_balanced().unwrap();
    }
    checker_clean(&kernel);
}

#[test]
fn camera_isp_display_with_cma_scanout_buffers_shows_every_frame_verified() {
    const N: u32 = 4;
    let kernel = boot();
    let fmt = qvga();
    let out_fmt = fmt.half().unwrap();
    let cam = CamRig::new(&kernel, fmt, N);
    let isp = Isp::new(kernel.dma(), "isp0", fmt).unwrap();
    let app = kernel.spawn();
    let src = isp.open_output(&app);
    let dst = isp.open_capture(&app);
    let display = Display::new(kernel.dma(), DisplayConfig::new(out_fmt)).unwrap();
    reqbufs(&src, V4L2_MEMORY_DMABUF, N).unwrap();
    reqbufs(&dst, V4L2_MEMORY_DMABUF, N).unwrap();
    let cam_fds: Vec<i32> = (0..N).map(|i| cam.export_to(i, &app)).collect();
    // Scanout buffers from the CMA heap: the display has no IOMMU.
    let out_fds: Vec<i32> = (0..N)
        .map(|_| media::heap_fd(&app, "cma0", out_fmt.size() as u64).unwrap())
        .collect();
    let fbs: Vec<u32> = out_fds
        .iter()
        .map(|&fd| display.add_fb(&app.get_dma_buf(fd).unwrap()).unwrap())
        .collect();
    for i in 0..N {
        qbuf_dmabuf(&dst, i, out_fds[i as usize], 0).unwrap();
    }
    src.streamon(V4L2_BUF_TYPE_VIDEO_OUTPUT).unwrap();
    dst.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
    cam.queue_all(N);
    let mut on_screen: Option<u32> = None;
    for n in 0..20u32 {
        cam.camera.capture().unwrap().unwrap();
        let b = dqbuf(&cam.fh).unwrap().unwrap();
        qbuf_dmabuf(&src, b.index, cam_fds[b.index as usize], b.bytesused).unwrap();
        isp.process().unwrap().unwrap();
        let s = dqbuf(&src).unwrap().unwrap();
        qbuf_mmap(&cam.fh, s.index, 0).unwrap();
        let d = dqbuf(&dst).unwrap().unwrap();
        let want = frame::downscale_nv12(fmt, &frame::pattern(fmt, n)).unwrap();
        display
            .page_flip(
                fbs[d.index as usize],
                None,
                Expect::Checksum(frame::checksum(&want[frame::STAMP_LEN..])),
            )
            .unwrap();
        let v = display.vblank().unwrap();
        assert_eq!(v.verified, Some(true));
        for fb in v.released {
            let i = fbs.iter().position(|&f| f == fb).unwrap() as u32;
            qbuf_dmabuf(&dst, i, out_fds[i as usize], 0).unwrap();
        }
        on_screen = Some(d.index);
    }
    assert!(on_screen.is_some());
    let ds = display.stats();
    assert_eq!((ds.shown, ds.verified, ds.corrupted), (20, 20, 0));
    drop(display);
    for fh in [&src, &dst, &cam.fh] {
        fh.close();
        fh.queue().counters().snapshot().check_balanced().unwrap();
    }
    checker_clean(&kernel);
}
