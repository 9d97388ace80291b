//! The conformance suite: Linux's dma-buf UAPI behaviour, written once against [`Uapi`] and run
//! against the simulator (CI) and against a real kernel (the `linux` crate, under qemu).
//!
//! Sources: `reference/kernel-semantics.md` behaviours 51-58 and 79-101, and section 3's kernel
//! selftests `tools/testing/selftests/dmabuf-heaps/dmabuf-heap.c` and
//! `tools/testing/selftests/drivers/dma-buf/udmabuf.c`.
//!
//! # The concept
//!
//! Each case is a `pub fn name<U: Uapi>(u: &mut U) -> Result<Outcome, Failure>` checking one
//! behaviour, named after it (or after the kernel selftest case it ports). A case either passes,
//! is skipped with a reason ([`Outcome::Skipped`]: the kernel lacks an optional feature), or
//! fails with a message naming the call and what came back. [`run_all`] runs every case in
//! [`cases`] and returns a [`Report`] whose `Display` ends with `N passed, N failed, N skipped`.
//!
//! # Rules
//!
//! 1. A case checks errnos exactly: the kernel's answer, not "some error".
//! 2. A case closes every fd it opened, on failure too, so cases can run one after another on
//!    the same process; mappings are dropped before the case returns.
//! 3. A case never assumes a fd number (a real process has 0, 1 and 2 open; a simulated one may
//!    not): "not a memfd" is a heap or dma-buf fd, "not open" is an fd that was just closed.
//! 4. Optional features are probed (module rule 5 of [`crate`]); a missing one skips the
//!    case with a reason, and a missing `system` heap or `/dev/udmabuf` skips the cases that
//!    need them. Pending fences come from the fence source ([`Uapi::fence_attach`], vgem on
//!    Linux), or from sw_sync where there is none; only the `sw_sync_*` cases need sw_sync
//!    itself.
//! 5. Where the real kernel's behaviour depends on its version, the case's doc names the
//!    version it describes (Linux 6.12 unless said otherwise).

mod dma_buf;
pub mod fences;
mod heap;
pub mod prime;
mod process;
mod sync_file;
pub mod syscalls;
mod udmabuf;
pub mod v4l2;

pub use dma_buf::*;
pub use heap::*;
pub use process::*;
pub use sync_file::*;
pub use udmabuf::*;

use super::{Errno, Fd, Mapping, Uapi, PROT_READ, PROT_WRITE};
use std::fmt;

/// How a case ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held.
    Passed,
    /// The case could not run on this system; the reason names the missing feature.
    Skipped(String),
}

/// A failed check: what was called and what came back instead of what Linux answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The explanation, e.g. `"dma_buf_sync(START): expected Err(EINVAL), got Ok(())"`.
    pub message: String,
}

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The signature of every case.
pub type CaseFn<U> = fn(&mut U) -> Result<Outcome, Failure>;

/// One entry of the suite: its name (the function's), the behaviour it checks, and the function.
pub struct Case<U> {
    /// The case's function name.
    pub name: &'static str,
    /// The behaviour numbers or selftest case it covers (`"79"`, `"udmabuf test-5"`).
    pub covers: &'static str,
    /// The case itself.
    pub run: CaseFn<U>,
}

/// The result of one case in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's name.
    pub name: &'static str,
    /// Passed, skipped, or the failure.
    pub result: Result<Outcome, Failure>,
}

/// What [`run_all`] found: one [`CaseResult`] per case, in suite order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every case's result.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// How many cases passed.
    pub fn passed(&self) -> usize {
        self.count(|r| matches!(r, Ok(Outcome::Passed)))
    }

    /// How many cases failed.
    pub fn failed(&self) -> usize {
        self.count(|r| r.is_err())
    }

    /// How many cases were skipped.
    pub fn skipped(&self) -> usize {
        self.count(|r| matches!(r, Ok(Outcome::Skipped(_))))
    }

    fn count(&self, f: impl Fn(&Result<Outcome, Failure>) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.result)).count()
    }
}

