//! Values of the Linux user-space ABI that every layer of dmabuf shares.
//!
//! C headers: `include/uapi/asm-generic/errno-base.h`, `include/uapi/asm-generic/errno.h`,
//! `include/linux/errno.h` (the kernel-internal `ERESTARTSYS`).
//!
//! The kernel reports failure as a negative errno; dmabuf reports it as an [`Errno`] inside a
//! typed error. Every crate that can fail the way Linux fails (the simulated SoC, the DMA API,
//! fences, the dma-buf core, vb2, and the real-kernel `linux` crate) carries the same `Errno`, so
//! the same test can be asked of the simulator and of a real kernel and compare numbers.
//!
//! ```
//! use uapi::Errno;
//! assert_eq!(Errno::EBUSY.raw(), 16);
//! assert_eq!(Errno::from_raw(22), Some(Errno::EINVAL));
//! assert_eq!(Errno::from_raw(0), None); // 0 is success, not an error
//! let io: std::io::Error = Errno::ENOMEM.into();
//! assert_eq!(io.raw_os_error(), Some(12));
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

pub mod ioctl;
pub mod sync_file;

/// A Linux error number, positive, with the numbers of the generic (x86, arm, riscv) ABI.
///
/// # Invariants
/// The wrapped value is greater than zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(i32);

