//! The encoder's contract: a V4L2 stateful encoder with an OUTPUT (raw frames) and a CAPTURE
//! (bitstream) queue, frames read by DMA, stamps verified, a bitstream that decodes back; the
//! drain (`V4L2_ENC_CMD_STOP`, `V4L2_BUF_FLAG_LAST`, then `EPIPE`, `V4L2_ENC_CMD_START`); and seed
//! 000's stutter: switched on mid-stream with stricter constraints, it forces the constraint
//! exporter to migrate the shared buffers, and no frame is lost.

use crate::pipeline::{boot, boot_with, checker_clean, qvga};
use constraint::{ConstraintExporter, ExportSpec, ImporterNeeds};
use dma::DmaDirection;
use drivers::encoder::{Encoder, V4l2EncoderCmd};
use drivers::frame::{self, FrameFormat};
use drivers::media::{dqbuf, qbuf_dmabuf, qbuf_mmap, reqbufs, MediaError};
use kernel::{FileObject, Kernel, Process};
use std::sync::Arc;
use uapi::{AsErrno, Errno};
use vb2::ioctl::*;
use vb2::{Vb2Fh, Vb2State};

/// An encoder with `outs` DMABUF OUTPUT buffers (heap memory the test writes frames into) and
/// `caps` MMAP CAPTURE buffers (the test reads the bitstream through its mapping), both
/// streaming; no CAPTURE buffer queued yet.
struct Rig {
    kernel: Arc<Kernel>,
    fmt: FrameFormat,
    enc: Encoder,
    out: Vb2Fh,
    cap: Vb2Fh,
    fds: Vec<i32>,
    p: Arc<Process>,
}

impl Rig {
    fn new(outs: u32, caps: u32, sizeimage: Option<usize>) -> Rig {
        let kernel = boot();
        let fmt = qvga();
        let enc = match sizeimage {
            None => Encoder::new(kernel.dma(), "encoder0", fmt),
            Some(s) => Encoder::with_sizeimage(kernel.dma(), "encoder0", fmt, s),
        }
        .unwrap();
        let p = kernel.spawn();
        let out = enc.open(&p);
        let cap = enc.open_capture(&p);
        out.set_nonblocking(true);
        cap.set_nonblocking(true);
        reqbufs(&out, V4L2_MEMORY_DMABUF, outs).unwrap();
        reqbufs(&cap, V4L2_MEMORY_MMAP, caps).unwrap();
        out.streamon(V4L2_BUF_TYPE_VIDEO_OUTPUT).unwrap();
        cap.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
        let fds = (0..outs)
            .map(|_| drivers::media::heap_fd(&p, "system", fmt.size() as u64).unwrap())
            .collect();
        Rig {
            kernel,
            fmt,
            enc,
            out,
            cap,
            fds,
            p,
        }
    }

    /// Writes frame `n` into OUTPUT buffer `i` and queues it.
    fn queue_frame(&self, i: u32, n: u32) {
        let buf = self.p.get_dma_buf(self.fds[i as usize]).unwrap();
        let m = buf.mmap(0, self.fmt.size() as u64, true).unwrap();
        buf.begin_cpu_access(DmaDirection::ToDevice).unwrap();
        m.write(0, &frame::pattern(self.fmt, n)).unwrap();
        buf.end_cpu_access(DmaDirection::ToDevice).unwrap();
        qbuf_dmabuf(&self.out, i, self.fds[i as usize], self.fmt.size() as u32).unwrap();
    }

    /// The first `len` bytes of CAPTURE buffer `i`, through its mapping.
    fn stream(&self, i: u32, len: u32) -> Vec<u8> {
        let size = self.enc.capture_queue().plane_size(i, 0).unwrap();
        let m = self
            .cap
            .mmap(
                mmap_cookie(i, 0),
                u64::from(size),
                uapi::ioctl::PROT_READ,
                true,
            )
            .unwrap();
        let mut v = vec![0u8; len as usize];
        m.read(0, &mut v).unwrap();
        v
    }

    /// Runs every job that can run.
    fn encode_all(&self) -> Vec<drivers::encoder::EncodedFrame> {
        std::iter::from_fn(|| self.enc.encode().unwrap()).collect()
    }

    fn cmd(&self, cmd: V4l2EncoderCmd) -> Result<(), MediaError> {
        self.enc.encoder_cmd(&mut { cmd })
    }
}

fn errno(r: Result<Option<V4l2Buffer>, MediaError>) -> Errno {
    r.expect_err("an error").errno()
}

