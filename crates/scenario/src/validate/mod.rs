//! From scenario text to a validated [`Scenario`], or an error with file, line and column.
//!
//! Validation runs in three stages, each stopping at the first error:
//!
//! 1. **Syntax and shape** (`toml` + serde): bad TOML, unknown keys (every table is
//!    `deny_unknown_fields`), wrong types, bad units (`"4 parsecs"`), unknown enum values. The
//!    parser's byte span becomes the line and column, and its message already lists what was
//!    expected (`unknown field `colour`, expected one of ...`).
//! 2. **The machine**: the scenario's own checks of `[soc]` (bank overlap, a device naming an
//!    unknown IOMMU, size limits), then [`soc::Soc::new`]'s validation, whose message names the
//!    field (`devices[1].dma_mask_bits`), mapped back to its position.
//! 3. **The pipeline**: nodes, links and events against each other and the machine (dangling
//!    names, a link to itself, zero frames/fps/width, an action missing a field or given one it
//!    does not take...). Each rule names the field by path; [`locate`] finds where it is written.
//!    Last the pipeline as a graph (module `graph`): no cycles, no sink that is never attached,
//!    the same format and size at both ends of a link a consumer takes as it is, a GPU
//!    that says which VRAM it has when the machine has several. With these, `dmabuf check` refuses what `dmabuf run` would fail on
//!    (the run-time errors left are those of the simulated machine: an allocation that does not
//!    fit, a device that cannot reach a placement).
//!
//! # Limits
//! Scenario text is at most [`MAX_TEXT_LEN`] bytes. A bank is at most [`MAX_BANK_SIZE`] and all
//! banks together at most [`MAX_TOTAL_MEMORY`] (the model commits memory lazily, but its
//! bookkeeping grows with the address space); a CMA region at most [`MAX_CMA_SIZE`].

mod events;
mod formats;
mod graph;
mod host;
mod limits;
mod locate;
mod m2m;
mod machine;
mod modifiers;
mod pipeline;
pub(crate) mod swapchain;

pub use locate::{locate, FieldPath, Seg};

use crate::error::{Location, ScenarioError};
use crate::schema::{Event, Expect, GroupDesc, LinkDesc, NodeDesc, ProcessDesc, ScenarioFile};
use soc::SocDesc;
use std::path::Path;
use toml_edit::ImDocument;

/// Largest scenario text accepted (1 MiB).
pub const MAX_TEXT_LEN: usize = 1 << 20;
/// Largest bank (1 TiB).
pub const MAX_BANK_SIZE: u64 = 1 << 40;
/// Largest sum of all banks (2 TiB).
pub const MAX_TOTAL_MEMORY: u64 = 2 << 40;
/// Largest CMA region (64 GiB).
pub const MAX_CMA_SIZE: u64 = 64 << 30;
/// Most frames a scenario may run (ten million: 46 hours at 60 fps).
pub const MAX_FRAMES: u64 = 10_000_000;
/// Largest frame width or height.
pub const MAX_DIMENSION: u32 = 16384;
/// Highest frame rate.
pub const MAX_FPS: u32 = 1000;
/// Most buffers in one link: every link is a vb2 queue at its consumers (and at a V4L2
/// producer), which holds at most `VIDEO_MAX_FRAME` buffers (32, `include/uapi/linux/videodev2.h`;
/// vb2's default `max_num_buffers`). More would validate and then fail at run time with
/// `ENOBUFS`, so validation refuses them.
pub const MAX_BUFFERS: u32 = 32;
/// Latest `at_us` of an event (one day).
pub const MAX_EVENT_US: u64 = 86_400_000_000;

/// A scenario that passed validation: every name refers to something that exists, every number
/// is in range, and the machine builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// The file it came from, as the user named it.
    pub file: String,
    /// Its name.
    pub name: String,
    /// One line saying what it shows.
    pub description: String,
    /// The seed of every pseudo-random choice.
    pub seed: u64,
    /// Frames the sources produce.
    pub frames: u64,
    /// The machine (the bundled default when the file has no `[soc]`).
    pub soc: SocDesc,
    /// The drivers, in file order.
    pub nodes: Vec<NodeDesc>,
    /// The links, in file order.
    pub links: Vec<LinkDesc>,
    /// The events, in file order (see [`Scenario::events_in_order`]).
    pub events: Vec<Event>,
    /// The groups with their limits, in file order.
    pub groups: Vec<GroupDesc>,
    /// The processes placed in groups, in file order.
    pub processes: Vec<ProcessDesc>,
    /// What the run is expected to find.
    pub expect: Expect,
}

impl Scenario {
    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeDesc> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The link named `name` (its `name`, or `"FROM->TO"`).
    pub fn link(&self, name: &str) -> Option<&LinkDesc> {
        self.links.iter().find(|l| l.link_name() == name)
    }

