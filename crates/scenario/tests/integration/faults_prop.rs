//! Randomized: small valid pipelines with random fault events, and random stream-off/on of the
//! sink. The verdict never lies: VERIFIED exactly when no fault was injected and no frame was
//! lost without a cause; every frame is delivered, corrupted or dropped under a cause; a
//! VERIFIED run has no wrong byte, finding or error; corrupted frames come only from a fault
//! that touched a job; every fault event is reported, with the frames it touched.

use proptest::prelude::*;
use scenario::run::{run, RunOptions};
use scenario::ExitCode;

/// The pipelines, each with its sink and the (node, fault) pairs that apply to it.
const SHAPES: [(&str, &[(&str, &str)]); 3] = [
    (
        r#"[[nodes]]
name = "camera"
driver = "camera"
device = "camera0"
width = 160
height = 120
fps = 30

[[nodes]]
name = "isp"
driver = "isp"
device = "isp0"
width = 160
height = 120

[[nodes]]
name = "display"
driver = "display"
device = "display0"
width = 160
height = 120

[[links]]
from = "camera"
to = "isp"
buffers = 3

[[links]]
from = "isp"
to = "display"
buffers = 3
"#,
        &[
            ("isp", "early_release"),
            ("camera", "early_release"),
            ("isp", "wrong_direction"),
            ("display", "wrong_direction"),
        ],
    ),
    (
        r#"[[nodes]]
name = "camera"
driver = "camera"
device = "camera0"
width = 160
height = 120
fps = 30

[[nodes]]
name = "gpu"
driver = "gpu"
device = "gpu0"
format = "XRGB8888"
width = 160
height = 120

[[nodes]]
name = "encoder"
driver = "encoder"
device = "encoder0"
format = "XRGB8888"
width = 160
height = 120

[[links]]
from = "camera"
to = "gpu"
buffers = 3

[[links]]
from = "gpu"
to = "encoder"
buffers = 3
exporter = "gpu"
sync = "explicit"
"#,
        &[
            ("encoder", "skip_fence_wait"),
            ("encoder", "wrong_direction"),
            ("camera", "early_release"),
        ],
    ),
    (
        r#"[[nodes]]
name = "camera"
driver = "camera"
device = "camera0"
width = 160
height = 120
fps = 30

[[nodes]]
name = "isp"
driver = "isp"
device = "isp0"
width = 160
height = 120

[[nodes]]
name = "display"
driver = "display"
device = "display0"
width = 160
height = 120

[[nodes]]
name = "preview"
driver = "thumbnailer"
device = "isp0"
params = { frame = 3, scale = 4 }

[[nodes]]
name = "thumbnailer"
driver = "thumbnailer"
device = "isp0"
params = { frame = 6, scale = 4 }

[[links]]
from = "camera"
to = "isp"
buffers = 3

[[links]]
from = "isp"
to = ["display", "preview", "thumbnailer"]
buffers = 3
"#,
        &[
            ("preview", "skip_cache_sync"),
            ("thumbnailer", "skip_cache_sync"),
            ("isp", "early_release"),
        ],
    ),
];

/// Each shape's sink, whose input queue the stream events stop and restart.
const SINKS: [&str; 3] = ["display", "encoder", "display"];

