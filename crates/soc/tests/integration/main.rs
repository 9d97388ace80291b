//! Integration tests of the `soc` crate: one test binary, one module per concern.

mod cache;
mod cma;
mod device;
mod genpool;
mod iommu;
mod page_alloc;
mod soc;
