//! The output directory (`--out DIR`), checked writable before any work.
//!
//! A run can take minutes; finding out at its end that `--out /dev/null` is not a directory
//! wastes them. [`prepare`] creates the directory (and its parents) if it is missing, refuses
//! a path that exists and is not a directory, and proves the directory writable by creating and
//! removing a probe file in it: exactly what writing the report will need. Errors name the
//! path and the errno by name. Nothing is locked; the directory can still change under the run
//! (another process removing it), which is then the write's own error at the end.

use std::path::Path;

/// Makes sure `dir` is (or becomes) a directory this process can create files in.
pub fn prepare(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(format!(
                "--out {shown}: ENOTDIR: it exists and is not a directory"
            ))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("--out {shown}: creating it: {}", scenario::io_by_name(&e)))?;
        }
        Err(e) => return Err(format!("--out {shown}: {}", scenario::io_by_name(&e))),
    }
    let probe = dir.join(format!(".dmabuf-write-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("--out {shown}: not writable: {}", scenario::io_by_name(&e)))?;
    std::fs::remove_file(&probe).map_err(|e| {
        format!(
            "--out {shown}: removing {}: {}",
            probe.display(),
            scenario::io_by_name(&e)
        )
    })?;
    Ok(())
}
