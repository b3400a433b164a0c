//! Property 7, `server-closes-dead-client`: after the client dies, the server closes the
//! connection within idle timeout + latency + server timer lateness (plus the stall grace and
//! the lateness again when the lateness exceeds the grace). Proven on the default configuration
//! and with a deferral, tight in both, and failing for a server whose idle check is broken.

use std::time::Duration;

use heartbeat_core::Config;
use heartbeat_model::check::{
    check, names, Action, CheckOptions, HeartbeatModel, State, Status, Verdict,
};
use heartbeat_model::explore::{self, SearchOptions, Stop, Timed};
use stateright::{Model, Property};

mod common;
use common::pinned;

/// The index of property 7 in the model's properties.
fn property_7(model: &HeartbeatModel) -> usize {
    model
        .properties()
        .iter()
        .position(|p| p.name == names::SERVER_CLOSES_DEAD_CLIENT)
        .expect("property 7 is in the model")
}

#[test]
fn the_default_config_closes_a_dead_client_within_idle_timeout_plus_latency() {
    let config = Config::default();
    // 60 s idle timeout + 2 s latency + 1 s server read lateness + 1 s server timer lateness.
    assert_eq!(
        config.guarantees().server_detection_bound,
        Duration::from_secs(64)
    );
    let r = check(
        &config,
        CheckOptions {
            stop_at_first_failure: false,
            ..CheckOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Proven);
    assert_eq!(
        r.property(names::SERVER_CLOSES_DEAD_CLIENT)
            .map(|p| p.status),
        Some(Status::Holds)
    );
}

#[test]
fn the_server_detection_bound_is_tight() {
    // One unit less, and the model finds the run that reaches it: the client's last ping,
    // sent as it dies, arrives λ later and the idle timeout runs from there.
    let mut model = HeartbeatModel::new(Config::default());
    model.guarantees.server_detection_bound -= model.unit;
    let found = explore::search(&model, SearchOptions::default());
    let path = found.discoveries[property_7(&model)]
        .as_ref()
        .expect("a counterexample one unit below the bound");
    assert!(path.contains(&Action::KillClient), "{path:?}");
}

#[test]
fn a_server_stall_deferral_is_inside_the_server_detection_bound() {
    // Server timers and reads up to 2 s late, more than the 1 s stall grace: the last read is
    // handled 2 s late, an idle deadline handled 2 s late is put off once by the grace and fires
    // up to 2 s late again, 60 + 2 + 2 + 2 + 1 + 2 s.
    let mut config = Config::default();
    config.network.max_server_timer_lateness = Duration::from_secs(2);
    assert_eq!(
        config.guarantees().server_detection_bound,
        Duration::from_secs(69)
    );
    let mut model = HeartbeatModel::new(config);
    let found = explore::search(&model, SearchOptions::default());
    assert_eq!(found.stop, Stop::Complete);
    assert!(found.discoveries[property_7(&model)].is_none());
    // Tight: one unit less fails, on a run where the deferral happened (the close comes only
    // after the second firing).
    model.guarantees.server_detection_bound -= model.unit;
    let found = explore::search(&model, SearchOptions::default());
    let path = found.discoveries[property_7(&model)]
        .as_ref()
        .expect("a counterexample one unit below the bound");
    let server_timers = path.iter().filter(|a| **a == Action::ServerTimer).count();
    assert!(server_timers >= 2, "{path:?}");
}

/// The core with its idle check broken: every server timer first counts as a read, so the idle
/// deadline keeps moving (as a server that ignores its idle deadline would).
struct IdleIgnored(HeartbeatModel);

impl Model for IdleIgnored {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.0.init_states()
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.0.actions(state, actions);
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        if action == Action::ServerTimer {
            let mut state = state.clone();
            let now = state.now;
            if let Some(server) = state.server.as_mut() {
                server.handle_read(now);
            }
            return self.0.next_state(&state, action);
        }
        self.0.next_state(state, action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::always(
            names::SERVER_CLOSES_DEAD_CLIENT,
            |m: &Self, s: &State| m.0.dead_client_closed_in_time(s),
        )]
    }
}

impl Timed for IdleIgnored {
    fn lets_time_pass(&self, action: &Action) -> bool {
        self.0.lets_time_pass(action)
    }

    fn is_ending(&self, state: &State) -> bool {
        self.0.is_ending(state)
    }
}

#[test]
fn a_server_that_ignores_its_idle_deadline_breaks_property_7() {
    let model = IdleIgnored(HeartbeatModel::new(Config::default()));
    let found = explore::search(
        &model,
        SearchOptions {
            stop_at_first_failure: true,
            ..SearchOptions::default()
        },
    );
    assert_eq!(found.stop, Stop::Failure);
    let path = found.discoveries[0]
        .as_ref()
        .expect("a shortest counterexample");
    assert!(path.contains(&Action::KillClient), "{path:?}");
    // Hello, the death, the Welcome lost, two server pings that each reset the idle timer,
    // then one unit past the bound: 62 s + 1 s after the death.
    if pinned() {
        assert_eq!(path.len(), 10, "{path:?}");
    }
}
