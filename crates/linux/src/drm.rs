//! DRM PRIME and vgem's fence ioctls, one small function per call.
//!
//! C headers: `include/uapi/drm/drm.h` (`DRM_IOCTL_GEM_CLOSE`, `DRM_IOCTL_PRIME_HANDLE_TO_FD`,
//! `DRM_IOCTL_PRIME_FD_TO_HANDLE`), `include/uapi/drm/drm_mode.h`
//! (`DRM_IOCTL_MODE_CREATE_DUMB`), `include/uapi/drm/vgem_drm.h` (`DRM_IOCTL_VGEM_FENCE_ATTACH`,
//! `DRM_IOCTL_VGEM_FENCE_SIGNAL`); driver `drivers/gpu/drm/vgem/vgem_fence.c`.
//!
//! # The concept
//!
//! A GEM object is named by a **handle**, a small integer private to one open DRM file. PRIME
//! turns a handle into a dma-buf fd (export) and a dma-buf fd into a handle (import; importing
//! a buffer this file already knows gives back the same handle). vgem, the virtual GEM driver,
//! has no hardware; its two private ioctls put a fence of its own into a buffer's reservation
//! object (`FENCE_ATTACH`, write or read usage) and signal it (`FENCE_SIGNAL`). That makes vgem
//! the one place a stock kernel without `CONFIG_SW_SYNC` hands user space an **unsignalled
//! fence it controls**: attach one, then `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` on the buffer's
//! dma-buf gives a sync file pending until `FENCE_SIGNAL` (or vgem's own 10-second timeout).
//!
//! # Why `unsafe` is allowed here
//!
//! As in [`crate::sys`]: rustix's `ioctl` is `unsafe` (the opcode must match the struct), and
//! adopting the fd PRIME returns takes ownership of a raw number.
#![allow(unsafe_code)]

use crate::sys::errno;
use rustix::fd::{BorrowedFd, FromRawFd, OwnedFd};
use rustix::ioctl::{ioctl, opcode, Opcode, Setter, Updater};
use uapi::Errno;

/// `struct drm_gem_close { __u32 handle; __u32 pad; }`.
#[repr(C)]
struct DrmGemClose {
    handle: u32,
    pad: u32,
}

/// `struct drm_prime_handle { __u32 handle; __u32 flags; __s32 fd; }`.
#[repr(C)]
struct DrmPrimeHandle {
    handle: u32,
    flags: u32,
    fd: i32,
}

/// `struct drm_mode_create_dumb { __u32 height, width, bpp, flags, handle, pitch; __u64 size; }`.
#[repr(C)]
struct DrmModeCreateDumb {
    height: u32,
    width: u32,
    bpp: u32,
    flags: u32,
    handle: u32,
    pitch: u32,
    size: u64,
}

/// `struct drm_vgem_fence_attach { __u32 handle; __u32 flags; __u32 out_fence; __u32 pad; }`.
#[repr(C)]
struct DrmVgemFenceAttach {
    handle: u32,
    flags: u32,
    out_fence: u32,
    pad: u32,
}

/// `struct drm_vgem_fence_signal { __u32 fence; __u32 flags; }`.
#[repr(C)]
struct DrmVgemFenceSignal {
    fence: u32,
    flags: u32,
}

/// `DRM_IOCTL_GEM_CLOSE`: `_IOW('d', 0x09, struct drm_gem_close)`.
pub const DRM_IOCTL_GEM_CLOSE: Opcode = opcode::write::<DrmGemClose>(b'd', 0x09);
/// `DRM_IOCTL_PRIME_HANDLE_TO_FD`: `_IOWR('d', 0x2d, struct drm_prime_handle)`.
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: Opcode = opcode::read_write::<DrmPrimeHandle>(b'd', 0x2d);
/// `DRM_IOCTL_PRIME_FD_TO_HANDLE`: `_IOWR('d', 0x2e, struct drm_prime_handle)`.
pub const DRM_IOCTL_PRIME_FD_TO_HANDLE: Opcode = opcode::read_write::<DrmPrimeHandle>(b'd', 0x2e);
/// `DRM_IOCTL_MODE_CREATE_DUMB`: `_IOWR('d', 0xb2, struct drm_mode_create_dumb)`.
pub const DRM_IOCTL_MODE_CREATE_DUMB: Opcode = opcode::read_write::<DrmModeCreateDumb>(b'd', 0xb2);
/// `DRM_IOCTL_VGEM_FENCE_ATTACH`: `_IOWR('d', DRM_COMMAND_BASE + 1, struct drm_vgem_fence_attach)`.
pub const DRM_IOCTL_VGEM_FENCE_ATTACH: Opcode =
    opcode::read_write::<DrmVgemFenceAttach>(b'd', 0x41);
