//! The checksum every device and sink of this crate agrees on: a fast, position-keyed,
//! splittable hash.
//!
//! Frames are large (a 4K NV12 frame is 12 MiB, its XRGB composite 32 MiB) and a pipeline
//! moves hundreds of them through several devices, so jobs move a frame in [`CHUNK`]-sized
//! pieces, possibly on several host threads at once ([`crate::job`]), and feed each piece to
//! the checksum while it is still in the host's cache.
//!
//! # The function
//! The bytes are cut into little-endian 64-bit words (the last one zero-padded); word `i`
//! contributes `lo32(y) * hi32(y) + w` with `y = w ^ key(i)` (XXH3's accumulate step: one
//! 32x32->64 multiply per word, which SSE2 does two at a time), the contributions are summed,
//! and the sum is finished with the length and a 64-bit mixer. So:
//! - a changed word changes the sum unless its product moves by exactly minus its change (for
//!   a flipped bit that needs the other half of `y` to be 1: about 2^-32); a word moved
//!   elsewhere meets another key;
//! - the sum of a range does not depend on any other range: pieces of a frame hash on
//!   different threads ([`Hasher::at`]) and their [`Partial`]s combine in any order
//!   ([`combine`]); a piece that starts or ends inside a word leaves that word as a fragment,
//!   which [`combine`] joins with its neighbour's.
//!
//! It is not cryptographic; it only has to make a torn, stale or misplaced frame differ from the
//! one the source produced. The same bytes fed in any chunking give the same value.
//!
//! No locking: a [`Hasher`] is a plain value owned by the job that feeds it.

/// Bytes a device job moves, transforms and hashes as one independent piece (one host thread's
/// unit of work, one DMA call per piece and buffer).
pub const CHUNK: usize = 1 << 20;

const STEP: u64 = 0xC2B2_AE3D_27D4_EB4F;
const SEED: u64 = 0x243F_6A88_85A3_08D3;

#[inline(always)]
fn key(i: u64) -> u64 {
    SEED.wrapping_add(i.wrapping_mul(STEP))
}

#[inline(always)]
fn contrib(i: u64, w: u64) -> u64 {
    let y = w ^ key(i);
    (y & 0xffff_ffff).wrapping_mul(y >> 32).wrapping_add(w)
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The sum of the whole words of `data`, whose first byte is word `first` of the stream.
fn sum_words(first: u64, data: &[u8]) -> u64 {
    let mut k = [key(first), key(first + 1), key(first + 2), key(first + 3)];
    let step4 = STEP.wrapping_mul(4);
    let mut acc = [0u64; 4];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        for l in 0..4 {
            let w = u64::from_le_bytes(b[l * 8..l * 8 + 8].try_into().unwrap_or([0; 8]));
            let y = w ^ k[l];
            acc[l] = acc[l].wrapping_add((y & 0xffff_ffff).wrapping_mul(y >> 32).wrapping_add(w));
            k[l] = k[l].wrapping_add(step4);
        }
    }
    let mut s = acc[0]
        .wrapping_add(acc[1])
        .wrapping_add(acc[2])
        .wrapping_add(acc[3]);
    let rest = first + (data.len() / 32 * 4) as u64;
    for (i, w) in (rest..).zip(blocks.remainder().chunks_exact(8)) {
        let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        s = s.wrapping_add(contrib(i, w));
    }
    s
}

/// What a range of the stream hashed to: the sum of its whole words and up to two fragments
/// (a word the range starts or ends inside of), to [`combine`] with the other ranges'.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Partial {
    sum: u64,
    /// `(word index, bytes of the word this range holds, the others zero)`.
    frags: [(u64, u64); 2],
    nfrags: usize,
}

impl Partial {
    fn frag(&mut self, i: u64, bits: u64) {
        if self.nfrags < 2 {
            self.frags[self.nfrags] = (i, bits);
            self.nfrags += 1;
        } else if let Some(f) = self.frags.iter_mut().find(|f| f.0 == i) {
            f.1 |= bits;
        }
    }
}

