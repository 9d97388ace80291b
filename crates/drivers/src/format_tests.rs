//! The format table against the kernel's own arithmetic: `v4l2_fill_pixfmt_mp()`
//! (`drivers/media/v4l2-core/v4l2-common.c`) and `drm_format_info_min_pitch()`
//! (`drivers/gpu/drm/drm_fourcc.c`), re-done here over the kernel's table entries.

use super::*;

/// A kernel table row: `(fourcc, bytes per block, pixels per block, hsub, vsub, planes)`.
type KernelRow = (&'static [u8; 4], [u32; 2], [u32; 2], u32, u32, usize);

/// `struct v4l2_format_info` as `v4l2-common.c` has it for our formats: `(fourcc, bpp, bpp_div,
/// hdiv, vdiv, comp_planes)`.
const V4L2_INFO: &[KernelRow] = &[
    (b"NV12", [1, 2], [1, 1], 2, 2, 2),
    (b"NV21", [1, 2], [1, 1], 2, 2, 2),
    (b"NV16", [1, 2], [1, 1], 2, 1, 2),
    (b"NV15", [5, 10], [4, 4], 2, 2, 2),
    (b"YUYV", [2, 0], [1, 1], 2, 1, 1),
    (b"UYVY", [2, 0], [1, 1], 2, 1, 1),
    (b"BGR3", [3, 0], [1, 1], 1, 1, 1),
    (b"XR24", [4, 0], [1, 1], 1, 1, 1),
    (b"AR24", [4, 0], [1, 1], 1, 1, 1),
    (b"pRAA", [5, 0], [4, 1], 1, 1, 1),
    (b"RG12", [2, 0], [1, 1], 1, 1, 1),
];

/// `v4l2_format_plane_stride()` and `v4l2_format_plane_height()` (no block sizes for these
/// formats): per plane `(bytesperline, lines)`.
fn v4l2_planes(fourcc_code: u32, width: u32, height: u32) -> Option<Vec<(u64, u64)>> {
    let &(_, bpp, bpp_div, hdiv, vdiv, n) =
        V4L2_INFO.iter().find(|e| fourcc(e.0) == fourcc_code)?;
    Some(
        (0..n)
            .map(|i| {
                let (h, v) = if i == 0 { (1, 1) } else { (hdiv, vdiv) };
                let stride = width.div_ceil(h) * bpp[i] / bpp_div[i];
                (u64::from(stride), u64::from(height.div_ceil(v)))
            })
            .collect(),
    )
}

/// `struct drm_format_info` for our formats: `(fourcc, char_per_block, block_w, hsub, vsub,
/// num_planes)`.
const DRM_INFO: &[KernelRow] = &[
    (b"NV12", [1, 2], [1, 1], 2, 2, 2),
    (b"NV21", [1, 2], [1, 1], 2, 2, 2),
    (b"NV16", [1, 2], [1, 1], 2, 1, 2),
    (b"P010", [2, 4], [1, 1], 2, 2, 2),
    (b"NV15", [5, 5], [4, 2], 2, 2, 2),
    (b"YUYV", [2, 0], [1, 1], 2, 1, 1),
    (b"UYVY", [2, 0], [1, 1], 2, 1, 1),
    (b"RG24", [3, 0], [1, 1], 1, 1, 1),
    (b"XR24", [4, 0], [1, 1], 1, 1, 1),
    (b"AR24", [4, 0], [1, 1], 1, 1, 1),
];

/// `drm_format_info_min_pitch()` of each plane for a framebuffer `width` wide (planes past the
/// first are `width / hsub` wide, as `drm_format_info_plane_width()` says), with the plane
/// heights `drm_format_info_plane_height()` gives.
fn drm_planes(fourcc_code: u32, width: u32, height: u32) -> Option<Vec<(u64, u64)>> {
    let &(_, cpb, block_w, hsub, vsub, n) = DRM_INFO.iter().find(|e| fourcc(e.0) == fourcc_code)?;
    Some(
        (0..n)
            .map(|i| {
                let (h, v) = if i == 0 { (1, 1) } else { (hsub, vsub) };
                let pw = u64::from(width / h);
                let pitch = (pw * u64::from(cpb[i])).div_ceil(u64::from(block_w[i]));
                (pitch, u64::from(height / v))
            })
            .collect(),
    )
}

fn sizes() -> Vec<(u32, u32)> {
    let mut v = vec![
        (2, 2),
        (4, 2),
        (64, 64),
        (640, 480),
        (1920, 1080),
        (3840, 2160),
    ];
    v.extend([
        (4056, 3040),
        (1280, 720),
        (720, 576),
        (4096, 2304),
        (16384, 16384),
    ]);
    v.extend((1..40).map(|i| (i * 4, i * 2)));
    v
}

#[test]
fn fourcc_codes_match_the_kernel_headers() {
    // videodev2.h: v4l2_fourcc('N', 'V', '1', '2'); drm_fourcc.h: fourcc_code('X', 'R', '2', '4').
    assert_eq!(fourcc(b"NV12"), 0x3231_564e);
    assert_eq!(fourcc(b"XR24"), 0x3432_5258);
    assert_eq!(fourcc(b"pRAA"), 0x4141_5270);
    let names: Vec<&str> = FORMATS.iter().map(|f| f.name).collect();
    for want in [
        "NV12", "NV21", "NV16", "P010", "NV15", "YUYV", "UYVY", "RGB888", "XRGB8888", "ARGB8888",
        "SRGGB10P", "SRGGB12",
    ] {
        assert!(names.contains(&want), "{want} missing");
    }
}

#[test]
fn pitches_and_sizes_match_v4l2_fill_pixfmt() {
    let mut checked = 0;
    for f in &FORMATS {
        let Some(_) = v4l2_planes(f.v4l2, 2, 2) else {
            // P010: this tree's v4l2_format_info entry for P010 differs from DRM's (see below).
            assert_eq!(f.name, "P010");
            continue;
        };
        for (w, h) in sizes() {
            if w % f.width_multiple != 0 || h % f.height_multiple != 0 {
                continue;
            }
            let ours: Vec<(u64, u64)> = f
                .layout(w, h)
                .iter()
                .map(|p| (p.bytes_per_line, p.lines))
                .collect();
            assert_eq!(Some(ours), v4l2_planes(f.v4l2, w, h), "{} {w}x{h}", f.name);
            checked += 1;
        }
    }
    assert!(checked > 400, "{checked}");
}

#[test]
fn pitches_and_sizes_match_drm_format_info() {
    for f in &FORMATS {
        let Some(drm) = f.drm else {
            assert_eq!(f.encoding, Encoding::Bayer, "{}", f.name);
            continue;
        };
        for (w, h) in sizes() {
            if w % f.width_multiple != 0 || h % f.height_multiple != 0 {
                continue;
            }
            let ours: Vec<(u64, u64)> = f
                .layout(w, h)
                .iter()
                .map(|p| (p.bytes_per_line, p.lines))
                .collect();
            assert_eq!(Some(ours), drm_planes(drm, w, h), "{} {w}x{h}", f.name);
        }
    }
}

#[test]
fn p010_is_4_2_0_with_16_bit_samples() {
    let f = FormatInfo::by_name("P010").unwrap();
    let p = f.layout(1920, 1080);
    assert_eq!((p[0].bytes_per_line, p[0].lines), (3840, 1080));
    assert_eq!((p[1].bytes_per_line, p[1].lines), (3840, 540));
    // The same bytes as V4L2's sizeimage (its table gives chroma 2 bytes per subsampled pixel
    // over full height, which adds up to the same total).
    assert_eq!(f.frame_size(1920, 1080), 1920 * 1080 * 3);
}

#[test]
fn the_default_scenario_formats_keep_their_sizes() {
    // The sizes the runner used before the table: NV12 w*h + w*ceil(h/2), YUYV 2wh, XRGB 4wh.
    let nv12 = FormatInfo::by_name("NV12").unwrap().layout(3840, 2160);
    assert_eq!(
        (nv12[0].bytes_per_line, nv12[0].size, nv12[1].size),
        (3840, 3840 * 2160, 3840 * 1080)
    );
    assert_eq!(
        FormatInfo::by_name("XRGB8888")
            .unwrap()
            .frame_size(3840, 2160),
        4 * 3840 * 2160
    );
    assert_eq!(
        FormatInfo::by_name("YUYV").unwrap().frame_size(640, 480),
        2 * 640 * 480
    );
}

#[test]
fn alignment_rounds_pitch_and_height_up() {
    let p = PlaneInfo {
        pitch_align: 64,
        height_align: 16,
        ..LUMA8
    };
    let f = FormatInfo {
        planes: std::slice::from_ref(Box::leak(Box::new(p))),
        ..FORMATS[0]
    };
    let l = f.layout(1000, 1000);
    assert_eq!((l[0].bytes_per_line, l[0].lines), (1024, 1008));
}

#[test]
fn every_driver_declares_formats_of_the_table() {
    for d in &DRIVER_FORMATS {
        for n in d.produces.iter().chain(d.consumes) {
            assert!(FormatInfo::by_name(n).is_some(), "{}: {n}", d.driver);
        }
    }
    assert!(driver_formats("display")
        .unwrap()
        .consumes
        .iter()
        .all(|n| FormatInfo::by_name(n).unwrap().encoding != Encoding::Bayer));
    assert_eq!(driver_formats("thumbnailer").unwrap().consumes, ["NV12"]);
    // The scaler converts 8-bit formats only (drivers::scaler rule 1).
    let scaler = driver_formats("scaler").unwrap();
    assert!(!scaler.consumes.contains(&"P010") && !scaler.produces.contains(&"SRGGB10P"));
    assert!(scaler.consumes.contains(&"NV12") && scaler.produces.contains(&"XRGB8888"));
    assert!(driver_formats("no_such_driver").is_none());
}