/// `DRM_IOCTL_VGEM_FENCE_SIGNAL`: `_IOW('d', DRM_COMMAND_BASE + 2, struct drm_vgem_fence_signal)`.
pub const DRM_IOCTL_VGEM_FENCE_SIGNAL: Opcode = opcode::write::<DrmVgemFenceSignal>(b'd', 0x42);

/// `struct drm_version`: three `int`s, then three (`size_t` length, `char *` buffer) pairs for
/// the name, date and description.
#[repr(C)]
struct DrmVersion {
    major: i32,
    minor: i32,
    patchlevel: i32,
    name_len: usize,
    name: *mut u8,
    date_len: usize,
    date: *mut u8,
    desc_len: usize,
    desc: *mut u8,
}

/// `DRM_IOCTL_VERSION`: `_IOWR('d', 0x00, struct drm_version)`.
pub const DRM_IOCTL_VERSION: Opcode = opcode::read_write::<DrmVersion>(b'd', 0x00);

/// The DRM driver's name (`DRM_IOCTL_VERSION`), e.g. `"vgem"`.
///
/// Errors: `ENOTTY` for a file that is not a DRM device.
pub fn driver_name(card: BorrowedFd<'_>) -> Result<String, Errno> {
    let mut name = [0u8; 32];
    let mut arg = DrmVersion {
        major: 0,
        minor: 0,
        patchlevel: 0,
        name_len: name.len(),
        name: name.as_mut_ptr(),
        date_len: 0,
        date: std::ptr::null_mut(),
        desc_len: 0,
        desc: std::ptr::null_mut(),
    };
    // SAFETY: the opcode carries a `drm_version`, which `arg` is; the kernel writes at most
    // `name_len` bytes to `name`, which points at `name` (alive across the call), and nothing
    // through the null date and description pointers (their lengths are 0).
    unsafe { ioctl(card, Updater::<DRM_IOCTL_VERSION, _>::new(&mut arg)) }.map_err(errno)?;
    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..end]).into_owned())
}

