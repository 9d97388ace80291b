//! The `fences` suite: real unsignalled fences in a dma-buf's reservation object, from the
//! fence source ([`Uapi::fence_attach`]: vgem on Linux), seen through every door user space
//! has — `EXPORT_SYNC_FILE` by usage, `poll` by usage, sync-file info, merge and wait — and
//! debugfs `bufinfo`'s listing of buffers, names, counts and fences, line by line as 6.12
//! prints it.
//!
//! Every case needs the fence source and is skipped without it (with the reason); vgem's rules
//! for attaching (rule 1 of the simulator's `vgem_fence`) are checked too, since both sides
//! promise them.

use super::*;
use crate::{DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, O_RDONLY, POLLIN, POLLOUT};

const R: u32 = DMA_BUF_SYNC_READ as u32;
const W: u32 = DMA_BUF_SYNC_WRITE as u32;

/// Attaches a fence, or skips without a fence source.
fn attach<U: Uapi>(u: &mut U, buf: Fd, write: bool) -> Step<u32> {
    match u.fence_attach(buf, write) {
        Ok(id) => Ok(id),
        Err(Errno::ENOSYS) => skip("no fence source (vgem)"),
        Err(e) => fail(format!("fence_attach(write {write}): Err({e:?})")),
    }
}

/// vgem's attach rule: a write fence conflicts with any unsignalled fence, a read fence with an
/// unsignalled write fence (`EBUSY`); readers share.
pub fn fence_attach_conflicts_ebusy<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let w = attach(u, buf, true)?;
        errno("attach(W) over W", Errno::EBUSY, u.fence_attach(buf, true))?;
        errno("attach(R) over W", Errno::EBUSY, u.fence_attach(buf, false))?;
        ok("signal(W)", u.fence_signal(w))?;
        let r1 = attach(u, buf, false)?;
        let r2 = attach(u, buf, false)?;
        errno("attach(W) over R", Errno::EBUSY, u.fence_attach(buf, true))?;
        ok("signal(R1)", u.fence_signal(r1))?;
        errno(
            "attach(W) over one R",
            Errno::EBUSY,
            u.fence_attach(buf, true),
        )?;
        ok("signal(R2)", u.fence_signal(r2))?;
        let w2 = attach(u, buf, true)?;
        ok("signal(W2)", u.fence_signal(w2))
    })
}

/// Signalling removes the fence from the source: a second signal, or an id never handed out,
/// is `ENOENT`; attaching to an fd that is not a dma-buf is `EINVAL`, to a closed one `EBADF`.
pub fn fence_signal_twice_enoent<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let f = attach(u, buf, true)?;
        ok("signal", u.fence_signal(f))?;
        errno("signal again", Errno::ENOENT, u.fence_signal(f))?;
        errno("signal(0xfffff)", Errno::ENOENT, u.fence_signal(0xfffff))?;
        let heap = system_heap(u, fds)?;
        errno("attach(heap fd)", Errno::EINVAL, u.fence_attach(heap, true))?;
        let closed = closed_fd(u)?;
        errno(
            "attach(closed fd)",
            Errno::EBADF,
            u.fence_attach(closed, true),
        )
    })
}

/// 85: with two pending read fences, EXPORT(WRITE) snapshots both (one file, two fences,
/// pending) and EXPORT(READ), which waits for writers only, is the signaled stub.
pub fn export_two_read_fences_by_usage<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let r1 = attach(u, buf, false)?;
        let r2 = attach(u, buf, false)?;
        let sw = open(fds, "export(W)", u.export_sync_file(buf, W))?;
        let sr = open(fds, "export(R)", u.export_sync_file(buf, R))?;
        let iw = ok("info(W)", u.sync_file_info(sw))?;
        ensure(iw.num_fences == 2 && iw.status == 0, || {
            format!("export(W): {iw:?}")
        })?;
        let ir = ok("info(R)", u.sync_file_info(sr))?;
        ensure(ir.num_fences == 1 && ir.status == 1, || {
            format!("export(R): {ir:?}")
        })?;
        ok("signal r1", u.fence_signal(r1))?;
        ensure(status_of(u, sw)? == 0, || {
            "one of two signalled, export(W) done".into()
        })?;
        ok("signal r2", u.fence_signal(r2))?;
        let iw = ok("info(W)", u.sync_file_info(sw))?;
        ensure(
            iw.status == 1
                && iw
                    .sync_fence_info
                    .iter()
                    .all(|f| f.status == 1 && f.timestamp_ns > 0),
            || format!("after both signalled: {iw:?}"),
        )
    })
}

