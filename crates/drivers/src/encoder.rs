//! A video encoder: a V4L2 output device that reads each frame by DMA, verifies its stamp and
//! compresses it (run-length encoding), so that what it encoded can be decoded and compared.
//!
//! C side: `drivers/media/test-drivers/vicodec/` (a stateful m2m codec with the FWHT codec) —
//! here reduced to its output (raw frames in) queue; the bitstream is handed back by
//! [`Encoder::encode`] instead of through a capture queue.
//!
//! # The concept
//! The encoder is the device seed 000 predicts trouble for: it is switched on **mid-stream**,
//! importing buffers that other devices already share (user space QBUFs the same dma-buf fds on
//! its DMABUF output queue). vb2 attaches its device and maps at that first QBUF. If its
//! constraints are stricter than the buffer's placement (an encoder that needs physically
//! contiguous memory, say), the exporter must migrate the buffer: with the constraint exporter
//! of [`constraint`] the QBUF waits for the other users to drain, the buffer moves, and
//! the pipeline goes on — the stutter, counted in the exporter's migration log. With an
//! exporter that cannot move (vb2's MMAP, a CMA heap), the QBUF either fits as is or fails.
//!
//! # Rules
//! 1. [`Encoder::encode`] takes the oldest queued buffer, DMA-reads its `bytesused`, checks the
//!    stamp, RLE-encodes the bytes ([`frame::rle_encode`]) and completes the buffer DONE.
//! 2. A frame whose stamp is bad is still encoded (an encoder does not judge content) but counted
//!    [`EncoderStats::corrupted`] and reported `verified: false`.
//! 3. A DMA failure completes the buffer ERROR and returns the error.

use crate::frame::{self, FrameFormat};
use crate::media::{dma_cost, read_plane, MediaError, ReadyList};
use dma::DmaApi;
use kernel::Process;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use vb2::{Allocator, BufType, Memory, Vb2Fh, Vb2Queue, Vb2QueueConfig, Vb2State};

/// What an encoder makes of a frame: a setting of the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Verifies the frame and keeps its checksum; writes no bitstream.
    Checksum,
    /// Run-length encodes the frame ([`RleStream`]) into a bitstream buffer the encoder owns.
    #[default]
    Rle,
}

/// A run-length encoder fed chunk by chunk: `(count, byte)` pairs, counts 1..=255, the same
/// bytes in any chunking as [`frame::rle_encode`] of the whole.
///
/// ```
/// use drivers::encoder::RleStream;
/// let data = [7u8, 7, 7, 1, 1, 9];
/// let mut out = vec![0u8; 16];
/// let mut rle = RleStream::default();
/// let mut n = rle.feed(&data[..2], &mut out);
/// n += rle.feed(&data[2..], &mut out[n..]);
/// n += rle.finish(&mut out[n..]);
/// assert_eq!(&out[..n], &drivers::frame::rle_encode(&data)[..]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RleStream {
    run: Option<(u8, u8)>,
}

impl RleStream {
    /// Encodes `data`, writing the pairs of every run it closes into `out`; returns the bytes
    /// written. `out` must hold `2 * data.len()` bytes (a longer run than that never closes).
    pub fn feed(&mut self, data: &[u8], out: &mut [u8]) -> usize {
        let mut n = 0;
        let mut run = self.run;
        for &b in data {
            run = match run {
                Some((v, c)) if v == b && c < u8::MAX => Some((v, c + 1)),
                Some((v, c)) => {
                    out[n] = c;
                    out[n + 1] = v;
                    n += 2;
                    Some((b, 1))
                }
                None => Some((b, 1)),
            };
        }
        self.run = run;
        n
    }

    /// Closes the last run into `out` (two bytes); returns the bytes written.
    pub fn finish(&mut self, out: &mut [u8]) -> usize {
        match self.run.take() {
            Some((v, c)) => {
                out[0] = c;
                out[1] = v;
                2
            }
            None => 0,
        }
    }
}

