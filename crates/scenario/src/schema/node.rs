//! `[[nodes]]`: a driver bound to a device.

use drivers::format::FormatInfo;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The simulated driver a node runs (the `drivers` crate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverKind {
    /// A capture device: writes a test pattern with the frame number and a checksum into each
    /// buffer of its capture queue.
    Camera,
    /// A memory-to-memory processor: reads its output queue, writes its capture queue.
    Isp,
    /// A GPU: composites its inputs into its own buffers, with fences.
    Gpu,
    /// Scanout: reads and verifies every pixel it shows.
    Display,
    /// A video encoder: reads frames and checksums or compresses them.
    Encoder,
    /// A software thumbnailer: maps a buffer on the CPU, downscales it and writes a JPEG.
    Thumbnailer,
    /// A memory-to-memory scaler and format converter (RGA, G2D, PXP): reads its output queue,
    /// writes its capture queue at the node's own size and format ([`drivers::scaler`]).
    Scaler,
    /// A video decoder: reads the RLE bitstream an encoder writes from its output queue and
    /// writes the frames into its capture queue, through reference frames it holds
    /// ([`drivers::decoder`]).
    Decoder,
}

impl DriverKind {
    /// The name used in scenario files (`"camera"`).
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::Camera => "camera",
            DriverKind::Isp => "isp",
            DriverKind::Gpu => "gpu",
            DriverKind::Display => "display",
            DriverKind::Encoder => "encoder",
            DriverKind::Thumbnailer => "thumbnailer",
            DriverKind::Scaler => "scaler",
            DriverKind::Decoder => "decoder",
        }
    }

    /// Whether the node produces buffers (may be a link's `from`; an encoder only with
    /// `codec = "rle"`, into a decoder).
    pub fn produces(self) -> bool {
        matches!(
            self,
            DriverKind::Camera
                | DriverKind::Isp
                | DriverKind::Gpu
                | DriverKind::Scaler
                | DriverKind::Decoder
                | DriverKind::Encoder
        )
    }

    /// Whether the node consumes buffers (may be a link's `to`).
    pub fn consumes(self) -> bool {
        !matches!(self, DriverKind::Camera)
    }

    /// The vb2 queues the node's driver has, which `stream_off`/`stream_on` events may name.
    pub fn queues(self) -> &'static [super::QueueKind] {
        use super::QueueKind::{Capture, Output};
        match self {
            DriverKind::Camera => &[Capture],
            // An encoder's CAPTURE queue exists when it feeds a link (the bitstream's);
            // validation refuses it on one that writes into a buffer of its own.
            DriverKind::Isp | DriverKind::Scaler | DriverKind::Decoder | DriverKind::Encoder => {
                &[Output, Capture]
            }
            DriverKind::Display => &[Output],
            DriverKind::Gpu | DriverKind::Thumbnailer => &[],
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A pixel format: an entry of the drivers' format table ([`drivers::format::FORMATS`]), named
/// as scenarios write it (`"NV12"`, `"P010"`, `"XRGB8888"`, `"SRGGB10P"`).
///
/// ```
/// use scenario::schema::PixelFormat;
/// let f = PixelFormat::by_name("NV16").unwrap();
/// assert_eq!((f.num_planes(), f.frame_size(64, 64)), (2, 64 * 64 * 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PixelFormat(&'static str);

impl Default for PixelFormat {
    fn default() -> Self {
        PixelFormat("NV12")
    }
}

/// One plane of a frame: bytes per line and total bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Bytes per line.
    pub bytes_per_line: u64,
    /// Bytes in the plane.
    pub size: u64,
}

impl PixelFormat {
    /// The format named `name` in the table, if any.
    pub fn by_name(name: &str) -> Option<PixelFormat> {
        FormatInfo::by_name(name).map(|f| PixelFormat(f.name))
    }

