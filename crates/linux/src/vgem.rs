//! The PRIME seam ([`seam::prime::Prime`]) answered by vgem, the virtual GEM driver: [`Vgem`].
//!
//! C side: `drivers/gpu/drm/vgem/vgem_drv.c` (dumb buffers over shmem, PRIME import and export),
//! `drivers/gpu/drm/drm_prime.c`.
//!
//! Every call runs on the fd table of the [`RealLinux`] it is given, like the seam's own calls:
//! the card and the dma-bufs it exports are fds of that process. Only [`crate::drm`] touches
//! the kernel.

use crate::RealLinux;
use rustix::fd::AsFd;
use seam::prime::Prime;
use seam::{Errno, Fd};

/// PRIME on vgem (`/dev/dri/cardN` whose driver is `vgem`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vgem;

/// A dumb buffer's row: 1024 pixels of 32 bits, one page.
const ROW: u64 = 4096;

impl Prime<RealLinux> for Vgem {
    fn open_card(&mut self, u: &mut RealLinux) -> Result<Fd, Errno> {
        u.exec().run(|files| {
            let card = crate::drm::open_vgem()?;
            Ok(files.insert(card))
        })
    }

    fn create(&mut self, u: &mut RealLinux, card: Fd, size: u64) -> Result<(u32, u64), Errno> {
        let height = u32::try_from(size.div_ceil(ROW)).map_err(|_| Errno::EINVAL)?;
        u.exec().run(move |files| {
            files.with(card, |card| crate::drm::create_dumb(card, 1024, height, 32))
        })
    }

    fn handle_to_fd(
        &mut self,
        u: &mut RealLinux,
        card: Fd,
        handle: u32,
        flags: u32,
    ) -> Result<Fd, Errno> {
        u.exec().run(move |files| {
            let fd = files.with(card, |card| {
                crate::drm::prime_handle_to_fd(card, handle, flags)
            })?;
            Ok(files.insert(fd))
        })
    }

    fn fd_to_handle(&mut self, u: &mut RealLinux, card: Fd, fd: Fd) -> Result<u32, Errno> {
        u.exec()
            .run(move |files| files.with(card, |card| crate::drm::prime_fd_to_handle(card, fd)))
    }

    fn gem_close(&mut self, u: &mut RealLinux, card: Fd, handle: u32) -> Result<(), Errno> {
        u.exec()
            .run(move |files| files.with(card, |card| crate::drm::gem_close(card, handle)))
    }

    fn device_name(&self) -> String {
        "vgem".into()
    }
}

/// Whether vgem is there (its card opens): the runner's probe for the `prime` suite.
pub fn vgem_present() -> bool {
    crate::drm::open_vgem()
        .map(|c| crate::drm::driver_name(c.as_fd()).is_ok())
        .unwrap_or(false)
}
