//! Jobs of different devices on disjoint buffers, out on a pool at once
//! ([`DeviceJob::spawn_on`]): the same bytes and effects as each executed alone, one after the
//! other, whatever order they are waited for in.

use super::jobs::{shared, view};
use drivers::frame;
use drivers::isp::IspTransform;
use drivers::job::{DeviceJob, JobEffects, JobInput, JobOutput, Op, Pool};
use drivers::pattern::TestPattern;

/// 1280x720 NV12: several pieces per plane.
const W: u64 = 1280;
const H: u64 = 720;
const LUMA: u64 = W * H;
const SIZE: u64 = LUMA * 3 / 2;

fn planes() -> Vec<(u64, u64)> {
    vec![(0, LUMA), (LUMA, LUMA / 2)]
}

/// What one round leaves: each job's effects (without views) and each written buffer's bytes.
type Round = (Vec<(Vec<bool>, Vec<u64>, bool)>, Vec<Vec<u8>>);

/// A camera writes `a`, an ISP inverts `src` into `b`, a display scans `src` out: serially
/// (`pool` `None`) or all three out on `pool` at once, waited for last-spawned first.
fn round(pool: Option<&Pool>, seed: u64, frame_no: u64) -> Round {
    let dma = dmabuf::testing::mock_dma();
    let cam = dma.device("camera0").unwrap();
    let isp = dma.device("isp0").unwrap();
    let disp = dma.device("display0").unwrap();
    let src = shared(&dma, &[&cam, &isp, &disp], SIZE);
    let a = shared(&dma, &[&cam], SIZE);
    let b = shared(&dma, &[&isp], SIZE);
    let capture = |buf, frame| {
        DeviceJob::new(Op::Capture {
            pattern: TestPattern::Noise,
            seed,
            frame,
        })
        .output(JobOutput {
            view: view(buf, &cam),
            planes: planes(),
            bytes_per_line: vec![W, W],
        })
    };
    // The ISP's and the display's input, written before the round.
    let first = capture(&src, frame_no).execute(&dma);
    let sum = first.out_sums[0];
    let jobs = vec![
        capture(&a, frame_no + 1),
        DeviceJob::new(Op::Process(IspTransform::Invert))
            .input(JobInput {
                view: view(&src, &isp),
                planes: planes(),
                expected: sum,
                frame: frame_no,
            })
            .output(JobOutput {
                view: view(&b, &isp),
                planes: planes(),
                bytes_per_line: vec![W, W],
            }),
        DeviceJob::new(Op::Scanout).input(JobInput {
            view: view(&src, &disp),
            planes: planes(),
            expected: sum,
            frame: frame_no,
        }),
    ];
    let fx: Vec<JobEffects> = match pool {
        None => jobs.into_iter().map(|j| j.execute(&dma)).collect(),
        Some(pool) => {
            let running: Vec<_> = jobs.into_iter().map(|j| j.spawn_on(&dma, pool)).collect();
            let mut fx: Vec<JobEffects> = running.into_iter().rev().map(|r| r.wait()).collect();
            fx.reverse();
            fx
        }
    };
    let effects = fx
        .iter()
        .map(|f| (f.inputs_ok.clone(), f.out_sums.clone(), f.error.is_none()))
        .collect();
    let mut bytes = Vec::new();
    for buf in [&a, &b] {
        let mut got = vec![0u8; SIZE as usize];
        buf.read(0, &mut got).unwrap();
        bytes.push(got);
    }
    for buf in [src, a, b] {
        dma.free_attrs(buf).unwrap();
    }
    (effects, bytes)
}

#[test]
fn test_independent_jobs_out_on_a_pool_at_once_move_the_same_bytes_as_one_after_the_other() {
    for (threads, seed, frame_no) in [(2, 1, 3), (3, 7, 40), (4, 99, 1000)] {
        let pool = Pool::new(threads);
        let serial = round(None, seed, frame_no);
        let concurrent = round(Some(&pool), seed, frame_no);
        assert_eq!(concurrent, serial, "{threads} threads, seed {seed}");
        // And what they did is right: every job ran clean, every input verified, the camera's
        // frame is stamped with its number and the ISP's output is the inverse.
        let (effects, bytes) = &serial;
        assert!(effects.iter().all(|e| e.2 && e.0.iter().all(|ok| *ok)));
        assert_eq!(frame::verify_stamp(&bytes[0]), Ok(frame_no as u32 + 1));
        assert_eq!(
            effects[0].1[0],
            frame::checksum(&bytes[0][frame::STAMP_LEN..])
        );
        assert_eq!(
            effects[1].1[0],
            frame::checksum(&bytes[1][frame::STAMP_LEN..])
        );
    }
}

#[test]
fn test_a_job_that_cannot_be_planned_returns_its_error_from_wait() {
    let dma = dmabuf::testing::mock_dma();
    let isp = dma.device("isp0").unwrap();
    let src = shared(&dma, &[&isp], SIZE);
    // A downscale needs whole frames: refused at planning, the error comes back from `wait`.
    let fx = DeviceJob::new(Op::Process(IspTransform::Downscale))
        .input(JobInput {
            view: view(&src, &isp),
            planes: planes(),
            expected: 0,
            frame: 0,
        })
        .spawn_on(&dma, &Pool::new(2))
        .wait();
    assert!(fx.error.is_some());
    assert_eq!(fx.inputs.len(), 1, "the view comes back");
    dma.free_attrs(src).unwrap();
}
