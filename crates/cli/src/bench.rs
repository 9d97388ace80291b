//! `dmabuf bench`: the project's headline measurements as ratios against baselines measured in
//! the same run, with short fixed-iteration loops (no statistics framework: a quick look, not a
//! benchmark suite; `cargo bench` has the careful ones).
//!
//! | measurement | baseline |
//! |---|---|
//! | a 4 MiB DMA write by `isp0` through its IOMMU | `memcpy` of 4 MiB on the host |
//! | fence signal -> a waiting thread wakes | a `Mutex` + `Condvar` handoff |
//! | a cached re-map of an attachment (seed 003) | the first map of a fresh buffer |
//! | a 4 MiB migration on a late attach (seed 000) | `memcpy` of 4 MiB |
//!
//! Each line ends with `time / baseline time`: below 1 the measurement is faster than its
//! baseline, above 1 slower. The migration line includes the placement decision, the CMA
//! allocation, the DMA copy and the remap; its bytes are written before and checked after.

use constraint::{ConstraintExporter, ExportSpec};
use dma::DmaDirection;
use std::error::Error;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const SIZE: usize = 4 << 20;

fn time(
    iters: u32,
    mut f: impl FnMut() -> Result<(), Box<dyn Error>>,
) -> Result<Duration, Box<dyn Error>> {
    f()?; // warm up
    let t = Instant::now();
    for _ in 0..iters {
        f()?;
    }
    Ok(t.elapsed() / iters)
}

fn memcpy(iters: u32) -> Result<Duration, Box<dyn Error>> {
    let src = vec![7u8; SIZE];
    let mut dst = vec![0u8; SIZE];
    time(iters, || {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&dst);
        Ok(())
    })
}

fn row(
    out: &mut impl Write,
    what: &str,
    m: Duration,
    base: &str,
    b: Duration,
) -> std::io::Result<()> {
    let ratio = m.as_secs_f64() / b.as_secs_f64().max(1e-12);
    writeln!(
        out,
        "{what:<44} {:>10.2?}  vs {base:<26} {:>10.2?}  = {ratio:.2}x",
        m, b
    )
}

/// Runs the four measurements and prints one line each.
pub fn run(out: &mut impl Write) -> Result<(), Box<dyn Error>> {
    writeln!(
        out,
        "measurement vs baseline, same run; the last column is time / baseline time"
    )?;
    let kernel = kernel::Kernel::boot(soc::SocDesc::default_soc())?;
    let dma = kernel.dma().clone();
    let isp = dma.device("isp0")?;
    let copy = memcpy(20)?;

    // 1. DMA write through the IOMMU.
    let (buf, _exp) = ConstraintExporter::export(&dma, ExportSpec::new(SIZE as u64))?;
    let att = buf.attach(&isp)?;
    let sgt = att.map_unlocked(DmaDirection::FromDevice)?;
    let addr = sgt.dma_address().ok_or("no DMA address")?;
    let data = vec![0x5au8; SIZE];
    let dma_write = time(20, || Ok(dma.device_write(&isp, addr, &data)?))?;
    att.unmap_unlocked(sgt)?;
    row(
        out,
        "DMA write 4 MiB by isp0 through smmu0",
        dma_write,
        "memcpy 4 MiB",
        copy,
    )?;

    // 2. Fence signal -> wake, against a condvar handoff.
    let ctx = fence::context_alloc(1)?;
    let iters = 200u32;
    let mut fence_total = Duration::ZERO;
    for i in 0..iters {
        let f = fence::SimpleFenceOps::create("bench", "ring", ctx, u64::from(i) + 1);
        let w = f.clone();
        let waiter = std::thread::spawn(move || {
            let _ = w.wait(None);
            Instant::now()
        });
        std::thread::sleep(Duration::from_micros(50));
        let t = Instant::now();
        f.signal()?;
        let woke = waiter.join().map_err(|_| "waiter panicked")?;
        fence_total += woke.saturating_duration_since(t);
    }
    let mut cv_total = Duration::ZERO;
    for _ in 0..iters {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p2 = pair.clone();
        let waiter = std::thread::spawn(move || {
            let (m, c) = &*p2;
            let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
            while !*g {
                g = c.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            Instant::now()
        });
        std::thread::sleep(Duration::from_micros(50));
        let t = Instant::now();
        {
            let (m, c) = &*pair;
            *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
            c.notify_one();
        }
        let woke = waiter.join().map_err(|_| "waiter panicked")?;
        cv_total += woke.saturating_duration_since(t);
    }
    row(
        out,
        "fence signal -> waiter wakes",
        fence_total / iters,
        "Mutex+Condvar handoff",
        cv_total / iters,
    )?;

    // 3. Cached re-map against a first map.
    let cached = time(200, || {
        let sgt = att.map_unlocked(DmaDirection::ToDevice)?;
        att.unmap_unlocked(sgt)?;
        Ok(())
    })?;
    let mut first_total = Duration::ZERO;
    let n = 20u32;
    for _ in 0..n {
        let (b, _e) = ConstraintExporter::export(&dma, ExportSpec::new(SIZE as u64))?;
        let a = b.attach(&isp)?;
        let t = Instant::now();
        let sgt = a.map_unlocked(DmaDirection::ToDevice)?;
        first_total += t.elapsed();
        a.unmap_unlocked(sgt)?;
        b.detach(a)?;
    }
    row(
        out,
        "cached re-map (map+unmap, seed 003)",
        cached,
        "first map of a fresh buffer",
        first_total / n,
    )?;

    // 4. Migration on a late attach, against memcpy.
    let mut mig_total = Duration::ZERO;
    let display = dma.device("display0")?;
    for _ in 0..n {
        let (b, _e) = ConstraintExporter::export(&dma, ExportSpec::new(SIZE as u64))?;
        let a = b.attach(&isp)?;
        let sgt = a.map_unlocked(DmaDirection::FromDevice)?;
        // Real bytes to move: memory never written would cost the copy nothing.
        let at = sgt.dma_address().ok_or("no DMA address")?;
        dma.device_write(&isp, at, &data)?;
        a.unmap_unlocked(sgt)?;
        let t = Instant::now();
        let d = b.attach(&display)?; // 30-bit, no IOMMU: the buffer moves to CMA
        mig_total += t.elapsed();
        // The display reads the moved bytes at its (physical) bus address.
        let sgt = d.map_unlocked(DmaDirection::ToDevice)?;
        let mut back = vec![0u8; SIZE];
        dma.device_read(
            &display,
            sgt.dma_address().ok_or("no DMA address")?,
            &mut back,
        )?;
        d.unmap_unlocked(sgt)?;
        if back != data {
            return Err("migration bench: the moved buffer does not hold what was written".into());
        }
        b.detach(d)?;
        b.detach(a)?;
    }
    row(
        out,
        "migration of 4 MiB on a late attach",
        mig_total / n,
        "memcpy 4 MiB",
        copy,
    )?;
    buf.detach(att)?;
    Ok(())
}
