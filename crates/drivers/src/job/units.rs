//! A job cut into independent pieces: what each piece does with its bytes, and how the pieces'
//! effects combine into the job's.
//!
//! A piece is at most [`CHUNK`] bytes of one plane of the buffer that drives it (the output a
//! camera fills, the input an ISP transforms or a sink reads). It touches only its own bytes
//! (one DMA read and/or one DMA write per buffer and DMA segment), hashes them into a
//! [`Partial`] at their position in the frame's body stream, and returns everything as a value
//! ([`UnitFx`]). So the
//! pieces may run in any order on any number of threads; `combine.rs` folds their effects
//! in piece order, which makes the job's effects the same for any thread count.
//!
//! # Passes over a frame's bytes
//! Every DMA goes through the device's checks (DMA mask, IOMMU, DMA-API checker, counters,
//! cache effects), but bytes that a device only checks or only generates are not copied
//! through a buffer: a read hands them where they live ([`DmaView::read_with`](crate::dmaview::DmaView::read_with)), a write lets
//! the device make them in place ([`DmaView::write_with`](crate::dmaview::DmaView::write_with)); a frame hash is computed while a
//! block ([`SUB`] bytes at most) is in the L1 cache (a CRC engine on the device's data path).
//! What remains per frame byte, and why each pass is needed (see also `docs/design.md`):
//! - camera: one pass that generates the pattern in place and hashes it (the stamp's checksum);
//! - display, encoder (checksum codec): one read pass that hashes (the verification);
//! - ISP: a read pass that hashes the input and copies it into the device's line buffer (the
//!   transform needs the input whole before it overwrites it), a pass that transforms and
//!   hashes the output, and the write pass (a copy);
//! - GPU composite: a read pass over the luma that hashes and copies it (a quarter of the
//!   output's size), one pass that expands each output pixel in place and hashes it, and a
//!   read pass that hashes the chroma (verification: the composite uses luma only);
//! - scaler: a read pass into a frame buffer (a box or a format conversion needs several input
//!   lines and planes at once), the transform, and a write pass that hashes (`super::scale`);
//! - decoder: a read pass of the bitstream that hashes it and decodes into a line buffer, the
//!   reference frame's write, and the output stage's read of it and write that hashes
//!   (`super::decode`);
//! - RLE encoder: a read pass into a buffer (the run-length coder and the bitstream's own DMA
//!   write must not run under the read's memory lock), the coder, the bitstream write.
//!
//! The stamp (16 bytes) is written last, once every piece is in.

use super::{stamp_skip, stamped, DeviceJob, JobInput, Op};
use crate::encoder::{Codec, RleStream};
use crate::frame::{CHUNK, STAMP_LEN};
use crate::hash::{Hasher, Partial};
use crate::isp::IspTransform;
use crate::pattern::{render_from, PatternGen};
use dma::{DmaApi, DmaError};

/// Bytes worked at a time inside a piece (fits the host's L1 data cache with its output).
pub(crate) const SUB: usize = 8 << 10;

/// One piece of a job (module doc). Offsets are in the plane, lengths in bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Unit {
    /// A camera fills output `o`'s plane `p`.
    Fill {
        o: usize,
        p: usize,
        at: u64,
        n: usize,
    },
    /// The first input's plane `p` transformed into every output (same layout).
    Transform { p: usize, at: u64, n: usize },
    /// The first input's luma expanded to XRGB into every output.
    Expand { at: u64, n: usize },
    /// Input `i`'s plane `p` read and hashed.
    Read {
        i: usize,
        p: usize,
        at: u64,
        n: usize,
    },
    /// Output `o`'s plane `p` rendered from the first input's checksum.
    Render {
        o: usize,
        p: usize,
        at: u64,
        n: usize,
    },
    /// The first input run-length encoded into the bitstream, whole (a stream cannot split).
    Rle,
    /// The first input scaled into every output, whole (`super::scale`).
    Scale,
    /// The first input's bitstream decoded into every output, whole (`super::decode`).
    Decode,
}

