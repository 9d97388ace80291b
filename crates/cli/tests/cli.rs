//! The `dmabuf` binary's exit codes: 0 verified, 1 failed run, 2 invalid scenario or arguments.

use std::process::Command;

fn dmabuf(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("dmabuf-cli-{}-{name}", std::process::id()))
}

#[test]
fn test_verified_run_exits_0_and_writes_the_files() {
    let dir = tmp("ok");
    let (code, out, err) = dmabuf(&[
        "run",
        "udmabuf",
        "--frames",
        "5",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("VERIFIED"));
    for f in [
        "report.json",
        "trace.json",
        "timeline.svg",
        "latency.svg",
        "memory.svg",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let (code, json, _) = dmabuf(&[
        "run",
        "udmabuf",
        "--frames",
        "5",
        "--format",
        "json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(json.contains("\"latency_us\""));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_failed_run_exits_1() {
    let dir = tmp("fail");
    let (code, out, _) = dmabuf(&["run", "unsatisfiable", "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ENOMEM"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_invalid_scenario_and_arguments_exit_2() {
    let f = tmp("bad.toml");
    std::fs::write(&f, "name = 'x'\nframes = 10\ncolour = 1\n").unwrap();
    let (code, _, err) = dmabuf(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains(":3:1"), "{err}");
    let (code, _, _) = dmabuf(&["run", "no-such-bundled"]);
    assert_eq!(code, 2);
    let (code, _, _) = dmabuf(&["run", "--frames", "0", "process-killed"]);
    assert_eq!(code, 2);
    let (code, _, _) = dmabuf(&["run", "--bogus"]);
    assert_eq!(code, 2);
    std::fs::remove_file(&f).unwrap();
}

#[test]
fn test_scenarios_lists_every_bundled_one() {
    let (code, out, _) = dmabuf(&["scenarios"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), scenario::bundled().len());
    assert!(out.starts_with("default"));
}