/// 83: poll by usage on the buffer that holds the fences: a read fence blocks POLLOUT only, a
/// write fence both; the events come back when they signal.
pub fn poll_by_usage_with_attached_fences<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let r = attach(u, buf, false)?;
        let got = ok("poll", u.poll(buf, POLLIN | POLLOUT, 0))?;
        ensure(got == POLLIN, || {
            format!("poll with a read fence = {got:#x}")
        })?;
        ok("signal", u.fence_signal(r))?;
        let w = attach(u, buf, true)?;
        let got = ok("poll", u.poll(buf, POLLIN | POLLOUT, 0))?;
        ensure(got == 0, || format!("poll with a write fence = {got:#x}"))?;
        ok("signal", u.fence_signal(w))?;
        let got = ok("poll", u.poll(buf, POLLIN | POLLOUT, 0))?;
        ensure(got == POLLIN | POLLOUT, || format!("poll after = {got:#x}"))
    })
}

/// 56: a single fence's sync file is named `<driver>-<timeline><context>-<seqno>` (so the
/// idle stub is `stub-stub0-0`); its one entry carries the same driver and timeline names.
pub fn sync_file_name_from_its_fence<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let idle = open(fds, "export(R) idle", u.export_sync_file(buf, R))?;
        let i = ok("info(idle)", u.sync_file_info(idle))?;
        ensure(i.name == "stub-stub0-0", || {
            format!("idle export named {:?}", i.name)
        })?;
        let _f = attach(u, buf, true)?;
        let s = open(fds, "export(R)", u.export_sync_file(buf, R))?;
        let i = ok("info", u.sync_file_info(s))?;
        let e = i.sync_fence_info.first().cloned().unwrap_or_default();
        let prefix = format!("{}-{}", e.driver_name, e.obj_name);
        let rest = i.name.strip_prefix(&prefix).unwrap_or("");
        let (context, seqno) = rest.rsplit_once('-').unwrap_or(("", ""));
        ensure(
            !e.driver_name.is_empty() && context.parse::<u64>().is_ok() && seqno == "1",
            || format!("name {:?} for fence {e:?}", i.name),
        )
    })
}

/// 52: merging a sync file with itself gives one fence; merging two fences of one buffer's
/// export with another keeps each once.
pub fn sync_merge_same_fence_keeps_one<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let p = pending(u, fds)?;
        let m = open(fds, "merge(a, a)", u.sync_merge("self", p.sync, p.sync))?;
        let i = ok("info", u.sync_file_info(m))?;
        ensure(i.num_fences == 1 && i.status == 0, || {
            format!("merge(a, a): {i:?}")
        })?;
        let q = pending(u, fds)?;
        let m2 = open(fds, "merge(m, q)", u.sync_merge("two", m, q.sync))?;
        let m3 = open(fds, "merge(m2, a)", u.sync_merge("again", m2, p.sync))?;
        let i = ok("info", u.sync_file_info(m3))?;
        ensure(i.num_fences == 2, || {
            format!("merge(merge(a, q), a): {i:?}")
        })?;
        signal(u, &p)?;
        signal(u, &q)?;
        ensure(status_of(u, m3)? == 1, || "merge did not signal".into())
    })
}

/// 55: `poll` with a timeout on a pending sync file returns 0 when it runs out, and POLLIN
/// once the fence has signalled.
pub fn sync_file_poll_timeout_then_ready<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let p = pending(u, fds)?;
        let got = ok("poll(IN, 10 ms)", u.poll(p.sync, POLLIN, 10))?;
        ensure(got == 0, || format!("poll of a pending fence = {got:#x}"))?;
        signal(u, &p)?;
        let got = ok("poll(IN, 10 ms)", u.poll(p.sync, POLLIN, 10))?;
        ensure(got == POLLIN, || format!("poll after signal = {got:#x}"))
    })
}

/// 86: IMPORT of a pending sync file with WRITE makes the buffer's EXPORT(READ) pending, and
/// its poll report neither event; with READ only EXPORT(WRITE).
pub fn import_pending_fence_by_usage<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let p = pending(u, fds)?;
        let a = system_buffer(u, fds, PAGE)?;
        let b = system_buffer(u, fds, PAGE)?;
        ok("import(a, W)", u.import_sync_file(a, W, p.sync))?;
        ok("import(b, R)", u.import_sync_file(b, R, p.sync))?;
        let statuses = [(a, R, 0), (a, W, 0), (b, R, 1), (b, W, 0)];
        for (buf, flags, want) in statuses {
            let s = open(fds, "export", u.export_sync_file(buf, flags))?;
            let got = status_of(u, s)?;
            ensure(got == want, || {
                format!("export({flags}) status {got}, expected {want}")
            })?;
        }
        signal(u, &p)?;
        let got = ok("poll(a)", u.poll(a, POLLIN | POLLOUT, 0))?;
        ensure(got == POLLIN | POLLOUT, || {
            format!("poll after signal = {got:#x}")
        })
    })
}

