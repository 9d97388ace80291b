//! camera -> ISP -> display over DMABUF, three processes, every frame verified.
//!
//! The camera's process exports its MMAP buffers (EXPBUF) and passes the fds to the ISP's
//! process, which queues them on the ISP's output queue (DMABUF). The compositor allocates the
//! scanout buffers from the CMA heap (the display has no IOMMU), imports them into the display
//! and passes the fds to the ISP's process for its capture queue. Each frame: capture, ISP
//! downscale, page flip, vblank; the display reads every pixel and checks the checksum the CPU
//! recomputes. Time is virtual: each step adds what its DMA cost on the device's time model.
//!
//! Run: `cargo run --release -p drivers --example pipeline [frames]` (default 30).

use drivers::camera::{Camera, CameraConfig};
use drivers::display::{Display, DisplayConfig, Expect};
use drivers::frame::{self, FrameFormat};
use drivers::isp::Isp;
use drivers::media::{dqbuf, expbuf, heap_fd, qbuf_dmabuf, qbuf_mmap, reqbufs};
use kernel::Kernel;
use std::time::Duration;
use vb2::ioctl::*;

const BUFFERS: u32 = 4;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}"); // Display, as a program reports errors
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let frames: u32 = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| format!("frames {a:?}: {e}"))?,
        None => 30,
    };
    let kernel = Kernel::boot(soc::SocDesc::default_soc())?;
    let dma = kernel.dma();
    let fmt = FrameFormat::new(640, 480)?;
    let out_fmt = fmt.half()?;

    // The three processes and their devices.
    let (cam_app, isp_app, compositor) = (kernel.spawn(), kernel.spawn(), kernel.spawn());
    let camera = Camera::new(dma, CameraConfig::new(fmt))?;
    let isp = Isp::new(dma, "isp0", fmt)?;
    let display = Display::new(dma, DisplayConfig::new(out_fmt))?;
    let cam = camera.open(&cam_app);
    let (src, dst) = (isp.open_output(&isp_app), isp.open_capture(&isp_app));

    reqbufs(&cam, V4L2_MEMORY_MMAP, BUFFERS)?;
    reqbufs(&src, V4L2_MEMORY_DMABUF, BUFFERS)?;
    reqbufs(&dst, V4L2_MEMORY_DMABUF, BUFFERS)?;
    let mut cam_fds = Vec::new(); // in the ISP's process
    let mut out_fds = Vec::new(); // in the ISP's process
    let mut fbs = Vec::new();
    for i in 0..BUFFERS {
        let fd = expbuf(&cam, i)?;
        cam_fds.push(cam_app.send_fd(fd, &isp_app)?);
        cam_app.close(fd)?;
        let fd = heap_fd(&compositor, "cma0", out_fmt.size() as u64)?;
        fbs.push(display.add_fb(&compositor.get_dma_buf(fd)?)?);
        out_fds.push(compositor.send_fd(fd, &isp_app)?);
        qbuf_dmabuf(&dst, i, out_fds[i as usize], 0)?;
        qbuf_mmap(&cam, i, 0)?;
    }
    src.streamon(V4L2_BUF_TYPE_VIDEO_OUTPUT)?;
    dst.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE)?;
    cam.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE)?;

    let mut clock = Duration::ZERO;
    for n in 0..frames {
        let shot = camera.capture()?.ok_or("no camera buffer queued")?;
        clock += shot.cost;
        let b = dqbuf(&cam)?.ok_or("camera frame not done")?;
        qbuf_dmabuf(&src, b.index, cam_fds[b.index as usize], b.bytesused)?;
        let job = isp.process()?.ok_or("ISP job not ready")?;
        clock += job.cost;
        let s = dqbuf(&src)?.ok_or("ISP source not done")?;
        qbuf_mmap(&cam, s.index, 0)?;
        let d = dqbuf(&dst)?.ok_or("ISP destination not done")?;
        let want = frame::downscale_nv12(fmt, &frame::pattern(fmt, n))?;
        let expect = Expect::Checksum(frame::checksum(&want[frame::STAMP_LEN..]));
        display.page_flip(fbs[d.index as usize], None, expect)?;
        let v = display.vblank()?;
        clock += v.cost;
        for fb in v.released {
            let i = fbs
                .iter()
                .position(|&f| f == fb)
                .ok_or("unknown framebuffer")?;
            qbuf_dmabuf(&dst, i as u32, out_fds[i], 0)?;
        }
    }
    let ds = display.stats();
    let checker = dma.checker().total();
    println!(
        "{frames} frames {fmt} -> {out_fmt}: shown {}, verified {}, corrupted {}; \
         ISP jobs {}; device time {:.3} ms; checker findings {checker}",
        ds.shown,
        ds.verified,
        ds.corrupted,
        isp.stats().jobs,
        clock.as_secs_f64() * 1e3,
    );
    drop(display);
    for fh in [&src, &dst, &cam] {
        fh.close();
    }
    if ds.verified != u64::from(frames) || checker != 0 {
        return Err("not every frame verified".into());
    }
    Ok(())
}
