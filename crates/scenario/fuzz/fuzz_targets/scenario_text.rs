//! libFuzzer target: arbitrary bytes as a scenario file (`scenario::validate`). A panic, an
//! error with no message, or an invalid file not answered with exit code 2 is a crash.
//!
//! Run: `cd crates/scenario/fuzz && cargo +nightly fuzz run scenario_text -- -dict=scenario.dict`
//! (seed the corpus with the bundled scenarios: `mkdir -p corpus/scenario_text &&
//! cp ../../../scenarios/*.toml corpus/scenario_text/`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = scenario_fuzz::check(data) {
        panic!("invariant broken: {e}");
    }
});
