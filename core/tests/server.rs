//! One test per server transition.

use core::time::Duration;
use heartbeat_core::{CloseReason, Instant, Message, Server, ServerConfig, ServerEvent};

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

fn config() -> ServerConfig {
    ServerConfig {
        ping_interval: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(90),
        min_client_ping_interval: Duration::from_secs(5),
        max_ping_strikes: 2,
    }
}

fn events(s: &mut Server) -> Vec<ServerEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn transmits(s: &mut Server) -> Vec<Message> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

#[test]
fn answers_a_ping_from_the_call_that_takes_it() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_message(secs(1), Message::Ping { seq: 9 });
    assert_eq!(transmits(&mut s), [Message::Pong { seq: 9 }]);
}

#[test]
fn pings_on_schedule_and_measures_rtt() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    assert_eq!(s.poll_timeout(), Some(secs(30)));
    s.handle_timeout(secs(30));
    assert_eq!(transmits(&mut s), [Message::Ping { seq: 0 }]);
    s.handle_message(
        secs(30).saturating_add(Duration::from_millis(15)),
        Message::Pong { seq: 0 },
    );
    assert_eq!(
        events(&mut s),
        [ServerEvent::Rtt(Duration::from_millis(15))]
    );
    s.handle_message(secs(31), Message::Pong { seq: 0 });
    assert_eq!(
        events(&mut s),
        [],
        "a duplicate pong gives no second sample"
    );
    s.handle_message(secs(31), Message::Pong { seq: 77 });
    assert_eq!(events(&mut s), [], "an unknown seq is harmless");
    assert_eq!(s.poll_timeout(), Some(secs(60)));
}

#[test]
fn pong_first_then_own_ping() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_timeout(secs(30));
    s.handle_message(secs(30), Message::Ping { seq: 4 });
    assert_eq!(
        transmits(&mut s),
        [Message::Pong { seq: 4 }, Message::Ping { seq: 0 }]
    );
}

#[test]
fn closes_when_nothing_is_read_for_the_idle_timeout() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_read(secs(50));
    s.handle_timeout(secs(139));
    assert_eq!(events(&mut s), []);
    s.handle_timeout(secs(140));
    assert_eq!(
        events(&mut s),
        [ServerEvent::Close(CloseReason::IdleTimeout)]
    );
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
    s.handle_message(secs(141), Message::Ping { seq: 1 });
    assert_eq!(transmits(&mut s), [], "closed servers answer nothing");
}

/// Pings every 100 ms at time `start`, until the server closes; the events seen.
fn flood(s: &mut Server, start: Instant, max: u64) -> Vec<ServerEvent> {
    let mut seen = Vec::new();
    for i in 0..max {
        let at = start.saturating_add(Duration::from_millis(100 * i));
        s.handle_message(at, Message::Ping { seq: i });
        let sent = transmits(s);
        seen.extend(events(s));
        if s.is_closed() {
            assert_eq!(sent, [], "the closing ping is not answered");
            break;
        }
        assert_eq!(
            sent,
            [Message::Pong { seq: i }],
            "pings within the allowance are answered"
        );
    }
    seen
}

#[test]
fn a_ping_flood_closes_after_the_burst_and_the_allowed_strikes() {
    // 90 s idle / 5 s interval: a burst of 18 pings is allowed, then 2 strikes, then the close.
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    let seen = flood(&mut s, secs(10), 100);
    assert_eq!(
        seen,
        [
            ServerEvent::Strike { strikes: 1 },
            ServerEvent::Strike { strikes: 2 },
            ServerEvent::Close(CloseReason::TooManyPings),
            ServerEvent::Strike { strikes: 3 },
        ]
    );
    assert_eq!(CloseReason::TooManyPings.close_code(), 1008);
}

#[test]
fn a_stalled_server_reading_its_backlog_is_no_flood() {
    // The server process was frozen for three minutes; a live client's pings (every 15 s) were
    // buffered and are read back to back.
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_message(secs(1), Message::Ping { seq: 0 });
    for seq in 1..=12 {
        s.handle_message(secs(181), Message::Ping { seq });
        assert_eq!(transmits(&mut s), [Message::Pong { seq }]);
    }
    assert_eq!(events(&mut s), []);
    assert!(!s.is_closed());
}

#[test]
fn a_conforming_ping_clears_the_strikes() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    let seen = flood(&mut s, secs(10), 19);
    assert_eq!(seen, [ServerEvent::Strike { strikes: 1 }]);
    // Long enough later, the client is back within its allowance.
    s.handle_message(secs(200), Message::Ping { seq: 99 });
    assert_eq!(s.strikes(), 0);
    assert!(!s.is_closed());
}

#[test]
fn pinging_at_exactly_the_minimum_interval_never_strikes() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    for i in 0..1000 {
        s.handle_message(secs(5 * i), Message::Ping { seq: i });
        assert_eq!(s.strikes(), 0);
    }
}

#[test]
fn zero_minimum_disables_policing() {
    let c = ServerConfig {
        min_client_ping_interval: Duration::ZERO,
        ..config()
    };
    let mut s = Server::new(&c, Instant::ZERO).unwrap();
    assert_eq!(flood(&mut s, secs(1), 1000), []);
}

