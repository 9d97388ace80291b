//! The checksum every device and sink of this crate agrees on: a fast streaming hash.
//!
//! Frames are large (a 4K NV12 frame is 12 MiB, its XRGB composite 32 MiB) and a pipeline
//! moves hundreds of them through several devices, so jobs move a frame in [`CHUNK`]-sized
//! pieces and feed each piece to the checksum while it is still in the host's cache.
//!
//! [`Hasher`] is a four-lane multiply-rotate hash over little-endian 64-bit words (32 bytes per
//! step, the lanes independent so the CPU overlaps them), finished with the length. It is not
//! cryptographic; it only has to make a torn, stale or misplaced frame differ from the one the
//! source produced, which any flipped bit does. The same bytes fed in any chunking give the same
//! value ([`Hasher::update`] keeps a partial word between calls).
//!
//! No locking: a [`Hasher`] is a plain value owned by the job that feeds it.

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
