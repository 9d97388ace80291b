//! The `prime` suite: DRM PRIME through the [`Prime`] seam — export, self-import, foreign
//! import, handles, `GEM_CLOSE`, and what the buffers look like to the rest of the system
//! (fstat, debugfs `bufinfo`'s attached devices, fences in the shared reservation object) —
//! for vgem on Linux 6.12 and the simulated GPU alike.
//!
//! A case is `fn(&mut U, &mut P)`: the process and the device; the card is opened in the
//! process and closed with the case's other fds (rule 2 of [`super`]).

use super::*;
use crate::prime::{Prime, DRM_CLOEXEC, DRM_RDWR};
use crate::{O_NONBLOCK, O_WRONLY, SEEK_END};

/// The signature of a PRIME case.
pub type PrimeCaseFn<U, P> = fn(&mut U, &mut P) -> Result<Outcome, Failure>;

/// One case of the suite.
pub struct PrimeCase<U, P> {
    /// The case's function name.
    pub name: &'static str,
    /// What it covers.
    pub covers: &'static str,
    /// The case itself.
    pub run: PrimeCaseFn<U, P>,
}

/// Opens the device, or skips.
fn card<U: Uapi, P: Prime<U>>(u: &mut U, p: &mut P, fds: &mut Vec<Fd>) -> Step<Fd> {
    match p.open_card(u) {
        Ok(fd) => {
            fds.push(fd);
            Ok(fd)
        }
        Err(e) => skip(format!("no GEM device ({e:?})")),
    }
}

/// A 2-page object and its handle.
fn object<U: Uapi, P: Prime<U>>(u: &mut U, p: &mut P, card: Fd) -> Step<u32> {
    let (h, size) = ok("create(2 pages)", p.create(u, card, 2 * PAGE))?;
    ensure(size == 2 * PAGE, || format!("created {size} bytes"))?;
    Ok(h)
}

fn export<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
    fds: &mut Vec<Fd>,
    card: Fd,
    h: u32,
    flags: u32,
) -> Step<Fd> {
    let r = p.handle_to_fd(u, card, h, flags);
    open(fds, &format!("handle_to_fd({h}, {flags:#o})"), r)
}

/// PRIME_HANDLE_TO_FD gives a dma-buf of the object's size: an anonymous `/dmabuf:` file,
/// close-on-exec with `DRM_CLOEXEC`.
pub fn prime_export_is_a_dma_buf_of_the_object_size<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = card(u, p, fds)?;
        let h = object(u, p, c)?;
        let fd = export(u, p, fds, c, h, DRM_CLOEXEC | DRM_RDWR)?;
        let size = ok("lseek(0, SEEK_END)", u.lseek(fd, 0, SEEK_END))?;
        let st = ok("fstat", u.fstat(fd))?;
        let path = ok("readlink", u.fd_path(fd))?;
        let cloexec = ok("F_GETFD", u.fcntl_getfd(fd))?;
        ensure(
            size == 2 * PAGE
                && st.size == 2 * PAGE
                && st.mode == 0o600
                && path == "/dmabuf:"
                && cloexec == 1,
            || format!("export: size {size}, {st:?}, link {path:?}, F_GETFD {cloexec}"),
        )
    })
}

/// Export flags: `DRM_CLOEXEC` and `DRM_RDWR` only; anything else (`O_WRONLY`, `O_NONBLOCK`,
/// stray bits) is `EINVAL`; without `DRM_CLOEXEC` the fd is inherited across exec.
pub fn prime_export_flags<U: Uapi, P: Prime<U>>(u: &mut U, p: &mut P) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = card(u, p, fds)?;
        let h = object(u, p, c)?;
        for bad in [O_WRONLY, O_NONBLOCK, 0x1234, DRM_CLOEXEC | 0x10] {
            let r = p.handle_to_fd(u, c, h, bad);
            errno_fd(
                u,
                &format!("handle_to_fd(flags {bad:#o})"),
                Errno::EINVAL,
                r,
            )?;
        }
        let plain = export(u, p, fds, c, h, 0)?;
        let got = ok("F_GETFD", u.fcntl_getfd(plain))?;
        ensure(got == 0, || {
            format!("export without DRM_CLOEXEC has F_GETFD {got}")
        })
    })
}

/// One object, one dma-buf: a second export (other flags) is another fd of the same buffer —
/// same inode, same file flags.
pub fn prime_exports_share_one_buffer<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = card(u, p, fds)?;
        let h = object(u, p, c)?;
        let a = export(u, p, fds, c, h, DRM_CLOEXEC)?;
        let b = export(u, p, fds, c, h, DRM_CLOEXEC | DRM_RDWR)?;
        let (sa, sb) = (ok("fstat", u.fstat(a))?, ok("fstat", u.fstat(b))?);
        let (fa, fb) = (
            ok("F_GETFL", u.fcntl_getfl(a))?,
            ok("F_GETFL", u.fcntl_getfl(b))?,
        );
        ensure(a != b && sa.ino == sb.ino && fa == fb, || {
            format!("exports {a} ({sa:?}, {fa:#o}) and {b} ({sb:?}, {fb:#o})")
        })
    })
}