/// What one piece did.
#[derive(Debug, Default)]
pub(crate) struct UnitFx {
    pub ins: Vec<(usize, Partial)>,
    pub outs: Vec<(usize, Partial)>,
    /// Stamp bytes read: `(input, offset in the stamp, bytes)`.
    pub head: Vec<(usize, usize, Vec<u8>)>,
    pub bitstream: Option<super::Bitstream>,
    pub error: Option<String>,
    /// A decoder's piece: whether the decoded frame verified against its own stamp.
    pub decoded_ok: Option<bool>,
}

/// A buffer's planes as a frame body stream (the stamp's bytes are not in it).
pub(super) struct Layout<'a> {
    planes: &'a [(u64, u64)],
    pub(super) stamped: bool,
}

impl<'a> Layout<'a> {
    pub(super) fn of(planes: &'a [(u64, u64)]) -> Layout<'a> {
        Layout {
            planes,
            stamped: stamped(planes),
        }
    }

    fn skip(&self, p: usize, at: u64, n: usize) -> usize {
        stamp_skip(self.stamped, p, at, n)
    }

    /// Position in the body stream of plane `p`'s byte `at` (a byte after the stamp).
    fn pos(&self, p: usize, at: u64) -> u64 {
        let prior: u64 = self.planes[..p].iter().map(|q| q.1).sum();
        prior + at - if self.stamped { STAMP_LEN as u64 } else { 0 }
    }

    /// Bytes of the body stream (the planes less the stamp).
    pub(super) fn body_len(&self) -> u64 {
        let all: u64 = self.planes.iter().map(|q| q.1).sum();
        all - if self.stamped { STAMP_LEN as u64 } else { 0 }
    }
}

fn pieces(len: u64, step: usize, mut f: impl FnMut(u64, usize)) {
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(step as u64) as usize;
        f(at, n);
        at += n as u64;
    }
}

/// The pieces of `job`, in the order their effects combine.
pub(crate) fn plan(job: &DeviceJob) -> Result<Vec<Unit>, String> {
    let mut u = Vec::new();
    let mut consumed = 0; // leading inputs the op consumes itself
    let reads = |u: &mut Vec<Unit>, i: usize, input: &JobInput| {
        for (p, &(_, len)) in input.planes.iter().enumerate() {
            pieces(len, CHUNK, |at, n| u.push(Unit::Read { i, p, at, n }));
        }
    };
    let render = |u: &mut Vec<Unit>| {
        for (o, out) in job.outputs.iter().enumerate() {
            for (p, &(_, len)) in out.planes.iter().enumerate() {
                pieces(len, CHUNK, |at, n| u.push(Unit::Render { o, p, at, n }));
            }
        }
    };
    match job.op {
        Op::Capture { .. } => {
            for (o, out) in job.outputs.iter().enumerate() {
                for (p, &(_, len)) in out.planes.iter().enumerate() {
                    pieces(len, CHUNK, |at, n| u.push(Unit::Fill { o, p, at, n }));
                }
            }
            return Ok(u);
        }
        Op::Scanout | Op::Encode(Codec::Checksum) => {}
        Op::Encode(Codec::Rle) => {
            if !job.inputs.is_empty() {
                u.push(Unit::Rle);
                consumed = 1;
            }
        }
        Op::Scale(_) => {
            if !job.inputs.is_empty() {
                u.push(Unit::Scale);
                consumed = 1;
            }
        }
        Op::Decode => {
            if !job.inputs.is_empty() {
                u.push(Unit::Decode);
                consumed = 1;
            }
        }
        Op::Process(IspTransform::Downscale) => {
            return Err(
                "the 2x downscale runs on whole NV12 frames (Isp::process); \
                        a scheduled job transforms frames of one size"
                    .into(),
            );
        }
        Op::Process(_) => {
            if let Some(first) = job.inputs.first() {
                consumed = 1;
                if job.outputs.iter().all(|o| o.planes == first.planes) {
                    for (p, &(_, len)) in first.planes.iter().enumerate() {
                        pieces(len, CHUNK, |at, n| u.push(Unit::Transform { p, at, n }));
                    }
                } else {
                    reads(&mut u, 0, first);
                    render(&mut u);
                }
            }
        }
        Op::Composite => {
            if let Some(first) = job.inputs.first() {
                consumed = 1;
                let expand = first.planes.len() == 2
                    && job
                        .outputs
                        .iter()
                        .all(|o| o.planes.len() == 1 && o.planes[0].1 == first.planes[0].1 * 4);
                if expand {
                    pieces(first.planes[0].1, CHUNK / 4, |at, n| {
                        u.push(Unit::Expand { at, n })
                    });
                    pieces(first.planes[1].1, CHUNK, |at, n| {
                        u.push(Unit::Read { i: 0, p: 1, at, n })
                    });
                } else {
                    reads(&mut u, 0, first);
                    render(&mut u);
                }
            }
        }
    }
    for (i, input) in job.inputs.iter().enumerate().skip(consumed) {
        reads(&mut u, i, input);
    }
    Ok(u)
}

