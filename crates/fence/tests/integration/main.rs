//! Integration tests of the `fence` crate: one binary, one file per kernel selftest or concern.
//!
//! The `st_*` files port the kernel selftests of `drivers/dma-buf/st-*.c` case by case; every
//! test is named after the kernel case it mirrors.

mod resv;
mod st_dma_fence;
mod st_dma_fence_chain;
mod st_dma_fence_unwrap;
mod st_dma_resv;
mod stress_resv;
mod sw_sync;
mod sync_file;
mod ww_mutex;
