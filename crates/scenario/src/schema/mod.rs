//! The scenario file format: what a user writes in TOML.
//!
//! A scenario is a machine and a pipeline on it, run for a number of frames:
//!
//! - `name`, `description`, `seed`, `frames`: what the run is called and how long it lasts;
//! - `[soc]`: the machine, a [`soc::SocDesc`] (banks, CMA regions, IOMMUs, devices with the
//!   bandwidth and latency of the time model), or `soc = "NAME"` for a bundled machine
//!   ([`soc::bundled`], [`SocChoice`]); omitted, the bundled default machine
//!   ([`soc::SocDesc::default_soc`]);
//! - `[[nodes]]`: drivers bound to devices ([`NodeDesc`]);
//! - `[[links]]`: buffer queues between nodes, with how their buffers are allocated
//!   ([`LinkDesc`]);
//! - `[[events]]`: what happens mid-stream ([`EventDesc`], validated into [`Event`]);
//! - `[[groups]]`, `[[processes]]`: per-group limits on heap memory and VRAM, and which
//!   process is in which group ([`GroupDesc`], [`ProcessDesc`]);
//! - `[expect]`: what the run is expected to find ([`Expect`]).
//!
//! Every table rejects unknown keys, every size accepts units (`"4GiB"`), and every name is
//! checked against what it refers to; `docs/scenario.md` documents each field with its type,
//! default, units and an example. The types here derive `serde`; the cross-field rules live in
//! [`crate::validate()`], which turns a [`ScenarioFile`] into a [`crate::Scenario`].

mod event;
mod limits;
mod link;
mod node;
mod overrides;

pub use event::{ActionKind, At, Event, EventAction, EventDesc, FaultKind, QueueKind};
pub use limits::{GroupDesc, ProcessDesc};
pub use link::{
    ConstraintPolicy, Exporter, HeapKind, LinkDesc, MemoryType, PlaneReq, SyncMode, Targets,
    EXPORTER_NAMES,
};
pub use node::{
    DriverKind, EncoderCodec, IspTransform, MapPolicy, NodeDesc, NodeParams, PixelFormat,
    PlaneLayout, SwapchainMode, TestPattern,
};
pub use overrides::{validate_with_overrides, Override, OverrideSeg};

use serde::{Deserialize, Serialize};
use soc::SocDesc;

/// The top level of a scenario file, as written (before cross-field validation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The scenario's name, shown in reports (`"default"`).
    pub name: String,
    /// One line saying what the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every pseudo-random choice (test patterns, pressure placement); the same seed
    /// gives the same report byte for byte.
    #[serde(default)]
    pub seed: u64,
    /// Number of frames the sources produce.
    pub frames: u64,
    /// The machine: a `[soc]` table or the name of a bundled one; the bundled default machine
    /// when omitted.
    #[serde(default)]
    pub soc: Option<SocChoice>,
    /// The drivers.
    #[serde(default)]
    pub nodes: Vec<NodeDesc>,
    /// The buffer queues between drivers.
    #[serde(default)]
    pub links: Vec<LinkDesc>,
    /// What happens mid-stream.
    #[serde(default)]
    pub events: Vec<EventDesc>,
    /// Groups of processes with their memory limits.
    #[serde(default)]
    pub groups: Vec<GroupDesc>,
    /// Which group each process is in, and whom it allocates for.
    #[serde(default)]
    pub processes: Vec<ProcessDesc>,
    /// What the run is expected to find.
    #[serde(default)]
    pub expect: Expect,
}

/// The top-level `soc` key: a bundled machine by name (`soc = "rk3588"`) or a `[soc]` table.
///
/// Both at once cannot be written: TOML refuses a key defined twice, at its line and column.
///
/// ```
/// use scenario::schema::{ScenarioFile, SocChoice};
/// let f: ScenarioFile = toml::from_str("name = 'x'\nframes = 1\nsoc = 'rpi5'\n").unwrap();
/// assert_eq!(f.soc, Some(SocChoice::Named("rpi5".into())));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocChoice {
    /// `soc = "NAME"`: a bundled machine ([`soc::bundled::machine`]).
    Named(String),
    /// `[soc]`: a machine described in the file.
    Desc(SocDesc),
}

impl Serialize for SocChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SocChoice::Named(n) => s.serialize_str(n),
            SocChoice::Desc(d) => d.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for SocChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SocChoice;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    "a `[soc]` table or the name of a bundled machine ({})",
                    soc::bundled::machine_names()
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SocChoice, E> {
                Ok(SocChoice::Named(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SocChoice, A::Error> {
                SocDesc::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(SocChoice::Desc)
            }
        }
        d.deserialize_any(V)
    }
}

/// What a run is expected to find: findings it may report without failing, and for scenarios that
/// demonstrate a failure, the error it must fail with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Checker finding kinds the scenario provokes on purpose; they do not fail the run.
    #[serde(default)]
    pub findings: Vec<String>,
    /// The errno name (`"ENOMEM"`, `"EBUSY"`) the run is expected to fail with, for scenarios
    /// that show a failure; a run that fails with it still exits 1, and CI checks the name.
    #[serde(default)]
    pub error: Option<String>,
    /// The exit code CI expects from `dmabuf run` on this scenario (0, 1 or 2); by default 0,
    /// or 1 when `error` is set.
    #[serde(default)]
    pub exit: Option<u8>,
    /// Whether frames arrive corrupted (`"some"`: the scenario injects a fault that corrupts
    /// them); a run that expects some and has none fails with a sentence saying so.
    #[serde(default)]
    pub corrupted: CorruptedExpect,
}

/// `[expect] corrupted`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorruptedExpect {
    /// Every frame verifies (the default).
    #[default]
    None,
    /// At least one frame arrives corrupted.
    Some,
}

impl Expect {
    /// The exit code CI expects (see the field docs).
    pub fn exit_code(&self) -> u8 {
        self.exit
            .unwrap_or(if self.error.is_some() { 1 } else { 0 })
    }
}
