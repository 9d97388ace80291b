//! Inputs that are not scenarios and outputs that cannot be written: each is a clear error
//! with exit code 2 before any simulation, never a hang, a 4 GB read or a panic.

mod common;

use common::{dmabuf, Out};
use std::process::{Command, Stdio};

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("dmabuf-bad-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_file(&d);
    d
}

fn refused(o: &Out, words: &[&str]) {
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    for w in words {
        assert!(o.stderr.contains(w), "`{w}` not in: {}", o.stderr);
    }
    assert!(o.stdout.is_empty(), "{}", o.stdout);
}

#[test]
fn a_character_device_is_not_read_as_a_scenario() {
    if !std::path::Path::new("/dev/zero").exists() {
        return;
    }
    for cmd in ["check", "run"] {
        let o = dmabuf(&[cmd, "/dev/zero"]);
        refused(&o, &["/dev/zero", "a character device, not a regular file"]);
    }
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let p = tmp("fifo");
    let made = Command::new("mkfifo").arg(&p).status();
    if !made.is_ok_and(|s| s.success()) {
        return; // no mkfifo on this host
    }
    // Nobody ever writes the FIFO: opening it would block forever.
    let o = dmabuf(&["check", p.to_str().unwrap()]);
    refused(&o, &["a FIFO, not a regular file"]);
    let _ = std::fs::remove_file(&p);
}

#[test]
fn a_directory_is_eisdir() {
    let d = tmp("dir");
    std::fs::create_dir_all(&d).unwrap();
    let o = dmabuf(&["check", d.to_str().unwrap()]);
    refused(&o, &["EISDIR", "a directory"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_missing_file_is_enoent_by_name() {
    let o = dmabuf(&["check", "no-such-scenario.toml"]);
    refused(&o, &["ENOENT (No such file or directory)"]);
    assert!(!o.stderr.contains("os error"), "{}", o.stderr);
}

#[test]
fn endless_standard_input_stops_at_the_size_limit() {
    let Ok(zero) = std::fs::File::open("/dev/zero") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args(["check", "-"])
        .stdin(zero)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("<stdin>") && err.contains("EFBIG"), "{err}");
}

#[test]
fn out_that_is_not_a_directory_is_refused_before_the_run() {
    let f = tmp("file");
    std::fs::write(&f, "x").unwrap();
    for out in ["/dev/null", f.to_str().unwrap()] {
        let o = dmabuf(&["run", "default", "--out", out]);
        refused(&o, &["--out", "ENOTDIR", "not a directory"]);
        // Nothing ran: no "wrote" line.
        assert!(!o.stderr.contains("wrote"), "{}", o.stderr);
    }
    let _ = std::fs::remove_file(&f);
}

#[test]
fn out_that_cannot_be_created_is_refused_before_the_run() {
    // /proc takes no new directories, even from root.
    let o = dmabuf(&["run", "default", "--out", "/proc/dmabuf-out/x"]);
    refused(&o, &["--out /proc/dmabuf-out/x", "creating it"]);
}

#[test]
fn diff_of_a_device_is_an_error_not_a_read() {
    if !std::path::Path::new("/dev/zero").exists() {
        return;
    }
    let o = dmabuf(&["diff", "/dev/zero", "/dev/zero"]);
    refused(&o, &["/dev/zero", "not a regular file"]);
}

#[test]
fn check_to_a_full_stdout_is_exit_1_with_enospc() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args(["check", "default"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ENOSPC"), "{err}");
}

#[test]
fn demo_to_a_full_stdout_names_the_errno() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .arg("demo")
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ENOSPC") && !err.contains("os error"), "{err}");
}
