//! Shared helpers for the cross-crate tests: an in-memory client/server pair with explicit time.
#![forbid(unsafe_code)]

pub mod pair;
