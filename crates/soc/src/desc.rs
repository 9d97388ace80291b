//! The description of a machine: what a [`Soc`](crate::Soc) is built from.
//!
//! A [`SocDesc`] is plain data (serde), so a scenario file can describe a machine in TOML and a
//! test can build one in a few lines. Nothing here allocates host memory or checks consistency;
//! [`Soc::new`](crate::Soc::new) validates a description and answers a typed error naming the
//! offending field.
//!
//! Sizes and addresses accept either an integer or a string with a binary unit
//! (`"4GiB"`, `"256 MiB"`, `"0x4000_0000"`), see [`ByteSize`].
//!
//! ```
//! let desc: soc::SocDesc = toml::from_str(r#"
//!     [[banks]]
//!     name = "dram0"
//!     kind = "system"
//!     base = "0x4000_0000"
//!     size = "1GiB"
//!
//!     [[devices]]
//!     name = "display0"
//!     dma_mask_bits = 32
//!     coherent = false
//! "#).unwrap();
//! assert_eq!(desc.banks[0].size.bytes(), 1 << 30);
//! ```

use crate::addr::dma_bit_mask;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of memory a bank is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BankKind {
    /// System RAM with `struct page`s: served by the buddy page allocator and CMA.
    System,
    /// Reserved memory without `struct page`s (a `no-map` carveout): only a carveout heap or a
    /// driver hands it out, and it is mapped as a resource (`dma_map_resource`), never as pages.
    Carveout,
    /// Memory local to a device (VRAM): reachable by the CPU and peers through a BAR, managed by
    /// its driver.
    DeviceLocal,
}

impl fmt::Display for BankKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BankKind::System => "system",
            BankKind::Carveout => "carveout",
            BankKind::DeviceLocal => "device-local",
        })
    }
}

/// A byte count or address that reads from an integer or from a string such as `"4GiB"`,
/// `"512 MiB"`, `"64k"`, `"0x8000_0000"`.
///
/// ```
/// use soc::ByteSize;
/// assert_eq!(ByteSize::parse("4GiB").unwrap().bytes(), 4 << 30);
/// assert_eq!(ByteSize::parse("0x1000").unwrap().bytes(), 4096);
/// assert!(ByteSize::parse("4 parsecs").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The value in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses a size: decimal or `0x` hex digits (underscores allowed), then an optional unit
    /// `B`, `K`/`KiB`/`KB`, `M`/`MiB`/`MB`, `G`/`GiB`/`GB`, `T`/`TiB`/`TB` (all binary).
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let (digits, unit) =
            match t.find(|c: char| !(c.is_ascii_hexdigit() || c == '_' || c == 'x' || c == 'X')) {
                _ if t.starts_with("0x") || t.starts_with("0X") => (t, ""),
                Some(i) => (&t[..i], t[i..].trim()),
                None => (t, ""),
            };
        let clean: String = digits.chars().filter(|&c| c != '_').collect();
        let value = if let Some(hex) = clean
            .strip_prefix("0x")
            .or_else(|| clean.strip_prefix("0X"))
        {
            u64::from_str_radix(hex, 16)
        } else {
            clean.parse::<u64>()
        }
        .map_err(|_| {
            format!("`{s}` is not a size: expected digits then an optional unit like GiB")
        })?;
        let shift = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            other => {
                return Err(format!(
                    "`{s}`: unknown size unit `{other}` (use B, KiB, MiB, GiB or TiB)"
                ))
            }
        };
        value
            .checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("`{s}` does not fit in 64 bits"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::addr::human_size(self.0))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count: an integer or a string like \"4GiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// One bank of the physical address space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankDesc {
    /// Name, unique in the SoC (`"dram0"`, `"vram"`).
    pub name: String,
    /// What kind of memory it is.
    pub kind: BankKind,
    /// First physical address; page aligned.
    pub base: ByteSize,
    /// Size in bytes; a non-zero multiple of the page size.
    pub size: ByteSize,
}

/// A CMA region: a physically contiguous range of a system bank reserved for contiguous
/// allocations, lent to the page allocator for movable pages while idle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmaDesc {
    /// Name, unique in the SoC (`"cma0"`; the CMA heap of this region is named after it).
    pub name: String,
    /// The system bank the region is carved from.
    pub bank: String,
    /// Size in bytes; a non-zero multiple of the page size.
    pub size: ByteSize,
    /// Where in the bank; by default the top of the bank (as Linux places CMA high).
    #[serde(default)]
    pub base: Option<ByteSize>,
}

/// An IOMMU: a translation unit in front of one or more devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IommuDesc {
    /// Name, unique in the SoC (`"smmu0"`).
    pub name: String,
    /// Number of I/O virtual address bits the IOMMU translates; the aperture of each domain is
    /// `[PAGE_SIZE, 2^aperture_bits)` further limited by the device's DMA mask.
    #[serde(default = "default_aperture_bits")]
    pub aperture_bits: u32,
}

fn default_aperture_bits() -> u32 {
    32
}

fn default_mask_bits() -> u32 {
    32
}

