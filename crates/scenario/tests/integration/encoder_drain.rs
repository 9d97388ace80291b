//! An encoder's drain in a run: `V4L2_ENC_CMD_STOP` at a `stream_off` of its OUTPUT queue and at
//! the run's end, the frames it holds encoded (not thrown away), the `LAST` buffer dequeued and
//! DQBUF answering `EPIPE`; `V4L2_ENC_CMD_START` at its `stream_on`; and STREAMOFF/STREAMON of
//! its CAPTURE queue, during which its frames wait.

use scenario::report::Report;
use scenario::run::{run, RunOptions};
use scenario::ExitCode;

/// The bundled `transcode` at 320x240 with `frames` frames and `events` appended.
fn transcode(frames: u64, events: &str) -> String {
    scenario::bundled_text("transcode")
        .unwrap()
        .replace("frames = 120", &format!("frames = {frames}"))
        .replace("width = 1280", "width = 320")
        .replace("height = 720", "height = 240")
        + events
}

fn event(frame: u64, action: &str, queue: &str) -> String {
    format!(
        "\n[[events]]\nat_frame = {frame}\naction = \"{action}\"\nnode = \"encoder\"\nqueue = \"{queue}\"\n"
    )
}

fn run_text(t: &str) -> Report {
    let s = scenario::validate(t, "drain.toml").unwrap();
    run(&s, &RunOptions::default()).report
}

#[test]
fn the_run_ends_with_a_drain_the_empty_last_buffer_and_epipe() {
    let r = run_text(&transcode(8, ""));
    let json = r.to_json();
    assert_eq!(r.exit_code(), ExitCode::Verified, "{json}");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let e = &r.encoders[0];
    // Nothing is queued at the end: the drain completes an empty LAST buffer at once.
    assert_eq!((e.frames, e.drained, e.drains), (8, 0, 1), "{e:?}");
}

#[test]
fn a_stream_off_drains_the_frames_the_encoder_holds_and_stream_on_resumes_it() {
    // The CAPTURE queue goes off first: frames wait on the OUTPUT queue. Then the OUTPUT
    // queue's stream_off: STOP, the waiting frames are the drain's; they come out once the
    // CAPTURE queue streams again, the last one LAST; then STREAMOFF; stream_on: START.
    let events = event(3, "stream_off", "capture")
        + &event(5, "stream_off", "output")
        + &event(7, "stream_on", "capture")
        + &event(9, "stream_on", "output");
    let r = run_text(&transcode(16, &events));
    let json = r.to_json();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let e = &r.encoders[0];
    let enc = r.nodes.iter().find(|n| n.name == "encoder").unwrap();
    // The frames queued when the drain began (those captured while the CAPTURE queue was
    // off) were encoded, none lost at the encoder to the STREAMOFF.
    // Frames 3 and 4 waited on the OUTPUT queue and were drained.
    assert_eq!(
        (e.drained, e.drains),
        (2, 2),
        "the event's and the run's end: {e:?}"
    );
    assert_eq!(enc.dropped.get("stream_off"), None, "{enc:?}");
    // Frames 5-8 found the encoder off (lost at the camera); after START frames 9-15 are
    // encoded again: 0-4 and 9-15 reach the display, intact.
    let cam = r.nodes.iter().find(|n| n.name == "camera").unwrap();
    assert_eq!(cam.dropped.get("stream_off"), Some(&4), "{cam:?}");
    assert_eq!(
        (e.frames, r.frames.delivered, r.frames.corrupted),
        (12, 12, 0),
        "{json}"
    );
}

#[test]
fn check_refuses_the_capture_queue_of_an_encoder_that_feeds_no_link_where_it_is() {
    // encoder-rle's encoder writes into a buffer of its own: no CAPTURE queue to name.
    let ev = "\n[[events]]\nat_frame = 3\naction = \"stream_off\"\nnode = \"encoder\"\nqueue = \"capture\"\n";
    let t = scenario::bundled_text("encoder-rle").unwrap().to_string() + ev;
    let e = scenario::validate(&t, "rle.toml").unwrap_err().to_string();
    let line = t.lines().count() - 1 + 1;
    assert!(e.contains("feeds no link"), "{e}");
    assert!(e.contains(&format!("rle.toml:{line}:9")), "{e}");
    // transcode's encoder feeds the decoder: its CAPTURE queue is there to name.
    assert!(
        scenario::validate(&transcode(8, &event(3, "stream_off", "capture")), "t.toml").is_ok()
    );
}

#[test]
fn while_the_encoders_capture_queue_is_off_its_frames_wait_and_none_is_lost_there() {
    // STREAMOFF of the CAPTURE queue: the bitstream buffers go back to the application, the
    // encoder runs no job; frames wait on its OUTPUT queue until the camera has no buffer left
    // (it drops the rest, queue_full); after STREAMON every waiting frame is encoded.
    let events = event(3, "stream_off", "capture") + &event(9, "stream_on", "capture");
    let r = run_text(&transcode(16, &events));
    let json = r.to_json();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let enc = r.nodes.iter().find(|n| n.name == "encoder").unwrap();
    let cam = r.nodes.iter().find(|n| n.name == "camera").unwrap();
    // Of frames 3-8, which came while it was off, those that found no free buffer on the
    // camera's link were dropped by the camera (3, counted `queue_full`); the ones that waited
    // were encoded after STREAMON: all 13 others reached the display, none lost at the encoder.
    assert!(enc.dropped.is_empty(), "{enc:?}");
    assert_eq!(cam.dropped.get("queue_full"), Some(&3), "{cam:?}");
    assert_eq!(r.encoders[0].frames, 13, "{json}");
    assert_eq!((r.frames.delivered, r.frames.corrupted), (13, 0), "{json}");
}
