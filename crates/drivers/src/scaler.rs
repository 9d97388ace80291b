//! A memory-to-memory scaler and format converter (Rockchip RGA, NXP G2D/PXP, Allwinner G2D
//! like): one frame in, the same picture out at another size and in another pixel format.
//!
//! C side: a V4L2 mem2mem driver (`drivers/media/platform/rockchip/rga/`,
//! `drivers/media/platform/nxp/imx-pxp.c`) on `v4l2-mem2mem.c`: the OUTPUT queue takes the source
//! frames, the CAPTURE queue the destination buffers, and `device_run` is called for a job only
//! when both a source and a destination buffer are ready (`v4l2_m2m_try_schedule`). The scenario
//! runner plans that job ([`crate::job::Op::Scale`]); this module is the transform its device
//! applies, as a pure function a test can recompute.
//!
//! # What it does to the pixels
//! 1. **Formats.** 8-bit formats only ([`SCALER_FORMATS`]: NV12, NV21, NV16, YUYV, UYVY,
//!    RGB888, XRGB8888, ARGB8888), as the RGA2's 8-bit paths; 10-bit (P010, NV15) and raw
//!    Bayer are refused by [`check`] (a Bayer frame needs an ISP first).
//! 2. **Scaling: a box filter.** Each output sample of a component at `(x, y)` of a `dw x dh`
//!    grid read from a `sw x sh` grid is the rounded mean (`(sum + n / 2) / n`) of the source
//!    samples in columns `[floor(x * sw / dw), ceil((x + 1) * sw / dw))` and the rows alike:
//!    an exact area average for integer downscales (4K -> 1080p averages 2x2 blocks), the
//!    nearest sample when upscaling. Ratios from 1/16 to 16 per axis ([`MAX_RATIO`], the
//!    RGA2's range); anything else is refused.
//! 3. **Chroma** is scaled on its own grid: the source chroma (half width for 4:2:x, half
//!    height for 4:2:0) goes straight to the destination's chroma grid, so NV12 -> NV12 never
//!    upsamples. Between YUV and RGB the components are first scaled to the full destination
//!    size, then converted per pixel with BT.601 limited-range integer arithmetic
//!    ([`yuv_to_rgb`], [`rgb_to_yuv`]); an RGB -> 4:2:x conversion then box-averages the chroma
//!    down to its grid (rule 2 with ratio 2).
//! 4. **Alpha and padding.** ARGB8888 -> ARGB8888 scales alpha like a colour; any other
//!    RGB output writes 0xff in the alpha/X byte.
//! 5. The frame is whatever the device reads, the source's 16-byte stamp included (it is
//!    pixels to a scaler); the job then stamps its output like any producer ([`crate::job`]
//!    rule 1), with the input's frame number, so consumers verify what the scaler wrote.
//!
//! No locking, no state: [`scale_frame`] is a function of its arguments.

use crate::format::{Encoding, FormatInfo};

/// The formats the scaler reads and writes (rule 1).
pub const SCALER_FORMATS: &[&str] = &[
    "NV12", "NV21", "NV16", "YUYV", "UYVY", "RGB888", "XRGB8888", "ARGB8888",
];

/// The largest scale factor either way per axis (rule 2): 16x up, 1/16 down.
pub const MAX_RATIO: u32 = 16;

/// A frame's geometry: its format and size in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image {
    /// The pixel format (an entry of [`crate::format::FORMATS`]).
    pub format: &'static FormatInfo,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// What one scaler job does: read `src`, write `dst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// The source frame (the OUTPUT queue's).
    pub src: Image,
    /// The destination frame (the CAPTURE queue's).
    pub dst: Image,
}

