//! Integration tests of the dma-buf core: one binary, one file per concern.

mod core_attach;
mod core_common;
mod core_cpu;
mod core_export;
mod core_intro;
mod core_map;
mod core_map_cache;
mod core_sync;
