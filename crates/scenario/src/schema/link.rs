//! `[[links]]`: a buffer queue from one node to another, and how its buffers are allocated.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How the consumer's vb2 queue gets the buffers (`V4L2_MEMORY_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemoryType {
    /// `V4L2_MEMORY_DMABUF`: buffers come from an [`Exporter`] and are imported by fd.
    #[default]
    #[serde(rename = "dmabuf")]
    Dmabuf,
    /// `V4L2_MEMORY_MMAP` in the producer's queue, exported with `VIDIOC_EXPBUF` and imported by
    /// the consumer: vb2 is the exporter.
    #[serde(rename = "mmap+expbuf")]
    MmapExpbuf,
    /// `V4L2_MEMORY_USERPTR`: pages of the producer's process memory (a sealed memfd), shared
    /// with the consumers as a udmabuf of that memfd, the way a pipeline hands user memory to
    /// other devices.
    #[serde(rename = "userptr")]
    Userptr,
}

impl MemoryType {
    /// The name used in scenario files (`"mmap+expbuf"`).
    pub fn name(self) -> &'static str {
        match self {
            MemoryType::Dmabuf => "dmabuf",
            MemoryType::MmapExpbuf => "mmap+expbuf",
            MemoryType::Userptr => "userptr",
        }
    }
}

/// A dma-heap (`/dev/dma_heap/*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeapKind {
    /// Scattered pages of system RAM.
    System,
    /// Physically contiguous memory from a CMA region.
    Cma,
    /// A carveout bank (reserved memory without `struct page`s).
    Carveout,
}

/// Who allocates a `dmabuf` link's buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Exporter {
    /// The constraint-solving exporter: allocation deferred to the first map so that it meets
    /// every attached device, migration when a late device needs it (see `policy`).
    #[default]
    Constraint,
    /// A dma-heap, allocated up front where the heap allocates.
    Heap(HeapKind),
    /// The GPU's evicting exporter (VRAM or system memory, per-process address spaces).
    Gpu,
    /// udmabuf: a sealed memfd of the producer's process turned into a dma-buf
    /// (`UDMABUF_CREATE`); its pages are the process's own, from system memory.
    Udmabuf,
}

/// The spellings [`Exporter`] accepts, for messages.
pub const EXPORTER_NAMES: &str =
    "`constraint`, `heap:system`, `heap:cma`, `heap:carveout`, `gpu`, `udmabuf`";

impl Exporter {
    /// The name used in scenario files (`"heap:cma"`).
    pub fn name(self) -> &'static str {
        match self {
            Exporter::Constraint => "constraint",
            Exporter::Heap(HeapKind::System) => "heap:system",
            Exporter::Heap(HeapKind::Cma) => "heap:cma",
            Exporter::Heap(HeapKind::Carveout) => "heap:carveout",
            Exporter::Gpu => "gpu",
            Exporter::Udmabuf => "udmabuf",
        }
    }
}

impl fmt::Display for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Exporter {
    type Err = String;

    /// ```
    /// use scenario::schema::{Exporter, HeapKind};
    /// assert_eq!("heap:cma".parse::<Exporter>(), Ok(Exporter::Heap(HeapKind::Cma)));
    /// assert!("heap:vram".parse::<Exporter>().unwrap_err().contains("expected one of"));
    /// ```
    fn from_str(s: &str) -> Result<Exporter, String> {
        Ok(match s {
            "constraint" => Exporter::Constraint,
            "heap:system" => Exporter::Heap(HeapKind::System),
            "heap:cma" => Exporter::Heap(HeapKind::Cma),
            "heap:carveout" => Exporter::Heap(HeapKind::Carveout),
            "gpu" => Exporter::Gpu,
            "udmabuf" => Exporter::Udmabuf,
            _ => {
                return Err(format!(
                    "unknown exporter `{s}`, expected one of {EXPORTER_NAMES}"
                ))
            }
        })
    }
}

impl Serialize for Exporter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Exporter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Exporter;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an exporter: one of {EXPORTER_NAMES}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Exporter, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// The constraint exporter's placement policy (`constraint::Policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintPolicy {
    /// Allocate at the first map, for the devices attached then; migrate on a late attach.
    #[default]
    Deferred,
    /// Allocate at export for the link's two nodes; refuse (`EBUSY`) attaches the placement does
    /// not serve.
    UpFront,
    /// Allocate at the first map; never move: a late attach the placement does not serve fails
    /// with `EBUSY`.
    NoMigrate,
}

