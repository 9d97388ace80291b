//! The `syscalls` suite's single cases: checks that are not one row of the per-kind table in
//! the parent module — inode numbering across exporters and sync files, raw ioctls whose
//! arguments the table cannot express (an allocation through a raw request, a name without a
//! NUL, merge and deadline), an empty name in fdinfo, and the OOM kill of an allocation far
//! beyond RAM. Each case makes and closes its own fds (`scoped`).

use super::*;

pub(super) fn extra_cases<U: Uapi>() -> Vec<Case<U>> {
    vec![
        Case {
            name: "dma_buf_inodes_count_up_across_exporters",
            covers: "syscalls: dma_buf_getfile",
            run: dma_buf_inodes_count_up_across_exporters::<U>,
        },
        Case {
            name: "sync_files_share_one_inode",
            covers: "syscalls: anon_inode_getfile",
            run: sync_files_share_one_inode::<U>,
        },
        Case {
            name: "raw_heap_alloc_installs_the_fd_it_reports",
            covers: "syscalls, 89-90",
            run: raw_heap_alloc_installs_the_fd_it_reports::<U>,
        },
        Case {
            name: "raw_set_name_needs_a_nul_within_32_bytes",
            covers: "syscalls, 84",
            run: raw_set_name_needs_a_nul_within_32_bytes::<U>,
        },
        Case {
            name: "raw_sync_merge_and_deadline",
            covers: "syscalls, 52, 59",
            run: raw_sync_merge_and_deadline::<U>,
        },
        Case {
            name: "heap_alloc_beyond_ram_is_an_oom_kill",
            covers: "syscalls: system heap, OOM killer",
            run: heap_alloc_beyond_ram_is_an_oom_kill::<U>,
        },
        Case {
            name: "fdinfo_shows_an_empty_name_once_set",
            covers: "syscalls, 84, 87",
            run: fdinfo_shows_an_empty_name_once_set::<U>,
        },
    ]
}

/// Every dma-buf takes the next number of one counter, whoever exports it: two heap buffers
/// and a udmabuf made one after another have consecutive inode numbers.
pub fn dma_buf_inodes_count_up_across_exporters<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let a = make(u, fds, Make::HeapBuffer)?;
        let b = make(u, fds, Make::HeapBuffer)?;
        let c = make(u, fds, Make::Udmabuf)?;
        let ino: Vec<u64> = [a, b, c]
            .iter()
            .map(|&fd| ok("fstat", u.fstat(fd)).map(|s| s.ino))
            .collect::<Step<_>>()?;
        ensure(ino[1] == ino[0] + 1 && ino[2] == ino[1] + 1, || {
            format!("inode numbers {ino:?} are not consecutive")
        })
    })
}

/// Sync files are anonymous-inode files: all of them have the same inode number, while two
/// dma-bufs never do.
pub fn sync_files_share_one_inode<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let a = make(u, fds, Make::SyncFile)?;
        let b = make(u, fds, Make::SyncFile)?;
        let buf = make(u, fds, Make::HeapBuffer)?;
        let (ia, ib, ibuf) = (
            ok("fstat", u.fstat(a))?.ino,
            ok("fstat", u.fstat(b))?.ino,
            ok("fstat", u.fstat(buf))?.ino,
        );
        let other = make(u, fds, Make::HeapBuffer)?;
        let iother = ok("fstat", u.fstat(other))?.ino;
        ensure(ia == ib && ibuf != iother, || {
            format!("sync file inodes {ia}, {ib}; dma-buf inodes {ibuf}, {iother}")
        })
    })
}

/// `DMA_HEAP_IOCTL_ALLOC` through the raw call: the struct comes back with the new fd, which
/// is a dma-buf of the rounded-up size the caller then owns.
pub fn raw_heap_alloc_installs_the_fd_it_reports<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let heap = make(u, fds, Make::Heap)?;
        let mut arg = [0u8; 24];
        arg[..8].copy_from_slice(&5000u64.to_ne_bytes());
        arg[12..16].copy_from_slice(&(O_RDWR | crate::O_CLOEXEC).to_ne_bytes());
        ok(
            "ioctl(ALLOC)",
            u.ioctl(heap, DMA_HEAP_IOCTL_ALLOC, Some(&mut arg)),
        )?;
        let fd = i32::from_ne_bytes(arg[8..12].try_into().expect("4 bytes"));
        fds.push(fd);
        let size = size_of(u, fd)?;
        ensure(size == 2 * PAGE, || {
            format!("raw ALLOC(5000) gave {size} bytes")
        })
    })
}