/// Runs one piece with the thread's scratch buffers (`a`: [`CHUNK`], `b`: 4 x [`CHUNK`]).
pub(crate) fn run_unit(
    job: &DeviceJob,
    dma: &DmaApi,
    unit: Unit,
    a: &mut [u8],
    b: &mut [u8],
) -> UnitFx {
    let mut fx = UnitFx::default();
    if let Err(e) = unit_body(job, dma, unit, a, b, &mut fx) {
        fx.error = Some(e);
    }
    fx
}

/// Input `i`'s piece `[at, at + n)` of plane `p` as the device reads it, each byte handed to
/// `f(offset in the piece, bytes)` where it lives (no copy), the stamp's bytes kept and the
/// body hashed on the way. Returns the input's partial hash.
#[allow(clippy::too_many_arguments)]
fn read_piece(
    job: &DeviceJob,
    dma: &DmaApi,
    i: usize,
    p: usize,
    at: u64,
    n: usize,
    fx: &mut UnitFx,
    mut f: impl FnMut(usize, &[u8]),
) -> Result<Option<Partial>, DmaError> {
    let input = &job.inputs[i];
    let lay = Layout::of(&input.planes);
    let skip = lay.skip(p, at, n);
    let mut head = Vec::new();
    let mut h = (skip < n).then(|| Hasher::at(lay.pos(p, at + skip as u64)));
    let mut pos = 0usize;
    input
        .view
        .read_with(dma, input.planes[p].0 + at, n as u64, |piece| {
            let stamp = skip.saturating_sub(pos).min(piece.len());
            head.extend_from_slice(&piece[..stamp]);
            if let Some(h) = h.as_mut() {
                h.update(&piece[stamp..]);
            }
            f(pos, piece);
            pos += piece.len();
        })?;
    if skip > 0 {
        fx.head.push((i, at as usize, head));
    }
    Ok(h.map(|h| h.partial()))
}

