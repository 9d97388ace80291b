//! How a job's pieces' effects become the job's: the partial hashes folded in piece order into
//! each input's and output's checksum, the stamp bytes read put together, the first error
//! kept, and each output's stamp written once every piece is in (and only if none failed).
//!
//! Because the fold is in piece order and each piece returned its effects as a value, the
//! job's effects are the same whichever threads ran its pieces and in whatever order
//! (`units.rs`, module doc).
//!
//! Locking and lifetime: runs on the thread that collects the job, after every piece ran; it
//! writes the output stamps through the job's own views.

use super::units::{Layout, UnitFx};
use super::{header, DeviceJob, Op};
use crate::frame::STAMP_LEN;
use crate::hash::{combine, Partial};
use dma::DmaApi;

/// What the pieces came to: per input whether it verified, per output its checksum, the
/// bitstream, the first error, and per input what was read.
pub(crate) type Combined = (
    Vec<bool>,
    Vec<u64>,
    Option<super::Bitstream>,
    Option<String>,
    Vec<Option<super::Seen>>,
);

/// The job's effects from its pieces' (in piece order): `(inputs_ok, out_sums, bitstream, error,
/// inputs_seen)`. Output stamps are written here, after every piece, and only if none failed.
pub(crate) fn combine_units(job: &DeviceJob, dma: &DmaApi, units: Vec<UnitFx>) -> Combined {
    let ni = job.inputs.len();
    let no = job.outputs.len();
    let mut ins: Vec<Vec<Partial>> = vec![Vec::new(); ni];
    let mut outs: Vec<Vec<Partial>> = vec![Vec::new(); no];
    let mut touched_in = vec![false; ni];
    let mut touched_out = vec![false; no];
    let mut heads = vec![[0u8; STAMP_LEN]; ni];
    let mut bitstream = None;
    let mut error = None;
    let mut decoded_ok = true;
    for fx in units {
        if error.is_none() {
            error = fx.error;
        }
        decoded_ok &= fx.decoded_ok != Some(false);
        for (i, part) in fx.ins {
            ins[i].push(part);
            touched_in[i] = true;
        }
        for (o, part) in fx.outs {
            outs[o].push(part);
            touched_out[o] = true;
        }
        for (i, off, bytes) in fx.head {
            touched_in[i] = true;
            for (k, byte) in bytes.into_iter().enumerate() {
                if let Some(h) = heads[i].get_mut(off + k) {
                    *h = byte;
                }
            }
        }
        if fx.bitstream.is_some() {
            bitstream = fx.bitstream;
        }
    }
    if let Some(err) = error {
        return (
            vec![false; ni],
            vec![0; no],
            None,
            Some(err),
            vec![None; ni],
        );
    }
    let seen: Vec<Option<super::Seen>> = job
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            if !touched_in[i] {
                return None;
            }
            let mut lay = Layout::of(&input.planes);
            // A decoder's bitstream carries no stamp: every byte of it is hashed.
            lay.stamped &= !(job.op == Op::Decode && i == 0);
            Some(super::Seen {
                sum: combine(ins[i].iter().copied(), lay.body_len()),
                head: heads[i],
                stamped: lay.stamped,
            })
        })
        .collect();
    let inputs_ok = job
        .inputs
        .iter()
        .zip(&seen)
        .enumerate()
        .map(|(i, (input, s))| {
            s.is_some_and(|s| s.verifies(input.expected, input.frame)) && (i > 0 || decoded_ok)
        })
        .collect();
    let frame = match job.op {
        Op::Capture { frame, .. } => frame,
        _ => job.inputs.first().map_or(0, |i| i.frame),
    };
    let mut out_sums = vec![0; no];
    // An encoder's output holds its bitstream (no stamp): its checksum is the bitstream's.
    if let (Op::Encode(_), Some(bs)) = (job.op, bitstream) {
        out_sums.iter_mut().for_each(|s| *s = bs.checksum);
    }
    for (o, out) in job.outputs.iter().enumerate() {
        if !touched_out[o] {
            continue;
        }
        let lay = Layout::of(&out.planes);
        let sum = combine(outs[o].iter().copied(), lay.body_len());
        if lay.stamped {
            if let Err(e) = out.view.write(dma, out.planes[0].0, &header(frame, sum)) {
                return (
                    vec![false; ni],
                    vec![0; no],
                    bitstream,
                    Some(e.to_string()),
                    vec![None; ni],
                );
            }
        }
        out_sums[o] = sum;
    }
    (inputs_ok, out_sums, bitstream, None, seen)
}
