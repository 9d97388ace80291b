//! The probe's vgem part: a dumb buffer and its PRIME export, PRIME import of a heap dma-buf,
//! vgem's fence ioctls and what a buffer's reservation shows through them (poll, sync files
//! exported while a fence is pending and after it signals, their merge, a fence left pending
//! when the card is closed).

use crate::*;

pub(crate) fn vgem(heap: &OwnedFd, a: &OwnedFd) {
    let card = match rustix::fs::open(
        "/dev/dri/card0",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(c) => c,
        Err(e) => return say("open /dev/dri/card0", format!("Err({:?})", er(e))),
    };
    let mut version = [0u8; 64];
    let mut name = [0u8; 32];
    version[16..24].copy_from_slice(&32u64.to_ne_bytes());
    version[24..32].copy_from_slice(&(name.as_mut_ptr() as u64).to_ne_bytes());
    let r = ioc(card.as_fd(), iowr(b'd', 0, 64), &mut version);
    say(
        "DRM_IOCTL_VERSION",
        format!("{} name {:?}", res(r), String::from_utf8_lossy(&name)),
    );
    plain_calls("drm-card", card.as_fd());
    let (h, size) = match drm::create_dumb(card.as_fd(), 64, 16, 32) {
        Ok(x) => x,
        Err(e) => return say("create_dumb", format!("Err({e:?})")),
    };
    say("create_dumb(64x16x32)", format!("handle {h} size {size}"));
    say(
        "create_dumb(0x0x32)",
        res(drm::create_dumb(card.as_fd(), 0, 0, 32)),
    );
    for flags in [
        0u32,
        O_CLOEXEC,
        O_RDWR,
        O_RDWR | O_CLOEXEC,
        O_WRONLY,
        0x1234,
        O_NONBLOCK,
    ] {
        let r = drm::prime_handle_to_fd(card.as_fd(), h, flags);
        let fl = r.as_ref().ok().map(|fd| {
            (
                rustix::fs::fcntl_getfl(fd).map(|f| f.bits()).unwrap_or(0),
                rustix::io::fcntl_getfd(fd).map(|f| f.bits()).unwrap_or(0),
                rustix::fs::fstat(fd).map(|s| s.st_ino).unwrap_or(0),
            )
        });
        say(
            &format!("prime_handle_to_fd(h, {flags:#o})"),
            format!(
                "{} F_GETFL/F_GETFD/ino {fl:?}",
                res(r.map(|fd| fd.as_raw_fd()))
            ),
        );
    }
    say(
        "prime_handle_to_fd(999)",
        res(drm::prime_handle_to_fd(card.as_fd(), 999, O_CLOEXEC).map(|f| f.as_raw_fd())),
    );
    let vbuf = drm::prime_handle_to_fd(card.as_fd(), h, O_RDWR | O_CLOEXEC).unwrap();
    let vbuf2 = drm::prime_handle_to_fd(card.as_fd(), h, O_RDWR | O_CLOEXEC).unwrap();
    say(
        "two exports of one handle: same ino",
        rustix::fs::fstat(&vbuf).unwrap().st_ino == rustix::fs::fstat(&vbuf2).unwrap().st_ino,
    );
    plain_calls("vgem dma-buf", vbuf.as_fd());
    say(
        "prime_fd_to_handle(own export)",
        res(drm::prime_fd_to_handle(card.as_fd(), vbuf.as_raw_fd())),
    );
    let ha = drm::prime_fd_to_handle(card.as_fd(), a.as_raw_fd());
    say("prime_fd_to_handle(heap buffer a)", res(ha));
    say(
        "prime_fd_to_handle(heap buffer a) again",
        res(drm::prime_fd_to_handle(card.as_fd(), a.as_raw_fd())),
    );
    say(
        "prime_fd_to_handle(heap fd)",
        res(drm::prime_fd_to_handle(card.as_fd(), heap.as_raw_fd())),
    );
    say(
        "prime_fd_to_handle(card fd)",
        res(drm::prime_fd_to_handle(card.as_fd(), card.as_raw_fd())),
    );
    say(
        "prime_fd_to_handle(-1)",
        res(drm::prime_fd_to_handle(card.as_fd(), -1)),
    );
    say(
        "prime_fd_to_handle(999)",
        res(drm::prime_fd_to_handle(card.as_fd(), 999)),
    );
    bufinfo("with a imported into vgem and a vgem export");

    // Fences.
    say(
        "fence_attach(h, 0x2)",
        res(drm::vgem_fence_attach(card.as_fd(), h, 0x2)),
    );
    say(
        "fence_attach(999, WRITE)",
        res(drm::vgem_fence_attach(
            card.as_fd(),
            999,
            drm::VGEM_FENCE_WRITE,
        )),
    );
    let f1 = drm::vgem_fence_attach(card.as_fd(), h, drm::VGEM_FENCE_WRITE);
    say("fence_attach(h, WRITE)", res(f1));
    say(
        "fence_attach(h, WRITE) again",
        res(drm::vgem_fence_attach(
            card.as_fd(),
            h,
            drm::VGEM_FENCE_WRITE,
        )),
    );
    say(
        "fence_attach(h, READ) with a write pending",
        res(drm::vgem_fence_attach(card.as_fd(), h, 0)),
    );
    let poll = |fd: &OwnedFd, ev: u16| {
        let mut fds = [rustix::event::PollFd::from_borrowed_fd(
            fd.as_fd(),
            rustix::event::PollFlags::from_bits_retain(ev),
        )];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let _ = rustix::event::poll(&mut fds, Some(&zero));
        format!("{:#x}", fds[0].revents().bits())
    };
    say(
        "vgem dma-buf poll(IN|OUT) with a write fence",
        poll(&vbuf, 0x5),
    );
    let sr = export_sync(vbuf.as_fd(), DMA_BUF_SYNC_READ as u32).unwrap();
    let sw = export_sync(vbuf.as_fd(), DMA_BUF_SYNC_WRITE as u32).unwrap();
    say(
        "export(READ) info, write fence pending",
        sync_info(sr.as_fd()),
    );
    say(
        "export(WRITE) info, write fence pending",
        sync_info(sw.as_fd()),
    );
    say("sync_file poll(IN) pending", poll(&sr, 0x1));
    plain_calls("pending sync_file", sr.as_fd());
    bufinfo("with a pending vgem write fence");
    if let Ok(f1) = f1 {
        say(
            "fence_signal(f1)",
            res(drm::vgem_fence_signal(card.as_fd(), f1)),
        );
        say(
            "fence_signal(f1) again",
            res(drm::vgem_fence_signal(card.as_fd(), f1)),
        );
    }
    say(
        "fence_signal(999)",
        res(drm::vgem_fence_signal(card.as_fd(), 999)),
    );
    say("export(READ) info after signal", sync_info(sr.as_fd()));
    say("sync_file poll(IN) signalled", poll(&sr, 0x1));
    // Read fences, on the heap buffer through its vgem handle.
    if let Ok(ha) = ha {
        let r1 = drm::vgem_fence_attach(card.as_fd(), ha, 0);
        let r2 = drm::vgem_fence_attach(card.as_fd(), ha, 0);
        say(
            "two read fences on heap buffer a",
            format!("{} {}", res(r1), res(r2)),
        );
        say("heap a poll(IN)", poll(a, 0x1));
        say("heap a poll(OUT)", poll(a, 0x4));
        let w = drm::vgem_fence_attach(card.as_fd(), ha, drm::VGEM_FENCE_WRITE);
        say("write fence with reads pending", res(w));
        let s1 = export_sync(a.as_fd(), DMA_BUF_SYNC_WRITE as u32).unwrap();
        let s2 = export_sync(a.as_fd(), DMA_BUF_SYNC_READ as u32).unwrap();
        say("heap a export(WRITE) info", sync_info(s1.as_fd()));
        say("heap a export(READ) info", sync_info(s2.as_fd()));
        let mut m = [0u8; 48];
        m[..5].copy_from_slice(b"merge");
        m[32..36].copy_from_slice(&s2.as_raw_fd().to_ne_bytes());
        let r = ioc(s1.as_fd(), SYNC_IOC_MERGE, &mut m);
        say("merge(s1, s2)", res(r));
        if r.is_ok() {
            let mfd = adopt(i32::from_ne_bytes(m[36..40].try_into().unwrap()));
            say("merged info", sync_info(mfd.as_fd()));
        }
        bufinfo("with two read fences on a");
        for f in [r1, r2].into_iter().flatten() {
            say(
                "signal read fence",
                res(drm::vgem_fence_signal(card.as_fd(), f)),
            );
        }
        say("heap a export(WRITE) info after", sync_info(s1.as_fd()));
        say("gem_close(ha)", res(drm::gem_close(card.as_fd(), ha)));
        say("gem_close(ha) again", res(drm::gem_close(card.as_fd(), ha)));
    }
    // A fence left pending: what closing the card does to it.
    let f3 = drm::vgem_fence_attach(card.as_fd(), h, drm::VGEM_FENCE_WRITE);
    let s3 = export_sync(vbuf.as_fd(), DMA_BUF_SYNC_READ as u32).unwrap();
    say("f3", res(f3));
    say(
        "gem_close(h) with vbuf open",
        res(drm::gem_close(card.as_fd(), h)),
    );
    say(
        "prime_fd_to_handle(vbuf) after gem_close",
        res(drm::prime_fd_to_handle(card.as_fd(), vbuf.as_raw_fd())),
    );
    drop(card);
    say(
        "pending fence after closing the card",
        sync_info(s3.as_fd()),
    );
}
