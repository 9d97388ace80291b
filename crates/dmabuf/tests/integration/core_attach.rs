//! Attach and detach (behaviours 65-67).

use crate::core_common::*;
use dmabuf::DmaBufError;
use std::sync::Arc;
use uapi::{AsErrno, Errno};

#[test]
fn attach_refused_by_exporter_lists_nothing() {
    let (dma, ops, buf) = setup_default();
    ops.fail.lock().attach = Some(Errno::EBUSY);
    let err = buf.attach(&dma.device("display0").unwrap()).unwrap_err();
    assert_eq!(
        err.errno(),
        Errno::EBUSY,
        "the exporter's error reaches the importer"
    );
    assert!(buf.attachment_infos().is_empty());
    assert_eq!(
        count(&ops.counters.detach),
        0,
        "a refused attach is never detached"
    );
    assert_eq!(buf.ref_count(), 1, "no reference leaked");
}

#[test]
fn attach_lists_device_and_static_is_not_peer2peer() {
    let (dma, ops, buf) = setup_default();
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let gpu = buf
        .dynamic_attach(
            &dma.device("gpu0").unwrap(),
            Arc::new(Recorder {
                p2p: true,
                ..Default::default()
            }),
        )
        .unwrap();
    let infos = buf.attachment_infos();
    assert_eq!(infos.len(), 2);
    assert_eq!(
        (
            infos[0].device.as_str(),
            infos[0].dynamic,
            infos[0].peer2peer
        ),
        ("isp0", false, false)
    );
    assert_eq!(
        (
            infos[1].device.as_str(),
            infos[1].dynamic,
            infos[1].peer2peer
        ),
        ("gpu0", true, true)
    );
    assert!(!isp.peer2peer() && gpu.peer2peer());
    assert_eq!(ops.attached.lock().len(), 2, "the exporter saw both");
    assert!(buf.attachments()[1].ptr_eq(&gpu));
}

#[test]
fn dynamic_importer_without_allow_peer2peer_is_not_peer2peer() {
    let (dma, _ops, buf) = setup_default();
    let att = buf
        .dynamic_attach(&dma.device("gpu0").unwrap(), Arc::new(Recorder::default()))
        .unwrap();
    assert!(att.is_dynamic() && !att.peer2peer());
}

// Behaviour 65, "importer_ops without move_notify -> EINVAL": impossible by type, since
// `ImporterOps::move_notify` is a required method:
//
//     struct NoNotify;
//     impl dmabuf::ImporterOps for NoNotify {}   // error[E0046]: missing `move_notify`

#[test]
fn detach_unlinks_and_calls_exporter() {
    let (dma, ops, buf) = setup_default();
    let att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let view = buf.attachments().pop().unwrap();
    buf.detach(att).unwrap();
    assert!(buf.attachment_infos().is_empty());
    assert_eq!(count(&ops.counters.detach), 1);
    assert!(!view.is_attached());
    let mut g = buf.resv().lock(None).unwrap();
    assert_eq!(
        view.map(&mut g, DmaDirection::ToDevice).unwrap_err(),
        DmaBufError::NotAttached
    );
}

#[test]
fn detach_from_another_buffer_is_einval() {
    let (dma, ops, buf) = setup_default();
    let other = ops.export(&dma, 4096).unwrap();
    let att = other.attach(&dma.device("isp0").unwrap()).unwrap();
    assert_eq!(buf.detach(att).unwrap_err().errno(), Errno::EINVAL);
    assert!(buf.attachment_infos().is_empty());
}

#[test]
fn dropping_the_handle_detaches() {
    let (dma, ops, buf) = setup_default();
    {
        let _att = buf.attach(&dma.device("isp0").unwrap()).unwrap();
        assert_eq!(buf.attachment_infos().len(), 1);
    }
    assert!(buf.attachment_infos().is_empty());
    assert_eq!(count(&ops.counters.detach), 1);
    assert_eq!(buf.ref_count(), 1);
}