// --- debugfs bufinfo ----------------------------------------------------------------------

/// The listing, or a skip without debugfs.
fn listing<U: Uapi>(u: &mut U) -> Step<String> {
    match u.bufinfo() {
        Ok(t) => Ok(t),
        Err(e) => skip(format!("no debugfs bufinfo ({e:?})")),
    }
}

/// The lines of one buffer's entry (its first line starts with the size and holds `\t<ino>\t`
/// at the ino column), up to the blank line that ends it.
fn entry(text: &str, ino: u64) -> Option<Vec<String>> {
    let col = format!("{ino:08}");
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.split('\t').nth(5) == Some(col.as_str()))?;
    Some(
        lines[start..]
            .iter()
            .take_while(|l| !l.is_empty())
            .map(|l| l.to_string())
            .collect(),
    )
}

fn ino_of<U: Uapi>(u: &mut U, fd: Fd) -> Step<u64> {
    Ok(ok("fstat", u.fstat(fd))?.ino)
}

/// bufinfo's frame: a blank line, `Dma-buf Objects:`, the column header, entries, and the
/// closing `Total N objects, M bytes` that counts exactly the entries listed.
pub fn bufinfo_header_and_totals<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let _a = system_buffer(u, fds, 3 * PAGE)?;
        let text = listing(u)?;
        let lines: Vec<&str> = text.lines().collect();
        ensure(
            lines.len() > 3
                && lines[0].is_empty()
                && lines[1] == "Dma-buf Objects:"
                && lines[2] == "size    \tflags   \tmode    \tcount   \texp_name\tino     \tname",
            || format!("frame: {:?}", &lines[..lines.len().min(3)]),
        )?;
        let entries: Vec<u64> = lines
            .iter()
            .filter(|l| l.len() > 8 && l.as_bytes()[8] == b'\t' && l.split('\t').count() == 7)
            .filter_map(|l| l.split('\t').next()?.parse().ok())
            .collect();
        let want = format!(
            "Total {} objects, {} bytes",
            entries.len(),
            entries.iter().sum::<u64>()
        );
        ensure(lines.last() == Some(&want.as_str()), || {
            format!("last line {:?}, expected {want:?}", lines.last())
        })?;
        ensure(lines[lines.len() - 2].is_empty(), || {
            "no blank line before the total".into()
        })
    })
}

/// One entry: `size\tflags\tmode\tcount\texp_name\tino\tname` (zero-padded decimal size,
/// count and ino; hex flags and mode), `<none>` until named, then the devices block.
pub fn bufinfo_entry_columns<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let a = system_buffer(u, fds, 3 * PAGE)?;
        let heap = system_heap(u, fds)?;
        let ro = open(
            fds,
            "heap_alloc(O_RDONLY)",
            u.heap_alloc(heap, PAGE, O_RDONLY, 0),
        )?;
        let (ia, iro) = (ino_of(u, a)?, ino_of(u, ro)?);
        let text = listing(u)?;
        let ea = entry(&text, ia).unwrap_or_default();
        let want = format!(
            "{:08}\t00000002\t00080007\t00000001\tsystem\t{ia:08}\t<none>",
            3 * PAGE
        );
        ensure(
            ea.len() == 3
                && ea[0] == want
                && ea[1] == "\tAttached Devices:"
                && ea[2] == "Total 0 devices attached",
            || format!("entry {ea:?}, expected first line {want:?}"),
        )?;
        let ero = entry(&text, iro).unwrap_or_default();
        let want = format!("{PAGE:08}\t00000000\t00080005\t00000001\tsystem\t{iro:08}\t<none>");
        ensure(ero.first() == Some(&want), || {
            format!("read-only entry {ero:?}")
        })
    })
}

