//! A display node through KMS (`run::kms`): a framebuffer per buffer, a page flip per frame,
//! the frame on screen held until the next flip latched, `map_policy` refused there.

use scenario::run::{run, RunOptions};
use scenario::validate;
use scenario::ExitCode;

fn report_of(text: &str) -> scenario::report::Report {
    let s = validate(text, "t.toml").unwrap();
    run(&s, &RunOptions::default()).report
}

/// Camera -> display at the same rate, `buffers` buffers.
fn cam_to_screen(buffers: u32, frames: u32) -> String {
    super::BASE
        .replace("frames = 10", &format!("frames = {frames}"))
        .replace(
            "to = \"screen\"",
            &format!("to = \"screen\"\nbuffers = {buffers}"),
        )
}

#[test]
fn each_buffer_gets_one_framebuffer_and_each_frame_one_flip() {
    let r = report_of(&cam_to_screen(3, 20));
    assert_eq!(r.exit_code(), ExitCode::Verified);
    let d = &r.displays;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].node.as_str(), d[0].device.as_str()),
        ("screen", "display0")
    );
    assert_eq!(
        d[0].framebuffers, 3,
        "once per buffer, not per frame: {d:?}"
    );
    assert_eq!(d[0].removed, 3, "RMFB of each at the end");
    assert_eq!(d[0].flips, r.frames.delivered);
    assert_eq!(d[0].shown, d[0].flips);
    // No vb2 queue: the display imports its buffers itself.
    assert!(
        r.vb2_queues.iter().all(|q| q.node != "screen"),
        "{:?}",
        r.vb2_queues
    );
}

#[test]
fn the_frame_on_screen_stays_the_displays_until_the_next_flip_latched() {
    // Two buffers at one rate: the one on screen is not free when the camera's next tick
    // comes, so every other frame finds no buffer (double buffering needs a third).
    let two = report_of(&cam_to_screen(2, 20));
    let three = report_of(&cam_to_screen(3, 20));
    let full =
        |r: &scenario::report::Report| r.nodes[0].dropped.get("queue_full").copied().unwrap_or(0);
    assert!(full(&two) >= 8, "{:?}", two.nodes[0]);
    assert_eq!(full(&three), 0, "{:?}", three.nodes[0]);
    assert_eq!(two.exit_code(), ExitCode::Verified, "drops with a cause");
    assert_eq!(three.frames.delivered, 20);
}

#[test]
fn map_policy_on_a_kms_display_is_refused_at_its_line() {
    let text = super::BASE.replace(
        "device = \"display0\"",
        "device = \"display0\"\nmap_policy = \"unmap_on_dequeue\"",
    );
    let e = validate(&text, "t.toml").unwrap_err();
    assert_eq!(e.exit_code().code(), 2, "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with("t.toml:"), "{msg}");
    assert!(msg.contains("KMS") && msg.contains("map_policy"), "{msg}");
    // On a consumer with a vb2 queue it stays a setting.
    let enc = text
        .replace("driver = \"display\"", "driver = \"encoder\"")
        .replace("device = \"display0\"", "device = \"encoder0\"");
    if let Err(e) = validate(&enc, "t.toml") {
        assert!(!e.to_string().contains("KMS"), "{e}");
    }
}

#[test]
fn a_display_with_two_links_commits_a_plane_per_link_and_releases_each_at_its_replacements_vblank()
{
    let s = scenario::load_bundled("display-planes").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let summary = scenario::report::text_summary(r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    // Through KMS (no vb2 OUTPUT queue): one commit per frame, a scanout per plane it flipped,
    // every one verified by the display driver.
    assert!(
        r.vb2_queues.iter().all(|q| q.node != "display"),
        "{summary}"
    );
    let d = &r.displays[0];
    // One atomic commit per primary frame, and one of the overlay plane alone for the
    // overlay's last frame, made after the primary's last (super::composite).
    assert_eq!(d.flips, s.frames + 1, "one atomic commit per frame: {d:?}");
    assert!(d.shown > d.flips, "the overlay plane flipped too: {d:?}");
    assert_eq!((d.verified, d.corrupted), (d.shown, 0), "{d:?}");
    assert_eq!(
        d.framebuffers,
        3 + 3,
        "a framebuffer per buffer of both links"
    );
    // Each plane's old buffer is released at a vblank (the start of a display job), one plane
    // at a time: the primary's every frame, the overlay's whenever the GPU had a new frame.
    let v: serde_json::Value = serde_json::from_str(&out.trace.to_chrome_json()).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let vblanks: Vec<f64> = events
        .iter()
        .filter(|e| {
            e["ph"] == "X"
                && e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("display frame"))
        })
        .map(|e| e["ts"].as_f64().unwrap())
        .collect();
    let releases = |link: &str| -> Vec<f64> {
        events
            .iter()
            .filter(|e| e["ph"] == "i")
            .filter(|e| {
                e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("release {link}[")))
            })
            .map(|e| e["ts"].as_f64().unwrap())
            .collect()
    };
    let (primary, overlay) = (releases("camera->display"), releases("gpu->display"));
    assert_eq!(
        primary.len() as u64,
        s.frames - 1,
        "all but the last frame replaced"
    );
    assert_eq!(overlay.len() as u64, d.shown - s.frames - 1, "{d:?}");
    for t in primary.iter().chain(&overlay) {
        assert!(vblanks.contains(t), "a release at {t} us, not at a vblank");
    }
}

