use super::*;
use constraint::{Bound, Negotiated};

fn spec(format: &str, w: u32, h: u32) -> ImageSpec {
    ImageSpec {
        format: FormatInfo::by_name(format).unwrap(),
        width: w,
        height: h,
    }
}

fn negotiated(img: &ImageSpec, m: &str, pitch_align: u64) -> Negotiated {
    Negotiated {
        modifier: m.into(),
        value: img.modifier_value(m).unwrap(),
        passed_over: Vec::new(),
        pitch_align: Bound {
            value: pitch_align,
            by: None,
        },
        layout: img.layout(m, pitch_align).unwrap(),
    }
}

#[test]
fn values_are_the_drm_fourcc_h_macros() {
    // fourcc_mod_code(VENDOR, val) = vendor << 56 | val, vendors from drm_fourcc.h.
    let v = |n: &str| ModifierInfo::by_name(n).unwrap().value;
    assert_eq!(v("linear"), 0);
    assert_eq!(v("vivante_tiled"), 0x0600_0000_0000_0001);
    assert_eq!(v("vivante_super_tiled"), 0x0600_0000_0000_0002);
    assert_eq!(v("broadcom_sand128"), 0x0700_0000_0000_0004);
    assert_eq!(v("broadcom_uif"), 0x0700_0000_0000_0006);
    // AFBC: ARM vendor 0x08, type AFBC (0) << 52, BLOCK_SIZE_16x16 (1) | SPARSE (1 << 6).
    assert_eq!(v("arm_afbc_16x16_sparse"), 0x0800_0000_0000_0041);
    let names: Vec<&str> = MODIFIERS.iter().map(|m| m.name).collect();
    let mut dedup = names.clone();
    dedup.dedup();
    assert_eq!(names, dedup);
}

#[test]
fn linear_layout_is_the_format_tables_with_pitch_rounded_to_the_lcm() {
    let img = spec("NV12", 1920, 1080);
    let l = img.layout("linear", 1).unwrap();
    assert_eq!(l.planes[0].pitch, 1920);
    assert_eq!(l.planes[0].len, 1920 * 1080);
    assert_eq!(l.planes[1].offset % 4096, 0);
    assert_eq!(l.planes[1].len, 1920 * 540);
    let l = img.layout("linear", 768).unwrap();
    assert_eq!(
        l.planes[0].pitch, 2304,
        "1920 rounded up to a multiple of 768"
    );
    assert_eq!(l.planes[0].len, 2304 * 1080);
}

#[test]
fn tiled_layouts_pad_width_height_and_headers() {
    let img = spec("XRGB8888", 100, 50);
    let t = img.layout("vivante_tiled", 1).unwrap();
    // Width padded to 16 pixels (112 * 4 bytes), height to 4 lines (52).
    assert_eq!(t.planes[0].pitch, 448);
    assert_eq!(t.size, 448 * 52);
    let a = img.layout("arm_afbc_16x16_sparse", 1).unwrap();
    // 112 x 64 pixels = 7 x 4 superblocks: a 16-byte header each, page aligned, then payload.
    assert_eq!(a.size, 4096 + 448 * 64);
    let e = img.layout("broadcom_sand128", 1).unwrap_err();
    assert!(e.contains("NV12") && e.contains("XRGB8888"), "{e}");
    let e = spec("NV12", 64, 64)
        .layout("arm_afbc_16x16_sparse", 1)
        .unwrap_err();
    assert!(e.contains("single-plane"), "{e}");
    assert!(img.layout("intel_y", 1).unwrap_err().contains("unknown"));
}

#[test]
fn conversion_moves_every_visible_byte_and_round_trips() {
    let img = spec("NV12", 72, 36);
    for m in [
        "vivante_tiled",
        "vivante_super_tiled",
        "broadcom_sand128",
        "broadcom_uif",
    ] {
        let lin = negotiated(&img, "linear", 1);
        let til = negotiated(&img, m, 1);
        // Fill a linear image with distinct visible bytes, convert there and back.
        let mut a = vec![0u8; lin.layout.size as usize];
        for (pi, p) in lin.layout.planes.iter().enumerate() {
            let lines = if pi == 0 { 36 } else { 18 };
            for y in 0..lines {
                for x in 0..72u64 {
                    a[(p.offset + y * p.pitch + x) as usize] =
                        (x * 7 + y * 13 + pi as u64) as u8 | 1;
                }
            }
        }
        let mut b = vec![0u8; til.layout.size as usize];
        let there = img.convert(&lin, &til);
        for p in &there {
            b[p.dst as usize..(p.dst + p.len) as usize]
                .copy_from_slice(&a[p.src as usize..(p.src + p.len) as usize]);
        }
        let moved: u64 = there.iter().map(|p| p.len).sum();
        assert_eq!(moved, 72 * 36 + 72 * 18, "{m}: every visible byte once");
        assert_ne!(
            a[..b.len().min(a.len())],
            b[..b.len().min(a.len())],
            "{m} reorders"
        );
        let mut c = vec![0u8; a.len()];
        for p in img.convert(&til, &lin) {
            c[p.dst as usize..(p.dst + p.len) as usize]
                .copy_from_slice(&b[p.src as usize..(p.src + p.len) as usize]);
        }
        assert_eq!(a, c, "{m}: linear -> tiled -> linear keeps the image");
    }
}

#[test]
fn pitch_change_copies_rows_at_the_new_pitch() {
    let img = spec("YUYV", 100, 4);
    let from = negotiated(&img, "linear", 1);
    let to = negotiated(&img, "linear", 256);
    let pieces = img.convert(&from, &to);
    assert_eq!(pieces.len(), 4, "one piece per line");
    assert_eq!(pieces[1].src, 200);
    assert_eq!(pieces[1].dst, 256);
    assert_eq!(pieces[1].len, 200);
}
