//! A display importing a peer-to-peer GPU's buffers dynamically: each flip pins its buffer
//! (`prepare_fb`) until the flip that replaces it latched (`cleanup_fb`), so VRAM pressure
//! evicts the other buffers and never the one on screen or committed for the next vblank.

use crate::pipeline::{boot_with, checker_clean, small};
use drivers::display::{Display, DisplayConfig, Expect, FbCmd2, FbId};
use drivers::frame;
use drivers::gpu::{BoDesc, Gpu, GpuBo, GpuConfig, GpuError, Placement, RingMode};
use std::sync::Arc;
use uapi::{AsErrno, Errno};

/// One 64x48 NV12 frame, in whole pages.
const FB: u64 = 8192;

/// A display behind the IOMMU (it reaches VRAM), a p2p GPU with room for `n` frames in VRAM,
/// `n` frames rendered into VRAM and exported, each a framebuffer imported dynamically.
fn rig(n: u64) -> (Arc<kernel::Kernel>, Gpu, Display, Vec<(GpuBo, FbId)>) {
    let kernel = boot_with("display0", |d| {
        d.iommu = Some("smmu0".into());
        d.dma_mask_bits = 40;
    });
    let cfg = GpuConfig {
        p2p: true,
        vram_budget: Some(n * FB),
        ring: RingMode::Thread,
        ..GpuConfig::default()
    };
    let gpu = Gpu::new(kernel.dma(), cfg).unwrap();
    let d = Display::new(kernel.dma(), DisplayConfig::new(small())).unwrap();
    let cmd = FbCmd2::packed("NV12", 64, 48).unwrap();
    let frames = (0..n)
        .map(|i| {
            let bo = gpu.create_bo(BoDesc::vram(&format!("f{i}"), FB)).unwrap();
            bo.write(0, &frame::pattern(small(), i as u32)).unwrap();
            let buf = gpu.export(&bo).unwrap();
            let fb = d.add_fb2_dynamic(&buf, &cmd).unwrap();
            (bo, fb)
        })
        .collect();
    (kernel, gpu, d, frames)
}

#[test]
fn a_committed_frame_is_pinned_so_pressure_evicts_the_others_and_it_scans_out_intact() {
    let (kernel, gpu, d, f) = rig(3);
    for (bo, _) in &f {
        assert_eq!(bo.placement(), Some(Placement::Vram), "p2p: in VRAM");
    }
    // f0 is committed for the next vblank (its plane holds f0's addresses) and is the least
    // recently used object: without its pin the pressure would take it.
    d.page_flip(f[0].1, None, Expect::Frame(0)).unwrap();
    let pressure = gpu
        .create_bo(BoDesc::vram_only("pressure", 2 * FB))
        .unwrap();
    // The vblank scans out what the commit programmed: f0, intact (unpinned, f0 would have
    // moved and its mapping gone: the scanout would fault on the unmapped range).
    let v = d.vblank().expect("the scanout reads the committed frame");
    assert_eq!((v.shown, v.verified), (Some(f[0].1), Some(true)));
    assert_eq!(f[0].0.pin_count(), 1, "prepare_fb pinned it");
    assert_eq!(
        f[0].0.placement(),
        Some(Placement::Vram),
        "pinned: not evicted"
    );
    assert_eq!(f[1].0.placement(), Some(Placement::Gtt));
    assert_eq!(f[2].0.placement(), Some(Placement::Gtt));
    assert_eq!(d.fb_move_notifies(f[0].1).unwrap(), 0);
    assert_eq!(d.fb_move_notifies(f[1].1).unwrap(), 1);
    // f1 moved while idle: its next flip pins it where it is now and maps the new storage.
    d.page_flip(f[1].1, None, Expect::Frame(1)).unwrap();
    assert_eq!(f[0].0.pin_count(), 1, "still on screen until the vblank");
    let v = d.vblank().unwrap();
    assert_eq!((v.shown, v.verified), (Some(f[1].1), Some(true)));
    assert_eq!(v.released, vec![f[0].1]);
    assert_eq!(
        (f[0].0.pin_count(), f[1].0.pin_count()),
        (0, 1),
        "cleanup_fb unpinned the replaced frame at the vblank that latched f1"
    );
    // Unpinned, f0 is now evictable like any other object.
    drop(pressure);
    let _more = gpu.create_bo(BoDesc::vram_only("more", 3 * FB)).unwrap();
    assert_ne!(f[0].0.placement(), Some(Placement::Vram));
    assert_eq!(
        f[1].0.placement(),
        Some(Placement::Gtt),
        "pinned where it was"
    );
    drop(_more);
    d.disable();
    assert_eq!(f[1].0.pin_count(), 0, "the CRTC off: every pin gone");
    for (_, fb) in &f {
        d.rm_fb(*fb).unwrap();
    }
    checker_clean(&kernel);
}

#[test]
fn pressure_that_needs_the_frame_on_screen_fails_with_enomem_and_the_screen_stays() {
    let (kernel, gpu, d, f) = rig(2);
    d.page_flip(f[0].1, None, Expect::Frame(0)).unwrap();
    assert_eq!(d.vblank().unwrap().verified, Some(true));
    // All of VRAM: f1 can go, f0 is on screen (pinned).
    let err = gpu
        .create_bo(BoDesc::vram_only("pressure", 2 * FB))
        .unwrap_err();
    assert!(matches!(err, GpuError::NoSpace { .. }), "{err}");
    assert_eq!(err.errno(), Errno::ENOMEM, "{err}");
    assert!(err.to_string().contains("1 pinned"), "{err}");
    assert_eq!(f[0].0.placement(), Some(Placement::Vram));
    // The frame on screen is scanned out again, intact.
    d.page_flip(f[0].1, None, Expect::Frame(0)).unwrap();
    let v = d.vblank().unwrap();
    assert_eq!((v.shown, v.verified), (Some(f[0].1), Some(true)));
    assert_eq!(f[0].0.pin_count(), 1, "one pin per flip on screen, not two");
    drop(d);
    assert_eq!(f[0].0.pin_count(), 0);
    checker_clean(&kernel);
}

#[test]
fn a_dropped_or_cancelled_flip_gives_its_pin_back() {
    let (kernel, _gpu, d, f) = rig(2);
    d.page_flip(f[0].1, None, Expect::Frame(0)).unwrap();
    assert_eq!(d.cancel_flips(), vec![f[0].1]);
    assert_eq!(f[0].0.pin_count(), 0);
    assert_eq!(d.scanout(), None);
    d.page_flip(f[1].1, None, Expect::Frame(1)).unwrap();
    assert_eq!(
        d.page_flip(f[0].1, None, Expect::Frame(0))
            .unwrap_err()
            .errno(),
        Errno::EBUSY
    );
    assert_eq!(f[0].0.pin_count(), 0, "a refused flip pins nothing");
    assert_eq!(d.vblank().unwrap().verified, Some(true));
    d.disable();
    for (_, fb) in &f {
        d.rm_fb(*fb).unwrap();
    }
    checker_clean(&kernel);
}
