//! Generators shared by the model-check tests, and the switch for the change detectors.

// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use heartbeat_core::{ClientConfig, Config, NetworkAssumptions, ServerConfig};
use proptest::prelude::*;

/// Whether the change detectors run: pinned state counts, pinned counterexample lengths, insta
/// snapshots and the generated diagrams doc. They are on unless `HEARTBEAT_CHANGE_DETECTORS=off`.
/// A mutation run switches them off, so that a mutant of the core counts as killed only when a
/// property verdict, a counterexample, a completion or the validate ⇔ checker cross-check says
/// so, not when a number or a picture merely changed (issue 11; docs/architecture.md, "Testing").
pub(crate) fn pinned() -> bool {
    match std::env::var("HEARTBEAT_CHANGE_DETECTORS") {
        Err(std::env::VarError::NotPresent) => true,
        Ok(v) if v == "on" => true,
        Ok(v) if v == "off" => false,
        // A typo must not leave them on unnoticed and count their diffs as kills.
        other => panic!("HEARTBEAT_CHANGE_DETECTORS must be `on` or `off`, not {other:?}"),
    }
}

/// Where the property `name` is in `model.properties()`: the order in which a search reports
/// its discoveries.
pub(crate) fn property_index<M: stateright::Model>(model: &M, name: &str) -> usize {
    model
        .properties()
        .iter()
        .position(|p| p.name == name)
        .unwrap_or_else(|| panic!("no property {name} in the model"))
}

/// A configuration from its timers in whole seconds — the client's (ping interval, pong
/// timeout, max missed pongs, slow threshold, connect timeout) and the server's (ping interval,
/// idle timeout, min client ping interval, max strikes) — and its network assumptions.
pub(crate) fn seconds_config(
    (ping, timeout, max_missed, slow, connect): (u64, u64, u32, u32, u64),
    (sping, idle, min, strikes): (u64, u64, u64, u32),
    network: NetworkAssumptions,
) -> Config {
    let s = Duration::from_secs;
    Config {
        client: ClientConfig {
            ping_interval: s(ping),
            pong_timeout: s(timeout),
            max_missed_pongs: max_missed,
            slow_threshold: slow,
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
        network,
    }
}

/// A configuration in whole seconds with small numbers, satisfying every per-side rule (ranges,
/// ordering). The cross rules may fail, R6 among them: the stall threshold is 1 s or 5 s and the
/// client's timer lateness up to 2 s (latency plus lateness at most 2 s); server timers late by up
/// to 2 s reach the core's stall deferral (more than `STALL_GRACE`, 1 s, late).
pub(crate) fn small_config() -> impl Strategy<Value = Config> {
    (
        (2..=6u64, 1..=6u64, 2..=4u32, 1..=3u32, 1..=5u64),
        (1..=8u64, 1..=12u64, 0..=7u64, 0..=2u32),
        (0..=2u64, 0..=3u64, 0..=2u64, 0..=2u64, any::<bool>()),
    )
        .prop_map(
            |(
                (ping, timeout, max_missed, slow, connect),
                server,
                (lat, delay, late, server_late, short_stall),
            )| {
                let s = Duration::from_secs;
                let mut config = seconds_config(
                    (
                        ping,
                        timeout.min(ping),
                        max_missed,
                        slow.min(max_missed - 1),
                        connect,
                    ),
                    server,
                    NetworkAssumptions {
                        max_latency: s(lat),
                        max_server_delay: s(delay),
                        // A client message window is latency + read lateness: kept within 2 s, as
                        // before reads were late, or a server pinging every second puts a dozen
                        // messages in flight with several delivery times each (10 M states).
                        max_timer_lateness: s(late.min(2 - lat)),
                        max_server_timer_lateness: s(server_late),
                    },
                );
                if short_stall {
                    config.client.stall_threshold = s(1);
                }
                config
            },
        )
}

/// Millisecond assumptions against whole-second timers, favouring the edges: the pong timeout
/// equal to the ping interval, many misses before a reconnect, Slow one miss before it.
pub(crate) fn ms_config() -> impl Strategy<Value = Config> {
    (
        (2..=6u64, 1..=6u64, 2..=8u32, any::<bool>(), any::<bool>()),
        (1..=8u64, 1..=12u64, 0..=7u64, 0..=2u32, 1..=5u64),
        (0..=900u64, 0..=2_500u64, 0..=900u64, 0..=1_500u64),
    )
        .prop_map(
            |(
                (ping, timeout, max_missed, slow_last, timeout_is_ping),
                (sping, idle, min, strikes, connect),
                (lat, delay, late, server_late),
            )| {
                let ms = Duration::from_millis;
                seconds_config(
                    (
                        ping,
                        if timeout_is_ping {
                            ping
                        } else {
                            timeout.min(ping)
                        },
                        max_missed,
                        if slow_last { max_missed - 1 } else { 1 },
                        connect,
                    ),
                    (sping, idle, min, strikes),
                    NetworkAssumptions {
                        max_latency: ms(lat),
                        max_server_delay: ms(delay),
                        max_timer_lateness: ms(late),
                        max_server_timer_lateness: ms(server_late),
                    },
                )
            },
        )
}