    /// The table entry.
    pub fn info(self) -> &'static FormatInfo {
        FormatInfo::by_name(self.0).unwrap_or(&drivers::format::FORMATS[0])
    }

    /// The name used in scenario files (`"NV12"`).
    pub fn name(self) -> &'static str {
        self.0
    }

    /// Number of planes (NV12 as the multi-planar `NV12M`: luma and chroma apart).
    pub fn num_planes(self) -> usize {
        self.info().planes.len()
    }

    /// Human names of the planes, for messages (`["luma (Y)", "chroma (CbCr)"]`).
    pub fn plane_names(self) -> Vec<&'static str> {
        self.info().planes.iter().map(|p| p.name).collect()
    }

    /// The planes of a `width` x `height` frame, laid out by the format table.
    ///
    /// ```
    /// use scenario::schema::PixelFormat;
    /// let p = PixelFormat::default().planes(3840, 2160);
    /// assert_eq!((p[0].size, p[1].size), (3840 * 2160, 3840 * 2160 / 2));
    /// ```
    pub fn planes(self, width: u32, height: u32) -> Vec<PlaneLayout> {
        self.info()
            .layout(width, height)
            .into_iter()
            .map(|p| PlaneLayout {
                bytes_per_line: p.bytes_per_line,
                size: p.size,
            })
            .collect()
    }

    /// Total bytes of a frame.
    pub fn frame_size(self, width: u32, height: u32) -> u64 {
        self.info().frame_size(width, height)
    }

    /// Whether the width must be even (chroma subsampled horizontally, or packed blocks).
    pub fn needs_even_width(self) -> bool {
        self.info().width_multiple.is_multiple_of(2)
    }

    /// Whether the height must be even (chroma subsampled vertically, or a Bayer pattern).
    pub fn needs_even_height(self) -> bool {
        self.info().height_multiple.is_multiple_of(2)
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for PixelFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for PixelFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        PixelFormat::by_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown format `{name}`, expected one of {}",
                drivers::format::format_names()
            ))
        })
    }
}

/// When vb2 unmaps the DMABUF planes it imported (seed 004's debate; `vb2::MapPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapPolicy {
    /// Mainline since about v5.1: planes stay mapped across DQBUF and STREAMOFF.
    #[default]
    KeepMapped,
    /// v3.8 to about v5.0: DQBUF and STREAMOFF unmap; the next QBUF maps again.
    UnmapOnDequeue,
}

/// What a camera writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestPattern {
    /// Colour bars with the frame number stamped in.
    #[default]
    Bars,
    /// A diagonal ramp that moves one pixel per frame.
    Ramp,
    /// Pseudo-random bytes from the scenario seed and the frame number.
    Noise,
}

/// What an ISP does to each frame (deterministic, so a test can recompute it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IspTransform {
    /// Copies the frame.
    Copy,
    /// Inverts every byte.
    #[default]
    Invert,
    /// Swaps Cb and Cr.
    SwapUv,
}

/// The GPU-to-display swapchain mode of seed 000.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapchainMode {
    /// "Give me the next buffer to draw into".
    Dri2,
    /// "Here is the next buffer I drew".
    #[default]
    Wayland,
}

/// What an encoder makes of a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderCodec {
    /// Verifies each frame; writes nothing.
    #[default]
    Checksum,
    /// Run-length encoding of the frame (`(count, byte)` pairs) into a bitstream buffer the
    /// encoder owns and writes by DMA.
    Rle,
}

impl From<TestPattern> for drivers::pattern::TestPattern {
    fn from(p: TestPattern) -> Self {
        match p {
            TestPattern::Bars => drivers::pattern::TestPattern::Bars,
            TestPattern::Ramp => drivers::pattern::TestPattern::Ramp,
            TestPattern::Noise => drivers::pattern::TestPattern::Noise,
        }
    }
}

impl From<IspTransform> for drivers::isp::IspTransform {
    fn from(t: IspTransform) -> Self {
        match t {
            IspTransform::Copy => drivers::isp::IspTransform::Copy,
            IspTransform::Invert => drivers::isp::IspTransform::Invert,
            IspTransform::SwapUv => drivers::isp::IspTransform::SwapUv,
        }
    }
}

impl From<EncoderCodec> for drivers::encoder::Codec {
    fn from(c: EncoderCodec) -> Self {
        match c {
            EncoderCodec::Checksum => drivers::encoder::Codec::Checksum,
            EncoderCodec::Rle => drivers::encoder::Codec::Rle,
        }
    }
}

