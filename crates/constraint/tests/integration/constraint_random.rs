//! A seeded random walk over attaches, detaches, maps with DMA traffic, CPU writes and
//! migrations across devices with different constraints. After every step every attached device
//! reads the buffer's exact content; at the end every page is back and the checker is clean.

use super::constraint_common::*;
use constraint::{ConstraintExporter, ExportSpec, ImporterNeeds, Layout, MigrationConfig};
use dma::DmaDirection;
use dmabuf::testing::mock_dma;
use dmabuf::Attachment;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Duration;
use uapi::{AsErrno, Errno};

const DEVICES: [&str; 5] = ["camera0", "isp0", "gpu0", "display0", "encoder0"];

fn random_needs(rng: &mut StdRng, planes: usize) -> ImporterNeeds {
    let mut n = ImporterNeeds::new();
    match rng.gen_range(0..8) {
        0 => n = n.only_bank("dram0"),
        1 => n = n.only_bank("dram1"),
        2 => n = n.exclude_bank("dram1"),
        3 if planes > 1 => n = n.plane_bank(0, "dram0").plane_bank(1, "dram1"),
        4 => n = n.align(1 << rng.gen_range(12..21)),
        5 => n = n.contiguous(),
        6 => n = n.padding(rng.gen_range(0..3) * 4096),
        _ => {}
    }
    n
}

struct Live {
    att: Attachment,
    dynamic: Option<Arc<Remapper>>,
}

/// One walk; returns (migrations, refused attaches).
fn run_walk(seed: u64, steps: usize) -> (usize, usize) {
    let dma = mock_dma();
    let mut rng = StdRng::seed_from_u64(seed);
    let before = page_accounting(&dma);
    let layout = if rng.gen_bool(0.5) {
        Layout::nv12(1024, 512)
    } else {
        Layout::single(rng.gen_range(1..=768) * 4096)
    };
    let size = layout.size as usize;
    let planes = layout.planes.len();
    let cfg = MigrationConfig {
        drain_timeout: Duration::from_millis(5),
        ..MigrationConfig::default()
    };
    let (buf, exp) = ConstraintExporter::export(
        &dma,
        ExportSpec::with_layout(layout)
            .config(cfg)
            .cache_mappings(false),
    )
    .unwrap();
    let mut content = vec![0u8; size];
    let mut live: Vec<Live> = Vec::new();
    let cpu = buf.mmap(0, size as u64, true).unwrap();
    let (mut attaches, mut refused, mut writes) = (0, 0, 0);
    for step in 0..steps {
        match rng.gen_range(0..10) {
            0..=2 if live.len() < 4 => {
                let name = DEVICES[rng.gen_range(0..DEVICES.len())];
                let dev = dma.device(name).unwrap();
                let needs = random_needs(&mut rng, planes);
                let r = if rng.gen_bool(0.3) {
                    let imp = Remapper::new();
                    exp.dynamic_attach_with(&buf, &dev, imp.clone(), needs)
                        .map(|att| Live {
                            att,
                            dynamic: Some(imp),
                        })
                } else {
                    exp.attach_with(&buf, &dev, needs)
                        .map(|att| Live { att, dynamic: None })
                };
                match r {
                    Ok(l) => {
                        attaches += 1;
                        live.push(l);
                    }
                    Err(e) => {
                        refused += 1;
                        assert!(
                            [Errno::EINVAL, Errno::ENOMEM, Errno::EBUSY].contains(&e.errno()),
                            "step {step}: {e}"
                        );
                    }
                }
            }
            3 if !live.is_empty() => {
                let l = live.swap_remove(rng.gen_range(0..live.len()));
                if let Some(imp) = &l.dynamic {
                    imp.release(&l.att);
                }
                buf.detach(l.att).unwrap();
            }
            4..=6 if !live.is_empty() => {
                // A device writes a random range.
                let l = &live[rng.gen_range(0..live.len())];
                let off = rng.gen_range(0..size);
                let len = rng.gen_range(1..=(size - off).min(64 << 10));
                let data = frame(rng.gen(), len);
                if let Some(imp) = &l.dynamic {
                    imp.release(&l.att);
                }
                let sgt = l.att.map_unlocked(DmaDirection::Bidirectional).unwrap();
                let mut whole = read_through(&dma, &l.att, &sgt, size);
                whole[off..off + len].copy_from_slice(&data);
                write_through(&dma, &l.att, &sgt, &whole);
                l.att.unmap_unlocked(sgt).unwrap();
                content[off..off + len].copy_from_slice(&data);
                writes += 1;
            }
            7 => {
                // The CPU writes through its mmap, bracketed.
                let off = rng.gen_range(0..size);
                let len = rng.gen_range(1..=(size - off).min(8192));
                let data = frame(rng.gen(), len);
                buf.begin_cpu_access(DmaDirection::Bidirectional).unwrap();
                cpu.write(off as u64, &data).unwrap();
                buf.end_cpu_access(DmaDirection::Bidirectional).unwrap();
                content[off..off + len].copy_from_slice(&data);
            }
            _ => {}
        }
        // Every attached device (and the CPU) reads exactly the content.
        for l in &live {
            let got = match &l.dynamic {
                Some(imp) => imp.read(&dma, &l.att, size),
                None => consume(&dma, &l.att, size),
            };
            assert!(
                got == content,
                "seed {seed} step {step}: {} reads wrong bytes (placement {:?})",
                l.att.device().name(),
                exp.placement()
            );
        }
        buf.begin_cpu_access(DmaDirection::FromDevice).unwrap();
        let mut seen = vec![0u8; size];
        cpu.read(0, &mut seen).unwrap();
        buf.end_cpu_access(DmaDirection::FromDevice).unwrap();
        assert!(
            seen == content,
            "seed {seed} step {step}: the CPU reads wrong bytes"
        );
    }
    for l in live.drain(..) {
        if let Some(imp) = &l.dynamic {
            imp.release(&l.att);
        }
        buf.detach(l.att).unwrap();
    }
    assert!(
        attaches > 0 && writes > 0,
        "seed {seed}: the walk did something"
    );
    let migrations = exp.log().events().len();
    drop((cpu, buf, exp));
    assert_eq!(page_accounting(&dma), before, "seed {seed}: pages balance");
    assert_clean(&dma);
    (migrations, refused)
}

#[test]
fn test_random_walk_keeps_every_device_coherent() {
    let (mut migrations, mut refused) = (0, 0);
    for seed in 0..12 {
        let (m, r) = run_walk(seed, 60);
        migrations += m;
        refused += r;
    }
    assert!(migrations >= 5, "the walks migrated {migrations} times");
    assert!(refused >= 5, "the walks saw {refused} explained refusals");
}
