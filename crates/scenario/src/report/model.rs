//! The report of a run: the data behind `report.json` and the text summary.
//!
//! # Schema (`report.json`, `schema_version` 1)
//! Top-level keys, in this order:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `schema_version` | int | 1 |
//! | `scenario` | string | the scenario's name |
//! | `description` | string | the scenario's `description` (absent when empty) |
//! | `seed` | int | the seed the run used |
//! | `frames` | {`produced`, `delivered`, `dropped`, `corrupted`, `merged`} | frame counts; `merged` (absent when zero): frames a composite folded into another frame's output, also in the composite's `nodes[].dropped.merged` |
//! | `latency_us` | {`p50`, `p99`, `max`, `per_frame` [{`frame`, `us`}], `per_frame_every`, `per_source` [{`source`, `p50`, `p99`, `max`, `per_frame`, `per_frame_every`}]} | (`per_source`: the same for each camera's frames alone, by camera name, when the run has several cameras; absent with one) | source-to-sink latency of delivered frames, virtual microseconds: nearest-rank percentiles, exact up to 4096 delivered frames, beyond from a log-linear histogram (at most 2^-10 below the exact value, never above; `max` always exact: [`super::LatencySummary`]); `per_frame` every delivered frame up to 4096, beyond every `per_frame_every`-th delivered frame (a power of two; absent while 1), at most 4096 entries ([`super::FrameSample`]) |
//! | `duration_us` | float | virtual time of the whole run |
//! | `buffers` | [{`name`, `link`, `size`, `placement`, `migrations`, `reason`}] | every buffer, by name; `placement` is null if never allocated, else {`exporter`, `heap`, `banks` (per plane), `contiguous`, `segments`}; `reason` (absent if never allocated) is {`decisions` [{`when` (`allocation`, `migration`), `frame`, `cause`, `devices`, `constraints` [{`constraint`, `value`, `by`}], `groups` [{`planes`, `bytes`, `chosen`, `contiguous`, `ranges` [[start, len]], `range_count`, `refused`, `untried`, `excluded`}]}]}, the exporter's own record of each placement ([`super::reason`]) |
//! | `migrations` | [{`buffer`, `frame`, `from`, `to`, `bytes`, `stall_us`, `cause`, `engine`, `cost`, `cost_us`, `delayed` [{`node`, `source`, `frame`, `would_start_us`, `started_us`, `delay_us`}], `frames_cost` [{`source`, `frame`, `node`, `what`, `cause`, `why`}]}] | every migration, by frame then buffer; `engine` copied it; for a copy on a lane pipeline nodes use, `cost_us` is what it cost them (the sum of `delayed[].delay_us`: each job it delayed, from when it would have started without the copy to when it did; 0 when it fit in idle time), `frames_cost` the frames that made miss their vblank or dropped, `cost` the same in words (absent when nothing was delayed): [`super::cost`] |
//! | `maps` | {`first`, `cached`} | attachment maps that built a mapping / were served from the cache |
//! | `devices` | [{`name`, `bytes_read`, `bytes_written`, `faults`, `jobs`, `busy_us`}] | per device, by name |
//! | `checker` | {`findings` [{`kind`, `message`, `device`, `buffer`, `expected`}]} | sorted by kind then message |
//! | `errors` | [{`errno`, `message`}] | run-time failures (an unsatisfiable constraint set...) |
//! | `vb2_queues` | [{`node`, `link`, `memory`, `type`, `map_policy`, `maps`, `unmaps`, `attaches`, `qbufs`, `streamoffs`, `requeue_cycles`}] | every vb2 queue, by node then link: each consumer's OUTPUT queue importing a link's fds, and each camera's or ISP's CAPTURE queue (DMABUF on a `dmabuf` link, MMAP on a `mmap+expbuf` one: one QBUF per buffer at the start and one per frame its readers released); the DMABUF maps vb2 made (seed 004: `keep_mapped` maps each buffer once, `unmap_on_dequeue` at every QBUF); `memory` is the V4L2 memory type (`dmabuf`, `mmap`, `userptr`) and `type` the queue's direction (`output`, `capture`); absent in reports of older runs |
//! | `gpus` | [{`device`, `p2p`, `evictions`, `evicted_bytes`, `moves`, `moved_bytes`, `move_notifies`}] | every GPU driver the run started, by device: its TTM manager's evictions and moves (bytes copied by the GPU's DMA engine) and the `move_notify` calls its dynamic importers got; absent in reports of older runs |
//! | `fences` | {`contexts`, `created`, `signaled`, `sync_checks`, `sync_files`, `sync_file_waits`} | the DMA jobs' out-fences: fence contexts (one per device engine), fences created and signaled (stamped with the job's end on the virtual clock), and implicit-sync checks (a job's buffer whose earlier fences had to be signaled at its start); absent in reports of older runs |
//! | `encoders` | [{`node`, `codec`, `frames`, `bitstream_bytes`, `bitstream_checksum`}] | every encoder node: frames it encoded and, for `codec = "rle"`, the bitstream it wrote by DMA into its own buffer (bytes, and its per-frame checksums folded in frame order); absent in reports of older runs |
//! | `displays` | [{`node`, `device`, `framebuffers`, `removed`, `flips`, `shown`}] | every display node driven through KMS: framebuffers created (`ADDFB2`, once per buffer) and removed (`RMFB`), page flips committed and frames latched; absent in reports of older runs |
//! | `swapchains` | [{`link`, `mode`, `allocated_by`, `buffers`, `min`, `max`, `grown`, `shrunk`, `max_in_flight`, `max_seen`, `waits`}] | every gpu->display link whose ends name `swapchain` or `max_in_flight`: the mode (`dri2`: the display's process allocates the buffers and passes them to the GPU's; `wayland`: the GPU's process does), how the chain grew (a buffer allocated when the GPU found none free, up to `buffers`) and shrank (a free buffer idle for four display frames freed, down to `min`), the bound, the most buffers in flight at once, and how often the GPU's next job was held back by the bound; absent in reports of older runs |
//! | `nodes` | [{`name`, `fence_wait_us`, `produced`, `consumed`, `delivered`, `dropped` {cause: count}, `corrupted`, `failed_jobs` {errno: count}, `unexplained` {`count`, `first_frame`}, `latency_us` {`p50`, `p99`, `max`} or null, `reference_buffers`, `reference_bytes`}] | every node in scenario order: frames it wrote, jobs that read frames, frames verified at it (a sink), frames lost at it per cause (a source's `detached`, `killed`, `stream_off`, `queue_full`; after capture `stream_off`, `detached`, `killed`, `late`, `merged`, `job_failed`: see docs/scenario.md), jobs that read wrong bytes or failed, its failed jobs per errno (absent if none), frames that never reached it, a sink, with no cause (absent if none: the run is then not verified), a sink's latency (as `latency_us`); and the virtual time its jobs waited on fences (a consumer of a `sync = "explicit"` link from a GPU gets each frame when the GPU's job is submitted, with a sync_file of its out-fence, and its job waits for that fence); absent in reports of older runs |
//! | `corrupted_frames` | [{`source`, `frame`}] | the frames a sink (or the thumbnailer) received wrong, by source then frame: the first 1024 in that order (`frames.corrupted` counts them all); absent in reports of older runs |
//! | `faults` | [{`node`, `fault`, `at_frame`, `frames`}] | every `action = "fault"` event: the node, the fault, the frame it was armed at and the frames of the jobs it touched; absent in reports of older runs |
//! | `counters` | {`every_frames`, `frames` (integers), `t_us` (floats), `series` [{`name`, `unit`, `values` (floats)}]} | counters sampled every `every_frames` frames of the first source (`ceil(frames / 128)`: at most 128 samples, plus one at the end of the run): `bank NAME used` and `cma NAME used` (bytes: the page allocator's used pages of each system bank, and of its CMA regions), `process NAME dma-buf rss`/`pss` (bytes, as `kernel::accounting` computes them), `queue NODE <- LINK` (frames ready for the node, not yet taken), `iommu DEVICE mapped` (bytes mapped in the device's IOMMU domain), `device NAME bandwidth` (bytes/s its DMA engine moved since the previous sample), `cma region NAME used` (bytes `cma_alloc` handed out of the region), `bank NAME bandwidth` (bytes/s every engine moved in the bank since the previous sample), `iommu DEVICE maps`/`unmaps` (calls since boot), `cache DEVICE clean ops`/`cleaned`/`invalidate ops`/`invalidated` (ops, bytes: the DMA layer's CPU cache maintenance for a non-coherent device since boot), `group NAME heap`/`vram` (bytes charged to a `[[groups]]` entry now); every `values` is aligned with `frames`; the same samples are the trace's counter tracks; absent in reports of older runs |
//! | `groups` | [{`name`, `processes`, `heap_current`, `heap_max`, `heap_peak`, `heap_failcnt`, `vram` [{`device`, `region`, `current`, `max`, `peak`, `evictions`, `failures`}]}] | the scenario's `[[groups]]`: dma-heap bytes charged to the group's processes (`memory.current` at the end, `memory.max`, `memory.peak`, and how many charges the limit refused) and, per GPU, the VRAM its processes' GPU buffers took (`dmem.current`, `dmem.max`, the peak, the group's own buffers evicted at its limit, and charges refused with none left to evict); absent when the scenario has no groups |
//! | `deterministic` | bool | `true` for the deterministic reference run; `false` with `--engine-threads` (every device engine on its own OS thread: still verified, timings may differ); absent (read as `true`) in reports of older runs |
//!
//! # Stability
//! Every list is sorted on a key that does not depend on thread timing or hash order
//! ([`Report::normalize`], applied by [`Report::to_json`]), floats are printed by `serde_json`'s
//! shortest round-trip formatting, and fields keep their declaration order: the same run gives
//! byte-identical JSON.

