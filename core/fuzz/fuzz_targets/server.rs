//! `Server` under any sequence of inputs, with any configuration its validation accepts.
//!
//! After every input the harness drains the outputs in the documented order and checks them
//! against a small reference of what `Server`'s docs promise: the pong comes from the call
//! that takes the ping (none for a protocol Ping frame, which is policed all the same); the
//! server's own pings leave on schedule with consecutive numbers; an idle connection is closed
//! no earlier than `idle_timeout` after the last read (put off once by `STALL_GRACE` when the
//! timer fired late); a client that pings no faster than allowed is never struck; a closed
//! server stays closed and says nothing more; after `handle_timeout(now)` the next deadline is
//! later than `now`.
//!
//! Run from core/fuzz: `RUSTC_BOOTSTRAP=1 cargo fuzz run server -- -max_total_time=60`.
#![no_main]

mod common;

use arbitrary::Arbitrary;
use common::{Clock, Ms, Step};
use core::time::Duration;
use heartbeat_core::server::STALL_GRACE;
use heartbeat_core::{CloseReason, Instant, Message, Server, ServerConfig, ServerEvent};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    ping_interval: Ms,
    idle_timeout: Ms,
    min_client_ping_interval: Ms,
    max_ping_strikes: u8,
    start: u32,
    ops: Vec<(Step, Op)>,
}

/// One input to the server. A new `Server::handle_*` method is one more variant here and one
/// more arm in `apply`.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Ping(u64),
    /// A WebSocket protocol Ping frame: policed like a ping, answered by the WebSocket library.
    ProtocolPing,
    /// A pong echoing the server's latest ping.
    PongLatest,
    Pong(u64),
    Read,
    Timeout,
}

/// What the docs promise, kept by the harness.
struct Reference {
    config: ServerConfig,
    last_read: Instant,
    /// Set when an idle verdict was put off: the instant it is due again.
    deferred_until: Option<Instant>,
    next_ping: Instant,
    /// The next ping's number and the send time of the latest one, while unanswered.
    next_seq: u32,
    awaiting: Option<(u32, Instant)>,
    last_client_ping: Option<Instant>,
    /// Every client ping so far came at least `min_client_ping_interval` after the previous.
    well_behaved: bool,
    closed: bool,
}

impl Reference {
    fn idle_deadline(&self) -> Instant {
        self.deferred_until
            .unwrap_or(self.last_read.saturating_add(self.config.idle_timeout))
    }
}

fn apply(server: &mut Server, now: Instant, op: Op) {
    match op {
        Op::Ping(seq) => server.handle_message(now, Message::Ping { seq }),
        Op::ProtocolPing => server.handle_protocol_ping(now),
        Op::PongLatest => server.handle_message(
            now,
            Message::Pong {
                seq: u64::from(server.next_seq().wrapping_sub(1)),
            },
        ),
        Op::Pong(seq) => server.handle_message(now, Message::Pong { seq }),
        Op::Read => server.handle_read(now),
        Op::Timeout => server.handle_timeout(now),
    }
}

fn rtt(now: Instant, sent: Instant) -> Duration {
    let us = now.saturating_duration_since(sent).as_micros();
    Duration::from_micros(u64::try_from(us.min(u128::from(u32::MAX))).unwrap_or(u64::MAX))
}

