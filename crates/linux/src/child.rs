//! Child processes for the cases a thread cannot stand in for: a heap allocation the OOM killer
//! answers kills the whole process, so it must happen in a real child (`fork`+`exec` of the
//! running binary, told what to do through the environment).
//!
//! # Rules
//!
//! 1. A binary that runs conformance cases calls [`serve_children`] first thing in `main`: in a
//!    child it does the child's work and exits; in the parent it records that children may be
//!    started. Without that call (a test harness, whose `main` is not ours),
//!    `Uapi::child_heap_alloc` answers `ENOSYS` and the case is skipped: re-executing a binary
//!    that does not know the protocol would run it again from the top.
//! 2. The child volunteers as the OOM killer's victim (`oom_score_adj` 1000) and the parent
//!    protects itself (-1000, best effort: it needs `CAP_SYS_RESOURCE`), so the kill lands
//!    where the case looks for it.
//! 3. The child exits 0 if the allocation succeeded, with the errno if it failed; a signal's
//!    death is reported as such.

use seam::{ChildExit, Errno};
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that tells a child what to do: `heap_alloc:<heap>:<len>`.
pub const CHILD_ENV: &str = "LINUX_SEAM_CHILD";

static SERVES: AtomicBool = AtomicBool::new(false);

/// Rule 1: call first thing in `main`. Never returns in a child.
pub fn serve_children() {
    if let Ok(job) = std::env::var(CHILD_ENV) {
        std::process::exit(run_child(&job));
    }
    SERVES.store(true, Ordering::SeqCst);
}

fn run_child(job: &str) -> i32 {
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    let mut parts = job.splitn(3, ':');
    let (Some("heap_alloc"), Some(heap), Some(len)) = (parts.next(), parts.next(), parts.next())
    else {
        return Errno::EINVAL.raw();
    };
    let Ok(len) = len.parse::<u64>() else {
        return Errno::EINVAL.raw();
    };
    use seam::Uapi;
    let mut p = crate::RealLinux::new();
    let r = p
        .open_heap(heap)
        .and_then(|h| p.heap_alloc(h, len, seam::O_RDWR | seam::O_CLOEXEC, 0));
    match r {
        Ok(_) => 0,
        Err(e) => e.raw(),
    }
}

/// `Uapi::child_heap_alloc` on Linux (rules 1-3).
pub(crate) fn child_heap_alloc(heap: &str, len: u64) -> Result<ChildExit, Errno> {
    if !SERVES.load(Ordering::SeqCst) {
        return Err(Errno::ENOSYS);
    }
    let _ = std::fs::write("/proc/self/oom_score_adj", "-1000");
    let status = std::process::Command::new("/proc/self/exe")
        .env(CHILD_ENV, format!("heap_alloc:{heap}:{len}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(crate::real::io_errno)?;
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ok(ChildExit::Exited(code)),
        (None, Some(sig)) => Ok(ChildExit::Killed(sig)),
        (None, None) => Err(Errno::EIO),
    }
}
