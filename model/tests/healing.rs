//! Faults that heal (issue 11): a cut network comes back, an overload ends. Properties 3 and 4
//! hold once the network has been up for the settle times `Guarantees::heal_settle_client` and
//! `heal_settle_server`, and those are tight: one time unit less, and the model finds a
//! reconnect (a close) after the heal.

use std::time::Duration;

use heartbeat_core::Config;
use heartbeat_model::check::{names, Action, HeartbeatModel};
use heartbeat_model::explore::{self, SearchOptions, Stop};

mod common;

fn index(model: &HeartbeatModel, name: &str) -> usize {
    common::property_index(model, name)
}

/// A full search of `model` (no stop at the first failure): the shortest path to each failure.
fn search(model: &HeartbeatModel) -> explore::Found<Action> {
    explore::search(
        model,
        SearchOptions {
            stop_at_first_failure: false,
            ..SearchOptions::default()
        },
    )
}

#[test]
fn the_default_settle_times() {
    let g = Config::default().guarantees();
    // max(connect 15 + 1, min(T 12 + 1, P_s 25 + 1 + 2 + 1)) = 16 s.
    assert_eq!(g.heal_settle_client, Duration::from_secs(16));
    // The first read handled up to L_s late: min(15 + 1 + 2 + 1, 25 + 1 + 4 + 1 + 1) = 19 s.
    assert_eq!(g.heal_settle_server, Duration::from_secs(19));
}

#[test]
fn the_default_config_holds_over_healed_faults_and_the_settle_times_are_tight() {
    settle_times_hold_and_are_tight(Config::default());
}

/// The settle times hold and are tight, searched until the counterexample one unit below each.
fn settle_times_hold_and_are_tight(config: Config) {
    let model = HeartbeatModel::new(config);
    let found = search(&model);
    assert_eq!(found.stop, Stop::Complete);
    for name in [names::NO_SPURIOUS_RECONNECT, names::NO_SPURIOUS_CLOSE] {
        assert!(found.discoveries[index(&model, name)].is_none(), "{name}");
    }
    for (name, client) in [
        (names::NO_SPURIOUS_RECONNECT, true),
        (names::NO_SPURIOUS_CLOSE, false),
    ] {
        let mut tighter = model.clone();
        let g = &mut tighter.guarantees;
        if client {
            g.heal_settle_client -= tighter.unit;
        } else {
            g.heal_settle_server -= tighter.unit;
        }
        let found = explore::search(
            &tighter,
            SearchOptions {
                stop_at_first_failure: false,
                until_found: 1 << index(&tighter, name),
                ..SearchOptions::default()
            },
        );
        let path = found.discoveries[index(&tighter, name)]
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: a counterexample one unit below the settle time"));
        assert!(path.contains(&Action::Heal), "{name}: {path:?}");
    }
}

/// Each branch of both formulas decides on one of these, and each is exact there.
#[test]
fn every_branch_of_the_settle_times_is_tight() {
    let s = Duration::from_secs;
    let mut cases = Vec::new();
    // X_c by its connect path (40 + 1 s), X_s by the client's pings (15 + 1 + 2 + 1 s).
    let mut c = Config::default();
    c.client.connect_timeout = s(40);
    cases.push((c, s(41), s(19)));
    // X_c by the deadlines of pings sent in the cut (T 12 + 1 s).
    let mut c = Config::default();
    c.client.connect_timeout = s(7);
    cases.push((c, s(13), s(19)));
    // Both by the server's pings: X_c = 5 + 1 + 2 + 1 s, X_s = 5 + 1 + 4 + 1 + 1 s.
    let mut c = Config::default();
    c.client.connect_timeout = s(7);
    c.server.ping_interval = s(5);
    cases.push((c, s(9), s(12)));
    for (config, client, server) in cases {
        let g = config.guarantees();
        assert_eq!(
            (g.heal_settle_client, g.heal_settle_server),
            (client, server)
        );
        settle_times_hold_and_are_tight(config);
    }
}

#[test]
fn without_healing_nothing_needs_excusing() {
    // The same model with faults that never end: properties 3 and 4 hold without settle times
    // (they speak only of a network that is up), so healing is what the settle times are for.
    let mut model = HeartbeatModel::new(Config::default());
    model.healing = false;
    model.guarantees.heal_settle_client = Duration::ZERO;
    model.guarantees.heal_settle_server = Duration::ZERO;
    let found = search(&model);
    assert_eq!(found.stop, Stop::Complete);
    for name in [names::NO_SPURIOUS_RECONNECT, names::NO_SPURIOUS_CLOSE] {
        assert!(found.discoveries[index(&model, name)].is_none(), "{name}");
    }
}
