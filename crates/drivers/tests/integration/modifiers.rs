//! Format-modifier and pitch negotiation through the constraint exporter, with the real
//! modifier table (`drivers::modifier`): the common tiled layout for two devices, the linear
//! fallback (a re-laying migration, or an explained refusal) when a third joins, an empty
//! intersection explained by device, the pitch LCM and its re-layout, and the copy engine.

use constraint::{
    Conflict, ConstraintExporter, CpuMover, DmaEngineMover, ExportSpec, ImageLayouts,
    MigrationConfig, Negotiated, Negotiation, Policy,
};
use dma::{DmaApi, DmaDirection};
use dmabuf::{Attachment, DmaBuf};
use drivers::format::FormatInfo;
use drivers::modifier::ImageSpec;
use soc::{Soc, SocDesc};
use std::sync::Arc;
use uapi::{AsErrno, Errno};

const W: u32 = 96;
const H: u32 = 40;

fn image() -> ImageSpec {
    ImageSpec {
        format: FormatInfo::by_name("XRGB8888").unwrap(),
        width: W,
        height: H,
    }
}

/// The default machine with modifier lists and pitch alignments per device.
fn machine(mods: &[(&str, &[&str])], pitch: &[(&str, u64)]) -> Arc<DmaApi> {
    let mut desc = SocDesc::default_soc();
    for d in &mut desc.devices {
        if let Some((_, m)) = mods.iter().find(|(n, _)| *n == d.name) {
            d.modifiers = m.iter().map(|s| s.to_string()).collect();
        }
        if let Some((_, p)) = pitch.iter().find(|(n, _)| *n == d.name) {
            d.pitch_align = *p;
        }
    }
    Arc::new(DmaApi::new(&Soc::new(desc).unwrap()))
}

fn export(
    dma: &Arc<DmaApi>,
    pref: &[&str],
    spec: impl Fn(ExportSpec) -> ExportSpec,
) -> (DmaBuf, Arc<ConstraintExporter>) {
    let img = image();
    let neg = Negotiation {
        preference: pref.iter().map(|s| s.to_string()).collect(),
        image: Arc::new(img),
    };
    let layout = img.layout("linear", 1).unwrap();
    ConstraintExporter::export(dma, spec(ExportSpec::with_layout(layout).negotiate(neg))).unwrap()
}

/// The visible image: byte `x` of line `y` in a linear layout of `pitch`.
fn linear_image(pitch: u64, size: u64) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    for y in 0..u64::from(H) {
        for x in 0..u64::from(W) * 4 {
            v[(y * pitch + x) as usize] = ((x * 31 + y * 7) % 251) as u8 + 1;
        }
    }
    v
}

/// `image` (linear, `from`) as it lies in layout `to`.
fn converted(from: &Negotiated, to: &Negotiated, image: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; to.layout.size as usize];
    for p in image_spec_convert(from, to) {
        out[p.dst as usize..(p.dst + p.len) as usize]
            .copy_from_slice(&image[p.src as usize..(p.src + p.len) as usize]);
    }
    out
}

fn image_spec_convert(from: &Negotiated, to: &Negotiated) -> Vec<constraint::Piece> {
    image().convert(from, to)
}

fn write(dma: &DmaApi, att: &Attachment, data: &[u8]) {
    let sgt = att.map_unlocked(DmaDirection::FromDevice).unwrap();
    let mut done = 0usize;
    for s in sgt.dma_segments() {
        let n = (s.len as usize).min(data.len() - done);
        dma.device_write(att.device(), s.addr, &data[done..done + n])
            .unwrap();
        done += n;
        if done == data.len() {
            break;
        }
    }
    att.unmap_unlocked(sgt).unwrap();
}

fn read(dma: &DmaApi, att: &Attachment, len: usize) -> Vec<u8> {
    let sgt = att.map_unlocked(DmaDirection::ToDevice).unwrap();
    let mut out = vec![0u8; len];
    let mut done = 0usize;
    for s in sgt.dma_segments() {
        let n = (s.len as usize).min(len - done);
        dma.device_read(att.device(), s.addr, &mut out[done..done + n])
            .unwrap();
        done += n;
        if done == len {
            break;
        }
    }
    att.unmap_unlocked(sgt).unwrap();
    out
}

const ISP: &[&str] = &["vivante_super_tiled", "vivante_tiled", "linear"];
const GPU: &[&str] = &["vivante_tiled", "linear"];

