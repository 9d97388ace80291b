//! The implicit/explicit sync bridge (behaviours 85-86) and poll (83).

use crate::core_common::*;
use fence::{context_alloc, DmaFenceArray, DmaResvUsage, SyncFile};
use uapi::ioctl::{DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_WRITE, POLLIN, POLLOUT};
use uapi::{AsErrno, Errno};

const R: u32 = DMA_BUF_SYNC_READ as u32;
const W: u32 = DMA_BUF_SYNC_WRITE as u32;
const RW: u32 = DMA_BUF_SYNC_RW as u32;

#[test]
fn export_sync_file_flags() {
    let (_dma, _ops, buf) = setup_default();
    for bad in [0, 4, R | 4, 0x8000_0000] {
        assert_eq!(
            buf.export_sync_file(bad).unwrap_err().errno(),
            Errno::EINVAL,
            "{bad:#x}"
        );
    }
    for ok in [R, W, RW] {
        let sf = buf.export_sync_file(ok).unwrap();
        assert!(sf.fence().is_signaled(), "no fences: the signaled stub");
    }
}

#[test]
fn export_sync_file_usages() {
    let (_dma, _ops, buf) = setup_default();
    let reader = fence("reader");
    add_fence(&buf, &reader, DmaResvUsage::Read);
    let book = fence("bookkeep");
    add_fence(&buf, &book, DmaResvUsage::Bookkeep);
    // READ: snapshot of the WRITE-usage fences (none pending).
    assert!(buf.export_sync_file(R).unwrap().fence().is_signaled());
    // WRITE and RW: snapshot of the READ-usage fences: the reader, never BOOKKEEP.
    for flags in [W, RW] {
        let sf = buf.export_sync_file(flags).unwrap();
        assert!(sf.fence().ptr_eq(&reader), "{flags:#x}");
    }
    let writer = fence("writer");
    add_fence(&buf, &writer, DmaResvUsage::Write);
    assert!(buf.export_sync_file(R).unwrap().fence().ptr_eq(&writer));
    let both = buf.export_sync_file(W).unwrap();
    assert_eq!(both.num_fences(), 2, "several fences: an array");
    reader.signal().unwrap();
    assert!(!both.fence().is_signaled());
    writer.signal().unwrap();
    assert!(both.fence().is_signaled());
}

#[test]
fn import_sync_file_flags_and_usages() {
    let (_dma, _ops, buf) = setup_default();
    let f = fence("explicit");
    let sf = SyncFile::new(&f);
    for bad in [0, 4, RW | 8] {
        assert_eq!(
            buf.import_sync_file(bad, &sf).unwrap_err().errno(),
            Errno::EINVAL
        );
    }
    assert!(
        buf.resv().test_signaled(DmaResvUsage::Bookkeep),
        "a refused import adds nothing"
    );
    buf.import_sync_file(R, &sf).unwrap();
    assert!(
        buf.resv().test_signaled(DmaResvUsage::Write),
        "READ -> READ usage"
    );
    assert!(!buf.resv().test_signaled(DmaResvUsage::Read));
    let g = fence("writer");
    buf.import_sync_file(RW, &SyncFile::new(&g)).unwrap();
    assert!(
        !buf.resv().test_signaled(DmaResvUsage::Write),
        "RW -> WRITE usage"
    );
    let h = fence("writer2");
    buf.import_sync_file(W, &SyncFile::new(&h)).unwrap();
    let writes = buf.resv().get_fences(DmaResvUsage::Write);
    assert!(writes.iter().any(|x| x.ptr_eq(&h)) && writes.iter().any(|x| x.ptr_eq(&g)));
}

#[test]
fn import_sync_file_unwraps_containers() {
    let (_dma, _ops, buf) = setup_default();
    let (a, b) = (fence("a"), fence("b"));
    let arr = DmaFenceArray::create(
        vec![a.clone(), b.clone()],
        context_alloc(1).unwrap(),
        1,
        false,
    )
    .unwrap();
    buf.import_sync_file(W, &SyncFile::new(&arr)).unwrap();
    let got = buf.resv().get_fences(DmaResvUsage::Write);
    assert_eq!(got.len(), 2, "each leaf, not the array");
    assert!(got.iter().any(|x| x.ptr_eq(&a)) && got.iter().any(|x| x.ptr_eq(&b)));
    assert!(got.iter().all(|x| !x.is_container()));
}

#[test]
fn poll_by_usage() {
    let (_dma, _ops, buf) = setup_default();
    assert_eq!(buf.poll(0), 0, "nothing asked, nothing reported");
    assert_eq!(buf.poll(POLLIN | POLLOUT), POLLIN | POLLOUT);
    let book = fence("bookkeep");
    add_fence(&buf, &book, DmaResvUsage::Bookkeep);
    assert_eq!(
        buf.poll(POLLIN | POLLOUT),
        POLLIN | POLLOUT,
        "BOOKKEEP is ignored"
    );
    let reader = fence("reader");
    add_fence(&buf, &reader, DmaResvUsage::Read);
    assert_eq!(
        buf.poll(POLLIN | POLLOUT),
        POLLIN,
        "a reader blocks only writers"
    );
    let writer = fence("writer");
    add_fence(&buf, &writer, DmaResvUsage::Write);
    assert_eq!(buf.poll(POLLIN | POLLOUT), 0);
    writer.signal().unwrap();
    assert_eq!(buf.poll(POLLIN), POLLIN);
    let kernel = fence("kernel");
    add_fence(&buf, &kernel, DmaResvUsage::Kernel);
    assert_eq!(buf.poll(POLLIN), 0, "KERNEL fences block readers too");
    kernel.signal().unwrap();
    reader.signal().unwrap();
    assert_eq!(buf.poll(POLLIN | POLLOUT), POLLIN | POLLOUT);
}

#[test]
fn poll_wait_times_out_and_wakes() {
    let (_dma, _ops, buf) = setup_default();
    let writer = fence("writer");
    add_fence(&buf, &writer, DmaResvUsage::Write);
    assert_eq!(
        buf.poll_wait(POLLIN, Some(std::time::Duration::ZERO), None)
            .unwrap(),
        0
    );
    let b = buf.clone();
    let t = std::thread::spawn(move || b.poll_wait(POLLIN, None, None));
    writer.signal().unwrap();
    assert_eq!(t.join().unwrap().unwrap(), POLLIN);
}