use super::drivers::{DisplayReport, EncoderReport, GpuReport, SwapchainReport, Vb2QueueReport};
use super::stats::LatencyStats;
use crate::clock::VirtualTime;
use crate::error::ExitCode;
use crate::schema::Expect;
use serde::{Deserialize, Serialize};

/// The version of the JSON schema in the module doc.
pub const SCHEMA_VERSION: u32 = 1;

/// Frame counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameCounts {
    /// Frames the sources produced.
    pub produced: u64,
    /// Frames that reached every sink intact.
    pub delivered: u64,
    /// Frames skipped (a queue ran dry, a consumer was detached, a process died).
    pub dropped: u64,
    /// Frames a sink received with a wrong checksum.
    pub corrupted: u64,
    /// Frames a composite folded into another frame's output (more inputs than outputs): not
    /// drops. Absent when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub merged: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The latency of one delivered frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameLatency {
    /// The frame number.
    pub frame: u64,
    /// Source start to last sink done, virtual microseconds.
    pub us: f64,
}

/// Latency summary, virtual microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Delivered frames, by frame number: all of them, or every `per_frame_every`-th when
    /// there are more than [`super::FRAME_SAMPLE_CAP`].
    pub per_frame: Vec<FrameLatency>,
    /// The sampling stride of `per_frame` (1: every delivered frame; absent then).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub per_frame_every: u64,
    /// The same per source node, by name, when the run has several cameras
    /// ([`super::latency::SourceLatency`]); absent with one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_source: Vec<super::latency::SourceLatency>,
}

