//! The model checker on the configurations that matter, with pinned state counts, and the
//! cross-check of `Config::validate` against the checker.

use std::path::Path;
use std::time::Duration;

use heartbeat_core::{CloseReason, Config, ConfigError, NetworkAssumptions, ServerEvent};
use heartbeat_model::check::{
    check, names, CheckOptions, HeartbeatModel, Kind, Report, Status, Verdict,
};
use heartbeat_model::cli::{load_config, run_check, CheckSettings, Format};
use heartbeat_model::explore::{self, Limits, SearchOptions, Stop};
use heartbeat_model::render;
use heartbeat_model::trace::What;
use proptest::prelude::*;
use stateright::Model;

mod common;
use common::{ms_config, pinned, small_config};

fn config_file(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name);
    load_config(Some(&path), std::iter::empty::<(String, String)>())
        .expect("test config loads")
        .0
}

fn full(config: &Config) -> Report {
    check(
        config,
        CheckOptions {
            stop_at_first_failure: false,
            ..CheckOptions::default()
        },
    )
    .expect("checkable")
}

fn first_failure(config: &Config) -> Report {
    check(config, CheckOptions::default()).expect("checkable")
}

fn verdicts(r: &Report) -> Vec<(&'static str, Status)> {
    r.properties.iter().map(|p| (p.name, p.status)).collect()
}

fn reached(r: &Report, name: &str) -> bool {
    r.property(name)
        .is_some_and(|p| p.status == Status::Reached)
}

#[test]
fn default_config_is_proven_and_its_bounds_are_tight() {
    let config = Config::default();
    assert!(config.validate().is_ok());
    let r = full(&config);
    assert_eq!(r.verdict, Verdict::Proven, "{:?}", verdicts(&r));
    if pinned() {
        assert_eq!(r.states(), 1_209_320);
    }
    assert_eq!(r.unit, Duration::from_secs(1));
    assert!(!r.rounded);
    // docs/invariants.md: a connected client always has a timer, so no state waits for nothing.
    assert_eq!(r.idle_states, 0);
    for name in [
        names::SLOW_REACHED,
        names::SLOW_THEN_RECOVERED,
        names::RECONNECT_WHEN_DEAD,
        names::DETECTION_BOUND_REACHED,
    ] {
        assert!(reached(&r, name), "{name} not reached");
    }
}

/// Issue 11: a cut before the handshake response ends in `ConnectTimeout`, up to L late. D
/// used to ignore that path: 80 s of connect timeout against the connected path's 1m17s.
#[test]
fn a_connect_timeout_beyond_the_heartbeat_path_is_inside_the_detection_bound() {
    let mut config = Config::default();
    config.client.connect_timeout = Duration::from_secs(80);
    assert!(config.validate().is_ok(), "{:?}", config.validate().errors);
    // connect + L = 80 s + 1 s, above e + N (P_c + L) + T + L = 2 + 64 + 10 + 1 = 77 s.
    assert_eq!(config.guarantees().detection_bound, Duration::from_secs(81));
    let r = full(&config);
    assert_eq!(
        r.property(names::BOUNDED_DETECTION).map(|p| p.status),
        Some(Status::Holds),
        "{:?}",
        verdicts(&r)
    );
    assert_eq!(r.verdict, Verdict::Proven, "{:?}", verdicts(&r));
    // Tight: the server dies before it reads the upgrade request, the connect timer fires L late.
    assert!(reached(&r, names::DETECTION_BOUND_REACHED));
    // The default config's 206,500 and the states where the connect timer is still pending
    // for the extra 65 s.
    if pinned() {
        assert_eq!(r.states(), 3_143_952);
    }
}

