//! The runner end to end: determinism, expected exit codes, migrations, kills, threads.

use scenario::run::{run, RunOptions};
use scenario::{load_bundled, validate, ExitCode};

fn small(name: &str, frames: u64) -> scenario::Scenario {
    load_bundled(name).unwrap().with_frames(frames).unwrap()
}

/// The default scenario, 8 frames, with the encoder joining at frame 3.
fn default_early_encoder() -> scenario::Scenario {
    let text = scenario::bundled_text("default")
        .unwrap()
        .replace("at_frame = 300", "at_frame = 3")
        .replace("frames = 600", "frames = 8")
        .replace("frame = 100", "frame = 2");
    validate(&text, "default-early.toml").unwrap()
}

#[test]
fn test_same_seed_gives_identical_report_json() {
    let s = default_early_encoder();
    let a = run(&s, &RunOptions::default());
    let b = run(&s, &RunOptions::default());
    assert_eq!(a.report.to_json(), b.report.to_json());
    assert_eq!(a.trace.to_chrome_json(), b.trace.to_chrome_json());
}

#[test]
fn test_every_bundled_scenario_gets_its_expected_exit_code() {
    for (name, _, _) in scenario::bundled() {
        let s = small(name, 6);
        let out = run(&s, &RunOptions::default());
        assert_eq!(
            out.report.exit_code().code(),
            i32::from(s.expect.exit_code()),
            "{name}: {}",
            scenario::report::text_summary(&out.report)
        );
        if let Some(errno) = &s.expect.error {
            assert!(
                out.report.errors.iter().any(|e| &e.errno == errno),
                "{name}: {:?}",
                out.report.errors
            );
        }
    }
}

#[test]
fn test_late_encoder_migrates_and_every_frame_verifies() {
    let out = run(&default_early_encoder(), &RunOptions::default());
    let r = &out.report;
    assert_eq!(
        r.exit_code(),
        ExitCode::Verified,
        "{}",
        scenario::report::text_summary(r)
    );
    assert_eq!(r.frames.corrupted, 0);
    assert_eq!(r.frames.delivered, r.frames.produced);
    // Buffers already placed move; one never mapped yet is simply allocated in CMA later.
    assert!((1..=4).contains(&r.migrations.len()), "{:?}", r.migrations);
    for m in &r.migrations {
        assert!(m.buffer.starts_with("isp-out["));
        assert_eq!(m.frame, 3);
        assert!(m.from.contains("dram1") && m.to.contains("CMA"), "{m:?}");
        assert!(m.bytes > 0 && m.stall_us > 0.0);
        assert!(m.cause.contains("encoder0"), "{}", m.cause);
    }
    // Each migrated buffer's reason: the first allocation, then the migration at its frame,
    // whose constraints name encoder0 (no IOMMU) and whose range is the CMA placement's.
    for m in &r.migrations {
        let b = r.buffers.iter().find(|b| b.name == m.buffer).unwrap();
        let reason = b.reason.as_ref().expect("a placed buffer has a reason");
        let d = reason.decisions.last().unwrap();
        assert_eq!(reason.decisions[0].when, "allocation");
        assert_eq!(d.when, "migration");
        assert_eq!(d.frame, Some(m.frame));
        assert!(d.cause.contains("encoder0"), "{}", d.cause);
        assert!(d.devices.iter().any(|x| x == "encoder0"), "{:?}", d.devices);
        assert!(
            d.constraints
                .iter()
                .any(|c| c.constraint == "contiguity" && c.by.as_deref() == Some("encoder0")),
            "{:?}",
            d.constraints
        );
        assert!(d.groups[0].chosen.contains("CMA"), "{:?}", d.groups[0]);
        assert_eq!(d.groups[0].range_count, 1);
        assert!(
            m.to.contains(&format!("{:#x}..", d.groups[0].ranges[0][0])),
            "the reason's range is where the migration went: {} vs {:?}",
            m.to,
            d.groups[0].ranges
        );
    }
    let jpeg = out.thumbnail.expect("the thumbnailer took frame 2");
    assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
}

#[test]
fn test_killed_process_leaks_nothing_and_others_keep_streaming() {
    let text = scenario::bundled_text("process-killed")
        .unwrap()
        .replace("at_frame = 90", "at_frame = 4");
    let s = validate(&text, "k.toml").unwrap().with_frames(10).unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    assert_eq!(
        r.exit_code(),
        ExitCode::Verified,
        "{}",
        scenario::report::text_summary(r)
    );
    assert!(r.checker.findings.is_empty(), "{:?}", r.checker.findings);
    let enc = r.devices.iter().find(|d| d.name == "encoder0").unwrap();
    let disp = r.devices.iter().find(|d| d.name == "display0").unwrap();
    assert!(
        enc.jobs < disp.jobs,
        "the encoder stopped, the display went on"
    );
    assert_eq!(disp.jobs, 10);
}

#[test]
fn test_threads_mode_verifies() {
    let s = default_early_encoder();
    let out = run(
        &s,
        &RunOptions {
            engine_threads: true,
            ..RunOptions::default()
        },
    );
    assert!(!out.deterministic);
    assert!(
        !out.report.deterministic,
        "report.json says the run was not the reference"
    );
    assert!(out.report.to_json().contains("\"deterministic\": false"));
    assert_eq!(
        out.report.exit_code(),
        ExitCode::Verified,
        "{}",
        scenario::report::text_summary(&out.report)
    );
    assert_eq!(out.report.frames.corrupted, 0);
}

