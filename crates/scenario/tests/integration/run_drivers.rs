//! The runner drives the drivers: each node's parameter reaches its driver's job and changes
//! what the device does (and so what report.json says).

use scenario::run::{run, RunOptions};
use scenario::{load_bundled, validate, ExitCode};

fn report_of(text: &str) -> scenario::report::Report {
    let s = validate(text, "t.toml").unwrap();
    run(&s, &RunOptions::default()).report
}

fn rle_text() -> &'static str {
    scenario::bundled_text("encoder-rle").unwrap()
}

#[test]
fn test_rle_encoder_writes_a_bitstream_by_dma() {
    let s = load_bundled("encoder-rle")
        .unwrap()
        .with_frames(30)
        .unwrap();
    let r = run(&s, &RunOptions::default()).report;
    let summary = scenario::report::text_summary(&r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    let e = &r.encoders[0];
    assert_eq!((e.codec.as_str(), e.frames), ("rle", 30), "{summary}");
    assert!(e.bitstream_bytes > 0, "{summary}");
    // Every bitstream byte went through the encoder's DMA engine, and only those.
    let dev = r.devices.iter().find(|d| d.name == "encoder0").unwrap();
    assert_eq!(dev.bytes_written, e.bitstream_bytes, "{summary}");
}

#[test]
fn test_codec_changes_the_report() {
    let t = rle_text().replace("frames = 120", "frames = 12");
    let rle = report_of(&t);
    let ck = report_of(&t.replace("codec = \"rle\"", "codec = \"checksum\""));
    assert_eq!(ck.encoders[0].bitstream_bytes, 0);
    let dev = ck.devices.iter().find(|d| d.name == "encoder0").unwrap();
    assert_eq!(dev.bytes_written, 0, "a checksum encoder writes nothing");
    assert_ne!(rle.to_json(), ck.to_json());
    assert_eq!(rle.exit_code(), ExitCode::Verified);
    assert_eq!(ck.exit_code(), ExitCode::Verified);
}

#[test]
fn test_pattern_changes_the_bitstream() {
    let t = rle_text().replace("frames = 120", "frames = 6");
    let bars = report_of(&t);
    let noise = report_of(&t.replace("pattern = \"bars\"", "pattern = \"noise\""));
    // Noise has no runs (two bitstream bytes per frame byte); bars have long ones in luma.
    assert!(noise.encoders[0].bitstream_bytes > 2 * bars.encoders[0].bitstream_bytes);
    assert_eq!(noise.exit_code(), ExitCode::Verified);
}

#[test]
fn test_isp_transform_changes_the_bitstream() {
    let t = rle_text().replace("frames = 120", "frames = 6");
    let mut sums = Vec::new();
    for tr in ["copy", "invert", "swap_uv"] {
        let r = report_of(&t.replace("transform = \"copy\"", &format!("transform = \"{tr}\"")));
        assert_eq!(r.exit_code(), ExitCode::Verified, "{tr}");
        sums.push(r.encoders[0].bitstream_checksum);
    }
    assert_ne!(sums[0], sums[1]);
    assert_ne!(sums[0], sums[2]);
    assert_ne!(sums[1], sums[2]);
}

/// The default pipeline, small and short: the encoder still joins mid-stream and migrates.
fn small_default() -> String {
    scenario::bundled_text("default")
        .unwrap()
        .replace("width = 3840", "width = 640")
        .replace("height = 2160", "height = 480")
        .replace("frames = 600", "frames = 24")
        .replace("at_frame = 300", "at_frame = 12")
        .replace("frame = 100,", "frame = 4,")
}

#[test]
fn test_report_counts_gpu_maps_and_segments_and_keeps_map_counts_across_migrations() {
    let r = report_of(&small_default());
    let summary = scenario::report::text_summary(&r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    assert!(!r.migrations.is_empty(), "{summary}");
    // GPU buffers in GTT: their page runs, not a constant.
    for b in r.buffers.iter().filter(|b| b.link == "gpu->display") {
        let p = b.placement.as_ref().unwrap();
        assert_eq!(p.heap, "GTT", "{summary}");
        assert_eq!(p.contiguous, p.segments == 1, "{summary}");
        assert!(p.segments >= 1, "{summary}");
    }
    // Every map a consumer or producer made is counted: at least one per job that mapped
    // (the GPU maps its output for each of its 24 jobs, the exporter keeps no cache).
    assert!(r.maps.first >= 24, "{summary}");
    // A migration renews the exporter's mapping cache; the hits and misses of the old backing
    // still count. The encoder's join only adds map calls (its own, and the re-maps after the
    // migration) to those of the same run without it: a counter reset would lose some.
    let t = small_default();
    let no_event = report_of(&t[..t.rfind("[[events]]").unwrap()]);
    assert!(no_event.migrations.is_empty());
    let calls = |m: &scenario::report::MapCounts| m.first + m.cached;
    assert!(
        calls(&r.maps) > calls(&no_event.maps),
        "{:?} vs {:?} without the encoder",
        r.maps,
        no_event.maps
    );
    // vb2 queues say which UAPI path they took.
    for q in &r.vb2_queues {
        assert_eq!(
            (q.memory.as_str(), q.queue_type.as_str()),
            ("dmabuf", "output")
        );
    }
}
