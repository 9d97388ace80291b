//! A gpu->display link's swapchain: the swapchain driver's [`Chain`] owns the link's buffers.
//!
//! # The concept
//! A link whose GPU end names `swapchain` runs seed 000's swapchain as the driver implements it
//! ([`drivers::swapchain`]). The link's [`Chain`] allocates every buffer the link has: in
//! `wayland` mode the client's GPU creates a GEM object (charged to its process's dmem group)
//! and exports it; in `dri2` mode the display server's process allocates from the dma-heap the
//! link's `exporter` names. The runner then passes the fd to the other end's process and
//! attaches it like any buffer ([`World::alloc_buffer`]). From then on the runner tells the
//! chain each step of a buffer's life and asks it what the producer gets:
//! - before the GPU's job, [`Sched::swapchain_step`] frees the spares the chain says have been
//!   idle for its `shrink_after` vblanks of the display, and allocates one more buffer if the
//!   chain says to grow (none free, `max_in_flight` not reached, fewer than `buffers`);
//! - the producer takes the buffer [`Chain::plan`] names (the free one idle the shortest time),
//!   or waits ([`Acquire::Bound`], counted: the report's `waits`);
//! - the frame's hand-over presents it, the display's latch puts it on screen from the vblank,
//!   and the display's release frees it (idle since its last use by a device).
//!
//! The report's `swapchains[]` is the chain's own counters.
//!
//! Locking and lifetime: single-threaded (the runner's loop owns [`World`]); a chain lives as
//! long as its link, and a buffer dropped for any reason is forgotten by it
//! ([`World::swap_forget`]).

use super::gpu::P2pImporter;
use super::sched::Sched;
use super::world::{install, ExporterHandle, LinkRt, RunFailure, World, RDWR};
use crate::clock::VirtualTime;
use crate::report::SwapchainReport;
use crate::schema::{DriverKind, Exporter, SwapchainMode};
use dmabuf::DmaBuf;
use drivers::gpu::Placement;
use drivers::swapchain::{Acquire, Chain, ChainAlloc, SwapchainPolicy};
use kernel::Fd;
use std::sync::Arc;

/// What [`World::swap_alloc`] gives [`World::alloc_buffer`]: the buffer, its exporter, the fd
/// in the allocating process and the importer a p2p GPU's consumers attach with.
pub(super) type SwapBuffer = (DmaBuf, ExporterHandle, Fd, Option<Arc<P2pImporter>>);

impl World {
    /// The sizing policy of link `li`'s swapchain, if it runs one: the driver's
    /// ([`SwapchainPolicy`]) with the link's `buffers` as the maximum and its `max_in_flight`.
    pub(crate) fn swap_policy(&self, li: usize) -> Option<SwapchainPolicy> {
        let l = &self.links[li];
        let (_, bound) = l.swapchain?;
        Some(SwapchainPolicy {
            max_in_flight: bound.map(|b| b as usize),
            ..SwapchainPolicy::new(l.desc.buffers as usize)
        })
    }

    /// The loop's moment, on the machine's clock (the loop advances it to every event).
    pub(crate) fn loop_now(&self) -> VirtualTime {
        VirtualTime::from_ns(
            self.kernel
                .soc()
                .clock()
                .now_ns()
                .saturating_sub(::clock::BOOT_NS),
        )
    }

    /// Link `li`'s chain, made on its first buffer: `allocator` is the process that allocates
    /// (the GPU's for wayland, the display's for dri2).
    fn swap_chain(&mut self, li: usize, allocator: usize) -> Result<&mut Chain, RunFailure> {
        if self.links[li].chain.is_none() {
            let (mode, _) = self.links[li].swapchain.ok_or_else(|| RunFailure {
                errno: "EINVAL".into(),
                message: format!("{} runs no swapchain", self.links[li].name),
            })?;
            let policy = self
                .swap_policy(li)
                .unwrap_or_else(|| SwapchainPolicy::new(1));
            let alloc = match mode {
                SwapchainMode::Wayland => {
                    let node = self.nodes[self.links[li].from].desc.clone();
                    let gpu = self.gpu_for(&node)?;
                    let process = self.nodes[allocator].desc.process_name().to_string();
                    let group = self.limits.dmem_group(&process, &node.device, &gpu);
                    ChainAlloc::Gpu {
                        gpu,
                        placement: Placement::Vram,
                        group,
                        registry: Some(self.kernel.registry().clone()),
                    }
                }
                SwapchainMode::Dri2 => {
                    let l = &self.links[li];
                    let heap = match l.desc.effective_exporter() {
                        Some(Exporter::Heap(k)) => self.heap_name(k, l.desc.region.as_deref()),
                        _ => {
                            return Err(RunFailure {
                                errno: "EINVAL".into(),
                                message: format!("{}: a dri2 swapchain needs a heap", l.name),
                            })
                        }
                    };
                    ChainAlloc::Heap {
                        kernel: self.kernel.clone(),
                        heap,
                        process: Some(self.nodes[allocator].process.clone()),
                        fd_flags: RDWR,
                    }
                }
            };
            self.links[li].chain = Some(Chain::new(policy, alloc));
        }
        self.links[li].chain.as_mut().ok_or_else(|| RunFailure {
            errno: "EINVAL".into(),
            message: "no swapchain".into(),
        })
    }

