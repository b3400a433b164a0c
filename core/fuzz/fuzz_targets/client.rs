//! `Client` under any sequence of inputs, with any configuration its validation accepts.
//!
//! After every input the harness drains the outputs in the documented order and checks what
//! `Client`'s docs promise: a pong answers a ping from the same call; pings carry consecutive
//! numbers; an RTT comes only from the pong of the ping in flight and equals the time since it
//! was sent; every status change comes with the event that announces it (Slow, Recovered,
//! Reconnect, Connected) and Connecting is never seen again once left; hints never reconnect;
//! a reconnect's backoff is at most `backoff_max`; after `handle_timeout(now)` the next deadline
//! is not before `now`, and handling it at `now` moves it past `now` (no busy loop); a closed
//! client stays closed and says nothing more.
//!
//! Run from core/fuzz: `RUSTC_BOOTSTRAP=1 cargo fuzz run client -- -max_total_time=60`.
#![no_main]

mod common;

use arbitrary::Arbitrary;
use common::{Clock, Ms, Step};
use core::time::Duration;
use heartbeat_core::{
    Client, ClientConfig, Event, Hint, Instant, Message, ReconnectReason, Status,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    ping_interval: Ms,
    pong_timeout: Ms,
    slow_threshold: u8,
    max_missed_pongs: u8,
    stall_threshold: Ms,
    connect_timeout: Ms,
    backoff_initial: Ms,
    backoff_max: Ms,
    seed: u64,
    start: u32,
    ops: Vec<(Step, Op)>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum HintArg {
    Hidden,
    Visible,
    Offline,
    Online,
}

/// One input to the client.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Connected,
    Disconnected,
    Ping(u64),
    /// A pong echoing the ping in flight (the latest one sent).
    PongLatest,
    Pong(u64),
    Read,
    Hint(HintArg),
    Timeout,
    Close,
}

/// The outputs of one input, drained in the documented order.
#[derive(Debug, Default)]
struct Outputs {
    transmits: Vec<Message>,
    events: Vec<Event>,
}

fn drain(client: &mut Client) -> Outputs {
    let mut out = Outputs::default();
    while let Some(m) = client.poll_transmit() {
        out.transmits.push(m);
        assert!(out.transmits.len() <= 2, "{out:?}");
    }
    while let Some(e) = client.poll_event() {
        out.events.push(e);
        assert!(out.events.len() <= 8, "{out:?}");
    }
    out
}

fn rtt(now: Instant, sent: Instant) -> Duration {
    let us = now.saturating_duration_since(sent).as_micros();
    Duration::from_micros(u64::try_from(us.min(u128::from(u32::MAX))).unwrap_or(u64::MAX))
}

/// What the harness knows of the client across inputs.
struct Reference {
    config: ClientConfig,
    /// The number the next ping must carry.
    next_seq: u64,
    /// The latest ping sent and when.
    last_ping: Option<(u64, Instant)>,
    /// A Connect event was given and neither Connected nor Reconnect has followed.
    connecting: bool,
    left_connecting: bool,
    closed: bool,
}