fuzz_target!(|input: Input| {
    let config = ServerConfig {
        ping_interval: input.ping_interval.get(),
        idle_timeout: input.idle_timeout.get(),
        min_client_ping_interval: input.min_client_ping_interval.get(),
        max_ping_strikes: u32::from(input.max_ping_strikes),
    };
    let start = Instant::from_millis(u64::from(input.start));
    let Ok(mut server) = Server::new(&config, start) else {
        assert!(!config.validate().errors.is_empty());
        return;
    };
    let mut clock = Clock { now: start };
    let mut r = Reference {
        config,
        last_read: start,
        deferred_until: None,
        next_ping: start.saturating_add(config.ping_interval),
        next_seq: 0,
        awaiting: None,
        last_client_ping: None,
        well_behaved: true,
        closed: false,
    };
    assert_eq!(server.poll_transmit(), None);
    assert_eq!(server.poll_event(), None);
    for (step, op) in input.ops {
        let deadline = server.poll_timeout();
        let given = clock.step(step, deadline);
        let now = clock.now;
        let pong_seq = u64::from(server.next_seq().wrapping_sub(1));
        apply(&mut server, given, op);

        // The reference's view of this input.
        let mut expect_pong = None;
        let mut expect_ping = None;
        let mut expect_idle_close = false;
        if !r.closed {
            match op {
                Op::Ping(_) | Op::ProtocolPing => {
                    if let Some(last) = r.last_client_ping {
                        if now.saturating_duration_since(last) < config.min_client_ping_interval {
                            r.well_behaved = false;
                        }
                    }
                    r.last_client_ping = Some(now);
                    if let Op::Ping(seq) = op {
                        expect_pong = Some(seq);
                    }
                }
                Op::Timeout => {
                    let idle = r.idle_deadline();
                    if now >= idle {
                        let late = now.saturating_duration_since(idle);
                        if r.deferred_until.is_none() && late > STALL_GRACE {
                            r.deferred_until = Some(now.saturating_add(STALL_GRACE));
                        } else {
                            expect_idle_close = true;
                        }
                    }
                    if !expect_idle_close && now >= r.next_ping {
                        expect_ping = Some(r.next_seq);
                    }
                }
                Op::PongLatest | Op::Pong(_) | Op::Read => {}
            }
        }

        let mut transmits = Vec::new();
        while let Some(m) = server.poll_transmit() {
            transmits.push(m);
            assert!(transmits.len() <= 2, "{transmits:?}");
        }
        let mut events = Vec::new();
        while let Some(e) = server.poll_event() {
            events.push(e);
            assert!(events.len() <= 3, "{events:?}");
        }

        if r.closed {
            assert!(server.is_closed(), "a closed server reopened");
            assert!(
                transmits.is_empty() && events.is_empty(),
                "{transmits:?} {events:?}"
            );
            assert_eq!(server.poll_timeout(), None);
            continue;
        }

        let close = events.iter().find_map(|e| match e {
            ServerEvent::Close(reason) => Some(*reason),
            _ => None,
        });
        let strike = events.iter().find_map(|e| match e {
            ServerEvent::Strike { strikes } => Some(*strikes),
            _ => None,
        });
        let rtt_event = events.iter().find_map(|e| match e {
            ServerEvent::Rtt(d) => Some(*d),
            _ => None,
        });
        // Close first, then strikes, then RTT; each at most once.
        let order: Vec<u8> = events
            .iter()
            .map(|e| match e {
                ServerEvent::Close(_) => 0,
                ServerEvent::Strike { .. } => 1,
                ServerEvent::Rtt(_) => 2,
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{events:?}");

        // Strikes: only for pings, never for a client that keeps to the allowed rate, and the
        // one past max_ping_strikes closes.
        if let Some(n) = strike {
            assert!(
                matches!(op, Op::Ping(_) | Op::ProtocolPing),
                "{op:?} {events:?}"
            );
            assert!(!config.min_client_ping_interval.is_zero());
            assert!(
                !r.well_behaved,
                "a well-behaved client was struck: {events:?}"
            );
            assert_eq!(n, server.strikes());
            assert!((1..=config.max_ping_strikes + 1).contains(&n), "{n}");
            assert_eq!(
                close == Some(CloseReason::TooManyPings),
                n > config.max_ping_strikes,
                "{events:?}"
            );
        } else {
            assert_ne!(close, Some(CloseReason::TooManyPings), "{events:?}");
        }
        match close {
            Some(CloseReason::TooManyPings) => expect_pong = None,
            Some(CloseReason::IdleTimeout) => {
                assert!(expect_idle_close, "closed early at {now}: {events:?}");
                assert!(
                    now.saturating_duration_since(r.last_read) >= config.idle_timeout,
                    "closed {} after the last read",
                    now.saturating_duration_since(r.last_read).as_millis()
                );
            }
            None => assert!(!expect_idle_close, "not closed at {now}"),
        }

        // Transmits: the pong answering this very ping first, then the server's own ping.
        let mut expected = Vec::new();
        if let Some(seq) = expect_pong {
            expected.push(Message::Pong { seq });
        }
        if let Some(seq) = expect_ping {
            expected.push(Message::Ping {
                seq: u64::from(seq),
            });
        }
        assert_eq!(transmits, expected, "{op:?} at {now}");

        // RTT: only from a pong echoing the latest ping while it is unanswered.
        match (op, r.awaiting) {
            (Op::PongLatest | Op::Pong(_), Some((seq, sent))) if pong_seq == u64::from(seq) => {
                let echoed = match op {
                    Op::PongLatest => true,
                    Op::Pong(s) => s == pong_seq,
                    _ => false,
                };
                if echoed {
                    assert_eq!(rtt_event, Some(rtt(now, sent)), "{op:?}");
                    r.awaiting = None;
                } else {
                    assert_eq!(rtt_event, None);
                }
            }
            _ => assert_eq!(rtt_event, None, "{op:?} {:?}", r.awaiting),
        }

        // Move the reference on.
        if close.is_some() {
            r.closed = true;
            assert!(server.is_closed());
            assert_eq!(server.poll_timeout(), None);
            continue;
        }
        match op {
            Op::Ping(_) | Op::ProtocolPing | Op::PongLatest | Op::Pong(_) | Op::Read => {
                r.last_read = now;
                r.deferred_until = None;
            }
            Op::Timeout => {}
        }
        if let Some(seq) = expect_ping {
            r.next_ping = now.saturating_add(config.ping_interval);
            r.awaiting = Some((seq, now));
            r.next_seq = seq.wrapping_add(1);
        }
        assert!(!server.is_closed());
        assert_eq!(server.next_seq(), r.next_seq);
        let timeout = server
            .poll_timeout()
            .expect("an open server has a deadline");
        assert_eq!(
            timeout,
            r.next_ping.min(r.idle_deadline()),
            "{op:?} at {now}"
        );
        if matches!(op, Op::Timeout) {
            assert!(timeout > now, "{timeout} after handle_timeout({now})");
        }
    }
});
