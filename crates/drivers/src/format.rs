//! Pixel formats: the one table of frame layouts the drivers and the scenario runner share.
//!
//! A [`FormatInfo`] says what the kernel's `struct v4l2_format_info` (`v4l2-common.c`) and
//! `struct drm_format_info` (`drm_fourcc.c`) say of a format: its fourcc codes (V4L2's
//! `V4L2_PIX_FMT_*` from `videodev2.h`, DRM's `DRM_FORMAT_*` from `drm_fourcc.h`), its colour
//! planes with their bytes per block of pixels, the chroma subsampling, and the bits per sample.
//! [`FormatInfo::layout`] computes each plane's pitch and height the way `v4l2_fill_pixfmt` and
//! `drm_format_info_min_pitch` do, then rounds them up to the plane's pitch and height
//! alignment (1 for every entry of [`FORMATS`]: the kernel helpers add none; a device that needs
//! more, say 64-byte lines, is a per-device rule, not the format's).
//!
//! The frame's planes are laid out one after another in one buffer (a DRM framebuffer with
//! per-plane offsets, or V4L2's `NV12M`-style planes in one dma-buf); where each plane starts is
//! the exporter's business (the constraint exporter page-aligns them).
//!
//! Which formats a driver can produce or consume is declared by [`DriverFormats`]: a scenario
//! giving a node a format its driver cannot handle is refused before anything runs.
//!
//! Plain constant data: no locking, no lifetime beyond `'static`.

use std::fmt;

/// A fourcc code as the kernel builds it: `a | b << 8 | c << 16 | d << 24`
/// (`v4l2_fourcc()`, `fourcc_code()`).
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    code[0] as u32 | (code[1] as u32) << 8 | (code[2] as u32) << 16 | (code[3] as u32) << 24
}

/// How a format encodes colour (`enum v4l2_pixel_encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Luma and chroma (`V4L2_PIXEL_ENC_YUV`).
    Yuv,
    /// Red, green, blue (`V4L2_PIXEL_ENC_RGB`).
    Rgb,
    /// Raw sensor data through a colour filter array (`V4L2_PIXEL_ENC_BAYER`).
    Bayer,
}

/// One colour plane of a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneInfo {
    /// A name for messages (`"luma (Y)"`).
    pub name: &'static str,
    /// Bytes per block of [`PlaneInfo::block_pixels`] pixels of this plane (the kernel's `bpp`,
    /// DRM's `char_per_block`).
    pub block_bytes: u32,
    /// Pixels of this plane one block covers (the kernel's `bpp_div`, DRM's `block_w`): 1 for
    /// whole bytes per pixel, 4 for formats packing four 10-bit samples in 5 bytes.
    pub block_pixels: u32,
    /// Horizontal subsampling of this plane against the frame (1 for luma, 2 for 4:2:x chroma).
    pub hsub: u32,
    /// Vertical subsampling (2 for 4:2:0 chroma).
    pub vsub: u32,
    /// The plane's pitch is rounded up to a multiple of this many bytes (1: none).
    pub pitch_align: u32,
    /// The plane's height is rounded up to a multiple of this many lines (1: none).
    pub height_align: u32,
}

/// A pixel format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatInfo {
    /// The name scenarios use (DRM's for RGB, V4L2's otherwise): `"NV12"`, `"XRGB8888"`,
    /// `"SRGGB10P"`.
    pub name: &'static str,
    /// The V4L2 fourcc (`V4L2_PIX_FMT_*`) of the same memory layout.
    pub v4l2: u32,
    /// The DRM fourcc (`DRM_FORMAT_*`) of the same memory layout, if DRM has one (Bayer has none).
    pub drm: Option<u32>,
    /// Colour encoding.
    pub encoding: Encoding,
    /// Bits of each sample (8, 10, 12).
    pub bits_per_sample: u32,
    /// Chroma subsampling: horizontal, vertical (`(2, 2)` for 4:2:0, `(1, 1)` for none).
    pub subsampling: (u32, u32),
    /// The frame width must be a multiple of this (whole chroma samples, whole packed blocks).
    pub width_multiple: u32,
    /// The frame height must be a multiple of this.
    pub height_multiple: u32,
    /// The colour planes, in memory order.
    pub planes: &'static [PlaneInfo],
}