fn one() -> u64 {
    1
}

fn is_one(v: &u64) -> bool {
    *v == 1
}

impl LatencyReport {
    /// The report of a run's bounded latency summary and per-frame sample.
    pub fn from_summary(
        summary: &super::LatencySummary,
        sample: &super::FrameSample,
    ) -> LatencyReport {
        let st = summary.stats();
        let mut per_frame: Vec<FrameLatency> = sample
            .entries()
            .iter()
            .map(|&(frame, ns)| FrameLatency {
                frame,
                us: VirtualTime::from_ns(ns).as_us_f64(),
            })
            .collect();
        per_frame.sort_by_key(|f| f.frame);
        LatencyReport {
            p50: st.p50.as_us_f64(),
            p99: st.p99.as_us_f64(),
            max: st.max.as_us_f64(),
            per_frame,
            per_frame_every: sample.every(),
            per_source: Vec::new(),
        }
    }

    /// The report of `(frame, latency)` samples (any order).
    pub fn from_samples(samples: &[(u64, VirtualTime)]) -> LatencyReport {
        let times: Vec<VirtualTime> = samples.iter().map(|&(_, t)| t).collect();
        let st = LatencyStats::of(&times);
        let mut per_frame: Vec<FrameLatency> = samples
            .iter()
            .map(|&(frame, t)| FrameLatency {
                frame,
                us: t.as_us_f64(),
            })
            .collect();
        per_frame.sort_by_key(|f| f.frame);
        LatencyReport {
            p50: st.p50.as_us_f64(),
            p99: st.p99.as_us_f64(),
            max: st.max.as_us_f64(),
            per_frame,
            per_frame_every: 1,
            per_source: Vec::new(),
        }
    }
}

