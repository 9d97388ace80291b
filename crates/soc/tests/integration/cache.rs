//! The CPU's write-back cache: dirty lines, maintenance, eviction, stale lines.

use crate::device::observed_soc;
use ::soc::{ByteSize, DmaAddr, PhysAddr, Soc, SocDesc, SocError, CACHE_LINE_SIZE};
use std::sync::Arc;

/// The default SoC with a cache of `lines` lines.
fn soc_with_cache(lines: u64) -> Arc<Soc> {
    let mut desc = SocDesc::default_soc();
    desc.cpu_cache.size = ByteSize(lines * CACHE_LINE_SIZE);
    Soc::new(desc).unwrap()
}

fn mem_bytes(soc: &Soc, pa: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    soc.mem().read(PhysAddr(pa), &mut v).unwrap();
    v
}

#[test]
fn cpu_writes_stay_in_dirty_lines_until_cleaned() {
    let soc = soc_with_cache(16);
    let cpu = soc.cpu();
    cpu.write(PhysAddr(0x1000 + 60), &[1; 8]).unwrap(); // straddles two lines
    assert_eq!(
        cpu.dirty_bytes(PhysAddr(0x1000), 128),
        128,
        "whole lines are dirty"
    );
    assert_eq!(cpu.dirty_bytes(PhysAddr(0x1000 + 60), 8), 8);
    assert_eq!(mem_bytes(&soc, 0x1000 + 60, 8), [0; 8]);
    let mut back = [0u8; 8];
    cpu.read(PhysAddr(0x1000 + 60), &mut back).unwrap();
    assert_eq!(back, [1; 8], "the CPU sees its own writes");
    cpu.clean(PhysAddr(0x1000 + 63), 2).unwrap(); // touches both lines
    assert_eq!(mem_bytes(&soc, 0x1000 + 60, 8), [1; 8]);
    assert_eq!(cpu.dirty_bytes(PhysAddr(0x1000), 128), 0);
    assert_eq!(
        cpu.cached_bytes(PhysAddr(0x1000), 128),
        128,
        "clean keeps lines cached"
    );
}

#[test]
fn cache_eviction_writes_back_dirty_lines() {
    let soc = soc_with_cache(4);
    let cpu = soc.cpu();
    for i in 0..4u64 {
        cpu.write(PhysAddr(0x10_0000 + i * 64), &[i as u8 + 1; 64])
            .unwrap();
    }
    assert_eq!(
        mem_bytes(&soc, 0x10_0000, 64),
        [0; 64],
        "all four lines still cached"
    );
    cpu.write(PhysAddr(0x20_0000), &[9; 64]).unwrap(); // a fifth line evicts the oldest
    assert_eq!(
        mem_bytes(&soc, 0x10_0000, 64),
        [1; 64],
        "the oldest line was written back"
    );
    assert_eq!(
        mem_bytes(&soc, 0x10_0040, 64),
        [0; 64],
        "the others were not"
    );
    let st = cpu.stats();
    assert_eq!((st.evictions, st.writebacks), (1, 1));
    assert_eq!(cpu.cached_bytes(PhysAddr(0x10_0000), 64), 0);
}

#[test]
fn eviction_is_oldest_filled_first_and_hits_do_not_refresh() {
    let soc = soc_with_cache(2);
    let cpu = soc.cpu();
    let mut b = [0u8; 1];
    cpu.write(PhysAddr(0x1000), &[1]).unwrap(); // line A, oldest
    cpu.write(PhysAddr(0x2000), &[2]).unwrap(); // line B
    cpu.read(PhysAddr(0x1000), &mut b).unwrap(); // hit on A: FIFO, no refresh
    cpu.read(PhysAddr(0x3000), &mut b).unwrap(); // fill C: evicts A
    assert_eq!(mem_bytes(&soc, 0x1000, 1), [1]);
    assert_eq!(mem_bytes(&soc, 0x2000, 1), [0]);
    assert_eq!(cpu.dirty_bytes(PhysAddr(0x2000), 1), 1);
}

#[test]
fn invalidate_discards_dirty_lines_but_cleans_partial_edges() {
    let soc = soc_with_cache(64);
    let cpu = soc.cpu();
    // Four dirty lines, then invalidate [0x4020, 0x40e0): lines 1 and 2 wholly inside, lines 0
    // and 3 partly.
    cpu.write(PhysAddr(0x4000), &[5; 256]).unwrap();
    cpu.invalidate(PhysAddr(0x4020), 0xc0).unwrap();
    assert_eq!(
        mem_bytes(&soc, 0x4000, 64),
        [5; 64],
        "partial first line cleaned"
    );
    assert_eq!(
        mem_bytes(&soc, 0x4040, 128),
        [0; 128],
        "inner dirty lines discarded"
    );
    assert_eq!(
        mem_bytes(&soc, 0x40c0, 64),
        [5; 64],
        "partial last line cleaned"
    );
    assert_eq!(cpu.cached_bytes(PhysAddr(0x4000), 256), 0);
    assert_eq!(cpu.stats().discarded_dirty, 2);
    let mut back = [0xffu8; 256];
    cpu.read(PhysAddr(0x4000), &mut back).unwrap();
    assert_eq!(
        &back[64..192],
        &[0; 128][..],
        "the CPU writes in the inner lines are lost"
    );
}

