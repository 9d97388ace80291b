//! The runner: a validated [`Scenario`] in, a [`Report`], a [`Trace`] and a thumbnail out.
//!
//! # The concept
//! The runner boots the scenario's machine ([`kernel::Kernel::boot`]), gives every scenario
//! process a simulated process with an fd table, and builds each link's buffers with the
//! exporter it names: the constraint exporter (deferred placement, migration), a dma-heap, the
//! GPU's evicting exporter, a udmabuf of the producer's memfd (`exporter = "udmabuf"`, and
//! `memory = "userptr"`), or the producer's vb2 CAPTURE queue's MMAP buffers exported with
//! `VIDIOC_EXPBUF` (`memory = "mmap+expbuf"`). The producer's process
//! holds the fd; consumers get it over a socket (`send_fd`) and attach their devices. Then it
//! runs a discrete-event loop on a virtual clock:
//!
//! - a camera's frame clock ticks every `1/fps`; a tick with a free buffer starts a capture job,
//!   one without drops the frame at the source;
//! - a job is the node's driver's ([`drivers::job::DeviceJob`] with the driver's
//!   [`Op`](drivers::job::Op): a camera's test pattern, an ISP's transform, a GPU's composite, a
//!   display's scanout, an encoder's codec). The runner plans it: it maps the job's buffers for
//!   the device (`dma_buf_map_attachment`, served from the exporter's mapping cache after the
//!   first time) and places the job on the device's engine for what the driver says it costs
//!   ([`DeviceJob::cost`](drivers::job::DeviceJob::cost): latency plus bytes over bandwidth).
//!   The driver executes it: every byte through the device's DMA engine (IOMMU or physical,
//!   mask-checked, watched by the DMA-API checker), every output stamped, every input's stamp
//!   and checksum verified against what its producer wrote. The runner applies the job's
//!   effects (checksums, verification, bitstream) at the job's completion and unmaps;
//! - a GPU's composite is a ring job of its driver (module `gpu`): its buffers are GEM objects
//!   (self-import or PRIME import), mapped in its process's VM by `Gpu::submit`, implicit sync
//!   and the out-fence are the driver's;
//! - a consumer of a link (any `memory`: they all hand out dma-buf fds; a GPU excepted) reads through a real
//!   vb2 queue (OUTPUT, DMABUF) on its device in its process (module `vb2io`): the runner QBUFs the fd its process holds, the
//!   job reads through the DMA segments vb2 mapped under the node's `map_policy`, and at the
//!   job's end the runner completes the buffer (`buffer_done`) and DQBUFs it; `stream_off`/
//!   `stream_on` events are STREAMOFF/STREAMON on those queues;
//! - a camera or ISP writes a `memory = "dmabuf"` or `"mmap+expbuf"` link through its own
//!   vb2 CAPTURE queue (DMABUF importing the link's fds, or the MMAP queue the buffers came
//!   from): its process QBUFs every empty buffer, the job fills the one the driver holds
//!   through vb2's mapping, at the job's end the buffer is completed and DQBUFed and handed to
//!   the consumers, and once they all released it it is queued again; `queue = "capture"`
//!   events stop and restart that queue. A GPU (not V4L2) and `userptr` producers map their
//!   outputs through their attachments;
//! - a node with several inputs is a composite (module `composite`): paced by its first input,
//!   it composes the newest frame of each input and counts the others it consumed `merged`;
//! - a display takes at most one frame per vblank of its `fps` (a frame waits for the next
//!   vblank on the virtual clock; its latency includes the wait); it is driven through KMS
//!   (module `kms`): a framebuffer per buffer, a page flip per frame, the frame on screen
//!   released only when the next flip latched;
//! - at a job's end its outputs go to the ready queues of the consumers streaming now, and its
//!   inputs go back to their link's free list once every reader is done;
//! - scenario events (attach, detach, pressure, kill, stream off/on, buffer count) apply at
//!   their moment; a late attach the exporter answers with a migration stalls the buffer from
//!   when it goes idle until the copy ends on the virtual clock — the stutter of seed 000.
//!
//! # Where things live
//! `world` (the machine, links, buffers, nodes) and `alloc` (a link's buffers from its
//! exporter, passed by fd); `sched` (the event loop, ticks, job completion) and `start` (a
//! job's birth: buffers, mappings, the driver's plan); `events` (scenario events, migrations);
//! `thumbnail` (the CPU reader); `kms` (a display node's framebuffers and flips); `gpu`,
//! `vb2io`, `ports`, `handoff`, `composite`, `fences`, `faults`, `bandwidth` (one concept
//! each); `outcome` and `verdict` (what became of each frame
//! and node); `collect` (the report); `counters`, `reason`, `layouts`, `expect`, `workers`.
//!
//! # Ordering guarantee
//! 1. Events run in `(virtual time, push order)` ([`crate::clock::EventQueue`]).
//! 2. Scenario events are pushed before any frame tick, so an event `at_frame = N` applies
//!    before frame `N` is captured; events at the same moment apply in file order.
//! 3. Job completions at the same time run in the order the jobs started; after each event
//!    every node that can start does, in node (file) order.
//! 4. Host work never decides virtual time: the same scenario and seed give byte-identical
//!    `report.json`, and the trace and pictures too, **for any `--threads N`**. Jobs execute in
//!    the order the loop starts them, each job's bytes cut into fixed pieces
//!    ([`drivers::job`]) that the host threads take as they come free; the pieces' effects
//!    combine in piece order, and the DMA-API checker's findings raised during a job are
//!    taken out of the checker after it and kept in a fixed order (sorted within the job), so
//!    nothing of the host interleaving reaches an output. With `--engine-threads` the bytes of
//!    each job move on the device's own OS thread, concurrently with later jobs; the virtual
//!    schedule is still the same, but the host interleaving is not, so that mode is a stress
//!    test, not the reference.
//!
//! # Verification
//! A frame is *delivered* when every sink that was streaming when it was captured received it
//! and every checksum on the way matched; *corrupted* if any check failed; *dropped* if it was
//! never captured (no free buffer, or no consumer streaming) or a queue let it go (stream off,
//! a consumer killed).
//! At the end every vb2 queue is closed and its debug counters must balance (else a run
//! error), every buffer is detached and closed, every process exits, and the run checks that
//! no dma-buf, DMA mapping or pressure allocation is left: a leak is a checker finding.
//!
//! ```
//! let s = scenario::load_bundled("process-killed").unwrap().with_frames(12).unwrap();
//! let out = scenario::run::run(&s, &scenario::run::RunOptions::default());
//! assert_eq!(out.report.frames.corrupted, 0);
//! assert!(out.report.frames.delivered > 0);
//! assert_eq!(out.report.exit_code(), scenario::ExitCode::Verified);
//! ```
#![allow(clippy::module_inception)]

