//! Names (behaviour 84), fdinfo (87), bufinfo, and self-import (seed 003).

use crate::core_common::*;
use dmabuf::testing::{mock_dma, MockExporter};
use dmabuf::{BufRegistry, ExportInfo};
use fence::DmaResvUsage;
use std::sync::Arc;
use uapi::{AsErrno, Errno};

#[test]
fn set_name_rules() {
    let (dma, _ops, buf) = setup_default();
    assert_eq!(buf.name(), None);
    buf.set_name(b"first").unwrap();
    buf.set_name(b"second\0ignored").unwrap();
    assert_eq!(
        buf.name().as_deref(),
        Some("second"),
        "a new name replaces the old one"
    );
    let max = [b'n'; 31];
    buf.set_name(&max).unwrap();
    assert_eq!(buf.name().unwrap().len(), 31);
    let err = buf.set_name(&[b'n'; 32]).unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL);
    assert_eq!(
        buf.name().unwrap().len(),
        31,
        "a refused name changes nothing"
    );
    // Attachments do not matter (recent mainline; older kernels said EBUSY).
    let _att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    buf.set_name(b"attached").unwrap();
    buf.set_name(b"").unwrap();
    assert_eq!(buf.name().as_deref(), Some(""));
}

#[test]
fn fdinfo_shows_size_count_exp_name_and_name() {
    let (_dma, _ops, buf) = setup(dmabuf::OpsFeatures::MMAP, false, 8192);
    assert_eq!(buf.fdinfo(), "size:\t8192\ncount:\t1\nexp_name:\tmock\n");
    let m = buf.mmap(0, 4096, false).unwrap();
    buf.set_name(b"frame0").unwrap();
    assert_eq!(
        buf.fdinfo(),
        "size:\t8192\ncount:\t2\nexp_name:\tmock\nname:\tframe0\n"
    );
    drop(m);
}

#[test]
fn bufinfo_lists_every_live_buffer() {
    let dma = mock_dma();
    let reg = BufRegistry::new();
    let a = reg
        .export(&dma, ExportInfo::new("system", 4096, MockExporter::new()))
        .unwrap();
    let b = reg
        .export(&dma, ExportInfo::new("cma0", 8192, MockExporter::new()))
        .unwrap();
    a.set_name(b"camera").unwrap();
    let _att = b.attach(&dma.device("display0").unwrap()).unwrap();
    let f = fence("render");
    add_fence(&b, &f, DmaResvUsage::Write);
    let infos = reg.infos();
    assert_eq!(infos.len(), 2);
    assert_eq!(
        (infos[0].exp_name.as_str(), infos[0].name.as_deref()),
        ("system", Some("camera"))
    );
    assert_eq!(infos[1].attachments[0].device, "display0");
    assert_eq!(infos[1].fences.len(), 1);
    let text = reg.bufinfo();
    assert!(text.contains("Dma-buf Objects:"));
    assert!(text.contains("\tcamera\n"), "{text}");
    assert!(text.contains("\tdisplay0\n"), "{text}");
    assert!(
        text.contains("write fence:test render seq 1 unsignalled"),
        "{text}"
    );
    assert!(text.contains("Total 2 objects, 12288 bytes"), "{text}");
    drop(a);
    assert_eq!(reg.len(), 1);
    f.signal().unwrap();
}

/// A driver's own exporter, as a GEM driver's prime ops.
struct MyGem {
    inner: Arc<MockExporter>,
    device: String,
}

impl dmabuf::DmaBufOps for MyGem {
    fn map_dma_buf(
        &self,
        att: &dmabuf::Attachment,
        dir: DmaDirection,
        resv: &mut fence::ResvGuard<'_>,
    ) -> Result<Arc<dma::SgTable>, dmabuf::DmaBufError> {
        self.inner.map_dma_buf(att, dir, resv)
    }
    fn unmap_dma_buf(
        &self,
        att: &dmabuf::Attachment,
        sgt: Arc<dma::SgTable>,
        dir: DmaDirection,
        resv: &mut fence::ResvGuard<'_>,
    ) -> Result<(), dmabuf::DmaBufError> {
        self.inner.unmap_dma_buf(att, sgt, dir, resv)
    }
    fn release(&self, info: &dmabuf::ReleaseInfo) {
        self.inner.release(info)
    }
}

/// `drm_gem_prime_import`: our own buffer comes back as our object, anything else is attached.
fn import(buf: &dmabuf::DmaBuf, me: &str) -> Result<Option<Arc<MyGem>>, dmabuf::DmaBufError> {
    match buf.exporter_ops::<MyGem>() {
        Some(gem) if gem.device == me => Ok(Some(gem)),
        _ => Ok(None),
    }
}

#[test]
fn self_import_returns_own_object() {
    use dmabuf::DmaBufOps;
    let dma = mock_dma();
    let gem = Arc::new(MyGem {
        inner: MockExporter::new(),
        device: "gpu0".into(),
    });
    let buf = dmabuf::DmaBuf::export(&dma, ExportInfo::new("gpu0-gem", 4096, gem.clone())).unwrap();
    let back = import(&buf, "gpu0").unwrap().expect("our own buffer");
    assert!(Arc::ptr_eq(&back, &gem), "the same object, no attachment");
    assert!(buf.attachment_infos().is_empty());
    assert!(
        import(&buf, "gpu1").unwrap().is_none(),
        "same driver, another device: import"
    );
    let foreign = MockExporter::new().export(&dma, 4096).unwrap();
    assert!(import(&foreign, "gpu0").unwrap().is_none());
    assert_eq!(gem.features(), dmabuf::OpsFeatures::NONE);
}
