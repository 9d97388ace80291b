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