    /// The links into `node`.
    pub fn inputs<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a LinkDesc> + 'a {
        self.links.iter().filter(move |l| l.feeds(node))
    }

    /// The links out of `node`.
    pub fn outputs<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a LinkDesc> + 'a {
        self.links.iter().filter(move |l| l.from == node)
    }

    /// The bytes of one buffer of `link`: one frame of its producer's format.
    pub fn buffer_size(&self, link: &LinkDesc) -> u64 {
        self.node(&link.from).map_or(0, NodeDesc::frame_size)
    }

    /// The events sorted for the runner: by frame-based events' frame and time-based events'
    /// time separately (the runner merges the two as frames start), ties in file order.
    pub fn events_in_order(&self) -> Vec<&Event> {
        let mut v: Vec<&Event> = self.events.iter().collect();
        v.sort_by_key(|e| (e.at, e.index));
        v
    }

    /// This scenario with another seed (`--seed`).
    pub fn with_seed(mut self, seed: u64) -> Scenario {
        self.seed = seed;
        self
    }

    /// This scenario with another frame count (`--frames`, CI's reduced runs): events and
    /// thumbnail frames past the new end are dropped, pressure lengths are cut to it. Errors
    /// with exit code 2 when `frames` is 0 or above [`MAX_FRAMES`].
    pub fn with_frames(mut self, frames: u64) -> Result<Scenario, ScenarioError> {
        if frames == 0 || frames > MAX_FRAMES {
            return Err(ScenarioError::Invalid {
                location: Location::whole_file("--frames"),
                message: format!("--frames {frames}: expected 1 to {MAX_FRAMES}"),
            });
        }
        self.frames = frames;
        self.events.retain(|e| match e.at {
            crate::schema::At::Frame(f) => f < frames,
            crate::schema::At::Time(_) => true,
        });
        for n in &mut self.nodes {
            if let Some(f) = n.params.frame {
                n.params.frame = Some(f.min(frames - 1));
            }
        }
        Ok(self)
    }
}

/// The state validation carries: the text, its file name and a span-keeping parse of it.
pub(crate) struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    doc: Option<ImDocument<&'a str>>,
}

impl Ctx<'_> {
    /// Whether the field at `path` is written in the text (not a default).
    pub(crate) fn written(&self, path: &FieldPath) -> bool {
        self.doc
            .as_ref()
            .is_some_and(|d| locate::is_written(d, path))
    }

    /// An invalid-scenario error at `path`.
    pub(crate) fn err(&self, path: &FieldPath, message: impl Into<String>) -> ScenarioError {
        let location = self.doc.as_ref().and_then(|d| locate(d, path)).map_or_else(
            || Location::whole_file(self.file),
            |span| Location::of_span(self.file, self.text, span),
        );
        let message = message.into();
        let message = if path.0.is_empty() {
            message
        } else {
            format!("`{path}`: {message}")
        };
        ScenarioError::Invalid { location, message }
    }
}

/// Validates scenario `text` read from `file` (used in messages only).
///
/// ```
/// let text = "name = 'x'\nframes = 10\n[[nodes]]\nname = 'cam'\ndriver = 'camera'\ncolour = 1\n";
/// let err = scenario::validate(text, "x.toml").unwrap_err();
/// assert!(err.to_string().starts_with("x.toml:6:1: unknown field `colour`"), "{err}");
/// ```
pub fn validate(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(ScenarioError::Invalid {
            location: Location::whole_file(file),
            message: format!(
                "the scenario is {} bytes long: expected at most {MAX_TEXT_LEN}",
                text.len()
            ),
        });
    }
    let raw: ScenarioFile = toml::from_str(text).map_err(|e| {
        let location = e.span().map_or_else(
            || Location::whole_file(file),
            |s| Location::of_span(file, text, s),
        );
        let mut message = e.message().trim_end().to_string();
        if message.is_empty() {
            // The parser gives no message for some lexical errors (a control character in a
            // comment): name the character instead.
            let c = e.span().and_then(|s| text.get(s.start..)?.chars().next());
            message = match c {
                Some(c) => format!(
                    "invalid TOML: unexpected character {:?} (U+{:04X}); control characters are \
                     not allowed, even in comments",
                    c, c as u32
                ),
                None => "invalid TOML: unexpected end of file".to_string(),
            };
        }
        ScenarioError::Invalid { location, message }
    })?;
    let ctx = Ctx {
        file,
        text,
        doc: ImDocument::parse(text).ok(),
    };
    let root = FieldPath::root();
    if raw.name.trim().is_empty() {
        return Err(ctx.err(
            &root.key("name"),
            "the name is empty: expected a short name",
        ));
    }
    if raw.frames == 0 || raw.frames > MAX_FRAMES {
        return Err(ctx.err(
            &root.key("frames"),
            format!("{} frames: expected 1 to {MAX_FRAMES}", raw.frames),
        ));
    }
    let (soc, soc_given) = machine::resolve(&ctx, raw.soc.as_ref())?;
    modifiers::check_machine(&ctx, &soc, soc_given)?;
    machine::check(&ctx, &soc, soc_given)?;
    let events = pipeline::check(&ctx, &raw, &soc)?;
    formats::check(&ctx, &raw)?;
    m2m::check(&ctx, &raw)?;
    modifiers::check_links(&ctx, &raw, &soc)?;
    graph::check(&ctx, &raw, &soc, &events)?;
    limits::check(&ctx, &raw, &soc)?;
    Ok(Scenario {
        file: file.to_string(),
        name: raw.name,
        description: raw.description,
        seed: raw.seed,
        frames: raw.frames,
        soc,
        nodes: raw.nodes,
        links: raw.links,
        events,
        groups: raw.groups,
        processes: raw.processes,
        expect: raw.expect,
    })
}

/// Reads and validates a scenario file. Errors: [`ScenarioError::Io`] if it cannot be read (or
/// is not UTF-8), else as [`validate`].
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        path: shown.clone(),
        source,
    })?;
    validate(&text, &shown)
}
