//! Several simulated machines in one process: each numbers its buffers, attachments and fence
//! contexts on its own, as separate computers would.

use kernel::{FileObject, Kernel, Process};
use seam::Uapi;
use soc::SocDesc;
use std::sync::Arc;
use uapi::ioctl::{O_CLOEXEC, O_RDWR};

fn boot() -> (Arc<Kernel>, Arc<Process>) {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let p = k.spawn();
    (k, p)
}

fn heap_buf(p: &Process) -> dmabuf::DmaBuf {
    let heap = p.open_heap("system").unwrap();
    let fd = p.heap_alloc(heap, 4096, O_RDWR | O_CLOEXEC, 0).unwrap();
    p.get_dma_buf(fd).unwrap()
}

#[test]
fn test_two_machines_number_their_buffers_independently() {
    let (ka, a) = boot();
    let (kb, b) = boot();
    // A booted machine's first buffer is inode 1, whatever other machines did before.
    let a1 = heap_buf(&a);
    let a2 = heap_buf(&a);
    let b1 = heap_buf(&b);
    assert_eq!((a1.ino(), a2.ino(), b1.ino()), (1, 2, 1));
    // memfds draw from the machine's get_next_ino, not the dma-buf counter nor the other machine.
    let m = b.memfd_create("m", 0).unwrap();
    let file = b.file(m).unwrap();
    let FileObject::Memfd(mfd) = file.object() else {
        panic!("not a memfd")
    };
    assert_eq!(mfd.ino(), 1);
    // Attachment ids, likewise.
    let da = ka.dma().device("isp0").unwrap();
    let db = kb.dma().device("isp0").unwrap();
    let (ata, atb) = (a1.attach(&da).unwrap(), b1.attach(&db).unwrap());
    assert_eq!((ata.id(), atb.id()), (1, 1));
    a1.detach(ata).unwrap();
    b1.detach(atb).unwrap();
}

#[test]
fn test_two_machines_allocate_fence_contexts_independently() {
    let mut a = kernel::sim::SimProcess::boot().unwrap();
    let mut b = kernel::sim::SimProcess::boot().unwrap();
    let context = |p: &kernel::sim::SimProcess, fd| {
        let file = p.process().file(fd).unwrap();
        match file.object() {
            FileObject::SwSync(tl) => tl.context(),
            _ => panic!("not a sw_sync timeline"),
        }
    };
    let ta = a.sw_sync_open().unwrap();
    let ta2 = a.sw_sync_open().unwrap();
    let tb = b.sw_sync_open().unwrap();
    assert_eq!(
        (context(&a, ta), context(&a, ta2), context(&b, tb)),
        (1, 2, 1)
    );
}
