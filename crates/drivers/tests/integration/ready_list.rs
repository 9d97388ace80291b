//! `media::ReadyList`, the vb2 side every media driver (and the scenario runner's queues) uses:
//! buffers in queue order, a job takes one by index and completes it, `stop_streaming` hands
//! back what is on the list *and* what a job holds.

use crate::pipeline::boot;
use drivers::media::{dqbuf, qbuf_mmap, reqbufs, ReadyList};
use std::sync::Arc;
use vb2::ioctl::*;
use vb2::{Allocator, BufType, Memory, Vb2Queue, Vb2QueueConfig, Vb2State};

const LEN: u32 = 4096;

fn rig(kernel: &Arc<kernel::Kernel>) -> (Arc<ReadyList>, Arc<Vb2Queue>, vb2::Vb2Fh) {
    let dev = kernel.dma().device("isp0").unwrap();
    let mut qc = Vb2QueueConfig::new(BufType::VideoOutput, dev);
    qc.io_modes = vec![Memory::Mmap];
    qc.allocator = Allocator::DmaContig;
    let ready = ReadyList::new(&[LEN]);
    let q = Vb2Queue::new(kernel.dma(), qc, ready.clone());
    let p = kernel.spawn();
    let fh = q.open(&p);
    fh.set_nonblocking(true);
    assert_eq!(reqbufs(&fh, V4L2_MEMORY_MMAP, 3).unwrap(), 3);
    fh.streamon(V4L2_BUF_TYPE_VIDEO_OUTPUT).unwrap();
    for i in 0..3 {
        qbuf_mmap(&fh, i, LEN).unwrap();
    }
    (ready, q, fh)
}

#[test]
fn a_job_takes_a_buffer_by_index_and_finish_gives_it_back_done() {
    let kernel = boot();
    let (ready, q, fh) = rig(&kernel);
    assert_eq!(ready.indices(), vec![0, 1, 2], "queue order");
    assert_eq!(ready.next(), Some(0));
    let vb = ready.take(1).expect("buffer 1 is on the list");
    assert_eq!(vb.index, 1);
    assert!(ready.take(1).is_none(), "taken once");
    assert_eq!(ready.indices(), vec![0, 2]);
    assert_eq!(dqbuf(&fh).unwrap().map(|b| b.index), None, "not done yet");
    assert!(ready.finish(&q, 1, Vb2State::Done).unwrap());
    assert!(
        !ready.finish(&q, 1, Vb2State::Done).unwrap(),
        "no job holds it now"
    );
    assert_eq!(dqbuf(&fh).unwrap().map(|b| b.index), Some(1));
}

#[test]
fn stop_streaming_returns_the_buffers_a_job_holds_too() {
    let kernel = boot();
    let (ready, q, fh) = rig(&kernel);
    ready.take(0).unwrap();
    fh.streamoff(V4L2_BUF_TYPE_VIDEO_OUTPUT).unwrap();
    assert!(ready.is_empty());
    // vb2 took buffer 0 back from the job: finishing it now completes nothing.
    assert!(!ready.finish(&q, 0, Vb2State::Done).unwrap());
    // Every buffer is the application's again: QBUF works for each.
    fh.streamon(V4L2_BUF_TYPE_VIDEO_OUTPUT).unwrap();
    for i in 0..3 {
        qbuf_mmap(&fh, i, LEN).unwrap();
    }
    assert_eq!(ready.indices(), vec![0, 1, 2]);
}
