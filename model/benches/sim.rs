//! Simulator throughput: simulated events per second, and the wall time of a simulated day
//! with 1,000 clients. Run with `cargo bench -p heartbeat-model --bench sim`.
//!
//! Figures are recorded in docs/performance.md ("Simulator").

use std::time::Duration;

use divan::counter::ItemsCount;
use divan::Bencher;
use heartbeat_core::{Config, Instant};
use heartbeat_model::sim::{Fault, Latency, Setup, TraceMode, World};

fn main() {
    divan::main();
}

/// 1,000 clients, default config, long-tail latency within the assumptions, a load spike every
/// 7 minutes: the stability test's world, bigger.
fn world(clients: u32, trace: TraceMode, hours: u64) -> World {
    let config = Config::default();
    let mut setup = Setup::new(config);
    setup.seed = 7;
    setup.clients = clients;
    setup.trace = trace;
    setup.network.latency = Latency::LongTail {
        typical: Duration::from_millis(60),
        max: config.network.max_latency,
    };
    setup.server_delay = Latency::Uniform {
        min: Duration::ZERO,
        max: Duration::from_millis(500),
    };
    setup.timer_jitter = config.network.max_timer_lateness;
    setup.start_spread = Duration::from_secs(15);
    let mut w = World::new(setup).expect("valid config");
    for t in (300..hours * 3600).step_by(420) {
        w.schedule(
            Instant::from_secs(t),
            Fault::ServerBusy(Duration::from_millis(4500)),
        );
    }
    w
}

fn events(clients: u32, trace: TraceMode, hours: u64) -> u64 {
    let mut w = world(clients, trace, hours);
    w.run_until(Instant::from_secs(hours * 3600));
    w.stats().events
}

/// Simulated events per second (the throughput column), 1,000 clients for one simulated hour,
/// no trace.
#[divan::bench(sample_count = 10)]
fn events_1000_clients_1h(bencher: Bencher) {
    let n = events(1000, TraceMode::Off, 1);
    bencher
        .counter(ItemsCount::new(n))
        .with_inputs(|| world(1000, TraceMode::Off, 1))
        .bench_local_values(|mut w| {
            w.run_until(Instant::from_secs(3600));
            w
        });
}

/// The same with client 0 traced: the price of recording one client.
#[divan::bench(sample_count = 10)]
fn events_1000_clients_1h_trace_one(bencher: Bencher) {
    let n = events(1000, TraceMode::Client(0), 1);
    bencher
        .counter(ItemsCount::new(n))
        .with_inputs(|| world(1000, TraceMode::Client(0), 1))
        .bench_local_values(|mut w| {
            w.run_until(Instant::from_secs(3600));
            w
        });
}

/// Wall time of 24 simulated hours with 1,000 clients.
#[divan::bench(sample_count = 3)]
fn day_1000_clients(bencher: Bencher) {
    let n = events(1000, TraceMode::Off, 24);
    bencher
        .counter(ItemsCount::new(n))
        .with_inputs(|| world(1000, TraceMode::Off, 24))
        .bench_local_values(|mut w| {
            w.run_until(Instant::from_secs(24 * 3600));
            w
        });
}