/// Exporting a handle the file does not have is `ENOENT`.
pub fn prime_export_unknown_handle_enoent<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = card(u, p, fds)?;
        let r = p.handle_to_fd(u, c, 999, DRM_CLOEXEC);
        errno_fd(u, "handle_to_fd(999)", Errno::ENOENT, r)
    })
}

/// Importing the file's own export (or a dup of it) gives back the object's handle.
pub fn prime_self_import_gives_the_same_handle<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = card(u, p, fds)?;
        let h = object(u, p, c)?;
        let fd = export(u, p, fds, c, h, DRM_CLOEXEC)?;
        let back = ok("fd_to_handle(export)", p.fd_to_handle(u, c, fd))?;
        let d = open(fds, "dup", u.dup(fd))?;
        let again = ok("fd_to_handle(dup)", p.fd_to_handle(u, c, d))?;
        ensure(back == h && again == h, || {
            format!("handle {h} came back as {back} and {again}")
        })
    })
}

/// A foreign buffer (a heap dma-buf) is imported once per DRM file: the same handle every time
/// in one file; another file of the device has its own.
pub fn prime_import_foreign_once_per_file<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let c1 = card(u, p, fds)?;
        let c2 = card(u, p, fds)?;
        let a = ok("fd_to_handle(c1)", p.fd_to_handle(u, c1, buf))?;
        let b = ok("fd_to_handle(c1) again", p.fd_to_handle(u, c1, buf))?;
        let other = ok("fd_to_handle(c2)", p.fd_to_handle(u, c2, buf))?;
        ok("gem_close(c2)", p.gem_close(u, c2, other))?;
        let c = ok(
            "fd_to_handle(c1) after c2 closed its",
            p.fd_to_handle(u, c1, buf),
        )?;
        ensure(a == b && b == c, || {
            format!("handles {a}, {b}, {c} in one file")
        })
    })
}

/// Importing an fd that is not a dma-buf (the heap node, a memfd) is `EINVAL`; a closed fd is
/// `EBADF`.
pub fn prime_import_bad_fds<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let heap = system_heap(u, fds)?;
        let c = card(u, p, fds)?;
        errno(
            "fd_to_handle(heap)",
            Errno::EINVAL,
            p.fd_to_handle(u, c, heap),
        )?;
        let m = open(fds, "memfd_create", u.memfd_create("prime", 0))?;
        errno(
            "fd_to_handle(memfd)",
            Errno::EINVAL,
            p.fd_to_handle(u, c, m),
        )?;
        errno("fd_to_handle(card)", Errno::EINVAL, p.fd_to_handle(u, c, c))?;
        let closed = closed_fd(u)?;
        errno(
            "fd_to_handle(closed)",
            Errno::EBADF,
            p.fd_to_handle(u, c, closed),
        )
    })
}

/// `GEM_CLOSE` of a handle twice, or of one never given, is `EINVAL`.
pub fn prime_gem_close_twice_einval<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = card(u, p, fds)?;
        let h = object(u, p, c)?;
        ok("gem_close", p.gem_close(u, c, h))?;
        errno("gem_close again", Errno::EINVAL, p.gem_close(u, c, h))?;
        errno("gem_close(999)", Errno::EINVAL, p.gem_close(u, c, 999))
    })
}

/// Handles are allocated lowest-free from 1: a closed handle's number is the next one given.
pub fn prime_handles_reuse_the_lowest_free<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = card(u, p, fds)?;
        let a = object(u, p, c)?;
        let b = object(u, p, c)?;
        ok("gem_close(a)", p.gem_close(u, c, a))?;
        let again = object(u, p, c)?;
        ensure(a == 1 && b == 2 && again == a, || {
            format!("handles {a}, {b}, then {again} after closing {a}")
        })
    })
}

/// An export outlives the handle and the card: after `GEM_CLOSE` and closing the DRM file the
/// dma-buf still has its size, and importing it again gives a handle.
pub fn prime_export_outlives_handle_and_card<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = card(u, p, fds)?;
        let h = object(u, p, c)?;
        let fd = export(u, p, fds, c, h, DRM_CLOEXEC)?;
        ok("gem_close", p.gem_close(u, c, h))?;
        ok("fd_to_handle after gem_close", p.fd_to_handle(u, c, fd))?;
        close_now(u, fds, c)?;
        let size = ok("lseek(SEEK_END)", u.lseek(fd, 0, SEEK_END))?;
        ensure(size == 2 * PAGE, || {
            format!("size {size} after the card closed")
        })
    })
}

