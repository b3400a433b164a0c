//! The story's "MANUAL: run 1-hour stability test", automated and made 24 hours: default
//! config, long-tail latency, periodic server load spikes and late timers, all within the
//! network assumptions (see `scenarios::stability_world`). Nothing may reconnect or be closed,
//! and no pong may be missed (the story's AC6).

use std::time::Duration;

use heartbeat_core::{Config, Instant};
use heartbeat_model::scenarios::stability_world;

#[test]
fn twenty_four_hours_within_the_assumptions_never_reconnect() {
    let config = Config::default();
    let n = config.network;
    let day = Duration::from_secs(24 * 3600);
    let clients = 32;
    let mut world = stability_world(&config, 2024, clients, day).expect("default config is valid");
    assert!(world.setup().network.latency.max() <= n.max_latency);
    assert!(world.setup().timer_jitter <= n.max_timer_lateness);
    world.run_until(Instant::ZERO.saturating_add(day));
    let s = world.stats();
    println!("24h x {clients} clients, default config, within the assumptions:\n{s}");
    assert_eq!(s.total_reconnects(), 0, "reconnects: {:?}", s.reconnects);
    assert_eq!(
        s.total_server_closes(),
        0,
        "server closes: {:?}",
        s.server_closes
    );
    assert_eq!(s.misses, 0, "missed pongs under the assumptions");
    assert_eq!(s.slow, 0, "slow windows under the assumptions");
    // The world really ran all day: each ping leaves up to max_timer_lateness late and the
    // next is timed from it.
    let slowest = config.client.ping_interval + n.max_timer_lateness;
    let expected = u64::from(clients) * day.as_secs() / slowest.as_secs();
    assert!(s.client_pings >= expected, "{} pings", s.client_pings);
    // And the spikes really delayed pongs beyond a plain round trip.
    assert!(
        s.rtt_percentile(100) > Some(n.max_latency * 2),
        "no pong was delayed by a spike"
    );
}
