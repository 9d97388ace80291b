//! The thumbnailer: a CPU reader that takes one frame through the dma-buf's mmap, bracketed by
//! `DMA_BUF_IOCTL_SYNC` (begin/end_cpu_access), and encodes it as the run's `thumbnail.jpg`.
//!
//! Every other frame it is offered goes back at once. On an explicit-sync link the frame's
//! sync_file is imported into the buffer's reservation object first and the read waits for it,
//! as a compositor's CPU path does. A read that fails gives back what it took (the vmap, an
//! opened bracket). Runs on the loop's thread, which owns [`Sched`].

use super::sched::Sched;
use super::world::{BufState, RunFailure};
use crate::clock::VirtualTime;
use crate::report::JobCategory;
use dma::DmaDirection;

/// The thumbnailer takes its frame (CPU read through the dma-buf mmap, bracketed by
/// begin/end_cpu_access) and lets every other frame go at once. `false` if it took nothing
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
                drivers::thumbnailer::CpuSync::Skip
            }
            _ => drivers::thumbnailer::CpuSync::Bracketed,
        };
        match make_thumbnail(s, n, bi, frame, expected, sync) {
            Ok((jpeg, ok, bytes)) => {
                let t = s.w.time.device("cpu").map_or(
                    VirtualTime(bytes.saturating_mul(1_000_000_000) / soc::timing::CPU_COPY_BPS),
                    |d| d.transfer_time(bytes),
                );
                let track = s.w.nodes[n].track;
                let name = s.w.buf(bi).name.clone();
                s.w.trace.job(
                    track,
                    &format!("thumbnail frame {frame}"),
                    now,
                    now + t,
                    Some(&name),
                    bytes,
                    Some(frame),
                    JobCategory::Cpu,
                );
                s.thumbnail.get_or_insert(jpeg);
                if !ok {
                    // The frame stays tracked until this read (module `outcome`).
                    match s.frames.get_mut(&(src, frame)) {
                        Some(f) => f.corrupted = true,
                        // No tracked frame (its thumbnailer was not foreseen at capture): its
                        // wrong bytes still count.
                        None => s.counts.corrupted_untracked += 1,
                    }
                }
            }
            Err(e) => s.errors.push(e),
        }
    }
    s.release(bi, n);
    s.reader_done((src, frame), n);
    true
}

/// Why a CPU read of a dma-buf failed.
#[derive(Debug)]
pub(crate) enum CpuReadError {
    /// `dma_buf_vmap` failed (nothing to give back).
    Vmap(dmabuf::DmaBufError),
    /// The bracket or the read failed (the vmap went back already).
    Access(dmabuf::DmaBufError),
}

/// Reads `planes` of `buf` the way a kernel CPU reader does: `dma_buf_vmap`, then
/// `begin_cpu_access` .. `end_cpu_access` around the copy, then `dma_buf_vunmap`. Whatever fails,
/// the vmap is given back and an opened bracket closed: nothing stays mapped.
/// With `bracketed` false (the `skip_cache_sync` fault) the bracket is left out.
pub(crate) fn cpu_read_planes(
    buf: &dmabuf::DmaBuf,
    planes: &[(u64, u64)],
    bracketed: bool,
) -> Result<Vec<u8>, CpuReadError> {
    // A kernel-style vmap: the buffer's mmap covers whole pages only.
    let map = buf.vmap_unlocked().map_err(CpuReadError::Vmap)?;
    let read = (|| {
        if bracketed {
            buf.begin_cpu_access(DmaDirection::FromDevice)?;
        }
        let mut raw = Vec::new();
        let mut res = Ok(());
        for &(off, len) in planes {
            let mut plane = vec![0u8; len as usize];
            if let Err(e) = map.read(off, &mut plane) {
                res = Err(e);
                break;
            }
            raw.extend_from_slice(&plane);
        }
        let end = if bracketed {
            buf.end_cpu_access(DmaDirection::FromDevice)
        } else {
            Ok(())
        };
        res?;
        end?;
        Ok(raw)
    })();
    let unmapped = buf.vunmap_unlocked(map);
    let raw = read.map_err(CpuReadError::Access)?;
    unmapped.map_err(CpuReadError::Access)?;
    Ok(raw)
}

fn make_thumbnail(
    s: &Sched<'_>,
    n: usize,
    bi: usize,
    frame: u64,
    expected: u64,
    sync: drivers::thumbnailer::CpuSync,
) -> Result<(Vec<u8>, bool, u64), RunFailure> {
    let bracketed = sync == drivers::thumbnailer::CpuSync::Bracketed;
    let b = s.w.buf(bi);
    let node = &s.w.nodes[n].desc;
    let li = b.link;
    let fmt = &s.w.links[li].format_planes;
    let err = |e: &dyn std::fmt::Display| RunFailure {
        errno: "EIO".into(),
        message: format!("thumbnailer reading {}: {e}", b.name),
    };
    let raw = cpu_read_planes(&b.buf, &b.planes, bracketed).map_err(|e| match e {
        CpuReadError::Vmap(e) => {
            RunFailure::new(&e, format!("thumbnailer vmap of {}: {e}", b.name))
        }
        CpuReadError::Access(e) => err(&e),
    })?;
    // The frame's stamp (drivers::frame): its frame number, and the body's checksum its
    // producer reported.
    let ok = match drivers::frame::verify_stamp(&raw) {
        Ok(f) => {
            u64::from(f) == frame & u64::from(u32::MAX)
                && drivers::frame::checksum(&raw[drivers::frame::STAMP_LEN..]) == expected
        }
        Err(_) => {
            raw.len() <= drivers::frame::STAMP_LEN && drivers::frame::checksum(&raw) == expected
        }
    };
    let (w, hgt) = (
        s.w.links[li].format_planes[0].bytes_per_line as u32,
        (fmt[0].size / fmt[0].bytes_per_line.max(1)) as u32,
    );
    let scale = node.params.scale.unwrap_or(8).max(2) & !1;
    let quality = node.params.quality.unwrap_or(85);
    let jpeg = (|| {
        let ff = drivers::frame::FrameFormat::new(w, hgt).ok()?;
        if fmt.len() != 2 {
            return None;
        }
        let mut f = scale;
        while f > 2 && (w % f != 0 || hgt % f != 0) {
            f -= 2;
        }
        let (tw, th, ycc) = drivers::frame::nv12_to_ycbcr(ff, &raw, f).ok()?;
        drivers::thumbnailer::encode_jpeg(&ycc, tw, th, quality).ok()
    })()
    .ok_or_else(|| err(&"the frame is not an NV12 frame the JPEG encoder takes"))?;
    Ok((jpeg, ok, raw.len() as u64))
}
