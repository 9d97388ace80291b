//! The file operations the simulator answers by the kind of file behind an fd: `llseek`,
//! `poll` and `show_fdinfo`.
//!
//! C side: `dma_buf_llseek`, `dma_buf_poll` and `dma_buf_show_fdinfo`
//! (`drivers/dma-buf/dma-buf.c`), `sync_file_poll` (`drivers/dma-buf/sync_file.c`),
//! `generic_file_llseek` (`fs/read_write.c`) for memfds, `do_sys_poll` (`fs/select.c`) and
//! `seq_show` (`fs/proc/fd.c`).
//!
//! # Rules (Linux 6.12)
//!
//! 1. A dma-buf seeks only to `(0, SEEK_SET)` and `(0, SEEK_END)` (its size); anything else is
//!    `EINVAL`. Sync files and heap nodes do not seek (`ESPIPE`).
//! 2. A memfd seeks its shared file position: `SEEK_SET`, `SEEK_CUR`, `SEEK_END`, and
//!    `SEEK_DATA`/`SEEK_HOLE` (one data extent, `ENXIO` past the end); a position that does not
//!    fit `loff_t` is `EINVAL`.
//! 3. `poll` on an fd that is not open reports `POLLNVAL` (no error); a sync file is readable
//!    once its fence signalled; a file without a poll method reports `DEFAULT_POLLMASK`.
//! 4. fdinfo prints `pos`, `flags` (octal, `O_CLOEXEC` from the fd table), `mnt_id`, `ino`,
//!    then the buffer's own lines, with `count` as [`crate::sim`]'s rule 3 counts it.
//!
//! # Locking and lifetime
//! Each call looks its fd up once and holds the [`File`](crate::file::File) only for the call;
//! a `poll` that waits holds the fence, not the process.

use crate::file::FileObject;
use crate::sim::SimProcess;
use fence::sync_file::PollEvents;
use seam::{Errno, Fd, POLLNVAL};
use std::sync::Arc;
use std::time::Duration;
use uapi::ioctl::*;
use uapi::AsErrno;

/// `DEFAULT_POLLMASK`: what `poll` reports for a file without a poll method.
const DEFAULT_POLLMASK: u16 = POLLIN | POLLOUT | 0x040 | 0x100;
/// `SEEK_DATA` and `SEEK_HOLE`.
const SEEK_DATA: u32 = 3;
const SEEK_HOLE: u32 = 4;

impl SimProcess {
    /// `lseek(2)`: `dma_buf_llseek` for a dma-buf (rule 1), `generic_file_llseek` on the
    /// shared file position for a memfd (rule 2), `ESPIPE` for anything else.
    pub(crate) fn file_llseek(&self, fd: Fd, offset: i64, whence: u32) -> Result<u64, Errno> {
        let file = self.file(fd)?;
        match file.object() {
            FileObject::DmaBuf(buf) => {
                // dma_buf_llseek: only (0, SEEK_END) and (0, SEEK_SET).
                let base = match whence {
                    SEEK_END => buf.size(),
                    SEEK_SET => 0,
                    _ => return Err(Errno::EINVAL),
                };
                if offset != 0 {
                    return Err(Errno::EINVAL);
                }
                Ok(base)
            }
            FileObject::Memfd(m) => {
                // generic_file_llseek on the shared file position.
                let size = m.size();
                let pos = match whence {
                    SEEK_SET => i128::from(offset),
                    SEEK_CUR => i128::from(file.pos()) + i128::from(offset),
                    SEEK_END => i128::from(size) + i128::from(offset),
                    SEEK_DATA | SEEK_HOLE => {
                        if offset < 0 || offset as u64 >= size {
                            return Err(Errno::ENXIO);
                        }
                        if whence == SEEK_DATA {
                            i128::from(offset)
                        } else {
                            i128::from(size)
                        }
                    }
                    _ => return Err(Errno::EINVAL),
                };
                let pos = u64::try_from(pos)
                    .ok()
                    .filter(|&p| p <= i64::MAX as u64)
                    .ok_or(Errno::EINVAL)?;
                file.set_pos(pos);
                Ok(pos)
            }
            _ => Err(Errno::ESPIPE),
        }
    }

    /// `poll(2)` on one fd (rule 3): `POLLNVAL` for an fd that is not open, the buffer's or the
    /// sync file's own answer, else `DEFAULT_POLLMASK`.
    pub(crate) fn file_poll(&self, fd: Fd, events: u16, timeout_ms: i32) -> Result<u16, Errno> {
        let Ok(file) = self.process().file(fd) else {
            return Ok(POLLNVAL);
        };
        let timeout = match timeout_ms {
            t if t < 0 => None,
            t => Some(Duration::from_millis(t as u64)),
        };
        match file.object() {
            FileObject::DmaBuf(buf) => buf
                .poll_wait(events, timeout, None)
                .map_err(|e| e.errno().to_user()),
            FileObject::SyncFile(sf) => {
                if events & POLLIN == 0 {
                    return Ok(0);
                }
                if sf.poll() == PollEvents::IN {
                    return Ok(POLLIN);
                }
                if timeout != Some(Duration::ZERO) {
                    // A timeout is an answer of "nothing ready", not an error.
                    let _ = sf.wait_timeout(None, timeout);
                }
                Ok(if sf.poll() == PollEvents::IN {
                    POLLIN
                } else {
                    0
                })
            }
            _ => Ok(DEFAULT_POLLMASK & events),
        }
    }

    /// `/proc/self/fdinfo/<fd>` (rule 4).
    pub(crate) fn file_fdinfo(&self, fd: Fd) -> Result<String, Errno> {
        let file = self.file(fd)?;
        let cloexec = self
            .process()
            .cloexec(fd)
            .map_err(|e| e.errno().to_user())?;
        let flags = crate::sim_vfs::status_flags(&file) | if cloexec { O_CLOEXEC } else { 0 };
        let mut text = format!(
            "pos:\t{}\nflags:\t0{flags:o}\nmnt_id:\t{}\nino:\t{}\n",
            file.pos(),
            crate::sim_vfs::mount_id(file.object()),
            crate::sim_vfs::stat(&file).ino
        );
        if let Some(buf) = file.as_dma_buf() {
            // The `sim` module's rule 3: fds (the File's holders, minus our lookup) plus the
            // buffer's other holders (minus the File's own reference).
            let count = (Arc::strong_count(&file) - 1) + (buf.ref_count() - 1);
            for line in buf.fdinfo().lines() {
                match line.split_once(':') {
                    Some(("count", _)) => text.push_str(&format!("count:\t{count}\n")),
                    _ => {
                        text.push_str(line);
                        text.push('\n');
                    }
                }
            }
        }
        Ok(text)
    }
}
