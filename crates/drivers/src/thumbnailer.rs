//! The software thumbnailer of seed 001: a piece of user space that is handed a dma-buf fd it
//! knows nothing about but its format, maps it, reads a frame on the CPU, downscales it and
//! writes a JPEG file.
//!
//! C side: none in the kernel — this is the user of `DMA_BUF_IOCTL_SYNC`
//! (`include/uapi/linux/dma-buf.h`, `dma_buf_ioctl` -> `dma_buf_begin_cpu_access` /
//! `dma_buf_end_cpu_access`) and of the dma-buf `mmap` (`dma_buf_mmap_internal`). Seed 001:
//! "you are decoding video and pull out a frame to generate a thumbnail w/ a sw jpeg encoder".
//!
//! # The concept
//! 1. `mmap` the buffer read-only ([`DmaBuf::mmap`]); pages fault in lazily, cached.
//! 2. `DMA_BUF_IOCTL_SYNC(START | READ)` ([`DmaBuf::begin_cpu_access`] with `FromDevice`): the
//!    exporter invalidates the CPU cache for every non-coherent device that wrote, and the call
//!    waits for the buffer's write fences.
//! 3. Read the frame, then `DMA_BUF_IOCTL_SYNC(END | READ)`.
//! 4. Downscale on the CPU ([`frame::nv12_to_ycbcr`]) and encode with the `jpeg-encoder` crate
//!    (baseline JFIF, YCbCr).
//!
//! Leave out step 2 ([`CpuSync::Skip`]) on a non-coherent path and the CPU reads whatever its
//! cache still holds from an earlier look at the buffer: the thumbnail shows an old frame (the
//! stamp in [`Thumbnail::frame`] says which), and the DMA checker reports the stale read.

use crate::frame::{self, FrameFormat};
use crate::media::MediaError;
use dma::DmaDirection;
use dmabuf::DmaBuf;
use jpeg_encoder::{ColorType, Encoder};
use std::path::{Path, PathBuf};

/// The CPU's baseline JPEG encode rate in the time model, in output pixels per second (4:4:4
/// YCbCr in, colour conversion, DCT, quantisation and Huffman coding on one core). An estimate
/// of a SIMD encoder of the libjpeg-turbo class on one Arm application core, not a measurement
/// of this host: time is virtual, and the read costs the same way ([`soc::timing`]).
pub const CPU_JPEG_PIXELS_PER_S: u64 = 50_000_000;

/// Whether the read is bracketed by `DMA_BUF_IOCTL_SYNC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuSync {
    /// START before the read, END after (correct).
    Bracketed,
    /// No sync at all: the bug seed 001's users make; only right on coherent paths.
    Skip,
}

/// How to make a thumbnail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThumbnailConfig {
    /// The buffer's frame format (user space knows it; the dma-buf does not say).
    pub format: FrameFormat,
    /// The downscale factor, even and dividing both sides (4: a quarter of each side).
    pub factor: u32,
    /// JPEG quality, 1..=100.
    pub quality: u8,
    /// The sync discipline.
    pub sync: CpuSync,
}

impl ThumbnailConfig {
    /// A quarter-size thumbnail of `format`, quality 85, bracketed.
    pub fn new(format: FrameFormat) -> ThumbnailConfig {
        ThumbnailConfig {
            format,
            factor: 4,
            quality: 85,
            sync: CpuSync::Bracketed,
        }
    }
}

/// A thumbnail made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thumbnail {
    /// Where the JPEG went (`None` if only encoded in memory).
    pub path: Option<PathBuf>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The JPEG file's bytes.
    pub jpeg: Vec<u8>,
    /// The frame number of the frame read, if its stamp verified.
    pub frame: Option<u32>,
    /// Checksum of the raw frame the CPU read.
    pub raw_checksum: u64,
}

