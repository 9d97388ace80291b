//! Leak test: whatever happened, closing every fd and exiting every process gives every page,
//! CMA range and carveout range back.

use dma::DmaDirection;
use kernel::{Kernel, Process, UdmabufItem};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use soc::{SocDesc, PAGE_SIZE};
use std::sync::Arc;
use uapi::ioctl::*;

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    zone_free: Vec<u64>,
    cma_used: Vec<u64>,
    pool_avail: Vec<u64>,
}

fn snapshot(k: &Kernel) -> Snapshot {
    let soc = k.soc();
    Snapshot {
        zone_free: soc
            .pages()
            .stats()
            .zones
            .iter()
            .map(|z| z.free_pages)
            .collect(),
        cma_used: soc.pages().cma_regions().iter().map(|r| r.used).collect(),
        pool_avail: soc
            .mem()
            .banks()
            .iter()
            .filter_map(|b| soc.pool(b.id()).map(|p| p.avail()))
            .collect(),
    }
}

fn random_sequence(k: &Arc<Kernel>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let procs: Vec<Arc<Process>> = (0..3).map(|_| k.spawn()).collect();
    let heaps = k.heap_names();
    let isp = k.dma().device("isp0").unwrap();
    let mut maps = Vec::new();
    let mut atts = Vec::new();
    for _ in 0..120 {
        let p = &procs[rng.gen_range(0..procs.len())];
        let fds = p.fds();
        let any_fd = fds[rng.gen_range(0..fds.len())];
        match rng.gen_range(0..10) {
            0 | 1 => {
                let h = p.open_heap(&heaps[rng.gen_range(0..heaps.len())]).unwrap();
                let len = rng.gen_range(1..64u64) * PAGE_SIZE - rng.gen_range(0..2u64);
                let _ = p.heap_alloc(h, len, O_RDWR, 0);
            }
            2 => {
                if let Ok(m) = p.memfd_create("leak", MFD_ALLOW_SEALING) {
                    let pages = rng.gen_range(1..32u64);
                    p.ftruncate(m, pages * PAGE_SIZE).unwrap();
                    p.pwrite(m, rng.gen_range(0..pages) * PAGE_SIZE, b"data")
                        .unwrap();
                    if rng.gen_bool(0.7) {
                        p.add_seals(m, F_SEAL_SHRINK).unwrap();
                    }
                    let item = UdmabufItem {
                        memfd: m,
                        offset: 0,
                        size: rng.gen_range(0..=pages) * PAGE_SIZE,
                    };
                    let _ = p.udmabuf_create_list(0, &[item, item]);
                }
            }
            3 => {
                let to = &procs[rng.gen_range(0..procs.len())];
                let _ = p.send_fd(any_fd, to);
            }
            4 => {
                let _ = p.close(any_fd);
            }
            5 => {
                let _ = p.dup(any_fd);
            }
            6 => {
                let len = rng.gen_range(1..4u64) * PAGE_SIZE;
                if let Ok(m) = p.mmap(any_fd, 0, len, PROT_READ | PROT_WRITE, true) {
                    let _ = m.write(0, b"touch");
                    maps.push(m);
                }
            }
            7 => {
                if let Ok(buf) = p.get_dma_buf(any_fd) {
                    if let Ok(att) = buf.attach(&isp) {
                        if let Ok(sgt) = att.map_unlocked(DmaDirection::Bidirectional) {
                            let _ = k
                                .dma()
                                .device_write(&isp, sgt.dma_address().unwrap(), b"dev");
                            if rng.gen_bool(0.5) {
                                att.unmap_unlocked(sgt).unwrap();
                            } else {
                                atts.push((att, Some(sgt)));
                                continue;
                            }
                        }
                        atts.push((att, None));
                    }
                }
            }
            8 => {
                let _ = p.exec();
            }
            _ => {
                if let Ok(buf) = p.get_dma_buf(any_fd) {
                    let _ = buf.begin_cpu_access(DmaDirection::Bidirectional);
                    let _ = buf.end_cpu_access(DmaDirection::Bidirectional);
                }
            }
        }
    }
    // Importers drop their mappings and attachments (as drivers do at teardown)...
    for (att, sgt) in atts {
        if let Some(s) = sgt {
            att.unmap_unlocked(s).unwrap();
        }
        att.dmabuf().clone().detach(att).unwrap();
    }
    // ... and every process exits: the mappings it still has go with it.
    for p in &procs {
        p.exit();
    }
    drop(maps);
}

#[test]
fn test_closing_every_fd_and_exiting_returns_every_page() {
    for seed in 0..6 {
        let k = Kernel::boot(SocDesc::default_soc()).unwrap();
        let before = snapshot(&k);
        random_sequence(&k, seed);
        assert_eq!(snapshot(&k), before, "seed {seed}");
        assert_eq!(
            k.registry().len(),
            0,
            "seed {seed}: {}",
            k.registry().bufinfo()
        );
        let stats = k.registry().stats();
        assert_eq!(stats.exported, stats.released, "seed {seed}");
        assert!(k.processes().is_empty());
        // Every heap buffer's memcg charge went with it.
        assert_eq!(k.root_memcg().current(), 0, "seed {seed}");
        assert!(k.dmabuf_usage().is_empty());
    }
}

#[test]
fn test_dropping_a_process_without_exit_also_frees_everything() {
    let k = Kernel::boot(SocDesc::default_soc()).unwrap();
    let before = snapshot(&k);
    {
        let p = k.spawn();
        let h = p.open_heap("system").unwrap();
        let fd = p.heap_alloc(h, 1 << 20, O_RDWR, 0).unwrap();
        let _m = p.mmap(fd, 0, PAGE_SIZE, PROT_READ, true).unwrap();
        let c = p.open_heap("cma0").unwrap();
        p.heap_alloc(c, 1 << 20, O_RDWR, 0).unwrap();
    }
    assert_eq!(snapshot(&k), before);
}