#[test]
fn two_devices_share_the_common_tiled_layout_and_a_third_falls_back_to_linear_by_migration() {
    let dma = machine(&[("isp0", ISP), ("gpu0", GPU)], &[]);
    let (buf, exp) = export(&dma, ISP, |s| s);
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let gpu = buf.attach(&dma.device("gpu0").unwrap()).unwrap();
    let lin_image = linear_image(u64::from(W) * 4, image().layout("linear", 1).unwrap().size);
    // First map: the negotiation picks the first modifier of the exporter's that both list.
    let sgt = isp.map_unlocked(DmaDirection::FromDevice).unwrap();
    isp.unmap_unlocked(sgt).unwrap();
    let tiled = exp.negotiated().unwrap();
    assert_eq!(tiled.modifier, "vivante_tiled");
    assert_eq!(tiled.value, 0x0600_0000_0000_0001);
    assert_eq!(tiled.passed_over[0].modifier, "vivante_super_tiled");
    assert_eq!(tiled.passed_over[0].lacking, ["gpu0"]);
    let reason = &exp.placement_reasons()[0];
    let line = reason
        .constraints()
        .into_iter()
        .find(|l| l.constraint == "modifier")
        .unwrap();
    assert_eq!(line.by.as_deref(), Some("gpu0"), "{line:?}");
    assert!(line.value.contains("vivante_tiled"), "{line:?}");

    // The producer writes the image in the tiled layout.
    let lin0 = Negotiated {
        modifier: "linear".into(),
        value: 0,
        layout: image().layout("linear", 1).unwrap(),
        ..tiled.clone()
    };
    let in_tiles = converted(&lin0, &tiled, &lin_image);
    assert_ne!(in_tiles, lin_image, "tiling reorders the bytes");
    write(&dma, &isp, &in_tiles);
    assert_eq!(read(&dma, &gpu, in_tiles.len()), in_tiles);

    // encoder0 lists no modifier (linear only): the buffer re-lays out to linear on the way.
    let enc = buf.attach(&dma.device("encoder0").unwrap()).unwrap();
    let now = exp.negotiated().unwrap();
    assert_eq!(now.modifier, "linear");
    assert_eq!(now.passed_over.len(), 2, "{:?}", now.passed_over);
    assert!(now.passed_over[1].lacking.contains(&"encoder0".to_string()));
    let ev = exp.log().events();
    assert_eq!(ev.len(), 1);
    let what = ev[0].relayout.as_deref().unwrap();
    assert!(
        what.contains("vivante_tiled -> linear") && what.contains("encoder0"),
        "{what}"
    );
    assert_eq!(ev[0].bytes, u64::from(W * H) * 4, "every visible byte once");
    // Every device reads the linear image now.
    assert_eq!(read(&dma, &enc, lin_image.len()), lin_image);
    assert_eq!(read(&dma, &gpu, lin_image.len()), lin_image);
    assert_eq!(exp.layout().planes[0].pitch, u64::from(W) * 4);
    let reasons = exp.placement_reasons();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[1].negotiated.as_ref().unwrap().modifier, "linear");
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn a_third_device_without_the_modifier_is_refused_with_the_explanation_when_the_buffer_cannot_move()
{
    let dma = machine(&[("isp0", ISP), ("gpu0", GPU)], &[]);
    let (buf, exp) = export(&dma, ISP, |s| s.policy(Policy::NoMigrate));
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let _gpu = buf.attach(&dma.device("gpu0").unwrap()).unwrap();
    let sgt = isp.map_unlocked(DmaDirection::Bidirectional).unwrap();
    isp.unmap_unlocked(sgt).unwrap();
    let e = buf.attach(&dma.device("encoder0").unwrap()).unwrap_err();
    assert_eq!(e.errno(), Errno::EBUSY);
    let text = e.to_string();
    assert!(
        text.contains("re-layout: modifier vivante_tiled -> linear"),
        "{text}"
    );
    assert!(text.contains("encoder0 lacks it"), "{text}");
    assert_eq!(
        exp.negotiated().unwrap().modifier,
        "vivante_tiled",
        "nothing moved"
    );
    assert!(exp.log().events().is_empty());
}