/// One plane of a laid-out frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Bytes per line (pitch, `bytesperline`).
    pub bytes_per_line: u64,
    /// Lines.
    pub lines: u64,
    /// Bytes of the plane: `bytes_per_line * lines`.
    pub size: u64,
}

const fn plane(
    name: &'static str,
    block_bytes: u32,
    block_pixels: u32,
    sub: (u32, u32),
) -> PlaneInfo {
    PlaneInfo {
        name,
        block_bytes,
        block_pixels,
        hsub: sub.0,
        vsub: sub.1,
        pitch_align: 1,
        height_align: 1,
    }
}

const LUMA8: PlaneInfo = plane("luma (Y)", 1, 1, (1, 1));
const CBCR8_420: PlaneInfo = plane("chroma (CbCr)", 2, 1, (2, 2));
const CRCB8_420: PlaneInfo = plane("chroma (CrCb)", 2, 1, (2, 2));
const CBCR8_422: PlaneInfo = plane("chroma (CbCr)", 2, 1, (2, 1));

/// The format table.
pub static FORMATS: [FormatInfo; 12] = [
    FormatInfo {
        name: "NV12",
        v4l2: fourcc(b"NV12"),
        drm: Some(fourcc(b"NV12")),
        encoding: Encoding::Yuv,
        bits_per_sample: 8,
        subsampling: (2, 2),
        width_multiple: 2,
        height_multiple: 2,
        planes: &[LUMA8, CBCR8_420],
    },
    FormatInfo {
        name: "NV21",
        v4l2: fourcc(b"NV21"),
        drm: Some(fourcc(b"NV21")),
        encoding: Encoding::Yuv,
        bits_per_sample: 8,
        subsampling: (2, 2),
        width_multiple: 2,
        height_multiple: 2,
        planes: &[LUMA8, CRCB8_420],
    },
    FormatInfo {
        name: "NV16",
        v4l2: fourcc(b"NV16"),
        drm: Some(fourcc(b"NV16")),
        encoding: Encoding::Yuv,
        bits_per_sample: 8,
        subsampling: (2, 1),
        width_multiple: 2,
        height_multiple: 1,
        planes: &[LUMA8, CBCR8_422],
    },
    // 10 bits in the high bits of each 16-bit sample; 4:2:0 (DRM_FORMAT_P010).
    FormatInfo {
        name: "P010",
        v4l2: fourcc(b"P010"),
        drm: Some(fourcc(b"P010")),
        encoding: Encoding::Yuv,
        bits_per_sample: 10,
        subsampling: (2, 2),
        width_multiple: 2,
        height_multiple: 2,
        planes: &[
            plane("luma (Y)", 2, 1, (1, 1)),
            plane("chroma (CbCr)", 4, 1, (2, 2)),
        ],
    },
    // Rockchip's 10-bit 4:2:0: four samples packed in 5 bytes, no padding.
    FormatInfo {
        name: "NV15",
        v4l2: fourcc(b"NV15"),
        drm: Some(fourcc(b"NV15")),
        encoding: Encoding::Yuv,
        bits_per_sample: 10,
        subsampling: (2, 2),
        width_multiple: 4,
        height_multiple: 2,
        planes: &[
            plane("luma (Y)", 5, 4, (1, 1)),
            plane("chroma (CbCr)", 5, 2, (2, 2)),
        ],
    },
    FormatInfo {
        name: "YUYV",
        v4l2: fourcc(b"YUYV"),
        drm: Some(fourcc(b"YUYV")),
        encoding: Encoding::Yuv,
        bits_per_sample: 8,
        subsampling: (2, 1),
        width_multiple: 2,
        height_multiple: 1,
        planes: &[plane("packed (Y0 Cb Y1 Cr)", 2, 1, (1, 1))],
    },
    FormatInfo {
        name: "UYVY",
        v4l2: fourcc(b"UYVY"),
        drm: Some(fourcc(b"UYVY")),
        encoding: Encoding::Yuv,
        bits_per_sample: 8,
        subsampling: (2, 1),
        width_multiple: 2,
        height_multiple: 1,
        planes: &[plane("packed (Cb Y0 Cr Y1)", 2, 1, (1, 1))],
    },
    // DRM's RGB888 is little-endian [23:0] R:G:B, so B, G, R in memory: V4L2's BGR24.
    FormatInfo {
        name: "RGB888",
        v4l2: fourcc(b"BGR3"),
        drm: Some(fourcc(b"RG24")),
        encoding: Encoding::Rgb,
        bits_per_sample: 8,
        subsampling: (1, 1),
        width_multiple: 1,
        height_multiple: 1,
        planes: &[plane("packed (BGR)", 3, 1, (1, 1))],
    },
    // B, G, R, X in memory: V4L2's XBGR32 has the same fourcc.
    FormatInfo {
        name: "XRGB8888",
        v4l2: fourcc(b"XR24"),
        drm: Some(fourcc(b"XR24")),
        encoding: Encoding::Rgb,
        bits_per_sample: 8,
        subsampling: (1, 1),
        width_multiple: 1,
        height_multiple: 1,
        planes: &[plane("packed (BGRX)", 4, 1, (1, 1))],
    },
    FormatInfo {
        name: "ARGB8888",
        v4l2: fourcc(b"AR24"),
        drm: Some(fourcc(b"AR24")),
        encoding: Encoding::Rgb,
        bits_per_sample: 8,
        subsampling: (1, 1),
        width_multiple: 1,
        height_multiple: 1,
        planes: &[plane("packed (BGRA)", 4, 1, (1, 1))],
    },
    // MIPI CSI-2 RAW10: four 10-bit samples in 5 bytes (V4L2_PIX_FMT_SRGGB10P).
    FormatInfo {
        name: "SRGGB10P",
        v4l2: fourcc(b"pRAA"),
        drm: None,
        encoding: Encoding::Bayer,
        bits_per_sample: 10,
        subsampling: (1, 1),
        width_multiple: 4,
        height_multiple: 2,
        planes: &[plane("raw (RGGB, packed)", 5, 4, (1, 1))],
    },
    // 12-bit samples in 16-bit words (V4L2_PIX_FMT_SRGGB12).
    FormatInfo {
        name: "SRGGB12",
        v4l2: fourcc(b"RG12"),
        drm: None,
        encoding: Encoding::Bayer,
        bits_per_sample: 12,
        subsampling: (1, 1),
        width_multiple: 2,
        height_multiple: 2,
        planes: &[plane("raw (RGGB)", 2, 1, (1, 1))],
    },
];

