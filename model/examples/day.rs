//! Runs the stability world (`scenarios::stability_world`) for HOURS simulated hours with
//! CLIENTS clients and prints its counters and the wall time:
//! `cargo run --release -p heartbeat-model --example day -- [CLIENTS] [HOURS]` (default 1000 24).

use std::time::Duration;

use heartbeat_core::{Config, Instant};
use heartbeat_model::scenarios::stability_world;

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let hours: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(24);
    let run = Duration::from_secs(hours.saturating_mul(3600));
    let mut world = match stability_world(&Config::default(), 7, clients, run) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let start = std::time::Instant::now();
    world.run_until(Instant::ZERO.saturating_add(run));
    let wall = start.elapsed();
    let s = world.stats();
    println!(
        "{hours}h x {clients} clients: {} events in {:.3}s wall = {:.2} M events/s\n{s}",
        s.events,
        wall.as_secs_f64(),
        s.events as f64 / wall.as_secs_f64().max(1e-9) / 1e6,
    );
}
