//! The runner's defects, each shown fixed at the level it lives at: a job without a result
//! frees its node, wrong bytes nobody tracks still count, frame accounting is checked, a CPU
//! reader gives its vmap back whatever fails.

use super::collect::collect;
use super::sched::Sched;
use super::workers::Pending;
use super::{setup, RunOptions};
use crate::clock::VirtualTime;
use crate::report::Report;

/// A camera to a display, 64x64, two buffers (the link's table last, so a test may append
/// link fields).
pub(super) const TINY: &str = r#"name = "t"
frames = 4

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 64
height = 64

[[nodes]]
name = "screen"
driver = "display"
device = "display0"
width = 64
height = 64

[[links]]
from = "cam"
to = "screen"
buffers = 2
"#;

/// [`TINY`], validated.
pub(super) fn tiny() -> crate::Scenario {
    crate::validate(TINY, "t.toml").expect("valid")
}

/// The loop after the camera's first tick: its capture job (id 0) in flight.
fn after_first_capture(s: &crate::Scenario) -> Sched<'_> {
    let mut sched = setup(s, &RunOptions::default()).expect("boots");
    assert!(sched.errors.is_empty(), "{:?}", sched.errors);
    sched.tick(0, VirtualTime::ZERO);
    assert!(sched.jobs.contains_key(&0), "the capture job started");
    // Its bytes move on the pool until it is collected (super::inflight).
    sched.collect_running();
    assert!(sched.w.nodes[0].busy);
    sched
}

#[test]
fn a_job_without_a_result_frees_its_node_and_loses_its_frame() {
    let s = tiny();
    let mut sched = after_first_capture(&s);
    let free_before = sched.w.links[0].free.len();
    sched.jobs.get_mut(&0).expect("job 0").result = Pending::lost();
    sched.done(0, VirtualTime::from_ns(1_000_000));
    assert!(!sched.w.nodes[0].busy, "the node stalls forever");
    assert!(
        sched
            .errors
            .iter()
            .any(|e| e.message.contains("without a result")),
        "{:?}",
        sched.errors
    );
    assert!(!sched.frames.contains_key(&(0, 0)), "the frame is over");
    assert_eq!(sched.outcomes.dropped, 1);
    assert_eq!(sched.node_stats[&0].dropped.get("job_failed"), Some(&1));
    assert_eq!(sched.node_stats[&0].failed_jobs.get("EIO"), Some(&1));
    assert_eq!(
        sched.w.links[0].free.len(),
        free_before + 1,
        "the output buffer is back"
    );
    // The next tick captures again.
    sched.tick(0, VirtualTime::from_ns(20_000_000));
    assert!(sched.w.nodes[0].busy);
}

#[test]
fn wrong_bytes_no_tracked_frame_owns_are_still_counted() {
    let s = tiny();
    let mut sched = after_first_capture(&s);
    let job = sched.jobs.get_mut(&0).expect("job 0");
    let mut res = job.result.take_settled().expect("deterministic: settled");
    res.inputs_ok = vec![false];
    job.result.put_settled(res);
    sched.untrack_frame((0, 0));
    sched.done(0, VirtualTime::from_ns(1_000_000));
    assert_eq!(sched.counts.corrupted_untracked, 1);
    let out = collect(sched, Report::new("t", 0), &RunOptions::default());
    assert_eq!(out.report.frames.corrupted, 1, "{:?}", out.report.frames);
}

#[test]
fn frame_accounting_is_checked_against_drops_at_the_source() {
    let s = tiny();
    let run = |skew: u64| {
        let mut sched = setup(&s, &RunOptions::default()).expect("boots");
        sched.run();
        sched.counts.dropped_at_source += skew;
        collect(sched, Report::new("t", 0), &RunOptions::default()).report
    };
    let ok = run(0);
    assert!(ok.errors.is_empty(), "{:?}", ok.errors);
    assert_eq!(
        ok.frames.produced,
        ok.frames.delivered + ok.frames.dropped + ok.frames.corrupted
    );
    let off = run(1);
    assert!(
        off.errors
            .iter()
            .any(|e| e.message.starts_with("frame accounting")),
        "{:?}",
        off.errors
    );
}

#[test]
fn a_cpu_read_gives_its_vmap_back_when_begin_cpu_access_fails() {
    use dmabuf::testing::{mock_dma, MockExporter};
    let dma = mock_dma();
    let ops = MockExporter::with(dmabuf::OpsFeatures::MMAP | dmabuf::OpsFeatures::VMAP, false);
    let buf = ops.export(&dma, 4 * 4096).expect("export");
    ops.fail.lock().begin_cpu = Some(uapi::Errno::EIO);
    let r = drivers::thumbnailer::read_planes(
        &buf,
        &[(0, 4096)],
        drivers::thumbnailer::CpuSync::Bracketed,
    );
    assert!(
        matches!(r, Err(drivers::thumbnailer::ThumbnailJobError::Access(_))),
        "{r:?}"
    );
    assert_eq!(buf.vmap_count(), 0, "the vmap leaked");
    ops.fail.lock().begin_cpu = None;
    let raw = drivers::thumbnailer::read_planes(
        &buf,
        &[(0, 4096)],
        drivers::thumbnailer::CpuSync::Bracketed,
    )
    .expect("reads");
    assert_eq!(raw.len(), 4096);
    assert_eq!(buf.vmap_count(), 0);
}