fn unit_body(
    job: &DeviceJob,
    dma: &DmaApi,
    unit: Unit,
    a: &mut [u8],
    b: &mut [u8],
    fx: &mut UnitFx,
) -> Result<(), String> {
    let e = |e: DmaError| e.to_string();
    match unit {
        Unit::Fill { o, p, at, n } => {
            let Op::Capture {
                pattern,
                seed,
                frame,
            } = job.op
            else {
                return Err("a fill piece of a job that captures nothing".into());
            };
            let out = &job.outputs[o];
            let bpl = out
                .bytes_per_line
                .get(p)
                .copied()
                .unwrap_or(out.planes[p].1);
            let gen = PatternGen::new(pattern, seed, frame, p, bpl);
            write_piece(
                job,
                dma,
                o,
                p,
                at,
                n,
                |off, block| gen.fill(off as usize, block),
                fx,
            )
            .map_err(e)?;
        }
        Unit::Render { o, p, at, n } => {
            let seed = job.inputs.first().map_or(0, |i| i.expected);
            let prior: u64 = job.outputs[o].planes[..p].iter().map(|q| q.1).sum();
            write_piece(
                job,
                dma,
                o,
                p,
                at,
                n,
                |off, block| render_from(seed, (prior + off) as usize, block),
                fx,
            )
            .map_err(e)?;
        }
        Unit::Read { i, p, at, n } => {
            // A sink checks what it reads on the fly: one pass, no copy.
            if let Some(part) = read_piece(job, dma, i, p, at, n, fx, |_, _| {}).map_err(e)? {
                fx.ins.push((i, part));
            }
        }
        Unit::Transform { p, at, n } => {
            let Op::Process(t) = job.op else {
                return Err("a transform piece of a job that processes nothing".into());
            };
            let buf = &mut a[..n];
            // Read (hashing the input on the way) into the device's line buffer...
            let part = read_piece(job, dma, 0, p, at, n, fx, |off, piece| {
                buf[off..off + piece.len()].copy_from_slice(piece)
            })
            .map_err(e)?;
            let lay = Layout::of(&job.inputs[0].planes);
            let skip = lay.skip(p, at, n);
            let Some(part) = part else {
                return Ok(());
            };
            fx.ins.push((0, part));
            // ...transform and hash the output in L1-sized blocks...
            let mut hout = Hasher::at(lay.pos(p, at + skip as u64));
            let mut s = 0;
            while s < n {
                let m = SUB.min(n - s);
                let block = &mut buf[s..s + m];
                t.apply(p, at as usize + s, block);
                hout.update(&block[skip.saturating_sub(s).min(m)..]);
                s += m;
            }
            // ...and write it out.
            for (o, out) in job.outputs.iter().enumerate() {
                out.view
                    .write(dma, out.planes[p].0 + at + skip as u64, &buf[skip..])
                    .map_err(e)?;
                fx.outs.push((o, hout.partial()));
            }
        }
        Unit::Expand { at, n } => {
            let luma = &mut a[..n];
            let part = read_piece(job, dma, 0, 0, at, n, fx, |off, piece| {
                luma[off..off + piece.len()].copy_from_slice(piece)
            })
            .map_err(e)?;
            if let Some(part) = part {
                fx.ins.push((0, part));
            }
            // Each output pixel is made where the device writes it, and hashed while it is in
            // the cache.
            let luma = &a[..n];
            for o in 0..job.outputs.len() {
                write_piece(
                    job,
                    dma,
                    o,
                    0,
                    at * 4,
                    n * 4,
                    |off, block| expand_at(luma, (off - at * 4) as usize, block),
                    fx,
                )
                .map_err(e)?;
            }
        }
        Unit::Scale => super::scale::scale_unit(job, dma, fx)?,
        Unit::Decode => super::decode::decode_unit(job, dma, a, fx)?,
        Unit::Rle => {
            let (h, head, bs) = encode_rle(job, dma, a, b)?;
            fx.ins.push((0, h.partial()));
            fx.head.push((0, 0, head));
            fx.bitstream = Some(bs);
        }
    }
    Ok(())
}

/// XRGB bytes `[start, start + out.len())` of the expansion of `luma` (any alignment).
fn expand_at(luma: &[u8], start: usize, out: &mut [u8]) {
    if start.is_multiple_of(4) && out.len().is_multiple_of(4) {
        crate::gpu::luma_to_xrgb(&luma[start / 4..], out);
        return;
    }
    for (k, byte) in out.iter_mut().enumerate() {
        let at = start + k;
        *byte = if at % 4 == 3 { 0xff } else { luma[at / 4] };
    }
}