#[test]
fn an_older_now_is_treated_as_the_latest() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_timeout(secs(30));
    let _ = transmits(&mut s);
    s.handle_read(secs(3));
    s.handle_timeout(secs(119));
    assert!(!s.is_closed(), "the read counted at t=30, not t=3");
    s.handle_timeout(secs(120));
    assert!(s.is_closed());
}

#[test]
fn a_stalled_server_reads_its_backlog_before_judging_idleness() {
    // idle 90 s; the server process is frozen from 50 s to 200 s while the client's pings wait
    // unread. On waking, the idle deadline (at 140 s) is 60 s overdue: the verdict waits.
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_message(secs(50), Message::Ping { seq: 0 });
    let _ = transmits(&mut s);
    s.handle_timeout(secs(200));
    assert!(!s.is_closed(), "a late deadline is the server's own stall");
    assert_eq!(
        transmits(&mut s),
        [Message::Ping { seq: 0 }],
        "its own overdue ping still goes out"
    );
    assert_eq!(
        s.poll_timeout(),
        Some(secs(200).saturating_add(heartbeat_core::server::STALL_GRACE))
    );
    s.handle_message(secs(200), Message::Ping { seq: 1 });
    assert_eq!(transmits(&mut s), [Message::Pong { seq: 1 }]);
    assert!(!s.is_closed());
}

#[test]
fn a_stalled_server_with_nothing_to_read_closes_after_the_grace() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_timeout(secs(200));
    assert!(!s.is_closed());
    let t = s.poll_timeout().unwrap();
    s.handle_timeout(t);
    assert_eq!(
        events(&mut s),
        [ServerEvent::Close(CloseReason::IdleTimeout)]
    );
}

#[test]
fn a_deadline_handled_on_time_closes_at_once() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_timeout(secs(90).saturating_add(Duration::from_millis(50)));
    assert!(s.is_closed(), "50 ms of timer lateness is no stall");
}

#[test]
fn a_protocol_ping_is_policed_as_a_json_ping_but_never_answered() {
    // Two servers, the same pings every 100 ms: one as JSON, one as protocol Ping frames
    // (which the WebSocket library answers itself). Same strikes, same close, same instant.
    let mut json = Server::new(&config(), Instant::ZERO).unwrap();
    let mut protocol = Server::new(&config(), Instant::ZERO).unwrap();
    for i in 0..100u64 {
        let at = secs(10).saturating_add(Duration::from_millis(100 * i));
        json.handle_message(at, Message::Ping { seq: i });
        protocol.handle_protocol_ping(at);
        let _ = transmits(&mut json);
        assert_eq!(transmits(&mut protocol), [], "no pong for a protocol ping");
        assert_eq!(events(&mut protocol), events(&mut json), "ping {i}");
        assert_eq!(protocol.strikes(), json.strikes());
        assert_eq!(protocol.is_closed(), json.is_closed());
        if json.is_closed() {
            assert_eq!(i, 20, "18 in the burst, 2 strikes, the 21st closes");
            return;
        }
    }
    panic!("the flood was never closed");
}

#[test]
fn a_protocol_ping_counts_as_a_read() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_protocol_ping(secs(80));
    s.handle_timeout(secs(169));
    assert!(
        !s.is_closed(),
        "idle is counted from the protocol ping at 80 s"
    );
    s.handle_timeout(secs(170));
    assert_eq!(
        events(&mut s),
        [ServerEvent::Close(CloseReason::IdleTimeout)]
    );
}

/// docs/invariants.md, "Flood policing": a client pinging every p < m from its first ping at a0
/// strikes from ping j1 = floor((I - m) / (m - p)) + 1 on (0-based) and is closed by the
/// (k + 1)-th strike in a row, ping j1 + k, at a0 + (j1 + k) * p. This must hold for the
/// largest k validation accepts: a strike counter that saturates at k once let k = 255 switch
/// flood policing off.
#[test]
fn a_client_pinging_every_millisecond_is_closed_at_the_largest_strike_limit() {
    let config = ServerConfig {
        max_ping_strikes: heartbeat_core::validate::MAX_PING_STRIKES,
        ..ServerConfig::default()
    };
    assert!(config.validate().is_ok(), "{:?}", config.validate().errors);
    let (i, m, p) = (
        config.idle_timeout.as_millis() as u64,
        config.min_client_ping_interval.as_millis() as u64,
        1,
    );
    let k = u64::from(config.max_ping_strikes);
    let first_strike = (i - m) / (m - p) + 1;
    let closing = first_strike + k;
    let a0 = secs(1);
    let mut s = Server::new(&config, Instant::ZERO).unwrap();
    // 200 s of pings, one every millisecond.
    let mut closed_at = None;
    for j in 0..200_000u64 {
        s.handle_message(
            a0.saturating_add(Duration::from_millis(j * p)),
            Message::Ping { seq: j },
        );
        let seen = events(&mut s);
        if seen.contains(&ServerEvent::Close(CloseReason::TooManyPings)) {
            assert_eq!(
                seen.last(),
                Some(&ServerEvent::Strike {
                    strikes: config.max_ping_strikes + 1
                })
            );
            closed_at = Some(j);
            break;
        }
    }
    assert_eq!(
        closed_at,
        Some(closing),
        "k = {k}: closed at ping {closed_at:?}, the bound says ping {closing} ({} ms after the first)",
        closing * p
    );
}
