//! The built-in demo: one camera frame through the default SoC, every byte accounted for.
//!
//! 1. Allocate a 1920x1080 NV12 frame for `camera0` (no IOMMU, 32-bit mask) and `isp0` (behind
//!    `smmu0`) at once — seed 002's `dma_alloc_attrs_for_devices`. Because the camera has no
//!    IOMMU, the memory must be physically contiguous and below its mask: it comes from CMA.
//! 2. The camera DMA-writes a test pattern at its bus address (the physical address).
//! 3. The ISP reads the frame through its IOMMU (an I/O virtual address) and checks the bytes.
//! 4. The ISP writes a processed frame into scattered pages that its IOMMU makes contiguous; the
//!    CPU, which peeked at that buffer while the device owned it, first reads stale cache lines
//!    (the checker names the missing `dma_sync_sg_for_cpu`), then syncs and reads the right bytes.
//! 5. Two refused accesses: the ISP touching an IOVA nobody mapped (an IOMMU fault, no byte
//!    touched) and the 30-bit display engine addressing memory above its mask.
//! 6. Everything is unmapped and freed; the checker confirms nothing leaked.

use dma::{DeviceNeeds, DmaApi, DmaAttrs, DmaDirection, FindingKind, SegmentLimits, SgTable};
use soc::{human_size, AllocRequest, DmaAddr, Page, Soc, SocDesc};
use std::error::Error;
use std::io::Write;

const WIDTH: u64 = 1920;
const HEIGHT: u64 = 1080;
/// An NV12 frame: a full-resolution luma plane and a half-resolution interleaved chroma plane.
const FRAME_BYTES: u64 = WIDTH * HEIGHT * 3 / 2;

/// What the demo established, for the exit code and the tests.
#[derive(Debug)]
pub struct Summary {
    /// Every checksum matched where it should, and the stale read was caught.
    pub verified: bool,
    /// Checker findings by kind name.
    #[cfg_attr(not(test), allow(dead_code))]
    pub findings: Vec<(String, u64)>,
}

/// FNV-1a, 64 bit: the checksum sinks compare against what sources produced.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// A moving-gradient NV12 test pattern.
fn test_pattern() -> Vec<u8> {
    let mut frame = vec![0u8; FRAME_BYTES as usize];
    let (luma, chroma) = frame.split_at_mut((WIDTH * HEIGHT) as usize);
    for (i, px) in luma.iter_mut().enumerate() {
        let (x, y) = (i as u64 % WIDTH, i as u64 / WIDTH);
        *px = ((x + 2 * y) % 256) as u8;
    }
    for (i, px) in chroma.iter_mut().enumerate() {
        *px = if i % 2 == 0 { 128 } else { (i / 2 % 256) as u8 };
    }
    frame
}

/// The ISP's "processing": invert the luma plane, keep chroma.
fn process(frame: &[u8]) -> Vec<u8> {
    let luma = (WIDTH * HEIGHT) as usize;
    frame
        .iter()
        .enumerate()
        .map(|(i, &b)| if i < luma { 255 - b } else { b })
        .collect()
}

