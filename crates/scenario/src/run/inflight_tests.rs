//! Jobs at once (module `inflight`): two devices' jobs out together, a conflicting job
//! collecting a running one first, a GPU composite on the pool with its ring fence signalled
//! when it is retired, a reader of a running GPU job's output, and counter samples that do not
//! depend on how far the host got with a running job.

use super::sched::Sched;
use super::world::BufState;
use super::{setup, RunOptions};
use crate::clock::VirtualTime;

/// A camera, an ISP and a display, three buffers a link: while the ISP processes frame 0
/// the camera captures frame 1, into another buffer (600 frames: the counters are sampled
/// every 5th frame, not at frame 1).
const PIPE: &str = r#"name = "pipe"
frames = 600

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 256
height = 128

[[nodes]]
name = "isp"
driver = "isp"
device = "isp0"
width = 256
height = 128

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
width = 256
height = 128

[[links]]
from = "cam"
to = "isp"
buffers = 3

[[links]]
from = "isp"
to = "screen"
buffers = 3
"#;

fn running(s: &Sched<'_>) -> Vec<u64> {
    let r = s.jobs.iter().filter(|(_, j)| j.result.is_running());
    r.map(|(&id, _)| id).collect()
}

/// The loop with the ISP's job on frame 0 (id 1) and the camera's on frame 1 (id 2) out.
fn two_out(s: &crate::Scenario) -> Sched<'_> {
    let opts = RunOptions {
        threads: 2,
        ..RunOptions::default()
    };
    let mut sched = setup(s, &opts).expect("boots");
    sched.tick(0, VirtualTime::ZERO);
    assert_eq!(running(&sched), [0], "the capture is out on the pool");
    let end = sched.jobs[&0].end;
    sched.done(0, end);
    assert!(
        sched.start_job(1, end, Some((0, 0))),
        "the ISP takes frame 0"
    );
    sched.tick(0, end);
    assert!(sched.errors.is_empty(), "{:?}", sched.errors);
    sched
}

#[test]
fn the_camera_captures_while_the_isp_processes_and_both_frames_verify() {
    let s = crate::validate(PIPE, "pipe.toml").expect("valid");
    let mut sched = two_out(&s);
    assert_eq!(running(&sched), [1, 2], "two jobs out at once");
    for id in [1, 2] {
        let end = sched.jobs[&id].end;
        sched.done(id, end);
    }
    assert!(running(&sched).is_empty());
    assert!(sched.errors.is_empty(), "{:?}", sched.errors);
    // The ISP verified frame 0 as the camera wrote it.
    let f0 = sched.frames.get(&(0, 0)).expect("frame 0 in flight");
    assert!(!f0.corrupted);
    assert!(sched.findings.is_empty(), "{:?}", sched.findings);
}

#[test]
fn a_job_sharing_a_buffer_with_a_running_one_collects_it_first_and_no_other() {
    let s = crate::validate(PIPE, "pipe.toml").expect("valid");
    let mut sched = two_out(&s);
    let written = sched.jobs[&2].outputs.clone();
    // The display: another device, no buffer in common: both stay out.
    sched.make_room(2, true, &[], &[]);
    assert_eq!(running(&sched), [1, 2]);
    // Reading the buffer the camera is writing: the camera's job is collected first, the
    // ISP's goes on.
    sched.make_room(2, true, &written, &[]);
    assert_eq!(running(&sched), [1]);
    assert!(sched.jobs[&2].result.is_settled(), "its mappings went back");
    // On the ISP's device: the ISP's job is collected.
    sched.make_room(1, true, &[], &[]);
    assert!(running(&sched).iter().all(|&id| sched.jobs[&id].node != 1));
    // A job that runs alone collects every running one.
    sched.make_room(2, false, &[], &[]);
    assert!(running(&sched).is_empty());
}

/// A camera, a GPU compositing its frames and a display scanning them out (buffers of the
/// default exporter: a reader of the GPU's output conflicts with its job by the buffer alone).
const GPU_PIPE: &str = r#"name = "gpu-pipe"
frames = 4

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 64
height = 64

[[nodes]]
name = "gpu"
driver = "gpu"
device = "gpu0"
format = "XRGB8888"
width = 64
height = 64

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
format = "XRGB8888"
width = 64
height = 64

[[links]]
from = "cam"
to = "gpu"
buffers = 2

[[links]]
from = "gpu"
to = "screen"
buffers = 2
"#;

/// The loop on `threads` host threads with the GPU's composite of frame 0 (job 1) started.
fn gpu_started(s: &crate::Scenario, threads: usize) -> Sched<'_> {
    let opts = RunOptions {
        threads,
        ..RunOptions::default()
    };
    let mut sched = setup(s, &opts).expect("boots");
    assert!(sched.errors.is_empty(), "{:?}", sched.errors);
    sched.tick(0, VirtualTime::ZERO);
    let end = sched.jobs[&0].end;
    sched.done(0, end);
    assert!(
        sched.start_job(1, end, Some((0, 0))),
        "the GPU takes frame 0"
    );
    assert!(sched.errors.is_empty(), "{:?}", sched.errors);
    sched
}

