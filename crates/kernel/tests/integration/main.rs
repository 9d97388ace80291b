//! Integration tests of the simulated kernel (processes, heaps, memfd, udmabuf) and of its
//! answers to the UAPI seam: one binary, one file per concern.

mod accounting;
mod conformance;
mod heaps;
mod leaks;
mod machines;
mod memcg;
mod memfd;
mod process;
mod uapi_proptest;
mod udmabuf;