    /// Link `li`'s swapchain allocates buffer `bi` (`name`, `size` bytes) in `allocator`'s
    /// process (module doc).
    pub(super) fn swap_alloc(
        &mut self,
        li: usize,
        bi: usize,
        name: &str,
        size: u64,
        allocator: usize,
    ) -> Result<SwapBuffer, RunFailure> {
        let now = self.loop_now().as_ns();
        let chain = self.swap_chain(li, allocator)?;
        let heap = match chain.allocator() {
            ChainAlloc::Heap { heap, .. } => heap.clone(),
            ChainAlloc::Gpu { .. } => String::new(),
        };
        let made = chain
            .allocate(bi as u64, name, size, now)
            .map_err(|e| RunFailure::new(&e, format!("allocating {name}: {e}")))?;
        let process = self.nodes[allocator].process.clone();
        let pname = self.nodes[allocator].desc.process_name().to_string();
        let out = match (made.bo, made.fd) {
            // Wayland: the GPU's export, installed in the client's process.
            (Some(bo), _) => install(&process, &made.buf)
                .map_err(|e| RunFailure::new(&e, format!("{name}: {e}")))
                .map(|fd| {
                    let p2p = self
                        .gpus
                        .get(&self.nodes[self.links[li].from].desc.device)
                        .is_some_and(|g| g.config().p2p);
                    let imp = p2p.then(|| Arc::new(P2pImporter::default()));
                    (made.buf, ExporterHandle::Gpu(bo), fd, imp)
                }),
            // DRI2: the display server's heap allocation; an allocator service hands the
            // charge to its client (super::limits).
            (None, Some(fd)) => self
                .limits
                .after_heap_alloc(&pname, &process, fd)
                .map_err(|e| {
                    let _ = process.close(fd);
                    RunFailure::new(&e, format!("{name}: {e}"))
                })
                .map(|()| (made.buf, ExporterHandle::Heap(heap), fd, None)),
            (None, None) => Err(RunFailure {
                errno: "EINVAL".into(),
                message: format!("{name}: the swapchain gave no fd"),
            }),
        };
        if out.is_err() {
            self.swap_forget(li, bi);
        }
        out
    }

    /// Buffer `bi` of link `li` is dropped: its swapchain forgets it.
    pub(crate) fn swap_forget(&mut self, li: usize, bi: usize) {
        if let Some(c) = self.links[li].chain.as_mut() {
            c.forget(bi as u64);
        }
    }

    fn chain_of(&mut self, bi: usize) -> Option<&mut Chain> {
        let li = self.bufs.get(bi)?.as_ref()?.link;
        self.links[li].chain.as_mut()
    }

    /// The producer took buffer `bi` of link `li` at `now`.
    pub(crate) fn swap_take(
        &mut self,
        li: usize,
        bi: usize,
        now: VirtualTime,
    ) -> Result<(), RunFailure> {
        let Some(c) = self.links[li].chain.as_mut() else {
            return Ok(());
        };
        c.take(bi as u64, now.as_ns())
            .map_err(|e| RunFailure::new(&e, format!("swapchain acquire: {e}")))
    }

    /// The producer's frame in buffer `bi` is handed over: presented.
    pub(crate) fn swap_present(&mut self, bi: usize) -> Result<(), RunFailure> {
        let now = self.loop_now().as_ns();
        let Some(c) = self.chain_of(bi) else {
            return Ok(());
        };
        c.present(bi as u64, now)
            .map_err(|e| RunFailure::new(&e, format!("swapchain present: {e}")))
    }

