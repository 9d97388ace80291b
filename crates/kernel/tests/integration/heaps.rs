//! dma-heaps: registry, DMA_HEAP_IOCTL_ALLOC validation (88-92), system/CMA/carveout heaps.

use dma::{DmaDirection, SgBacking};
use dmabuf::{DmaBuf, DmaBufError};
use kernel::heap::buffer::HeapBuffer;
use kernel::heap::system::SystemHeap;
use kernel::heap::{DmaHeap, DMA_HEAP_MAX_HEAPS};
use kernel::{Kernel, Process};
use soc::{SocDesc, PAGE_SIZE};
use std::sync::Arc;
use uapi::ioctl::*;
use uapi::{AsErrno, Errno};

fn boot() -> (Arc<Kernel>, Arc<Process>) {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let p = k.spawn();
    (k, p)
}

fn alloc(p: &Process, heap: &str, len: u64) -> (i32, DmaBuf) {
    let h = p.open_heap(heap).unwrap();
    let fd = p.heap_alloc(h, len, O_RDWR | O_CLOEXEC, 0).unwrap();
    p.close(h).unwrap();
    (fd, p.get_dma_buf(fd).unwrap())
}

struct Named(String);
impl DmaHeap for Named {
    fn name(&self) -> &str {
        &self.0
    }
    fn allocate(&self, _len: u64, _f: u32, _h: u64) -> Result<DmaBuf, DmaBufError> {
        Err(DmaBufError::NoMemory("never".into()))
    }
}

#[test]
fn test_default_heaps_are_registered() {
    let (k, p) = boot();
    assert_eq!(k.heap_names(), ["system", "cma0", "carveout-carveout0"]);
    assert_eq!(p.open_heap("nope").unwrap_err().errno(), Errno::ENOENT);
}

