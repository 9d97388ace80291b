//! A swapchain's buffers and their states: the object a producer acquires from, presents to
//! and gets buffers back from, and that allocates and frees them as seed 000's policy says.
//!
//! # The concept
//! [`Chain`] is the part of a swapchain that does not depend on who shows the frames: it
//! allocates each buffer through its allocator ([`ChainAlloc`]: the client's GPU exporting a GEM
//! object for Wayland, the display side's dma-heap for DRI2), hands out free ones
//! ([`Chain::plan`], [`Chain::take`]), follows each through `Drawing`, `Queued` and `Scanout`
//! back to `Free` ([`Chain::present`], [`Chain::scanout`], [`Chain::release`]) and frees idle
//! spares ([`Chain::shrink`]). [`super::Swapchain`] is a chain plus a [`crate::display::Display`]
//! it flips itself; a scheduler that drives KMS on its own (the scenario runner) owns a chain
//! and reports the chain's state changes to it, so both run one implementation.
//!
//! Buffers are named by a key the caller chooses (the swapchain's buffer ids, the runner's
//! buffer indices). Times are in the caller's unit (vblanks, or nanoseconds of a virtual
//! clock); only differences and comparisons are taken.
//!
//! A buffer on screen (`Scanout` from a time that has come) is shown, not in flight: real KMS
//! scans the old framebuffer out until the next flip latches, and a compositor's bound on
//! queued frames does not count it. Before that time its flip is committed and it counts.
//!
//! Locking and lifetime: a plain value, used from one thread (`&mut self`). It holds a
//! reference to each buffer (and GPU object) until the buffer is freed or forgotten.

use super::{SlotState, SwapchainPolicy, SwapchainStats};
use crate::gpu::{BoDesc, DmemGroup, Gpu, GpuBo, Placement};
use crate::media::MediaError;
use dmabuf::{BufRegistry, DmaBuf};
use kernel::{Fd, Kernel, Process};
use std::sync::Arc;

/// Who allocates a chain's buffers, and how.
pub enum ChainAlloc {
    /// Wayland: the client's GPU creates a GEM object and exports it (PRIME).
    Gpu {
        /// The client's GPU.
        gpu: Gpu,
        /// `Vram`: a buffer preferring VRAM (falling back to GTT); `Gtt`: validated into GTT.
        placement: Placement,
        /// The dmem cgroup the allocating process is charged to, if any.
        group: Option<Arc<DmemGroup>>,
        /// The registry the export is entered in; `None`: the GPU's own.
        registry: Option<Arc<BufRegistry>>,
    },
    /// DRI2: the display side allocates from a dma-heap.
    Heap {
        /// The machine.
        kernel: Arc<Kernel>,
        /// The heap's name (`/dev/dma_heap/<heap>`).
        heap: String,
        /// The display server's process: it opens the heap and allocates
        /// (`DMA_HEAP_IOCTL_ALLOC`), and the fd is its own. `None`: a kernel-internal
        /// allocation of whole pages, no fd.
        process: Option<Arc<Process>>,
        /// The new fd's flags (`O_RDWR`, `O_CLOEXEC`).
        fd_flags: u32,
    },
}

impl std::fmt::Debug for ChainAlloc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainAlloc::Gpu { placement, .. } => write!(f, "Gpu({placement:?})"),
            ChainAlloc::Heap { heap, .. } => write!(f, "Heap({heap})"),
        }
    }
}

/// One buffer a [`Chain`] allocated.
#[derive(Debug)]
pub struct ChainBuffer {
    /// The dma-buf.
    pub buf: DmaBuf,
    /// Its GPU object (the GPU allocated it).
    pub bo: Option<GpuBo>,
    /// The fd of it in the allocating process (a heap allocation through a process).
    pub fd: Option<Fd>,
}

/// What [`Chain::plan`] says the producer gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// The free buffer `key` (rule 2: the one idle the shortest time).
    Reuse(u64),
    /// None is free and the policy allows one more: allocate it ([`Chain::allocate`]).
    Grow,
    /// A buffer is free but `max_in_flight` buffers are in flight (rule 5): wait.
    Bound,
    /// None is free and the chain may not grow: wait for a release.
    Exhausted,
}

#[derive(Debug)]
struct Slot {
    key: u64,
    buf: DmaBuf,
    bo: Option<GpuBo>,
    state: SlotState,
    /// Free: since when. Scanout: on screen from when.
    since: u64,
}

/// A swapchain's buffers (module documentation).
#[derive(Debug)]
pub struct Chain {
    policy: SwapchainPolicy,
    alloc: ChainAlloc,
    slots: Vec<Slot>,
    stats: SwapchainStats,
}

