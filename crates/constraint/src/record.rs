//! The constraint record: what one attached device needs of a buffer's memory.
//!
//! C side: the fields of `struct device` that `dma_alloc_attrs()` looks at (`dma_mask`,
//! `dma_parms`, `dma_coherent`, the IOMMU group), plus what seed 002 says the DMA API lacks: what
//! an importer needs *for this buffer* (alignment, pitch, padding, contiguity, banks, per-plane
//! banks). A record is plain data (serde), so a scenario can write one in TOML and a report can
//! print the record that decided a placement.
//!
//! ```
//! use constraint::{ConstraintRecord, ImporterNeeds};
//! let soc = soc::Soc::new(soc::SocDesc::default_soc()).unwrap();
//! let display = soc.device("display0").unwrap();
//! let rec = ConstraintRecord::of_device(&display)
//!     .with_needs(ImporterNeeds::new().align(1 << 16).pitch_align(256));
//! assert_eq!(rec.phys_limit(), Some((1 << 30) - 1), "no IOMMU: the mask bounds physical memory");
//! assert_eq!(rec.contiguity_reason().as_deref(), Some("display0 has no IOMMU"));
//! let text = toml::to_string(&rec).unwrap();
//! assert_eq!(toml::from_str::<ConstraintRecord>(&text).unwrap(), rec);
//! ```

use dmabuf::attach::Attachment;
use serde::{Deserialize, Serialize};
use soc::Device;

/// Which banks a buffer (or one plane) may live in, as one importer sees it.
///
/// An empty `only` means "any bank"; carveout and device-local banks are still used only when an
/// `only` or `prefer` list names them (see [`plan`](super::plan)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BankRule {
    /// Affinity: the memory must come from one of these banks (empty: no restriction).
    pub only: Vec<String>,
    /// Exclusion: never from these banks.
    pub exclude: Vec<String>,
    /// Preference: try these banks first, in order (not a requirement).
    pub prefer: Vec<String>,
}

impl BankRule {
    /// Whether the rule restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.only.is_empty() && self.exclude.is_empty() && self.prefer.is_empty()
    }

    /// Whether `bank` passes the rule's `only` and `exclude` lists.
    pub fn allows(&self, bank: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|b| b == bank))
            && !self.exclude.iter().any(|b| b == bank)
    }

    /// The rule in words (`"requires bank dram1"`, `"excludes bank dram0"`).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.only.as_slice() {
            [] => {}
            [one] => parts.push(format!("requires bank {one}")),
            many => parts.push(format!("requires one of banks {}", many.join(", "))),
        }
        if !self.exclude.is_empty() {
            parts.push(format!("excludes bank {}", self.exclude.join(", ")));
        }
        if parts.is_empty() && !self.prefer.is_empty() {
            parts.push(format!("prefers bank {}", self.prefer.join(", ")));
        }
        parts.join(" and ")
    }
}

/// What an importer adds, for one buffer, to what its device's description says.
///
/// Give it to the exporter with each attach, as the attachment's `importer_priv`
/// ([`ConstraintExporter::attach_with`](super::ConstraintExporter::attach_with), or
/// `DmaBuf::attach_with` from any importer: a vb2 queue's
/// `Vb2Queue::set_importer_priv`, a GPU's `Gpu::import_with`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImporterNeeds {
    /// Alignment of the start of every plane's memory (a power of two; 0: a page).
    pub align: u64,
    /// Every plane's pitch must be a multiple of this (0: no requirement; need not be a power
    /// of two).
    pub pitch_align: u64,
    /// Bytes past the end of the buffer the device may touch (over-fetch); they are allocated
    /// and mapped, never part of the buffer's size.
    pub padding: u64,
    /// The device needs physically contiguous planes even behind an IOMMU.
    pub contiguous: bool,
    /// Banks for the whole buffer.
    pub banks: BankRule,
    /// Banks for plane `i` (seed 002: luma and chroma in different banks); missing entries
    /// restrict nothing.
    pub plane_banks: Vec<BankRule>,
}

impl ImporterNeeds {
    /// Nothing beyond the device's description.
    pub fn new() -> ImporterNeeds {
        ImporterNeeds::default()
    }

    /// With an alignment (bytes, power of two).
    pub fn align(mut self, align: u64) -> ImporterNeeds {
        self.align = align;
        self
    }

    /// With a pitch alignment (bytes).
    pub fn pitch_align(mut self, pitch_align: u64) -> ImporterNeeds {
        self.pitch_align = pitch_align;
        self
    }

    /// With over-fetch padding after the buffer (bytes).
    pub fn padding(mut self, padding: u64) -> ImporterNeeds {
        self.padding = padding;
        self
    }

    /// Physically contiguous.
    pub fn contiguous(mut self) -> ImporterNeeds {
        self.contiguous = true;
        self
    }

    /// The whole buffer in `bank` (affinity).
    pub fn only_bank(mut self, bank: &str) -> ImporterNeeds {
        self.banks.only.push(bank.to_string());
        self
    }

