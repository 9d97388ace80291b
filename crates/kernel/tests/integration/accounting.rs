//! Per-process dma-buf accounting (RSS and PSS, as Android's dmabuf tools compute them).

use kernel::{Kernel, Process, ProcessDmaBufUsage};
use soc::{SocDesc, PAGE_SIZE};
use std::sync::Arc;
use uapi::ioctl::{O_CLOEXEC, O_RDWR, PROT_READ};

fn system_buf(p: &Process, len: u64) -> i32 {
    let heap = p.open_heap("system").unwrap();
    let fd = p.heap_alloc(heap, len, O_RDWR | O_CLOEXEC, 0).unwrap();
    p.close(heap).unwrap();
    fd
}

fn usage(k: &Kernel, p: &Process) -> ProcessDmaBufUsage {
    k.dmabuf_usage_of(p.pid()).unwrap()
}

#[test]
fn test_two_processes_sharing_a_buffer_each_pay_half_pss_and_whole_rss() {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let (a, b) = (k.spawn(), k.spawn());
    let shared = system_buf(&a, 4 * PAGE_SIZE);
    let private = system_buf(&a, 2 * PAGE_SIZE);
    a.send_fd(shared, &b).unwrap();

    let ua = usage(&k, &a);
    assert_eq!(ua.rss, 6 * PAGE_SIZE);
    assert_eq!(ua.pss(), 2 * PAGE_SIZE + 2 * PAGE_SIZE);
    let ub = usage(&k, &b);
    assert_eq!(ub.rss, 4 * PAGE_SIZE);
    assert_eq!(ub.pss(), 2 * PAGE_SIZE);
    assert_eq!(ub.buffers.len(), 1);
    assert_eq!(ub.buffers[0].holders, 2);
    assert_eq!(ub.buffers[0].exp_name, "system");
    // The PSS of all processes adds up to the held memory.
    let all = k.dmabuf_usage();
    assert_eq!(all.len(), 2);
    assert_eq!(all.iter().map(|u| u.pss()).sum::<u64>(), 6 * PAGE_SIZE);

    // Once `a` lets go of the shared buffer, `b` pays for all of it.
    a.close(shared).unwrap();
    assert_eq!(usage(&k, &b).pss(), 4 * PAGE_SIZE);
    assert_eq!(usage(&k, &a).rss, 2 * PAGE_SIZE);
    a.close(private).unwrap();
    assert_eq!(usage(&k, &a).rss, 0);
    assert_eq!(usage(&k, &a).pss(), 0);
}

#[test]
fn test_a_buffer_held_only_by_a_mapping_after_close_is_still_counted() {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let (a, b) = (k.spawn(), k.spawn());
    let fd = system_buf(&a, 3 * PAGE_SIZE);
    let theirs = a.send_fd(fd, &b).unwrap();
    let map = b.mmap(theirs, 0, 3 * PAGE_SIZE, PROT_READ, true).unwrap();
    b.close(theirs).unwrap();

    let ub = usage(&k, &b);
    assert_eq!(ub.rss, 3 * PAGE_SIZE);
    assert_eq!((ub.buffers[0].fds, ub.buffers[0].maps), (0, 1));
    assert_eq!(ub.buffers[0].holders, 2);
    // 3 pages over 2 holders: a page and a half each, not rounded per process below it.
    assert_eq!(ub.pss(), 3 * PAGE_SIZE / 2);

    b.munmap(&map).unwrap();
    assert_eq!(usage(&k, &b).rss, 0);
    assert_eq!(usage(&k, &a).pss(), 3 * PAGE_SIZE);
}

#[test]
fn test_dup_and_map_of_one_buffer_count_it_once() {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let a = k.spawn();
    let fd = system_buf(&a, 2 * PAGE_SIZE);
    let again = a.dup(fd).unwrap();
    let _m1 = a.mmap(fd, 0, PAGE_SIZE, PROT_READ, true).unwrap();
    let _m2 = a
        .mmap(again, PAGE_SIZE, PAGE_SIZE, PROT_READ, true)
        .unwrap();

    let ua = usage(&k, &a);
    assert_eq!(ua.rss, 2 * PAGE_SIZE);
    assert_eq!(ua.pss(), 2 * PAGE_SIZE);
    assert_eq!(ua.buffers.len(), 1);
    assert_eq!((ua.buffers[0].fds, ua.buffers[0].maps), (2, 2));
    assert_eq!(ua.buffers[0].holders, 1);
}

#[test]
fn test_an_exited_process_holds_nothing_and_is_not_listed() {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let (a, b): (Arc<Process>, Arc<Process>) = (k.spawn(), k.spawn());
    let fd = system_buf(&a, PAGE_SIZE);
    a.send_fd(fd, &b).unwrap();
    a.exit();
    assert!(k.dmabuf_usage_of(a.pid()).is_none());
    assert_eq!(usage(&k, &b).pss(), PAGE_SIZE);
}
