//! Standard output that goes away or fills up: `dmabuf run | head -1` and `dmabuf soc >
//! /dev/full` end with exit 1 and the errno by name on stderr, never a panic (101) or the
//! verdict's code.

use std::process::{Command, Stdio};

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("dmabuf-stdout-{}-{name}", std::process::id()))
}

#[test]
fn test_reader_gone_is_epipe_by_name_and_exit_1_not_the_verdict() {
    let dir = tmp("pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args([
            "run", "udmabuf", "--frames", "5", "--format", "json", "--out",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the report is written, as `| head -1` does once it has its
    // line. The scenario verifies: exit 0 would claim a verdict the reader never saw.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("writing standard output: EPIPE"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The run's files were written all the same.
    assert!(dir.join("report.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_full_stdout_is_enospc_by_name_and_exit_1() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // not a Linux host with /dev/full: nothing to check
    };
    let out = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .arg("soc")
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("ENOSPC"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
}

#[test]
fn test_reader_that_stays_sees_the_verdict_exit_code() {
    let dir = tmp("stays");
    let out = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args(["run", "udmabuf", "--frames", "5", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("EPIPE"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
