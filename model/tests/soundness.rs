//! The checker never says more than it showed. One test per way it used to (issue "Sound
//! verdicts"): a cut-off run reported as a proof, time-locks taken for endings, undecided
//! properties printed as holding, counterexamples that were not the shortest; and the
//! abstraction that gives millisecond configurations a real verdict.

use std::time::Duration;

use heartbeat_core::{Config, NetworkAssumptions};
use heartbeat_model::check::{
    check, names, Action, Approximation, CheckOptions, HeartbeatModel, Report, State, Status,
    Verdict,
};
use heartbeat_model::cli::{run_check, CheckSettings, Format};
use heartbeat_model::explore::{self, Limit, Limits, SearchOptions, Stop, Timed};
use proptest::prelude::*;

mod common;
use common::{pinned, small_config};
use stateright::{Model, Property};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn s(v: u64) -> Duration {
    Duration::from_secs(v)
}

fn with_budget(max_states: usize) -> CheckOptions {
    CheckOptions {
        limits: Limits {
            max_states,
            ..Limits::default()
        },
        ..CheckOptions::default()
    }
}

fn statuses(r: &Report) -> Vec<(&'static str, Status)> {
    r.properties.iter().map(|p| (p.name, p.status)).collect()
}

/// The default configuration with a 50,000-state budget used to print "proven" at 39,272 of
/// its then 194,482 states: stateright's budget counted generated states.
#[test]
fn a_budget_below_the_state_space_is_inconclusive_never_proven() {
    let r = check(&Config::default(), with_budget(50_000)).unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive(Limit::States(50_000)));
    assert_eq!(r.states(), 50_000, "the budget counts unique states");
    assert!(!r.proven());
    assert_eq!(r.safety(), None);
    for p in &r.properties {
        assert!(
            matches!(p.status, Status::Undecided | Status::Reached),
            "{}: {:?}",
            p.name,
            p.status
        );
    }
    let out = run_check(
        &Config::default(),
        "default",
        Format::Text,
        CheckSettings {
            max_states: 50_000,
            ..CheckSettings::default()
        },
        false,
    );
    assert_eq!(out.exit_code, 3, "{}", out.output);
    assert!(
        out.output.contains("INCONCLUSIVE") && out.output.contains("--max-states"),
        "{}",
        out.output
    );
    assert!(!out.output.contains("proven"), "{}", out.output);
}

/// A budget of exactly the state space completes the check; one state less does not.
#[test]
fn a_budget_of_exactly_the_state_space_completes() {
    // The space as an unbounded check counts it (pinned when the change detectors are on), so
    // that the budget's meaning is still checked on a core whose space has another size.
    let space = check(&Config::default(), CheckOptions::default())
        .unwrap()
        .states();
    if pinned() {
        assert_eq!(space, 1_209_320);
    }
    let r = check(&Config::default(), with_budget(space)).unwrap();
    assert_eq!(r.verdict, Verdict::Proven);
    let r = check(&Config::default(), with_budget(space - 1)).unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive(Limit::States(space - 1)));
}

/// A configuration that breaks R2 used to "prove" with a 10,000-state budget.
#[test]
fn a_broken_config_is_never_proven_under_a_small_budget() {
    let mut config = Config::default();
    config.client.ping_interval = s(10);
    config.client.pong_timeout = s(10);
    config.client.max_missed_pongs = 2;
    config.client.slow_threshold = 1;
    config.server.ping_interval = s(30);
    assert!(!config.validate().is_ok());
    for budget in [100, 1_000, 10_000] {
        let r = check(&config, with_budget(budget)).unwrap();
        assert_ne!(r.verdict, Verdict::Proven, "budget {budget}");
        let out = run_check(
            &config,
            "r2",
            Format::Json,
            CheckSettings {
                max_states: budget,
                ..CheckSettings::default()
            },
            false,
        );
        assert_ne!(out.exit_code, 0, "budget {budget}");
    }
}

/// Time and memory limits end a search as inconclusive too.
#[test]
fn time_and_memory_limits_are_inconclusive() {
    let options = CheckOptions {
        limits: Limits {
            max_time: Some(Duration::ZERO),
            ..Limits::default()
        },
        ..CheckOptions::default()
    };
    let r = check(&Config::default(), options).unwrap();
    assert!(matches!(r.verdict, Verdict::Inconclusive(Limit::Time(_))));
    let options = CheckOptions {
        limits: Limits {
            max_bytes: 1 << 20,
            ..Limits::default()
        },
        ..CheckOptions::default()
    };
    let r = check(&Config::default(), options).unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive(Limit::Memory(1 << 20)));
    assert!(r.peak_bytes() > 1 << 20);
}