impl Chain {
    /// A chain sized by `policy` whose buffers `alloc` allocates. No buffer yet.
    pub fn new(policy: SwapchainPolicy, alloc: ChainAlloc) -> Chain {
        Chain {
            policy,
            alloc,
            slots: Vec::new(),
            stats: SwapchainStats::default(),
        }
    }

    /// Who allocates its buffers.
    pub fn allocator(&self) -> &ChainAlloc {
        &self.alloc
    }

    /// Its sizing policy.
    pub fn policy(&self) -> SwapchainPolicy {
        self.policy
    }

    /// Counters.
    pub fn stats(&self) -> SwapchainStats {
        self.stats
    }

    /// Buffers that exist.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no buffer exists.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether buffer `key` is one of the chain's.
    pub fn contains(&self, key: u64) -> bool {
        self.pos(key).is_some()
    }

    /// Every buffer's state, oldest buffer first.
    pub fn states(&self) -> Vec<SlotState> {
        self.slots.iter().map(|s| s.state).collect()
    }

    /// Buffer `key`'s state.
    pub fn state(&self, key: u64) -> Option<SlotState> {
        self.pos(key).map(|i| self.slots[i].state)
    }

    /// Buffer `key`'s dma-buf and GPU object.
    pub fn buffer(&self, key: u64) -> Option<(&DmaBuf, Option<&GpuBo>)> {
        self.pos(key)
            .map(|i| (&self.slots[i].buf, self.slots[i].bo.as_ref()))
    }

    /// Buffers in flight at `now`: drawn, queued, or flipped to but not on screen yet (module
    /// doc).
    pub fn in_flight(&self, now: u64) -> usize {
        self.slots
            .iter()
            .filter(|s| match s.state {
                SlotState::Free => false,
                SlotState::Scanout => s.since > now,
                SlotState::Drawing | SlotState::Queued => true,
            })
            .count()
    }

    fn pos(&self, key: u64) -> Option<usize> {
        self.slots.iter().position(|s| s.key == key)
    }

