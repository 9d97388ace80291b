//! The scaler's job ([`Op::Scale`](super::Op::Scale)): one piece for the whole frame, as a
//! scaler's DMA engine runs it.
//!
//! A scaled output line depends on several input lines (a box of up to 16 of them, rule 2 of
//! [`crate::scaler`]) and a format conversion mixes planes, so the frame is not cut into
//! independent pieces: the device reads every input plane by DMA ([`CHUNK`] bytes a call),
//! hashing the body and keeping the stamp as it goes, the transform runs on the bytes read
//! ([`crate::scaler::scale_frame`]), and every output plane is written by DMA and hashed.
//! The output's stamp is written by the job afterwards (`crate::job` rule 1).
//!
//! Each plane's pitch is its length over its line count (the format table's lines), so a
//! buffer whose lines were padded by pitch negotiation is read and written at its own pitch; a
//! plane whose length is not a whole number of lines fails the job.

use super::units::UnitFx;
use super::{stamp_skip, stamped, DeviceJob, Op};
use crate::frame::{CHUNK, STAMP_LEN};
use crate::hash::Hasher;
use crate::scaler::{scale_frame, Image};
use dma::{DmaApi, DmaError};

/// The pitch of each of `planes` (`(offset, len)`) for `img`, or why there is none.
fn pitches(img: Image, planes: &[(u64, u64)]) -> Result<Vec<usize>, String> {
    let layout = img.format.layout(img.width, img.height);
    if layout.len() != planes.len() {
        return Err(format!(
            "a {} frame has {} planes, the buffer {}",
            img.format.name,
            layout.len(),
            planes.len()
        ));
    }
    layout
        .iter()
        .zip(planes)
        .map(|(l, &(_, len))| {
            if len < l.size || !len.is_multiple_of(l.lines.max(1)) {
                return Err(format!(
                    "a {} plane of {} lines of {} bytes does not fit {len:#x} bytes at a whole pitch",
                    img.format.name, l.lines, l.bytes_per_line
                ));
            }
            Ok((len / l.lines.max(1)) as usize)
        })
        .collect()
}

/// Runs the scaler's whole-frame piece.
pub(super) fn scale_unit(job: &DeviceJob, dma: &DmaApi, fx: &mut UnitFx) -> Result<(), String> {
    let e = |e: DmaError| e.to_string();
    let Op::Scale(s) = job.op else {
        return Err("a scale piece of a job that scales nothing".into());
    };
    let Some(input) = job.inputs.first() else {
        return Ok(());
    };
    let src_pitches = pitches(s.src, &input.planes)?;
    // Read every input plane, hashing the body and keeping the stamp on the way.
    let is_stamped = stamped(&input.planes);
    let mut h = Hasher::new();
    let mut head = Vec::with_capacity(STAMP_LEN);
    let mut src: Vec<Vec<u8>> = Vec::with_capacity(input.planes.len());
    for (p, &(off, len)) in input.planes.iter().enumerate() {
        let mut plane = vec![0u8; len as usize];
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(CHUNK as u64) as usize;
            let chunk = &mut plane[at as usize..at as usize + n];
            input.view.read(dma, off + at, chunk).map_err(e)?;
            let skip = stamp_skip(is_stamped, p, at, n);
            head.extend_from_slice(&chunk[..skip]);
            h.update(&chunk[skip..]);
            at += n as u64;
        }
        src.push(plane);
    }
    fx.ins.push((0, h.partial()));
    if is_stamped {
        fx.head.push((0, 0, head));
    }
    let refs: Vec<&[u8]> = src.iter().map(Vec::as_slice).collect();
    for (o, out) in job.outputs.iter().enumerate() {
        let dst_pitches = pitches(s.dst, &out.planes)?;
        let planes = scale_frame(s, &refs, &src_pitches, &dst_pitches);
        let out_stamped = stamped(&out.planes);
        let mut h = Hasher::new();
        for (p, (&(off, len), data)) in out.planes.iter().zip(&planes).enumerate() {
            let data = &data[..(len as usize).min(data.len())];
            let mut at = 0usize;
            while at < data.len() {
                let n = (data.len() - at).min(CHUNK);
                let skip = stamp_skip(out_stamped, p, at as u64, n);
                let piece = &data[at + skip..at + n];
                out.view
                    .write(dma, off + (at + skip) as u64, piece)
                    .map_err(e)?;
                h.update(piece);
                at += n;
            }
        }
        fx.outs.push((o, h.partial()));
    }
    Ok(())
}
