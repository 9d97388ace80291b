//! An encoder's bitstream leaves through its vb2 CAPTURE queue (a V4L2 mem2mem encoder's coded
//! side): DQBUF's `bytesused` is the stream's length, and the decoder reads exactly that.

use scenario::run::{run, RunOptions};
use scenario::ExitCode;

/// The bundled `transcode` at 320x240, `frames` frames, its encoder->decoder link of `memory`.
fn transcode(frames: u64, memory: &str) -> String {
    let link = "from = \"encoder\"\nto = \"decoder\"\n";
    let t = scenario::bundled_text("transcode")
        .unwrap()
        .replace("frames = 120", &format!("frames = {frames}"))
        .replace("width = 1280", "width = 320")
        .replace("height = 720", "height = 240");
    assert!(t.contains(link));
    t.replace(link, &format!("{link}memory = \"{memory}\"\n"))
}

#[test]
fn an_encoders_bitstream_goes_through_its_capture_queue_and_the_decoder_reads_bytesused() {
    // USERPTR: the encoder's process memory (a sealed memfd it maps), pinned by vb2 in its
    // USERPTR CAPTURE queue; the decoder imports the udmabuf of that memfd.
    for (memory, vb2_memory) in [
        ("dmabuf", "dmabuf"),
        ("mmap+expbuf", "mmap"),
        ("userptr", "userptr"),
    ] {
        let s = scenario::validate(&transcode(8, memory), "tc.toml").unwrap();
        let out = run(&s, &RunOptions::default());
        let r = &out.report;
        let json = r.to_json();
        assert_eq!(r.exit_code(), ExitCode::Verified, "{memory}: {json}");
        assert_eq!((r.frames.delivered, r.frames.corrupted), (8, 0), "{json}");
        // The encoder's CAPTURE queue on the link, of the link's memory, every empty buffer
        // queued into it (at the start and each time the decoder gave it back).
        let q = r
            .vb2_queues
            .iter()
            .find(|q| q.node == "encoder" && q.queue_type == "capture")
            .unwrap_or_else(|| panic!("{memory}: no encoder CAPTURE queue: {json}"));
        assert_eq!(q.memory, vb2_memory, "{json}");
        assert!(q.qbufs >= 8, "{q:?}");
        assert!(
            r.vb2_queues
                .iter()
                .any(|q| q.node == "decoder" && q.queue_type == "output"),
            "{json}"
        );
        // The decoder's device read exactly the streams (each buffer's bytesused), plus its
        // reference frame back; a read of the whole 2x-frame plane would fail its check.
        let frame: u64 = 320 * 240 * 3 / 2;
        let enc = &r.encoders[0];
        assert!(enc.bitstream_bytes > 0 && enc.bitstream_bytes < 8 * frame);
        let isp = r.devices.iter().find(|d| d.name == "isp0").unwrap();
        assert_eq!(isp.bytes_read, enc.bitstream_bytes + 8 * frame, "{json}");
    }
}
