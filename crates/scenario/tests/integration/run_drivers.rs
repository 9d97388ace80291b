//! The runner drives the drivers: each node's parameter reaches its driver's job and changes
//! what the device does (and so what report.json says).

use scenario::run::{run, RunOptions};
use scenario::{load_bundled, validate, ExitCode};

fn report_of(text: &str) -> scenario::report::Report {
    let s = validate(text, "t.toml").unwrap();
    run(&s, &RunOptions::default()).report
}

fn rle_text() -> &'static str {
    scenario::bundled_text("encoder-rle").unwrap()
}

#[test]
fn test_rle_encoder_writes_a_bitstream_by_dma() {
    let s = load_bundled("encoder-rle")
        .unwrap()
        .with_frames(30)
        .unwrap();
    let r = run(&s, &RunOptions::default()).report;
    let summary = scenario::report::text_summary(&r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    let e = &r.encoders[0];
    assert_eq!((e.codec.as_str(), e.frames), ("rle", 30), "{summary}");
    assert!(e.bitstream_bytes > 0, "{summary}");
    // Every bitstream byte went through the encoder's DMA engine, and only those.
    let dev = r.devices.iter().find(|d| d.name == "encoder0").unwrap();
    assert_eq!(dev.bytes_written, e.bitstream_bytes, "{summary}");
}

#[test]
fn test_codec_changes_the_report() {
    let t = rle_text().replace("frames = 120", "frames = 12");
    let rle = report_of(&t);
    let ck = report_of(&t.replace("codec = \"rle\"", "codec = \"checksum\""));
    assert_eq!(ck.encoders[0].bitstream_bytes, 0);
    let dev = ck.devices.iter().find(|d| d.name == "encoder0").unwrap();
    assert_eq!(dev.bytes_written, 0, "a checksum encoder writes nothing");
    assert_ne!(rle.to_json(), ck.to_json());
    assert_eq!(rle.exit_code(), ExitCode::Verified);
    assert_eq!(ck.exit_code(), ExitCode::Verified);
}

#[test]
fn test_pattern_changes_the_bitstream() {
    let t = rle_text().replace("frames = 120", "frames = 6");
    let bars = report_of(&t);
    let noise = report_of(&t.replace("pattern = \"bars\"", "pattern = \"noise\""));
    // Noise has no runs (two bitstream bytes per frame byte); bars have long ones in luma.
    assert!(noise.encoders[0].bitstream_bytes > 2 * bars.encoders[0].bitstream_bytes);
    assert_eq!(noise.exit_code(), ExitCode::Verified);
}

#[test]
fn test_isp_transform_changes_the_bitstream() {
    let t = rle_text().replace("frames = 120", "frames = 6");
    let mut sums = Vec::new();
    for tr in ["copy", "invert", "swap_uv"] {
        let r = report_of(&t.replace("transform = \"copy\"", &format!("transform = \"{tr}\"")));
        assert_eq!(r.exit_code(), ExitCode::Verified, "{tr}");
        sums.push(r.encoders[0].bitstream_checksum);
    }
    assert_ne!(sums[0], sums[1]);
    assert_ne!(sums[0], sums[2]);
    assert_ne!(sums[1], sums[2]);
}

/// The default pipeline, small and short: the encoder still joins mid-stream and migrates.
fn small_default() -> String {
    scenario::bundled_text("default")
        .unwrap()
        .replace("width = 3840", "width = 640")
        .replace("height = 2160", "height = 480")
        .replace("frames = 600", "frames = 24")
        .replace("at_frame = 300", "at_frame = 12")
        .replace("frame = 100,", "frame = 4,")
}

#[test]
fn test_report_counts_gpu_maps_and_segments_and_keeps_map_counts_across_migrations() {
    let r = report_of(&small_default());
    let summary = scenario::report::text_summary(&r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    assert!(!r.migrations.is_empty(), "{summary}");
    // GPU buffers in GTT: their page runs, not a constant.
    for b in r.buffers.iter().filter(|b| b.link == "gpu->display") {
        let p = b.placement.as_ref().unwrap();
        assert_eq!(p.heap, "GTT", "{summary}");
        assert_eq!(p.contiguous, p.segments == 1, "{summary}");
        assert!(p.segments >= 1, "{summary}");
    }
    // Every map a consumer or producer made is counted: at least one per job that mapped
    // (the GPU maps its output for each of its 24 jobs, the exporter keeps no cache).
    assert!(r.maps.first >= 24, "{summary}");
    // A migration renews the exporter's mapping cache; the hits and misses of the old backing
    // still count. The encoder's join only adds map calls (its own, and the re-maps after the
    // migration) to those of the same run without it: a counter reset would lose some.
    let t = small_default();
    // Without the join: no encoder at all (one never attached is refused by validation).
    let t = &t[..t.rfind("[[events]]").unwrap()];
    let enc = t.find("name = \"encoder\"").unwrap();
    let (start, end) = (
        t[..enc].rfind("[[nodes]]").unwrap(),
        enc + t[enc..].find("[[nodes]]").unwrap(),
    );
    let no_event = report_of(&format!("{}{}", &t[..start], &t[end..]).replace(
        "to = [\"gpu\", \"encoder\", \"thumbnailer\"]",
        "to = [\"gpu\", \"thumbnailer\"]",
    ));
    assert!(no_event.migrations.is_empty());
    let calls = |m: &scenario::report::MapCounts| m.first + m.cached;
    assert!(
        calls(&r.maps) > calls(&no_event.maps),
        "{:?} vs {:?} without the encoder",
        r.maps,
        no_event.maps
    );
    // vb2 queues say which UAPI path they took: the producers' (camera, ISP) CAPTURE queues
    // and the consumers' OUTPUT queues, all importing the link's dma-bufs.
    for q in &r.vb2_queues {
        let producer = matches!(
            (q.node.as_str(), q.link.as_str()),
            ("camera", "camera->isp") | ("isp", "isp-out")
        );
        let kind = if producer { "capture" } else { "output" };
        assert_eq!((q.memory.as_str(), q.queue_type.as_str()), ("dmabuf", kind));
    }
}

#[test]
fn test_producers_cycle_their_buffers_through_capture_queues() {
    // The camera QBUFs each empty buffer, its device fills the one the driver holds, the
    // application DQBUFs it and hands it on; freed by its readers, it is queued again. So a
    // capture queue sees one QBUF per buffer at the start and one per frame its readers
    // released (every frame but those still in flight at the end: at most one per buffer),
    // and keep_mapped maps each buffer once (vb2 maps at QBUF, not the runner).
    let frames = 24u64;
    let s = load_bundled("streamoff-cycles")
        .unwrap()
        .with_frames(frames)
        .unwrap();
    let r = run(&s, &RunOptions::default()).report;
    let summary = scenario::report::text_summary(&r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    let q = r
        .vb2_queues
        .iter()
        .find(|q| q.node == "camera" && q.queue_type == "capture")
        .expect("the camera's capture queue");
    let bufs = r.buffers.iter().filter(|b| b.link == q.link).count() as u64;
    assert_eq!(q.memory, "dmabuf", "{summary}");
    assert!(q.qbufs >= r.frames.produced, "{summary}");
    assert!(q.qbufs <= bufs + r.frames.produced, "{summary}");
    assert_eq!((q.maps, q.unmaps), (bufs, bufs), "{summary}");
    // mmap+expbuf: the same cycle through vb2's own MMAP buffers (no DMABUF maps).
    let s = load_bundled("luma-chroma-banks")
        .unwrap()
        .with_frames(frames)
        .unwrap();
    let r = run(&s, &RunOptions::default()).report;
    let summary = scenario::report::text_summary(&r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    let q = r
        .vb2_queues
        .iter()
        .find(|q| q.node == "camera" && q.link == "camera->isp")
        .unwrap();
    let bufs = r.buffers.iter().filter(|b| b.link == q.link).count() as u64;
    assert_eq!(q.memory, "mmap", "{summary}");
    assert!(q.qbufs >= r.frames.produced, "{summary}");
    assert!(q.qbufs <= bufs + r.frames.produced, "{summary}");
    assert_eq!(q.maps, 0, "{summary}");
}

#[test]
fn test_max_in_flight_bounds_the_swapchain() {
    let t = scenario::bundled_text("swapchain-wayland")
        .unwrap()
        .replace("frames = 120", "frames = 40");
    let one = report_of(&t);
    let two = report_of(&t.replace("max_in_flight = 1", "max_in_flight = 2"));
    for r in [&one, &two] {
        assert_eq!(r.exit_code(), ExitCode::Verified);
    }
    assert_eq!(one.swapchains[0].max_seen, 1);
    assert_eq!(two.swapchains[0].max_seen, 2);
    assert!(one.swapchains[0].waits > 0);
    assert_ne!(one.to_json(), two.to_json());
}

#[test]
fn test_dri2_buffers_are_the_display_sides() {
    let t = scenario::bundled_text("swapchain-dri2")
        .unwrap()
        .replace("frames = 120", "frames = 20");
    let dri2 = report_of(&t);
    assert_eq!(dri2.exit_code(), ExitCode::Verified);
    let c = &dri2.swapchains[0];
    assert_eq!(
        (c.mode.as_str(), c.allocated_by.as_str()),
        ("dri2", "compositor")
    );
    let wl = report_of(
        &t.replace("swapchain = \"dri2\"", "swapchain = \"wayland\"")
            .replace("exporter = \"heap:cma\"", "exporter = \"gpu\""),
    );
    assert_eq!(wl.exit_code(), ExitCode::Verified);
    assert_eq!(wl.swapchains[0].allocated_by, "client");
}

#[test]
fn test_swapchain_combinations_the_runner_cannot_honour_are_refused() {
    let t = scenario::bundled_text("swapchain-dri2").unwrap();
    let cases = [
        // The mode says who allocates: dri2 is the display side's heap, not the GPU's objects.
        (
            t.replace("exporter = \"heap:cma\"", "exporter = \"gpu\""),
            "nodes[1].params.swapchain",
        ),
        // A bound at the link's buffer count bounds nothing.
        (
            t.replace("max_in_flight = 3 }", "max_in_flight = 4 }"),
            "nodes[1].params.max_in_flight",
        ),
    ];
    for (text, field) in cases {
        let e = validate(&text, "s.toml").unwrap_err();
        assert_eq!(e.exit_code().code(), 2);
        assert!(e.to_string().contains(field), "{e}");
        assert!(e.to_string().starts_with("s.toml:"), "{e}");
    }
    // A swapchain between a camera and an ISP is no swapchain.
    let isp = rle_text();
    let bad = isp.replace(
        "device = \"display0\"\nprocess = \"compositor\"",
        "device = \"display0\"\nprocess = \"compositor\"\nparams = { swapchain = \"wayland\" }",
    );
    assert_ne!(bad, isp);
    let e = validate(&bad, "s.toml").unwrap_err();
    assert_eq!(e.exit_code().code(), 2);
    assert!(e.to_string().contains("no link from a gpu node"), "{e}");
}

#[test]
fn test_memory_paths_are_the_real_uapi() {
    // mmap+expbuf: vb2's MMAP buffers of the camera's CAPTURE queue, exported with EXPBUF and
    // imported by the ISP's OUTPUT queue.
    let s = load_bundled("luma-chroma-banks")
        .unwrap()
        .with_frames(8)
        .unwrap();
    let r = run(&s, &RunOptions::default()).report;
    assert_eq!(r.exit_code(), ExitCode::Verified);
    let b = r.buffers.iter().find(|b| b.link == "camera->isp").unwrap();
    assert_eq!(b.placement.as_ref().unwrap().exporter, "vb2");
    let path = |node: &str, link: &str| {
        r.vb2_queues
            .iter()
            .find(|q| q.node == node && q.link == link)
            .map(|q| (q.memory.clone(), q.queue_type.clone()))
    };
    assert_eq!(
        path("camera", "camera->isp"),
        Some(("mmap".into(), "capture".into()))
    );
    assert_eq!(
        path("isp", "camera->isp"),
        Some(("dmabuf".into(), "output".into()))
    );
    // udmabuf and userptr: the producer's memfd pages, shared as a udmabuf.
    for (name, exporter) in [
        ("udmabuf", "udmabuf"),
        ("userptr", "userptr (memfd via udmabuf)"),
    ] {
        let s = load_bundled(name).unwrap().with_frames(8).unwrap();
        let r = run(&s, &RunOptions::default()).report;
        assert_eq!(r.exit_code(), ExitCode::Verified, "{name}");
        let b = r.buffers.iter().find(|b| b.link == "isp->gpu").unwrap();
        let p = b.placement.as_ref().unwrap();
        assert_eq!((p.exporter.as_str(), p.heap.as_str()), (exporter, "memfd"));
        assert!(r.checker.findings.is_empty(), "{name}: {:?}", r.checker);
    }
}

#[test]
fn test_explicit_sync_hands_each_frame_over_with_a_sync_file() {
    let t = scenario::bundled_text("explicit-sync")
        .unwrap()
        .replace("frames = 60", "frames = 10");
    let explicit = report_of(&t);
    assert_eq!(explicit.exit_code(), ExitCode::Verified);
    // Three links, ten frames: one sync_file per frame and link, each waited on.
    assert_eq!(explicit.fences.sync_files, 30);
    assert_eq!(explicit.fences.sync_file_waits, 30);
    assert_eq!(
        explicit.fences.sync_checks, 0,
        "no implicit fences on these links"
    );
    let implicit = report_of(&t.replace("sync = \"explicit\"", "sync = \"implicit\""));
    assert_eq!(implicit.exit_code(), ExitCode::Verified);
    assert_eq!(implicit.fences.sync_files, 0);
    assert!(implicit.fences.sync_checks > 0);
    // Every producer (the camera and ISP with their job's out-fence, the GPU with its ring's)
    // hands each frame over at submission with its acquire fence: every consumer's jobs wait
    // on it (virtual time); implicit sync hands over at the job's end (no fence wait). The
    // frames reach the same vblanks.
    let wait = |r: &scenario::report::Report, node: &str| {
        r.nodes
            .iter()
            .find(|n| n.name == node)
            .unwrap()
            .fence_wait_us
    };
    for node in ["isp", "gpu", "display"] {
        assert!(wait(&explicit, node) > 0.0, "{node}: {:?}", explicit.nodes);
    }
    assert_eq!(wait(&explicit, "camera"), 0.0, "a source waits for nothing");
    for node in ["camera", "isp", "gpu", "display"] {
        assert_eq!(wait(&implicit, node), 0.0, "{:?}", implicit.nodes);
    }
    assert_eq!(explicit.latency_us, implicit.latency_us);
    // Every sync_file fd was closed: no process keeps one at the end (the run checks for
    // leaked dma-bufs and mappings; fds die with their processes).
    assert!(explicit.checker.findings.is_empty());
}

#[test]
fn test_a_swapchain_grows_when_frames_back_up_and_shrinks_when_idle() {
    // The display (50 fps) is slower than the camera (60 fps): frames back up and the chain
    // grows. The camera's queue stops streaming for frames 60..100: the display catches up,
    // the extra buffer idles and is freed when drawing resumes.
    let t = scenario::bundled_text("swapchain-dri2").unwrap().to_string()
        + "\n[[events]]\nat_frame = 60\naction = \"stream_off\"\nnode = \"camera\"\nqueue = \"capture\"\n\
           \n[[events]]\nat_frame = 100\naction = \"stream_on\"\nnode = \"camera\"\nqueue = \"capture\"\n";
    let r = report_of(&t);
    let summary = scenario::report::text_summary(&r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    let c = &r.swapchains[0];
    assert_eq!((c.min, c.buffers), (2, 4), "{summary}");
    assert!(c.grown >= 1, "{summary}");
    assert!(c.shrunk >= 1, "{summary}");
    assert!(c.max > c.min, "{summary}");
    // Without the pause it only grows.
    let steady = report_of(scenario::bundled_text("swapchain-dri2").unwrap());
    assert_eq!(steady.swapchains[0].shrunk, 0);
    assert!(steady.swapchains[0].grown >= 1);
}
