//! The scenarios shipped in the binary (and as files under `scenarios/` at the workspace root).
//!
//! Each shows one thing the seeds argue about; `dmabuf scenarios` lists them with the line here,
//! and `dmabuf run` without an argument runs [`DEFAULT`].

use crate::error::ScenarioError;
use crate::validate::{validate, Scenario};

/// The name of the scenario `dmabuf run` runs by default.
pub const DEFAULT: &str = "default";

static BUNDLED: [(&str, &str, &str); 25] = [
    (
        "default",
        "4K NV12 camera -> ISP -> GPU -> display at 60 fps; an encoder without an IOMMU joins at \
         frame 300 and forces the ISP's buffers to migrate to CMA",
        include_str!("../../../scenarios/default.toml"),
    ),
    (
        "luma-chroma-banks",
        "NV12 with the luma plane in one DRAM bank and the chroma plane in the other (seed 002)",
        include_str!("../../../scenarios/luma-chroma-banks.toml"),
    ),
    (
        "gpu-vram-pressure",
        "GPU buffers in VRAM scanned out through KMS; VRAM pressure evicts those not on screen \
         (pinned) to system memory and back",
        include_str!("../../../scenarios/gpu-vram-pressure.toml"),
    ),
    (
        "carveout-unreachable",
        "a carveout buffer shared with a display that cannot reach the carveout: a clear error, \
         nothing lost",
        include_str!("../../../scenarios/carveout-unreachable.toml"),
    ),
    (
        "streamoff-cycles",
        "STREAMOFF/STREAMON cycles with the same dma-bufs under both vb2 map policies \
         (keep_mapped and unmap_on_dequeue)",
        include_str!("../../../scenarios/streamoff-cycles.toml"),
    ),
    (
        "unsatisfiable",
        "a constraint set no memory meets (both planes above 4 GiB for a 32-bit camera and a 30-bit display): the \
         explaining error",
        include_str!("../../../scenarios/unsatisfiable.toml"),
    ),
    (
        "process-killed",
        "the encoder's process is killed mid-stream: its fds close, the display keeps streaming, \
         nothing leaks",
        include_str!("../../../scenarios/process-killed.toml"),
    ),
    (
        "encoder-rle",
        "an RLE encoder writes a real bitstream into its own buffer while the display shows the \
         same frames",
        include_str!("../../../scenarios/encoder-rle.toml"),
    ),
    (
        "swapchain-dri2",
        "a dri2 swapchain: the display side allocates from CMA and hands the buffers to the GPU, \
         grown on demand up to 3 in flight",
        include_str!("../../../scenarios/swapchain-dri2.toml"),
    ),
    (
        "swapchain-wayland",
        "a wayland swapchain: the client GPU allocates and exports its buffers, one in flight at \
         a time",
        include_str!("../../../scenarios/swapchain-wayland.toml"),
    ),
    (
        "udmabuf",
        "the ISP shares its output as a udmabuf: a sealed memfd of its process turned into a \
         dma-buf",
        include_str!("../../../scenarios/udmabuf.toml"),
    ),
    (
        "userptr",
        "the ISP writes into its own process memory (a memfd), shared with the GPU as a udmabuf \
         of it",
        include_str!("../../../scenarios/userptr.toml"),
    ),
    (
        "explicit-sync",
        "frames travel with sync_file fds of their producers' job fences instead of implicit \
         fences",
        include_str!("../../../scenarios/explicit-sync.toml"),
    ),
    (
        "missing-cache-sync",
        "a thumbnailer reads a frame on the CPU without DMA_BUF_IOCTL_SYNC: stale bytes and a \
         cpu-stale-read finding",
        include_str!("../../../scenarios/missing-cache-sync.toml"),
    ),
    (
        "missing-fence-wait",
        "the encoder skips the wait on the GPU's fence once: a torn frame and a fence-conflict \
         finding",
        include_str!("../../../scenarios/missing-fence-wait.toml"),
    ),
    (
        "early-release",
        "the ISP writes a buffer the display is still scanning out: a torn frame and a \
         fence-conflict finding",
        include_str!("../../../scenarios/early-release.toml"),
    ),
    (
        "wrong-direction",
        "the ISP, then the display, map their buffers for the wrong DMA direction: an IOMMU \
         fault and a lost frame, then reads against the direction of the only mapping",
        include_str!("../../../scenarios/wrong-direction.toml"),
    ),
    (
        "rk3588-camera",
        "RK3588: VICAP -> ISP0 -> rkvenc + VOP2 behind their IOMMUs; RGA2 (no IOMMU, 32-bit) \
         attaches at frame 150 and forces the ISP's buffers below 4 GiB",
        include_str!("../../../scenarios/rk3588-camera.toml"),
    ),
    (
        "rk3588-two-cameras",
        "RK3588: two cameras -> ISP0/ISP1 -> UMA Mali composite -> VOP2 + rkvenc on one DDR \
         controller; RGA2 (no IOMMU, 32-bit) attaches to ISP0's output at frame 150 and moves it \
         into CMA",
        include_str!("../../../scenarios/rk3588-two-cameras.toml"),
    ),
    (
        "rk3588-relayout",
        "RK3588: VICAP -> Mali -> VOP2 sharing AFBC; rkvenc (linear only) attaches at frame 150 \
         and the buffers are re-laid out to linear",
        include_str!("../../../scenarios/rk3588-relayout.toml"),
    ),
    (
        "imx8mp-camera",
        "i.MX8MP: ISP -> ISI -> LCDIF, contiguous in CMA (no IOMMU); the 32-bit VC8000E \
         encoder attaches at frame 150 and the CMA placement already serves it",
        include_str!("../../../scenarios/imx8mp-camera.toml"),
    ),
    (
        "rpi5-camera",
        "Raspberry Pi 5: RP1 CFE -> PiSP BE -> software encoder; a vc4 screen (contiguous \
         only) is plugged in at frame 150 and forces the buffers into CMA",
        include_str!("../../../scenarios/rpi5-camera.toml"),
    ),
    (
        "scale-convert",
        "a 4K NV12 camera -> m2m scaler (2x2 box, BT.601) -> 1080p XRGB8888 display",
        include_str!("../../../scenarios/scale-convert.toml"),
    ),
    (
        "transcode",
        "camera -> RLE encoder -> decoder (two reference frames it holds) -> display, each \
         decoded frame bit-exact",
        include_str!("../../../scenarios/transcode.toml"),
    ),
    (
        "display-planes",
        "a camera on the display's primary plane and a GPU overlay of a second camera on another \
         plane: one atomic commit per frame",
        include_str!("../../../scenarios/display-planes.toml"),
    ),
];

/// The bundled scenarios: `(name, one-line description, TOML text)`, [`DEFAULT`] first.
///
/// ```
/// let all = scenario::bundled();
/// assert_eq!(all[0].0, scenario::DEFAULT);
/// for (name, _, text) in all {
///     scenario::validate(text, name).unwrap();
/// }
/// ```
pub fn bundled() -> &'static [(&'static str, &'static str, &'static str)] {
    &BUNDLED
}

/// The text of the bundled scenario `name`.
pub fn bundled_text(name: &str) -> Option<&'static str> {
    BUNDLED.iter().find(|b| b.0 == name).map(|b| b.2)
}

/// Validates the bundled scenario `name` (its file is shown as `<bundled NAME>`). Errors:
/// [`ScenarioError::UnknownBundled`] listing the names.
pub fn load_bundled(name: &str) -> Result<Scenario, ScenarioError> {
    let text = bundled_text(name).ok_or_else(|| ScenarioError::UnknownBundled {
        name: name.to_string(),
        known: BUNDLED.iter().map(|b| b.0).collect::<Vec<_>>().join(", "),
    })?;
    validate(text, &format!("<bundled {name}>"))
}
