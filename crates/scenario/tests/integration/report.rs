//! The report: percentiles, stable JSON, the text summary, exit codes.

use scenario::clock::VirtualTime;
use scenario::report::*;
use scenario::ExitCode;

#[test]
fn percentiles_are_exact_on_small_inputs() {
    assert_eq!(percentile(&[7], 500), Some(7));
    assert_eq!(percentile(&[7], 990), Some(7));
    assert_eq!(percentile(&[1, 2], 500), Some(1));
    assert_eq!(percentile(&[1, 2, 3], 500), Some(2));
    assert_eq!(percentile(&[1, 2, 3, 4], 500), Some(2));
    assert_eq!(percentile(&[1, 2, 3, 4, 5], 500), Some(3));
    let hundred: Vec<u32> = (1..=100).collect();
    assert_eq!(percentile(&hundred, 990), Some(99));
    assert_eq!(percentile(&hundred, 1000), Some(100));
    let v: Vec<u32> = (1..=200).collect();
    assert_eq!(percentile(&v, 990), Some(198));
    assert_eq!(percentile(&v, 0), Some(1), "p0 is the minimum");
    let st = LatencyStats::of(&[VirtualTime(30), VirtualTime(10), VirtualTime(20)]);
    assert_eq!(
        (st.p50, st.p99, st.max, st.count),
        (VirtualTime(20), VirtualTime(30), VirtualTime(30), 3)
    );
    assert_eq!(LatencyStats::of(&[]), LatencyStats::default());
}

/// A report with lists deliberately out of order.
pub fn sample() -> Report {
    let mut r = Report::new("default", 1);
    r.frames = FrameCounts {
        produced: 600,
        delivered: 597,
        dropped: 3,
        corrupted: 0,
        merged: 0,
    };
    let samples: Vec<(u64, VirtualTime)> = (0..600u64)
        .rev()
        .map(|f| {
            (
                f,
                VirtualTime::from_us(
                    16_000
                        + if (300..303).contains(&f) {
                            9_000
                        } else {
                            f % 7 * 10
                        },
                ),
            )
        })
        .collect();
    r.latency_us = LatencyReport::from_samples(&samples);
    r.duration_us = 10_000_000.5;
    for name in ["isp-out[1]", "camera->isp[0]", "isp-out[0]"] {
        r.buffers.push(BufferReport {
            name: name.into(),
            link: name.split('[').next().unwrap().into(),
            size: 12_441_600,
            placement: Some(Placement {
                exporter: "constraint".into(),
                heap: "cma0".into(),
                banks: vec!["dram0".into(), "dram0".into()],
                contiguous: true,
                segments: 1,
            }),
            migrations: u32::from(name.starts_with("isp-out")),
            reason: None,
        });
    }
    for b in ["isp-out[1]", "isp-out[0]"] {
        r.migrations.push(MigrationReport {
            buffer: b.into(),
            frame: 300,
            from: "dram1 (system, 3 segments)".into(),
            to: "cma0 (contiguous)".into(),
            bytes: 12_441_600,
            stall_us: 4_200.25,
            cause: "encoder0 attached: no IOMMU, needs contiguous memory below 4 GiB".into(),
            ..MigrationReport::default()
        });
    }
    r.maps = MapCounts {
        first: 12,
        cached: 2_388,
    };
    for d in ["isp0", "camera0"] {
        r.devices.push(DeviceReport {
            name: d.into(),
            bytes_read: 1 << 30,
            bytes_written: 1 << 31,
            faults: 0,
            jobs: 600,
            busy_us: 1234.5,
        });
    }
    r.checker.findings.push(Finding {
        kind: "z-kind".into(),
        message: "b".into(),
        ..Finding::default()
    });
    r.checker.findings.push(Finding {
        kind: "a-kind".into(),
        message: "a".into(),
        ..Finding::default()
    });
    r
}

#[test]
fn the_same_report_gives_byte_identical_json_whatever_the_list_order() {
    let a = sample();
    let mut b = sample();
    b.buffers.reverse();
    b.devices.reverse();
    b.migrations.reverse();
    b.checker.findings.reverse();
    b.latency_us.per_frame.reverse();
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.to_json(), a.to_json());
    let back = Report::from_json(&a.to_json()).unwrap();
    assert_eq!(back.to_json(), a.to_json(), "round-trips");
}

