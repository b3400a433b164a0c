//! The renderers on a hand-built trace, the way the model checker builds one.

use std::time::Duration;

use heartbeat_core::{Event, Instant, Message, ReconnectReason, ServerEvent, Status};
use heartbeat_model::render::{ascii, mermaid, Summary};
use heartbeat_model::trace::{Trace, What, Who};

mod common;
use common::pinned;

fn hand_built() -> Trace {
    let (c, s, w) = (Who::Client(0), Who::Server(0), Who::World);
    let ms = Instant::from_millis;
    let mut t = Trace::titled("hand-built: one pong, then a dead server");
    t.push(ms(0), c, What::Event(Event::Connect { attempt: 0 }));
    t.push(ms(50), s, What::Open);
    t.push(ms(100), c, What::Open);
    t.push(ms(100), c, What::Send(Message::Ping { seq: 0 }));
    t.push(ms(100), c, What::Event(Event::Connected));
    t.push(ms(150), s, What::Receive(Message::Ping { seq: 0 }));
    t.push(ms(150), s, What::Send(Message::Pong { seq: 0 }));
    t.push(ms(200), c, What::Receive(Message::Pong { seq: 0 }));
    t.push(
        ms(200),
        c,
        What::Event(Event::Rtt(Duration::from_millis(100))),
    );
    t.push(ms(200), c, What::Status(Status::Healthy));
    t.push(ms(1_000), w, What::note("server host powered off"));
    t.push(ms(15_100), c, What::Send(Message::Ping { seq: 1 }));
    t.push(ms(15_100), c, What::Lost(Message::Ping { seq: 1 }));
    t.push(
        ms(25_100),
        c,
        What::Event(Event::PongMissed {
            missed: 1,
            max_missed_pongs: 2,
        }),
    );
    t.push(ms(25_100), c, What::Event(Event::Slow { missed: 1 }));
    t.push(ms(25_100), c, What::Status(Status::Slow));
    t.push(
        ms(40_100),
        c,
        What::Event(Event::Reconnect {
            reason: ReconnectReason::MissedPongs { missed: 2 },
            backoff: Duration::from_millis(612),
        }),
    );
    t.push(ms(40_100), c, What::Status(Status::Reconnecting));
    t.push(
        ms(61_000),
        s,
        What::ServerEvent(ServerEvent::Close(heartbeat_core::CloseReason::IdleTimeout)),
    );
    t
}

#[test]
fn ascii_of_a_hand_built_trace() {
    let text = ascii(&hand_built());
    if pinned() {
        insta::assert_snapshot!(text);
    }
}

#[test]
fn mermaid_of_a_hand_built_trace() {
    let text = mermaid(&hand_built());
    if pinned() {
        insta::assert_snapshot!(text);
    }
}

#[test]
fn summary_of_a_hand_built_trace() {
    let s = Summary::from_trace(&hand_built());
    assert_eq!(s.client_pings, 2);
    assert_eq!(s.lost, 1);
    assert_eq!(s.slow_windows.len(), 1);
    assert_eq!(s.reconnects.len(), 1);
    let text = s.to_string();
    if pinned() {
        insta::assert_snapshot!(text);
    }
}
