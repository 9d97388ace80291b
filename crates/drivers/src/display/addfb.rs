//! `DRM_IOCTL_MODE_ADDFB2`'s argument and its checks: what a framebuffer is made of.
//!
//! C side: `drivers/gpu/drm/drm_framebuffer.c` (`drm_internal_framebuffer_create`,
//! `framebuffer_check`) and `drm_gem_framebuffer_helper.c` (`drm_gem_fb_init_with_funcs`: each
//! plane must fit in its object).
//!
//! # The concept
//! A framebuffer is a format (a DRM fourcc), a size, an optional modifier (the
//! `DRM_MODE_FB_MODIFIERS` flag with one modifier for every plane) and, per plane, a pitch and
//! an offset into the buffer. [`FbCmd2::check`] answers what the kernel answers, in its order,
//! and on success gives the `(offset, len)` of each plane the display scans out. Here every
//! plane lives in the one dma-buf `add_fb2` is given (one GEM handle for all planes, the common
//! case of a single allocation).
//!
//! # Rules (errnos as the kernel's)
//! 1. A fourcc the format table does not know: `EINVAL`. Width or height 0: `EINVAL`.
//! 2. Per used plane: `width * cpp` over `u32::MAX`, or `height * pitch + offset` over
//!    `u32::MAX`: `ERANGE`; a pitch below `width * cpp`: `EINVAL`.
//! 3. A modifier the display's device does not list (linear is always listed), or one the
//!    modifier cannot hold the format in: `EINVAL` (no plane supports it).
//! 4. An unused plane with a pitch or an offset (with modifiers): `EINVAL`.
//! 5. A plane that does not fit in the buffer (`offset + pitch * (lines - 1) + width * cpp`
//!    over its size): `EINVAL`.
//!
//! No locking: a plain value.

use crate::format::{FormatInfo, FORMATS};
use crate::media::MediaError;
use crate::modifier::ModifierInfo;

/// `DRM_FORMAT_MOD_LINEAR`.
pub const DRM_FORMAT_MOD_LINEAR: u64 = 0;

/// `struct drm_mode_fb_cmd2`, for one buffer holding every plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FbCmd2 {
    /// Width in pixels.
    pub width: u32,
    /// Height in lines.
    pub height: u32,
    /// The DRM fourcc (`DRM_FORMAT_*`).
    pub pixel_format: u32,
    /// `Some(m)`: `DRM_MODE_FB_MODIFIERS` with `m` for every plane; `None`: no flag (linear).
    pub modifier: Option<u64>,
    /// Bytes per line of each plane (0 for planes the format does not have).
    pub pitches: [u32; 4],
    /// Offset of each plane in the buffer.
    pub offsets: [u32; 4],
}

fn range(what: String) -> MediaError {
    MediaError::Range(what)
}

impl FbCmd2 {
    /// A linear framebuffer of `format` (a name in [`crate::format`]) with the format's own
    /// packed layout: planes one after another, each at its natural pitch.
    ///
    /// ```
    /// let c = drivers::display::FbCmd2::packed("NV12", 64, 32).unwrap();
    /// assert_eq!((c.pitches, c.offsets), ([64, 64, 0, 0], [0, 64 * 32, 0, 0]));
    /// ```
    pub fn packed(format: &str, width: u32, height: u32) -> Result<FbCmd2, MediaError> {
        let info = FormatInfo::by_name(format)
            .ok_or_else(|| MediaError::Invalid(format!("no format {format}")))?;
        let drm = info.drm.ok_or_else(|| {
            MediaError::Invalid(format!(
                "{format} has no DRM fourcc: no display scans it out"
            ))
        })?;
        let layout: Vec<(u64, u64)> = info
            .layout(width, height)
            .iter()
            .map(|p| (p.bytes_per_line, p.size))
            .collect();
        Self::with_layout(drm, width, height, &layout)
    }

    /// A linear framebuffer of DRM fourcc `pixel_format` whose planes are `(pitch, size)`, one
    /// after another. A layout over 4 planes or beyond `u32` is `EINVAL`/`ERANGE`.
    pub fn with_layout(
        pixel_format: u32,
        width: u32,
        height: u32,
        planes: &[(u64, u64)],
    ) -> Result<FbCmd2, MediaError> {
        if planes.len() > 4 {
            return Err(MediaError::Invalid(format!(
                "{} planes (a framebuffer has at most 4)",
                planes.len()
            )));
        }
        let mut c = FbCmd2 {
            width,
            height,
            pixel_format,
            modifier: None,
            pitches: [0; 4],
            offsets: [0; 4],
        };
        let mut at = 0u64;
        for (i, &(pitch, size)) in planes.iter().enumerate() {
            c.pitches[i] = u32::try_from(pitch).map_err(|_| range(format!("pitch {pitch}")))?;
            c.offsets[i] = u32::try_from(at).map_err(|_| range(format!("offset {at}")))?;
            at += size;
        }
        Ok(c)
    }

