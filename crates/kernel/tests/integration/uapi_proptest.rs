//! Random sequences of UAPI calls on several simulated processes, good and bad calls mixed
//! (`seam::exercise`). Property: no call panics or blocks, and once every process has
//! exited the machine's free memory is what it was at boot and every exported buffer was
//! released exactly once.

use kernel::exercise::run_sim;
use proptest::prelude::*;
use seam::exercise::{decode, Op};

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_iters: 400, ..ProptestConfig::default() })]

    /// Three processes, up to ~60 calls each run.
    #[test]
    fn random_uapi_calls_leak_nothing(program in proptest::collection::vec(any::<u8>(), 0..400)) {
        let ops: Vec<Op> = decode(&program);
        if let Err(e) = run_sim(&program, 3) {
            panic!("{e}\nprogram: {ops:#?}");
        }
    }
}

/// A hand-written program that reaches the interesting paths every time: allocate, share with
/// another process, fence it with a timeline the other process then closes, map, unmap, exit.
#[test]
fn scripted_program_leaks_nothing() {
    // opcode, process, args... (see `decode`)
    let program = [
        0, 0, 0, // OpenHeap(p0, system)
        1, 0, 64, 4, 0, 1, 0, // HeapAlloc(p0, held 0, len 4096, O_RDWR|O_CLOEXEC)
        27, 0, 0, 65, 1, // SendFd(p0, held 1 -> p1)
        15, 1, // Timeline(p1)
        16, 1, 65, 1, // Point(p1, held 1, value 1)
        12, 1, 64, 2, 66, // Import(p1, held 0, WRITE, held 2)
        9, 0, 65, 3, // Sync(p0, held 1, RW) — skipped: a fence is pending
        18, 0, 65, 0, 2, 3, 0, // Mmap(p0, held 1, off 0, len 4096, RW, shared)
        21, 0, 0, 0, 0, 16, // MapWrite
        26, 1, 65, // Close(p1, timeline): the fence signals with ENOENT
        9, 0, 65, 3, // Sync(p0, RW)
    ];
    let stats = run_sim(&program, 2).unwrap();
    assert!(stats.successes >= 6, "{stats:?}");
}
