//! Same seed, same trace, byte for byte; another seed, another trace.

use std::time::Duration;

use heartbeat_core::{Config, Hint, Instant};
use heartbeat_model::render::{ascii, mermaid, Summary};
use heartbeat_model::sim::{Fault, Latency, Network, Setup, TraceMode, World};

fn messy_world(seed: u64) -> String {
    let mut setup = Setup::new(Config::default());
    setup.seed = seed;
    setup.clients = 3;
    setup.trace = TraceMode::All;
    setup.network = Network {
        latency: Latency::LongTail {
            typical: Duration::from_millis(80),
            max: Duration::from_secs(2),
        },
        loss_ppm: 20_000,
        duplicate_ppm: 10_000,
        reorder: true,
    };
    setup.server_delay = Latency::Uniform {
        min: Duration::ZERO,
        max: Duration::from_millis(300),
    };
    setup.timer_jitter = Duration::from_millis(500);
    setup.start_spread = Duration::from_secs(3);
    let mut world = World::new(setup).expect("valid config");
    world.schedule(
        Instant::from_secs(40),
        Fault::Partition(Duration::from_secs(30)),
    );
    world.schedule(
        Instant::from_secs(120),
        Fault::ServerFrozen(Duration::from_secs(20)),
    );
    world.schedule(Instant::from_secs(200), Fault::ServerCrash);
    world.schedule(Instant::from_secs(203), Fault::ServerRestart);
    world.schedule(
        Instant::from_secs(250),
        Fault::Hint {
            client: 1,
            hint: Hint::Visible,
        },
    );
    world.run_until(Instant::from_secs(400));
    let t = world.into_trace();
    format!(
        "{}\n{}\n{}",
        ascii(&t),
        mermaid(&t),
        Summary::from_trace(&t)
    )
}

#[test]
fn same_seed_gives_a_byte_identical_trace() {
    let a = messy_world(42);
    let b = messy_world(42);
    assert!(
        a.len() > 10_000,
        "the world should be busy: {} bytes",
        a.len()
    );
    assert!(a == b, "two runs with seed 42 differ");
}

#[test]
fn another_seed_gives_another_trace() {
    assert_ne!(messy_world(42), messy_world(43));
}