mod alloc;
#[cfg(test)]
mod alloc_tests;
mod bandwidth;
mod bitstream_io;
mod collect;
mod composite;
mod counters;
mod encoder_drain;
mod events;
mod expect;
#[cfg(test)]
mod failed_start_tests;
mod faults;
mod fds;
mod fences;
mod gpu;
mod handoff;
mod inflight;
#[cfg(test)]
mod inflight_tests;
mod kms;
#[cfg(test)]
mod kms_tests;
mod layouts;
mod limits;
mod m2m;
mod migcost;
pub(crate) use m2m::image_of;
mod outcome;
mod ports;
mod reason;
mod sched;
mod start;
mod swapchain;
#[cfg(test)]
mod tests;
mod thumbnail;
mod vb2frames;
mod vb2io;
mod verdict;
mod workers;
mod world;

use crate::report::{Report, RunError, Trace};
use crate::schema::DriverKind;
use crate::validate::Scenario;
use sched::{Counts, Sched};
use std::collections::BTreeMap;
use world::World;

pub use inflight::{CollectWaits, HostClock, Why};

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Host threads a job's bytes move on (`--threads N`; `0` is the machine's cores, `1` the
    /// caller alone). Any number gives byte-identical outputs (ordering guarantee 4).
    pub threads: usize,
    /// Every device engine on its own OS thread instead (`--engine-threads`): a stress mode
    /// whose host interleaving differs between runs, so not the deterministic reference.
    pub engine_threads: bool,
    /// Show a progress bar on stderr when it is a terminal and the run takes over a second.
    pub progress: bool,
    /// Stream the trace's events to `DIR/.trace.json.part` as the run goes (bounded host
    /// memory; [`RunOutput::write`] into the same `DIR` turns it into `trace.json`). `None`:
    /// the trace stays in memory ([`Trace::events`]).
    pub trace_dir: Option<std::path::PathBuf>,
    /// A wall clock to time the loop's waits for running jobs with
    /// ([`RunOutput::collect_waits`]); `None`: not timed (the runner reads no wall clock).
    pub host_clock: Option<HostClock>,
}

/// The file a streamed trace's events go to in [`RunOptions::trace_dir`].
pub const TRACE_PART: &str = ".trace.json.part";

/// What a run leaves behind.
#[derive(Debug)]
pub struct RunOutput {
    /// The report (see [`crate::report::model`]).
    pub report: Report,
    /// The trace.
    pub trace: Trace,
    /// The thumbnailer's JPEG, if a thumbnailer took its frame.
    pub thumbnail: Option<Vec<u8>>,
    /// Each `bufinfo` event's snapshot: (frame, `/sys/kernel/debug/dma_buf/bufinfo` text).
    pub bufinfo: Vec<(u64, String)>,
    /// Whether the run was deterministic (not `--engine-threads`).
    pub deterministic: bool,
    /// The wall time the loop waited for running jobs, by why ([`RunOptions::host_clock`];
    /// empty without one). Not in the report: it depends on the host.
    pub collect_waits: CollectWaits,
}