/// R6 (L <= stall) broken: lateness within the assumptions is taken for a local stall, a miss is
/// forgiven and a probe sent. What the checker shows, and docs/invariants.md says: properties
/// 1-4 hold, 5 (detection) and 6 (slow periods end) fail.
#[test]
fn lateness_above_the_stall_threshold_breaks_strict_flood_policing_too() {
    // Found by the cross-check with 8,000 cases: with lateness above the stall threshold the
    // client takes a late timer for a stall of its own and sends a probe, an extra ping; a
    // server that allows one ping per 6 s and no strike closes the connection for it.
    let s = Duration::from_secs;
    let mut config = common::seconds_config(
        (6, 3, 3, 1, 3),
        (4, 7, 6, 0),
        NetworkAssumptions {
            max_latency: s(0),
            max_server_delay: s(0),
            max_timer_lateness: s(2),
            max_server_timer_lateness: s(0),
        },
    );
    config.client.stall_threshold = s(1);
    let v = config.validate();
    assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
    assert!(matches!(
        v.errors[0],
        ConfigError::LatenessAboveStallThreshold { .. }
    ));
    let r = full(&config);
    for (name, status) in [
        (names::WARN_BEFORE_RECONNECT, Status::Holds),
        (names::NO_MISSED_PONG, Status::Holds),
        // The reconnect that follows the close is the close's doing, not property 3's.
        (names::NO_SPURIOUS_RECONNECT, Status::Holds),
        (names::NO_SPURIOUS_CLOSE, Status::Fails),
        (names::BOUNDED_DETECTION, Status::Fails),
        (names::SLOW_IS_TRANSIENT, Status::Fails),
    ] {
        assert_eq!(r.property(name).map(|p| p.status), Some(status), "{name}");
    }
    let close = r.property(names::NO_SPURIOUS_CLOSE).unwrap();
    let trace = close.trace.as_ref().expect("a counterexample");
    assert!(
        trace.entries.iter().any(|e| matches!(
            e.what,
            What::ServerEvent(ServerEvent::Close(CloseReason::TooManyPings))
        )),
        "{}",
        render::ascii(trace)
    );
    // With the stall threshold above the lateness, everything holds.
    config.client.stall_threshold = s(2);
    assert!(config.validate().is_ok());
    assert_eq!(full(&config).verdict, Verdict::Proven);
}

