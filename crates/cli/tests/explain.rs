//! `dmabuf explain`: one buffer's placement reason, from a scenario or a report.json.

mod common;
use common::{dmabuf, dmabuf_with_stdin, tmp, TINY};

#[test]
fn explain_names_the_device_behind_each_constraint_and_the_physical_range() {
    let r = dmabuf_with_stdin(&["explain", "-", "cam->screen[0]"], TINY);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("cam->screen[0]: "), "{}", r.stdout);
    assert!(r.stdout.contains("1. allocation: "), "{}", r.stdout);
    assert!(
        r.stdout.contains("physical limit") && r.stdout.contains("by display0"),
        "the 30-bit display sets the limit: {}",
        r.stdout
    );
    assert!(r.stdout.contains("CMA region cma0"), "{}", r.stdout);
    assert!(r.stdout.contains("physical: 1 range: 0x"), "{}", r.stdout);
    assert!(
        r.stdout.contains("ruled out: scattered pages"),
        "{}",
        r.stdout
    );
}

#[test]
fn explain_reads_a_report_and_refuses_an_unknown_buffer() {
    let dir = tmp("explain");
    let out = dir.join("run");
    let r = dmabuf_with_stdin(&["run", "-", "--out", out.to_str().unwrap()], TINY);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = out.join("report.json");
    let report = report.to_str().unwrap();
    let j = dmabuf(&["explain", report, "cam->screen[1]", "--json"]);
    assert_eq!(j.code, 0, "{}", j.stderr);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let d = &v["decisions"][0];
    assert_eq!(d["when"], "allocation");
    assert!(d["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "display0"));
    let ranges = d["groups"][0]["ranges"].as_array().unwrap();
    assert_eq!(ranges.len(), 1, "CMA: one range");
    let missing = dmabuf(&["explain", report, "nope[0]"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no buffer `nope[0]`") && missing.stderr.contains("cam->screen[0]"),
        "{}",
        missing.stderr
    );
}
