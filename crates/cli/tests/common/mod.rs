//! Running the built `dmabuf` binary from the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What a run of the binary gave: exit code, stdout, stderr.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `dmabuf ARGS`, feeding `stdin` to it.
pub fn dmabuf_with_stdin(args: &[&str], stdin: &str) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `dmabuf ARGS` with an empty stdin.
pub fn dmabuf(args: &[&str]) -> Out {
    dmabuf_with_stdin(args, "")
}

/// A fresh directory under the system's temp dir, unique to this test process and `name`.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dmabuf-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small scenario: a 320x240 camera feeding a display for a few frames.
pub const TINY: &str = r#"name = "tiny"
frames = 4

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
width = 320
height = 240

[[nodes]]
name = "screen"
driver = "display"
device = "display0"

[[links]]
from = "cam"
to = "screen"
buffers = 3
"#;
