//! Debug counters that pair (`CONFIG_VIDEO_ADV_DEBUG`'s `cnt_*` fields of `struct vb2_buffer`).
//!
//! C side: `videobuf2-core.c` (`log_memop`, `log_qop`, and the imbalance report of
//! `__vb2_queue_free`).
//!
//! Every call vb2 makes that must later be undone is counted, and so is the undo. After any
//! sequence followed by a free (REQBUFS(0) or close), each pair is equal
//! ([`CounterSnapshot::check_balanced`]); a difference is a leak (a mapping, an attachment, a
//! pinned page) or a double release.
//!
//! | pair | counted when |
//! |---|---|
//! | `alloc`/`put` | MMAP plane memory allocated / the queue's reference dropped |
//! | `get_userptr`/`put_userptr` | USERPTR pages pinned and mapped for the device (a QBUF or PREPARE_BUF with a new pointer or length; the same pair again reuses them) / unmapped and unpinned |
//! | `attach`/`detach` | a DMABUF plane attaches / detaches |
//! | `map`/`unmap` | a DMABUF plane maps / unmaps its attachment |
//! | `mem_prepare`/`mem_finish` | the memory's cache "prepare" / "finish" runs (never for DMABUF) |
//! | `buf_init`/`buf_cleanup` | the driver callbacks |
//! | `buf_prepare`/`buf_finish` | a successful `buf_prepare` / its `buf_finish` |
//! | `buf_queue`/`buf_done` | a buffer is handed to the driver / comes back (done, error, queued, or reclaimed) |
//! | `start_streaming`/`stop_streaming` | a successful start / its stop |
//!
//! `warnings` counts what the kernel `WARN`s about (a driver that leaves buffers active at
//! `stop_streaming`, a `buffer_done` on a buffer that is not active).

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// The live counters of one queue (atomics: a driver thread counts `buf_done`).
        #[derive(Debug, Default)]
        pub struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        /// A copy of a queue's counters at one moment.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct CounterSnapshot {
            $(
                #[doc = concat!("`", stringify!($name), "` calls.")]
                pub $name: u64,
            )*
        }

        impl Counters {
            /// The current values.
            pub fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

counters!(
    alloc,
    put,
    get_userptr,
    put_userptr,
    attach,
    detach,
    map,
    unmap,
    mem_prepare,
    mem_finish,
    buf_init,
    buf_cleanup,
    buf_prepare,
    buf_finish,
    buf_queue,
    buf_done,
    start_streaming,
    stop_streaming,
    warnings,
);

impl Counters {
    #[inline]
    pub(crate) fn inc(c: &AtomicU64) {
        // Relaxed: the counters are statistics; nothing is ordered by them.
        c.fetch_add(1, Ordering::Relaxed);
    }
}

impl CounterSnapshot {
    /// The pairs, as `(name, calls, undo name, undos)`.
    pub fn pairs(&self) -> [(&'static str, u64, &'static str, u64); 9] {
        [
            ("alloc", self.alloc, "put", self.put),
            (
                "get_userptr",
                self.get_userptr,
                "put_userptr",
                self.put_userptr,
            ),
            ("attach", self.attach, "detach", self.detach),
            ("map", self.map, "unmap", self.unmap),
            (
                "mem_prepare",
                self.mem_prepare,
                "mem_finish",
                self.mem_finish,
            ),
            ("buf_init", self.buf_init, "buf_cleanup", self.buf_cleanup),
            (
                "buf_prepare",
                self.buf_prepare,
                "buf_finish",
                self.buf_finish,
            ),
            ("buf_queue", self.buf_queue, "buf_done", self.buf_done),
            (
                "start_streaming",
                self.start_streaming,
                "stop_streaming",
                self.stop_streaming,
            ),
        ]
    }

    /// `Ok` if every pair is equal, else a message naming each unequal pair.
    ///
    /// ```
    /// let mut s = vb2::CounterSnapshot::default();
    /// assert!(s.check_balanced().is_ok());
    /// s.attach = 2;
    /// s.detach = 1;
    /// assert_eq!(s.check_balanced().unwrap_err(), "attach 2 != detach 1");
    /// ```
    pub fn check_balanced(&self) -> Result<(), String> {
        let bad: Vec<String> = self
            .pairs()
            .iter()
            .filter(|(_, a, _, b)| a != b)
            .map(|(n, a, m, b)| format!("{n} {a} != {m} {b}"))
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join(", "))
        }
    }
}