    /// Rules 1-5 against a buffer of `size` bytes and the display device's `modifiers`
    /// (names; empty: linear only). Returns each plane's `(offset, len)` in the buffer, `len`
    /// being `pitch * lines` (the last line's pitch padding included when it fits, else the
    /// visible bytes).
    pub fn check(&self, size: u64, modifiers: &[String]) -> Result<Vec<(u64, u64)>, MediaError> {
        let name = fourcc_name(self.pixel_format);
        // Rule 1.
        let info = FORMATS
            .iter()
            .find(|f| f.drm == Some(self.pixel_format))
            .ok_or_else(|| MediaError::Invalid(format!("bad framebuffer format {name}")))?;
        if self.width == 0 || self.height == 0 {
            return Err(MediaError::Invalid(format!(
                "bad framebuffer size {}x{}",
                self.width, self.height
            )));
        }
        // Rule 3.
        if let Some(m) = self.modifier.filter(|&m| m != DRM_FORMAT_MOD_LINEAR) {
            let known = crate::modifier::MODIFIERS.iter().find(|k| k.value == m);
            let listed = known.filter(|k| modifiers.iter().any(|n| n == k.name));
            let Some(k) = listed else {
                return Err(MediaError::Invalid(format!(
                    "modifier {m:#x} is not one the display scans out ({})",
                    if modifiers.is_empty() {
                        "linear only".to_string()
                    } else {
                        modifiers.join(", ")
                    }
                )));
            };
            if let Some(why) = ModifierInfo::refuses(k, info) {
                return Err(MediaError::Invalid(why));
            }
        }
        let (w, h) = (u64::from(self.width), u64::from(self.height));
        let mut planes = Vec::with_capacity(info.planes.len());
        for (i, p) in info.planes.iter().enumerate() {
            let pw = if i == 0 {
                w
            } else {
                w.div_ceil(u64::from(p.hsub))
            };
            let lines = if i == 0 {
                h
            } else {
                h.div_ceil(u64::from(p.vsub))
            };
            let min_pitch = pw.div_ceil(u64::from(p.block_pixels)) * u64::from(p.block_bytes);
            let (pitch, offset) = (u64::from(self.pitches[i]), u64::from(self.offsets[i]));
            // Rule 2.
            if min_pitch > u64::from(u32::MAX) || lines * pitch + offset > u64::from(u32::MAX) {
                return Err(range(format!(
                    "plane {i} of {name}: {lines} lines of {pitch} bytes at {offset} is over 4 GiB"
                )));
            }
            if pitch < min_pitch {
                return Err(MediaError::Invalid(format!(
                    "bad pitch {pitch} for plane {i} of {name} ({pw} pixels need {min_pitch})"
                )));
            }
            // Rule 5.
            let need = offset + pitch * (lines - 1) + min_pitch;
            if need > size {
                return Err(MediaError::Invalid(format!(
                    "plane {i} of {name} needs {need:#x} bytes, the buffer has {size:#x}"
                )));
            }
            planes.push((offset, (pitch * lines).min(size - offset)));
        }
        // Rule 4.
        for i in info.planes.len()..4 {
            if self.modifier.is_some() && (self.pitches[i] != 0 || self.offsets[i] != 0) {
                return Err(MediaError::Invalid(format!(
                    "non-zero pitch or offset for unused plane {i} of {name}"
                )));
            }
        }
        Ok(planes)
    }
}

/// A fourcc as its four characters (`"XR24"`), for messages.
pub fn fourcc_name(code: u32) -> String {
    code.to_le_bytes()
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fourcc;
    use uapi::{AsErrno, Errno};

    fn nv12() -> FbCmd2 {
        FbCmd2::packed("NV12", 64, 32).unwrap()
    }

    #[test]
    fn a_packed_frame_passes_and_gives_each_plane() {
        let c = nv12();
        assert_eq!(
            c.check(64 * 48, &[]).unwrap(),
            vec![(0, 64 * 32), (64 * 32, 64 * 16)]
        );
    }

    #[test]
    fn each_bad_field_gets_the_kernels_errno() {
        let size = 1 << 20;
        let errno = |c: FbCmd2, mods: &[String]| c.check(size, mods).unwrap_err().errno();
        let bad = |f: &dyn Fn(&mut FbCmd2)| {
            let mut c = nv12();
            f(&mut c);
            c
        };
        assert_eq!(
            errno(bad(&|c| c.pixel_format = fourcc(b"ZZZZ")), &[]),
            Errno::EINVAL
        );
        assert_eq!(errno(bad(&|c| c.width = 0), &[]), Errno::EINVAL);
        assert_eq!(errno(bad(&|c| c.height = 0), &[]), Errno::EINVAL);
        assert_eq!(errno(bad(&|c| c.pitches[1] = 63), &[]), Errno::EINVAL);
        assert_eq!(
            errno(bad(&|c| c.offsets[1] = u32::MAX - 10), &[]),
            Errno::ERANGE
        );
        // A plane past the end of the buffer.
        assert_eq!(
            nv12().check(64 * 47, &[]).unwrap_err().errno(),
            Errno::EINVAL
        );
        // A tiled modifier the device does not list, then one that cannot hold NV12.
        let afbc = crate::modifier::ModifierInfo::by_name("arm_afbc_16x16_sparse").unwrap();
        assert_eq!(
            errno(bad(&|c| c.modifier = Some(afbc.value)), &[]),
            Errno::EINVAL
        );
        let listed = vec![afbc.name.to_string()];
        let e = bad(&|c| c.modifier = Some(afbc.value))
            .check(size, &listed)
            .unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
        assert!(e.to_string().contains("single-plane"), "{e}");
        // Linear with the flag is fine; an unused plane's pitch with the flag is not.
        let lin = bad(&|c| c.modifier = Some(DRM_FORMAT_MOD_LINEAR));
        assert!(lin.check(size, &[]).is_ok());
        let mut stray = lin;
        stray.pitches[3] = 64;
        assert_eq!(errno(stray, &[]), Errno::EINVAL);
        // Without the flag the kernel ignores what the unused planes hold.
        assert!(bad(&|c| c.pitches[3] = 64).check(size, &[]).is_ok());
    }
}
