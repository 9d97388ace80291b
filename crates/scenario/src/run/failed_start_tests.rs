//! A consumer whose job fails before it starts gives its frames back (`Sched::fail_node`,
//! module `outcome`): the producer keeps every buffer, the failure is counted once.
//!
//! Each test makes a mapping really fail: the failing consumer's device sits behind an IOMMU
//! whose aperture is one page (`aperture_bits = 13`: I/O addresses `[4 KiB, 8 KiB)`), so no
//! 6 KiB frame of the 64x64 NV12 camera ever gets I/O addresses for it (`ENOMEM` from the
//! IOVA allocator, as `iommu_dma_alloc_iova` failing makes `dma_map_sgtable` return). The
//! camera's link feeds that consumer and a healthy one, with as few buffers as the healthy
//! one needs: three when it is the display (it keeps one on screen until its next flip
//! latches), one when it is the encoder. A buffer the failing consumer kept would leave the
//! camera short: every other frame dropped `queue_full`, or (one buffer) every frame after
//! the first.

use super::collect::collect;
use super::{setup, RunOptions};
use crate::report::Report;

/// camera -> [screen (KMS display), enc (encoder, vb2 OUTPUT queue)], 12 frames, `buffers`
/// `heap:system` buffers; `tiny` names the device behind the one-page IOMMU.
fn fan_out(tiny: &str, buffers: u32) -> String {
    let dev = |name: &str| {
        let iommu = if name == tiny {
            "iommu = \"tiny\"\n"
        } else {
            ""
        };
        format!("[[soc.devices]]\nname = \"{name}\"\ndma_mask_bits = 32\n{iommu}\n")
    };
    format!(
        r#"name = "t"
frames = 12

[soc]

[[soc.banks]]
name = "dram0"
kind = "system"
base = "0x0"
size = "256MiB"

[[soc.iommus]]
name = "tiny"
aperture_bits = 13

{}{}{}
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

[[nodes]]
name = "enc"
driver = "encoder"
device = "encoder0"
process = "encoder"

[[links]]
from = "cam"
to = ["screen", "enc"]
buffers = {buffers}
exporter = "heap:system"
"#,
        dev("camera0"),
        dev("display0"),
        dev("encoder0"),
    )
}

/// Runs `text`; the report.
fn run(text: &str) -> Report {
    let s = crate::validate(text, "t.toml").expect("valid");
    let mut sched = setup(&s, &RunOptions::default()).expect("boots");
    sched.run();
    collect(sched, Report::new("t", 0), &RunOptions::default()).report
}

/// What a failed consumer `failed` must leave: one failure, counted once under `errno`; the
/// camera never short of a buffer; the healthy sink `ok` gets every frame.
fn gives_back(r: &Report, failed: usize, ok: usize, errno: &str) {
    let (cam, bad, good) = (&r.nodes[0], &r.nodes[failed], &r.nodes[ok]);
    assert_eq!(
        cam.dropped.get("queue_full"),
        None,
        "the camera lost a buffer to the stopped {}: {:?}",
        bad.name,
        cam.dropped
    );
    assert_eq!(good.consumed, 12, "{:?}", good);
    assert_eq!(r.errors.len(), 1, "counted once: {:?}", r.errors);
    assert_eq!(r.errors[0].errno, errno, "{:?}", r.errors);
    assert_eq!(
        bad.failed_jobs.get(errno),
        Some(&1),
        "{:?}",
        bad.failed_jobs
    );
    assert_eq!(bad.failed_jobs.len(), 1, "{:?}", bad.failed_jobs);
    assert_eq!(bad.dropped.get("job_failed"), Some(&1), "{:?}", bad.dropped);
    assert_eq!(r.frames.produced, 12);
    // Frame 0 reached `ok` but not the failed consumer: dropped (job_failed), the rest delivered.
    assert_eq!(
        (r.frames.dropped, r.frames.delivered),
        (1, 11),
        "{:?}",
        r.frames
    );
    assert_eq!(
        r.frames.produced,
        r.frames.delivered + r.frames.dropped + r.frames.corrupted
    );
    assert!(r.nodes.iter().all(|n| n.unexplained.is_none()));
}

#[test]
fn a_refused_qbuf_stops_the_consumer_and_gives_its_frame_back() {
    // vb2's prepare maps the frame at QBUF for the encoder: refused (the one-page IOMMU).
    let r = run(&fan_out("encoder0", 3));
    gives_back(&r, 2, 1, "ENOMEM");
    assert!(
        r.errors[0].message.contains("QBUF"),
        "{}",
        r.errors[0].message
    );
}

#[test]
fn a_framebuffer_that_cannot_be_mapped_stops_the_display_and_gives_its_frame_back() {
    // ADDFB2 maps the buffer for the display's scanout: refused (the one-page IOMMU).
    let r = run(&fan_out("display0", 1));
    gives_back(&r, 1, 2, "ENOMEM");
}

/// A job that took its frame from its vb2 queue's driver and then failed (here: the mapping of
/// something else it needed) gives that buffer back through vb2: `buffer_done(ERROR)`, DQBUF
/// with `V4L2_BUF_FLAG_ERROR`, and the frame goes back to the camera; the queue's counters
/// still balance when it closes.
#[test]
fn a_buffer_taken_from_vb2_goes_back_in_error_when_the_job_fails() {
    use crate::clock::VirtualTime;
    let text = fan_out("none", 3);
    let s = crate::validate(&text, "t.toml").expect("valid");
    let mut sched = setup(&s, &RunOptions::default()).expect("boots");
    sched.tick(0, VirtualTime::ZERO);
    sched.collect_running();
    let end = sched.jobs[&0].end;
    sched.done(0, end);
    let (enc, li) = (2, 0);
    let bi = sched
        .w
        .ready_front(enc, li)
        .expect("frame 0 waits for the encoder");
    let (p, slot, gen, view) = sched.w.vb2_take(enc, li, bi).expect("its driver holds it");
    assert!(
        sched.w.ready_bufs(enc, li).is_empty(),
        "taken off the driver's list"
    );
    let mut io = drivers::job::DeviceJob::new(drivers::job::Op::Scanout);
    io.inputs.push(drivers::job::JobInput {
        view,
        planes: sched.w.buf(bi).planes.clone(),
        expected: 0,
        frame: 0,
    });
    let mapped = super::sched::MappedViews {
        inputs: vec![bi],
        outputs: Vec::new(),
        vb2: vec![(p, slot, gen)],
    };
    let failure = super::world::RunFailure {
        errno: "ENOMEM".into(),
        message: "the job's next mapping failed".into(),
    };
    assert!(!sched.fail_job(enc, io, &mapped, failure));
    assert!(!sched.w.nodes[enc].active);
    assert!(!sched.w.ports[p].queued.contains(&slot), "dequeued");
    assert_eq!(sched.node_stats[&enc].failed_jobs.get("ENOMEM"), Some(&1));
    // Lost at the encoder (counted when the frame is over: the screen still shows it).
    assert_eq!(sched.frames[&(0, 0)].drop, Some((enc, "job_failed")));
    // The screen still reads it; once it lets go the camera has it back.
    match &sched.w.buf(bi).state {
        super::world::BufState::Ready { readers, .. } => {
            assert_eq!(readers.iter().copied().collect::<Vec<_>>(), vec![1]);
        }
        other => panic!("{other:?}"),
    }
    sched.release(bi, 1);
    assert!(sched.w.links[li].free.contains(&bi), "the camera lost it");
    let errs = sched.w.close_ports();
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(sched.errors.len(), 1, "{:?}", sched.errors);
}
