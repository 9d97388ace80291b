//! A video decoder: a stateful V4L2 decoder that takes the encoder's RLE bitstream on its
//! OUTPUT queue and gives back frames on its CAPTURE queue, through reference frames it
//! allocates and holds itself.
//!
//! C side: a stateful decoder (`Documentation/userspace-api/media/v4l/dev-decoder.rst`;
//! `drivers/media/test-drivers/vicodec/` decodes its FWHT stream the same way) and the
//! decoded-picture buffer of the stateless ones (`hantro`, `rkvdec`): the frames a codec
//! predicts from are the driver's own buffers (`dma_alloc_attrs` for its device), not user
//! space's, and a post-processor stage copies the picture out of the DPB into the CAPTURE
//! buffer user space queued.
//!
//! # The concept
//! The bitstream is [`crate::encoder::RleStream`]'s: `(count, byte)` pairs, counts 1..=255, of
//! the whole frame as the encoder read it, stamp included. So a decoded frame is bit-exact with
//! what its source wrote, stamp and all, and the decoder can tell: the decoded body must hash
//! to the checksum in the decoded stamp, for the frame number the bitstream came with.
//!
//! # Rules
//! 1. A job decodes one bitstream buffer ([`crate::job::Op::Decode`]): the device reads the
//!    stream by DMA (exactly the bytes the encoder wrote: the runner passes the encoder's
//!    `bytesused`), decodes it ([`RleDecoder`]) into a **reference frame** (the DPB slot of
//!    that frame, [`REFERENCE_FRAMES`] of them, used in turn), written by DMA; the output stage
//!    then reads the reference back by DMA and writes it into the CAPTURE buffer, which the job
//!    stamps like any producer's. The reference traffic is in the job's bytes and cost.
//! 2. The input verifies when the stream hashes to the checksum its encoder reported **and**
//!    the decoded frame verifies against its own stamp (rule 2 of [`crate::job`], on the
//!    decoded bytes): a corrupted bitstream gives a frame that does not, and the frame counts
//!    corrupted at the decoder.
//! 3. A stream that ends before the frame is whole, runs past its end, holds a zero count or
//!    an odd byte is decoded as far as it goes (the rest of the picture zero, as a real decoder
//!    conceals), and does not verify; the job itself does not fail (the buffer comes back, as
//!    `V4L2_BUF_FLAG_ERROR` does, and the frame is judged, not lost).
//! 4. The stream is intra-only (the RLE codec predicts nothing), so a reference frame is read
//!    back by the output stage only; the DPB's two slots are what a stream with one frame of
//!    reordering needs, and their memory is the decoder's for the whole run.
//!
//! No locking: an [`RleDecoder`] is a plain value owned by the job that feeds it.

use std::fmt;

/// Reference frames (DPB slots) a decoder allocates and holds (rule 4).
pub const REFERENCE_FRAMES: u32 = 2;

/// Why a stream did not decode into exactly one frame (rule 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A run of length 0, at this byte of the stream.
    ZeroRun(u64),
    /// The stream goes on past the frame's last byte, at this byte of the stream.
    Overrun(u64),
    /// The stream ended with this many bytes of the frame decoded.
    Underrun(u64),
    /// The stream ended inside a `(count, byte)` pair.
    TruncatedPair,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::ZeroRun(at) => write!(f, "a run of length 0 at stream byte {at}"),
            DecodeError::Overrun(at) => {
                write!(
                    f,
                    "the stream runs past the frame's end at stream byte {at}"
                )
            }
            DecodeError::Underrun(n) => write!(f, "the stream ended after {n} bytes of the frame"),
            DecodeError::TruncatedPair => {
                f.write_str("the stream ended inside a (count, byte) pair")
            }
        }
    }
}

