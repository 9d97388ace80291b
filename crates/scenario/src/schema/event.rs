//! `[[events]]`: what happens mid-stream, at a frame or at a virtual time.
//!
//! In the file an event is one flat table (`at_frame` or `at_us`, `action`, and the fields the
//! action takes), which keeps error positions exact; validation turns it into a typed [`Event`].

use crate::clock::VirtualTime;
use serde::{Deserialize, Serialize};
use soc::ByteSize;

/// Which vb2 queue of a node (`V4L2_BUF_TYPE_VIDEO_CAPTURE` or `_OUTPUT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// The queue the device writes (camera, an ISP's result).
    Capture,
    /// The queue the device reads (an ISP's input, display, encoder).
    Output,
}

impl QueueKind {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            QueueKind::Capture => "capture",
            QueueKind::Output => "output",
        }
    }
}

/// The `action` of an event, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A node's device attaches to the buffers it consumes and starts streaming (`node`).
    Attach,
    /// A node stops and detaches (`node`).
    Detach,
    /// Something else takes device-local memory (`bytes`, optional `bank`, `for_frames`).
    VramPressure,
    /// Something else takes system memory (`bank`, `bytes`, `for_frames`).
    MemoryPressure,
    /// A process dies: its fds close (`process`).
    Kill,
    /// `VIDIOC_STREAMOFF` on a node's queue (`node`, optional `queue`).
    StreamOff,
    /// `VIDIOC_STREAMON` on a node's queue (`node`, optional `queue`).
    StreamOn,
    /// The number of buffers of a link changes (`link`, `count`).
    SetBuffers,
    /// A node's driver commits a fault (`node`, `fault`, optional `for_frames`).
    Fault,
    /// The simulated kernel's `/sys/kernel/debug/dma_buf/bufinfo` is written to
    /// `bufinfo-<frame>.txt` (no field).
    Bufinfo,
}

impl ActionKind {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Attach => "attach",
            ActionKind::Detach => "detach",
            ActionKind::VramPressure => "vram_pressure",
            ActionKind::MemoryPressure => "memory_pressure",
            ActionKind::Kill => "kill",
            ActionKind::StreamOff => "stream_off",
            ActionKind::StreamOn => "stream_on",
            ActionKind::SetBuffers => "set_buffers",
            ActionKind::Fault => "fault",
            ActionKind::Bufinfo => "bufinfo",
        }
    }
}

/// A fault a driver can be told to commit (`action = "fault"`); see [`drivers::fault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A CPU reader (a thumbnailer) leaves out `DMA_BUF_IOCTL_SYNC` around its read.
    SkipCacheSync,
    /// A consumer starts its job without waiting for its input's fence.
    SkipFenceWait,
    /// A producer writes a buffer again while its readers still read it.
    EarlyRelease,
    /// The driver maps its buffers for the opposite DMA direction.
    WrongDirection,
}

impl FaultKind {
    /// The driver's fault.
    pub fn driver_fault(self) -> drivers::fault::Fault {
        use drivers::fault::Fault;
        match self {
            FaultKind::SkipCacheSync => Fault::SkipCacheSync,
            FaultKind::SkipFenceWait => Fault::SkipFenceWait,
            FaultKind::EarlyRelease => Fault::EarlyRelease,
            FaultKind::WrongDirection => Fault::WrongDirection,
        }
    }

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        self.driver_fault().name()
    }
}

/// An event as written in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDesc {
    /// The frame at which it happens (when the sources start producing that frame).
    #[serde(default)]
    pub at_frame: Option<u64>,
    /// The virtual time at which it happens, in microseconds from the start.
    #[serde(default)]
    pub at_us: Option<u64>,
    /// What happens.
    pub action: ActionKind,
    /// The node (`attach`, `detach`, `stream_off`, `stream_on`).
    #[serde(default)]
    pub node: Option<String>,
    /// The process (`kill`).
    #[serde(default)]
    pub process: Option<String>,
    /// The link (`set_buffers`).
    #[serde(default)]
    pub link: Option<String>,
    /// The bank (`memory_pressure`; optional for `vram_pressure`).
    #[serde(default)]
    pub bank: Option<String>,
    /// How much memory the pressure takes (`vram_pressure`, `memory_pressure`).
    #[serde(default)]
    pub bytes: Option<ByteSize>,
    /// How many frames the pressure lasts (default: to the end); how many of its jobs a fault
    /// touches (default 1).
    #[serde(default)]
    pub for_frames: Option<u64>,
    /// The new buffer count (`set_buffers`).
    #[serde(default)]
    pub count: Option<u32>,
    /// The queue (`stream_off`, `stream_on`; default: every queue of the node).
    #[serde(default)]
    pub queue: Option<QueueKind>,
    /// The fault (`fault`).
    #[serde(default)]
    pub fault: Option<FaultKind>,
}

