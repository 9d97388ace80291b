//! The GPU exporter under VRAM pressure (`gpu-vram-pressure`), end to end: peer-to-peer
//! placement in VRAM, eviction to GTT with `move_notify`, and the way back.

use scenario::run::{run, RunOptions};
use scenario::{load_bundled, ExitCode};

#[test]
fn test_gpu_vram_pressure_evicts_shared_buffers_and_brings_them_back() {
    let s = load_bundled("gpu-vram-pressure").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let summary = scenario::report::text_summary(r);
    // Every frame verified, nothing found.
    assert_eq!(r.frames.produced, s.frames, "{summary}");
    assert_eq!(r.frames.delivered, s.frames, "{summary}");
    assert_eq!(r.frames.corrupted, 0, "{summary}");
    assert!(r.errors.is_empty(), "{summary}");
    assert!(r.checker.findings.is_empty(), "{summary}");
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    // The GPU's shared buffers live in VRAM (before the pressure and after it).
    let gpu_bufs: Vec<_> = r
        .buffers
        .iter()
        .filter(|b| b.link == "gpu->display")
        .collect();
    assert_eq!(gpu_bufs.len(), 3, "{summary}");
    for b in &gpu_bufs {
        let p = b.placement.as_ref().expect("placed");
        assert_eq!(p.heap, "VRAM", "{summary}");
    }
    // The pressure window is frames 61..122: the two buffers not on screen are evicted in it;
    // the one on screen (gpu->display[0]) is pinned by its flip and never moves.
    let migrations = |name: &str| gpu_bufs.iter().find(|b| b.name == name).unwrap().migrations;
    assert_eq!(
        migrations("gpu->display[0]"),
        0,
        "pinned on screen: {summary}"
    );
    assert_eq!(migrations("gpu->display[1]"), 2, "{summary}");
    assert_eq!(migrations("gpu->display[2]"), 2, "{summary}");
    let evictions: Vec<_> = r
        .migrations
        .iter()
        .filter(|m| m.from == "VRAM" && m.to != "VRAM")
        .collect();
    assert_eq!(evictions.len(), 2, "{summary}");
    for m in &evictions {
        assert_eq!(m.frame, 61, "{summary}");
        assert!(m.cause.starts_with("evicted"), "{summary}");
    }
    // At the end of the pressure one is on screen (pinned, in GTT): it goes back only once the
    // next flip released it; the other at once.
    let restores: Vec<_> = r.migrations.iter().filter(|m| m.to == "VRAM").collect();
    assert_eq!(restores.len(), 2, "{summary}");
    assert_eq!(restores[0].frame, 122, "{summary}");
    assert!(restores[0].cause.starts_with("restored:"), "{summary}");
    assert!(restores[1].frame > 122, "{summary}");
    assert!(
        restores[1].cause.starts_with("restored once off screen"),
        "{summary}"
    );
    // The driver's counters: real moves by the GPU's DMA engine, move_notify to the importers.
    let g = r.gpus.iter().find(|g| g.device == "gpu0").expect("gpu0");
    assert!(g.p2p);
    assert_eq!((g.evictions, g.moves), (2, 4), "{summary}");
    assert!(g.move_notifies >= g.moves, "{summary}");
    // The display scanned every frame out through KMS (a framebuffer per buffer), no vb2 queue
    // in between, and every scanout verified.
    assert!(
        r.vb2_queues.iter().all(|q| q.node != "display"),
        "{summary}"
    );
    let d = r
        .displays
        .iter()
        .find(|d| d.node == "display")
        .expect("KMS");
    assert_eq!((d.framebuffers, d.flips), (3, s.frames), "{summary}");
    assert_eq!((d.verified, d.corrupted), (s.frames, 0), "{summary}");
    // Trace: eviction and move_notify instants.
    let json = out.trace.to_chrome_json();
    assert!(json.contains("evict gpu->display"), "no eviction instant");
    assert!(
        json.contains("move_notify gpu->display"),
        "no move_notify instant"
    );
    assert!(summary.contains("evictions"), "{summary}");
}

#[test]
fn test_vram_pressure_that_needs_the_pinned_frame_fails_with_enomem_reported() {
    // 250 MiB of 256: with gpu->display[0] pinned on screen no run that long is left, whatever
    // is evicted. The allocation fails as TTM's does (ENOMEM), reported, and the run goes on.
    let text = scenario::bundled_text("gpu-vram-pressure")
        .unwrap()
        .replace("bytes = \"240MiB\"", "bytes = \"250MiB\"");
    let s = scenario::validate(&text, "enomem.toml").unwrap();
    let r = run(&s, &RunOptions::default()).report;
    let summary = scenario::report::text_summary(&r);
    assert_ne!(r.exit_code(), ExitCode::Verified, "{summary}");
    assert!(
        r.errors
            .iter()
            .any(|e| e.errno == "ENOMEM" && e.message.contains("vram pressure")),
        "{summary}"
    );
    // What it evicted on the way stays evicted and is recorded; the frame on screen is not.
    assert!(
        r.migrations.iter().all(|m| m.buffer != "gpu->display[0]"),
        "{summary}"
    );
    assert_eq!(r.frames.corrupted, 0, "{summary}");
    assert_eq!(r.frames.delivered, s.frames, "{summary}");
}

#[test]
fn test_p2p_is_a_gpu_parameter() {
    let text = scenario::bundled_text("gpu-vram-pressure")
        .unwrap()
        .replace(
            "[[nodes]]\nname = \"display\"\ndriver = \"display\"",
            "[[nodes]]\nname = \"display\"\ndriver = \"display\"\nparams = { p2p = true }",
        );
    let err = scenario::validate(&text, "bad.toml").unwrap_err();
    assert!(err.to_string().contains("p2p"), "{err}");
}

#[test]
fn test_every_job_is_fenced_and_every_fence_signals() {
    let text = scenario::bundled_text("default")
        .unwrap()
        .replace("at_frame = 300", "at_frame = 3")
        .replace("frames = 600", "frames = 8")
        .replace("frame = 100", "frame = 2");
    let s = scenario::validate(&text, "default-early.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let summary = scenario::report::text_summary(r);
    assert!(r.errors.is_empty(), "{summary}");
    assert!(
        !r.migrations.is_empty(),
        "the late attach still migrates: {summary}"
    );
    let jobs: u64 = r.devices.iter().map(|d| d.jobs).sum();
    assert!(jobs > 0);
    assert_eq!(r.fences.created, jobs, "{summary}");
    assert_eq!(r.fences.signaled, r.fences.created, "{summary}");
    assert!(r.fences.contexts >= 4, "{summary}");
    assert!(r.fences.sync_checks >= jobs, "{summary}");
    let fence_instants = out
        .trace
        .to_chrome_json()
        .matches("\"cat\":\"fence\"")
        .count();
    assert_eq!(fence_instants as u64, r.fences.signaled);
}
