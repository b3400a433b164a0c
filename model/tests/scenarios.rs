//! Each named scenario shows what its name promises, checked on the run itself.

use std::time::Duration;

use heartbeat_core::{Config, Event, Instant, ReconnectReason};
use heartbeat_model::render::Summary;
use heartbeat_model::scenarios::{self, herd, scenario, ScenarioError};
use heartbeat_model::trace::Trace;

fn run(name: &str) -> Trace {
    scenario(name, &Config::default(), 7, None).expect("scenario runs")
}

fn events(t: &Trace) -> Vec<(Instant, Event)> {
    t.client_events().map(|(at, _, ev)| (at, ev)).collect()
}

fn reconnect_reasons(t: &Trace) -> Vec<ReconnectReason> {
    Summary::from_trace(t)
        .reconnects
        .iter()
        .map(|(_, _, r)| *r)
        .collect()
}

#[test]
fn healthy_never_misses() {
    let s = Summary::from_trace(&run("healthy"));
    assert_eq!(
        (s.misses, s.reconnects.len(), s.server_closes.len()),
        (0, 0, 0)
    );
    assert!(s.client_pongs >= 4, "{s}");
}

#[test]
fn server_busy_40s_warns_then_recovers() {
    let t = run("server-busy-40s");
    let s = Summary::from_trace(&t);
    assert!(s.reconnects.is_empty(), "{s}");
    assert_eq!(s.slow_windows.len(), 1, "{s}");
    assert!(s.slow_windows[0].recovered, "{s}");
}

#[test]
fn server_pongs_lag_40s_is_carried_by_server_pings() {
    let s = Summary::from_trace(&run("server-pongs-lag-40s"));
    assert!(s.reconnects.is_empty(), "{s}");
    assert!(s.slow_windows.is_empty(), "{s}");
}

#[test]
fn server_dead_is_detected_within_the_bound_after_a_warning() {
    let config = Config::default();
    let g = config.guarantees();
    let t = run("server-dead");
    let evs = events(&t);
    let dead = Instant::from_secs(30);
    let slow = evs
        .iter()
        .find(|(_, e)| matches!(e, Event::Slow { .. }))
        .map(|(at, _)| *at)
        .expect("a slow warning");
    let (gave_up, reason) = evs
        .iter()
        .find_map(|(at, e)| match e {
            Event::Reconnect { reason, .. } => Some((*at, *reason)),
            _ => None,
        })
        .expect("a reconnect");
    assert_eq!(reason, ReconnectReason::MissedPongs { missed: 4 });
    assert!(gave_up.saturating_duration_since(dead) <= g.detection_bound);
    assert!(gave_up.saturating_duration_since(slow) >= g.warning_lead);
}

#[test]
fn story_original_reconnects_after_three_missed_pongs() {
    let t = run("story-original");
    assert_eq!(
        reconnect_reasons(&t).first(),
        Some(&ReconnectReason::MissedPongs { missed: 3 })
    );
}

#[test]
fn story_fixed_config_warns_but_still_reconnects_on_a_silent_backend() {
    let t = run("story-fixed-config");
    let s = Summary::from_trace(&t);
    assert_eq!(
        reconnect_reasons(&t).first(),
        Some(&ReconnectReason::MissedPongs { missed: 4 })
    );
    assert!(!s.slow_windows.is_empty());
}

#[test]
fn story_fixed_with_our_server_does_not_reconnect() {
    let s = Summary::from_trace(&run("story-fixed"));
    assert!(s.reconnects.is_empty(), "{s}");
    assert!(s.server_closes.is_empty(), "{s}");
}

#[test]
fn hidden_tab_does_not_reconnect() {
    let s = Summary::from_trace(&run("tab-hidden-10m"));
    assert!(s.reconnects.is_empty(), "{s}");
    assert!(s.server_closes.is_empty(), "{s}");
    assert_eq!(s.misses, 0, "{s}");
}

