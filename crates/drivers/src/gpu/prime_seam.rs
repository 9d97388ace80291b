//! The simulator's answer to the PRIME seam ([`seam::prime::Prime`]): the GPU's exporter seen
//! through a DRM file of a simulated process, with handles, as `drm_prime.c` shows it to user
//! space. The real kernel's answer is vgem (`linux::Vgem`); the `prime` conformance suite holds
//! both to the same errnos.
//!
//! C side: `drivers/gpu/drm/drm_prime.c` (`drm_prime_handle_to_fd_ioctl`,
//! `drm_prime_fd_to_handle_ioctl`), `drm_gem.c` (`drm_gem_handle_create`, `drm_gem_close_ioctl`).
//!
//! # Rules (Linux 6.12, found in qemu with vgem)
//!
//! 1. A DRM file ([`FileObject::Device`]) holds its handles; they are allocated lowest-free from 1
//!    (`idr_alloc(&file_priv->object_idr, obj, 1, 0)`), so a closed handle's number comes back.
//! 2. Export flags outside `DRM_CLOEXEC | DRM_RDWR` are `EINVAL`; an unknown handle `ENOENT`.
//!    One object has one dma-buf ([`Gpu::export_into`] caches it): every export is another fd of
//!    the same buffer, listed in the machine's registry.
//! 3. Import of a dma-buf the file has a handle for (its own export, or a foreign buffer
//!    imported before) gives that handle; otherwise the GPU imports it ([`Gpu::import`]: the
//!    object itself for its own exports, an attachment for foreign ones) under a new handle. An
//!    fd that is not a dma-buf is `EINVAL`, a closed one `EBADF`.
//! 4. `GEM_CLOSE` of an unknown handle is `EINVAL`; closing the last handle of a foreign import
//!    drops the import, which detaches the GPU from the buffer.
//!
//! # Locking and lifetime
//! The handle table is one mutex per DRM file, never held across a GPU call. Objects live while
//! a handle, an export or a job holds them.

use crate::gpu::{BoDesc, Gpu, GpuBo};
use kernel::file::{DeviceFile, FileObject};
use kernel::sim::SimProcess;
use parking_lot::Mutex;
use seam::prime::{Prime, DRM_CLOEXEC, DRM_RDWR};
use seam::{Errno, Fd};
use std::collections::BTreeMap;
use std::sync::Arc;
use uapi::ioctl::{O_CLOEXEC, O_RDWR};
use uapi::AsErrno;

/// One open DRM file of the GPU: its handles (rule 1).
#[derive(Debug, Default)]
struct DrmFile {
    handles: Mutex<BTreeMap<u32, GpuBo>>,
}

impl DeviceFile for DrmFile {
    fn path(&self) -> String {
        "/dev/dri/card0".into()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl DrmFile {
    /// The handle of `bo` in this file, or a new one (lowest free from 1).
    fn handle_for(&self, bo: GpuBo) -> u32 {
        let mut h = self.handles.lock();
        if let Some((&n, _)) = h.iter().find(|(_, b)| b.ptr_eq(&bo)) {
            return n;
        }
        let n = (1..).find(|n| !h.contains_key(n)).expect("a free handle");
        h.insert(n, bo);
        n
    }
}

/// PRIME on the simulated GPU, for [`SimProcess`]es of the GPU's machine.
#[derive(Debug, Clone)]
pub struct GpuPrime {
    gpu: Gpu,
}

impl GpuPrime {
    /// PRIME over `gpu` (bound to the same machine as the processes it will serve).
    pub fn new(gpu: Gpu) -> GpuPrime {
        GpuPrime { gpu }
    }

    fn file(u: &SimProcess, card: Fd) -> Result<Arc<kernel::file::File>, Errno> {
        let file = u.process().file(card).map_err(|e| e.errno().to_user())?;
        match file.object() {
            FileObject::Device(d) if d.as_any().is::<DrmFile>() => Ok(file.clone()),
            _ => Err(Errno::ENOTTY),
        }
    }
}

fn drm(file: &kernel::file::File) -> &DrmFile {
    match file.object() {
        FileObject::Device(d) => d
            .as_any()
            .downcast_ref::<DrmFile>()
            .expect("checked by file()"),
        _ => unreachable!("checked by GpuPrime::file"),
    }
}

impl Prime<SimProcess> for GpuPrime {
    fn open_card(&mut self, u: &mut SimProcess) -> Result<Fd, Errno> {
        let obj = FileObject::Device(Arc::new(DrmFile::default()));
        u.process()
            .install(obj, O_RDWR | O_CLOEXEC)
            .map_err(|e| e.errno().to_user())
    }

    fn create(&mut self, u: &mut SimProcess, card: Fd, size: u64) -> Result<(u32, u64), Errno> {
        let file = Self::file(u, card)?;
        if size == 0 {
            return Err(Errno::EINVAL);
        }
        let size = size.div_ceil(soc::PAGE_SIZE) * soc::PAGE_SIZE;
        let bo = self
            .gpu
            .create_bo(BoDesc::gtt("prime", size))
            .map_err(|e| e.errno())?;
        Ok((drm(&file).handle_for(bo), size))
    }

    fn handle_to_fd(
        &mut self,
        u: &mut SimProcess,
        card: Fd,
        handle: u32,
        flags: u32,
    ) -> Result<Fd, Errno> {
        let file = Self::file(u, card)?;
        if flags & !(DRM_CLOEXEC | DRM_RDWR) != 0 {
            return Err(Errno::EINVAL);
        }
        let bo = drm(&file)
            .handles
            .lock()
            .get(&handle)
            .cloned()
            .ok_or(Errno::ENOENT)?;
        let buf = self
            .gpu
            .export_into(&bo, u.kernel().registry())
            .map_err(|e| e.errno())?;
        u.process()
            .install(FileObject::DmaBuf(buf), flags)
            .map_err(|e| e.errno().to_user())
    }

    fn fd_to_handle(&mut self, u: &mut SimProcess, card: Fd, fd: Fd) -> Result<u32, Errno> {
        let file = Self::file(u, card)?;
        let buf = u
            .process()
            .get_dma_buf(fd)
            .map_err(|e| e.errno().to_user())?;
        let bo = self.gpu.import(&buf).map_err(|e| e.errno())?;
        Ok(drm(&file).handle_for(bo))
    }

    fn gem_close(&mut self, u: &mut SimProcess, card: Fd, handle: u32) -> Result<(), Errno> {
        let file = Self::file(u, card)?;
        let bo = drm(&file).handles.lock().remove(&handle);
        // Dropped outside the lock: the last handle of a foreign import detaches (rule 4).
        bo.map(drop).ok_or(Errno::EINVAL)
    }

    fn device_name(&self) -> String {
        "gpu0".into()
    }
}
