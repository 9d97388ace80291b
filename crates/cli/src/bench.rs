//! `dmabuf bench`: the project's headline measurements as ratios against baselines measured in
//! the same run, with short fixed-iteration loops (no statistics framework: a quick look, not a
//! benchmark suite; `cargo bench` has the careful ones).
//!
//! | measurement | baseline |
//! |---|---|
//! | a 4 MiB DMA write by `isp0` through its IOMMU | `memcpy` of 4 MiB on the host |
//! | fence signal -> a parked waiter wakes (ping-pong with a persistent thread) | the same ping-pong over a `Mutex` + `Condvar` |
//! | a cached re-map of an attachment: map + unmap under the held reservation lock (seed 003) | the first map of a fresh buffer, under the lock too |
//! | a 4 MiB migration on a late attach (seed 000) | `memcpy` of 4 MiB |
//!
//! Each line ends with `time / baseline time`: below 1 the measurement is faster than its
//! baseline, above 1 slower. A measurement and its baseline are taken the same way: the
//! handoffs both between the same two long-lived threads (no thread spawn in the loop: that is
//! what criterion's `handoff` group in `crates/fence/benches/fence.rs` measures too), the maps
//! both with the reservation lock held across the loop (as `remap/cached` in
//! `crates/dmabuf/benches/map.rs`). The migration line includes the placement decision, the
//! CMA allocation, the DMA copy and the remap; its bytes are written before and checked after.
//!
//! `dmabuf bench pipeline [SCENARIO]` ([`pipeline`]) runs a scenario and, in the same process,
//! copies as many bytes as its devices moved with `copy_from_slice` on as many host threads:
//! the bound on how fast any simulator that moves every byte can run it. It also prints the
//! wall time the run's loop spent waiting for jobs whose bytes were still moving on the pool
//! (`scenario::run::CollectWaits`, timed with a wall clock the bench lends the run), as a share
//! of the run's wall time and by why the jobs were collected: what is left to overlap.