/// Whether the scaler can do `src -> dst` (rules 1 and 2); the error says what it accepts.
///
/// ```
/// use drivers::format::FormatInfo;
/// use drivers::scaler::{check, Image};
/// let img = |f, w, h| Image { format: FormatInfo::by_name(f).unwrap(), width: w, height: h };
/// assert!(check(img("NV12", 3840, 2160), img("XRGB8888", 1920, 1080)).is_ok());
/// assert!(check(img("P010", 3840, 2160), img("NV12", 1920, 1080)).is_err());
/// assert!(check(img("NV12", 3840, 2160), img("NV12", 128, 72)).is_err()); // 1/30
/// ```
pub fn check(src: Image, dst: Image) -> Result<(), String> {
    for (what, img) in [("read", src), ("write", dst)] {
        if !SCALER_FORMATS.contains(&img.format.name) {
            return Err(format!(
                "the scaler cannot {what} {}: it converts 8-bit formats only, one of {}",
                img.format.name,
                SCALER_FORMATS.join(", ")
            ));
        }
        if img.width == 0 || img.height == 0 {
            return Err(format!(
                "the scaler cannot {what} a {}x{} frame",
                img.width, img.height
            ));
        }
    }
    for (axis, s, d) in [
        ("width", src.width, dst.width),
        ("height", src.height, dst.height),
    ] {
        let (s, d) = (u64::from(s), u64::from(d));
        let m = u64::from(MAX_RATIO);
        if d * m < s || s * m < d {
            return Err(format!(
                "the scaler scales {axis} {s} -> {d}, past its range of 1/{MAX_RATIO} to \
                 {MAX_RATIO}x per axis: expected a {axis} from {} to {}",
                s.div_ceil(m),
                s * m
            ));
        }
    }
    Ok(())
}

/// One component of a frame as it lies in memory: sample `(x, y)` is byte
/// `data[y * pitch + off + x * step]`.
#[derive(Clone, Copy)]
struct Comp<'a> {
    data: &'a [u8],
    pitch: usize,
    off: usize,
    step: usize,
    w: usize,
    h: usize,
}

impl Comp<'_> {
    fn at(&self, x: usize, y: usize) -> u32 {
        u32::from(
            self.data
                .get(y * self.pitch + self.off + x * self.step)
                .copied()
                .unwrap_or(0),
        )
    }
}

/// A component scaled to some grid, row-major.
struct Grid {
    w: usize,
    h: usize,
    v: Vec<u8>,
}

/// The source span of destination index `i` (rule 2): `[floor(i*s/d), ceil((i+1)*s/d))`.
fn span(i: usize, s: usize, d: usize) -> (usize, usize) {
    let a = i * s / d;
    let b = ((i + 1) * s).div_ceil(d).clamp(a + 1, s.max(a + 1));
    (a, b)
}

/// Rule 2: the box filter of `c` onto a `dw x dh` grid.
fn box_scale(c: &Comp<'_>, dw: usize, dh: usize) -> Grid {
    let cols: Vec<(usize, usize)> = (0..dw).map(|x| span(x, c.w, dw)).collect();
    let mut v = Vec::with_capacity(dw * dh);
    for y in 0..dh {
        let (y0, y1) = span(y, c.h, dh);
        for &(x0, x1) in &cols {
            let mut sum = 0u32;
            for sy in y0..y1 {
                for sx in x0..x1 {
                    sum += c.at(sx, sy);
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            v.push(((sum + n / 2) / n) as u8);
        }
    }
    Grid { w: dw, h: dh, v }
}

fn grid_comp(g: &Grid) -> Comp<'_> {
    Comp {
        data: &g.v,
        pitch: g.w,
        off: 0,
        step: 1,
        w: g.w,
        h: g.h,
    }
}

/// BT.601 limited range, integer: `(Y, Cb, Cr)` to `(R, G, B)`.
pub fn yuv_to_rgb(y: u8, cb: u8, cr: u8) -> (u8, u8, u8) {
    let c = i32::from(y) - 16;
    let d = i32::from(cb) - 128;
    let e = i32::from(cr) - 128;
    let clip = |v: i32| ((v + 128) >> 8).clamp(0, 255) as u8;
    (
        clip(298 * c + 409 * e),
        clip(298 * c - 100 * d - 208 * e),
        clip(298 * c + 516 * d),
    )
}

/// BT.601 limited range, integer: `(R, G, B)` to `(Y, Cb, Cr)`.
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (
        y.clamp(0, 255) as u8,
        u.clamp(0, 255) as u8,
        v.clamp(0, 255) as u8,
    )
}

