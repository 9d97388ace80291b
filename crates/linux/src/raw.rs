//! The system calls a program can make on any fd, unfiltered: `ioctl(2)` with an arbitrary
//! request number and argument bytes (or a null argument pointer), `read(2)`/`write(2)`,
//! `fstat(2)`, `fcntl(2)` `F_GETFL`/`F_GETFD`, and `readlink("/proc/self/fd/N")`.
//!
//! C side: `fs/ioctl.c` (`do_vfs_ioctl`, then the file's `unlocked_ioctl`), `fs/read_write.c`,
//! `fs/stat.c`, `fs/fcntl.c`, `fs/proc/fd.c`.
//!
//! # The concept
//!
//! The typed calls of [`crate::sys`] can only say what their structs can say. A conformance
//! case about what the kernel does with a *wrong* request (a size that is not the struct's, a
//! direction the driver does not expect, a command number nobody defined, a null pointer) needs
//! the request as a plain number and the argument as plain bytes, which is what
//! [`ioctl_bytes`] passes.
//!
//! # Rules
//!
//! 1. The argument buffer handed to the kernel is at least `_IOC_SIZE(request)` bytes (the
//!    caller's bytes, then zeros), 8-byte aligned, so a driver that copies the size the request
//!    announces never reads or writes outside it; what the kernel wrote back is copied into the
//!    caller's bytes (as many as the caller gave).
//! 2. `None` passes a null pointer: the kernel's `copy_from_user` faults and the driver answers
//!    (usually `EFAULT`).
//! 3. Pointers *inside* the argument bytes are passed as they are. The kernel reads and writes
//!    user memory only through `copy_{from,to}_user`, which fail with `EFAULT` on an address
//!    that is not mapped; the suite never forges one that is.
//!
//! # Why `unsafe` is allowed here
//!
//! `ioctl(2)` with an arbitrary request is `unsafe` in rustix: nothing ties the number to a
//! type. Rule 1 bounds what the kernel may touch through the pointer; each block says so.
#![allow(unsafe_code)]

use crate::sys::errno;
use rustix::fd::BorrowedFd;
use rustix::ioctl::{ioctl, Ioctl, IoctlOutput, Opcode};
use std::ffi::c_void;
use uapi::ioctl::ioc_size;
use uapi::Errno;

/// An ioctl with a request number chosen at run time and a pointer (possibly null).
struct Raw {
    request: u32,
    arg: *mut c_void,
}

// SAFETY: `ioctl_bytes` makes `arg` either null or point at a buffer of at least the size the
// request announces (rule 1), alive across the call; the output is the plain return value.
unsafe impl Ioctl for Raw {
    type Output = i32;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.request
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.arg
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<i32> {
        Ok(out)
    }
}

/// `ioctl(fd, request, arg)` with `arg` pointing at a copy of `bytes` (rule 1), or null for
/// `None` (rule 2); returns the ioctl's return value. What the kernel wrote into the argument
/// is copied back into `bytes`.
///
/// Errors: the kernel's errno, unchanged.
pub fn ioctl_bytes(
    fd: BorrowedFd<'_>,
    request: u32,
    bytes: Option<&mut [u8]>,
) -> Result<i32, Errno> {
    match bytes {
        None => {
            let call = Raw {
                request,
                arg: std::ptr::null_mut(),
            };
            // SAFETY: a null pointer: the kernel dereferences nothing of ours (rule 2).
            unsafe { ioctl(fd, call) }.map_err(errno)
        }
        Some(bytes) => {
            let len = bytes.len().max(ioc_size(request));
            let mut buf = vec![0u64; len.div_ceil(8).max(1)];
            // SAFETY (of the byte view): `buf` holds at least `len` initialised bytes.
            let view = u64s_as_bytes(&mut buf);
            view[..bytes.len()].copy_from_slice(bytes);
            let call = Raw {
                request,
                arg: view.as_mut_ptr().cast(),
            };
            // SAFETY: the pointer covers `_IOC_SIZE(request)` bytes or more (rule 1) and `buf`
            // outlives the call.
            let r = unsafe { ioctl(fd, call) }.map_err(errno);
            let view = u64s_as_bytes(&mut buf);
            bytes.copy_from_slice(&view[..bytes.len()]);
            r
        }
    }
}

/// The bytes of a `u64` buffer (native order), for an 8-byte aligned argument.
fn u64s_as_bytes(buf: &mut [u64]) -> &mut [u8] {
    let len = std::mem::size_of_val(buf);
    // SAFETY: any initialised `u64` memory is valid as bytes; the length is the same memory's,
    // and the borrow of `buf` is carried over to the result.
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), len) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;

    #[test]
    fn unknown_request_on_a_memfd_is_enotty_and_null_arg_is_passed() {
        let m = rustix::fs::memfd_create("raw", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let mut arg = [0u8; 8];
        assert_eq!(
            ioctl_bytes(m.as_fd(), 0xdead_0001, Some(&mut arg)),
            Err(Errno::ENOTTY)
        );
        assert_eq!(
            ioctl_bytes(m.as_fd(), 0x4008_6200, None),
            Err(Errno::ENOTTY)
        );
    }

    #[test]
    fn fionread_writes_back_into_the_caller_bytes() {
        // FIONREAD (0x541B) on a socket with 3 bytes queued writes an int: 3.
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (r, w) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        rustix::io::write(&w, b"abc").unwrap();
        let mut arg = [0xffu8; 4];
        assert_eq!(ioctl_bytes(r.as_fd(), 0x541B, Some(&mut arg)), Ok(0));
        assert_eq!(i32::from_ne_bytes(arg), 3);
    }
}
