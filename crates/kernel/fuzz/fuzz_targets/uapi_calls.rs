//! libFuzzer target: the input is a program of UAPI calls (`seam::exercise::decode`)
//! run on three processes of a freshly booted simulated machine. Any panic, or a machine that
//! after every process exited has not got back all its memory or has a buffer not released
//! exactly once, is a crash.
//!
//! Run: `cd crates/kernel/fuzz && cargo +nightly fuzz run uapi_calls`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = kernel::exercise::run_sim(data, 3) {
        panic!("invariant broken: {e}");
    }
});