fn default_max_segment_size() -> ByteSize {
    ByteSize(64 << 10)
}

fn default_boundary() -> ByteSize {
    ByteSize(u32::MAX as u64)
}

fn default_max_segments() -> u32 {
    u16::MAX as u32
}

fn default_bandwidth() -> u64 {
    4_000_000_000
}

/// A DMA-capable device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDesc {
    /// Name, unique in the SoC (`"isp0"`).
    pub name: String,
    /// Width of the device's streaming DMA mask in bits (`dma_set_mask(dev, DMA_BIT_MASK(n))`).
    #[serde(default = "default_mask_bits")]
    pub dma_mask_bits: u32,
    /// Width of the coherent-allocation mask; by default the same as `dma_mask_bits`.
    #[serde(default)]
    pub coherent_dma_mask_bits: Option<u32>,
    /// Whether the device snoops the CPU caches (`dma-coherent` in a device tree). A
    /// non-coherent device needs explicit cache maintenance around every DMA.
    #[serde(default)]
    pub coherent: bool,
    /// Largest scatter-gather segment the device handles (`dma_set_max_seg_size`).
    #[serde(default = "default_max_segment_size")]
    pub max_segment_size: ByteSize,
    /// A segment may not cross a multiple of `boundary_mask + 1` (`dma_set_seg_boundary`).
    #[serde(default = "default_boundary")]
    pub segment_boundary_mask: ByteSize,
    /// Most scatter-gather segments one mapping may have.
    #[serde(default = "default_max_segments")]
    pub max_segments: u32,
    /// The IOMMU the device sits behind, or none for a direct-mapped device.
    #[serde(default)]
    pub iommu: Option<String>,
    /// The device can only DMA to physically contiguous memory even behind an IOMMU (some
    /// scanout and codec blocks).
    #[serde(default)]
    pub needs_contiguous: bool,
    /// DMA bandwidth in bytes per second, for the scenario runner's time model.
    #[serde(default = "default_bandwidth")]
    pub bandwidth_bps: u64,
    /// Fixed latency per DMA transfer in nanoseconds, for the time model.
    #[serde(default)]
    pub latency_ns: u64,
    /// The DRM format modifiers the device reads and writes, most preferred first, by name
    /// (`"linear"`, `"arm_afbc_16x16_sparse"`, `"broadcom_sand128"`, `"vivante_tiled"`, ...;
    /// the table is `drivers::modifier`). Empty: linear only, the layout every device
    /// understands (a driver that does not advertise modifiers). When the device produces a
    /// buffer, its list is the exporter's preference order; every attached device's list is
    /// intersected (GBM/Vulkan modifier negotiation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<String>,
    /// Every line of an image the device touches starts at a multiple of this many bytes
    /// (its pitch alignment; 0 or 1: none). A buffer's pitch is the least common multiple of
    /// every attached device's.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pitch_align: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl DeviceDesc {
    /// A device with the defaults: 32-bit mask, non-coherent, 64 KiB segments, no IOMMU.
    pub fn new(name: impl Into<String>) -> DeviceDesc {
        DeviceDesc {
            name: name.into(),
            dma_mask_bits: default_mask_bits(),
            coherent_dma_mask_bits: None,
            coherent: false,
            max_segment_size: default_max_segment_size(),
            segment_boundary_mask: default_boundary(),
            max_segments: default_max_segments(),
            iommu: None,
            needs_contiguous: false,
            bandwidth_bps: default_bandwidth(),
            latency_ns: 0,
            modifiers: Vec::new(),
            pitch_align: 0,
        }
    }

    /// The streaming DMA mask as a value.
    pub fn dma_mask(&self) -> u64 {
        dma_bit_mask(self.dma_mask_bits)
    }

    /// The coherent DMA mask as a value.
    pub fn coherent_dma_mask(&self) -> u64 {
        dma_bit_mask(self.coherent_dma_mask_bits.unwrap_or(self.dma_mask_bits))
    }
}

/// The CPU's cache, as far as DMA coherency is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheDesc {
    /// Capacity in bytes; lines beyond it are evicted (written back if dirty) oldest first.
    pub size: ByteSize,
}

impl Default for CacheDesc {
    fn default() -> Self {
        CacheDesc {
            size: ByteSize(1 << 20),
        }
    }
}

/// A whole machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocDesc {
    /// The banks of the physical address space, in any order; they must not overlap.
    #[serde(default)]
    pub banks: Vec<BankDesc>,
    /// CMA regions inside system banks.
    #[serde(default)]
    pub cma: Vec<CmaDesc>,
    /// IOMMUs.
    #[serde(default)]
    pub iommus: Vec<IommuDesc>,
    /// DMA-capable devices.
    #[serde(default)]
    pub devices: Vec<DeviceDesc>,
    /// The CPU cache.
    #[serde(default)]
    pub cpu_cache: CacheDesc,
    /// What copies a migrating buffer's bytes: `"cpu"`, or a device's name (its DMA engine).
    /// `None`: the default rule (the first device, in this list's order, behind an IOMMU whose
    /// mask spans both copies; else the first direct-mapped one that reaches both; else the
    /// CPU). A link's own `migrate_with` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_with: Option<String>,
}