/// The checksum of a stream of `len` bytes from the partials of ranges that cover it exactly
/// once (in any order).
///
/// ```
/// use drivers::hash::{checksum, combine, Hasher};
/// let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
/// let (a, b) = data.split_at(333); // not on a word boundary
/// let mut ha = Hasher::at(0);
/// ha.update(a);
/// let mut hb = Hasher::at(333);
/// hb.update(b);
/// assert_eq!(combine([hb.partial(), ha.partial()], 1000), checksum(&data));
/// ```
pub fn combine(parts: impl IntoIterator<Item = Partial>, len: u64) -> u64 {
    let mut sum = 0u64;
    let mut frags: Vec<(u64, u64)> = Vec::new();
    for p in parts {
        sum = sum.wrapping_add(p.sum);
        frags.extend_from_slice(&p.frags[..p.nfrags]);
    }
    frags.sort_unstable_by_key(|f| f.0);
    let mut k = 0;
    while k < frags.len() {
        let (i, mut bits) = frags[k];
        k += 1;
        while k < frags.len() && frags[k].0 == i {
            bits |= frags[k].1;
            k += 1;
        }
        sum = sum.wrapping_add(contrib(i, bits));
    }
    mix(sum ^ len.wrapping_mul(STEP) ^ SEED)
}

/// A streaming checksum over one range of a stream (module doc).
#[derive(Clone, Debug)]
pub struct Hasher {
    start: u64,
    pos: u64,
    /// Bytes of the word at `pos / 8` seen so far (when `pos % 8 != 0`).
    cur: u64,
    part: Partial,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

impl Hasher {
    /// A fresh hasher of a stream from its first byte.
    pub fn new() -> Hasher {
        Hasher::at(0)
    }

    /// A hasher of the range of a stream that starts at byte `offset`.
    pub fn at(offset: u64) -> Hasher {
        Hasher {
            start: offset,
            pos: offset,
            cur: 0,
            part: Partial::default(),
        }
    }

    fn word_done(&mut self) {
        let i = self.pos / 8 - 1;
        if i * 8 < self.start {
            self.part.frag(i, self.cur);
        } else {
            self.part.sum = self.part.sum.wrapping_add(contrib(i, self.cur));
        }
        self.cur = 0;
    }

    /// Feeds the next bytes of the range.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.pos.is_multiple_of(8) {
            let off = (self.pos % 8) as usize;
            self.cur |= u64::from(data[0]) << (8 * off);
            self.pos += 1;
            data = &data[1..];
            if self.pos.is_multiple_of(8) {
                self.word_done();
            }
        }
        let whole = data.len() / 8 * 8;
        if whole > 0 {
            let s = sum_words(self.pos / 8, &data[..whole]);
            self.part.sum = self.part.sum.wrapping_add(s);
            self.pos += whole as u64;
        }
        for (off, &b) in data[whole..].iter().enumerate() {
            self.cur |= u64::from(b) << (8 * off);
        }
        self.pos += (data.len() - whole) as u64;
    }

    /// Bytes of the stream this range has reached (its start plus the bytes fed).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// What the range fed so far hashes to, to [`combine`] with the others.
    pub fn partial(&self) -> Partial {
        let mut p = self.part;
        if !self.pos.is_multiple_of(8) {
            p.frag(self.pos / 8, self.cur);
        }
        p
    }

    /// The checksum of everything fed, for a hasher that started at byte 0.
    pub fn finish(&self) -> u64 {
        combine([self.partial()], self.pos)
    }
}

/// The checksum of `data` in one call.
///
/// ```
/// use drivers::frame::{checksum, Hasher};
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, salt: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
            .collect()
    }

    #[test]
    fn any_split_into_ranges_combines_to_the_whole() {
        let data = bytes(4099, 3);
        let whole = checksum(&data);
        for cuts in [
            vec![1],
            vec![8, 9, 17],
            vec![5, 1000, 1003, 4000],
            vec![4098],
        ] {
            let mut parts = Vec::new();
            let mut at = 0;
            for &c in cuts.iter().chain(std::iter::once(&data.len())) {
                let mut h = Hasher::at(at as u64);
                h.update(&data[at..c]);
                parts.push(h.partial());
                at = c;
            }
            parts.reverse();
            assert_eq!(combine(parts, data.len() as u64), whole, "{cuts:?}");
        }
    }

    #[test]
    fn every_single_flipped_bit_and_every_swapped_word_changes_the_sum() {
        let data = bytes(256, 9);
        let whole = checksum(&data);
        for i in 0..data.len() {
            for bit in 0..8 {
                let mut d = data.clone();
                d[i] ^= 1 << bit;
                assert_ne!(checksum(&d), whole, "byte {i} bit {bit}");
            }
        }
        let mut swapped = data.clone();
        swapped.copy_within(0..8, 64);
        swapped[..8].copy_from_slice(&data[64..72]);
        assert_ne!(checksum(&swapped), whole);
        // Trailing zeros are not the same stream.
        let mut longer = data.clone();
        longer.push(0);
        assert_ne!(checksum(&longer), whole);
    }
}