/// Runs the demo, printing each step to `out`.
pub fn run(out: &mut impl Write) -> Result<Summary, Box<dyn Error>> {
    let soc = Soc::new(SocDesc::default_soc())?;
    let api = DmaApi::new(&soc);
    let mut verified = true;

    writeln!(
        out,
        "dmabuf demo: one camera frame through the default SoC\n"
    )?;
    writeln!(out, "machine:")?;
    for bank in soc.mem().banks() {
        writeln!(
            out,
            "  bank {:<10} {:<12} {:>#14x}  {}",
            bank.name(),
            bank.kind(),
            bank.base().0,
            human_size(bank.size())
        )?;
    }
    for dev in soc.devices() {
        writeln!(
            out,
            "  device {:<9} mask {:>#12x}  {:<14} {}",
            dev.name(),
            dev.dma_mask(),
            dev.desc()
                .iommu
                .as_deref()
                .map_or("direct".to_string(), |i| format!("behind {i}")),
            if dev.is_coherent() {
                "coherent"
            } else {
                "non-coherent"
            },
        )?;
    }

    // 1. One allocation for two devices with different views of memory.
    let cam = api.device("camera0")?;
    let isp = api.device("isp0")?;
    let display = api.device("display0")?;
    let frame = api.alloc_attrs_for_devices(
        &[DeviceNeeds::new(&cam), DeviceNeeds::new(&isp)],
        FRAME_BYTES,
        DmaAttrs::NONE,
    )?;
    let phys = frame.phys_addr();
    let bank = soc.mem().bank_of(phys).map_or("?", |b| b.name());
    let cam_addr = frame.dma_addr("camera0").ok_or("no camera0 handle")?;
    let isp_addr = frame.dma_addr("isp0").ok_or("no isp0 handle")?;
    writeln!(
        out,
        "\n1. allocated a {WIDTH}x{HEIGHT} NV12 frame ({}) for camera0 + isp0",
        human_size(FRAME_BYTES)
    )?;
    writeln!(
        out,
        "   placement: {} at {phys} in {bank} (camera0 has no IOMMU)",
        if frame.is_contiguous() {
            "physically contiguous"
        } else {
            "scattered"
        }
    )?;
    writeln!(
        out,
        "   camera0 sees it at bus address {cam_addr} (= physical)"
    )?;
    writeln!(
        out,
        "   isp0    sees it at IOVA        {isp_addr} (through smmu0)"
    )?;

    // 2. The camera produces a frame.
    let pattern = test_pattern();
    let sum = checksum(&pattern);
    api.device_write(&cam, cam_addr, &pattern)?;
    writeln!(
        out,
        "\n2. camera0 DMA-wrote the test pattern directly: checksum {sum:016x}"
    )?;

    // 3. The ISP reads it through its IOMMU.
    let mut seen = vec![0u8; FRAME_BYTES as usize];
    api.device_read(&isp, isp_addr, &mut seen)?;
    let ok = checksum(&seen) == sum;
    verified &= ok;
    writeln!(
        out,
        "\n3. isp0 read the frame through smmu0: checksum {:016x} {}",
        checksum(&seen),
        verdict(ok)
    )?;

    // 4. The ISP writes its output into scattered pages that its IOMMU makes contiguous.
    let npages = FRAME_BYTES.div_ceil(soc::PAGE_SIZE);
    let mut pages: Vec<Page> = Vec::with_capacity(npages as usize);
    let mut spacers: Vec<Page> = Vec::with_capacity(npages as usize);
    for _ in 0..npages {
        // Interleave a spacer page so no two output pages are physically adjacent.
        pages.push(soc.pages().alloc_pages(&AllocRequest::new(0))?);
        spacers.push(soc.pages().alloc_pages(&AllocRequest::new(0))?);
    }
    for p in spacers.drain(..) {
        api.free_pages(p)?;
    }
    let mut out_sgt = SgTable::from_pages(&pages, SegmentLimits::of_device(&isp)?)?;
    api.map_sg(&isp, &mut out_sgt, DmaDirection::FromDevice, DmaAttrs::NONE)?;
    let out_iova = out_sgt.dma_address().ok_or("output not mapped")?;
    writeln!(
        out,
        "\n4. output: {} scattered pages ({} sg entries) mapped for isp0 as one IOVA range at {out_iova}",
        pages.len(),
        out_sgt.orig_nents()
    )?;

    // The CPU peeks at the output while the device owns it: its cache now holds the old lines.
    let mut peek = [0u8; 64];
    soc.cpu().read(pages[0].addr, &mut peek)?;
    let processed = process(&seen);
    let out_sum = checksum(&processed);
    api.device_write(&isp, out_iova, &processed)?;
    writeln!(
        out,
        "   isp0 DMA-wrote the processed frame: checksum {out_sum:016x}"
    )?;

    let mut cpu_view = vec![0u8; processed.len()];
    read_pages(&api, &pages, &mut cpu_view)?;
    let stale = checksum(&cpu_view) != out_sum;
    let caught = api.checker().count(FindingKind::CpuStaleRead) > 0;
    verified &= stale && caught;
    writeln!(
        out,
        "   CPU read without dma_sync_sg_for_cpu: checksum {:016x} {} — checker: {}",
        checksum(&cpu_view),
        if stale {
            "(stale, as expected)"
        } else {
            "(unexpectedly fresh)"
        },
        api.checker()
            .findings_of(FindingKind::CpuStaleRead)
            .first()
            .map_or("nothing".to_string(), |f| f.to_string())
    )?;
    api.sync_sg_for_cpu(&isp, &out_sgt, DmaDirection::FromDevice)?;
    read_pages(&api, &pages, &mut cpu_view)?;
    let ok = checksum(&cpu_view) == out_sum;
    verified &= ok;
    writeln!(
        out,
        "   CPU read after dma_sync_sg_for_cpu: checksum {:016x} {}",
        checksum(&cpu_view),
        verdict(ok)
    )?;

    // 5. Refused accesses touch nothing.
    let mut probe = [0u8; 16];
    // An IOVA inside isp0's aperture that nothing maps (the allocator works top-down).
    let bad_iova = DmaAddr(out_iova.0 - (64 << 20));
    let domain = isp.iommu_domain().ok_or("isp0 has no IOMMU domain")?;
    if domain.iova_to_phys(bad_iova).is_some() {
        return Err(format!("demo assumption broken: {bad_iova} is mapped").into());
    }
    match api.device_read(&isp, bad_iova, &mut probe) {
        Err(e) => writeln!(out, "\n5. isp0 read of an unmapped IOVA refused: {e}")?,
        Ok(()) => {
            verified = false;
            writeln!(out, "\n5. isp0 read of an unmapped IOVA was NOT refused")?
        }
    }
    let high = DmaAddr(soc.mem().bank_by_name("dram1")?.base().0);
    match api.device_write(&display, high, &[0xff; 16]) {
        Err(e) => writeln!(out, "   display0 write above its 30-bit mask refused: {e}")?,
        Ok(()) => {
            verified = false;
            writeln!(out, "   display0 write above its mask was NOT refused")?
        }
    }

    // 6. Tear down.
    api.unmap_sg(&isp, &mut out_sgt, DmaDirection::FromDevice, DmaAttrs::NONE)?;
    for p in pages {
        api.free_pages(p)?;
    }
    api.free_attrs(frame)?;
    let leaks: usize = ["camera0", "isp0", "display0"]
        .iter()
        .map(|d| api.checker().check_leaks(d))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .sum();
    verified &= leaks == 0;
    writeln!(
        out,
        "\n6. unmapped and freed everything; live mappings left: {leaks}"
    )?;

    writeln!(out, "\ntraffic:")?;
    for dev in soc.devices() {
        let s = dev.stats();
        if s.transfers + s.faults > 0 {
            writeln!(
                out,
                "  {:<9} read {:>10}  wrote {:>10}  transfers {:>3}  refused {}",
                dev.name(),
                human_size(s.bytes_read),
                human_size(s.bytes_written),
                s.transfers,
                s.faults
            )?;
        }
    }
    let findings: Vec<(String, u64)> = api
        .checker()
        .counts()
        .into_iter()
        .map(|(k, n)| (k.name().to_string(), n))
        .collect();
    writeln!(out, "checker findings:")?;
    for (kind, n) in &findings {
        writeln!(out, "  {kind:<24} {n}")?;
    }
    writeln!(
        out,
        "host memory committed for a {} machine: {}",
        human_size(soc.mem().banks().iter().map(|b| b.size()).sum()),
        human_size(soc.mem().committed_bytes())
    )?;
    writeln!(
        out,
        "\nresult: {}",
        if verified {
            "every byte verified"
        } else {
            "VERIFICATION FAILED"
        }
    )?;
    Ok(Summary { verified, findings })
}

/// Reads the pages' bytes in order through the CPU cache (and the checker).
fn read_pages(api: &DmaApi, pages: &[Page], buf: &mut [u8]) -> Result<(), Box<dyn Error>> {
    for (chunk, page) in buf.chunks_mut(soc::PAGE_SIZE as usize).zip(pages) {
        api.cpu_read(page.addr, chunk)?;
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "(matches)"
    } else {
        "(MISMATCH)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_verifies_every_byte_and_catches_the_stale_read() {
        let mut out = Vec::new();
        let summary = run(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(summary.verified, "{text}");
        assert!(text.contains("physically contiguous"), "{text}");
        let count = |k: &str| {
            summary
                .findings
                .iter()
                .find(|(n, _)| n == k)
                .map_or(0, |(_, n)| *n)
        };
        assert!(count("cpu-stale-read") >= 1, "{text}");
        assert_eq!(count("leak"), 0, "{text}");
        assert_eq!(count("stale-cpu-data"), 0, "{text}");
    }

    #[test]
    fn checksum_tells_frames_apart() {
        let a = test_pattern();
        let b = process(&a);
        assert_ne!(checksum(&a), checksum(&b));
        assert_eq!(checksum(&a), checksum(&test_pattern()));
    }
}
