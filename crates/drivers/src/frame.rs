//! Frames as the media drivers see them: the NV12 layout, the camera's test pattern, the stamp
//! every sink verifies, and the pure-CPU transforms (2x downscale, NV12 -> YCbCr) that tests
//! recompute.
//!
//! C side: `include/uapi/linux/videodev2.h` (`V4L2_PIX_FMT_NV12`), the test-pattern generator of
//! `drivers/media/test-drivers/vivid/` (`tpg`), and the checksum idea of v4l2-compliance's
//! `--stream-to-hdr`.
//!
//! # NV12
//! One plane: `width * height` bytes of luma (Y), then `height / 2` rows of interleaved chroma
//! pairs (Cb, Cr), one pair per 2x2 block of pixels: `width * height * 3 / 2` bytes in all.
//!
//! # The stamp
//! The first [`STAMP_LEN`] bytes of the luma plane carry a header: the magic `DMBF`, the frame
//! number (little endian `u32`) and the checksum ([`checksum`]) of every byte **after** the
//! header, in plane order. A frame whose stamp is valid was written completely by one producer; a sink that
//! reads a frame half-written, stale, or from the wrong buffer sees a bad stamp or the wrong
//! frame number ([`verify_stamp`]). Transforms (the ISP) re-stamp their output with the input's
//! frame number, so every frame of a pipeline verifies itself. The scheduled device jobs
//! ([`crate::job`]) write and check the same stamp chunk by chunk: the body first, the header
//! last, so a reader never sees a valid header over a half-written body.

use crate::media::MediaError;

/// Bytes of the stamp at the start of every frame: magic, frame number, checksum.
pub const STAMP_LEN: usize = 16;
/// The stamp's magic.
pub const STAMP_MAGIC: [u8; 4] = *b"DMBF";
/// The largest frame side accepted (8K); larger sizes are refused, not allocated.
pub const MAX_SIDE: u32 = 8192;

pub use crate::hash::{checksum, Hasher, CHUNK};

/// An NV12 frame format (`V4L2_PIX_FMT_NV12`, single plane, no padding: stride = width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameFormat {
    /// Pixels per line; even, at least 16.
    pub width: u32,
    /// Lines; even, at least 2.
    pub height: u32,
}

impl FrameFormat {
    /// A format of `width` x `height`, checked: both even, `width >= 16` (the stamp fits a line),
    /// at most [`MAX_SIDE`]; `EINVAL` otherwise.
    ///
    /// ```
    /// use drivers::frame::FrameFormat;
    /// assert_eq!(FrameFormat::new(64, 48)?.size(), 64 * 48 * 3 / 2);
    /// assert!(FrameFormat::new(63, 48).is_err());
    /// # Ok::<(), drivers::media::MediaError>(())
    /// ```
    pub fn new(width: u32, height: u32) -> Result<FrameFormat, MediaError> {
        let ok = |v: u32, min: u32| v >= min && v.is_multiple_of(2) && v <= MAX_SIDE;
        if !ok(width, 16) || !ok(height, 2) {
            return Err(MediaError::Invalid(format!(
                "NV12 {width}x{height}: sides must be even, width 16..={MAX_SIDE}, height 2..={MAX_SIDE}"
            )));
        }
        Ok(FrameFormat { width, height })
    }

    /// Bytes of the luma plane.
    pub fn luma_size(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// Bytes of a whole frame (`sizeimage`).
    pub fn size(&self) -> usize {
        self.luma_size() * 3 / 2
    }

    /// The format of the 2x downscaled frame (`EINVAL` if a side would drop below the minimum or
    /// turn odd).
    pub fn half(&self) -> Result<FrameFormat, MediaError> {
        if !self.width.is_multiple_of(4) || !self.height.is_multiple_of(4) {
            return Err(MediaError::Invalid(format!(
                "{}x{} does not halve into an NV12 format (sides must be multiples of 4)",
                self.width, self.height
            )));
        }
        FrameFormat::new(self.width / 2, self.height / 2)
    }
}

impl std::fmt::Display for FrameFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NV12 {}x{}", self.width, self.height)
    }
}

