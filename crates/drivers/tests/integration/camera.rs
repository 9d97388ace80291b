//! The camera's contract: stamped frames by DMA into queued buffers, frame numbers equal to vb2
//! sequence numbers, dropped frames without buffers, ERROR completions at STREAMOFF.

use crate::pipeline::{boot, checker_clean, small, CamRig};
use drivers::frame;
use drivers::media::{dqbuf, qbuf_mmap};
use vb2::ioctl::*;

#[test]
fn camera_writes_stamped_frames_by_dma_that_user_space_reads_back() {
    let kernel = boot();
    let fmt = small();
    let cam = CamRig::new(&kernel, fmt, 2);
    cam.queue_all(2);
    let maps: Vec<_> = (0..2)
        .map(|i| {
            cam.fh
                .mmap(
                    mmap_cookie(i, 0),
                    fmt.size() as u64,
                    uapi::ioctl::PROT_READ,
                    true,
                )
                .unwrap()
        })
        .collect();
    for n in 0..6u32 {
        let shot = cam.camera.capture().unwrap().unwrap();
        let b = dqbuf(&cam.fh).unwrap().unwrap();
        assert_eq!((b.sequence, b.bytesused as usize), (n, fmt.size()));
        let mut got = vec![0u8; fmt.size()];
        maps[b.index as usize].read(0, &mut got).unwrap();
        assert_eq!(frame::verify_stamp(&got), Ok(n));
        assert_eq!(frame::checksum(&got), shot.checksum);
        assert_eq!(got, cam.camera.expected(n));
        assert!(shot.cost > std::time::Duration::ZERO);
        qbuf_mmap(&cam.fh, b.index, 0).unwrap();
    }
    assert_eq!(cam.camera.stats().captured, 6);
    drop(maps);
    cam.fh.close();
    cam.fh
        .queue()
        .counters()
        .snapshot()
        .check_balanced()
        .unwrap();
    checker_clean(&kernel);
}

#[test]
fn capture_with_no_buffer_queued_drops_the_frame_without_numbering_it() {
    let kernel = boot();
    let cam = CamRig::new(&kernel, small(), 1);
    assert_eq!(cam.camera.capture().unwrap(), None, "not streaming");
    cam.queue_all(1);
    assert_eq!(cam.camera.capture().unwrap().unwrap().frame, 0);
    assert_eq!(
        cam.camera.capture().unwrap(),
        None,
        "the only buffer is done"
    );
    qbuf_mmap(&cam.fh, dqbuf(&cam.fh).unwrap().unwrap().index, 0).unwrap();
    assert_eq!(cam.camera.capture().unwrap().unwrap().frame, 1);
    assert_eq!(cam.camera.stats().dropped, 2);
    checker_clean(&kernel);
}

#[test]
fn streamoff_hands_held_buffers_back_and_counters_balance() {
    let kernel = boot();
    let cam = CamRig::new(&kernel, small(), 3);
    cam.queue_all(3);
    assert_eq!(cam.camera.ready(), 3);
    cam.camera.capture().unwrap().unwrap();
    cam.fh.streamoff(V4L2_BUF_TYPE_VIDEO_CAPTURE).unwrap();
    assert_eq!(cam.camera.ready(), 0);
    assert_eq!(cam.fh.queue().counters().snapshot().warnings, 0);
    cam.fh.close();
    cam.fh
        .queue()
        .counters()
        .snapshot()
        .check_balanced()
        .unwrap();
    checker_clean(&kernel);
}
