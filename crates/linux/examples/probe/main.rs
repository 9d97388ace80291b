//! What the running kernel answers: every plain system call on every kind of fd the dma-buf
//! suites use, fdinfo and debugfs `bufinfo` text as it is, inode numbers, vgem's PRIME and fence
//! ioctls, vivid's device nodes, and what a heap allocation far beyond RAM does to a process.
//!
//! This is the tool the simulator's answers were matched against: each line is
//! `probe: <what>: <answer>`. `scripts/kernel-conformance --probe` boots it in place of the
//! conformance runner; on a machine with dma-heaps it runs as it is (`cargo run -p linux
//! --example probe`). It prints instead of asserting: the assertions are the conformance
//! suites'.
//!
//! `unsafe` here only adopts fd numbers the kernel wrote into ioctl arguments (each block says
//! so), as `linux::sys` does for the typed calls.

mod vgem;
mod vivid;

use linux::drm;
use linux::raw::ioctl_bytes;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use uapi::ioctl::*;
use uapi::Errno;

fn say(what: &str, answer: impl std::fmt::Display) {
    println!("probe: {what}: {answer}");
}

fn res<T: std::fmt::Debug>(r: Result<T, Errno>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({e:?})"),
    }
}

fn er(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error()).unwrap_or(Errno::EIO)
}