/// The camera's default frame `frame`: colour bars ([`crate::pattern`], seed 0) in both planes,
/// stamped, so that every frame differs from the previous ones.
///
/// ```
/// use drivers::frame::{pattern, verify_stamp, FrameFormat};
/// let fmt = FrameFormat::new(32, 16)?;
/// let f = pattern(fmt, 7);
/// assert_eq!(verify_stamp(&f), Ok(7));
/// assert_ne!(pattern(fmt, 8), f);
/// # Ok::<(), drivers::media::MediaError>(())
/// ```
pub fn pattern(fmt: FrameFormat, frame: u32) -> Vec<u8> {
    use crate::pattern::{PatternGen, TestPattern};
    let mut out = vec![0u8; fmt.size()];
    let (luma, chroma) = out.split_at_mut(fmt.luma_size());
    let bpl = u64::from(fmt.width);
    PatternGen::new(TestPattern::Bars, 0, u64::from(frame), 0, bpl).fill(0, luma);
    PatternGen::new(TestPattern::Bars, 0, u64::from(frame), 1, bpl).fill(0, chroma);
    stamp(&mut out, frame);
    out
}

/// Writes the stamp of `frame` over the first [`STAMP_LEN`] bytes of `data` (which must be
/// longer than that; shorter data is left as is).
pub fn stamp(data: &mut [u8], frame: u32) {
    if data.len() <= STAMP_LEN {
        return;
    }
    let sum = checksum(&data[STAMP_LEN..]);
    data[..4].copy_from_slice(&STAMP_MAGIC);
    data[4..8].copy_from_slice(&frame.to_le_bytes());
    data[8..16].copy_from_slice(&sum.to_le_bytes());
}

/// What is wrong with a frame's stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StampError {
    /// No stamp at all (never written, or a foreign frame).
    NoStamp,
    /// The stamp names frame `frame`, but the bytes after it do not match its checksum (torn,
    /// stale or corrupted).
    BadChecksum {
        /// The frame number of the stamp.
        frame: u32,
    },
}

/// Checks a frame's stamp and returns its frame number.
pub fn verify_stamp(data: &[u8]) -> Result<u32, StampError> {
    if data.len() <= STAMP_LEN || data[..4] != STAMP_MAGIC {
        return Err(StampError::NoStamp);
    }
    let frame = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&data[8..16]);
    if u64::from_le_bytes(sum) != checksum(&data[STAMP_LEN..]) {
        return Err(StampError::BadChecksum { frame });
    }
    Ok(frame)
}

/// The frame number a stamp claims, valid or not (`None` without the magic).
pub fn stamped_frame(data: &[u8]) -> Option<u32> {
    (data.len() > STAMP_LEN && data[..4] == STAMP_MAGIC)
        .then(|| u32::from_le_bytes([data[4], data[5], data[6], data[7]]))
}

/// The ISP's transform: NV12 downscaled 2x by a 2x2 box filter on luma and on each chroma
/// component, then re-stamped with the input's claimed frame number (0 if none).
///
/// `src` must be `fmt.size()` bytes (`EINVAL` otherwise); the result is `fmt.half()` sized.
pub fn downscale_nv12(fmt: FrameFormat, src: &[u8]) -> Result<Vec<u8>, MediaError> {
    let out_fmt = fmt.half()?;
    if src.len() != fmt.size() {
        return Err(MediaError::Invalid(format!(
            "{fmt} needs {} bytes, got {}",
            fmt.size(),
            src.len()
        )));
    }
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    let (ow, oh) = (w / 2, h / 2);
    let mut out = vec![0u8; out_fmt.size()];
    let avg = |a: u8, b: u8, c: u8, d: u8| {
        ((u16::from(a) + u16::from(b) + u16::from(c) + u16::from(d) + 2) / 4) as u8
    };
    for y in 0..oh {
        for x in 0..ow {
            let (sx, sy) = (x * 2, y * 2);
            out[y * ow + x] = avg(
                src[sy * w + sx],
                src[sy * w + sx + 1],
                src[(sy + 1) * w + sx],
                src[(sy + 1) * w + sx + 1],
            );
        }
    }
    // Chroma: (w/2)x(h/2) pairs in, (w/4)x(h/4) pairs out.
    let (cw, ocw, och) = (w / 2, ow / 2, oh / 2);
    let sc = &src[w * h..];
    let oc = &mut out[ow * oh..];
    for y in 0..och {
        for x in 0..ocw {
            for k in 0..2 {
                let at = |xx: usize, yy: usize| sc[(yy * cw + xx) * 2 + k];
                let (sx, sy) = (x * 2, y * 2);
                oc[(y * ocw + x) * 2 + k] = avg(
                    at(sx, sy),
                    at(sx + 1, sy),
                    at(sx, sy + 1),
                    at(sx + 1, sy + 1),
                );
            }
        }
    }
    stamp(&mut out, stamped_frame(src).unwrap_or(0));
    Ok(out)
}

