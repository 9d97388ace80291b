//! Shared helpers: a default machine and scattered pages.

use dma::DmaApi;
use soc::{AllocRequest, Page, Soc, SocDesc};
use std::sync::Arc;

/// The default SoC with its DMA API.
pub fn machine() -> (Arc<Soc>, DmaApi) {
    let soc = Soc::new(SocDesc::default_soc()).expect("default SoC");
    let api = DmaApi::new(&soc);
    (soc, api)
}

/// `n` order-0 pages no two of which are physically adjacent: allocate twice as many, free every
/// other one.
pub fn scattered_pages(soc: &Soc, n: usize, req: AllocRequest) -> Vec<Page> {
    let all: Vec<Page> = (0..2 * n)
        .map(|_| soc.pages().alloc_pages(&req).expect("page"))
        .collect();
    let mut keep = Vec::with_capacity(n);
    for (i, p) in all.into_iter().enumerate() {
        if i % 2 == 0 {
            keep.push(p);
        } else {
            soc.pages().free_pages(p).expect("free");
        }
    }
    keep
}
