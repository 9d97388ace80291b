//! Behaviour tests of the `dma` crate, one file per concern.

mod alloc;
mod bad_input;
mod checker;
mod checker_batch;
mod common;
mod mapping;
mod sg;