/// A run-length decoder fed chunk by chunk into a frame of fixed size: the inverse of
/// [`crate::encoder::RleStream`] in any chunking.
///
/// ```
/// use drivers::decoder::RleDecoder;
/// let data = [7u8, 7, 7, 1, 1, 9];
/// let stream = drivers::frame::rle_encode(&data);
/// let mut out = [0u8; 6];
/// let mut dec = RleDecoder::default();
/// dec.feed(&stream[..3], &mut out);
/// dec.feed(&stream[3..], &mut out);
/// assert_eq!(dec.finish(out.len()), Ok(()));
/// assert_eq!(out, data);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RleDecoder {
    /// A count byte whose value byte is in the next chunk.
    count: Option<u8>,
    /// Frame bytes written.
    pos: u64,
    /// Stream bytes consumed.
    read: u64,
    /// The first error met (the rest of the stream is ignored).
    error: Option<DecodeError>,
}

impl RleDecoder {
    /// Decodes `stream` (the next bytes of the stream) into `frame`, from where the last call
    /// stopped.
    pub fn feed(&mut self, stream: &[u8], frame: &mut [u8]) {
        for &b in stream {
            if self.error.is_some() {
                return;
            }
            let at = self.read;
            self.read += 1;
            let Some(count) = self.count.take() else {
                if b == 0 {
                    self.error = Some(DecodeError::ZeroRun(at));
                } else {
                    self.count = Some(b);
                }
                continue;
            };
            let start = self.pos as usize;
            let end = start + usize::from(count);
            if end > frame.len() {
                let from = start.min(frame.len());
                frame[from..].fill(b);
                self.pos = frame.len() as u64;
                self.error = Some(DecodeError::Overrun(at));
                return;
            }
            frame[start..end].fill(b);
            self.pos = end as u64;
        }
    }

    /// Frame bytes decoded so far.
    pub fn decoded(&self) -> u64 {
        self.pos
    }

    /// Whether the stream made exactly a frame of `len` bytes (rule 3).
    pub fn finish(&self, len: usize) -> Result<(), DecodeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.count.is_some() {
            return Err(DecodeError::TruncatedPair);
        }
        if self.pos < len as u64 {
            return Err(DecodeError::Underrun(self.pos));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::RleStream;

    fn encode(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; data.len() * 2 + 2];
        let mut rle = RleStream::default();
        let mut n = rle.feed(data, &mut out);
        n += rle.finish(&mut out[n..]);
        out.truncate(n);
        out
    }

    #[test]
    fn test_decoding_inverts_the_encoder_in_any_chunking() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| ((i / 300) * 37 + (i % 7 / 6)) as u8)
            .collect();
        let stream = encode(&data);
        for step in [1, 2, 3, 255, 4096] {
            let mut out = vec![0u8; data.len()];
            let mut dec = RleDecoder::default();
            for c in stream.chunks(step) {
                dec.feed(c, &mut out);
            }
            assert_eq!(dec.finish(data.len()), Ok(()), "step {step}");
            assert_eq!(out, data, "step {step}");
        }
    }

    #[test]
    fn test_a_damaged_stream_says_how() {
        let data = [5u8; 600];
        let stream = encode(&data);
        let mut out = [0u8; 600];
        let mut dec = RleDecoder::default();
        dec.feed(&stream[..stream.len() - 2], &mut out);
        assert_eq!(dec.finish(600), Err(DecodeError::Underrun(510)));
        let mut dec = RleDecoder::default();
        dec.feed(&stream[..stream.len() - 1], &mut out);
        assert_eq!(dec.finish(600), Err(DecodeError::TruncatedPair));
        let mut bad = stream.clone();
        bad[2] = 0;
        let mut dec = RleDecoder::default();
        dec.feed(&bad, &mut out);
        assert_eq!(dec.finish(600), Err(DecodeError::ZeroRun(2)));
        let mut long = stream.clone();
        long.extend_from_slice(&[3, 1]);
        let mut dec = RleDecoder::default();
        dec.feed(&long, &mut out);
        assert_eq!(
            dec.finish(600),
            Err(DecodeError::Overrun(stream.len() as u64 + 1))
        );
        assert_eq!(out, data, "the frame itself was whole");
    }
}