/// Where a buffer's storage is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The exporter (`"constraint"`, `"heap:cma"`, `"vb2"`, ...).
    pub exporter: String,
    /// The heap or allocator that provided the storage (`"cma0"`, `"system"`, `"vram0"`).
    pub heap: String,
    /// The bank of each plane.
    pub banks: Vec<String>,
    /// Whether the storage is physically contiguous.
    pub contiguous: bool,
    /// Scatter-gather segments of the storage.
    pub segments: u32,
}

/// One buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferReport {
    /// Its name (`"camera->isp[0]"`).
    pub name: String,
    /// The link it belongs to.
    pub link: String,
    /// Bytes.
    pub size: u64,
    /// Where it ended the run (`None`: never allocated).
    pub placement: Option<Placement>,
    /// How many times it migrated.
    pub migrations: u32,
    /// Why it is where it is: every placement decision, oldest first ([`super::reason`]);
    /// absent in reports of older runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<super::reason::BufferReason>,
}

/// One migration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MigrationReport {
    /// The buffer.
    pub buffer: String,
    /// The frame during which it happened.
    pub frame: u64,
    /// Where it was (`"dram1 (system, 12 segments)"`).
    pub from: String,
    /// Where it went.
    pub to: String,
    /// Bytes copied.
    pub bytes: u64,
    /// How long access to the buffer was stalled, virtual microseconds.
    pub stall_us: f64,
    /// Why (`"encoder0 attached: needs contiguous memory below 4 GiB"`).
    pub cause: String,
    /// The engine whose lane the copy was charged to (a device, or `"cpu"`).
    #[serde(default)]
    pub engine: String,
    /// What the copy cost the nodes of that engine, in words: the jobs it delayed and by how
    /// much, and the frames that made late or dropped (module `run::migcost`). `None`: it
    /// delayed nothing (it fit in idle time, or the CPU or a device no node uses copied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
    /// The total delay of [`delayed`](Self::delayed), virtual µs, for a copy on a lane
    /// pipeline nodes use (`Some(0.0)`: it fit in idle time); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_us: Option<f64>,
    /// Each job the copy delayed on its engine's lane (at most
    /// [`COST_ENTRIES`](crate::report::cost::COST_ENTRIES)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delayed: Vec<super::cost::DelayedJob>,
    /// The frames that delay made miss their vblank or dropped (at most
    /// [`COST_ENTRIES`](crate::report::cost::COST_ENTRIES)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames_cost: Vec<super::cost::FrameCost>,
}