#[test]
fn sleeping_laptop_probes_once_then_decides() {
    let t = run("laptop-asleep-2h");
    let wake = Instant::from_secs(2 * 3600 + 45);
    let after: Vec<Event> = events(&t)
        .into_iter()
        .filter(|(at, _)| *at >= wake)
        .map(|(_, e)| e)
        .collect();
    let stalls = after
        .iter()
        .filter(|e| matches!(e, Event::Stalled { .. }))
        .count();
    assert_eq!(stalls, 1, "{after:?}");
    let reconnect = after
        .iter()
        .find_map(|e| match e {
            Event::Reconnect { reason, .. } => Some(*reason),
            _ => None,
        })
        .expect("a decision after the probe");
    assert_eq!(reconnect, ReconnectReason::ConnectionClosed);
    assert!(!after.iter().any(|e| matches!(e, Event::PongMissed { .. })));
    assert!(after.iter().any(|e| matches!(e, Event::Connected)));
}

#[test]
fn ping_flood_is_closed_for_too_many_pings() {
    let s = Summary::from_trace(&run("ping-flood"));
    assert!(!s.server_closes.is_empty());
    assert!(s
        .server_closes
        .iter()
        .all(|(_, _, r)| *r == heartbeat_core::CloseReason::TooManyPings));
}

#[test]
fn jitter_flattens_the_reconnect_herd() {
    let config = Config::default();
    let (with, _) = herd(&config, 7, 2_000, true, None).expect("runs");
    let (without, _) = herd(&config, 7, 2_000, false, None).expect("runs");
    assert!(with.all_back_after.is_some() && without.all_back_after.is_some());
    assert!(
        with.peak_accepts_per_sec < without.peak_accepts_per_sec,
        "{with}\n{without}"
    );
}

#[test]
fn unknown_scenarios_name_the_known_ones() {
    let err = scenario("nope", &Config::default(), 0, None).unwrap_err();
    assert!(matches!(err, ScenarioError::Unknown(_)));
    let text = err.to_string();
    for name in scenarios::names() {
        assert!(text.contains(name), "{text}");
    }
}

#[test]
fn invalid_configs_are_errors_not_panics() {
    let mut config = Config::default();
    config.client.ping_interval = Duration::ZERO;
    for name in scenarios::names() {
        if name.starts_with("story") || name == "server-restart-herd" {
            continue; // the story scenarios use their own config; the herd is slow in debug
        }
        let r = scenario(name, &config, 0, Some(Duration::from_secs(5)));
        if name != "ping-flood" {
            assert!(matches!(r, Err(ScenarioError::Config(_))), "{name}");
        }
    }
}

#[test]
fn duration_overrides_the_run_length() {
    let t = scenario(
        "healthy",
        &Config::default(),
        0,
        Some(Duration::from_secs(300)),
    )
    .unwrap();
    assert!(t.end() >= Instant::from_secs(285), "{}", t.end());
}

/// The herd is flattened by full jitter: the first backoff is drawn evenly from [0, initial].
/// Over 4,000 seeds the mean and the quartiles of the draws sit within 3 % of the cap of where
/// an even spread puts them (a draw skewed high or low, from a broken mixing step, moves them by
/// far more; 4,000 even draws stray by about 0.5 %).
#[test]
fn the_first_backoff_is_spread_evenly_over_zero_to_its_cap() {
    let config = Config::default();
    let cap = config.client.backoff_initial.as_secs_f64();
    let mut draws: Vec<f64> = (0..4_000u64)
        .map(|seed| {
            let mut c = heartbeat_core::Client::new(
                &config.client,
                Instant::ZERO,
                seed.wrapping_mul(0x9E37_79B9),
            )
            .unwrap();
            while c.poll_event().is_some() {}
            c.handle_disconnected(Instant::ZERO);
            std::iter::from_fn(|| c.poll_event())
                .find_map(|e| match e {
                    Event::Reconnect { backoff, .. } => Some(backoff.as_secs_f64() / cap),
                    _ => None,
                })
                .expect("a reconnect with its backoff")
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let mean = draws.iter().sum::<f64>() / draws.len() as f64;
    let quartile = |q: usize| draws[draws.len() * q / 4];
    for (what, got, want) in [
        ("mean", mean, 0.5),
        ("first quartile", quartile(1), 0.25),
        ("median", quartile(2), 0.5),
        ("third quartile", quartile(3), 0.75),
    ] {
        assert!(
            (got - want).abs() < 0.03,
            "{what}: {got:.3} of the cap, want {want}"
        );
    }
    assert!(draws.iter().all(|&d| (0.0..=1.0).contains(&d)));
}
