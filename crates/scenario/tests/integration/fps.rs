//! Fractional frame rates: `fps` is an exact rational, frame N starts at
//! floor(N * den * 1e9 / num) ns with no accumulated rounding, and a rate that is not a positive
//! rational is exit 2 at its line and column.

use super::{after, BASE};
use scenario::clock::{Fps, VirtualTime};
use scenario::run::{run, RunOptions};
use scenario::ExitCode;

fn camera_fps(text: &str) -> Fps {
    let s = scenario::validate(text, "t.toml").unwrap();
    s.nodes.iter().find(|n| n.name == "cam").unwrap().fps
}

fn with_cam_fps(v: &str) -> String {
    BASE.replace("width = 640", &format!("fps = {v}\nwidth = 640"))
}

#[test]
fn tick_one_million_at_ntsc_is_exact() {
    let ntsc = camera_fps(&with_cam_fps("\"30000/1001\""));
    assert_eq!((ntsc.num(), ntsc.den()), (30000, 1001));
    // 1e6 * 1001 * 1e9 / 30000 = 33,366,666,666,666.67 ns, floored.
    assert_eq!(ntsc.tick(1_000_000), VirtualTime(33_366_666_666_666));
    assert_eq!(ntsc.tick(30000), VirtualTime(1001 * 1_000_000_000));
}

#[test]
fn sixty_fps_does_not_drift_over_a_million_frames() {
    let fps = Fps::from_int(60);
    let exact = fps.tick(1_000_000).as_ns();
    assert_eq!(exact, 16_666_666_666_666);
    // What adding the rounded period did: 333 µs late after a million frames.
    let accumulated = VirtualTime::frame_period(60).as_ns() * 1_000_000;
    assert_eq!(accumulated - exact, 333_334);
}

#[test]
fn a_decimal_is_the_same_rational_as_its_fraction() {
    let dec = camera_fps(&with_cam_fps("29.97"));
    let frac = camera_fps(&with_cam_fps("\"2997/100\""));
    assert_eq!(dec, frac);
    assert_eq!(dec, Fps::new(2997, 100).unwrap());
    assert_eq!(camera_fps(&with_cam_fps("\"29.97\"")), dec);
    assert_eq!(camera_fps(&with_cam_fps("30")), Fps::from_int(30));
    assert_eq!(
        camera_fps(&with_cam_fps("\"60000/2000\"")),
        Fps::from_int(30)
    );
}

#[test]
fn first_tick_at_or_after_inverts_tick() {
    for fps in [
        Fps::new(30000, 1001).unwrap(),
        Fps::new(2997, 100).unwrap(),
        Fps::from_int(60),
        Fps::from_int(7),
    ] {
        for n in [0u64, 1, 2, 999, 1_000_000] {
            let t = fps.tick(n);
            assert_eq!(fps.first_tick_at_or_after(t), n, "{fps} n={n}");
            assert_eq!(fps.first_tick_at_or_after(t + VirtualTime(1)), n + 1);
        }
    }
}

#[test]
fn bad_rates_are_exit_2_at_their_column_saying_what_is_accepted() {
    for bad in [
        "\"30000/0\"",
        "\"abc\"",
        "0",
        "-30",
        "\"-30\"",
        "nan",
        "-29.97",
        "inf",
        "\"99999999999999999999\"",
        "\"1.123456789012345678901\"",
        "1e300",
        "\"1/2/3\"",
        "\"\"",
        "true",
    ] {
        let t = with_cam_fps(bad);
        let e = scenario::validate(&t, "t.toml").expect_err(bad);
        assert_eq!(e.exit_code(), ExitCode::Invalid, "{bad}");
        let loc = e.location().expect("located");
        assert_eq!((loc.line, loc.column), after(&t, "fps = "), "{bad}: {e}");
        let shown = e.to_string();
        assert!(
            shown.contains("expected") && (shown.contains("30000/1001") || shown.contains("1 to")),
            "{bad}: {shown}"
        );
    }
}

#[test]
fn a_camera_at_ntsc_rate_to_a_59_94_display_verifies_on_exact_ticks() {
    let t = with_cam_fps("\"30000/1001\"").replace(
        "device = \"display0\"",
        "device = \"display0\"\nfps = 59.94",
    );
    let s = scenario::validate(&t, "t.toml").unwrap();
    let out = run(&s, &RunOptions::default());
    assert_eq!(
        out.report.exit_code(),
        ExitCode::Verified,
        "{}",
        out.report.to_json()
    );
    let ntsc = Fps::new(30000, 1001).unwrap();
    let display = Fps::new(5994, 100).unwrap();
    let captures: Vec<u64> = out
        .trace
        .events()
        .iter()
        .filter(|e| e.name.starts_with("cam frame"))
        .map(|e| e.at.as_ns())
        .collect();
    assert_eq!(captures.len(), 10);
    for (i, &at) in captures.iter().enumerate() {
        assert_eq!(at, ntsc.tick(i as u64).as_ns(), "capture {i}");
    }
    let shows: Vec<u64> = out
        .trace
        .events()
        .iter()
        .filter(|e| e.name.starts_with("screen frame"))
        .map(|e| e.at.as_ns())
        .collect();
    assert_eq!(shows.len(), 10);
    for &at in &shows {
        let v = display.tick(display.first_tick_at_or_after(VirtualTime(at)));
        assert_eq!(v.as_ns(), at, "display at {at} ns is off the 59.94 Hz grid");
    }
}