impl fmt::Display for Report {
    /// One line per case (`ok`, `SKIP (reason)`, `FAIL: message`), then the closing line
    /// `N passed, N failed, N skipped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            match &r.result {
                Ok(Outcome::Passed) => writeln!(f, "ok    {}", r.name)?,
                Ok(Outcome::Skipped(why)) => writeln!(f, "SKIP  {} ({why})", r.name)?,
                Err(e) => writeln!(f, "FAIL  {}: {e}", r.name)?,
            }
        }
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }
}

/// A named group of cases: the runners print one closing line per suite.
pub struct Suite<U> {
    /// The suite's name (`"dma-buf"`, `"syscalls"`, ...).
    pub name: &'static str,
    /// Its cases, in a stable order.
    pub cases: Vec<Case<U>>,
}

/// Every suite generic over [`Uapi`]: `dma-buf` (the cases of [`cases`]: heaps, udmabuf, the
/// dma-buf ioctls, sync files, fd tables), [`syscalls`] (every plain call on every kind of fd)
/// and [`fences`] (real unsignalled fences from the fence source; debugfs bufinfo).
pub fn suites<U: Uapi>() -> Vec<Suite<U>> {
    vec![
        Suite {
            name: "dma-buf",
            cases: cases(),
        },
        Suite {
            name: "syscalls",
            cases: syscalls::cases(),
        },
        Suite {
            name: "fences",
            cases: fences::cases(),
        },
    ]
}

/// Runs every case of every suite of [`suites`] on `u`, one after another.
pub fn run_all<U: Uapi>(u: &mut U) -> Report {
    let results = suites::<U>()
        .into_iter()
        .flat_map(|s| s.cases)
        .map(|c| CaseResult {
            name: c.name,
            result: (c.run)(u),
        })
        .collect();
    Report { results }
}

macro_rules! suite {
    ($($name:ident => $covers:expr,)*) => {
        /// Every case of the suite, in a stable order.
        pub fn cases<U: Uapi>() -> Vec<Case<U>> {
            vec![$(Case { name: stringify!($name), covers: $covers, run: $name::<U> },)*]
        }

        /// The names of every case, in the order of [`cases`].
        pub const CASE_NAMES: &[&str] = &[$(stringify!($name),)*];
    };
}

