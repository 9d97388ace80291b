//! The thumbnailer node: schedules the thumbnailer driver's job
//! ([`drivers::thumbnailer::ThumbnailJob`]: a CPU read of one frame through `dma_buf_vmap`,
//! bracketed by `DMA_BUF_IOCTL_SYNC` (begin/end_cpu_access), and its JPEG encode) on the node's
//! CPU lane of the virtual clock, dated by the driver's time model (the read, then the encode);
//! the first JPEG made is the run's `thumbnail.jpg`. The runner reads no byte itself.
//!
//! # The concept
//! Like every device job, the read has a completion event ([`Ev::ReadDone`]): the bytes move
//! when it starts, and the reader holds the buffer until it ends. Only then does it give the
//! buffer back (`end_cpu_access` is over: the producer may queue it again — a CPU reader adds
//! no fence to the reservation object, its release is the hand-back) and is the frame's read
//! over for its accounting ([`super::outcome`]). The node is busy meanwhile: it is one thread
//! of user space, and frames it is offered during the read wait in its queue.
//!
//! Every other frame it is offered goes back at once. On an explicit-sync link the frame's
//! sync_file is imported into the buffer's reservation object first and the read waits for it,
//! as a compositor's CPU path does; the wait counts from when the reader comes to the frame
//! (its arrival, or the end of what it was doing: its read of an earlier frame, or its wait
//! for an earlier frame's fence), so waits never overlap and the node's `fence_wait_us` is the
//! time its thread was blocked on fences. A read that fails gives back what it took (the vmap,
//! an opened bracket) at once. Runs on the loop's thread, which owns [`Sched`].

use super::sched::{Ev, Sched};
use super::world::{BufState, RunFailure};
use crate::clock::VirtualTime;
use crate::report::JobCategory;
use drivers::thumbnailer::{CpuSync, ThumbnailJob, ThumbnailJobError};

/// The thumbnailer takes its frame (the driver's job on its CPU lane, dated from `now` by the
/// driver's cost) and lets every other frame go at once. `false` if it took nothing
/// (its frame's sync_file has not signaled yet).
pub(crate) fn thumbnail_step(s: &mut Sched<'_>, n: usize, now: VirtualTime) -> bool {
    let li = s.w.nodes[n].inputs[0];
    // Explicit sync: the frame's sync_file goes into the buffer's resv first (fences.rs).
    let head = s.w.nodes[n].ready.get(&li).and_then(|q| q.front().copied());
    if head.is_some_and(|bi| !s.implicit_acquire(n, bi, now)) {
        return false;
    }
    let Some(bi) = s.w.nodes[n].ready.get_mut(&li).and_then(|q| q.pop_front()) else {
        return false;
    };
    let want = s.w.nodes[n].desc.params.frame.unwrap_or(0);
    let (src, frame, expected) = match &s.w.buf(bi).state {
        BufState::Ready { meta, .. } => (meta.src, meta.frame, meta.checksum),
        _ => (usize::MAX, u64::MAX, 0),
    };
    // Each thumbnailer takes its one frame; the first JPEG made is the run's thumbnail.
    if frame == want && s.thumbnailed.insert(n) {
        // skip_cache_sync: the read goes without DMA_BUF_IOCTL_SYNC (module `faults`).
        let sync = match s.fault_of(n) {
            Some(drivers::fault::Fault::SkipCacheSync) => {
                s.fault_used(n, Some((src, frame)));
                CpuSync::Skip
            }
            _ => CpuSync::Bracketed,
        };
        let job = plan(s, n, bi, frame, expected, sync);
        // The driver's job on the node's CPU lane, dated by the driver's time model.
        let cost = VirtualTime::from_duration(job.cost(s.w.kernel.soc()));
        let engine = s.w.nodes[n].engine_name.clone();
        let (start, end) =
            s.w.engines
                .entry(engine.clone())
                .or_default()
                .submit(now, cost);
        *s.counts.jobs.entry(engine).or_default() += 1;
        let name = s.w.buf(bi).name.clone();
        match job.execute() {
            Ok(out) => {
                // The reader holds the buffer until its job ends: a migration waits for it.
                let b = s.w.buf_mut(bi);
                b.busy_until = b.busy_until.max(end);
                s.w.nodes[n].busy = true;
                let _ = s.q.push(end, Ev::ReadDone(n, bi, (src, frame)));
                let track = s.w.nodes[n].track;
                s.w.trace.job(
                    track,
                    &format!("thumbnail frame {frame}"),
                    start,
                    end,
                    Some(&name),
                    out.bytes,
                    Some(frame),
                    JobCategory::Cpu,
                );
                s.thumbnail.get_or_insert(out.jpeg);
                if !out.verified {
                    // The frame stays tracked until this read (module `outcome`).
                    match s.frames.get_mut(&(src, frame)) {
                        Some(f) => f.corrupted = true,
                        // No tracked frame (its thumbnailer was not foreseen at capture): its
                        // wrong bytes still count.
                        None => s.counts.corrupted_untracked += 1,
                    }
                }
                return true;
            }
            Err(e) => s.errors.push(match e {
                ThumbnailJobError::Vmap(e) => {
                    RunFailure::new(&e, format!("thumbnailer vmap of {name}: {e}"))
                }
                ThumbnailJobError::Access(e) => RunFailure {
                    errno: "EIO".into(),
                    message: format!("thumbnailer reading {name}: {e}"),
                },
                ThumbnailJobError::NotNv12 => RunFailure {
                    errno: "EIO".into(),
                    message: format!(
                        "thumbnailer reading {name}: the frame is not an NV12 frame the JPEG \
                         encoder takes"
                    ),
                },
            }),
        }
    }
    s.release(bi, n);
    s.reader_done((src, frame), n);
    true
}

/// Thumbnailer `n`'s read of buffer `bi` (frame `key`) ends: the node is free again, the buffer
/// goes back to its producer (the last reader's release frees it) and the frame's read is over
/// (module doc).
pub(crate) fn read_done(s: &mut Sched<'_>, n: usize, bi: usize, key: (usize, u64)) {
    s.w.nodes[n].busy = false;
    s.release(bi, n);
    s.reader_done(key, n);
}

/// The driver's job for thumbnailer `n` on the frame in buffer `bi`: what user space knows of
/// the frame (the link's format, the node's `scale` and `quality`).
fn plan(
    s: &Sched<'_>,
    n: usize,
    bi: usize,
    frame: u64,
    expected: u64,
    sync: CpuSync,
) -> ThumbnailJob {
    let b = s.w.buf(bi);
    let node = &s.w.nodes[n].desc;
    let fmt = &s.w.links[b.link].format_planes;
    ThumbnailJob {
        buf: b.buf.clone(),
        planes: b.planes.clone(),
        width: fmt[0].bytes_per_line as u32,
        height: (fmt[0].size / fmt[0].bytes_per_line.max(1)) as u32,
        scale: node.params.scale.unwrap_or(8),
        quality: node.params.quality.unwrap_or(85),
        sync,
        frame,
        expected,
    }
}