impl RunOutput {
    /// Writes `report.json`, `trace.json`, `timeline.svg`, `latency.svg`, `memory.svg`,
    /// `thumbnail.jpg` if
    /// there is one and `bufinfo-<frame>.txt` per `bufinfo` event into `dir`; returns the paths.
    pub fn write(&self, dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
        let mut paths = crate::report::write_outputs(dir, &self.report, &self.trace)?;
        if let Some(jpeg) = &self.thumbnail {
            let p = dir.join("thumbnail.jpg");
            std::fs::write(&p, jpeg)?;
            paths.push(p);
        }
        for (frame, text) in &self.bufinfo {
            let p = dir.join(format!("bufinfo-{frame}.txt"));
            std::fs::write(&p, text)?;
            paths.push(p);
        }
        Ok(paths)
    }
}

/// Runs a scenario (module doc). Never panics on a valid scenario: what fails at run time is
/// in the report's `errors` and makes [`Report::exit_code`] 1.
pub fn run(s: &Scenario, opts: &RunOptions) -> RunOutput {
    let mut report = Report::new(&s.name, s.seed);
    report.description = s.description.clone();
    report.deterministic = !opts.engine_threads;
    let mut sched = match setup(s, opts) {
        Ok(sched) => sched,
        Err(e) => {
            report.errors.push(RunError {
                errno: e.errno,
                message: e.message,
            });
            return RunOutput {
                report,
                trace: Trace::new(&s.name),
                thumbnail: None,
                bufinfo: Vec::new(),
                deterministic: !opts.engine_threads,
                collect_waits: CollectWaits::default(),
            };
        }
    };
    if let Some(dir) = &opts.trace_dir {
        if let Err(e) = sched.w.trace.stream_to(&dir.join(TRACE_PART)) {
            sched.errors.push(world::RunFailure {
                errno: crate::io_by_name(&e)
                    .split(':')
                    .next()
                    .unwrap_or("EIO")
                    .into(),
                message: format!("streaming the trace into {}: {e}", dir.display()),
            });
        }
    }
    if sched.errors.is_empty() {
        sched.run();
    }
    if let Some(pb) = sched.progress.take() {
        pb.finish_and_clear();
    }
    sched.workers = None;
    collect::collect(sched, report, opts)
}

/// Boots the machine and builds the loop: the links' first buffers, the vb2 queues. An
/// error building them is in the loop's `errors` (and the loop is not run).
fn setup<'a>(s: &'a Scenario, opts: &RunOptions) -> Result<Sched<'a>, world::RunFailure> {
    let mut w = World::new(s)?;
    w.threads = opts.engine_threads;
    let mut errors = Vec::new();
    'links: for li in 0..w.links.len() {
        // A swapchain starts small and grows on demand (seed 000; `drivers::swapchain`'s
        // policy, stepped in module `gpu`).
        let initial = match w.swap_policy(li) {
            Some(p) => p.initial() as u32,
            None => w.links[li].desc.buffers,
        };
        for _ in 0..initial {
            if let Err(e) = w.alloc_buffer(li) {
                errors.push(e);
                break 'links;
            }
        }
    }
    if errors.is_empty() {
        if let Err(e) = w.open_ports() {
            errors.push(e);
        }
    }
    let first_source = w
        .nodes
        .iter()
        .position(|n| n.desc.driver == DriverKind::Camera);
    let period = first_source.map_or_else(crate::clock::Fps::default, |n| w.nodes[n].desc.fps);
    let workers = opts.engine_threads.then(|| {
        let names: Vec<String> = w.nodes.iter().map(|n| n.engine_name.clone()).collect();
        workers::Workers::new(&names)
    });
    let progress = progress_bar(opts, s.frames);
    Ok(Sched {
        w,
        s,
        q: crate::clock::EventQueue::new(),
        period,
        frames: BTreeMap::new(),
        jobs: BTreeMap::new(),
        next_job: 0,
        counts: Counts::default(),
        errors,
        workers,
        holds: Vec::new(),
        migrations: Vec::new(),
        migcost: Default::default(),
        thumbnail: None,
        bufinfo: Vec::new(),
        progress,
        first_source,
        fences: fences::Fences::default(),
        armed: BTreeMap::new(),
        fault_log: Vec::new(),
        thumbnailed: std::collections::BTreeSet::new(),
        wrong_mapped: std::collections::BTreeSet::new(),
        reused: Vec::new(),
        node_stats: BTreeMap::new(),
        outcomes: outcome::Outcomes::default(),
        pool: std::sync::Arc::new(drivers::job::Pool::new(host_threads(opts.threads))),
        findings: Vec::new(),
        waits: inflight::CollectWaits::new(opts.host_clock.clone()),
    })
}

/// The host threads `--threads N` asks for (`0`: the machine's cores).
pub fn host_threads(n: usize) -> usize {
    match n {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

fn progress_bar(opts: &RunOptions, frames: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !opts.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(frames),
        indicatif::ProgressDrawTarget::stderr(),
    );
    // Shown only once the run has lasted a second: short runs stay quiet.
    pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    let style = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} frames ({eta})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    pb.set_style(style);
    let shown = pb.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(1));
        if !shown.is_finished() {
            shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    });
    Some(pb)
}