suite! {
    dma_buf_sync_valid_flags => "79-80",
    dma_buf_sync_invalid_flags_einval => "79",
    dma_buf_sync_no_direction_einval => "80",
    dma_buf_sync_wrong_fd => "87",
    dma_buf_set_name_shows_in_fdinfo => "84, 87",
    dma_buf_set_name_too_long_einval => "84",
    dma_buf_set_name_wrong_fd => "84, 87",
    export_sync_file_bad_flags_einval => "85",
    export_sync_file_idle_is_signaled => "85",
    export_sync_file_snapshots_by_usage => "85-86",
    import_sync_file_bad_flags_einval => "86",
    import_sync_file_not_a_sync_file_einval => "86",
    import_sync_file_wrong_dma_buf_fd => "86-87",
    dma_buf_ioctls_on_a_heap_fd_einval => "90",
    dma_buf_lseek_end_and_set => "82",
    dma_buf_lseek_invalid_einval => "82",
    dma_buf_poll_no_events_is_zero => "83",
    dma_buf_poll_idle_is_ready => "83",
    dma_buf_poll_write_fence_blocks_in_and_out => "83",
    dma_buf_poll_read_fence_blocks_out_only => "83",
    poll_closed_fd_is_pollnval => "poll(2)",
    dma_buf_mmap_read_write => "81, 93",
    dma_buf_mmap_past_end_einval => "81",
    dma_buf_mmap_offset_inside => "81",
    dma_buf_mmap_bad_len_or_offset_einval => "81, mmap(2)",
    dma_buf_mmap_huge_len_enomem => "mmap(2)",
    dma_buf_mmap_access_mode_eacces => "mmap(2), 89",
    dma_buf_mmap_prot_read_refuses_write => "Mapping rule 2",
    dma_buf_mmap_outlives_fd => "64",
    dma_buf_fdinfo_size_count_exp_name => "87",
    heap_open_unknown_enoent => "91",
    heap_alloc_rounds_up_to_pages => "89",
    heap_alloc_zero_len_einval => "89",
    heap_alloc_bad_fd_flags_einval => "88",
    heap_alloc_bad_heap_flags_einval => "88",
    heap_alloc_wrong_fd => "90",
    heap_alloc_failure_leaks_no_fd => "issue 4: a failed call changes nothing",
    test_alloc_and_import => "dmabuf-heaps selftest",
    test_alloc_zeroed_4k => "dmabuf-heaps selftest, 93-94",
    test_alloc_zeroed_1m => "dmabuf-heaps selftest, 93-94",
    test_alloc_compat => "dmabuf-heaps selftest, 90",
    test_alloc_errors => "dmabuf-heaps selftest, 88",
    cma_heap_mmap_private_einval => "94",
    memfd_pwrite_pread => "memfd",
    memfd_bad_flags_einval => "memfd_create(2)",
    memfd_seal_rules => "fcntl(2) seals",
    udmabuf_test_1_unaligned_offset => "udmabuf test-1, 95",
    udmabuf_test_2_unaligned_size => "udmabuf test-2, 95",
    udmabuf_test_3_not_memfd => "udmabuf test-3, 96",
    udmabuf_test_4_create => "udmabuf test-4, 97, 100",
    udmabuf_test_5_create_list_sees_memfd_writes => "udmabuf test-5, 98, 100",
    udmabuf_test_6_hugetlb => "udmabuf test-6",
    udmabuf_test_7_hugetlb_pin_first => "udmabuf test-7",
    udmabuf_zero_size_einval => "95",
    udmabuf_size_limit_einval => "95",
    udmabuf_closed_memfd_ebadfd => "96",
    udmabuf_seals_einval => "97",
    udmabuf_range_past_memfd_einval => "udmabuf_pin_folios",
    udmabuf_empty_item_einval => "udmabuf_pin_folios (6.11+)",
    udmabuf_list_limit_einval => "98",
    udmabuf_list_concatenates_in_order => "98",
    udmabuf_flags => "99",
    udmabuf_is_rdwr_and_page_sized => "100",
    udmabuf_mmap_private_einval => "101",
    udmabuf_sync_end_before_start_einval => "101",
    udmabuf_outlives_memfd_fd => "100",
    sync_merge_two_contexts => "52, 54",
    sw_sync_merge_same_timeline_keeps_later => "52, 36",
    sync_merge_name_cut_to_31_bytes => "52, 54",
    sync_merge_flags_pad_einval => "52",
    sync_merge_fd2_not_sync_file_enoent => "52",
    sync_merge_fd1_not_sync_file => "52, 56",
    sync_file_info_count_then_fill => "53",
    sync_file_info_bad_args_einval => "53",
    sync_file_poll_in_iff_signaled => "55",
    sw_sync_close_signals_enoent => "57-58",
    fd_close_and_dup_ebadf => "fd table",
    fd_lowest_free_number => "fd table",
    fd_dup_shares_the_buffer => "fd table, 87",
    fd_numbers_are_per_process => "isolation",
    fd_send_shares_buffer_between_processes => "SCM_RIGHTS, 64",
}

// --- helpers shared by the case files -----------------------------------------------------

/// Why a case body stopped early: skipped, or failed.
pub(crate) enum Halt {
    Skip(String),
    Fail(Failure),
}

impl From<Failure> for Halt {
    fn from(f: Failure) -> Halt {
        Halt::Fail(f)
    }
}

pub(crate) type Step<T> = Result<T, Halt>;

/// Runs a case body with an fd list that is closed afterwards, pass or fail (rule 2).
pub(crate) fn scoped<U: Uapi>(
    u: &mut U,
    body: impl FnOnce(&mut U, &mut Vec<Fd>) -> Step<()>,
) -> Result<Outcome, Failure> {
    let mut fds = Vec::new();
    let result = body(u, &mut fds);
    for fd in fds.into_iter().rev() {
        let _ = u.close(fd);
    }
    match result {
        Ok(()) => Ok(Outcome::Passed),
        Err(Halt::Skip(why)) => Ok(Outcome::Skipped(why)),
        Err(Halt::Fail(f)) => Err(f),
    }
}

