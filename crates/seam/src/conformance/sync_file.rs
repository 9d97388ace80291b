//! Cases for sync files and sw_sync timelines (behaviours 51-58): `SYNC_IOC_MERGE`,
//! `SYNC_IOC_FILE_INFO`, `poll`, and closing a timeline.
//!
//! Fences the test controls come from the fence source ([`Uapi::fence_attach`]: vgem on Linux,
//! which stock kernels have where they lack `CONFIG_SW_SYNC`), or from sw_sync where there is
//! no fence source. The `sw_sync_*` cases are about sw_sync timelines themselves (one context
//! for many points, closing the timeline) and need sw_sync.

use super::*;
use crate::{SyncFileInfo, SyncMergeData, POLLIN, POLLOUT};

/// 52, 54: merging fences of two contexts gives a file of two fences, pending until both
/// signal; both inputs stay valid.
pub fn sync_merge_two_contexts<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let pa = pending(u, fds)?;
        let pb = pending(u, fds)?;
        let (a, b) = (pa.sync, pb.sync);
        let m = open(fds, "sync_merge", u.sync_merge("both", a, b))?;
        let info = ok("sync_file_info", u.sync_file_info(m))?;
        ensure(info.num_fences == 2 && info.status == 0, || {
            format!("merged info {info:?}, expected 2 pending fences")
        })?;
        ensure(info.name == "both", || {
            format!("merged name {:?}", info.name)
        })?;
        signal(u, &pa)?;
        ensure(status_of(u, m)? == 0, || {
            "merge signaled with one fence pending".into()
        })?;
        ensure(status_of(u, a)? == 1, || "input a did not signal".into())?;
        signal(u, &pb)?;
        let info = ok("sync_file_info", u.sync_file_info(m))?;
        let all_done = info
            .sync_fence_info
            .iter()
            .all(|f| f.status == 1 && f.timestamp_ns > 0);
        ensure(info.status == 1 && all_done, || {
            format!("after both signaled: {info:?}")
        })?;
        ensure(status_of(u, b)? == 1, || {
            "input b is no longer valid".into()
        })
    })
}

/// 52, 36: merging two points of one sw_sync timeline (one context) keeps only the later one.
pub fn sw_sync_merge_same_timeline_keeps_later<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let tl = timeline(u, fds)?;
        let a = fence_at(u, fds, tl, 1)?;
        let b = fence_at(u, fds, tl, 2)?;
        let m = open(fds, "sync_merge", u.sync_merge("later", a, b))?;
        let info = ok("sync_file_info", u.sync_file_info(m))?;
        ensure(info.num_fences == 1, || {
            format!("merged info {info:?}, expected 1 fence")
        })?;
        ok("inc 1", u.sw_sync_inc(tl, 1))?;
        ensure(status_of(u, m)? == 0, || {
            "the merge kept the earlier point".into()
        })?;
        ok("inc 1", u.sw_sync_inc(tl, 1))?;
        ensure(status_of(u, m)? == 1, || "the merge did not signal".into())
    })
}

/// 52, 54: the merge name is cut to 31 bytes (plus the NUL).
pub fn sync_merge_name_cut_to_31_bytes<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let a = pending(u, fds)?.sync;
        let long = "a-name-much-longer-than-thirty-one-bytes";
        let m = open(fds, "sync_merge", u.sync_merge(long, a, a))?;
        let info = ok("sync_file_info", u.sync_file_info(m))?;
        ensure(info.name == long[..31], || {
            format!("merged name {:?}", info.name)
        })
    })
}

/// 52: `flags` or `pad` not zero is `EINVAL`.
pub fn sync_merge_flags_pad_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let s = open(fds, "export_sync_file", u.export_sync_file(buf, 1))?;
        let mut flags = SyncMergeData::new("f", s);
        flags.flags = 1;
        let r = u.sync_merge_ioctl(s, &mut flags);
        errno_fd(u, "merge(flags 1)", Errno::EINVAL, r)?;
        let mut pad = SyncMergeData::new("p", s);
        pad.pad = 1;
        let r = u.sync_merge_ioctl(s, &mut pad);
        errno_fd(u, "merge(pad 1)", Errno::EINVAL, r)
    })
}

/// 52: an `fd2` that is not a sync file (another file, or not open) is `ENOENT`.
pub fn sync_merge_fd2_not_sync_file_enoent<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let s = open(fds, "export_sync_file", u.export_sync_file(buf, 1))?;
        let r = u.sync_merge("x", s, buf);
        errno_fd(u, "merge(fd2 = dma-buf)", Errno::ENOENT, r)?;
        let closed = closed_fd(u)?;
        let r = u.sync_merge("x", s, closed);
        errno_fd(u, "merge(fd2 closed)", Errno::ENOENT, r)
    })
}

