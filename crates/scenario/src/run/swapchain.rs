//! A gpu->display link's swapchain (seed 000): it grows when the GPU finds no free buffer and
//! shrinks when a buffer idles.
//!
//! Locking and lifetime: single-threaded (the runner's loop); a freed buffer is dropped at
//! once ([`super::events::drop_buffer`]).

use super::sched::{Sched, SWAPCHAIN_MIN_BUFFERS, SWAPCHAIN_SHRINK_AFTER};
use crate::clock::VirtualTime;

impl Sched<'_> {
    /// Seed 000's swapchain before the producer draws: buffers free and idle for
    /// [`SWAPCHAIN_SHRINK_AFTER`] display frames are freed while more than the minimum exist;
    /// with none free, one more is allocated, up to the link's `buffers`.
    pub(crate) fn swapchain_step(&mut self, li: usize, now: VirtualTime) {
        let fps = self.w.links[li]
            .to
            .iter()
            .map(|&t| self.w.nodes[t].desc.fps)
            .max_by(|a, b| {
                (a.num() as u128 * b.den() as u128).cmp(&(b.num() as u128 * a.den() as u128))
            })
            .unwrap_or_default();
        let idle_for = fps.tick(SWAPCHAIN_SHRINK_AFTER);
        let min = self.w.links[li].desc.buffers.min(SWAPCHAIN_MIN_BUFFERS) as usize;
        loop {
            let l = &self.w.links[li];
            if l.bufs.len() <= min {
                break;
            }
            let idle = l.free.iter().copied().find(|&b| {
                let b = self.w.buf(b);
                now.saturating_sub(b.busy_until.max(b.available_at)) >= idle_for
            });
            let Some(bi) = idle else {
                break;
            };
            super::events::drop_buffer(&mut self.w, bi);
            self.w.links[li].swap_shrunk += 1;
        }
        // Grow only when the producer could use the buffer: none free, and the bound (if any)
        // not reached.
        let l = &self.w.links[li];
        let in_flight = self.w.in_flight(li);
        let bound_ok = l.swapchain.and_then(|s| s.1).is_none_or(|m| in_flight < m);
        if l.free.is_empty() && bound_ok && (l.bufs.len() as u32) < l.desc.buffers {
            match self.w.alloc_buffer(li) {
                Ok(bi) => {
                    // Idle from now on, not since the start of the run.
                    self.w.buf_mut(bi).busy_until = now;
                    self.w.links[li].swap_grown += 1;
                }
                Err(e) => self.errors.push(e),
            }
        }
        let live = self.w.links[li].bufs.len() as u32;
        let l = &mut self.w.links[li];
        l.swap_max_live = l.swap_max_live.max(live);
    }
}