/// A failure as a [`Halt`].
pub(crate) fn fail<T>(message: impl Into<String>) -> Step<T> {
    Err(Halt::Fail(Failure::new(message)))
}

/// A skip as a [`Halt`].
pub(crate) fn skip<T>(reason: impl Into<String>) -> Step<T> {
    Err(Halt::Skip(reason.into()))
}

/// Fails with `what` unless `cond`.
pub(crate) fn ensure(cond: bool, what: impl FnOnce() -> String) -> Step<()> {
    if cond {
        Ok(())
    } else {
        fail(what())
    }
}

/// A setup or checked call that must succeed: its error becomes a failure naming the call.
pub(crate) fn ok<T>(what: &str, r: Result<T, Errno>) -> Step<T> {
    r.map_err(|e| {
        Halt::Fail(Failure::new(format!(
            "{what}: expected success, got Err({e:?})"
        )))
    })
}

/// An fd-returning call that must succeed; the fd joins the case's close list.
pub(crate) fn open(fds: &mut Vec<Fd>, what: &str, r: Result<Fd, Errno>) -> Step<Fd> {
    let fd = ok(what, r)?;
    fds.push(fd);
    Ok(fd)
}

/// A call that must fail with exactly `want`. A success that returned an fd is closed by the
/// caller's scope if `T` is an fd; other successes are just reported.
pub(crate) fn errno<T: fmt::Debug>(what: &str, want: Errno, r: Result<T, Errno>) -> Step<()> {
    match r {
        Err(e) if e == want => Ok(()),
        other => fail(format!("{what}: expected Err({want:?}), got {other:?}")),
    }
}

/// Like [`errno`] for an fd-returning call: an unexpected fd is closed first.
pub(crate) fn errno_fd<U: Uapi>(
    u: &mut U,
    what: &str,
    want: Errno,
    r: Result<Fd, Errno>,
) -> Step<()> {
    if let Ok(fd) = r {
        let _ = u.close(fd);
    }
    errno(what, want, r)
}

/// Closes an fd of the case's list now (and takes it off the list).
pub(crate) fn close_now<U: Uapi>(u: &mut U, fds: &mut Vec<Fd>, fd: Fd) -> Step<()> {
    fds.retain(|&f| f != fd);
    ok(&format!("close({fd})"), u.close(fd))
}

/// A fd that is not open: opens a memfd, closes it, and returns its number (rule 3). The
/// number stays free until the case opens something else.
pub(crate) fn closed_fd<U: Uapi>(u: &mut U) -> Step<Fd> {
    let fd = ok("memfd_create", u.memfd_create("closed", 0))?;
    ok("close", u.close(fd))?;
    Ok(fd)
}

/// Opens the `system` heap, or skips the case (rule 4).
pub(crate) fn system_heap<U: Uapi>(u: &mut U, fds: &mut Vec<Fd>) -> Step<Fd> {
    match u.open_heap("system") {
        Ok(fd) => {
            fds.push(fd);
            Ok(fd)
        }
        Err(e) => skip(format!("no system heap (open: {e:?})")),
    }
}

/// A `len`-byte read-write buffer from the system heap (skips without one).
pub(crate) fn system_buffer<U: Uapi>(u: &mut U, fds: &mut Vec<Fd>, len: u64) -> Step<Fd> {
    let heap = system_heap(u, fds)?;
    open(
        fds,
        "heap_alloc(system)",
        u.heap_alloc(heap, len, super::O_RDWR | super::O_CLOEXEC, 0),
    )
}

/// A pending fence the case signals when it likes, as a sync file (rule 4's fence source).
pub(crate) struct Pending {
    /// A sync file holding just that fence.
    pub(crate) sync: Fd,
    how: Signal,
}

enum Signal {
    /// A fence of the system's fence source ([`Uapi::fence_attach`]: vgem on Linux).
    Attached(u32),
    /// A point of an sw_sync timeline, where there is no fence source.
    Point(Fd),
}

