//! The DRM PRIME seam: a process's view of a GEM device — open it, create a buffer object,
//! turn a handle into a dma-buf fd and back, close a handle — answered by vgem on Linux
//! (`linux::Vgem`) and by the simulated GPU's exporter (`drivers::gpu::prime_seam`).
//!
//! C headers: `include/uapi/drm/drm.h` (`DRM_IOCTL_PRIME_HANDLE_TO_FD`,
//! `DRM_IOCTL_PRIME_FD_TO_HANDLE`, `DRM_IOCTL_GEM_CLOSE`), `include/uapi/drm/drm_mode.h`
//! (`DRM_IOCTL_MODE_CREATE_DUMB`); `drivers/gpu/drm/drm_prime.c`.
//!
//! # The concept
//!
//! A GEM handle is a small integer private to one open DRM file. Export
//! (`PRIME_HANDLE_TO_FD`) gives a dma-buf fd — the *same* dma-buf every time for one object,
//! so a second export is another fd of the first export's file; import (`PRIME_FD_TO_HANDLE`)
//! of a buffer this file already has a handle for gives that handle back (self-import), and of
//! a foreign buffer attaches the device to it and makes a new handle.
//!
//! # Rules of the seam
//!
//! The fds are the process's own: [`Prime`] is implemented *beside* a [`Uapi`] and every call
//! takes the process (`u`), so the card fd and the dma-bufs it hands out live in the same fd
//! table as everything else the suites use. Errnos are Linux 6.12's (found in qemu): export
//! flags outside `DRM_CLOEXEC | DRM_RDWR` are `EINVAL`, an unknown handle `ENOENT`; importing an
//! fd that is not a dma-buf is `EINVAL`, a closed one `EBADF`; closing an unknown handle is
//! `EINVAL`.

use crate::{Errno, Fd, Uapi};

/// `DRM_CLOEXEC`: the exported fd is close-on-exec (`O_CLOEXEC`).
pub const DRM_CLOEXEC: u32 = 0o2000000;
/// `DRM_RDWR`: ask for a read-write file (`O_RDWR`).
pub const DRM_RDWR: u32 = 0o2;

/// PRIME on one GEM device, for the process `U` (see the [module doc](self)).
pub trait Prime<U: Uapi> {
    /// Opens the device (`open("/dev/dri/cardN", O_RDWR | O_CLOEXEC)`): a new DRM file with a
    /// handle namespace of its own.
    ///
    /// Errors: `ENOENT` without the device.
    fn open_card(&mut self, u: &mut U) -> Result<Fd, Errno>;

    /// A buffer object of `size` bytes (a dumb buffer, `size / 4` 32-bit pixels wide on vgem);
    /// returns `(handle, size)`.
    ///
    /// Errors: `EBADF`, `EINVAL` (`size` 0), `ENOMEM`.
    fn create(&mut self, u: &mut U, card: Fd, size: u64) -> Result<(u32, u64), Errno>;

    /// `DRM_IOCTL_PRIME_HANDLE_TO_FD`: the object as a dma-buf fd.
    fn handle_to_fd(&mut self, u: &mut U, card: Fd, handle: u32, flags: u32) -> Result<Fd, Errno>;

    /// `DRM_IOCTL_PRIME_FD_TO_HANDLE`: the handle of the dma-buf `fd` in this DRM file.
    fn fd_to_handle(&mut self, u: &mut U, card: Fd, fd: Fd) -> Result<u32, Errno>;

    /// `DRM_IOCTL_GEM_CLOSE`: drops the handle.
    fn gem_close(&mut self, u: &mut U, card: Fd, handle: u32) -> Result<(), Errno>;

    /// The name the device's attachments have in debugfs `bufinfo` (`dev_name`).
    fn device_name(&self) -> String;
}