/// `DMA_BUF_SET_NAME`'s argument is the string: 31 characters and the NUL are taken, 32
/// without a NUL are `EINVAL`, and the name shows in the fd's link.
pub fn raw_set_name_needs_a_nul_within_32_bytes<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = make(u, fds, Make::HeapBuffer)?;
        let mut long = [b'x'; 40];
        errno(
            "SET_NAME_B(40 x)",
            Errno::EINVAL,
            u.ioctl(buf, DMA_BUF_SET_NAME_B, Some(&mut long)),
        )?;
        let mut ok31 = [b'y'; 32];
        ok31[31] = 0;
        ok(
            "SET_NAME_A(31 y)",
            u.ioctl(buf, DMA_BUF_SET_NAME_A, Some(&mut ok31)),
        )?;
        let path = ok("readlink", u.fd_path(buf))?;
        ensure(path == format!("/dmabuf:{}", "y".repeat(31)), || {
            format!("link {path:?}")
        })
    })
}

/// `SYNC_IOC_MERGE` and `SYNC_IOC_SET_DEADLINE` through the raw call: the merged fd comes
/// back in `fence`; a deadline with `pad` set is `EINVAL`, without it 0.
pub fn raw_sync_merge_and_deadline<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let a = make(u, fds, Make::SyncFile)?;
        let mut m = [0u8; 48];
        m[..3].copy_from_slice(b"raw");
        m[32..36].copy_from_slice(&a.to_ne_bytes());
        ok("ioctl(MERGE)", u.ioctl(a, SYNC_IOC_MERGE, Some(&mut m)))?;
        let merged = i32::from_ne_bytes(m[36..40].try_into().expect("4 bytes"));
        fds.push(merged);
        let info = ok("sync_file_info(merged)", u.sync_file_info(merged))?;
        ensure(info.name == "raw" && info.status == 1, || {
            format!("merged {info:?}")
        })?;
        let mut d = [0u8; 16];
        d[8] = 1;
        errno(
            "SET_DEADLINE(pad 1)",
            Errno::EINVAL,
            u.ioctl(a, SYNC_IOC_SET_DEADLINE, Some(&mut d)),
        )?;
        d[8] = 0;
        ok(
            "SET_DEADLINE",
            u.ioctl(a, SYNC_IOC_SET_DEADLINE, Some(&mut d)),
        )
        .map(drop)
    })
}

/// Setting the empty name is setting a name: fdinfo then has a `name:` line with nothing after
/// the tab (before, it has none).
pub fn fdinfo_shows_an_empty_name_once_set<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = make(u, fds, Make::HeapBuffer)?;
        let before = ok("fdinfo", u.fdinfo(buf))?;
        ensure(crate::fdinfo_field(&before, "name").is_none(), || {
            format!("a name line before any SET_NAME: {before:?}")
        })?;
        ok("set_name(\"\")", u.dma_buf_set_name(buf, b""))?;
        let after = ok("fdinfo", u.fdinfo(buf))?;
        ensure(after.lines().any(|l| l == "name:\t"), || {
            format!("no empty name line: {after:?}")
        })
    })
}

/// A system-heap allocation far beyond RAM (1 TiB) is not `ENOMEM` on 6.12: the OOM killer
/// kills the allocating process (`SIGKILL`), and everything it allocated goes back (debugfs
/// lists as many buffers after as before).
pub fn heap_alloc_beyond_ram_is_an_oom_kill<U: Uapi>(u: &mut U) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let _heap = system_heap(u, fds)?;
        let count = |u: &mut U| {
            u.bufinfo()
                .ok()
                .and_then(|t| t.lines().last().map(String::from))
        };
        let before = count(u);
        let end = match u.child_heap_alloc("system", 1 << 40) {
            Ok(end) => end,
            Err(Errno::ENOSYS) => return skip("no child processes here"),
            Err(e) => return fail(format!("child_heap_alloc: Err({e:?})")),
        };
        ensure(end == crate::ChildExit::Killed(crate::SIGKILL), || {
            format!("the child ended {end:?}, expected killed by SIGKILL")
        })?;
        let after = count(u);
        ensure(before == after, || {
            format!("bufinfo totals {before:?} then {after:?}")
        })
    })
}
