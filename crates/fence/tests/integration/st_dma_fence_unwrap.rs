//! Port of `drivers/dma-buf/st-dma-fence-unwrap.c`: unwrapping containers and merging.

use fence::SimpleFenceOps;
use fence::{context_alloc, merge, unwrap_iter, DmaFence, DmaFenceArray, DmaFenceChain};

fn mock_fence_on(context: u64, seqno: u64) -> DmaFence {
    SimpleFenceOps::create("mock", "unbound", context, seqno)
}

fn mock_fence() -> DmaFence {
    mock_fence_on(context_alloc(1).unwrap(), 1)
}

fn mock_array(fences: &[&DmaFence]) -> DmaFence {
    let v = fences.iter().map(|f| (*f).clone()).collect();
    DmaFenceArray::create(v, context_alloc(1).unwrap(), 1, false).unwrap()
}

fn mock_chain(prev: Option<&DmaFence>, fence: &DmaFence) -> DmaFence {
    DmaFenceChain::new(prev.cloned(), fence.clone(), 1).unwrap()
}

/// The leaves of `f`, asserting each is one of `expected` and each expected one appears once.
fn assert_leaves_exactly(f: &DmaFence, expected: &[&DmaFence]) {
    let mut seen = vec![0usize; expected.len()];
    for leaf in unwrap_iter(f) {
        let i = expected
            .iter()
            .position(|e| e.ptr_eq(&leaf))
            .unwrap_or_else(|| panic!("unexpected fence {leaf:?}"));
        seen[i] += 1;
    }
    assert!(
        seen.iter().all(|&n| n == 1),
        "not every fence seen exactly once: {seen:?}"
    );
}

/// The leaves of `f` in order, compared by identity.
fn assert_leaves_in_order(f: &DmaFence, expected: &[&DmaFence]) {
    let leaves: Vec<DmaFence> = unwrap_iter(f).collect();
    assert_eq!(leaves.len(), expected.len(), "leaves: {leaves:?}");
    for (l, e) in leaves.iter().zip(expected) {
        assert!(l.ptr_eq(e), "expected {e:?}, got {l:?}");
    }
}

#[test]
fn unwrap_sanitycheck() {
    let f = mock_fence();
    let array = mock_array(&[&f]);
    let chain = mock_chain(None, &array);
    f.signal().unwrap();
    drop(chain);
}

#[test]
fn unwrap_array() {
    let (f1, f2) = (mock_fence(), mock_fence());
    let array = mock_array(&[&f1, &f2]);
    assert_leaves_exactly(&array, &[&f1, &f2]);
}

#[test]
fn unwrap_chain() {
    let (f1, f2) = (mock_fence(), mock_fence());
    let c1 = mock_chain(None, &f1);
    let c2 = mock_chain(Some(&c1), &f2);
    assert_leaves_exactly(&c2, &[&f1, &f2]);
    assert_leaves_in_order(&c2, &[&f2, &f1]); // newest first
}

#[test]
fn unwrap_chain_array() {
    let (f1, f2) = (mock_fence(), mock_fence());
    let array = mock_array(&[&f1, &f2]);
    let chain = mock_chain(None, &array);
    assert_leaves_exactly(&chain, &[&f1, &f2]);
}

#[test]
fn unwrap_merge() {
    let (f1, f2) = (mock_fence(), mock_fence());
    let f3 = merge(&[f1.clone(), f2.clone()]).unwrap();
    assert_leaves_exactly(&f3, &[&f1, &f2]);
}

#[test]
fn unwrap_merge_duplicate() {
    let f1 = mock_fence();
    let f2 = merge(&[f1.clone(), f1.clone()]).unwrap();
    assert!(f2.ptr_eq(&f1));
    assert_leaves_exactly(&f2, &[&f1]);
}

#[test]
fn unwrap_merge_seqno() {
    let ctx0 = context_alloc(1).unwrap();
    let ctx1 = context_alloc(1).unwrap();
    let f1 = mock_fence_on(ctx1, 1);
    let f2 = mock_fence_on(ctx1, 2);
    let f3 = mock_fence_on(ctx0, 1);
    let f4 = merge(&[f1, f2.clone(), f3.clone()]).unwrap();
    assert_leaves_in_order(&f4, &[&f3, &f2]);
}

#[test]
fn unwrap_merge_order() {
    let (f1, f2) = (mock_fence(), mock_fence());
    let a1 = mock_array(&[&f1, &f2]);
    let c1 = mock_chain(None, &f1);
    let c2 = mock_chain(Some(&c1), &f2);
    // a1 has f1 and f2 in order; c2 has them in reverse. The result is sorted by context.
    let f3 = merge(&[a1, c2]).unwrap();
    assert_leaves_in_order(&f3, &[&f1, &f2]);
}

#[test]
fn unwrap_merge_complex() {
    let (f1, f2) = (mock_fence(), mock_fence());
    let f3 = merge(&[f1.clone(), f2.clone()]).unwrap();
    let f4 = mock_array(&[&f2, &f1]);
    let f5 = merge(&[f3, f4, DmaFence::stub()]).unwrap();
    assert_leaves_exactly(&f5, &[&f1, &f2]);
}

#[test]
fn unwrap_merge_complex_seqno() {
    let ctx0 = context_alloc(1).unwrap();
    let ctx1 = context_alloc(1).unwrap();
    let f1 = mock_fence_on(ctx0, 2);
    let f2 = mock_fence_on(ctx1, 1);
    let f3 = mock_fence_on(ctx0, 1);
    let f4 = mock_fence_on(ctx1, 2);
    let f5 = mock_array(&[&f1, &f2]);
    let f6 = mock_array(&[&f3, &f4]);
    let f7 = merge(&[f5, f6]).unwrap();
    assert_leaves_in_order(&f7, &[&f1, &f4]);
}

#[test]
fn unwrap_merge_all_signaled_gives_stub_with_latest_timestamp() {
    let (f1, f2) = (mock_fence(), mock_fence());
    f1.signal_timestamp(5).unwrap();
    f2.signal_timestamp(9).unwrap();
    let m = merge(&[mock_array(&[&f1, &f2])]).unwrap();
    assert!(m.is_signaled());
    assert_eq!(m.timestamp_ns(), Some(9));
}