/// The components of a frame in `planes` (one slice per plane, `pitches` bytes per line):
/// `[Y, Cb, Cr]` or `[R, G, B]`, plus alpha for ARGB8888.
fn components<'a>(img: Image, planes: &[&'a [u8]], pitches: &[usize]) -> Vec<Comp<'a>> {
    let (w, h) = (img.width as usize, img.height as usize);
    let comp = |p: usize, off, step, w, h| Comp {
        data: planes.get(p).copied().unwrap_or(&[]),
        pitch: pitches.get(p).copied().unwrap_or(0),
        off,
        step,
        w,
        h,
    };
    match img.format.name {
        "NV12" | "NV21" | "NV16" => {
            let ch = if img.format.name == "NV16" { h } else { h / 2 };
            let (cb, cr) = if img.format.name == "NV21" {
                (1, 0)
            } else {
                (0, 1)
            };
            vec![
                comp(0, 0, 1, w, h),
                comp(1, cb, 2, w / 2, ch),
                comp(1, cr, 2, w / 2, ch),
            ]
        }
        "YUYV" => vec![
            comp(0, 0, 2, w, h),
            comp(0, 1, 4, w / 2, h),
            comp(0, 3, 4, w / 2, h),
        ],
        "UYVY" => vec![
            comp(0, 1, 2, w, h),
            comp(0, 0, 4, w / 2, h),
            comp(0, 2, 4, w / 2, h),
        ],
        // B, G, R(, X/A) in memory.
        "RGB888" => vec![
            comp(0, 2, 3, w, h),
            comp(0, 1, 3, w, h),
            comp(0, 0, 3, w, h),
        ],
        "XRGB8888" => vec![
            comp(0, 2, 4, w, h),
            comp(0, 1, 4, w, h),
            comp(0, 0, 4, w, h),
        ],
        _ => vec![
            comp(0, 2, 4, w, h),
            comp(0, 1, 4, w, h),
            comp(0, 0, 4, w, h),
            comp(0, 3, 4, w, h),
        ],
    }
}

/// The destination's chroma grid: `(width, height)` of its Cb and Cr samples.
fn chroma_grid(img: Image) -> (usize, usize) {
    let (w, h) = (img.width as usize, img.height as usize);
    match img.format.name {
        "NV12" | "NV21" => (w / 2, h / 2),
        "NV16" | "YUYV" | "UYVY" => (w / 2, h),
        _ => (w, h),
    }
}

