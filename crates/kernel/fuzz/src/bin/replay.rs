//! The fuzz target without libFuzzer: replays inputs, or runs random ones.
//!
//! ```text
//! cargo run --release --no-default-features --bin replay -- FILE_OR_DIR...   # replay a corpus
//! cargo run --release --no-default-features --bin replay -- --random N [SEED] # N random inputs
//! ```
//!
//! Each input is run exactly as `fuzz_targets/uapi_calls.rs` runs it
//! (`kernel::exercise::run_sim(data, 3)`); the first broken invariant is printed with its
//! input (hex) and the driver exits with status 1. A panic aborts the run like a fuzzer crash.

use kernel::exercise::{run_sim, RunStats};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// xorshift64*: a dependency-free generator, enough to vary inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn run_one(data: &[u8], total: &mut RunStats) -> Result<(), String> {
    let s = run_sim(data, 3)?;
    total.calls += s.calls;
    total.successes += s.successes;
    Ok(())
}

fn files(args: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for a in args {
        let p = Path::new(a);
        match std::fs::read_dir(p) {
            Ok(dir) => out.extend(dir.filter_map(|e| e.ok()).map(|e| e.path())),
            Err(_) => out.push(p.to_path_buf()),
        }
    }
    out.sort();
    out
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut total = RunStats::default();
    let mut runs = 0u64;
    let start = std::time::Instant::now();
    if args.first().map(String::as_str) == Some("--random") {
        let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
        let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15);
        let mut rng = Rng(seed | 1);
        for _ in 0..n {
            let len = (rng.next() % 600) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Err(e) = run_one(&data, &mut total) {
                eprintln!("input {}: {e}", hex(&data));
                return ExitCode::FAILURE;
            }
            runs += 1;
        }
    } else {
        for path in files(&args) {
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = run_one(&data, &mut total) {
                eprintln!("{}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            runs += 1;
        }
    }
    println!(
        "{runs} executions, {} UAPI calls ({} succeeded) in {:.1?}: no invariant broken",
        total.calls,
        total.successes,
        start.elapsed()
    );
    ExitCode::SUCCESS
}