/// Opens the vgem device: the first `/dev/dri/card<N>` whose driver is `vgem`.
///
/// Errors: `ENOENT` when no card is vgem (the module is not loaded).
pub fn open_vgem() -> Result<OwnedFd, Errno> {
    use rustix::fs::{Mode, OFlags};
    for n in 0..16 {
        let path = format!("/dev/dri/card{n}");
        let Ok(card) =
            rustix::fs::open(path.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        else {
            continue;
        };
        if driver_name(rustix::fd::AsFd::as_fd(&card)).as_deref() == Ok("vgem") {
            return Ok(card);
        }
    }
    Err(Errno::ENOENT)
}

/// `VGEM_FENCE_WRITE`: the attached fence has write usage (else read usage).
pub const VGEM_FENCE_WRITE: u32 = 0x1;

/// A dumb buffer: `DRM_IOCTL_MODE_CREATE_DUMB` with `{ height, width, bpp }`; returns
/// `(handle, size)`.
///
/// Errors: `EINVAL` (a zero or overflowing size), `ENOMEM`.
pub fn create_dumb(
    card: BorrowedFd<'_>,
    width: u32,
    height: u32,
    bpp: u32,
) -> Result<(u32, u64), Errno> {
    let mut arg = DrmModeCreateDumb {
        height,
        width,
        bpp,
        flags: 0,
        handle: 0,
        pitch: 0,
        size: 0,
    };
    // SAFETY: the opcode carries a `drm_mode_create_dumb`, which `arg` is.
    unsafe {
        ioctl(
            card,
            Updater::<DRM_IOCTL_MODE_CREATE_DUMB, _>::new(&mut arg),
        )
    }
    .map_err(errno)?;
    Ok((arg.handle, arg.size))
}

/// `DRM_IOCTL_PRIME_HANDLE_TO_FD` with `{ handle, flags }` (`DRM_CLOEXEC` = `O_CLOEXEC`,
/// `DRM_RDWR` = `O_RDWR`); the new dma-buf fd.
///
/// Errors: `ENOENT` (no such handle), `EINVAL` (flags outside `DRM_CLOEXEC | DRM_RDWR`).
pub fn prime_handle_to_fd(card: BorrowedFd<'_>, handle: u32, flags: u32) -> Result<OwnedFd, Errno> {
    let mut arg = DrmPrimeHandle {
        handle,
        flags,
        fd: -1,
    };
    // SAFETY: the opcode carries a `drm_prime_handle`, which `arg` is.
    unsafe {
        ioctl(
            card,
            Updater::<DRM_IOCTL_PRIME_HANDLE_TO_FD, _>::new(&mut arg),
        )
    }
    .map_err(errno)?;
    if arg.fd < 0 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: on success the kernel installed `arg.fd` for us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
}

/// `DRM_IOCTL_PRIME_FD_TO_HANDLE` with `{ fd }`; the handle (the existing one if this file
/// already has the buffer).
///
/// Errors: `EBADF` (`fd` not open), `EINVAL` (not a dma-buf).
pub fn prime_fd_to_handle(card: BorrowedFd<'_>, fd: i32) -> Result<u32, Errno> {
    let mut arg = DrmPrimeHandle {
        handle: 0,
        flags: 0,
        fd,
    };
    // SAFETY: the opcode carries a `drm_prime_handle`, which `arg` is.
    unsafe {
        ioctl(
            card,
            Updater::<DRM_IOCTL_PRIME_FD_TO_HANDLE, _>::new(&mut arg),
        )
    }
    .map_err(errno)?;
    Ok(arg.handle)
}

/// `DRM_IOCTL_GEM_CLOSE` with `{ handle }`.
///
/// Errors: `EINVAL` (no such handle, or `pad` not 0).
pub fn gem_close(card: BorrowedFd<'_>, handle: u32) -> Result<(), Errno> {
    let arg = DrmGemClose { handle, pad: 0 };
    // SAFETY: the opcode carries a `drm_gem_close`, which `arg` is.
    unsafe { ioctl(card, Setter::<DRM_IOCTL_GEM_CLOSE, _>::new(arg)) }.map_err(errno)
}

/// `DRM_IOCTL_VGEM_FENCE_ATTACH` with `{ handle, flags }`; the fence's id (for
/// [`vgem_fence_signal`]).
///
/// Errors: `ENOENT` (no such handle), `EINVAL` (unknown flags, `pad` not 0), `EBUSY` (an
/// unsignalled fence the new one would conflict with: any for a write fence, a write one for a
/// read fence).
pub fn vgem_fence_attach(card: BorrowedFd<'_>, handle: u32, flags: u32) -> Result<u32, Errno> {
    let mut arg = DrmVgemFenceAttach {
        handle,
        flags,
        out_fence: 0,
        pad: 0,
    };
    // SAFETY: the opcode carries a `drm_vgem_fence_attach`, which `arg` is.
    unsafe {
        ioctl(
            card,
            Updater::<DRM_IOCTL_VGEM_FENCE_ATTACH, _>::new(&mut arg),
        )
    }
    .map_err(errno)?;
    Ok(arg.out_fence)
}

/// `DRM_IOCTL_VGEM_FENCE_SIGNAL` with `{ fence }`.
///
/// Errors: `ENOENT` (no such fence: never attached, or already signalled through this call),
/// `EINVAL` (flags not 0), `ETIMEDOUT` (vgem's timeout signalled it first).
pub fn vgem_fence_signal(card: BorrowedFd<'_>, fence: u32) -> Result<(), Errno> {
    let arg = DrmVgemFenceSignal { fence, flags: 0 };
    // SAFETY: the opcode carries a `drm_vgem_fence_signal`, which `arg` is.
    unsafe { ioctl(card, Setter::<DRM_IOCTL_VGEM_FENCE_SIGNAL, _>::new(arg)) }.map_err(errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_match_the_kernel_headers() {
        assert_eq!(DRM_IOCTL_GEM_CLOSE, 0x4008_6409);
        assert_eq!(DRM_IOCTL_VERSION, 0xc040_6400);
        assert_eq!(DRM_IOCTL_PRIME_HANDLE_TO_FD, 0xc00c_642d);
        assert_eq!(DRM_IOCTL_PRIME_FD_TO_HANDLE, 0xc00c_642e);
        assert_eq!(DRM_IOCTL_MODE_CREATE_DUMB, 0xc020_64b2);
        assert_eq!(DRM_IOCTL_VGEM_FENCE_ATTACH, 0xc010_6441);
        assert_eq!(DRM_IOCTL_VGEM_FENCE_SIGNAL, 0x4008_6442);
    }
}
