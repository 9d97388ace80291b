//! The counters the lower layers keep where the traffic happens (`soc` per device and bank,
//! `dma` per sync, the IOMMU domain per map), as report series: each shown moving on a run
//! that causes it and quiet where nothing causes it.

fn series<'a>(c: &'a scenario::report::CountersReport, name: &str) -> &'a [f64] {
    &c.series(name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = c.series.iter().map(|s| s.name.as_str()).collect();
            panic!("no series {name:?} among {names:?}")
        })
        .values
}

fn run12() -> scenario::report::CountersReport {
    let s = scenario::load_bundled("luma-chroma-banks")
        .unwrap()
        .with_frames(12)
        .unwrap();
    let out = scenario::run::run(&s, &scenario::run::RunOptions::default());
    out.report.counters.expect("a run samples counters")
}

#[test]
fn every_byte_a_device_moves_lands_in_a_bank_once() {
    let c = run12();
    let sum = |prefix: &str| -> Vec<f64> {
        let mut v = vec![0.0; c.frames.len()];
        for s in c
            .series
            .iter()
            .filter(|s| s.name.starts_with(prefix) && s.name.ends_with(" bandwidth"))
        {
            for (a, b) in v.iter_mut().zip(&s.values) {
                *a += b;
            }
        }
        v
    };
    let (banks, devices) = (sum("bank "), sum("device "));
    assert!(devices.iter().any(|&v| v > 0.0), "the devices move bytes");
    for (k, (b, d)) in banks.iter().zip(&devices).enumerate() {
        // Each series is rounded to a byte/s on its own.
        assert!(
            (b - d).abs() <= 8.0,
            "sample {k}: banks {b} B/s, devices {d} B/s"
        );
    }
    // The buffers live in dram0 (the CMA) and dram1; nothing touches VRAM or the carveout.
    assert!(series(&c, "bank dram0 bandwidth")[3] > 0.0);
    assert!(series(&c, "bank dram1 bandwidth")[3] > 0.0);
    assert!(series(&c, "bank vram0 bandwidth").iter().all(|&v| v == 0.0));
    assert!(series(&c, "bank carveout0 bandwidth")
        .iter()
        .all(|&v| v == 0.0));
}

#[test]
fn cache_maintenance_is_counted_for_the_non_coherent_device_that_syncs_and_nowhere_else() {
    let c = run12();
    // isp0 is not coherent: its mappings clean (map, DMA_TO_DEVICE side) and invalidate.
    let cleaned = series(&c, "cache isp0 cleaned");
    let ops = series(&c, "cache isp0 clean ops");
    assert!(*cleaned.last().unwrap() > 0.0 && *ops.last().unwrap() > 0.0);
    assert!(cleaned.windows(2).all(|w| w[0] <= w[1]), "cumulative");
    assert!(series(&c, "cache isp0 invalidated").last().unwrap() > &0.0);
    // The coherent GPU snoops: no maintenance, no series; the encoder never attaches here.
    assert!(c.series("cache gpu0 cleaned").is_none());
    assert!(series(&c, "cache encoder0 cleaned")
        .iter()
        .all(|&v| v == 0.0));
    assert!(series(&c, "cache encoder0 invalidate ops")
        .iter()
        .all(|&v| v == 0.0));
}

#[test]
fn iommu_map_and_unmap_calls_and_cma_regions_are_series() {
    let c = run12();
    let maps = series(&c, "iommu isp0 maps");
    let mapped = series(&c, "iommu isp0 mapped");
    assert!(maps.windows(2).all(|w| w[0] <= w[1]), "cumulative");
    for (m, b) in maps.iter().zip(mapped) {
        assert!(*b == 0.0 || *m > 0.0, "bytes mapped without a map call");
    }
    assert!(series(&c, "iommu gpu0 maps").last().unwrap() > &0.0);
    assert!(series(&c, "iommu encoder0 maps").iter().all(|&v| v == 0.0));
    // The camera's contiguous buffers come from the one CMA region.
    let region = series(&c, "cma region cma0 used");
    assert!(region.iter().all(|&v| v > 0.0));
    assert_eq!(region, series(&c, "cma dram0 used"));
}

/// luma-chroma-banks for 12 frames with its camera->isp link's memory replaced.
fn camera_run(memory: &str) -> scenario::report::CountersReport {
    let text = scenario::bundled_text("luma-chroma-banks")
        .unwrap()
        .replace(
            "memory = \"mmap+expbuf\"",
            &format!("memory = \"{memory}\""),
        );
    let s = scenario::validate(&text, "camera.toml")
        .unwrap()
        .with_frames(12)
        .unwrap();
    let out = scenario::run::run(&s, &scenario::run::RunOptions::default());
    assert!(out.report.errors.is_empty(), "{:?}", out.report.errors);
    out.report.counters.expect("counters")
}

/// The non-coherent camera owes cache maintenance only where a streaming mapping of cached
/// memory is made or dropped: never for vb2's coherent MMAP buffers (uncached for the CPU),
/// once per buffer for imported dma-bufs, at their first map (the mapping is then kept: the
/// frames go device to device, and a CPU reader syncs through the exporter).
#[test]
fn the_non_coherent_camera_syncs_only_where_a_streaming_mapping_is_made() {
    let ops = |c: &scenario::report::CountersReport| {
        series(c, "cache camera0 clean ops")
            .iter()
            .zip(series(c, "cache camera0 invalidate ops"))
            .map(|(a, b)| a + b)
            .collect::<Vec<f64>>()
    };
    let coherent = camera_run("mmap+expbuf");
    assert!(
        ops(&coherent).iter().all(|&v| v == 0.0),
        "{:?}",
        ops(&coherent)
    );
    let kept = ops(&camera_run("dmabuf"));
    // Each buffer mapped once before the first frame (a flush of each entry: clean and
    // invalidate), then nothing.
    assert!(kept[0] > 0.0, "{kept:?}");
    assert!(kept.iter().all(|&v| v == kept[0]), "{kept:?}");
}
