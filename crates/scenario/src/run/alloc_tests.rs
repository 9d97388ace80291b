//! A buffer whose allocation fails after its export gives everything back: the fds it opened
//! in every process, its attachments, its memory (`World::alloc_buffer`, module `alloc`).

use super::{setup, RunOptions};

/// The tiny camera -> display scenario with `exporter` (a link field) on its link.
fn scenario(exporter: &str) -> crate::Scenario {
    let toml = format!("{}{exporter}\n", super::tests::TINY);
    crate::validate(&toml, "t.toml").expect("valid")
}

/// The consumer's process has no fd left (`RLIMIT_NOFILE` 0): passing it the buffer fails
/// with `EMFILE`, and the producer's fd, the buffer and its memory go with the error.
fn send_fd_failure_leaks_nothing(exporter: &str) {
    let s = scenario(exporter);
    let mut sched = setup(&s, &RunOptions::default()).expect("boots");
    assert!(sched.errors.is_empty(), "{:?}", sched.errors);
    let w = &mut sched.w;
    let (cam, screen) = (w.nodes[0].process.clone(), w.nodes[1].process.clone());
    assert_ne!(cam.pid(), screen.pid(), "two processes");
    let fds = (cam.fds(), screen.fds());
    let free = kernel::sim::free_memory(&w.kernel);
    let bufs = w.links[0].bufs.len();
    screen.set_max_fds(0);
    let err = w.alloc_buffer(0).expect_err("no fd in the consumer");
    assert_eq!(err.errno, "EMFILE", "{}", err.message);
    assert!(err.message.contains("passing"), "{}", err.message);
    assert_eq!((cam.fds(), screen.fds()), fds, "an fd stays open");
    assert_eq!(w.links[0].bufs.len(), bufs);
    assert_eq!(
        kernel::sim::free_memory(&w.kernel),
        free,
        "the buffer's memory is held"
    );
    // The limit lifted, the next allocation succeeds.
    screen.set_max_fds(1024);
    let bi = w.alloc_buffer(0).expect("allocates");
    assert!(w.links[0].bufs.contains(&bi));
}

#[test]
fn a_failed_send_fd_closes_the_producers_fd_and_frees_a_heap_buffer() {
    send_fd_failure_leaks_nothing(r#"exporter = "heap:system""#);
}

#[test]
fn a_failed_send_fd_closes_the_producers_fd_and_frees_a_constraint_buffer() {
    send_fd_failure_leaks_nothing(r#"exporter = "constraint""#);
}

#[test]
fn a_failed_send_fd_closes_the_producers_fd_and_frees_a_udmabuf() {
    send_fd_failure_leaks_nothing(r#"exporter = "udmabuf""#);
}

/// The tiny scenario, its camera behind the default machine's IOMMU (`isp0`: 40-bit, `smmu0`)
/// and its display (`display0`: 30-bit, no IOMMU) attached only at frame 2, on a constraint link whose
/// planes must both be in `dram1` (above 4 GiB): memory the camera reaches and the display
/// never can.
fn unreachable_for_the_display() -> crate::Scenario {
    let toml = super::tests::TINY
        .replace(
            "device = \"camera0\"",
            "device = \"isp0\"\nprocess = \"camera\"",
        )
        .replace(
            "device = \"display0\"",
            "device = \"display0\"\nprocess = \"compositor\"\nattached = false",
        );
    let toml = format!(
        "{toml}exporter = \"constraint\"\nplanes = [{{ bank = \"dram1\" }}, {{ bank = \"dram1\" }}]\n\n\
         [[events]]\nat_frame = 2\naction = \"attach\"\nnode = \"screen\"\n"
    );
    crate::validate(&toml, "t.toml").expect("valid")
}

/// The constraint exporter refuses an attach that can never work (its rule 1: no memory meets
/// the attached devices' needs, here a 30-bit display without an IOMMU and planes above 4
/// GiB): the buffer, made, passed and attached by the camera already, goes down whole — both
/// processes' fds closed, the camera's attachment detached, the dma-buf released — and once
/// the display is gone again the next allocation works.
#[test]
fn a_refused_attach_takes_the_buffer_down_whole() {
    let s = unreachable_for_the_display();
    let mut sched = setup(&s, &RunOptions::default()).expect("boots without the display");
    assert!(sched.errors.is_empty(), "{:?}", sched.errors);
    let w = &mut sched.w;
    let (cam, screen) = (w.nodes[0].process.clone(), w.nodes[1].process.clone());
    assert_ne!(cam.pid(), screen.pid(), "two processes");
    let fds = (cam.fds(), screen.fds());
    let live = w.kernel.registry().len();
    let free = kernel::sim::free_memory(&w.kernel);
    let bufs = w.links[0].bufs.clone();
    // The display joins (as an `attach` event makes it): every new buffer is attached for it.
    w.nodes[1].active = true;
    let bi = w.bufs.len();
    let err = w
        .alloc_buffer(0)
        .expect_err("the display never reaches dram1");
    assert!(
        err.message.contains("display0 attaching"),
        "{}",
        err.message
    );
    assert!(!err.errno.is_empty(), "{}", err.message);
    assert_eq!((cam.fds(), screen.fds()), fds, "an fd stays open");
    assert_eq!(
        w.kernel.registry().len(),
        live,
        "the dma-buf outlived its failure"
    );
    assert!(w.bufs[bi].is_none(), "the buffer is still the World's");
    assert_eq!(w.links[0].bufs, bufs);
    assert!(!w.links[0].free.contains(&bi));
    assert_eq!(kernel::sim::free_memory(&w.kernel), free);
    // Without the display the next one is made, passed, attached by the camera alone.
    w.nodes[1].active = false;
    let bi = w.alloc_buffer(0).expect("allocates");
    assert!(w.links[0].bufs.contains(&bi));
    assert_eq!(w.buf(bi).atts.keys().copied().collect::<Vec<_>>(), vec![0]);
    assert_eq!(w.kernel.registry().len(), live + 1);
}
