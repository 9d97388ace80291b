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
//! Every other frame it is offered goes back at once. On an explicit-sync link the frame it
//! reads comes with a sync_file, imported into the buffer's reservation object
//! (`IMPORT_SYNC_FILE`) before its `DMA_BUF_IOCTL_SYNC`, which blocks until the producer's fence
//! signaled, as a compositor's CPU path does: that block is the node's `fence_wait_us`, from the
//! frame's arrival (the reader takes one frame, so it is idle then and no two waits overlap) to
//! the signal. A frame it lets go it closes the sync_file of without waiting on it (no
//! `DMA_BUF_IOCTL_SYNC`, no wait counted); the runner still hands that buffer back only once
//! the producer's fence signaled (for a V4L2 producer, its DQBUF comes then anyway), and
//! nothing queues behind it meanwhile: its producer is busy until then. A read that fails
//! gives back what it took (the vmap, an opened bracket) at once. Runs on the loop's thread,
//! which owns [`Sched`].

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
    let Some(bi) = s.w.nodes[n].ready.get(&li).and_then(|q| q.front().copied()) else {
        return false;
    };
    let want = s.w.nodes[n].desc.params.frame.unwrap_or(0);
    let (src, frame, expected) = match &s.w.buf(bi).state {
        BufState::Ready { meta, .. } => (meta.src, meta.frame, meta.checksum),
        _ => (usize::MAX, u64::MAX, 0),
    };
    let reads = frame == want && !s.thumbnailed.contains(&n);
    // Explicit sync (module doc): the frame it reads waits for its sync_file (imported into the
    // buffer's resv, fences.rs); one it lets go waits uncounted for the producer's fence.
    let waited = s.w.nodes[n].fence_wait;
    let held = match reads {
        true => !s.implicit_acquire(n, bi, now),
        false => producer_pending(s, n, bi, now),
    };
    if held {
        return false;
    }
    // The wait that just ended, as a slice on the node's process (as a device job's, start.rs).
    let wait = s.w.nodes[n].fence_wait.saturating_sub(waited);
    if wait > VirtualTime::ZERO {
        let node = &s.w.nodes[n].desc;
        let (process, name) = (node.process_name().to_string(), node.name.clone());
        let track = s.w.trace.process_track(&process, &format!("{name} fences"));
        let label = format!("{name} waits for fences");
        let (start, f) = (now.saturating_sub(wait), Some(frame));
        s.w.trace.job(
            track,
            &label,
            start,
            now,
            None,
            0,
            f,
            JobCategory::FenceWait,
        );
    }
    if let Some(q) = s.w.nodes[n].ready.get_mut(&li) {
        q.pop_front();
    }
    // Each thumbnailer takes its one frame; the first JPEG made is the run's thumbnail.
    if reads && s.thumbnailed.insert(n) {
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

/// The producer's fence of the frame in buffer `bi` has not signaled at `now` (a frame that
/// travelled with a sync_file for reader `n`, before its producer's job ended).
fn producer_pending(s: &Sched<'_>, n: usize, bi: usize, now: VirtualTime) -> bool {
    let b = s.w.buf(bi);
    let unsignaled = b.acquire.get(&n).is_some_and(|(p, fd)| {
        p.file(*fd)
            .ok()
            .and_then(|f| f.as_sync_file().map(|sf| !sf.fence().is_signaled()))
            .unwrap_or(false)
    });
    b.fence_end.is_some_and(|fe| fe > now) || unsignaled
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
