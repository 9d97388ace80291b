//! What the simulated devices write, and how sinks check it: a fast streaming checksum, the
//! camera's test patterns, and the per-node transforms, all working chunk by chunk.
//!
//! Frames are large (a 4K NV12 frame is 12 MiB, its XRGB composite 32 MiB) and a default run
//! moves hundreds of them through several devices, so nothing here touches a byte twice: a
//! device job moves its frame in [`CHUNK`]-sized pieces, and each piece is generated or
//! transformed and fed to the checksum while it is still in the host's cache.
//!
//! # The checksum
//! [`Hasher`] is a four-lane multiply-rotate hash over little-endian 64-bit words (32 bytes per
//! step, the lanes independent so the CPU overlaps them), finished with the length. It is not
//! cryptographic; it only has to make a torn, stale or misplaced frame differ from the one the
//! source produced, which any flipped bit does. The same bytes fed in any chunking give the same
//! value ([`Hasher::update`] keeps a partial word between calls).

use crate::schema::{IspTransform, TestPattern};

/// Bytes a device job moves, transforms and hashes at a time.
pub const CHUNK: usize = 1 << 20;

const K: u64 = 0x9E37_79B9_7F4A_7C15;
const SEEDS: [u64; 4] = [
    0x243F_6A88_85A3_08D3,
    0x1319_8A2E_0370_7344,
    0xA409_3822_299F_31D0,
    0x082E_FA98_EC4E_6C89,
];