#[test]
fn test_heap_add_rejects_empty_and_duplicate_names_and_a_129th_heap() {
    let (k, _p) = boot();
    let add = |n: &str| k.add_heap(Arc::new(Named(n.into())));
    assert_eq!(add("").unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(add("system").unwrap_err().errno(), Errno::EINVAL);
    let start = k.heap_names().len();
    for i in start..DMA_HEAP_MAX_HEAPS {
        add(&format!("h{i}")).unwrap();
    }
    assert_eq!(add("one-too-many").unwrap_err().errno(), Errno::EBUSY);
    assert_eq!(k.heap_names().len(), DMA_HEAP_MAX_HEAPS);
}

#[test]
fn test_alloc_validation_fd_flags_heap_flags_and_len() {
    let (_k, p) = boot();
    let h = p.open_heap("system").unwrap();
    assert!(p.cloexec(h).unwrap());
    let err = |len, ff, hf| p.heap_alloc(h, len, ff, hf).unwrap_err().errno();
    assert_eq!(err(PAGE_SIZE, !(O_RDWR | O_CLOEXEC), 0), Errno::EINVAL);
    assert_eq!(err(PAGE_SIZE, O_RDWR | O_NONBLOCK, 0), Errno::EINVAL);
    assert_eq!(err(PAGE_SIZE, O_RDWR, 0x111111), Errno::EINVAL);
    assert_eq!(err(0, O_RDWR, 0), Errno::EINVAL);
    assert_eq!(err(u64::MAX - 10, O_RDWR, 0), Errno::EINVAL, "wraps to 0");
    assert_eq!(p.fds(), [0, 1, 2, h], "failed allocations install nothing");
    // fd 0 is a terminal: its unknown ioctl.
    assert_eq!(
        p.heap_alloc(0, PAGE_SIZE, O_RDWR, 0).unwrap_err().errno(),
        Errno::ENOTTY
    );
    assert_eq!(
        p.heap_alloc(50, PAGE_SIZE, O_RDWR, 0).unwrap_err().errno(),
        Errno::EBADF
    );
}

#[test]
fn test_alloc_rounds_len_up_and_names_the_exporter() {
    let (_k, p) = boot();
    let h = p.open_heap("system").unwrap();
    let fd = p.heap_alloc(h, 1, O_RDONLY, 0).unwrap();
    let buf = p.get_dma_buf(fd).unwrap();
    assert_eq!(buf.size(), PAGE_SIZE);
    assert_eq!(buf.exp_name(), "system");
    assert_eq!(buf.file_flags() & O_ACCMODE, O_RDONLY);
    assert!(!p.cloexec(fd).unwrap());
    let fd2 = p
        .heap_alloc(h, PAGE_SIZE + 1, O_RDWR | O_CLOEXEC, 0)
        .unwrap();
    assert!(p.cloexec(fd2).unwrap());
    assert_eq!(p.get_dma_buf(fd2).unwrap().size(), 2 * PAGE_SIZE);
}

#[test]
fn test_alloc_ioctl_raw_fd_must_be_zero_and_nr_must_be_zero() {
    let (_k, p) = boot();
    let h = p.open_heap("system").unwrap();
    let mut arg = [0u8; 24];
    arg[..8].copy_from_slice(&PAGE_SIZE.to_ne_bytes());
    arg[8..12].copy_from_slice(&7u32.to_ne_bytes());
    assert_eq!(
        p.dma_heap_ioctl(h, DMA_HEAP_IOCTL_ALLOC, &mut arg)
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    arg[8..12].copy_from_slice(&0u32.to_ne_bytes());
    let bad_nr = iowr(DMA_HEAP_IOC_MAGIC, 1, 24);
    assert_eq!(
        p.dma_heap_ioctl(h, bad_nr, &mut arg).unwrap_err().errno(),
        Errno::EINVAL
    );
    // The type byte is not checked.
    let other_type = iowr(b'X', 0, 24);
    assert_eq!(p.dma_heap_ioctl(h, other_type, &mut arg).unwrap(), 0);
    let fd = u32::from_ne_bytes(arg[8..12].try_into().unwrap()) as i32;
    assert_eq!(p.get_dma_buf(fd).unwrap().size(), PAGE_SIZE);
    assert_eq!(
        p.dma_heap_ioctl(0, DMA_HEAP_IOCTL_ALLOC, &mut arg)
            .unwrap_err()
            .errno(),
        Errno::ENOTTY
    );
}

#[test]
fn test_alloc_compat_older_and_newer_structs() {
    let (_k, p) = boot();
    let h = p.open_heap("system").unwrap();
    // Older: no heap_flags (16 bytes).
    let mut old = [0u8; 16];
    old[..8].copy_from_slice(&(3 * PAGE_SIZE).to_ne_bytes());
    old[12..16].copy_from_slice(&(O_RDWR | O_CLOEXEC).to_ne_bytes());
    p.dma_heap_ioctl(h, iowr(DMA_HEAP_IOC_MAGIC, 0, 16), &mut old)
        .unwrap();
    let fd = u32::from_ne_bytes(old[8..12].try_into().unwrap()) as i32;
    assert_eq!(p.get_dma_buf(fd).unwrap().size(), 3 * PAGE_SIZE);
    // Newer: extra garbage fields are ignored and handed back unchanged.
    let mut new = [0xa5u8; 40];
    new[..8].copy_from_slice(&PAGE_SIZE.to_ne_bytes());
    new[8..24].fill(0);
    new[12..16].copy_from_slice(&O_RDWR.to_ne_bytes());
    p.dma_heap_ioctl(h, iowr(DMA_HEAP_IOC_MAGIC, 0, 40), &mut new)
        .unwrap();
    let fd = u32::from_ne_bytes(new[8..12].try_into().unwrap()) as i32;
    assert_eq!(p.get_dma_buf(fd).unwrap().size(), PAGE_SIZE);
    assert!(new[24..].iter().all(|&b| b == 0xa5));
    // A claimed size larger than the memory passed is EFAULT.
    let mut short = [0u8; 8];
    assert_eq!(
        p.dma_heap_ioctl(h, DMA_HEAP_IOCTL_ALLOC, &mut short)
            .unwrap_err()
            .errno(),
        Errno::EFAULT
    );
}

fn dirty_then_check_zeroed(heap: &str, len: u64) {
    let (_k, p) = boot();
    for pass in 0..2 {
        let mut fds = Vec::new();
        for _ in 0..32 {
            let (fd, buf) = alloc(&p, heap, len);
            let m = p.mmap(fd, 0, len, PROT_READ | PROT_WRITE, true).unwrap();
            buf.begin_cpu_access(DmaDirection::Bidirectional).unwrap();
            let mut data = vec![0u8; len as usize];
            m.read(0, &mut data).unwrap();
            assert!(
                data.iter().all(|&b| b == 0),
                "{heap}: pass {pass}: a new buffer is not zeroed"
            );
            m.write(0, &vec![0xffu8; len as usize]).unwrap();
            buf.end_cpu_access(DmaDirection::Bidirectional).unwrap();
            p.munmap(&m).unwrap();
            fds.push(fd);
        }
        for fd in fds {
            p.close(fd).unwrap();
        }
    }
}

#[test]
fn test_system_heap_zeroed_after_32_dirty_buffers() {
    dirty_then_check_zeroed("system", 4096);
    dirty_then_check_zeroed("system", 1 << 20);
}

#[test]
fn test_cma_heap_zeroed_after_32_dirty_buffers() {
    dirty_then_check_zeroed("cma0", 4096);
    dirty_then_check_zeroed("cma0", 1 << 20);
}

#[test]
fn test_carveout_heap_zeroed_after_32_dirty_buffers() {
    dirty_then_check_zeroed("carveout-carveout0", 1 << 20);
}

#[test]
fn test_system_heap_takes_the_largest_orders_first() {
    let (_k, p) = boot();
    let (_fd, buf) = alloc(&p, "system", (1 << 20) * 2 + (64 << 10) + 3 * PAGE_SIZE);
    let ops = buf.exporter_ops::<HeapBuffer>().unwrap();
    assert_eq!(ops.block_orders(), [8, 8, 4, 0, 0, 0]);
    assert!(ops.is_page_backed());
}

#[test]
fn test_system_heap_enomem_leaks_nothing() {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let heap = SystemHeap::new(k.dma(), None);
    let before = k.soc().pages().stats();
    let e = heap.allocate(64 << 30, O_RDWR, 0).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOMEM);
    let after = k.soc().pages().stats();
    for (a, b) in before.zones.iter().zip(&after.zones) {
        assert_eq!(a.free_pages, b.free_pages, "{}", a.name);
    }
}

#[test]
fn test_system_heap_device_dma_cpu_sync_and_cached_remap() {
    let (k, p) = boot();
    let (fd, buf) = alloc(&p, "system", 4 * PAGE_SIZE);
    let isp = k.dma().device("isp0").unwrap();
    let att = buf.attach(&isp).unwrap();
    let m = p
        .mmap(fd, 0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap();
    // CPU -> device.
    buf.begin_cpu_access(DmaDirection::ToDevice).unwrap();
    m.write(100, b"to the isp").unwrap();
    buf.end_cpu_access(DmaDirection::ToDevice).unwrap();
    let sgt = att.map_unlocked(DmaDirection::Bidirectional).unwrap();
    let iova = sgt.dma_address().unwrap();
    let mut got = [0u8; 10];
    k.dma().device_read(&isp, iova.add(100), &mut got).unwrap();
    assert_eq!(&got, b"to the isp");
    // Device -> CPU.
    k.dma()
        .device_write(&isp, iova.add(PAGE_SIZE), b"from the isp")
        .unwrap();
    buf.begin_cpu_access(DmaDirection::FromDevice).unwrap();
    let mut back = [0u8; 12];
    m.read(PAGE_SIZE, &mut back).unwrap();
    buf.end_cpu_access(DmaDirection::FromDevice).unwrap();
    assert_eq!(&back, b"from the isp");
    att.unmap_unlocked(sgt).unwrap();
    // A re-map of the unchanged buffer is a cache hit.
    let ops = buf.exporter_ops::<HeapBuffer>().unwrap();
    let again = att.map_unlocked(DmaDirection::Bidirectional).unwrap();
    assert_eq!(ops.map_cache().hits(), 1);
    assert_eq!(ops.map_cache().misses(), 1);
    att.unmap_unlocked(again).unwrap();
    // vmap sees the same bytes.
    let v = buf.vmap_unlocked().unwrap();
    let mut vb = [0u8; 12];
    v.read(PAGE_SIZE, &mut vb).unwrap();
    assert_eq!(&vb, b"from the isp");
    buf.vunmap_unlocked(v).unwrap();
    buf.detach(att).unwrap();
    assert_eq!(
        k.dma().checker().total(),
        0,
        "{:?}",
        k.dma().checker().findings()
    );
}

#[test]
fn test_cma_heap_is_contiguous_and_serves_a_device_without_iommu() {
    let (k, p) = boot();
    let (fd, buf) = alloc(&p, "cma0", 3 << 20);
    let ops = buf.exporter_ops::<HeapBuffer>().unwrap();
    assert_eq!(ops.runs().len(), 1, "one physical run");
    let region = &k.soc().pages().cma_regions()[0];
    let (pa, len) = ops.runs()[0];
    assert!(pa.0 >= region.base.0 && pa.0 + len <= region.base.0 + region.size);
    assert_eq!(region.used, 3 << 20);
    let camera = k.dma().device("camera0").unwrap();
    let att = buf.attach(&camera).unwrap();
    let sgt = att.map_unlocked(DmaDirection::FromDevice).unwrap();
    assert_eq!(
        sgt.dma_address().unwrap().0,
        pa.0,
        "direct mapping: DMA address = physical"
    );
    att.unmap_unlocked(sgt).unwrap();
    buf.detach(att).unwrap();
    assert_eq!(
        p.mmap(fd, 0, PAGE_SIZE, PROT_READ, false)
            .unwrap_err()
            .errno(),
        Errno::EINVAL,
        "needs MAP_SHARED"
    );
    p.close(fd).unwrap();
    drop((buf, ops));
    assert_eq!(k.soc().pages().cma_regions()[0].used, 0);
}

#[test]
fn test_carveout_importer_gets_dma_addresses_never_pages() {
    let (k, p) = boot();
    let (fd, buf) = alloc(&p, "carveout-carveout0", 2 * PAGE_SIZE);
    let ops = buf.exporter_ops::<HeapBuffer>().unwrap();
    assert!(!ops.is_page_backed());
    let camera = k.dma().device("camera0").unwrap();
    let att = buf.attach(&camera).unwrap();
    let sgt = att.map_unlocked(DmaDirection::Bidirectional).unwrap();
    assert!(sgt
        .entries()
        .iter()
        .all(|e| e.backing == SgBacking::Resource));
    // PFN-style CPU mapping: uncached, so the device sees CPU writes without cache maintenance.
    let m = p
        .mmap(fd, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, true)
        .unwrap();
    m.write(PAGE_SIZE + 1, b"carveout").unwrap();
    let mut got = [0u8; 8];
    k.dma()
        .device_read(
            &camera,
            sgt.dma_address().unwrap().add(PAGE_SIZE + 1),
            &mut got,
        )
        .unwrap();
    assert_eq!(&got, b"carveout");
    // Through an IOMMU too.
    let isp = k.dma().device("isp0").unwrap();
    let att2 = buf.attach(&isp).unwrap();
    let s2 = att2.map_unlocked(DmaDirection::ToDevice).unwrap();
    k.dma()
        .device_read(&isp, s2.dma_address().unwrap().add(PAGE_SIZE + 1), &mut got)
        .unwrap();
    assert_eq!(&got, b"carveout");
    att2.unmap_unlocked(s2).unwrap();
    att.unmap_unlocked(sgt).unwrap();
}

#[test]
fn test_carveout_map_for_an_unreachable_device_fails_cleanly() {
    let (k, p) = boot();
    let (_fd, buf) = alloc(&p, "carveout-carveout0", PAGE_SIZE);
    let display = k.dma().device("display0").unwrap();
    let att = buf.attach(&display).unwrap();
    let e = att.map_unlocked(DmaDirection::ToDevice).unwrap_err();
    assert_eq!(e.errno(), Errno::EIO);
    assert!(e.to_string().contains("display0"), "{e}");
    assert_eq!(att.mapped_count(), 0);
    assert_eq!(
        buf.exporter_ops::<HeapBuffer>().unwrap().map_cache().len(),
        0
    );
    buf.detach(att).unwrap();
}

#[test]
fn test_carveout_exhaustion_is_enomem_and_leaks_nothing() {
    let (k, p) = boot();
    let bank = k.soc().mem().bank_by_name("carveout0").unwrap().id();
    let avail = k.soc().pool(bank).unwrap().avail();
    let h = p.open_heap("carveout-carveout0").unwrap();
    assert_eq!(
        p.heap_alloc(h, 512 << 20, O_RDWR, 0).unwrap_err().errno(),
        Errno::ENOMEM
    );
    assert_eq!(k.soc().pool(bank).unwrap().avail(), avail);
    let fd = p.heap_alloc(h, 1 << 20, O_RDWR, 0).unwrap();
    assert_eq!(k.soc().pool(bank).unwrap().avail(), avail - (1 << 20));
    p.close(fd).unwrap();
    assert_eq!(k.soc().pool(bank).unwrap().avail(), avail);
}
