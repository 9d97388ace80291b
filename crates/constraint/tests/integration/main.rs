//! Integration tests of the constraint-solving exporter: one binary, one file per concern.

mod constraint_common;
mod constraint_migrate;
mod constraint_place;
mod constraint_random;
mod constraint_reason;