/// Mapping-cache counts (seed 003's "a GPU never pays for a re-map").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapCounts {
    /// Maps that built a new mapping.
    pub first: u64,
    /// Maps served from the attachment's cache.
    pub cached: u64,
}

/// One device's traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// The device.
    pub name: String,
    /// Bytes its DMA engine read.
    pub bytes_read: u64,
    /// Bytes its DMA engine wrote.
    pub bytes_written: u64,
    /// IOMMU faults and out-of-mask accesses.
    pub faults: u64,
    /// DMA jobs run.
    pub jobs: u64,
    /// Virtual time its engine was busy, microseconds.
    pub busy_us: f64,
}

/// One checker finding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The kind (`"missing-cache-sync"`, `"map-leak"`...).
    pub kind: String,
    /// What was found.
    pub message: String,
    /// The device involved, if any.
    pub device: Option<String>,
    /// The buffer involved, if any.
    pub buffer: Option<String>,
    /// Whether the scenario declared this kind expected (`[expect] findings`).
    pub expected: bool,
}

/// The checker's findings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckerReport {
    /// Every finding.
    pub findings: Vec<Finding>,
}

/// A run-time failure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// The errno name (`"ENOMEM"`), or empty if none applies.
    pub errno: String,
    /// The explaining message.
    pub message: String,
}

/// One node of the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The node's name.
    pub name: String,
    /// Virtual time its jobs were queued waiting on fences before they could start (µs): on a
    /// `sync = "explicit"` link from a GPU, the frame is handed over when the GPU's job is
    /// submitted and the consumer's job waits on the job's out-fence (its acquire fence).
    pub fence_wait_us: f64,
    /// Frames it wrote (its jobs with outputs that ran).
    #[serde(default)]
    pub produced: u64,
    /// Jobs of it that read frames.
    #[serde(default)]
    pub consumed: u64,
    /// Frames that verified at it, a sink.
    #[serde(default)]
    pub delivered: u64,
    /// Frames lost at it, per cause: a source's uncaptured frames (`detached`, `killed`,
    /// `stream_off`, `queue_full`, `job_failed`), and frames lost after capture (`stream_off`,
    /// `detached`, `killed`, `late`, `merged`, `job_failed`).
    #[serde(default)]
    pub dropped: std::collections::BTreeMap<String, u64>,
    /// Its jobs that read wrong bytes or failed.
    #[serde(default)]
    pub corrupted: u64,
    /// Its failed jobs, per errno name (absent if none).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub failed_jobs: std::collections::BTreeMap<String, u64>,
    /// Frames that never reached it (a sink) with no cause (absent if none; the run is then
    /// not verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unexplained: Option<Unexplained>,
    /// Source-to-here latency of the frames delivered at it, a sink (virtual µs).
    #[serde(default)]
    pub latency_us: Option<NodeLatency>,
    /// A decoder's reference frames: buffers its driver allocated for its device and held for
    /// the whole run (absent when none).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub reference_buffers: u32,
    /// Their bytes (absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reference_bytes: u64,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// Frames lost with no cause on their way to a sink.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unexplained {
    /// How many.
    pub count: u64,
    /// The lowest frame number among them.
    pub first_frame: u64,
}

