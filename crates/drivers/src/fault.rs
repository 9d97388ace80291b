//! Injected driver faults: a driver leaving out something it owes, so that a run shows what
//! the mistake does on hardware (wrong bytes) and what catches it (a checker finding).
//!
//! C side: the bugs `CONFIG_DMA_API_DEBUG` and dma-fence lockdep annotations exist to catch: a
//! missing `dma_buf_begin_cpu_access`/`dma_sync_*_for_cpu`, a job that does not wait on its
//! dependencies' fences, a buffer given back to its producer while a reader still scans it out,
//! a `dma_map_*` with the wrong `enum dma_data_direction`.
//!
//! # The concept
//! A fault is a property of a driver's job ([`crate::job::DeviceJob::fault`]) or of its CPU
//! access ([`crate::thumbnailer::CpuSync::Skip`]); the driver code consults it where it would
//! do the step it now leaves out. Nothing fakes corruption: the bytes come out wrong because
//! the step is missing, and the verification and the checker see it as they would any bug.
//!
//! | fault | what the driver leaves out | what goes wrong |
//! |---|---|---|
//! | [`Fault::SkipCacheSync`] | the CPU-access bracket (`DMA_BUF_IOCTL_SYNC`) around a CPU read | the CPU reads lines a non-coherent device wrote under: `cpu-stale-read`, an old frame |
//! | [`Fault::SkipFenceWait`] | the wait on its input's fence | it reads a frame its producer is still writing: `fence-conflict`, a torn frame |
//! | [`Fault::EarlyRelease`] | the wait for the readers of a buffer before writing it again | it overwrites a frame a reader is still reading: `fence-conflict`, a torn frame |
//! | [`Fault::WrongDirection`] | the right `dma_data_direction` when it maps its buffers | behind an IOMMU the access is refused: `iommu-fault`, the frame is lost; without one the access goes against the direction of its only mapping (`access-against-direction`) and the cache maintenance is the other direction's (a CPU reader can get stale lines) |

use std::fmt;

/// A fault a driver can be told to commit (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// No cache maintenance around a CPU access to a buffer a non-coherent device wrote.
    SkipCacheSync,
    /// The job starts without waiting for its inputs' fences.
    SkipFenceWait,
    /// The producer writes a buffer again while its readers still read it.
    EarlyRelease,
    /// The driver maps its buffers for the opposite DMA direction.
    WrongDirection,
}

impl Fault {
    /// Every fault, in declaration order.
    pub const ALL: [Fault; 4] = [
        Fault::SkipCacheSync,
        Fault::SkipFenceWait,
        Fault::EarlyRelease,
        Fault::WrongDirection,
    ];

    /// The name used in scenario files and reports (`"skip_cache_sync"`).
    pub const fn name(self) -> &'static str {
        match self {
            Fault::SkipCacheSync => "skip_cache_sync",
            Fault::SkipFenceWait => "skip_fence_wait",
            Fault::EarlyRelease => "early_release",
            Fault::WrongDirection => "wrong_direction",
        }
    }

    /// The fault named `name`, if any.
    ///
    /// ```
    /// use drivers::fault::Fault;
    /// assert_eq!(Fault::from_name("early_release"), Some(Fault::EarlyRelease));
    /// assert_eq!(Fault::from_name("bit_flip"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