/// Reads the frame out of `buf` on the CPU (module steps 1-3).
pub fn read_frame(buf: &DmaBuf, fmt: FrameFormat, sync: CpuSync) -> Result<Vec<u8>, MediaError> {
    let size = fmt.size() as u64;
    if buf.size() < size {
        return Err(MediaError::Invalid(format!(
            "a {:#x}-byte buffer cannot hold a {fmt} frame ({size:#x} bytes)",
            buf.size()
        )));
    }
    let map = buf.mmap(0, size, false)?;
    if sync == CpuSync::Bracketed {
        buf.begin_cpu_access(DmaDirection::FromDevice)?;
    }
    let mut raw = vec![0u8; fmt.size()];
    let r = map.read(0, &mut raw);
    if sync == CpuSync::Bracketed {
        buf.end_cpu_access(DmaDirection::FromDevice)?;
    }
    r?;
    Ok(raw)
}

/// Makes a thumbnail of the frame in `buf` and, if `path` is given, writes the JPEG there.
///
/// Errors: `EINVAL` for a bad format, factor, quality or a buffer too small; the dma-buf's
/// errors (not mmapable: `EINVAL`); `EIO` if the file cannot be written.
pub fn thumbnail(
    buf: &DmaBuf,
    cfg: &ThumbnailConfig,
    path: Option<&Path>,
) -> Result<Thumbnail, MediaError> {
    if !(1..=100).contains(&cfg.quality) {
        return Err(MediaError::Invalid(format!(
            "JPEG quality {} is not in 1..=100",
            cfg.quality
        )));
    }
    let raw = read_frame(buf, cfg.format, cfg.sync)?;
    let (width, height, ycbcr) = frame::nv12_to_ycbcr(cfg.format, &raw, cfg.factor)?;
    let jpeg = encode_jpeg(&ycbcr, width, height, cfg.quality)?;
    if let Some(p) = path {
        std::fs::write(p, &jpeg)
            .map_err(|e| MediaError::Io(format!("writing {}: {e}", p.display())))?;
    }
    Ok(Thumbnail {
        path: path.map(Path::to_path_buf),
        width,
        height,
        jpeg,
        frame: frame::verify_stamp(&raw).ok(),
        raw_checksum: frame::checksum(&raw),
    })
}

/// Encodes interleaved YCbCr pixels as a baseline JPEG in memory.
pub fn encode_jpeg(
    ycbcr: &[u8],
    width: u32,
    height: u32,
    quality: u8,
) -> Result<Vec<u8>, MediaError> {
    let w = u16::try_from(width).map_err(|_| MediaError::Invalid("JPEG width > 65535".into()))?;
    let h = u16::try_from(height).map_err(|_| MediaError::Invalid("JPEG height > 65535".into()))?;
    if ycbcr.len() != usize::from(w) * usize::from(h) * 3 {
        return Err(MediaError::Invalid(format!(
            "{width}x{height} YCbCr needs {} bytes, got {}",
            usize::from(w) * usize::from(h) * 3,
            ycbcr.len()
        )));
    }
    let mut out = Vec::new();
    Encoder::new(&mut out, quality)
        .encode(ycbcr, w, h, ColorType::Ycbcr)
        .map_err(|e| MediaError::Invalid(format!("JPEG encoder: {e}")))?;
    Ok(out)
}

/// The dimensions a JPEG's frame header (SOF0..SOF2) declares, if the data starts with SOI,
/// ends with EOI and has such a header: `(width, height, components)`.
///
/// ```
/// let jpeg = drivers::thumbnailer::encode_jpeg(&[128u8; 16 * 8 * 3], 16, 8, 90)?;
/// assert_eq!(drivers::thumbnailer::jpeg_dimensions(&jpeg), Some((16, 8, 3)));
/// assert_eq!(drivers::thumbnailer::jpeg_dimensions(b"not a jpeg"), None);
/// # Ok::<(), drivers::media::MediaError>(())
/// ```
pub fn jpeg_dimensions(data: &[u8]) -> Option<(u16, u16, u8)> {
    if data.len() < 4 || data[..2] != [0xff, 0xd8] || data[data.len() - 2..] != [0xff, 0xd9] {
        return None;
    }
    let mut i = 2;
    while i + 4 <= data.len() {
        if data[i] != 0xff {
            return None;
        }
        let marker = data[i + 1];
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if (0xc0..=0xc2).contains(&marker) {
            let s = data.get(i + 4..i + 10)?;
            let h = u16::from_be_bytes([s[1], s[2]]);
            let w = u16::from_be_bytes([s[3], s[4]]);
            return Some((w, h, s[5]));
        }
        i += 2 + len;
    }
    None
}

