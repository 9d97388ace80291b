//! A KMS flip that fails at its vblank leaves the screen as it was, and the next flip that
//! latches releases the frame it replaces (module `kms`).

use super::{setup, RunOptions};
use crate::clock::VirtualTime;
use fence::SimpleFenceOps;

#[test]
fn a_flip_that_fails_at_its_vblank_leaves_the_old_frame_on_screen_until_the_next_latch() {
    let s = super::tests::tiny();
    let mut sched = setup(&s, &RunOptions::default()).expect("boots");
    assert!(sched.errors.is_empty(), "{:?}", sched.errors);
    let (b0, b1) = (sched.w.links[0].bufs[0], sched.w.links[0].bufs[1]);
    let screen = 1;
    let t = VirtualTime::from_ns(16_000_000);
    // Frame 0 on screen.
    sched.kms_flip(screen, b0, 0, 0, 100).expect("flips");
    sched.kms_latched(100, t);
    assert_eq!(sched.kms_screen(screen), (Some(b0), Some(b0)));
    // b1's writer has not signalled at the vblank: the flip does not latch and fails.
    let ctx = fence::context_alloc(1).expect("context");
    let writer = SimpleFenceOps::create("test", "render", ctx, 1);
    {
        let mut g = sched.w.buf(b1).buf.resv().lock(None).expect("lock");
        g.reserve_fences(1).expect("reserve");
        g.add_fence(&writer, fence::DmaResvUsage::Write)
            .expect("add");
    }
    let err = sched.kms_flip(screen, b1, 0, 1, 101).expect_err("no latch");
    assert_eq!(err.errno, "EAGAIN", "{}", err.message);
    assert_eq!(
        sched.kms_screen(screen),
        (Some(b0), Some(b0)),
        "the old frame stays scanned out"
    );
    // The next flip that latches takes b0 off screen: released at its vblank.
    writer.signal().expect("signal");
    sched.kms_flip(screen, b1, 0, 1, 102).expect("flips");
    assert_eq!(sched.kms_releasing(102), Some(vec![b0]));
    assert_eq!(sched.kms_screen(screen), (Some(b1), Some(b1)));
}

#[test]
fn a_frame_whose_flip_fails_goes_back_to_its_producer() {
    let s = super::tests::tiny();
    let mut sched = setup(&s, &RunOptions::default()).expect("boots");
    sched.tick(0, VirtualTime::ZERO);
    sched.collect_running();
    let end = sched.jobs[&0].end;
    sched.done(0, end);
    let bi = sched
        .w
        .ready_front(1, 0)
        .expect("frame 0 waits for the screen");
    assert!(!sched.w.links[0].free.contains(&bi));
    // Its WRITE fence has not signalled at the vblank: the flip fails, and so the job.
    let ctx = fence::context_alloc(1).expect("context");
    let writer = SimpleFenceOps::create("test", "render", ctx, 1);
    {
        let mut g = sched.w.buf(bi).buf.resv().lock(None).expect("lock");
        g.reserve_fences(1).expect("reserve");
        g.add_fence(&writer, fence::DmaResvUsage::Write)
            .expect("add");
    }
    assert!(!sched.start_job(1, end, Some((0, 0))));
    assert!(
        sched.errors.iter().any(|e| e.errno == "EAGAIN"),
        "{:?}",
        sched.errors
    );
    assert!(sched.w.ready_bufs(1, 0).is_empty(), "the screen holds it");
    assert!(
        sched.w.links[0].free.contains(&bi),
        "the producer lost a buffer"
    );
    assert_eq!(sched.outcomes.dropped, 1, "frame 0 is lost once");
    assert_eq!(sched.node_stats[&1].dropped.get("job_failed"), Some(&1));
    writer.signal().expect("signal");
}
