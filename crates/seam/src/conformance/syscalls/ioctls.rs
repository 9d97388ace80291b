//! The `syscalls` suite's ioctl checks, one per kind of fd: the requests the VFS answers for
//! every file (`FIOCLEX`, `FIONCLEX`, `FIONBIO`, `FIOASYNC`, `FIGETBSZ`, with and without an
//! argument), requests of no driver or of another driver's family, null arguments, and known
//! commands with the wrong size or direction.
//!
//! What each kind answers is its row of the parent module's [`KINDS`] table: `do_vfs_ioctl`
//! answers the common requests before the driver sees them (`FIOASYNC` is `ENOTTY` on files
//! without a `fasync` method); a driver matches the whole request number, so a malformed one is
//! `ENOTTY`, except a heap, which decodes only the command number.

use super::*;

fn int(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

pub(super) fn check_vfs_ioctls<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        ok("FIONCLEX", u.ioctl(fd, FIONCLEX, None))?;
        ensure(ok("F_GETFD", u.fcntl_getfd(fd))? == 0, || {
            "FIONCLEX left FD_CLOEXEC".into()
        })?;
        ok("FIOCLEX", u.ioctl(fd, FIOCLEX, None))?;
        ensure(ok("F_GETFD", u.fcntl_getfd(fd))? == 1, || {
            "FIOCLEX did not set it".into()
        })?;
        ok("FIONBIO(1)", u.ioctl(fd, FIONBIO, Some(&mut int(1))))?;
        let fl = ok("F_GETFL", u.fcntl_getfl(fd))?;
        ensure(fl == k.getfl | O_NONBLOCK, || {
            format!("after FIONBIO(1): {fl:#o}")
        })?;
        ok("FIONBIO(0)", u.ioctl(fd, FIONBIO, Some(&mut int(0))))?;
        let fl = ok("F_GETFL", u.fcntl_getfl(fd))?;
        ensure(fl == k.getfl, || format!("after FIONBIO(0): {fl:#o}"))?;
        errno("FIONBIO(NULL)", Errno::EFAULT, u.ioctl(fd, FIONBIO, None))?;
        errno(
            "FIOASYNC(1)",
            Errno::ENOTTY,
            u.ioctl(fd, FIOASYNC, Some(&mut int(1))),
        )?;
        errno("FIOASYNC(NULL)", Errno::EFAULT, u.ioctl(fd, FIOASYNC, None))?;
        let mut bsz = int(-1);
        ok("FIGETBSZ", u.ioctl(fd, FIGETBSZ, Some(&mut bsz)))?;
        ensure(bsz == int(4096), || format!("FIGETBSZ wrote {bsz:?}"))?;
        errno("FIGETBSZ(NULL)", Errno::EFAULT, u.ioctl(fd, FIGETBSZ, None))
    })
}

/// Requests no driver here defines, and the other families' requests.
const FOREIGN: [u32; 6] = [
    0,
    0xffff_ffff,
    0x5401,      // TCGETS
    0x4008_6204, // _IOW('b', 4, 8): no dma-buf command 4
    0x4008_7800, // _IOW('x', 0, 8)
    0xc008_3e09, // _IOWR('>', 9, 8): no sync-file command 9
];

pub(super) fn check_unknown_requests<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        for req in FOREIGN {
            // A heap decodes only the command number: nr 0 with a write direction would be an
            // ALLOC (the `_IOW('x', 0, 8)` row); those are the known-request case's.
            if k.make == Make::Heap && uapi::ioctl::ioc_nr(req) == 0 && req != 0 {
                continue;
            }
            let want = if k.make == Make::Heap && req == 0 {
                // nr 0, no direction: nothing copied in, len 0.
                Errno::EINVAL
            } else {
                k.unknown
            };
            errno(
                &format!("ioctl({req:#x})"),
                want,
                u.ioctl(fd, req, Some(&mut [0; 64])),
            )?;
            errno(
                &format!("ioctl({req:#x}, NULL)"),
                want,
                u.ioctl(fd, req, None),
            )?;
        }
        if k.make == Make::Memfd {
            // A regular file answers FIONREAD in the VFS: bytes after the position.
            let mut n = int(-1);
            ok("FIONREAD", u.ioctl(fd, FIONREAD, Some(&mut n)))?;
            ensure(n == int(2 * PAGE as i32), || {
                format!("FIONREAD wrote {n:?}")
            })?;
            errno("FIONREAD(NULL)", Errno::EFAULT, u.ioctl(fd, FIONREAD, None))?;
        } else {
            errno(
                "FIONREAD",
                k.unknown,
                u.ioctl(fd, FIONREAD, Some(&mut int(0))),
            )?;
        }
        Ok(())
    })
}

/// The requests each family defines, with a null argument: `EFAULT` where the driver copies
/// from it, and everybody else's requests are unknown.
pub(super) fn check_null_args<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        let dma_buf = [
            DMA_BUF_IOCTL_SYNC,
            DMA_BUF_SET_NAME_A,
            DMA_BUF_SET_NAME_B,
            DMA_BUF_IOCTL_EXPORT_SYNC_FILE,
            DMA_BUF_IOCTL_IMPORT_SYNC_FILE,
        ];
        let sync = [SYNC_IOC_MERGE, SYNC_IOC_FILE_INFO, SYNC_IOC_SET_DEADLINE];
        for req in dma_buf.iter().chain(&sync).chain(&[DMA_HEAP_IOCTL_ALLOC]) {
            let mine = match k.make {
                Make::HeapBuffer | Make::ReadOnlyBuffer | Make::Udmabuf => dma_buf.contains(req),
                Make::SyncFile => sync.contains(req),
                _ => false,
            };
            let want = match k.make {
                _ if mine => Errno::EFAULT,
                // A heap: command 0 with a write direction copies in (EFAULT), any other
                // command number is EINVAL.
                Make::Heap if uapi::ioctl::ioc_nr(*req) == 0 => Errno::EFAULT,
                Make::Heap => Errno::EINVAL,
                _ => k.unknown,
            };
            errno(
                &format!("ioctl({req:#x}, NULL)"),
                want,
                u.ioctl(fd, *req, None),
            )?;
        }
        Ok(())
    })
}

/// The family's own requests with another size or direction: a driver matching whole numbers
/// does not know them; a heap decodes the command number and copies what the user's size and
/// direction say.
pub(super) fn check_malformed_requests<U: Uapi>(u: &mut U, k: &Kind) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let fd = make(u, fds, k.make)?;
        let variants = [
            iow(b'b', 0, 4),
            iowr(b'b', 0, 8),
            ioc(IOC_READ, b'b', 0, 8),
            ioc(IOC_NONE, b'b', 0, 0),
            iowr(b'>', 3, 40),
            iow(b'>', 4, 56),
        ];
        for req in variants {
            let mut arg = [0u8; 64];
            let want = match k.make {
                // Command 0: copied in (zeros, or nothing), len 0 is EINVAL; command 3, 4: EINVAL.
                Make::Heap => Errno::EINVAL,
                _ => k.unknown,
            };
            errno(
                &format!("ioctl({req:#x})"),
                want,
                u.ioctl(fd, req, Some(&mut arg)),
            )?;
        }
        if k.make == Make::Heap {
            // _IOR: nothing is copied in, so even a null pointer reaches the len check.
            errno(
                "ioctl(_IOR('H', 0, 24), NULL)",
                Errno::EINVAL,
                u.ioctl(fd, ioc(IOC_READ, b'H', 0, 24), None),
            )?;
        }
        Ok(())
    })
}
