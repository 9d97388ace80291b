//! Memory-to-memory nodes in the runner: the scaler (`driver = "scaler"`) reads its input
//! link's frames and writes its own size and format, every byte through its device's DMA
//! engine; `dmabuf check` refuses what the scaler cannot do.

use scenario::run::{run, RunOptions};
use scenario::ExitCode;

/// The bundled `scale-convert` at 640x360 -> 320x180, `frames` frames.
fn scale_convert(frames: u64) -> String {
    scenario::bundled_text("scale-convert")
        .unwrap()
        .replace("frames = 120", &format!("frames = {frames}"))
        .replace("width = 3840", "width = 640")
        .replace("height = 2160", "height = 360")
        .replace("width = 1920", "width = 320")
        .replace("height = 1080", "height = 180")
}

#[test]
fn test_a_scaler_between_camera_and_display_verifies_every_frame() {
    let s = scenario::validate(&scale_convert(12), "sc.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let json = r.to_json();
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
    assert_eq!((r.frames.delivered, r.frames.corrupted), (12, 0), "{json}");
    // The scaler's device read every NV12 frame and wrote every XRGB8888 frame by DMA.
    let isp = r.devices.iter().find(|d| d.name == "isp0").unwrap();
    assert_eq!(isp.bytes_read, 12 * 640 * 360 * 3 / 2, "{json}");
    assert_eq!(isp.bytes_written, 12 * 320 * 180 * 4, "{json}");
    let display = r.devices.iter().find(|d| d.name == "display0").unwrap();
    assert_eq!(display.bytes_read, 12 * 320 * 180 * 4, "{json}");
}

#[test]
fn test_check_refuses_a_conversion_the_scaler_cannot_do_at_its_field() {
    // A 10-bit source: at the link into the scaler, naming what it reads.
    let text = scale_convert(4).replacen(
        "device = \"camera0\"\n",
        "device = \"camera0\"\nformat = \"P010\"\n",
        1,
    );
    let e = scenario::validate(&text, "sc.toml").unwrap_err();
    assert_eq!(e.exit_code().code(), 2);
    let msg = e.to_string();
    assert!(msg.starts_with("sc.toml:"), "{msg}");
    assert!(msg.contains("`links[0].to`"), "{msg}");
    assert!(msg.contains("cannot read the P010 frames"), "{msg}");
    assert!(
        msg.contains("NV12, NV21, NV16, YUYV, UYVY, RGB888, XRGB8888, ARGB8888"),
        "{msg}"
    );
    // A raw Bayer output: at the scaler's format.
    let text = scale_convert(4).replace("format = \"XRGB8888\"", "format = \"SRGGB12\"");
    let msg = scenario::validate(&text, "sc.toml")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`nodes[1].format`") && msg.contains("a scaler cannot produce SRGGB12"),
        "{msg}"
    );
    // 1/32 across: at the scaler's width, with the range.
    let text = scale_convert(4).replacen("width = 320", "width = 20", 1);
    let e = scenario::validate(&text, "sc.toml").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("`nodes[1].width`"), "{msg}");
    assert!(
        msg.contains("width 640 -> 20") && msg.contains("from 40 to 10240"),
        "{msg}"
    );
    let (line, col) = {
        let mut p = msg.splitn(4, ':').skip(1);
        (p.next().unwrap().to_string(), p.next().unwrap().to_string())
    };
    assert!(
        line.parse::<u32>().is_ok() && col.parse::<u32>().is_ok(),
        "{msg}"
    );
    // Two inputs: a mem2mem device has one OUTPUT queue.
    let text = format!(
        "{}\n[[nodes]]\nname = \"rear\"\ndriver = \"camera\"\ndevice = \"camera0\"\nwidth = 640\nheight = 360\n\n[[links]]\nfrom = \"rear\"\nto = \"scaler\"\n",
        scale_convert(4)
    );
    let msg = scenario::validate(&text, "sc.toml")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`links[2].to`") && msg.contains("one OUTPUT queue"),
        "{msg}"
    );
}

/// The bundled `transcode` at 320x240, `frames` frames.
fn transcode(frames: u64) -> String {
    scenario::bundled_text("transcode")
        .unwrap()
        .replace("frames = 120", &format!("frames = {frames}"))
        .replace("width = 1280", "width = 320")
        .replace("height = 720", "height = 240")
}

#[test]
fn test_transcode_decodes_every_frame_bit_exact_through_held_reference_frames() {
    let s = scenario::validate(&transcode(10), "tc.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let json = r.to_json();
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
    assert_eq!((r.frames.delivered, r.frames.corrupted), (10, 0), "{json}");
    let node = |name: &str| r.nodes.iter().find(|n| n.name == name).unwrap();
    // The decoder verified each stream and each decoded frame's own stamp (the camera's).
    assert_eq!(
        (node("decoder").consumed, node("decoder").corrupted),
        (10, 0),
        "{json}"
    );
    // Two reference frames of the decoder's own, a frame each (page-rounded).
    let frame: u64 = 320 * 240 * 3 / 2;
    assert_eq!(node("decoder").reference_buffers, 2, "{json}");
    assert_eq!(
        node("decoder").reference_bytes,
        2 * frame.next_multiple_of(4096),
        "{json}"
    );
    assert_eq!(node("camera").reference_buffers, 0);
    // The decoder's device read exactly the bitstream the encoder wrote, plus its reference
    // back; it wrote the reference and the frame.
    let enc = &r.encoders[0];
    let isp = r.devices.iter().find(|d| d.name == "isp0").unwrap();
    assert_eq!(isp.bytes_read, enc.bitstream_bytes + 10 * frame, "{json}");
    assert_eq!(isp.bytes_written, 2 * 10 * frame, "{json}");
    let encoder0 = r.devices.iter().find(|d| d.name == "encoder0").unwrap();
    assert_eq!(encoder0.bytes_written, enc.bitstream_bytes, "{json}");
}

#[test]
fn test_check_refuses_a_decoder_without_an_rle_encoder_and_frames_of_another_size() {
    let refused = |text: String, at: &str, says: &str| {
        let e = scenario::validate(&text, "tc.toml").unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        let msg = e.to_string();
        assert!(
            msg.starts_with("tc.toml:") && msg.contains(at) && msg.contains(says),
            "{msg}"
        );
    };
    refused(
        transcode(4).replace(
            "params = { codec = \"rle\" }",
            "params = { codec = \"checksum\" }",
        ),
        "`links[1].from`",
        "expected `params.codec = \"rle\"`",
    );
    refused(
        transcode(4)
            .replacen("width = 320", "width = 160", 3)
            .replacen("width = 160", "width = 320", 2),
        "`nodes[2].width`",
        "expected `width = 320`",
    );
    refused(
        transcode(4).replace(
            "from = \"encoder\"\nto = \"decoder\"",
            "from = \"encoder\"\nto = [\"decoder\", \"display\"]",
        ),
        "`links[1].to[1]`",
        "cannot read the bitstream",
    );
    refused(
        transcode(4).replace(
            "from = \"camera\"\nto = \"encoder\"",
            "from = \"camera\"\nto = [\"encoder\", \"decoder\"]",
        ),
        "`links[1].to`",
        "one OUTPUT queue",
    );
}
