//! Port of `drivers/dma-buf/st-dma-resv.c`: every case runs once per usage, KERNEL..BOOKKEEP.

use fence::resv::{DmaResv, DmaResvUsage};
use fence::{context_alloc, DmaFence, SimpleFenceOps};

fn alloc_fence() -> DmaFence {
    SimpleFenceOps::create("selftest", "resv", context_alloc(1).unwrap(), 1)
}

/// A resv holding one fence of `usage`, added under the lock as the kernel cases do.
fn resv_with(f: &DmaFence, usage: DmaResvUsage) -> DmaResv {
    let resv = DmaResv::new();
    let mut g = resv.lock(None).expect("resv lock");
    g.reserve_fences(1).expect("reserve");
    g.add_fence(f, usage).expect("add");
    drop(g);
    resv
}

#[test]
fn sanitycheck() {
    for _usage in DmaResvUsage::ALL {
        let f = alloc_fence();
        f.enable_sw_signaling();
        f.signal().unwrap();
        drop(f);
        let resv = DmaResv::new();
        let g = resv.lock(None);
        assert!(g.is_ok(), "resv lock failed");
        drop(g);
        drop(resv);
    }
}

#[test]
fn test_signaling() {
    for usage in DmaResvUsage::ALL {
        let f = alloc_fence();
        let resv = resv_with(&f, usage);
        assert!(
            !resv.test_signaled(usage),
            "{usage:?}: resv unexpectedly signaled"
        );
        f.signal().unwrap();
        assert!(
            resv.test_signaled(usage),
            "{usage:?}: resv not reporting signaled"
        );
    }
}

#[test]
fn test_for_each() {
    for usage in DmaResvUsage::ALL {
        let f = alloc_fence();
        let resv = DmaResv::new();
        let mut g = resv.lock(None).unwrap();
        g.reserve_fences(1).unwrap();
        g.add_fence(&f, usage).unwrap();
        let mut count = 0;
        for item in g.iter(usage) {
            assert!(item.fence.ptr_eq(&f), "{usage:?}: unexpected fence");
            assert_eq!(item.usage, usage, "{usage:?}: unexpected fence usage");
            count += 1;
        }
        assert_eq!(count, 1, "{usage:?}: expected exactly one fence");
        drop(g);
        f.signal().unwrap();
    }
}

#[test]
fn test_for_each_unlocked() {
    for usage in DmaResvUsage::ALL {
        let f = alloc_fence();
        let resv = resv_with(&f, usage);
        let mut count = 0;
        let mut restarts = 0;
        let mut forced = false;
        for item in resv.iter_unlocked(usage) {
            if item.is_restarted {
                count = 0;
                restarts += 1;
            } else {
                panic!("{usage:?}: no restart flag on the first fence of a pass");
            }
            count += 1;
            assert!(count <= 1, "{usage:?}: more than one fence found");
            assert!(item.fence.ptr_eq(&f), "{usage:?}: unexpected fence");
            assert_eq!(item.usage, usage, "{usage:?}: unexpected fence usage");
            if !forced {
                // The kernel case corrupts `cursor.fences`; we change the list for real (the
                // fence replaces itself), which must make the walk restart.
                forced = true;
                let mut g = resv.lock(None).unwrap();
                g.reserve_fences(1).unwrap();
                g.add_fence(&f, usage).unwrap();
            }
        }
        assert_eq!(restarts, 2, "{usage:?}: the walk did not restart");
        assert_eq!(count, 1);
        f.signal().unwrap();
    }
}

#[test]
fn test_get_fences() {
    for usage in DmaResvUsage::ALL {
        let f = alloc_fence();
        let resv = resv_with(&f, usage);
        let fences = resv.get_fences(usage);
        assert_eq!(
            fences.len(),
            1,
            "{usage:?}: get_fences returned {} fences",
            fences.len()
        );
        assert!(
            fences[0].ptr_eq(&f),
            "{usage:?}: get_fences returned unexpected fence"
        );
        f.signal().unwrap();
    }
}