/// The names of every format, comma-separated (for messages).
pub fn format_names() -> String {
    FORMATS
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl FormatInfo {
    /// The format named `name` (exact, as scenarios write it).
    ///
    /// ```
    /// let f = drivers::format::FormatInfo::by_name("NV15").unwrap();
    /// assert_eq!(f.bits_per_sample, 10);
    /// assert!(drivers::format::FormatInfo::by_name("NV99").is_none());
    /// ```
    pub fn by_name(name: &str) -> Option<&'static FormatInfo> {
        FORMATS.iter().find(|f| f.name == name)
    }

    /// The planes of a `width` x `height` frame: per plane, the pitch is
    /// `ceil(ceil(width / hsub) / block_pixels) * block_bytes` rounded up to `pitch_align`, and
    /// the lines `ceil(height / vsub)` rounded up to `height_align`.
    ///
    /// ```
    /// use drivers::format::FormatInfo;
    /// let p = FormatInfo::by_name("NV12").unwrap().layout(3840, 2160);
    /// assert_eq!((p[0].size, p[1].size), (3840 * 2160, 3840 * 2160 / 2));
    /// let raw = FormatInfo::by_name("SRGGB10P").unwrap().layout(4056, 3040);
    /// assert_eq!(raw[0].bytes_per_line, 4056 * 5 / 4);
    /// ```
    pub fn layout(&self, width: u32, height: u32) -> Vec<PlaneLayout> {
        let (w, h) = (u64::from(width), u64::from(height));
        self.planes
            .iter()
            .map(|p| {
                let pw = w.div_ceil(u64::from(p.hsub));
                let pitch = pw.div_ceil(u64::from(p.block_pixels)) * u64::from(p.block_bytes);
                let pitch = pitch.next_multiple_of(u64::from(p.pitch_align.max(1)));
                let lines = h
                    .div_ceil(u64::from(p.vsub))
                    .next_multiple_of(u64::from(p.height_align.max(1)));
                PlaneLayout {
                    bytes_per_line: pitch,
                    lines,
                    size: pitch * lines,
                }
            })
            .collect()
    }

    /// Bytes of a whole frame.
    pub fn frame_size(&self, width: u32, height: u32) -> u64 {
        self.layout(width, height).iter().map(|p| p.size).sum()
    }
}