#[test]
fn lateness_above_the_stall_threshold_breaks_properties_5_and_6_only() {
    let mut config = Config::default();
    config.client.stall_threshold = Duration::from_millis(500);
    let v = config.validate();
    assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
    assert!(matches!(
        v.errors[0],
        heartbeat_core::ConfigError::LatenessAboveStallThreshold { .. }
    ));
    // Without healed faults (at this 500 ms unit they make it more than the 20 M budget, not 8.4 M): the
    // verdicts of properties 1-7 do not depend on them here.
    let r = check(
        &config,
        CheckOptions {
            stop_at_first_failure: false,
            healing: false,
            ..CheckOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Failed);
    assert_eq!(r.safety(), Some(true), "{:?}", verdicts(&r));
    let always: Vec<_> = verdicts(&r)
        .into_iter()
        .filter(|(_, s)| matches!(s, Status::Holds | Status::Fails))
        .collect();
    assert_eq!(
        always,
        [
            (names::WARN_BEFORE_RECONNECT, Status::Holds),
            (names::NO_MISSED_PONG, Status::Holds),
            (names::NO_SPURIOUS_RECONNECT, Status::Holds),
            (names::NO_SPURIOUS_CLOSE, Status::Holds),
            (names::BOUNDED_DETECTION, Status::Fails),
            (names::SLOW_IS_TRANSIENT, Status::Fails),
            (names::SERVER_CLOSES_DEAD_CLIENT, Status::Holds),
            (names::MISSES_ANNOUNCED, Status::Holds),
            (names::TIME_ADVANCES, Status::Holds),
        ]
    );
    let lens: Vec<_> = [names::BOUNDED_DETECTION, names::SLOW_IS_TRANSIENT]
        .map(|n| r.property(n).and_then(|p| p.path_len))
        .into();
    assert!(
        lens.iter().all(Option::is_some),
        "{lens:?}: counterexamples to 5 and 6"
    );
    if pinned() {
        assert_eq!(lens, [Some(29), Some(25)]);
        assert_eq!(r.states(), 8_410_749);
    }
}

#[test]
fn the_story_original_config_is_proven_with_our_server() {
    // With a server that keeps pinging while its pongs lag, the story's 30 s / 30 s / 3 numbers
    // are safe: server pings are evidence of life too.
    let config = config_file("story-original.yaml");
    assert!(config.validate().is_ok());
    let r = full(&config);
    assert_eq!(r.verdict, Verdict::Proven, "{:?}", verdicts(&r));
    assert_eq!(r.unit, Duration::from_secs(1));
    if pinned() {
        assert_eq!(r.states(), 4_508_497);
    }
    // Within the assumptions a live server never even makes the client slow; a Slow period that
    // ends in Recovered comes only after a cut that heals (required since faults heal).
    assert!(reached(&r, names::SLOW_REACHED));
    assert!(reached(&r, names::SLOW_THEN_RECOVERED));
    let mut model = HeartbeatModel::new(config);
    model.healing = false;
    let found = explore::search(&model, SearchOptions::default());
    let recovered = model
        .properties()
        .iter()
        .position(|p| p.name == names::SLOW_THEN_RECOVERED)
        .unwrap();
    assert_eq!(found.stop, Stop::Complete);
    assert!(found.discoveries[recovered].is_none());
}

#[test]
fn the_story_fixed_config_misses_pongs_at_its_edge() {
    // 15 s pong timeout against 5 s latency each way plus 5 s server delay: a pong may arrive
    // exactly at the deadline. Validation says so, and the checker shows the timeline.
    let config = config_file("story-fixed.yaml");
    let v = config.validate();
    assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
    let r = first_failure(&config);
    assert_eq!(
        r.first_failure().map(|p| p.name),
        Some(names::NO_MISSED_PONG)
    );
    if pinned() {
        assert_eq!(r.states(), 331);
    }
}

#[test]
fn a_tolerance_below_server_ping_plus_latency_gets_the_shortest_counterexample() {
    let config = config_file("tolerance-too-short.toml");
    assert!(!config.validate().is_ok());
    let r = first_failure(&config);
    let failure = r.first_failure().expect("a counterexample");
    assert_eq!(failure.name, names::NO_SPURIOUS_RECONNECT);
    assert!(failure.trace.is_some(), "a counterexample trace");
    if pinned() {
        assert_eq!(r.states(), 1_355);
        insta::assert_snapshot!(render::ascii(failure.trace.as_ref().unwrap()));
    }
}

#[test]
fn counterexamples_are_identical_from_run_to_run() {
    let config = config_file("tolerance-too-short.toml");
    let a = first_failure(&config)
        .first_failure()
        .unwrap()
        .trace
        .clone();
    let b = first_failure(&config)
        .first_failure()
        .unwrap()
        .trace
        .clone();
    assert_eq!(a, b);
}

#[test]
fn check_command_output_for_the_default_config() {
    let out = run_check(
        &Config::default(),
        "the embedded default configuration",
        Format::Text,
        CheckSettings::default(),
        false,
    );
    assert_eq!(out.exit_code, 0);
    if pinned() {
        insta::assert_snapshot!(out.output);
    }
}

#[test]
fn check_command_output_for_a_config_that_fails() {
    let config = config_file("tolerance-too-short.toml");
    let out = run_check(
        &config,
        "tolerance-too-short.toml",
        Format::Text,
        CheckSettings::default(),
        false,
    );
    assert_eq!(out.exit_code, 1);
    if pinned() {
        insta::assert_snapshot!(out.output);
    }
}

#[test]
fn check_command_json_for_the_story_original_config() {
    let config = config_file("story-original.yaml");
    let out = run_check(
        &config,
        "story-original.yaml",
        Format::Json,
        CheckSettings::default(),
        false,
    );
    assert_eq!(out.exit_code, 0);
    let v: serde_json::Value = serde_json::from_str(&out.output).expect("valid JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["guarantees_ms"]["client_tolerance"], 90_000);
    if pinned() {
        insta::assert_snapshot!(out.output);
    }
}

#[test]
fn combined_faults_do_not_break_the_default_config() {
    let r = check(
        &Config::default(),
        CheckOptions {
            stop_at_first_failure: false,
            combined_faults: true,
            ..CheckOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Proven, "{:?}", verdicts(&r));
    // The exact search that decided (a probe of the exact model and the corners came first);
    // `shortest.rs` counts the same states with an independent search.
    if pinned() {
        assert_eq!(r.runs.last().map(|run| run.states), Some(1_326_811));
    }
}

/// Every `always` property: `Some(true)` if each holds, `Some(false)` if one fails, `None` if
/// some are undecided.
fn every_always(r: &Report) -> Option<bool> {
    let always = || r.properties.iter().filter(|p| p.kind == Kind::Always);
    if always().any(|p| p.status == Status::Fails) {
        Some(false)
    } else if always().all(|p| p.status == Status::Holds) {
        Some(true)
    } else {
        None
    }
}

/// `validate()` accepts `config` exactly when the check proved every property (1-7 with their
/// printed bounds, and time advancing); when a rule other than R6 fails, so does one of
/// properties 1-4. (R6 alone can break 4 too, through a probe that strict flood policing
/// counts: `lateness_above_the_stall_threshold_breaks_strict_flood_policing_too`.)
fn agrees(config: &Config, r: &Report) -> Result<(), TestCaseError> {
    let v = config.validate();
    let show = || {
        format!(
            "validate: {:?}\nchecker: {:?}",
            v.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            verdicts(r)
        )
    };
    prop_assert_eq!(Some(v.is_ok()), every_always(r), "{}", show());
    let stall_only = v
        .errors
        .iter()
        .all(|e| matches!(e, ConfigError::LatenessAboveStallThreshold { .. }));
    if !stall_only {
        prop_assert_eq!(Some(false), r.safety(), "{}", show());
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("HEARTBEAT_CROSS_CHECK_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// `validate()` accepts a configuration exactly when every `always` property holds, and a
    /// configuration that breaks any rule but R6 fails one of properties 1-4.
    #[test]
    fn validate_agrees_with_the_model_checker(config in small_config()) {
        // A search that stops at its first failure decides both sides of the agreement when
        // that failure is one of properties 1-4 (or when nothing fails); otherwise (a failure
        // of 5-7 first) every property needs the full search.
        let quick = first_failure(&config);
        let r = if quick.safety() == Some(false) || quick.verdict == Verdict::Proven {
            quick
        } else {
            full(&config)
        };
        prop_assert!(!matches!(r.verdict, Verdict::Inconclusive(_)));
        agrees(&config, &r)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases() / 16))]

    /// The cross-check on millisecond assumptions: wherever the check decides properties 1-4
    /// (on the corners, a rounded grid or the exact unit), it agrees with `validate()`. A
    /// configuration within a few milliseconds of a rule's edge may need the exact unit and
    /// come out inconclusive; those are set aside (and counted by proptest's rejections).
    #[test]
    fn validate_agrees_with_the_model_checker_in_milliseconds(config in ms_config()) {
        let run = |stop_at_first_failure| {
            check(
                &config,
                CheckOptions {
                    stop_at_first_failure,
                    limits: Limits {
                        max_states: 400_000,
                        ..Limits::default()
                    },
                    ..CheckOptions::default()
                },
            )
            .expect("checkable")
        };
        // As in the whole-second cross-check: the first failure decides when it is one of 1-4.
        let quick = run(true);
        let r = if quick.safety() == Some(false) || quick.verdict == Verdict::Proven {
            quick
        } else {
            run(false)
        };
        prop_assume!(r.safety().is_some() && every_always(&r).is_some());
        agrees(&config, &r)?;
    }
}

/// The disagreements the cross-check found while the rules were being made exact, kept as
/// named regressions (each was a rule that was stricter than the behaviour).
#[test]
fn cross_check_regressions() {
    let s = Duration::from_secs;
    let base =
        |ping: u64, timeout: u64, sping: u64, idle: u64, min: u64, strikes: u32, delay: u64| {
            common::seconds_config(
                (ping, timeout, 2, 1, 1),
                (sping, idle, min, strikes),
                NetworkAssumptions {
                    max_latency: s(0),
                    max_server_delay: s(delay),
                    max_timer_lateness: s(0),
                    max_server_timer_lateness: s(0),
                },
            )
        };
    for (why, config) in [
        // The client's pongs to the server's pings are reads too: a short idle timeout is safe
        // when the server pings often.
        (
            "idle timeout covered by the server's own ping round trips",
            base(5, 5, 1, 2, 0, 0, 0),
        ),
        // Server pings are evidence: a pong timeout below the round trip is safe when a server
        // ping always arrives within it.
        (
            "pong timeout covered by server pings",
            base(3, 3, 1, 2, 0, 0, 3),
        ),
        // Flood policing has a burst allowance: pinging at the allowed rate is never a strike.
        (
            "client at exactly the allowed rate",
            base(4, 3, 1, 2, 4, 1, 0),
        ),
    ] {
        let r = full(&config);
        assert!(
            config.validate().is_ok(),
            "{why}: {:?}",
            config.validate().errors
        );
        assert_eq!(r.safety(), Some(true), "{why}: {:?}", verdicts(&r));
    }
}

/// Flood policing closes on the (k + 1)-th strike in a row, not the k-th: a live client whose
/// jitter can earn it exactly k strikes keeps its connection (R5's `(k + 1)`), one strike more
/// allowed than it can earn. The random generator, in whole seconds, cannot reach this edge
/// (R4 keeps λ ≤ 2 s too far from it), so a core that closed at the k-th strike passed the
/// cross-check (a mutant of issue 11); this configuration fails it.
#[test]
fn a_live_client_with_exactly_the_allowed_strikes_is_not_closed() {
    let ms = Duration::from_millis;
    let mut config = common::seconds_config(
        (4, 2, 2, 1, 2),
        (1, 3, 3, 1),
        NetworkAssumptions {
            max_latency: ms(750),
            max_server_delay: ms(0),
            max_timer_lateness: ms(0),
            max_server_timer_lateness: ms(0),
        },
    );
    config.client.ping_interval = ms(3_500);
    // λ = 750 ms > (I − m) + k · (P_c − m) = 500 ms: one strike is possible;
    // λ ≤ (I − m) + (k + 1) · (P_c − m) = 1 s: a second one is not.
    assert!(config.validate().is_ok(), "{:?}", config.validate().errors);
    let r = full(&config);
    assert_eq!(r.verdict, Verdict::Proven, "{:?}", verdicts(&r));
    config.server.max_ping_strikes = 0;
    assert!(!config.validate().is_ok());
    let r = first_failure(&config);
    assert_eq!(
        r.first_failure().map(|p| p.name),
        Some(names::NO_SPURIOUS_CLOSE)
    );
}
