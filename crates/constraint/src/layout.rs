//! The buffer's planes: byte ranges with a pitch, and how they group into backings.
//!
//! C side: what `struct v4l2_plane_pix_format` / DRM framebuffer `offsets[]`/`pitches[]` tell a
//! driver. The dma-buf itself has no format (seed 001: "userspace already has a way to pass this
//! information around"); the constraint exporter is told the layout at export so that it can
//! check pitch alignment and place planes in different banks (seed 002).
//!
//! Rules:
//! 1. Plane 0 starts at offset 0; planes are in offset order, do not overlap and end within the
//!    buffer. A buffer with several planes has every plane offset page aligned (so a plane can
//!    have memory of its own).
//! 2. A *group* is a run of planes sharing one backing. Without per-plane bank rules the whole
//!    buffer is one group; with them every plane is its own group. Group `i` covers the bytes from
//!    its first plane's offset to the next group's, the last one to the page-rounded end plus the
//!    padding.

use dmabuf::error::DmaBufError;
use serde::{Deserialize, Serialize};
use soc::{align_up, PAGE_SIZE};

/// One plane of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaneLayout {
    /// Offset of the plane's first byte.
    pub offset: u64,
    /// Bytes of the plane.
    pub len: u64,
    /// Bytes per line (0: not an image plane; no pitch check).
    pub pitch: u64,
}

/// The planes of a buffer (module doc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The buffer's size in bytes.
    pub size: u64,
    /// Its planes, in offset order.
    pub planes: Vec<PlaneLayout>,
}

/// A byte range of the buffer with its own backing (rule 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// First plane of the group (its index in the plan).
    pub first_plane: usize,
    /// Planes in the group.
    pub planes: usize,
    /// First byte covered.
    pub offset: u64,
    /// Bytes covered (page multiple).
    pub len: u64,
}

impl Layout {
    /// One plane covering `size` bytes.
    ///
    /// ```
    /// let l = constraint::Layout::single(10_000);
    /// assert_eq!(l.planes.len(), 1);
    /// assert_eq!(l.groups(false, 0)[0].len, 12_288);
    /// ```
    pub fn single(size: u64) -> Layout {
        Layout {
            size,
            planes: vec![PlaneLayout {
                offset: 0,
                len: size,
                pitch: 0,
            }],
        }
    }

    /// NV12 with `pitch` bytes per line: a luma plane of `pitch * height` bytes and, at the next
    /// page boundary, a chroma plane of `pitch * height / 2` bytes.
    ///
    /// ```
    /// let l = constraint::Layout::nv12(1920, 1080);
    /// assert_eq!(l.planes[1].offset % 4096, 0);
    /// assert_eq!(l.planes[1].len, 1920 * 540);
    /// ```
    pub fn nv12(pitch: u64, height: u64) -> Layout {
        let luma = pitch * height;
        let chroma_off = align_up(luma, PAGE_SIZE).unwrap_or(luma);
        let chroma = pitch * height.div_ceil(2);
        Layout {
            size: chroma_off + chroma,
            planes: vec![
                PlaneLayout {
                    offset: 0,
                    len: luma,
                    pitch,
                },
                PlaneLayout {
                    offset: chroma_off,
                    len: chroma,
                    pitch,
                },
            ],
        }
    }

    /// Checks rule 1. Errors: [`DmaBufError::InvalidArgument`] naming the plane.
    pub fn validate(&self) -> Result<(), DmaBufError> {
        let bad = |m: String| Err(DmaBufError::InvalidArgument(m));
        if self.size == 0 {
            return bad("a constraint-placed buffer cannot be empty".into());
        }
        if self.planes.is_empty() {
            return bad("a layout needs at least one plane".into());
        }
        if self.planes[0].offset != 0 {
            return bad("plane 0 must start at offset 0".into());
        }
        let mut end = 0u64;
        for (i, p) in self.planes.iter().enumerate() {
            if p.len == 0 {
                return bad(format!("plane {i} is empty"));
            }
            if p.offset < end {
                return bad(format!("plane {i} overlaps plane {}", i - 1));
            }
            if self.planes.len() > 1 && p.offset % PAGE_SIZE != 0 {
                return bad(format!(
                    "plane {i} starts at {:#x}, not page aligned",
                    p.offset
                ));
            }
            end = match p.offset.checked_add(p.len) {
                Some(e) if e <= self.size => e,
                _ => return bad(format!("plane {i} ends beyond the buffer")),
            };
        }
        Ok(())
    }

    /// Bytes mapped for devices: the size rounded up to pages, plus `padding` rounded up.
    pub fn mapped_len(&self, padding: u64) -> u64 {
        page_up(self.size) + page_up(padding)
    }

    /// The groups (rule 2): every plane its own if `split`, else one.
    pub fn groups(&self, split: bool, padding: u64) -> Vec<Group> {
        let total = self.mapped_len(padding);
        if !split || self.planes.len() == 1 {
            return vec![Group {
                first_plane: 0,
                planes: self.planes.len(),
                offset: 0,
                len: total,
            }];
        }
        let n = self.planes.len();
        (0..n)
            .map(|i| {
                let start = self.planes[i].offset;
                let end = if i + 1 < n {
                    self.planes[i + 1].offset
                } else {
                    total
                };
                Group {
                    first_plane: i,
                    planes: 1,
                    offset: start,
                    len: end - start,
                }
            })
            .collect()
    }
}

/// `x` rounded up to pages (saturating at the largest page multiple).
pub(crate) fn page_up(x: u64) -> u64 {
    align_up(x, PAGE_SIZE).unwrap_or(!(PAGE_SIZE - 1))
}