#[test]
fn encoder_bitstream_decodes_to_the_frame_it_read() {
    let r = Rig::new(1, 2, None);
    for (k, n) in [5u32, 6].into_iter().enumerate() {
        let k = k as u32;
        qbuf_mmap(&r.cap, k, 0).unwrap();
        r.queue_frame(0, n);
        let e = r.enc.encode().unwrap().unwrap();
        assert_eq!(
            (e.frame, e.verified, e.state),
            (Some(n), true, Vb2State::Done)
        );
        assert_eq!((e.index, e.capture_index, e.last), (0, k, false));
        dqbuf(&r.out).unwrap().unwrap();
        let b = dqbuf(&r.cap).unwrap().unwrap();
        // The driver set the payload: the stream's length, no more.
        assert_eq!((b.index, b.bytesused), (k, e.bytesused));
        assert_eq!(b.flags & (V4L2_BUF_FLAG_LAST | V4L2_BUF_FLAG_ERROR), 0);
        let s = r.stream(k, b.bytesused);
        assert_eq!(frame::rle_decode(&s).unwrap(), frame::pattern(r.fmt, n));
    }
    assert_eq!(r.enc.encode().unwrap(), None);
    let s = r.enc.stats();
    assert_eq!((s.frames, s.verified, s.corrupted, s.errors), (2, 2, 0, 0));
    r.out.close();
    r.cap.close();
    checker_clean(&r.kernel);
}

#[test]
fn a_job_runs_only_with_an_output_and_a_capture_buffer() {
    // v4l2_m2m_try_schedule: both queues must hold a buffer.
    let r = Rig::new(1, 1, None);
    r.queue_frame(0, 1);
    assert_eq!(r.enc.encode().unwrap(), None, "no CAPTURE buffer yet");
    qbuf_mmap(&r.cap, 0, 0).unwrap();
    assert_eq!(r.enc.encode().unwrap().unwrap().frame, Some(1));
}

#[test]
fn drain_encodes_every_frame_queued_before_stop_flags_the_last_then_dqbuf_is_epipe() {
    let r = Rig::new(3, 4, None);
    for i in 0..4 {
        qbuf_mmap(&r.cap, i, 0).unwrap();
    }
    for i in 0..3 {
        r.queue_frame(i, 10 + i);
    }
    r.cmd(V4l2EncoderCmd::stop()).unwrap();
    let jobs = r.encode_all();
    let frames: Vec<_> = jobs.iter().map(|e| (e.frame, e.last)).collect();
    assert_eq!(
        frames,
        [(Some(10), false), (Some(11), false), (Some(12), true)],
        "every frame queued before STOP comes out, the last flagged LAST"
    );
    for i in 0..3 {
        let b = dqbuf(&r.cap).unwrap().unwrap();
        let last = b.flags & V4L2_BUF_FLAG_LAST != 0;
        assert_eq!((b.index, last), (i, i == 2), "{b:?}");
        let s = r.stream(b.index, b.bytesused);
        assert_eq!(
            frame::rle_decode(&s).unwrap(),
            frame::pattern(r.fmt, 10 + i)
        );
    }
    // After the LAST buffer: EPIPE (not EAGAIN: buffer 3 is still queued), and poll says
    // readable so that the application comes to see it.
    assert_eq!(errno(dqbuf(&r.cap)), Errno::EPIPE);
    assert_eq!(r.cap.poll(EPOLLIN), EPOLLIN | EPOLLRDNORM);
    let d = r.enc.drain().stats();
    assert_eq!((d.stops, d.drained, d.lasts), (1, 3, 1));
    // Stopped: a frame queued now waits.
    for _ in 0..3 {
        dqbuf(&r.out).unwrap().unwrap();
    }
    r.queue_frame(0, 20);
    assert_eq!(
        r.enc.encode().unwrap(),
        None,
        "a stopped encoder runs no job"
    );
    // START resumes: DQBUF waits again and the frame is encoded.
    r.cmd(V4l2EncoderCmd::start()).unwrap();
    assert_eq!(dqbuf(&r.cap).unwrap(), None, "EAGAIN, no more EPIPE");
    let e = r.enc.encode().unwrap().unwrap();
    assert_eq!((e.frame, e.last, e.capture_index), (Some(20), false, 3));
    assert_eq!(dqbuf(&r.cap).unwrap().unwrap().index, 3);
    checker_clean(&r.kernel);
}

#[test]
fn stop_with_nothing_queued_completes_an_empty_last_buffer() {
    let r = Rig::new(1, 2, None);
    qbuf_mmap(&r.cap, 0, 0).unwrap();
    r.cmd(V4l2EncoderCmd::stop()).unwrap();
    let b = dqbuf(&r.cap).unwrap().unwrap();
    assert_eq!((b.index, b.bytesused), (0, 0));
    assert_ne!(b.flags & V4L2_BUF_FLAG_LAST, 0);
    assert_eq!(b.flags & V4L2_BUF_FLAG_ERROR, 0);
    assert_eq!(errno(dqbuf(&r.cap)), Errno::EPIPE);
    assert_eq!(r.enc.drain().stats().drained, 0);
}

