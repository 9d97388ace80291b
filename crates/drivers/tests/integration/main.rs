//! Integration tests of the drivers crate: one file per concern.

mod gpu_contiguous;
mod gpu_dmem;
mod gpu_eviction;
mod gpu_jobs;
mod gpu_prime;
mod gpu_random;
mod gpu_vm;
mod modifiers;
mod prime_seam;
mod ready_list;
mod vivid;

use dma::{DmaApi, DmaDirection};
use dmabuf::testing::mock_dma;
use dmabuf::{Attachment, DmaBuf, ImporterOps, MappedSgTable};
use drivers::gpu::{Gpu, GpuConfig, RingMode};
use fence::{DmaResvUsage, ResvGuard};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// 64 KiB: the size of most test objects.
pub const BO: u64 = 64 << 10;

/// A machine and a GPU with room for `n` objects of [`BO`] bytes in VRAM.
pub fn setup(n: u64, ring: RingMode) -> (Arc<DmaApi>, Gpu) {
    let dma = mock_dma();
    let cfg = GpuConfig {
        vram_budget: Some(n * BO),
        ring,
        evict_timeout: Duration::from_millis(200),
        ..GpuConfig::default()
    };
    let gpu = Gpu::new(&dma, cfg).expect("gpu0 on the default SoC");
    (dma, gpu)
}

/// Deterministic bytes for a seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Free system pages and free VRAM bytes of the machine.
pub fn memory(dma: &DmaApi, gpu: &Gpu) -> (u64, u64) {
    let soc = dma.soc();
    let pages = soc.pages().stats().zones.iter().map(|z| z.free_pages).sum();
    let bank = soc
        .mem()
        .bank_by_name(gpu.config().vram_bank.as_deref().unwrap())
        .unwrap()
        .id();
    (pages, soc.pool(bank).unwrap().avail())
}

/// A dynamic importer (an ISP that keeps its mapping until told to drop it).
pub struct TestImporter {
    /// Allow peer-to-peer (VRAM).
    pub p2p: bool,
    /// Ignore `move_notify` (keep the table: a lagging importer).
    pub lazy: bool,
    /// `move_notify` calls.
    pub notified: AtomicU64,
    /// The current mapping.
    pub table: Mutex<Option<MappedSgTable>>,
    /// Maps done.
    pub maps: AtomicU64,
}

impl TestImporter {
    pub fn new(p2p: bool) -> Arc<TestImporter> {
        Arc::new(TestImporter {
            p2p,
            lazy: false,
            notified: AtomicU64::new(0),
            table: Mutex::new(None),
            maps: AtomicU64::new(0),
        })
    }

    /// An importer that ignores `move_notify` and keeps its table.
    pub fn lazy(p2p: bool) -> Arc<TestImporter> {
        Arc::new(TestImporter {
            p2p,
            lazy: true,
            notified: AtomicU64::new(0),
            table: Mutex::new(None),
            maps: AtomicU64::new(0),
        })
    }

    pub fn notified(&self) -> u64 {
        self.notified.load(Ordering::SeqCst)
    }

    /// Reads `len` bytes through the importer's device, (re-)mapping if needed and honouring the
    /// buffer's KERNEL fences first, as a dynamic importer must.
    pub fn read(&self, att: &Attachment, len: usize) -> Vec<u8> {
        self.try_read(att, len).unwrap()
    }

    /// [`read`](Self::read), with the map's error.
    pub fn try_read(&self, att: &Attachment, len: usize) -> Result<Vec<u8>, dmabuf::DmaBufError> {
        let buf = att.dmabuf();
        buf.resv().wait_timeout(DmaResvUsage::Kernel, None, None)?;
        let mut g = buf.resv().lock(None)?;
        if self.table.lock().is_none() {
            // Not under our table lock: mapping may move the buffer, which notifies us too.
            let t = att.map(&mut g, DmaDirection::Bidirectional)?;
            *self.table.lock() = Some(t);
            self.maps.fetch_add(1, Ordering::SeqCst);
        }
        let t = self.table.lock();
        let table = t.as_ref().unwrap();
        let mut out = vec![0u8; len];
        let mut at = 0;
        for s in table.dma_segments() {
            if at == len {
                break;
            }
            let k = (s.len as usize).min(len - at);
            buf.dma()
                .device_read(att.device(), s.addr, &mut out[at..at + k])?;
            at += k;
        }
        Ok(out)
    }

    /// Whether the current table is VRAM (memory without struct pages).
    pub fn maps_vram(&self) -> bool {
        let t = self.table.lock();
        t.as_ref().unwrap().entries()[0].backing == dma::SgBacking::Resource
    }

    /// Unmaps the current table.
    pub fn unmap(&self, att: &Attachment) {
        let mut g = att.dmabuf().resv().lock(None).unwrap();
        if let Some(t) = self.table.lock().take() {
            att.unmap(&mut g, t).unwrap();
        }
    }
}

impl ImporterOps for TestImporter {
    fn move_notify(&self, att: &Attachment, g: &mut ResvGuard<'_>) {
        self.notified.fetch_add(1, Ordering::SeqCst);
        if !self.lazy {
            if let Some(t) = self.table.lock().take() {
                att.unmap(g, t).unwrap();
            }
        }
    }

    fn allow_peer2peer(&self) -> bool {
        self.p2p
    }
}

/// Attaches `imp` dynamically for `device`.
pub fn attach_dynamic(
    buf: &DmaBuf,
    dma: &DmaApi,
    device: &str,
    imp: &Arc<TestImporter>,
) -> Attachment {
    buf.dynamic_attach(&dma.device(device).unwrap(), imp.clone())
        .unwrap()
}
mod camera;
mod concurrent_jobs;
mod decoder;
mod display;
mod display_p2p;
mod display_planes;
mod encoder;
mod isp;
mod jobs;
mod pipeline;
mod scaler;
mod swapchain;
mod thumbnailer;