fn scenario_text(
    shape: usize,
    frames: u64,
    faults: &[(usize, u64, u64)],
    stream: Option<(u64, u64)>,
) -> String {
    let (body, choices) = SHAPES[shape];
    let mut t = format!("name = \"p\"\nseed = 3\nframes = {frames}\n\n{body}");
    // The sink stops its queue after it had frames (one that never had any is a failure of
    // its own) and maybe starts it again.
    if let Some((off, on)) = stream {
        let sink = SINKS[shape];
        let off = 2 + off % (frames - 2);
        t.push_str(&format!(
            "\n[[events]]\nat_frame = {off}\naction = \"stream_off\"\nnode = \"{sink}\"\n"
        ));
        if off + on < frames {
            t.push_str(&format!(
                "\n[[events]]\nat_frame = {}\naction = \"stream_on\"\nnode = \"{sink}\"\n",
                off + on
            ));
        }
    }
    for &(choice, at, n) in faults {
        let (node, fault) = choices[choice % choices.len()];
        t.push_str(&format!(
            "\n[[events]]\nat_frame = {}\naction = \"fault\"\nnode = \"{node}\"\nfault = \"{fault}\"\nfor_frames = {n}\n",
            at % frames
        ));
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn verdicts_follow_the_injected_faults(
        shape in 0usize..3,
        frames in 8u64..14,
        faults in proptest::collection::vec((0usize..4, 0u64..14, 1u64..3), 0..3),
        stream in proptest::option::of((0u64..14, 1u64..6)),
    ) {
        verdict_follows(shape, frames, &faults, stream)?;
    }
}

/// A thumbnailer that skipped its cache sync reads wrong bytes of a frame the display already
/// had: the read corrupts that frame, counted once (it was counted delivered and then corrupted
/// again: 11 outcomes of 10 frames produced).
#[test]
fn a_thumbnailers_wrong_read_of_a_delivered_frame_is_counted_once() {
    verdict_follows(2, 10, &[(1, 0, 1), (3, 10, 1)], Some((9, 4))).expect("holds");
}

/// The property, for one generated case.
fn verdict_follows(
    shape: usize,
    frames: u64,
    faults: &[(usize, u64, u64)],
    stream: Option<(u64, u64)>,
) -> Result<(), TestCaseError> {
    {
        let faults = faults.to_vec();
        let text = scenario_text(shape, frames, &faults, stream);
        let s = scenario::validate(&text, "p.toml").map_err(|e| TestCaseError::fail(e.render()))?;
        let r = run(&s, &RunOptions::default()).report;
        let code = r.exit_code();
        prop_assert!(matches!(code, ExitCode::Verified | ExitCode::Failed));
        // Every fault event is reported, with the frames of the jobs it touched.
        prop_assert_eq!(r.faults.len(), faults.len());
        let touched = r.faults.iter().any(|f| !f.frames.is_empty());
        let summary = scenario::report::text_summary(&r);
        // The report lists faults in time order, the file in generated order: pair each with
        // its event by node, fault and frame (the longest `for_frames` of identical events).
        let (_, choices) = SHAPES[shape];
        for f in &r.faults {
            let n = faults
                .iter()
                .filter(|&&(c, at, _)| {
                    let (node, fault) = choices[c % choices.len()];
                    node == f.node && fault == f.fault && at % frames == f.at_frame
                })
                .map(|&(_, _, n)| n)
                .max();
            prop_assert!(n.is_some(), "a reported fault no event injected: {:?}", f);
            prop_assert!(f.frames.len() as u64 <= n.unwrap_or(0), "{:?}", f);
            let line = format!(
                "fault injected: {} on {} at frame {}",
                f.fault, f.node, f.at_frame
            );
            prop_assert!(summary.contains(&line), "{}", summary);
        }
        // Every frame is delivered, corrupted or dropped under a cause at a node; none is lost
        // without one in a valid pipeline.
        let causes: u64 = r.nodes.iter().flat_map(|n| n.dropped.values()).sum();
        prop_assert_eq!(r.frames.dropped + r.frames.merged, causes, "{:?}", r.nodes);
        prop_assert_eq!(
            r.frames.produced,
            r.frames.delivered + r.frames.dropped + r.frames.corrupted + r.frames.merged
        );
        let unexplained = r.nodes.iter().any(|n| n.unexplained.is_some());
        prop_assert!(!unexplained, "{:?}", r.nodes);
        // VERIFIED iff no fault was injected and no frame was lost without a cause.
        prop_assert_eq!(
            code == ExitCode::Verified,
            faults.is_empty() && !unexplained,
            "{:?} {:?} {}",
            r.errors,
            r.checker.findings,
            text
        );
        if code == ExitCode::Verified {
            prop_assert_eq!(r.frames.corrupted, 0);
            prop_assert!(r.errors.is_empty());
            prop_assert!(r.checker.findings.iter().all(|f| f.expected));
            prop_assert!(r.frames.delivered > 0);
        }
        if r.frames.corrupted > 0 {
            prop_assert!(touched, "corruption without a fault: {}", text);
            prop_assert_eq!(code, ExitCode::Failed);
        }
        prop_assert!(r.corrupted_frames.len() as u64 <= r.frames.corrupted);
    }
    Ok(())
}