/// A streaming checksum (module doc).
#[derive(Clone, Debug)]
pub struct Hasher {
    lanes: [u64; 4],
    pending: [u8; 32],
    npending: usize,
    len: u64,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

#[inline(always)]
fn round(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(K).rotate_left(29)
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Hasher {
        Hasher {
            lanes: SEEDS,
            pending: [0; 32],
            npending: 0,
            len: 0,
        }
    }

    #[inline]
    fn block(&mut self, b: &[u8]) {
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        self.lanes[0] = round(self.lanes[0], w(0));
        self.lanes[1] = round(self.lanes[1], w(1));
        self.lanes[2] = round(self.lanes[2], w(2));
        self.lanes[3] = round(self.lanes[3], w(3));
    }

    /// Feeds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.npending > 0 {
            let take = (32 - self.npending).min(data.len());
            self.pending[self.npending..self.npending + take].copy_from_slice(&data[..take]);
            self.npending += take;
            data = &data[take..];
            if self.npending < 32 {
                return;
            }
            let p = self.pending;
            self.block(&p);
            self.npending = 0;
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            self.block(b);
        }
        let rest = blocks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.npending = rest.len();
    }

    /// The checksum of everything fed.
    pub fn finish(&self) -> u64 {
        let mut lanes = self.lanes;
        if self.npending > 0 {
            let mut last = [0u8; 32];
            last[..self.npending].copy_from_slice(&self.pending[..self.npending]);
            for (i, l) in lanes.iter_mut().enumerate() {
                let w = u64::from_le_bytes(last[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
                *l = round(*l, w);
            }
        }
        let mut h = self.len.wrapping_mul(K);
        for l in lanes {
            h = round(h, l);
        }
        h ^ (h >> 31)
    }
}

/// The checksum of `data` in one call.
///
/// ```
/// use scenario::run::bytes::{checksum, Hasher};
/// let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
/// let mut h = Hasher::new();
/// for c in data.chunks(7) { h.update(c); }
/// assert_eq!(h.finish(), checksum(&data));
/// assert_ne!(checksum(&data[..999]), checksum(&data));
/// ```
pub fn checksum(data: &[u8]) -> u64 {
    let mut h = Hasher::new();
    h.update(data);
    h.finish()
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// What a camera writes: plane `plane` (of `bytes_per_line`-byte lines) of frame `frame`,
/// filled into `out` starting at byte `offset` of the plane.
///
/// Every frame differs from the previous ones over the whole plane (the bars move by four
/// bytes a frame, the ramp by one, noise is fresh), and the first 16 bytes of each plane carry
/// the frame number and the seed, so a stale or misplaced buffer never checks out.
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
                    (TestPattern::Bars, _) => {
                        [128u8, 16, 166, 54, 202, 90, 240, 128][(x * 8 / bpl) % 8]
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
            // One mixed word per 8-byte word of the plane: the same bytes in any chunking
            // that starts on a word boundary.
            for (i, b) in out.chunks_mut(8).enumerate() {
                let bytes = mix(base ^ (offset / 8 + i) as u64).to_le_bytes();
                b.copy_from_slice(&bytes[..b.len()]);
            }
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
        // The stamp: frame number and seed in the first 16 bytes of the plane.
        if offset < 16 {
            let mut stamp = [0u8; 16];
            stamp[..8].copy_from_slice(&self.frame.to_le_bytes());
            stamp[8..].copy_from_slice(&self.seed.to_le_bytes());
            let n = (16 - offset).min(out.len());
            out[..n].copy_from_slice(&stamp[offset..offset + n]);
        }
    }
}

/// Applies an ISP transform in place to a chunk at byte `offset` of plane `plane`.
pub fn isp_transform(t: IspTransform, plane: usize, offset: usize, data: &mut [u8]) {
    match t {
        IspTransform::Copy => {}
        IspTransform::Invert => {
            for b in data.iter_mut() {
                *b = !*b;
            }
        }
        IspTransform::SwapUv => {
            if plane == 1 {
                // Chroma pairs (Cb, Cr) start at even offsets of the plane.
                let start = offset % 2;
                let mut i = start;
                while i + 1 < data.len() {
                    data.swap(i, i + 1);
                    i += 2;
                }
            }
        }
    }
}

/// The GPU's composite of a luma chunk into XRGB8888 pixels: each luma byte becomes a grey
/// pixel `[y, y, y, 0xff]` (blue, green, red, unused in memory order).
pub fn luma_to_xrgb(luma: &[u8], out: &mut [u8]) {
    for (px, &y) in out.chunks_exact_mut(4).zip(luma) {
        px.copy_from_slice(&[y, y, y, 0xff]);
    }
}

/// Bytes `[offset, offset + out.len())` of a frame rendered from an input whose checksum is
/// `seed`: what a producer writes when its output has no per-byte relation to its input (other
/// sizes or formats). The output still depends on every input byte, through the checksum.
pub fn render_from(seed: u64, offset: usize, out: &mut [u8]) {
    let base = mix(seed);
    for (i, b) in out.chunks_mut(8).enumerate() {
        let w = base.wrapping_add(((offset / 8 + i) as u64).wrapping_mul(K));
        let bytes = w.to_le_bytes();
        b.copy_from_slice(&bytes[..b.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_chunking_does_not_change_bytes() {
        for p in [TestPattern::Bars, TestPattern::Ramp, TestPattern::Noise] {
            let g = PatternGen::new(p, 3, 5, 0, 64);
            let mut whole = vec![0u8; 640];
            g.fill(0, &mut whole);
            let mut parts = vec![0u8; 640];
            // Noise is generated in 8-byte words: chunk on word boundaries.
            for (i, c) in parts.chunks_mut(64).enumerate() {
                g.fill(i * 64, c);
            }
            assert_eq!(whole, parts, "{p:?}");
            let g2 = PatternGen::new(p, 3, 6, 0, 64);
            let mut next = vec![0u8; 640];
            g2.fill(0, &mut next);
            assert_ne!(checksum(&whole), checksum(&next));
        }
    }

    #[test]
    fn swap_uv_is_an_involution() {
        let mut d: Vec<u8> = (0..32).collect();
        isp_transform(IspTransform::SwapUv, 1, 0, &mut d);
        assert_eq!(&d[..4], &[1, 0, 3, 2]);
        isp_transform(IspTransform::SwapUv, 1, 0, &mut d);
        assert_eq!(d, (0..32).collect::<Vec<u8>>());
    }
}
