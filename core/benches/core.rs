//! Per-event cost of the state machines, and a sweep of a million servers through an hour.
//!
//! Run: `cargo bench -p heartbeat-core --bench core`. Figures go to docs/performance.md.

use std::time::Duration;

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use heartbeat_core::{Client, ClientConfig, Instant, Message, Server, ServerConfig};

fn main() {
    divan::main();
}

/// One healthy client round: the ping timer fires, the ping goes out, the pong comes back.
/// Two inputs (`handle_timeout`, `handle_message`) per iteration, outputs drained.
#[divan::bench]
fn client_ping_pong_round(bencher: Bencher) {
    let config = ClientConfig::default();
    let mut client = Client::new(&config, Instant::ZERO, 1).unwrap();
    while client.poll_event().is_some() {}
    client.handle_connected(Instant::ZERO);
    while client.poll_transmit().is_some() {}
    while client.poll_event().is_some() {}
    bencher.counter(ItemsCount::new(2usize)).bench_local(|| {
        let now = client.poll_timeout().unwrap();
        client.handle_timeout(now);
        let mut seq = 0;
        while let Some(m) = client.poll_transmit() {
            seq = m.seq();
        }
        client.handle_message(
            now.saturating_add(Duration::from_millis(20)),
            Message::Pong { seq },
        );
        while let Some(e) = client.poll_event() {
            black_box(e);
        }
        black_box(client.poll_timeout())
    });
}

/// One server input: a client ping, answered, outputs drained.
#[divan::bench]
fn server_ping(bencher: Bencher) {
    let config = ServerConfig::default();
    let mut server = Server::new(&config, Instant::ZERO).unwrap();
    let mut now = Instant::ZERO;
    let mut seq = 0;
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        now = now.saturating_add(Duration::from_secs(15));
        seq += 1;
        server.handle_message(now, Message::Ping { seq });
        while let Some(m) = server.poll_transmit() {
            black_box(m);
        }
        while let Some(e) = server.poll_event() {
            black_box(e);
        }
        black_box(server.poll_timeout())
    });
}

const SERVERS: usize = 1_000_000;

/// A million connections through one simulated hour: every 5 s the host sweeps all of them,
/// delivering each client's ping when due (every 15 s, clients spread over the interval) and
/// firing each server's timer when due (its own ping every 25 s). Counts `handle_*` calls.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn million_servers_one_hour(bencher: Bencher) {
    let config = ServerConfig::default();
    let events = sweep(&config, &mut fresh(&config));
    bencher
        .counter(ItemsCount::new(events))
        .with_inputs(|| fresh(&config))
        .bench_local_values(|mut servers| black_box(sweep(&config, &mut servers)));
}

fn fresh(config: &ServerConfig) -> Vec<Server> {
    (0..SERVERS)
        .map(|_| Server::new(config, Instant::ZERO).unwrap())
        .collect()
}

fn sweep(_config: &ServerConfig, servers: &mut [Server]) -> usize {
    let mut events = 0;
    let step = Duration::from_secs(5);
    let mut now = Instant::ZERO;
    for tick in 1..=720u64 {
        now = now.saturating_add(step);
        for (i, s) in servers.iter_mut().enumerate() {
            // Client i pings in the tick (i mod 3) of every three.
            if (tick + i as u64) % 3 == 0 {
                s.handle_message(now, Message::Ping { seq: tick });
                events += 1;
            }
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
                events += 1;
            }
            while let Some(m) = s.poll_transmit() {
                black_box(m);
            }
            while s.poll_event().is_some() {}
        }
    }
    events
}