/// Entries are listed newest first; the name column follows `SET_NAME` (even the empty name).
pub fn bufinfo_newest_first_and_names<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let a = system_buffer(u, fds, PAGE)?;
        let b = system_buffer(u, fds, PAGE)?;
        let c = system_buffer(u, fds, PAGE)?;
        ok("set_name(a, cam0)", u.dma_buf_set_name(a, b"cam0"))?;
        ok("set_name(b, \"\")", u.dma_buf_set_name(b, b""))?;
        let (ia, ib, ic) = (ino_of(u, a)?, ino_of(u, b)?, ino_of(u, c)?);
        let text = listing(u)?;
        let pos = |ino: u64| {
            let col = format!("{ino:08}");
            text.lines()
                .position(|l| l.split('\t').nth(5) == Some(col.as_str()))
        };
        ensure(
            matches!((pos(ic), pos(ib), pos(ia)), (Some(x), Some(y), Some(z)) if x < y && y < z),
            || format!("order of c, b, a: {:?}", (pos(ic), pos(ib), pos(ia))),
        )?;
        let name = |ino| entry(&text, ino).and_then(|e| e[0].split('\t').nth(6).map(String::from));
        ensure(
            name(ia).as_deref() == Some("cam0")
                && name(ib).as_deref() == Some("")
                && name(ic).as_deref() == Some("<none>"),
            || format!("names {:?}", (name(ia), name(ib), name(ic))),
        )
    })
}

/// The count column is the file's count: one per fd (a dup adds one) and one per mapping.
pub fn bufinfo_count_is_the_file_count<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let a = system_buffer(u, fds, PAGE)?;
        let ia = ino_of(u, a)?;
        let count = |text: &str| {
            entry(text, ia)
                .and_then(|e| e[0].split('\t').nth(3).and_then(|c| c.parse::<u64>().ok()))
        };
        let one = count(&listing(u)?);
        let _dup = open(fds, "dup", u.dup(a))?;
        let two = count(&listing(u)?);
        let map = map_rw(u, a, 0, PAGE)?;
        let three = count(&listing(u)?);
        drop(map);
        ensure(one == Some(1) && two == Some(2) && three == Some(3), || {
            format!("counts {one:?}, {two:?}, {three:?}: expected 1, 2 (dup), 3 (mmap)")
        })
    })
}

/// Fences are listed under their buffer, `\t<usage> fence:<driver> <timeline> seq <n>
/// unsignalled`, and stay listed (`signalled`) after they signal.
pub fn bufinfo_lists_fences_by_usage<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let a = system_buffer(u, fds, PAGE)?;
        let r = attach(u, a, false)?;
        let ia = ino_of(u, a)?;
        let s = open(fds, "export(W)", u.export_sync_file(a, W))?;
        let f = ok("info", u.sync_file_info(s))?
            .sync_fence_info
            .first()
            .cloned()
            .unwrap_or_default();
        let line = |state: &str| {
            format!(
                "\tread fence:{} {} seq 1 {state}",
                f.driver_name, f.obj_name
            )
        };
        let e = entry(&listing(u)?, ia).unwrap_or_default();
        ensure(e.get(1) == Some(&line("unsignalled")), || {
            format!("entry {e:?}, expected {:?} second", line("unsignalled"))
        })?;
        ok("signal", u.fence_signal(r))?;
        let e = entry(&listing(u)?, ia).unwrap_or_default();
        ensure(
            e.get(1) == Some(&line("signalled"))
                && e.get(2).map(String::as_str) == Some("\tAttached Devices:"),
            || format!("entry after signal {e:?}"),
        )
    })
}

/// Every case of the suite, in a stable order.
pub fn cases<U: Uapi>() -> Vec<Case<U>> {
    macro_rules! list {
        ($($name:ident => $covers:expr,)*) => {
            vec![$(Case { name: stringify!($name), covers: $covers, run: $name::<U> },)*]
        };
    }
    list! {
        fence_attach_conflicts_ebusy => "vgem_fence_attach_ioctl",
        fence_signal_twice_enoent => "vgem_fence_signal_ioctl",
        export_two_read_fences_by_usage => "85",
        poll_by_usage_with_attached_fences => "83",
        sync_file_name_from_its_fence => "56",
        sync_merge_same_fence_keeps_one => "52, 36",
        sync_file_poll_timeout_then_ready => "55",
        import_pending_fence_by_usage => "86",
        bufinfo_header_and_totals => "dma_buf_debug_show",
        bufinfo_entry_columns => "dma_buf_debug_show",
        bufinfo_newest_first_and_names => "dma_buf_debug_show, 84",
        bufinfo_count_is_the_file_count => "dma_buf_debug_show",
        bufinfo_lists_fences_by_usage => "dma_resv_describe",
    }
}
