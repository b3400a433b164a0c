//! Property 9: the reconnect cycle. The real client, from its first attempt through refused and
//! timed-out attempts, backoff and a lost connection to its second connection, against a server
//! that is down and comes back at any moment: once the server is up and stays so, the client is
//! connected again within `Guarantees::reconnect_bound`.

use std::time::Duration;

use heartbeat_core::Config;
use heartbeat_model::explore::{search, Found, SearchOptions, Stop};
use heartbeat_model::reconnect::{names, ReconnectAction, ReconnectModel};

mod common;

fn run(model: &ReconnectModel) -> Found<ReconnectAction> {
    search(
        model,
        SearchOptions {
            stop_at_first_failure: false,
            ..SearchOptions::default()
        },
    )
}

fn index(model: &ReconnectModel, name: &str) -> usize {
    common::property_index(model, name)
}

#[test]
fn the_default_client_reconnects_within_the_bound_once_the_server_is_back() {
    let config = Config::default();
    // An attempt lost as the server came back (connect 15 s, its timer 1 s late), the longest
    // backoff (30 s, 1 s late), the handshake (2 x 2 s + 1 s + 1 s): 53 s.
    assert_eq!(config.guarantees().reconnect_bound, Duration::from_secs(53));
    for seed in [0, 0x5eed] {
        let model = ReconnectModel {
            seed,
            ..ReconnectModel::new(config).unwrap()
        };
        holds_with_every_witness(&model);
    }
}

fn holds_with_every_witness(model: &ReconnectModel) {
    let model = model.clone();
    let found = run(&model);
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.time_lock, Some(None), "no time-lock");
    assert!(
        found.discoveries[index(&model, names::RECONNECTED_IN_TIME)].is_none(),
        "{:?}",
        found.discoveries[index(&model, names::RECONNECTED_IN_TIME)]
    );
    for witness in [
        names::SECOND_CONNECTION,
        names::CONNECT_TIMED_OUT,
        names::CONNECT_REFUSED,
    ] {
        assert!(
            found.discoveries[index(&model, witness)].is_some(),
            "{witness} is reached"
        );
    }
    println!(
        "reconnect model, seed {}: {} states",
        model.seed, found.states
    );
}

#[test]
fn a_bound_without_the_lost_attempt_fails() {
    // The connect timeout term is needed: an attempt under way when the server comes back may
    // have been lost (its request sent into the cut), and only its timeout starts the next one.
    let mut model = ReconnectModel::new(Config::default()).unwrap();
    model.bound -= Config::default().client.connect_timeout;
    let found = run(&model);
    let path = found.discoveries[index(&model, names::RECONNECTED_IN_TIME)]
        .as_ref()
        .expect("a reconnect later than the bound without the connect timeout");
    assert!(
        path.iter().any(|a| matches!(a, ReconnectAction::Change(_))),
        "{path:?}"
    );
}

#[test]
fn without_r3_a_client_facing_a_live_server_can_stay_unconnected() {
    // connect 6 s = 2 x 2 s + 1 s + 1 s: a handshake as slow as allowed ends with the timeout.
    let mut config = Config::default();
    config.client.connect_timeout = Duration::from_secs(6);
    assert!(!config.validate().is_ok(), "R3 broken");
    let model = ReconnectModel::new(config).unwrap();
    let found = search(
        &model,
        SearchOptions {
            stop_at_first_failure: true,
            ..SearchOptions::default()
        },
    );
    assert_eq!(found.stop, Stop::Failure);
    assert!(found.discoveries[index(&model, names::RECONNECTED_IN_TIME)].is_some());
}
