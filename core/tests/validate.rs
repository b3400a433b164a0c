//! Every validation message, as a person reads it, pinned with insta.

use core::time::Duration;
use heartbeat_core::{ClientConfig, Config, NetworkAssumptions, ServerConfig, Validation};

fn render(v: &Validation) -> String {
    let mut out = String::new();
    for e in &v.errors {
        out += &format!("error: {e}\n");
    }
    for w in &v.warnings {
        out += &format!("warning: {w}\n");
    }
    out
}

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[test]
fn default_config_is_valid_without_warnings() {
    assert_eq!(render(&Config::default().validate()), "");
}

#[test]
fn zero_absurd_and_fractional_settings() {
    let config = Config {
        client: ClientConfig {
            ping_interval: Duration::ZERO,
            pong_timeout: s(100_000),
            stall_threshold: Duration::from_micros(1500),
            slow_threshold: 0,
            max_missed_pongs: 5000,
            ..ClientConfig::default()
        },
        server: ServerConfig {
            idle_timeout: Duration::ZERO,
            max_ping_strikes: 300,
            ..ServerConfig::default()
        },
        network: NetworkAssumptions {
            max_latency: s(90_000),
            ..NetworkAssumptions::default()
        },
    };
    insta::assert_snapshot!(render(&config.validate()));
}

#[test]
fn ordering_rules_of_the_client() {
    let config = Config {
        client: ClientConfig {
            slow_threshold: 4,
            max_missed_pongs: 3,
            pong_timeout: s(20),
            ping_interval: s(15),
            backoff_initial: s(10),
            backoff_max: s(5),
            ..ClientConfig::default()
        },
        ..Config::default()
    };
    insta::assert_snapshot!(render(&config.validate()));
}

#[test]
fn cross_rules_with_their_numbers() {
    // Pong timeout below a round trip, tolerance below a server ping plus latency, idle timeout
    // below a client ping gap, pings that strike, lateness above the stall threshold.
    let config = Config {
        client: ClientConfig {
            ping_interval: s(10),
            pong_timeout: s(5),
            slow_threshold: 1,
            max_missed_pongs: 2,
            stall_threshold: s(1),
            ..ClientConfig::default()
        },
        server: ServerConfig {
            ping_interval: s(30),
            idle_timeout: s(12),
            min_client_ping_interval: s(11),
            max_ping_strikes: 2,
        },
        network: NetworkAssumptions {
            max_latency: s(3),
            max_server_delay: s(1),
            max_timer_lateness: s(2),
            max_server_timer_lateness: s(1),
        },
    };
    insta::assert_snapshot!(render(&config.validate()));
}

#[test]
fn margin_rules_are_warnings() {
    let config = Config {
        client: ClientConfig {
            ping_interval: s(15),
            pong_timeout: s(12),
            max_missed_pongs: 3,
            ..ClientConfig::default()
        },
        server: ServerConfig {
            ping_interval: s(30),
            idle_timeout: s(25),
            ..ServerConfig::default()
        },
        ..Config::default()
    };
    let v = config.validate();
    assert!(v.is_ok(), "{}", render(&v));
    insta::assert_snapshot!(render(&v));
}

#[test]
fn every_error_at_once_in_one_value() {
    let config = Config {
        client: ClientConfig {
            slow_threshold: 9,
            ..ClientConfig::default()
        },
        server: ServerConfig {
            idle_timeout: s(1),
            ..ServerConfig::default()
        },
        ..Config::default()
    };
    let err = config.validate().into_result().unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn the_story_configs() {
    // The story's original (30s/30s/3, backend pings every 30s and drops after 90s, 5s latency)
    // and its proposed fix (15s/4 misses/slow at 2).
    let network = NetworkAssumptions {
        max_latency: s(5),
        max_server_delay: s(5),
        max_timer_lateness: s(1),
        max_server_timer_lateness: s(1),
    };
    let original = Config {
        client: ClientConfig {
            ping_interval: s(30),
            pong_timeout: s(30),
            slow_threshold: 2,
            max_missed_pongs: 3,
            ..ClientConfig::default()
        },
        server: ServerConfig {
            ping_interval: s(30),
            idle_timeout: s(90),
            ..ServerConfig::default()
        },
        network,
    };
    let fixed = Config {
        client: ClientConfig {
            ping_interval: s(15),
            pong_timeout: s(15),
            slow_threshold: 2,
            max_missed_pongs: 4,
            ..ClientConfig::default()
        },
        server: ServerConfig {
            ping_interval: s(30),
            idle_timeout: s(35),
            ..ServerConfig::default()
        },
        network,
    };
    insta::assert_snapshot!(format!(
        "original:\n{}fixed:\n{}",
        render(&original.validate()),
        render(&fixed.validate())
    ));
}

/// A strike count of 255 would switch flood policing off: the server's strike byte saturates
/// at 255 and could never exceed it.
#[test]
fn max_ping_strikes_of_255_is_rejected() {
    let config = ServerConfig {
        max_ping_strikes: 255,
        ..ServerConfig::default()
    };
    assert_eq!(
        render(&config.validate()),
        "error: server.max_ping_strikes (255) must be between 0 and 254\n"
    );
}