    /// Never in `bank` (exclusion).
    pub fn exclude_bank(mut self, bank: &str) -> ImporterNeeds {
        self.banks.exclude.push(bank.to_string());
        self
    }

    /// Preferably in `bank`.
    pub fn prefer_bank(mut self, bank: &str) -> ImporterNeeds {
        self.banks.prefer.push(bank.to_string());
        self
    }

    /// Plane `plane` in `bank` (seed 002).
    pub fn plane_bank(mut self, plane: usize, bank: &str) -> ImporterNeeds {
        if self.plane_banks.len() <= plane {
            self.plane_banks.resize(plane + 1, BankRule::default());
        }
        self.plane_banks[plane].only.push(bank.to_string());
        self
    }

    /// The rule for plane `plane` (empty if none).
    pub fn plane_rule(&self, plane: usize) -> Option<&BankRule> {
        self.plane_banks.get(plane).filter(|r| !r.is_empty())
    }
}

/// One device's constraint record: its description plus the importer's [`ImporterNeeds`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintRecord {
    /// The device's name.
    pub device: String,
    /// Streaming DMA mask (`dma_get_mask`).
    pub dma_mask: u64,
    /// The IOMMU the device sits behind; `None`: it sees physical addresses.
    pub iommu: Option<String>,
    /// Whether it snoops the CPU caches.
    pub coherent: bool,
    /// Largest segment (`dma_get_max_seg_size`).
    pub max_segment_size: u64,
    /// Most segments per mapping.
    pub max_segments: u32,
    /// Segment boundary mask (`dma_get_seg_boundary`).
    pub segment_boundary_mask: u64,
    /// Needs physically contiguous memory even behind its IOMMU.
    pub needs_contiguous: bool,
    /// Accepts memory without struct pages of another device (`attach->peer2peer`); without it
    /// device-local banks are excluded.
    pub peer2peer: bool,
    /// The format modifiers the device understands, most preferred first, by name (the
    /// device description's `modifiers`; empty: linear only). Only exporters that negotiate a
    /// layout ([`Negotiation`](super::Negotiation)) look at them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<String>,
    /// The device's own pitch alignment (its description's `pitch_align`; 0: none), combined
    /// with the importer's [`ImporterNeeds::pitch_align`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pitch_align: u64,
    /// What the importer adds for this buffer.
    #[serde(default)]
    pub needs: ImporterNeeds,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl ConstraintRecord {
    /// The record of a device's description alone (a static importer, no extra needs).
    pub fn of_device(dev: &Device) -> ConstraintRecord {
        ConstraintRecord {
            device: dev.name().to_string(),
            dma_mask: dev.dma_mask(),
            iommu: dev.desc().iommu.clone(),
            coherent: dev.is_coherent(),
            max_segment_size: dev.max_segment_size(),
            max_segments: dev.max_segments(),
            segment_boundary_mask: dev.segment_boundary_mask(),
            needs_contiguous: dev.needs_contiguous(),
            peer2peer: false,
            modifiers: dev.desc().modifiers.clone(),
            pitch_align: dev.desc().pitch_align,
            needs: ImporterNeeds::default(),
        }
    }

    /// Whether the device understands modifier `name` (an empty list: linear only).
    pub fn supports_modifier(&self, name: &str) -> bool {
        if self.modifiers.is_empty() {
            return name == super::MOD_LINEAR;
        }
        self.modifiers.iter().any(|m| m == name)
    }

    /// The pitch alignment this record asks for: the LCM of the device's and the importer's
    /// (1: none).
    pub fn pitch_alignment(&self) -> u64 {
        super::lcm(self.pitch_align.max(1), self.needs.pitch_align.max(1))
    }

    /// The record of an attachment (its device and `peer2peer`) with `needs`.
    pub fn of_attachment(att: &Attachment, needs: ImporterNeeds) -> ConstraintRecord {
        ConstraintRecord::of_device(att.device())
            .with_needs(needs)
            .peer2peer(att.peer2peer())
    }

    /// The same record with the importer's needs.
    pub fn with_needs(mut self, needs: ImporterNeeds) -> ConstraintRecord {
        self.needs = needs;
        self
    }

    /// The same record with `peer2peer`.
    pub fn peer2peer(mut self, p2p: bool) -> ConstraintRecord {
        self.peer2peer = p2p;
        self
    }

    /// The highest physical address the device reaches, if it has no IOMMU (its mask).
    pub fn phys_limit(&self) -> Option<u64> {
        self.iommu.is_none().then_some(self.dma_mask)
    }

    /// Why this device needs physically contiguous planes, if it does.
    pub fn contiguity_reason(&self) -> Option<String> {
        if self.iommu.is_none() {
            Some(format!("{} has no IOMMU", self.device))
        } else if self.needs_contiguous {
            Some(format!("{} needs contiguous memory", self.device))
        } else if self.needs.contiguous {
            Some(format!("{} asks for contiguous memory", self.device))
        } else {
            None
        }
    }

    /// The alignment this record asks for (at least a page).
    pub fn align(&self) -> u64 {
        self.needs.align.max(soc::PAGE_SIZE)
    }
}
