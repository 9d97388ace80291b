//! The swapchain in both of seed 000's modes: buffers recycled, the number in flight growing
//! on demand while the GPU lags until allocation fails (the producer waits), and shrinking back
//! when the pipeline catches up.

use crate::pipeline::{checker_clean, small};
use drivers::display::{Display, DisplayConfig, Expect};
use drivers::frame;
use drivers::gpu::{BoDesc, Gpu, GpuBo, GpuConfig, RingMode};
use drivers::swapchain::{SlotState, SwapMode, Swapchain, SwapchainConfig};
use kernel::Kernel;
use soc::{ByteSize, SocDesc};
use std::sync::Arc;
use std::time::Duration;

const SCENES: u32 = 4;

/// A machine with a 64 KiB CMA region, a manual-ring GPU whose GTT holds 16 pages, a display,
/// and a swapchain in `mode`.
fn rig(mode: SwapMode) -> (Arc<Kernel>, Gpu, Swapchain, Vec<GpuBo>) {
    let mut d = SocDesc::default_soc();
    d.cma[0].size = ByteSize(64 << 10);
    let kernel = Kernel::boot(d).unwrap();
    let gpu = Gpu::new(
        kernel.dma(),
        GpuConfig {
            ring: RingMode::Manual,
            gtt_budget: Some(64 << 10),
            evict_timeout: Duration::from_millis(5),
            ..GpuConfig::default()
        },
    )
    .unwrap();
    let fmt = small();
    let scenes: Vec<GpuBo> = (0..SCENES)
        .map(|n| {
            let bo = gpu
                .create_bo(BoDesc::vram(&format!("scene{n}"), fmt.size() as u64))
                .unwrap();
            bo.write(0, &frame::pattern(fmt, n)).unwrap();
            bo
        })
        .collect();
    let display = Arc::new(Display::new(kernel.dma(), DisplayConfig::new(fmt)).unwrap());
    let sc = Swapchain::new(&kernel, &gpu, display, SwapchainConfig::new(mode, fmt)).unwrap();
    (kernel, gpu, sc, scenes)
}

fn grows_until_allocation_fails_then_shrinks(mode: SwapMode) {
    let (kernel, gpu, mut sc, scenes) = rig(mode);
    let mut n = 0u32;
    // The GPU stalls: every presented frame stays in flight, so each new frame needs a new
    // buffer, until memory runs out and the producer has to wait.
    let mut waited = false;
    for _ in 0..40 {
        let scene = &scenes[(n % SCENES) as usize];
        match sc.draw_frame(scene, Expect::Frame(n % SCENES)).unwrap() {
            Some(_) => n += 1,
            None => {
                waited = true;
                break;
            }
        }
        sc.vblank().unwrap();
    }
    assert!(waited, "allocation must fail before 40 buffers: {sc:?}");
    let grown = sc.buffers();
    let s = sc.stats();
    assert!(grown >= 3, "{s:?}");
    assert_eq!(s.allocations as usize, grown);
    assert_eq!(s.max_in_flight, grown, "every buffer in flight");
    assert!(s.alloc_failures >= 1 && s.waits >= 1, "{s:?}");
    assert!(sc.states().iter().all(|&st| st != SlotState::Free));
    assert_eq!(sc.display().stats().shown, 0, "nothing ready to show");

    // The GPU catches up: frames show in order, buffers come back and spares are freed.
    for _ in 0..40 {
        gpu.run_pending();
        sc.vblank().unwrap();
        let scene = &scenes[(n % SCENES) as usize];
        if sc
            .draw_frame(scene, Expect::Frame(n % SCENES))
            .unwrap()
            .is_some()
        {
            n += 1;
        }
        gpu.run_pending();
    }
    for _ in 0..8 {
        gpu.run_pending();
        sc.vblank().unwrap();
    }
    let s = sc.stats();
    let ds = sc.display().stats();
    assert_eq!(ds.corrupted, 0, "{ds:?}");
    assert_eq!(ds.verified, ds.shown);
    assert_eq!(
        ds.shown,
        u64::from(n),
        "every presented frame shown: {ds:?}"
    );
    assert!(s.frees > 0, "{s:?}");
    assert!(
        sc.buffers() < grown,
        "shrunk from {grown} to {}",
        sc.buffers()
    );
    assert!(sc.buffers() >= 2, "keeps min_buffers");
    assert_eq!(s.presented, u64::from(n));
    drop(sc);
    drop(scenes);
    checker_clean(&kernel);
}