macro_rules! errnos {
    ($($(#[$doc:meta])* $name:ident = $val:expr, $text:expr;)*) => {
        impl Errno {
            $($(#[$doc])* pub const $name: Errno = Errno($val);)*

            /// The symbolic name (`"EINVAL"`), or `None` for a number this table does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// The C library's message for this number (`strerror`).
            pub fn description(self) -> &'static str {
                match self.0 {
                    $($val => $text,)*
                    _ => "Unknown error",
                }
            }
        }
    };
}

errnos! {
    /// Operation not permitted.
    EPERM = 1, "Operation not permitted";
    /// No such file or directory; also "no such fence/entry" in sync_file and sw_sync.
    ENOENT = 2, "No such file or directory";
    /// No such process (every call on a simulated process that has exited).
    ESRCH = 3, "No such process";
    /// Interrupted system call.
    EINTR = 4, "Interrupted system call";
    /// I/O error; a vb2 queue in the error state.
    EIO = 5, "Input/output error";
    /// No such device or address.
    ENXIO = 6, "No such device or address";
    /// Argument list too long.
    E2BIG = 7, "Argument list too long";
    /// Exec format error.
    ENOEXEC = 8, "Exec format error";
    /// Bad file descriptor.
    EBADF = 9, "Bad file descriptor";
    /// No child processes.
    ECHILD = 10, "No child processes";
    /// Resource temporarily unavailable (non-blocking DQBUF with nothing done).
    EAGAIN = 11, "Resource temporarily unavailable";
    /// Out of memory.
    ENOMEM = 12, "Cannot allocate memory";
    /// Permission denied.
    EACCES = 13, "Permission denied";
    /// Bad address (a user pointer outside the process's memory).
    EFAULT = 14, "Bad address";
    /// Block device required.
    ENOTBLK = 15, "Block device required";
    /// Device or resource busy.
    EBUSY = 16, "Device or resource busy";
    /// Object already exists.
    EEXIST = 17, "File exists";
    /// Cross-device link.
    EXDEV = 18, "Invalid cross-device link";
    /// No such device.
    ENODEV = 19, "No such device";
    /// Not a directory.
    ENOTDIR = 20, "Not a directory";
    /// Is a directory.
    EISDIR = 21, "Is a directory";
    /// Invalid argument.
    EINVAL = 22, "Invalid argument";
    /// Too many open files in the system.
    ENFILE = 23, "Too many open files in system";
    /// Too many open files in this process.
    EMFILE = 24, "Too many open files";
    /// Inappropriate ioctl for device (an unknown ioctl).
    ENOTTY = 25, "Inappropriate ioctl for device";
    /// Text file busy.
    ETXTBSY = 26, "Text file busy";
    /// File too large.
    EFBIG = 27, "File too large";
    /// No space left.
    ENOSPC = 28, "No space left on device";
    /// Illegal seek.
    ESPIPE = 29, "Illegal seek";
    /// Read-only file system.
    EROFS = 30, "Read-only file system";
    /// Too many links.
    EMLINK = 31, "Too many links";
    /// Broken pipe (vb2: DQBUF after the last buffer was dequeued).
    EPIPE = 32, "Broken pipe";
    /// Numerical argument out of domain.
    EDOM = 33, "Numerical argument out of domain";
    /// Result out of range.
    ERANGE = 34, "Numerical result out of range";
    /// Resource deadlock would occur (the wound/wait "die" answer).
    EDEADLK = 35, "Resource deadlock avoided";
    /// File name too long.
    ENAMETOOLONG = 36, "File name too long";
    /// No locks available.
    ENOLCK = 37, "No locks available";
    /// Function not implemented.
    ENOSYS = 38, "Function not implemented";
    /// Directory not empty.
    ENOTEMPTY = 39, "Directory not empty";
    /// Too many levels of symbolic links.
    ELOOP = 40, "Too many levels of symbolic links";
    /// Invalid request descriptor (vb2: a request fd where none may be, or none where one must).
    EBADR = 53, "Invalid request descriptor";
    /// No data available.
    ENODATA = 61, "No data available";
    /// Timer expired (a fence wait that timed out, in the selftests' mock).
    ETIME = 62, "Timer expired";
    /// Protocol error.
    EPROTO = 71, "Protocol error";
    /// Bad message.
    EBADMSG = 74, "Bad message";
    /// Value too large for defined data type.
    EOVERFLOW = 75, "Value too large for defined data type";
    /// File descriptor in bad state (udmabuf: the memfd is not shmem).
    EBADFD = 77, "File descriptor in bad state";
    /// Illegal byte sequence.
    EILSEQ = 84, "Invalid or incomplete multibyte or wide character";
    /// Operation not supported.
    EOPNOTSUPP = 95, "Operation not supported";
    /// Connection reset by peer.
    ECONNRESET = 104, "Connection reset by peer";
    /// No buffer space available (vb2: CREATE_BUFS on a full queue).
    ENOBUFS = 105, "No buffer space available";
    /// Connection timed out.
    ETIMEDOUT = 110, "Connection timed out";
    /// Connection refused.
    ECONNREFUSED = 111, "Connection refused";
    /// Operation already in progress (the same acquire context locked a ww_mutex twice).
    EALREADY = 114, "Operation already in progress";
    /// Operation now in progress.
    EINPROGRESS = 115, "Operation now in progress";
    /// Disk quota exceeded.
    EDQUOT = 122, "Disk quota exceeded";
    /// Operation canceled.
    ECANCELED = 125, "Operation canceled";
    /// Kernel-internal: the call was interrupted and is to be restarted. User space sees `EINTR`.
    ERESTARTSYS = 512, "Interrupted system call (restart)";
}

impl Errno {
    /// The highest errno the kernel's `IS_ERR_VALUE` accepts (`MAX_ERRNO`).
    pub const MAX: i32 = 4095;

    /// Wraps a positive errno; `None` for zero or a negative number, which are not errors (an
    /// `Errno` never means "success", and a bad number is never quietly turned into another).
    pub const fn from_raw(raw: i32) -> Option<Errno> {
        if raw > 0 {
            Some(Errno(raw))
        } else {
            None
        }
    }

    /// The positive number (`EINVAL` is 22).
    pub fn raw(self) -> i32 {
        self.0
    }

    /// The kernel-internal negative return value (`-EINVAL`).
    pub fn to_kernel(self) -> i32 {
        -self.0
    }

    /// What user space sees for this error: the kernel turns `ERESTARTSYS` into `EINTR` on the
    /// way out of a system call that is not restarted.
    pub fn to_user(self) -> Errno {
        if self == Errno::ERESTARTSYS {
            Errno::EINTR
        } else {
            self
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({})", self.description()),
            None => write!(f, "errno {}", self.0),
        }
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.to_user().0)
    }
}

/// Implemented by every typed error of dmabuf: the errno Linux would return for it.
pub trait AsErrno {
    /// The errno a Linux system call would fail with for this error.
    fn errno(&self) -> Errno;
}

impl AsErrno for Errno {
    fn errno(&self) -> Errno {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_generic_linux_abi() {
        let table = [
            (Errno::EPERM, 1),
            (Errno::ENOENT, 2),
            (Errno::EINTR, 4),
            (Errno::EIO, 5),
            (Errno::EBADF, 9),
            (Errno::EAGAIN, 11),
            (Errno::ENOMEM, 12),
            (Errno::EFAULT, 14),
            (Errno::EBUSY, 16),
            (Errno::ENODEV, 19),
            (Errno::EINVAL, 22),
            (Errno::EMFILE, 24),
            (Errno::ENOTTY, 25),
            (Errno::EDEADLK, 35),
            (Errno::ETIME, 62),
            (Errno::EOVERFLOW, 75),
            (Errno::EBADFD, 77),
            (Errno::EALREADY, 114),
        ];
        for (e, n) in table {
            assert_eq!(e.raw(), n, "{e:?}");
            assert_eq!(Errno::from_raw(n), Some(e));
            assert_eq!(e.to_kernel(), -n);
        }
    }

    #[test]
    fn restartsys_reaches_user_space_as_eintr() {
        assert_eq!(Errno::ERESTARTSYS.to_user(), Errno::EINTR);
        let io: std::io::Error = Errno::ERESTARTSYS.into();
        assert_eq!(io.raw_os_error(), Some(4));
    }

    #[test]
    fn zero_and_negative_are_not_errnos() {
        assert_eq!(Errno::from_raw(0), None);
        assert_eq!(Errno::from_raw(-5), None);
    }

    #[test]
    fn esrch_and_the_vb2_errnos_print_by_name() {
        assert_eq!(Errno::ESRCH.to_string(), "ESRCH (No such process)");
        assert_eq!(format!("{:?}", Errno::from_raw(3).unwrap()), "ESRCH");
        for (e, n) in [
            (Errno::EPIPE, 32),
            (Errno::EBADR, 53),
            (Errno::ENOBUFS, 105),
        ] {
            assert_eq!(e.raw(), n);
            assert!(e.name().is_some());
        }
    }

    #[test]
    fn display_names_the_errno() {
        assert_eq!(Errno::EBUSY.to_string(), "EBUSY (Device or resource busy)");
        assert_eq!(
            format!("{:?}", Errno::from_raw(3000).unwrap()),
            "Errno(3000)"
        );
    }
}