#[test]
fn json_has_the_documented_top_level_keys_in_order() {
    let json = sample().to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in [
        "scenario",
        "seed",
        "frames",
        "latency_us",
        "buffers",
        "migrations",
        "maps",
        "devices",
        "checker",
    ] {
        assert!(v.get(key).is_some(), "missing `{key}`");
    }
    for key in ["produced", "delivered", "dropped", "corrupted"] {
        assert!(v["frames"].get(key).is_some());
    }
    for key in ["p50", "p99", "max"] {
        assert!(v["latency_us"][key].is_number());
    }
    for key in ["name", "size", "placement", "migrations"] {
        assert!(v["buffers"][0].get(key).is_some());
    }
    for key in [
        "buffer", "frame", "from", "to", "bytes", "stall_us", "cause",
    ] {
        assert!(v["migrations"][0].get(key).is_some());
    }
    for key in ["name", "bytes_read", "bytes_written", "faults"] {
        assert!(v["devices"][0].get(key).is_some());
    }
    assert!(v["maps"]["first"].is_number() && v["maps"]["cached"].is_number());
    assert!(v["checker"]["findings"].is_array());
    assert_eq!(v["buffers"][0]["name"], "camera->isp[0]", "sorted by name");
    assert_eq!(v["devices"][0]["name"], "camera0");
    assert_eq!(v["checker"]["findings"][0]["kind"], "a-kind");
    let order: Vec<usize> = [
        "\"scenario\"",
        "\"seed\"",
        "\"frames\"",
        "\"latency_us\"",
        "\"buffers\"",
        "\"migrations\"",
        "\"maps\"",
        "\"devices\"",
        "\"checker\"",
    ]
    .iter()
    .map(|k| json.find(k).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "declaration order");
}

#[test]
fn latency_summary_uses_nearest_rank() {
    let r = sample();
    assert_eq!(r.latency_us.max, 25_000.0);
    assert_eq!(r.latency_us.per_frame.len(), 600);
    assert_eq!(r.latency_us.per_frame[0].frame, 0);
    assert!(r.latency_us.p50 >= 16_000.0 && r.latency_us.p50 <= 16_060.0);
}

#[test]
fn exit_codes_follow_corruption_findings_and_expectations() {
    let mut r = sample();
    assert_eq!(r.exit_code(), ExitCode::Failed, "unexpected findings");
    let expect = scenario::schema::Expect {
        findings: vec!["a-kind".into(), "z-kind".into()],
        ..Default::default()
    };
    r.apply_expect(&expect);
    assert_eq!(r.exit_code(), ExitCode::Verified);
    r.frames.corrupted = 1;
    assert_eq!(r.exit_code(), ExitCode::Failed);
    r.frames.corrupted = 0;
    r.errors.push(RunError {
        errno: "ENOMEM".into(),
        message: "no memory below 1 GiB".into(),
    });
    assert_eq!(r.exit_code().code(), 1);
}

#[test]
fn text_summary_says_everything_the_issue_lists() {
    let s = text_summary(&sample());
    for needle in [
        "scenario default (seed 1)",
        "600 produced, 597 delivered, 3 dropped, 0 corrupted",
        "latency: p50",
        "p99",
        "max 25 ms",
        "camera->isp[0]",
        "constraint from cma0 in dram0+dram0, contiguous, 1 segment",
        "frame 300: isp-out[0] dram1 (system, 3 segments) -> cma0 (contiguous)",
        "stutter: worst latency 25 ms",
        "maps: 12 first, 2388 cached (99.5% served from the cache)",
        "camera0",
        "checker: 2 finding(s)",
        "[a-kind] a",
    ] {
        assert!(s.contains(needle), "`{needle}` not in:\n{s}");
    }
    assert_eq!(s, text_summary(&sample()));
}