/// A foreign import attaches the device to the buffer (debugfs `bufinfo` lists it under
/// `Attached Devices:`); closing the handle detaches it.
pub fn prime_import_attaches_the_device<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let buf = system_buffer(u, fds, PAGE)?;
        let ino = ok("fstat", u.fstat(buf))?.ino;
        let col = format!("{ino:08}");
        let devices = |text: &str| -> Vec<String> {
            let lines: Vec<&str> = text.lines().collect();
            let Some(start) = lines
                .iter()
                .position(|l| l.split('\t').nth(5) == Some(col.as_str()))
            else {
                return vec!["<entry missing>".into()];
            };
            let rest = &lines[start..];
            let from = rest
                .iter()
                .position(|l| *l == "\tAttached Devices:")
                .unwrap_or(rest.len());
            rest[from..]
                .iter()
                .skip(1)
                .take_while(|l| l.starts_with('\t'))
                .map(|l| l.to_string())
                .collect()
        };
        let before = match u.bufinfo() {
            Ok(t) => devices(&t),
            Err(e) => return skip(format!("no debugfs bufinfo ({e:?})")),
        };
        let c = card(u, p, fds)?;
        let h = ok("fd_to_handle(heap buffer)", p.fd_to_handle(u, c, buf))?;
        let during = devices(&ok("bufinfo", u.bufinfo())?);
        ok("gem_close", p.gem_close(u, c, h))?;
        let after = devices(&ok("bufinfo", u.bufinfo())?);
        let want = vec![format!("\t{}", p.device_name())];
        ensure(
            before.is_empty() && during == want && after.is_empty(),
            || {
                format!("attached devices before {before:?}, imported {during:?}, closed {after:?}; expected {want:?} while imported")
            },
        )
    })
}

/// The exported buffer's reservation object is the object's: a fence attached through the
/// export shows in its sync-file export and in poll, until signalled.
pub fn prime_export_carries_fences<U: Uapi, P: Prime<U>>(
    u: &mut U,
    p: &mut P,
) -> Result<Outcome, Failure> {
    scoped(u, |u, fds| {
        let c = card(u, p, fds)?;
        let h = object(u, p, c)?;
        let fd = export(u, p, fds, c, h, DRM_CLOEXEC)?;
        let f = match u.fence_attach(fd, true) {
            Ok(f) => f,
            Err(Errno::ENOSYS) => return skip("no fence source (vgem)"),
            Err(e) => return fail(format!("fence_attach(export): Err({e:?})")),
        };
        let s = open(fds, "export_sync_file(READ)", u.export_sync_file(fd, 1))?;
        ensure(status_of(u, s)? == 0, || {
            "the fence is not in the export".into()
        })?;
        let got = ok("poll", u.poll(fd, crate::POLLIN, 0))?;
        ensure(got == 0, || {
            format!("poll(IN) with a write fence = {got:#x}")
        })?;
        ok("fence_signal", u.fence_signal(f))?;
        ensure(status_of(u, s)? == 1, || {
            "the sync file did not signal".into()
        })
    })
}

/// Every case of the suite, in a stable order.
pub fn cases<U: Uapi, P: Prime<U>>() -> Vec<PrimeCase<U, P>> {
    macro_rules! list {
        ($($name:ident => $covers:expr,)*) => {
            vec![$(PrimeCase { name: stringify!($name), covers: $covers, run: $name::<U, P> },)*]
        };
    }
    list! {
        prime_export_is_a_dma_buf_of_the_object_size => "drm_prime_handle_to_fd_ioctl",
        prime_export_flags => "drm_prime_handle_to_fd_ioctl",
        prime_exports_share_one_buffer => "drm_gem_prime_handle_to_dmabuf",
        prime_export_unknown_handle_enoent => "drm_prime_handle_to_fd_ioctl",
        prime_self_import_gives_the_same_handle => "drm_gem_prime_fd_to_handle",
        prime_import_foreign_once_per_file => "drm_gem_prime_fd_to_handle",
        prime_import_bad_fds => "drm_gem_prime_fd_to_handle, 63",
        prime_gem_close_twice_einval => "drm_gem_close_ioctl",
        prime_handles_reuse_the_lowest_free => "drm_gem_handle_create_tail",
        prime_export_outlives_handle_and_card => "drm_prime, 64",
        prime_import_attaches_the_device => "drm_gem_prime_import, dma_buf_debug_show",
        prime_export_carries_fences => "drm_gem_prime_export, 83, 85",
    }
}
