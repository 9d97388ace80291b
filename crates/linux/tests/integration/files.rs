//! memfds, seals, mappings and fds on the running kernel (no dma-buf device needed), and the
//! dma-buf calls that are skipped without a heap.

use linux::RealLinux;
use seam::{
    Errno, Mapping, Uapi, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START, F_SEAL_SHRINK, MFD_ALLOW_SEALING,
    O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE, SEEK_END,
};

#[test]
fn memfd_mapping_reads_writes_and_checks_bounds() {
    let _serial = crate::serial();
    let mut p = RealLinux::new();
    let m = p.memfd_create("map", 0).unwrap();
    p.ftruncate(m, 8192).unwrap();
    let map = p.mmap(m, 0, 8192, PROT_READ | PROT_WRITE, true).unwrap();
    map.write(4094, b"edge").unwrap();
    assert_eq!(p.pread(m, 4094, 4).unwrap(), b"edge");
    let mut past = [0u8; 2];
    assert_eq!(map.read(8191, &mut past), Err(Errno::EFAULT));
    assert_eq!(map.write(u64::MAX, b"x"), Err(Errno::EFAULT));
    let ro = p.mmap(m, 4096, 4096, PROT_READ, true).unwrap();
    assert_eq!(ro.write(0, b"x"), Err(Errno::EACCES));
    p.close(m).unwrap();
    // The mappings hold the file: still readable after close.
    let mut got = [0u8; 2];
    ro.read(0, &mut got).unwrap();
    assert_eq!(&got, b"ge");
}

#[test]
fn errnos_come_from_the_kernel() {
    let _serial = crate::serial();
    let mut p = RealLinux::new();
    let m = p.memfd_create("errs", MFD_ALLOW_SEALING).unwrap();
    assert_eq!(p.memfd_create("bad", 0x100), Err(Errno::EINVAL));
    assert_eq!(
        p.mmap(m, 0, 0, PROT_READ, true).map(|_| ()),
        Err(Errno::EINVAL)
    );
    p.ftruncate(m, 4096).unwrap();
    p.add_seals(m, F_SEAL_SHRINK).unwrap();
    assert_eq!(p.ftruncate(m, 0), Err(Errno::EPERM));
    assert_eq!(p.lseek(m, 0, SEEK_END), Ok(4096));
    assert_eq!(p.lseek(m, 0, 99), Err(Errno::EINVAL));
    assert_eq!(
        p.dma_buf_sync(m, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ),
        Err(Errno::ENOTTY)
    );
    assert_eq!(p.export_sync_file(m, 1), Err(Errno::ENOTTY));
    p.close(m).unwrap();
    assert_eq!(p.lseek(m, 0, 99), Err(Errno::EBADF));
    assert_eq!(p.fdinfo(m), Err(Errno::EBADF));
    assert_eq!(p.close(-1), Err(Errno::EBADF));
}

#[test]
fn closing_the_handle_closes_its_fds() {
    let _serial = crate::serial();
    let mut p = RealLinux::new();
    let m = p.memfd_create("owned", 0).unwrap();
    assert!(p.fdinfo(m).is_ok());
    drop(p);
    let mut q = RealLinux::new();
    // Not q's to close, and no longer open: the kernel says EBADF for the number.
    assert_eq!(q.lseek(m, 0, SEEK_END), Err(Errno::EBADF));
}

#[test]
fn heap_allocation_or_a_printed_skip() {
    let _serial = crate::serial();
    let mut p = RealLinux::new();
    let heap = match p.open_heap("system") {
        Ok(fd) => fd,
        Err(e) => {
            println!("SKIPPED heap_allocation_or_a_printed_skip: no /dev/dma_heap/system ({e})");
            return;
        }
    };
    let buf = p.heap_alloc(heap, 100, O_RDWR | O_CLOEXEC, 0).unwrap();
    assert_eq!(p.lseek(buf, 0, SEEK_END), Ok(4096));
    p.close(buf).unwrap();
    p.close(heap).unwrap();
}

#[test]
fn udmabuf_or_a_printed_skip() {
    let _serial = crate::serial();
    let mut p = RealLinux::new();
    if !p.has_udmabuf() {
        println!("SKIPPED udmabuf_or_a_printed_skip: no /dev/udmabuf");
        assert!(p.udmabuf_create(0, 0, 4096, 0).is_err());
        return;
    }
    let m = p.memfd_create("u", MFD_ALLOW_SEALING).unwrap();
    p.ftruncate(m, 4096).unwrap();
    p.add_seals(m, F_SEAL_SHRINK).unwrap();
    let u = p.udmabuf_create(m, 0, 4096, 0).unwrap();
    assert_eq!(p.lseek(u, 0, SEEK_END), Ok(4096));
}