/// Output `o`'s piece `[at, at + n)` of plane `p` (stamp bytes excepted) generated where the
/// device writes it: `gen(offset in plane, block)` fills each block, which is hashed at once,
/// while it is in the cache.
#[allow(clippy::too_many_arguments)]
fn write_piece(
    job: &DeviceJob,
    dma: &DmaApi,
    o: usize,
    p: usize,
    at: u64,
    n: usize,
    mut gen: impl FnMut(u64, &mut [u8]),
    fx: &mut UnitFx,
) -> Result<(), DmaError> {
    let out = &job.outputs[o];
    let lay = Layout::of(&out.planes);
    let skip = lay.skip(p, at, n);
    if skip >= n {
        return Ok(());
    }
    let mut h = Hasher::at(lay.pos(p, at + skip as u64));
    let mut off = at + skip as u64;
    out.view
        .write_with(dma, out.planes[p].0 + off, (n - skip) as u64, |piece| {
            for block in piece.chunks_mut(SUB) {
                gen(off, block);
                h.update(block);
                off += block.len() as u64;
            }
        })?;
    fx.outs.push((o, h.partial()));
    Ok(())
}

/// [`Codec::Rle`]: the frame as read (stamp included) run-length encoded into the bitstream
/// buffer, chunk by chunk. Returns the input's body hash, its stamp bytes and the bitstream.
fn encode_rle(
    job: &DeviceJob,
    dma: &DmaApi,
    a: &mut [u8],
    b: &mut [u8],
) -> Result<(Hasher, Vec<u8>, super::Bitstream), String> {
    let e = |e: DmaError| e.to_string();
    let Some(bs) = job
        .outputs
        .first()
        .map(|o| &o.view)
        .or(job.bitstream.as_ref())
    else {
        return Err("an RLE encoder job needs a bitstream buffer".into());
    };
    let first = &job.inputs[0];
    let lay = Layout::of(&first.planes);
    let mut rle = RleStream::default();
    let mut h = Hasher::new();
    let mut head = Vec::new();
    let mut out = Hasher::new();
    let mut written = 0u64;
    let mut put = |enc: &[u8]| -> Result<(), String> {
        if written + enc.len() as u64 > bs.len() {
            return Err(format!(
                "the bitstream buffer ({:#x} bytes) is too small for this frame",
                bs.len()
            ));
        }
        bs.write(dma, written, enc).map_err(e)?;
        out.update(enc);
        written += enc.len() as u64;
        Ok(())
    };
    for (p, &(_, len)) in first.planes.iter().enumerate() {
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(CHUNK as u64) as usize;
            first
                .view
                .read(dma, first.planes[p].0 + at, &mut a[..n])
                .map_err(e)?;
            let skip = lay.skip(p, at, n);
            head.extend_from_slice(&a[..skip]);
            h.update(&a[skip..n]);
            let m = rle.feed(&a[..n], b);
            put(&b[..m])?;
            at += n as u64;
        }
    }
    let m = rle.finish(b);
    put(&b[..m])?;
    Ok((
        h,
        head,
        super::Bitstream {
            len: written,
            checksum: out.finish(),
        },
    ))
}

/// Bytes a piece moves, to place a pause (rule 7 of the module doc).
pub(crate) fn unit_len(job: &DeviceJob, u: &Unit) -> u64 {
    match *u {
        Unit::Fill { n, .. } | Unit::Read { n, .. } | Unit::Render { n, .. } => n as u64,
        Unit::Transform { n, .. } => n as u64 * (1 + job.outputs.len() as u64),
        Unit::Expand { n, .. } => n as u64 * (1 + 4 * job.outputs.len() as u64),
        Unit::Rle => job
            .inputs
            .first()
            .map_or(0, |i| i.planes.iter().map(|p| p.1).sum()),
        Unit::Scale | Unit::Decode => {
            let (r, w) = job.bytes();
            r + w
        }
    }
}