#[test]
fn a_gpu_composite_moves_its_bytes_on_the_pool_and_its_ring_fence_signals_when_retired() {
    let s = crate::validate(GPU_PIPE, "gpu-pipe.toml").expect("valid");
    for threads in [1, 2] {
        let mut sched = gpu_started(&s, threads);
        assert_eq!(running(&sched), [1], "the GPU's job is out on the pool");
        let fence = sched.jobs[&1]
            .fence
            .as_ref()
            .expect("its ring fence")
            .fence
            .clone();
        assert!(
            !fence.is_signaled(),
            "signalled only when the job is retired"
        );
        let end = sched.jobs[&1].end;
        sched.done(1, end);
        assert!(fence.is_signaled());
        assert!(fence.error().is_none());
        assert_eq!(
            fence.timestamp_ns(),
            Some(::clock::BOOT_NS + end.as_ns()),
            "stamped with the job's end on the machine's clock"
        );
        assert!(sched.errors.is_empty(), "{:?}", sched.errors);
        let f0 = sched
            .frames
            .get(&(0, 0))
            .expect("frame 0 on its way to the display");
        assert!(!f0.corrupted, "the GPU verified the camera's frame");
        assert!(sched.findings.is_empty(), "{:?}", sched.findings);
    }
}

#[test]
fn a_reader_of_a_running_gpu_jobs_output_collects_it_first_and_verifies() {
    let s = crate::validate(GPU_PIPE, "gpu-pipe.toml").expect("valid");
    // What the GPU writes into its output for frame 0 (the same run, to its end).
    let mut reference = gpu_started(&s, 1);
    let (li, bi) = reference.jobs[&1].outputs[0];
    let end = reference.jobs[&1].end;
    reference.done(1, end);
    let sum = match &reference.w.buf(bi).state {
        BufState::Ready { meta, .. } => meta.checksum,
        other => panic!("the GPU's output is not ready: {other:?}"),
    };
    // One host thread: a running job's bytes move only when it is collected, so a reader
    // collected before the GPU's job would read the buffer as it was before it.
    let mut sched = gpu_started(&s, 1);
    assert_eq!(sched.jobs[&1].outputs[0], (li, bi));
    let fence = sched.jobs[&1].fence.as_ref().map(|f| f.fence.clone());
    // The frame goes to the display before the GPU's job is over (as an early hand-over).
    sched.hand_over(1, Some((0, 0)), li, bi, sum, fence.as_ref());
    if let Some(j) = sched.jobs.get_mut(&1) {
        j.handed.push(bi);
    }
    assert_eq!(running(&sched), [1]);
    assert!(
        sched.start_job(2, end, Some((0, 0))),
        "the display takes it: {:?}",
        sched.errors
    );
    assert!(
        !running(&sched).contains(&1),
        "the GPU's job is collected before its reader maps the buffer"
    );
    assert!(fence.as_ref().is_some_and(|f| f.is_signaled()));
    // The display's job is collected first, then the GPU's completion event comes.
    let display_end = sched.jobs[&2].end;
    sched.done(2, display_end);
    sched.done(1, end);
    assert!(sched.errors.is_empty(), "{:?}", sched.errors);
    assert_eq!(
        sched.outcomes.corrupted, 0,
        "the display read the GPU's frame 0"
    );
    assert_eq!(sched.outcomes.delivered, 1);
}

/// The `device NAME bandwidth` series of the samples taken so far.
fn bandwidth(sched: &mut Sched<'_>, device: &str) -> Vec<f64> {
    let sampler = std::mem::take(&mut sched.w.sampler);
    let name = format!("device {device} bandwidth");
    let r = sampler.finish();
    let series = r.series.into_iter().find(|c| c.name == name);
    series.expect("sampled").values
}

#[test]
fn a_sample_while_a_job_runs_counts_its_bytes_at_its_completion_for_any_thread_count() {
    let s = crate::validate(PIPE, "pipe.toml").expect("valid");
    let mut got = Vec::new();
    // What the capture writes, all told (the 1-thread run's, once collected).
    let mut written = 0;
    for threads in [1, 2] {
        let opts = RunOptions {
            threads,
            ..RunOptions::default()
        };
        let mut sched = setup(&s, &opts).expect("boots");
        sched.tick(0, VirtualTime::ZERO);
        assert_eq!(running(&sched), [0], "the capture is out on the pool");
        let cam = sched.w.nodes[0].dev.clone();
        if threads > 1 {
            // Let the pool's worker move most of the frame (its stamp is written when the
            // job is collected): the host got well into it.
            while cam.stats().bytes_written < written / 2 {
                std::thread::yield_now();
            }
        }
        // A sample before the capture's end on the virtual clock: it does not count it.
        let end = sched.jobs[&0].end;
        let before = VirtualTime::from_ns(end.as_ns() - 1);
        sched.collect_for_sample(before);
        assert_eq!(running(&sched), [0], "still running on the virtual clock");
        sched.w.sample_counters(1, before, true);
        // At its end it does.
        sched.collect_for_sample(end);
        assert!(running(&sched).is_empty());
        written = cam.stats().bytes_written;
        sched.w.sample_counters(2, end, true);
        let bw = bandwidth(&mut sched, "camera0");
        assert_eq!(bw[1], 0.0, "{threads} threads: {bw:?}");
        assert!(bw[2] > 0.0, "{threads} threads: {bw:?}");
        got.push(bw);
    }
    assert_eq!(got[0], got[1], "the same samples for 1 and 2 host threads");
}
