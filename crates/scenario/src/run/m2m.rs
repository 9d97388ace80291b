//! Memory-to-memory nodes: what a scaler's or a decoder's job does, from the frames at its two
//! ends, and the buffers a decoder holds for itself.
//!
//! A scaler (`driver = "scaler"`) and a decoder (`driver = "decoder"`) are V4L2 mem2mem devices
//! (`v4l2-mem2mem.c`): the OUTPUT queue takes the buffers of the one input link, the CAPTURE
//! queue the buffers of the output links, and a job runs only when both a source buffer and a
//! free destination buffer are there (the runner's `start_job` asks for both, as
//! `v4l2_m2m_try_schedule` does).
//!
//! - A scaler's source is what its input link's producer writes (its `format`, `width`,
//!   `height`), its destination what the scaler node says of itself, which is also the
//!   geometry of its output links' buffers. Validation refused any pair the driver cannot do
//!   ([`drivers::scaler::check`]); the job fails (and says why) if the buffers disagree.
//! - An RLE encoder that feeds a link (to a decoder) writes its bitstream into that link's
//!   buffers instead of a buffer of its own: one plane of the codec's worst case (two bytes
//!   per byte of the frame, plus a pair), whose used length (`bytesused`) travels with the
//!   frame ([`super::world::BufRt::used`]) so the decoder reads exactly the stream; the
//!   encoder writes it through its vb2 CAPTURE queue, and the length is DQBUF's `bytesused`
//!   ([`super::bitstream_io`]).
//! - A decoder allocates [`drivers::decoder::REFERENCE_FRAMES`] reference frames for its
//!   device at the start (`dma_alloc_attrs`, the frame's size each) and holds them to the end
//!   of the run; frame N decodes through slot N mod that count. The report counts them
//!   (`nodes[].reference_buffers`, `reference_bytes`).
//!
//! Called from the scheduler's loop (and the world's set-up and teardown) only: no locking.

use super::world::{BitstreamBuf, NodeRt, RunFailure, World};
use crate::schema::{DriverKind, EncoderCodec, NodeDesc, PlaneLayout};
use crate::validate::Scenario;
use drivers::dmaview::DmaView;
use drivers::encoder::{CaptureOps, Drain, OutputOps};
use drivers::job::{Bitstream, Op};
use drivers::media::ReadyList;
use drivers::scaler::{Image, Scale};
use kernel::Kernel;
use std::sync::Arc;
use vb2::{Vb2Ops, Vb2Queue, Vb2QueueConfig};

/// What a node's m2m driver holds beside its queues.
#[derive(Default)]
pub(crate) struct M2mState {
    /// A decoder's reference frames (its DPB), its own for the whole run.
    pub references: Vec<BitstreamBuf>,
    /// An encoder writing into a link: bitstream bytes written over the run and their
    /// checksums folded in frame order (as [`BitstreamBuf`]'s for its own buffer).
    pub stream_written: u64,
    pub stream_folded: u64,
    /// An encoder's drain state, shared with its queues' ops ([`drivers::encoder::drain`]).
    pub drain: Arc<Drain>,
    /// A drain is under way; what the application does once it is over
    /// ([`super::bitstream_io`]).
    pub after_drain: Option<AfterDrain>,
    /// Drains that ended with the `LAST` buffer dequeued and DQBUF then answering `EPIPE`.
    pub drains: u64,
}

/// What the application does when its encoder's drain is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterDrain {
    /// STREAMOFF the OUTPUT queue (a `stream_off` event asked for it), and the CAPTURE queue
    /// too if it named both.
    StreamOff(bool),
    /// Nothing: the stream ends (the run's end).
    Stop,
    /// `V4L2_ENC_CMD_START`: a `stream_on` came while it drained.
    Restart,
}

/// The geometry of the frames `n` describes.
pub(crate) fn image_of(n: &NodeDesc) -> Image {
    Image {
        format: n.format.info(),
        width: n.width,
        height: n.height,
    }
}

/// Whether node `n` is an RLE encoder (whose output link carries a bitstream).
fn rle_encoder(n: &NodeDesc) -> bool {
    n.driver == DriverKind::Encoder && n.params.codec == Some(EncoderCodec::Rle)
}

/// The planes of the buffers of a link from node `from`: the producer's frame, or an RLE
/// encoder's bitstream (one plane, the worst case of the frames it reads).
pub(crate) fn link_planes(s: &Scenario, from: usize) -> Vec<PlaneLayout> {
    let p = &s.nodes[from];
    if !rle_encoder(p) {
        return p.format.planes(p.width, p.height);
    }
    let worst = s
        .links
        .iter()
        .filter(|l| l.feeds(&p.name))
        .filter_map(|l| s.nodes.iter().find(|n| n.name == l.from))
        .map(|n| n.frame_size())
        .max()
        .unwrap_or(0);
    let size = worst * 2 + 2;
    vec![PlaneLayout {
        bytes_per_line: size,
        size,
    }]
}

