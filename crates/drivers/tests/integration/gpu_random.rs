//! A seeded random walk over allocations, CPU writes, jobs, evictions, validations, pins,
//! exports and importer reads: every object always holds exactly the bytes the model says, and
//! every page and VRAM byte comes back at the end.

use super::*;
use drivers::gpu::{BoDesc, GpuBo, GpuVm, Job, Placement};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use soc::PAGE_SIZE;
use uapi::AsErrno;

struct Obj {
    bo: GpuBo,
    want: Vec<u8>,
    pins: u32,
    import: Option<(DmaBuf, Attachment, Arc<TestImporter>)>,
}

fn check(o: &Obj) {
    let mut got = vec![0u8; o.want.len()];
    o.bo.read(0, &mut got).unwrap();
    assert!(
        got == o.want,
        "object {} ({:?}) lost its bytes",
        o.bo.id(),
        o.bo.placement()
    );
}

fn run(seed: u64, steps: usize) {
    let (dma, gpu) = setup(6, RingMode::Manual);
    let start = memory(&dma, &gpu);
    let vm = GpuVm::new(&gpu, "random");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut objs: Vec<Obj> = Vec::new();
    let mut jobs = 0;
    for _ in 0..steps {
        let n = objs.len();
        match rng.gen_range(0..10) {
            0 | 1 if n < 12 => {
                let size = rng.gen_range(1..=16) * PAGE_SIZE;
                let desc = match rng.gen_range(0..4) {
                    0 => BoDesc::vram_only("v", size),
                    1 => BoDesc::gtt("g", size),
                    _ => BoDesc::vram("r", size),
                };
                if let Ok(bo) = gpu.create_bo(desc) {
                    objs.push(Obj {
                        want: vec![0; bo.size() as usize],
                        bo,
                        pins: 0,
                        import: None,
                    });
                }
            }
            2 if n > 0 => {
                let o = &mut objs[rng.gen_range(0..n)];
                o.want = pattern(rng.gen(), o.want.len());
                o.bo.write(0, &o.want).unwrap();
            }
            3 | 4 if n > 1 => {
                let (i, j) = (rng.gen_range(0..n), rng.gen_range(0..n));
                if i == j {
                    continue;
                }
                let len = objs[i].want.len().min(objs[j].want.len());
                let invert = rng.gen_bool(0.5);
                let job = if invert {
                    Job::invert(&objs[i].bo, &objs[j].bo)
                } else {
                    Job::copy(&objs[i].bo, &objs[j].bo)
                };
                let src: Vec<u8> = objs[i].want[..len].to_vec();
                match gpu.submit(&vm, job) {
                    Ok(f) => {
                        gpu.wait_idle(&f).unwrap();
                        jobs += 1;
                        for (d, s) in objs[j].want[..len].iter_mut().zip(&src) {
                            *d = if invert { !*s } else { *s };
                        }
                    }
                    Err(e) => assert!(
                        matches!(e.errno(), uapi::Errno::ENOMEM | uapi::Errno::EBUSY),
                        "{e}"
                    ),
                }
            }
            5 if n > 0 => {
                let _ = gpu.evict(&objs[rng.gen_range(0..n)].bo);
            }
            6 if n > 0 => {
                let _ = gpu.validate(&objs[rng.gen_range(0..n)].bo, Placement::Vram);
            }
            7 if n > 0 => {
                let o = &mut objs[rng.gen_range(0..n)];
                if o.pins > 0 && rng.gen_bool(0.7) {
                    o.bo.unpin().unwrap();
                    o.pins -= 1;
                } else if o.pins < 2 {
                    o.bo.pin().unwrap();
                    o.pins += 1;
                }
            }
            8 if n > 0 => {
                let o = &mut objs[rng.gen_range(0..n)];
                if o.import.is_none() {
                    let buf = gpu.export(&o.bo).unwrap();
                    let imp = TestImporter::new(rng.gen_bool(0.5));
                    let att = attach_dynamic(&buf, &dma, "isp0", &imp);
                    o.import = Some((buf, att, imp));
                }
                let (_, att, imp) = o.import.as_ref().unwrap();
                match imp.try_read(att, o.want.len()) {
                    Ok(got) => assert!(got == o.want, "importer of {} read other bytes", o.bo.id()),
                    // A pinned object in VRAM cannot move for a non-p2p importer.
                    Err(e) => assert!(o.pins > 0 && e.errno() == uapi::Errno::EBUSY, "{e}"),
                }
            }
            9 if n > 0 => {
                let i = rng.gen_range(0..n);
                let o = objs.swap_remove(i);
                if let Some((buf, att, imp)) = o.import {
                    imp.unmap(&att);
                    buf.detach(att).unwrap();
                }
            }
            _ => {}
        }
        if !objs.is_empty() {
            check(&objs[rng.gen_range(0..objs.len())]);
        }
    }
    for o in &objs {
        check(o);
    }
    let stats = gpu.ttm_stats();
    assert!(
        jobs > 0 && stats.moves > 0,
        "the walk moved things: {stats:?}"
    );
    for o in objs {
        if let Some((buf, att, imp)) = o.import {
            imp.unmap(&att);
            buf.detach(att).unwrap();
        }
    }
    drop(vm);
    let end = gpu.ttm_stats();
    assert_eq!((end.vram_used, end.gtt_used), (0, 0), "{end:?}");
    assert_eq!(
        memory(&dma, &gpu),
        start,
        "every page and VRAM byte came back"
    );
    assert_eq!(dma.checker().total(), 0, "{:?}", dma.checker().findings());
}

#[test]
fn random_allocations_evictions_and_jobs_keep_bytes_and_balance_page_accounting() {
    for seed in [1, 2, 3] {
        run(seed, 300);
    }
}
