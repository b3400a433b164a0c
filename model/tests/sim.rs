//! World mechanics on the real core: partitions, crashes, duplicates.

use std::time::Duration;

use heartbeat_core::{CloseReason, Config, Instant, ReconnectReason};
use heartbeat_model::render::Summary;
use heartbeat_model::sim::{Fault, Setup, World};

fn world() -> World {
    World::new(Setup::new(Config::default())).expect("default config is valid")
}

#[test]
fn a_long_partition_reconnects_and_the_server_idles_out_the_old_connection() {
    let mut w = world();
    w.schedule(
        Instant::from_secs(20),
        Fault::Partition(Duration::from_secs(90)),
    );
    w.run_until(Instant::from_secs(240));
    let s = Summary::from_trace(w.trace());
    assert_eq!(
        s.reconnects.first().map(|r| r.2),
        Some(ReconnectReason::MissedPongs { missed: 4 }),
        "{s}"
    );
    assert_eq!(
        s.server_closes.first().map(|c| c.2),
        Some(CloseReason::IdleTimeout),
        "{s}"
    );
    // Connected again after the partition.
    assert!(w
        .client(0)
        .is_some_and(|c| c.status() == heartbeat_core::Status::Healthy));
}

#[test]
fn a_short_partition_is_only_slow() {
    let mut w = world();
    w.schedule(
        Instant::from_secs(20),
        Fault::Partition(Duration::from_secs(30)),
    );
    w.run_until(Instant::from_secs(180));
    let s = Summary::from_trace(w.trace());
    assert!(s.reconnects.is_empty(), "{s}");
    assert!(s.server_closes.is_empty(), "{s}");
    assert!(s.lost > 0, "{s}");
}

#[test]
fn a_server_crash_resets_every_client_and_they_come_back() {
    let mut setup = Setup::new(Config::default());
    setup.clients = 50;
    setup.start_spread = Duration::from_secs(5);
    let mut w = World::new(setup).unwrap();
    w.schedule(Instant::from_secs(30), Fault::ServerCrash);
    w.schedule(Instant::from_secs(33), Fault::ServerRestart);
    w.run_until(Instant::from_secs(120));
    let s = w.stats();
    assert_eq!(
        s.reconnects[1], 50,
        "each client's connection was reset once: {s}"
    );
    assert!(s.accepts >= 100, "{s}");
    assert!((0..50).all(|c| w
        .client(c)
        .is_some_and(|c| c.status() == heartbeat_core::Status::Healthy)));
}

#[test]
fn duplicated_messages_do_not_break_a_healthy_connection() {
    let mut setup = Setup::new(Config::default());
    setup.network.duplicate_ppm = 500_000;
    let mut w = World::new(setup).unwrap();
    w.run_until(Instant::from_secs(3600));
    let s = w.stats();
    assert_eq!(
        (s.misses, s.total_reconnects(), s.total_server_closes()),
        (0, 0, 0),
        "{s}"
    );
}