/// Encoder counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncoderStats {
    /// Frames encoded.
    pub frames: u64,
    /// Frames whose stamp verified.
    pub verified: u64,
    /// Frames whose stamp did not.
    pub corrupted: u64,
    /// Raw bytes read.
    pub bytes_in: u64,
    /// Encoded bytes produced.
    pub bytes_out: u64,
}

/// One encoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The output-queue buffer it came from.
    pub index: u32,
    /// The stamp's frame number, if the stamp verified.
    pub frame: Option<u32>,
    /// Whether the stamp verified.
    pub verified: bool,
    /// Checksum of the raw frame read.
    pub checksum: u64,
    /// The bitstream ([`frame::rle_decode`] gives the raw frame back).
    pub bitstream: Vec<u8>,
    /// Device time of the read.
    pub cost: Duration,
}

/// A video encoder (module documentation).
pub struct Encoder {
    dma: Arc<DmaApi>,
    fmt: FrameFormat,
    queue: Arc<Vb2Queue>,
    ready: Arc<ReadyList>,
    stats: Mutex<EncoderStats>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("format", &self.fmt)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Encoder {
    /// An encoder on `device` (`encoder0` in the default SoC) for frames of `fmt`; its output
    /// queue takes DMABUF and MMAP buffers.
    pub fn new(dma: &Arc<DmaApi>, device: &str, fmt: FrameFormat) -> Result<Encoder, MediaError> {
        let dev = dma.device(device)?;
        let size = u32::try_from(fmt.size())
            .map_err(|_| MediaError::Invalid(format!("{fmt} is too large")))?;
        let ready = ReadyList::new(&[size]);
        let mut qc = Vb2QueueConfig::new(BufType::VideoOutput, dev);
        qc.io_modes = vec![Memory::Dmabuf, Memory::Mmap];
        qc.allocator = Allocator::DmaContig;
        let queue = Vb2Queue::new(dma, qc, ready.clone());
        Ok(Encoder {
            dma: dma.clone(),
            fmt,
            queue,
            ready,
            stats: Mutex::new(EncoderStats::default()),
        })
    }

    /// Opens the output queue in `process`.
    pub fn open(&self, process: &Arc<Process>) -> Vb2Fh {
        self.queue.open(process)
    }

    /// The output queue.
    pub fn queue(&self) -> &Arc<Vb2Queue> {
        &self.queue
    }

    /// The frame format.
    pub fn format(&self) -> FrameFormat {
        self.fmt
    }

    /// Counters.
    pub fn stats(&self) -> EncoderStats {
        *self.stats.lock()
    }

    /// Encodes the oldest queued frame, if any (module rules).
    pub fn encode(&self) -> Result<Option<EncodedFrame>, MediaError> {
        if !self.queue.is_started() {
            return Ok(None);
        }
        let Some(vb) = self.ready.pop() else {
            return Ok(None);
        };
        let used = (vb.planes[0].bytesused as usize).min(self.fmt.size());
        let data = match read_plane(&self.dma, &vb, used) {
            Ok(d) => d,
            Err(e) => {
                let _ = self.queue.buffer_done(vb.index, Vb2State::Error);
                return Err(e);
            }
        };
        self.queue.buffer_done(vb.index, Vb2State::Done)?;
        let stamp = frame::verify_stamp(&data).ok();
        let bitstream = frame::rle_encode(&data);
        let mut st = self.stats.lock();
        st.frames += 1;
        if stamp.is_some() {
            st.verified += 1;
        } else {
            st.corrupted += 1;
        }
        st.bytes_in += data.len() as u64;
        st.bytes_out += bitstream.len() as u64;
        Ok(Some(EncodedFrame {
            index: vb.index,
            frame: stamp,
            verified: stamp.is_some(),
            checksum: frame::checksum(&data),
            bitstream,
            cost: dma_cost(&vb.device, used as u64),
        }))
    }
}
