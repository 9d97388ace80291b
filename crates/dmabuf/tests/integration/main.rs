//! Integration tests of the `dmabuf` crate: one binary, one file per concern.

mod conformance;
mod constraint_common;
mod constraint_migrate;
mod constraint_place;
mod constraint_random;
mod core_attach;
mod core_common;
mod core_cpu;
mod core_export;
mod core_intro;
mod core_map;
mod core_map_cache;
mod core_sync;
mod heaps;
mod leaks;
mod memfd;
mod process;
mod uapi_proptest;
mod udmabuf;