    /// Buffer `bi`'s flip latches at `from`: on screen from then.
    pub(crate) fn swap_scanout(&mut self, bi: usize, from: VirtualTime) -> Result<(), RunFailure> {
        let Some(c) = self.chain_of(bi) else {
            return Ok(());
        };
        c.scanout(bi as u64, from.as_ns())
            .map_err(|e| RunFailure::new(&e, format!("swapchain latch: {e}")))
    }

    /// Buffer `bi` is free again: idle since a device last used it.
    pub(crate) fn swap_release(&mut self, bi: usize) -> Result<(), RunFailure> {
        let Some(b) = self.bufs.get(bi).and_then(Option::as_ref) else {
            return Ok(());
        };
        let since = b.busy_until.max(b.available_at).as_ns();
        let Some(c) = self.chain_of(bi) else {
            return Ok(());
        };
        c.release(bi as u64, since)
            .map_err(|e| RunFailure::new(&e, format!("swapchain release: {e}")))
    }

    /// The report's `swapchains`: each chain's counters.
    pub(crate) fn swapchain_reports(&self) -> Vec<SwapchainReport> {
        let mut out = Vec::new();
        for (li, l) in self.links.iter().enumerate() {
            let Some((mode, bound)) = l.swapchain else {
                continue;
            };
            let allocated_by = match mode {
                SwapchainMode::Dri2 => {
                    l.to.iter()
                        .find(|&&t| self.nodes[t].desc.driver == DriverKind::Display)
                        .map_or(l.from, |&t| t)
                }
                SwapchainMode::Wayland => l.from,
            };
            let st = l.chain.as_ref().map(Chain::stats).unwrap_or_default();
            out.push(SwapchainReport {
                link: l.name.clone(),
                mode: match mode {
                    SwapchainMode::Dri2 => "dri2".into(),
                    SwapchainMode::Wayland => "wayland".into(),
                },
                allocated_by: self.nodes[allocated_by].desc.process_name().to_string(),
                buffers: l.desc.buffers,
                min: self
                    .swap_policy(li)
                    .map_or(l.desc.buffers, |p| p.initial() as u32),
                max: st.max_buffers as u32,
                grown: st.grown,
                shrunk: st.frees,
                max_in_flight: bound,
                max_seen: st.max_in_flight as u32,
                waits: st.waits,
            });
        }
        out
    }
}

/// Which buffer link `l`'s producer gets at `now`: `None` if the link runs no swapchain, else
/// what its chain says: a buffer, or `Some(None)` to wait (the `max_in_flight` bound counted).
pub(super) fn pick(l: &mut LinkRt, now: VirtualTime) -> Option<Option<usize>> {
    let c = l.chain.as_mut()?;
    Some(match c.plan(now.as_ns()) {
        Acquire::Reuse(k) => Some(k as usize),
        Acquire::Bound => {
            c.waited();
            None
        }
        Acquire::Grow | Acquire::Exhausted => None,
    })
}

impl Sched<'_> {
    /// Seed 000's swapchain before the producer draws, as link `li`'s chain says: its idle
    /// spares (its `shrink_after` vblanks of the display) are dropped, and one more buffer is
    /// allocated if it grows (module doc). Single-threaded (the loop).
    pub(crate) fn swapchain_step(&mut self, li: usize, now: VirtualTime) {
        let Some(policy) = self.w.swap_policy(li) else {
            return;
        };
        let fps = self.w.links[li]
            .to
            .iter()
            .map(|&t| self.w.nodes[t].desc.fps)
            .max_by(|a, b| {
                (a.num() as u128 * b.den() as u128).cmp(&(b.num() as u128 * a.den() as u128))
            })
            .unwrap_or_default();
        // Ages in nanoseconds of the virtual clock; `shrink_after` vblanks of the display.
        let idle_for = fps.tick(policy.shrink_after).as_ns();
        let gone = match self.w.links[li].chain.as_mut() {
            Some(c) => c.shrink(now.as_ns(), idle_for),
            None => Vec::new(),
        };
        for k in gone {
            super::events::drop_buffer(&mut self.w, k as usize);
        }
        let grows = self.w.links[li]
            .chain
            .as_ref()
            .is_some_and(|c| c.plan(now.as_ns()) == Acquire::Grow);
        if grows {
            // An allocation may evict (TTM): no job's bytes are moving then (super::inflight).
            self.collect_running();
            if let Err(e) = self.w.alloc_buffer(li) {
                self.errors.push(e);
            }
        }
    }
}