/// The streamoff-cycles scenario, 120 frames, with every node on `policy`.
fn streamoff_with(policy: &str) -> scenario::Scenario {
    let text = scenario::bundled_text("streamoff-cycles")
        .unwrap()
        .replace("\"keep_mapped\"", &format!("\"{policy}\""))
        .replace("\"unmap_on_dequeue\"", &format!("\"{policy}\""));
    validate(&text, "streamoff.toml")
        .unwrap()
        .with_frames(120)
        .unwrap()
}

fn vb2_maps(r: &scenario::report::Report) -> u64 {
    r.vb2_queues
        .iter()
        .filter(|q| q.queue_type == "output")
        .map(|q| q.maps)
        .sum()
}

#[test]
fn test_streamoff_cycles_keep_mapped_maps_fewer_than_unmap_on_dequeue() {
    let mut maps = Vec::new();
    for policy in ["keep_mapped", "unmap_on_dequeue"] {
        let out = run(&streamoff_with(policy), &RunOptions::default());
        let r = &out.report;
        let summary = scenario::report::text_summary(r);
        assert_eq!(r.exit_code(), ExitCode::Verified, "{policy}: {summary}");
        assert_eq!(r.frames.corrupted, 0, "{summary}");
        // Frames captured while the queues were off are dropped, never corrupted.
        assert!(r.frames.dropped > 0 && r.frames.delivered > 0, "{summary}");
        assert_eq!(
            r.frames.produced,
            r.frames.delivered + r.frames.dropped,
            "{summary}"
        );
        // The two consumers' OUTPUT queues (the producers' CAPTURE queues keep their
        // buffers mapped: the capture side never stops here).
        let outputs: Vec<_> = r
            .vb2_queues
            .iter()
            .filter(|q| q.queue_type == "output")
            .collect();
        assert_eq!(outputs.len(), 2, "{summary}");
        for q in outputs {
            assert_eq!(q.map_policy, policy);
            assert_eq!(q.maps, q.unmaps, "{summary}");
            assert!(q.streamoffs >= 3, "{summary}");
            assert!(q.qbufs as f64 >= r.frames.delivered as f64, "{summary}");
        }
        maps.push(vb2_maps(r));
    }
    assert!(
        maps[0] < maps[1],
        "keep_mapped {} vs unmap_on_dequeue {}",
        maps[0],
        maps[1]
    );
    // keep_mapped maps each buffer of each queue once (the isp->encoder link grows to 6
    // buffers only at frame 200, after this run).
    assert_eq!(maps[0], 8);
}

/// The default scenario, 40 frames, the encoder joining at frame 20.
fn default_40() -> scenario::Scenario {
    let text = scenario::bundled_text("default")
        .unwrap()
        .replace("at_frame = 300", "at_frame = 20")
        .replace("frames = 600", "frames = 40")
        .replace("frame = 100", "frame = 10");
    validate(&text, "default-40.toml").unwrap()
}

#[test]
fn test_default_40_frames_migrates_through_vb2_queues_and_verifies() {
    let s = default_40();
    let a = run(&s, &RunOptions::default());
    let r = &a.report;
    let summary = scenario::report::text_summary(r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    assert!(r.errors.is_empty(), "{summary}");
    assert_eq!(r.frames.corrupted, 0);
    assert_eq!(r.frames.delivered, 40, "{summary}");
    assert_eq!(r.migrations.len(), 4, "{summary}");
    // The GPU is no V4L2 device: it imports the ISP's buffers into its driver (dynamic
    // attachments, which the migration move_notifies) and has no vb2 queue.
    assert!(r.vb2_queues.iter().all(|q| q.node != "gpu"), "{summary}");
    // The ISP's CAPTURE queue let its mappings go for the migration, then mapped again.
    let isp = r
        .vb2_queues
        .iter()
        .find(|q| q.node == "isp" && q.queue_type == "capture")
        .expect("isp capture queue");
    assert_eq!(isp.requeue_cycles, 1, "{summary}");
    for q in &r.vb2_queues {
        assert_eq!(q.maps, q.unmaps, "{summary}");
        assert_eq!(q.attaches, q.maps, "{summary}");
    }
    // Deterministic: the same report twice.
    let b = run(&s, &RunOptions::default());
    assert_eq!(a.report.to_json(), b.report.to_json());
}

#[test]
fn test_display_takes_at_most_one_frame_per_vblank() {
    let out = run(&default_40(), &RunOptions::default());
    let fps = scenario::clock::Fps::from_int(60);
    let period = fps.tick(1).as_ns();
    let shows: Vec<u64> = out
        .trace
        .events()
        .iter()
        .filter(|e| e.name.starts_with("display frame"))
        .map(|e| e.at.as_ns())
        .collect();
    assert!(shows.len() >= 30, "{}", shows.len());
    for w in shows.windows(2) {
        assert!(w[1] - w[0] >= period, "{w:?}");
    }
    for &t in &shows {
        let vblank = fps.tick(fps.first_tick_at_or_after(scenario::clock::VirtualTime(t)));
        assert_eq!(
            vblank.as_ns(),
            t,
            "display job at {t} ns is not on a vblank"
        );
    }
}
