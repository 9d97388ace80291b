//! Behaviour tests of the `dma` crate, one file per concern.

mod alloc;
mod bad_input;
mod checker;
mod common;
mod mapping;
mod sg;
