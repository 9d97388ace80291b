//! Seed 000's sizing of a swapchain (rules 2, 4 and 5 of [`super`]): when to grow, when to
//! shrink, when the producer waits, as a value with no buffers of its own.
//!
//! Locking and lifetime: a plain `Copy` value; whoever owns the buffers ([`super::Chain`])
//! asks it.

/// Seed 000's sizing of a swapchain (rules 2, 4 and 5), apart from any buffer: a value the
/// [`Chain`](super::Chain) applies to its buffers (and [`Swapchain`](super::Swapchain)
/// through it).
///
/// Idle ages are in whatever unit the caller counts (vblanks for
/// [`Swapchain`](super::Swapchain); a scheduler on a clock passes nanoseconds and the length
/// of [`shrink_after`](Self::shrink_after) vblanks in nanoseconds).
///
/// ```
/// use drivers::swapchain::SwapchainPolicy;
/// let p = SwapchainPolicy { max_in_flight: Some(2), ..SwapchainPolicy::new(4) };
/// assert_eq!(p.initial(), 2);
/// assert!(p.grows(2, 0, 1) && !p.grows(2, 1, 1) && !p.grows(4, 0, 1));
/// assert!(!p.may_draw(2), "two in flight: the producer waits");
/// // Three buffers, free ones idle for 1 and 5 vblanks: the second goes (one over the minimum).
/// assert_eq!(p.shrink(3, &[1, 5], 4), vec![1]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapchainPolicy {
    /// Buffers kept however idle (and the ones a chain starts with).
    pub min_buffers: usize,
    /// The most buffers that may exist.
    pub max_buffers: usize,
    /// Vblanks a free buffer stays before it is freed.
    pub shrink_after: u64,
    /// At most this many buffers in flight; `None`: only `max_buffers` bounds them.
    pub max_in_flight: Option<usize>,
}

impl SwapchainPolicy {
    /// Buffers kept however idle by default: one shown, one drawn.
    pub const DEFAULT_MIN_BUFFERS: usize = 2;
    /// Vblanks a free buffer idles before it is freed, by default.
    pub const DEFAULT_SHRINK_AFTER: u64 = 4;

    /// The defaults with at most `max_buffers` buffers and no in-flight bound.
    pub fn new(max_buffers: usize) -> SwapchainPolicy {
        SwapchainPolicy {
            min_buffers: Self::DEFAULT_MIN_BUFFERS,
            max_buffers,
            shrink_after: Self::DEFAULT_SHRINK_AFTER,
            max_in_flight: None,
        }
    }

    /// Buffers a chain starts with (and keeps): the minimum, capped by the maximum.
    pub fn initial(&self) -> usize {
        self.min_buffers.min(self.max_buffers)
    }

    /// Rule 5: whether the producer may take a buffer with `in_flight` buffers in flight.
    pub fn may_draw(&self, in_flight: usize) -> bool {
        self.max_in_flight.is_none_or(|m| in_flight < m)
    }

    /// Rule 2: whether to allocate one more buffer, with `live` buffers, `free` of them free
    /// and `in_flight` in flight: only when none is free, the producer may draw, and the
    /// maximum is not reached.
    pub fn grows(&self, live: usize, free: usize, in_flight: usize) -> bool {
        free == 0 && self.may_draw(in_flight) && live < self.max_buffers
    }

    /// Rule 4: which free buffers to free, as positions in `free_idle` (the idle age of each
    /// free buffer, in the caller's order): the first ones idle for at least `idle_for`, while
    /// more than [`initial`](Self::initial) of the `live` buffers would remain.
    pub fn shrink(&self, live: usize, free_idle: &[u64], idle_for: u64) -> Vec<usize> {
        let keep = self.initial();
        let mut left = live;
        let mut out = Vec::new();
        for (i, &age) in free_idle.iter().enumerate() {
            if left <= keep {
                break;
            }
            if age >= idle_for {
                out.push(i);
                left -= 1;
            }
        }
        out
    }
}