#[test]
fn dri2_swapchain_grows_until_cma_is_exhausted_then_shrinks_back() {
    grows_until_allocation_fails_then_shrinks(SwapMode::Dri2);
}

#[test]
fn wayland_swapchain_grows_until_gtt_is_exhausted_then_shrinks_back() {
    grows_until_allocation_fails_then_shrinks(SwapMode::Wayland);
}

#[test]
fn a_steady_pipeline_recycles_two_buffers_in_both_modes() {
    for mode in [SwapMode::Dri2, SwapMode::Wayland] {
        let (kernel, gpu, mut sc, scenes) = rig(mode);
        for n in 0..20u32 {
            sc.draw_frame(&scenes[(n % SCENES) as usize], Expect::Frame(n % SCENES))
                .unwrap()
                .unwrap();
            gpu.run_pending();
            sc.vblank().unwrap();
        }
        let s = sc.stats();
        // One drawn while the other is on screen (shown, not in flight).
        assert_eq!(
            (s.allocations, s.waits, s.max_in_flight),
            (2, 0, 1),
            "{mode:?}: {s:?}"
        );
        let ds = sc.display().stats();
        assert_eq!((ds.shown, ds.verified), (20, 20), "{mode:?}");
        drop(sc);
        checker_clean(&kernel);
    }
}

#[test]
fn a_swapchain_refuses_a_display_of_another_format() {
    let (kernel, gpu, _sc, _) = rig(SwapMode::Dri2);
    let other = drivers::frame::FrameFormat::new(32, 16).unwrap();
    let display = Arc::new(Display::new(kernel.dma(), DisplayConfig::new(other)).unwrap());
    let cfg = SwapchainConfig::new(SwapMode::Wayland, small());
    assert!(Swapchain::new(&kernel, &gpu, display, cfg).is_err());
}

#[test]
fn max_in_flight_makes_the_producer_wait_though_memory_would_allow_another_buffer() {
    let (kernel, gpu, sc, scenes) = rig(SwapMode::Dri2);
    let display = sc.display().clone();
    drop(sc);
    let cfg = SwapchainConfig {
        max_in_flight: Some(2),
        ..SwapchainConfig::new(SwapMode::Dri2, small())
    };
    let mut sc = Swapchain::new(&kernel, &gpu, display, cfg).unwrap();
    for (n, scene) in scenes.iter().take(2).enumerate() {
        let drawn = sc.draw_frame(scene, Expect::Frame(n as u32)).unwrap();
        assert!(drawn.is_some());
    }
    assert_eq!(sc.in_flight(), 2);
    let waits = sc.stats().waits;
    assert!(sc
        .draw_frame(&scenes[2], Expect::Frame(2))
        .unwrap()
        .is_none());
    assert_eq!(sc.stats().waits, waits + 1, "the bound, not memory");
    assert_eq!(sc.buffers(), 2, "nothing allocated");
    // Vblanks show both frames; the first is released and the producer draws again.
    gpu.run_pending();
    sc.vblank().unwrap();
    sc.vblank().unwrap();
    // The second frame is on screen: shown, not in flight (the first was released).
    assert_eq!(sc.in_flight(), 0);
    assert_eq!(sc.states(), vec![SlotState::Free, SlotState::Scanout]);
    assert!(sc
        .draw_frame(&scenes[2], Expect::Frame(2))
        .unwrap()
        .is_some());
    assert_eq!(sc.buffers(), 2, "the released buffer was reused");
    drop(sc);
    checker_clean(&kernel);
}