use constraint::{ConstraintExporter, ExportSpec};
use dma::DmaDirection;
use std::error::Error;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
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

    // 2. Fence signal -> wake, against a condvar handoff, both between two persistent threads.
    let iters = 2000u64;
    let fence_rt = fence_pingpong(iters)?;
    let cv_rt = condvar_pingpong(iters)?;
    row(
        out,
        "fence signal -> parked waiter wakes",
        fence_rt / (2 * iters as u32),
        "Mutex+Condvar handoff",
        cv_rt / (2 * iters as u32),
    )?;

    // 3. Cached re-map against a first map, both under the held reservation lock.
    let cached = {
        let mut guard = buf.resv().lock(None)?;
        let m = att.map(&mut guard, DmaDirection::ToDevice)?;
        att.unmap(&mut guard, m)?;
        let iters = 20_000u32;
        let t = Instant::now();
        for _ in 0..iters {
            let m = att.map(&mut guard, DmaDirection::ToDevice)?;
            att.unmap(&mut guard, std::hint::black_box(m))?;
        }
        t.elapsed() / iters
    };
    let mut first_total = Duration::ZERO;
    let n = 20u32;
    for _ in 0..n {
        let (b, _e) = ConstraintExporter::export(&dma, ExportSpec::new(SIZE as u64))?;
        let a = b.attach(&isp)?;
        {
            let mut guard = b.resv().lock(None)?;
            let t = Instant::now();
            let sgt = a.map(&mut guard, DmaDirection::ToDevice)?;
            first_total += t.elapsed();
            a.unmap(&mut guard, sgt)?;
        }
        b.detach(a)?;
    }
    row(
        out,
        "cached re-map (map+unmap, resv held, seed 003)",
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

/// `iters` round trips: this thread signals a fence a persistent echo thread waits on, the echo
/// signals one back. Returns the time of all round trips (two handoffs each).
fn fence_pingpong(iters: u64) -> Result<Duration, Box<dyn Error>> {
    let ctx = fence::context_alloc(2)?;
    let make = |c: u64| -> Vec<fence::DmaFence> {
        (1..=iters)
            .map(|s| fence::SimpleFenceOps::create("bench", "ping", c, s))
            .collect()
    };
    let (ping, pong) = (Arc::new(make(ctx)), Arc::new(make(ctx + 1)));
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        thread::spawn(move || -> Result<(), String> {
            for (a, b) in ping.iter().zip(pong.iter()) {
                a.wait(None).map_err(|e| e.to_string())?;
                b.signal().map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    };
    let start = Instant::now();
    for (a, b) in ping.iter().zip(pong.iter()) {
        a.signal()?;
        b.wait(None)?;
    }
    let elapsed = start.elapsed();
    echo.join().map_err(|_| "echo thread panicked")??;
    Ok(elapsed)
}

/// The same ping-pong over a counter, a `std` mutex and one condition variable per direction.
fn condvar_pingpong(iters: u64) -> Result<Duration, Box<dyn Error>> {
    struct Court {
        ball: Mutex<u64>,
        to_echo: Condvar,
        to_main: Condvar,
    }
    let court = Arc::new(Court {
        ball: Mutex::new(0),
        to_echo: Condvar::new(),
        to_main: Condvar::new(),
    });
    fn lock(c: &Court) -> std::sync::MutexGuard<'_, u64> {
        c.ball.lock().unwrap_or_else(|e| e.into_inner())
    }
    let echo = {
        let court = court.clone();
        thread::spawn(move || {
            for i in 0..iters {
                let mut b = lock(&court);
                while *b != 2 * i + 1 {
                    b = court.to_echo.wait(b).unwrap_or_else(|e| e.into_inner());
                }
                *b = 2 * i + 2;
                drop(b);
                court.to_main.notify_one();
            }
        })
    };
    let start = Instant::now();
    for i in 0..iters {
        *lock(&court) = 2 * i + 1;
        court.to_echo.notify_one();
        let mut b = lock(&court);
        while *b != 2 * i + 2 {
            b = court.to_main.wait(b).unwrap_or_else(|e| e.into_inner());
        }
    }
    let elapsed = start.elapsed();
    echo.join().map_err(|_| "echo thread panicked")?;
    Ok(elapsed)
}

/// What [`pipeline`] measured.
#[derive(Clone, Debug)]
pub struct PipelineFigures {
    /// Virtual duration of the run.
    pub virtual_time: Duration,
    /// Wall time of the run.
    pub wall: Duration,
    /// Bytes the devices read and wrote.
    pub bytes: u64,
    /// Host threads used (the run's and the copy's).
    pub threads: usize,
    /// Wall time of `copy_from_slice` of `bytes` on `threads` threads.
    pub copy: Duration,
    /// Whether the run verified every frame (exit code 0).
    pub verified: bool,
    /// The wall time the loop waited in collections, by why (`scenario::run::Why`).
    pub waits: scenario::run::CollectWaits,
}

/// `dmabuf bench pipeline`: runs `s` on `threads` host threads (`0`: the machine's cores),
/// then copies the bytes its devices moved with `copy_from_slice` on as many threads, in the
/// runner's piece size between buffers the size of a few frames. Prints wall time, the
/// real-time factor (virtual duration / wall) and the ratio to the copy bound.
pub fn pipeline(
    out: &mut impl Write,
    s: &scenario::Scenario,
    threads: usize,
) -> Result<PipelineFigures, Box<dyn Error>> {
    let threads = scenario::run::host_threads(threads);
    let t = Instant::now();
    let clock = scenario::run::HostClock(Arc::new(move || t.elapsed()));
    let o = scenario::run::run(
        s,
        &scenario::run::RunOptions {
            threads,
            host_clock: Some(clock),
            ..Default::default()
        },
    );
    let wall = t.elapsed();
    let bytes: u64 = o
        .report
        .devices
        .iter()
        .map(|d| d.bytes_read + d.bytes_written)
        .sum();
    let copy = copy_bound(bytes, threads);
    let f = PipelineFigures {
        virtual_time: Duration::from_secs_f64(o.report.duration_us.max(0.0) / 1e6),
        wall,
        bytes,
        threads,
        copy,
        verified: o.report.exit_code() == scenario::ExitCode::Verified,
        waits: o.collect_waits,
    };
    let secs = |d: Duration| d.as_secs_f64();
    writeln!(
        out,
        "scenario {} ({} frames, {} host threads): {}",
        s.name,
        s.frames,
        f.threads,
        if f.verified {
            "VERIFIED"
        } else {
            "NOT VERIFIED"
        }
    )?;
    writeln!(
        out,
        "virtual {:.3} s in {:.3} s wall: real-time factor {:.2}",
        secs(f.virtual_time),
        secs(f.wall),
        secs(f.virtual_time) / secs(f.wall).max(1e-9)
    )?;
    writeln!(
        out,
        "copy bound: copy_from_slice of the {:.1} GiB the devices moved on {} threads: {:.3} s \
         (real-time factor {:.2}); the run took {:.2}x the copy bound",
        f.bytes as f64 / (1u64 << 30) as f64,
        f.threads,
        secs(f.copy),
        secs(f.virtual_time) / secs(f.copy).max(1e-9),
        secs(f.wall) / secs(f.copy).max(1e-9)
    )?;
    writeln!(out, "{}", waits_line(&f.waits, f.wall))?;
    Ok(f)
}

/// The collections line: the wall time the loop waited for running jobs, over the run's
/// wall, then each reason's jobs and wait (the largest first).
pub fn waits_line(w: &scenario::run::CollectWaits, wall: Duration) -> String {
    let total = w.total();
    let jobs: u64 = w.by.values().map(|v| v.0).sum();
    let mut by: Vec<_> = w.by.iter().collect();
    by.sort_by_key(|e| std::cmp::Reverse(e.1 .1));
    let parts: Vec<String> = by
        .iter()
        .map(|(why, (n, d))| format!("{} {n} jobs {:.3} s", why.name(), d.as_secs_f64()))
        .collect();
    format!(
        "collections: the loop waited {:.3} s of {:.3} s wall ({:.2} of the run) for {jobs} \
         running jobs: {}",
        total.as_secs_f64(),
        wall.as_secs_f64(),
        total.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    )
}

/// Wall time of copying `bytes` with `copy_from_slice` on `threads` threads, each between its
/// own two 64 MiB buffers in 1 MiB pieces (a device job's piece, `drivers::frame::CHUNK`).
pub fn copy_bound(bytes: u64, threads: usize) -> Duration {
    const BUF: usize = 64 << 20;
    let piece = 1usize << 20;
    let threads = threads.max(1);
    let share = bytes / threads as u64;
    let mut bufs: Vec<(Vec<u8>, Vec<u8>)> = (0..threads)
        .map(|i| (vec![i as u8 + 1; BUF], vec![0u8; BUF]))
        .collect();
    let t = Instant::now();
    thread::scope(|sc| {
        for (src, dst) in bufs.iter_mut() {
            sc.spawn(move || {
                let mut left = share;
                let mut at = 0usize;
                while left > 0 {
                    let n = (left as usize).min(piece);
                    if at + n > BUF {
                        at = 0;
                    }
                    dst[at..at + n].copy_from_slice(std::hint::black_box(&src[at..at + n]));
                    at += n;
                    left -= n as u64;
                }
                std::hint::black_box(&dst);
            });
        }
    });
    t.elapsed()
}
