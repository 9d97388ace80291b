//! Format modifiers: the memory layouts of an image beyond its format (linear, vendor tiles).
//!
//! A DRM format modifier (`drm_fourcc.h`, `DRM_FORMAT_MOD_*`) says how an image's pixels are
//! arranged in memory; a device that does not know a modifier cannot read the image. The
//! table [`MODIFIERS`] holds the linear layout and the vendor layouts of the bundled machines'
//! blocks, with their `drm_fourcc.h` values and the geometry the simulator gives them:
//!
//! | name | value | used by | geometry here |
//! |---|---|---|---|
//! | `linear` | `DRM_FORMAT_MOD_LINEAR` | everyone | lines one after another |
//! | `arm_afbc_16x16_sparse` | `DRM_FORMAT_MOD_ARM_AFBC(BLOCK_SIZE_16x16 \| SPARSE)` | Mali GPU, VOP2 (rk3588) | a 16-byte header per 16x16 superblock, then one fixed payload slot per superblock; single-plane formats only |
//! | `broadcom_sand128` | `DRM_FORMAT_MOD_BROADCOM_SAND128` | PiSP, HEVC decoder, VC4/V3D (rpi5) | 128-byte-wide columns, each the plane's full height; NV12/NV21 only |
//! | `broadcom_uif` | `DRM_FORMAT_MOD_BROADCOM_UIF` | V3D (rpi5) | 64x64-pixel blocks |
//! | `vivante_tiled` | `DRM_FORMAT_MOD_VIVANTE_TILED` | GC7000UL GPU, DCSS (imx8mp) | 4x4-pixel tiles, width a multiple of 16, height of 4 |
//! | `vivante_super_tiled` | `DRM_FORMAT_MOD_VIVANTE_SUPER_TILED` | GC7000UL GPU, DCSS (imx8mp) | 64x64-pixel super-tiles |
//!
//! The modifiers are opaque to everyone but their owners: what the simulator keeps is each
//! one's *size and alignment rules* (tile width and height, header, pitch alignment) and a
//! byte order that is a bijection of the linear image's visible bytes (a tile's lines kept in
//! order inside it; the real intra-tile order, the AFBC compression, SAND's chroma
//! interleaving, are not modelled and nothing depends on them). Converting between two
//! layouts ([`ImageSpec`]'s [`ImageLayouts::convert`]) copies every visible byte to its place
//! in the other: that is the copy a late attach's re-layout makes.
//!
//! Plain constant data and pure functions: no locking, no lifetime.

use crate::format::FormatInfo;
use constraint::{ImageLayouts, Layout, Negotiated, Piece, PlaneLayout};
use soc::{align_up, PAGE_SIZE};

/// `fourcc_mod_code(vendor, val)` of `drm_fourcc.h`.
pub const fn fourcc_mod_code(vendor: u64, val: u64) -> u64 {
    (vendor << 56) | (val & 0x00ff_ffff_ffff_ffff)
}

/// `DRM_FORMAT_MOD_VENDOR_VIVANTE`.
pub const VENDOR_VIVANTE: u64 = 0x06;
/// `DRM_FORMAT_MOD_VENDOR_BROADCOM`.
pub const VENDOR_BROADCOM: u64 = 0x07;
/// `DRM_FORMAT_MOD_VENDOR_ARM`.
pub const VENDOR_ARM: u64 = 0x08;

/// How a modifier arranges a plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiling {
    /// Lines one after another.
    Linear,
    /// Tiles of `w` x `h` pixels, tiles in row-major order, each tile's bytes contiguous.
    Tiles {
        /// Tile width in pixels.
        w: u32,
        /// Tile height in lines (0: the plane's whole height, one column per tile).
        h: u32,
    },
}

/// One modifier of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModifierInfo {
    /// The name scenarios and machine files use (`"vivante_tiled"`).
    pub name: &'static str,
    /// The `drm_fourcc.h` macro it stands for.
    pub drm_name: &'static str,
    /// Its value.
    pub value: u64,
    /// Its tiling.
    pub tiling: Tiling,
    /// The width (pixels) every plane is padded to a multiple of.
    pub width_align: u32,
    /// The height (lines) every plane is padded to a multiple of.
    pub height_align: u32,
    /// Bytes of header per tile before the payload (AFBC), the header area page aligned.
    pub header_per_tile: u32,
    /// Only formats of one plane (AFBC: packed RGB and YUV).
    pub single_plane_only: bool,
    /// Only these formats (empty: any).
    pub formats: &'static [&'static str],
    /// Where the rules come from.
    pub source: &'static str,
}

