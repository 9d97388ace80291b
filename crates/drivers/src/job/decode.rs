//! The decoder's job ([`Op::Decode`](super::Op::Decode)): one piece for the whole frame (a
//! stream cannot split), rules of [`crate::decoder`].
//!
//! The device reads the bitstream (input 0, not stamped: every byte of it is hashed) by DMA
//! [`CHUNK`] bytes at a time and decodes it into a frame-sized line buffer, writes that into
//! its reference frame (the job's [`DeviceJob::bitstream`] view: the decoder's own buffer) by
//! DMA, then its output stage reads the reference back by DMA, chunk by chunk, and writes it
//! into every output, hashing the body; the output's stamp is written by the job afterwards.

use super::units::UnitFx;
use super::{header, stamp_skip, stamped, DeviceJob};
use crate::decoder::RleDecoder;
use crate::frame::{CHUNK, STAMP_LEN};
use crate::hash::{checksum, Hasher};
use dma::{DmaApi, DmaError};

/// Runs the decoder's whole-frame piece.
pub(super) fn decode_unit(
    job: &DeviceJob,
    dma: &DmaApi,
    a: &mut [u8],
    fx: &mut UnitFx,
) -> Result<(), String> {
    let e = |e: DmaError| e.to_string();
    let Some(input) = job.inputs.first() else {
        return Ok(());
    };
    let Some(reference) = &job.bitstream else {
        return Err("a decoder job needs a reference frame buffer".into());
    };
    let Some(out0) = job.outputs.first() else {
        return Err("a decoder job needs a CAPTURE buffer to decode into".into());
    };
    let len: u64 = out0.planes.iter().map(|p| p.1).sum();
    if reference.len() < len {
        return Err(format!(
            "the reference frame ({:#x} bytes) is smaller than the frame ({len:#x})",
            reference.len()
        ));
    }
    // Read and decode the stream (rule 1), hashing every byte of it.
    let mut frame = vec![0u8; len as usize];
    let mut dec = RleDecoder::default();
    let mut h = Hasher::new();
    for &(off, plen) in &input.planes {
        let mut at = 0u64;
        while at < plen {
            let n = (plen - at).min(CHUNK as u64) as usize;
            input.view.read(dma, off + at, &mut a[..n]).map_err(e)?;
            h.update(&a[..n]);
            dec.feed(&a[..n], &mut frame);
            at += n as u64;
        }
    }
    fx.ins.push((0, h.partial()));
    // Rule 2: the decoded frame verifies against its own stamp.
    let whole = dec.finish(frame.len()).is_ok();
    let self_ok = frame.len() > STAMP_LEN
        && frame[..STAMP_LEN] == header(input.frame, checksum(&frame[STAMP_LEN..]));
    fx.decoded_ok = Some(whole && self_ok);
    // Into the reference frame...
    for (k, piece) in frame.chunks(CHUNK).enumerate() {
        reference.write(dma, (k * CHUNK) as u64, piece).map_err(e)?;
    }
    drop(frame);
    // ...and out of it, by the output stage, into every CAPTURE buffer.
    for (o, out) in job.outputs.iter().enumerate() {
        let out_stamped = stamped(&out.planes);
        let mut h = Hasher::new();
        let mut src = 0u64;
        for (p, &(off, plen)) in out.planes.iter().enumerate() {
            let mut at = 0u64;
            while at < plen {
                let n = (plen - at).min(CHUNK as u64) as usize;
                reference.read(dma, src + at, &mut a[..n]).map_err(e)?;
                let skip = stamp_skip(out_stamped, p, at, n);
                out.view
                    .write(dma, off + at + skip as u64, &a[skip..n])
                    .map_err(e)?;
                h.update(&a[skip..n]);
                at += n as u64;
            }
            src += plen;
        }
        fx.outs.push((o, h.partial()));
    }
    Ok(())
}
