//! Each simulated process's open dma-buf fds over time: a counter track
//! `process NAME dma-buf fds (fds)` of the process's own Perfetto process in the trace.
//!
//! # The concept
//! An fd is how a process holds a dma-buf (`ls -l /proc/PID/fd` shows `/dmabuf:` for each):
//! the producer's process gets one per buffer at allocation (`DMA_HEAP_IOCTL_ALLOC`, an
//! exporter's `dma_buf_fd`), each consumer's one more when the fd is passed (`SCM_RIGHTS`,
//! [`kernel::Process::send_fd`]), and they close when the buffer goes (`set_buffers`, a
//! swapchain shrinking), when the process is killed (`exit` closes every fd) and at the end of
//! the run. Only dma-buf fds count: a sync_file, a heap's or a V4L2 device's fd does not.
//!
//! The count is read from each process's fd table after every event of the run's loop
//! ([`World::note_fds`]) and recorded only when it changed, at the virtual time of that event:
//! the track steps exactly where the fds opened or closed (a kill drops it to 0 at the kill),
//! not at the next sample of the sampled counters ([`super::counters`]). Changes are rare
//! (fds follow buffers, not frames), so the samples stay few however long the run.
//!
//! A counter rather than a slice per fd: a process's fds overlap in time without nesting, so
//! slices would need a thread each (dozens of one-slice threads); the counter is one track that
//! Perfetto draws as a step line under the process, next to its dma-buf RSS and PSS.
//!
//! # Lifetime and locking
//! The last counts live in the sampler for the run; a read takes one process's table lock at a
//! time (through [`kernel::Process::fds`] and [`kernel::Process::file`]), never two.

use super::world::World;
use crate::clock::VirtualTime;
use std::collections::BTreeMap;

/// The counter's name for process `process` (in the trace, with its unit: `"... (fds)"`).
pub(crate) fn series_name(process: &str) -> String {
    format!("process {process} dma-buf fds")
}

/// The last count recorded per process (module doc).
#[derive(Debug, Default)]
pub(crate) struct OpenFds {
    last: BTreeMap<u32, u64>,
}

/// The dma-buf fds open in `p` now (0 once it exited).
fn dma_buf_fds(p: &kernel::Process) -> u64 {
    p.fds()
        .into_iter()
        .filter(|&fd| p.file(fd).is_ok_and(|f| f.as_dma_buf().is_some()))
        .count() as u64
}

impl World {
    /// Records each process's open dma-buf fds at `now` where they changed since the last
    /// call (module doc).
    pub(crate) fn note_fds(&mut self, now: VirtualTime) {
        let World {
            nodes,
            sampler,
            trace,
            ..
        } = self;
        for n in nodes.iter() {
            let pid = n.process.pid();
            let count = dma_buf_fds(&n.process);
            if sampler.fds.last.get(&pid) == Some(&count) {
                continue;
            }
            sampler.fds.last.insert(pid, count);
            let name = n.desc.process_name();
            let series = format!("{} (fds)", series_name(name));
            trace.counter_in(&format!("process {name}"), &series, now, count as f64);
        }
    }
}
