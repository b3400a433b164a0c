//! A world for the real heartbeat core: a deterministic simulator, traces and timing diagrams,
//! and a model checker (a stateright model, searched by `explore`) that proves a configuration's
//! timing guarantees.
#![forbid(unsafe_code)]

pub mod check;
pub mod cli;
pub mod docs;
pub mod explore;
pub mod flood;
pub mod queue;
pub mod reconnect;
pub mod render;
pub mod scenarios;
pub mod sim;
pub mod trace;
