//! One test per client transition, driven through the public sans-IO API.

use core::time::Duration;
use heartbeat_core::{
    Client, ClientConfig, Event, Hint, Instant, Message, ReconnectReason, Status,
};

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// The story's shape, with numbers that are easy to follow: ping 30s, timeout 30s, slow at 2,
/// reconnect at 3.
fn story() -> ClientConfig {
    ClientConfig {
        ping_interval: Duration::from_secs(30),
        pong_timeout: Duration::from_secs(30),
        slow_threshold: 2,
        max_missed_pongs: 3,
        ..ClientConfig::default()
    }
}

fn events(c: &mut Client) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn transmits(c: &mut Client) -> Vec<Message> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

/// A client connected at t=0 with its first ping (seq 0) drained.
fn connected(config: &ClientConfig) -> Client {
    let mut c = Client::new(config, Instant::ZERO, 7).unwrap();
    assert_eq!(events(&mut c), [Event::Connect { attempt: 0 }]);
    assert_eq!(c.status(), Status::Connecting);
    c.handle_connected(Instant::ZERO);
    assert_eq!(transmits(&mut c), [Message::Ping { seq: 0 }]);
    assert_eq!(events(&mut c), [Event::Connected]);
    c
}

#[test]
fn connect_sends_a_ping_at_once_and_schedules_the_deadline() {
    let c = connected(&story());
    assert_eq!(c.status(), Status::Healthy);
    assert_eq!(c.poll_timeout(), Some(secs(30)));
}

#[test]
fn matching_pong_gives_rtt_and_clears_the_deadline() {
    let mut c = connected(&story());
    c.handle_message(Instant::from_millis(120), Message::Pong { seq: 0 });
    assert_eq!(events(&mut c), [Event::Rtt(Duration::from_millis(120))]);
    c.handle_timeout(secs(30));
    assert_eq!(transmits(&mut c), [Message::Ping { seq: 1 }]);
    assert_eq!(events(&mut c), []);
    assert_eq!(c.missed_pongs(), 0);
}

#[test]
fn stale_pong_is_evidence_but_no_rtt() {
    let mut c = connected(&story());
    c.handle_message(secs(1), Message::Pong { seq: 99 });
    assert_eq!(events(&mut c), []);
    c.handle_timeout(secs(30));
    assert_eq!(c.missed_pongs(), 0);
}

#[test]
fn server_ping_is_answered_from_the_same_call_and_counts_as_evidence() {
    let mut c = connected(&story());
    c.handle_message(secs(5), Message::Ping { seq: 41 });
    assert_eq!(transmits(&mut c), [Message::Pong { seq: 41 }]);
    c.handle_timeout(secs(30));
    assert_eq!(c.missed_pongs(), 0);
}

#[test]
fn application_data_counts_as_evidence() {
    let mut c = connected(&story());
    c.handle_read(secs(29));
    c.handle_timeout(secs(30));
    assert_eq!(c.missed_pongs(), 0);
}

#[test]
fn misses_warn_slow_before_reconnect() {
    let mut c = connected(&story());
    c.handle_timeout(secs(30));
    assert_eq!(
        events(&mut c),
        [Event::PongMissed {
            missed: 1,
            max_missed_pongs: 3
        }]
    );
    assert_eq!(transmits(&mut c), [Message::Ping { seq: 1 }]);
    assert_eq!(c.status(), Status::Healthy);
    c.handle_timeout(secs(60));
    assert_eq!(
        events(&mut c),
        [
            Event::PongMissed {
                missed: 2,
                max_missed_pongs: 3
            },
            Event::Slow { missed: 2 }
        ]
    );
    assert_eq!(c.status(), Status::Slow);
    let _ = transmits(&mut c);
    c.handle_timeout(secs(90));
    let ev = events(&mut c);
    assert_eq!(
        ev[0],
        Event::PongMissed {
            missed: 3,
            max_missed_pongs: 3
        }
    );
    assert!(
        matches!(
            ev[1],
            Event::Reconnect {
                reason: ReconnectReason::MissedPongs { missed: 3 },
                ..
            }
        ),
        "{ev:?}"
    );
    assert_eq!(c.status(), Status::Reconnecting);
    assert_eq!(transmits(&mut c), [], "no ping on a connection given up");
}

