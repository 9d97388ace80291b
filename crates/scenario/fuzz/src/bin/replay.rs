//! The fuzz target without libFuzzer: replays inputs, or runs mutated bundled scenarios.
//!
//! ```text
//! cargo run --release --no-default-features --bin replay -- FILE_OR_DIR...   # replay a corpus
//! cargo run --release --no-default-features --bin replay -- --random N [SEED] # N mutations
//! ```
//!
//! Each input is checked exactly as `fuzz_targets/scenario_text.rs` checks it
//! (`scenario_fuzz::check`); the first broken invariant is printed with its input and the
//! driver exits with status 1. A panic aborts the run like a fuzzer crash.

use std::path::Path;
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

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens that steer mutations towards the interesting parts of the grammar.
const TOKENS: &[&str] = &[
    "=",
    "[[",
    "]]",
    "\"",
    "0x",
    "GiB",
    "MiB",
    "KiB",
    "\n",
    "#",
    "{",
    "}",
    ",",
    "-1",
    "99999999999999999999",
    "nodes",
    "links",
    "events",
    "soc",
    "banks",
    "devices",
    "iommus",
    "cma",
    "frames",
    "from",
    "to",
    "at_frame",
    "action",
    "attach",
    "detach",
    "kill",
    "stream_off",
    "vram_pressure",
    "exporter",
    "heap:cma",
    "constraint",
    "planes",
    "bank",
    "dma_mask_bits",
    "iommu",
    "\u{7}",
    "\u{0}",
    "é",
];

/// One mutation of `base`: insert, delete, duplicate or replace a span, or splice a token.
fn mutate(base: &str, rng: &mut Rng) -> Vec<u8> {
    let mut b = base.as_bytes().to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(b.len() + 1);
        match rng.below(5) {
            0 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
            1 if at < b.len() => {
                let end = (at + 1 + rng.below(32)).min(b.len());
                b.drain(at..end);
            }
            2 if at < b.len() => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                let span = b[at..end].to_vec();
                b.splice(at..at, span);
            }
            3 if at < b.len() => b[at] = rng.next() as u8,
            _ => b.insert(at.min(b.len()), b"0123456789"[rng.below(10)]),
        }
    }
    b
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let start = std::time::Instant::now();
    let mut runs = 0u64;
    let fail = |data: &[u8], e: String| {
        eprintln!(
            "invariant broken: {e}\ninput:\n{}",
            String::from_utf8_lossy(data)
        );
        ExitCode::FAILURE
    };
    if args.first().map(String::as_str) == Some("--random") {
        let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
        let seed: u64 = args
            .get(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        let mut rng = Rng(seed | 1);
        let bases: Vec<&str> = scenario::bundled()
            .iter()
            .map(|(_, _, text)| *text)
            .collect();
        for _ in 0..n {
            let data = mutate(bases[rng.below(bases.len())], &mut rng);
            if let Err(e) = scenario_fuzz::check(&data) {
                return fail(&data, e);
            }
            runs += 1;
        }
    } else {
        for a in &args {
            let p = Path::new(a);
            let files: Vec<_> = match std::fs::read_dir(p) {
                Ok(dir) => dir.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
                Err(_) => vec![p.to_path_buf()],
            };
            for f in files {
                let data = match std::fs::read(&f) {
                    Ok(d) => d,
                    Err(e) => {
                        eprintln!("{}: {e}", f.display());
                        return ExitCode::from(2);
                    }
                };
                if let Err(e) = scenario_fuzz::check(&data) {
                    return fail(&data, e);
                }
                runs += 1;
            }
        }
    }
    println!(
        "{runs} inputs, no invariant broken ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