impl Reference {
    /// Checks one input's outputs and the status change they explain.
    fn check(&mut self, op: Op, now: Instant, before: Status, after: Status, out: &Outputs) {
        let c = &self.config;
        if self.closed {
            assert_eq!(after, Status::Closed);
            assert!(out.transmits.is_empty() && out.events.is_empty(), "{out:?}");
            return;
        }
        // Transmits: the pong first, then at most one ping, numbered in sequence.
        let mut transmits = out.transmits.iter().peekable();
        if let Some(Message::Pong { seq }) = transmits.peek() {
            assert!(matches!(op, Op::Ping(s) if s == *seq), "{op:?} {out:?}");
            transmits.next();
        } else if let Op::Ping(_) = op {
            assert!(
                !matches!(before, Status::Healthy | Status::Slow),
                "a connected client did not answer a ping: {out:?}"
            );
        }
        match transmits.next() {
            Some(Message::Ping { seq }) => {
                assert_eq!(*seq, self.next_seq, "{out:?}");
                self.next_seq = (self.next_seq + 1) % (1 << 32);
                self.last_ping = Some((*seq, now));
                assert!(matches!(after, Status::Healthy | Status::Slow), "{after:?}");
            }
            Some(m) => panic!("{m:?} after {out:?}"),
            None => {}
        }
        assert!(transmits.next().is_none(), "{out:?}");

        let has = |f: &dyn Fn(&Event) -> bool| out.events.iter().any(f);
        for e in &out.events {
            match *e {
                Event::Connect { .. } => {
                    assert!(matches!(after, Status::Connecting | Status::Reconnecting));
                }
                Event::Connected => {
                    assert!(matches!(op, Op::Connected) && self.connecting, "{op:?}");
                    assert_eq!(after, Status::Healthy);
                }
                Event::Rtt(d) => {
                    let (seq, sent) = self.last_ping.expect("an RTT without a ping");
                    let echoed = match op {
                        Op::PongLatest => true,
                        Op::Pong(s) => s == seq,
                        _ => false,
                    };
                    assert!(echoed, "{op:?} {seq}");
                    assert_eq!(d, rtt(now, sent));
                }
                Event::PongMissed {
                    missed,
                    max_missed_pongs,
                } => {
                    assert!(matches!(op, Op::Timeout), "{op:?}");
                    assert_eq!(max_missed_pongs, c.max_missed_pongs);
                    assert!((1..=max_missed_pongs).contains(&missed));
                    let gave_up = has(&|e| {
                        matches!(
                            e,
                            Event::Reconnect {
                                reason: ReconnectReason::MissedPongs { .. },
                                ..
                            }
                        )
                    });
                    assert_eq!(gave_up, missed == max_missed_pongs, "{out:?}");
                }
                Event::Slow { missed } => assert_eq!(missed, c.slow_threshold),
                Event::Recovered { missed } => assert!(missed >= c.slow_threshold),
                Event::Stalled { late_by } => {
                    assert!(matches!(op, Op::Timeout), "{op:?}");
                    // Reported in whole milliseconds (truncated) of a lateness beyond the
                    // threshold.
                    assert!(late_by >= c.stall_threshold, "{late_by:?}");
                    assert_eq!(late_by.subsec_nanos() % 1_000_000, 0);
                    assert!(
                        matches!(out.transmits.last(), Some(Message::Ping { .. })),
                        "a stall without a probe: {out:?}"
                    );
                }
                Event::Reconnect { reason, backoff } => {
                    assert!(backoff <= c.backoff_max, "{backoff:?}");
                    assert_eq!(after, Status::Reconnecting);
                    assert!(!matches!(op, Op::Hint(_)), "a hint reconnected: {out:?}");
                    match reason {
                        ReconnectReason::MissedPongs { missed } => {
                            assert_eq!(missed, c.max_missed_pongs)
                        }
                        ReconnectReason::ConnectionClosed => {
                            assert!(matches!(before, Status::Healthy | Status::Slow));
                            assert!(matches!(op, Op::Disconnected));
                        }
                        ReconnectReason::ConnectFailed => {
                            assert!(matches!(op, Op::Disconnected) && self.connecting);
                        }
                        ReconnectReason::ConnectTimeout => {
                            assert!(matches!(op, Op::Timeout) && self.connecting);
                        }
                    }
                }
            }
        }

        // Every status change is announced.
        let changed = |a: Status, b: Status| before == a && after == b;
        if changed(Status::Healthy, Status::Slow) {
            assert!(has(&|e| matches!(e, Event::Slow { .. })), "{out:?}");
        }
        if changed(Status::Slow, Status::Healthy) {
            assert!(has(&|e| matches!(e, Event::Recovered { .. })), "{out:?}");
        }
        if matches!(before, Status::Healthy | Status::Slow) && after == Status::Reconnecting {
            assert!(has(&|e| matches!(e, Event::Reconnect { .. })), "{out:?}");
        }
        if matches!(before, Status::Connecting | Status::Reconnecting)
            && matches!(after, Status::Healthy | Status::Slow)
        {
            assert!(has(&|e| matches!(e, Event::Connected)), "{out:?}");
        }
        if after != Status::Connecting {
            self.left_connecting = true;
        } else {
            assert!(!self.left_connecting, "Connecting again");
        }

        if has(&|e| matches!(e, Event::Connected | Event::Reconnect { .. })) {
            self.connecting = false;
        }
        if has(&|e| matches!(e, Event::Connect { .. })) {
            self.connecting = true;
        }
    }
}

