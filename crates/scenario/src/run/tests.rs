//! The runner's defects, each shown fixed at the level it lives at: a job without a result
//! frees its node, wrong bytes nobody tracks still count, frame accounting is checked, a CPU
//! reader gives its vmap back whatever fails.

use super::sched::Sched;
use super::workers::Pending;
use super::{collect, setup, RunOptions};
use crate::clock::VirtualTime;
use crate::report::Report;

const TINY: &str = r#"name = "t"
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

fn tiny() -> crate::Scenario {
    crate::validate(TINY, "t.toml").expect("valid")
}

/// The loop after the camera's first tick: its capture job (id 0) in flight.
fn after_first_capture(s: &crate::Scenario) -> Sched<'_> {
    let mut sched = setup(s, &RunOptions::default()).expect("boots");
    assert!(sched.errors.is_empty(), "{:?}", sched.errors);
    sched.tick(0, VirtualTime::ZERO);
    assert!(sched.jobs.contains_key(&0), "the capture job started");
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
    assert!(sched.frames[&(0, 0)].lost);
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
    res.error = Some("the DMA went wrong".into());
    job.result.put_settled(res);
    sched.frames.remove(&(0, 0));
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
    let r = super::events::cpu_read_planes(&buf, &[(0, 4096)]);
    assert!(
        matches!(r, Err(super::events::CpuReadError::Access(_))),
        "{r:?}"
    );
    assert_eq!(buf.vmap_count(), 0, "the vmap leaked");
    ops.fail.lock().begin_cpu = None;
    let raw = super::events::cpu_read_planes(&buf, &[(0, 4096)]).expect("reads");
    assert_eq!(raw.len(), 4096);
    assert_eq!(buf.vmap_count(), 0);
}