/// The story's default with 30 s pings and a 7 ms latency used to print "proven (12,946,403
/// states ...)" while its exact space was still growing past 25 M states. Now it is proven on
/// a rounded grid, with every search complete and the rounded bounds said to be rounded.
#[test]
fn a_millisecond_latency_gets_a_complete_verdict() {
    let mut config = Config::default();
    config.client.ping_interval = s(30);
    config.network.max_latency = ms(7);
    let r = check(&config, CheckOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Proven, "{:?}", statuses(&r));
    assert!(r.rounded);
    assert_eq!(r.network.max_latency, s(1));
    // Every search after the probe finished, or (the corners) stopped once it had found the
    // witnesses still open (a Slow period that recovers, since faults heal).
    assert!(
        r.runs.iter().skip(1).all(|run| run.stop == Stop::Complete
            || (run.approximation == Approximation::Corners && run.stop == Stop::Found)),
        "{:?}",
        r.runs
    );
    assert!(r
        .runs
        .iter()
        .any(|run| run.approximation == Approximation::Over && run.stop == Stop::Complete));
    // The printed bounds are the rounded ones: weaker than the configured assumptions', never
    // stronger.
    let exact = config.guarantees();
    assert!(r.guarantees.detection_bound >= exact.detection_bound);
    assert!(r.guarantees.warning_lead <= exact.warning_lead);
    let out = run_check(
        &config,
        "30s-7ms",
        Format::Text,
        CheckSettings::default(),
        false,
    );
    assert_eq!(out.exit_code, 0);
    assert!(out.output.contains("rounded up"), "{}", out.output);
    assert!(
        out.output
            .contains("Guarantees (of the rounded assumptions)"),
        "{}",
        out.output
    );
}

/// The R1 edge in milliseconds (7 ms latency, 5014 ms pong timeout, 5 s server delay) fails
/// validation; the model check used to print "proven" with no-missed-pong "holds".
#[test]
fn the_r1_edge_in_milliseconds_fails_with_a_counterexample() {
    let mut config = Config::default();
    config.network.max_latency = ms(7);
    config.client.pong_timeout = ms(5014);
    config.network.max_server_delay = s(5);
    assert!(!config.validate().is_ok());
    let r = check(&config, CheckOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Failed);
    let failure = r.first_failure().unwrap();
    assert_eq!(failure.name, names::NO_MISSED_PONG);
    assert!(failure.trace.is_some());
}

/// After the first failure, the properties not decided used to print "holds" and
/// `safety_proven()` returned true; a failure of property 5 found first could hide one of 1-4.
#[test]
fn properties_not_decided_are_not_checked() {
    // R6 broken: properties 5 and 6 fail, 1-4 hold (check.rs pins it); the first failure found
    // is 6's. (This used a connect timeout beyond D, until D covered the connect path.)
    let mut config = Config::default();
    config.client.stall_threshold = ms(500);
    let r = check(&config, CheckOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Failed);
    for p in &r.properties {
        let want = if p.name == names::SLOW_IS_TRANSIENT {
            Status::Fails
        } else if p.status == Status::Reached {
            Status::Reached
        } else {
            Status::NotChecked
        };
        assert_eq!(p.status, want, "{}", p.name);
    }
    assert_eq!(r.safety(), None, "1-4 were not decided");
    let out = run_check(
        &config,
        "stall-500ms",
        Format::Json,
        CheckSettings::default(),
        false,
    );
    let v: serde_json::Value = serde_json::from_str(&out.output).unwrap();
    let props = v["model_check"]["properties"].as_array().unwrap();
    let safety = props
        .iter()
        .find(|p| p["name"] == names::NO_SPURIOUS_RECONNECT)
        .unwrap();
    assert_eq!(safety["status"], "not checked");
    assert!(safety["holds"].is_null());
    let text = run_check(
        &config,
        "stall-500ms",
        Format::Text,
        CheckSettings::default(),
        false,
    );
    assert!(
        text.output.contains("not checked  no-spurious-reconnect"),
        "{}",
        text.output
    );
    // A full search decides them all: 1-4 hold, 5 and 6 fail
    // (check.rs, lateness_above_the_stall_threshold_breaks_properties_5_and_6_only).
}

/// A core whose client timer fires without moving its deadline (like `poll_timeout` ignoring
/// `answered`), or whose server never acts on its due idle deadline (`>` for `>=`), stops time.
/// Such states used to count as endings; now they are time-locks with a path.
struct Frozen {
    inner: HeartbeatModel,
    /// Which timer the "mutant" breaks.
    timer: Action,
}

