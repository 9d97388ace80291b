//! The camera's test-pattern generator (vivid's `tpg`): what a capture device writes into a
//! frame, generated chunk by chunk at any byte offset so a job never holds a whole frame.
//!
//! C side: `drivers/media/common/v4l2-tpg/v4l2-tpg-core.c`.
//!
//! Every frame differs from the previous ones over the whole plane (the bars move by four bytes
//! a frame, the ramp by one, noise is fresh); the frame number itself travels in the frame's
//! stamp ([`crate::frame`]), which the writer of the frame puts over the first bytes.
//!
//! No locking: a [`PatternGen`] is an immutable value; any number of jobs may fill from it.

/// What a camera writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TestPattern {
    /// Colour bars (eight vertical bars in luma, their chroma in the chroma plane).
    #[default]
    Bars,
    /// A diagonal ramp that moves one pixel per frame and one line per row.
    Ramp,
    /// Pseudo-random bytes from the seed and the frame number.
    Noise,
}

const K: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The generator of plane `plane` (of `bytes_per_line`-byte lines) of frame `frame`,
/// filled into `out` starting at byte `offset` of the plane.
///
///
/// ```
/// use drivers::pattern::{PatternGen, TestPattern};
/// let g = PatternGen::new(TestPattern::Ramp, 1, 0, 0, 16);
/// let mut whole = [0u8; 64];
/// g.fill(0, &mut whole);
/// let mut tail = [0u8; 32];
/// g.fill(32, &mut tail);
/// assert_eq!(&whole[32..], &tail);
/// ```
pub struct PatternGen {
    pattern: TestPattern,
    seed: u64,
    frame: u64,
    line: Vec<u8>,
    bytes_per_line: usize,
    plane: usize,
}

impl PatternGen {
    /// The generator of one plane of one frame.
    pub fn new(
        pattern: TestPattern,
        seed: u64,
        frame: u64,
        plane: usize,
        bytes_per_line: u64,
    ) -> PatternGen {
        let bpl = (bytes_per_line as usize).max(16);
        let shift = match pattern {
            TestPattern::Bars => frame as usize * 4,
            _ => frame as usize,
        };
        let line = (0..bpl)
            .map(|x| {
                let x = x + shift;
                match (pattern, plane) {
                    (TestPattern::Bars, 0) => {
                        [235u8, 210, 170, 145, 106, 81, 41, 16][(x * 8 / bpl) % 8]
                    }
                    // Interleaved chroma: Cb at even bytes, Cr at odd ones (BT.601 bars; the
                    // shift is a multiple of 4, so the parity stays).
                    (TestPattern::Bars, _) if x % 2 == 0 => {
                        [128u8, 16, 166, 54, 202, 90, 240, 128][(x * 8 / bpl) % 8]
                    }
                    (TestPattern::Bars, _) => {
                        [128u8, 146, 16, 34, 222, 240, 110, 128][(x * 8 / bpl) % 8]
                    }
                    _ => (x % 251) as u8,
                }
            })
            .collect();
        PatternGen {
            pattern,
            seed,
            frame,
            line,
            bytes_per_line: bpl,
            plane,
        }
    }

    /// Fills `out` with the plane's bytes `[offset, offset + out.len())`.
    pub fn fill(&self, offset: usize, out: &mut [u8]) {
        if self.pattern == TestPattern::Noise {
            let base = mix(self.seed ^ (self.frame << 20) ^ (self.plane as u64) << 60);
            // One mixed word per 8-byte word of the plane: the same bytes in any chunking.
            words(offset, out, |w| mix(base ^ w));
        } else {
            let bpl = self.bytes_per_line;
            let mut pos = offset;
            let mut done = 0;
            while done < out.len() {
                let row = pos / bpl;
                let col = pos % bpl;
                let n = (bpl - col).min(out.len() - done);
                out[done..done + n].copy_from_slice(&self.line[col..col + n]);
                // A ramp moves down a line per row, too.
                if self.pattern == TestPattern::Ramp {
                    let r = (row % 251) as u8;
                    for b in &mut out[done..done + n] {
                        *b = b.wrapping_add(r);
                    }
                }
                done += n;
                pos += n;
            }
        }
    }
}

/// Bytes `[offset, offset + out.len())` of a frame rendered from an input whose checksum is
/// `seed`: what a producer writes when its output has no per-byte relation to its input (other
/// sizes or formats). The output still depends on every input byte, through the checksum.
pub fn render_from(seed: u64, offset: usize, out: &mut [u8]) {
    let base = mix(seed);
    words(offset, out, |w| base.wrapping_add(w.wrapping_mul(K)));
}

/// Fills `out`, bytes `[offset, offset + out.len())` of a stream whose word `w` (8 bytes, little
/// endian) is `word(w)`, at any alignment.
fn words(offset: usize, out: &mut [u8], word: impl Fn(u64) -> u64) {
    let head = ((8 - offset % 8) % 8).min(out.len());
    if head > 0 {
        let bytes = word((offset / 8) as u64).to_le_bytes();
        out[..head].copy_from_slice(&bytes[offset % 8..offset % 8 + head]);
    }
    let first = offset.div_ceil(8) as u64;
    for (i, b) in out[head..].chunks_mut(8).enumerate() {
        let bytes = word(first + i as u64).to_le_bytes();
        b.copy_from_slice(&bytes[..b.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::checksum;

    #[test]
    fn pattern_chunking_does_not_change_bytes() {
        for p in [TestPattern::Bars, TestPattern::Ramp, TestPattern::Noise] {
            let g = PatternGen::new(p, 3, 5, 0, 64);
            let mut whole = vec![0u8; 640];
            g.fill(0, &mut whole);
            let mut parts = vec![0u8; 640];
            for (i, c) in parts.chunks_mut(64).enumerate() {
                g.fill(i * 64, c);
            }
            assert_eq!(whole, parts, "{p:?}");
            // Any chunking, word boundaries or not.
            let mut odd = vec![0u8; 640];
            let mut at = 0;
            for n in [3usize, 13, 100, 1, 523] {
                g.fill(at, &mut odd[at..at + n]);
                at += n;
            }
            assert_eq!(whole, odd, "{p:?}");
            let mut r_whole = vec![0u8; 100];
            render_from(9, 5, &mut r_whole);
            let mut r_parts = vec![0u8; 100];
            render_from(9, 5, &mut r_parts[..7]);
            render_from(9, 12, &mut r_parts[7..]);
            assert_eq!(r_whole, r_parts);
            let g2 = PatternGen::new(p, 3, 6, 0, 64);
            let mut next = vec![0u8; 640];
            g2.fill(0, &mut next);
            assert_ne!(checksum(&whole), checksum(&next));
        }
    }
}
