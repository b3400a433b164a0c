//! Generators shared by the model-check tests.

use std::time::Duration;

use heartbeat_core::{ClientConfig, Config, NetworkAssumptions, ServerConfig};
use proptest::prelude::*;

/// A configuration in whole seconds with small numbers, satisfying every rule that is not
/// about properties 1-4 (ranges, per-side ordering, lateness within the stall threshold).
pub(crate) fn small_config() -> impl Strategy<Value = Config> {
    (
        (2..=6u64, 1..=6u64, 2..=4u32, 1..=3u32, 1..=5u64),
        (1..=8u64, 1..=12u64, 0..=7u64, 0..=2u32),
        (0..=2u64, 0..=3u64, 0..=1u64),
    )
        .prop_map(
            |(
                (ping, timeout, max_missed, slow, connect),
                (sping, idle, min, strikes),
                (lat, delay, late),
            )| {
                let s = Duration::from_secs;
                Config {
                    client: ClientConfig {
                        ping_interval: s(ping),
                        pong_timeout: s(timeout.min(ping)),
                        max_missed_pongs: max_missed,
                        slow_threshold: slow.min(max_missed - 1),
                        connect_timeout: s(connect),
                        stall_threshold: s(5),
                        ..ClientConfig::default()
                    },
                    server: ServerConfig {
                        ping_interval: s(sping),
                        idle_timeout: s(idle),
                        min_client_ping_interval: s(min),
                        max_ping_strikes: strikes,
                    },
                    network: NetworkAssumptions {
                        max_latency: s(lat),
                        max_server_delay: s(delay),
                        max_timer_lateness: s(late),
                    },
                }
            },
        )
}