/// Allocates every decoder's reference frames (module doc).
pub(crate) fn alloc_references(kernel: &Kernel, nodes: &mut [NodeRt]) -> Result<(), RunFailure> {
    for n in nodes.iter_mut() {
        if n.desc.driver != DriverKind::Decoder {
            continue;
        }
        let frame = n.desc.frame_size();
        let size = frame.next_multiple_of(soc::PAGE_SIZE).max(soc::PAGE_SIZE);
        for k in 0..drivers::decoder::REFERENCE_FRAMES {
            let what = format!("its reference frame {k} ({size:#x} bytes)");
            let buf = BitstreamBuf::alloc(kernel, n, size, &what)?;
            n.m2m.references.push(buf);
        }
    }
    Ok(())
}

impl World {
    /// The device op of m2m node `n`: a scaler's first input link's producer's frames into
    /// its own; a decoder's bitstream into its frames.
    pub(crate) fn m2m_op(&self, n: usize) -> Op {
        let node = &self.nodes[n];
        if node.desc.driver == DriverKind::Decoder {
            return Op::Decode;
        }
        let src = node
            .inputs
            .first()
            .map(|&li| &self.nodes[self.links[li].from].desc)
            .unwrap_or(&node.desc);
        Op::Scale(Scale {
            src: image_of(src),
            dst: image_of(&node.desc),
        })
    }

    /// The driver's own buffer a job of node `n` on `frame` uses: an RLE encoder's bitstream
    /// buffer (none when it writes into a link), a decoder's reference frame for that frame.
    pub(crate) fn own_buffer(&self, n: usize, frame: u64) -> Option<DmaView> {
        let node = &self.nodes[n];
        if let Some(b) = &node.bitstream {
            return Some(b.view());
        }
        let refs = &node.m2m.references;
        (!refs.is_empty()).then(|| refs[(frame % refs.len() as u64) as usize].view())
    }

    /// Counts an encoder job's bitstream: in its own buffer, or (written into a link) in its
    /// m2m state.
    pub(crate) fn note_bitstream(&mut self, n: usize, bs: Bitstream) {
        let node = &mut self.nodes[n];
        let (written, folded) = match node.bitstream.as_mut() {
            Some(b) => (&mut b.written, &mut b.folded),
            None => (&mut node.m2m.stream_written, &mut node.m2m.stream_folded),
        };
        *written += bs.len;
        *folded = folded.rotate_left(5) ^ bs.checksum;
    }

    /// An encoder's `(bitstream bytes, folded checksums)` over the run.
    pub(crate) fn bitstream_totals(&self, n: usize) -> (u64, u64) {
        let node = &self.nodes[n];
        match &node.bitstream {
            Some(b) => (b.written, b.folded),
            None => (node.m2m.stream_written, node.m2m.stream_folded),
        }
    }

    /// A vb2 queue of node `n` (`capture` or output) whose driver side is `ready`: an
    /// encoder's queues get its drain's ops ([`OutputOps`], [`CaptureOps`]) and register with
    /// it (the first CAPTURE queue only: the one its `LAST` buffer comes out of); any other
    /// node's driver is the ready list alone.
    pub(crate) fn new_queue(
        &self,
        n: usize,
        capture: bool,
        cfg: Vb2QueueConfig,
        ready: Arc<ReadyList>,
    ) -> Arc<Vb2Queue> {
        let dma = self.kernel.dma();
        if self.nodes[n].desc.driver != DriverKind::Encoder {
            return Vb2Queue::new(dma, cfg, ready);
        }
        let drain = self.nodes[n].m2m.drain.clone();
        let ops: Arc<dyn Vb2Ops> = if capture {
            Arc::new(CaptureOps {
                ready: ready.clone(),
                drain: drain.clone(),
            })
        } else {
            Arc::new(OutputOps {
                ready: ready.clone(),
                drain: drain.clone(),
            })
        };
        let q = Vb2Queue::new(dma, cfg, ops);
        let first_capture = !self
            .ports
            .iter()
            .any(|p| p.node == n && p.capture && !p.closed);
        if !capture {
            drain.set_output(&q, ready);
        } else if first_capture {
            drain.set_capture(&q, ready);
        }
        q
    }

    /// Frees every decoder's reference frames (teardown); errors are returned, not lost.
    pub(crate) fn free_references(&mut self) -> Vec<RunFailure> {
        let dma = self.kernel.dma().clone();
        let mut errors = Vec::new();
        for node in &mut self.nodes {
            for (k, b) in std::mem::take(&mut node.m2m.references)
                .into_iter()
                .enumerate()
            {
                if let Err(e) = dma.free_attrs(b.buf) {
                    errors.push(RunFailure::new(
                        &e,
                        format!("{}: freeing its reference frame {k}: {e}", node.desc.name),
                    ));
                }
            }
        }
        errors
    }
}
