//! heartbeat-core in the browser: a WebSocket with heartbeats, for TypeScript frontends.
//!
//! ```ts
//! import init, { HeartbeatSocket } from "heartbeat-web";
//! await init();
//! const socket = new HeartbeatSocket("wss://example.test/ws", { ping_interval: "15s", slow_threshold: 2 });
//! socket.onStatus((status, rttMs) => badge.show(status, rttMs)); // "slow" comes before any reconnect
//! socket.onMessage((data) => app.handle(data));
//! socket.send(JSON.stringify({ type: "subscribe" }));
//! ```
//!
//! The adapter is thin (docs/architecture.md): browser happenings become `handle_*` calls on the
//! real [`heartbeat_core::Client`] and its `poll_*` outputs are carried out. The browser's
//! WebSocket carries the frames, `setTimeout` wakes the client at `poll_timeout`,
//! `performance.now()` is its clock, `Math.random()` seeds its jitter, and the page's
//! `visibilitychange` and `online`/`offline` events become [`heartbeat_core::Hint`]s (hiding a
//! tab never reconnects; showing it probes at once).
//!
//! - `driver`: one input in, the client's outputs out, as plain data; no JavaScript, so the host
//!   tests exercise it.
//! - `config`: the configuration object, read by the core's own serde implementation.
//! - `browser`: the `HeartbeatSocket` class and its TypeScript types; compiled on every target
//!   so host clippy checks it, but only meaningful in WebAssembly.
#![no_std]

extern crate alloc;

mod browser;
mod config;
mod driver;

pub use browser::{
    EventCallback, HeartbeatConfig, HeartbeatSocket, HeartbeatStatus, MessageCallback,
    StatusCallback,
};