/// 52, 56: the merge ioctl on a file that is not a sync file is `ENOTTY`; on a closed fd
/// `EBADF`.
pub fn sync_merge_fd1_not_sync_file<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let s = open(fds, "export_sync_file", u.export_sync_file(buf, 1))?;
        let r = u.sync_merge("x", buf, s);
        errno_fd(u, "merge on a dma-buf", Errno::ENOTTY, r)?;
        let closed = closed_fd(u)?;
        let r = u.sync_merge("x", closed, s);
        errno_fd(u, "merge on a closed fd", Errno::EBADF, r)
    })
}

/// 53: FILE_INFO with `num_fences` 0 reports the count and the status without entries; with
/// enough room it fills one entry per fence (status, names).
pub fn sync_file_info_count_then_fill<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let pa = pending(u, fds)?;
        let pb = pending(u, fds)?;
        let (a, b) = (pa.sync, pb.sync);
        let driver = ok("sync_file_info(b)", u.sync_file_info(b))?
            .sync_fence_info
            .first()
            .map(|f| f.driver_name.clone())
            .unwrap_or_default();
        signal(u, &pa)?;
        let m = open(fds, "sync_merge", u.sync_merge("m", a, b))?;
        let mut count = SyncFileInfo::default();
        ok("info(num_fences 0)", u.sync_file_info_ioctl(m, &mut count))?;
        // a signaled before the merge, so the merge dropped it (behaviour 36).
        ensure(
            count.num_fences == 1 && count.sync_fence_info.is_empty(),
            || format!("count call: {count:?}"),
        )?;
        let c = pending(u, fds)?.sync;
        let m2 = open(fds, "sync_merge", u.sync_merge("m2", m, c))?;
        let mut roomy = SyncFileInfo {
            num_fences: 8,
            ..SyncFileInfo::default()
        };
        ok("info(num_fences 8)", u.sync_file_info_ioctl(m2, &mut roomy))?;
        ensure(
            roomy.num_fences == 2 && roomy.sync_fence_info.len() == 2,
            || format!("fill call: {roomy:?}"),
        )?;
        let entries_ok = roomy.sync_fence_info.iter().all(|f| {
            f.status == 0 && f.flags == 0 && f.timestamp_ns == 0 && f.driver_name == driver
        });
        ensure(entries_ok && roomy.status == 0, || {
            format!("entries: {roomy:?}")
        })
    })
}

/// 53: `flags` or `pad` not zero, or `num_fences` non-zero but below the fence count, is
/// `EINVAL`.
pub fn sync_file_info_bad_args_einval<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let a = pending(u, fds)?.sync;
        let b = pending(u, fds)?.sync;
        let m = open(fds, "sync_merge", u.sync_merge("m", a, b))?;
        let mut bad = SyncFileInfo {
            flags: 1,
            ..SyncFileInfo::default()
        };
        errno(
            "info(flags 1)",
            Errno::EINVAL,
            u.sync_file_info_ioctl(m, &mut bad),
        )?;
        let mut bad = SyncFileInfo {
            pad: 1,
            ..SyncFileInfo::default()
        };
        errno(
            "info(pad 1)",
            Errno::EINVAL,
            u.sync_file_info_ioctl(m, &mut bad),
        )?;
        let mut short = SyncFileInfo {
            num_fences: 1,
            ..SyncFileInfo::default()
        };
        errno(
            "info(1 slot, 2 fences)",
            Errno::EINVAL,
            u.sync_file_info_ioctl(m, &mut short),
        )?;
        let buf = system_buffer(u, fds, PAGE)?;
        let mut any = SyncFileInfo::default();
        errno(
            "info on a dma-buf",
            Errno::ENOTTY,
            u.sync_file_info_ioctl(buf, &mut any),
        )
    })
}

/// 55: a sync file polls readable (POLLIN, never POLLOUT) exactly when its fence signaled.
pub fn sync_file_poll_in_iff_signaled<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let p = pending(u, fds)?;
        let f = p.sync;
        let got = ok("poll", u.poll(f, POLLIN | POLLOUT, 0))?;
        ensure(got == 0, || format!("poll of a pending fence = {got:#x}"))?;
        signal(u, &p)?;
        let got = ok("poll", u.poll(f, POLLIN | POLLOUT, 0))?;
        ensure(got == POLLIN, || {
            format!("poll of a signaled fence = {got:#x}")
        })
    })
}

/// 57-58: a point at or behind the timeline is signaled at once; closing the timeline signals
/// its pending points with `ENOENT` (status `-ENOENT`).
pub fn sw_sync_close_signals_enoent<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let tl = timeline(u, fds)?;
        ok("inc", u.sw_sync_inc(tl, 3))?;
        let old = fence_at(u, fds, tl, 2)?;
        ensure(status_of(u, old)? == 1, || {
            "a point behind the timeline is pending".into()
        })?;
        let pending = fence_at(u, fds, tl, 10)?;
        close_now(u, fds, tl)?;
        let st = status_of(u, pending)?;
        ensure(st == -Errno::ENOENT.raw(), || {
            format!("status after close {st}, expected -ENOENT")
        })
    })
}