#[test]
fn evidence_while_slow_recovers() {
    let mut c = connected(&story());
    c.handle_timeout(secs(30));
    c.handle_timeout(secs(60));
    let _ = events(&mut c);
    c.handle_read(secs(61));
    assert_eq!(events(&mut c), [Event::Recovered { missed: 2 }]);
    assert_eq!(c.status(), Status::Healthy);
    assert_eq!(c.missed_pongs(), 0);
}

#[test]
fn backoff_is_capped_exponential_full_jitter_and_reconnects() {
    let config = ClientConfig {
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(4),
        ..story()
    };
    let mut c = connected(&config);
    let mut now = secs(0);
    let mut caps = Vec::new();
    for attempt in 0..5 {
        c.handle_disconnected(now);
        let Some(Event::Reconnect { backoff, .. }) = events(&mut c).into_iter().next() else {
            panic!("no reconnect")
        };
        let cap = Duration::from_secs(1 << attempt.min(2));
        assert!(backoff <= cap, "attempt {attempt}: {backoff:?} > {cap:?}");
        caps.push(backoff);
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        assert_eq!(
            events(&mut c),
            [Event::Connect {
                attempt: attempt + 1
            }]
        );
        assert_eq!(c.status(), Status::Reconnecting);
    }
    // Full jitter: the delays are not all equal to the cap.
    assert!(
        caps.iter()
            .any(|d| d.as_secs() < 4 && d.subsec_nanos() != 0),
        "{caps:?}"
    );
}