/// The modifier table (module doc).
pub static MODIFIERS: [ModifierInfo; 6] = [
    ModifierInfo {
        name: "linear",
        drm_name: "DRM_FORMAT_MOD_LINEAR",
        value: 0,
        tiling: Tiling::Linear,
        width_align: 1,
        height_align: 1,
        header_per_tile: 0,
        single_plane_only: false,
        formats: &[],
        source: "drm_fourcc.h: fourcc_mod_code(NONE, 0)",
    },
    ModifierInfo {
        name: "arm_afbc_16x16_sparse",
        drm_name:
            "DRM_FORMAT_MOD_ARM_AFBC(AFBC_FORMAT_MOD_BLOCK_SIZE_16x16 | AFBC_FORMAT_MOD_SPARSE)",
        // DRM_FORMAT_MOD_ARM_CODE(DRM_FORMAT_MOD_ARM_TYPE_AFBC = 0, 1 | 1 << 6)
        value: fourcc_mod_code(VENDOR_ARM, 0x41),
        tiling: Tiling::Tiles { w: 16, h: 16 },
        width_align: 16,
        height_align: 16,
        header_per_tile: 16,
        single_plane_only: true,
        formats: &[],
        source: "drm_fourcc.h: AFBC superblocks of 16x16, a 16-byte header each; SPARSE: every \
                 superblock's payload at a fixed slot",
    },
    ModifierInfo {
        name: "broadcom_sand128",
        drm_name: "DRM_FORMAT_MOD_BROADCOM_SAND128",
        // fourcc_mod_broadcom_code(4, 0)
        value: fourcc_mod_code(VENDOR_BROADCOM, 4),
        tiling: Tiling::Tiles { w: 128, h: 0 },
        width_align: 128,
        height_align: 16,
        header_per_tile: 0,
        single_plane_only: false,
        formats: &["NV12", "NV21"],
        source: "drm_fourcc.h: columns 128 bytes wide (SAND128), the column height a parameter \
                 (0: the plane's); height aligned to 16 lines (estimate: the HEVC decoder's CTB)",
    },
    ModifierInfo {
        name: "broadcom_uif",
        drm_name: "DRM_FORMAT_MOD_BROADCOM_UIF",
        value: fourcc_mod_code(VENDOR_BROADCOM, 6),
        tiling: Tiling::Tiles { w: 64, h: 64 },
        width_align: 64,
        height_align: 64,
        header_per_tile: 0,
        single_plane_only: false,
        formats: &[],
        source: "drm_fourcc.h: UIF, the V3D's native layout of UIF blocks (64x64 here, estimate)",
    },
    ModifierInfo {
        name: "vivante_tiled",
        drm_name: "DRM_FORMAT_MOD_VIVANTE_TILED",
        value: fourcc_mod_code(VENDOR_VIVANTE, 1),
        tiling: Tiling::Tiles { w: 4, h: 4 },
        width_align: 16,
        height_align: 4,
        header_per_tile: 0,
        single_plane_only: false,
        formats: &[],
        source: "drm_fourcc.h: tiles of 4x4 pixels in row-major order; etnaviv aligns tiled \
                 widths to 16 pixels",
    },
    ModifierInfo {
        name: "vivante_super_tiled",
        drm_name: "DRM_FORMAT_MOD_VIVANTE_SUPER_TILED",
        value: fourcc_mod_code(VENDOR_VIVANTE, 2),
        tiling: Tiling::Tiles { w: 64, h: 64 },
        width_align: 64,
        height_align: 64,
        header_per_tile: 0,
        single_plane_only: false,
        formats: &[],
        source: "drm_fourcc.h: 64x64-pixel super-tiles (8x4 groups of 2x4 tiles of 4x4 inside, \
                 kept in line order here)",
    },
];

/// The names of every modifier, comma-separated (for messages).
pub fn modifier_names() -> String {
    MODIFIERS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ModifierInfo {
    /// The modifier named `name`.
    ///
    /// ```
    /// let m = drivers::modifier::ModifierInfo::by_name("vivante_tiled").unwrap();
    /// assert_eq!(m.value, 0x0600_0000_0000_0001);
    /// assert!(drivers::modifier::ModifierInfo::by_name("intel_y").is_none());
    /// ```
    pub fn by_name(name: &str) -> Option<&'static ModifierInfo> {
        MODIFIERS.iter().find(|m| m.name == name)
    }

    /// Why this modifier cannot hold `format`, if it cannot.
    pub fn refuses(&self, format: &FormatInfo) -> Option<String> {
        if self.single_plane_only && format.planes.len() > 1 {
            return Some(format!(
                "{} holds single-plane formats only, not {} ({} planes)",
                self.name,
                format.name,
                format.planes.len()
            ));
        }
        if !self.formats.is_empty() && !self.formats.contains(&format.name) {
            return Some(format!(
                "{} holds {} only, not {}",
                self.name,
                self.formats.join(", "),
                format.name
            ));
        }
        None
    }
}

/// One plane's geometry under a modifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PlaneGeom {
    /// Offset of the plane (its header, if any): a page boundary.
    start: u64,
    /// End of its last padded line.
    end: u64,
    /// Offset of the plane's first pixel byte (after its header) in the buffer.
    base: u64,
    /// Bytes per padded line.
    pitch: u64,
    /// Tile width in bytes (the pitch for linear).
    tile_bytes: u64,
    /// Tile height in lines.
    tile_lines: u64,
    /// Visible bytes per line.
    visible: u64,
    /// Visible lines.
    lines: u64,
}