impl Model for Frozen {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.inner.init_states()
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.inner.actions(state, actions);
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        if action == self.timer {
            // The timer fires and nothing changes: its deadline stays due.
            return Some(state.clone());
        }
        self.inner.next_state(state, action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::always("true", |_, _| true)]
    }
}

impl Timed for Frozen {
    fn lets_time_pass(&self, action: &Action) -> bool {
        self.inner.lets_time_pass(action)
    }

    fn is_ending(&self, state: &State) -> bool {
        self.inner.is_ending(state)
    }
}

#[test]
fn a_timer_that_never_moves_its_deadline_is_a_time_lock() {
    for timer in [Action::ClientTimer, Action::ServerTimer] {
        let model = Frozen {
            inner: HeartbeatModel::new(Config::default()),
            timer,
        };
        let found = explore::search(&model, SearchOptions::default());
        assert_eq!(found.stop, Stop::Complete);
        let path = found
            .time_lock
            .expect("decided after a complete run")
            .expect("a time-locked state");
        // The path ends where the broken timer is due: replaying it reaches a state that
        // offers that timer and not the passing of time.
        let mut state = model.init_states().remove(0);
        for a in &path {
            state = model.next_state(&state, *a).unwrap();
        }
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        assert!(actions.contains(&timer), "{timer:?}: {actions:?}");
        assert!(!actions.contains(&Action::Tick), "{timer:?}: {actions:?}");
    }
    // The real core has none.
    let found = explore::search(
        &HeartbeatModel::new(Config::default()),
        SearchOptions::default(),
    );
    assert_eq!(found.time_lock, Some(None));
}

fn scaled(config: &Config, k: u32) -> Config {
    let (mut c, n) = (*config, config.network);
    c.client.ping_interval *= k;
    c.client.pong_timeout *= k;
    c.client.connect_timeout *= k;
    c.client.stall_threshold *= k;
    c.client.backoff_initial *= k;
    c.client.backoff_max *= k;
    c.server.ping_interval *= k;
    c.server.idle_timeout *= k;
    c.server.min_client_ping_interval *= k;
    c.network = NetworkAssumptions {
        max_latency: n.max_latency * k,
        max_server_delay: n.max_server_delay * k,
        max_timer_lateness: n.max_timer_lateness * k,
        max_server_timer_lateness: n.max_server_timer_lateness * k,
    };
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The same configuration in other units gets the same verdict, property by property, from
    /// searches of the same sizes. (Server timers on time: the core's stall grace is a constant
    /// of its own, 1 s, which does not scale; a server timer late by more than it behaves
    /// differently by design.)
    #[test]
    fn the_verdict_does_not_depend_on_the_unit(config in small_config()) {
        let mut config = config;
        config.network.max_server_timer_lateness = Duration::ZERO;
        let base = check(&config, CheckOptions::default()).unwrap();
        for k in [10, 1000] {
            let other = check(&scaled(&config, k), CheckOptions::default()).unwrap();
            prop_assert_eq!(base.verdict, other.verdict, "x{}", k);
            prop_assert_eq!(statuses(&base), statuses(&other), "x{}", k);
            let sizes = |r: &Report| r.runs.iter().map(|run| run.states).collect::<Vec<_>>();
            prop_assert_eq!(sizes(&base), sizes(&other), "x{}", k);
            prop_assert_eq!(base.unit * k, other.unit);
        }
    }

    /// Rounding the assumptions up only weakens the bounds the check prints: what a rounded
    /// proof shows is still true of the configured assumptions.
    #[test]
    fn rounded_up_assumptions_give_weaker_bounds(
        config in small_config(),
        extra in (0..=3_000u64, 0..=3_000u64, 0..=3_000u64, 0..=3_000u64),
    ) {
        let exact = config.guarantees();
        let mut up = config;
        up.network.max_latency += ms(extra.0);
        up.network.max_server_delay += ms(extra.1);
        up.network.max_timer_lateness += ms(extra.2);
        up.network.max_server_timer_lateness += ms(extra.3);
        let rounded = up.guarantees();
        prop_assert!(rounded.detection_bound >= exact.detection_bound);
        prop_assert!(rounded.slow_bound >= exact.slow_bound);
        prop_assert!(rounded.warning_lead <= exact.warning_lead);
        prop_assert!(rounded.server_detection_bound >= exact.server_detection_bound);
        prop_assert!(rounded.heal_settle_client >= exact.heal_settle_client);
        prop_assert!(rounded.heal_settle_server >= exact.heal_settle_server);
        prop_assert!(rounded.reconnect_bound >= exact.reconnect_bound);
        prop_assert_eq!(rounded.client_tolerance, exact.client_tolerance);
    }
}
