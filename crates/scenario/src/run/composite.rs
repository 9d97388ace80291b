//! Composites of N inputs at different rates: what a node reading several links does with the
//! frames it folds into one output.
//!
//! # The concept
//! A node with more than one input link (a GPU compositing two cameras, a display with two
//! planes) is a *composite*. It is paced by its *primary* input (the first input link in file
//! order): it runs when the primary has a frame ready, and composes the newest ready frame of
//! each input that has one (a compositor shows the latest buffer of each surface, not a
//! backlog; a secondary input with no new frame is not read again). Its output carries the
//! identity of the primary's frame: that frame goes on to the sinks and is delivered (or
//! dropped) there. Every other frame the composite consumed was folded into that output and is counted
//! as **`merged`** at the composite (`nodes[].dropped.merged`, and the report's
//! `frames.merged`), neither delivered nor a drop:
//! - the newest frame of each secondary input, read by the composite's job;
//! - on any input, the older frames still queued when the job starts (a 60 fps camera into a
//!   composite paced by a 30 fps one: every other frame), which the composite releases unread
//!   (through its vb2 queue if it has one: the driver takes the buffer and completes it, the
//!   application dequeues it, as an m2m driver skipping a frame does).
//!
//! So with two cameras at 30 and 60 fps into one composite, every input frame is either
//! delivered (through the primary) or `merged`; none is unexplained.
//!
//! A KMS display (super::kms) whose primary input will bring no more frame (every source
//! upstream of it produced its last frame and none of theirs is still on its way: a 60 fps
//! primary camera done while a 30 fps overlay still runs) is no longer paced by it: as a
//! compositor commits whatever surface has a new frame, it commits any input's new frame, on
//! its vblank grid, the planes without one keeping their framebuffer. Such a commit carries
//! the frame of its first input with one (delivered at the display), the others `merged`.
//! Without this the display never committed again, the overlay's producers ran out of buffers
//! (`queue_full` at its camera) and the frames held on the way were lost without a cause.
//!
//! Locking and lifetime: single-threaded, on the runner's loop; a folded buffer is released at
//! once and goes back to its producer's free list when its last reader let it go.

use super::sched::Sched;
use super::world::BufState;

/// The name of the cause, in `nodes[].dropped` (agreed with the verdict's causes).
pub(crate) const MERGED: &str = "merged";

impl Sched<'_> {
    /// Whether node `n` is a composite (more than one input link).
    pub(crate) fn is_composite(&self, n: usize) -> bool {
        self.w.nodes[n].inputs.len() > 1
    }

    /// Whether node `n` has the inputs to start: every input link a frame, or for a composite
    /// its primary input; a KMS display whose primary will bring no more frame commits any
    /// input's new frame (module doc).
    pub(crate) fn inputs_ready(&self, n: usize) -> bool {
        let node = &self.w.nodes[n];
        let has = |li: &usize| self.w.ready_front(n, *li).is_some();
        if self.is_composite(n) {
            node.inputs.first().is_some_and(has)
                || (self.w.is_kms(n) && node.inputs.iter().any(has) && self.primary_over(n))
        } else {
            node.inputs.iter().all(has)
        }
    }

    /// The frame composite `n`'s next job carries: its first input with a frame's front frame, the
    /// primary's while it has one (module doc).
    pub(crate) fn carried_frame(&self, n: usize) -> Option<(usize, u64)> {
        self.w.nodes[n].inputs.iter().find_map(|&li| {
            match &self.w.buf(self.w.ready_front(n, li)?).state {
                BufState::Ready { meta, .. } => Some((meta.src, meta.frame)),
                _ => None,
            }
        })
    }

    /// Whether composite `n`'s primary input will bring no more frame: every source upstream
    /// of it produced its last frame, and none of their frames is still on its way to `n`.
    pub(crate) fn primary_over(&self, n: usize) -> bool {
        let Some(&primary) = self.w.nodes[n].inputs.first() else {
            return true;
        };
        let mut sources = std::collections::BTreeSet::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![primary];
        while let Some(li) = todo.pop() {
            if !seen.insert(li) {
                continue;
            }
            let from = self.w.links[li].from;
            if self.w.nodes[from].inputs.is_empty() {
                sources.insert(from);
            }
            todo.extend(self.w.nodes[from].inputs.iter().copied());
        }
        sources
            .iter()
            .all(|&s| self.w.nodes[s].next_frame >= self.s.frames)
            && !self
                .frames
                .iter()
                .any(|(&(src, _), f)| sources.contains(&src) && f.pending.contains(&n))
    }

    /// Before composite `n` starts: on each input link, every ready frame but the newest is
    /// folded in unread (`merged`) and released.
    pub(crate) fn fold_older_inputs(&mut self, n: usize) {
        if !self.is_composite(n) {
            return;
        }
        for li in self.w.nodes[n].inputs.clone() {
            while self.w.ready_bufs(n, li).len() > 1 {
                let Some(bi) = self.w.ready_front(n, li) else {
                    break;
                };
                // Through the node's vb2 queue: the driver takes the buffer and completes it
                // without reading it; the application dequeues it.
                let taken = self.w.vb2_take(n, li, bi);
                if taken.is_none() {
                    self.w.ready_remove(n, li, bi);
                }
                if let Some((p, slot, gen, _view)) = taken {
                    if let Err(e) = self.w.ports[p].complete(slot, gen) {
                        let label = self.w.ports[p].label(&self.w);
                        self.errors.push(super::world::RunFailure::new(
                            &e,
                            format!("{label}: buffer_done/DQBUF of folded buffer {slot}: {e}"),
                        ));
                    }
                }
                self.merge_frame_of(n, bi);
                self.release(bi, n);
            }
        }
    }

    /// Composite `n`'s job started on `inputs` (`(link, buffer)`, primary first): the frames of
    /// the secondary inputs are folded into the primary's output (`merged`).
    pub(crate) fn merge_secondary_inputs(&mut self, n: usize, inputs: &[(usize, usize)]) {
        if !self.is_composite(n) {
            return;
        }
        for &(_, bi) in inputs.iter().skip(1) {
            self.merge_frame_of(n, bi);
        }
    }

    /// The frame in buffer `bi` was folded in by composite `n`: counted `merged` at `n`, and
    /// no longer awaited by the sinks behind `n` (it will never reach them as itself).
    fn merge_frame_of(&mut self, n: usize, bi: usize) {
        let key = match &self.w.buf(bi).state {
            BufState::Ready { meta, .. } => (meta.src, meta.frame),
            _ => return,
        };
        self.note_drop(n, MERGED);
        let behind = self.sinks_behind(n);
        if let Some(f) = self.frames.get_mut(&key) {
            f.merged = true;
            f.pending.retain(|s| !behind.contains(s));
        }
        // Over if no sink is left for it (module `outcome`: retired as merged).
        self.check_delivered(key, crate::clock::VirtualTime::ZERO);
    }

    /// The sinks a frame reaches through node `n` (`n` itself if it is a sink).
    fn sinks_behind(&self, n: usize) -> std::collections::BTreeSet<usize> {
        let mut s = self.sinks_from(n);
        if s.is_empty() {
            s.insert(n);
        }
        s
    }
}
