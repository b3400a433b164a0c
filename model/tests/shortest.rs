//! An independent breadth-first search over the same model, with whole states in a `HashSet`
//! (no fingerprints, no levels, no parent pointers): the check's state counts and the lengths of
//! its counterexamples must match it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::time::Duration;

use heartbeat_core::Config;
use heartbeat_model::check::{check, CheckOptions, HeartbeatModel, Status};
use heartbeat_model::cli::load_config;
use heartbeat_model::explore::Limits;
use stateright::{Expectation, Model};

/// Unique states, and per property the least depth of a state that breaks it (`always`) or
/// satisfies it (`sometimes`).
fn naive_bfs(model: &HeartbeatModel) -> (usize, HashMap<&'static str, usize>) {
    let properties = model.properties();
    let mut seen = HashSet::new();
    let mut queue = VecDeque::new();
    let mut first = HashMap::new();
    for s in model.init_states() {
        if seen.insert(s.clone()) {
            queue.push_back((s, 0usize));
        }
    }
    while let Some((state, depth)) = queue.pop_front() {
        for p in &properties {
            let holds = (p.condition)(model, &state);
            let hit = match p.expectation {
                Expectation::Always => !holds,
                _ => holds,
            };
            if hit {
                first.entry(p.name).or_insert(depth);
            }
        }
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        for a in actions {
            if let Some(next) = model.next_state(&state, a) {
                if seen.insert(next.clone()) {
                    queue.push_back((next, depth + 1));
                }
            }
        }
    }
    (seen.len(), first)
}

fn config_file(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name);
    load_config(Some(&path), std::iter::empty::<(String, String)>())
        .unwrap()
        .0
}

fn exact_full() -> CheckOptions {
    CheckOptions {
        stop_at_first_failure: false,
        exact: true,
        // The memory limit counts the process's resident memory, and the independent searches
        // of the tests running beside this one hold gigabytes of whole states.
        limits: Limits {
            max_bytes: usize::MAX,
            ..Limits::default()
        },
        ..CheckOptions::default()
    }
}

fn compare(config: &Config, combined_faults: bool) {
    let mut model = HeartbeatModel::new(*config);
    model.combined_faults = combined_faults;
    let (states, first) = naive_bfs(&model);
    let r = check(
        config,
        CheckOptions {
            combined_faults,
            ..exact_full()
        },
    )
    .unwrap();
    assert_eq!(r.states(), states, "unique states");
    for p in &r.properties {
        if p.name == heartbeat_model::check::names::TIME_ADVANCES {
            continue;
        }
        let want = first.get(p.name).copied();
        assert_eq!(p.path_len, want, "{}: {:?}", p.name, p.status);
        let found = matches!(p.status, Status::Fails | Status::Reached);
        assert_eq!(found, want.is_some(), "{}", p.name);
    }
}

#[test]
fn the_default_config_matches_an_independent_search() {
    compare(&Config::default(), false);
}

#[test]
fn combined_faults_match_an_independent_search() {
    compare(&Config::default(), true);
}

#[test]
fn failing_configs_get_counterexamples_of_least_length() {
    let mut connect = Config::default();
    connect.client.connect_timeout = Duration::from_secs(80);
    for config in [
        connect,
        config_file("story-fixed.yaml"),
        config_file("tolerance-too-short.toml"),
    ] {
        compare(&config, false);
    }
}