/// Why a [`ThumbnailJob`] failed.
#[derive(Debug)]
pub enum ThumbnailJobError {
    /// `dma_buf_vmap` failed (nothing to give back).
    Vmap(dmabuf::DmaBufError),
    /// The bracket or the read failed (the vmap went back already).
    Access(dmabuf::DmaBufError),
    /// What was read is not an NV12 frame of the job's size the JPEG encoder takes.
    NotNv12,
}

/// What a [`ThumbnailJob`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThumbnailOutcome {
    /// The JPEG file's bytes.
    pub jpeg: Vec<u8>,
    /// The frame read is the one expected: its stamp names the frame and the body's checksum is
    /// the one its producer reported.
    pub verified: bool,
    /// Bytes the CPU read.
    pub bytes: u64,
}

/// The thumbnailer's work on one frame as a job a runner schedules on a CPU lane of its virtual
/// clock: plan it with the buffer and what user space knows of the frame, date it with
/// [`cost`](Self::cost), then [`execute`](Self::execute) it — the CPU read (module steps 1-3,
/// through `dma_buf_vmap` as a kernel-side CPU reader does), the check of the frame's stamp and
/// checksum, the downscale and the JPEG encode.
///
/// Whatever fails, the vmap is given back and an opened bracket closed: nothing stays mapped.
#[derive(Clone, Debug)]
pub struct ThumbnailJob {
    /// The buffer.
    pub buf: DmaBuf,
    /// `(offset, length)` of each plane to read, in order (NV12: luma, then chroma).
    pub planes: Vec<(u64, u64)>,
    /// Width (the luma plane's bytes per line) and height of the frame.
    pub width: u32,
    /// Height in rows.
    pub height: u32,
    /// The downscale factor wanted (even; lowered by 2 until it divides both sides).
    pub scale: u32,
    /// JPEG quality, 1..=100.
    pub quality: u8,
    /// The sync discipline ([`CpuSync::Skip`]: the `skip_cache_sync` fault).
    pub sync: CpuSync,
    /// The frame number expected in the stamp.
    pub frame: u64,
    /// The body checksum the frame's producer reported.
    pub expected: u64,
}

impl ThumbnailJob {
    /// Bytes the CPU reads.
    pub fn bytes(&self) -> u64 {
        self.planes.iter().map(|p| p.1).sum()
    }

    /// The downscale factor the job uses: [`scale`](Self::scale) made even (at least 2) and
    /// lowered by 2 until it divides both sides.
    pub fn factor(&self) -> u32 {
        let mut f = self.scale.max(2) & !1;
        while f > 2 && (!self.width.is_multiple_of(f) || !self.height.is_multiple_of(f)) {
            f -= 2;
        }
        f
    }

    /// The thumbnail's size in pixels: `(width, height)` over [`factor`](Self::factor).
    pub fn thumbnail_size(&self) -> (u32, u32) {
        let f = self.factor();
        (self.width / f, self.height / f)
    }

