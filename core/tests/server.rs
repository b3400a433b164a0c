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

#[test]
fn a_ping_flood_closes_after_the_allowed_strikes() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_message(secs(10), Message::Ping { seq: 0 });
    assert_eq!(transmits(&mut s), [Message::Pong { seq: 0 }]);
    s.handle_message(secs(11), Message::Ping { seq: 1 });
    assert_eq!(events(&mut s), [ServerEvent::Strike { strikes: 1 }]);
    assert_eq!(
        transmits(&mut s),
        [Message::Pong { seq: 1 }],
        "pings within the allowance are still answered"
    );
    s.handle_message(secs(12), Message::Ping { seq: 2 });
    assert_eq!(events(&mut s), [ServerEvent::Strike { strikes: 2 }]);
    assert_eq!(transmits(&mut s), [Message::Pong { seq: 2 }]);
    s.handle_message(secs(13), Message::Ping { seq: 3 });
    assert_eq!(
        events(&mut s),
        [
            ServerEvent::Close(CloseReason::TooManyPings),
            ServerEvent::Strike { strikes: 3 }
        ]
    );
    assert_eq!(transmits(&mut s), []);
    assert_eq!(CloseReason::TooManyPings.close_code(), 1008);
}

#[test]
fn a_well_spaced_ping_clears_the_strikes() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_message(secs(10), Message::Ping { seq: 0 });
    s.handle_message(secs(11), Message::Ping { seq: 1 });
    s.handle_message(secs(12), Message::Ping { seq: 2 });
    s.handle_message(secs(17), Message::Ping { seq: 3 });
    assert_eq!(s.strikes(), 0);
    s.handle_message(secs(18), Message::Ping { seq: 4 });
    assert!(!s.is_closed());
}

#[test]
fn exactly_the_minimum_spacing_is_no_strike() {
    let mut s = Server::new(&config(), Instant::ZERO).unwrap();
    s.handle_message(secs(10), Message::Ping { seq: 0 });
    s.handle_message(secs(15), Message::Ping { seq: 1 });
    assert_eq!(s.strikes(), 0);
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