impl ConstraintPolicy {
    /// The name used in scenario files (`"up_front"`).
    pub fn name(self) -> &'static str {
        match self {
            ConstraintPolicy::Deferred => "deferred",
            ConstraintPolicy::UpFront => "up_front",
            ConstraintPolicy::NoMigrate => "no_migrate",
        }
    }
}

/// The consumers of a link: one node name, or an array of them.
///
/// ```
/// use scenario::schema::Targets;
/// #[derive(serde::Deserialize)]
/// struct L { to: Targets }
/// let one: L = toml::from_str("to = 'gpu'").unwrap();
/// let two: L = toml::from_str("to = ['gpu', 'encoder']").unwrap();
/// assert_eq!((one.to.0.len(), two.to.0.len()), (1, 2));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets(pub Vec<String>);

impl Serialize for Targets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Targets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a node name or an array of node names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Targets, E> {
                Ok(Targets(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Targets, A::Error> {
                let mut v = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    v.push(name);
                }
                Ok(Targets(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where one plane of a link's buffers must be placed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaneReq {
    /// The bank the plane must live in (seed 002: luma and chroma in different banks).
    #[serde(default)]
    pub bank: Option<String>,
    /// The plane must be physically contiguous even for devices behind an IOMMU.
    #[serde(default)]
    pub contiguous: bool,
}

fn default_buffers() -> u32 {
    4
}

/// How a link's consumers learn that a buffer's frame is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// The producer's job fence goes into the buffer's reservation object; consumers' jobs
    /// wait on what is there (dma-buf implicit sync).
    #[default]
    Implicit,
    /// No fence in the reservation object: each buffer travels with a sync_file fd of the
    /// producer's job fence, passed to the consumer's process, which waits on it before its job
    /// (Wayland's explicit-sync protocol, Android's acquire fences).
    Explicit,
}

/// A buffer queue between two nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDesc {
    /// Name, unique among links; events refer to it (default `"FROM->TO"`). Buffers are named
    /// after it (`"camera->isp[0]"`).
    #[serde(default)]
    pub name: Option<String>,
    /// The producing node.
    pub from: String,
    /// The consuming node, or several (`["gpu", "encoder"]`): every consumer imports the same
    /// buffers.
    pub to: Targets,
    /// Buffers in the queue, 1 to 32 (`VIDEO_MAX_FRAME`; default 4).
    #[serde(default = "default_buffers")]
    pub buffers: u32,
    /// How the consumer gets the buffers (default `dmabuf`).
    #[serde(default)]
    pub memory: MemoryType,
    /// Who allocates, for `memory = "dmabuf"` only (default `constraint`).
    #[serde(default)]
    pub exporter: Option<Exporter>,
    /// The constraint exporter's policy, for `exporter = "constraint"` only (default
    /// `deferred`).
    #[serde(default)]
    pub policy: Option<ConstraintPolicy>,
    /// The CMA region (`heap:cma`) or carveout bank (`heap:carveout`) to allocate from (default:
    /// the only one of its kind).
    #[serde(default)]
    pub region: Option<String>,
    /// Per-plane placement requirements, one entry per plane of the producer's format (or none).
    #[serde(default)]
    pub planes: Vec<PlaneReq>,
    /// Implicit (reservation objects) or explicit (sync_file fds) synchronisation.
    #[serde(default)]
    pub sync: SyncMode,
    /// What copies this link's buffers when the constraint exporter migrates them: `"cpu"` or
    /// a device's name (its DMA engine); default: `[soc] migrate_with`, else the default rule
    /// (docs/migration.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_with: Option<String>,
}

impl LinkDesc {
    /// The link's name: its `name`, or `"FROM->TO"`.
    pub fn link_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}->{}", self.from, self.to.0.join("+")))
    }

    /// Whether `node` is one of the consumers.
    pub fn feeds(&self, node: &str) -> bool {
        self.to.0.iter().any(|t| t == node)
    }

    /// The exporter in effect: the one given, or `constraint` for a `dmabuf` link; `None` for
    /// `mmap+expbuf` (vb2 exports) and `userptr` (no exporter).
    pub fn effective_exporter(&self) -> Option<Exporter> {
        match self.memory {
            MemoryType::Dmabuf => Some(self.exporter.unwrap_or_default()),
            MemoryType::MmapExpbuf | MemoryType::Userptr => None,
        }
    }

    /// The constraint policy in effect, for a `constraint` link.
    pub fn effective_policy(&self) -> Option<ConstraintPolicy> {
        (self.effective_exporter() == Some(Exporter::Constraint))
            .then(|| self.policy.unwrap_or_default())
    }

    /// The name of buffer `index` of this link (`"camera->isp[2]"`).
    pub fn buffer_name(&self, index: u32) -> String {
        format!("{}[{index}]", self.link_name())
    }
}
