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
    // No dma-buf is imported into a USERPTR queue: no attach, no DMABUF map.
    assert_eq!((q.attaches, q.maps), (0, 0), "{summary}");
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