/// When an event happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum At {
    /// When the sources start producing this frame.
    Frame(u64),
    /// At this virtual time.
    Time(VirtualTime),
}

impl At {
    /// The virtual time of this moment when frame `n` starts at `n * frame_period` (the
    /// runner's source clock); saturating.
    ///
    /// ```
    /// use scenario::clock::VirtualTime;
    /// use scenario::schema::At;
    /// let period = VirtualTime::frame_period(60);
    /// assert_eq!(At::Frame(3).resolve(period), VirtualTime(3 * 16_666_667));
    /// assert_eq!(At::Time(VirtualTime::from_us(5)).resolve(period), VirtualTime::from_us(5));
    /// ```
    pub fn resolve(self, frame_period: VirtualTime) -> VirtualTime {
        match self {
            At::Frame(f) => VirtualTime(f.saturating_mul(frame_period.as_ns())),
            At::Time(t) => t,
        }
    }

    /// The virtual time of this moment on a source clocked at `fps`: frame `n` starts at
    /// [`Fps::tick`](crate::clock::Fps::tick)`(n)`, exactly (no accumulated rounding).
    ///
    /// ```
    /// use scenario::clock::{Fps, VirtualTime};
    /// use scenario::schema::At;
    /// let ntsc = Fps::new(30000, 1001).unwrap();
    /// assert_eq!(At::Frame(3).at_rate(ntsc), VirtualTime(100_100_000));
    /// ```
    pub fn at_rate(self, fps: crate::clock::Fps) -> VirtualTime {
        match self {
            At::Frame(f) => fps.tick(f),
            At::Time(t) => t,
        }
    }
}

/// What a validated event does; every name in it refers to something that exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventAction {
    /// A node attaches and starts.
    Attach {
        /// The node.
        node: String,
    },
    /// A node stops and detaches.
    Detach {
        /// The node.
        node: String,
    },
    /// Device-local memory is taken by someone else, forcing evictions.
    VramPressure {
        /// The device-local bank.
        bank: String,
        /// How much.
        bytes: u64,
        /// For how many frames (`None`: to the end).
        for_frames: Option<u64>,
    },
    /// System memory is taken by someone else.
    MemoryPressure {
        /// The bank.
        bank: String,
        /// How much.
        bytes: u64,
        /// For how many frames (`None`: to the end).
        for_frames: Option<u64>,
    },
    /// A process dies and its fds close.
    Kill {
        /// The process.
        process: String,
    },
    /// `VIDIOC_STREAMOFF`.
    StreamOff {
        /// The node.
        node: String,
        /// The queues, in order.
        queues: Vec<QueueKind>,
    },
    /// `VIDIOC_STREAMON`.
    StreamOn {
        /// The node.
        node: String,
        /// The queues, in order.
        queues: Vec<QueueKind>,
    },
    /// A link's buffer count changes (seed 000's dynamic in-flight buffers).
    SetBuffers {
        /// The link's name.
        link: String,
        /// The new count.
        count: u32,
    },
    /// A node's driver commits `fault` in its next `jobs` jobs (frames).
    Fault {
        /// The node.
        node: String,
        /// The fault.
        fault: FaultKind,
        /// How many of the node's jobs it touches.
        jobs: u64,
    },
    /// A snapshot of every live dma-buf in the kernel's debugfs `bufinfo` format.
    Bufinfo,
}

/// A validated event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Its position in the file's `[[events]]` list (the tie-break between events at the same
    /// moment: file order).
    pub index: usize,
    /// When.
    pub at: At,
    /// What.
    pub action: EventAction,
}