/// A sink's latency summary (virtual microseconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLatency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The DMA jobs' fences.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceCounts {
    /// Fence contexts allocated (one per device engine that ran a job).
    pub contexts: u64,
    /// Out-fences created (one per job).
    pub created: u64,
    /// Fences signaled (at their job's end, on the virtual clock).
    pub signaled: u64,
    /// Implicit-sync checks: `(job, buffer)` pairs whose fences the job had to wait for (a
    /// reader: WRITE fences; a writer: READ fences), each found signaled at the job's start.
    pub sync_checks: u64,
    /// Explicit sync (`sync = "explicit"` links): sync_file fds made from a producer's job
    /// fence, one per buffer handed to a consumer's process.
    #[serde(default)]
    pub sync_files: u64,
    /// Explicit sync: sync_file fences consumers' jobs waited on before they started.
    #[serde(default)]
    pub sync_file_waits: u64,
}

/// The report of one run (schema in the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The scenario's name.
    pub scenario: String,
    /// The scenario's one-line description (absent from the JSON when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The seed.
    pub seed: u64,
    /// Frame counts.
    pub frames: FrameCounts,
    /// Latency.
    pub latency_us: LatencyReport,
    /// Virtual time of the run, microseconds.
    pub duration_us: f64,
    /// Buffers.
    pub buffers: Vec<BufferReport>,
    /// Migrations.
    pub migrations: Vec<MigrationReport>,
    /// Mapping-cache counts.
    pub maps: MapCounts,
    /// Devices.
    pub devices: Vec<DeviceReport>,
    /// Checker findings.
    pub checker: CheckerReport,
    /// Run-time failures.
    pub errors: Vec<RunError>,
    /// The consumers' vb2 queues.
    #[serde(default)]
    pub vb2_queues: Vec<Vb2QueueReport>,
    /// The GPU drivers' memory managers.
    #[serde(default)]
    pub gpus: Vec<GpuReport>,
    /// The DMA jobs' fences.
    #[serde(default)]
    pub fences: FenceCounts,
    /// The encoder nodes.
    #[serde(default)]
    pub encoders: Vec<EncoderReport>,
    /// The gpu->display swapchains.
    #[serde(default)]
    pub swapchains: Vec<SwapchainReport>,
    /// The displays driven through KMS, by node.
    #[serde(default)]
    pub displays: Vec<DisplayReport>,
    /// Every node, in scenario order.
    #[serde(default)]
    pub nodes: Vec<NodeReport>,
    /// Whether the run is the deterministic reference (false with `--engine-threads`, where every
    /// device engine moves its bytes on its own OS thread: still verified, timings may differ).
    #[serde(default = "deterministic_default")]
    pub deterministic: bool,
    /// The frames a sink (or the thumbnailer) got wrong, by source then frame.
    #[serde(default)]
    pub corrupted_frames: Vec<CorruptedFrame>,
    /// The fault events and the jobs they touched, in event order.
    #[serde(default)]
    pub faults: Vec<FaultReport>,
    /// Counters sampled over the run ([`super::counters`]); absent in reports of older runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<super::counters::CountersReport>,
    /// The `[[groups]]` of processes and their heap and VRAM accounting
    /// ([`super::limits`]); absent when the scenario has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<super::limits::GroupReport>,
}

/// One corrupted frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptedFrame {
    /// The source node that produced it.
    pub source: String,
    /// Its frame number.
    pub frame: u64,
}

/// What one `action = "fault"` event did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultReport {
    /// The node whose driver committed it.
    pub node: String,
    /// The fault (`skip_fence_wait`...).
    pub fault: String,
    /// The first source's frame when it was armed.
    pub at_frame: u64,
    /// The frames of the jobs it touched (as many as `for_frames`, fewer if the node ran fewer
    /// jobs).
    pub frames: Vec<u64>,
}

fn deterministic_default() -> bool {
    true
}

