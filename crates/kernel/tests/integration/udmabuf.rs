//! udmabuf (behaviours 95-101) and the selftest cases test-1 .. test-7.

use dma::DmaDirection;
use kernel::memfd::HPAGE_SIZE;
use kernel::{Kernel, Process, UdmabufItem, UdmabufLimits};
use soc::{SocDesc, PAGE_SIZE};
use std::sync::Arc;
use uapi::ioctl::*;
use uapi::{AsErrno, Errno};

fn boot() -> (Arc<Kernel>, Arc<Process>) {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let p = k.spawn();
    (k, p)
}

/// A memfd of `pages` pages sealed with `seals`.
fn memfd(p: &Process, pages: u64, seals: u32) -> i32 {
    let fd = p.memfd_create("udmabuf-test", MFD_ALLOW_SEALING).unwrap();
    p.ftruncate(fd, pages * PAGE_SIZE).unwrap();
    if seals != 0 {
        p.add_seals(fd, seals).unwrap();
    }
    fd
}

fn errno_of(r: Result<i32, dmabuf::DmaBufError>) -> Errno {
    r.unwrap_err().errno()
}

#[test]
fn test_1_unaligned_offset_is_einval() {
    let (_k, p) = boot();
    let m = memfd(&p, 4, F_SEAL_SHRINK);
    assert_eq!(
        errno_of(p.udmabuf_create(m, PAGE_SIZE / 2, PAGE_SIZE, 0)),
        Errno::EINVAL
    );
}

#[test]
fn test_2_unaligned_size_is_einval() {
    let (_k, p) = boot();
    let m = memfd(&p, 4, F_SEAL_SHRINK);
    assert_eq!(
        errno_of(p.udmabuf_create(m, 0, PAGE_SIZE / 2, 0)),
        Errno::EINVAL
    );
}

#[test]
fn test_3_not_a_memfd_is_ebadfd() {
    let (_k, p) = boot();
    assert_eq!(
        errno_of(p.udmabuf_create(0, 0, PAGE_SIZE, 0)),
        Errno::EBADFD,
        "stdin"
    );
    assert_eq!(
        errno_of(p.udmabuf_create(77, 0, PAGE_SIZE, 0)),
        Errno::EBADFD,
        "not open"
    );
    let heap = p.open_heap("system").unwrap();
    assert_eq!(
        errno_of(p.udmabuf_create(heap, 0, PAGE_SIZE, 0)),
        Errno::EBADFD
    );
}

#[test]
fn test_4_sealed_memfd_creates_a_buffer() {
    let (_k, p) = boot();
    let m = memfd(&p, 4, F_SEAL_SHRINK);
    let fd = p.udmabuf_create(m, 0, 4 * PAGE_SIZE, 0).unwrap();
    let buf = p.get_dma_buf(fd).unwrap();
    assert_eq!(buf.size(), 4 * PAGE_SIZE);
    assert_eq!(buf.exp_name(), "udmabuf");
    assert_eq!(buf.file_flags() & O_ACCMODE, O_RDWR);
    assert!(!p.cloexec(fd).unwrap());
}