    fn note(&mut self, now: u64) {
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight(now));
        self.stats.max_buffers = self.stats.max_buffers.max(self.slots.len());
    }

    /// What the producer gets at `now` (rules 2 and 5); nothing changes until
    /// [`take`](Self::take) or [`allocate`](Self::allocate).
    pub fn plan(&self, now: u64) -> Acquire {
        let in_flight = self.in_flight(now);
        let free = self
            .slots
            .iter()
            .filter(|s| s.state == SlotState::Free)
            .max_by_key(|s| s.since);
        match free {
            Some(_) if !self.policy.may_draw(in_flight) => Acquire::Bound,
            Some(s) => Acquire::Reuse(s.key),
            None if self.policy.grows(self.slots.len(), 0, in_flight) => Acquire::Grow,
            None => Acquire::Exhausted,
        }
    }

    /// The producer waited (counted in [`SwapchainStats::waits`]).
    pub fn waited(&mut self) {
        self.stats.waits += 1;
    }

    /// One more buffer `key` named `name` of `size` bytes, free from `now`: `ENOMEM` or
    /// `EBUSY` (counted as an allocation failure) means the producer waits; `EEXIST` if `key`
    /// is taken.
    pub fn allocate(
        &mut self,
        key: u64,
        name: &str,
        size: u64,
        now: u64,
    ) -> Result<ChainBuffer, MediaError> {
        self.allocate_with(key, name, size, now, |_| Ok(()))
            .map(|(b, ())| b)
    }

    /// [`allocate`](Self::allocate), then `then` on the new buffer (a framebuffer, an import):
    /// the buffer joins the chain only if that succeeds too; if not, it is dropped and `then`'s
    /// error returned (counted as an allocation failure if `ENOMEM` or `EBUSY`).
    pub fn allocate_with<T>(
        &mut self,
        key: u64,
        name: &str,
        size: u64,
        now: u64,
        then: impl FnOnce(&ChainBuffer) -> Result<T, MediaError>,
    ) -> Result<(ChainBuffer, T), MediaError> {
        if self.contains(key) {
            return Err(MediaError::Invalid(format!(
                "swapchain buffer {key} exists (EEXIST)"
            )));
        }
        let made = self.alloc_one(name, size).and_then(|b| match then(&b) {
            Ok(t) => Ok((b, t)),
            Err(e) => {
                self.close_fd(&b);
                Err(e)
            }
        });
        let (out, t) = match made {
            Ok(x) => x,
            Err(e) => {
                if matches!(
                    uapi::AsErrno::errno(&e),
                    uapi::Errno::ENOMEM | uapi::Errno::EBUSY
                ) {
                    self.stats.alloc_failures += 1;
                }
                return Err(e);
            }
        };
        // Growth is any buffer past the ones the chain starts with (it never shrinks below).
        if self.slots.len() >= self.policy.initial() {
            self.stats.grown += 1;
        }
        self.stats.allocations += 1;
        self.slots.push(Slot {
            key,
            buf: out.buf.clone(),
            bo: out.bo.clone(),
            state: SlotState::Free,
            since: now,
        });
        self.note(now);
        Ok((out, t))
    }

    /// The fd a failed allocation made in the allocating process goes.
    fn close_fd(&self, b: &ChainBuffer) {
        if let (
            Some(fd),
            ChainAlloc::Heap {
                process: Some(p), ..
            },
        ) = (b.fd, &self.alloc)
        {
            let _ = p.close(fd);
        }
    }

    fn alloc_one(&self, name: &str, size: u64) -> Result<ChainBuffer, MediaError> {
        match &self.alloc {
            ChainAlloc::Gpu {
                gpu,
                placement,
                group,
                registry,
            } => {
                let desc = match placement {
                    Placement::Vram => BoDesc::vram(name, size),
                    _ => BoDesc::gtt(name, size),
                };
                let bo = match group {
                    Some(g) => gpu.create_bo_in(desc, g)?,
                    None => gpu.create_bo(desc)?,
                };
                if *placement != Placement::Vram {
                    gpu.validate(&bo, *placement)?;
                }
                let buf = match registry {
                    Some(r) => gpu.export_into(&bo, r)?,
                    None => gpu.export(&bo)?,
                };
                Ok(ChainBuffer {
                    buf,
                    bo: Some(bo),
                    fd: None,
                })
            }
            ChainAlloc::Heap {
                heap,
                process: Some(p),
                fd_flags,
                ..
            } => {
                let h = p.open_heap(heap)?;
                let fd = p.heap_alloc(h, size, *fd_flags, 0);
                let _ = p.close(h);
                let fd = fd?;
                let buf = p.get_dma_buf(fd).inspect_err(|_| {
                    let _ = p.close(fd);
                })?;
                Ok(ChainBuffer {
                    buf,
                    bo: None,
                    fd: Some(fd),
                })
            }
            ChainAlloc::Heap {
                kernel,
                heap,
                process: None,
                ..
            } => {
                let h = kernel
                    .heap(heap)
                    .ok_or_else(|| MediaError::Invalid(format!("no dma-heap {heap:?}")))?;
                let len = soc::align_up(size, soc::PAGE_SIZE)
                    .ok_or_else(|| MediaError::Invalid(format!("{size:#x} bytes overflow")))?;
                let buf = h.allocate(len, uapi::ioctl::O_RDWR, 0)?;
                Ok(ChainBuffer {
                    buf,
                    bo: None,
                    fd: None,
                })
            }
        }
    }

    fn set(&mut self, key: u64, from: SlotState, to: SlotState) -> Result<usize, MediaError> {
        let i = self.pos(key).ok_or_else(|| {
            MediaError::Invalid(format!("buffer {key} is not the swapchain's (ENOENT)"))
        })?;
        if self.slots[i].state != from {
            return Err(MediaError::Invalid(format!(
                "buffer {key} is {:?}, not {from:?}",
                self.slots[i].state
            )));
        }
        self.slots[i].state = to;
        Ok(i)
    }

    /// The producer takes free buffer `key` to draw into at `now`.
    pub fn take(&mut self, key: u64, now: u64) -> Result<(), MediaError> {
        self.set(key, SlotState::Free, SlotState::Drawing)?;
        self.note(now);
        Ok(())
    }

    /// The producer presents buffer `key`: queued for a flip.
    pub fn present(&mut self, key: u64, now: u64) -> Result<(), MediaError> {
        self.set(key, SlotState::Drawing, SlotState::Queued)?;
        self.stats.presented += 1;
        self.note(now);
        Ok(())
    }

    /// Buffer `key`'s flip latches at `from` (now or later): on screen from then.
    /// A buffer on screen already stays so (a vblank with no new flip shows it again).
    pub fn scanout(&mut self, key: u64, from: u64) -> Result<(), MediaError> {
        if self.state(key) == Some(SlotState::Scanout) {
            return Ok(());
        }
        let i = self.set(key, SlotState::Queued, SlotState::Scanout)?;
        self.slots[i].since = from;
        Ok(())
    }

    /// Buffer `key` comes back (released by the display, or a presented frame nobody shows):
    /// free, idle since `since`. A buffer already free stays as it is.
    pub fn release(&mut self, key: u64, since: u64) -> Result<(), MediaError> {
        let i = self.pos(key).ok_or_else(|| {
            MediaError::Invalid(format!("buffer {key} is not the swapchain's (ENOENT)"))
        })?;
        if self.slots[i].state != SlotState::Free {
            self.slots[i].state = SlotState::Free;
            self.slots[i].since = since;
        }
        Ok(())
    }

    /// Rule 4 at `now`: the free buffers idle for at least `idle_for` go while more than the
    /// minimum exist (counted in [`SwapchainStats::frees`]); their keys, for the caller to
    /// drop what it holds of them.
    pub fn shrink(&mut self, now: u64, idle_for: u64) -> Vec<u64> {
        let free: Vec<(u64, u64)> = self
            .slots
            .iter()
            .filter(|s| s.state == SlotState::Free)
            .map(|s| (s.key, now.saturating_sub(s.since)))
            .collect();
        let ages: Vec<u64> = free.iter().map(|f| f.1).collect();
        let go: Vec<u64> = self
            .policy
            .shrink(self.slots.len(), &ages, idle_for)
            .into_iter()
            .map(|k| free[k].0)
            .collect();
        self.slots.retain(|s| !go.contains(&s.key));
        self.stats.frees += go.len() as u64;
        go
    }

    /// Buffer `key` goes for another reason (its user dropped it): forgotten, not counted as
    /// a shrink. Whether it was the chain's.
    pub fn forget(&mut self, key: u64) -> bool {
        match self.pos(key) {
            Some(i) => {
                self.slots.remove(i);
                true
            }
            None => false,
        }
    }

    /// Every buffer's key, oldest first.
    pub fn keys(&self) -> Vec<u64> {
        self.slots.iter().map(|s| s.key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of at most `max` buffers (`bound` in flight) from the system heap.
    fn chain(max: usize, bound: Option<usize>) -> Chain {
        let kernel = Kernel::boot(soc::SocDesc::default_soc()).unwrap();
        let policy = SwapchainPolicy {
            max_in_flight: bound,
            ..SwapchainPolicy::new(max)
        };
        Chain::new(
            policy,
            ChainAlloc::Heap {
                kernel,
                heap: "system".into(),
                process: None,
                fd_flags: uapi::ioctl::O_RDWR,
            },
        )
    }

    #[test]
    fn a_buffer_on_screen_is_shown_not_in_flight_until_its_vblank_comes() {
        let mut c = chain(3, Some(1));
        c.allocate(7, "b7", 4096, 0).unwrap();
        c.take(7, 0).unwrap();
        c.present(7, 0).unwrap();
        assert_eq!(c.in_flight(0), 1);
        // Flipped to, latching at 10: in flight before, shown from then.
        c.scanout(7, 10).unwrap();
        assert_eq!((c.in_flight(9), c.in_flight(10)), (1, 0));
        c.release(7, 12).unwrap();
        assert_eq!(c.state(7), Some(SlotState::Free));
        assert!(c.take(8, 12).is_err(), "not the chain's");
    }

    #[test]
    fn the_producer_gets_the_buffer_idle_the_shortest_time_grows_and_waits_at_the_bound() {
        let mut c = chain(3, Some(2));
        assert_eq!(c.plan(0), Acquire::Grow);
        c.allocate(1, "b1", 4096, 0).unwrap();
        c.allocate(2, "b2", 4096, 5).unwrap();
        assert_eq!(c.plan(6), Acquire::Reuse(2), "free since 5, not since 0");
        c.take(2, 6).unwrap();
        c.take(1, 6).unwrap();
        // Two in flight: at the bound no buffer grows.
        assert_eq!(c.plan(6), Acquire::Exhausted);
        c.present(1, 7).unwrap();
        c.release(1, 8).unwrap();
        assert_eq!(c.plan(8), Acquire::Reuse(1));
        assert_eq!(c.stats().grown, 0, "the first two are the chain's start");
        c.take(1, 8).unwrap();
        c.release(2, 9).unwrap();
        // A drawn buffer given back unpresented is free again; one in flight, bound 2: drawn.
        assert_eq!(c.plan(9), Acquire::Reuse(2));
        c.take(2, 9).unwrap();
        assert_eq!(c.plan(9), Acquire::Exhausted);
        assert!(c.present(2, 9).is_ok() && c.present(2, 9).is_err(), "once");
    }

    #[test]
    fn idle_spares_go_down_to_the_minimum_and_a_forgotten_buffer_is_no_shrink() {
        let mut c = chain(4, None);
        for k in 0..4 {
            c.allocate(k, "b", 4096, 0).unwrap();
        }
        assert_eq!(c.stats().grown, 2);
        c.take(0, 1).unwrap();
        assert_eq!(c.shrink(3, 4), Vec::<u64>::new(), "idle 3 < 4");
        let gone = c.shrink(4, 4);
        assert_eq!(gone.len(), 2, "{gone:?}: four buffers down to two");
        assert_eq!((c.len(), c.stats().frees), (2, 2));
        assert!(c.forget(0) && !c.forget(0));
        assert_eq!(c.stats().frees, 2);
    }
}
