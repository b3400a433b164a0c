//! End-to-end: a client crate's `Client` against a server crate's `Server`, through the
//! in-memory pair with explicit time.

use std::time::Duration;

use heartbeat_core::{Config, Event, Instant, ReconnectReason, ServerEvent, Status};
use heartbeat_tests::pair::{Log, Pair};

const LATENCY: Duration = Duration::from_millis(40);

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

#[test]
fn healthy_for_an_hour_without_a_single_miss() {
    let mut pair = Pair::new(Config::default(), LATENCY, 1);
    pair.drive_for(hours(1));
    let events = pair.client_events();
    assert_eq!(
        events[..2],
        [Event::Connect { attempt: 0 }, Event::Connected]
    );
    assert!(
        events
            .iter()
            .all(|e| matches!(e, Event::Rtt(_) | Event::Connect { .. } | Event::Connected)),
        "{events:?}"
    );
    let rtts: Vec<_> = events
        .iter()
        .filter_map(|e| {
            if let Event::Rtt(d) = e {
                Some(*d)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(rtts.len(), 240, "one pong per 15 s ping for an hour");
    assert!(rtts.iter().all(|&d| d == LATENCY * 2));
    assert_eq!(pair.client.status(), Status::Healthy);
}

#[test]
fn a_busy_server_makes_the_client_slow_but_its_pings_prevent_a_reconnect() {
    let mut pair = Pair::new(Config::default(), LATENCY, 1);
    pair.drive_for(Duration::from_secs(60));
    // The handler lags by far more than any pong timeout, for ten minutes; the server's own
    // pings still leave every 25 s.
    pair.pong_delay = Duration::from_secs(3600);
    pair.drive_for(Duration::from_secs(600));
    let events = pair.client_events();
    assert!(
        events.iter().any(|e| matches!(e, Event::PongMissed { .. })),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Reconnect { .. })),
        "{events:?}"
    );
    assert_ne!(pair.client.status(), Status::Reconnecting);
}

#[test]
fn a_dead_server_is_detected_within_the_bound_and_slow_comes_first() {
    let config = Config::default();
    let mut pair = Pair::new(config, LATENCY, 1);
    pair.drive_for(Duration::from_secs(100));
    let died = pair.time;
    pair.server_alive = false;
    pair.drive_for(Duration::from_secs(300));
    let reconnect_at = pair.log.iter().find_map(|l| match l {
        Log::Client(
            t,
            Event::Reconnect {
                reason: ReconnectReason::MissedPongs { .. },
                ..
            },
        ) => Some(*t),
        _ => None,
    });
    let slow_at = pair.log.iter().find_map(|l| match l {
        Log::Client(t, Event::Slow { .. }) => Some(*t),
        _ => None,
    });
    let (reconnect_at, slow_at) = (reconnect_at.expect("reconnected"), slow_at.expect("warned"));
    let g = config.guarantees();
    assert!(reconnect_at.saturating_duration_since(died) <= g.detection_bound);
    assert!(reconnect_at.saturating_duration_since(slow_at) >= g.warning_lead);
}

#[test]
fn the_server_closes_a_client_that_went_silent() {
    let config = Config::default();
    let mut pair = Pair::new(config, LATENCY, 1);
    pair.drive_for(Duration::from_secs(30));
    let silent = pair.time;
    pair.client.close();
    pair.drive_for(Duration::from_secs(200));
    let closed_at = pair.log.iter().find_map(|l| match l {
        Log::Server(t, ServerEvent::Close(reason)) => Some((*t, *reason)),
        _ => None,
    });
    let (t, reason) = closed_at.expect("server closed the silent connection");
    assert_eq!(reason, heartbeat_core::CloseReason::IdleTimeout);
    assert!(t.saturating_duration_since(silent) <= config.guarantees().server_detection_bound);
}

#[test]
fn reconnects_after_the_server_comes_back() {
    let mut pair = Pair::new(Config::default(), LATENCY, 3);
    pair.drive_for(Duration::from_secs(20));
    pair.server_alive = false;
    pair.drive_for(Duration::from_secs(200));
    assert_eq!(pair.client.status(), Status::Reconnecting);
    pair.server_alive = true;
    pair.drive_for(Duration::from_secs(120));
    assert_eq!(pair.client.status(), Status::Healthy);
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let mut pair = Pair::new(Config::default(), LATENCY, seed);
        pair.drive_for(Duration::from_secs(30));
        pair.server_alive = false;
        pair.drive_for(Duration::from_secs(300));
        pair.server_alive = true;
        pair.drive_for(Duration::from_secs(300));
        pair.log
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10), "the jitter comes from the seed");
}

#[test]
fn time_starts_at_zero() {
    assert_eq!(Pair::new(Config::default(), LATENCY, 1).time, Instant::ZERO);
}