/// Takes ownership of a fd number the kernel just installed for this process.
fn adopt(raw: i32) -> OwnedFd {
    assert!(raw >= 0, "the kernel reported fd {raw}");
    // SAFETY: `raw` was returned by the kernel a moment ago as a new fd of this process (an
    // ioctl's out field or return value) and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

fn ioc(fd: BorrowedFd<'_>, request: u32, bytes: &mut [u8]) -> Result<i32, Errno> {
    ioctl_bytes(fd, request, Some(bytes))
}

fn heap_alloc(heap: BorrowedFd<'_>, len: u64) -> Result<OwnedFd, Errno> {
    let mut arg = [0u8; 24];
    arg[..8].copy_from_slice(&len.to_ne_bytes());
    arg[12..16].copy_from_slice(&(O_RDWR | O_CLOEXEC).to_ne_bytes());
    ioc(heap, DMA_HEAP_IOCTL_ALLOC, &mut arg)?;
    Ok(adopt(i32::from_ne_bytes(arg[8..12].try_into().unwrap())))
}

fn export_sync(buf: BorrowedFd<'_>, flags: u32) -> Result<OwnedFd, Errno> {
    let mut arg = [0u8; 8];
    arg[..4].copy_from_slice(&flags.to_ne_bytes());
    ioc(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &mut arg)?;
    Ok(adopt(i32::from_ne_bytes(arg[4..8].try_into().unwrap())))
}

/// `DMA_BUF_SET_NAME_B`: the argument *is* the string (the ioctl's pointer points at it).
fn set_name(buf: BorrowedFd<'_>, name: &str) -> Result<i32, Errno> {
    let mut c = name.as_bytes().to_vec();
    c.push(0);
    ioc(buf, DMA_BUF_SET_NAME_B, &mut c)
}

/// `SYNC_IOC_FILE_INFO` with room for 4 fences: (name, status, [(obj, driver, status, flags, ts)]).
fn sync_info(fd: BorrowedFd<'_>) -> String {
    let mut fences = vec![0u8; 4 * SYNC_FENCE_INFO_SIZE];
    let mut arg = [0u8; SYNC_FILE_INFO_SIZE];
    arg[40..44].copy_from_slice(&4u32.to_ne_bytes());
    arg[48..56].copy_from_slice(&(fences.as_mut_ptr() as u64).to_ne_bytes());
    if let Err(e) = ioc(fd, SYNC_IOC_FILE_INFO, &mut arg) {
        return format!("Err({e:?})");
    }
    let text = |b: &[u8]| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    let u32_at = |b: &[u8], o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
    let n = u32_at(&arg, 40) as usize;
    let mut out = format!(
        "name {:?} status {} flags {} num_fences {n}",
        text(&arg[..32]),
        u32_at(&arg, 32) as i32,
        u32_at(&arg, 36)
    );
    for f in fences.chunks(SYNC_FENCE_INFO_SIZE).take(n.min(4)) {
        out += &format!(
            " [obj {:?} driver {:?} status {} flags {} ts>0 {}]",
            text(&f[..32]),
            text(&f[32..64]),
            u32_at(f, 64) as i32,
            u32_at(f, 68),
            u64::from_ne_bytes(f[72..80].try_into().unwrap()) > 0
        );
    }
    out
}

/// Every plain call on one fd.
fn plain_calls(kind: &str, fd: BorrowedFd<'_>) {
    let raw = fd.as_raw_fd();
    match rustix::fs::fstat(fd) {
        Ok(st) => say(
            &format!("{kind} fstat"),
            format!(
                "mode {:o} size {} blksize {} blocks {} nlink {} uid {} gid {} rdev {:#x} dev {:#x} ino {}",
                st.st_mode, st.st_size, st.st_blksize, st.st_blocks, st.st_nlink, st.st_uid,
                st.st_gid, st.st_rdev, st.st_dev, st.st_ino
            ),
        ),
        Err(e) => say(&format!("{kind} fstat"), format!("Err({:?})", er(e))),
    }
    say(
        &format!("{kind} readlink /proc/self/fd/N"),
        res(
            rustix::fs::readlink(format!("/proc/self/fd/{raw}"), Vec::new())
                .map(|s| s.to_string_lossy().into_owned())
                .map_err(er),
        ),
    );
    say(
        &format!("{kind} F_GETFL"),
        res(rustix::fs::fcntl_getfl(fd)
            .map(|f| format!("{:#o}", f.bits()))
            .map_err(er)),
    );
    say(
        &format!("{kind} F_GETFD"),
        res(rustix::io::fcntl_getfd(fd).map(|f| f.bits()).map_err(er)),
    );
    let mut buf = [0u8; 16];
    if kind == "drm-card" {
        // drm_read() sleeps until an event arrives: none will.
        return;
    }
    say(
        &format!("{kind} read(16)"),
        res(rustix::io::read(fd, &mut buf).map_err(er)),
    );
    say(
        &format!("{kind} write(16)"),
        res(rustix::io::write(fd, &[7u8; 16]).map_err(er)),
    );
    say(
        &format!("{kind} pread(16, 0)"),
        res(rustix::io::pread(fd, &mut buf, 0).map_err(er)),
    );
    say(
        &format!("{kind} pwrite(16, 0)"),
        res(rustix::io::pwrite(fd, &[7u8; 16], 0).map_err(er)),
    );
    say(
        &format!("{kind} write(0)"),
        res(rustix::io::write(fd, &[]).map_err(er)),
    );
    say(
        &format!("{kind} read(0)"),
        res(rustix::io::read(fd, &mut [0u8; 0]).map_err(er)),
    );
    say(
        &format!("{kind} lseek(0, SEEK_CUR)"),
        res(rustix::fs::seek(fd, rustix::fs::SeekFrom::Current(0)).map_err(er)),
    );
    say(
        &format!("{kind} fdinfo"),
        format!(
            "{:?}",
            std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}")).unwrap_or_default()
        ),
    );
    // Requests with odd numbers, sizes and directions, and null arguments.
    let odd: &[(&str, u32)] = &[
        ("_IOW('b',0,8) SYNC", DMA_BUF_IOCTL_SYNC),
        ("_IOW('b',0,4)", iow(b'b', 0, 4)),
        ("_IOWR('b',0,8)", iowr(b'b', 0, 8)),
        ("_IOR('b',0,8)", uapi::ioctl::ioc(IOC_READ, b'b', 0, 8)),
        ("_IO('b',0)", uapi::ioctl::ioc(IOC_NONE, b'b', 0, 0)),
        ("_IOW('b',1,4) SET_NAME_A", DMA_BUF_SET_NAME_A),
        ("_IOW('b',4,8)", iow(b'b', 4, 8)),
        ("_IOW('x',0,8)", iow(b'x', 0, 8)),
        ("_IOWR('H',0,24) ALLOC", DMA_HEAP_IOCTL_ALLOC),
        ("_IOWR('H',1,24)", iowr(b'H', 1, 24)),
        ("_IOWR('H',0,8)", iowr(b'H', 0, 8)),
        ("_IOWR('>',3,48) MERGE", SYNC_IOC_MERGE),
        ("_IOWR('>',4,56) FILE_INFO", SYNC_IOC_FILE_INFO),
        ("_IOW('>',5,16) SET_DEADLINE", SYNC_IOC_SET_DEADLINE),
        ("_IOWR('>',9,8)", iowr(b'>', 9, 8)),
        ("_IOW('u',0x42,24) UDMABUF_CREATE", UDMABUF_CREATE),
        ("0", 0),
        ("0xffffffff", 0xffff_ffff),
        ("FIONREAD", 0x541b),
        ("FIGETBSZ", 2),
        ("FS_IOC_GETFLAGS", 0x8008_6601),
        ("TCGETS", 0x5401),
    ];
    for &(name, req) in odd {
        // An all-zero argument except for a sync flag that would be valid for SYNC.
        let mut arg = [0u8; 64];
        arg[0] = 1;
        let zero = match req {
            // ALLOC with len 1 would allocate and install an fd nobody reports: len 0 instead.
            r if r == DMA_HEAP_IOCTL_ALLOC || r == iowr(b'H', 0, 8) => {
                arg[0] = 0;
                ioc(fd, req, &mut arg)
            }
            r if r == SYNC_IOC_MERGE || r == DMA_BUF_SET_NAME_A || r == UDMABUF_CREATE => {
                arg[0] = 0;
                ioc(fd, req, &mut arg)
            }
            _ => ioc(fd, req, &mut arg),
        };
        let null = ioctl_bytes(fd, req, None);
        say(
            &format!("{kind} ioctl {name} ({req:#010x})"),
            format!("arg {} null {}", res(zero), res(null)),
        );
    }
    for (name, req) in [
        ("FIOCLEX", 0x5451u32),
        ("FIONCLEX", 0x5450),
        ("FIOASYNC", 0x5452),
        ("FIONBIO", 0x5421),
    ] {
        let mut on = 1i32.to_ne_bytes();
        let r = ioc(fd, req, &mut on);
        let after = (
            rustix::fs::fcntl_getfl(fd).map(|f| f.bits()).unwrap_or(0),
            rustix::io::fcntl_getfd(fd).map(|f| f.bits()).unwrap_or(0),
        );
        let mut off = 0i32.to_ne_bytes();
        if req == 0x5452 || req == 0x5421 {
            let _ = ioc(fd, req, &mut off);
        }
        say(
            &format!("{kind} ioctl {name}(1)"),
            format!("{} then F_GETFL {:#o} F_GETFD {}", res(r), after.0, after.1),
        );
    }
    let _ = rustix::io::ioctl_fioclex(fd);
    let mut fds = [rustix::event::PollFd::from_borrowed_fd(
        fd,
        rustix::event::PollFlags::from_bits_retain(0xffff),
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let _ = rustix::event::poll(&mut fds, Some(&zero));
    say(
        &format!("{kind} poll(all)"),
        format!("{:#x}", fds[0].revents().bits()),
    );
}

fn bufinfo(what: &str) {
    match std::fs::read_to_string("/sys/kernel/debug/dma_buf/bufinfo") {
        Ok(t) => {
            say(&format!("bufinfo {what}"), "begin");
            for line in t.lines() {
                println!("probe: bufinfo| {line:?}");
            }
            say(&format!("bufinfo {what}"), "end");
        }
        Err(e) => say(&format!("bufinfo {what}"), format!("Err({e})")),
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("oom-child") {
        oom_child();
        return;
    }
    let uname = rustix::system::uname();
    say("kernel", uname.release().to_string_lossy());
    let heap = rustix::fs::open(
        "/dev/dma_heap/system",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open the system heap");
    plain_calls("heap", heap.as_fd());

    let a = heap_alloc(heap.as_fd(), 8192).expect("alloc");
    let b = heap_alloc(heap.as_fd(), 4096).expect("alloc");
    let c = heap_alloc(heap.as_fd(), 12288).expect("alloc");
    for (n, fd) in [("a", &a), ("b", &b), ("c", &c)] {
        let st = rustix::fs::fstat(fd).unwrap();
        say(&format!("dma-buf {n} ino"), st.st_ino);
    }
    say("set_name(b)", res(set_name(b.as_fd(), "probe-b")));
    plain_calls("dma-buf", a.as_fd());
    let dup = rustix::io::dup(&a).unwrap();
    say(
        "dma-buf fdinfo after dup",
        format!(
            "{:?}",
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", a.as_raw_fd()))
                .unwrap_or_default()
        ),
    );
    drop(dup);

    let s = export_sync(a.as_fd(), DMA_BUF_SYNC_READ as u32).expect("export");
    plain_calls("sync_file", s.as_fd());
    say("sync_file idle info", sync_info(s.as_fd()));
    say("sync_file ino", rustix::fs::fstat(&s).unwrap().st_ino);

    let memfd = rustix::fs::memfd_create(
        "probe",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .unwrap();
    rustix::fs::ftruncate(&memfd, 16384).unwrap();
    rustix::fs::fcntl_add_seals(&memfd, rustix::fs::SealFlags::SHRINK).unwrap();
    plain_calls("memfd", memfd.as_fd());
    let dev = rustix::fs::open(
        "/dev/udmabuf",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("udmabuf");
    plain_calls("udmabuf-dev", dev.as_fd());
    let mut arg = [0u8; 24];
    arg[..4].copy_from_slice(&(memfd.as_raw_fd() as u32).to_ne_bytes());
    arg[16..24].copy_from_slice(&8192u64.to_ne_bytes());
    let u = adopt(ioc(dev.as_fd(), UDMABUF_CREATE, &mut arg).expect("udmabuf create"));
    plain_calls("udmabuf", u.as_fd());
    say("udmabuf ino", rustix::fs::fstat(&u).unwrap().st_ino);
    let d = heap_alloc(heap.as_fd(), 4096).expect("alloc");
    say(
        "dma-buf d ino (after sync_file and udmabuf)",
        rustix::fs::fstat(&d).unwrap().st_ino,
    );
    bufinfo("with a, b (named), c, d, udmabuf");

    vgem::vgem(&heap, &a);
    vivid::vivid();
    oom_parent();
}

fn oom_parent() {
    let _ = std::fs::write("/proc/self/oom_score_adj", "-1000");
    let me = std::env::current_exe().unwrap();
    match std::process::Command::new(me).arg("oom-child").status() {
        Ok(st) => {
            use std::os::unix::process::ExitStatusExt;
            say(
                "heap_alloc(4 GiB) in a child",
                format!("code {:?} signal {:?}", st.code(), st.signal()),
            );
        }
        Err(e) => say("spawn oom child", e),
    }
    bufinfo("after the child died");
}

fn oom_child() {
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    let heap = rustix::fs::open(
        "/dev/dma_heap/system",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let r = heap_alloc(heap.as_fd(), 4 << 30);
    say("child: heap_alloc(4 GiB)", res(r.map(|fd| fd.as_raw_fd())));
}
