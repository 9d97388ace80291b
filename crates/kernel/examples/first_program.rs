//! A first program against the library: one machine, two processes, one buffer, two devices.
//!
//! `cargo run -p kernel --example first_program`
//!
//! 1. Boot the bundled default machine ([`Kernel::boot`]) and spawn two processes, a producer
//!    and a consumer.
//! 2. The producer allocates a buffer from the CMA heap (`/dev/dma_heap/cma0`) and passes the
//!    fd to the consumer (`SCM_RIGHTS`): the consumer gets its own fd to the same buffer.
//! 3. Each process attaches its device and maps the buffer for it: `camera0` addresses memory
//!    directly (no IOMMU), `isp0` sits behind `smmu0` and sees an I/O virtual address.
//! 4. The camera DMA-writes a frame, the ISP DMA-reads it: the bytes match.
//! 5. The producer's CPU writes a second frame through an mmap but leaves out the
//!    `DMA_BUF_IOCTL_SYNC` bracket: the bytes sit dirty in the CPU cache, the ISP (not coherent
//!    with that cache) reads the old frame, and the DMA-API checker reports `stale-cpu-data`.
//! 6. With the bracket, the cache is cleaned at the end of the CPU access and the ISP reads the
//!    new frame.
//!
//! Errors are printed with `Display` (`error: ENOMEM: ...`), as a program should.

use dma::{DmaDirection, FindingKind};
use kernel::Kernel;
use soc::SocDesc;
use std::error::Error;
use std::io::Write;
use uapi::ioctl::{O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE};

/// What the walk-through established (the test checks it).
#[derive(Debug)]
pub struct Outcome {
    /// The ISP read the camera's frame intact.
    pub device_to_device_ok: bool,
    /// What the ISP read after the CPU wrote without the sync (the old frame).
    pub read_without_sync: Vec<u8>,
    /// `stale-cpu-data` findings the checker reported for it.
    pub stale_findings: usize,
    /// What the ISP read after the CPU wrote inside the sync bracket.
    pub read_with_sync: Vec<u8>,
    /// Checker findings in total.
    pub findings: usize,
}

const LEN: u64 = 64 * 1024;

/// Runs the walk-through, printing each step to `out`.
pub fn run(out: &mut impl Write) -> Result<Outcome, Box<dyn Error>> {
    // 1. A machine and two processes on it.
    let kernel = Kernel::boot(SocDesc::default_soc())?;
    let producer = kernel.spawn();
    let consumer = kernel.spawn();
    writeln!(
        out,
        "1. booted the default machine (heaps: {}); processes {} and {}",
        kernel.heap_names().join(", "),
        producer.pid(),
        consumer.pid()
    )?;

    // 2. Allocate from a heap, pass the fd.
    let heap = producer.open_heap("cma0")?;
    let fd = producer.heap_alloc(heap, LEN, O_RDWR | O_CLOEXEC, 0)?;
    producer.close(heap)?;
    let theirs = producer.send_fd(fd, &consumer)?;
    writeln!(
        out,
        "2. producer allocated {LEN} bytes from cma0 as fd {fd}; the consumer received fd {theirs}"
    )?;

    // 3. Attach a device in each process and map the buffer for it.
    let dma = kernel.dma();
    let camera = dma.device("camera0")?;
    let isp = dma.device("isp0")?;
    let cam_att = producer.get_dma_buf(fd)?.attach(&camera)?;
    let isp_att = consumer.get_dma_buf(theirs)?.attach(&isp)?;
    let cam_sgt = cam_att.map_unlocked(DmaDirection::FromDevice)?;
    let isp_sgt = isp_att.map_unlocked(DmaDirection::ToDevice)?;
    let cam_addr = cam_sgt
        .dma_address()
        .ok_or("camera0 mapping has no address")?;
    let isp_addr = isp_sgt.dma_address().ok_or("isp0 mapping has no address")?;
    writeln!(
        out,
        "3. camera0 (no IOMMU) sees the buffer at bus address {cam_addr}; isp0 (behind smmu0) at IOVA {isp_addr}"
    )?;

    // 4. Device to device: the camera writes, the ISP reads.
    let frame1: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    dma.device_write(&camera, cam_addr, &frame1)?;
    let mut seen = vec![0u8; LEN as usize];
    dma.device_read(&isp, isp_addr, &mut seen)?;
    let device_to_device_ok = seen == frame1;
    let mut tail = [0u8; 4];
    dma.device_read(&isp, isp_addr + (LEN - 4), &mut tail)?;
    writeln!(
        out,
        "4. camera0 DMA-wrote frame 1, isp0 DMA-read it: {} (last bytes {tail:?})",
        if device_to_device_ok {
            "intact"
        } else {
            "CORRUPTED"
        }
    )?;

    // 5. The CPU writes frame 2 without DMA_BUF_IOCTL_SYNC: the ISP reads stale memory.
    let buf = producer.get_dma_buf(fd)?;
    let map = producer.mmap(fd, 0, LEN, PROT_READ | PROT_WRITE, true)?;
    let before = dma.checker().count(FindingKind::StaleCpuData);
    map.write(0, b"frame 2")?;
    let mut got = [0u8; 7];
    dma.device_read(&isp, isp_addr, &mut got)?;
    let stale_findings = (dma.checker().count(FindingKind::StaleCpuData) - before) as usize;
    writeln!(
        out,
        "5. CPU wrote \"frame 2\" without the sync; isp0 read {got:?}: frame 1's bytes, not \"frame 2\"\n   checker: {}",
        dma.checker()
            .findings_of(FindingKind::StaleCpuData)
            .last()
            .map_or("nothing".to_string(), |f| f.to_string())
    )?;
    let read_without_sync = got.to_vec();

    // 6. The same write inside the bracket (DMA_BUF_IOCTL_SYNC START/END): the right bytes.
    buf.begin_cpu_access(DmaDirection::ToDevice)?;
    map.write(0, b"frame 3")?;
    buf.end_cpu_access(DmaDirection::ToDevice)?;
    dma.device_read(&isp, isp_addr, &mut got)?;
    writeln!(
        out,
        "6. CPU wrote \"frame 3\" between SYNC_START and SYNC_END; isp0 read {:?}",
        String::from_utf8_lossy(&got)
    )?;

    // Tear down: unmap, detach, close; the checker confirms nothing leaked.
    producer.munmap(&map)?;
    cam_att.unmap_unlocked(cam_sgt)?;
    isp_att.unmap_unlocked(isp_sgt)?;
    producer.get_dma_buf(fd)?.detach(cam_att)?;
    consumer.get_dma_buf(theirs)?.detach(isp_att)?;
    producer.close(fd)?;
    consumer.close(theirs)?;
    let findings = dma.checker().total() as usize;
    writeln!(out, "checker findings in total: {findings}")?;
    Ok(Outcome {
        device_to_device_ok,
        read_without_sync,
        stale_findings,
        read_with_sync: got.to_vec(),
        findings,
    })
}

fn main() -> std::process::ExitCode {
    match run(&mut std::io::stdout().lock()) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