#[test]
fn stop_with_no_capture_buffer_flags_the_next_one_queued() {
    // v4l2_m2m_dst_buf_is_last: the LAST buffer is the next CAPTURE buffer queued.
    let r = Rig::new(1, 2, None);
    r.cmd(V4l2EncoderCmd::stop()).unwrap();
    assert!(r.enc.drain().state().next_buf_last);
    assert_eq!(dqbuf(&r.cap).unwrap(), None);
    qbuf_mmap(&r.cap, 1, 0).unwrap();
    let b = dqbuf(&r.cap).unwrap().unwrap();
    assert_eq!((b.index, b.bytesused), (1, 0));
    assert_ne!(b.flags & V4L2_BUF_FLAG_LAST, 0);
    assert!(r.enc.drain().state().has_stopped);
}

#[test]
fn encoder_cmd_errors_are_the_kernels() {
    let r = Rig::new(1, 1, None);
    // PAUSE is no m2m encoder command: EINVAL (v4l2_m2m_ioctl_try_encoder_cmd).
    let pause = V4l2EncoderCmd {
        cmd: drivers::encoder::drain::V4L2_ENC_CMD_PAUSE,
        flags: 0,
    };
    assert_eq!(r.cmd(pause).unwrap_err().errno(), Errno::EINVAL);
    // STOP while a drain is under way, START while draining: EBUSY.
    r.queue_frame(0, 1);
    r.cmd(V4l2EncoderCmd::stop()).unwrap();
    assert_eq!(
        r.cmd(V4l2EncoderCmd::stop()).unwrap_err().errno(),
        Errno::EBUSY
    );
    assert_eq!(
        r.cmd(V4l2EncoderCmd::start()).unwrap_err().errno(),
        Errno::EBUSY
    );
    // Once stopped, STOP again is a no-op.
    qbuf_mmap(&r.cap, 0, 0).unwrap();
    assert!(r.enc.encode().unwrap().unwrap().last);
    r.cmd(V4l2EncoderCmd::stop()).unwrap();
    assert_eq!(r.enc.drain().stats().stops, 1);
}