#[test]
fn an_empty_intersection_is_explained_by_device_with_einval() {
    let dma = machine(
        &[
            ("isp0", ISP),
            ("gpu0", GPU),
            ("encoder0", &["broadcom_sand128"]),
        ],
        &[],
    );
    let (buf, exp) = export(&dma, ISP, |s| s);
    let _isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let _gpu = buf.attach(&dma.device("gpu0").unwrap()).unwrap();
    let e = buf.attach(&dma.device("encoder0").unwrap()).unwrap_err();
    assert_eq!(
        e.errno(),
        Errno::EINVAL,
        "drm_mode_addfb2's errno for an unsupported modifier"
    );
    let text = e.to_string();
    for want in [
        "isp0 understands vivante_super_tiled, vivante_tiled, linear",
        "gpu0 understands vivante_tiled, linear",
        "encoder0 understands broadcom_sand128",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let last = exp.last_error().unwrap();
    assert!(matches!(
        last.conflicts()[0],
        Conflict::NoCommonModifier { .. }
    ));
    // Quiet without the odd device out: the two others still agree.
    assert!(exp
        .what_if(&dma.device("gpu0").unwrap(), Default::default())
        .plan
        .is_some());
}

#[test]
fn pitch_is_the_lcm_of_every_device_and_a_late_change_re_lays_out_rows() {
    // isp0 needs 64-byte lines, gpu0 96-byte ones: LCM 192 (384 = 96 * 4 meets it);
    // encoder0's 256 makes the LCM 768: a 768-byte pitch.
    let pitch = [("isp0", 64), ("gpu0", 96), ("encoder0", 256)];
    let dma = machine(&[], &pitch);
    let (buf, exp) = export(&dma, &[], |s| s.reserve(768 * u64::from(H)));
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    let _gpu = buf.attach(&dma.device("gpu0").unwrap()).unwrap();
    let first = linear_image(384, 384 * u64::from(H));
    write(&dma, &isp, &first);
    let n = exp.negotiated().unwrap();
    assert_eq!(n.pitch_align.value, 192);
    assert_eq!(n.pitch_align.by.as_deref(), Some("gpu0"));
    assert_eq!(n.pitches(), [384]);
    let enc = buf.attach(&dma.device("encoder0").unwrap()).unwrap();
    let n = exp.negotiated().unwrap();
    assert_eq!((n.pitch_align.value, n.pitches()), (768, vec![768]));
    let ev = &exp.log().events()[0];
    assert!(
        ev.relayout
            .as_deref()
            .unwrap()
            .contains("pitch [384] -> [768]"),
        "{ev:?}"
    );
    let got = read(&dma, &enc, 768 * H as usize);
    assert_eq!(
        got,
        linear_image(768, 768 * u64::from(H)),
        "rows at the new pitch, padding zero"
    );
    let line = exp.placement_reasons()[1]
        .constraints()
        .into_iter()
        .find(|l| l.constraint == "pitch")
        .unwrap();
    assert_eq!(line.by.as_deref(), Some("encoder0"));
}

#[test]
fn a_pitch_the_buffer_cannot_hold_is_refused_not_grown() {
    let dma = machine(&[], &[("encoder0", 256)]);
    let (buf, exp) = export(&dma, &[], |s| s);
    let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
    write(&dma, &isp, &[1, 2, 3]);
    let e = buf.attach(&dma.device("encoder0").unwrap()).unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert!(e.to_string().contains("a dma-buf never grows"), "{e}");
    assert!(matches!(
        exp.last_error().unwrap().conflicts()[0],
        Conflict::LayoutTooLarge { needed, size, .. } if needed == 512 * 40 && size == 384 * 40
    ));
}

#[test]
fn the_copy_engine_is_the_one_asked_for() {
    for (mover, engine) in [
        (Arc::new(CpuMover) as Arc<dyn constraint::Mover>, "cpu"),
        (Arc::new(DmaEngineMover::device("gpu0")) as _, "gpu0"),
    ] {
        let dma = machine(&[("isp0", ISP), ("gpu0", GPU)], &[]);
        let config = MigrationConfig {
            mover,
            ..MigrationConfig::default()
        };
        let (buf, exp) = export(&dma, ISP, |s| s.config(config.clone()));
        let isp = buf.attach(&dma.device("isp0").unwrap()).unwrap();
        let _gpu = buf.attach(&dma.device("gpu0").unwrap()).unwrap();
        write(&dma, &isp, &[7; 64]);
        let _enc = buf.attach(&dma.device("encoder0").unwrap()).unwrap();
        let ev = &exp.log().events()[0];
        assert_eq!(ev.engine, engine);
        assert_eq!(
            ev.copy_ns,
            soc::timing::copy_ns(dma.soc(), engine, ev.bytes),
            "charged at that engine's modelled cost"
        );
    }
}