#[test]
fn write_outputs_writes_the_four_files() {
    let dir = std::env::temp_dir().join(format!("scenario-out-{}", std::process::id()));
    let mut trace = Trace::new("default");
    let t = trace.track("camera0");
    trace.job(
        t,
        "capture 0",
        VirtualTime::ZERO,
        VirtualTime::from_us(5),
        Some("b"),
        1,
        Some(0),
        JobCategory::Dma,
    );
    let paths = write_outputs(&dir, &sample(), &trace).unwrap();
    let names: Vec<_> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(names, OUTPUT_FILES);
    assert_eq!(
        std::fs::read_to_string(&paths[0]).unwrap(),
        sample().to_json()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn counters_are_sampled_per_frame_bounded_and_become_trace_counter_tracks() {
    let s = scenario::load_bundled("luma-chroma-banks")
        .unwrap()
        .with_frames(12)
        .unwrap();
    let out = scenario::run::run(&s, &scenario::run::RunOptions::default());
    let c = out
        .report
        .counters
        .as_ref()
        .expect("a run samples counters");
    assert_eq!(c.every_frames, 1, "12 frames: every frame");
    assert_eq!(c.frames.len(), 13, "one per frame and one at the end");
    assert_eq!(c.t_us.len(), c.frames.len());
    for s in &c.series {
        assert_eq!(s.values.len(), c.frames.len(), "{}", s.name);
        assert!(
            s.values.iter().all(|v| v.is_finite() && *v >= 0.0),
            "{}",
            s.name
        );
    }
    for bank in ["dram0", "dram1"] {
        assert!(c.series(&format!("bank {bank} used")).is_some(), "{bank}");
    }
    // The camera's buffers live in CMA while it streams; PSS never exceeds RSS and is below it
    // when buffers are shared.
    let cma = c.series("cma dram0 used").unwrap();
    assert!(cma.values.iter().any(|&v| v > 0.0));
    let rss = c.series("process isp dma-buf rss").unwrap();
    let pss = c.series("process isp dma-buf pss").unwrap();
    assert!(rss.values.iter().zip(&pss.values).all(|(r, p)| p <= r));
    assert!(rss.values[5] > pss.values[5], "the isp shares its buffers");
    let bw = c.series("device isp0 bandwidth").unwrap();
    assert!(bw.values[3] > 0.0, "the isp moves bytes every frame");
    // The same samples are counter tracks of the trace, numeric.
    let t: serde_json::Value = serde_json::from_str(&out.trace.to_chrome_json()).unwrap();
    let counters: Vec<&serde_json::Value> = t["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "C")
        .collect();
    assert!(counters.iter().all(|e| e["args"]["value"].is_number()));
    // Each sampled series is one counter event per sample; the fd counts are recorded where
    // they change instead (`run::fds`), so they are counted apart: a few steps per process.
    let (fds, sampled): (Vec<&&serde_json::Value>, Vec<_>) = counters.iter().partition(|e| {
        e["name"]
            .as_str()
            .is_some_and(|n| n.ends_with(" dma-buf fds (fds)"))
    });
    assert_eq!(sampled.len(), c.series.len() * c.frames.len());
    assert!(
        !fds.is_empty() && fds.len() < c.frames.len(),
        "{} fd steps",
        fds.len()
    );
    // A run's report is bounded whatever its length: at most 128 samples and the last one.
    let long = scenario::run::run(
        &scenario::load_bundled("luma-chroma-banks")
            .unwrap()
            .with_frames(300)
            .unwrap(),
        &scenario::run::RunOptions::default(),
    );
    let lc = long.report.counters.unwrap();
    assert_eq!(lc.every_frames, 3);
    assert!(lc.frames.len() <= 129, "{}", lc.frames.len());
}

#[test]
fn a_bufinfo_event_writes_the_debugfs_snapshot_of_that_moment() {
    use scenario::run::{run, RunOptions};
    let text = format!(
        "{}\n[[events]]\nat_frame = 4\naction = \"bufinfo\"\n",
        crate::BASE
    );
    let s = scenario::validate(&text, "t.toml").expect("a bufinfo event validates");
    let out = run(&s, &RunOptions::default());
    assert_eq!(out.bufinfo.len(), 1);
    let (frame, snap) = &out.bufinfo[0];
    assert_eq!(*frame, 4);
    // The kernel's format: the header, one block per live buffer with its attached devices,
    // and the total line counting exactly the link's buffers.
    assert!(snap.starts_with("\nDma-buf Objects:\nsize"), "{snap}");
    let bufs = s.links[0].buffers as usize;
    assert!(
        snap.contains(&format!("Total {bufs} objects")),
        "{bufs} buffers: {snap}"
    );
    assert!(
        snap.contains("\tcamera0\n") && snap.contains("\tdisplay0\n"),
        "{snap}"
    );
    let dir = std::env::temp_dir().join(format!("bufinfo-test-{}", std::process::id()));
    let paths = out.write(&dir).unwrap();
    let file = dir.join("bufinfo-4.txt");
    assert!(paths.contains(&file));
    assert_eq!(&std::fs::read_to_string(&file).unwrap(), snap);
    std::fs::remove_dir_all(&dir).unwrap();
    // Without the event, nothing is written.
    let quiet = run(
        &scenario::validate(crate::BASE, "t.toml").unwrap(),
        &RunOptions::default(),
    );
    assert!(quiet.bufinfo.is_empty());
}
