//! Each buffer's placement reason for the report (`buffers[].reason`, see
//! [`crate::report::reason`]), read at the end of the run from what the exporters recorded.

use super::world::{BufRt, ExporterHandle, World};
use crate::report::{BufferReason, MigrationReport, ReasonDecision};

/// The reason of buffer `b`; `migrations` are the run's, in the order they happened (a
/// constraint exporter's k-th migration reason is the buffer's k-th migration there).
pub(super) fn buffer_reason(
    w: &World,
    b: &BufRt,
    migrations: &[MigrationReport],
) -> Option<BufferReason> {
    let decisions = match &b.exporter {
        ExporterHandle::Constraint(exp) => {
            let mut frames = migrations
                .iter()
                .filter(|m| m.buffer == b.name)
                .map(|m| m.frame);
            exp.placement_reasons()
                .iter()
                .map(|r| {
                    let frame = r.cause.as_ref().and_then(|_| frames.next());
                    ReasonDecision::from_constraint(r, frame)
                })
                .collect()
        }
        ExporterHandle::Heap(h) => {
            let hb = b.buf.exporter_ops::<kernel::heap::buffer::HeapBuffer>()?;
            let runs: Vec<(u64, u64)> = hb.runs().iter().map(|&(pa, l)| (pa.0, l)).collect();
            let link = &w.links[b.link].desc;
            let cause = match (h.as_str(), link.memory) {
                ("udmabuf", _) => {
                    "udmabuf: the producer's memfd pages, wherever shmem put them; importers' \
                     constraints are not consulted"
                        .to_string()
                }
                _ => format!(
                    "dma-heap {h}: the heap allocates by its own rule at DMA_HEAP_IOCTL_ALLOC, \
                     before any importer attaches"
                ),
            };
            vec![ReasonDecision::unconstrained(
                &cause,
                h,
                b.buf.size(),
                &runs,
            )]
        }
        ExporterHandle::Vb2 => {
            let exp = b.buf.exporter_ops::<vb2::Vb2Exporter>()?;
            let runs: Vec<(u64, u64)> = exp
                .mem()
                .phys_runs()
                .iter()
                .map(|&(pa, l)| (pa.0, l))
                .collect();
            vec![ReasonDecision::unconstrained(
                "vb2 MMAP: the producer's capture queue allocated it for its own device \
                 (REQBUFS), exported with VIDIOC_EXPBUF",
                "vb2 mmap",
                b.buf.size(),
                &runs,
            )]
        }
        ExporterHandle::Gpu(bo) => {
            let p = bo.placement()?;
            let mut d = ReasonDecision::unconstrained(
                "GPU TTM: the driver places its objects (VRAM, GTT, SYSTEM) by its own \
                 preference and evicts under pressure",
                &p.to_string(),
                b.buf.size(),
                &[],
            );
            if let Some(g) = d.groups.first_mut() {
                g.range_count = bo.phys_runs().unwrap_or(0);
                g.contiguous = bo.phys_runs() == Some(1);
            }
            vec![d]
        }
    };
    Some(BufferReason { decisions })
}
