//! Property tests: any sequence of inputs, at any times (backwards and near the maximum
//! included), with any sequence numbers.

use core::time::Duration;
use heartbeat_core::{
    Client, ClientConfig, Event, Hint, Instant, Message, ReconnectReason, Server, ServerConfig,
    ServerEvent, Status,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Input {
    Connected,
    Disconnected,
    Ping(u64),
    Pong(u64),
    Read,
    Hint(u8),
    Timeout,
    /// Jump straight to the next deadline the machine asked for.
    AtDeadline,
}

#[derive(Clone, Debug)]
enum When {
    Forward(u64),
    Backward(u64),
    NearMax(u64),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        2 => Just(Input::Connected),
        1 => Just(Input::Disconnected),
        3 => prop_oneof![0..4u64, any::<u64>()].prop_map(Input::Ping),
        3 => prop_oneof![0..4u64, any::<u64>()].prop_map(Input::Pong),
        2 => Just(Input::Read),
        1 => (0..4u8).prop_map(Input::Hint),
        4 => Just(Input::Timeout),
        6 => Just(Input::AtDeadline),
    ]
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        8 => (0..120_000_000u64).prop_map(When::Forward),
        1 => (0..60_000_000u64).prop_map(When::Backward),
        1 => (0..1_000_000u64).prop_map(When::NearMax),
    ]
}

fn client_config() -> impl Strategy<Value = ClientConfig> {
    (
        1..60_000u64,
        1..=100u64,
        1..6u32,
        1..6u32,
        1..20_000u64,
        1..10_000u64,
    )
        .prop_map(|(ping, pct, slow, extra, stall, backoff)| ClientConfig {
            ping_interval: Duration::from_millis(ping),
            pong_timeout: Duration::from_millis((ping * pct / 100).max(1)),
            slow_threshold: slow,
            max_missed_pongs: slow + extra,
            stall_threshold: Duration::from_millis(stall),
            connect_timeout: Duration::from_millis(stall),
            backoff_initial: Duration::from_millis(backoff),
            backoff_max: Duration::from_millis(backoff * 8),
        })
}

fn server_config() -> impl Strategy<Value = ServerConfig> {
    (1..60_000u64, 1..120_000u64, 0..10_000u64, 0..4u32).prop_map(|(ping, idle, min, strikes)| {
        ServerConfig {
            ping_interval: Duration::from_millis(ping),
            idle_timeout: Duration::from_millis(idle),
            min_client_ping_interval: Duration::from_millis(min),
            max_ping_strikes: strikes,
        }
    })
}

fn step(now: Instant, w: &When) -> Instant {
    match *w {
        When::Forward(us) => now.saturating_add(Duration::from_micros(us)),
        When::Backward(us) => now.saturating_sub(Duration::from_micros(us)),
        When::NearMax(us) => Instant::MAX.saturating_sub(Duration::from_micros(us)),
    }
}