    /// How long the read takes on the CPU of `soc`: the planes at the CPU's copy rate
    /// ([`soc::timing::CPU_COPY_BPS`]), or by the timing of a device named `cpu` if the machine
    /// describes one. The downscale's box sums run in that pass.
    pub fn read_cost(&self, soc: &soc::Soc) -> std::time::Duration {
        let bytes = self.bytes();
        let ns = match soc.device("cpu") {
            Ok(d) => {
                let d = d.desc();
                soc::timing::transfer_ns(d.latency_ns, d.bandwidth_bps.max(1), bytes)
            }
            Err(_) => {
                let ns = u128::from(bytes) * 1_000_000_000 / u128::from(soc::timing::CPU_COPY_BPS);
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        };
        std::time::Duration::from_nanos(ns)
    }

    /// How long the JPEG encode of the thumbnail takes: its pixels at
    /// [`CPU_JPEG_PIXELS_PER_S`], rounded up to the nanosecond.
    pub fn encode_cost(&self) -> std::time::Duration {
        let (w, h) = self.thumbnail_size();
        let px = u128::from(w) * u128::from(h);
        let ns = (px * 1_000_000_000).div_ceil(u128::from(CPU_JPEG_PIXELS_PER_S));
        std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// How long the job takes on the CPU of `soc`: the read ([`read_cost`](Self::read_cost))
    /// then the encode ([`encode_cost`](Self::encode_cost)), one after the other on one core.
    pub fn cost(&self, soc: &soc::Soc) -> std::time::Duration {
        self.read_cost(soc).saturating_add(self.encode_cost())
    }

    /// Runs the job: read, verify, downscale, encode.
    pub fn execute(&self) -> Result<ThumbnailOutcome, ThumbnailJobError> {
        let raw = read_planes(&self.buf, &self.planes, self.sync)?;
        let verified = match frame::verify_stamp(&raw) {
            Ok(f) => {
                u64::from(f) == self.frame & u64::from(u32::MAX)
                    && frame::checksum(&raw[frame::STAMP_LEN..]) == self.expected
            }
            Err(_) => raw.len() <= frame::STAMP_LEN && frame::checksum(&raw) == self.expected,
        };
        let jpeg = (|| {
            let ff = FrameFormat::new(self.width, self.height).ok()?;
            if self.planes.len() != 2 {
                return None;
            }
            let (tw, th, ycc) = frame::nv12_to_ycbcr(ff, &raw, self.factor()).ok()?;
            encode_jpeg(&ycc, tw, th, self.quality).ok()
        })()
        .ok_or(ThumbnailJobError::NotNv12)?;
        Ok(ThumbnailOutcome {
            jpeg,
            verified,
            bytes: raw.len() as u64,
        })
    }
}

/// Reads `planes` of `buf` as a kernel CPU reader does: `dma_buf_vmap`, then
/// `begin_cpu_access` .. `end_cpu_access` around the copy (left out with [`CpuSync::Skip`]),
/// then `dma_buf_vunmap`. Whatever fails, the vmap is given back and an opened bracket closed.
pub fn read_planes(
    buf: &DmaBuf,
    planes: &[(u64, u64)],
    sync: CpuSync,
) -> Result<Vec<u8>, ThumbnailJobError> {
    let bracketed = sync == CpuSync::Bracketed;
    // A kernel-style vmap: the buffer's mmap covers whole pages only.
    let map = buf.vmap_unlocked().map_err(ThumbnailJobError::Vmap)?;
    let read = (|| {
        if bracketed {
            buf.begin_cpu_access(DmaDirection::FromDevice)?;
        }
        let mut raw = Vec::new();
        let mut res = Ok(());
        for &(off, len) in planes {
            let mut plane = vec![0u8; len as usize];
            if let Err(e) = map.read(off, &mut plane) {
                res = Err(e);
                break;
            }
            raw.extend_from_slice(&plane);
        }
        let end = if bracketed {
            buf.end_cpu_access(DmaDirection::FromDevice)
        } else {
            Ok(())
        };
        res?;
        end?;
        Ok(raw)
    })();
    let unmapped = buf.vunmap_unlocked(map);
    let raw = read.map_err(ThumbnailJobError::Access)?;
    unmapped.map_err(ThumbnailJobError::Access)?;
    Ok(raw)
}
