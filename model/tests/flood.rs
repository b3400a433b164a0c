//! Property 8: a client that pings faster than `server.min_client_ping_interval` allows is closed
//! for `TooManyPings` within `Config::flood_close_bound` of its first ping, whatever the
//! deliveries and server timers do within the assumptions; the bound is tight.

use std::time::Duration;

use heartbeat_core::{Config, ServerConfig};
use heartbeat_model::explore::{search, Found, SearchOptions, Stop};
use heartbeat_model::flood::{names, FloodAction, FloodModel};

mod common;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn run(model: &FloodModel) -> Found<FloodAction> {
    search(
        model,
        SearchOptions {
            stop_at_first_failure: false,
            ..SearchOptions::default()
        },
    )
}

fn index(model: &FloodModel, name: &str) -> usize {
    common::property_index(model, name)
}

/// Complete, the bound holds, no time-lock, and the close at the bound is reached.
fn holds_and_is_tight(config: Config, period: Duration) -> usize {
    let model = FloodModel::new(config, period).expect("a flood");
    let found = run(&model);
    assert_eq!(found.stop, Stop::Complete, "{period:?}");
    assert_eq!(found.time_lock, Some(None), "{period:?}: no time-lock");
    assert!(
        found.discoveries[index(&model, names::FLOOD_CLOSED_IN_TIME)].is_none(),
        "{period:?}: closed within {:?}",
        model.bound
    );
    for name in [names::STRIKES_ANNOUNCED, names::PINGS_ANSWERED] {
        assert!(
            found.discoveries[index(&model, name)].is_none(),
            "{period:?}: {name}"
        );
    }
    assert!(
        found.discoveries[index(&model, names::FLOOD_CLOSED_AT_BOUND)].is_some(),
        "{period:?}: the close at {:?} is reached",
        model.bound
    );
    // One unit less, and a run closes after it.
    let mut tighter = model.clone();
    tighter.bound -= tighter.unit;
    let found = run(&tighter);
    assert!(
        found.discoveries[index(&tighter, names::FLOOD_CLOSED_IN_TIME)].is_some(),
        "{period:?}: a close after {:?}",
        tighter.bound
    );
    found.states
}

#[test]
fn the_default_server_closes_a_rogue_client_within_the_flood_bound() {
    let config = Config::default();
    for (period, bound) in [
        (s(4), s(247)),
        (Duration::from_millis(2500), s(68)),
        (s(1), s(20)),
    ] {
        assert_eq!(config.flood_close_bound(period), Some(bound), "{period:?}");
        holds_and_is_tight(config, period);
    }
}

#[test]
fn the_largest_strike_limit_still_closes() {
    // k = 254, the largest accepted (k = 255 would never close: the count saturates at 255).
    let config = Config {
        server: ServerConfig {
            ping_interval: s(10),
            idle_timeout: s(3),
            min_client_ping_interval: s(2),
            max_ping_strikes: 254,
        },
        network: heartbeat_core::NetworkAssumptions {
            max_latency: Duration::ZERO,
            max_server_delay: Duration::ZERO,
            max_timer_lateness: Duration::ZERO,
            max_server_timer_lateness: Duration::ZERO,
        },
        ..Config::default()
    };
    // 1 s ahead, 1 s gained per ping: strikes from ping 2, the 255th is ping 256.
    assert_eq!(config.flood_close_bound(s(1)), Some(s(256)));
    holds_and_is_tight(config, s(1));
}

#[test]
fn no_flood_model_without_a_flood() {
    let config = Config::default();
    assert!(
        FloodModel::new(config, s(5)).is_none(),
        "at the allowed rate"
    );
    assert!(
        FloodModel::new(config, Duration::ZERO).is_none(),
        "every ping at one instant: time could not pass"
    );
    assert!(
        FloodModel::new(config, s(6)).is_none(),
        "slower than allowed"
    );
    let mut off = config;
    off.server.min_client_ping_interval = Duration::ZERO;
    assert!(FloodModel::new(off, s(1)).is_none(), "policing off");
}

#[test]
fn a_rogue_pinging_further_apart_than_the_idle_timeout_allows_is_closed_as_idle_within_the_bound() {
    // Valid (R4 by the server's pings): a rogue pinging every 11 s, handled up to 3 s late,
    // leaves gaps past the 13 s idle timeout, so the idle close comes before any strike run.
    let mut config = Config::default();
    config.server.ping_interval = s(5);
    config.server.idle_timeout = s(13);
    config.server.min_client_ping_interval = s(12);
    assert!(config.validate().is_ok(), "{:?}", config.validate().errors);
    let model = FloodModel::new(config, s(11)).expect("a flood");
    let found = run(&model);
    assert_eq!(found.stop, Stop::Complete);
    assert!(found.discoveries[index(&model, names::FLOOD_CLOSED_IN_TIME)].is_none());
}