impl Report {
    /// An empty report for a scenario and seed.
    pub fn new(scenario: &str, seed: u64) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            scenario: scenario.to_string(),
            description: String::new(),
            seed,
            frames: FrameCounts::default(),
            latency_us: LatencyReport::default(),
            duration_us: 0.0,
            buffers: Vec::new(),
            migrations: Vec::new(),
            maps: MapCounts::default(),
            devices: Vec::new(),
            checker: CheckerReport::default(),
            errors: Vec::new(),
            vb2_queues: Vec::new(),
            gpus: Vec::new(),
            encoders: Vec::new(),
            swapchains: Vec::new(),
            displays: Vec::new(),
            nodes: Vec::new(),
            fences: FenceCounts::default(),
            deterministic: true,
            corrupted_frames: Vec::new(),
            faults: Vec::new(),
            counters: None,
            groups: Vec::new(),
        }
    }

    /// Sorts every list on its stable key (see the module doc).
    pub fn normalize(&mut self) {
        self.buffers.sort_by(|a, b| a.name.cmp(&b.name));
        self.devices.sort_by(|a, b| a.name.cmp(&b.name));
        self.gpus.sort_by(|a, b| a.device.cmp(&b.device));
        self.encoders.sort_by(|a, b| a.node.cmp(&b.node));
        self.swapchains.sort_by(|a, b| a.link.cmp(&b.link));
        self.migrations.sort_by(|a, b| {
            (a.frame, &a.buffer, &a.from, &a.to).cmp(&(b.frame, &b.buffer, &b.from, &b.to))
        });
        self.checker.findings.sort_by(|a, b| {
            (&a.kind, &a.message, &a.device, &a.buffer)
                .cmp(&(&b.kind, &b.message, &b.device, &b.buffer))
        });
        self.latency_us.per_frame.sort_by_key(|f| f.frame);
        self.corrupted_frames
            .sort_by(|a, b| (&a.source, a.frame).cmp(&(&b.source, b.frame)));
        self.vb2_queues
            .sort_by(|a, b| (&a.node, &a.link).cmp(&(&b.node, &b.link)));
        self.errors
            .sort_by(|a, b| (&a.errno, &a.message).cmp(&(&b.errno, &b.message)));
    }

    /// Marks the findings whose kind `expect` declares.
    pub fn apply_expect(&mut self, expect: &Expect) {
        for f in &mut self.checker.findings {
            f.expected = expect.findings.iter().any(|k| k == &f.kind);
        }
        // A fault scenario whose fault corrupted nothing is not what it says.
        if expect.corrupted == crate::schema::CorruptedExpect::Some && self.frames.corrupted == 0 {
            self.errors.push(RunError {
                errno: "EIO".into(),
                message: "[expect] corrupted = \"some\", but every frame verified: the injected \
                          fault corrupted nothing"
                    .into(),
            });
        }
        for kind in &expect.findings {
            if expect.corrupted == crate::schema::CorruptedExpect::Some
                && !self.checker.findings.iter().any(|f| &f.kind == kind)
            {
                self.errors.push(RunError {
                    errno: "EIO".into(),
                    message: format!(
                        "[expect] findings names `{kind}`, but the checker reported none: the \
                         injected fault went undetected"
                    ),
                });
            }
        }
    }

    /// The exit code: [`ExitCode::Failed`] on corruption, an unexpected finding, a run-time
    /// error (a frame lost without a cause is one) or an injected fault (a driver told to break
    /// a rule: whether or not the bytes came out right, the run verified nothing), else
    /// [`ExitCode::Verified`].
    pub fn exit_code(&self) -> ExitCode {
        let unexpected = self.checker.findings.iter().any(|f| !f.expected);
        if self.frames.corrupted > 0
            || unexpected
            || !self.errors.is_empty()
            || !self.faults.is_empty()
        {
            ExitCode::Failed
        } else {
            ExitCode::Verified
        }
    }

    /// The report as pretty JSON with a final newline, normalized: byte-identical for the same
    /// run.
    pub fn to_json(&self) -> String {
        let mut r = self.clone();
        r.normalize();
        // Serializing plain structs of strings, integers and finite floats cannot fail.
        let mut s = serde_json::to_string_pretty(&r).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Reads a report back from JSON.
    pub fn from_json(text: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(text)
    }
}
