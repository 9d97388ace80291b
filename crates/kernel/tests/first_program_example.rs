//! The onboarding example (`examples/first_program.rs`) run as a test, so that it cannot rot:
//! the device-to-device copy is intact, the missing sync gives the old bytes and one
//! `stale-cpu-data` finding, and the bracketed write arrives.

#[allow(dead_code)]
#[path = "../examples/first_program.rs"]
mod first_program;

#[test]
fn test_first_program_shows_the_missing_sync_as_wrong_bytes_and_a_finding() {
    let mut out = Vec::new();
    let o = first_program::run(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(o.device_to_device_ok, "{text}");
    // The ISP read what memory held: frame 1's first bytes, not the CPU's dirty lines.
    assert_eq!(o.read_without_sync, [0, 1, 2, 3, 4, 5, 6], "{text}");
    assert_eq!(o.stale_findings, 1, "{text}");
    assert_eq!(o.read_with_sync, b"frame 3", "{text}");
    assert_eq!(o.findings, 1, "only the planted fault: {text}");
    assert!(text.contains("[stale-cpu-data] isp0"), "{text}");
    assert!(
        text.contains("bus address 0x") && text.contains("IOVA 0x"),
        "{text}"
    );
}