#[test]
fn a_30_fps_overlay_under_a_60_hz_display_is_held_until_replaced_and_every_frame_has_a_cause() {
    // The overlay camera at half the primary's rate: its 120 frames take twice as long, so
    // for the second half the primary brings nothing. The display then commits the overlay's
    // plane alone (the primary plane keeping its last framebuffer); before, it waited for a
    // primary frame that never came: the overlay's buffers never came back, its camera
    // dropped `queue_full` and three frames held on the way never reached the display.
    let text = scenario::bundled_text("display-planes")
        .unwrap()
        .replace("fps = 60", "fps = 30");
    let s = validate(&text, "t.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    let r = &out.report;
    let summary = scenario::report::text_summary(r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    // Every frame of both cameras delivered or lost with a cause; none queue_full.
    let f = &r.frames;
    assert_eq!(f.produced, 2 * s.frames, "{summary}");
    assert_eq!(
        f.produced,
        f.delivered + f.dropped + f.corrupted + f.merged,
        "{summary}"
    );
    for n in &r.nodes {
        assert!(n.unexplained.is_none(), "{summary}");
        assert!(
            n.dropped.keys().all(|c| c == "merged"),
            "{}: {:?}",
            n.name,
            n.dropped
        );
    }
    let d = &r.displays[0];
    assert_eq!((d.verified, d.corrupted), (d.shown, 0), "{d:?}");
    // Every overlay frame flipped once: the primary's 120 scanouts and the overlay's 120.
    assert_eq!(d.shown, 2 * s.frames, "{d:?}");
    let v: serde_json::Value = serde_json::from_str(&out.trace.to_chrome_json()).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let size = |link: &str| {
        r.buffers
            .iter()
            .find(|b| b.name == format!("{link}[0]"))
            .map(|b| b.size)
            .unwrap()
    };
    let (primary_size, overlay_size) = (size("camera->display"), size("gpu->display"));
    // Each commit: its vblank and which planes it flipped (what it read).
    let commits: Vec<(f64, bool, bool)> = events
        .iter()
        .filter(|e| {
            e["ph"] == "X"
                && e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("display frame"))
        })
        .map(|e| {
            let bytes = e["args"]["bytes"].as_u64().unwrap();
            let both = primary_size + overlay_size;
            assert!([primary_size, overlay_size, both].contains(&bytes), "{e}");
            let ts = e["ts"].as_f64().unwrap();
            (ts, bytes != overlay_size, bytes != primary_size)
        })
        .collect();
    let flips: Vec<f64> = commits.iter().filter(|c| c.2).map(|c| c.0).collect();
    assert_eq!(flips.len() as u64, s.frames, "every overlay frame shown");
    // The primary flips at every vblank while it runs: its commits are consecutive.
    let period = 1e6 / 60.0;
    let primary: Vec<f64> = commits.iter().filter(|c| c.1).map(|c| c.0).collect();
    assert_eq!(primary.len() as u64, s.frames);
    for w in primary.windows(2) {
        assert!(
            (w[1] - w[0] - period).abs() < 1.0,
            "a vblank skipped: {w:?}"
        );
    }
    // An overlay frame stays on screen over the commits that follow until the next one
    // latches: its buffer is released at exactly that vblank, never at another.
    let released: Vec<f64> = events
        .iter()
        .filter(|e| {
            e["ph"] == "i"
                && e["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("release gpu->display["))
        })
        .map(|e| e["ts"].as_f64().unwrap())
        .collect();
    assert_eq!(released, flips[1..], "released at the replacement's vblank");
    // The overlay's 30 fps: past its first, each frame is on screen two vblanks, held over
    // the commit between that flips the primary alone.
    for w in flips.windows(2).skip(1) {
        assert!(
            (w[1] - w[0] - 2.0 * period).abs() < 1.0,
            "overlay frame on screen {} us",
            w[1] - w[0]
        );
    }
}
