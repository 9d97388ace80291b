//! The scaler's pixels against references written from the definitions (module rules), not
//! from the driver's code: area means in floating point, BT.601 in floating point.

use super::*;

fn fmt(name: &str) -> &'static FormatInfo {
    FormatInfo::by_name(name).unwrap()
}

fn img(name: &str, width: u32, height: u32) -> Image {
    Image {
        format: fmt(name),
        width,
        height,
    }
}

/// A deterministic, non-trivial byte pattern.
fn bytes(n: usize, salt: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(salt) >> 13) as u8)
        .collect()
}

/// The mean of `f(sx, sy)` over the source rectangle destination `(x, y)` covers, computed
/// with real-number bounds: `[x * sw / dw, (x + 1) * sw / dw)` widened to whole samples.
fn area_mean(
    f: impl Fn(usize, usize) -> f64,
    (sw, sh): (usize, usize),
    (dw, dh): (usize, usize),
    (x, y): (usize, usize),
) -> f64 {
    let bounds = |i: usize, s: usize, d: usize| {
        let a = (i as f64 * s as f64 / d as f64).floor() as usize;
        let b = (((i + 1) as f64 * s as f64 / d as f64).ceil() as usize).max(a + 1);
        (a, b.min(s.max(a + 1)))
    };
    let (x0, x1) = bounds(x, sw, dw);
    let (y0, y1) = bounds(y, sh, dh);
    let mut sum = 0.0;
    for sy in y0..y1 {
        for sx in x0..x1 {
            sum += f(sx, sy);
        }
    }
    sum / ((x1 - x0) * (y1 - y0)) as f64
}

#[test]
fn test_nv12_downscale_is_the_area_mean_of_each_plane() {
    for (sw, sh, dw, dh) in [
        (64, 48, 32, 24),
        (64, 48, 16, 12),
        (60, 40, 24, 16),
        (32, 32, 48, 40),
    ] {
        let (luma, chroma) = (bytes(sw * sh, 1), bytes(sw * sh / 2, 7));
        let s = Scale {
            src: img("NV12", sw as u32, sh as u32),
            dst: img("NV12", dw as u32, dh as u32),
        };
        check(s.src, s.dst).unwrap();
        let out = scale_frame(s, &[&luma, &chroma], &[sw, sw], &[dw, dw]);
        for y in 0..dh {
            for x in 0..dw {
                let want = area_mean(|a, b| luma[b * sw + a] as f64, (sw, sh), (dw, dh), (x, y));
                assert_eq!(
                    out[0][y * dw + x],
                    want.round() as u8,
                    "luma {x},{y} {sw}x{sh}->{dw}x{dh}"
                );
            }
        }
        for y in 0..dh / 2 {
            for x in 0..dw / 2 {
                for c in 0..2 {
                    let want = area_mean(
                        |a, b| chroma[b * sw + 2 * a + c] as f64,
                        (sw / 2, sh / 2),
                        (dw / 2, dh / 2),
                        (x, y),
                    );
                    assert_eq!(
                        out[1][y * dw + 2 * x + c],
                        want.round() as u8,
                        "chroma {c} {x},{y}"
                    );
                }
            }
        }
    }
}

/// BT.601 limited range in real numbers.
fn rgb_of(y: f64, cb: f64, cr: f64) -> [f64; 3] {
    let (y, cb, cr) = (1.164 * (y - 16.0), cb - 128.0, cr - 128.0);
    [y + 1.596 * cr, y - 0.392 * cb - 0.813 * cr, y + 2.017 * cb].map(|v| v.clamp(0.0, 255.0))
}

#[test]
fn test_nv12_4k_shape_to_half_size_xrgb_matches_a_float_bt601_reference() {
    let (sw, sh, dw, dh) = (128usize, 72usize, 64usize, 36usize);
    let (luma, chroma) = (bytes(sw * sh, 3), bytes(sw * sh / 2, 11));
    let s = Scale {
        src: img("NV12", sw as u32, sh as u32),
        dst: img("XRGB8888", dw as u32, dh as u32),
    };
    let out = scale_frame(s, &[&luma, &chroma], &[sw, sw], &[dw * 4]);
    assert_eq!(out.len(), 1);
    for y in 0..dh {
        for x in 0..dw {
            let yy = area_mean(|a, b| luma[b * sw + a] as f64, (sw, sh), (dw, dh), (x, y)).round();
            let c = |k: usize| {
                area_mean(
                    |a, b| chroma[b * sw + 2 * a + k] as f64,
                    (sw / 2, sh / 2),
                    (dw, dh),
                    (x, y),
                )
                .round()
            };
            let want = rgb_of(yy, c(0), c(1));
            let px = &out[0][(y * dw + x) * 4..][..4];
            // Memory order B, G, R, X.
            for (k, &got) in [px[2], px[1], px[0]].iter().enumerate() {
                assert!(
                    (got as f64 - want[k]).abs() <= 1.5,
                    "{x},{y} comp {k}: {got} vs {}",
                    want[k]
                );
            }
            assert_eq!(px[3], 0xff);
        }
    }
}

