//! Memory cgroups charged with dma-buf heap memory: a limit per process or group of processes,
//! and the charge transfer an allocator service uses to bill its clients.
//!
//! C side: `mm/memcontrol.c` (`memory.max`, `memory.current`, the `max` line of
//! `memory.events`, `cgroup.procs`) and the dma-buf memcg charging proposed for Linux
//! (`dma_buf_export` charging `get_mem_cgroup_from_mm(current->mm)` with
//! `mem_cgroup_charge_dmabuf`, `dma_buf_release` uncharging, `dma_buf_transfer_charge` called
//! by binder for an fd sent with `BINDER_FD_FLAG_XFER_CHARGE`), which Android uses so that the
//! memory gralloc allocates lands in the bill of the app it allocated for.
//!
//! # The concept
//! Every process belongs to one [`MemCgroup`]: the root group until
//! [`MemCgroup::attach`] moves it (writing its pid to `cgroup.procs`). A group is one process
//! or several; the root group has no limit (`memory.max` does not exist at the root).
//!
//! 1. **Charging.** A buffer allocated from a dma-heap ([`Process::heap_alloc`]) is charged,
//!    whole (its page-rounded size), to the group of the allocating process, at export as the
//!    proposal does. If the charge would take the group's `memory.current` past its
//!    `memory.max`, the allocation fails with `ENOMEM` (the buffer just allocated is released:
//!    nothing leaks) and the group's [`failcnt`](MemCgroup::failcnt) counts it. Reaching the
//!    limit exactly succeeds. Buffers from exporters other than the heaps' page-list exporter
//!    (udmabuf, whose memfd pages belong to the memfd, GPU objects) are not charged here.
//! 2. **Uncharging.** The charge belongs to the buffer, not to a process or an fd: it is
//!    given back when the buffer is released (its last reference, fd or mapping or attachment,
//!    is gone), to whichever group holds it then.
//! 3. **Transfer.** [`Process::transfer_charge`] (`dma_buf_transfer_charge`) moves a buffer's
//!    charge to another group: the target is charged first (`ENOMEM` past its limit, and then
//!    nothing changes), then the old group is uncharged. Only a process of the group the
//!    buffer is charged to may hand its charge on (`EPERM` otherwise), so a client cannot
//!    push its bill onto a service. [`Process::send_fd_transfer_charge`] is binder's
//!    `BINDER_FD_FLAG_XFER_CHARGE`: the receiver gets an fd and the charge in one step, or
//!    neither.
//! 4. **Moving a process** to another group does not move what it was charged before (cgroup
//!    v2 has no `move_charge_at_immigrate`); its later allocations are charged to the new one.
//! 5. **Lowering `memory.max`** below `memory.current` is accepted: dma-buf memory cannot be
//!    reclaimed, so nothing is freed, but every later charge fails until enough is released.
//!
//! # Locking and lifetime
//! Each group's counters are behind a leaf mutex; the kernel's group registry and the
//! pid-to-group map each have one too, never held while a group's is taken. A buffer's charge
//! lives in its exporter ([`crate::heap::buffer::HeapBuffer`]) behind its own
//! mutex, taken before the groups'. A [`MemcgCharge`] uncharges when dropped, exactly once.
//!
//! # Example: an allocator service bills its client
//! ```
//! use kernel::Kernel;
//! use uapi::ioctl::{O_CLOEXEC, O_RDWR};
//!
//! let kernel = Kernel::boot(soc::SocDesc::default_soc())?;
//! let (service, app) = (kernel.spawn(), kernel.spawn());
//! let app_cg = kernel.create_memcg("app")?;
//! app_cg.attach(&app)?;
//! app_cg.set_max(Some(1 << 20))?;
//! let heap = service.open_heap("system")?;
//! let fd = service.heap_alloc(heap, 1 << 20, O_RDWR | O_CLOEXEC, 0)?;
//! service.send_fd_transfer_charge(fd, &app)?;
//! assert_eq!(app_cg.current(), 1 << 20);
//! assert_eq!(kernel.root_memcg().current(), 0);
//! # Ok::<(), dmabuf::DmaBufError>(())
//! ```

use crate::file::Fd;
use crate::heap::buffer::HeapBuffer;
use crate::kernel::{errno, Kernel};
use crate::process::Process;
use dmabuf::buf::DmaBuf;
use dmabuf::error::DmaBufError;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use uapi::Errno;

/// The name of the root group.
pub const ROOT_MEMCG: &str = "/";

#[derive(Debug, Default)]
struct Counters {
    current: u64,
    max: Option<u64>,
    failcnt: u64,
    peak: u64,
}

/// A memory cgroup (see the module documentation).
#[derive(Debug)]
pub struct MemCgroup {
    name: String,
    root: bool,
    counters: Mutex<Counters>,
}

impl MemCgroup {
    fn new(name: &str, root: bool) -> Arc<MemCgroup> {
        Arc::new(MemCgroup {
            name: name.to_string(),
            root,
            counters: Mutex::new(Counters::default()),
        })
    }

