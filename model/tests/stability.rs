//! The story's "MANUAL: run 1-hour stability test", automated and made 24 hours: default
//! config, long-tail latency and periodic server load spikes, all within the network
//! assumptions. Nothing may reconnect or be closed, and no pong may be missed.

use std::time::Duration;

use heartbeat_core::{Config, Instant};
use heartbeat_model::render::fmt_dur;
use heartbeat_model::sim::{Fault, Latency, Setup, TraceMode, World};

#[test]
fn twenty_four_hours_within_the_assumptions_never_reconnect() {
    let config = Config::default();
    let n = config.network;
    let mut setup = Setup::new(config);
    setup.seed = 2024;
    setup.clients = 16;
    setup.trace = TraceMode::Off;
    setup.network.latency = Latency::LongTail {
        typical: Duration::from_millis(60),
        max: n.max_latency,
    };
    // Pong delay = normal handling + a load spike: never above max_server_delay in total.
    let spike = n
        .max_server_delay
        .saturating_sub(Duration::from_millis(500));
    setup.server_delay = Latency::Uniform {
        min: Duration::ZERO,
        max: n.max_server_delay.saturating_sub(spike),
    };
    setup.timer_jitter = n.max_timer_lateness;
    setup.start_spread = Duration::from_secs(10);
    assert!(setup.network.latency.max() <= n.max_latency);
    let mut world = World::new(setup).expect("default config is valid");
    let day = 24 * 3600;
    // A load spike every 7 minutes, all day.
    for t in (300..day).step_by(420) {
        world.schedule(Instant::from_secs(t), Fault::ServerBusy(spike));
    }
    world.run_until(Instant::from_secs(day));
    let s = world.stats();
    let p = |q| s.rtt_percentile(q).map(fmt_dur).unwrap_or_default();
    println!(
        "24h x {} clients: {} events, {} client pings, {} rtt samples: p50 {}, p90 {}, p99 {}, max {}; \
         {} slow windows, {} missed pongs, {} reconnects, {} server closes",
        world.setup().clients,
        s.events,
        s.client_pings,
        s.rtt_samples(),
        p(50),
        p(90),
        p(99),
        p(100),
        s.slow,
        s.misses,
        s.total_reconnects(),
        s.total_server_closes()
    );
    assert_eq!(s.total_reconnects(), 0, "reconnects: {:?}", s.reconnects);
    assert_eq!(
        s.total_server_closes(),
        0,
        "server closes: {:?}",
        s.server_closes
    );
    assert_eq!(s.misses, 0, "missed pongs under the assumptions");
    assert_eq!(s.slow, 0);
    // Sanity: the world really ran all day, and the spikes really delayed pongs.
    assert!(
        s.client_pings >= 4 * day / 15 - 8,
        "{} pings",
        s.client_pings
    );
    assert!(
        s.rtt_percentile(100) > Some(spike),
        "no pong was delayed by a spike"
    );
}