impl PlaneGeom {
    /// Offset of byte `x` of line `y`.
    fn at(&self, x: u64, y: u64) -> u64 {
        let tile_row = y / self.tile_lines;
        let tile_col = x / self.tile_bytes;
        let tile = self.tile_bytes * self.tile_lines;
        self.base
            + tile_row * self.pitch * self.tile_lines
            + tile_col * tile
            + (y % self.tile_lines) * self.tile_bytes
            + x % self.tile_bytes
    }
}

/// An image of one format and size: what [`ImageLayouts`] lays out under each modifier.
#[derive(Clone, Copy, Debug)]
pub struct ImageSpec {
    /// The format.
    pub format: &'static FormatInfo,
    /// Width in pixels.
    pub width: u32,
    /// Height in lines.
    pub height: u32,
}

impl ImageSpec {
    /// The planes' geometry and the buffer's size under `m` with pitches aligned to
    /// `pitch_align` (each plane from a page boundary, as the constraint exporter lays them).
    fn geometry(&self, m: &ModifierInfo, pitch_align: u64) -> (Vec<PlaneGeom>, u64) {
        let mut out = Vec::new();
        let mut off = 0u64;
        let w = u64::from(self.width);
        let h = u64::from(self.height);
        for p in self.format.planes {
            off = align_up(off, PAGE_SIZE).unwrap_or(off);
            let bytes_of =
                |px: u64| px.div_ceil(u64::from(p.block_pixels)) * u64::from(p.block_bytes);
            let pw = w.div_ceil(u64::from(p.hsub));
            let ph = h.div_ceil(u64::from(p.vsub));
            let visible = bytes_of(pw);
            let padded_w =
                pw.next_multiple_of(u64::from(m.width_align).div_ceil(u64::from(p.hsub)).max(1));
            let lines =
                ph.next_multiple_of(u64::from(m.height_align).div_ceil(u64::from(p.vsub)).max(1));
            let (tile_bytes, tile_lines) = match m.tiling {
                Tiling::Linear => (0, 1),
                Tiling::Tiles { w: tw, h: th } => (
                    bytes_of(u64::from(tw).div_ceil(u64::from(p.hsub)).max(1)),
                    if th == 0 {
                        lines
                    } else {
                        u64::from(th).div_ceil(u64::from(p.vsub)).max(1)
                    },
                ),
            };
            let lines = lines.next_multiple_of(tile_lines);
            let mut pitch = bytes_of(padded_w).next_multiple_of(pitch_align.max(1));
            if tile_bytes > 0 {
                pitch = pitch.next_multiple_of(tile_bytes);
            }
            let tile_bytes = if tile_bytes == 0 { pitch } else { tile_bytes };
            let tiles = (pitch / tile_bytes) * (lines / tile_lines);
            let header = align_up(tiles * u64::from(m.header_per_tile), PAGE_SIZE).unwrap_or(0);
            // (0 for every modifier without a header)
            let base = off + header;
            out.push(PlaneGeom {
                start: off,
                end: base + pitch * lines,
                base,
                pitch,
                tile_bytes,
                tile_lines,
                visible,
                lines: ph,
            });
            off = base + pitch * lines;
        }
        (out, off)
    }
}

impl ImageLayouts for ImageSpec {
    fn layout(&self, modifier: &str, pitch_align: u64) -> Result<Layout, String> {
        let m = ModifierInfo::by_name(modifier).ok_or_else(|| {
            format!(
                "unknown modifier `{modifier}` (known: {})",
                modifier_names()
            )
        })?;
        if let Some(why) = m.refuses(self.format) {
            return Err(why);
        }
        let (geom, size) = self.geometry(m, pitch_align);
        let planes = geom
            .iter()
            .map(|g| PlaneLayout {
                offset: g.start,
                len: g.end - g.start,
                pitch: g.pitch,
            })
            .collect();
        Ok(Layout { size, planes })
    }

    fn modifier_value(&self, modifier: &str) -> Option<u64> {
        ModifierInfo::by_name(modifier).map(|m| m.value)
    }

    fn convert(&self, from: &Negotiated, to: &Negotiated) -> Vec<Piece> {
        let (Some(mf), Some(mt)) = (
            ModifierInfo::by_name(&from.modifier),
            ModifierInfo::by_name(&to.modifier),
        ) else {
            return Vec::new();
        };
        let (gf, _) = self.geometry(mf, from.pitch_align.value);
        let (gt, _) = self.geometry(mt, to.pitch_align.value);
        let mut out = Vec::new();
        for (a, b) in gf.iter().zip(&gt) {
            // Runs contiguous in both layouts: a tile's line in one, a piece of a line in the
            // other.
            let chunk = a.tile_bytes.min(b.tile_bytes).max(1);
            for y in 0..a.lines {
                let mut x = 0;
                while x < a.visible {
                    let n = (chunk - x % chunk).min(a.visible - x);
                    let (src, dst) = (a.at(x, y), b.at(x, y));
                    match out.last_mut() {
                        Some(Piece {
                            src: s,
                            dst: d,
                            len,
                        }) if *s + *len == src && *d + *len == dst => *len += n,
                        _ => out.push(Piece { src, dst, len: n }),
                    }
                    x += n;
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "modifier_tests.rs"]
mod tests;
