//! Sans-IO WebSocket heartbeats whose client and server timeouts are provably in sync.
//!
//! heartbeat-core never calls a clock, never touches a socket and never draws a random number:
//! all time is external input (an [`Instant`] the caller passes to every `handle_*` method), and
//! so is everything else. The state machines are therefore fully deterministic: the same inputs
//! give the same outputs, which is what lets the `heartbeat-model` crate simulate hours in
//! seconds and model-check every interleaving of the very same code.
//!
//! - [`Client`]: the frontend. Pings, counts misses, warns ([`Status::Slow`]) before it ever
//!   reconnects, tells a local stall from a dead server, backs off with caller-seeded jitter.
//! - [`Server`]: the backend, one small value per connection. Answers pings from the call that
//!   takes them, pings on schedule, closes idle connections and ping floods.
//! - [`Config`]: both sides plus the [`NetworkAssumptions`], with [`Config::validate`] reporting
//!   every broken rule at once and [`Config::guarantees`] stating what a valid one promises.
//! - [`Message`]: the wire format, `{"type":"ping","seq":7}`.
//!
//! ```
//! use heartbeat_core::{Client, ClientConfig, Event, Instant, Message};
//!
//! let mut client = Client::new(&ClientConfig::default(), Instant::ZERO, 42).unwrap();
//! assert_eq!(client.poll_event(), Some(Event::Connect { attempt: 0 }));
//! // ... the adapter opens a socket ...
//! client.handle_connected(Instant::from_millis(30));
//! assert_eq!(client.poll_transmit(), Some(Message::Ping { seq: 0 }));
//! client.handle_message(Instant::from_millis(80), Message::Pong { seq: 0 });
//! assert_eq!(client.poll_event(), Some(Event::Connected));
//! assert_eq!(client.poll_event(), Some(Event::Rtt(core::time::Duration::from_millis(50))));
//! ```
//!
//! The `load` feature (which needs `std`) adds parsing of YAML, TOML and JSON configuration and
//! environment overrides; the CLI and every adapter share it.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod client;
pub mod config;
#[cfg(feature = "load")]
pub mod load;
pub mod server;
pub mod time;
pub mod validate;
pub mod wire;

pub use client::{Client, Event, Hint, ReconnectReason, Status};
pub use config::{ClientConfig, Config, Guarantees, NetworkAssumptions, ServerConfig};
pub use server::{CloseReason, Server, ServerEvent};
pub use time::{parse_duration, HumanDuration, Instant};
pub use validate::{ConfigError, ConfigErrors, ConfigWarning, Validation};
pub use wire::{DecodeError, Message};