/// Driver parameters. Each applies to some driver kinds only; naming one on another kind is an
/// error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeParams {
    /// camera: the test pattern (default `bars`).
    #[serde(default)]
    pub pattern: Option<TestPattern>,
    /// isp: the transform (default `invert`).
    #[serde(default)]
    pub transform: Option<IspTransform>,
    /// gpu, display: the swapchain mode between them (default `wayland`).
    #[serde(default)]
    pub swapchain: Option<SwapchainMode>,
    /// gpu, display: most buffers the swapchain lets be in flight (default: grow until allocation
    /// fails).
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// gpu: the device-local bank its exporter may place buffers in (default: the only
    /// device-local bank, if there is exactly one).
    #[serde(default)]
    pub vram: Option<String>,
    /// gpu: its exporter places shared buffers in VRAM for importers that allow peer-to-peer
    /// (every device attaching the GPU's buffers then attaches dynamically, as a DRM/KMS
    /// importer does, and gets `move_notify` when VRAM pressure evicts them; default `false`:
    /// importers are static and the buffers live in GTT).
    #[serde(default)]
    pub p2p: Option<bool>,
    /// encoder: what it makes of a frame (default `checksum`).
    #[serde(default)]
    pub codec: Option<EncoderCodec>,
    /// thumbnailer: the frame it takes (default 0).
    #[serde(default)]
    pub frame: Option<u64>,
    /// thumbnailer: the downscale divisor, 1 to 64 (default 8).
    #[serde(default)]
    pub scale: Option<u32>,
    /// thumbnailer: JPEG quality, 1 to 100 (default 85).
    #[serde(default)]
    pub quality: Option<u8>,
}

impl NodeParams {
    /// The parameters that are set, with the driver kinds each applies to.
    pub(crate) fn set(&self) -> Vec<(&'static str, &'static [DriverKind])> {
        use DriverKind::*;
        let mut v: Vec<(&'static str, &'static [DriverKind])> = Vec::new();
        let mut add = |set: bool, name, kinds| {
            if set {
                v.push((name, kinds));
            }
        };
        add(self.pattern.is_some(), "pattern", &[Camera]);
        add(self.transform.is_some(), "transform", &[Isp]);
        add(self.swapchain.is_some(), "swapchain", &[Gpu, Display]);
        add(
            self.max_in_flight.is_some(),
            "max_in_flight",
            &[Gpu, Display],
        );
        add(self.vram.is_some(), "vram", &[Gpu]);
        add(self.p2p.is_some(), "p2p", &[Gpu]);
        add(self.codec.is_some(), "codec", &[Encoder]);
        add(self.frame.is_some(), "frame", &[Thumbnailer]);
        add(self.scale.is_some(), "scale", &[Thumbnailer]);
        add(self.quality.is_some(), "quality", &[Thumbnailer]);
        v
    }
}

fn default_width() -> u32 {
    1920
}

fn default_height() -> u32 {
    1080
}

fn default_true() -> bool {
    true
}

/// A driver bound to a device of the machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDesc {
    /// Name, unique among nodes; links and events refer to it.
    pub name: String,
    /// The driver.
    pub driver: DriverKind,
    /// The device of `[soc]` the driver drives (its DMA engine, mask, IOMMU).
    pub device: String,
    /// The simulated process that owns the node's queues and fds (default: the node's name).
    /// Nodes may share a process; a `kill` event closes all its fds.
    #[serde(default)]
    pub process: Option<String>,
    /// Pixel format of the frames the node produces or expects (default `NV12`).
    #[serde(default)]
    pub format: PixelFormat,
    /// Frame width in pixels (default 1920).
    #[serde(default = "default_width")]
    pub width: u32,
    /// Frame height in pixels (default 1080).
    #[serde(default = "default_height")]
    pub height: u32,
    /// Frames per second the node is clocked at: a camera's capture rate, a display's refresh;
    /// other nodes process at most this many frames a second (default 60). An exact rational:
    /// `60`, `29.97` or `"30000/1001"` ([`crate::clock::Fps`]).
    #[serde(default)]
    pub fps: crate::clock::Fps,
    /// Whether the node is attached from the start (default true); one that is not joins with an
    /// `attach` event.
    #[serde(default = "default_true")]
    pub attached: bool,
    /// When the node's vb2 queues unmap imported planes (default `keep_mapped`).
    #[serde(default)]
    pub map_policy: MapPolicy,
    /// Driver parameters.
    #[serde(default)]
    pub params: NodeParams,
}

impl NodeDesc {
    /// The process that owns the node (its `process`, or its name).
    pub fn process_name(&self) -> &str {
        self.process.as_deref().unwrap_or(&self.name)
    }

    /// Bytes of one frame.
    pub fn frame_size(&self) -> u64 {
        self.format.frame_size(self.width, self.height)
    }
}