    /// The group's name (`"/"` for the root).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `memory.current`: bytes of dma-buf memory charged to the group.
    pub fn current(&self) -> u64 {
        self.counters.lock().current
    }

    /// `memory.max`: the limit in bytes, `None` for `max` (no limit).
    pub fn max(&self) -> Option<u64> {
        self.counters.lock().max
    }

    /// `memory.peak`: the highest `memory.current` since the group was created.
    pub fn peak(&self) -> u64 {
        self.counters.lock().peak
    }

    /// The `max` line of `memory.events`: how many charges the limit refused.
    pub fn failcnt(&self) -> u64 {
        self.counters.lock().failcnt
    }

    /// Writes `memory.max` (`None` writes `max`). Errors: `EINVAL` on the root group, which
    /// has no `memory.max`. A limit below `memory.current` is accepted (module rule 5).
    pub fn set_max(&self, max: Option<u64>) -> Result<(), DmaBufError> {
        if self.root {
            return Err(errno(
                Errno::EINVAL,
                "memory.max: the root memory cgroup has no limit",
            ));
        }
        self.counters.lock().max = max;
        Ok(())
    }

    /// Writes `process`'s pid to the group's `cgroup.procs`: its later allocations are
    /// charged here (module rule 4). Errors: `ESRCH` if it has exited, `EINVAL` if it runs
    /// on another kernel.
    pub fn attach(self: &Arc<Self>, process: &Process) -> Result<(), DmaBufError> {
        if !process.is_alive() {
            return Err(errno(
                Errno::ESRCH,
                format!("cgroup.procs: process {} has exited", process.pid()),
            ));
        }
        let memcgs = process.kernel().memcgs();
        if !memcgs.owns(self) {
            return Err(errno(
                Errno::EINVAL,
                format!(
                    "cgroup.procs: memcg {} is not a group of process {}'s kernel",
                    self.name,
                    process.pid()
                ),
            ));
        }
        memcgs.members.lock().insert(process.pid(), self.clone());
        Ok(())
    }

    /// `try_charge`: charges `bytes`, or fails with `ENOMEM` past `memory.max`.
    pub fn try_charge(self: &Arc<Self>, bytes: u64) -> Result<MemcgCharge, DmaBufError> {
        let mut c = self.counters.lock();
        let new = c.current.checked_add(bytes);
        if let (Some(max), new) = (c.max, new) {
            if new.is_none_or(|n| n > max) {
                c.failcnt += 1;
                let current = c.current;
                drop(c);
                return Err(errno(
                    Errno::ENOMEM,
                    format!(
                        "memcg {}: charging {bytes} bytes of dma-buf would exceed memory.max \
                         {max} (memory.current {current})",
                        self.name
                    ),
                ));
            }
        }
        c.current = new.unwrap_or(u64::MAX);
        c.peak = c.peak.max(c.current);
        Ok(MemcgCharge {
            cg: self.clone(),
            bytes,
        })
    }
}

/// Bytes charged to a group; uncharged when dropped (module rule 2).
#[derive(Debug)]
pub struct MemcgCharge {
    cg: Arc<MemCgroup>,
    bytes: u64,
}

impl MemcgCharge {
    /// The group charged.
    pub fn memcg(&self) -> &Arc<MemCgroup> {
        &self.cg
    }

    /// The bytes charged.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Moves the charge to `to`: charges it first (`ENOMEM` past its limit, and then the
    /// charge stays where it was), then uncharges the old group.
    pub fn transfer(&mut self, to: &Arc<MemCgroup>) -> Result<(), DmaBufError> {
        if Arc::ptr_eq(&self.cg, to) {
            return Ok(());
        }
        let new = to.try_charge(self.bytes)?;
        // The old charge is dropped here: uncharged once.
        drop(std::mem::replace(self, new));
        Ok(())
    }
}

impl Drop for MemcgCharge {
    fn drop(&mut self) {
        let mut c = self.cg.counters.lock();
        c.current = c.current.saturating_sub(self.bytes);
    }
}

/// A kernel's memory cgroups: the root, the groups created under it, and which group each
/// process is in.
#[derive(Debug)]
pub struct Memcgs {
    root: Arc<MemCgroup>,
    groups: Mutex<BTreeMap<String, Arc<MemCgroup>>>,
    members: Mutex<BTreeMap<u32, Arc<MemCgroup>>>,
}