impl SocDesc {
    /// The bundled default machine, the one `dmabuf run` uses: a media SoC with two DRAM banks
    /// (seed 002's luma/chroma split), a carveout, a GPU's VRAM, a CMA region, one IOMMU, and
    /// the devices of the camera -> ISP -> GPU -> display pipeline plus an encoder.
    ///
    /// | device | mask | IOMMU | coherent | notes |
    /// |---|---|---|---|---|
    /// | camera0 | 32 bit | none | no | direct DMA, needs contiguous memory below 4 GiB |
    /// | isp0 | 40 bit | smmu0 | no | scatters freely |
    /// | gpu0 | 40 bit | smmu0 | yes | snoops the CPU caches |
    /// | display0 | 30 bit | none | no | scanout reaches only the lowest 1 GiB of DRAM |
    /// | encoder0 | 32 bit | smmu0 | no | 4 KiB segments |
    pub fn default_soc() -> SocDesc {
        let bank = |name: &str, kind, base: u64, size: u64| BankDesc {
            name: name.into(),
            kind,
            base: ByteSize(base),
            size: ByteSize(size),
        };
        let camera = DeviceDesc {
            needs_contiguous: true,
            bandwidth_bps: 2_000_000_000,
            latency_ns: 2_000,
            ..DeviceDesc::new("camera0")
        };
        let isp = DeviceDesc {
            dma_mask_bits: 40,
            iommu: Some("smmu0".into()),
            max_segment_size: ByteSize(4 << 20),
            bandwidth_bps: 6_000_000_000,
            latency_ns: 5_000,
            ..DeviceDesc::new("isp0")
        };
        let gpu = DeviceDesc {
            dma_mask_bits: 40,
            coherent: true,
            iommu: Some("smmu0".into()),
            max_segment_size: ByteSize(4 << 20),
            bandwidth_bps: 20_000_000_000,
            latency_ns: 10_000,
            ..DeviceDesc::new("gpu0")
        };
        let display = DeviceDesc {
            dma_mask_bits: 30,
            max_segment_size: ByteSize(16 << 20),
            bandwidth_bps: 8_000_000_000,
            latency_ns: 1_000,
            ..DeviceDesc::new("display0")
        };
        let encoder = DeviceDesc {
            iommu: Some("smmu0".into()),
            max_segment_size: ByteSize(4 << 10),
            bandwidth_bps: 3_000_000_000,
            latency_ns: 8_000,
            ..DeviceDesc::new("encoder0")
        };
        SocDesc {
            banks: vec![
                bank("dram0", BankKind::System, 0, 2 << 30),
                bank("carveout0", BankKind::Carveout, 0x8000_0000, 256 << 20),
                bank("dram1", BankKind::System, 0x1_0000_0000, 8 << 30),
                bank("vram0", BankKind::DeviceLocal, 0x10_0000_0000, 2 << 30),
            ],
            cma: vec![CmaDesc {
                name: "cma0".into(),
                bank: "dram0".into(),
                size: ByteSize(256 << 20),
                base: Some(ByteSize(0x2000_0000)),
            }],
            iommus: vec![IommuDesc {
                name: "smmu0".into(),
                aperture_bits: 40,
            }],
            devices: vec![camera, isp, gpu, display, encoder],
            cpu_cache: CacheDesc::default(),
            migrate_with: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_size_parses_units_hex_and_underscores() {
        assert_eq!(ByteSize::parse("4GiB").unwrap().bytes(), 4 << 30);
        assert_eq!(ByteSize::parse("256 MiB").unwrap().bytes(), 256 << 20);
        assert_eq!(ByteSize::parse("64k").unwrap().bytes(), 64 << 10);
        assert_eq!(ByteSize::parse("0x4000_0000").unwrap().bytes(), 0x4000_0000);
        assert_eq!(ByteSize::parse("1_000").unwrap().bytes(), 1000);
        assert_eq!(ByteSize::parse("12").unwrap().bytes(), 12);
    }

    #[test]
    fn byte_size_rejects_garbage_with_a_message_naming_it() {
        let e = ByteSize::parse("4 parsecs").unwrap_err();
        assert!(e.contains("parsecs"), "{e}");
        assert!(ByteSize::parse("").is_err());
        assert!(ByteSize::parse("99999999999TiB")
            .unwrap_err()
            .contains("64 bits"));
    }

    #[test]
    fn default_soc_round_trips_through_toml() {
        let d = SocDesc::default_soc();
        let text = toml::to_string(&d).unwrap();
        let back: SocDesc = toml::from_str(&text).unwrap();
        assert_eq!(d, back);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: Result<SocDesc, _> =
            toml::from_str("[[banks]]\nname='a'\nkind='system'\nbase=0\nsize=4096\ncolour='red'\n");
        assert!(r.unwrap_err().to_string().contains("colour"));
    }
}
