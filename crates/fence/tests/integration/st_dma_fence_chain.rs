//! Port of `drivers/dma-buf/st-dma-fence-chain.c`: chain nodes, `find_seqno`, signal order.

use fence::{context_alloc, DmaFence, DmaFenceChain, SimpleFenceOps};
use rand::seq::SliceRandom;
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHAIN_SZ: usize = 4 << 10;

fn mock_fence() -> DmaFence {
    SimpleFenceOps::create("mock", "mock", context_alloc(1).unwrap(), 0)
}

/// `struct fence_chains`: `fences[i]` contained in `chains[i]`, each chain after the previous.
struct FenceChains {
    chains: Vec<DmaFence>,
    fences: Vec<DmaFence>,
}

impl FenceChains {
    fn new(count: usize, seqno_fn: impl Fn(u64) -> u64) -> FenceChains {
        let mut chains: Vec<DmaFence> = Vec::with_capacity(count);
        let mut fences = Vec::with_capacity(count);
        for i in 0..count {
            let f = mock_fence();
            let prev = chains.last().cloned();
            let c = DmaFenceChain::new(prev, f.clone(), seqno_fn(i as u64)).unwrap();
            c.enable_sw_signaling();
            chains.push(c);
            fences.push(f);
        }
        FenceChains { chains, fences }
    }

    fn tail(&self) -> &DmaFence {
        self.chains.last().expect("non-empty chain")
    }
}

fn seqno_inc(i: u64) -> u64 {
    i + 1
}

fn seqno_inc2(i: u64) -> u64 {
    2 * i + 2
}

fn find(f: &DmaFence, seqno: u64) -> Option<DmaFence> {
    DmaFenceChain::find_seqno(f, seqno).expect("find_seqno failed")
}

fn same(a: &Option<DmaFence>, b: &DmaFence) -> bool {
    a.as_ref().is_some_and(|a| a.ptr_eq(b))
}

#[test]
fn chain_sanitycheck() {
    let f = mock_fence();
    let chain = DmaFenceChain::new(None, f.clone(), 1).unwrap();
    chain.enable_sw_signaling();
    f.signal().unwrap();
    assert!(chain.is_signaled());
}

#[test]
fn chain_find_seqno() {
    let fc = FenceChains::new(64, seqno_inc);
    assert!(
        DmaFenceChain::find_seqno(fc.tail(), 0).is_ok(),
        "find_seqno(0) failed"
    );
    for i in 0..fc.chains.len() {
        let i64_ = i as u64;
        let found = find(fc.tail(), i64_ + 1);
        assert!(
            same(&found, &fc.chains[i]),
            "incorrect fence for find_seqno({})",
            i + 1
        );
        let me = found.unwrap();
        let again = find(&me, i64_ + 1);
        assert!(same(&again, &fc.chains[i]), "incorrect fence for find self");
        assert!(
            DmaFenceChain::find_seqno(&me, i64_ + 2).is_err(),
            "error not reported for future fence {}:{}",
            i + 1,
            i + 2
        );
        let back = DmaFenceChain::find_seqno(&me, i64_).expect("find_seqno(i) failed");
        if i > 0 {
            assert!(
                same(&back, &fc.chains[i - 1]),
                "incorrect fence for find_seqno({i})"
            );
        }
    }
}

#[test]
fn chain_find_signaled() {
    let fc = FenceChains::new(2, seqno_inc);
    fc.fences[0].signal().unwrap();
    let found = find(fc.tail(), 1);
    if let Some(f) = &found {
        assert!(
            f.ptr_eq(&fc.chains[0]),
            "incorrect chain fence seqno {} for completed 1",
            f.seqno()
        );
    }
}

#[test]
fn chain_find_out_of_order() {
    let fc = FenceChains::new(3, seqno_inc);
    fc.fences[1].signal().unwrap();
    let found = find(fc.tail(), 2);
    // Node 1 signaled but node 0 did not, so seqno 2 is still covered by the pending node 0.
    assert!(
        same(&found, &fc.chains[0]),
        "incorrect chain fence for seqno 2: {found:?}"
    );
}

