//! docs/timing-diagrams.md and the diagram snapshots are what the code does.
//!
//! Regenerate both with:
//! `UPDATE_DIAGRAMS=1 INSTA_UPDATE=always cargo test -p heartbeat-model --test diagrams`

use std::path::PathBuf;
use std::sync::OnceLock;

use heartbeat_model::docs::{doc_traces, render_doc, REGENERATE};
use heartbeat_model::render::{ascii, mermaid};
use heartbeat_model::scenarios::ScenarioInfo;
use heartbeat_model::trace::Trace;

mod common;
use common::pinned;

fn traces() -> &'static [(&'static ScenarioInfo, Trace)] {
    static T: OnceLock<Vec<(&'static ScenarioInfo, Trace)>> = OnceLock::new();
    T.get_or_init(doc_traces)
}

fn trace(name: &str) -> &'static Trace {
    traces()
        .iter()
        .find(|(info, _)| info.name == name)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no scenario named {name}"))
}

#[test]
fn timing_diagrams_doc_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/timing-diagrams.md");
    let fresh = render_doc(traces());
    if std::env::var_os("UPDATE_DIAGRAMS").is_some() {
        std::fs::write(&path, &fresh).expect("write docs/timing-diagrams.md");
        return;
    }
    if !pinned() {
        return; // rendered above: a panic still counts
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "length".to_owned(), |i| format!("line {}", i + 1));
        panic!(
            "docs/timing-diagrams.md is out of date with the code (first difference at {first}).\n\
             The core's behaviour changed, or a scenario did. Review, then regenerate with:\n\n    {REGENERATE}\n"
        );
    }
}

macro_rules! diagram_snapshots {
    ($($test:ident => $name:literal,)*) => {$(
        #[test]
        fn $test() {
            let t = trace($name);
            if pinned() {
                insta::assert_snapshot!(concat!($name, "-ascii"), ascii(t));
                insta::assert_snapshot!(concat!($name, "-mermaid"), mermaid(t));
            } else {
                // The renderers still run: a panic still counts.
                let _ = (ascii(t), mermaid(t));
            }
        }
    )*};
}

diagram_snapshots! {
    healthy => "healthy",
    server_busy_40s => "server-busy-40s",
    server_pongs_lag_40s => "server-pongs-lag-40s",
    server_dead => "server-dead",
    story_original => "story-original",
    story_fixed_config => "story-fixed-config",
    story_fixed => "story-fixed",
    tab_hidden_10m => "tab-hidden-10m",
    laptop_asleep_2h => "laptop-asleep-2h",
    ping_flood => "ping-flood",
    server_restart_herd => "server-restart-herd",
}

#[test]
fn every_scenario_has_a_snapshot_test() {
    // Keeps the list above in step with SCENARIOS.
    let src = include_str!("diagrams.rs");
    for name in heartbeat_model::scenarios::names() {
        assert!(
            src.contains(&format!("=> \"{name}\"")),
            "add {name} to diagram_snapshots! in model/tests/diagrams.rs"
        );
    }
}