fn hint(h: u8) -> Hint {
    [Hint::Hidden, Hint::Visible, Hint::Offline, Hint::Online][usize::from(h % 4)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn client_never_panics_never_asks_for_the_past_and_warns_before_reconnecting(
        config in client_config(),
        seed in any::<u64>(),
        script in prop::collection::vec((input(), when()), 1..200),
    ) {
        let mut now = Instant::ZERO;
        let mut c = Client::new(&config, now, seed).unwrap();
        let mut slow_seen = false;
        for (inp, w) in &script {
            now = step(now, w);
            let at = match inp {
                Input::AtDeadline => c.poll_timeout().unwrap_or(now),
                _ => now,
            };
            match inp {
                Input::Connected => c.handle_connected(at),
                Input::Disconnected => c.handle_disconnected(at),
                Input::Ping(seq) => c.handle_message(at, Message::Ping { seq: *seq }),
                Input::Pong(seq) => c.handle_message(at, Message::Pong { seq: *seq }),
                Input::Read => c.handle_read(at),
                Input::Hint(h) => c.handle_hint(at, hint(*h)),
                Input::Timeout | Input::AtDeadline => c.handle_timeout(at),
            }
            let sent = std::iter::from_fn(|| c.poll_transmit()).count();
            prop_assert!(sent <= 2, "at most a pong and a ping per input, got {}", sent);
            if sent > 0 {
                prop_assert!(matches!(c.status(), Status::Healthy | Status::Slow), "sent while {:?}", c.status());
            }
            while let Some(e) = c.poll_event() {
                match e {
                    Event::Connected => slow_seen = false,
                    Event::Slow { .. } => slow_seen = true,
                    Event::Reconnect { reason: ReconnectReason::MissedPongs { missed }, .. } => {
                        prop_assert!(slow_seen, "reconnect after {missed} misses without a Slow warning");
                        prop_assert_eq!(missed, config.max_missed_pongs);
                    }
                    _ => {}
                }
            }
            if matches!(inp, Input::Timeout | Input::AtDeadline) {
                if let Some(t) = c.poll_timeout() {
                    let latest = c.now();
                    prop_assert!(t > latest || t == Instant::MAX, "deadline {} not after now {}", t, latest);
                }
            }
            prop_assert!(c.now() >= at, "time moved backwards");
        }
    }

    #[test]
    fn server_never_panics_never_asks_for_the_past_and_closes_once(
        config in server_config(),
        script in prop::collection::vec((input(), when()), 1..200),
    ) {
        let mut now = Instant::ZERO;
        let mut s = Server::new(&config, now).unwrap();
        let mut closes = 0;
        let mut latest = now;
        for (inp, w) in &script {
            now = step(now, w);
            let at = match inp {
                Input::AtDeadline => s.poll_timeout().unwrap_or(now),
                _ => now,
            };
            latest = latest.max(at);
            let was_closed = s.is_closed();
            match inp {
                Input::Ping(seq) => s.handle_message(at, Message::Ping { seq: *seq }),
                Input::Pong(seq) => s.handle_message(at, Message::Pong { seq: *seq }),
                Input::Read | Input::Connected | Input::Hint(_) => s.handle_read(at),
                Input::Timeout | Input::AtDeadline | Input::Disconnected => s.handle_timeout(at),
            }
            let sent: Vec<_> = std::iter::from_fn(|| s.poll_transmit()).collect();
            if was_closed {
                prop_assert!(sent.is_empty(), "a closed server sent {sent:?}");
            }
            if let Input::Ping(seq) = inp {
                if !s.is_closed() {
                    prop_assert_eq!(sent.first(), Some(&Message::Pong { seq: *seq }), "ping not answered at once");
                }
            }
            while let Some(e) = s.poll_event() {
                if let ServerEvent::Close(_) = e {
                    closes += 1;
                }
            }
            if matches!(inp, Input::Timeout | Input::AtDeadline) {
                if let Some(t) = s.poll_timeout() {
                    prop_assert!(t > latest || t == Instant::MAX, "deadline {} not after now {}", t, latest);
                }
            }
        }
        prop_assert!(closes <= 1);
    }

    #[test]
    fn decoding_any_text_never_panics(text in ".{0,64}") {
        let _ = Message::from_json(&text);
    }

    #[test]
    fn encoding_round_trips(seq in any::<u64>(), ping in any::<bool>()) {
        let m = if ping { Message::Ping { seq } } else { Message::Pong { seq } };
        let mut buf = [0; heartbeat_core::wire::MAX_ENCODED_LEN];
        prop_assert_eq!(Message::from_json(m.to_json(&mut buf)), Ok(m));
    }

    #[test]
    fn duration_text_round_trips(ms in 0..100_000_000u64) {
        let d = Duration::from_millis(ms);
        let text = heartbeat_core::HumanDuration(d).to_string();
        prop_assert_eq!(heartbeat_core::parse_duration(&text), Ok(d), "{}", text);
    }
}

/// Applies `inp` at `at` to a client, returning what it sent and emitted.
fn feed(c: &mut Client, inp: &Input, at: Instant) -> (Vec<Message>, Vec<Event>) {
    match inp {
        Input::Connected => c.handle_connected(at),
        Input::Disconnected => c.handle_disconnected(at),
        Input::Ping(seq) => c.handle_message(at, Message::Ping { seq: *seq }),
        Input::Pong(seq) => c.handle_message(at, Message::Pong { seq: *seq }),
        Input::Read => c.handle_read(at),
        Input::Hint(h) => c.handle_hint(at, hint(*h)),
        Input::Timeout | Input::AtDeadline => c.handle_timeout(at),
    }
    (
        std::iter::from_fn(|| c.poll_transmit()).collect(),
        std::iter::from_fn(|| c.poll_event()).collect(),
    )
}

/// The time an input happens: `now`, or for `AtDeadline` the machine's deadline if later.
fn when_due(inp: &Input, deadline: Option<Instant>, now: Instant) -> Instant {
    match inp {
        Input::AtDeadline => deadline.unwrap_or(now).max(now),
        _ => now,
    }
}

fn forward() -> impl Strategy<Value = u64> {
    0..40_000_000u64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `Client::shift` is exact: a shifted client fed the same inputs, shifted the same way,
    /// produces the same outputs, shifted. The model checker's soundness rests on this.
    #[test]
    fn shifted_client_behaves_the_same(
        config in client_config(),
        prefix in prop::collection::vec((input(), forward()), 0..30),
        suffix in prop::collection::vec((input(), forward()), 1..60),
        frac in 0..=100u64,
        seqs in any::<u32>(),
    ) {
        let mut now = Instant::ZERO;
        let mut a = Client::new(&config, now, 5).unwrap();
        while a.poll_event().is_some() {}
        for (inp, dt) in &prefix {
            now = now.saturating_add(Duration::from_micros(*dt));
            let at = when_due(inp, a.poll_timeout(), now);
            now = at;
            feed(&mut a, inp, at);
        }
        let d = Duration::from_micros(a.earliest_instant().as_micros() * frac / 100);
        let mut b = a.clone();
        b.shift(d, seqs);
        for (inp, dt) in &suffix {
            now = now.saturating_add(Duration::from_micros(*dt));
            let at = when_due(inp, a.poll_timeout(), now);
            now = at;
            // Pongs echo the client's numbering, so they shift; server pings do not.
            let inp_b = match inp {
                Input::Pong(seq) => Input::Pong(u64::from((*seq as u32).wrapping_sub(seqs))),
                other => other.clone(),
            };
            let inp_a = match inp {
                Input::Pong(seq) => Input::Pong(u64::from(*seq as u32)),
                other => other.clone(),
            };
            let (sa, ea) = feed(&mut a, &inp_a, at);
            let (sb, eb) = feed(&mut b, &inp_b, at.saturating_sub(d));
            // The client's pings carry its own numbering; its pongs echo the server's.
            let sa: Vec<_> = sa.into_iter().map(|m| match m {
                Message::Ping { seq } => Message::Ping { seq: u64::from((seq as u32).wrapping_sub(seqs)) },
                pong => pong,
            }).collect();
            prop_assert_eq!(sa, sb);
            prop_assert_eq!(ea, eb);
            prop_assert_eq!(a.status(), b.status());
            prop_assert_eq!(a.poll_timeout().map(|t| t.saturating_sub(d)), b.poll_timeout());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `Server::shift` is exact, as `Client::shift` is.
    #[test]
    fn shifted_server_behaves_the_same(
        config in server_config(),
        prefix in prop::collection::vec((input(), forward()), 0..30),
        suffix in prop::collection::vec((input(), forward()), 1..60),
        frac in 0..=100u64,
        seqs in any::<u32>(),
    ) {
        fn feed_server(s: &mut Server, inp: &Input, at: Instant) -> (Vec<Message>, Vec<ServerEvent>) {
            match inp {
                Input::Ping(seq) => s.handle_message(at, Message::Ping { seq: *seq }),
                Input::Pong(seq) => s.handle_message(at, Message::Pong { seq: *seq }),
                Input::Read | Input::Connected | Input::Hint(_) => s.handle_read(at),
                Input::Timeout | Input::AtDeadline | Input::Disconnected => s.handle_timeout(at),
            }
            (std::iter::from_fn(|| s.poll_transmit()).collect(), std::iter::from_fn(|| s.poll_event()).collect())
        }
        let mut now = Instant::ZERO;
        let mut a = Server::new(&config, now).unwrap();
        for (inp, dt) in &prefix {
            now = now.saturating_add(Duration::from_micros(*dt));
            let at = when_due(inp, a.poll_timeout(), now);
            now = at;
            feed_server(&mut a, inp, at);
        }
        let d = Duration::from_micros(a.earliest_instant().as_micros() * frac / 100);
        let mut b = a.clone();
        b.shift(d, seqs);
        for (inp, dt) in &suffix {
            now = now.saturating_add(Duration::from_micros(*dt));
            let at = when_due(inp, a.poll_timeout(), now);
            now = at;
            // Pongs echo the server's numbering, so they shift; client pings do not.
            let (inp_a, inp_b) = match inp {
                Input::Pong(seq) => (Input::Pong(u64::from(*seq as u32)), Input::Pong(u64::from((*seq as u32).wrapping_sub(seqs)))),
                other => (other.clone(), other.clone()),
            };
            let (sa, ea) = feed_server(&mut a, &inp_a, at);
            let (sb, eb) = feed_server(&mut b, &inp_b, at.saturating_sub(d));
            let sa: Vec<_> = sa.into_iter().map(|m| match m {
                Message::Ping { seq } => Message::Ping { seq: u64::from((seq as u32).wrapping_sub(seqs)) },
                pong => pong,
            }).collect();
            prop_assert_eq!(sa, sb);
            prop_assert_eq!(ea, eb);
            prop_assert_eq!(a.is_closed(), b.is_closed());
            prop_assert_eq!(a.poll_timeout().map(|t| t.saturating_sub(d)), b.poll_timeout());
        }
    }
}