/// Box-downscales an NV12 frame by an integer `factor` and returns interleaved 8-bit YCbCr
/// (4:4:4, three bytes per pixel) of `(width / factor) x (height / factor)`, for a JPEG
/// encoder. `factor` must be a positive even number dividing both sides (`EINVAL` otherwise).
pub fn nv12_to_ycbcr(
    fmt: FrameFormat,
    src: &[u8],
    factor: u32,
) -> Result<(u32, u32, Vec<u8>), MediaError> {
    if factor == 0
        || !factor.is_multiple_of(2)
        || !fmt.width.is_multiple_of(factor)
        || !fmt.height.is_multiple_of(factor)
        || src.len() != fmt.size()
    {
        return Err(MediaError::Invalid(format!(
            "cannot scale {fmt} ({} bytes given) by 1/{factor}: the factor must be even and divide both sides",
            src.len()
        )));
    }
    let (w, f) = (fmt.width as usize, factor as usize);
    let (ow, oh) = (w / f, fmt.height as usize / f);
    let chroma = &src[fmt.luma_size()..];
    let mut out = Vec::with_capacity(ow * oh * 3);
    for y in 0..oh {
        for x in 0..ow {
            let mut sum = 0u32;
            for dy in 0..f {
                for dx in 0..f {
                    sum += u32::from(src[(y * f + dy) * w + x * f + dx]);
                }
            }
            out.push((sum / (f * f) as u32) as u8);
            let mut cs = [0u32; 2];
            let half = f / 2;
            for dy in 0..half {
                for dx in 0..half {
                    let i = ((y * half + dy) * (w / 2) + x * half + dx) * 2;
                    cs[0] += u32::from(chroma[i]);
                    cs[1] += u32::from(chroma[i + 1]);
                }
            }
            let n = (half * half) as u32;
            out.push((cs[0] / n) as u8);
            out.push((cs[1] / n) as u8);
        }
    }
    Ok((ow as u32, oh as u32, out))
}

/// Run-length encodes `data` as `(count, byte)` pairs, counts 1..=255: the encoder's
/// "compression", simple enough for a test to decode ([`rle_decode`]).
///
/// ```
/// use drivers::frame::{rle_decode, rle_encode};
/// let data = [1, 1, 1, 2, 3, 3];
/// assert_eq!(rle_encode(&data), [3, 1, 1, 2, 2, 3]);
/// assert_eq!(rle_decode(&rle_encode(&data)).unwrap(), data);
/// ```
pub fn rle_encode(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; data.len() * 2 + 2];
    let mut rle = crate::encoder::RleStream::default();
    let mut n = rle.feed(data, &mut out);
    n += rle.finish(&mut out[n..]);
    out.truncate(n);
    out
}

/// Decodes [`rle_encode`]'s output; `EINVAL` on an odd length or a zero count.
pub fn rle_decode(rle: &[u8]) -> Result<Vec<u8>, MediaError> {
    if !rle.len().is_multiple_of(2) {
        return Err(MediaError::Invalid("RLE stream of odd length".into()));
    }
    let mut out = Vec::new();
    for pair in rle.chunks_exact(2) {
        if pair[0] == 0 {
            return Err(MediaError::Invalid("RLE run of length 0".into()));
        }
        out.extend(std::iter::repeat_n(pair[1], usize::from(pair[0])));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downscale_is_deterministic_and_restamped() {
        let fmt = FrameFormat::new(32, 16).unwrap();
        let a = downscale_nv12(fmt, &pattern(fmt, 3)).unwrap();
        assert_eq!(a.len(), fmt.half().unwrap().size());
        assert_eq!(verify_stamp(&a), Ok(3));
        assert_eq!(a, downscale_nv12(fmt, &pattern(fmt, 3)).unwrap());
    }

    #[test]
    fn a_flipped_byte_breaks_the_stamp() {
        let fmt = FrameFormat::new(16, 4).unwrap();
        let mut f = pattern(fmt, 1);
        f[40] ^= 1;
        assert_eq!(verify_stamp(&f), Err(StampError::BadChecksum { frame: 1 }));
        assert_eq!(verify_stamp(&[0u8; 64]), Err(StampError::NoStamp));
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let fmt = FrameFormat::new(16, 4).unwrap();
        assert!(downscale_nv12(fmt, &[0u8; 5]).is_err());
        assert!(nv12_to_ycbcr(fmt, &pattern(fmt, 0), 3).is_err());
        assert!(nv12_to_ycbcr(fmt, &pattern(fmt, 0), 0).is_err());
        assert!(rle_decode(&[0, 1]).is_err());
        assert!(FrameFormat::new(0, 0).is_err());
        assert!(FrameFormat::new(u32::MAX, 2).is_err());
    }
}
