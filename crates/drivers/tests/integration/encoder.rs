//! The encoder's contract: frames read by DMA, stamps verified, a bitstream that decodes back;
//! and seed 000's stutter: switched on mid-stream with stricter constraints, it forces the
//! constraint exporter to migrate the shared buffers, and no frame is lost.

use crate::pipeline::{boot, boot_with, checker_clean, qvga};
use constraint::{ConstraintExporter, ExportSpec, ImporterNeeds};
use dma::DmaDirection;
use drivers::encoder::Encoder;
use drivers::frame;
use drivers::media::{dqbuf, qbuf_dmabuf, reqbufs};
use kernel::FileObject;
use vb2::ioctl::*;

#[test]
fn encoder_bitstream_decodes_to_the_frame_it_read() {
    let kernel = boot();
    let fmt = qvga();
    let enc = Encoder::new(kernel.dma(), "encoder0", fmt).unwrap();
    let p = kernel.spawn();
    let fh = enc.open(&p);
    reqbufs(&fh, V4L2_MEMORY_DMABUF, 1).unwrap();
    fh.streamon(V4L2_BUF_TYPE_VIDEO_OUTPUT).unwrap();
    let fd = drivers::media::heap_fd(&p, "system", fmt.size() as u64).unwrap();
    let buf = p.get_dma_buf(fd).unwrap();
    let m = buf.mmap(0, fmt.size() as u64, true).unwrap();
    for n in [5u32, 6] {
        buf.begin_cpu_access(DmaDirection::ToDevice).unwrap();
        m.write(0, &frame::pattern(fmt, n)).unwrap();
        buf.end_cpu_access(DmaDirection::ToDevice).unwrap();
        qbuf_dmabuf(&fh, 0, fd, fmt.size() as u32).unwrap();
        let e = enc.encode().unwrap().unwrap();
        assert_eq!((e.frame, e.verified), (Some(n), true));
        assert_eq!(
            frame::rle_decode(&e.bitstream).unwrap(),
            frame::pattern(fmt, n)
        );
        dqbuf(&fh).unwrap().unwrap();
    }
    assert_eq!(enc.encode().unwrap(), None);
    let s = enc.stats();
    assert_eq!((s.frames, s.verified, s.corrupted), (2, 2, 0));
    drop(m);
    fh.close();
    checker_clean(&kernel);
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
    // The first QBUF of each buffer attaches the encoder: the buffer moves, its last frame
    // (2 and 3) with it.
    for (i, n) in [(0usize, 2u32), (1, 3)] {
        qbuf_dmabuf(&fh, i as u32, fds[i], fmt.size() as u32).unwrap();
        let e = enc.encode().unwrap().unwrap();
        assert_eq!(e.frame, Some(n), "the migration copied the frame");
        dqbuf(&fh).unwrap().unwrap();
    }
    for (k, (_, exp)) in bufs.iter().enumerate() {
        assert!(exp.generation() > gens[k], "buffer {k} moved");
        assert_eq!(exp.log().events().len(), 1, "one migration per buffer");
    }
    for n in 4..10 {
        let i = produce(n);
        qbuf_dmabuf(&fh, i as u32, fds[i], fmt.size() as u32).unwrap();
        assert_eq!(enc.encode().unwrap().unwrap().frame, Some(n));
        dqbuf(&fh).unwrap().unwrap();
    }
    let s = enc.stats();
    assert_eq!((s.frames, s.verified), (8, 8));
    assert!(
        bufs.iter().all(|(_, e)| e.log().events().len() == 1),
        "moved once only"
    );
    fh.close();
    for ((b, _), a) in bufs.iter().zip(atts) {
        b.detach(a).unwrap();
    }
    checker_clean(&kernel);
}
