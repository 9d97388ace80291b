//! Passing an fd to another process: `SCM_RIGHTS` over a unix datagram socket.
//!
//! C side: `net/unix/af_unix.c`, `net/core/scm.c`; man pages `unix(7)` (abstract socket
//! names, `SCM_RIGHTS`), `sendmsg(2)`, `recvmsg(2)` (`MSG_CMSG_CLOEXEC`).
//!
//! # The concept
//!
//! Two processes that share no socket yet meet at an **abstract** unix address (a name that
//! starts with a NUL byte: no file is created, it disappears with the socket). The receiver
//! binds a datagram socket to a name unique to this call; the sender sends one byte with the fd
//! attached as `SCM_RIGHTS`; the kernel installs a new fd for the same open file in the
//! receiver's table when it receives. Both sockets are closed before the call returns, so the
//! only fds left behind are the sender's original and the receiver's new one.

use crate::process::Files;
use crate::real::RealLinux;
use crate::sys::errno;
use rustix::io::{IoSlice, IoSliceMut};
use rustix::net::{
    bind, recvmsg, sendmsg_addr, socket_with, AddressFamily, RecvAncillaryBuffer,
    RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
    SocketAddrUnix, SocketFlags, SocketType,
};
use seam::Fd;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use uapi::Errno;

/// Makes each meeting point's name unique within this process (the pid covers other processes).
/// Relaxed: only uniqueness matters, not ordering with other memory.
static NEXT: AtomicU64 = AtomicU64::new(0);

fn datagram_socket() -> Result<rustix::fd::OwnedFd, Errno> {
    socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(errno)
}

/// `sendmsg(SCM_RIGHTS)` of `fd` from `from` to `to`, `recvmsg` there; the receiver's new fd.
///
/// Errors: `EBADF` if `fd` is not open in `from` (the kernel's answer to the `sendmsg`), or what
/// creating, binding or receiving on the sockets failed with.
pub(crate) fn send_fd(from: &mut RealLinux, fd: Fd, to: &mut RealLinux) -> Result<Fd, Errno> {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("dmabuf-linux-{}-{n}", std::process::id()).into_bytes();

    let bind_name = name.clone();
    to.exec().run(move |files: &mut Files| {
        let sock = datagram_socket()?;
        let addr = SocketAddrUnix::new_abstract_name(&bind_name).map_err(errno)?;
        bind(&sock, &addr).map_err(errno)?;
        files.inbox = Some(sock);
        Ok(())
    })?;

    let sent = from.exec().run(move |files: &mut Files| {
        files.with(fd, |fd| {
            // Check the fd before the socket takes a number: if `fd` were closed, the socket
            // would get its number and be sent in its place.
            rustix::io::fcntl_getfd(fd).map_err(errno)?;
            let sock = datagram_socket()?;
            let addr = SocketAddrUnix::new_abstract_name(&name).map_err(errno)?;
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            let fds = [fd];
            if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                // Cannot happen: `space` is sized by `cmsg_space!` for exactly one fd.
                return Err(Errno::EIO);
            }
            let payload = [IoSlice::new(b"f")];
            sendmsg_addr(&sock, &addr, &payload, &mut control, SendFlags::empty())
                .map_err(errno)?;
            Ok(())
        })
    });

    to.exec().run(move |files: &mut Files| {
        let sock = files.inbox.take().ok_or(Errno::EIO)?;
        sent?;
        let mut byte = [0u8; 1];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut payload = [IoSliceMut::new(&mut byte)];
        recvmsg(&sock, &mut payload, &mut control, RecvFlags::CMSG_CLOEXEC).map_err(errno)?;
        let received = control.drain().find_map(|msg| match msg {
            RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        });
        let new = received.ok_or(Errno::EIO)?;
        Ok(files.insert(new))
    })
}