#[test]
fn test_xrgb_to_nv12_round_trips_grey_and_yuyv_to_nv12_keeps_luma() {
    // Grey RGB is Y = 16 + 219 * v / 255, Cb = Cr = 128.
    let (w, h) = (32usize, 16usize);
    let xrgb: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let v = (i * 8 % 256) as u8;
            [v, v, v, 0]
        })
        .collect();
    let s = Scale {
        src: img("XRGB8888", w as u32, h as u32),
        dst: img("NV12", w as u32, h as u32),
    };
    let out = scale_frame(s, &[&xrgb], &[w * 4], &[w, w]);
    for i in 0..w * h {
        let v = xrgb[i * 4] as f64;
        let want = 16.0 + 219.0 * v / 255.0;
        assert!((out[0][i] as f64 - want).abs() <= 1.0, "{i}");
    }
    assert!(out[1].iter().all(|&c| (127..=129).contains(&c)));
    // YUYV -> NV12 at the same size: luma unchanged, chroma averaged over two lines.
    let yuyv = bytes(w * 2 * h, 5);
    let s = Scale {
        src: img("YUYV", w as u32, h as u32),
        dst: img("NV12", w as u32, h as u32),
    };
    let out = scale_frame(s, &[&yuyv], &[w * 2], &[w, w]);
    for y in 0..h {
        for x in 0..w {
            assert_eq!(out[0][y * w + x], yuyv[y * w * 2 + x * 2]);
        }
    }
    for y in 0..h / 2 {
        for x in 0..w / 2 {
            let a = yuyv[2 * y * w * 2 + x * 4 + 1] as f64;
            let b = yuyv[(2 * y + 1) * w * 2 + x * 4 + 1] as f64;
            assert_eq!(out[1][y * w + 2 * x], ((a + b) / 2.0).round() as u8);
        }
    }
}

#[test]
fn test_argb_keeps_scaled_alpha_and_xrgb_output_is_opaque() {
    let (w, h) = (8usize, 8usize);
    let argb = bytes(w * h * 4, 9);
    let s = Scale {
        src: img("ARGB8888", 8, 8),
        dst: img("ARGB8888", 4, 4),
    };
    let out = scale_frame(s, &[&argb], &[w * 4], &[16]);
    let want = area_mean(
        |a, b| argb[(b * w + a) * 4 + 3] as f64,
        (w, h),
        (4, 4),
        (1, 2),
    );
    assert_eq!(out[0][(2 * 4 + 1) * 4 + 3], want.round() as u8);
    let s = Scale {
        src: img("ARGB8888", 8, 8),
        dst: img("XRGB8888", 4, 4),
    };
    let out = scale_frame(s, &[&argb], &[w * 4], &[16]);
    assert!(out[0].chunks(4).all(|p| p[3] == 0xff));
}

#[test]
fn test_check_refuses_10_bit_bayer_and_ratios_past_16() {
    let e = check(img("P010", 64, 64), img("NV12", 64, 64)).unwrap_err();
    assert!(
        e.contains("cannot read P010") && e.contains("NV12, NV21"),
        "{e}"
    );
    let e = check(img("NV12", 64, 64), img("SRGGB10P", 64, 64)).unwrap_err();
    assert!(e.contains("cannot write SRGGB10P"), "{e}");
    let e = check(img("NV12", 4096, 64), img("NV12", 128, 64)).unwrap_err();
    assert!(
        e.contains("width 4096 -> 128") && e.contains("from 256 to 65536"),
        "{e}"
    );
    assert!(check(img("NV12", 4096, 64), img("NV12", 256, 64)).is_ok());
    assert!(check(img("NV12", 16, 16), img("NV12", 256, 256)).is_ok());
    assert!(check(img("NV12", 16, 16), img("NV12", 258, 16)).is_err());
}
