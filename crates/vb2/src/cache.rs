//! Cache maintenance around DMA, and the cache hints user space may give.
//!
//! C side: `videobuf2-core.c` (`__vb2_buf_mem_prepare`, `__vb2_buf_mem_finish`,
//! `vb2_queue_allows_cache_hints`), `videobuf2-v4l2.c` (`set_buffer_cache_hints`,
//! `validate_memory_flags`).
//!
//! # Rules
//! 1. The memop "prepare" (the buffer goes to the device: clean) runs once per prepare cycle, in
//!    PREPARE_BUF or QBUF; "finish" (the buffer comes back to the CPU: invalidate) runs at
//!    `buffer_done(DONE|ERROR)` and in cancel for a buffer that was synced, never at DQBUF.
//! 2. DMABUF buffers never get either: the exporter is responsible.
//! 3. `V4L2_BUF_FLAG_NO_CACHE_CLEAN` skips "prepare" and `V4L2_BUF_FLAG_NO_CACHE_INVALIDATE`
//!    skips "finish" only when the queue allows cache hints **and** its memory is MMAP; in any
//!    other case both bits are cleared from the buffer vb2 returns.
//! 4. `V4L2_MEMORY_FLAG_NON_COHERENT` (REQBUFS, CREATE_BUFS) is kept under the same condition
//!    and cleared otherwise; unknown bits are always cleared.
//! 5. Coherent MMAP memory needs nothing: its memops are empty (but still counted as called).

use crate::buffer::{Memory, PlaneMem, Vb2Buffer};
use crate::counters::Counters;
use crate::ioctl::{
    V4L2_BUF_FLAG_NO_CACHE_CLEAN, V4L2_BUF_FLAG_NO_CACHE_INVALIDATE, V4L2_MEMORY_FLAG_NON_COHERENT,
};
use crate::Vb2Error;

/// The hint bits of `v4l2_buffer.flags`.
pub const CACHE_HINT_FLAGS: u32 = V4L2_BUF_FLAG_NO_CACHE_INVALIDATE | V4L2_BUF_FLAG_NO_CACHE_CLEAN;

/// `vb2_queue_allows_cache_hints`.
pub(crate) fn allows_hints(allow_cache_hints: bool, memory: Option<Memory>) -> bool {
    allow_cache_hints && memory == Some(Memory::Mmap)
}

/// Rule 4: the memory flags honoured for a REQBUFS/CREATE_BUFS of `memory`.
pub(crate) fn memory_flags(allow_cache_hints: bool, memory: Memory, flags: u32) -> u32 {
    if allows_hints(allow_cache_hints, Some(memory)) {
        flags & V4L2_MEMORY_FLAG_NON_COHERENT
    } else {
        0
    }
}

/// Rule 3: applies the hints of `flags` to `vb` and returns the flags with the hint bits that
/// are not honoured cleared. DMABUF buffers skip both syncs anyway (rule 2).
pub(crate) fn set_hints(
    vb: &mut Vb2Buffer,
    allow_cache_hints: bool,
    memory: Memory,
    flags: u32,
) -> u32 {
    vb.skip_cache_sync_on_prepare = memory == Memory::Dmabuf;
    vb.skip_cache_sync_on_finish = memory == Memory::Dmabuf;
    if !allows_hints(allow_cache_hints, Some(memory)) {
        return flags & !CACHE_HINT_FLAGS;
    }
    if flags & V4L2_BUF_FLAG_NO_CACHE_INVALIDATE != 0 {
        vb.skip_cache_sync_on_finish = true;
    }
    if flags & V4L2_BUF_FLAG_NO_CACHE_CLEAN != 0 {
        vb.skip_cache_sync_on_prepare = true;
    }
    flags
}

/// `__vb2_buf_mem_prepare` (rule 1): marks the buffer synced, and runs "prepare" unless skipped.
pub(crate) fn mem_prepare(vb: &mut Vb2Buffer, counters: &Counters) -> Result<(), Vb2Error> {
    if vb.synced {
        return Ok(());
    }
    vb.synced = true;
    if vb.skip_cache_sync_on_prepare {
        return Ok(());
    }
    for p in &vb.planes {
        match &p.mem {
            PlaneMem::Mmap(m) => m.prepare()?,
            PlaneMem::Userptr(u) => u.prepare()?,
            PlaneMem::Dmabuf(_) | PlaneMem::None => {}
        }
    }
    Counters::inc(&counters.mem_prepare);
    Ok(())
}

/// `__vb2_buf_mem_finish` (rule 1): runs "finish" for a synced buffer (unless skipped) and
/// clears `synced`.
pub(crate) fn mem_finish(vb: &mut Vb2Buffer, counters: &Counters) {
    if !vb.synced {
        return;
    }
    vb.synced = false;
    if vb.skip_cache_sync_on_prepare {
        // "prepare" was skipped too (or is never done): keep the pair balanced.
        if vb.skip_cache_sync_on_finish {
            return;
        }
    } else if vb.skip_cache_sync_on_finish {
        // Count the skipped finish as the undo of the prepare that ran.
        Counters::inc(&counters.mem_finish);
        return;
    }
    for p in &vb.planes {
        // A refused sync was reported to the DMA checker; finish cannot fail (void memop).
        let _ = match &p.mem {
            PlaneMem::Mmap(m) => m.finish(),
            PlaneMem::Userptr(u) => u.finish(),
            PlaneMem::Dmabuf(_) | PlaneMem::None => Ok(()),
        };
    }
    if !vb.skip_cache_sync_on_prepare {
        Counters::inc(&counters.mem_finish);
    }
}
