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
