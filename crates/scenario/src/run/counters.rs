//! Counters over time: the runner samples the machine every [`Sampler::every`] frames of the
//! first source and keeps the values for `report.json` (`counters`) and the trace (`"ph": "C"`
//! counter tracks).
//!
//! The interval is `ceil(frames / MAX_SAMPLES)` frames, so a run keeps at most
//! [`MAX_SAMPLES`] + 1 samples per series (the last at the end of the run), however long it
//! is. Each sample reads counters the layers keep anyway; nothing is estimated:
//!
//! | series | unit | from |
//! |---|---|---|
//! | `bank NAME used` | bytes | the page allocator's zone (total minus free pages, CMA included) |
//! | `cma NAME used` | bytes | the zone's CMA pages minus its idle CMA pages |
//! | `process NAME dma-buf rss` / `pss` | bytes | [`kernel::accounting`] (every buffer the process holds by fd or mapping) |
//! | `queue NODE <- LINK` | buffers | the frames ready for the node on that link, not yet taken |
//! | `iommu DEVICE mapped` | bytes | the device's IOMMU domain: bytes mapped now |
//! | `device NAME bandwidth` | bytes/s | bytes its DMA engine read and wrote since the last sample, over the virtual time between them |
//! | `group NAME heap` / `vram` | bytes | a `[[groups]]` entry's `memory.current`, and its `dmem.current` summed over the GPUs ([`super::limits`]) |
//! | `memory NAME utilisation` | ratio | a memory controller's ([`soc::bandwidth`]): the bytes of the jobs' transfers on it since the last sample (each spread over its span) over its bandwidth times the interval; above 1 while oversubscribed |
//!
//! And what the lower layers count where the traffic happens (`sample_traffic`):
//!
//! | series | unit | from |
//! |---|---|---|
//! | `cma region NAME used` | bytes | the CMA region's pages handed out by `cma_alloc` ([`soc::CmaInfo`]) |
//! | `bank NAME bandwidth` | bytes/s | bytes every device's DMA engine moved in that bank since the last sample ([`soc::Device::bank_bytes`]), over the virtual time between them |
//! | `iommu DEVICE maps` / `unmaps` | calls | the device's IOMMU domain: `iommu_map` calls, and `iommu_unmap` calls that unmapped something, since boot |
//! | `cache DEVICE clean ops` / `cleaned` | ops / bytes | CPU cache cleans (and flushes) the DMA layer did for the non-coherent device's syncs, since boot ([`soc::Device::cache_maintenance`]) |
//! | `cache DEVICE invalidate ops` / `invalidated` | ops / bytes | the same for invalidates (and flushes) |
//!
//! Cache maintenance is owed only where a streaming mapping of cached memory is made, dropped
//! or synced, so a non-coherent device may rightly count none: vb2's coherent MMAP buffers
//! (`memory = "mmap+expbuf"`) are reached by the CPU uncached (`vb2_dc_prepare` returns early
//! for them), and an imported dma-buf kept mapped (mainline vb2, the mapping caches) is
//! flushed once at its first map and then goes device to device; a CPU reader syncs it through
//! the exporter's `begin_cpu_access`, counted against the devices whose mappings it syncs. A
//! camera that counts nothing after its first maps is that, not a skipped sync (checked in
//! `tests/integration/counters.rs`).
//!
//! In the trace, each series is a counter track of the Perfetto process that does the work, so
//! Perfetto lists it under that process: a simulated process's `dma-buf rss`/`pss` and its
//! nodes' `queue` series under its own (`process NAME`); a device's `device`, `iommu` and
//! `cache` series under the device's engine (the process named after the device, whose
//! threads are its jobs; a device that ran no job gets one for its counters). The machine's
//! (`bank`, `cma`, `memory`, `group`) are the run's (`pid` 1).
//!
//! # While jobs run on the pool
//! A job's bytes may be moving on the run's host threads when a sample is taken (module
//! `super::inflight`): the device and bank bandwidth series count bytes where the DMA happens,
//! so a job still running on the virtual clock would show as far as the host got with it.
//! A sample counts the jobs that completed on the virtual clock by then, all of them and
//! nothing else: the loop collects those first (`Sched::collect_for_sample`), and a device
//! whose job still runs is sampled as it was when that job started ([`Sampler::note_start`],
//! [`Sampler::hold`]; one job at a time runs on a device). Every other series is counted on
//! the loop's thread. So the samples are the same for any number of host threads.
//!
//! Lifetime: the sampler lives in the scheduler for the run and is drained into the report
//! and trace at the end; it holds no lock between samples.

use super::world::World;
use crate::clock::VirtualTime;
use crate::report::{CounterSeries, CountersReport};
use std::collections::BTreeMap;

/// The most samples a run keeps (plus the final one).
pub const MAX_SAMPLES: u64 = 128;

