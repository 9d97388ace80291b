//! EXPBUF from a capture queue imported into an output queue (DMABUF), with the bytes checked
//! end to end through real DMA: the camera writes a pattern, the importer reads it back.

use crate::*;

#[test]
fn expbuf_from_camera_imported_by_output_queues_end_to_end() {
    let kernel = Kernel::boot(soc_desc()).unwrap();
    let cam = Rig::on(&kernel, BufType::VideoCapture, "camera0", &[16384], |_| {});
    let importers: Vec<Rig> = ["isp0", "vdev0"]
        .iter()
        .map(|d| Rig::on(&kernel, BufType::VideoOutput, d, &[16384], |_| {}))
        .collect();
    const N: u32 = 3;
    cam.reqbufs(V4L2_MEMORY_MMAP, N).unwrap();
    let mut fds = Vec::new(); // per importer, per buffer
    for imp in &importers {
        imp.reqbufs(V4L2_MEMORY_DMABUF, N).unwrap();
        let mut v = Vec::new();
        for i in 0..N {
            let mut eb = V4l2ExportBuffer {
                type_: cam.t(),
                index: i,
                flags: uapi::ioctl::O_RDWR | uapi::ioctl::O_CLOEXEC,
                ..Default::default()
            };
            cam.fh.expbuf(&mut eb).unwrap();
            v.push(cam.process.send_fd(eb.fd, &imp.process).unwrap());
            cam.process.close(eb.fd).unwrap();
        }
        imp.fh.streamon(imp.t()).unwrap();
        fds.push(v);
    }
    for i in 0..N {
        cam.qbuf(V4L2_MEMORY_MMAP, i).unwrap();
    }
    cam.fh.streamon(cam.t()).unwrap();
    let mut expected = Vec::new();
    for frame in 0..8u32 {
        let b = cam.dqbuf(V4L2_MEMORY_MMAP).unwrap();
        assert_eq!((b.sequence, b.bytesused), (frame, 16384));
        expected.push(checksum(&pattern(frame, 0, 16384)));
        for (imp, v) in importers.iter().zip(&fds) {
            let mut ob = imp.dmabuf_buf(b.index, &[v[b.index as usize]]);
            ob.bytesused = b.bytesused;
            imp.fh.qbuf(&mut ob).unwrap();
            let done = imp.dqbuf(V4L2_MEMORY_DMABUF).unwrap();
            assert_eq!(done.index, b.index);
        }
        cam.qbuf(V4L2_MEMORY_MMAP, b.index).unwrap();
    }
    for imp in &importers {
        assert_eq!(*imp.drv.output_sums.lock(), expected, "{:?}", imp.q);
        let s = imp.q.counters().snapshot();
        assert_eq!(
            (s.attach, s.map),
            (u64::from(N), u64::from(N)),
            "mapped once each"
        );
    }
    cam.fh.close();
    for imp in importers {
        imp.fh.close();
        imp.balanced();
    }
    cam.balanced();
    let c = kernel.dma().checker();
    assert_eq!(c.total(), 0, "{:#?}", c.findings());
}