#[test]
fn a_job_that_fails_to_plan_gives_back_the_mappings_it_made() {
    use drivers::job::{DeviceJob, JobOutput, Op};
    let s = tiny();
    let mut sched = setup(&s, &RunOptions::default()).expect("boots");
    // The camera's job mapped its first output, then something failed.
    let bi = sched.w.links[0].bufs[0];
    let mapped_by_camera = |sched: &Sched<'_>| -> usize {
        let dev = sched.w.nodes[0].dev.name().to_string();
        sched
            .w
            .buf(bi)
            .buf
            .attachment_infos()
            .iter()
            .filter(|a| a.device == dev)
            .map(|a| a.mapped)
            .sum()
    };
    let before = mapped_by_camera(&sched);
    let view = sched
        .w
        .map(bi, 0, dma::DmaDirection::FromDevice)
        .expect("maps");
    assert_eq!(mapped_by_camera(&sched), before + 1);
    let mut io = DeviceJob::new(Op::Scanout);
    io.outputs.push(JobOutput {
        view,
        planes: sched.w.buf(bi).planes.clone(),
        bytes_per_line: vec![64],
    });
    let mapped = super::sched::MappedViews {
        inputs: Vec::new(),
        outputs: vec![bi],
        vb2: Vec::new(),
    };
    let failure = super::world::RunFailure {
        errno: "EIO".into(),
        message: "the next map failed".into(),
    };
    assert!(!sched.fail_job(0, io, &mapped, failure));
    assert_eq!(mapped_by_camera(&sched), before, "the mapping leaked");
    assert!(!sched.w.nodes[0].active);
    assert_eq!(sched.errors.len(), 1);
}

#[test]
fn a_failed_job_loses_its_frame_as_job_failed_with_its_errno() {
    let s = tiny();
    let mut sched = after_first_capture(&s);
    let free_before = sched.w.links[0].free.len();
    let job = sched.jobs.get_mut(&0).expect("job 0");
    let mut res = job.result.take_settled().expect("deterministic: settled");
    res.error = Some("IOMMU fault".into());
    job.result.put_settled(res);
    sched.done(0, VirtualTime::from_ns(1_000_000));
    assert_eq!(
        sched.w.links[0].free.len(),
        free_before + 1,
        "the failed job's output goes back empty, not to the display"
    );
    sched.run();
    let out = collect(sched, Report::new("t", 0), &RunOptions::default());
    let r = &out.report;
    assert_eq!(
        r.nodes[0].dropped.get("job_failed"),
        Some(&1),
        "{:?}",
        r.nodes
    );
    assert_eq!(r.nodes[0].failed_jobs.get("EFAULT"), Some(&1));
    assert_eq!(
        r.frames.produced,
        r.frames.delivered + r.frames.dropped + r.frames.corrupted
    );
    assert_eq!(r.frames.corrupted, 0);
    // Every drop has its cause (the test's second tick chain adds source drops).
    let causes: u64 = r.nodes.iter().flat_map(|n| n.dropped.values()).sum();
    assert_eq!(r.frames.dropped, causes, "{:?}", r.nodes);
    assert!(
        r.errors.iter().any(|e| e.errno == "EFAULT"),
        "{:?}",
        r.errors
    );
    assert!(r.nodes.iter().all(|n| n.unexplained.is_none()));
}

#[test]
fn a_frame_lost_without_a_cause_fails_the_verdict_naming_node_count_and_first_frame() {
    let s = tiny();
    // Without any loss: every frame explained, VERIFIED.
    let mut ok = setup(&s, &RunOptions::default()).expect("boots");
    ok.run();
    let ok = collect(ok, Report::new("t", 0), &RunOptions::default()).report;
    assert_eq!(ok.exit_code(), crate::ExitCode::Verified, "{:?}", ok.errors);
    assert!(ok.nodes.iter().all(|n| n.unexplained.is_none()));
    // The capture job's completion goes missing: its frame never reaches the display, and
    // nothing (no stream-off, detach, kill, failure) says why.
    let mut sched = after_first_capture(&s);
    sched.jobs.remove(&0);
    sched.w.nodes[0].busy = false;
    sched.run();
    let r = collect(sched, Report::new("t", 0), &RunOptions::default()).report;
    assert_eq!(r.exit_code(), crate::ExitCode::Failed);
    let screen = &r.nodes[1];
    assert_eq!(
        screen.unexplained,
        Some(crate::report::Unexplained {
            count: 1,
            first_frame: 0
        }),
        "{:?}",
        r.nodes
    );
    let e = r
        .errors
        .iter()
        .find(|e| e.message.contains("nothing explains why"))
        .expect("a verdict error");
    assert!(
        e.message
            .starts_with("1 frame(s) never reached sink `screen`")
            && e.message.contains("the first frame 0"),
        "{}",
        e.message
    );
    assert_eq!(
        r.frames.produced,
        r.frames.delivered + r.frames.dropped + r.frames.corrupted
    );
}

#[test]
fn frames_are_retired_when_they_end_so_the_runner_keeps_only_those_in_flight() {
    // Three buffers: the display keeps the one on screen until the next flip latched
    // (super::kms), so two would drop every other frame at the camera.
    let text = TINY
        .replace("frames = 4", "frames = 3000")
        .replace("buffers = 2", "buffers = 3");
    let s = crate::validate(&text, "t.toml").expect("valid");
    let mut sched = setup(&s, &RunOptions::default()).expect("boots");
    sched.run();
    // Every frame is over and counted; no track of it is left.
    assert!(
        sched.frames.is_empty(),
        "{} frames kept",
        sched.frames.len()
    );
    assert_eq!(sched.outcomes.captured, 3000);
    assert_eq!(sched.outcomes.delivered, 3000);
    assert_eq!(sched.outcomes.latency.count(), 3000);
    let r = collect(sched, Report::new("t", 0), &RunOptions::default()).report;
    assert_eq!(r.frames.delivered, 3000);
    assert_eq!(
        r.latency_us.per_frame.len(),
        3000,
        "under the cap: every frame"
    );
    assert_eq!(r.latency_us.per_frame_every, 1);
}