/// The sampler (module doc).
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    /// Frames between samples.
    pub every: u64,
    frames: Vec<u64>,
    times: Vec<VirtualTime>,
    series: BTreeMap<String, (String, Vec<f64>)>,
    last_bytes: BTreeMap<String, u64>,
    last_bank_bytes: BTreeMap<String, u64>,
    last_at: VirtualTime,
    /// The Perfetto process each series belongs to in the trace (module doc); the others are
    /// the run's.
    owners: BTreeMap<String, String>,
    /// Each process's open dma-buf fds as last recorded ([`super::fds`]).
    pub(crate) fds: super::fds::OpenFds,
    /// Per device: its DMA counters (bytes moved, bytes per bank) when its last job started
    /// on the pool (module doc).
    starts: BTreeMap<String, (u64, Vec<u64>)>,
    /// Devices the next sample takes from `starts`: their jobs still run.
    held: Vec<String>,
}

impl Sampler {
    /// A sampler for a run of `frames` frames.
    pub(crate) fn new(frames: u64) -> Sampler {
        Sampler {
            every: frames.div_ceil(MAX_SAMPLES).max(1),
            ..Sampler::default()
        }
    }

    /// A job of `dev` starts moving its bytes on the pool: its counters now (module doc).
    pub(crate) fn note_start(&mut self, dev: &soc::Device) {
        let st = dev.stats();
        let moved = st.bytes_read + st.bytes_written;
        self.starts
            .insert(dev.name().to_string(), (moved, dev.bank_bytes()));
    }

    /// The next sample takes `devices`' DMA counters as they were when their running jobs
    /// started (module doc).
    pub(crate) fn hold(&mut self, devices: &[String]) {
        self.held = devices.to_vec();
    }

    /// Device `d`'s DMA counters for this sample: bytes moved, bytes per bank.
    fn dma_counts(&self, held: &[String], d: &soc::Device) -> (u64, Vec<u64>) {
        let name = d.name().to_string();
        match self.starts.get(&name) {
            Some(c) if held.contains(&name) => c.clone(),
            _ => {
                let st = d.stats();
                (st.bytes_read + st.bytes_written, d.bank_bytes())
            }
        }
    }

    /// Whether frame `frame` is sampled.
    pub(crate) fn due(&self, frame: u64) -> bool {
        frame.is_multiple_of(self.every)
    }

    fn put(&mut self, name: String, unit: &str, value: f64) {
        let k = self.frames.len() - 1;
        let (_, v) = self
            .series
            .entry(name)
            .or_insert_with(|| (unit.to_string(), Vec::new()));
        v.resize(k, 0.0);
        v.push(value);
    }

    /// [`put`](Self::put) of a series drawn on Perfetto process `process` in the trace.
    fn put_on(&mut self, process: &str, name: String, unit: &str, value: f64) {
        self.own(&name, process);
        self.put(name, unit, value);
    }

    /// Series `series` is drawn on Perfetto process `process` in the trace.
    fn own(&mut self, series: &str, process: &str) {
        if !self.owners.contains_key(series) {
            self.owners.insert(series.to_string(), process.to_string());
        }
    }

    /// Which Perfetto process each series belongs to in the trace (a simulated process's
    /// `process NAME` for its dma-buf memory and its nodes' queues); the rest are the run's.
    pub(crate) fn owners(&self) -> &BTreeMap<String, String> {
        &self.owners
    }