#[test]
fn flush_writes_back_and_drops_lines() {
    let soc = soc_with_cache(64);
    let cpu = soc.cpu();
    cpu.write(PhysAddr(0x8000), &[6; 100]).unwrap();
    cpu.flush(PhysAddr(0x8000), 100).unwrap();
    assert_eq!(mem_bytes(&soc, 0x8000, 100), [6; 100]);
    assert_eq!(cpu.cached_bytes(PhysAddr(0x8000), 128), 0);
}

#[test]
fn cpu_reads_stale_line_after_noncoherent_device_write_without_invalidate() {
    let (soc, rec) = observed_soc();
    let camera = soc.device("camera0").unwrap();
    let pa = PhysAddr(0x20_0000);
    soc.mem().write(pa, &[1; 128]).unwrap();
    let mut buf = [0u8; 128];
    soc.cpu().read(pa, &mut buf).unwrap(); // two lines cached, clean
    camera.dma_write(DmaAddr(pa.0 + 16), &[2; 32]).unwrap(); // under line 0 only
    soc.cpu().read(pa, &mut buf).unwrap();
    assert_eq!(buf, [1; 128], "the CPU hits its old lines");
    assert_eq!(
        *rec.stale_reads.lock().unwrap(),
        vec![(PhysAddr(pa.0 + 16), 32)],
        "exactly the bytes the device wrote"
    );
    assert_eq!(soc.cpu().stats().stale_reads, 1);
    assert_eq!(
        mem_bytes(&soc, pa.0 + 16, 32),
        [2; 32],
        "memory has the device's data"
    );
    soc.cpu().invalidate(pa, 128).unwrap();
    soc.cpu().read(pa, &mut buf).unwrap();
    assert_eq!(&buf[16..48], &[2; 32]);
    assert_eq!(
        rec.stale_reads.lock().unwrap().len(),
        1,
        "no new report once invalidated"
    );
}

#[test]
fn dirty_stale_line_written_back_clobbers_the_device_data() {
    let soc = soc_with_cache(64);
    let camera = soc.device("camera0").unwrap();
    let pa = PhysAddr(0x30_0000);
    soc.cpu().write(pa, &[1; 4]).unwrap(); // the CPU dirties the line (shares it with the buffer)
    camera.dma_write(DmaAddr(pa.0 + 32), &[2; 32]).unwrap();
    soc.cpu().clean(pa, 4).unwrap(); // whole-line write-back
    assert_eq!(
        mem_bytes(&soc, pa.0 + 32, 32),
        [0; 32],
        "a line is written back whole, as on hardware"
    );
}

#[test]
fn uncached_write_leaves_a_cached_alias_stale() {
    let (soc, rec) = observed_soc();
    let cpu = soc.cpu();
    let mut b = [0u8; 4];
    cpu.read(PhysAddr(0x9000), &mut b).unwrap();
    cpu.write_uncached(PhysAddr(0x9000), &[4; 4]).unwrap();
    cpu.read(PhysAddr(0x9000), &mut b).unwrap();
    assert_eq!(b, [0; 4]);
    assert_eq!(rec.stale_reads.lock().unwrap().len(), 1);
    cpu.read_uncached(PhysAddr(0x9000), &mut b).unwrap();
    assert_eq!(b, [4; 4]);
}

#[test]
fn an_access_larger_than_the_cache_streams_through_it() {
    let soc = soc_with_cache(64); // 4 KiB
    let cpu = soc.cpu();
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 255) as u8).collect();
    let pa = PhysAddr(0x100_0000 + 8);
    cpu.write(pa, &data).unwrap();
    assert_eq!(
        cpu.dirty_bytes(pa, data.len() as u64),
        63 * 64 + 8,
        "only the last 64 lines stay cached"
    );
    assert_eq!(
        mem_bytes(&soc, pa.0, data.len() - 4096),
        &data[..data.len() - 4096]
    );
    let mut back = vec![0u8; data.len()];
    cpu.read(pa, &mut back).unwrap();
    assert_eq!(back, data);
    cpu.clean(pa, data.len() as u64).unwrap();
    assert_eq!(mem_bytes(&soc, pa.0, data.len()), data);
    assert!(cpu.cached_bytes(PhysAddr(0), u64::MAX) <= 4096);
}

#[test]
fn cache_operations_outside_memory_are_refused() {
    let soc = soc_with_cache(16);
    let cpu = soc.cpu();
    let hole = PhysAddr(0x9000_0000); // past carveout0, before dram1
    let out = SocError::OutOfRange { addr: hole, len: 4 };
    assert_eq!(cpu.write(hole, &[0; 4]).unwrap_err(), out);
    assert_eq!(cpu.read(hole, &mut [0; 4]).unwrap_err(), out);
    assert_eq!(cpu.clean(hole, 4).unwrap_err(), out);
    assert_eq!(cpu.invalidate(hole, 4).unwrap_err(), out);
    assert_eq!(cpu.flush(hole, 4).unwrap_err(), out);
    assert!(cpu.write(PhysAddr(u64::MAX - 1), &[0; 4]).is_err());
    assert_eq!(cpu.dirty_bytes(PhysAddr(u64::MAX - 1), u64::MAX), 0);
    cpu.clean(PhysAddr(0), 0).unwrap();
    assert_eq!(cpu.stats().misses, 0, "refused accesses touch nothing");
}
