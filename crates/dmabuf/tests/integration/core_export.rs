//! Export validation and lifetime (behaviours 59-62, 64).

use crate::core_common::*;
use dma::SgTable;
use dmabuf::testing::{mock_dma, MockExporter};
use dmabuf::{Attachment, DmaBuf, DmaBufError, DmaBufOps, ExportInfo, OpsFeatures, ReleaseInfo};
use fence::{DmaResv, ResvGuard};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uapi::ioctl::{O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR};
use uapi::{AsErrno, Errno};

/// Ops declaring `features` whose mandatory callbacks are never reached.
struct Declares(OpsFeatures, AtomicU64);

impl DmaBufOps for Declares {
    fn features(&self) -> OpsFeatures {
        self.0
    }
    fn map_dma_buf(
        &self,
        _: &Attachment,
        _: DmaDirection,
        _: &mut ResvGuard<'_>,
    ) -> Result<Arc<SgTable>, DmaBufError> {
        Err(DmaBufError::NoMemory("never".into()))
    }
    fn unmap_dma_buf(
        &self,
        _: &Attachment,
        _: Arc<SgTable>,
        _: DmaDirection,
        _: &mut ResvGuard<'_>,
    ) -> Result<(), DmaBufError> {
        Ok(())
    }
    fn release(&self, _: &ReleaseInfo) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

// Behaviour 59 (missing priv, ops, map_dma_buf, unmap_dma_buf or release) cannot be written:
// they are required methods of `DmaBufOps`, and the ops object is the priv.

#[test]
fn export_with_pin_without_unpin_is_einval() {
    let dma = mock_dma();
    for f in [
        OpsFeatures::PIN,
        OpsFeatures::UNPIN,
        OpsFeatures::PIN | OpsFeatures::MMAP,
    ] {
        let ops = Arc::new(Declares(f, AtomicU64::new(0)));
        let err = DmaBuf::export(&dma, ExportInfo::new("half-pin", 4096, ops.clone())).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL, "{f:?}");
        assert!(matches!(err, DmaBufError::PinWithoutUnpin(_)));
        assert_eq!(
            ops.1.load(Ordering::SeqCst),
            0,
            "a refused export never releases"
        );
    }
    let both = Arc::new(Declares(
        OpsFeatures::PIN | OpsFeatures::UNPIN,
        AtomicU64::new(0),
    ));
    let buf = DmaBuf::export(&dma, ExportInfo::new("dynamic", 4096, both)).unwrap();
    assert!(buf.is_dynamic());
}

#[test]
fn export_accepts_size_zero() {
    let dma = mock_dma();
    let buf = DmaBuf::export(&dma, ExportInfo::new("empty", 0, MockExporter::new())).unwrap();
    assert_eq!(buf.size(), 0);
}

#[test]
fn export_keeps_only_accmode_and_nonblock() {
    let dma = mock_dma();
    let mut info = ExportInfo::new("flags", 4096, MockExporter::new());
    info.flags = O_RDWR | O_CLOEXEC | O_NONBLOCK | 0o100; // O_CREAT too
    let buf = DmaBuf::export(&dma, info).unwrap();
    assert_eq!(buf.file_flags(), O_RDWR | O_NONBLOCK);
}

#[test]
fn export_without_resv_embeds_one_and_shared_resv_is_shared() {
    let dma = mock_dma();
    let a = DmaBuf::export(&dma, ExportInfo::new("a", 4096, MockExporter::new())).unwrap();
    let b = DmaBuf::export(&dma, ExportInfo::new("b", 4096, MockExporter::new())).unwrap();
    assert!(!Arc::ptr_eq(a.resv(), b.resv()));
    let shared = Arc::new(DmaResv::new());
    let mut info = ExportInfo::new("c", 4096, MockExporter::new());
    info.resv = Some(shared.clone());
    let c = DmaBuf::export(&dma, info).unwrap();
    assert!(Arc::ptr_eq(c.resv(), &shared));
}

#[test]
fn release_runs_exactly_once_after_last_fd_mmap_attachment_clone() {
    let (dma, ops, buf) = setup_default();
    let fd_ref = buf.clone(); // what an fd table holds
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let m = buf.mmap(0, 4096, true).unwrap();
    m.write(0, b"x").unwrap();
    let v = buf.vmap_unlocked().unwrap();
    drop(buf);
    assert_eq!(count(&ops.counters.release), 0);
    drop(fd_ref);
    assert_eq!(
        count(&ops.counters.release),
        0,
        "the attachment, mmap and vmap hold references"
    );
    let buf = att.dmabuf().clone();
    buf.vunmap_unlocked(v).unwrap();
    drop(m);
    drop(att); // dropping the handle detaches
    assert_eq!(count(&ops.counters.detach), 1);
    assert_eq!(count(&ops.counters.release), 0);
    drop(buf);
    assert_eq!(count(&ops.counters.release), 1);
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn release_once_with_references_dropped_on_many_threads() {
    let (_dma, ops, buf) = setup_default();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let b = buf.clone();
            std::thread::spawn(move || {
                let c = b.clone();
                drop(b);
                drop(c);
            })
        })
        .collect();
    drop(buf);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(count(&ops.counters.release), 1);
}

#[test]
fn registered_buffer_is_listed_until_release() {
    let dma = mock_dma();
    let reg = dmabuf::BufRegistry::new();
    let buf = reg
        .export(&dma, ExportInfo::new("listed", 4096, MockExporter::new()))
        .unwrap();
    assert_eq!(reg.len(), 1);
    assert!(reg.live()[0].ptr_eq(&buf));
    drop(buf);
    assert!(reg.is_empty());
    assert_eq!((reg.stats().exported, reg.stats().released), (1, 1));
}

#[test]
fn read_only_file_refuses_writable_mmap() {
    let dma = mock_dma();
    let mut info = ExportInfo::new("ro", 4096, MockExporter::new());
    info.flags = O_RDONLY;
    let buf = DmaBuf::export(&dma, info).unwrap();
    assert_eq!(buf.mmap(0, 4096, true).unwrap_err().errno(), Errno::EACCES);
    assert!(buf.mmap(0, 4096, false).is_ok());
}
