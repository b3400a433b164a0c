//! Simulator throughput: simulated events per second, and the wall time of a simulated day
//! with 1,000 clients. Run with `cargo bench -p heartbeat-model --bench sim`.
//!
//! The world is the stability test's (`scenarios::stability_world`), bigger. Figures are
//! recorded in docs/performance.md ("Simulator").

use std::time::Duration;

use divan::counter::ItemsCount;
use divan::Bencher;
use heartbeat_core::{Config, Instant};
use heartbeat_model::scenarios::stability_world;
use heartbeat_model::sim::{TraceMode, World};

fn main() {
    divan::main();
}

fn world(clients: u32, hours: u64, trace: TraceMode) -> World {
    let mut w = stability_world(
        &Config::default(),
        7,
        clients,
        Duration::from_secs(hours * 3600),
    )
    .expect("valid config");
    w.set_trace_mode(trace);
    w
}

fn bench(bencher: Bencher, clients: u32, hours: u64, trace: TraceMode) {
    let end = Instant::from_secs(hours * 3600);
    let mut probe = world(clients, hours, trace);
    probe.run_until(end);
    bencher
        .counter(ItemsCount::new(probe.stats().events))
        .with_inputs(|| world(clients, hours, trace))
        .bench_local_values(|mut w| {
            w.run_until(end);
            w
        });
}

/// Simulated events per second: 1,000 clients for one simulated hour, no trace.
#[divan::bench(sample_count = 10)]
fn events_1000_clients_1h(bencher: Bencher) {
    bench(bencher, 1000, 1, TraceMode::Off);
}

/// The same with client 0 traced: the price of recording one client.
#[divan::bench(sample_count = 10)]
fn events_1000_clients_1h_trace_one(bencher: Bencher) {
    bench(bencher, 1000, 1, TraceMode::Client(0));
}

/// Wall time of 24 simulated hours with 1,000 clients.
#[divan::bench(sample_count = 3)]
fn day_1000_clients(bencher: Bencher) {
    bench(bencher, 1000, 24, TraceMode::Off);
}
