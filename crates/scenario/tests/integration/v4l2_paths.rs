//! The V4L2 side of every link: which vb2 memory each producer's CAPTURE queue takes, and how
//! its frames travel to their consumers (implicit fences, or sync_files).

use scenario::run::{run, RunOptions};
use scenario::{load_bundled, validate, ExitCode};

fn report_of(text: &str) -> scenario::report::Report {
    let s = validate(text, "t.toml").unwrap();
    run(&s, &RunOptions::default()).report
}

#[test]
fn test_userptr_producer_queues_its_process_memory_as_userptr() {
    // The ISP's buffers are its process's memfd pages, mapped in its address space and queued
    // as V4L2_MEMORY_USERPTR; vb2 pins and maps them once per buffer (same pointer, same
    // length), the GPU reads the same pages through a udmabuf, and every frame verifies.
    let frames = 12u64;
    let s = load_bundled("userptr")
        .unwrap()
        .with_frames(frames)
        .unwrap();
    let r = run(&s, &RunOptions::default()).report;
    let summary = scenario::report::text_summary(&r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    let q = r
        .vb2_queues
        .iter()
        .find(|q| q.node == "isp" && q.link == "isp->gpu")
        .expect("the ISP's USERPTR capture queue");
    assert_eq!(
        (q.memory.as_str(), q.queue_type.as_str()),
        ("userptr", "capture"),
        "{summary}"
    );
    let bufs = r.buffers.iter().filter(|b| b.link == q.link).count() as u64;
    assert!(q.qbufs >= r.frames.produced, "{summary}");
    assert!(q.qbufs <= bufs + r.frames.produced, "{summary}");
    // No dma-buf is imported into a USERPTR queue: no attach. Its maps are vb2's pins
    // (`get_userptr`): one per buffer, however often it is queued again with the same pointer
    // and length; each unpinned (`put_userptr`) when the queue closed.
    assert_eq!(q.attaches, 0, "{summary}");
    assert_eq!((q.maps, q.unmaps), (bufs, bufs), "{summary}");
    // The device wrote through vb2's pinned pages: the ISP's engine wrote every frame.
    let isp = r.devices.iter().find(|d| d.name == "isp0").unwrap();
    let gpu = r.devices.iter().find(|d| d.name == "gpu0").unwrap();
    assert!(isp.bytes_written > 0 && gpu.bytes_read > 0, "{summary}");
    assert!(r.checker.findings.is_empty(), "{summary}");
    // The same link as plain dmabuf: a DMABUF capture queue instead.
    let t = scenario::bundled_text("userptr")
        .unwrap()
        .replace("memory = \"userptr\"", "memory = \"dmabuf\"")
        .replace("frames = 60", "frames = 12");
    let d = report_of(&t);
    assert_eq!(d.exit_code(), ExitCode::Verified);
    let q = d
        .vb2_queues
        .iter()
        .find(|q| q.node == "isp" && q.link == "isp->gpu")
        .unwrap();
    assert_eq!(q.memory, "dmabuf");
}

#[test]
fn test_userptr_queue_counts_a_pin_per_new_pointer() {
    // `set_buffers` takes the USERPTR link down to 2 buffers, then back to 4: the application
    // unmaps the 2 it dropped and maps 2 new memfds at new addresses; vb2 pins each new
    // pointer once. 6 pointers in all: 6 pins, and 6 unpins by the end.
    let t = scenario::bundled_text("userptr")
        .unwrap()
        .replace("frames = 60", "frames = 16")
        + "\n[[events]]\nat_frame = 4\naction = \"set_buffers\"\nlink = \"isp->gpu\"\ncount = 2\n\n[[events]]\nat_frame = 8\naction = \"set_buffers\"\nlink = \"isp->gpu\"\ncount = 4\n";
    let r = report_of(&t);
    let summary = scenario::report::text_summary(&r);
    assert_eq!(r.exit_code(), ExitCode::Verified, "{summary}");
    let q = r
        .vb2_queues
        .iter()
        .find(|q| q.node == "isp" && q.link == "isp->gpu")
        .expect("the ISP's USERPTR capture queue");
    assert_eq!(q.memory, "userptr");
    assert_eq!((q.maps, q.unmaps), (6, 6), "{summary}");
    // Without the events: 4 pointers, 4 pins.
    let plain = report_of(
        &scenario::bundled_text("userptr")
            .unwrap()
            .replace("frames = 60", "frames = 16"),
    );
    let q = plain
        .vb2_queues
        .iter()
        .find(|q| q.node == "isp" && q.link == "isp->gpu")
        .unwrap();
    assert_eq!((q.maps, q.unmaps), (4, 4));
}

fn node_wait(r: &scenario::report::Report, node: &str) -> f64 {
    r.nodes
        .iter()
        .find(|n| n.name == node)
        .unwrap_or_else(|| panic!("no node {node}"))
        .fence_wait_us
}

/// The default pipeline, small: camera -> ISP -> {GPU, encoder, thumbnailer}, GPU -> display.
fn small_default(frames: u32) -> String {
    scenario::bundled_text("default")
        .unwrap()
        .replace("width = 3840", "width = 640")
        .replace("height = 2160", "height = 480")
        .replace("frames = 600", &format!("frames = {frames}"))
        .replace("at_frame = 300", "at_frame = 12")
        .replace("frame = 100,", "frame = 4,")
}

#[test]
fn test_v4l2_producer_frames_travel_with_sync_files_and_consumers_wait_on_them() {
    // The ISP's output link made explicit: the ISP (a V4L2 producer) hands every frame over
    // when its job is queued, with a sync_file of the job's out-fence; the GPU and the
    // encoder wait on it before their jobs, and the thumbnailer (a CPU reader, which takes no
    // sync_file) gets it imported into the buffer's reservation object (IMPORT_SYNC_FILE),
    // where its DMA_BUF_IOCTL_SYNC waits. Each of them really waited: fence_wait_us > 0.
    let base = small_default(24);
    let anchor = "to = [\"gpu\", \"encoder\", \"thumbnailer\"]";
    assert!(base.contains(anchor));
    let explicit_text = base.replace(anchor, &format!("{anchor}\nsync = \"explicit\""));
    let implicit = report_of(&base);
    let explicit = report_of(&explicit_text);
    let summary = scenario::report::text_summary(&explicit);
    assert_eq!(explicit.exit_code(), ExitCode::Verified, "{summary}");
    assert_eq!(implicit.exit_code(), ExitCode::Verified);
    for node in ["gpu", "encoder", "thumbnailer"] {
        assert!(
            node_wait(&explicit, node) > 0.0,
            "{node} waited on the ISP's fence: {:?}",
            explicit.nodes
        );
    }
    // Nobody else waited: the ISP's own input and the display's are implicit.
    for node in ["camera", "isp", "display"] {
        assert_eq!(
            node_wait(&explicit, node),
            0.0,
            "{node}: {:?}",
            explicit.nodes
        );
    }
    for n in &implicit.nodes {
        assert_eq!(
            n.fence_wait_us, 0.0,
            "implicit sync waits on no sync_file: {n:?}"
        );
    }
    // One sync_file per frame the ISP handed over, every one waited on (or imported).
    assert!(explicit.fences.sync_files > 0, "{summary}");
    assert_eq!(implicit.fences.sync_files, 0);
    assert!(
        explicit.fences.sync_file_waits > explicit.fences.sync_files,
        "three readers per sync_file: {:?}",
        explicit.fences
    );
    // The consumers start when the fence signals, which is when implicit sync would have
    // started them: the same latencies, the same thumbnail.
    assert_eq!(explicit.latency_us, implicit.latency_us);
    let s = validate(&explicit_text, "t.toml").unwrap();
    let t = validate(&base, "t.toml").unwrap();
    assert_eq!(
        run(&s, &RunOptions::default()).thumbnail,
        run(&t, &RunOptions::default()).thumbnail
    );
}
