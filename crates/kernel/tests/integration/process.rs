//! Processes and fd tables: lowest free fd, dup, close, CLOEXEC, SCM_RIGHTS, exit, mmap modes.

use kernel::{Kernel, Process};
use soc::{SocDesc, PAGE_SIZE};
use std::sync::Arc;
use uapi::ioctl::{
    MFD_ALLOW_SEALING, MFD_CLOEXEC, O_CLOEXEC, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE,
};
use uapi::{AsErrno, Errno};

fn boot() -> (Arc<Kernel>, Arc<Process>) {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let p = k.spawn();
    (k, p)
}

fn system_buf(p: &Process, len: u64, flags: u32) -> i32 {
    let heap = p.open_heap("system").unwrap();
    let fd = p.heap_alloc(heap, len, flags, 0).unwrap();
    p.close(heap).unwrap();
    fd
}

#[test]
fn test_new_process_has_stdio_and_fds_start_at_3() {
    let (_k, p) = boot();
    assert_eq!(p.fds(), [0, 1, 2]);
    assert_eq!(p.memfd_create("a", 0).unwrap(), 3);
}

#[test]
fn test_lowest_free_fd_is_reused() {
    let (_k, p) = boot();
    let a = p.memfd_create("a", 0).unwrap();
    let b = p.memfd_create("b", 0).unwrap();
    let c = p.memfd_create("c", 0).unwrap();
    assert_eq!((a, b, c), (3, 4, 5));
    p.close(b).unwrap();
    p.close(a).unwrap();
    assert_eq!(p.memfd_create("d", 0).unwrap(), 3);
    assert_eq!(p.memfd_create("e", 0).unwrap(), 4);
    assert_eq!(p.memfd_create("f", 0).unwrap(), 6);
}

#[test]
fn test_close_twice_is_ebadf() {
    let (_k, p) = boot();
    let fd = p.memfd_create("a", 0).unwrap();
    p.close(fd).unwrap();
    assert_eq!(p.close(fd).unwrap_err().errno(), Errno::EBADF);
    assert_eq!(p.close(-1).unwrap_err().errno(), Errno::EBADF);
    assert_eq!(p.close(9999).unwrap_err().errno(), Errno::EBADF);
    assert_eq!(p.dup(fd).unwrap_err().errno(), Errno::EBADF);
}

#[test]
fn test_dup_shares_the_file_and_clears_cloexec() {
    let (_k, p) = boot();
    let fd = p.memfd_create("a", MFD_CLOEXEC).unwrap();
    assert!(p.cloexec(fd).unwrap());
    let d = p.dup(fd).unwrap();
    assert_eq!(d, fd + 1);
    assert!(!p.cloexec(d).unwrap());
    assert!(Arc::ptr_eq(&p.file(fd).unwrap(), &p.file(d).unwrap()));
    p.pwrite(fd, 0, b"shared").unwrap();
    assert_eq!(p.pread(d, 0, 6).unwrap(), b"shared");
    // dup2 onto an open fd replaces it; onto itself only checks.
    let other = p.memfd_create("b", 0).unwrap();
    assert_eq!(p.dup2(fd, other).unwrap(), other);
    assert_eq!(p.pread(other, 0, 6).unwrap(), b"shared");
    assert_eq!(p.dup2(fd, fd).unwrap(), fd);
    assert_eq!(p.dup2(fd, -1).unwrap_err().errno(), Errno::EBADF);
}

#[test]
fn test_exec_closes_cloexec_fds_only() {
    let (_k, p) = boot();
    let keep = p.memfd_create("keep", 0).unwrap();
    let gone = p.memfd_create("gone", MFD_CLOEXEC).unwrap();
    let buf = system_buf(&p, PAGE_SIZE, O_RDWR | O_CLOEXEC);
    p.set_cloexec(keep, false).unwrap();
    p.exec().unwrap();
    assert_eq!(p.fds(), [0, 1, 2, keep]);
    assert_eq!(p.close(gone).unwrap_err().errno(), Errno::EBADF);
    assert_eq!(p.get_dma_buf(buf).unwrap_err().errno(), Errno::EBADF);
}

#[test]
fn test_fd_limit_is_emfile_and_the_failed_buffer_is_released() {
    let (k, p) = boot();
    let heap = p.open_heap("system").unwrap();
    p.set_max_fds(5);
    let fd = p.heap_alloc(heap, PAGE_SIZE, O_RDWR, 0).unwrap();
    assert_eq!(fd, 4);
    let before = k.soc().pages().stats().zones[0].free_pages;
    let e = p.heap_alloc(heap, 1 << 20, O_RDWR, 0).unwrap_err();
    assert_eq!(e.errno(), Errno::EMFILE);
    assert_eq!(
        k.soc().pages().stats().zones[0].free_pages,
        before,
        "the buffer was released"
    );
    assert_eq!(k.registry().len(), 1);
    assert_eq!(p.dup(fd).unwrap_err().errno(), Errno::EMFILE);
}

#[test]
fn test_get_dma_buf_on_a_memfd_is_einval_and_on_a_closed_fd_ebadf() {
    let (_k, p) = boot();
    let m = p.memfd_create("m", 0).unwrap();
    assert_eq!(p.get_dma_buf(m).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        p.get_dma_buf(0).unwrap_err().errno(),
        Errno::EINVAL,
        "stdin is no dma-buf"
    );
    assert_eq!(p.get_dma_buf(77).unwrap_err().errno(), Errno::EBADF);
    let b = system_buf(&p, PAGE_SIZE, O_RDWR);
    assert_eq!(p.get_dma_buf(b).unwrap().size(), PAGE_SIZE);
}

