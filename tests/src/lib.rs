//! Shared helpers for the cross-crate tests: an in-memory client/server pair with explicit time.
#![forbid(unsafe_code)]

pub mod pair;

/// The README's Rust examples, compiled and run as doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
