//! Spawned "processes": a thread with its own fd table (`unshare(CLONE_FILES)`), and fd passing
//! with `SCM_RIGHTS`.

use linux::RealLinux;
use seam::{Errno, Uapi, SEEK_END};

#[test]
fn a_spawned_process_has_its_own_fd_table() {
    let _serial = crate::serial();
    let mut p = RealLinux::new();
    let m = p.memfd_create("mine", 0).unwrap();
    let mut other = p.spawn_process().unwrap();
    assert_eq!(other.lseek(m, 0, SEEK_END), Err(Errno::EBADF));
    assert_eq!(other.fdinfo(m), Err(Errno::EBADF));
    let theirs = other.memfd_create("theirs", 0).unwrap();
    other.ftruncate(theirs, 100).unwrap();
    assert_eq!(other.lseek(theirs, 0, SEEK_END), Ok(100));
    p.close(m).unwrap();
}

#[test]
fn send_fd_shares_the_open_file() {
    let _serial = crate::serial();
    let mut p = RealLinux::new();
    let m = p.memfd_create("sent", 0).unwrap();
    p.pwrite(m, 0, b"across").unwrap();
    let mut other = p.spawn_process().unwrap();
    let theirs = p.send_fd(m, &mut other).unwrap();
    p.close(m).unwrap();
    assert_eq!(other.pread(theirs, 0, 6).unwrap(), b"across");
    let back = other.send_fd(theirs, &mut p).unwrap();
    assert_eq!(p.lseek(back, 0, SEEK_END), Ok(6));
    let closed = p.memfd_create("closed", 0).unwrap();
    p.close(closed).unwrap();
    assert_eq!(p.send_fd(closed, &mut other), Err(Errno::EBADF));
}