impl fmt::Display for FormatInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The formats a driver can produce (write as a link's producer) and consume (read as a
/// consumer), as the simulated drivers implement them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverFormats {
    /// The driver's name (`"camera"`).
    pub driver: &'static str,
    /// Formats it writes.
    pub produces: &'static [&'static str],
    /// Formats it reads.
    pub consumes: &'static [&'static str],
    /// Why, in one line, for messages.
    pub why: &'static str,
}

const ALL: &[&str] = &[
    "NV12", "NV21", "NV16", "P010", "NV15", "YUYV", "UYVY", "RGB888", "XRGB8888", "ARGB8888",
    "SRGGB10P", "SRGGB12",
];
const NOT_BAYER: &[&str] = &[
    "NV12", "NV21", "NV16", "P010", "NV15", "YUYV", "UYVY", "RGB888", "XRGB8888", "ARGB8888",
];

/// The formats of every simulated driver (the scenario's `driver` names).
pub static DRIVER_FORMATS: [DriverFormats; 8] = [
    DriverFormats {
        driver: "camera",
        produces: ALL,
        consumes: &[],
        why: "a capture interface writes what its sensor sends: YUV, RGB or raw Bayer",
    },
    DriverFormats {
        driver: "isp",
        produces: NOT_BAYER,
        consumes: ALL,
        why: "an ISP reads raw Bayer or processed frames and writes YUV or RGB",
    },
    DriverFormats {
        driver: "gpu",
        produces: NOT_BAYER,
        consumes: ALL,
        why: "a GPU samples any texture and renders YUV or RGB, never raw Bayer",
    },
    DriverFormats {
        driver: "display",
        produces: &[],
        consumes: NOT_BAYER,
        why: "scanout planes show YUV and RGB; raw Bayer needs an ISP first",
    },
    DriverFormats {
        driver: "encoder",
        // With `codec = "rle"` into a decoder: the bitstream of the frames it read.
        produces: NOT_BAYER,
        consumes: NOT_BAYER,
        why: "a video encoder takes YUV or RGB frames; raw Bayer needs an ISP first",
    },
    DriverFormats {
        driver: "decoder",
        produces: NOT_BAYER,
        consumes: NOT_BAYER,
        why: "a video decoder gives back the YUV or RGB frames its encoder was given",
    },
    DriverFormats {
        driver: "scaler",
        produces: crate::scaler::SCALER_FORMATS,
        consumes: crate::scaler::SCALER_FORMATS,
        why: "the scaler (RGA/G2D-like) converts between 8-bit YUV and RGB formats only",
    },
    DriverFormats {
        driver: "thumbnailer",
        produces: &[],
        consumes: &["NV12"],
        why: "the thumbnailer's JPEG path converts 8-bit 4:2:0 NV12 only",
    },
];

/// The format declarations of the driver named `driver`.
pub fn driver_formats(driver: &str) -> Option<&'static DriverFormats> {
    DRIVER_FORMATS.iter().find(|d| d.driver == driver)
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