#[test]
fn test_send_fd_gives_the_receiver_its_own_reference() {
    let (k, a) = boot();
    let b = k.spawn();
    let fd = system_buf(&a, 2 * PAGE_SIZE, O_RDWR);
    let m = a
        .mmap(fd, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap();
    m.write(0, b"from a").unwrap();
    a.munmap(&m).unwrap();
    let buf = a.get_dma_buf(fd).unwrap();
    let refs = buf.ref_count();
    let got = a.send_fd(fd, &b).unwrap();
    assert_eq!(got, 3, "the receiver's own lowest free fd");
    assert_eq!(
        buf.ref_count(),
        refs,
        "the fd shares the open file (one file reference)"
    );
    a.close(fd).unwrap();
    drop(buf);
    // The receiver's fd keeps the buffer alive.
    assert_eq!(k.registry().len(), 1);
    let mb = b.mmap(got, 0, PAGE_SIZE, PROT_READ, true).unwrap();
    let mut out = [0u8; 6];
    mb.read(0, &mut out).unwrap();
    assert_eq!(&out, b"from a");
    // The sender's number means nothing any more; the receiver's is its own.
    assert_eq!(a.get_dma_buf(fd).unwrap_err().errno(), Errno::EBADF);
    b.close(got).unwrap();
    assert_eq!(k.registry().len(), 1, "the mapping still holds a reference");
    b.munmap(&mb).unwrap();
    assert_eq!(k.registry().len(), 0);
    assert_eq!(k.registry().stats().released, 1);
}

#[test]
fn test_send_fd_with_cloexec_and_bad_flags() {
    let (k, a) = boot();
    let b = k.spawn();
    let fd = a.memfd_create("m", 0).unwrap();
    let got = a.send_fd_flags(fd, &b, O_CLOEXEC).unwrap();
    assert!(b.cloexec(got).unwrap());
    assert_eq!(
        a.send_fd_flags(fd, &b, 0x4).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(a.send_fd(42, &b).unwrap_err().errno(), Errno::EBADF);
    b.set_max_fds(0);
    assert_eq!(a.send_fd(fd, &b).unwrap_err().errno(), Errno::EMFILE);
}

#[test]
fn test_released_exactly_once_across_processes() {
    let (k, a) = boot();
    let procs: Vec<_> = (0..4).map(|_| k.spawn()).collect();
    let fd = system_buf(&a, PAGE_SIZE, O_RDWR);
    let mut fds = Vec::new();
    for p in &procs {
        let f = a.send_fd(fd, p).unwrap();
        fds.push(p.dup(f).unwrap());
    }
    a.exit();
    for (p, f) in procs.iter().zip(&fds) {
        assert_eq!(k.registry().stats().released, 0);
        let _m = p.mmap(*f, 0, PAGE_SIZE, PROT_READ, true).unwrap();
        p.exit();
    }
    assert_eq!(k.registry().stats().released, 1);
    assert_eq!(k.registry().stats().exported, 1);
}

#[test]
fn test_exit_closes_everything_and_unmaps() {
    let (k, p) = boot();
    let fd = system_buf(&p, PAGE_SIZE, O_RDWR);
    let m = p
        .mmap(fd, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap();
    let mem = p.memfd_create("m", MFD_ALLOW_SEALING).unwrap();
    p.ftruncate(mem, PAGE_SIZE).unwrap();
    let mm = p
        .mmap(mem, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap();
    mm.write(0, b"x").unwrap();
    p.exit();
    assert!(!p.is_alive());
    assert_eq!(p.fds(), Vec::<i32>::new());
    assert_eq!(p.mapping_count(), 0);
    assert_eq!(k.registry().len(), 0, "the buffer was released");
    assert_eq!(m.write(0, b"late").unwrap_err().errno(), Errno::EFAULT);
    assert_eq!(
        mm.read(0, &mut [0u8; 1]).unwrap_err().errno(),
        Errno::EFAULT
    );
    assert_eq!(
        p.memfd_create("x", 0).unwrap_err().errno(),
        Errno::ESRCH,
        "ESRCH"
    );
    assert!(k.processes().is_empty());
    p.exit();
}

#[test]
fn test_mmap_enforces_the_fd_access_mode() {
    let (_k, p) = boot();
    let ro = system_buf(&p, PAGE_SIZE, O_RDONLY);
    let e = p
        .mmap(ro, 0, PAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EACCES);
    let m = p.mmap(ro, 0, PAGE_SIZE, PROT_READ, true).unwrap();
    assert_eq!(m.write(0, b"no").unwrap_err().errno(), Errno::EFAULT);
    let wo = system_buf(&p, PAGE_SIZE, uapi::ioctl::O_WRONLY);
    assert_eq!(
        p.mmap(wo, 0, PAGE_SIZE, PROT_READ, true)
            .unwrap_err()
            .errno(),
        Errno::EACCES
    );
    let rw = system_buf(&p, 2 * PAGE_SIZE, O_RDWR);
    assert_eq!(
        p.mmap(rw, 1, PAGE_SIZE, PROT_READ, true)
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    assert_eq!(
        p.mmap(rw, PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ, true)
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    assert_eq!(
        p.mmap(0, 0, PAGE_SIZE, PROT_READ, true)
            .unwrap_err()
            .errno(),
        Errno::ENODEV
    );
    let m2 = p
        .mmap(rw, PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap();
    assert_eq!(
        m2.write(PAGE_SIZE - 1, b"ab").unwrap_err().errno(),
        Errno::EFAULT
    );
    p.munmap(&m2).unwrap();
    assert_eq!(p.munmap(&m2).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        m2.read(0, &mut [0u8; 1]).unwrap_err().errno(),
        Errno::EFAULT
    );
}
