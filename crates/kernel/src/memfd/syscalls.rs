//! The memfd system calls of a [`Process`](crate::process::Process): `memfd_create`,
//! `ftruncate`, `pwrite`, `pread`, `F_ADD_SEALS`, `F_GET_SEALS`, with the file-mode checks of
//! the fd (module rule 5 of [`memfd`](super)).

use super::Memfd;
use crate::kernel::errno;
use dmabuf::error::DmaBufError;
use std::sync::Arc;
use uapi::ioctl::MFD_CLOEXEC;
use uapi::Errno;

impl crate::process::Process {
    /// `memfd_create(name, flags)`: a new memfd, open `O_RDWR`, at the lowest free fd
    /// (`O_CLOEXEC` with `MFD_CLOEXEC`). Errors: [`Memfd::create`]'s, `EMFILE`.
    pub fn memfd_create(&self, name: &str, flags: u32) -> Result<crate::file::Fd, DmaBufError> {
        let m = Memfd::create(self.kernel().soc(), name, flags)?;
        let cloexec = if flags & MFD_CLOEXEC != 0 {
            uapi::ioctl::O_CLOEXEC
        } else {
            0
        };
        self.install(
            crate::file::FileObject::Memfd(m),
            uapi::ioctl::O_RDWR | cloexec,
        )
    }

    fn memfd_of(
        &self,
        fd: crate::file::Fd,
        call: &str,
    ) -> Result<(Arc<crate::file::File>, Arc<Memfd>), DmaBufError> {
        let file = self.file(fd)?;
        let m = file.as_memfd().cloned().ok_or_else(|| {
            errno(
                Errno::EINVAL,
                format!("{call}: fd {fd} is a {}, not a memfd", file.object().kind()),
            )
        })?;
        Ok((file, m))
    }

    /// `ftruncate(fd, len)`. Errors: `EBADF`; `EINVAL` for an fd not open for writing or not a
    /// memfd (the model has no other regular files); [`Memfd::ftruncate`]'s.
    pub fn ftruncate(&self, fd: crate::file::Fd, len: u64) -> Result<(), DmaBufError> {
        let (file, m) = self.memfd_of(fd, "ftruncate")?;
        if !file.writable() {
            return Err(errno(
                Errno::EINVAL,
                format!("ftruncate: fd {fd} is not open for writing"),
            ));
        }
        m.ftruncate(len)
    }

    /// `pwrite(fd, data, offset)`. Errors: `EBADF` (not open, or not open for writing);
    /// `EINVAL` for a file that is not a memfd; [`Memfd::pwrite`]'s.
    pub fn pwrite(
        &self,
        fd: crate::file::Fd,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, DmaBufError> {
        let (file, m) = self.memfd_of(fd, "pwrite")?;
        if !file.writable() {
            return Err(errno(
                Errno::EBADF,
                format!("pwrite: fd {fd} is not open for writing"),
            ));
        }
        m.pwrite(offset, data)
    }

    /// `pread(fd, len, offset)`. Errors: `EBADF` (not open, or not open for reading); `EINVAL`
    /// for a file that is not a memfd.
    pub fn pread(
        &self,
        fd: crate::file::Fd,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, DmaBufError> {
        let (file, m) = self.memfd_of(fd, "pread")?;
        if !file.readable() {
            return Err(errno(
                Errno::EBADF,
                format!("pread: fd {fd} is not open for reading"),
            ));
        }
        m.pread(offset, len)
    }

    /// `fcntl(fd, F_ADD_SEALS, seals)`. Errors: `EBADF`; `EINVAL` for a file that is not a
    /// memfd; `EPERM` for an fd not open for writing; [`Memfd::add_seals`]'s.
    pub fn add_seals(&self, fd: crate::file::Fd, seals: u32) -> Result<(), DmaBufError> {
        let (file, m) = self.memfd_of(fd, "F_ADD_SEALS")?;
        if !file.writable() {
            return Err(errno(
                Errno::EPERM,
                format!("F_ADD_SEALS: fd {fd} is not open for writing"),
            ));
        }
        m.add_seals(seals)
    }

    /// `fcntl(fd, F_GET_SEALS)`. Errors: `EBADF`; `EINVAL` for a file that is not a memfd.
    pub fn get_seals(&self, fd: crate::file::Fd) -> Result<u32, DmaBufError> {
        Ok(self.memfd_of(fd, "F_GET_SEALS")?.1.seals())
    }
}