#[test]
fn capture_streamoff_ends_the_stopped_state() {
    // STREAMOFF/STREAMON of the CAPTURE queue clears EPIPE (vb2) and the stopped state
    // (v4l2_m2m_update_stop_streaming_state -> v4l2_m2m_clear_state): jobs run again.
    let r = Rig::new(1, 2, None);
    qbuf_mmap(&r.cap, 0, 0).unwrap();
    r.cmd(V4l2EncoderCmd::stop()).unwrap();
    dqbuf(&r.cap).unwrap().unwrap();
    assert_eq!(errno(dqbuf(&r.cap)), Errno::EPIPE);
    r.cap.streamoff(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
    r.cap.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
    assert_eq!(r.enc.drain().state(), Default::default());
    qbuf_mmap(&r.cap, 1, 0).unwrap();
    r.queue_frame(0, 7);
    assert_eq!(r.enc.encode().unwrap().unwrap().frame, Some(7));
    assert_eq!(dqbuf(&r.cap).unwrap().unwrap().index, 1);
}

#[test]
fn a_stream_longer_than_the_capture_buffer_completes_both_buffers_error() {
    // The application set a CAPTURE sizeimage below the codec's worst case; the noise frame's
    // stream does not fit: the engine stops at the buffer's end (hantro: buffer full, not
    // FRAME_RDY) and both buffers complete ERROR, payload 0, with no errno.
    let r = Rig::new(1, 1, Some(4096));
    qbuf_mmap(&r.cap, 0, 0).unwrap();
    r.queue_frame(0, 3);
    let e = r.enc.encode().unwrap().unwrap();
    assert_eq!((e.state, e.bytesused, e.frame), (Vb2State::Error, 0, None));
    assert!(e.error.unwrap().contains("too small"));
    let b = dqbuf(&r.cap).unwrap().unwrap();
    assert_ne!(b.flags & V4L2_BUF_FLAG_ERROR, 0);
    assert_eq!(b.bytesused, 0);
    let o = dqbuf(&r.out).unwrap().unwrap();
    assert_ne!(o.flags & V4L2_BUF_FLAG_ERROR, 0);
    assert_eq!(r.enc.stats().errors, 1);
    // A CAPTURE buffer smaller than sizeimage is refused at QBUF: EINVAL.
    let enc = Encoder::new(r.kernel.dma(), "encoder0", r.fmt).unwrap();
    let cap = enc.open_capture(&r.p);
    reqbufs(&cap, V4L2_MEMORY_DMABUF, 1).unwrap();
    let fd = drivers::media::heap_fd(&r.p, "system", 4096).unwrap();
    let err = qbuf_dmabuf(&cap, 0, fd, 0).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
}

#[test]
fn encoder_switched_on_mid_stream_forces_migration_and_every_frame_survives() {
    // A codec block that needs physically contiguous memory even behind its IOMMU.
    let kernel = boot_with("encoder0", |d| d.needs_contiguous = true);
    let dma = kernel.dma();
    let fmt = qvga();
    let size = soc::align_up(fmt.size() as u64, 4096).unwrap();
    let bufs: Vec<_> = (0..2)
        .map(|_| ConstraintExporter::export(dma, ExportSpec::new(size)).unwrap())
        .collect();
    // The producer: the ISP writes frames into the buffers, mapping around each write.
    let isp = dma.device("isp0").unwrap();
    let atts: Vec<_> = bufs.iter().map(|(b, _)| b.attach(&isp).unwrap()).collect();
    let produce = |n: u32| {
        let i = (n % 2) as usize;
        let t = atts[i].map_unlocked(DmaDirection::Bidirectional).unwrap();
        let data = frame::pattern(fmt, n);
        let mut at = 0usize;
        for s in t.dma_segments() {
            let k = (data.len() - at).min(s.len as usize);
            dma.device_write(&isp, s.addr, &data[at..at + k]).unwrap();
            at += k;
            if at == data.len() {
                break;
            }
        }
        atts[i].unmap_unlocked(t).unwrap();
        i
    };
    for n in 0..4 {
        produce(n);
    }
    let gens: Vec<u64> = bufs.iter().map(|(_, e)| e.generation()).collect();
    for (_, e) in &bufs {
        // The ISP's placement: scattered pages of dram1 (cheapest first). The codec reaches
        // only dram0 (a bank affinity, seed 002) and needs one contiguous run.
        assert!(format!("{:?}", e.placement()).contains("dram1"));
    }

    // Mid-stream: the encoder's process gets the fds and queues them; its queue tells the
    // exporter, with every attach, the bank it reaches.
    let enc = Encoder::new(dma, "encoder0", fmt).unwrap();
    enc.queue().set_importer_priv(Some(std::sync::Arc::new(
        ImporterNeeds::new().only_bank("dram0"),
    )));
    let p = kernel.spawn();
    let fds: Vec<i32> = bufs
        .iter()
        .map(|(b, _)| {
            p.install(FileObject::DmaBuf(b.clone()), uapi::ioctl::O_RDWR)
                .unwrap()
        })
        .collect();
    let fh = enc.open(&p);
    reqbufs(&fh, V4L2_MEMORY_DMABUF, 2).unwrap();
    fh.streamon(V4L2_BUF_TYPE_VIDEO_OUTPUT).unwrap();
    // Its bitstream goes into one MMAP CAPTURE buffer, queued again after each job.
    let cap = enc.open_capture(&p);
    reqbufs(&cap, V4L2_MEMORY_MMAP, 1).unwrap();
    cap.streamon(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
    // The first QBUF of each buffer attaches the encoder: the buffer moves, its last frame
    // (2 and 3) with it.
    for (i, n) in [(0usize, 2u32), (1, 3)] {
        qbuf_dmabuf(&fh, i as u32, fds[i], fmt.size() as u32).unwrap();
        qbuf_mmap(&cap, 0, 0).unwrap();
        let e = enc.encode().unwrap().unwrap();
        assert_eq!(e.frame, Some(n), "the migration copied the frame");
        dqbuf(&fh).unwrap().unwrap();
        dqbuf(&cap).unwrap().unwrap();
    }
    for (k, (_, exp)) in bufs.iter().enumerate() {
        assert!(exp.generation() > gens[k], "buffer {k} moved");
        assert_eq!(exp.log().events().len(), 1, "one migration per buffer");
    }
    for n in 4..10 {
        let i = produce(n);
        qbuf_dmabuf(&fh, i as u32, fds[i], fmt.size() as u32).unwrap();
        qbuf_mmap(&cap, 0, 0).unwrap();
        assert_eq!(enc.encode().unwrap().unwrap().frame, Some(n));
        dqbuf(&fh).unwrap().unwrap();
        dqbuf(&cap).unwrap().unwrap();
    }
    let s = enc.stats();
    assert_eq!((s.frames, s.verified), (8, 8));
    assert!(
        bufs.iter().all(|(_, e)| e.log().events().len() == 1),
        "moved once only"
    );
    fh.close();
    cap.close();
    for ((b, _), a) in bufs.iter().zip(atts) {
        b.detach(a).unwrap();
    }
    checker_clean(&kernel);
}