#[test]
fn test_5_create_list_concatenates_and_shows_later_memfd_writes() {
    let (_k, p) = boot();
    let m = memfd(&p, 1024, F_SEAL_SHRINK);
    let items: Vec<UdmabufItem> = (0..4)
        .map(|i| UdmabufItem {
            memfd: m,
            offset: (i * 64) * PAGE_SIZE,
            size: 4 * PAGE_SIZE,
        })
        .collect();
    let fd = p
        .udmabuf_create_list(UDMABUF_FLAGS_CLOEXEC, &items)
        .unwrap();
    assert!(p.cloexec(fd).unwrap());
    let map = p
        .mmap(fd, 0, 16 * PAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap();
    // Rewrite the memfd after creation: the udmabuf shows the same bytes, item by item.
    for (i, it) in items.iter().enumerate() {
        let pattern = vec![0x10 + i as u8; it.size as usize];
        p.pwrite(m, it.offset, &pattern).unwrap();
    }
    for (i, it) in items.iter().enumerate() {
        let mut got = vec![0u8; it.size as usize];
        map.read(i as u64 * 4 * PAGE_SIZE, &mut got).unwrap();
        assert!(got.iter().all(|&b| b == 0x10 + i as u8), "item {i}");
    }
    // And the other way round: writes through the udmabuf land in the memfd.
    map.write(4 * PAGE_SIZE + 3, b"back").unwrap();
    assert_eq!(p.pread(m, 64 * PAGE_SIZE + 3, 4).unwrap(), b"back");
}

fn hugetlb_memfd(p: &Process, huge_pages: u64) -> i32 {
    let fd = p
        .memfd_create("huge", MFD_HUGETLB | MFD_ALLOW_SEALING)
        .unwrap();
    p.ftruncate(fd, huge_pages * HPAGE_SIZE).unwrap();
    p.add_seals(fd, F_SEAL_SHRINK).unwrap();
    fd
}

fn check_hugetlb(create_first: bool) {
    let (_k, p) = boot();
    let m = hugetlb_memfd(&p, 2);
    let items = [
        UdmabufItem {
            memfd: m,
            offset: 0,
            size: 4 * PAGE_SIZE,
        },
        UdmabufItem {
            memfd: m,
            offset: HPAGE_SIZE + 8 * PAGE_SIZE,
            size: 4 * PAGE_SIZE,
        },
    ];
    let fill = |p: &Arc<Process>| {
        let w = p
            .mmap(m, 0, 2 * HPAGE_SIZE, PROT_READ | PROT_WRITE, true)
            .unwrap();
        w.write(0, &vec![0x61; 4 * PAGE_SIZE as usize]).unwrap();
        w.write(
            HPAGE_SIZE + 8 * PAGE_SIZE,
            &vec![0x62; 4 * PAGE_SIZE as usize],
        )
        .unwrap();
        p.munmap(&w).unwrap();
    };
    if !create_first {
        fill(&p);
    }
    let fd = p.udmabuf_create_list(0, &items).unwrap();
    if create_first {
        fill(&p);
    }
    let map = p.mmap(fd, 0, 8 * PAGE_SIZE, PROT_READ, true).unwrap();
    let mut got = vec![0u8; 8 * PAGE_SIZE as usize];
    map.read(0, &mut got).unwrap();
    assert!(got[..4 * PAGE_SIZE as usize].iter().all(|&b| b == 0x61));
    assert!(got[4 * PAGE_SIZE as usize..].iter().all(|&b| b == 0x62));
}

#[test]
fn test_6_hugetlb_memfd() {
    check_hugetlb(false);
}

#[test]
fn test_7_hugetlb_pages_pinned_before_they_are_written() {
    check_hugetlb(true);
}

#[test]
fn test_unknown_flags_are_ignored_as_mainline_does() {
    let (_k, p) = boot();
    let m = memfd(&p, 1, F_SEAL_SHRINK);
    // The posted patch ("test-unknown-flags") would make this EINVAL; mainline ignores the bit.
    let fd = p
        .udmabuf_create(m, 0, PAGE_SIZE, UDMABUF_FLAGS_CLOEXEC | 0x2)
        .unwrap();
    assert!(p.cloexec(fd).unwrap());
}

#[test]
fn test_size_zero_and_size_limit_and_list_limit_are_einval() {
    let (k, p) = boot();
    let m = memfd(&p, 1024, F_SEAL_SHRINK);
    assert_eq!(errno_of(p.udmabuf_create(m, 0, 0, 0)), Errno::EINVAL);
    assert_eq!(errno_of(p.udmabuf_create_list(0, &[])), Errno::EINVAL);
    k.set_udmabuf_limits(UdmabufLimits {
        size_limit: 8 * PAGE_SIZE,
        ..UdmabufLimits::default()
    });
    assert_eq!(
        errno_of(p.udmabuf_create(m, 0, 9 * PAGE_SIZE, 0)),
        Errno::EINVAL
    );
    assert!(p.udmabuf_create(m, 0, 8 * PAGE_SIZE, 0).is_ok());
    k.set_udmabuf_limits(UdmabufLimits::default());
    let item = UdmabufItem {
        memfd: m,
        offset: 0,
        size: PAGE_SIZE,
    };
    assert_eq!(
        errno_of(p.udmabuf_create_list(0, &vec![item; 1025])),
        Errno::EINVAL
    );
    let fd = p.udmabuf_create_list(0, &vec![item; 1024]).unwrap();
    assert_eq!(p.get_dma_buf(fd).unwrap().size(), 1024 * PAGE_SIZE);
    // Above 64 MiB in total.
    let big = memfd(&p, 16385, F_SEAL_SHRINK);
    assert_eq!(
        errno_of(p.udmabuf_create(big, 0, 16385 * PAGE_SIZE, 0)),
        Errno::EINVAL
    );
}

#[test]
fn test_seals_must_include_shrink_and_exclude_write() {
    let (_k, p) = boot();
    let none = memfd(&p, 1, 0);
    assert_eq!(
        errno_of(p.udmabuf_create(none, 0, PAGE_SIZE, 0)),
        Errno::EINVAL
    );
    let unsealable = p.memfd_create("plain", 0).unwrap();
    p.ftruncate(unsealable, PAGE_SIZE).unwrap();
    assert_eq!(
        errno_of(p.udmabuf_create(unsealable, 0, PAGE_SIZE, 0)),
        Errno::EINVAL
    );
    let w = memfd(&p, 1, F_SEAL_SHRINK | F_SEAL_WRITE);
    assert_eq!(
        errno_of(p.udmabuf_create(w, 0, PAGE_SIZE, 0)),
        Errno::EINVAL
    );
    let fw = memfd(&p, 1, F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE);
    assert_eq!(
        errno_of(p.udmabuf_create(fw, 0, PAGE_SIZE, 0)),
        Errno::EINVAL
    );
    let ok = memfd(&p, 1, F_SEAL_SHRINK | F_SEAL_GROW);
    assert!(p.udmabuf_create(ok, 0, PAGE_SIZE, 0).is_ok());
}

#[test]
fn test_range_past_the_memfd_end_is_einval() {
    let (_k, p) = boot();
    let m = memfd(&p, 4, F_SEAL_SHRINK);
    assert_eq!(
        errno_of(p.udmabuf_create(m, 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0)),
        Errno::EINVAL
    );
}

#[test]
fn test_failed_create_leaks_nothing() {
    let (k, p) = boot();
    let before = k.soc().pages().stats().zones[0].free_pages;
    let good = memfd(&p, 64, F_SEAL_SHRINK);
    let bad = memfd(&p, 1, 0);
    let fds = p.fds();
    let items = [
        UdmabufItem {
            memfd: good,
            offset: 0,
            size: 64 * PAGE_SIZE,
        },
        UdmabufItem {
            memfd: bad,
            offset: 0,
            size: PAGE_SIZE,
        },
    ];
    assert_eq!(errno_of(p.udmabuf_create_list(0, &items)), Errno::EINVAL);
    assert_eq!(p.fds(), fds, "no fd installed");
    assert_eq!(k.registry().stats().exported, 0, "no buffer exported");
    // The pins of item 0 were dropped: nothing keeps F_SEAL_WRITE away any more. (The holes
    // pinning allocated stay in the memfd's page cache, as shmem_read_mapping_page leaves them.)
    p.add_seals(good, F_SEAL_WRITE).unwrap();
    p.close(good).unwrap();
    p.close(bad).unwrap();
    assert_eq!(k.soc().pages().stats().zones[0].free_pages, before);
}

#[test]
fn test_memfd_writes_are_visible_to_a_device() {
    let (k, p) = boot();
    let m = memfd(&p, 8, F_SEAL_SHRINK);
    p.pwrite(m, 0, b"before").unwrap();
    let fd = p.udmabuf_create(m, 0, 8 * PAGE_SIZE, 0).unwrap();
    let buf = p.get_dma_buf(fd).unwrap();
    let isp = k.dma().device("isp0").unwrap();
    let att = buf.attach(&isp).unwrap();
    let sgt = att.map_unlocked(DmaDirection::Bidirectional).unwrap();
    let iova = sgt.dma_address().unwrap();
    let mut got = [0u8; 6];
    k.dma().device_read(&isp, iova, &mut got).unwrap();
    assert_eq!(&got, b"before", "the map cleaned the CPU's lines");
    // A later memfd write reaches the device after the CPU-access bracket.
    buf.begin_cpu_access(DmaDirection::ToDevice).unwrap();
    p.pwrite(m, 5 * PAGE_SIZE, b"after").unwrap();
    buf.end_cpu_access(DmaDirection::ToDevice).unwrap();
    let mut got = [0u8; 5];
    k.dma()
        .device_read(&isp, iova.add(5 * PAGE_SIZE), &mut got)
        .unwrap();
    assert_eq!(&got, b"after");
    att.unmap_unlocked(sgt).unwrap();
    buf.detach(att).unwrap();
}

#[test]
fn test_sync_end_before_start_is_einval_and_mmap_needs_map_shared() {
    let (_k, p) = boot();
    let m = memfd(&p, 1, F_SEAL_SHRINK);
    let fd = p.udmabuf_create(m, 0, PAGE_SIZE, 0).unwrap();
    let buf = p.get_dma_buf(fd).unwrap();
    assert_eq!(
        buf.end_cpu_access(DmaDirection::FromDevice)
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    buf.begin_cpu_access(DmaDirection::FromDevice).unwrap();
    buf.end_cpu_access(DmaDirection::FromDevice).unwrap();
    assert_eq!(
        p.mmap(fd, 0, PAGE_SIZE, PROT_READ, false)
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    assert_eq!(
        p.mmap(fd, 0, 2 * PAGE_SIZE, PROT_READ, true)
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
}

#[test]
fn test_pinned_pages_outlive_the_memfd_and_block_f_seal_write() {
    let (k, p) = boot();
    let m = memfd(&p, 2, F_SEAL_SHRINK);
    p.pwrite(m, 0, b"pinned").unwrap();
    let fd = p.udmabuf_create(m, 0, 2 * PAGE_SIZE, 0).unwrap();
    assert_eq!(
        p.add_seals(m, F_SEAL_WRITE).unwrap_err().errno(),
        Errno::EBUSY
    );
    let free = k.soc().pages().stats().zones[0].free_pages;
    p.close(m).unwrap();
    assert_eq!(
        k.soc().pages().stats().zones[0].free_pages,
        free,
        "the udmabuf holds the pages"
    );
    let map = p.mmap(fd, 0, PAGE_SIZE, PROT_READ, true).unwrap();
    let mut got = [0u8; 6];
    map.read(0, &mut got).unwrap();
    assert_eq!(&got, b"pinned");
    p.munmap(&map).unwrap();
    p.close(fd).unwrap();
    assert_eq!(k.soc().pages().stats().zones[0].free_pages, free + 2);
}
