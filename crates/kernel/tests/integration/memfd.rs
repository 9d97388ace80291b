//! memfd: create flags, pwrite/pread, seals and their enforcement, hugetlb, zero-filled pages.

use kernel::memfd::{HPAGE_SIZE, MFD_HUGE_2MB};
use kernel::{FileObject, Kernel, Process};
use soc::{SocDesc, PAGE_SIZE};
use std::sync::Arc;
use uapi::ioctl::*;
use uapi::{AsErrno, Errno};

fn boot() -> (Arc<Kernel>, Arc<Process>) {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let p = k.spawn();
    (k, p)
}

#[test]
fn test_memfd_create_flags_and_name() {
    let (_k, p) = boot();
    assert_eq!(
        p.memfd_create("x", 0x100).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(
        p.memfd_create("x", MFD_HUGE_2MB).unwrap_err().errno(),
        Errno::EINVAL,
        "size code without HUGETLB"
    );
    assert_eq!(
        p.memfd_create(&"n".repeat(250), 0).unwrap_err().errno(),
        Errno::EINVAL
    );
    let fd = p.memfd_create(&"n".repeat(249), MFD_CLOEXEC).unwrap();
    assert!(p.cloexec(fd).unwrap());
    let f = p.file(fd).unwrap();
    assert!(f.readable() && f.writable());
    assert!(f.as_memfd().unwrap().name().starts_with("memfd:n"));
    assert_eq!(p.get_seals(fd).unwrap(), F_SEAL_SEAL, "sealing not allowed");
    assert_eq!(p.get_seals(0).unwrap_err().errno(), Errno::EINVAL);
}

#[test]
fn test_pwrite_pread_holes_and_eof() {
    let (k, p) = boot();
    let fd = p.memfd_create("m", 0).unwrap();
    assert_eq!(p.pread(fd, 0, 10).unwrap(), Vec::<u8>::new());
    p.ftruncate(fd, 3 * PAGE_SIZE).unwrap();
    let m = p.file(fd).unwrap().as_memfd().unwrap().clone();
    assert_eq!(m.resident_bytes(), 0, "ftruncate allocates nothing");
    assert_eq!(p.pwrite(fd, PAGE_SIZE + 10, b"hello").unwrap(), 5);
    assert_eq!(m.resident_bytes(), PAGE_SIZE);
    let all = p.pread(fd, 0, 4 * PAGE_SIZE as usize).unwrap();
    assert_eq!(all.len() as u64, 3 * PAGE_SIZE, "short read at EOF");
    assert!(all[..PAGE_SIZE as usize + 10].iter().all(|&b| b == 0));
    assert_eq!(&all[PAGE_SIZE as usize + 10..][..5], b"hello");
    assert_eq!(
        m.resident_bytes(),
        PAGE_SIZE,
        "holes read as zeros and stay holes"
    );
    // Writing past the end grows the file.
    p.pwrite(fd, 5 * PAGE_SIZE - 2, b"tail").unwrap();
    assert_eq!(m.size(), 5 * PAGE_SIZE + 2);
    // Shrinking frees the pages past the end and zeroes the tail of the last one.
    let free = k.soc().pages().stats().zones[0].free_pages;
    p.ftruncate(fd, PAGE_SIZE + 12).unwrap();
    assert_eq!(k.soc().pages().stats().zones[0].free_pages, free + 2);
    p.ftruncate(fd, 2 * PAGE_SIZE).unwrap();
    assert_eq!(
        p.pread(fd, PAGE_SIZE + 10, 5).unwrap(),
        [b'h', b'e', 0, 0, 0]
    );
}

#[test]
fn test_file_mode_checks() {
    let (_k, p) = boot();
    let fd = p.memfd_create("m", MFD_ALLOW_SEALING).unwrap();
    let m = p.file(fd).unwrap().as_memfd().unwrap().clone();
    let ro = p.install(FileObject::Memfd(m.clone()), O_RDONLY).unwrap();
    let wo = p.install(FileObject::Memfd(m), O_WRONLY).unwrap();
    assert_eq!(p.pwrite(ro, 0, b"x").unwrap_err().errno(), Errno::EBADF);
    assert_eq!(p.ftruncate(ro, 10).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        p.add_seals(ro, F_SEAL_GROW).unwrap_err().errno(),
        Errno::EPERM
    );
    assert_eq!(p.pread(wo, 0, 1).unwrap_err().errno(), Errno::EBADF);
    assert_eq!(
        p.pwrite(0, 0, b"x").unwrap_err().errno(),
        Errno::EINVAL,
        "a tty is no memfd"
    );
    assert_eq!(p.pwrite(99, 0, b"x").unwrap_err().errno(), Errno::EBADF);
}

#[test]
fn test_seals_need_allow_sealing_and_stop_at_f_seal_seal() {
    let (_k, p) = boot();
    let no = p.memfd_create("no", 0).unwrap();
    assert_eq!(
        p.add_seals(no, F_SEAL_SHRINK).unwrap_err().errno(),
        Errno::EPERM
    );
    let fd = p.memfd_create("yes", MFD_ALLOW_SEALING).unwrap();
    assert_eq!(p.add_seals(fd, 0x1000).unwrap_err().errno(), Errno::EINVAL);
    p.add_seals(fd, F_SEAL_SHRINK).unwrap();
    p.add_seals(fd, F_SEAL_SEAL).unwrap();
    assert_eq!(
        p.add_seals(fd, F_SEAL_GROW).unwrap_err().errno(),
        Errno::EPERM
    );
    assert_eq!(p.get_seals(fd).unwrap(), F_SEAL_SHRINK | F_SEAL_SEAL);
}

#[test]
fn test_shrink_grow_and_write_seals_are_enforced() {
    let (_k, p) = boot();
    let fd = p.memfd_create("m", MFD_ALLOW_SEALING).unwrap();
    p.ftruncate(fd, 2 * PAGE_SIZE).unwrap();
    p.add_seals(fd, F_SEAL_SHRINK).unwrap();
    assert_eq!(
        p.ftruncate(fd, PAGE_SIZE).unwrap_err().errno(),
        Errno::EPERM
    );
    p.ftruncate(fd, 3 * PAGE_SIZE).unwrap();
    p.add_seals(fd, F_SEAL_GROW).unwrap();
    assert_eq!(
        p.ftruncate(fd, 4 * PAGE_SIZE).unwrap_err().errno(),
        Errno::EPERM
    );
    assert_eq!(
        p.pwrite(fd, 3 * PAGE_SIZE - 1, b"xy").unwrap_err().errno(),
        Errno::EPERM
    );
    p.pwrite(fd, 3 * PAGE_SIZE - 2, b"xy").unwrap();
    p.ftruncate(fd, 3 * PAGE_SIZE).unwrap();
    p.add_seals(fd, F_SEAL_WRITE).unwrap();
    assert_eq!(p.pwrite(fd, 0, b"x").unwrap_err().errno(), Errno::EPERM);
    assert_eq!(
        p.mmap(fd, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, true)
            .unwrap_err()
            .errno(),
        Errno::EPERM
    );
    let m = p.mmap(fd, 0, PAGE_SIZE, PROT_READ, true).unwrap();
    let mut b = [0u8; 1];
    m.read(0, &mut b).unwrap();
}

#[test]
fn test_f_seal_write_with_a_writable_mapping_is_ebusy() {
    let (_k, p) = boot();
    let fd = p.memfd_create("m", MFD_ALLOW_SEALING).unwrap();
    p.ftruncate(fd, PAGE_SIZE).unwrap();
    let m = p
        .mmap(fd, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap();
    m.write(0, b"mapped").unwrap();
    assert_eq!(p.pread(fd, 0, 6).unwrap(), b"mapped");
    assert_eq!(
        p.add_seals(fd, F_SEAL_WRITE).unwrap_err().errno(),
        Errno::EBUSY
    );
    // FUTURE_WRITE is allowed and leaves the existing mapping writable.
    p.add_seals(fd, F_SEAL_FUTURE_WRITE).unwrap();
    m.write(0, b"still").unwrap();
    assert_eq!(p.pwrite(fd, 0, b"x").unwrap_err().errno(), Errno::EPERM);
    p.munmap(&m).unwrap();
    p.add_seals(fd, F_SEAL_WRITE).unwrap();
}

#[test]
fn test_mapping_past_eof_is_sigbus() {
    let (_k, p) = boot();
    let fd = p.memfd_create("m", 0).unwrap();
    p.ftruncate(fd, PAGE_SIZE + 1).unwrap();
    let m = p
        .mmap(fd, 0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap();
    m.write(2 * PAGE_SIZE - 1, b"x").unwrap();
    assert_eq!(
        m.write(2 * PAGE_SIZE, b"x").unwrap_err().errno(),
        Errno::EFAULT
    );
    assert_eq!(
        p.mmap(fd, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, false)
            .unwrap_err()
            .errno(),
        Errno::EOPNOTSUPP
    );
}

#[test]
fn test_hugetlb_memfd_rules() {
    let (_k, p) = boot();
    let fd = p
        .memfd_create("huge", MFD_HUGETLB | MFD_ALLOW_SEALING)
        .unwrap();
    assert_eq!(
        p.ftruncate(fd, PAGE_SIZE).unwrap_err().errno(),
        Errno::EINVAL
    );
    p.ftruncate(fd, 2 * HPAGE_SIZE).unwrap();
    assert_eq!(
        p.pwrite(fd, 0, b"x").unwrap_err().errno(),
        Errno::EINVAL,
        "no write(2) on hugetlbfs"
    );
    assert_eq!(
        p.mmap(fd, PAGE_SIZE, PAGE_SIZE, PROT_READ, true)
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    let m = p
        .mmap(fd, HPAGE_SIZE, HPAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap();
    m.write(5, b"huge").unwrap();
    assert_eq!(p.pread(fd, HPAGE_SIZE + 5, 4).unwrap(), b"huge");
    let memfd = p.file(fd).unwrap().as_memfd().unwrap().clone();
    assert_eq!(memfd.resident_bytes(), HPAGE_SIZE, "one 2 MiB page");
    assert!(p.memfd_create("h2", MFD_HUGETLB | MFD_HUGE_2MB).is_ok());
}

#[test]
fn test_new_pages_are_zero_even_after_dirty_reuse() {
    let (_k, p) = boot();
    for round in 0..8 {
        let fd = p.memfd_create("m", 0).unwrap();
        p.ftruncate(fd, 4 * PAGE_SIZE).unwrap();
        assert!(
            p.pread(fd, 0, 4 * PAGE_SIZE as usize)
                .unwrap()
                .iter()
                .all(|&b| b == 0),
            "round {round}"
        );
        let m = p
            .mmap(fd, 0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, true)
            .unwrap();
        m.write(0, &vec![0xffu8; 4 * PAGE_SIZE as usize]).unwrap();
        p.munmap(&m).unwrap();
        p.close(fd).unwrap();
    }
}
