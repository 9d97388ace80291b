//! Memory-to-memory nodes: what a scaler node's job does, from the frames at its two ends.
//!
//! A scaler (`driver = "scaler"`) is a V4L2 mem2mem device (`v4l2-mem2mem.c`): its OUTPUT queue
//! takes the frames of its one input link, its CAPTURE queue the buffers of its output links,
//! and a job runs only when both a source frame and a free destination buffer are there (the
//! runner's `start_job` asks for both, as `v4l2_m2m_try_schedule` does). The source is what the
//! input link's producer writes (its `format`, `width`, `height`), the destination what the
//! scaler node says of itself, which is also the geometry of its output links' buffers.
//! Validation refused any pair the driver cannot do ([`drivers::scaler::check`]), so the op is
//! built here without a second check; the job fails (and says why) if the buffers disagree.
//!
//! Called from the scheduler's loop only: no locking.

use super::world::World;
use crate::schema::NodeDesc;
use drivers::job::Op;
use drivers::scaler::{Image, Scale};

/// The geometry of the frames `n` describes.
pub(crate) fn image_of(n: &NodeDesc) -> Image {
    Image {
        format: n.format.info(),
        width: n.width,
        height: n.height,
    }
}

impl World {
    /// The device op of m2m node `n`: its first input link's producer's frames into its own.
    pub(crate) fn m2m_op(&self, n: usize) -> Op {
        let node = &self.nodes[n];
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
}