/// The destination's components (rule 3): `[Y, Cb, Cr]` on its grids, or `[R, G, B, A]`.
fn convert(s: Scale, src: &[Comp<'_>]) -> Vec<Grid> {
    let (dw, dh) = (s.dst.width as usize, s.dst.height as usize);
    let yuv_in = s.src.format.encoding == Encoding::Yuv;
    let yuv_out = s.dst.format.encoding == Encoding::Yuv;
    let full: Vec<Grid> = match (yuv_in, yuv_out) {
        (true, true) => {
            let (cw, ch) = chroma_grid(s.dst);
            return vec![
                box_scale(&src[0], dw, dh),
                box_scale(&src[1], cw, ch),
                box_scale(&src[2], cw, ch),
            ];
        }
        _ => src.iter().map(|c| box_scale(c, dw, dh)).collect(),
    };
    match (yuv_in, yuv_out) {
        (false, false) => {
            let mut out = full;
            if out.len() < 4 || s.dst.format.name != "ARGB8888" {
                out.truncate(3);
                out.push(Grid {
                    w: dw,
                    h: dh,
                    v: vec![0xff; dw * dh],
                });
            }
            out
        }
        (true, false) => {
            let mut rgb: Vec<Grid> = (0..3)
                .map(|_| Grid {
                    w: dw,
                    h: dh,
                    v: vec![0; dw * dh],
                })
                .collect();
            for k in 0..dw * dh {
                let (r, g, b) = yuv_to_rgb(full[0].v[k], full[1].v[k], full[2].v[k]);
                rgb[0].v[k] = r;
                rgb[1].v[k] = g;
                rgb[2].v[k] = b;
            }
            rgb.push(Grid {
                w: dw,
                h: dh,
                v: vec![0xff; dw * dh],
            });
            rgb
        }
        _ => {
            let mut yuv: Vec<Grid> = (0..3)
                .map(|_| Grid {
                    w: dw,
                    h: dh,
                    v: vec![0; dw * dh],
                })
                .collect();
            for k in 0..dw * dh {
                let (y, u, v) = rgb_to_yuv(full[0].v[k], full[1].v[k], full[2].v[k]);
                yuv[0].v[k] = y;
                yuv[1].v[k] = u;
                yuv[2].v[k] = v;
            }
            let (cw, ch) = chroma_grid(s.dst);
            let cr = box_scale(&grid_comp(&yuv[2]), cw, ch);
            let cb = box_scale(&grid_comp(&yuv[1]), cw, ch);
            yuv.truncate(1);
            yuv.push(cb);
            yuv.push(cr);
            yuv
        }
    }
}

/// Writes the components into the destination's planes (`pitches` bytes per line).
fn pack(img: Image, g: &[Grid], pitches: &[usize]) -> Vec<Vec<u8>> {
    let layout = img.format.layout(img.width, img.height);
    let mut planes: Vec<Vec<u8>> = layout
        .iter()
        .zip(pitches)
        .map(|(l, &p)| vec![0u8; p * l.lines as usize])
        .collect();
    // (plane, component, offset, step)
    let places: &[(usize, usize, usize, usize)] = match img.format.name {
        "NV12" | "NV16" => &[(0, 0, 0, 1), (1, 1, 0, 2), (1, 2, 1, 2)],
        "NV21" => &[(0, 0, 0, 1), (1, 1, 1, 2), (1, 2, 0, 2)],
        "YUYV" => &[(0, 0, 0, 2), (0, 1, 1, 4), (0, 2, 3, 4)],
        "UYVY" => &[(0, 0, 1, 2), (0, 1, 0, 4), (0, 2, 2, 4)],
        "RGB888" => &[(0, 0, 2, 3), (0, 1, 1, 3), (0, 2, 0, 3)],
        _ => &[(0, 0, 2, 4), (0, 1, 1, 4), (0, 2, 0, 4), (0, 3, 3, 4)],
    };
    for &(p, c, off, step) in places {
        let (Some(grid), Some(&pitch)) = (g.get(c), pitches.get(p)) else {
            continue;
        };
        let plane = &mut planes[p];
        for y in 0..grid.h {
            for x in 0..grid.w {
                if let Some(b) = plane.get_mut(y * pitch + off + x * step) {
                    *b = grid.v[y * grid.w + x];
                }
            }
        }
    }
    planes
}

/// The scaled, converted frame (module rules): `src` is the source frame's planes with
/// `src_pitches` bytes per line; returns the destination's planes with `dst_pitches` bytes per
/// line. [`check`] must have accepted `s`.
///
/// ```
/// use drivers::format::FormatInfo;
/// use drivers::scaler::{scale_frame, Image, Scale};
/// let nv12 = FormatInfo::by_name("NV12").unwrap();
/// let s = Scale {
///     src: Image { format: nv12, width: 4, height: 2 },
///     dst: Image { format: nv12, width: 2, height: 2 },
/// };
/// let luma = [10u8, 20, 30, 40, 50, 60, 70, 80];
/// let chroma = [100u8, 200, 110, 210];
/// let out = scale_frame(s, &[&luma, &chroma], &[4, 4], &[2, 2]);
/// assert_eq!(out[0], [15, 35, 55, 75]); // pairs averaged, rounded
/// assert_eq!(out[1], [105, 205]);
/// ```
pub fn scale_frame(
    s: Scale,
    src: &[&[u8]],
    src_pitches: &[usize],
    dst_pitches: &[usize],
) -> Vec<Vec<u8>> {
    let comps = components(s.src, src, src_pitches);
    let grids = convert(s, &comps);
    pack(s.dst, &grids, dst_pitches)
}

#[cfg(test)]
#[path = "scaler_tests.rs"]
mod tests;
