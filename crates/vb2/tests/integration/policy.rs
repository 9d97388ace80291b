//! Seed 004's debate: STREAMOFF/QBUF/STREAMON cycles with the same fds under both map policies.

use crate::*;

/// Runs `n` cycles; returns vb2's counters and the exporter's (system heap) map-cache misses
/// and hits: the DMA-API maps the importer's maps really cost.
fn cycles(policy: MapPolicy, n: usize) -> (CounterSnapshot, u64, u64) {
    let r = Rig::new(BufType::VideoCapture, "isp0", &[4096], |c| {
        c.map_policy = policy
    });
    r.reqbufs(V4L2_MEMORY_DMABUF, 2).unwrap();
    let fds = [r.heap_fd(4096), r.heap_fd(4096)];
    for _ in 0..n {
        for (i, &fd) in fds.iter().enumerate() {
            r.fh.qbuf(&mut r.dmabuf_buf(i as u32, &[fd])).unwrap();
        }
        r.fh.streamon(r.t()).unwrap();
        let b = r.dqbuf(V4L2_MEMORY_DMABUF).unwrap();
        r.fh.qbuf(&mut r.dmabuf_buf(b.index, &[fds[b.index as usize]]))
            .unwrap();
        r.fh.streamoff(r.t()).unwrap();
    }
    let live = r.q.counters().snapshot();
    assert_eq!(live.warnings, 0, "no double map ('dmabuf already pinned')");
    let (mut misses, mut hits) = (0, 0);
    for fd in fds {
        let buf = r.process.get_dma_buf(fd).unwrap();
        let heap = buf
            .exporter_ops::<kernel::heap::buffer::HeapBuffer>()
            .unwrap();
        misses += heap.map_cache().misses();
        hits += heap.map_cache().hits();
    }
    r.fh.close();
    r.balanced();
    r.checker_clean();
    (live, misses, hits)
}

#[test]
fn thousand_streamoff_qbuf_streamon_cycles_under_both_policies() {
    let (keep, km, kh) = cycles(MapPolicy::KeepMapped, 1000);
    let (unmap, um, uh) = cycles(MapPolicy::UnmapOnDequeue, 1000);
    println!(
        "1000 cycles, 2 buffers: KeepMapped cost {} vb2 maps ({} attaches; exporter map_sg {km}, \
         cache hits {kh}); UnmapOnDequeue cost {} vb2 maps ({} attaches; exporter map_sg {um}, \
         cache hits {uh})",
        keep.map, keep.attach, unmap.map, unmap.attach
    );
    assert_eq!((km, um), (2, 2), "the heap's map cache absorbs the re-maps");
    assert_eq!((keep.map, keep.attach), (2, 2));
    assert_eq!(unmap.attach, 2);
    // Every QBUF after a DQBUF or a STREAMOFF maps again: 3 QBUFs per cycle, 2 maps at the start.
    assert_eq!(unmap.map, 3000);
}