    /// Takes one sample of `w` at `now`, dated frame `frame`.
    pub(crate) fn sample(&mut self, w: &World, frame: u64, now: VirtualTime) {
        self.frames.push(frame);
        self.times.push(now);
        let soc = w.kernel.soc().clone();
        let page = soc::PAGE_SIZE as f64;
        for z in soc.pages().stats().zones {
            let used = z.total_pages.saturating_sub(z.free_pages) as f64 * page;
            self.put(format!("bank {} used", z.name), "bytes", used);
            if z.cma_pages > 0 {
                let cma = z.cma_pages.saturating_sub(z.cma_free_pages) as f64 * page;
                self.put(format!("cma {} used", z.name), "bytes", cma);
            }
        }
        let usage = w.kernel.dmabuf_usage();
        let mut seen = Vec::new();
        for n in &w.nodes {
            let pid = n.process.pid();
            if seen.contains(&pid) {
                continue;
            }
            seen.push(pid);
            let name = n.desc.process_name().to_string();
            let u = usage.iter().find(|u| u.pid == pid);
            let rss = u.map_or(0, |u| u.rss) as f64;
            let pss = u.map_or(0, |u| u.pss()) as f64;
            for (what, v) in [("rss", rss), ("pss", pss)] {
                let series = format!("process {name} dma-buf {what}");
                self.own(&series, &format!("process {name}"));
                self.put(series, "bytes", v);
            }
        }
        for (name, v) in w.limits.samples() {
            self.put(name, "bytes", v);
        }
        for (ni, n) in w.nodes.iter().enumerate() {
            for &li in n.ready.keys() {
                let link = &w.links[li].name;
                let series = format!("queue {} <- {link}", n.desc.name);
                self.own(&series, &format!("process {}", n.desc.process_name()));
                self.put(series, "buffers", w.ready_bufs(ni, li).len() as f64);
            }
        }
        let dt = now.saturating_sub(self.last_at).as_ns();
        let held = std::mem::take(&mut self.held);
        for d in soc.devices() {
            if let Some(dom) = d.iommu_domain() {
                let series = format!("iommu {} mapped", d.name());
                self.put_on(d.name(), series, "bytes", dom.mapped_bytes() as f64);
            }
            let bytes = self.dma_counts(&held, d).0;
            let before = self.last_bytes.insert(d.name().to_string(), bytes);
            let moved = bytes.saturating_sub(before.unwrap_or(0));
            let bw = if dt == 0 {
                0.0
            } else {
                (moved as f64 * 1e9 / dt as f64).round()
            };
            let series = format!("device {} bandwidth", d.name());
            self.put_on(d.name(), series, "bytes/s", bw);
        }
        // Shared memory bandwidth (module `bandwidth`): each controller's bytes moved since
        // the last sample over what it could have moved.
        let ledger = &w.bandwidth.ledger;
        for (mc, bps) in ledger.controllers() {
            let moved = ledger.moved_between(mc, self.last_at.as_ns(), now.as_ns());
            let u = if dt == 0 {
                0.0
            } else {
                (moved * 1e9 / (bps as f64 * dt as f64) * 1e4).round() / 1e4
            };
            self.put(format!("memory {mc} utilisation"), "ratio", u);
        }
        self.sample_traffic(&soc, dt, &held);
        self.last_at = now;
    }

    /// The series counted where the traffic happens (module doc, second table): CMA per
    /// region, bytes per bank over the interval, IOMMU map/unmap calls, cache maintenance.
    fn sample_traffic(&mut self, soc: &soc::Soc, dt: u64, held: &[String]) {
        for r in soc.pages().cma_regions() {
            self.put(
                format!("cma region {} used", r.name),
                "bytes",
                r.used as f64,
            );
        }
        let banks = soc.mem().banks();
        let mut moved = vec![0u64; banks.len()];
        for d in soc.devices() {
            for (m, b) in moved.iter_mut().zip(self.dma_counts(held, d).1) {
                *m += b;
            }
        }
        for (bank, total) in banks.iter().zip(moved) {
            let before = self.last_bank_bytes.insert(bank.name().to_string(), total);
            let delta = total.saturating_sub(before.unwrap_or(0));
            let bw = if dt == 0 {
                0.0
            } else {
                (delta as f64 * 1e9 / dt as f64).round()
            };
            self.put(format!("bank {} bandwidth", bank.name()), "bytes/s", bw);
        }
        for d in soc.devices() {
            let name = d.name();
            if let Some(dom) = d.iommu_domain() {
                let (maps, unmaps) = dom.map_unmap_counts();
                self.put_on(name, format!("iommu {name} maps"), "calls", maps as f64);
                self.put_on(name, format!("iommu {name} unmaps"), "calls", unmaps as f64);
            }
            if !d.is_coherent() {
                let c = d.cache_maintenance();
                let series = [
                    ("clean ops", "ops", c.clean_ops),
                    ("cleaned", "bytes", c.clean_bytes),
                    ("invalidate ops", "ops", c.invalidate_ops),
                    ("invalidated", "bytes", c.invalidate_bytes),
                ];
                for (what, unit, v) in series {
                    self.put_on(name, format!("cache {name} {what}"), unit, v as f64);
                }
            }
        }
    }

    /// The samples, for the report and the trace.
    pub(crate) fn finish(mut self) -> CountersReport {
        let k = self.frames.len();
        CountersReport {
            every_frames: self.every,
            frames: self.frames,
            t_us: self.times.iter().map(|t| t.as_us_f64()).collect(),
            series: std::mem::take(&mut self.series)
                .into_iter()
                .map(|(name, (unit, mut values))| {
                    values.resize(k, 0.0);
                    CounterSeries { name, unit, values }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_interval_keeps_at_most_max_samples_per_run() {
        for frames in [1, 10, 128, 129, 600, 10_000, 1_000_000] {
            let s = Sampler::new(frames);
            let due = (0..frames).filter(|&f| s.due(f)).count() as u64;
            assert!(due <= MAX_SAMPLES, "{frames} frames: {due} samples");
            assert!(
                due >= MAX_SAMPLES.min(frames) / 2,
                "{frames} frames: {due} samples"
            );
        }
        assert_eq!(Sampler::new(600).every, 5);
        assert_eq!(Sampler::new(10).every, 1);
    }
}
