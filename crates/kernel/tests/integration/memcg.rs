//! Memory cgroups charged with dma-buf heap memory: ENOMEM at the limit, charge transfer from
//! an allocator service to its client, uncharge at release.

use kernel::{Kernel, Process};
use soc::{SocDesc, PAGE_SIZE};
use std::sync::Arc;
use uapi::ioctl::{O_CLOEXEC, O_RDWR, PROT_READ};
use uapi::{AsErrno, Errno};

const LIMIT: u64 = 8 * PAGE_SIZE;

/// Free pages over all zones.
fn free_pages(k: &Kernel) -> u64 {
    k.soc()
        .pages()
        .stats()
        .zones
        .iter()
        .map(|z| z.free_pages)
        .sum()
}

fn alloc(p: &Process, len: u64) -> Result<i32, dmabuf::DmaBufError> {
    let heap = p.open_heap("system").unwrap();
    let r = p.heap_alloc(heap, len, O_RDWR | O_CLOEXEC, 0);
    p.close(heap).unwrap();
    r
}

/// A kernel with a process in group "limited" (memory.max = LIMIT).
fn limited() -> (Arc<Kernel>, Arc<Process>) {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let p = k.spawn();
    let cg = k.create_memcg("limited").unwrap();
    cg.attach(&p).unwrap();
    cg.set_max(Some(LIMIT)).unwrap();
    (k, p)
}

#[test]
fn test_allocation_past_the_memcg_limit_is_enomem_and_exactly_at_it_succeeds() {
    let (k, p) = limited();
    let cg = p.memcg();
    let free_before = free_pages(&k);
    let a = alloc(&p, LIMIT - PAGE_SIZE).unwrap();
    let err = alloc(&p, 2 * PAGE_SIZE).unwrap_err();
    assert_eq!(err.errno(), Errno::ENOMEM);
    let msg = err.to_string();
    assert!(
        msg.contains("ENOMEM") && msg.contains("memory.max"),
        "{msg}"
    );
    assert_eq!(cg.failcnt(), 1);
    assert_eq!(cg.current(), LIMIT - PAGE_SIZE);
    // The refused buffer was released: only the first one's memory is gone.
    assert_eq!(
        free_before - free_pages(&k),
        (LIMIT - PAGE_SIZE) / PAGE_SIZE
    );
    // Up to the limit exactly is fine; then even one page more is not (a sub-page length
    // is charged as the whole page it rounds to).
    let b = alloc(&p, PAGE_SIZE).unwrap();
    assert_eq!(cg.current(), LIMIT);
    assert_eq!(alloc(&p, 1).unwrap_err().errno(), Errno::ENOMEM);
    // Another group, or the root, is not limited by it.
    let other = k.spawn();
    alloc(&other, 4 * LIMIT).unwrap();
    assert_eq!(cg.current(), LIMIT);
    assert_eq!(k.root_memcg().current(), 4 * LIMIT);
    p.close(a).unwrap();
    p.close(b).unwrap();
    assert_eq!(cg.current(), 0);
}

#[test]
fn test_freeing_uncharges_when_the_last_reference_goes_not_at_close() {
    let (_k, p) = limited();
    let cg = p.memcg();
    let fd = alloc(&p, LIMIT).unwrap();
    let map = p.mmap(fd, 0, LIMIT, PROT_READ, true).unwrap();
    p.close(fd).unwrap();
    // The mapping still holds the buffer: still charged, still at the limit.
    assert_eq!(cg.current(), LIMIT);
    assert_eq!(alloc(&p, PAGE_SIZE).unwrap_err().errno(), Errno::ENOMEM);
    p.munmap(&map).unwrap();
    assert_eq!(cg.current(), 0);
    // memory.peak keeps the high-water mark after the release.
    assert_eq!(cg.peak(), LIMIT);
    let again = alloc(&p, LIMIT).unwrap();
    assert_eq!(cg.current(), LIMIT);
    p.close(again).unwrap();
}

#[test]
fn test_charge_transfer_moves_the_charge_from_service_to_client() {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let (service, client) = (k.spawn(), k.spawn());
    let (svc_cg, app_cg) = (
        k.create_memcg("allocator").unwrap(),
        k.create_memcg("app").unwrap(),
    );
    svc_cg.attach(&service).unwrap();
    app_cg.attach(&client).unwrap();
    svc_cg.set_max(Some(LIMIT)).unwrap();
    app_cg.set_max(Some(LIMIT)).unwrap();

    let fd = alloc(&service, LIMIT).unwrap();
    assert_eq!(
        alloc(&service, PAGE_SIZE).unwrap_err().errno(),
        Errno::ENOMEM
    );
    let theirs = service.send_fd_transfer_charge(fd, &client).unwrap();
    service.close(fd).unwrap();
    assert_eq!((svc_cg.current(), app_cg.current()), (0, LIMIT));
    assert!(Arc::ptr_eq(
        &client.dma_buf_memcg(theirs).unwrap().unwrap(),
        &app_cg
    ));
    // The service can allocate again; the client, now at its limit, cannot.
    let next = alloc(&service, LIMIT).unwrap();
    assert_eq!(
        alloc(&client, PAGE_SIZE).unwrap_err().errno(),
        Errno::ENOMEM
    );
    // A second transfer into the full client group fails and changes nothing: no fd, no
    // charge moved.
    let fds_before = client.fds();
    let err = service.send_fd_transfer_charge(next, &client).unwrap_err();
    assert_eq!(err.errno(), Errno::ENOMEM);
    assert_eq!(client.fds(), fds_before);
    assert_eq!((svc_cg.current(), app_cg.current()), (LIMIT, LIMIT));
    // Freeing the transferred buffer uncharges the client's group, not the service's.
    client.close(theirs).unwrap();
    assert_eq!((svc_cg.current(), app_cg.current()), (LIMIT, 0));
    alloc(&client, PAGE_SIZE).unwrap();
}

#[test]
fn test_only_the_charged_group_may_hand_the_charge_on() {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let (service, client) = (k.spawn(), k.spawn());
    let app_cg = k.create_memcg("app").unwrap();
    app_cg.attach(&client).unwrap();
    let fd = alloc(&client, PAGE_SIZE).unwrap();
    let at_service = client.send_fd(fd, &service).unwrap();
    // The service is in the root group; the buffer is charged to "app": EPERM.
    let err = service
        .transfer_charge(at_service, &k.root_memcg())
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EPERM);
    assert_eq!(app_cg.current(), PAGE_SIZE);
    // fd 0 is a terminal, not a dma-buf: EINVAL.
    assert_eq!(
        service.transfer_charge(0, &app_cg).unwrap_err().errno(),
        Errno::EINVAL
    );
}

#[test]
fn test_memcg_names_and_root_limit_are_checked() {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    k.create_memcg("a").unwrap();
    assert_eq!(k.create_memcg("a").unwrap_err().errno(), Errno::EEXIST);
    assert_eq!(k.create_memcg("").unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(k.create_memcg("x/y").unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        k.root_memcg().set_max(Some(1)).unwrap_err().errno(),
        Errno::EINVAL
    );
    let names: Vec<String> = k
        .memcg_list()
        .iter()
        .map(|g| g.name().to_string())
        .collect();
    assert_eq!(names, ["/", "a"]);
    let p = k.spawn();
    p.exit();
    assert_eq!(
        k.memcg("a").unwrap().attach(&p).unwrap_err().errno(),
        Errno::ESRCH
    );
}