/// A new pending fence: attached (write usage) to a fresh buffer of its own with
/// [`Uapi::fence_attach`] and exported as a sync file; where the system has no fence source
/// (`ENOSYS`), an sw_sync point; with neither, the case is skipped.
pub(crate) fn pending<U: Uapi>(u: &mut U, fds: &mut Vec<Fd>) -> Step<Pending> {
    let holder = system_buffer(u, fds, PAGE)?;
    match u.fence_attach(holder, true) {
        Ok(id) => {
            let sync = open(
                fds,
                "export_sync_file(READ) of the fenced buffer",
                u.export_sync_file(holder, super::DMA_BUF_SYNC_READ as u32),
            )?;
            Ok(Pending {
                sync,
                how: Signal::Attached(id),
            })
        }
        Err(Errno::ENOSYS) => {
            let tl = match u.sw_sync_open() {
                Ok(fd) => {
                    fds.push(fd);
                    fd
                }
                Err(e) => return skip(format!("no fence source (vgem) and no sw_sync ({e:?})")),
            };
            let sync = fence_at(u, fds, tl, 1)?;
            Ok(Pending {
                sync,
                how: Signal::Point(tl),
            })
        }
        Err(e) => fail(format!("fence_attach(WRITE) on a fresh buffer: Err({e:?})")),
    }
}

/// Signals a [`pending`] fence.
pub(crate) fn signal<U: Uapi>(u: &mut U, p: &Pending) -> Step<()> {
    match p.how {
        Signal::Attached(id) => ok("fence_signal", u.fence_signal(id)),
        Signal::Point(tl) => ok("sw_sync_inc", u.sw_sync_inc(tl, 1)),
    }
}

/// Opens a `sw_sync` timeline, or skips the case (rule 4).
pub(crate) fn timeline<U: Uapi>(u: &mut U, fds: &mut Vec<Fd>) -> Step<Fd> {
    match u.sw_sync_open() {
        Ok(fd) => {
            fds.push(fd);
            Ok(fd)
        }
        Err(e) => skip(format!("no sw_sync timelines (open: {e:?})")),
    }
}

/// A sync file that signals when `timeline` reaches `value`.
pub(crate) fn fence_at<U: Uapi>(u: &mut U, fds: &mut Vec<Fd>, tl: Fd, value: u32) -> Step<Fd> {
    open(
        fds,
        "sw_sync_create_fence",
        u.sw_sync_create_fence(tl, value),
    )
}

/// Maps `len` bytes of `fd` read-write and shared.
pub(crate) fn map_rw<U: Uapi>(u: &mut U, fd: Fd, offset: u64, len: u64) -> Step<U::Map> {
    ok(
        &format!("mmap(fd {fd}, {offset}, {len}, RW, shared)"),
        u.mmap(fd, offset, len, PROT_READ | PROT_WRITE, true),
    )
}

/// Reads `len` bytes of a mapping at `offset`.
pub(crate) fn read_map<M: Mapping>(m: &M, offset: u64, len: usize) -> Step<Vec<u8>> {
    let mut buf = vec![0u8; len];
    ok("mapping read", m.read(offset, &mut buf))?;
    Ok(buf)
}

/// The buffer size `lseek(fd, 0, SEEK_END)` reports.
pub(crate) fn size_of<U: Uapi>(u: &mut U, fd: Fd) -> Step<u64> {
    ok("lseek(0, SEEK_END)", u.lseek(fd, 0, super::SEEK_END))
}

/// The status of a sync file (`FILE_INFO` with no array): 0 pending, 1 signaled, `-errno`.
pub(crate) fn status_of<U: Uapi>(u: &mut U, fd: Fd) -> Step<i32> {
    let mut info = super::SyncFileInfo::default();
    ok(
        "sync_file_info(count)",
        u.sync_file_info_ioctl(fd, &mut info),
    )?;
    Ok(info.status)
}

/// The kernel's page size, which every implementation of the seam shares (4 KiB).
pub const PAGE: u64 = 4096;

/// Whether a heap name is one Linux gives its CMA heap: `reserved` / `linux,cma` /
/// `default_cma_region` (named after the default CMA region), or the simulator's `cma*` regions.
pub fn is_cma_heap_name(name: &str) -> bool {
    matches!(name, "reserved" | "linux,cma" | "default_cma_region") || name.starts_with("cma")
}
