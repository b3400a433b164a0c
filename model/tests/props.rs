//! Any world, any fault schedule: the simulator never panics, stops on time, and its renderings
//! never panic either.

use std::time::Duration;

use heartbeat_core::{Config, Hint, Instant};
use heartbeat_model::render::{ascii, mermaid, Summary};
use heartbeat_model::sim::{Fault, Latency, Network, Setup, Stop, TraceMode, World};
use proptest::prelude::*;

fn latency() -> impl Strategy<Value = Latency> {
    prop_oneof![
        (0u64..3_000).prop_map(|ms| Latency::Fixed(Duration::from_millis(ms))),
        (0u64..500, 0u64..5_000).prop_map(|(a, b)| Latency::Uniform {
            min: Duration::from_millis(a),
            max: Duration::from_millis(b),
        }),
        (0u64..500, 0u64..10_000).prop_map(|(a, b)| Latency::LongTail {
            typical: Duration::from_millis(a),
            max: Duration::from_millis(b),
        }),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    let d = (0u64..200_000).prop_map(Duration::from_millis);
    prop_oneof![
        d.clone().prop_map(Fault::ServerBusy),
        d.clone().prop_map(Fault::ServerFrozen),
        Just(Fault::ServerCrash),
        Just(Fault::ServerHostDown),
        Just(Fault::ServerRestart),
        d.clone().prop_map(Fault::Partition),
        (0u32..4, 1u64..120_000, d.clone()).prop_map(|(client, p, duration)| {
            Fault::ClientThrottled {
                client,
                period: Duration::from_millis(p),
                duration,
            }
        }),
        (0u32..4, d).prop_map(|(client, duration)| Fault::ClientAsleep { client, duration }),
        (0u32..4, 0u8..4).prop_map(|(client, h)| Fault::Hint {
            client,
            hint: [Hint::Hidden, Hint::Visible, Hint::Offline, Hint::Online][h as usize],
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_world_runs_to_its_end(
        seed: u64,
        clients in 1u32..4,
        lat in latency(),
        server_delay in latency(),
        loss_ppm in 0u32..300_000,
        duplicate_ppm in 0u32..300_000,
        reorder: bool,
        jitter_ms in 0u64..3_000,
        same_client_seed: bool,
        faults in proptest::collection::vec((0u64..600, fault()), 0..12),
    ) {
        let mut setup = Setup::new(Config::default());
        setup.seed = seed;
        setup.clients = clients;
        setup.network = Network { latency: lat, loss_ppm, duplicate_ppm, reorder };
        setup.server_delay = server_delay;
        setup.timer_jitter = Duration::from_millis(jitter_ms);
        setup.same_client_seed = same_client_seed;
        setup.trace = TraceMode::All;
        let mut world = World::new(setup).unwrap();
        for (at, f) in faults {
            world.schedule(Instant::from_secs(at), f);
        }
        let end = Instant::from_secs(600);
        let stop = world.run_until(end);
        prop_assert!(matches!(stop, Stop::Time | Stop::Idle));
        prop_assert_eq!(world.now(), end);
        let t = world.trace();
        prop_assert!(t.iter().all(|e| e.at <= end));
        let _ = (ascii(t), mermaid(t), Summary::from_trace(t).to_string());
        let s = world.stats();
        prop_assert!(s.accepts <= s.connects);
    }

    #[test]
    fn the_event_budget_bounds_a_run(budget in 0u64..5_000) {
        let mut setup = Setup::new(Config::default());
        setup.clients = 3;
        setup.max_events = budget;
        let mut world = World::new(setup).unwrap();
        world.run_until(Instant::from_secs(24 * 3600));
        prop_assert!(world.stats().events <= budget);
    }
}