#[test]
fn chain_find_gap() {
    let fc = FenceChains::new(64, seqno_inc2);
    for i in 0..fc.chains.len() {
        let found = find(fc.tail(), 2 * i as u64 + 1);
        assert!(
            same(&found, &fc.chains[i]),
            "incorrect fence for find_seqno({})",
            2 * i + 1
        );
        let again = find(&found.unwrap(), 2 * i as u64 + 2);
        assert!(same(&again, &fc.chains[i]), "incorrect fence for find self");
    }
}

#[test]
fn chain_find_race() {
    let fc = Arc::new(FenceChains::new(CHAIN_SZ, seqno_inc));
    let stop = Arc::new(AtomicBool::new(false));
    let ncpus = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let threads: Vec<_> = (0..ncpus)
        .map(|_| {
            let (fc, stop) = (fc.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = rand::thread_rng();
                let len = fc.chains.len() as u64;
                while !stop.load(Ordering::Relaxed) {
                    let seqno = rng.gen_range(1..=len);
                    let found = DmaFenceChain::find_seqno(fc.tail(), seqno)
                        .unwrap_or_else(|e| panic!("failed to find fence seqno {seqno}: {e}"));
                    if let Some(f) = found {
                        // We can only find ourselves if we are the fence we looked for.
                        if f.seqno() == seqno {
                            DmaFenceChain::find_seqno(&f, seqno)
                                .expect("reported an invalid fence for find-self");
                        }
                    }
                    let i = rng.gen_range(0..fc.fences.len() - 1);
                    let _ = fc.fences[i].signal();
                }
            })
        })
        .collect();
    let end = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < end
        && fc
            .fences
            .iter()
            .take(CHAIN_SZ - 1)
            .any(|f| !f.is_signaled())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("find_race thread failed");
    }
    let signaled = fc.fences.iter().filter(|f| f.is_signaled()).count();
    assert!(signaled > 0);
}

#[test]
fn chain_signal_forward() {
    let fc = FenceChains::new(64, seqno_inc);
    for i in 0..fc.chains.len() {
        fc.fences[i].signal().unwrap();
        assert!(fc.chains[i].is_signaled(), "chain[{i}] not signaled");
        if i + 1 < fc.chains.len() {
            assert!(
                !fc.chains[i + 1].is_signaled(),
                "chain[{}] is signaled",
                i + 1
            );
        }
    }
}

#[test]
fn chain_signal_backward() {
    let fc = FenceChains::new(64, seqno_inc);
    for i in (0..fc.chains.len()).rev() {
        fc.fences[i].signal().unwrap();
        if i > 0 {
            assert!(!fc.chains[i].is_signaled(), "chain[{i}] is signaled");
        }
    }
    for (i, c) in fc.chains.iter().enumerate() {
        assert!(c.is_signaled(), "chain[{i}] was not signaled");
    }
}

/// Waits on the tail in a thread while `order` signals every fence.
fn wait_with(order: impl FnOnce(&mut Vec<usize>)) {
    let fc = FenceChains::new(CHAIN_SZ, seqno_inc);
    let tail = fc.tail().clone();
    let waiter = std::thread::spawn(move || tail.wait(None));
    let mut idx: Vec<usize> = (0..fc.fences.len()).collect();
    order(&mut idx);
    for i in idx {
        fc.fences[i].signal().unwrap();
    }
    assert_eq!(waiter.join().unwrap(), Ok(()));
    assert!(fc.tail().is_signaled());
}

#[test]
fn chain_wait_forward() {
    wait_with(|_| {});
}

#[test]
fn chain_wait_backward() {
    wait_with(|v| v.reverse());
}

#[test]
fn chain_wait_random() {
    wait_with(|v| v.shuffle(&mut rand::thread_rng()));
}