impl Default for Memcgs {
    fn default() -> Memcgs {
        Memcgs {
            root: MemCgroup::new(ROOT_MEMCG, true),
            groups: Mutex::new(BTreeMap::new()),
            members: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Memcgs {
    fn owns(&self, cg: &Arc<MemCgroup>) -> bool {
        Arc::ptr_eq(&self.root, cg) || self.groups.lock().values().any(|g| Arc::ptr_eq(g, cg))
    }

    /// The group of process `pid` (the root if it was never moved).
    pub(crate) fn of(&self, pid: u32) -> Arc<MemCgroup> {
        self.members
            .lock()
            .get(&pid)
            .cloned()
            .unwrap_or_else(|| self.root.clone())
    }

    /// Forgets an exited process.
    pub(crate) fn forget(&self, pid: u32) {
        self.members.lock().remove(&pid);
    }
}

impl Kernel {
    /// The root memory cgroup (no limit).
    pub fn root_memcg(&self) -> Arc<MemCgroup> {
        self.memcgs().root.clone()
    }

    /// `mkdir /sys/fs/cgroup/<name>`: a new group under the root, without a limit.
    /// Errors: `EINVAL` for an empty name, one with a `/`, or `"/"`; `EEXIST` if it exists.
    pub fn create_memcg(&self, name: &str) -> Result<Arc<MemCgroup>, DmaBufError> {
        if name.is_empty() || name.contains('/') {
            return Err(errno(
                Errno::EINVAL,
                format!("mkdir: {name:?} is not a cgroup name"),
            ));
        }
        let mut groups = self.memcgs().groups.lock();
        if groups.contains_key(name) {
            return Err(errno(
                Errno::EEXIST,
                format!("mkdir: memcg {name} already exists"),
            ));
        }
        let cg = MemCgroup::new(name, false);
        groups.insert(name.to_string(), cg.clone());
        Ok(cg)
    }

    /// Every group: the root first, then the others by name (`find /sys/fs/cgroup -type d`).
    pub fn memcg_list(&self) -> Vec<Arc<MemCgroup>> {
        let m = self.memcgs();
        std::iter::once(m.root.clone())
            .chain(m.groups.lock().values().cloned())
            .collect()
    }

    /// The group named `name` (`"/"` is the root).
    pub fn memcg(&self, name: &str) -> Option<Arc<MemCgroup>> {
        if name == ROOT_MEMCG {
            return Some(self.root_memcg());
        }
        self.memcgs().groups.lock().get(name).cloned()
    }
}

/// Charges a freshly exported heap buffer to `process`'s group (module rule 1). On `ENOMEM`
/// the caller drops the buffer, which releases it.
pub(crate) fn charge_new_buffer(process: &Process, buf: &DmaBuf) -> Result<(), DmaBufError> {
    let Some(heap_buf) = buf.exporter_ops::<HeapBuffer>() else {
        return Ok(());
    };
    let cg = process.kernel().memcgs().of(process.pid());
    let charge = cg.try_charge(buf.size())?;
    heap_buf.set_charge(charge);
    Ok(())
}

impl Process {
    /// The memory cgroup this process is in.
    pub fn memcg(&self) -> Arc<MemCgroup> {
        self.kernel().memcgs().of(self.pid())
    }

    /// The group the dma-buf behind `fd` is charged to, `None` for a buffer that is not
    /// charged (module rule 1). Errors: `EBADF`, `EINVAL` (not a dma-buf).
    pub fn dma_buf_memcg(&self, fd: Fd) -> Result<Option<Arc<MemCgroup>>, DmaBufError> {
        let buf = self.get_dma_buf(fd)?;
        Ok(buf
            .exporter_ops::<HeapBuffer>()
            .and_then(|h| h.charged_memcg()))
    }

    /// `dma_buf_transfer_charge(file, to)` (module rule 3), called by this process.
    ///
    /// Errors: `EBADF`; `EINVAL` if `fd` is not a dma-buf or the buffer is not charged;
    /// `EPERM` if it is charged to a group other than this process's; `ENOMEM` if `to` cannot
    /// take the charge. On error nothing changes.
    pub fn transfer_charge(&self, fd: Fd, to: &Arc<MemCgroup>) -> Result<(), DmaBufError> {
        let buf = self.get_dma_buf(fd)?;
        let not_charged = || {
            errno(
                Errno::EINVAL,
                format!(
                    "transfer_charge: fd {fd} ({}) is not charged to a memcg",
                    buf.exp_name()
                ),
            )
        };
        let heap_buf = buf.exporter_ops::<HeapBuffer>().ok_or_else(not_charged)?;
        let mine = self.memcg();
        heap_buf.with_charge(|charge| {
            let charge = charge.ok_or_else(not_charged)?;
            if !Arc::ptr_eq(charge.memcg(), &mine) {
                return Err(errno(
                    Errno::EPERM,
                    format!(
                        "transfer_charge: fd {fd} is charged to memcg {}, not to memcg {} of \
                         process {}",
                        charge.memcg().name(),
                        mine.name(),
                        self.pid()
                    ),
                ));
            }
            charge.transfer(to)
        })
    }

    /// Binder's `BINDER_FD_FLAG_XFER_CHARGE`: sends `fd` to `to` (as
    /// [`send_fd`](Process::send_fd)) and moves the buffer's charge to `to`'s group. Either
    /// both happen or neither. Errors: those of `send_fd` and
    /// [`transfer_charge`](Process::transfer_charge).
    pub fn send_fd_transfer_charge(&self, fd: Fd, to: &Process) -> Result<Fd, DmaBufError> {
        let theirs = self.send_fd(fd, to)?;
        if let Err(e) = self.transfer_charge(fd, &to.memcg()) {
            // Undo the install: the receiver never saw the transaction.
            let _ = to.close(theirs);
            return Err(e);
        }
        Ok(theirs)
    }
}