#[test]
fn same_seed_same_backoff_different_seed_different_backoff() {
    let run = |seed| {
        let mut c = Client::new(&story(), Instant::ZERO, seed).unwrap();
        c.handle_disconnected(Instant::ZERO);
        c.poll_timeout()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn attempt_resets_on_first_sign_of_life_not_on_connect() {
    let mut c = connected(&story());
    c.handle_disconnected(secs(1));
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    assert_eq!(events(&mut c).last(), Some(&Event::Connect { attempt: 1 }));
    c.handle_connected(t);
    c.handle_disconnected(t);
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    assert_eq!(
        events(&mut c).last(),
        Some(&Event::Connect { attempt: 2 }),
        "connect alone is no sign of life"
    );
    c.handle_connected(t);
    c.handle_read(t);
    c.handle_disconnected(t);
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    assert_eq!(events(&mut c).last(), Some(&Event::Connect { attempt: 1 }));
}

#[test]
fn connect_timeout_gives_up_the_attempt() {
    let mut c = Client::new(&story(), Instant::ZERO, 1).unwrap();
    let _ = events(&mut c);
    assert_eq!(c.poll_timeout(), Some(secs(15)));
    c.handle_timeout(secs(15));
    assert!(matches!(
        events(&mut c)[..],
        [Event::Reconnect {
            reason: ReconnectReason::ConnectTimeout,
            ..
        }]
    ));
}

#[test]
fn connect_failure_and_peer_close_have_their_reasons() {
    let mut c = Client::new(&story(), Instant::ZERO, 1).unwrap();
    let _ = events(&mut c);
    c.handle_disconnected(secs(1));
    assert!(matches!(
        events(&mut c)[..],
        [Event::Reconnect {
            reason: ReconnectReason::ConnectFailed,
            ..
        }]
    ));
    let mut c = connected(&story());
    c.handle_disconnected(secs(1));
    assert!(matches!(
        events(&mut c)[..],
        [Event::Reconnect {
            reason: ReconnectReason::ConnectionClosed,
            ..
        }]
    ));
}

#[test]
fn a_late_deadline_is_a_local_stall_not_a_miss() {
    // Laptop asleep for two hours: the deadline at 30s is handled at 2h.
    let mut c = connected(&story());
    let wake = secs(7200);
    c.handle_timeout(wake);
    assert_eq!(
        events(&mut c),
        [Event::Stalled {
            late_by: Duration::from_secs(7170)
        }]
    );
    assert_eq!(transmits(&mut c), [Message::Ping { seq: 1 }], "one probe");
    assert_eq!(c.missed_pongs(), 0);
    assert_eq!(c.status(), Status::Healthy);
    // The probe's own deadline counts, even if handled late again.
    c.handle_timeout(secs(7200 + 300));
    assert_eq!(
        events(&mut c),
        [Event::PongMissed {
            missed: 1,
            max_missed_pongs: 3
        }]
    );
}

#[test]
fn a_probe_answered_in_time_decides_healthy() {
    let mut c = connected(&story());
    c.handle_timeout(secs(7200));
    let _ = (events(&mut c), transmits(&mut c));
    c.handle_message(
        secs(7200).saturating_add(Duration::from_millis(40)),
        Message::Pong { seq: 1 },
    );
    assert_eq!(events(&mut c), [Event::Rtt(Duration::from_millis(40))]);
    c.handle_timeout(secs(7230));
    assert_eq!(c.missed_pongs(), 0);
}

#[test]
fn lateness_within_the_stall_threshold_is_still_a_miss() {
    let mut c = connected(&story());
    c.handle_timeout(secs(35)); // 5s late == stall_threshold: not a stall
    assert_eq!(
        events(&mut c),
        [Event::PongMissed {
            missed: 1,
            max_missed_pongs: 3
        }]
    );
}

#[test]
fn hints_never_reconnect_and_visible_probes_once() {
    let mut c = connected(&story());
    c.handle_message(secs(1), Message::Pong { seq: 0 });
    let _ = events(&mut c);
    c.handle_hint(secs(2), Hint::Hidden);
    c.handle_hint(secs(3), Hint::Offline);
    assert_eq!((events(&mut c), transmits(&mut c)), (vec![], vec![]));
    c.handle_hint(secs(4), Hint::Visible);
    assert_eq!(
        transmits(&mut c),
        [],
        "the last ping was answered 3 s ago: fresh enough"
    );
    // Hidden for a while: the timer at 30 s did not run (a throttled tab).
    c.handle_hint(secs(45), Hint::Visible);
    assert_eq!(transmits(&mut c), [Message::Ping { seq: 1 }]);
    c.handle_hint(secs(46), Hint::Online);
    assert_eq!(
        transmits(&mut c),
        [],
        "no second probe while one is in flight"
    );
    assert_eq!(c.status(), Status::Healthy);
    assert_eq!(
        c.poll_timeout(),
        Some(secs(75)),
        "the probe restarts the ping schedule"
    );
}

#[test]
fn a_flapping_tab_probes_at_most_once_per_pong_timeout() {
    let mut c = connected(&story());
    let mut probes = 0;
    // Hidden and visible every 2 s for ten minutes; pongs come back at once.
    for i in 1..300 {
        let at = Instant::from_secs(2 * i);
        c.handle_hint(
            at,
            if i % 2 == 0 {
                Hint::Visible
            } else {
                Hint::Hidden
            },
        );
        c.handle_timeout(at);
        for m in transmits(&mut c) {
            if let Message::Ping { seq } = m {
                probes += 1;
                c.handle_message(at, Message::Pong { seq });
            }
        }
        let _ = events(&mut c);
    }
    // One ping per 30 s pong timeout at most: 20 in ten minutes.
    assert!(probes <= 20, "{probes} pings");
    assert_eq!(c.status(), Status::Healthy);
}

#[test]
fn time_never_moves_backwards() {
    let mut c = connected(&story());
    c.handle_timeout(secs(30));
    let before = c.clone();
    c.handle_timeout(secs(10));
    assert_eq!(c, before, "an older now is a spare call");
    c.handle_read(secs(5));
    assert_eq!(c.now(), secs(30));
}

#[test]
fn close_is_terminal() {
    let mut c = connected(&story());
    c.close();
    assert_eq!(c.status(), Status::Closed);
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(secs(1000));
    c.handle_message(secs(1001), Message::Ping { seq: 1 });
    assert_eq!((events(&mut c), transmits(&mut c)), (vec![], vec![]));
}

#[test]
fn messages_outside_a_connection_are_ignored() {
    let mut c = Client::new(&story(), Instant::ZERO, 1).unwrap();
    let _ = events(&mut c);
    c.handle_message(secs(1), Message::Ping { seq: 3 });
    assert_eq!(transmits(&mut c), []);
}

#[test]
fn invalid_client_config_is_rejected_with_every_error() {
    let bad = ClientConfig {
        ping_interval: Duration::ZERO,
        slow_threshold: 0,
        ..story()
    };
    let err = Client::new(&bad, Instant::ZERO, 1).unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
    let bad = ClientConfig {
        pong_timeout: Duration::from_secs(31),
        slow_threshold: 3,
        ..story()
    };
    let err = Client::new(&bad, Instant::ZERO, 1).unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
}
