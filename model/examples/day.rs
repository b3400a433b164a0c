//! Runs 24 simulated hours with N clients (default 1,000) and prints the events and wall time:
//! `cargo run --release -p heartbeat-model --example day -- [CLIENTS] [HOURS]`.

use std::time::Duration;

use heartbeat_core::{Config, Instant};
use heartbeat_model::sim::{Fault, Latency, Setup, TraceMode, World};

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let hours: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(24);
    let config = Config::default();
    let mut setup = Setup::new(config);
    setup.seed = 7;
    setup.clients = clients;
    setup.trace = TraceMode::Off;
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
    let Ok(mut world) = World::new(setup) else {
        return;
    };
    for t in (300..hours * 3600).step_by(420) {
        world.schedule(
            Instant::from_secs(t),
            Fault::ServerBusy(Duration::from_millis(4500)),
        );
    }
    let start = std::time::Instant::now();
    world.run_until(Instant::from_secs(hours * 3600));
    let wall = start.elapsed();
    let s = world.stats();
    println!(
        "{hours}h x {clients} clients: {} events in {:.3}s = {:.2} M events/s; reconnects {:?}, server closes {}, misses {}",
        s.events,
        wall.as_secs_f64(),
        s.events as f64 / wall.as_secs_f64() / 1e6,
        s.reconnects,
        s.total_server_closes(),
        s.misses
    );
}