fn apply(client: &mut Client, now: Instant, op: Op, latest: Option<u64>) {
    match op {
        Op::Connected => client.handle_connected(now),
        Op::Disconnected => client.handle_disconnected(now),
        Op::Ping(seq) => client.handle_message(now, Message::Ping { seq }),
        Op::PongLatest => {
            let seq = latest.unwrap_or(u64::from(client.next_seq().wrapping_sub(1)));
            client.handle_message(now, Message::Pong { seq });
        }
        Op::Pong(seq) => client.handle_message(now, Message::Pong { seq }),
        Op::Read => client.handle_read(now),
        Op::Hint(h) => client.handle_hint(
            now,
            match h {
                HintArg::Hidden => Hint::Hidden,
                HintArg::Visible => Hint::Visible,
                HintArg::Offline => Hint::Offline,
                HintArg::Online => Hint::Online,
            },
        ),
        Op::Timeout => client.handle_timeout(now),
        Op::Close => client.close(),
    }
}

fuzz_target!(|input: Input| {
    let config = ClientConfig {
        ping_interval: input.ping_interval.get(),
        pong_timeout: input.pong_timeout.get(),
        slow_threshold: u32::from(input.slow_threshold),
        max_missed_pongs: u32::from(input.max_missed_pongs),
        stall_threshold: input.stall_threshold.get(),
        connect_timeout: input.connect_timeout.get(),
        backoff_initial: input.backoff_initial.get(),
        backoff_max: input.backoff_max.get(),
    };
    let start = Instant::from_millis(u64::from(input.start));
    let Ok(mut client) = Client::new(&config, start, input.seed) else {
        assert!(!config.validate().errors.is_empty());
        return;
    };
    let mut clock = Clock { now: start };
    let mut r = Reference {
        config,
        next_seq: 0,
        last_ping: None,
        connecting: false,
        left_connecting: false,
        closed: false,
    };
    let first = drain(&mut client);
    assert_eq!(first.events, [Event::Connect { attempt: 0 }]);
    assert!(first.transmits.is_empty());
    assert_eq!(client.status(), Status::Connecting);
    r.connecting = true;

    for (step, op) in input.ops {
        let deadline = client.poll_timeout();
        let given = clock.step(step, deadline);
        let now = clock.now;
        let before = client.status();
        apply(&mut client, given, op, r.last_ping.map(|(s, _)| s));
        if !r.closed && !matches!(op, Op::Close) {
            // `close` takes no time; every other input moves the client's clock to `now`.
            assert_eq!(client.now(), now, "time went backwards or did not move");
        }
        let out = drain(&mut client);
        r.check(op, now, before, client.status(), &out);
        if let Op::Close = op {
            r.closed = true;
        }
        if r.closed {
            assert_eq!(client.status(), Status::Closed);
            assert_eq!(client.poll_timeout(), None);
            continue;
        }
        if let Status::Healthy | Status::Slow = client.status() {
            let slow = client.missed_pongs() >= config.slow_threshold;
            assert_eq!(client.status() == Status::Slow, slow);
            assert!(client.missed_pongs() < config.max_missed_pongs);
        } else {
            assert_eq!(client.missed_pongs(), 0);
        }
        let timeout = client
            .poll_timeout()
            .expect("an open client has a deadline");
        if let Op::Timeout = op {
            assert!(timeout >= now, "{timeout} after handle_timeout({now})");
            // A deadline at `now` (a zero backoff) is handled at `now` and moves on.
            let mut spins = 0;
            while client.poll_timeout() == Some(now) {
                let before = client.status();
                client.handle_timeout(now);
                let out = drain(&mut client);
                r.check(Op::Timeout, now, before, client.status(), &out);
                spins += 1;
                assert!(
                    spins <= 2,
                    "busy loop at {now}: {:?}",
                    client.poll_timeout()
                );
            }
        }
    }
});
